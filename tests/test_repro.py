"""peakdsl/repro.py: the command line that reproduces a result, built from a ResolvedRun.

Unit-level: what the line lists (and leaves out), exact values, pinned periods, paths
relative to a base, and reading a line back. That the pasted line gives the same metrics is
tests/cli/test_runs_repro.py.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest

from peakdsl.compile.models import Param
from peakdsl.data.select import demo_market
from peakdsl.lang.parser import unit_value
from peakdsl.repro import (
    LineError,
    Recipe,
    command_line,
    number_text,
    parse_line,
    recipe,
    search_options,
    set_texts,
    stamp_text,
    walkforward_options,
)
from peakdsl.resolve import resolve

REPO = Path(__file__).resolve().parents[1]
MA = "specs/strategies/ma_crossover.peak"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repro")
    shutil.copytree(REPO / "specs", root / "specs")
    frame = demo_market("BTC/USDT", "1h").frame.iloc[:600]
    frame.rename_axis("timestamp").reset_index().to_csv(root / "btc 1h.csv", index=False)
    return root


def test_a_default_run_is_the_spec_alone(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    resolved = resolve("backtest", MA)
    assert resolved.data.synthetic  # the demo market: nothing to pin, nothing to name
    assert command_line(resolved) == f"peak backtest {MA}"
    assert command_line(resolved, base=Path("/elsewhere")) == f"peak backtest {project / MA}"


def test_everything_that_changes_the_result_is_listed(project: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    resolved = resolve("backtest", MA, data=Path("btc 1h.csv"), overrides=["fast=15"],
                       fee_bps=2.5, capital=5000.0, end="2025-06-10")
    line = command_line(resolved)
    # the file's first bar pins --from (not given); --to stays as given; quoted for a shell
    assert line == ("peak backtest specs/strategies/ma_crossover.peak --data 'btc 1h.csv' "
                    "--from 2025-06-06T16:00 --to 2025-06-10 --fee-bps 2.5 --capital 5000 "
                    "--set fast=15")
    assert shlex.split(line)[4] == "btc 1h.csv"
    # a sweep's best names every swept param, also one at its default (slow=50)
    best = command_line(resolved, params={"fast": 10.0, "slow": 50.0}, shown=("fast", "slow"))
    assert str(best).endswith("--set fast=10 --set slow=50")
    assert str(command_line(resolved, params={"fast": 20.0, "slow": 50.0})).endswith("5000")


def test_an_unbounded_file_is_pinned_to_the_bars_it_had(project: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    resolved = resolve("backtest", MA, data=Path("btc 1h.csv"))
    found = recipe(resolved)
    assert found is not None
    last = resolved.candles.frame.index[-1]
    assert (found.start, found.end) == ("2025-06-06T16:00", stamp_text(last + pd.Timedelta("1h")))
    again = resolve("backtest", MA, data=Path("btc 1h.csv"), start=found.start, end=found.end)
    assert again.candles.fingerprint == resolved.candles.fingerprint


def test_values_read_back_exactly() -> None:
    pct = Param(name="stop", type="percent", default=0.03, low=0.001, high=0.2, step=None)
    odd = 0.1 + 0.2  # 0.30000000000000004: no short decimal is this double
    text = set_texts_for(pct, odd)
    assert unit_value(text.removesuffix("%"), -2) == odd and text.endswith("%")
    assert number_text(10_000.0) == "10000" and number_text(2.5) == "2.5"
    assert float(number_text(1 / 3)) == 1 / 3
    assert stamp_text(pd.Timestamp("2024-01-31", tz="UTC")) == "2024-01-31"
    assert stamp_text(pd.Timestamp("2024-01-31T04:00:30Z")) == "2024-01-31T04:00:30"


def set_texts_for(param: Param, value: float) -> str:
    from peakdsl.research.sweep import format_value

    return format_value(param, value)


def test_set_texts_skip_defaults_unless_shown(project: Path) -> None:
    resolved = resolve("backtest", str(project / MA))
    cfg = resolved.config
    assert set_texts(cfg, {"fast": 20.0, "slow": 60.0}) == ["slow=60"]
    assert set_texts(cfg, {"fast": 20.0, "slow": 60.0}, ("fast",)) == ["fast=20", "slow=60"]


def test_kind_options_and_reading_a_line_back(tmp_path: Path) -> None:
    wf = Recipe("walkforward", str(tmp_path / "specs/s.peak"), data=str(tmp_path / "d.csv"),
                start="2024-01-01", fee_bps=3.0, sets=("fast=10..20:5",),
                options=tuple(walkforward_options("2000", "90d", None, True, "sortino",
                                                  "random", 20, 7)))
    line = wf.line(tmp_path)
    assert line == ("peak walkforward specs/s.peak --data d.csv --from 2024-01-01 --fee-bps 3 "
                    "--set fast=10..20:5 --train 2000 --test 90d --anchored --objective sortino "
                    "--random 20 --seed 7")
    back = parse_line(line)
    assert back.absolute(tmp_path) == wf
    assert (back.option("--train"), back.flag("--anchored"), back.option("--step")) == (
        "2000", True, None)
    assert search_options("sharpe", "grid", None, 3) == []
    for bad in ("peak check specs", "ls -l", "peak backtest s.peak --workers 2",
                "peak sweep s.peak --set"):
        with pytest.raises(LineError):
            parse_line(bad)


def test_inputs_only_in_memory_have_no_line(project: Path) -> None:
    text = (project / MA).read_text()
    resolved = resolve("backtest", text, root=project)
    assert recipe(resolved) is None and command_line(resolved) is None
    frame = demo_market("BTC/USDT", "1h").frame.iloc[:400]
    assert command_line(resolve("backtest", str(project / MA), data=frame)) is None


def test_backtest_lines_are_the_lines_of_each_row(project: Path) -> None:
    resolved = resolve("sweep", str(project / MA), data=project / "btc 1h.csv", fee_bps=4.0)
    sweep = recipe(resolved, command="sweep", sets=["fast=5..15:5"],
                   options=search_options("sortino", "random", 3, 1))
    assert sweep is not None
    rows = [{"fast": f, "slow": 50.0} for f in (5.0, 10.0, 20.0)]
    lines = sweep.backtest_lines(resolved.config, rows, ("fast",), project)
    assert lines == [sweep.backtest(resolved.config, row, ("fast",)).line(project)
                     for row in rows]
    assert lines[2] == ("peak backtest specs/strategies/ma_crossover.peak --data 'btc 1h.csv' "
                        "--from 2025-06-06T16:00 --to 2025-07-01T16:00 --fee-bps 4 "
                        "--set fast=20")
