"""The step: one bar of one account, decide → risk → fill → book.

``run_slot(t, t + 1, …)`` is the step of bar ``t`` for a lone strategy; every kind of run
drives it or ``clock.run_clock`` (many slots, each on its own bars, one account — the
portfolio's loop, built from the same helpers below): a backtest over whole arrays, a sweep
once per parameter combination, the live runner one closed bar at a time with the state kept
in between.
Per bar ``t`` it does, in order (docs/backtest.md is the contract, ``reference_sim`` the
slow, obvious implementation of the same text):

1. a new UTC day resets the daily-loss reference (only when a daily-loss limit is set);
2. ``fill next_open``: each slot acts at ``open[t]`` on its signals of bar ``t - 1``;
3. the intrabar stop-loss / take-profit / trailing-stop check of positions opened before ``t``;
4. ``fill close``: each slot acts at ``close[t]`` on its signals of bar ``t`` (no entry on
   the last bar);
5. on the last bar, the ``end_of_data close`` of every position still open (with ``mark``
   it stays open and the caller reports it);
6. the mark: equity = cash + positions at ``close[t]``, the position of each slot.

Inputs per slot: its row of the price matrices, four rows of the rule matrix (``rule_rows``:
entry_long, exit_long, entry_short, exit_short; a sweep points many combinations at shared
rows), its rows of the level matrix (``level_rows``: a row per ``lang.levels.LEVEL_SLOTS``
entry — the stops and the size written as expressions, read at an entry's signal bar — or
-1 where the slot has none) and its settings record. ``times`` (epoch seconds of the bars)
is read only by the daily-loss and order-rate limits; it may be empty otherwise.
"""

from __future__ import annotations

import math
from typing import Any

from ._jit import inline, jit
from .book import book_entry, book_exit, equity, gross_exposure, open_count
from .decide import decide
from .fill import END, MAX_HOLD, SIGNAL, exit_check, fit_to_account, sized, slipped
from .position import position_rule
from .risk import L_DAILY_LOSS, assess_entry, new_day, record_order, update_halt
from .settings import FILL_CLOSE, MARK_END, REVERSAL_FLAT, SETTING_COLUMNS
from .state import (
    AMBIGUOUS,
    CASH,
    DENIED_BY,
    ENTRY_BAR,
    EXIT_LEVELS,
    EXITS,
    EXPOSED,
    EXTREME,
    HELD_BACK,
    LAST_EQUITY,
    LOSS_STREAK,
    MARK,
    MARKET,
    QTY,
    REDUCED_BY,
    SIDE,
    SIZE_LEVEL,
    SLEEVE,
    STOP_BAR,
    UNDEFINED_LEVEL,
    FloatArray,
)

Array = Any
_SLIPPAGE = SETTING_COLUMNS["slippage"]
_SIZING_MODE = SETTING_COLUMNS["sizing_mode"]
_SIZING_VALUE = SETTING_COLUMNS["sizing_value"]
_FEES = SETTING_COLUMNS["fees"]
_BARS_PER_YEAR = SETTING_COLUMNS["bars_per_year"]
_VOL_LOOKBACK = SETTING_COLUMNS["vol_lookback"]
_LEVERAGE = SETTING_COLUMNS["leverage"]
_QTY_STEP = SETTING_COLUMNS["qty_step"]
_MIN_NOTIONAL = SETTING_COLUMNS["min_notional"]
_STOP_LOSS = SETTING_COLUMNS["stop_loss"]
_TAKE_PROFIT = SETTING_COLUMNS["take_profit"]
_TRAILING_STOP = SETTING_COLUMNS["trailing_stop"]
_FILL = SETTING_COLUMNS["fill"]
_WARMUP = SETTING_COLUMNS["warmup"]
_END_OF_DATA = SETTING_COLUMNS["end_of_data"]
_MIN_HOLD = SETTING_COLUMNS["min_hold"]
_MAX_HOLD = SETTING_COLUMNS["max_hold"]
_COOLDOWN = SETTING_COLUMNS["cooldown_after_stop"]
_MAX_LOSSES = SETTING_COLUMNS["max_consecutive_losses"]
_REVERSAL = SETTING_COLUMNS["reversal"]


@inline
def _level_at(levels: FloatArray, level_rows: Array, s: int, j: int, bar: int,
              otherwise: float) -> float:
    """Slot ``s``'s level ``j`` (``lang.levels.LEVEL_SLOTS``) at ``bar``, or ``otherwise``
    when the slot has no such expression."""
    r = level_rows[s, j]
    return levels[r, bar] if r >= 0 else otherwise


@inline
def _levels_defined(levels: FloatArray, level_rows: Array, s: int, bar: int) -> bool:
    """Whether every stop and size expression of slot ``s`` is a positive number at ``bar``
    (else no entry: the order would lack what the strategy says it has)."""
    for j in range(level_rows.shape[1]):
        r = level_rows[s, j]
        if r >= 0 and not (levels[r, bar] > 0.0 and levels[r, bar] < math.inf):
            return False
    return True


@inline
def _hold_exits(s: int, bar: int, cfg: FloatArray, levels: FloatArray, level_rows: Array,
                positions: FloatArray) -> None:
    """The entered position's exits (``state.EXITS``): the settings' fractions, or the
    expressions' values at the signal ``bar``."""
    positions[s, EXITS] = _level_at(levels, level_rows, s, 0, bar, cfg[s, _STOP_LOSS])
    positions[s, EXITS + 1] = _level_at(levels, level_rows, s, 1, bar, math.nan)
    positions[s, EXITS + 2] = _level_at(levels, level_rows, s, 2, bar, cfg[s, _TAKE_PROFIT])
    positions[s, EXITS + 3] = _level_at(levels, level_rows, s, 3, bar, math.nan)
    positions[s, EXITS + 4] = _level_at(levels, level_rows, s, 4, bar, cfg[s, _TRAILING_STOP])
    positions[s, EXITS + 5] = _level_at(levels, level_rows, s, 5, bar, math.nan)


@inline
def _enter(s: int, signal_bar: int, bar: int, price: float, side: int, close: FloatArray,
           levels: FloatArray, level_rows: Array, cfg: FloatArray, limits: FloatArray,
           account: FloatArray, positions: FloatArray, ring: FloatArray, time_s: float) -> None:
    """An entry intent of slot ``s`` through risk and fill into the book.

    The sizing base is the slot's sleeve (a portfolio component: its allocation and what its
    own trades made; the slot is flat here, so that is its cash) or, without one, the whole
    account; the risk stage always judges the whole account. Stops and sizes written as
    expressions are read at ``signal_bar``."""
    if not _levels_defined(levels, level_rows, s, signal_bar):
        account[UNDEFINED_LEVEL] += 1.0
        return
    fill = slipped(price, side > 0, cfg[s, _SLIPPAGE])
    eq = equity(account, positions)
    base = positions[s, SLEEVE]
    if math.isnan(base):
        base = eq
    value = _level_at(levels, level_rows, s, SIZE_LEVEL, signal_bar, cfg[s, _SIZING_VALUE])
    qty = sized(base, fill, close, signal_bar, int(cfg[s, _SIZING_MODE]), value,
                cfg[s, _FEES], cfg[s, _BARS_PER_YEAR], int(cfg[s, _VOL_LOOKBACK]))
    same, total = gross_exposure(positions, s, positions[s, MARKET])
    qty, reason, denied = assess_entry(limits, account, open_count(positions), eq, same,
                                       total, qty, fill, time_s, ring)
    if denied:
        account[DENIED_BY + reason] += 1.0
        return
    power = min(cfg[s, _LEVERAGE] * eq - total, cfg[s, _LEVERAGE] * base)
    qty, cash_cut = fit_to_account(qty, price, fill, power, cfg[s, _FEES], cfg[s, _QTY_STEP],
                                   cfg[s, _MIN_NOTIONAL])
    if qty > 0.0:
        book_entry(account, positions, s, bar, side, fill, qty, cfg[s, _FEES],
                   cash_cut or reason != 0)
        _hold_exits(s, signal_bar, cfg, levels, level_rows, positions)
        if reason != 0:
            account[REDUCED_BY + reason] += 1.0
        record_order(limits, account, ring, time_s)
    elif reason != 0:
        account[DENIED_BY + reason] += 1.0


@inline
def _held_rules(s: int, signal_bar: int, exit_: bool, side: int, cfg: FloatArray,
                account: FloatArray, positions: FloatArray) -> tuple[bool, int, int]:
    """The trade rules on what ``decide`` asked of a held position: no signal exit (nor a
    flip) before ``min_hold`` bars, an exit once ``max_hold`` bars are reached, and with
    ``reversal flat`` an opposite entry only closes. → (exit, side to enter, exit reason)."""
    age = signal_bar - positions[s, ENTRY_BAR]
    reason = SIGNAL
    if exit_ and age < cfg[s, _MIN_HOLD]:
        account[HELD_BACK] += 1.0
        return False, 0, reason
    if not exit_ and cfg[s, _MAX_HOLD] > 0.0 and age >= cfg[s, _MAX_HOLD]:
        return True, 0, MAX_HOLD
    if exit_ and cfg[s, _REVERSAL] == REVERSAL_FLAT:
        side = 0
    return exit_, side, reason


@inline
def _entry_allowed(s: int, signal_bar: int, cfg: FloatArray, account: FloatArray,
                   positions: FloatArray) -> bool:
    """No entry within ``cooldown_after_stop`` bars of the slot's last stop exit, nor after
    ``max_consecutive_losses`` losing trades in a row (counted when held back)."""
    if signal_bar - positions[s, STOP_BAR] < cfg[s, _COOLDOWN]:
        account[HELD_BACK + 1] += 1.0
        return False
    if cfg[s, _MAX_LOSSES] > 0.0 and positions[s, LOSS_STREAK] >= cfg[s, _MAX_LOSSES]:
        account[HELD_BACK + 2] += 1.0
        return False
    return True


@jit
def max_hold_due(s: int, signal_bar: int, settings: FloatArray,
                 positions: FloatArray) -> bool:
    """Whether slot ``s``'s position reached ``max_hold`` at ``signal_bar`` (a fill point is
    then due even when no rule fired)."""
    limit = settings[s, _MAX_HOLD]
    return bool(limit > 0.0 and positions[s, SIDE] != 0.0
                and signal_bar - positions[s, ENTRY_BAR] >= limit)


@inline
def _asked(s: int, j: int, fired: bool, bar: int, close: FloatArray, positions: FloatArray,
           pcode: Array, pconsts: FloatArray, pseries: FloatArray, pin_rows: Array,
           pspans: Array) -> bool:
    """Rule ``j`` of slot ``s`` at ``bar``: its row, or — for a rule that reads the
    position, whose row only says it may fire — its body with the position held now."""
    if not fired or pspans[s, j, 1] == pspans[s, j, 0]:
        return fired
    return position_rule(s, j, bar, close, positions, pcode, pconsts, pseries, pin_rows,
                         pspans)


@jit
def _fill_point(s: int, signal_bar: int, bar: int, price: float, allow_entry: bool,
                rules: Array, rows: Array, levels: FloatArray, level_rows: Array,
                pcode: Array, pconsts: FloatArray, pseries: FloatArray, pin_rows: Array,
                pspans: Array, close: FloatArray, cfg: FloatArray,
                limits: FloatArray, account: FloatArray, positions: FloatArray,
                trades: FloatArray, ring: FloatArray, time_s: float) -> None:
    """Slot ``s`` acts on its signals of ``signal_bar`` at ``price`` on ``bar`` (called only
    when one fired: a real call, kept out of the per-bar path)."""
    el = _asked(s, 0, rules[rows[s, 0], signal_bar], signal_bar, close, positions, pcode,
                pconsts, pseries, pin_rows, pspans)
    xl = _asked(s, 1, rules[rows[s, 1], signal_bar], signal_bar, close, positions, pcode,
                pconsts, pseries, pin_rows, pspans)
    es = _asked(s, 2, rules[rows[s, 2], signal_bar], signal_bar, close, positions, pcode,
                pconsts, pseries, pin_rows, pspans)
    xs = _asked(s, 3, rules[rows[s, 3], signal_bar], signal_bar, close, positions, pcode,
                pconsts, pseries, pin_rows, pspans)
    exit_, side = decide(int(positions[s, SIDE]), el, xl, es, xs)
    reason = SIGNAL
    if positions[s, SIDE] != 0.0:
        exit_, side, reason = _held_rules(s, signal_bar, exit_, side, cfg, account, positions)
    if exit_:
        fill = slipped(price, positions[s, SIDE] < 0, cfg[s, _SLIPPAGE])
        book_exit(account, positions, trades, s, bar, fill, reason, cfg[s, _FEES])
        record_order(limits, account, ring, time_s)
    if allow_entry and side != 0 and _entry_allowed(s, signal_bar, cfg, account, positions):
        _enter(s, signal_bar, bar, price, side, close, levels, level_rows, cfg, limits, account,
               positions, ring, time_s)


@jit
def _stop_exit(s: int, t: int, action: int, price: float, reason: int, cfg: FloatArray,
               account: FloatArray, positions: FloatArray, trades: FloatArray) -> None:
    """Book what ``fill.exit_check`` decided on bar ``t``: close slot ``s`` at ``price``
    (action 1), counting an ambiguous bar (action 2)."""
    if action == 2:
        account[AMBIGUOUS] += 1.0
    fill = slipped(price, positions[s, SIDE] < 0, cfg[s, _SLIPPAGE])
    book_exit(account, positions, trades, s, t, fill, reason, cfg[s, _FEES])


@jit
def has_exits(s: int, settings: FloatArray, level_rows: Array) -> bool:
    """Whether slot ``s`` has a stop, a target or a trailing stop, set or written as an
    expression (else its positions are never checked intrabar)."""
    found = False
    for c in (_STOP_LOSS, _TAKE_PROFIT, _TRAILING_STOP):
        found = found or not math.isnan(settings[s, c])
    for j in range(len(EXIT_LEVELS)):
        found = found or level_rows[s, j] >= 0
    return found


@jit
def end_slot(s: int, k: int, closes: FloatArray, settings: FloatArray, account: FloatArray,
             positions: FloatArray, trades: FloatArray) -> None:
    """Slot ``s``'s last bar ``k``: close its position (``end_of_data close``)."""
    if positions[s, SIDE] != 0.0 and settings[s, _END_OF_DATA] != MARK_END:
        fill = slipped(closes[s, k], positions[s, SIDE] < 0, settings[s, _SLIPPAGE])
        book_exit(account, positions, trades, s, k, fill, END, settings[s, _FEES])


@jit
def _daily_loss(t_equity: float, time_s: float, new_bar: bool, limits: FloatArray,
                account: FloatArray) -> None:
    """The daily-loss bookkeeping: a new UTC day at a bar's start, the halt at its mark."""
    if new_bar:
        new_day(limits, account, time_s)
    else:
        update_halt(limits, account, t_equity)


@jit
def run_slot(start: int, stop: int, last_bar: int, opens: FloatArray, highs: FloatArray,
             lows: FloatArray, closes: FloatArray, rules: Array, rule_rows: Array,
             levels: FloatArray, level_rows: Array, pcode: Array, pconsts: FloatArray,
             pseries: FloatArray, pin_rows: Array, pspans: Array, times: FloatArray,
             settings: FloatArray,
             limits: FloatArray, account: FloatArray, positions: FloatArray, trades: FloatArray,
             ring: FloatArray, equity_out: FloatArray, position_out: FloatArray) -> None:
    """Bars ``start`` to ``stop - 1`` of the commonest account, one slot (a strategy
    backtest, each sweep combination, the bar-by-bar driver), with the slot's settings and
    rule rows read once into locals instead of once a bar. ``clock.run_clock`` runs the same
    events through the same helpers for many slots; a test requires both loops to agree on
    every library strategy.

    The bar's body is written out here rather than called as a function: an IR-inlined step
    taking seventeen arrays cost numba reference-count calls on every bar (measured 40×
    slower). Per bar it reads plain numbers; the helpers it calls (a fill point, the stop
    exit, end of data, the daily-loss bookkeeping) run only when there is work to do."""
    el, xl, es, xs = rule_rows[0, 0], rule_rows[0, 1], rule_rows[0, 2], rule_rows[0, 3]
    fill_close = settings[0, _FILL] == FILL_CLOSE
    warmup = settings[0, _WARMUP]
    stops = has_exits(0, settings, level_rows)
    held_rules = settings[0, _MAX_HOLD] > 0.0
    daily = limits[L_DAILY_LOSS] < math.inf
    keep_position = position_out.shape[1] == equity_out.shape[0]
    open_ = opens[0]
    close = closes[0]
    for t in range(start, stop):
        time_s = times[t] if times.shape[0] > 0 else 0.0
        if daily:
            _daily_loss(0.0, time_s, True, limits, account)
        positions[0, MARK] = open_[t]
        r = t - 1
        if not fill_close and r >= 0 and r >= warmup and (
                rules[el, r] or rules[xl, r] or rules[es, r] or rules[xs, r]
                or (held_rules and max_hold_due(0, r, settings, positions))):
            _fill_point(0, r, t, open_[t], True, rules, rule_rows, levels, level_rows, pcode,
                        pconsts, pseries, pin_rows, pspans, close, settings, limits, account,
                        positions, trades, ring, time_s)
        if stops and positions[0, SIDE] != 0.0 and positions[0, ENTRY_BAR] < t:
            action, price, reason, extreme = exit_check(positions, 0, open_[t], highs[0, t],
                                                        lows[0, t])
            if action == 0:
                positions[0, EXTREME] = extreme
            else:
                _stop_exit(0, t, action, price, reason, settings, account, positions, trades)
        positions[0, MARK] = close[t]
        if fill_close and t >= warmup and (
                rules[el, t] or rules[xl, t] or rules[es, t] or rules[xs, t]
                or (held_rules and max_hold_due(0, t, settings, positions))):
            _fill_point(0, t, t, close[t], t != last_bar, rules, rule_rows, levels, level_rows,
                        pcode, pconsts, pseries, pin_rows, pspans, close, settings, limits,
                        account, positions, trades, ring, time_s)
        if t == last_bar:
            end_slot(0, t, closes, settings, account, positions, trades)
        held = positions[0, SIDE] * positions[0, QTY]
        eq = account[CASH]
        if keep_position:
            position_out[0, t] = held
        if positions[0, SIDE] != 0.0:
            eq += held * close[t]
            account[EXPOSED] += 1.0
        equity_out[t] = eq
        account[LAST_EQUITY] = eq
        if daily:
            _daily_loss(eq, time_s, False, limits, account)
