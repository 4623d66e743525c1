"""`peak data …` end to end in a fresh interpreter: exit codes, output, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.data.cache import Meta, store
from peakdsl.data.candles import CandleSet


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
    shortened: the duplicates, the gaps in one summary (issue 14); with --json they go to
    stderr, not into the JSON document."""
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
    assert text.stderr.count("warning[D008]") == 1 and text.stderr.count("warning[D009]") == 1
    assert "5 gaps, 5 missing bars; the largest: 1 missing bar between" in text.stderr
    assert "`peak data import --verbose` lists each" in text.stderr  # not a --verbose of its own
    assert "found 2 warnings" in text.stderr
    as_json = CliRunner().invoke(app, [*argv, "--json"])
    assert as_json.exit_code == 0 and "warning[D009]" in as_json.stderr
    assert json.loads(as_json.stdout)["data"]["bars"] == 595


# ------------------------------------------------------------------ issue 14: quiet, precise

def invoke(project: Path, *argv: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, [*argv, "--root", str(project)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def gappy_csv(project: Path) -> Path:
    """40 hourly bars without bars 5, 10-12, 20 and 30 (four gaps), and two rows swapped."""
    times = pd.date_range("2024-01-01", periods=40, freq="h", tz="UTC")
    rows = [f"{t:%Y-%m-%dT%H:%M:%SZ},{100 + i},{102 + i},{99 + i},{101 + i},{i}"
            for i, t in enumerate(times) if i not in (5, 10, 11, 12, 20, 30)]
    rows[1], rows[2] = rows[2], rows[1]
    path = project / "gappy.csv"
    path.write_text("time,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def test_import_summarises_gaps_and_counts_resorted_rows(project: Path) -> None:
    csv = gappy_csv(project)
    quiet = invoke(project, "data", "import", str(csv), "--market", "BTC/EUR")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr.count("warning[D009]") == 1 and "found 1 warning" in quiet.stderr
    assert "4 gaps, 6 missing bars; the largest: 3 missing bars" in quiet.stderr
    assert quiet.stdout.endswith("; 1 row(s) out of order, re-sorted, 4 gap(s) kept\n")
    loud = invoke(project, "data", "import", str(csv), "--market", "BTC/EUR", "--verbose")
    assert loud.stderr.count("warning[D009] gap: ") == 4 and "found 4 warnings" in loud.stderr
    doc = json.loads(invoke(project, "data", "import", str(csv), "--market", "BTC/EUR",
                            "--json").stdout)
    assert (doc["resorted"], doc["gaps"], doc["derived"]) == (1, 4, [])
    assert [d["code"] for d in doc["diagnostics"]] == ["D009"] * 4  # each gap, in JSON
    named = csv.rename(project / "binance_ETHUSDT_1h.csv")
    other = invoke(project, "data", "import", str(named), "--market", "BTC/EUR", "--replace")
    assert other.exit_code == 0 and "warning[D020]" in other.stderr
    assert "looks like ETH/USDT data (its name says so), but it is used as BTC/EUR" in \
        other.stderr


def test_empty_rows_are_skipped_and_said_where(project: Path) -> None:
    """A row without a single value (``,,,,,`` or a blank line) is not a candle: the import
    leaves it out and its summary counts it with the first line numbers (it was silent)."""
    times = pd.date_range("2024-01-01", periods=8, freq="h", tz="UTC")
    rows = [f"{t:%Y-%m-%dT%H:%M:%SZ},100,102,99,101,1" for t in times]
    for line, empty in ((3, ",,,,,"), (5, ""), (7, ",,,,,"), (9, "")):  # the header is line 1
        rows.insert(line - 2, empty)
    csv = project / "holes.csv"
    csv.write_text("time,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    done = invoke(project, "data", "import", str(csv), "--market", "BTC/EUR")
    assert done.exit_code == 0, done.output
    assert done.stdout.endswith("/.peak/data/BTC-EUR/1h.parquet; 4 empty rows skipped "
                                "(lines 3, 5, 7, … (1 more))\n")
    doc = json.loads(invoke(project, "data", "import", str(csv), "--market", "BTC/EUR",
                            "--json").stdout)
    assert (doc["bars"], doc["empty_rows"], doc["empty_lines"]) == (8, 4, [3, 5, 7, 9])
    one = project / "one.csv"
    one.write_text("time,open,high,low,close,volume\n" + "\n".join([*rows[:3], rows[4]]) + "\n")
    single = invoke(project, "data", "import", str(one), "--market", "BTC/EUR", "--replace")
    assert single.stdout.endswith("; 1 empty row skipped (line 3)\n"), single.stdout


def anomalous(project: Path) -> None:
    """300 hourly BTC/USDT bars: zero volume at 03:00 and 07:00, a flat bar at 10:00, a 30 %
    jump into bar 200 (2024-01-09T08:00) — and seven more zero-volume bars from bar 100."""
    n = 300
    close = 100 * np.exp(np.cumsum(0.001 * np.sin(np.arange(n))))
    close[200:] *= 1.3
    frame = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99,
                          "close": close, "volume": np.ones(n)},
                         index=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
    frame.iloc[[3, 7, *range(100, 107)], 4] = 0.0
    frame.iloc[10, [1, 2]] = frame.iloc[10, 0]
    store(project, CandleSet.of(frame, "BTC/USDT", "1h", "x"),
          Meta("BTC/USDT", "1h", "import", detail="x.csv"))


def test_check_lists_each_anomaly_with_its_time(project: Path) -> None:
    anomalous(project)
    text = invoke(project, "data", "check", "BTC/USDT", "1h").stdout
    assert "  anomalies  zero volume 9, extreme returns (>10σ) 1, flat bars 1\n" in text
    assert ("    zero volume     2024-01-01T03:00Z, 2024-01-01T07:00Z, 2024-01-05T04:00Z, "
            "2024-01-05T05:00Z\n                    2024-01-05T06:00Z\n"
            "                    … and 4 more (--verbose lists all)\n") in text
    assert "    extreme return  2024-01-09T08:00Z\n" in text
    assert "    flat bar        2024-01-01T10:00Z\n" in text
    verbose = invoke(project, "data", "check", "BTC/USDT", "1h", "--verbose").stdout
    assert "2024-01-05T10:00Z" in verbose and "more (--verbose" not in verbose
    doc = json.loads(invoke(project, "data", "check", "--json").stdout)["datasets"][0]
    assert doc["anomaly_list"]["zero_volume"][-1] == "2024-01-05T10:00Z"
    assert len(doc["anomaly_list"]["zero_volume"]) == doc["zero_volume_bars"] == 9
    assert doc["anomaly_list"]["extreme_returns"] == ["2024-01-09T08:00Z"]
    assert doc["gap_list"] == []


def test_a_failed_fetch_never_says_there_was_nothing_to_fetch(project: Path) -> None:
    """It said "nothing to fetch; the cache already covers …" after a D011 (issue 14)."""
    from peakdsl.cli.data import _fetch_text
    from peakdsl.data.fetch import FetchReport
    from peakdsl.lang.diagnostics import diag

    since, until = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-02-01", tz="UTC")
    report = FetchReport("binance", "BTC/USDT", "1h", since, until, project / "x.parquet",
                         diagnostics=[diag("D011", "binance request failed", "<binance>")])
    assert _fetch_text(report) == ("binance BTC/USDT 1h: nothing fetched for "
                                   "2024-01-01T00:00Z … 2024-02-01T00:00Z: the exchange "
                                   "failed (see above)\n")
    report.new_bars, report.requests, report.missing = 24, 3, [(0, 1)]
    assert "stopped by the error above after 24 new bars" in _fetch_text(report)
    done = FetchReport("binance", "BTC/USDT", "1h", since, until, project / "x.parquet")
    assert "nothing to fetch; the cache already covers" in _fetch_text(done)
    empty = FetchReport("binance", "BTC/USDT", "1h", until, until, project / "x.parquet")
    assert _fetch_text(empty).count("nothing to fetch") == 1


def test_volume_and_no_volume_do_not_merge(project: Path) -> None:
    csv = gappy_csv(project)
    assert invoke(project, "data", "import", str(csv), "--market", "BTC/EUR").exit_code == 0
    bare = project / "bare.csv"
    bare.write_text("time,open,high,low,close\n2024-03-01T00:00:00Z,1,2,0.5,1.5\n")
    refused = invoke(project, "data", "import", str(bare), "--market", "BTC/EUR",
                     "--timeframe", "1h")
    assert refused.exit_code == 1 and "error[D002]" in refused.stderr
    assert "has no volume column but the cached dataset has volume" in refused.stderr
    replaced = invoke(project, "data", "import", str(bare), "--market", "BTC/EUR",
                      "--timeframe", "1h", "--replace")
    assert replaced.exit_code == 0 and "warning[D021]" in replaced.stderr
    assert replaced.stdout.rstrip().endswith("; no volume")


def test_runs_say_resampled_and_the_demo_says_how_to_fill_the_cache(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = Path(__file__).resolve().parents[2] / "specs" / "strategies" / "macd.peak"
    (project / "macd.peak").write_text(spec.read_text())  # BTC/USDT 4h
    monkeypatch.chdir(project)
    argv = ["backtest", "macd.peak", "--no-record"]
    demo = CliRunner().invoke(app, argv)
    assert demo.exit_code == 0 and "warning[D018] no BTC/USDT candles in the cache" in \
        demo.stderr and "`peak data import FILE --market BTC/USDT`" in demo.stderr
    anomalous(project)  # 300 BTC/USDT 1h bars: 75 4h bars
    text = CliRunner().invoke(app, argv)
    assert text.exit_code == 0 and "D018" not in text.stderr
    assert "data source: cache: .peak/data/BTC-USDT/1h.parquet, resampled from 1h\n" in \
        text.stdout and "  75 bars  " in text.stdout
    doc = json.loads(CliRunner().invoke(app, [*argv, "--json"]).stdout)["data"]
    assert doc["source"].endswith("resampled from 1h") and doc["bars"] == 75
