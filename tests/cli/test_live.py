"""`peak live run` on the command line: a paper replay prints the backtest's fills; bad input
gets a coded diagnostic and the right exit code, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from peakdsl import api
from peakdsl.cli import app
from peakdsl.engine.results import EXIT_REASONS

SPEC = "specs/strategies/ma_crossover.peak"
WINDOW = ["--to", "2025-12-31"]


def peak(project: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, code: int) -> Any:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["live", *argv])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def test_a_paper_replay_from_the_first_bar_fills_as_the_backtest(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = peak(project, monkeypatch, "run", SPEC, "--replay", *WINDOW, "--json", code=0)
    summary = json.loads(out.stdout)
    backtest = api.backtest(str(project / SPEC), end="2025-12-31", record=False).result
    trades = backtest.sim.trades
    closed = int((trades["exit_reason"] != EXIT_REASONS.index("end_of_data")).sum())
    assert summary["closed_trades"] == closed > 10
    entries = [f for f in summary["fills"] if f["reason"] == "entry"]
    assert [f["price"] for f in entries] == trades["entry_price"].tolist()
    assert summary["mode"] == "paper" and summary["source"] == "replay"
    assert summary["history_bars"] == [0]
    assert summary["artifact_sha256"] == backtest.artifact_sha256


def test_text_output_lists_fills_then_the_summary(project: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = peak(project, monkeypatch, "run", SPEC, "--replay", "--from", "2025-12-01",
               *WINDOW, code=0)
    lines = out.stdout.splitlines()
    assert any(" buy " in line and "BTC/USDT @" in line for line in lines)
    assert "paper, replay:" in out.stdout and "history 1000 bars" in out.stdout


@pytest.mark.parametrize(("argv", "code", "diagnostic"), [
    (["run", SPEC, "--mode", "testnet"], 1, "E008"),  # no credentials in the environment
    (["run", SPEC, "--mode", "live", "--replay"], 1, "E011"),  # no arming token
    (["run", SPEC, "--mode", "testnet", "--endpoint", "https://api.binance.com"], 1, "E005"),
    (["run", SPEC, "--replay", "--mode", "papr"], 2, "U005"),
    (["run", SPEC, "--replay", "--speed", "-1"], 2, "U005"),
    (["run", SPEC, "--replay", "--speed", "nan"], 2, "U005"),
    (["run", SPEC, "--replay", "--history", "-3"], 2, "U005"),
    (["run", SPEC, "--replay", "--from", "2025-12-02", "--to", "2025-12-01"], 2, "U005"),
    (["run", "specs/strategies/nope.peak", "--replay"], 2, "U001"),
    (["run", "specs/risk/live_moderate.peak", "--replay"], 2, "U003"),
])
def test_bad_input(project: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], code: int,
                   diagnostic: str) -> None:
    out = peak(project, monkeypatch, *argv, code=code)
    assert f"[{diagnostic}]" in out.output


def test_a_recorded_candles_file_replays_as_the_backtest_reads_it(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--data FILE`: the session replays a recorded file, fill for fill what `peak backtest
    --data FILE` books on it."""
    from peakdsl.robustness.subject import subject_plan

    plan, _ = subject_plan(str(project / SPEC), root=project, end="2025-12-31")
    frame = plan.components[0].candles.frame.iloc[-2_000:]
    recorded = project / "btc_1h.csv"
    frame.rename_axis("time").reset_index().to_csv(recorded, index=False)
    out = peak(project, monkeypatch, "run", SPEC, "--replay", "--data", str(recorded),
               "--json", code=0)
    summary = json.loads(out.stdout)
    backtest = api.backtest(str(project / SPEC), data=recorded, record=False).result
    entries = [f["price"] for f in summary["fills"] if f["reason"] == "entry"]
    assert entries == backtest.sim.trades["entry_price"].tolist() and len(entries) > 3
    peak(project, monkeypatch, "run", SPEC, "--data", str(recorded), code=2)  # needs --replay
