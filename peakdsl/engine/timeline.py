"""Driver of the clock: several slots, each with its own bars, on one account.

``build_clock`` turns each slot's bar-open times and timeframe into the clock's points and
the per-slot ``opening`` / ``closing`` maps ``clock.run_clock`` reads; ``simulate_slots``
converts the slots' prices, rules and settings to the padded arrays the jitted loop wants,
runs it over every point and returns a typed ``SlotsResult``. A portfolio backtest is this
driver with one slot per component; a single strategy through it equals ``simulate`` (a test
requires it bar for bar).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..lang.ast import RULE_SLOTS
from .book import open_trade_rows
from .clock import PLAN_SIZE, REBALANCE_DRIFT, REBALANCE_SECONDS, run_clock, start_sleeves
from .position import PositionRule, pack
from .results import TRADE_COLUMNS, SimSettings
from .risk import NO_LIMITS, RiskLimits
from .settings import as_matrix, to_records
from .simulate import (
    TRADES_PER_STEP,
    frozen,
    held_back_counts,
    level_matrix,
    risk_counts,
    rule_matrix,
    trades_dict,
)
from .state import (
    AMBIGUOUS,
    FEES,
    N_COLUMNS,
    REBALANCES,
    TRADES,
    UNDEFINED_LEVEL,
    new_account,
    new_positions,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Clock:
    """The points of a run's time line and, per slot, which bar opens / closes at each."""

    times: FloatArray  # (points,) epoch seconds
    opening: IntArray  # (slots, points): the bar opening at the point, or -1
    closing: IntArray  # (slots, points): the bar closing at the point, or -1
    last_bars: IntArray  # (slots,)


def build_clock(bar_times: Sequence[FloatArray], timeframes: Sequence[int]) -> Clock:
    """The clock of slots whose bars open at ``bar_times[s]`` (epoch seconds, ascending) and
    last ``timeframes[s]`` seconds. Raises ``ValueError`` when a slot's bars overlap (two
    opens closer than its timeframe: the data is not of that timeframe)."""
    closes = []
    for s, (opens, tf) in enumerate(zip(bar_times, timeframes, strict=True)):
        if len(opens) == 0:
            raise ValueError(f"slot {s} has no bars")
        steps = np.diff(opens)
        if steps.size and steps.min() < tf:
            bad = int(np.argmax(steps < tf))
            raise ValueError(f"slot {s}: bars {bad} and {bad + 1} are {steps[bad]:g} s apart, "
                             f"less than the timeframe's {tf} s")
        closes.append(opens + float(tf))
    points = np.unique(np.concatenate([*bar_times, *closes]))
    opening = np.full((len(bar_times), len(points)), -1, dtype=np.int64)
    closing = np.full_like(opening, -1)
    for s, (opens, ends) in enumerate(zip(bar_times, closes, strict=True)):
        bars = np.arange(len(opens), dtype=np.int64)
        opening[s, np.searchsorted(points, opens)] = bars
        closing[s, np.searchsorted(points, ends)] = bars
    last = np.array([len(t) - 1 for t in bar_times], dtype=np.int64)
    return Clock(frozen(points.astype(np.float64)), frozen(opening), frozen(closing), frozen(last))


@dataclass(frozen=True)
class Slot:
    """One strategy on one market: its bars, signals and settings."""

    open: Any
    high: Any
    low: Any
    close: Any
    times: FloatArray  # bar-open epoch seconds
    timeframe_seconds: int
    rules: Mapping[str, Any]
    settings: SimSettings
    market: int = 0  # slots on the same market share a symbol-exposure limit
    weight: float = 1.0
    levels: Mapping[str, Any] = field(default_factory=dict)  # stops and sizes (``Signals``)
    position_rules: Mapping[str, PositionRule] = field(default_factory=dict)  # (``Signals``)


@dataclass(frozen=True)
class Rebalance:
    """When sleeves are restored to their weights: every ``seconds`` and/or on ``drift``."""

    seconds: float = 0.0  # 0: no calendar rebalancing
    drift: float = 0.0  # 0: none on drift

    def plan(self) -> FloatArray:
        plan = np.zeros(PLAN_SIZE)
        plan[REBALANCE_SECONDS], plan[REBALANCE_DRIFT] = self.seconds, self.drift
        return frozen(plan)


@dataclass(frozen=True)
class SlotsResult:
    """Equity and each slot's position value at every clock point, trades of every slot
    (``entry_bar`` / ``exit_bar`` in the slot's own bars, ``slot`` its index)."""

    clock: Clock
    equity: FloatArray  # (points,), equity[0] = capital
    values: FloatArray  # (slots, points) signed position value
    pnl: FloatArray  # (slots, points) each slot's profit so far (cash flows + position value)
    sleeves: FloatArray  # (slots, points) each sleeve's value (NaN without sleeves)
    trades: dict[str, FloatArray]
    open_trades: dict[str, FloatArray]
    fees_paid: float
    ambiguous_bars: int
    rebalances: int
    risk: dict[str, int] = field(default_factory=dict)
    undefined_levels: int = 0  # entries not taken: a stop or size series undefined (``step``)
    held_back: dict[str, int] = field(default_factory=dict)  # by trade rule (``step``)


def _padded(slots: Sequence[Slot], column: str, width: int) -> FloatArray:
    out = np.full((len(slots), width), np.nan)
    for s, slot in enumerate(slots):
        values = np.asarray(getattr(slot, column), dtype=np.float64)
        out[s, : len(values)] = values
    return frozen(out)


def _rules(slots: Sequence[Slot], width: int) -> tuple[Any, IntArray]:
    """Every slot's four rule rows stacked (slot ``s`` reads rows ``4s .. 4s + 3``)."""
    out = np.zeros((len(RULE_SLOTS) * len(slots), width), dtype=np.bool_)
    for s, slot in enumerate(slots):
        n = len(slot.times)
        out[4 * s: 4 * s + 4, :n] = rule_matrix(slot.rules, n)
    rows = np.arange(out.shape[0], dtype=np.int64).reshape(len(slots), len(RULE_SLOTS))
    return frozen(out), frozen(rows)


def _levels(slots: Sequence[Slot], width: int) -> tuple[FloatArray, IntArray]:
    """Every slot's level series stacked, and per slot the rows of its ``LEVEL_SLOTS``."""
    parts, rows, used = [], [], 0
    for slot in slots:
        n = len(slot.times)
        matrix, own = level_matrix(slot.levels, n)
        padded = np.full((matrix.shape[0], width), np.nan)
        padded[:, :n] = matrix
        parts.append(padded)
        rows.append(np.where(own[0] >= 0, own[0] + used, -1))
        used += matrix.shape[0]
    out = np.concatenate(parts) if used else np.empty((0, width))
    return frozen(out), frozen(np.array(rows, dtype=np.int64))


def _open_trades(positions: FloatArray, clock: Clock) -> dict[str, FloatArray]:
    """Positions left open (``end_of_data mark``), each ending on its own slot's last bar."""
    rows = open_trade_rows(positions, 0)
    rows[:, TRADE_COLUMNS.index("exit_bar")] = clock.last_bars[
        rows[:, TRADE_COLUMNS.index("slot")].astype(np.int64)]
    return trades_dict(rows)


class SlotsDriver:
    """The clock's state between calls: ``run(start, stop)`` steps points ``start`` to
    ``stop - 1`` (a whole run in one call, or one point at a time as the live runner does:
    the two agree exactly, a test requires it); ``result()`` once every point ran."""

    def __init__(self, slots: Sequence[Slot], capital: float, *,
                 limits: RiskLimits = NO_LIMITS, rebalance: Rebalance | None = None) -> None:
        self.clock = build_clock([np.asarray(s.times, dtype=np.float64) for s in slots],
                                 [s.timeframe_seconds for s in slots])
        width = max(len(s.times) for s in slots)
        self.prices = {c: _padded(slots, c, width) for c in ("open", "high", "low", "close")}
        self.rules, self.rows = _rules(slots, width)
        self.levels, self.level_rows = _levels(slots, width)
        self.position = pack([s.position_rules for s in slots], width)
        self.settings = as_matrix(to_records([s.settings for s in slots]))
        self.limits, self.ring = limits.vector(), limits.rate_ring()
        self.account = new_account(capital)
        self.positions = new_positions([s.market for s in slots])
        self.weights = frozen(np.array([s.weight for s in slots], dtype=np.float64))
        self.plan = (rebalance or Rebalance()).plan()
        if rebalance is not None:
            start_sleeves(capital, self.weights, self.plan, float(self.clock.times[0]),
                          self.account, self.positions)
        self.points = len(self.clock.times)
        self.trades = np.empty((TRADES_PER_STEP * (int(self.clock.last_bars.sum())
                                                   + 2 * len(slots)), N_COLUMNS))
        self.equity = np.empty(self.points)
        self.values, self.pnl, self.sleeves = (np.empty((len(slots), self.points))
                                               for _ in range(3))
        self.next_point = 0

    def run(self, start: int, stop: int) -> None:
        if start != self.next_point or not start < stop <= self.points:
            raise ValueError(f"points {start}..{stop - 1}: the next point is "
                             f"{self.next_point} of {self.points}")
        p = self.prices
        run_clock(start, stop, p["open"], p["high"], p["low"], p["close"], self.rules,
                  self.rows, self.levels, self.level_rows, self.position.code,
                  self.position.consts, self.position.series, self.position.in_rows,
                  self.position.spans, self.clock.last_bars,
                  self.clock.opening, self.clock.closing,
                  self.clock.times, self.weights, self.plan, self.settings, self.limits,
                  self.account, self.positions, self.trades, self.ring, self.equity,
                  self.values, self.pnl, self.sleeves)
        self.next_point = stop

    def result(self) -> SlotsResult:
        if self.next_point != self.points:
            raise ValueError(f"{self.points - self.next_point} points are still to be run")
        account = self.account
        closed = trades_dict(self.trades[: int(account[TRADES])])
        return SlotsResult(self.clock, self.equity, self.values, self.pnl, self.sleeves,
                           closed, _open_trades(self.positions, self.clock),
                           float(account[FEES]), int(account[AMBIGUOUS]),
                           int(account[REBALANCES]), risk_counts(account),
                           int(account[UNDEFINED_LEVEL]), held_back_counts(account))


def simulate_slots(slots: Sequence[Slot], capital: float, *, limits: RiskLimits = NO_LIMITS,
                   rebalance: Rebalance | None = None) -> SlotsResult:
    """Run ``slots`` on one account holding ``capital`` (see ``clock``). With ``rebalance``
    each slot trades from a sleeve of ``weight × capital``; without, every slot sizes off
    the whole account (the single-strategy contract)."""
    driver = SlotsDriver(slots, capital, limits=limits, rebalance=rebalance)
    driver.run(0, driver.points)
    return driver.result()
