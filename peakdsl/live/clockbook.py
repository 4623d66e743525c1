"""The engine's clock and book, one point at a time, with bars arriving as they close.

A backtest knows every bar in advance (``engine.timeline.SlotsDriver`` builds the whole clock
first). A live session does not: a slot's bar ``k - 1`` closes and bar ``k`` opens at the same
moment, and only then are its prices and signals known. ``ClockBook`` keeps the arrays
``clock.run_clock`` reads as growing buffers (doubling when full, indexed by the slot's bar
number since the session started) and runs the jitted clock for exactly one point per call —
the same events, the same helpers, the same state columns as every backtest, so a paper
session over replayed candles books exactly the trades ``peak backtest`` books on them (a test
requires it on every library strategy and on a portfolio).

What the book does at a point comes back as ``Fill`` records (exits first, then entries, in
slot order), derived from the trade rows written and the positions changed: what the paper
adapter records and what a venue adapter turns into orders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.clock import run_clock, start_sleeves
from ..engine.position import code_of
from ..engine.results import EXIT_REASONS, TRADE_COLUMNS, SimSettings
from ..engine.risk import NO_LIMITS, RiskLimits
from ..engine.settings import SETTING_COLUMNS, as_matrix, to_records
from ..engine.simulate import TRADES_PER_STEP, frozen, risk_counts
from ..engine.state import (
    ENTRY_BAR,
    ENTRY_FEE,
    ENTRY_PRICE,
    ENTRY_REDUCED,
    EXITS,
    LAST_EQUITY,
    N_COLUMNS,
    QTY,
    SIDE,
    TRADES,
    FloatArray,
    new_account,
    new_positions,
)
from ..engine.timeline import Rebalance
from ..lang.ast import RULE_SLOTS
from ..lang.levels import LEVEL_SLOTS

NEVER = np.iinfo(np.int64).max  # a live slot has no last bar: nothing closes at end of data
_COL = {name: i for i, name in enumerate(TRADE_COLUMNS)}
_FEES = SETTING_COLUMNS["fees"]


@dataclass(frozen=True)
class BookSlot:
    """What the book needs of one strategy on one market (its data arrives later)."""

    settings: SimSettings
    timeframe_seconds: int
    market: int = 0
    weight: float = 1.0
    levels: tuple[str, ...] = ()  # its stops and sizes written as expressions (LEVEL_SLOTS)
    # its rules that read the position: their bodies' texts by rule slot (engine.position)
    position_rules: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClosedBar:
    """A slot's bar that just closed, with the signals of that bar (``RULE_SLOTS`` order)."""

    high: float
    low: float
    close: float
    rules: tuple[bool, bool, bool, bool]
    stale: bool = False  # came late: its entry signals were masked
    levels: Mapping[str, float] = field(default_factory=dict)  # the slot's levels at the bar
    # the inputs of its position rules' bodies at the bar (``BarSignals.position_inputs``)
    position_inputs: tuple[float, ...] = ()


@dataclass(frozen=True)
class Fill:
    """One order the book filled: an entry (``reason`` "entry") or an exit (an
    ``EXIT_REASONS`` word). ``side`` is the order's side: +1 buy, -1 sell."""

    slot: int
    bar: int
    time: float
    side: int
    qty: float
    price: float
    fee: float
    reason: str
    reduced: bool = False  # an entry the risk stage or the cash cut down


@dataclass(frozen=True)
class PointReport:
    """What one point did: its time, the fills, the equity after it."""

    time: float
    fills: tuple[Fill, ...]
    equity: float


class _Buffers:
    """The growing arrays of the clock: per-slot bars and the points' maps."""

    def __init__(self, slots: int, capacity: int, inputs: int = 0) -> None:
        self.prices = {c: np.full((slots, capacity), np.nan) for c in ("open", "high", "low",
                                                                       "close")}
        self.rules = np.zeros((len(RULE_SLOTS) * slots, capacity), dtype=np.bool_)
        self.levels = np.full((len(LEVEL_SLOTS) * slots, capacity), np.nan)
        self.pinputs = np.full((inputs, capacity), np.nan)  # the position rules' inputs
        self.opening = np.full((slots, capacity), -1, dtype=np.int64)
        self.closing = np.full((slots, capacity), -1, dtype=np.int64)
        self.times = np.full(capacity, np.nan)
        self.outputs: list[np.ndarray[Any, Any]] = [np.empty(capacity)] + [
            np.empty((slots, capacity)) for _ in range(3)]

    @property
    def capacity(self) -> int:
        return int(self.times.shape[0])

    def grow(self) -> None:
        """Double every buffer, keeping what it holds."""
        def wider(arr: np.ndarray[Any, Any], fill: object) -> np.ndarray[Any, Any]:
            out = np.full((*arr.shape[:-1], 2 * arr.shape[-1]), fill, dtype=arr.dtype)
            out[..., : arr.shape[-1]] = arr
            return out

        self.prices = {c: wider(a, np.nan) for c, a in self.prices.items()}
        self.rules = wider(self.rules, False)
        self.levels = wider(self.levels, np.nan)
        self.pinputs = wider(self.pinputs, np.nan)
        self.opening, self.closing = wider(self.opening, -1), wider(self.closing, -1)
        self.times = wider(self.times, np.nan)
        self.outputs = [wider(a, np.nan) for a in self.outputs]


def _restore_layout(into: FloatArray, saved: FloatArray, fill: float) -> None:
    """Saved account or positions into the current layout: columns added since (the
    undefined-level counter, the positions' exits) start at ``fill``."""
    width = saved.shape[-1]
    if width > into.shape[-1]:
        raise ValueError("the saved book comes from a newer peak")
    into[...] = fill
    into[..., :width] = saved


class ClockBook:
    """One account holding ``slots``, stepped a point at a time (module docstring)."""

    def __init__(self, slots: Sequence[BookSlot], capital: float, *,
                 limits: RiskLimits = NO_LIMITS, rebalance: Rebalance | None = None,
                 capacity: int = 256) -> None:
        self.slots = tuple(slots)
        self.settings = as_matrix(to_records([s.settings for s in slots]))
        self.limits, self.ring = limits.vector(), limits.rate_ring()
        self.account = new_account(capital)
        self.positions = new_positions([s.market for s in slots])
        self.weights = frozen(np.array([s.weight for s in slots], dtype=np.float64))
        self.rebalance = rebalance
        self.plan = (rebalance or Rebalance()).plan()
        self.last_bars = frozen(np.full(len(slots), NEVER, dtype=np.int64))
        self.code = code_of([s.position_rules for s in self.slots])
        self.in_rows = frozen(np.array(
            [[k if owner == s else -1 for k, owner in enumerate(self.code.owners)]
             for s in range(len(self.slots))], dtype=np.int64).reshape(len(slots), -1))
        self.buf = _Buffers(len(slots), capacity, len(self.code.owners))
        width = len(LEVEL_SLOTS)  # slot s's level j is row s · width + j, when it has one
        self.level_rows = frozen(np.array(
            [[s * width + j if name in slot.levels else -1 for j, name in enumerate(LEVEL_SLOTS)]
             for s, slot in enumerate(self.slots)], dtype=np.int64).reshape(len(slots), width))
        self.trades = np.empty((TRADES_PER_STEP * len(slots) * capacity, N_COLUMNS))
        self.bars = [0] * len(slots)  # bars opened so far, per slot
        self.points = 0

    @property
    def equity(self) -> float:
        return float(self.account[LAST_EQUITY])

    def risk(self) -> dict[str, int]:
        return risk_counts(self.account)

    def point(self, time_s: float, closing: Mapping[int, ClosedBar],
              opening: Mapping[int, float]) -> PointReport:
        """Run the point at ``time_s``: the bars of ``closing`` close (each slot's last opened
        bar), a new bar opens at the given price for each slot of ``opening``."""
        self._check(time_s, closing, opening)
        if self.points + 1 >= self.buf.capacity or max(self.bars) + 1 >= self.buf.capacity:
            self._grow()
        p = self.points
        if p == 0 and self.rebalance is not None:
            start_sleeves(float(self.account[LAST_EQUITY]), self.weights, self.plan, time_s,
                          self.account, self.positions)
        self._write(p, time_s, closing, opening)
        before = self.positions.copy()
        first_trade = int(self.account[TRADES])
        self._run(p)
        self.points += 1
        fills = self._fills(time_s, before, first_trade)
        return PointReport(time_s, fills, float(self.buf.outputs[0][p]))

    def _check(self, time_s: float, closing: Mapping[int, ClosedBar],
               opening: Mapping[int, float]) -> None:
        if self.points and not time_s > self.buf.times[self.points - 1]:
            raise ValueError(f"point {time_s} is not after the last one")
        for s in closing:
            if self.bars[s] == 0:
                raise ValueError(f"slot {s}: no bar is open to close")
        for s, price in opening.items():
            if not (math.isfinite(price) and price > 0):
                raise ValueError(f"slot {s}: the opening price {price} is not a positive number")

    def _write(self, p: int, time_s: float, closing: Mapping[int, ClosedBar],
               opening: Mapping[int, float]) -> None:
        buf = self.buf
        buf.times[p] = time_s
        for s, bar in closing.items():
            k = self.bars[s] - 1
            buf.closing[s, p] = k
            buf.prices["high"][s, k], buf.prices["low"][s, k] = bar.high, bar.low
            buf.prices["close"][s, k] = bar.close
            buf.rules[len(RULE_SLOTS) * s: len(RULE_SLOTS) * (s + 1), k] = bar.rules
            for name, value in bar.levels.items():
                buf.levels[len(LEVEL_SLOTS) * s + LEVEL_SLOTS.index(name), k] = value
            mine = [i for i, owner in enumerate(self.code.owners) if owner == s]
            if len(mine) != len(bar.position_inputs):
                raise ValueError(f"slot {s}: {len(bar.position_inputs)} position-rule inputs, "
                                 f"expected {len(mine)}")
            for i, value in zip(mine, bar.position_inputs, strict=True):
                buf.pinputs[i, k] = value
        for s, price in opening.items():
            k = self.bars[s]
            buf.opening[s, p] = k
            buf.prices["open"][s, k] = price
            self.bars[s] = k + 1

    def _run(self, p: int) -> None:
        buf = self.buf
        rows = np.arange(buf.rules.shape[0], dtype=np.int64).reshape(len(self.slots), -1)
        prices = {c: frozen(a) for c, a in buf.prices.items()}
        equity, values, pnl, sleeves = buf.outputs
        run_clock(p, p + 1, prices["open"], prices["high"], prices["low"], prices["close"],
                  frozen(buf.rules), frozen(rows), frozen(buf.levels), self.level_rows,
                  self.code.code, self.code.consts, frozen(buf.pinputs), self.in_rows,
                  self.code.spans, self.last_bars, frozen(buf.opening),
                  frozen(buf.closing), frozen(buf.times), self.weights, self.plan,
                  self.settings, self.limits, self.account, self.positions, self.trades,
                  self.ring, equity, values, pnl, sleeves)

    def _grow(self) -> None:
        self.buf.grow()
        trades = np.empty((2 * self.trades.shape[0], N_COLUMNS))
        trades[: self.trades.shape[0]] = self.trades
        self.trades = trades

    def _fills(self, time_s: float, before: FloatArray, first_trade: int) -> tuple[Fill, ...]:
        """Exits (the trade rows written at this point), then entries (positions opened)."""
        out = [self._exit_fill(row, time_s)
               for row in self.trades[first_trade: int(self.account[TRADES])]]
        for s in range(len(self.slots)):
            pos = self.positions[s]
            opened = pos[SIDE] != 0.0 and (before[s, SIDE] == 0.0 or
                                           pos[ENTRY_BAR] != before[s, ENTRY_BAR] or
                                           pos[ENTRY_PRICE] != before[s, ENTRY_PRICE])
            if opened:
                out.append(Fill(s, int(pos[ENTRY_BAR]), time_s, int(pos[SIDE]),
                                float(pos[QTY]), float(pos[ENTRY_PRICE]),
                                float(pos[ENTRY_FEE]), "entry", pos[ENTRY_REDUCED] != 0.0))
        return tuple(out)

    def _exit_fill(self, row: FloatArray, time_s: float) -> Fill:
        slot = int(row[_COL["slot"]])
        qty, price = float(row[_COL["qty"]]), float(row[_COL["exit_price"]])
        fee = float(self.settings[slot, _FEES]) * qty * price
        return Fill(slot, int(row[_COL["exit_bar"]]), time_s, -int(row[_COL["side"]]), qty,
                    price, fee, EXIT_REASONS[int(row[_COL["exit_reason"]])])

    # ------------------------------------------------------------ snapshot and resume

    def state(self) -> dict[str, np.ndarray[Any, Any]]:
        """Everything needed to resume this book in another process (``restore``): the
        account, positions and rate ring, the counters, and the used part of the buffers."""
        p, k = self.points, max(self.bars)
        buf = self.buf
        out: dict[str, np.ndarray[Any, Any]] = {
            "account": self.account.copy(), "positions": self.positions.copy(),
            "ring": self.ring.copy(), "bars": np.array(self.bars, dtype=np.int64),
            "points": np.array([p], dtype=np.int64),
            "trades": self.trades[: int(self.account[TRADES])].copy(),
            "rules": buf.rules[:, :k].copy(), "levels": buf.levels[:, :k].copy(),
            "position_inputs": buf.pinputs[:, :k].copy(),
            "opening": buf.opening[:, :p].copy(),
            "closing": buf.closing[:, :p].copy(), "times": buf.times[:p].copy()}
        out.update({f"price_{c}": a[:, :k].copy() for c, a in buf.prices.items()})
        out.update({f"out_{i}": a[..., :p].copy() for i, a in enumerate(buf.outputs)})
        return out

    def restore(self, state: Mapping[str, np.ndarray[Any, Any]]) -> None:
        """Continue from ``state()`` of a book of the same slots (the same spec)."""
        if state["positions"].shape[0] != self.positions.shape[0]:
            raise ValueError("the saved book holds other slots")
        p, k = int(state["points"][0]), int(state["bars"].max(initial=0))
        while max(p, k) + 1 >= self.buf.capacity:
            self._grow()
        _restore_layout(self.account, state["account"], 0.0)
        _restore_layout(self.positions, state["positions"], np.nan)
        if state["positions"].shape[1] <= EXITS:  # saved before positions held their exits:
            for j, key in ((0, "stop_loss"), (2, "take_profit"), (4, "trailing_stop")):
                self.positions[:, EXITS + j] = self.settings[:, SETTING_COLUMNS[key]]
        self.ring = state["ring"].copy()
        self.bars, self.points = [int(b) for b in state["bars"]], p
        trades = state["trades"]
        while trades.shape[0] + TRADES_PER_STEP * len(self.slots) > self.trades.shape[0]:
            self._grow()
        self.trades[: trades.shape[0]] = trades
        buf = self.buf
        buf.rules[:, :k], buf.opening[:, :p] = state["rules"], state["opening"]
        if "levels" in state:  # saved before stops could be expressions: none
            buf.levels[:, :k] = state["levels"]
        if "position_inputs" in state:  # saved before rules could read the position: none
            buf.pinputs[:, :k] = state["position_inputs"]
        buf.closing[:, :p], buf.times[:p] = state["closing"], state["times"]
        for c, a in buf.prices.items():
            a[:, :k] = state[f"price_{c}"]
        for i, a in enumerate(buf.outputs):
            a[..., :p] = state[f"out_{i}"]

    def closed_trades(self) -> dict[str, FloatArray]:
        """Every trade closed so far, in the engine's columns."""
        rows = self.trades[: int(self.account[TRADES])]
        return {c: rows[:, i].copy() for i, c in enumerate(TRADE_COLUMNS)}

    def equity_curve(self) -> FloatArray:
        return self.buf.outputs[0][: self.points].copy()

