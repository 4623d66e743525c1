"""Window arithmetic from the command line: `peak check` accepts `highest(high, 2 * n)` and
refuses a window that may reach 0 (T004 at its line and column, exit 1); `peak backtest
--set` runs any value of the proven range and refuses one outside it (T010, exit 1);
`peak sweep` over `n` runs, each row equal to `peak backtest --set n=…`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app

SPEC = "specs/strategies/wide_breakout.peak"
TEXT = """strategy wide_breakout {
    market BTC/USDT
    timeframe 1h
    param n: int = 10 in 5..30 step 5
    let top = highest(high, 2 * n)
    let floor = lowest(low, n + 5)
    entry long when close > top[1]
    exit long when close < floor[1]
}
"""
BROKEN = TEXT.replace("wide_breakout", "narrow").replace("2 * n", "n - 5")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "specs" / "strategies"
    folder.mkdir(parents=True)
    (folder / "wide_breakout.peak").write_text(TEXT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_accepts_arithmetic_and_refuses_a_window_that_may_be_zero(project: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["check", SPEC])
    assert ok.exit_code == 0, ok.output
    (project / "specs/strategies/narrow.peak").write_text(BROKEN)
    bad = runner.invoke(app, ["check", "specs/strategies/narrow.peak"])
    assert bad.exit_code == 1, bad.output
    assert "narrow.peak:5:29: error[T004]" in bad.output
    assert "`n - 5` must be at least 1 for every param value, found 0 at n = 5" in bad.output
    assert "Traceback" not in bad.output


def test_backtest_set_runs_in_range_and_refuses_outside(project: Path) -> None:
    runner = CliRunner()
    ran = runner.invoke(app, ["backtest", SPEC, "--set", "n=25", "--no-record", "--json"])
    assert ran.exit_code == 0, ran.output
    doc = json.loads(ran.stdout)
    assert doc["params"]["n"] == 25 and doc["settings"]["warmup"] == 50
    refused = runner.invoke(app, ["backtest", SPEC, "--set", "n=2", "--no-record"])
    assert refused.exit_code == 1, refused.output
    assert "T010" in refused.output and "2 is outside 5..30" in refused.output


def test_sweep_over_the_param_of_a_window_expression(project: Path) -> None:
    runner = CliRunner()
    swept = runner.invoke(app, ["sweep", SPEC, "--set", "n=5..15:5", "--no-record", "--json"])
    assert swept.exit_code == 0, swept.output
    doc = json.loads(swept.stdout)
    assert doc["space"]["combinations"] == 3
    best = doc["best"]
    one = runner.invoke(app, ["backtest", SPEC, "--set", f"n={best['params']['n']:g}",
                              "--no-record", "--json"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["metrics"]["total_return"] == pytest.approx(
        best["metrics"]["total_return"], rel=1e-12)
