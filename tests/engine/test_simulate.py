"""The simulator on hand-built scenarios with literal expected trades and equity, and the
fast numba loop against the slow reference simulator on random library strategies.

Every scenario runs through both ``simulate`` and ``reference_simulate`` (``run`` asserts
they agree) and then checks literal numbers worked out by hand from docs/backtest.md.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_evaluate import market, random_params, timed  # tests/engine is on sys.path

from peakdsl import api
from peakdsl.backtest import sim_settings
from peakdsl.compile import models as m
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.reference_sim import reference_simulate
from peakdsl.engine.results import EXIT_REASONS, TRADE_COLUMNS, SimResult, SimSettings
from peakdsl.engine.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = sorted((ROOT / "specs" / "strategies").glob("*.peak"))
nan = math.nan

# Frictionless defaults for the literal scenarios; each test overrides what it exercises.
BASE = SimSettings(capital=1000.0, fees=0.0, slippage=0.0, sizing_mode="equity_fraction",
                   sizing_value=1.0)


def candles(o: Sequence[float], c: Sequence[float], h: Sequence[float] | None = None,
            lo: Sequence[float] | None = None) -> tuple[np.ndarray, ...]:
    """OHLC arrays; high/low default to max/min(open, close) (no wick)."""
    oa, ca = np.array(o, float), np.array(c, float)
    ha = np.maximum(oa, ca) if h is None else np.array(h, float)
    la = np.minimum(oa, ca) if lo is None else np.array(lo, float)
    assert (la <= np.minimum(oa, ca)).all() and (ha >= np.maximum(oa, ca)).all()
    return oa, ha, la, ca


def rules_at(n: int, **bars: Sequence[int]) -> dict[str, np.ndarray]:
    """``rules_at(5, entry_long=[1], exit_long=[3])``: bool arrays true at those bars."""
    out = {}
    for slot, idx in bars.items():
        arr = np.zeros(n, dtype=bool)
        arr[list(idx)] = True
        out[slot] = arr
    return out


def assert_same_result(fast: SimResult, slow: SimResult) -> None:
    np.testing.assert_allclose(fast.equity, slow.equity, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.position, slow.position, rtol=1e-9, atol=1e-12)
    assert fast.trade_count == slow.trade_count
    for col in TRADE_COLUMNS:
        np.testing.assert_allclose(fast.trades[col], slow.trades[col], rtol=1e-9, atol=1e-9,
                                   err_msg=col)
        np.testing.assert_allclose(fast.open_trades[col], slow.open_trades[col], rtol=1e-9,
                                   atol=1e-9, err_msg=f"open {col}")
    assert fast.orders_reduced == slow.orders_reduced
    assert fast.ambiguous_bars == slow.ambiguous_bars
    assert fast.fees_paid == pytest.approx(slow.fees_paid, rel=1e-9, abs=1e-9)
    assert (fast.held_back, fast.undefined_levels) == (slow.held_back, slow.undefined_levels)


def run(ohlc: tuple[np.ndarray, ...], rules: dict[str, np.ndarray], **overrides: Any
        ) -> SimResult:
    s = BASE.replace(**overrides)
    fast = simulate(*ohlc, rules, s)
    slow = reference_simulate(*ohlc, rules, s)
    assert_same_result(fast, slow)
    return fast


def trades(sim: SimResult) -> list[tuple[Any, ...]]:
    """Trades as tuples (entry_bar, exit_bar, side, qty, entry, exit, fees, pnl, return,
    reason name), rounded to 9 decimals for literal comparison."""
    out = []
    for k in range(sim.trade_count):
        row = [sim.trades[c][k] for c in TRADE_COLUMNS]
        out.append((int(row[0]), int(row[1]), int(row[2]), *(round(float(v), 9) for v in row[3:9]),
                    EXIT_REASONS[int(row[9])]))
    return out


def approx_list(values: np.ndarray) -> list[float]:
    return [round(float(v), 9) for v in values]


# ---------------------------------------------------------------- fills


def test_next_open_fill() -> None:
    ohlc = candles([10, 10, 10, 12, 15], [10, 10, 11, 13, 14])
    sim = run(ohlc, rules_at(5, entry_long=[1, 4], exit_long=[3]))
    # signal at bar 1 → buy 1000/10 = 100 at open[2]; exit signal at bar 3 → sell at open[4];
    # the entry signal on the last bar is never executed
    assert trades(sim) == [(2, 4, 1, 100.0, 10.0, 15.0, 0.0, 500.0, 0.5, "signal")]
    assert approx_list(sim.equity) == [1000, 1000, 1100, 1300, 1500]
    assert approx_list(sim.position) == [0, 0, 100, 100, 0]


def test_close_fill() -> None:
    ohlc = candles([10, 10, 10, 12, 15], [10, 10, 11, 13, 14])
    sim = run(ohlc, rules_at(5, entry_long=[1, 4], exit_long=[3]), fill="close")
    # fills at the signal bar's close; no new entry on the last bar
    assert trades(sim) == [(1, 3, 1, 100.0, 10.0, 13.0, 0.0, 300.0, 0.3, "signal")]
    assert approx_list(sim.equity) == [1000, 1000, 1100, 1300, 1300]
    assert approx_list(sim.position) == [0, 100, 100, 0, 0]


def test_fees_and_slippage_arithmetic() -> None:
    ohlc = candles([100, 100, 100, 110], [100, 100, 105, 112])
    sim = run(ohlc, rules_at(4, entry_long=[0], exit_long=[2]), capital=2000.0, fees=0.001,
              slippage=0.01, sizing_mode="quantity", sizing_value=10.0)
    # buy 10 at 100·1.01 = 101, fee 0.001·10·101 = 1.01 → cash 2000 − 1010 − 1.01 = 988.99
    # sell 10 at 110·0.99 = 108.9, fee 1.089 → cash 988.99 + 1089 − 1.089 = 2076.901
    assert trades(sim) == [(1, 3, 1, 10.0, 101.0, 108.9, 2.099, 76.901,
                            round(76.901 / 1010, 9), "signal")]
    assert approx_list(sim.equity) == [2000, 1988.99, 2038.99, 2076.901]
    assert sim.fees_paid == pytest.approx(2.099)
    assert sim.trades["reduced"].tolist() == [0.0] and sim.orders_reduced == 0


def test_reversal_long_to_short_on_one_bar() -> None:
    ohlc = candles([10, 10, 11, 12, 10, 9], [10, 11, 12, 11, 9, 9])
    sim = run(ohlc, rules_at(6, entry_long=[0], entry_short=[2], exit_short=[4]))
    # at open[3] = 12: sell the 100 long (cash 1200), then short 1200/12 = 100
    assert trades(sim) == [(1, 3, 1, 100.0, 10.0, 12.0, 0.0, 200.0, 0.2, "signal"),
                           (3, 5, -1, 100.0, 12.0, 9.0, 0.0, 300.0, 0.25, "signal")]
    assert approx_list(sim.equity) == [1000, 1100, 1200, 1300, 1500, 1500]
    assert approx_list(sim.position) == [0, 100, 100, -100, -100, 0]


def test_short_pnl() -> None:
    ohlc = candles([100, 100, 90, 80], [100, 95, 85, 80])
    sim = run(ohlc, rules_at(4, entry_short=[0], exit_short=[2]), sizing_mode="quantity",
              sizing_value=10.0)
    # short 10 at 100 (cash 2000), buy back at 80: pnl 10·(100 − 80) = 200
    assert trades(sim) == [(1, 3, -1, 10.0, 100.0, 80.0, 0.0, 200.0, 0.2, "signal")]
    assert approx_list(sim.equity) == [1000, 1050, 1150, 1200]
    assert approx_list(sim.position) == [0, -10, -10, 0]


def test_signal_conflicts() -> None:
    ohlc = candles([10] * 6, [10] * 6)
    # both entries on one bar while flat: no entry; exit while flat: ignored
    sim = run(ohlc, rules_at(6, entry_long=[0], entry_short=[0], exit_long=[1]))
    assert sim.trade_count == 0
    # exit and entry for the held side on one bar: exit only (the entry is for the side held)
    sim = run(ohlc, rules_at(6, entry_long=[0, 2], exit_long=[2]))
    assert [t[:2] for t in trades(sim)] == [(1, 3)]
    assert approx_list(sim.position) == [0, 100, 100, 0, 0, 0]


# ---------------------------------------------------------------- stops and targets

STOP_RULES = rules_at(4, entry_long=[0])


def test_stop_loss_intrabar() -> None:
    # the fill bar 1 dips to 80 but stops start on the bar after the fill bar;
    # bar 2 trades through the 90 stop → sell at 90
    ohlc = candles([100, 100, 95, 90], [100, 95, 92, 90], h=[100, 101, 96, 91],
                   lo=[100, 80, 85, 89])
    sim = run(ohlc, STOP_RULES, sizing_mode="quantity", sizing_value=10.0, stop_loss=0.1)
    assert trades(sim) == [(1, 2, 1, 10.0, 100.0, 90.0, 0.0, -100.0, -0.1, "stop_loss")]
    assert approx_list(sim.equity) == [1000, 950, 900, 900]
    assert approx_list(sim.position) == [0, 10, 0, 0]


def test_gap_through_stop_fills_at_open() -> None:
    ohlc = candles([100, 100, 85, 86], [100, 95, 86, 86], h=[100, 101, 88, 87],
                   lo=[100, 94, 84, 85])
    sim = run(ohlc, STOP_RULES, sizing_mode="quantity", sizing_value=10.0, stop_loss=0.1)
    assert trades(sim) == [(1, 2, 1, 10.0, 100.0, 85.0, 0.0, -150.0, -0.15, "stop_loss")]


def test_take_profit() -> None:
    ohlc = candles([100, 100, 105, 108], [100, 104, 108, 108], h=[100, 104, 112, 109],
                   lo=[100, 99, 104, 107])
    sim = run(ohlc, STOP_RULES, sizing_mode="quantity", sizing_value=10.0, take_profit=0.1)
    assert trades(sim) == [(1, 2, 1, 10.0, 100.0, 110.0, 0.0, 100.0, 0.1, "take_profit")]
    # a gap above the target fills at the (better) open
    ohlc = candles([100, 100, 115, 108], [100, 104, 116, 108])
    sim = run(ohlc, STOP_RULES, sizing_mode="quantity", sizing_value=10.0, take_profit=0.1)
    assert trades(sim) == [(1, 2, 1, 10.0, 100.0, 115.0, 0.0, 150.0, 0.15, "take_profit")]


def test_stop_and_target_in_one_bar_is_ambiguous_and_stop_wins() -> None:
    ohlc = candles([100, 100, 100, 100], [100, 100, 100, 100], h=[100, 100, 115, 100],
                   lo=[100, 100, 85, 100])
    sim = run(ohlc, STOP_RULES, sizing_mode="quantity", sizing_value=10.0, stop_loss=0.1,
              take_profit=0.1)
    assert trades(sim) == [(1, 2, 1, 10.0, 100.0, 90.0, 0.0, -100.0, -0.1, "stop_loss")]
    assert sim.ambiguous_bars == 1


def test_trailing_stop_long() -> None:
    # fill at 100 on bar 1 (its high of 130 is not used); bar 2: level 100·0.9 = 90, then the
    # peak becomes 120; bar 3: level 108 (above the fixed 80 stop) → sell at 108
    ohlc = candles([100, 100, 110, 115], [100, 110, 115, 110], h=[100, 130, 120, 116],
                   lo=[100, 99, 105, 107])
    sim = run(ohlc, STOP_RULES, sizing_mode="quantity", sizing_value=10.0, stop_loss=0.2,
              trailing_stop=0.1)
    assert trades(sim) == [(1, 3, 1, 10.0, 100.0, 108.0, 0.0, 80.0, 0.08, "trailing_stop")]
    assert approx_list(sim.equity) == [1000, 1100, 1150, 1080]


def test_trailing_stop_short() -> None:
    # short at 100; bar 2: level 110, trough becomes 80; bar 3: level 88 → buy back at 88
    ohlc = candles([100, 100, 90, 85], [100, 90, 85, 86], h=[100, 101, 95, 90],
                   lo=[100, 70, 80, 84])
    sim = run(ohlc, rules_at(4, entry_short=[0]), sizing_mode="quantity", sizing_value=10.0,
              trailing_stop=0.1)
    assert trades(sim) == [(1, 3, -1, 10.0, 100.0, 88.0, 0.0, 120.0, 0.12, "trailing_stop")]


def test_stop_then_reentry_on_the_same_close() -> None:
    # fill close: stopped out on bar 2 at 90, bar 2's entry signal re-enters at its close
    ohlc = candles([100, 100, 95, 92], [100, 95, 92, 92], h=[100, 101, 96, 93],
                   lo=[100, 94, 85, 91])
    sim = run(ohlc, rules_at(4, entry_long=[0, 2]), fill="close", sizing_mode="quantity",
              sizing_value=10.0, stop_loss=0.1, capital=2000.0)
    assert trades(sim) == [(0, 2, 1, 10.0, 100.0, 90.0, 0.0, -100.0, -0.1, "stop_loss"),
                           (2, 3, 1, 10.0, 92.0, 92.0, 0.0, 0.0, 0.0, "end_of_data")]


# ---------------------------------------------------------------- sizing


@pytest.mark.parametrize(("mode", "value", "qty"), [
    ("equity_fraction", 0.5, 49.455495),  # 0.5 · 1000 / (10.1 · 1.001): the budget pays the fee
    ("notional", 250.0, 24.727748),  # 250 / (10.1 · 1.001)
    ("quantity", 7.0, 7.0),
])
def test_sizing_modes(mode: str, value: float, qty: float) -> None:
    ohlc = candles([10, 10, 10], [10, 10, 10])
    sim = run(ohlc, rules_at(3, entry_long=[0]), sizing_mode=mode, sizing_value=value,
              slippage=0.01, fees=0.001)  # fill price 10 · 1.01 = 10.1
    assert sim.trades["qty"].tolist() == [pytest.approx(qty, abs=5e-7)]
    assert sim.orders_reduced == 0


def test_all_of_equity_spends_exactly_the_equity() -> None:
    # 100% of 1000 at open 100, slippage 0.5%, fees 0.1%: fill 100.5, qty 1000 / (100.5 ·
    # 1.001) = 9.940308; notional 999.000999 + fee 0.999001 = 1000: cash 0, not −fee
    ohlc = candles([100, 100, 100], [100, 100, 100])
    sim = run(ohlc, rules_at(3, entry_long=[0]), fees=0.001, slippage=0.005)
    assert sim.trades["qty"][0] == pytest.approx(9.940308448, abs=1e-9)
    cash = sim.equity[1] - sim.position[1] * 100
    assert cash == pytest.approx(0.0, abs=1e-9)  # 0 up to rounding (about 1e-13 here)
    assert sim.orders_reduced == 0


def cash_of(sim: SimResult, close: Sequence[float]) -> list[float]:
    """Cash after each bar: equity minus the marked position."""
    return [round(float(e - q * c), 6) for e, q, c in zip(sim.equity, sim.position, close,
                                                            strict=True)]


def test_cash_account_reduces_an_order_that_does_not_fit() -> None:
    ohlc = candles([100] * 4, [100] * 4)
    rules = rules_at(4, entry_long=[0], exit_long=[2])
    # 20 units cost 2000 + 2 fee > 1000: reduced to 1000 / (100 · 1.001) = 9.99001
    sim = run(ohlc, rules, fees=0.001, sizing_mode="quantity", sizing_value=20.0)
    assert sim.trades["qty"][0] == pytest.approx(9.990009990, abs=1e-9)
    assert sim.trades["reduced"].tolist() == [1.0] and sim.orders_reduced == 1
    assert min(cash_of(sim, ohlc[3])) >= 0.0
    # a notional larger than the cash: the same cap
    sim = run(ohlc, rules, fees=0.001, sizing_mode="notional", sizing_value=5000.0)
    assert sim.trades["qty"][0] == pytest.approx(9.990009990, abs=1e-9)
    assert sim.orders_reduced == 1
    # exchange precision after the cap: floored to 9 whole units, still reduced
    sim = run(ohlc, rules, fees=0.001, sizing_mode="quantity", sizing_value=20.0, qty_step=1.0)
    assert sim.trades["qty"].tolist() == [9.0] and sim.orders_reduced == 1
    assert cash_of(sim, ohlc[3])[1] == pytest.approx(1000 - 900 - 0.9)
    # the reduced order is below the exchange minimum: skipped, nothing recorded
    sim = run(ohlc, rules, fees=0.001, sizing_mode="quantity", sizing_value=20.0,
              min_notional=1500.0)
    assert sim.trade_count == 0 and sim.orders_reduced == 0


def test_rounding_tolerance_never_lifts_an_order_over_the_cash() -> None:
    # 1000 / 100.1 = 9.99000999 with step 9.990009991 (a hair above the cap): the tolerant
    # floor would round up to one step and borrow; it takes one step less (nothing) instead
    ohlc = candles([100] * 3, [100] * 3)
    sim = run(ohlc, rules_at(3, entry_long=[0]), fees=0.001, qty_step=9.990009991)
    assert sim.trade_count == 0


def test_leverage_borrows_explicitly() -> None:
    ohlc = candles([100] * 4, [100, 100, 110, 110])
    rules = rules_at(4, entry_long=[0], exit_long=[2])
    # leverage 3: 20 units cost 2002 <= 3000, bought whole; cash 1000 − 2002 = −1002 (a loan)
    sim = run(ohlc, rules, fees=0.001, sizing_mode="quantity", sizing_value=20.0,
              leverage=3.0)
    assert sim.trades["qty"].tolist() == [20.0] and sim.orders_reduced == 0
    assert cash_of(sim, ohlc[3])[1] == pytest.approx(-1002.0)
    # 40 units (4004) exceed 3 · 1000: reduced to 3000 / 100.1 = 29.97003
    sim = run(ohlc, rules, fees=0.001, sizing_mode="quantity", sizing_value=40.0,
              leverage=3.0)
    assert sim.trades["qty"][0] == pytest.approx(29.970029970, abs=1e-9)
    assert sim.orders_reduced == 1
    # 300% of equity with leverage 3 fits exactly: 3000 / (100 · 1.001)
    sim = run(ohlc, rules, fees=0.001, sizing_value=3.0, leverage=3.0)
    assert sim.trades["qty"][0] == pytest.approx(29.970029970, abs=1e-9)
    assert sim.orders_reduced == 0


def test_short_in_a_cash_account_is_fully_collateralised() -> None:
    # margin = notional / leverage: with leverage 1 a short's notional plus fee is at most the
    # equity; 20 units (2000 + 2) are cut to 9.99001, selling for 999.000999 (fee 0.999001)
    ohlc = candles([100] * 4, [100, 100, 90, 90])
    sim = run(ohlc, rules_at(4, entry_short=[0], exit_short=[2]), fees=0.001,
              sizing_mode="quantity", sizing_value=20.0)
    assert sim.trades["qty"][0] == pytest.approx(9.990009990, abs=1e-9)
    assert sim.orders_reduced == 1
    assert cash_of(sim, ohlc[3])[1] == pytest.approx(1998.001998)
    assert sim.equity[:2].tolist() == [1000.0, pytest.approx(999.000999001)]


def test_vol_target_sizing() -> None:
    # log returns +0.1 and −0.1: stdev (ddof 1) = √0.02; with 50 bars a year the annual vol is
    # √0.02·√50 = 1, so a 25% target buys a quarter of equity
    c = [100, 100 * math.exp(0.1), 100, 100, 100]
    ohlc = candles(c, c)
    common = {"sizing_mode": "vol_target", "bars_per_year": 50.0, "vol_lookback": 2}
    sim = run(ohlc, rules_at(5, entry_long=[2]), sizing_value=0.25, **common)
    assert sim.trades["qty"] == pytest.approx([2.5], rel=1e-12)  # 1000 · 0.25 / 100
    sim = run(ohlc, rules_at(5, entry_long=[2]), sizing_value=2.0, **common)
    assert sim.trades["qty"] == pytest.approx([10.0], rel=1e-12)  # fraction capped at 1
    # bar 1 has only one return behind it: no entry; flat prices (vol 0): no entry
    assert run(ohlc, rules_at(5, entry_long=[1]), sizing_value=0.25, **common).trade_count == 0
    # bar 3: returns −0.1 and 0, annual vol √0.005·√50 = 0.5 → fraction 0.5 → 5 units
    sim = run(ohlc, rules_at(5, entry_long=[3]), sizing_value=0.25, **common)
    assert sim.trades["qty"] == pytest.approx([5.0], rel=1e-12)
    flat = candles([100] * 5, [100] * 5)
    assert run(flat, rules_at(5, entry_long=[3]), sizing_value=0.25, **common).trade_count == 0


def test_qty_step_flooring() -> None:
    ohlc = candles([30, 30, 30], [30, 30, 30])
    sim = run(ohlc, rules_at(3, entry_long=[0]), qty_step=0.5)
    assert sim.trades["qty"].tolist() == [33.0]  # 1000 / 30 = 33.33… → 33.0
    sim = run(ohlc, rules_at(3, entry_long=[0]), sizing_mode="quantity", sizing_value=0.3,
              qty_step=0.1)
    assert sim.trades["qty"] == pytest.approx([0.3])  # 0.3 / 0.1 = 2.9999… counts as 3 steps


def test_min_notional_skips_small_orders() -> None:
    ohlc = candles([10, 10, 10], [10, 10, 10])
    assert run(ohlc, rules_at(3, entry_long=[0]), sizing_mode="notional", sizing_value=5.0,
               min_notional=10.0).trade_count == 0
    # rounded down to zero by the step: no order either
    assert run(ohlc, rules_at(3, entry_long=[0]), sizing_mode="quantity", sizing_value=0.05,
               qty_step=0.1).trade_count == 0
    assert run(ohlc, rules_at(3, entry_long=[0]), sizing_mode="notional", sizing_value=10.0,
               min_notional=10.0).trade_count == 1


def test_warmup_bars_never_trade() -> None:
    ohlc = candles([10] * 6, [10] * 6)
    # the rules are not masked here on purpose: the simulator enforces the warm-up itself
    sim = run(ohlc, rules_at(6, entry_long=[0, 1], exit_long=[2]), warmup=2)
    assert sim.trade_count == 0
    sim = run(ohlc, rules_at(6, entry_long=[0, 1, 3]), warmup=2)
    assert [t[:2] for t in trades(sim)] == [(4, 5)]
    sim = run(ohlc, rules_at(6, entry_long=[1, 2]), warmup=2, fill="close")
    assert [t[:2] for t in trades(sim)] == [(2, 5)]


def test_end_of_data_mark_leaves_the_position_open() -> None:
    ohlc = candles([100, 100, 100, 120], [100, 100, 110, 125])
    sim = run(ohlc, rules_at(4, entry_long=[0]), fees=0.001, slippage=0.002,
              sizing_mode="quantity", sizing_value=1.0, end_of_data="mark")
    # buy 1 at 100.2 (fee 0.1002) and keep it: no closing trade, no exit fee or slippage;
    # the last equity values it at the close: 1000 − 100.3002 + 125 = 1024.6998
    assert sim.trade_count == 0
    assert approx_list(sim.equity) == [1000, 999.6998, 1009.6998, 1024.6998]
    assert sim.position[-1] == 1.0
    assert sim.fees_paid == pytest.approx(0.1002)
    opened = {c: sim.open_trades[c].tolist() for c in TRADE_COLUMNS}
    assert opened == {"entry_bar": [1.0], "exit_bar": [3.0], "side": [1.0], "qty": [1.0],
                      "entry_price": [pytest.approx(100.2)], "exit_price": [125.0],
                      "fees": [pytest.approx(0.1002)], "pnl": [pytest.approx(24.6998)],
                      "return": [pytest.approx(24.6998 / 100.2)],
                      "exit_reason": [float(EXIT_REASONS.index("open"))], "reduced": [0.0],
                      "slot": [0.0]}
    # flat at the end: nothing to mark, same as `close`
    flat = run(ohlc, rules_at(4, entry_long=[0], exit_long=[1]), end_of_data="mark")
    assert flat.trade_count == 1 and len(flat.open_trades["entry_bar"]) == 0


def test_end_of_data_mark_short_and_reduced() -> None:
    ohlc = candles([100, 100, 100], [100, 100, 80])
    sim = run(ohlc, rules_at(3, entry_short=[0]), sizing_mode="quantity", sizing_value=50.0,
              end_of_data="mark")
    # short 50 does not fit 1000: 10 units; marked at 80: pnl 10 · (100 − 80) = 200
    assert sim.open_trades["qty"].tolist() == [10.0]
    assert sim.open_trades["pnl"].tolist() == [200.0]
    assert sim.open_trades["reduced"].tolist() == [1.0] and sim.orders_reduced == 1
    assert approx_list(sim.equity) == [1000, 1000, 1200]
    assert sim.position.tolist() == [0.0, -10.0, -10.0]


def test_end_of_data_close() -> None:
    ohlc = candles([100, 100, 100, 120], [100, 100, 110, 125])
    sim = run(ohlc, rules_at(4, entry_long=[0]), fees=0.001, slippage=0.002,
              sizing_mode="quantity", sizing_value=1.0)
    # buy 1 at 100.2 (fee 0.1002); closed at the last close 125·0.998 = 124.75 (fee 0.12475)
    assert trades(sim) == [(1, 3, 1, 1.0, 100.2, 124.75, 0.22495, 24.32505,
                            round(24.32505 / 100.2, 9), "end_of_data")]
    assert sim.position[-1] == 0.0
    assert sim.equity[-1] == pytest.approx(1000 + 24.32505)


def test_no_bars_and_missing_slots() -> None:
    e = np.array([], dtype=float)
    sim = simulate(e, e, e, e, {}, BASE)
    assert sim.trade_count == 0 and len(sim.equity) == 0
    ohlc = candles([10, 10], [10, 10])
    assert run(ohlc, {}).equity.tolist() == [1000.0, 1000.0]
    with pytest.raises(ValueError, match="shape"):
        simulate(*ohlc, {"entry_long": np.zeros(3, bool)}, BASE)


# ---------------------------------------------------------------- fast vs reference


class Library(dict):  # type: ignore[type-arg]
    def __repr__(self) -> str:
        return f"<library of {len(self)} strategies>"


@pytest.fixture(scope="module")
def library() -> dict[str, m.StrategyConfig]:
    out = Library()
    for path in STRATEGIES:
        artifact = api.compile_spec(str(path), ROOT)
        assert isinstance(artifact, m.StrategyArtifact)
        out[path.stem] = artifact.config
    return out


MAYBE_FRACTION = st.one_of(st.just(nan), st.floats(0.002, 0.2))


@st.composite
def random_settings(draw: st.DrawFn, base: SimSettings) -> SimSettings:
    mode = draw(st.sampled_from(["equity_fraction", "notional", "quantity", "vol_target"]))
    value = {"equity_fraction": st.floats(0.05, 2.0), "notional": st.floats(10.0, 20_000.0),
             "quantity": st.floats(0.01, 200.0), "vol_target": st.floats(0.05, 3.0)}[mode]
    return base.replace(
        fill=draw(st.sampled_from(["next_open", "close"])),
        fees=draw(st.sampled_from([0.0, 0.001, 0.0025])),
        slippage=draw(st.sampled_from([0.0, 0.0005, 0.003])),
        sizing_mode=mode, sizing_value=draw(value),
        stop_loss=draw(MAYBE_FRACTION), take_profit=draw(MAYBE_FRACTION),
        trailing_stop=draw(MAYBE_FRACTION),
        qty_step=draw(st.sampled_from([0.0, 0.001, 0.1, 1.0])),
        min_notional=draw(st.sampled_from([0.0, 5.0, 100.0])),
        vol_lookback=draw(st.integers(2, 30)),
        end_of_data=draw(st.sampled_from(["close", "mark"])),
        leverage=draw(st.sampled_from([1.0, 1.0, 0.5, 2.0, 3.0])),
        calendar=draw(st.sampled_from(["always", "weekdays"])),
        **draw(trade_rules()))


@st.composite
def trade_rules(draw: st.DrawFn) -> dict[str, object]:
    """Min/max hold (max above min), cooldown after a stop, a loss streak, flip or flat —
    each off half of the time."""
    min_hold = draw(st.sampled_from([0, 0, 1, 3]))
    return {"min_hold": min_hold,
            "max_hold": draw(st.sampled_from([0, 0, min_hold + 1, min_hold + 6])),
            "cooldown_after_stop": draw(st.sampled_from([0, 0, 1, 4])),
            "max_consecutive_losses": draw(st.sampled_from([0, 0, 1, 3])),
            "reversal": draw(st.sampled_from(["flip", "flat"]))}


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([p.stem for p in STRATEGIES]), seed=st.integers(0, 2**32 - 1),
       n=st.integers(1, 300), data=st.data())
def test_fast_matches_reference_on_library(library: dict[str, m.StrategyConfig], name: str,
                                           seed: int, n: int, data: st.DataObject) -> None:
    cfg = library[name]
    frame = timed(market(seed, n), cfg)  # a strategy reading `@1d` builds its days from it
    signals = evaluate(cfg, frame, random_params(cfg, np.random.default_rng(seed)))
    s = data.draw(random_settings(sim_settings(cfg, signals.params, signals.warmup)))
    ohlc = tuple(frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    assert_same_result(simulate(*ohlc, signals.rules, s),
                       reference_simulate(*ohlc, signals.rules, s))


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), density=st.floats(0.02, 0.5),
       warmup=st.integers(0, 10), data=st.data())
def test_fast_matches_reference_on_random_signals(seed: int, n: int, density: float,
                                                  warmup: int, data: st.DataObject) -> None:
    """Dense random signals reach the corners (reversals, conflicts, stop-and-re-enter)."""
    rng = np.random.default_rng(seed)
    frame = market(seed, n)
    rules = {slot: rng.random(n) < density
             for slot in ("entry_long", "exit_long", "entry_short", "exit_short")}
    s = data.draw(random_settings(SimSettings(warmup=warmup)))
    ohlc = tuple(frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    fast = simulate(*ohlc, rules, s)
    assert_same_result(fast, reference_simulate(*ohlc, rules, s))
    # invariants of the contract: final equity = capital + closed pnl (+ the open trade's)
    equity_from_trades = s.capital + fast.trades["pnl"].sum() + fast.open_trades["pnl"].sum()
    assert fast.equity[-1] == pytest.approx(equity_from_trades, rel=1e-9, abs=1e-6)
    if s.end_of_data == "close":
        assert fast.position[-1] == 0.0 and len(fast.open_trades["entry_bar"]) == 0
    else:
        assert fast.position[-1] == fast.open_trades["side"].sum() * fast.open_trades[
            "qty"].sum()
    assert (fast.trades["entry_bar"] >= min(warmup + (s.fill == "next_open"), n)).all()
    # a cash account holding a long never has negative cash (to rounding)
    cash = fast.equity - fast.position * ohlc[3]
    if s.leverage <= 1.0:
        assert (cash[fast.position > 0] >= -1e-9 * s.capital).all()


# ---------------------------------------------------------------- cold start


def test_one_compiled_signature_for_every_variant() -> None:
    """Fill modes, sizing modes, end of data, leverage and read-only (pandas copy-on-write)
    or writable inputs, with or without risk limits, all run one compiled ``run_slot``
    (and the long-only ones without limits one compiled ``fast_slot.run_fast_slot``):
    nothing specialises per variant, so the
    on-disk numba cache one backtest writes serves every later one (issue: a first `fill
    close` backtest after install spent 26 s compiling)."""
    from peakdsl.engine import fast_slot
    from peakdsl.engine import step as step_module
    from peakdsl.engine.risk import RiskLimits

    c = np.linspace(100, 110, 40)
    frozen = c.copy()
    frozen.flags.writeable = False
    rules = {"entry_long": np.arange(40) % 5 == 0, "exit_long": np.arange(40) % 7 == 0}
    simulate(c, c, c, c, rules, BASE)
    simulate(c, c, c, c, rules, BASE.replace(stop_loss=0.05))
    before = set(step_module.run_slot.signatures)  # other tests may have added their own
    fast_before = set(fast_slot.run_fast_slot.signatures)
    assert fast_before
    for close, fill, mode, end, leverage in [
            (c, "next_open", "equity_fraction", "close", 1.0),
            (frozen, "close", "notional", "mark", 2.0),
            (c.astype(np.float32), "close", "quantity", "close", 1),
            (frozen, "next_open", "vol_target", "mark", 0.5)]:
        simulate(close, close, close, close, rules, BASE.replace(
            fill=fill, sizing_mode=mode, end_of_data=end, leverage=leverage))
    times = pd.date_range("2024-01-01", periods=40, freq="h")
    simulate(c, c, c, c, rules, BASE, times=times,
             limits=RiskLimits(max_daily_loss=0.02, max_orders_per_minute=3))
    assert set(step_module.run_slot.signatures) == before, step_module.run_slot.signatures
    assert set(fast_slot.run_fast_slot.signatures) == fast_before



COLD_START = """
import time, numpy as np
t0 = time.perf_counter()
from peakdsl.engine.simulate import simulate
from peakdsl.engine.results import SimSettings
t1 = time.perf_counter()
c = np.linspace(100, 110, 50)
simulate(c, c + 1, c - 1, c, {"entry_long": np.arange(50) % 7 == 0}, SimSettings(stop_loss=0.05))
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def test_numba_cold_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Benchmark, not an assertion on time: the first call in a fresh process, with an empty
    numba cache (compilation) and with the cache this test run has already written."""
    def first_call(env: dict[str, str]) -> tuple[float, float]:
        out = subprocess.run([sys.executable, "-c", COLD_START], env=env, check=True,
                             capture_output=True, text=True, cwd=ROOT).stdout.split()
        return float(out[0]), float(out[1])

    cold_env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    imp, cold = first_call(cold_env)
    _, warm = first_call(dict(os.environ))
    with capsys.disabled():
        print(f"\n[simulate cold start] import {imp:.3f} s; first call, empty numba cache "
              f"(compile) {cold:.3f} s; first call, cached {warm:.3f} s")
    assert cold > 0 and warm > 0
