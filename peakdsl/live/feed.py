"""Candle sources of a live session: what closed, what opened, and when.

A session's clock advances in ``Tick``s: at a tick's time some slots' bars close (their
candles, complete) and some open (at their first price). Two sources produce them:

* ``ReplaySource``: recorded or cached candles, at any speed (``speed`` 0 = as fast as the
  session can go; 60 = a minute of market time per second). The whole stack runs offline on it
  and a paper session over it must book exactly what ``peak backtest`` books on the same
  candles.
* ``PollingSource``: an exchange's klines, polled just after each bar's close (aligned to the
  timeframe's grid), the newest complete candle taken as closed and the forming one's open
  as the next bar's first price. It reads through a ``fetch`` function (a ccxt client's
  ``fetch_ohlcv`` or the venue's), so tests point it at the loopback exchange. A slot's
  candles that a poll went without (published late, requests failing) are asked for again
  from the last one given and come with a later tick as ``Tick.missed``.

``history(slot, bars)`` gives the closed bars before the session's first tick: the derived
warm-up the strategy's Program is fed before it may act.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..engine.simulate import epoch_seconds

OHLCV = ("open", "high", "low", "close", "volume")
PAGE = 500  # candles per klines request (every exchange peak knows allows at least 500)


@dataclass(frozen=True)
class Candle:
    """One bar: its open time (epoch seconds) and prices."""

    time: float
    open: float
    high: float
    low: float
    close: float
    volume: float

    def as_bar(self) -> dict[str, float]:
        return {c: getattr(self, c) for c in OHLCV}


@dataclass(frozen=True)
class Tick:
    """A moment of the session's clock: the candles that closed at ``time``, the opening
    price of each slot's bar that starts then, and (``missed``) closed candles of a slot
    older than this tick's that an earlier tick went without (a late or failed poll), in
    order — a feed that is only read (another market) catches up on them."""

    time: float
    closed: dict[int, Candle] = field(default_factory=dict)
    opened: dict[int, float] = field(default_factory=dict)
    missed: dict[int, tuple[Candle, ...]] = field(default_factory=dict)


class CandleSource(Protocol):
    def history(self, slot: int, bars: int) -> list[Candle]: ...

    def ticks(self) -> Iterator[Tick]: ...


@dataclass(frozen=True)
class SlotCandles:
    """One slot's candles as arrays (bar-open epoch seconds and OHLCV columns)."""

    times: np.ndarray[Any, Any]
    columns: dict[str, np.ndarray[Any, Any]]
    timeframe_seconds: int

    @classmethod
    def of_frame(cls, frame: Any, timeframe_seconds: int) -> SlotCandles:
        cols = {c: frame[c].to_numpy(dtype=np.float64) for c in OHLCV}
        return cls(np.asarray(epoch_seconds(frame.index)), cols, timeframe_seconds)

    def candle(self, i: int) -> Candle:
        return Candle(float(self.times[i]), *(float(self.columns[c][i]) for c in OHLCV))

    def __len__(self) -> int:
        return int(self.times.shape[0])


class ReplaySource:
    """Ticks from each slot's candles, from the first bar opening at or after ``start_time``
    (the bars before it are history), ``speed`` times real time (0: no waiting). A session
    resumed after its tick at ``after`` gets only the ticks after that moment."""

    def __init__(self, slots: Sequence[SlotCandles], *, start_time: float | None = None,
                 speed: float = 0.0, sleep: Callable[[float], None] = time.sleep,
                 after: float | None = None) -> None:
        if speed < 0 or not math.isfinite(speed):
            raise ValueError(f"speed {speed} is not a non-negative number")
        self.slots = tuple(slots)
        first = start_time if start_time is not None else min(float(s.times[0])
                                                              for s in self.slots)
        self.starts = [int(np.searchsorted(s.times, first)) for s in self.slots]
        self.speed, self.sleep = speed, sleep
        self.after = after

    def history(self, slot: int, bars: int) -> list[Candle]:
        start = self.starts[slot]
        return [self.slots[slot].candle(i) for i in range(max(0, start - bars), start)]

    def _events(self) -> dict[float, Tick]:
        ticks: dict[float, Tick] = {}
        for s, data in enumerate(self.slots):
            for i in range(self.starts[s], len(data)):
                opens_at = float(data.times[i])
                ticks.setdefault(opens_at, Tick(opens_at)).opened[s] = float(
                    data.columns["open"][i])
                closes_at = opens_at + data.timeframe_seconds
                ticks.setdefault(closes_at, Tick(closes_at)).closed[s] = data.candle(i)
        return ticks

    def ticks(self) -> Iterator[Tick]:
        events = self._events()
        last: float | None = None
        for moment in sorted(events):
            if self.after is not None and moment <= self.after:
                continue
            if self.speed > 0 and last is not None:
                self.sleep((moment - last) / self.speed)
            last = moment
            yield events[moment]


# fetch(market, timeframe, since_ms, limit) -> [[ms, open, high, low, close, volume], ...]
Fetch = Callable[[str, str, int | None, int], list[list[float]]]


@dataclass(frozen=True)
class PolledSlot:
    market: str
    timeframe: str
    timeframe_seconds: int


@dataclass(frozen=True)
class Polled:
    """What one poll of a slot found (``PollingSource._poll``)."""

    done: Candle | None  # the candle that closed at the tick
    opening: float | None  # the next bar's first price
    missed: tuple[Candle, ...]  # closed candles between the last given and ``done``


class PollingSource:
    """Closed candles from an exchange, polled after each bar close (module docstring).

    ``clock`` and ``sleep`` are injected (tests drive them); ``settle`` seconds after a
    close are waited before asking, ``retry`` seconds between asks while the closed candle is
    not there yet, at most ``patience`` seconds per bar before the tick is given without it
    (the session then sees a stale slot). ``max_ticks`` bounds the session (None: forever);
    ``on_error`` hears each failed request (without it, a failure ends the source)."""

    def __init__(self, slots: Sequence[PolledSlot], fetch: Fetch, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, settle: float = 2.0,
                 retry: float = 2.0, patience: float = 60.0,
                 max_ticks: int | None = None,
                 on_error: Callable[[str, Exception], None] | None = None) -> None:
        self.slots, self.fetch = tuple(slots), fetch
        self.clock, self.sleep = clock, sleep
        self.settle, self.retry, self.patience = settle, retry, patience
        self.max_ticks, self.on_error = max_ticks, on_error
        self.seen = [-math.inf] * len(self.slots)  # open time of the last closed bar given

    def history(self, slot: int, bars: int) -> list[Candle]:
        """The last ``bars`` closed candles, fetched in pages of at most ``PAGE`` (exchanges
        cap a klines request: Binance at 1,000)."""
        spec = self.slots[slot]
        now = self.clock()
        tf_ms = spec.timeframe_seconds * 1000
        since = int((now - (bars + 2) * spec.timeframe_seconds) * 1000)
        found: dict[float, Candle] = {}
        for _ in range(bars // 100 + 3):  # bounded: every page moves ``since`` forward
            rows = self.fetch(spec.market, spec.timeframe, since, PAGE)
            found.update({c.time: c for c in _candles(rows)})
            if not rows or rows[-1][0] / 1000 + spec.timeframe_seconds > now:
                break  # reached the forming bar (an exchange may cap a page below PAGE)
            since = int(rows[-1][0]) + tf_ms
        closed = [found[t] for t in sorted(found) if t + spec.timeframe_seconds <= now]
        closed = closed[-bars:] if bars else []
        if closed:
            self.seen[slot] = closed[-1].time
        return closed

    def _next_close(self) -> float:
        now = self.clock()
        return min(math.floor(now / s.timeframe_seconds) * s.timeframe_seconds
                   + s.timeframe_seconds for s in self.slots)

    def _poll(self, slot: int, close_time: float) -> Polled:
        """The candle closing at ``close_time`` and the next bar's open, once published,
        and the closed candles between the last one given and it (``Tick.missed``)."""
        spec = self.slots[slot]
        deadline = self.clock() + self.patience
        while True:
            rows = self._fetch_recent(slot, close_time)
            candles = {c.time: c for c in _candles(rows)}
            done = candles.get(close_time - spec.timeframe_seconds)
            forming = candles.get(close_time)
            missed = tuple(candles[t] for t in sorted(candles) if math.isfinite(
                self.seen[slot]) and self.seen[slot] < t < close_time - spec.timeframe_seconds)
            if done is not None and forming is not None:
                return Polled(done, forming.open, missed)
            if self.clock() >= deadline:  # no forming bar yet: it opens where the last closed
                opening = forming.open if forming is not None else \
                    done.close if done is not None else None
                return Polled(done, opening, missed)
            self.sleep(self.retry)

    def _fetch_recent(self, slot: int, close_time: float) -> list[list[float]]:
        """The klines since the last candle given (at most a page, at least the last two
        bars); a failed request (an outage, a timeout, an exchange error) is reported to
        ``on_error`` and counts as "not published yet": the poll retries within its
        patience, then the tick goes on without the candle."""
        spec = self.slots[slot]
        recent = close_time - 2 * spec.timeframe_seconds
        behind = self.seen[slot] + spec.timeframe_seconds  # -inf: nothing given yet
        since = recent if not math.isfinite(behind) else \
            max(min(recent, behind), close_time - (PAGE - 2) * spec.timeframe_seconds)
        try:
            return self.fetch(spec.market, spec.timeframe, int(since * 1000),
                              5 if since >= recent else PAGE)
        except Exception as exc:
            if self.on_error is None:
                raise
            self.on_error(spec.market, exc)
            return []

    def ticks(self) -> Iterator[Tick]:
        given = 0
        while self.max_ticks is None or given < self.max_ticks:
            moment = self._next_close()
            wait = moment + self.settle - self.clock()
            if wait > 0:
                self.sleep(wait)
            tick = Tick(moment)
            for s, spec in enumerate(self.slots):
                if moment % spec.timeframe_seconds:
                    continue
                polled = self._poll(s, moment)
                if polled.missed:
                    tick.missed[s] = polled.missed
                    self.seen[s] = polled.missed[-1].time
                done = polled.done
                if done is not None and done.time > self.seen[s]:
                    tick.closed[s] = done
                    self.seen[s] = done.time
                if polled.opening is not None:
                    tick.opened[s] = polled.opening
            given += 1
            yield tick


def _candles(rows: list[list[float]]) -> list[Candle]:
    return [Candle(row[0] / 1000.0, *(float(v) for v in row[1:6])) for row in rows]
