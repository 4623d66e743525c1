"""The specialised bar loop: one slot that trades one side, without stops or risk limits.

The commonest run — a long-only (or short-only) strategy exiting on its rules, in a backtest
or a sweep — does not need most of what ``step.run_slot`` does every bar: no intrabar stop
check, no daily-loss bookkeeping, no order times, and of the four rules only one matters at
a time (flat: the entry; in a position: its exit; ``decide`` then reduces to exactly that).
So this loop runs from event to event: the rule that matters is scanned for the next bar
at which it holds (``rule_code``'s loops, the sweep's rules read from the cached series),
the bars before it are marked in a tight loop of plain numbers (equity = cash, or cash +
position × close), and the fill prices, sizes and caps through the fill stage's own pure
helpers (``slipped``, ``sized``, ``fit_to_account``) while the book's arithmetic
(``book.book_entry`` / ``book_exit``) is repeated on local variables, operation for
operation: the book's helpers write the account arrays, which costs numba reference
counting at every event. Same events, same order, same bits: ``tests/engine/test_step.py``
requires it to equal ``run_slot`` (and the bar-by-bar driver) on every library strategy,
``tests/engine/test_fast_slot.py`` on random signals under every setting.

It also does the metrics' first pass while it marks the equity (the fused reference's
shape): each bar's return and the drawdown state (``stats.mark_bar``; a flat stretch in one
step, ``stats.mark_flat``), so ``stats.metrics_marked`` reads no equity again; and it counts
the bars held, so nothing counts the position again. A backtest asks it not to write the
per-bar position at all: ``TradePosition`` rebuilds it from the trades when a report reads
it (``tests/engine/test_marks.py``: the same bits as the general loop's, and as
``metrics_core``'s pass on any curve).

``specialised_side`` says when it applies: stops, take-profits and trailing stops unset,
no risk limit, no trade rule (min/max hold, cooldown, loss streak), and entries on one side
only (the other side's entry absent or never true).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._jit import inline, jit
from .decide import FLAT, LONG, SHORT
from .fill import END, SIGNAL, fit_to_account, sized, slipped
from .rule_code import (
    OPERAND_ROW,
    ROW,
    SERIES_TERMS,
    BoolMatrix,
    IntArray,
    form,
    interpret,
    scan_row,
    scan_series,
    scan_terms,
    tight_start,
)
from .settings import FILL_CLOSE, MARK_END, SETTING_COLUMNS
from .state import (
    CASH,
    ENTRY_BAR,
    ENTRY_FEE,
    ENTRY_PRICE,
    ENTRY_REDUCED,
    EXPOSED,
    EXTREME,
    FEES,
    FLOW,
    LAST_EQUITY,
    MARK,
    QTY,
    REDUCED,
    SIDE,
    TRADES,
    FloatArray,
)
from .stats import (
    M_DRAWDOWN,
    M_FINITE,
    M_LONGEST,
    M_LOW,
    M_PEAK,
    M_PREVIOUS,
    M_RUN,
    mark_bar,
    mark_flat,
)

_FILL = SETTING_COLUMNS["fill"]
_WARMUP = SETTING_COLUMNS["warmup"]
_SLIPPAGE = SETTING_COLUMNS["slippage"]
_FEES = SETTING_COLUMNS["fees"]
_SIZING_MODE = SETTING_COLUMNS["sizing_mode"]
_SIZING_VALUE = SETTING_COLUMNS["sizing_value"]
_BARS_PER_YEAR = SETTING_COLUMNS["bars_per_year"]
_VOL_LOOKBACK = SETTING_COLUMNS["vol_lookback"]
_LEVERAGE = SETTING_COLUMNS["leverage"]
_QTY_STEP = SETTING_COLUMNS["qty_step"]
_MIN_NOTIONAL = SETTING_COLUMNS["min_notional"]
_END_OF_DATA = SETTING_COLUMNS["end_of_data"]
_STOPS = tuple(SETTING_COLUMNS[k] for k in ("stop_loss", "take_profit", "trailing_stop"))
# trade rules this loop does not run (0: off)
TRADE_RULES = tuple(SETTING_COLUMNS[k] for k in ("min_hold", "max_hold", "cooldown_after_stop",
                                                 "max_consecutive_losses"))
(ENTRY, EXIT) = range(2)  # rows of the ``spans`` the loop takes


def specialised_side(settings: Any, limits_active: bool, long_entries: bool,
                     short_entries: bool) -> int:
    """``LONG`` / ``SHORT`` when this loop can run the slot (settings: its float row), else
    ``FLAT``: no stop of any kind, no risk limit, entries on at most one side."""
    if limits_active or any(not math.isnan(float(settings[c])) for c in _STOPS):
        return FLAT
    if any(float(settings[c]) > 0.0 for c in TRADE_RULES):
        return FLAT
    if long_entries and short_entries:
        return FLAT
    return SHORT if short_entries else LONG


@inline
def _entry(cash: float, price: float, side: int, close: FloatArray, signal_bar: int,
           cfg: FloatArray) -> tuple[float, float, bool]:
    """``step._enter`` for a flat lone slot without limits: (fill, quantity, cut by cash).

    Equity is the cash (nothing is held), the sizing base that equity (no sleeve), the gross
    exposure of other slots 0 and the risk stage approves everything: what is left is
    sizing, the account's cap and the exchange's precision, through the same helpers."""
    fill = slipped(price, side > 0, cfg[_SLIPPAGE])
    qty = sized(cash, fill, close, signal_bar, int(cfg[_SIZING_MODE]), cfg[_SIZING_VALUE],
                cfg[_FEES], cfg[_BARS_PER_YEAR], int(cfg[_VOL_LOOKBACK]))
    # step._enter's min(leverage · equity − others' exposure, leverage · base), written alike
    power = min(cfg[_LEVERAGE] * cash - 0.0, cfg[_LEVERAGE] * cash)
    qty, cut = fit_to_account(qty, price, fill, power, cfg[_FEES], cfg[_QTY_STEP],
                              cfg[_MIN_NOTIONAL])
    return fill, qty, cut


@jit
def _close(trades: FloatArray, count: int, bar: int, reason: int, price: float,
           book: tuple[float, float, float], held: tuple[float, float, float, float, float,
                                                       float], cfg: FloatArray
           ) -> tuple[float, float, float]:
    """``book.book_exit`` on locals: close the position ``held`` (side, qty, entry price,
    entry bar, entry fee, reduced) at ``price`` on ``bar``, write trade row ``count``;
    returns the book ``(cash, fees paid, flow)`` after it."""
    cash, fees_paid, flow = book
    side, qty, entry, entry_bar, entry_fee, reduced = held
    fees = cfg[_FEES]
    fill = slipped(price, side < 0, cfg[_SLIPPAGE])
    fee = fees * qty * fill
    cash += side * qty * fill - fee
    fees_paid += fee
    flow += side * qty * fill - fee
    total_fees = entry_fee + fee
    pnl = side * qty * (fill - entry) - total_fees
    row = trades[count]
    row[0] = entry_bar
    row[1] = bar
    row[2] = side
    row[3] = qty
    row[4] = entry
    row[5] = fill
    row[6] = total_fees
    row[7] = pnl
    row[8] = pnl / (qty * entry)
    row[9] = reason
    row[10] = reduced
    row[11] = 0.0
    return cash, fees_paid, flow


@inline
def _rule(code: IntArray, spans: IntArray, which: int) -> tuple[int, int, int, int]:
    """A rule's span and ``rule_code.form``, as numbers (read once per run)."""
    lo, hi = spans[which, 0], spans[which, 1]
    shape, head = form(code, lo, hi)
    return lo, hi, shape, head


@jit
def _store(account: FloatArray, positions: FloatArray, book: tuple[float, float, int, float,
           float, float], held: tuple[float, float, float, float, float, float, float, float],
           mark: float) -> None:
    """Write the loop's locals back where ``run_slot`` keeps them."""
    cash, fees_paid, count, exposed, reduced, last_equity = book
    account[CASH] = cash
    account[FEES] = fees_paid
    account[TRADES] = count
    account[EXPOSED] = exposed
    account[REDUCED] = reduced
    account[LAST_EQUITY] = last_equity
    pos = positions[0]
    (pos[SIDE], pos[QTY], pos[ENTRY_PRICE], pos[ENTRY_BAR], pos[ENTRY_FEE], pos[EXTREME],
     pos[ENTRY_REDUCED], pos[FLOW]) = held
    pos[MARK] = mark


@jit
def _store_marks(marks: FloatArray, state: tuple[float, float, float, float, float, float,
                                                 float]) -> None:
    """Write the loop's drawdown locals back into ``marks`` (``stats`` layout)."""
    (marks[M_PREVIOUS], marks[M_PEAK], marks[M_DRAWDOWN], marks[M_LOW], marks[M_RUN],
     marks[M_LONGEST], marks[M_FINITE]) = state


@jit
def run_fast_slot(start: int, stop: int, last_bar: int, opens: FloatArray, closes: FloatArray,
                  code: IntArray, spans: IntArray, series: FloatArray, flags: BoolMatrix,
                  consts: FloatArray, side: int, settings: FloatArray, account: FloatArray,
                  positions: FloatArray, trades: FloatArray, equity_out: FloatArray,
                  position_out: FloatArray, returns_out: FloatArray,
                  marks: FloatArray) -> None:  # pragma: no cover - jitted
    """Bars ``start`` to ``stop - 1`` of one slot entering on ``side`` only (see the module
    docstring): the entry rule is ``spans[ENTRY]`` of ``code``, the exit ``spans[EXIT]``.
    The state is read from and left in ``account`` / ``positions`` / ``trades`` as
    ``run_slot`` leaves it; in between it lives in locals.

    ``position_out`` is written when it is as long as ``equity_out`` (else: ``NO_POSITION``,
    ``TradePosition`` rebuilds it); ``returns_out`` likewise, with each bar's return, while
    the drawdown state ``marks`` (``stats.reset_marks``) follows the equity as it is marked
    (``stats.mark_bar``; a flat stretch at once, ``mark_flat``): ``stats.metrics_marked``
    then needs no pass over the equity. (The metrics' first pass, fused: the reference's
    shape. A flat stretch costs no division.)

    From event to event: the bars before the next action are marked in a tight loop; at
    the action's bar the fill, then (on the last bar) the end of data, then the mark. The
    rule dispatch and the marking are written out here, not called: as helpers (inlined
    or not) they cost numba reference counting of their array arguments at every event,
    measured 1.5-2x slower over the whole loop."""
    cfg = settings[0]
    fill_close = cfg[_FILL] == FILL_CLOSE
    warmup, fees = int(cfg[_WARMUP]), cfg[_FEES]
    close_at_end = cfg[_END_OF_DATA] != MARK_END
    keep = position_out.shape[1] == equity_out.shape[0]
    track = returns_out.shape[0] == equity_out.shape[0]
    previous, peak, drawdown, low = marks[M_PREVIOUS], marks[M_PEAK], marks[M_DRAWDOWN], \
        marks[M_LOW]
    run, longest, finite = int(marks[M_RUN]), int(marks[M_LONGEST]), marks[M_FINITE] != 0.0
    open_, close = opens[0], closes[0]
    cash, fees_paid, count = account[CASH], account[FEES], int(account[TRADES])
    exposed, reduced, last_equity = account[EXPOSED], account[REDUCED], account[LAST_EQUITY]
    held, qty, entry = positions[0, SIDE], positions[0, QTY], positions[0, ENTRY_PRICE]
    entry_bar, entry_fee = positions[0, ENTRY_BAR], positions[0, ENTRY_FEE]
    extreme, cut, flow = positions[0, EXTREME], positions[0, ENTRY_REDUCED], positions[0, FLOW]
    mark = positions[0, MARK]
    entry_rule, exit_rule = _rule(code, spans, ENTRY), _rule(code, spans, EXIT)
    t = start
    while t < stop:
        # the next bar at which the slot acts, and the bar of the signal it acts on: flat,
        # the first entry signal (fill close: never on the last bar); in a position, its
        # exit signal; fill next_open acts a bar later. rule_code.first_fire's dispatch,
        # written out: as an inlined function it cost reference counting at every event
        lo, hi, shape, head = exit_rule if held != 0.0 else entry_rule
        if fill_close:
            first, last = max(t, warmup), (stop if held != 0.0 else min(stop, last_bar))
        else:
            first, last = max(t - 1, warmup, 0), stop - 1
        signal = last
        if first < last and hi > lo and shape == ROW:
            signal = scan_row(flags, code[lo, OPERAND_ROW], first, last)
        elif first < last and hi > lo:
            tight = tight_start(shape, head, first, last)
            signal = interpret(code, lo, hi, series, flags, consts, first, tight) \
                if first < tight else tight
            if signal == tight < last and shape == SERIES_TERMS:
                signal = scan_series(code, lo, hi - 1, series, tight, last)
            elif signal == tight < last:
                signal = scan_terms(code, lo, 1 if hi - lo == 1 else 2, series, consts, tight,
                                    last)
        act = stop if signal >= last else (signal if fill_close else signal + 1)
        bar = min(act, last_bar)  # no action: the last bar (its end of data) is next
        position = held * qty
        # the bars before it, through slices indexed from 0 (numba then drops its
        # negative-index handling: the flat stretches become a plain fill)
        span, marked = max(bar - t, 0), equity_out[t:bar]
        if held != 0.0 and track:
            closes_held, returns_held = close[t:bar], returns_out[t:bar]
            for k in range(span):
                v = cash + position * closes_held[k]
                marked[k] = v
                r, peak, drawdown, low, run, longest = mark_bar(v, previous, peak, drawdown,
                                                                low, run, longest)
                returns_held[k] = r
                finite &= math.isfinite(r)
                previous = v
            exposed += span
        elif held != 0.0:
            closes_held = close[t:bar]
            for k in range(span):
                marked[k] = cash + position * closes_held[k]
            exposed += span
        else:
            for k in range(span):
                marked[k] = cash
            if track and span > 0:
                r, later, peak, drawdown, low, run, longest = mark_flat(
                    cash, span, previous, peak, drawdown, low, run, longest)
                returns_out[t] = r
                returns_flat = returns_out[t + 1:bar]
                for k in range(span - 1):
                    returns_flat[k] = later
                finite &= math.isfinite(r) and (span == 1 or math.isfinite(later))
                previous = cash
        if keep:
            held_out = position_out[0, t:bar]
            for k in range(span):
                held_out[k] = position
        if bar > t:
            last_equity, mark = equity_out[bar - 1], close[bar - 1]
        if bar >= stop:
            break
        price = close[bar] if fill_close else open_[bar]
        if act == bar and held == 0.0:
            fill, size, reduce = _entry(cash, price, side, close, signal, cfg)
            if size > 0.0:
                fee = fees * size * fill
                cash -= side * size * fill + fee
                fees_paid += fee
                flow -= side * size * fill + fee
                held, qty, entry, entry_bar, entry_fee, extreme = side, size, fill, bar, fee, fill
                cut = 1.0 if reduce else 0.0
                reduced += cut
        elif act == bar:
            cash, fees_paid, flow = _close(trades, count, bar, SIGNAL, price,
                                           (cash, fees_paid, flow),
                                           (held, qty, entry, entry_bar, entry_fee, cut), cfg)
            count, held, qty = count + 1, 0.0, 0.0
        if bar == last_bar and held != 0.0 and close_at_end:
            cash, fees_paid, flow = _close(trades, count, bar, END, close[bar],
                                           (cash, fees_paid, flow),
                                           (held, qty, entry, entry_bar, entry_fee, cut), cfg)
            count, held, qty = count + 1, 0.0, 0.0
        position = held * qty
        last_equity = cash
        if held != 0.0:
            last_equity += position * close[bar]
            exposed += 1.0
        equity_out[bar] = last_equity
        if keep:
            position_out[0, bar] = position
        if track:
            r, peak, drawdown, low, run, longest = mark_bar(last_equity, previous, peak,
                                                            drawdown, low, run, longest)
            returns_out[bar] = r
            finite &= math.isfinite(r)
            previous = last_equity
        mark = close[bar]
        t = bar + 1
    _store(account, positions, (cash, fees_paid, count, exposed, reduced, last_equity),
           (held, qty, entry, entry_bar, entry_fee, extreme, cut, flow), mark)
    _store_marks(marks, (previous, peak, drawdown, low, float(run), float(longest),
                         1.0 if finite else 0.0))


def entry_rows(side: int) -> tuple[int, int]:
    """The ``RULE_SLOTS`` rows of the entry and exit rules of a one-sided slot."""
    return (0, 1) if side == LONG else (2, 3)


NO_CONSTS = np.zeros(0)
NO_CONSTS.flags.writeable = False


# ``run_fast_slot``'s ``position_out`` / ``returns_out`` when they are not written; writable,
# as every one is (one compiled signature), though nothing fits in them
NO_POSITION = np.zeros((1, 0))
NO_RETURNS = np.zeros(0)


@dataclass(frozen=True)
class TradePosition:
    """The per-bar position of a ``run_fast_slot`` run, rebuilt from its trades (a
    ``results.Deferred``): what the loop writes when asked, without its writing it.

    Between events the loop holds ``held · qty`` — a trade's ``side · qty``, the same
    product of the same doubles — from its entry bar up to its exit bar, exclusive (the
    exit bar ends flat, an end-of-data close too), to the end for the position an
    ``end_of_data mark`` run leaves open, and ``0.0 · 0.0 = +0.0`` elsewhere. One slot, one
    side, no stops: trades never overlap and come in entry order, the open one last."""

    bars: int
    closed: Mapping[str, Any]  # trade columns (``simulate.trades_dict``)
    still_open: Mapping[str, Any]

    def build(self) -> FloatArray:
        """Flat and held runs alternating, each value repeated over its bars."""
        entry = np.concatenate([self.closed["entry_bar"], self.still_open["entry_bar"]])
        leave = np.concatenate([self.closed["exit_bar"],
                                np.full(len(self.still_open["entry_bar"]), self.bars)])
        held = np.concatenate([t["side"] * t["qty"] for t in (self.closed, self.still_open)])
        values = np.zeros(2 * len(entry) + 1)
        values[1::2] = held
        bounds = np.empty(2 * len(entry) + 2, dtype=np.int64)
        bounds[0], bounds[-1] = 0, self.bars
        bounds[1:-1:2], bounds[2:-1:2] = entry, leave
        return np.repeat(values, np.diff(bounds))
