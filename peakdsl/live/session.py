"""A live session: each tick's closed candles → Program → decide/risk/fill/book → adapter.

The session is the plan of ``peak backtest`` / ``peak backtest PORTFOLIO`` (one slot per
component: its compiled Program, params, settings, weight and market) run on ticks instead of
whole arrays. Per tick:

1. every slot whose bar closed pushes the candle into its ``Program.stream`` (fed the derived
   warm-up of history first) and gets that bar's four rule signals;
2. ``ClockBook.point`` runs the engine's clock for that moment — the same jitted events as a
   backtest: stops on the closed bar, fills at the close, the mark, rebalancing, the new bar's
   open fills on the previous bar's signals, every entry through the shared risk stage;
3. the book's fills go to the execution adapter (``paper``: recorded as filled at the book's
   price; a venue adapter: orders on the exchange).

A slot whose closed candle arrives more than two bars late (a stale feed) may exit but not
enter on it: its entry signals are masked and the session logs why.

Every candle is pushed with its open time, so a strategy reading coarser bars of its own
market (``close@1d``) builds them in its stream as a backtest does (``engine.frame_stream``).
A strategy reading another market (``close@ETH/USDT``) is refused up front (E045,
``refuse_other_markets``): the feed polls each slot's own market only, and a session that
silently saw no ETH bars would trade on NaN filters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ..backtest import sim_settings
from ..data.frames import markets_read
from ..engine.program import Program
from ..engine.risk import NO_LIMITS, RiskLimits
from ..engine.stream import BarSignals, Stream
from ..engine.timeline import Rebalance
from ..lang.ast import RULE_SLOTS
from ..lang.diagnostics import diag
from ..portfolio.plan import PortfolioPlan
from ..portfolio.run import limits_of, rebalance_of
from .clockbook import BookSlot, ClockBook, ClosedBar, Fill, PointReport
from .feed import Candle, CandleSource, SlotCandles, Tick
from .gate import Refused

STALE_BARS = 2  # a closed candle older than this many bars may not open a position
# Bars of history streamed before the first live bar, at least: the derived warm-up makes
# every value defined, but recursive indicators (ema, rsi, atr, macd …) remember their whole
# past, and only after enough bars does a stream started late compute the very same numbers
# as a whole-array run from the start (the difference shrinks by (1 - α) a bar until it is
# below rounding; 1,000 bars settle periods up to ~100 bit for bit — a test requires it).
MIN_HISTORY = 1_000
_ENTRIES = tuple(i for i, r in enumerate(RULE_SLOTS) if r.startswith("entry"))


@dataclass(frozen=True)
class SlotSpec:
    """One component of the session: what its stream and its book slot are built from."""

    label: str
    market: str
    timeframe_seconds: int
    program: Program
    params: dict[str, float]
    book: BookSlot


@dataclass(frozen=True)
class SignalRecord:
    """The signals one slot computed on one closed bar (``bar``: the book's bar index)."""

    slot: int
    bar: int
    time: float
    rules: tuple[bool, bool, bool, bool]
    stale: bool = False


@dataclass
class SessionLog:
    """Everything a session did, in order (what parity tests and the state store read)."""

    signals: list[SignalRecord] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    equity: list[tuple[float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Adapter(Protocol):
    """Where the book's fills go (paper: recorded; a venue: sent as orders)."""

    def execute(self, report: PointReport, slots: Sequence[SlotSpec]) -> None: ...


def refuse_other_markets(plan: PortfolioPlan) -> None:
    """E045 when a component reads another market's candles (``@ETH/USDT``): the feed gives
    each slot its own market's closed bars only (module docstring). Fail closed, before
    anything is started."""
    found = [(c.label, markets_read(c.config)) for c in plan.components]
    found = [(label, markets) for label, markets in found if markets]
    if found:
        label, markets = found[0]
        raise Refused([diag(
            "E045", f"`{label}` reads {', '.join(markets)} (`@`): a live session feeds each "
            "strategy the closed candles of its own market only", "<live>",
            help="backtest, sweep and walk-forward it; for a live deployment read only its "
                 "own market (coarser timeframes like `close@1d` are fine)")])


def candle_bar(candle: Candle) -> dict[str, Any]:
    """A candle as ``Stream.push`` takes it: prices and the open time (epoch ns, exact:
    candle times are whole milliseconds)."""
    return {**candle.as_bar(), "time": round(candle.time * 1000) * 1_000_000}


def slot_specs(plan: PortfolioPlan, fee_bps: float | None = None) -> list[SlotSpec]:
    """The plan's components as session slots (settings as ``peak backtest`` resolves them);
    E045 for a component the session cannot feed."""
    refuse_other_markets(plan)
    markets = sorted({c.config.market.symbol for c in plan.components})
    out = []
    for c in plan.components:
        program = Program.plan(c.config)
        params = program.stream(c.params).params
        settings = sim_settings(c.config, params, program.cfg.warmup.evaluate(params),
                                plan.capital * c.weight, fee_bps)
        bodies = {slot: str(program.nodes[i].value) for slot, i in program.rules.items()
                  if program.nodes[i].op == "position_rule"}
        book = BookSlot(settings, c.config.timeframe_seconds,
                        markets.index(c.config.market.symbol), c.weight, tuple(program.levels),
                        bodies)
        out.append(SlotSpec(c.label, c.config.market.symbol, c.config.timeframe_seconds,
                            program, params, book))
    return out


class Session:
    """The loop of module docstring over ``slots`` on one account of ``capital``."""

    def __init__(self, slots: Sequence[SlotSpec], capital: float, adapter: Adapter, *,
                 limits: RiskLimits = NO_LIMITS, rebalance: Rebalance | None = None,
                 on_point: Callable[[PointReport], None] | None = None,
                 min_history: int | None = None) -> None:
        self.slots = tuple(slots)
        self.min_history = MIN_HISTORY if min_history is None else min_history
        self.capital, self.limits, self.rebalance = capital, limits, rebalance
        self.adapter, self.on_point = adapter, on_point
        self.streams: list[Stream] = [s.program.stream(s.params) for s in slots]
        self.book = self._book([0] * len(self.slots))
        self.log = SessionLog()

    def _book(self, seen: Sequence[int]) -> ClockBook:
        """The book, each slot's warm-up shortened by the history its stream has seen (the
        stream masks its own warm-up already; the book must not wait twice)."""
        slots = [replace(s.book, settings=s.book.settings.replace(
            warmup=max(0, s.book.settings.warmup - n))) for s, n in zip(self.slots, seen,
                                                                        strict=True)]
        return ClockBook(slots, self.capital, limits=self.limits, rebalance=self.rebalance)

    def warm_up(self, source: CandleSource) -> list[int]:
        """Feed every stream its history (the derived warm-up, at least ``min_history``
        bars) before the first tick; the bars each got."""
        if self.book.points:
            raise RuntimeError("the session has started: too late to warm up")
        got = []
        for s in range(len(self.slots)):
            candles = source.history(s, self.history_of(s))
            for candle in candles:
                self.streams[s].push(candle_bar(candle))
            got.append(len(candles))
        self.book = self._book(got)
        return got

    def history_of(self, slot: int) -> int:
        spec = self.slots[slot]
        return max(spec.program.history(spec.params), self.min_history)

    def step(self, tick: Tick) -> PointReport:
        closing = {}
        for s, candle in sorted(tick.closed.items()):
            bar = self._closed(s, candle, tick.time)
            if self.book.bars[s] > 0:  # else the bar was forming when the session started:
                closing[s] = bar       # its signals feed the stream, the book never held it
                self.log.signals.append(SignalRecord(s, self.book.bars[s] - 1, candle.time,
                                                     bar.rules, bar.stale))
        report = self.book.point(tick.time, closing, dict(sorted(tick.opened.items())))
        self.adapter.execute(report, self.slots)
        self.log.fills.extend(report.fills)
        self.log.equity.append((tick.time, report.equity))
        if self.on_point is not None:
            self.on_point(report)
        return report

    def _closed(self, s: int, candle: Candle, now: float) -> ClosedBar:
        signals: BarSignals = self.streams[s].push(candle_bar(candle))
        rules = [bool(signals.rules.get(r, False)) for r in RULE_SLOTS]
        tf = self.slots[s].timeframe_seconds
        stale = candle.time + tf < now - STALE_BARS * tf
        if stale:
            for i in _ENTRIES:
                rules[i] = False
            self.log.notes.append(f"{self.slots[s].label}: the candle of {candle.time:.0f} "
                                  f"came more than {STALE_BARS} bars late: no entry on it")
        return ClosedBar(candle.high, candle.low, candle.close,
                         (rules[0], rules[1], rules[2], rules[3]), stale, signals.levels,
                         signals.position_inputs)

    def run(self, ticks: Iterable[Tick]) -> SessionLog:
        for tick in ticks:
            self.step(tick)
        return self.log


class PaperAdapter:
    """Paper trading: the book's fills are the fills (the backtest's fill model on the
    session's prices); kept in order for the session's record."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []

    def execute(self, report: PointReport, slots: Sequence[SlotSpec]) -> None:
        self.fills.extend(report.fills)


def replay_slots(plan: PortfolioPlan) -> list[SlotCandles]:
    """Each component's candles of the plan, for a ``ReplaySource``."""
    return [SlotCandles.of_frame(c.candles.frame, c.candles.bar_seconds)
            for c in plan.components]


def paper_replay(plan: PortfolioPlan, source: CandleSource, fee_bps: float | None = None
                 ) -> Session:
    """A paper session over ``source`` for ``plan``, warmed up and run to the source's end."""
    session = Session(slot_specs(plan, fee_bps), plan.capital, PaperAdapter(),
                      limits=limits_of(plan), rebalance=rebalance_of(plan))
    session.warm_up(source)
    session.run(source.ticks())
    return session


def rules_matrix(log: SessionLog, slot: int) -> np.ndarray[Any, Any]:
    """The signals a slot computed, as a (bars, 4) bool matrix (parity tests)."""
    mine = [r.rules for r in log.signals if r.slot == slot]
    return np.array(mine, dtype=np.bool_).reshape(-1, len(RULE_SLOTS))
