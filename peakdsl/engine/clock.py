"""The clock: many slots, each on its own market and timeframe, stepped on one time line.

A portfolio's components need not share bars: BTC on 1h and ETH on 4h open and close at
different moments, and data of one may have a hole where the other has none. The clock is
the sorted set of every moment at which some slot's bar opens or closes (a *point*); at each
point ``p``, in this order:

1. *close phase* of every slot whose bar ``k`` closes at ``p``: the intrabar stop / target /
   trailing check of positions opened before ``k``, the mark at ``close[k]``, the ``fill
   close`` decision on the signals of ``k`` (no entry on the slot's last bar), and on the last
   bar the ``end_of_data close``;
2. the mark: equity = cash + every position at its slot's last known price (a slot in the
   middle of a slower bar is marked at that bar's open — the last price it has seen), the
   daily-loss halt judged on it;
3. rebalancing (a portfolio): on the calendar or when a sleeve drifted from its weight, each
   sleeve's cash is moved so that its value is its weight of the equity again;
4. a new UTC day resets the daily-loss reference; *open phase* of every slot whose bar ``k``
   opens at ``p``: the mark at ``open[k]`` and the ``fill next_open`` decision on the signals
   of bar ``k - 1``.

A slow bar is known only after it closed: its signals are read at its close point, its high
and low only then. With every slot on the same bars this is exactly ``step.run_slot``'s
order of events (one bar = an open point then a close point), and a test requires the two to
agree bar for bar; the helpers of each event (``_fill_point``, ``exit_check``, ``_stop_exit``)
are ``step``'s own. Events at a point are stamped with the point's time (an order filled at a
bar's close is placed at that close) — for one slot a uniform shift that changes nothing.

``opening[s, p]`` / ``closing[s, p]`` give the bar of slot ``s`` that opens / closes at point
``p`` (or -1); prices and rules are per slot, ``(slots, bars)`` padded to the longest.
``equity_out[p]`` is the equity after the close phase at ``p`` (``equity_out[0]`` the
capital), ``value_out[s, p]`` the signed value of slot ``s``'s position then and
``pnl_out[s, p]`` what the slot has made so far (its trades' cash flows plus that value),
``sleeve_out[s, p]`` its sleeve's value (NaN without sleeves).
"""

from __future__ import annotations

import math
from typing import Any

from ._jit import jit
from .fill import exit_check
from .risk import L_DAILY_LOSS, new_day, update_halt
from .settings import FILL_CLOSE, SETTING_COLUMNS
from .state import (
    CASH,
    ENTRY_BAR,
    EXPOSED,
    EXTREME,
    FLOW,
    LAST_EQUITY,
    MARK,
    NEXT_REBALANCE,
    QTY,
    REBALANCES,
    SIDE,
    SLEEVE,
    FloatArray,
)
from .step import _fill_point, _stop_exit, end_slot, has_exits, max_hold_due

Array = Any
_FILL = SETTING_COLUMNS["fill"]
_WARMUP = SETTING_COLUMNS["warmup"]

# the portfolio plan vector read by the clock
REBALANCE_SECONDS, REBALANCE_DRIFT = 0, 1
PLAN_SIZE = 2


@jit
def _stops(s: int, k: int, opens: FloatArray, highs: FloatArray, lows: FloatArray,
           settings: FloatArray, level_rows: Array, account: FloatArray,
           positions: FloatArray, trades: FloatArray) -> None:
    """The intrabar stop / target / trailing check of slot ``s``'s open position on its bar
    ``k`` (called only for a position opened before ``k``)."""
    if not has_exits(s, settings, level_rows):
        return
    action, price, reason, extreme = exit_check(positions, s, opens[s, k], highs[s, k],
                                                lows[s, k])
    if action == 0:
        positions[s, EXTREME] = extreme
    else:
        _stop_exit(s, k, action, price, reason, settings, account, positions, trades)


@jit
def sleeve_value(positions: FloatArray, s: int) -> float:
    value = float(positions[s, SLEEVE])
    if positions[s, SIDE] != 0.0:
        value += positions[s, SIDE] * positions[s, QTY] * positions[s, MARK]
    return value


@jit
def _drifted(positions: FloatArray, weights: FloatArray, eq: float, drift: float) -> bool:
    for s in range(positions.shape[0]):
        if abs(sleeve_value(positions, s) / eq - weights[s]) > drift:
            return True
    return False


@jit
def _rebalance(time_s: float, eq: float, weights: FloatArray, plan: FloatArray,
               account: FloatArray, positions: FloatArray) -> None:
    """Restore every sleeve to its weight of the equity by moving cash between sleeves (no
    order: a component's open position stays; its next entry is sized off the new sleeve),
    on the calendar (``rebalance 7d``) or on drift (``rebalance drift 5%``)."""
    period = plan[REBALANCE_SECONDS]
    due = period > 0.0 and time_s >= account[NEXT_REBALANCE]
    drift = plan[REBALANCE_DRIFT]
    if not eq > 0.0 or not (due or (drift > 0.0 and _drifted(positions, weights, eq, drift))):
        return
    for s in range(positions.shape[0]):
        positions[s, SLEEVE] += weights[s] * eq - sleeve_value(positions, s)
    account[REBALANCES] += 1.0
    if period > 0.0:
        account[NEXT_REBALANCE] = time_s + period


@jit
def start_sleeves(capital: float, weights: FloatArray, plan: FloatArray, first_time: float,
                  account: FloatArray, positions: FloatArray) -> None:
    """Give each slot its weight of the capital as its sleeve; the first calendar
    rebalance falls one period after ``first_time``."""
    for s in range(positions.shape[0]):
        positions[s, SLEEVE] = weights[s] * capital
    account[NEXT_REBALANCE] = first_time + plan[REBALANCE_SECONDS]


@jit
def run_clock(start: int, stop: int, opens: FloatArray, highs: FloatArray, lows: FloatArray,
              closes: FloatArray, rules: Array, rule_rows: Array, levels: FloatArray,
              level_rows: Array, pcode: Array, pconsts: FloatArray, pseries: FloatArray,
              pin_rows: Array, pspans: Array, last_bars: Array,
              opening: Array, closing: Array, point_times: FloatArray, weights: FloatArray,
              plan: FloatArray, settings: FloatArray, limits: FloatArray, account: FloatArray,
              positions: FloatArray, trades: FloatArray, ring: FloatArray,
              equity_out: FloatArray, value_out: FloatArray, pnl_out: FloatArray,
              sleeve_out: FloatArray) -> None:
    """Points ``start`` to ``stop - 1`` of the clock (see the module docstring); a
    bar-by-bar driver calls it with ``p, p + 1``. ``trades`` needs room for two more rows
    per slot and point."""
    n_slots = positions.shape[0]
    daily = limits[L_DAILY_LOSS] < math.inf
    sleeves = not math.isnan(positions[0, SLEEVE])
    for p in range(start, stop):
        time_s = point_times[p]
        for s in range(n_slots):  # close phase: stops of positions opened before bar k
            k = closing[s, p]
            if k >= 0 and positions[s, SIDE] != 0.0 and positions[s, ENTRY_BAR] < k:
                _stops(s, k, opens, highs, lows, settings, level_rows, account, positions,
                       trades)
        for s in range(n_slots):
            k = closing[s, p]
            if k >= 0:
                positions[s, MARK] = closes[s, k]
        for s in range(n_slots):  # fill close: the signals of bar k, no entry on the last
            k = closing[s, p]
            if k >= 0 and settings[s, _FILL] == FILL_CLOSE and k >= settings[s, _WARMUP] and (
                    rules[rule_rows[s, 0], k] or rules[rule_rows[s, 1], k]
                    or rules[rule_rows[s, 2], k] or rules[rule_rows[s, 3], k]
                    or max_hold_due(s, k, settings, positions)):
                _fill_point(s, k, k, closes[s, k], k != last_bars[s], rules, rule_rows,
                            levels, level_rows, pcode, pconsts, pseries, pin_rows, pspans,
                            closes[s], settings, limits, account, positions, trades, ring,
                            time_s)
        for s in range(n_slots):
            k = closing[s, p]
            if k >= 0 and k == last_bars[s]:
                end_slot(s, k, closes, settings, account, positions, trades)
        eq = account[CASH]  # the mark
        exposed = False
        for s in range(n_slots):
            value = 0.0
            if positions[s, SIDE] != 0.0:
                value = positions[s, SIDE] * positions[s, QTY] * positions[s, MARK]
                eq += value
                exposed = True
            value_out[s, p] = value
            pnl_out[s, p] = positions[s, FLOW] + value
            sleeve_out[s, p] = positions[s, SLEEVE] + value
        equity_out[p] = eq
        account[LAST_EQUITY] = eq
        if exposed and p > 0:
            account[EXPOSED] += 1.0
        if daily and p > 0:
            update_halt(limits, account, eq)
        if sleeves and (plan[REBALANCE_DRIFT] > 0.0 or (
                plan[REBALANCE_SECONDS] > 0.0 and time_s >= account[NEXT_REBALANCE])):
            _rebalance(time_s, eq, weights, plan, account, positions)  # a call only when due
        if daily:
            new_day(limits, account, time_s)
        for s in range(n_slots):  # open phase
            k = opening[s, p]
            if k >= 0:
                positions[s, MARK] = opens[s, k]
        for s in range(n_slots):  # fill next_open: the signals of bar k - 1
            k = opening[s, p]
            r = k - 1
            if r >= 0 and settings[s, _FILL] != FILL_CLOSE and r >= settings[s, _WARMUP] and (
                    rules[rule_rows[s, 0], r] or rules[rule_rows[s, 1], r]
                    or rules[rule_rows[s, 2], r] or rules[rule_rows[s, 3], r]
                    or max_hold_due(s, r, settings, positions)):
                _fill_point(s, r, k, opens[s, k], True, rules, rule_rows, levels,
                            level_rows, pcode, pconsts, pseries, pin_rows, pspans, closes[s],
                            settings, limits, account, positions, trades, ring, time_s)


__all__ = ["PLAN_SIZE", "REBALANCE_DRIFT", "REBALANCE_SECONDS", "run_clock", "sleeve_value",
           "start_sleeves"]
