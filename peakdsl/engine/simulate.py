"""Drivers of the step: one strategy's signals + OHLC + settings → trades, equity, position.

``simulate`` runs the whole array in one jitted call: through ``fast_slot.run_fast_slot``
when the run allows it (entries on one side, no stops, no risk limits: the commonest spec),
else through ``step.run_slot``; ``BarByBar`` calls ``run_slot`` one bar at a time and keeps
the account, positions and trade rows in between (what the live runner does). A test
requires all three to agree exactly on every library strategy (``general=True`` forces
``run_slot``). ``reference_sim.reference_simulate`` is the slow, obvious implementation of
the same contract (docs/backtest.md), and a property test requires it to agree too.

Everything is converted here, outside the jitted code: prices to read-only contiguous
``(1, bars)`` views, the four rules to a ``(4, bars)`` bool matrix, the settings to a
one-record structured array, the risk limits to theirs. Read-only views everywhere: one
compiled signature serves every caller, so the on-disk numba cache a first backtest writes
is hit by all later ones.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from ..lang.ast import RULE_SLOTS
from ..lang.levels import LEVEL_SLOTS
from .book import open_trade_rows
from .decide import FLAT
from .fast_slot import (
    ENTRY,
    EXIT,
    NO_CONSTS,
    NO_POSITION,
    TradePosition,
    entry_rows,
    run_fast_slot,
    specialised_side,
)
from .position import Packed, PositionRule, pack
from .results import TRADE_COLUMNS, SimResult, SimSettings
from .risk import NO_LIMITS, RiskLimits
from .rule_code import FLAGS, TRUTH, WIDTH
from .settings import as_matrix, record_values, to_records
from .state import (
    AMBIGUOUS,
    DENIED_BY,
    EXPOSED,
    FEES,
    HELD_BACK,
    HOLD_RULES,
    N_COLUMNS,
    REDUCED_BY,
    RISK_REASONS,
    TRADES,
    UNDEFINED_LEVEL,
    new_account,
    new_positions,
)
from .stats import MARKS, reset_marks
from .step import run_slot

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
_A = TypeVar("_A", bound=np.ndarray[Any, Any])

TRADES_PER_STEP = 2  # at most this many trades close per slot and bar (the last: 2)
ONE_SLOT_ROWS = np.arange(len(RULE_SLOTS), dtype=np.int64).reshape(1, -1)
ONE_SLOT_ROWS.flags.writeable = False
# the fast loop's rule code in a backtest: each rule read from its own row of a (2, n) bool
# matrix (``rule_code``: TRUTH of FLAGS row 0 = the entry, row 1 = the exit)
ROW_CODE = np.zeros((2, WIDTH), dtype=np.int64)
ROW_CODE[:, 0] = TRUTH
ROW_CODE[:, 1] = FLAGS
ROW_CODE[1, 2] = 1
ROW_CODE.flags.writeable = False
NO_SERIES = np.zeros((0, 0))
NO_SERIES.flags.writeable = False


def frozen(arr: _A) -> _A:
    """A read-only view (no copy): the one array flavour the compiled loop is cached for."""
    view = arr.view()
    view.flags.writeable = False
    return view


def _column(values: Any, n: int, name: str) -> FloatArray:
    out = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if out.shape != (n,):
        raise ValueError(f"`{name}` has shape {out.shape}, expected ({n},)")
    return out


def _rule(rules: Mapping[str, Any], slot: str, n: int) -> BoolArray | None:
    """One rule as a bool array of ``n`` (None when the strategy has no such rule)."""
    if slot not in rules:
        return None
    arr = np.asarray(rules[slot], dtype=np.bool_)
    if arr.shape != (n,):
        raise ValueError(f"rule `{slot}` has shape {arr.shape}, expected ({n},)")
    return arr


def rule_matrix(rules: Mapping[str, Any], n: int) -> BoolArray:
    """The four rule slots as one ``(4, n)`` bool matrix (a missing slot: all False)."""
    out = np.zeros((len(RULE_SLOTS), n), dtype=np.bool_)
    for i, slot in enumerate(RULE_SLOTS):
        arr = _rule(rules, slot, n)
        if arr is not None:
            out[i] = arr
    return frozen(out)


def level_matrix(levels: Mapping[str, Any] | None, n: int) -> tuple[FloatArray, IntArray]:
    """A slot's stop and size series (``Signals.levels``) as a ``(k, n)`` float matrix of
    the given ones and its ``(1, len(LEVEL_SLOTS))`` row map (-1: not given)."""
    given = [slot for slot in LEVEL_SLOTS if levels and slot in levels]
    out = np.empty((len(given), n))
    rows = np.full((1, len(LEVEL_SLOTS)), -1, dtype=np.int64)
    for r, slot in enumerate(given):
        out[r] = _column(cast(Mapping[str, Any], levels)[slot], n, slot)
        rows[0, LEVEL_SLOTS.index(slot)] = r
    unknown = set(levels or ()) - set(LEVEL_SLOTS)
    if unknown:
        raise ValueError(f"unknown level slots: {', '.join(sorted(unknown))}")
    return frozen(out), frozen(rows)


def epoch_seconds(times: Any) -> FloatArray:
    """Bar times (datetime64 or a DatetimeIndex) as float epoch seconds."""
    ns = np.asarray(times, dtype="datetime64[ns]").astype(np.int64)
    return frozen(np.ascontiguousarray(ns // 1_000_000_000, dtype=np.float64))


def trades_dict(rows: FloatArray) -> dict[str, FloatArray]:
    """Trade rows (one per trade, columns in ``TRADE_COLUMNS`` order) as named arrays: the
    rows transposed in one copy, so the columns never share memory with ``rows`` (a
    reused trade buffer, ``trade_buffer``)."""
    columns = np.array(rows.reshape(-1, N_COLUMNS).T, order="C")
    return dict(zip(TRADE_COLUMNS, columns, strict=True))


_BUFFERS = threading.local()


def trade_buffer(bars: int) -> FloatArray:
    """The bar loop's trade rows for a run of ``bars`` bars (one close per bar, two on the
    last), kept per thread between runs: at 1M bars a fresh 96 MB buffer is mapped anew
    each run and every row written faults in a page (≈450 faults, ~1 ms); ``_result``
    copies the rows out."""
    rows = bars + 1
    buffer: FloatArray | None = getattr(_BUFFERS, "trades", None)
    if buffer is None or buffer.shape[0] < rows:
        buffer = np.empty((rows, N_COLUMNS))
        _BUFFERS.trades = buffer
    return buffer[:rows]


def held_back_counts(account: FloatArray) -> dict[str, int]:
    """Signals the trade rules held back, by rule (only the non-zero ones)."""
    counts = {rule: int(account[HELD_BACK + i]) for i, rule in enumerate(HOLD_RULES)}
    return {rule: n for rule, n in counts.items() if n}


def risk_counts(account: FloatArray) -> dict[str, int]:
    """Entries the risk stage reduced or denied, by reason (only the non-zero ones)."""
    out = {}
    for code, reason in enumerate(RISK_REASONS[1:], start=1):
        for label, base in (("reduced", REDUCED_BY), ("denied", DENIED_BY)):
            count = int(account[base + code])
            if count:
                out[f"{label}_{reason}"] = count
    return out


@dataclass
class _Inputs:
    """One strategy's run, converted to the arrays the step reads."""

    opens: FloatArray
    highs: FloatArray
    lows: FloatArray
    closes: FloatArray
    rules: BoolArray
    levels: FloatArray
    level_rows: IntArray
    position: Packed  # rules that read the position (``engine.position``)
    times: FloatArray
    settings: FloatArray  # (1, fields): the settings record as numbers
    limits: FloatArray
    ring: FloatArray


def _prices(values: tuple[Any, ...], n: int) -> list[FloatArray]:
    return [frozen(_column(v, n, name).reshape(1, n)) for v, name in
            zip(values, ("open", "high", "low", "close"), strict=True)]


def _inputs(open_: Any, high: Any, low: Any, close: Any, rules: Mapping[str, Any],
            settings: SimSettings, times: Any, limits: RiskLimits,
            levels: Mapping[str, Any] | None,
            position_rules: Mapping[str, PositionRule] | None = None) -> _Inputs:
    n = len(close)
    o, h, lo, c = _prices((open_, high, low, close), n)
    if limits.active and times is None:
        raise ValueError("risk limits need the bar times (`times=`)")
    stamps = epoch_seconds(times) if times is not None else frozen(np.zeros(0))
    if stamps.shape[0] not in (0, n):
        raise ValueError(f"`times` has {stamps.shape[0]} entries, expected {n}")
    return _Inputs(o, h, lo, c, rule_matrix(rules, n), *level_matrix(levels, n),
                   pack([position_rules or {}], n), stamps,
                   as_matrix(to_records([settings])), limits.vector(), limits.rate_ring())


def _result(n: int, account: FloatArray, positions: FloatArray, rows: FloatArray,
            equity: FloatArray, position: FloatArray) -> SimResult:
    return SimResult(equity=equity, position=position[0], trades=trades_dict(rows),
                     ambiguous_bars=int(account[AMBIGUOUS]), fees_paid=float(account[FEES]),
                     open_trades=trades_dict(open_trade_rows(positions, n - 1)),
                     risk=risk_counts(account),
                     undefined_levels=int(account[UNDEFINED_LEVEL]),
                     held_back=held_back_counts(account))


def settings_row(settings: SimSettings) -> FloatArray:
    """``as_matrix(to_records([settings]))`` without the structured array in between (the
    same numbers: ints, bools and word codes as floats), read-only."""
    row = np.array([record_values(settings)], dtype=np.float64)
    row.flags.writeable = False
    return row


def _fires(rule: BoolArray | None) -> bool:
    return rule is not None and bool(rule.any())


def _fast(open_: Any, high: Any, low: Any, close: Any, rules: Mapping[str, Any],
          settings: SimSettings, times: Any, limits: RiskLimits,
          levels: Mapping[str, Any] | None = None) -> SimResult | None:
    """``simulate`` through the specialised loop, or None when the run needs the general
    one (``fast_slot.specialised_side``). The two rules it reads go in as a (2, n) matrix;
    high, low and the bar times are checked but never read."""
    n = len(close)
    row = settings_row(settings)
    given = {slot: _rule(rules, slot, n) for slot in RULE_SLOTS}
    short = _fires(given["entry_short"])  # the long entries matter only if it fires
    side = specialised_side(row[0], limits.active, short and _fires(given["entry_long"]),
                            short)
    if side == FLAT or n == 0 or levels:
        return None
    o, _, _, c = _prices((open_, high, low, close), n)
    if times is not None and len(times) not in (0, n):
        raise ValueError(f"`times` has {len(times)} entries, expected {n}")
    flags = np.empty((2, n), dtype=np.bool_)  # each row written once: no zeroing first
    spans = np.zeros((2, 2), dtype=np.int64)
    for i, slot in zip((ENTRY, EXIT), entry_rows(side), strict=True):
        arr = given[RULE_SLOTS[slot]]
        flags[i] = arr if arr is not None else False
        if arr is not None:
            spans[i] = (i, i + 1)
    account, positions = new_account(settings.capital), new_positions([0])
    trades, equity, returns, marks = trade_buffer(n), np.empty(n), np.empty(n), np.empty(MARKS)
    reset_marks(settings.capital, marks)
    run_fast_slot(0, n, n - 1, o, c, ROW_CODE, frozen(spans), NO_SERIES, frozen(flags),
                  NO_CONSTS, side, row, account, positions, trades, equity, NO_POSITION,
                  returns, marks)
    return _fast_result(n, account, positions, trades[: int(account[TRADES])], equity,
                        returns, marks)


def _fast_result(n: int, account: FloatArray, positions: FloatArray, rows: FloatArray,
                 equity: FloatArray, returns: FloatArray, marks: FloatArray) -> SimResult:
    """``_result`` of a ``run_fast_slot`` run: the position deferred (``TradePosition``),
    its exposure the loop's count (bars held: ``held · qty`` is never 0 there, an entry
    needs a positive quantity), the bar returns and drawdown state it kept for the
    metrics; no risk limit, level or trade rule ran, so none counted."""
    closed = trades_dict(rows)
    still_open = trades_dict(open_trade_rows(positions, n - 1))
    position = cast(FloatArray, TradePosition(n, closed, still_open))  # a results.Deferred
    return SimResult(equity=equity, position=position,
                     trades=closed, ambiguous_bars=int(account[AMBIGUOUS]),
                     fees_paid=float(account[FEES]), open_trades=still_open,
                     exposed=int(account[EXPOSED]), bar_returns=returns, marks=marks)


def simulate(open_: Any, high: Any, low: Any, close: Any, rules: Mapping[str, Any],
             settings: SimSettings, *, times: Any = None, limits: RiskLimits = NO_LIMITS,
             levels: Mapping[str, Any] | None = None,
             position_rules: Mapping[str, PositionRule] | None = None,
             general: bool = False) -> SimResult:
    """Simulate one strategy's signals on OHLC arrays (see docs/backtest.md); ``levels``
    are its stops and sizes written as expressions (``Signals.levels``), ``position_rules``
    its rules that read the position (``Signals.position_rules``).

    ``general=True`` runs ``step.run_slot`` even where the specialised loop applies (both
    give the same result; tests compare them)."""
    if not general and not position_rules:
        fast = _fast(open_, high, low, close, rules, settings, times, limits, levels)
        if fast is not None:
            return fast
    inp = _inputs(open_, high, low, close, rules, settings, times, limits, levels,
                  position_rules)
    n = inp.closes.shape[1]
    account = new_account(settings.capital)
    positions = new_positions([0])
    trades = trade_buffer(n)  # one close per bar, two on the last
    equity = np.empty(n)
    position = np.empty((1, n))
    p = inp.position
    run_slot(0, n, n - 1, inp.opens, inp.highs, inp.lows, inp.closes, inp.rules, ONE_SLOT_ROWS,
             inp.levels, inp.level_rows, p.code, p.consts, p.series, p.in_rows, p.spans,
             inp.times, inp.settings, inp.limits, account, positions, trades, inp.ring,
             equity, position)
    return _result(n, account, positions, trades[: int(account[TRADES])], equity, position)


class BarByBar:
    """The same step, driven one bar at a time with the state kept between calls.

    Built from whole arrays (the rules a bar's step reads are those of that bar and the one
    before), it is what a live runner does with a growing history; ``result()`` after the
    last bar equals ``simulate`` on the same inputs.
    """

    def __init__(self, open_: Any, high: Any, low: Any, close: Any, rules: Mapping[str, Any],
                 settings: SimSettings, *, times: Any = None,
                 limits: RiskLimits = NO_LIMITS, levels: Mapping[str, Any] | None = None,
                 position_rules: Mapping[str, PositionRule] | None = None) -> None:
        self.inputs = _inputs(open_, high, low, close, rules, settings, times, limits, levels,
                              position_rules)
        self.bars = self.inputs.closes.shape[1]
        self.account = new_account(settings.capital)
        self.positions = new_positions([0])
        self.trades = np.empty((TRADES_PER_STEP, N_COLUMNS))
        self.equity = np.empty(self.bars)
        self.position = np.empty((1, self.bars))
        self.next_bar = 0

    def _room(self) -> None:
        """Grow the trade buffer so one more step always has room for its trades."""
        used = int(self.account[TRADES])
        if self.trades.shape[0] - used < TRADES_PER_STEP:
            grown = np.empty((2 * self.trades.shape[0] + TRADES_PER_STEP, N_COLUMNS))
            grown[:used] = self.trades[:used]
            self.trades = grown

    def step(self) -> None:
        """Run the next bar."""
        if self.next_bar >= self.bars:
            raise IndexError("every bar has been stepped")
        self._room()
        inp, t = self.inputs, self.next_bar
        p = inp.position
        run_slot(t, t + 1, self.bars - 1, inp.opens, inp.highs, inp.lows, inp.closes,
                 inp.rules, ONE_SLOT_ROWS, inp.levels, inp.level_rows, p.code, p.consts,
                 p.series, p.in_rows, p.spans, inp.times, inp.settings, inp.limits,
                 self.account, self.positions, self.trades, inp.ring, self.equity,
                 self.position)
        self.next_bar += 1

    def result(self) -> SimResult:
        if self.next_bar != self.bars:
            raise ValueError(f"{self.bars - self.next_bar} bars are still to be stepped")
        rows = self.trades[: int(self.account[TRADES])]
        return _result(self.bars, self.account, self.positions, rows, self.equity,
                       self.position)
