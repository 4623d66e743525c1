"""The clock and book one point at a time: a hand example, growth, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from peakdsl.engine.results import SimSettings
from peakdsl.engine.risk import RiskLimits
from peakdsl.live.clockbook import BookSlot, ClockBook, ClosedBar, Fill

H = 3600.0
FREE = SimSettings(fees=0.0, slippage=0.0, sizing_value=0.5)
NONE = (False, False, False, False)
ENTER = (True, False, False, False)
EXIT = (False, True, False, False)


def drive(book: ClockBook, prices: list[float], rules: list[tuple[bool, ...]]) -> list[Fill]:
    """Bars of one slot, each opening at the previous close and flat within itself."""
    fills = list(book.point(0.0, {}, {0: prices[0]}).fills)
    for k in range(1, len(prices)):
        bar = ClosedBar(prices[k - 1], prices[k - 1], prices[k - 1], rules[k - 1])  # type: ignore[arg-type]
        fills += book.point(k * H, {0: bar}, {0: prices[k]}).fills
    return fills


def test_an_entry_fills_at_the_next_open_and_an_exit_likewise() -> None:
    """Signal on bar 1 → buy at bar 2's open (100): half of 1,000 equity = 5 units; exit
    signal on bar 3 → sell at bar 4's open (120): +100."""
    book = ClockBook([BookSlot(FREE, 3600)], 1_000.0)
    fills = drive(book, [90.0, 95.0, 100.0, 110.0, 120.0, 120.0],
                  [NONE, ENTER, NONE, EXIT, NONE, NONE])
    assert fills == [Fill(0, 2, 2 * H, 1, 5.0, 100.0, 0.0, "entry"),
                     Fill(0, 4, 4 * H, -1, 5.0, 120.0, 0.0, "signal")]
    assert book.equity == 1_100.0
    assert book.closed_trades()["pnl"].tolist() == [100.0]


def test_growing_buffers_change_nothing() -> None:
    rng = np.random.default_rng(7)
    prices = list(100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))))
    rules = [tuple(bool(x) for x in rng.random(4) < 0.05) for _ in prices]
    settings = SimSettings(fees=0.001, slippage=0.0005, sizing_value=0.3, stop_loss=0.02)
    small = ClockBook([BookSlot(settings, 3600)], 1_000.0, capacity=2)
    large = ClockBook([BookSlot(settings, 3600)], 1_000.0, capacity=1_024)
    assert drive(small, prices, rules) == drive(large, prices, rules)
    assert small.buf.capacity >= 300 and np.array_equal(small.equity_curve(),
                                                         large.equity_curve())
    assert len(small.closed_trades()["qty"]) > 5


def test_the_risk_stage_judges_live_entries_too() -> None:
    book = ClockBook([BookSlot(FREE, 3600)], 1_000.0,
                     limits=RiskLimits(max_order_notional=200.0))
    fills = drive(book, [100.0, 100.0, 100.0], [ENTER, NONE, NONE])
    assert [f.qty for f in fills] == [2.0]  # 500 wanted, cut to 200 of notional
    assert book.risk()["reduced_order_notional"] == 1


@pytest.mark.parametrize(("time", "closing", "opening", "message"), [
    (0.0, {0: ClosedBar(1.0, 1.0, 1.0, NONE)}, {}, "no bar is open"),
    (0.0, {}, {0: float("nan")}, "not a positive number"),
    (0.0, {}, {0: -5.0}, "not a positive number"),
])
def test_refusals(time: float, closing: dict[int, ClosedBar], opening: dict[int, float],
                  message: str) -> None:
    book = ClockBook([BookSlot(FREE, 3600)], 1_000.0)
    with pytest.raises(ValueError, match=message):
        book.point(time, closing, opening)


def test_time_must_move_forward() -> None:
    book = ClockBook([BookSlot(FREE, 3600)], 1_000.0)
    book.point(H, {}, {0: 10.0})
    with pytest.raises(ValueError, match="not after"):
        book.point(H, {0: ClosedBar(10.0, 10.0, 10.0, NONE)}, {0: 10.0})


def test_a_book_restored_from_its_state_goes_on_as_if_never_stopped() -> None:
    """The snapshot a deployment saves per tick (``state``) and resumes from (``restore``):
    stopped after 150 of 300 bars and restored into a fresh book, the rest of the run books
    exactly what the uninterrupted run books."""
    rng = np.random.default_rng(11)
    prices = list(100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))))
    rules = [tuple(bool(x) for x in rng.random(4) < 0.05) for _ in prices]
    settings = SimSettings(fees=0.001, slippage=0.0005, sizing_value=0.3, trailing_stop=0.03)
    whole = ClockBook([BookSlot(settings, 3600)], 1_000.0, capacity=8)
    expected = drive(whole, prices, rules)
    first = ClockBook([BookSlot(settings, 3600)], 1_000.0, capacity=8)
    got = list(first.point(0.0, {}, {0: prices[0]}).fills)
    for k in range(1, 150):
        bar = ClosedBar(prices[k - 1], prices[k - 1], prices[k - 1], rules[k - 1])  # type: ignore[arg-type]
        got += first.point(k * H, {0: bar}, {0: prices[k]}).fills
    resumed = ClockBook([BookSlot(settings, 3600)], 1_000.0, capacity=2)
    resumed.restore(first.state())
    for k in range(150, len(prices)):
        bar = ClosedBar(prices[k - 1], prices[k - 1], prices[k - 1], rules[k - 1])  # type: ignore[arg-type]
        got += resumed.point(k * H, {0: bar}, {0: prices[k]}).fills
    assert got == expected and len(expected) > 6
    assert np.array_equal(resumed.equity_curve(), whole.equity_curve())
    assert resumed.risk() == whole.risk()
    for column, values in whole.closed_trades().items():
        assert np.array_equal(resumed.closed_trades()[column], values), column


def test_a_state_of_other_slots_is_refused() -> None:
    two = ClockBook([BookSlot(FREE, 3600), BookSlot(FREE, 3600)], 1_000.0)
    with pytest.raises(ValueError, match="other slots"):
        ClockBook([BookSlot(FREE, 3600)], 1_000.0).restore(two.state())
