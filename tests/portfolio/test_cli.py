"""`peak backtest PORTFOLIO` through the command line: the document, the registry, refusals."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import pandas as pd

from peakdsl.portfolio.doc import PortfolioDoc

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "schemas" / "portfolio.schema.json"
MODERATE = "specs/portfolios/multi_style_moderate.peak"


def peak(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_committed_schema_matches_the_model() -> None:
    assert json.loads(SCHEMA.read_text()) == PortfolioDoc.model_json_schema(), (
        "regenerate: python -c 'import json; from peakdsl.portfolio.doc import PortfolioDoc; "
        "print(json.dumps(PortfolioDoc.model_json_schema(), indent=2, sort_keys=True))' "
        "> docs/schemas/portfolio.schema.json")


def test_json_validates_is_deterministic_and_is_recorded(project: Path) -> None:
    first = peak("backtest", MODERATE, "--json", cwd=project)
    second = peak("backtest", MODERATE, "--json", "--no-record", cwd=project)
    assert first.returncode == 0, first.stderr
    doc, again = json.loads(first.stdout), json.loads(second.stdout)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    assert doc["run_id"] and again["run_id"] is None
    assert {**doc, "run_id": None} == again
    assert [c["label"] for c in doc["components"]] == [
        "rsi_reversion_btc_moderate", "ma_trend_btc_moderate", "trend_following_eth_moderate"]
    assert [c["weight"] for c in doc["components"]] == [0.25, 0.25, 0.5]
    assert doc["components"][1]["params"]["fast"] == 10.0  # `with { fast = 10 }`
    assert doc["risk"]["spec"] == "live_moderate" and doc["rebalances"] > 0
    total = sum(c["contribution_return"] for c in doc["components"])
    assert abs(total - doc["metrics"]["total_return"]) < 1e-12
    with sqlite3.connect(project / ".peak" / "registry.sqlite") as db:
        kind, stored = db.execute("SELECT kind, inputs FROM runs WHERE id = ?",
                                  (doc["run_id"],)).fetchone()
    inputs = json.loads(stored)
    assert kind == "portfolio"
    for c in doc["components"]:
        assert inputs[f"component:{c['label']}"] == c["artifact_sha256"]
        assert inputs[f"data:{c['label']}"] == c["data_fingerprint"]
    assert inputs["artifact"] == doc["artifact_sha256"] and "risk" in inputs


def test_text_summary_and_outputs(project: Path) -> None:
    run = peak("backtest", MODERATE, "--no-record", "--trades", "t.csv", "--risk",
               "live_conservative", cwd=project)
    assert run.returncode == 0, run.stderr
    assert "components" in run.stdout and "risk spec live_conservative" in run.stdout
    trades = pd.read_csv(project / "t.csv")
    assert set(trades["component"]) == {"rsi_reversion_btc_moderate", "ma_trend_btc_moderate",
                                        "trend_following_eth_moderate"}
    assert trades["exit_time"].is_monotonic_increasing


def test_options_that_do_not_apply_are_usage_errors(project: Path) -> None:
    (project / "x.csv").write_text("timestamp,open,high,low,close,volume\n")
    for extra in (["--data", "x.csv"], ["--set", "fast=10"]):
        run = peak("backtest", MODERATE, *extra, cwd=project)
        assert run.returncode == 2 and "U005" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


def test_a_risk_spec_in_another_currency_is_refused(project: Path) -> None:
    (project / "specs" / "risk" / "usd_limits.peak").write_text(
        (project / "specs" / "risk" / "live_moderate.peak").read_text()
        .replace("live_moderate", "usd_limits").replace("1000 EUR", "1000 USDT"))
    run = peak("backtest", MODERATE, "--risk", "usd_limits", cwd=project)
    assert run.returncode == 2 and "U005" in run.stderr and "EUR" in run.stderr
