"""The resolve stage: one typed ``ResolvedRun`` for backtests, sweeps and walk-forwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peakdsl.api import SpecError
from peakdsl.lang.project import UsageError
from peakdsl.resolve import RUN_KINDS, resolve

ROOT = Path(__file__).resolve().parents[1]
MA = "specs/strategies/ma_crossover.peak"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resolve_project")
    shutil.copytree(ROOT / "specs", root / "specs")
    return root


def test_a_resolved_run_carries_the_artifact_params_data_and_settings(project: Path) -> None:
    run = resolve("backtest", str(project / MA), overrides=["fast=15"], start="2025-07-05",
                  capital=5_000.0, fee_bps=7.0)
    assert run.root == project and run.kind == "backtest"
    assert run.config.name == "ma_crossover" and run.params["fast"] == 15.0
    assert run.data.synthetic and run.data.source.startswith("synthetic demo")
    assert run.data.fingerprint == run.candles.fingerprint
    assert run.data.start.startswith("2025-07-05") and run.data.requested_from == "2025-07-05"
    assert run.data.bars == len(run.candles.frame)
    assert (run.capital, run.fee_bps, run.risk) == (5_000.0, 7.0, None)
    assert len(run.artifact_sha256) == 64 and run.artifact_json.startswith("{")


def test_the_same_inputs_resolve_to_the_same_hashes(project: Path) -> None:
    a = resolve("sweep", str(project / MA))
    b = resolve("walkforward", str(project / MA))
    assert (a.artifact_sha256, a.data) == (b.artifact_sha256, b.data)


@pytest.mark.parametrize("kind", sorted(RUN_KINDS))
def test_every_run_kind_refuses_a_portfolio_its_own_way(project: Path, kind: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(kind, str(project / "specs/portfolios/multi_style_moderate.peak"))
    d = caught.value.diagnostic
    assert d.code == "U003" and d.message.startswith(f"`peak {kind}` ")
    assert d.help == RUN_KINDS[kind].refusal_help


def test_bad_overrides_and_dates_are_diagnostics(project: Path) -> None:
    with pytest.raises(SpecError) as spec_error:
        resolve("backtest", str(project / MA), overrides=["fsat=3"])
    assert spec_error.value.diagnostics[0].code == "N014"
    with pytest.raises(UsageError) as usage:
        resolve("backtest", str(project / MA), end="tomorrow-ish")
    assert usage.value.diagnostic.code == "U005"
