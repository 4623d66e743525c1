"""The risk stage: each limit reduces or denies entries, by reason, and never blocks an exit.

Hand-computed cases on flat or stepped prices (no fees, no slippage unless said), run
through ``simulate`` (the jitted step) and through ``RiskEngine`` (the same function from
Python); then two slots on one account, the shape a portfolio has.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from peakdsl.engine.results import SimSettings
from peakdsl.engine.risk import RiskEngine, RiskLimits
from peakdsl.engine.simulate import simulate
from peakdsl.engine.state import new_account
from peakdsl.engine.timeline import Slot, simulate_slots

FREE = SimSettings(capital=10_000.0, fees=0.0, slippage=0.0)


def hourly(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")


def signal(n: int, *bars: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(bars)] = True
    return out


def flat_run(limits: RiskLimits, price: float = 100.0, n: int = 4):
    c = np.full(n, price)
    return simulate(c, c, c, c, {"entry_long": signal(n, 0)}, FREE, times=hourly(n),
                    limits=limits)


@pytest.mark.parametrize(("limits", "qty", "reason"), [
    (RiskLimits(max_order_notional=4000.0), 40.0, "order_notional"),
    (RiskLimits(max_symbol_exposure=0.3), 30.0, "symbol_exposure"),
    (RiskLimits(max_total_exposure=0.5), 50.0, "total_exposure"),
    (RiskLimits(max_order_notional=4000.0, max_total_exposure=0.25), 25.0, "total_exposure"),
    (RiskLimits(max_open_positions=1, max_daily_loss=0.5), 100.0, None),  # nothing cut
])
def test_reducing_limits_cut_the_entry_to_fit(limits: RiskLimits, qty: float,
                                              reason: str | None) -> None:
    sim = flat_run(limits)
    assert sim.open_trades["qty"].tolist() == [] and sim.trades["qty"].tolist() == [qty]
    assert sim.trades["reduced"].tolist() == [1.0 if reason else 0.0]
    assert sim.risk == ({f"reduced_{reason}": 1} if reason else {})


def test_daily_loss_halts_entries_until_the_next_utc_day_and_lets_exits_pass() -> None:
    n = 30
    close = np.array([100, 100, 95] + [95] * (n - 3), dtype=float)
    open_ = np.array([100, 100, 100] + [95] * (n - 3), dtype=float)
    rules = {"entry_long": signal(n, 0, 3, 23), "exit_long": signal(n, 2)}
    sim = simulate(open_, np.maximum(open_, close), np.minimum(open_, close), close, rules,
                   FREE.replace(capital=1000.0), times=hourly(n),
                   limits=RiskLimits(max_daily_loss=0.02))
    # 10 bought at 100 (bar 1); 950 at bar 2's close is 5 % down on the day: halted. The exit
    # at bar 3 passes; the entry at bar 4 is denied; bar 24 opens 2024-01-02: allowed again.
    assert sim.trades["entry_bar"].tolist() == [1.0, 24.0]
    assert sim.trades["exit_bar"].tolist() == [3.0, 29.0]
    assert sim.risk == {"denied_daily_loss": 1}
    assert sim.trades["qty"][1] == 10.0  # 950 / 95


def test_order_rate_counts_exits_and_denies_the_entry_over_the_limit() -> None:
    n = 10
    c = np.full(n, 100.0)
    times = pd.to_datetime(np.arange(n) * 10, unit="s", utc=True)  # 10 s apart
    rules = {"entry_long": signal(n, 0, 2, 7), "exit_long": signal(n, 1)}
    sim = simulate(c, c, c, c, rules, FREE, times=times,
                   limits=RiskLimits(max_orders_per_minute=2))
    # orders at 10 s (entry) and 20 s (exit); the entry at 30 s would be the third in a
    # minute: denied; at 80 s the order at 10 s has left the window
    assert sim.trades["entry_bar"].tolist() == [1.0, 8.0]
    assert sim.risk == {"denied_order_rate": 1}


def test_limits_need_the_bar_times() -> None:
    c = np.full(3, 100.0)
    with pytest.raises(ValueError, match="need the bar times"):
        simulate(c, c, c, c, {}, FREE, limits=RiskLimits(max_daily_loss=0.02))


def test_risk_engine_from_python_is_the_same_function() -> None:
    engine = RiskEngine(RiskLimits(max_open_positions=3, max_order_notional=1000.0,
                                   max_orders_per_minute=1))
    account = new_account(10_000.0)
    kwargs = {"equity": 10_000.0, "same_market": 0.0, "all_markets": 0.0, "fill": 100.0}
    full = engine.assess(account, open_positions=3, qty=5.0, time_s=0.0, **kwargs)
    assert (full.qty, full.reason, full.denied) == (0.0, "open_positions", True)
    cut = engine.assess(account, open_positions=1, qty=50.0, time_s=0.0, **kwargs)
    assert (cut.qty, cut.reason, cut.reduced) == (10.0, "order_notional", True)
    engine.order_sent(account, 0.0)
    late = engine.assess(account, open_positions=1, qty=5.0, time_s=30.0, **kwargs)
    assert (late.reason, late.denied) == ("order_rate", True)
    later = engine.assess(account, open_positions=1, qty=5.0, time_s=60.0, **kwargs)
    assert (later.qty, later.reason, later.denied) == (5.0, "approved", False)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        RiskLimits(max_total_exposure=0.0)
    assert not RiskLimits().active and RiskLimits(max_open_positions=2).active
    assert math.isinf(RiskLimits().max_daily_loss)


# ---------------------------------------------------------------- two slots, one account

def two_slots(limits: RiskLimits) -> tuple[np.ndarray, np.ndarray]:
    """Slot 0 trades market 0 at 100, slot 1 market 1 at 50; both enter on bar 0's signal
    with half the account's equity each. Returns each slot's last position (qty) and the
    equity at every point of the clock."""
    n = 3
    times = np.arange(n, dtype=np.float64) * 3600.0
    settings = FREE.replace(sizing_value=0.5, end_of_data="mark")
    entry = {"entry_long": np.array([True, False, False])}
    slots = [Slot(*[np.full(n, price)] * 4, times=times, timeframe_seconds=3600, rules=entry,
                  settings=settings, market=market) for market, price in ((0, 100.0), (1, 50.0))]
    run = simulate_slots(slots, 10_000.0, limits=limits)
    assert run.trades["entry_bar"].size == 0
    return run.values[:, -1] / np.array([100.0, 50.0]), run.equity


def test_two_slots_share_one_cash_balance() -> None:
    position, equity = two_slots(RiskLimits())
    # slot 0: 0.5 · 10,000 / 100 = 50; slot 1 sees equity 5,000 cash + 50 · 100 = 10,000
    assert position.tolist() == [50.0, 100.0]
    assert equity.tolist() == [10_000.0] * 4


def test_limits_apply_across_slots() -> None:
    position, _ = two_slots(RiskLimits(max_open_positions=1))
    assert position.tolist() == [50.0, 0.0]
    position, _ = two_slots(RiskLimits(max_total_exposure=0.6))
    assert position.tolist() == [50.0, 20.0]  # (6,000 − 5,000) / 50
