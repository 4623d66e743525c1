"""The clock: several slots on their own bars, one account, sleeves and rebalancing.

Worked examples by hand (the clock's points, a slower bar known only after it closed, a
sleeve restored on drift and on the calendar), the point-by-point driver equal to the whole
run on a random two-market, two-timeframe case, and its refusals. That one slot through the
clock equals ``run_slot`` is tested on every library strategy in ``test_step.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from peakdsl.engine.results import SimSettings
from peakdsl.engine.risk import RiskLimits
from peakdsl.engine.timeline import (
    Rebalance,
    Slot,
    SlotsDriver,
    SlotsResult,
    build_clock,
    simulate_slots,
)

H = 3600.0
FREE = SimSettings(fees=0.0, slippage=0.0, sizing_value=1.0, end_of_data="mark")


def flat(price: float, n: int) -> list[np.ndarray]:
    return [np.full(n, price)] * 4


def hours(n: int, step: float = 1.0) -> np.ndarray:
    return np.arange(n, dtype=np.float64) * step * H


def test_the_points_of_a_1h_and_a_2h_slot() -> None:
    clock = build_clock([hours(4), hours(2, 2.0)], [3600, 7200])
    assert (clock.times / H).tolist() == [0, 1, 2, 3, 4]
    assert clock.opening.tolist() == [[0, 1, 2, 3, -1], [0, -1, 1, -1, -1]]
    assert clock.closing.tolist() == [[-1, 0, 1, 2, 3], [-1, -1, 0, -1, 1]]
    assert clock.last_bars.tolist() == [3, 1]


def test_a_hole_in_one_slot_leaves_its_points_empty() -> None:
    clock = build_clock([np.array([0.0, 1.0, 3.0]) * H], [3600])
    assert (clock.times / H).tolist() == [0, 1, 2, 3, 4]
    assert clock.opening.tolist() == [[0, 1, -1, 2, -1]]
    assert clock.closing.tolist() == [[-1, 0, 1, -1, 2]]


def test_overlapping_bars_are_refused() -> None:
    with pytest.raises(ValueError, match="less than the timeframe"):
        build_clock([np.array([0.0, 1800.0])], [3600])


def test_a_slow_bar_acts_only_after_it_closed() -> None:
    """Slot 1 (2h) signals on its bar 0, which closes at 2h: it enters at the open of its bar
    1 (point 2h, price 60), not at 1h, where slot 0 (1h, flat prices) marks nothing new."""
    fast = Slot(*flat(100.0, 4), times=hours(4), timeframe_seconds=3600, rules={},
                settings=FREE)
    slow_prices = [np.array([50.0, 60.0])] * 4
    slow = Slot(*slow_prices, times=hours(2, 2.0), timeframe_seconds=7200,
                rules={"entry_long": np.array([True, False])}, settings=FREE, market=1)
    run = simulate_slots([fast, slow], 10_000.0)
    entry = run.open_trades
    assert entry["slot"].tolist() == [1.0] and entry["entry_bar"].tolist() == [1.0]
    assert entry["entry_price"].tolist() == [60.0]
    qty = 10_000.0 / 60.0
    # bought after the mark of point 2; marked at its open (the last price seen) at 3h
    assert run.values[1].tolist() == [0.0, 0.0, 0.0, qty * 60.0, qty * 60.0]
    assert run.equity.tolist() == [10_000.0] * 5


def _sleeved(rebalance: Rebalance) -> SlotsResult:
    """Two sleeves of 5,000: slot 0 buys 50 at 100 on bar 1, its market doubles on bar 2;
    slot 1 buys at 50 on bar 4 with its whole sleeve (leverage 2, so the account's cash —
    5,000 after slot 0's purchase — does not cap it: a sleeve is capital, not cash)."""
    up = [np.array([100.0, 100.0, 200.0, 200.0, 200.0, 200.0])] * 4
    first = Slot(*up, times=hours(6), timeframe_seconds=3600,
                 rules={"entry_long": np.array([True] + [False] * 5)}, settings=FREE, weight=0.5)
    second = Slot(*flat(50.0, 6), times=hours(6), timeframe_seconds=3600,
                  rules={"entry_long": np.array([False] * 3 + [True, False, False])},
                  settings=FREE.replace(leverage=2.0), market=1, weight=0.5)
    return simulate_slots([first, second], 10_000.0, rebalance=rebalance)


def test_no_rebalancing_keeps_each_sleeve_to_itself() -> None:
    run = _sleeved(Rebalance())
    assert run.rebalances == 0
    assert run.open_trades["qty"].tolist() == [50.0, 100.0]  # 5,000 / 100, 5,000 / 50
    assert run.open_trades["reduced"].tolist() == [0.0, 0.0]
    assert run.sleeves[:, 3].tolist() == [10_000.0, 5_000.0]


def test_drift_restores_the_sleeves_to_their_weights() -> None:
    """At point 3 (bar 2 closed) sleeve 0 is 10,000 of 15,000: 16.7 points over its weight.
    2,500 of cash move to sleeve 1, which then buys 7,500 / 50 = 150."""
    run = _sleeved(Rebalance(drift=0.05))
    assert run.rebalances == 1
    assert run.sleeves[:, 4].tolist() == [7_500.0, 7_500.0]
    assert run.open_trades["qty"].tolist() == [50.0, 150.0]
    assert run.equity[-1] == 15_000.0


def test_an_entry_never_spends_cash_the_account_lacks() -> None:
    """Without leverage slot 1's 7,500 sleeve buys only what the account's 5,000 of cash pay
    for: 100, marked reduced (by the cash)."""
    up = [np.array([100.0, 100.0, 200.0, 200.0, 200.0, 200.0])] * 4
    first = Slot(*up, times=hours(6), timeframe_seconds=3600,
                 rules={"entry_long": np.array([True] + [False] * 5)}, settings=FREE, weight=0.5)
    second = Slot(*flat(50.0, 6), times=hours(6), timeframe_seconds=3600,
                  rules={"entry_long": np.array([False] * 3 + [True, False, False])},
                  settings=FREE, market=1, weight=0.5)
    run = simulate_slots([first, second], 10_000.0, rebalance=Rebalance(drift=0.05))
    assert run.open_trades["qty"].tolist() == [50.0, 100.0]
    assert run.open_trades["reduced"].tolist() == [0.0, 1.0]


def test_the_calendar_rebalances_every_period() -> None:
    run = _sleeved(Rebalance(seconds=2 * H))
    assert run.rebalances == 3  # points 2h, 4h and 6h
    assert run.open_trades["qty"].tolist() == [50.0, 150.0]


def _random_pair(seed: int) -> list[Slot]:
    rng = np.random.default_rng(seed)
    slots = []
    for market, (n, step) in enumerate(((400, 1.0), (100, 4.0))):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
        high, low = np.maximum(open_, close) * 1.003, np.minimum(open_, close) * 0.997
        rules = {k: rng.random(n) < 0.08 for k in ("entry_long", "exit_long", "entry_short",
                                                     "exit_short")}
        settings = SimSettings(fees=0.001, slippage=0.0005, sizing_value=0.6,
                               stop_loss=0.02, trailing_stop=0.03,
                               fill="close" if market else "next_open")
        slots.append(Slot(open_, high, low, close, hours(n, step), int(step * H), rules,
                          settings, market, 0.5))
    return slots


def test_point_by_point_equals_the_whole_run() -> None:
    slots = _random_pair(3)
    limits = RiskLimits(max_total_exposure=0.9, max_daily_loss=0.02, max_orders_per_minute=2)
    rebalance = Rebalance(seconds=24 * H, drift=0.1)
    whole = simulate_slots(slots, 10_000.0, limits=limits, rebalance=rebalance)
    driver = SlotsDriver(slots, 10_000.0, limits=limits, rebalance=rebalance)
    for p in range(driver.points):
        driver.run(p, p + 1)
    stepped = driver.result()
    assert whole.trades["entry_bar"].size > 20
    for name in ("equity", "values", "pnl", "sleeves"):
        np.testing.assert_array_equal(getattr(stepped, name), getattr(whole, name), name)
    for col in whole.trades:
        np.testing.assert_array_equal(stepped.trades[col], whole.trades[col], col)
    assert (stepped.rebalances, stepped.risk) == (whole.rebalances, whole.risk)
    np.testing.assert_allclose(whole.equity, 10_000.0 + whole.pnl.sum(axis=0), rtol=1e-12)


def test_the_driver_refuses_points_out_of_order() -> None:
    driver = SlotsDriver(_random_pair(1), 10_000.0)
    driver.run(0, 3)
    with pytest.raises(ValueError, match="the next point is 3"):
        driver.run(5, 6)
    with pytest.raises(ValueError, match="still to be run"):
        driver.result()
