"""`peak backtest` and `peakdsl.api.backtest` end to end: data selection, overrides,
JSON document and its schema, outputs, registry, and every library spec on the demo data."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from peakdsl import api
from peakdsl.backtest import BacktestDoc, MetricsDoc
from peakdsl.metrics import BACKTEST_METRICS, INT_METRICS

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "docs" / "schemas" / "backtest.schema.json"
STRATEGIES = sorted((ROOT / "specs" / "strategies").glob("*.peak"))
MA = "specs/strategies/ma_crossover.peak"



def peak(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_committed_json_schema_matches_the_model() -> None:
    generated = BacktestDoc.model_json_schema()
    assert json.loads(SCHEMA.read_text()) == generated, (
        "regenerate: python -c 'import json; from peakdsl.backtest import BacktestDoc; "
        "print(json.dumps(BacktestDoc.model_json_schema(), indent=2, sort_keys=True))' "
        "> docs/schemas/backtest.schema.json")


def test_metrics_document_is_generated_from_the_catalogue() -> None:
    """One field per catalogue backtest metric, in its order, ints for the counts: a metric
    added to the catalogue is in `--json` and its schema without another copy."""
    schema = MetricsDoc.model_json_schema()
    assert tuple(MetricsDoc.model_fields) == BACKTEST_METRICS
    assert schema["required"] == list(BACKTEST_METRICS)
    for name, prop in schema["properties"].items():
        kinds = {option["type"] for option in prop["anyOf"]}
        assert kinds == {"integer" if name in INT_METRICS else "number", "null"}, name
    assert schema["additionalProperties"] is False
    with pytest.raises(ValueError, match="extra"):
        MetricsDoc.model_validate({**dict.fromkeys(BACKTEST_METRICS), "luck": 1.0})


def test_json_output_validates_and_is_deterministic(project: Path) -> None:
    first = peak("backtest", MA, "--json", cwd=project)
    second = peak("backtest", MA, "--json", cwd=project)
    assert first.returncode == 0, first.stderr
    doc, again = json.loads(first.stdout), json.loads(second.stdout)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    assert doc["run_id"] and doc["run_id"] != again["run_id"]
    doc.pop("run_id"), again.pop("run_id")
    assert doc == again
    assert doc["data"]["synthetic"] is True
    assert doc["data"]["source"].startswith("synthetic demo")
    assert any("synthetic demo" in w for w in doc["warnings"])
    assert doc["metrics"]["trades"] > 0
    assert set(doc["metrics"]) >= {"sharpe", "max_drawdown", "profit_factor", "trades",
                                   "orders_reduced"}
    assert doc["final_equity"] == pytest.approx(10_000 * (1 + doc["metrics"]["total_return"]))
    assert doc["open_trade"] is None  # `end_of_data close` (the default) closes everything
    assert doc["settings"]["end_of_data"] == "close" and doc["settings"]["leverage"] == 1


def test_end_of_data_mark_in_the_json_and_the_trades_csv(project: Path) -> None:
    """A position left open is valued at the last close: `final_equity` includes it, the
    JSON has it as `open_trade` and the trades CSV as a last row with exit reason `open`."""
    spec = project / "specs" / "strategies" / "hold.peak"
    spec.write_text("strategy hold {\n market BTC/USDT\n timeframe 1h\n"
                    " entry long when close > 0\n size 100% of equity\n"
                    " execution { end_of_data mark fees 10bps slippage 0bps }\n}\n")
    run = peak("backtest", str(spec), "--json", "--no-record", "--trades", "t.csv", cwd=project)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    assert doc["metrics"]["trades"] == 0 and doc["metrics"]["exposure"] > 0.99
    opened = doc["open_trade"]
    assert opened["side"] == "long" and opened["reduced"] is False
    # bought with all 10,000 (fee included) at the second bar's open, marked at the last close
    assert opened["qty"] * opened["entry_price"] * 1.001 == pytest.approx(10_000)
    assert doc["final_equity"] == pytest.approx(10_000 + opened["unrealised_pnl"])
    trades = pd.read_csv(project / "t.csv")
    assert trades["exit_reason"].tolist() == ["open"]
    assert trades["reduced"].tolist() == [False]


def test_text_output_says_where_the_data_came_from(project: Path) -> None:
    run = peak("backtest", MA, cwd=project)
    assert run.returncode == 0, run.stderr
    assert "data source: synthetic demo" in run.stdout
    assert "Sharpe" in run.stdout and "run id:" in run.stdout


def test_overrides_change_the_run_and_bad_ones_are_diagnostics(project: Path) -> None:
    base = json.loads(peak("backtest", MA, "--json", cwd=project).stdout)
    fast = json.loads(peak("backtest", MA, "--json", "--set", "fast=10", "--set", "slow=30",
                           cwd=project).stdout)
    assert fast["params"] == {"fast": 10.0, "slow": 30.0}
    assert fast["metrics"] != base["metrics"]
    bad = peak("backtest", MA, "--set", "fats=10", "--set", "slow=35", "--set", "x", cwd=project)
    assert bad.returncode == 1
    for code in ("N014", "T010", "U005"):
        assert code in bad.stderr
    assert "did you mean `fast`" in bad.stderr and "Traceback" not in bad.stderr
    violated = peak("backtest", MA, "--set", "fast=50", "--set", "slow=50", cwd=project)
    assert violated.returncode == 1 and "require" in violated.stderr


def test_fee_override_and_dates(project: Path) -> None:
    cheap = json.loads(peak("backtest", MA, "--json", "--fee-bps", "0", cwd=project).stdout)
    dear = json.loads(peak("backtest", MA, "--json", "--fee-bps", "50", cwd=project).stdout)
    assert cheap["metrics"]["fees_paid"] == 0
    assert dear["metrics"]["total_return"] < cheap["metrics"]["total_return"]
    part = json.loads(peak("backtest", MA, "--json", "--from", "2025-09-01", "--to",
                           "2025-10-01", cwd=project).stdout)
    assert part["data"]["start"].startswith("2025-09-01")
    assert part["data"]["end"].startswith("2025-09-30T23")
    assert part["data"]["bars"] == 30 * 24
    bad = peak("backtest", MA, "--from", "someday", cwd=project)
    assert bad.returncode == 2 and "U005" in bad.stderr


def test_data_file_overrides_the_demo(project: Path) -> None:
    index = pd.date_range("2024-01-01", periods=600, freq="h", tz="UTC")
    close = 100 + np.cumsum(np.sin(np.arange(600) / 9.0))
    rows = [(t.isoformat(), c, c + 1, c - 1, c, 10.0) for t, c in zip(index, close, strict=True)]
    path = project / "candles.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        writer.writerows(rows)
    doc = json.loads(peak("backtest", MA, "--json", "--data", "candles.csv", cwd=project).stdout)
    assert doc["data"]["synthetic"] is False and doc["data"]["bars"] == 600
    assert "candles.csv" in doc["data"]["source"]
    assert not any("synthetic" in w for w in doc["warnings"])
    path.write_text("timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,nan,1\n")
    bad = peak("backtest", MA, "--data", "candles.csv", cwd=project)
    assert bad.returncode == 1 and "D004" in bad.stderr


def test_data_warnings_reach_the_json_and_the_registry_once_in_text(project: Path) -> None:
    """--data's D008/D009 went to stderr only: the JSON's warnings were [] and the recorded
    run had none. Now both carry them; the text output still shows each once (stderr)."""
    index = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    rows = [f"{t.isoformat()},100,101,99,100,1" for i, t in enumerate(index) if i != 100]
    rows.insert(50, rows[49])  # one duplicate row
    (project / "gappy.csv").write_text("time,open,high,low,close,volume\n"
                                       + "\n".join(rows) + "\n")
    run = peak("backtest", MA, "--data", "gappy.csv", "--json", cwd=project)
    doc = json.loads(run.stdout)
    assert [w.split(":")[0] for w in doc["warnings"][:2]] == ["D008", "D009"]
    assert doc["warnings"][1] == ("D009: gap: 1 missing bar between 2024-01-05T03:00Z and "
                                  "2024-01-05T05:00Z (2h apart)")
    assert run.stderr.count("warning[D009]") == 1
    record = json.loads(peak("runs", "show", doc["run_id"], "--json", cwd=project).stdout)
    assert record["warnings"][:2] == doc["warnings"][:2]
    text = peak("backtest", MA, "--data", "gappy.csv", "--no-record", cwd=project)
    assert text.stderr.count("warning[D009]") == 1 and "D009" not in text.stdout
    assert text.stderr.count("warning[D008]") == 1 and "D008" not in text.stdout


def test_a_run_shorter_than_the_warm_up_names_the_real_warm_up(project: Path) -> None:
    """Evaluation caps the warm-up at the data's length; the note gave the cap (2 bars)."""
    doc = json.loads(peak("backtest", MA, "--from", "2025-09-01", "--to", "2025-09-01T02:00",
                          "--json", "--no-record", cwd=project).stdout)
    assert doc["data"]["bars"] == 2 and doc["metrics"]["trades"] == 0
    assert ("no trades: the warm-up (50 bars) is longer than the data (2 bars); use more data "
            "or shorter windows") in doc["warnings"]


def test_outputs_and_registry(project: Path) -> None:
    run = peak("backtest", MA, "--json", "--trades", "t.csv", "--report", "r.md", cwd=project)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    trades = pd.read_csv(project / "t.csv")
    assert len(trades) == doc["metrics"]["trades"]
    assert set(trades["exit_reason"]) <= {"signal", "stop_loss", "take_profit", "trailing_stop",
                                          "end_of_data"}
    assert "reduced" in trades.columns
    assert doc["artifact_sha256"] in (project / "r.md").read_text()
    shown = peak("runs", "show", doc["run_id"], "--json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["artifact_sha256"] == doc["artifact_sha256"]
    assert record["data_fingerprint"] == doc["data"]["fingerprint"]
    bad = peak("backtest", MA, "--report", "r.pdf", cwd=project)
    assert bad.returncode == 2 and "U005" in bad.stderr


@pytest.mark.parametrize("path", STRATEGIES, ids=[p.stem for p in STRATEGIES])
def test_every_library_strategy_runs_on_its_demo_market(path: Path, project: Path) -> None:
    spec = project / "specs" / "strategies" / path.name  # a project with nothing cached
    run = api.backtest(str(spec), root=project, record=False)
    result = run.result
    assert result.candles.synthetic
    assert result.market == result.candles.market
    assert len(result.sim.equity) == result.candles.bars
    assert np.isfinite(result.sim.equity).all()
    assert result.metrics["trades"] == result.sim.trade_count
    assert not result.sim.position[: result.signals.warmup].any()
