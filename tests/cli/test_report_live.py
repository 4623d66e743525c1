"""`peak report live` and `peak live note` end to end on a real paper deployment: the runner
polls a loopback exchange (a simulated clock makes 60 hourly bars take seconds), then the
commands read its store and its notes. Figures agree with the store, the output is the same
bytes twice, and bad input gets a coded diagnostic and the right exit code, never a
traceback."""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.live.loopback import LoopbackExchange, MarketSpec
from peakdsl.live.run import LiveRequest
from peakdsl.live.runner import Deployment, RunnerSettings, run_deployment
from peakdsl.live.store import LiveStore

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/ma_crossover.peak"
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
H_MS = 3_600_000
DAY3 = START_MS + 2 * 86_400_000  # 2024-01-03, the day of the last bar
DURING = datetime(2024, 1, 3, 12, 30, tzinfo=UTC)  # the operator's clock: the last bar's day


def candles() -> list[list[float]]:
    """A 30-hour sine around 20,000: the moving averages cross every 15 hours or so."""
    rows = []
    for k in range(-1_100, 80):
        close = round(20_000 + 800 * math.sin(2 * math.pi * k / 30), 2)
        rows.append([START_MS + k * H_MS, close, close + 1, close - 1, close, 5])
    return rows


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose paper deployment of ma_crossover ran 60 bars (2024-01-01 01:00 to
    2024-01-03 12:00) with the live_moderate_usdt limits."""
    project = tmp_path_factory.mktemp("deployed")
    shutil.copytree(REPO / "specs", project / "specs")
    clock = [START_MS / 1000 + 1.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    with LoopbackExchange(markets=[MarketSpec("BTC", "USDT")], balances={"USDT": "10000"},
                          prices={"BTC/USDT": "20000"}, api_key="k" * 16,
                          secret="s" * 16) as exchange:
        exchange.set_candles("BTC/USDT", "1h", candles())
        run_deployment(LiveRequest(str(project / SPEC), "paper", replay=False, min_history=60,
                                   risk="live_moderate_usdt"),
                       RunnerSettings(endpoint=exchange.url, max_ticks=60, kill_poll_s=3600),
                       clock=lambda: clock[0], sleep=sleep)
    return project


@pytest.fixture
def project(deployed: Path, tmp_path: Path) -> Path:
    """A copy of the deployed project for one test (notes are appended to it)."""
    return Path(shutil.copytree(deployed, tmp_path / "project"))


def peak(project: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, code: int = 0) -> Any:
    monkeypatch.chdir(project)
    monkeypatch.setenv("PEAK_AUTHOR", "ops-alice")
    with time_machine.travel(DURING, tick=False):
        result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def store_of(project: Path) -> LiveStore:
    return LiveStore.open(Deployment(project, "paper", "default", "ma_crossover").store_path,
                          readonly=True)


def test_the_report_of_the_last_bars_day(project: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    note = peak(project, monkeypatch, "live", "note", SPEC, "--mode", "paper", "--text",
                "feed restarted at 10:00 <b>by hand</b>")
    assert note.stdout == ("note added to ma_crossover (paper, default) at "
                           "2024-01-03T12:30:00Z by ops-alice\n")
    md = peak(project, monkeypatch, "report", "live", SPEC, "--mode", "paper", "--risk",
              "live_moderate_usdt").stdout
    doc = json.loads(peak(project, monkeypatch, "report", "live", SPEC, "--mode", "paper",
                          "--risk", "live_moderate_usdt", "--json").stdout)
    with store_of(project) as store:
        day = store.equity_history(since=DAY3)
        fills = [f for f in store.fills() if f.at >= DAY3]
        start = store.last_equity(before=DAY3)
    assert md.startswith("## Live status: ma_crossover · paper · daily 2024-01-03\n")
    assert "| generated | 2024-01-03T12:30:00Z |" in md
    assert "- 2024-01-03T12:30:00Z ops-alice: feed restarted at 10:00 \\<b\\>by hand\\</b\\>" in md
    assert doc["label"] == "2024-01-03" and doc["equity"]["bars"] == len(day) == 13
    assert start is not None and doc["equity"]["start"] == start.equity
    assert doc["equity"]["end"] == day[-1].equity
    assert doc["trades"]["count"] == len(fills) == 1
    assert doc["risk"]["as_of"] == "2024-01-03T12:00:00Z"
    assert [r["limit"] for r in doc["risk"]["limits"]][:3] == [
        "max_order_notional", "max_symbol_exposure", "max_total_exposure"]
    assert doc["notes"] == [{"time": "2024-01-03T12:30:00Z", "by": "ops-alice",
                             "text": "feed restarted at 10:00 <b>by hand</b>"}]
    assert doc["sessions"][0]["status"] == "stopped"


def test_a_weeks_html_report_written_twice_is_the_same_file(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outs = []
    for name in ("a.html", "b.html"):
        done = peak(project, monkeypatch, "report", "live", SPEC, "--mode", "paper",
                    "--period", "weekly", "--format", "html", "--out", f"out/{name}")
        assert done.stdout == (f"live report of ma_crossover (weekly 2024-W01) written to "
                               f"out/{name}\n")
        outs.append((project / "out" / name).read_bytes())
    assert outs[0] == outs[1] and b'id="equity-line"' in outs[0]
    page = outs[0].decode()
    assert "2024-W01" in page and "Monday 2024-01-01 to Sunday 2024-01-07" in page
    md = [peak(project, monkeypatch, "report", "live", SPEC, "--mode", "paper", "--period",
               "weekly", "--out", "w.md").stdout for _ in range(2)]
    assert md[0] == md[1] and (project / "w.md").read_text().startswith("## Live status")


@pytest.mark.parametrize(("argv", "code", "expect"), [
    (["report", "live", SPEC, "--mode", "testnet"], 1, "[E023]"),  # no such deployment
    (["report", "live", SPEC, "--mode", "paper", "--account", "desk"], 1, "[E023]"),
    (["report", "live", SPEC, "--mode", "paper", "--format", "html"], 2, "[U005]"),
    (["report", "live", SPEC, "--mode", "paper", "--at", "2024-02-30"], 2, "[U005]"),
    (["report", "live", SPEC, "--mode", "paper", "--at", "yesterday"], 2, "[U005]"),
    (["report", "live", SPEC, "--mode", "paper", "--period", "monthly"], 2, "[U005]"),
    (["report", "live", SPEC, "--mode", "papr"], 2, "[U005]"),
    (["report", "live", SPEC, "--mode", "paper", "--out", "specs"], 2, "[U007]"),
    (["report", "live", SPEC, "--mode", "paper", "--out", f"{SPEC}/x.md"], 2, "[U007]"),
    (["report", "live", "specs/strategies/nope.peak", "--mode", "paper"], 2, "[U001]"),
    (["report", "live", SPEC, "--mode", "paper", "--out", SPEC], 2, "[U005]"),
    (["report", "live", SPEC, "--mode", "paper", "--out",
      ".peak/live/paper/default/ma_crossover.sqlite"], 2, "[U005]"),
    (["report", "live", SPEC], 2, "--mode"),
    (["live", "note", SPEC, "--mode", "paper", "--text", " "], 2, "[U005]"),
    (["live", "note", SPEC, "--mode", "paper", "--text", "a\x1b[2Jb"], 2, "[U005]"),
    (["live", "note", SPEC, "--mode", "live", "--text", "hello"], 1, "[E023]"),
])
def test_bad_input(project: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str],
                   code: int, expect: str) -> None:
    result = peak(project, monkeypatch, *argv, code=code)
    assert expect in result.output
    assert not (project / ".peak" / "live" / "live").exists()  # a refusal creates nothing


def test_a_json_refusal_is_json(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = peak(project, monkeypatch, "report", "live", SPEC, "--mode", "testnet", "--json",
                  code=1)
    assert json.loads(result.stdout)["diagnostics"][0]["code"] == "E023"


def test_a_note_needs_no_lock(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A running deployment holds the store's write lock: a note is still written."""
    path = Deployment(project, "paper", "default", "ma_crossover").store_path
    with LiveStore.open(path):  # the lock, as a runner holds it
        peak(project, monkeypatch, "live", "note", SPEC, "--mode", "paper", "--text", "held")
        peak(project, monkeypatch, "report", "live", SPEC, "--mode", "paper")
    lines = path.with_name("ma_crossover.notes.jsonl").read_text().splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["held"]
