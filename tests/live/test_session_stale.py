"""No new entries on a stale bar (issue 11, item 4): through ``Session``, a tick whose closed
candle is more than ``STALE_BARS`` bars old may exit a position but not open one; the signal
is recorded as stale and the session says why.

The strategy is written for the test: long after an up bar, flat after a down bar, so each
candle's shape is its signal.
"""

from __future__ import annotations

import pytest

from peakdsl.live.feed import Candle, Tick
from peakdsl.live.session import STALE_BARS, PaperAdapter, Session, SlotSpec, slot_specs
from peakdsl.robustness.subject import subject_plan

UP_BAR = """strategy up_bar {
    description "Long after an up bar, flat after a down bar"
    market BTC/USDT
    timeframe 1h

    entry long when close > open
    exit long when close < open

    size 10% of equity
    execution {
        fill next_open
        fees 10bps
        slippage 0bps
    }
}
"""
T0 = 1_704_067_200.0
H = 3600.0
UP = (100.0, 102.0, 99.0, 101.0)
DOWN = (101.0, 102.0, 97.0, 98.0)


@pytest.fixture(scope="module")
def slot(tmp_path_factory: pytest.TempPathFactory) -> SlotSpec:
    root = tmp_path_factory.mktemp("stale")
    spec = root / "specs" / "strategies" / "up_bar.peak"
    spec.parent.mkdir(parents=True)
    spec.write_text(UP_BAR)
    plan, _ = subject_plan(str(spec), root=root)
    (built,) = slot_specs(plan)
    assert built.book.settings.warmup == 0
    return built


def candle(opened: float, prices: tuple[float, float, float, float]) -> Candle:
    return Candle(opened, *prices, 1.0)


def session(slot: SlotSpec) -> Session:
    started = Session([slot], 10_000.0, PaperAdapter(), min_history=0)
    started.step(Tick(T0, {}, {0: 100.0}))  # bar 0 opens
    return started


def test_stale_bars_is_two() -> None:
    assert STALE_BARS == 2


@pytest.mark.parametrize(("late", "enters"), [
    (0.0, True),  # the tick at the close
    (H, True),
    (2 * H, True),  # two bars old: still allowed
    (2 * H + 1, False),  # older than two bars
    (5 * H, False),
])
def test_an_entry_needs_a_bar_at_most_two_bars_old(slot: SlotSpec, late: float,
                                                   enters: bool) -> None:
    live = session(slot)
    report = live.step(Tick(T0 + H + late, {0: candle(T0, UP)}, {0: 101.0}))
    assert [(f.reason, f.side, f.price) for f in report.fills] == (
        [("entry", 1, 101.0)] if enters else [])
    (signal,) = live.log.signals
    assert signal.stale is not enters and signal.time == T0
    assert signal.rules == ((True, False, False, False) if enters else
                            (False, False, False, False))
    assert live.log.notes == ([] if enters else [
        "up_bar: the candle of 1704067200 came more than 2 bars late: no entry on it"])


def test_a_stale_bar_may_still_exit(slot: SlotSpec) -> None:
    live = session(slot)
    live.step(Tick(T0 + H, {0: candle(T0, UP)}, {0: 101.0}))  # in: long from bar 1
    report = live.step(Tick(T0 + 4 * H + 1, {0: candle(T0 + H, DOWN)}, {0: 97.5}))
    assert [(f.reason, f.side, f.price) for f in report.fills] == [("signal", -1, 97.5)]
    assert [s.stale for s in live.log.signals] == [False, True]
    assert live.log.signals[1].rules == (False, True, False, False)
    assert len(live.book.closed_trades()["qty"]) == 1
