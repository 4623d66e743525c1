"""One spelling for machine output: every command that has some takes `--json` and prints one
valid JSON document on stdout; `--format json`, where a command had it, prints the same bytes.

The commands run in-process (CliRunner keeps stdout and stderr apart) in one scratch project,
in the order a user would: check and compile the library, backtest twice (two recorded runs),
sweep, walk forward, then the run registry and the data cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from peakdsl.cli import app

ROOT = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
CSV = ("time,open,high,low,close,volume\n"
       "2024-01-01T00:00:00Z,100,101,99,100.5,12\n"
       "2024-01-01T01:00:00Z,100.5,102,100,101,10\n"
       "2024-01-01T01:00:00Z,100.5,102,100,101.5,10\n"
       "2024-01-01T02:00:00Z,101,103,100.5,102,11\n")


def json_commands() -> set[str]:
    """Every command (``runs list`` for groups) that has a ``--json`` option."""
    found: set[str] = set()

    def walk(command: Any, path: str) -> None:
        if hasattr(command, "commands"):  # a group (typer may vendor its own click)
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}".strip())
        elif any("--json" in getattr(p, "opts", ()) for p in command.params):
            found.add(path)

    walk(get_command(app), "")
    return found


def test_every_command_with_machine_output_takes_json() -> None:
    """All but `peak graph`, whose machine formats are dot and mermaid (--format)."""
    assert json_commands() == {
        "check", "fmt", "compile", "backtest", "sweep", "walkforward", "robustness", "diff",
        "init", "runs list", "runs show", "runs compare", "runs rerun",
        "promote create", "promote approve", "promote status", "promote check",
        "data import", "data fetch", "data synth", "data list", "data check",
        "live run", "live arm", "live kill", "live reset", "live status",
        "live health", "live orders", "live portfolio", "live verify", "live note",
        "report live", "drill list", "drill all", "drill stale_feed", "drill risk_violation",
        "drill pnl_divergence", "drill sink_down", "drill exchange_outage",
        "drill kill_switch"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("json")
    for folder in ("specs", "compiled"):
        shutil.copytree(ROOT / folder, root / folder)
    (root / "c.csv").write_text(CSV)
    return root


def run(root: Path, monkeypatch: pytest.MonkeyPatch, *argv: str,
        code: int = 0) -> tuple[dict[str, Any], str]:
    """Run ``peak argv`` in ``root``; its stdout parsed (it must be one JSON document)."""
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout), result.stdout


def test_spec_commands(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc, out = run(scratch, monkeypatch, "check", MA, "--json")
    assert doc == {"diagnostics": [], "errors": 0, "warnings": 0}
    assert run(scratch, monkeypatch, "check", MA, "--format", "json")[1] == out
    doc, out = run(scratch, monkeypatch, "fmt", "specs", "--check", "--json")
    assert doc["changed"] == [] and doc["check"] is True and doc["errors"] == 0
    assert doc["files"] == len(list((scratch / "specs").rglob("*.peak")))
    assert run(scratch, monkeypatch, "fmt", "specs", "--check", "--format", "json")[1] == out
    doc, out = run(scratch, monkeypatch, "compile", "--check", "--json")
    assert (doc["stale"], doc["changed"], doc["out_dir"]) == (False, [], "compiled/")
    assert doc["artifacts"] == len(list((scratch / "compiled").glob("*/*.json"))) - len(
        list((scratch / "compiled" / "schema").glob("*.json")))
    assert run(scratch, monkeypatch, "compile", "--check", "--format", "json")[1] == out


def test_spec_errors_are_the_json_document(scratch: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (scratch / "bad").mkdir(exist_ok=True)
    (scratch / "bad" / "b.peak").write_text("strategy b {\n  market BTC/EUR\n  frob\n}\n")
    doc = run(scratch, monkeypatch, "check", "bad", "--json", code=1)[0]
    assert doc["errors"] >= 1 and doc["diagnostics"][0]["path"] == "bad/b.peak"
    assert run(scratch, monkeypatch, "fmt", "bad", "--json", code=1)[0]["errors"] >= 1


def test_runs_and_research(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = run(scratch, monkeypatch, "backtest", MA, "--json")
    second, _ = run(scratch, monkeypatch, "backtest", MA, "--set", "fast=10", "--json")
    assert first["params"] == {"fast": 20, "slow": 50} and second["params"]["fast"] == 10
    listed, _ = run(scratch, monkeypatch, "runs", "list", "--json")
    assert [r["id"] for r in listed["runs"]] == [second["run_id"], first["run_id"]]
    shown, _ = run(scratch, monkeypatch, "runs", "show", first["run_id"], "--json")
    assert shown["id"] == first["run_id"] and shown["params"] == {"fast": 20, "slow": 50}
    compared, _ = run(scratch, monkeypatch, "runs", "compare", first["run_id"],
                      second["run_id"], "--json")
    assert compared["params"] == [{"name": "fast", "a": 20, "b": 10}]
    sweep, _ = run(scratch, monkeypatch, "sweep", MA, "--set", "fast=10", "--set",
                   "slow=30..50:10", "--no-record", "--json")
    assert sweep["space"]["combinations"] == 3 and sweep["report"] is None
    wf, _ = run(scratch, monkeypatch, "walkforward", MA, "--train", "1500", "--test", "500",
                "--set", "fast=10", "--set", "slow=60", "--json")
    assert len(wf["windows"]) == 7


def test_data_commands(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synth, out = run(scratch, monkeypatch, "data", "synth", "ETH/EUR", "1h", "--bars", "300",
                     "--seed", "3", "--json")
    assert (synth["bars"], synth["seed"], synth["path"]) == (
        300, 3, ".peak/data/ETH-EUR/1h.parquet")
    again = run(scratch, monkeypatch, "data", "synth", "ETH/EUR", "1h", "--bars", "300",
                "--seed", "3", "--format", "json")[1]
    assert again == out  # deterministic, and --format json is --json
    imported, out = run(scratch, monkeypatch, "data", "import", "c.csv", "--market",
                        "BTC/EUR", "--replace", "--json")
    assert (imported["bars"], imported["duplicates"], imported["dataset_bars"]) == (3, 1, 3)
    assert [d["code"] for d in imported["diagnostics"]] == ["D008"]
    assert run(scratch, monkeypatch, "data", "import", "c.csv", "--market", "BTC/EUR",
               "--replace", "--format", "json")[1] == out
    listed, out = run(scratch, monkeypatch, "data", "list", "--json")
    assert [(d["market"], d["bars"]) for d in listed["datasets"]] == [("BTC/EUR", 3),
                                                                      ("ETH/EUR", 300)]
    assert run(scratch, monkeypatch, "data", "list", "--format", "json")[1] == out
    checked, out = run(scratch, monkeypatch, "data", "check", "ETH/EUR", "--json")
    assert checked["datasets"][0]["coverage"] == 1.0 and checked["errors"] == 0
    assert run(scratch, monkeypatch, "data", "check", "ETH/EUR", "--format", "json")[1] == out


def test_data_fetch(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetch itself is tested against a loopback exchange (tests/data/test_data_fetch.py);
    here its report is rendered as JSON."""
    import pandas as pd

    import peakdsl.data.fetch as fetch

    def fake(exchange: str, market: str, timeframe: str, since: pd.Timestamp,
             until: pd.Timestamp | None, **_: Any) -> fetch.FetchReport:
        stop = pd.Timestamp("2024-01-02T00:00Z")
        return fetch.FetchReport(exchange, market, timeframe, since, stop,
                                 scratch / ".peak/data/BTC-USDT/1h.parquet",
                                 missing=[(0, 1)], requests=1, new_bars=24, bars=24,
                                 first=since, last=stop - pd.Timedelta(hours=1),
                                 complete=True)

    monkeypatch.setattr(fetch, "fetch_ohlcv", fake)
    doc, out = run(scratch, monkeypatch, "data", "fetch", "binance", "BTC/USDT", "1h",
                   "--since", "2024-01-01", "--json")
    assert doc == {"diagnostics": [], "errors": 0, "warnings": 0, "exchange": "binance",
                   "market": "BTC/USDT", "timeframe": "1h", "since": "2024-01-01T00:00Z",
                   "until": "2024-01-02T00:00Z", "new_bars": 24, "requests": 1, "retries": 0,
                   "path": ".peak/data/BTC-USDT/1h.parquet", "bars": 24,
                   "from": "2024-01-01T00:00Z", "to": "2024-01-01T23:00Z", "complete": True,
                   "notes": []}
    assert run(scratch, monkeypatch, "data", "fetch", "binance", "BTC/USDT", "1h", "--since",
               "2024-01-01", "--format", "json")[1] == out
