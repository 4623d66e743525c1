"""peakdsl/registry/rerun.py in isolation: what "the same value" means, and which runs have
nothing to rerun. Reruns end to end (every kind, through the CLI) are in
tests/cli/test_runs_repro.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from peakdsl.registry.records import RunOutcome, RunStart
from peakdsl.registry.rerun import MetricCheck, NoCommandError, Rerun, rerun
from peakdsl.registry.store import Registry


def test_values_compare_as_the_registry_encodes_them() -> None:
    assert MetricCheck("sharpe", None, math.nan).same  # undefined both times
    assert MetricCheck("profit_factor", math.inf, math.inf).same
    assert MetricCheck("trades", 9, 9.0).same
    assert not MetricCheck("sharpe", 1.0, 1.0000000000000002).same  # no tolerance
    assert not MetricCheck("sqn", 1.5, "missing").same  # a metric no longer computed


def test_a_rerun_matches_only_when_every_value_does(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    with Registry(tmp_path) as reg:
        run_id = reg.record(RunStart("backtest", "ma", {"artifact": "a" * 64, "data": "d" * 64},
                                     "0.1.0", command="peak backtest s.peak"),
                            RunOutcome({"sharpe": 1.0}))
        record = reg.get_run(run_id)
    ok = Rerun(record, "peak backtest s.peak", "a" * 64, "d" * 64,
               (MetricCheck("sharpe", 1.0, 1.0),))
    assert ok.matches and ok.same_artifact and ok.same_data and ok.differences == ()
    off = Rerun(record, "peak backtest s.peak", "b" * 64, "d" * 64,
                (MetricCheck("sharpe", 1.0, 0.5), MetricCheck("trades", 3, 3)))
    assert not off.matches and [c.name for c in off.differences] == ["sharpe"]
    assert off.to_dict()["same"] == {"artifact": False, "data": True}
    assert not Rerun(record, "", "", "", ()).matches  # nothing compared proves nothing


@pytest.mark.parametrize(("kind", "command", "reason"), [
    ("backtest", None, "no command line.*recorded before peak stored the command line"),
    ("portfolio", "peak backtest specs/p.peak", "is a portfolio: peak stores command lines"),
    ("backtest", "peak live run specs/s.peak", "cannot be read back"),
])
def test_runs_without_a_usable_line(tmp_path: Path, kind: str, command: str | None,
                                    reason: str) -> None:
    (tmp_path / "specs").mkdir()
    with Registry(tmp_path) as reg:
        run_id = reg.record(RunStart(kind, "s", {"artifact": "a" * 64}, "0.1.0",
                                     command=command), RunOutcome({"sharpe": 1.0}))
        with pytest.raises(NoCommandError, match=reason):
            rerun(reg, run_id)
