"""`peak data …` end to end in a fresh interpreter: exit codes, output, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app


def peak(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "peakdsl.cli", "data", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=60)
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "specs").mkdir()
    return tmp_path


def test_synth_list_check(project: Path) -> None:
    empty = peak(project, "list")
    assert empty.returncode == 0 and "synthetic demo" in empty.stdout
    run = peak(project, "synth", "BTC/EUR", "1h", "--bars", "500", "--seed", "3")
    assert run.returncode == 0, run.stderr
    assert "500 bars of BTC/EUR 1h" in run.stdout
    first = (project / ".peak/data/BTC-EUR/1h.parquet").read_bytes()
    assert peak(project, "synth", "BTC/EUR", "1h", "--bars", "500", "--seed", "3").returncode == 0
    assert (project / ".peak/data/BTC-EUR/1h.parquet").read_bytes() == first
    listed = peak(project, "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == ["market", "timeframe", "bars", "from",
                                                     "to", "source", "status"]
    assert listed.stdout.splitlines()[1].endswith("synthetic (seed 3)  ok")
    assert "BTC/EUR" in listed.stdout and "synthetic (seed 3)" in listed.stdout
    doc = json.loads(peak(project, "list", "--format", "json").stdout)
    assert doc["datasets"][0]["bars"] == 500 and doc["datasets"][0]["synthetic"] is True
    checked = peak(project, "check")
    assert checked.returncode == 0 and "coverage   100.00 %" in checked.stdout
    one = json.loads(peak(project, "check", "BTC/EUR", "1h", "--format", "json").stdout)
    assert one["datasets"][0]["gaps"] == 0 and one["errors"] == 0


def test_import_errors_exit_1_and_write_nothing(project: Path) -> None:
    csv = project / "bad.csv"
    csv.write_text("time,open,high,low,close,volume\n"
                   "2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n"
                   "2024-01-01T01:00:00Z,1,2,3,1.5,1\n")
    run = peak(project, "import", "bad.csv", "--market", "BTC/EUR", "--timeframe", "1h")
    assert run.returncode == 1
    assert "bad.csv:3:1: error[D006]" in run.stderr and "found 1 error" in run.stderr
    assert not (project / ".peak").exists()
    as_json = peak(project, "import", "bad.csv", "--market", "BTC/EUR", "--format", "json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["diagnostics"][0]["span"]["line"] == 3


def test_import_with_warnings_exits_0(project: Path) -> None:
    csv = project / "ok.csv"
    csv.write_text("Date,Open,High,Low,Close,Volume\n"
                   "2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n"
                   "2024-01-01T00:00:00Z,1,2,0.5,1.6,1\n"
                   "2024-01-01T01:00:00Z,1,2,0.5,1.6,1\n"
                   "2024-01-01T04:00:00Z,1,2,0.5,1.5,1\n")
    run = peak(project, "import", "ok.csv", "--market", "ETH/EUR")
    assert run.returncode == 0, run.stderr
    assert "warning[D008]" in run.stderr and "warning[D009]" in run.stderr
    assert "imported 3 bars of ETH/EUR 1h" in run.stdout
    check = peak(project, "check", "ETH/EUR", "1h")
    assert check.returncode == 0 and "warning[D009]" in check.stderr
    # a synthetic run must not silently replace real data
    refused = peak(project, "synth", "ETH/EUR", "1h")
    assert refused.returncode == 2 and "error[U005]" in refused.stderr


def test_usage_errors_exit_2(project: Path) -> None:
    assert peak(project, "import", "nope.csv", "--market", "BTC/EUR").returncode == 2
    assert peak(project, "synth", "BTC/EUR", "7h").returncode == 2
    assert peak(project, "synth", "BTCEUR", "1h").returncode == 2
    assert peak(project, "check", "BTC/EUR", "1h").returncode == 2
    run = peak(project, "fetch", "binance", "BTC/USDT", "1h", "--since", "yesterday-ish")
    assert run.returncode == 2 and "error[U005]" in run.stderr


def test_unknown_exchange_exits_1(project: Path) -> None:
    run = peak(project, "fetch", "binanse", "BTC/USDT", "1h", "--since", "2024-01-01")
    assert run.returncode == 1 and "error[D012]" in run.stderr and "binance" in run.stderr


# Bad input found by auditing every `peak data` option (issue 7): each used to end in I001 or
# be accepted. (argv after `peak data`, exit code, diagnostic code)
BAD: list[tuple[list[str], int, str]] = [
    (["import", "c.csv", "--market", "BTC/EUR", "--time-format", "%Q"], 2, "U005"),
    (["import", "c.csv", "--market", "BTC/EUR", "--time-format", "%"], 2, "U005"),
    (["import", "c.csv", "--market", "BTC/EUR", "--time-format", "millis"], 2, "U005"),
    (["import", "days.csv", "--market", "BTC/EUR", "--time-format", "%d", "--timeframe",
      "1h"], 1, "D003"),
    (["import", "c.csv", "--market", "BTC/EUR", "--timeframe", "7m"], 2, "U005"),
    (["import", "c.csv", "--market", "BTCEUR"], 2, "U005"),
    (["import", "c.csv", "--market", "BTC/EUR", "--column", "close"], 2, "U005"),
    (["import", ".", "--market", "BTC/EUR"], 2, "U007"),
    (["synth", "BTC/EUR", "1h", "--end", "1000-01-01"], 2, "U005"),
    (["synth", "BTC/EUR", "1h", "--end", "2300-01-01"], 2, "U005"),
    (["synth", "BTC/EUR", "1h", "--end", "1970-01-02", "--bars", "100"], 2, "U005"),
    (["synth", "BTC/EUR", "1w", "--bars", "5000000"], 2, "U005"),
    (["synth", "BTC/EUR", "1h", "--end", "someday"], 2, "U005"),
    (["synth", "BTC/EUR", "1h", "--bars", "0"], 2, "U005"),
    (["synth", "BTC/EUR", "1h", "--seed", "-1"], 2, "U005"),
    (["fetch", "binance", "BTC/USDT", "1h", "--since", "1969-12-31"], 2, "U005"),
    (["fetch", "binance", "BTC/USDT", "1h", "--since", "2024-01-01", "--until",
      "2300-01-01"], 2, "U005"),
    (["fetch", "binance", "BTC/USDT", "7m", "--since", "2024-01-01"], 2, "U005"),
    (["fetch", "binance", "BTC-USDT", "1h", "--since", "2024-01-01"], 2, "U005"),
    (["check", "BTC/EUR", "7m"], 2, "U005"),
]


@pytest.mark.parametrize(("argv", "exit_code", "code"), BAD,
                         ids=[" ".join(a[:1] + a[2:] if a[0] == "import" else a)
                              for a, _, _ in BAD])
def test_bad_data_input_is_a_coded_diagnostic(project: Path, monkeypatch: pytest.MonkeyPatch,
                                              argv: list[str], exit_code: int,
                                              code: str) -> None:
    (project / "c.csv").write_text("time,open,high,low,close,volume\n"
                                   "2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n")
    (project / "days.csv").write_text("time,open,high,low,close,volume\n05,1,2,0.5,1.5,1\n")
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["data", *argv])
    assert result.exit_code == exit_code, result.output
    assert f"[{code}]" in result.output, result.output
    assert "Traceback" not in result.output and "I001" not in result.output
    assert not (project / ".peak").exists()  # nothing written


def test_backtest_on_a_data_file_shows_the_import_warnings(project: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """`peak backtest --data` reports duplicates and gaps like `peak data import` (issue 7),
    shortened: three per code, then a count; with --json they go to stderr, not into the
    JSON document."""
    import pandas as pd

    from peakdsl.data.synth import synth_market

    frame = synth_market("BTC/USDT", "1h", 600, 1).frame.reset_index()
    rows = frame.drop(index=list(range(100, 600, 100))).reset_index(drop=True)  # 5 gaps
    pd.concat([rows, rows.iloc[[2]]], ignore_index=True).to_csv(project / "g.csv",
                                                                 index=False)
    spec = Path(__file__).resolve().parents[2] / "specs" / "strategies" / "ma_crossover.peak"
    (project / "ma_crossover.peak").write_text(spec.read_text())
    monkeypatch.chdir(project)
    argv = ["backtest", "ma_crossover.peak", "--data", "g.csv", "--no-record"]
    text = CliRunner().invoke(app, argv)
    assert text.exit_code == 0, text.output
    assert text.stderr.count("warning[D008]") == 1 and text.stderr.count("warning[D009]") == 4
    assert "… and 2 more like this (5 in all" in text.stderr
    assert "found 5 warnings" in text.stderr
    as_json = CliRunner().invoke(app, [*argv, "--json"])
    assert as_json.exit_code == 0 and "warning[D009]" in as_json.stderr
    assert json.loads(as_json.stdout)["data"]["bars"] == 595
