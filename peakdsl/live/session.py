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
A strategy reading another market (``close@ETH/USDT``) gets that market's candles at its
own timeframe from a feed of their own (``session_feeds``: the slots' markets first, then
every other market read, once per timeframe). They are pushed into the stream with the
strategy's bar they precede or share the open time of, as the whole-array run aligns them.
Another market's feed that falls behind — no candle of it more than two bars older than the
strategy's bar — masks the slot's entries too (exits still run), with a note; its candles a
late poll missed come with a later tick (``Tick.missed``) and are pushed in order, so the
other market's series catch up with the backtest's.
"""

from __future__ import annotations

import math
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
from .feed import Candle, CandleSource, PolledSlot, SlotCandles, Tick
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
    timeframe: str  # its name (``1h``), as the exchange's klines take it
    reads: tuple[str, ...] = ()  # the other markets the strategy reads (``@ETH/USDT``)


@dataclass(frozen=True)
class SignalRecord:
    """The signals one slot computed on one closed bar (``bar``: the book's bar index)."""

    slot: int
    bar: int
    time: float
    rules: tuple[bool, bool, bool, bool]
    stale: bool = False
    why: str = ""  # what made it stale (its own candle came late, another market's feed)


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


def other_feeds(reads: Iterable[tuple[str, str, int]]) -> list[PolledSlot]:
    """The feeds of the other markets read, as (market, timeframe, its seconds): one each,
    in a stable order (what ``session_feeds`` and ``replay_slots`` agree on)."""
    return [PolledSlot(market, timeframe, seconds)
            for market, timeframe, seconds in sorted(set(reads), key=lambda r: (r[0], r[2]))]


def session_feeds(slots: Sequence[SlotSpec]) -> list[PolledSlot]:
    """Every feed a session polls, in source order: slot ``s``'s own market is feed ``s``;
    after them, each other market a slot reads at that slot's timeframe."""
    own = [PolledSlot(s.market, s.timeframe, s.timeframe_seconds) for s in slots]
    return own + other_feeds((m, s.timeframe, s.timeframe_seconds) for s in slots
                             for m in s.reads)


class Listing(Protocol):
    def lists(self, symbol: str) -> bool: ...


def refuse_unlisted(plan: PortfolioPlan, venue: Listing) -> None:
    """E045 when a component reads another market (``@ETH/USDT``) the exchange does not
    list: the session could not feed it, and a strategy that silently saw none of its bars
    would trade on filters that never fill. Fail closed, before anything is started."""
    for c in plan.components:
        missing = [m for m in markets_read(c.config) if not venue.lists(m)]
        if missing:
            raise Refused([diag(
                "E045", f"`{c.label}` reads {', '.join(missing)} (`@`), which the exchange "
                "does not list: the session cannot feed it", "<live>",
                help="check the symbol on the exchange (BASE/QUOTE) and --endpoint; the "
                     "backtest read it from the cache, which may hold another exchange's "
                     "candles")])


def candle_bar(candle: Candle) -> dict[str, Any]:
    """A candle as ``Stream.push`` takes it: prices and the open time (epoch ns, exact:
    candle times are whole milliseconds)."""
    return {**candle.as_bar(), "time": round(candle.time * 1000) * 1_000_000}


def slot_specs(plan: PortfolioPlan, fee_bps: float | None = None) -> list[SlotSpec]:
    """The plan's components as session slots (settings as ``peak backtest`` resolves them)."""
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
                            program, params, book, c.config.timeframe, markets_read(c.config)))
    return out


class Session:
    """The loop of module docstring over ``slots`` on one account of ``capital``."""

    def __init__(self, slots: Sequence[SlotSpec], capital: float, adapter: Adapter, *,
                 limits: RiskLimits = NO_LIMITS, rebalance: Rebalance | None = None,
                 on_point: Callable[[PointReport], None] | None = None,
                 min_history: int | None = None) -> None:
        self.slots = tuple(slots)
        self.feeds = tuple(session_feeds(self.slots))
        self.min_history = MIN_HISTORY if min_history is None else min_history
        self.capital, self.limits, self.rebalance = capital, limits, rebalance
        self.adapter, self.on_point = adapter, on_point
        self.streams: list[Stream] = [s.program.stream(s.params) for s in slots]
        self.others = OtherFeeds(self.slots, self.feeds)
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
        bars; the other markets it reads over as many bars) before the first tick; the
        bars each got."""
        if self.book.points:
            raise RuntimeError("the session has started: too late to warm up")
        for f, readers in self.others.readers.items():
            self.others.arrive(f, source.history(f, max(self.history_of(s)
                                                         for s, _ in readers)))
        got = []
        for s in range(len(self.slots)):
            candles = source.history(s, self.history_of(s))
            for candle in candles:
                self._push(s, candle)
            got.append(len(candles))
        self.book = self._book(got)
        return got

    def history_of(self, slot: int) -> int:
        spec = self.slots[slot]
        return max(spec.program.history(spec.params), self.min_history)

    def step(self, tick: Tick) -> PointReport:
        mine = len(self.slots)
        for f in sorted({*tick.closed, *tick.missed} - set(range(mine))):
            closed = tick.closed.get(f)
            self.others.arrive(f, [*tick.missed.get(f, ()), *([closed] if closed else [])])
        closing = {}
        for s, candle in sorted(tick.closed.items()):
            if s >= mine:
                continue
            bar, why = self._closed(s, candle, tick.time)
            if self.book.bars[s] > 0:  # else the bar was forming when the session started:
                closing[s] = bar       # its signals feed the stream, the book never held it
                self.log.signals.append(SignalRecord(s, self.book.bars[s] - 1, candle.time,
                                                     bar.rules, bar.stale, why))
        opened = {s: price for s, price in sorted(tick.opened.items()) if s < mine}
        report = self.book.point(tick.time, closing, opened)
        self.adapter.execute(report, self.slots)
        self.log.fills.extend(report.fills)
        self.log.equity.append((tick.time, report.equity))
        if self.on_point is not None:
            self.on_point(report)
        return report

    def _push(self, s: int, candle: Candle) -> BarSignals:
        """The slot's bar into its stream, with the other markets' bars that precede it."""
        return self.streams[s].push(candle_bar(candle), self.others.take(s, candle.time))

    def _closed(self, s: int, candle: Candle, now: float) -> tuple[ClosedBar, str]:
        """The slot's closed bar for the book, its entries masked when its own candle or
        another market's feed is stale (and why, for the log and the A007 alert)."""
        signals = self._push(s, candle)
        rules = [bool(signals.rules.get(r, False)) for r in RULE_SLOTS]
        why = "; ".join(self._stale(s, candle, now))
        if why:
            for i in _ENTRIES:
                rules[i] = False
            self.log.notes.append(f"{self.slots[s].label}: {why}: no entry on it")
        return ClosedBar(candle.high, candle.low, candle.close,
                         (rules[0], rules[1], rules[2], rules[3]), bool(why), signals.levels,
                         signals.position_inputs), why

    def _stale(self, s: int, candle: Candle, now: float) -> list[str]:
        tf = self.slots[s].timeframe_seconds
        own = candle.time + tf < now - STALE_BARS * tf
        late = [f"the candle of {candle.time:.0f} came more than {STALE_BARS} bars late"]
        return (late if own else []) + [
            f"the bar of {candle.time:.0f} has no {market} candle within {STALE_BARS} bars "
            f"(its newest: {'none' if newest == -math.inf else f'{newest:.0f}'})"
            for market, newest in self.others.behind(s, candle.time, tf)]

    def run(self, ticks: Iterable[Tick]) -> SessionLog:
        for tick in ticks:
            self.step(tick)
        return self.log


class OtherFeeds:
    """The other markets' candles on their way into the streams that read them: each
    slot's waiting bars by market, and the newest one pushed (staleness)."""

    def __init__(self, slots: Sequence[SlotSpec], feeds: Sequence[PolledSlot]) -> None:
        self.readers: dict[int, list[tuple[int, str]]] = {}
        for f in range(len(slots), len(feeds)):
            feed = feeds[f]
            self.readers[f] = [(s, feed.market) for s, spec in enumerate(slots)
                               if feed.market in spec.reads
                               and spec.timeframe_seconds == feed.timeframe_seconds]
        self.waiting: list[dict[str, list[Candle]]] = [{m: [] for m in spec.reads}
                                                       for spec in slots]
        self.newest: list[dict[str, float]] = [dict.fromkeys(spec.reads, -math.inf)
                                               for spec in slots]

    def arrive(self, feed: int, candles: Sequence[Candle]) -> None:
        for s, market in self.readers[feed]:
            self.waiting[s][market].extend(candles)

    def take(self, s: int, time: float) -> dict[str, list[dict[str, Any]]] | None:
        """Slot ``s``'s waiting bars opening at or before ``time``, as ``Stream.push``
        takes them (a bar already pushed is not pushed again)."""
        out = {}
        for market, waiting in self.waiting[s].items():
            ready = [c for c in waiting if c.time <= time]
            if not ready:
                continue
            self.waiting[s][market] = [c for c in waiting if c.time > time]
            fresh = [c for c in ready if c.time > self.newest[s][market]]
            if fresh:
                out[market] = [candle_bar(c) for c in fresh]
                self.newest[s][market] = fresh[-1].time
        return out or None

    def behind(self, s: int, time: float, tf: int) -> list[tuple[str, float]]:
        """The markets slot ``s`` reads whose newest bar is more than ``STALE_BARS`` bars
        older than its bar opening at ``time``."""
        return [(m, newest) for m, newest in self.newest[s].items()
                if newest < time - STALE_BARS * tf]


class PaperAdapter:
    """Paper trading: the book's fills are the fills (the backtest's fill model on the
    session's prices); kept in order for the session's record."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []

    def execute(self, report: PointReport, slots: Sequence[SlotSpec]) -> None:
        self.fills.extend(report.fills)


def replay_slots(plan: PortfolioPlan) -> list[SlotCandles]:
    """The plan's candles for a ``ReplaySource``, in ``session_feeds`` order: each
    component's own, then each other market read at a component's timeframe."""
    own = [SlotCandles.of_frame(c.candles.frame, c.candles.bar_seconds)
           for c in plan.components]
    held = {(o.market, c.config.timeframe_seconds): o for c in plan.components
            for o in c.candles.others}
    feeds = other_feeds((m, c.config.timeframe, c.config.timeframe_seconds)
                        for c in plan.components for m in markets_read(c.config))
    return own + [SlotCandles.of_frame(held[f.market, f.timeframe_seconds].frame,
                                       f.timeframe_seconds) for f in feeds]


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
