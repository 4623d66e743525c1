"""A walk-forward in the run registry: one ``walkforward`` run, its windows as child runs,
mirroring ``peak walkforward --json``; recorded by the command after its report, skipped with
``--no-record``, refused up front when the registry cannot be written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from peakdsl import api
from peakdsl.compile.models import StrategyArtifact
from peakdsl.data.select import demo_market
from peakdsl.registry.store import Registry
from peakdsl.research.space import build_space
from peakdsl.research.walkforward import (
    WalkForwardResult,
    parse_length,
    run_walkforward,
    walkforward_doc,
)
from peakdsl.research.wf_record import walkforward_records

ROOT = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
SETS = ("fast=10..20:10", "slow=50..100:50")
PROMOTION = ("oos_sharpe", "oos_total_return", "oos_max_drawdown", "wf_efficiency")


@pytest.fixture(scope="module")
def result() -> WalkForwardResult:
    artifact = api.compile_spec(str(ROOT / MA), ROOT)
    assert isinstance(artifact, StrategyArtifact)
    space, problems = build_space(artifact.config, SETS)
    assert space is not None, problems
    return run_walkforward(artifact, demo_market("BTC/USDT", "1h"), space,
                           parse_length("1000", "--train"), parse_length("500", "--test"),
                           artifact_sha256="e" * 64)


def test_the_records_mirror_the_json_document(result: WalkForwardResult,
                                              tmp_path: Path) -> None:
    doc = walkforward_doc(result)
    run, outcome, children = walkforward_records(result, {"report": tmp_path / "wf.html"})
    assert (run.kind, run.spec, run.seed, run.parent_id) == ("walkforward", "ma_crossover",
                                                             None, None)
    assert run.inputs == {"artifact": "e" * 64, "data": result.candles.fingerprint}
    assert run.settings == doc["config"] and run.settings["combinations"] == 4
    assert (run.data.bars, run.data.market, run.data.timeframe) == (5000, "BTC/USDT", "1h")
    assert {k: outcome.metrics[k] for k in PROMOTION} == doc["promotion_metrics"]
    assert outcome.metrics["sharpe"] == doc["out_of_sample"]["metrics"]["sharpe"]
    assert outcome.trades == doc["out_of_sample"]["metrics"]["trades"]
    assert outcome.summary is not None
    assert (outcome.summary["windows"], outcome.summary["oos_bars"]) == (8, 4000)
    assert outcome.summary["stability"] == doc["stability"]
    assert outcome.warnings == result.warnings
    assert len(children) == 8
    for (child, child_outcome), w, entry in zip(children, result.windows, doc["windows"],
                                                strict=True):
        assert (child.kind, child.params) == ("walkforward_window", w.params)
        assert child.settings["test"] == entry["test"]
        assert child.data.bars == 500 and child.data.start == entry["test"]["first"]
        assert child_outcome.metrics == w.oos_metrics
        assert child_outcome.summary is not None
        assert child_outcome.summary["in_sample"] == entry["in_sample"]


def test_recorded_and_read_back(result: WalkForwardResult, tmp_path: Path) -> None:
    with Registry(tmp_path) as reg:
        run_id = reg.record(*walkforward_records(result, {"report": tmp_path / "r" / "wf.html"}))
        run = reg.get_run(run_id)
        assert (run.kind, run.children, run.artifacts) == ("walkforward", 8,
                                                           {"report": "r/wf.html"})
        assert run.metrics["oos_sharpe"] == result.promotion_metrics["oos_sharpe"]
        windows = reg.child_runs(run_id)
        assert [w.data_start for w in windows] == [
            w.window.test_first.isoformat() for w in result.windows]
        assert [w.params for w in windows] == [w.params for w in result.windows]
        assert reg.trial_count("ma_crossover") == 0


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wfrec")
    shutil.copytree(ROOT / "specs", root / "specs")
    return root


def peak(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return run


def runs(cwd: Path, *args: str) -> list[dict[str, Any]]:
    proc = peak(cwd, "runs", "list", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout)["runs"])


def test_peak_walkforward_records_one_run_and_its_windows(project: Path) -> None:
    proc = peak(project, "walkforward", MA, "--train", "1000", "--test", "500", "--set", SETS[0],
                "--set", SETS[1], "--json", "--report", "out/wf.html")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    [run] = runs(project, "--kind", "walkforward")
    assert (run["kind"], run["children"], run["artifacts"]) == ("walkforward", 8,
                                                                {"report": "out/wf.html"})
    assert run["metrics"]["sharpe"] == doc["out_of_sample"]["metrics"]["sharpe"]
    assert run["settings"] == doc["config"]
    assert run["inputs"] == {"artifact": doc["artifact_sha256"],
                             "data": doc["data"]["fingerprint"]}
    windows = runs(project, "--parent", run["id"])
    assert [w["params"] for w in windows[::-1]] == [w["params"] for w in doc["windows"]]
    shown = peak(project, "runs", "show", run["id"])
    assert "walkforward of ma_crossover" in shown.stdout and "8 child runs" in shown.stdout
    text = peak(project, "walkforward", MA, "--train", "1000", "--test", "500")
    last = runs(project, "--kind", "walkforward", "--limit", "1")[0]
    assert f"run id: {last['id']}" in text.stdout and last["id"] != run["id"]


def test_no_record_leaves_no_registry(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    proc = peak(tmp_path, "walkforward", MA, "--train", "1000", "--test", "500", "--no-record")
    assert proc.returncode == 0, proc.stderr
    assert "run id" not in proc.stdout
    assert not (tmp_path / ".peak").exists()


def test_an_unusable_registry_is_refused_before_the_run(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    (tmp_path / ".peak").write_text("not a folder")
    proc = peak(tmp_path, "walkforward", MA, "--train", "1000", "--test", "500", "--report",
                "wf.html")
    assert proc.returncode == 2 and "error[U007]" in proc.stderr, proc.stderr
    assert not (tmp_path / "wf.html").exists()  # refused before it ran
