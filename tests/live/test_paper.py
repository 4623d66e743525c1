"""A paper deployment on live prices: candles polled from the (loopback) exchange, the book's
fills recorded in the store — and exactly the fills a replay of the same candles books."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from loopback_setup import new_exchange

from peakdsl.live.feed import ReplaySource, SlotCandles
from peakdsl.live.run import LiveRequest
from peakdsl.live.runner import RunnerSettings, run_deployment
from peakdsl.live.session import PaperAdapter, Session, slot_specs
from peakdsl.live.store import LiveStore
from peakdsl.portfolio.run import limits_of
from peakdsl.robustness.subject import subject_plan

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/ma_crossover.peak"
HOUR = 3600
TICKS = 400


class FakeTime:
    """The runner's clock: sleeping moves it, nothing waits."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    return tmp_path


def rounded_candles(project: Path) -> tuple[SlotCandles, np.ndarray]:
    """The demo candles of the spec's market as the exchange serves them (8 decimals)."""
    plan, _ = subject_plan(str(project / SPEC), root=project)
    frame = plan.components[0].candles.frame
    data = SlotCandles.of_frame(frame, HOUR)
    columns = {c: np.round(v, 8) for c, v in data.columns.items()}
    rows = np.column_stack([data.times * 1000, *(columns[c] for c in
                                                  ("open", "high", "low", "close", "volume"))])
    return SlotCandles(data.times, columns, HOUR), rows


def test_a_polled_paper_deployment_books_what_a_replay_books(project: Path) -> None:
    candles, rows = rounded_candles(project)
    start = float(candles.times[3_000])  # the first live bar opens here
    clock = FakeTime(start + 1.0)
    with new_exchange() as exchange:
        exchange.set_candles("BTC/USDT", "1h", rows.tolist())
        summary = run_deployment(
            LiveRequest(str(project / SPEC), "paper", replay=False),
            RunnerSettings(endpoint=exchange.url, max_ticks=TICKS, kill_poll_s=HOUR), clock=clock,
            sleep=clock.sleep)
    plan, _ = subject_plan(str(project / SPEC), root=project)
    source = ReplaySource([candles], start_time=start + HOUR)
    replay = Session(slot_specs(plan), plan.capital, PaperAdapter(), limits=limits_of(plan))
    replay.warm_up(source)
    replay.run(t for i, t in zip(range(TICKS), source.ticks(), strict=False))
    want = [(f.side, f.qty, f.price, f.reason) for f in replay.log.fills]
    got = [(1 if f.side == "buy" else -1, f.qty, f.price, f.reason if f.reason != "entry"
            else "entry") for f in summary.fills]
    assert summary.ticks == TICKS and summary.history_bars == [1_000]
    assert len(want) >= 4 and got == want
    store_path = project / ".peak/live/paper/default/ma_crossover.sqlite"
    with LiveStore.open(store_path, readonly=True) as store:
        fills = store.fills()
        assert [(f.side, f.qty, f.price) for f in fills] == \
            [("buy" if s > 0 else "sell", q, p) for s, q, p, _ in want]
        position = store.position("BTC/USDT").qty
        held = sum(q if s > 0 else -q for s, q, _, _ in want)
        assert position == pytest.approx(held, abs=1e-12)
        assert [s.status for s in store.sessions()] == ["stopped"]
