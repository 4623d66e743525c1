"""`peak robustness`: the study's pieces on the demo data, its determinism (in process and
on Dask), its document and record, and its refusals."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from peakdsl.robustness.doc import RobustnessDoc
from peakdsl.robustness.run import run_study
from peakdsl.robustness.study import neighbours
from peakdsl.robustness.subject import subject_plan

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "schemas" / "robustness.schema.json"
MA = "specs/strategies/ma_crossover.peak"


def peak(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_committed_schema_matches_the_model() -> None:
    assert json.loads(SCHEMA.read_text()) == RobustnessDoc.model_json_schema(), (
        "regenerate: python -c 'import json; from peakdsl.robustness.doc import "
        "RobustnessDoc; print(json.dumps(RobustnessDoc.model_json_schema(), indent=2, "
        "sort_keys=True))' > docs/schemas/robustness.schema.json")


def test_neighbours_are_one_step_away_in_range_and_within_requires(project: Path) -> None:
    plan, _ = subject_plan(str(project / MA), root=project)
    component, = plan.components
    # fast 20 in 5..50 step 5, slow 50 in 20..200 step 10, require fast < slow
    assert neighbours(component) == [("fast", 15.0), ("fast", 25.0), ("slow", 40.0),
                                     ("slow", 60.0)]
    tight = component.__class__(**{**component.__dict__, "params": {"fast": 25.0,
                                                                      "slow": 30.0}})
    assert ("fast", 30.0) not in neighbours(tight) and ("slow", 20.0) not in neighbours(tight)


def test_a_strategy_study(project: Path) -> None:
    run = run_study(str(project / MA), {"runs": 300, "stress": ("crash", "fee_x2")},
                    root=project, record=False)
    doc, result = run.doc, run.result
    assert doc.kind == "strategy" and doc.settings.runs == 300
    assert set(doc.monte_carlo) == {"reshuffle", "bootstrap", "skip", "block"}
    base = result.base.metrics
    assert doc.base.total_return == base["total_return"]  # type: ignore[attr-defined]
    # a reshuffle keeps the product of the trade returns: every run ends where the base did
    reshuffled = result.distributions["reshuffle"].total_return
    np.testing.assert_allclose(reshuffled, base["total_return"], rtol=1e-9)
    assert [v.name for v in doc.stress] == ["crash", "fee_x2"]
    fee_x2 = doc.stress[1]
    assert fee_x2.total_return is not None and fee_x2.total_return < base["total_return"]
    assert len(doc.jitter) == 4
    metrics = doc.metrics.model_dump()  # type: ignore[attr-defined]
    assert metrics["mc_p05_return"] <= metrics["mc_p50_return"] <= metrics["mc_p95_return"]
    assert metrics["stress_worst_return"] == min(v.total_return for v in doc.stress)


def test_json_is_deterministic_identical_on_dask_and_recorded(project: Path) -> None:
    args = ("robustness", MA, "--runs", "1500", "--stress", "crash", "--json")
    first = peak(*args, cwd=project)
    again = peak(*args, "--workers", "2", "--no-record", cwd=project)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    doc, other = json.loads(first.stdout), json.loads(again.stdout)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    assert {**doc, "run_id": None} == other
    with sqlite3.connect(project / ".peak" / "registry.sqlite") as db:
        kind, metrics = db.execute("SELECT kind, metrics FROM runs WHERE id = ?",
                                   (doc["run_id"],)).fetchone()
    assert kind == "robustness"
    assert json.loads(metrics)["mc_p05_return"] == doc["metrics"]["mc_p05_return"]


def test_a_portfolio_study_uses_its_block(project: Path) -> None:
    run = run_study(str(project / "specs/portfolios/multi_style_moderate.peak"),
                    {"runs": 200, "jitter": False}, root=project, record=False)
    assert run.doc.kind == "portfolio" and run.doc.settings.seed == 7
    assert [v.name for v in run.doc.stress] == ["crash", "vol_spike", "fee_x2"]
    assert len(run.doc.data) == 3 and not run.doc.jitter


@pytest.mark.parametrize(("args", "code"), [
    (["--runs", "0"], "U005"), (["--skip", "0.95"], "U005"), (["--stress", "meteor"], "U005"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "U005"),
])
def test_bad_options_are_usage_errors(project: Path, args: list[str], code: str) -> None:
    run = peak("robustness", MA, *args, cwd=project)
    assert run.returncode == 2 and code in run.stderr and "Traceback" not in run.stderr
    assert not (project / ".peak").exists()


def test_a_risk_spec_is_not_a_subject(project: Path) -> None:
    run = peak("robustness", "specs/risk/live_moderate.peak", cwd=project)
    assert run.returncode == 2 and "U003" in run.stderr
