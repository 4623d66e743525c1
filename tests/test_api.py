"""The library API returns typed results: artifacts, backtest and sweep results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peakdsl import api
from peakdsl.backtest import BacktestResult
from peakdsl.compile.models import RiskArtifact, StrategyArtifact
from peakdsl.research.sweep import SweepResult
from peakdsl.research.walkforward import WalkForwardResult

ROOT = Path(__file__).resolve().parents[1]
MA = "specs/strategies/ma_crossover.peak"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api_project")
    shutil.copytree(ROOT / "specs", root / "specs")
    return root


def test_compile_spec_returns_the_artifact_model_of_the_spec_kind(project: Path) -> None:
    assert isinstance(api.compile_spec(str(project / MA), project), StrategyArtifact)
    risk = api.compile_spec(str(project / "specs/risk/live_moderate.peak"), project)
    assert isinstance(risk, RiskArtifact) and risk.config.max_open_positions == 3


def test_backtest_and_sweep_return_their_result_types(project: Path) -> None:
    run = api.backtest(str(project / MA), record=False, overrides=["fast=15"])
    assert isinstance(run.result, BacktestResult) and run.run_id is None
    assert run.result.params["fast"] == 15.0
    swept = api.sweep(str(project / MA), sets=["fast=10..20", "slow=50..60"], record=False,
                      capital=5_000.0)
    assert isinstance(swept, SweepResult) and swept.sweep_id is None
    assert len(swept.space) == 6 and set(swept.best_params) == {"fast", "slow"}


def test_walkforward_returns_its_result_type(project: Path) -> None:
    result = api.walkforward(str(project / MA), train="1500", test="500",
                             sets=["fast=10..20", "slow=50..60"], record=False)
    assert isinstance(result, WalkForwardResult) and result.run_id is None
    assert len(result.windows) >= 2
