"""Frames bar by bar: a ``Stream``'s view of the other timeframes and markets a graph reads
(``lang.frames``), built from the bars pushed as the whole-array run builds them.

The whole-array run gets each frame's candles and, per strategy bar, the position of the
frame's last closed bar (``data.frames.frame_inputs``). A stream cannot look at the whole
data, so it builds the same bars as the pushed bars arrive (``Bucketer``, the rules of
``data.resample.resample_frame``):

* a bar of another timeframe is a bucket on the epoch grid (``1w`` on Mondays) of one
  market's bars: open the first open, high the highest high, low the lowest low, close the
  last close, volume the sum (summed as ``np.add.reduceat`` sums a bucket: its first
  volume plus numpy's pairwise sum of the rest, so the doubles agree);
* a bucket **completes** when the bar that closes it is pushed, when a bar of a later bucket
  arrives, or when the strategy's bar closes at or after its close (another market's bar
  may be missing: the bucket is still closed, as the whole-array index says);
* the **first** bucket is dropped unless it is complete (the data started inside it);
  interior buckets with missing bars are kept, built from the bars there are;
* a frame of another market at the strategy's own timeframe is that market's bars as
  they come; bars of another market before the stream's first bar are dropped (the
  whole-array run cuts other markets to the strategy's span).

The nodes of a frame (``node_frames``: a source ``x@KEY`` is on KEY, an ``align`` and
anything without a framed input on the strategy's own bars) run only when one of the
frame's bars completes, fed that bar; ``STATES["align"]`` then reads the frame's latest
value. The data's last bucket, when it lacks bars inside but its closing bar is there, is
shown from that closing bar on, by both runs (``resample`` keeps a last bucket its closing
bar closes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from ..compile import models as m
from ..lang.frames import Frame, grid_offset
from ..lang.schema import TIMEFRAMES

NS = 1_000_000_000
OHLCV = ("open", "high", "low", "close", "volume")
Row = tuple[float, float, float, float, float]
Array = np.ndarray[Any, Any]


class TimeError(ValueError):
    """A bar's open time that is missing or not a time (the stream says which bar)."""


def bar_time(value: Any) -> int:
    """A bar's open time as epoch nanoseconds, from a pandas Timestamp, a datetime or
    numpy datetime64 (naive: UTC), or an int already in nanoseconds."""
    if isinstance(value, bool | np.bool_):
        raise TimeError(f"`time` {value!r} is not a time")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp | datetime | date | np.datetime64):
        stamp = pd.Timestamp(value)
        if stamp is pd.NaT:
            raise TimeError("`time` is NaT")
        return int(stamp.as_unit("ns").value)
    raise TimeError(f"`time` {value!r} is not a time (a pandas Timestamp, a datetime or "
                    "epoch nanoseconds)")


def node_frames(nodes: Sequence[m.GraphNode]) -> dict[int, str | None]:
    """The frame key each node is on ("" the strategy's own bars; None a param or a const,
    on none). Node ids are topological (inputs first), as the lowerer adds them."""
    out: dict[int, str | None] = {}
    for node in nodes:
        out[node.id] = _frame_of(node, out)
    return out


def _frame_of(node: m.GraphNode, known: Mapping[int, str | None]) -> str | None:
    if node.op in ("param", "const"):
        return None
    if node.op == "source":
        column, _, key = str(node.value).partition("@")
        return key if column and key else ""  # "@KEY" (an index) feeds an align: own bars
    if node.op == "align":
        return ""
    framed = {f for i in node.inputs if (f := known[i])}
    if len(framed) > 1:
        raise ValueError(f"node {node.id} reads frames {sorted(framed)} (the compiler aligns "
                         "them)")
    return framed.pop() if framed else ""


@dataclass(frozen=True, slots=True)
class FrameBar:
    open_ns: int
    row: Row


@dataclass
class Bucketer:
    """One market's bars as the bars of a coarser timeframe (module docstring); ``step``
    0 passes the market's bars through (another market at the strategy's timeframe)."""

    base_ns: int
    step: int
    offset: int
    per_bar: int
    open_ns: int | None = None
    rows: list[Row] = field(default_factory=list)
    first: bool = True

    @staticmethod
    def of(frame: Frame, base_seconds: int) -> Bucketer:
        if not frame.timeframe:
            return Bucketer(base_seconds * NS, 0, 0, 1)
        seconds = TIMEFRAMES[frame.timeframe]
        return Bucketer(base_seconds * NS, seconds * NS, grid_offset(frame.timeframe) * NS,
                        seconds // base_seconds)

    def add(self, time: int, row: Row) -> list[FrameBar]:
        """The frame bars completed by a bar of the market opening at ``time``."""
        if not self.step:
            return [FrameBar(time, row)]
        bucket = (time - self.offset) // self.step * self.step + self.offset
        done = self._complete() if self.open_ns is not None and bucket != self.open_ns else []
        self.open_ns = bucket
        self.rows.append(row)
        if time + self.base_ns >= bucket + self.step:
            done += self._complete()
        return done

    def due(self, close: int) -> list[FrameBar]:
        """The bucket closed by the strategy's clock reaching ``close`` (its bar's close)."""
        if self.open_ns is not None and self.open_ns + self.step <= close:
            return self._complete()
        return []

    def _complete(self) -> list[FrameBar]:
        rows, bucket, first = self.rows, self.open_ns, self.first
        self.rows, self.open_ns, self.first = [], None, False
        if bucket is None or (first and len(rows) < self.per_bar):
            return []
        cols = np.array(rows, dtype=np.float64).T
        return [FrameBar(bucket, (float(cols[0][0]), float(np.maximum.reduce(cols[1])),
                                  float(np.minimum.reduce(cols[2])), float(cols[3][-1]),
                                  float(cols[4][0] + np.add.reduce(cols[4][1:]))))]


@dataclass
class FrameFeed:
    """One frame in a stream: its bars (``bucketer``), the one-element columns its source
    nodes read, its index (frame bars completed, less one) and its steps."""

    key: str
    market: str
    bucketer: Bucketer
    columns: list[tuple[int, Array]] = field(default_factory=list)  # (OHLCV position, column)
    indexes: list[Array] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)
    count: int = 0

    def feed(self, bars: Iterable[FrameBar]) -> None:
        for bar in bars:
            for k, column in self.columns:  # k: an OHLCV position, or 5: the open time
                column[0] = bar.row[k] if k < len(bar.row) else bar.open_ns / NS
            self.count += 1
            for index in self.indexes:
                index[0] = self.count - 1
            for step in self.steps:
                step()


@dataclass
class OtherMarket:
    """Another market's bars as pushed: the last open time (order is checked)."""

    last: int | None = None

    def accept(self, time: int, now: int, start: int, market: str) -> bool:
        if time > now:
            raise TimeError(f"a {market} bar opening after the strategy's bar was pushed with "
                            "it: push another market's bars with the strategy bar they "
                            "precede or share the open time of")
        if self.last is not None and time <= self.last:
            raise TimeError(f"{market} bars pushed out of order (or twice)")
        self.last = time
        return time >= start


def rows_of(bars: Any, market: str) -> list[tuple[int, Row]]:
    """``others[market]``: one bar or a sequence of bars (mappings with OHLCV and time)."""
    items = [bars] if isinstance(bars, Mapping) else list(bars)
    out = []
    for bar in items:
        if "time" not in bar:
            raise TimeError(f"a {market} bar has no `time` (its open time)")
        missing = [c for c in OHLCV if c not in bar]
        if missing:
            raise TimeError(f"a {market} bar lacks " + ", ".join(missing))
        out.append((bar_time(bar["time"]), _row(bar)))
    return out


def _row(bar: Mapping[str, Any]) -> Row:
    try:
        return (float(bar["open"]), float(bar["high"]), float(bar["low"]),
                float(bar["close"]), float(bar["volume"]))
    except (TypeError, ValueError) as exc:
        raise TimeError(f"a bar value is not a number: {exc}") from exc


def history_bars(frame: Any, times: bool) -> Iterable[dict[str, Any]]:
    """The bars of a history (a DataFrame or a mapping of columns), with their open time
    from the DataFrame's DatetimeIndex or a ``time`` column when ``times``."""
    from .program import columns_of

    cols: dict[str, Any] = dict(columns_of(frame))
    if times:
        index = getattr(frame, "index", None)
        if isinstance(index, pd.DatetimeIndex):
            cols["time"] = index.as_unit("ns").asi8
        elif "time" in frame:
            cols["time"] = [bar_time(t) for t in frame["time"]]
        else:
            raise TimeError("this strategy reads other timeframes or markets (`@`) or the "
                            "bars' times (`session_vwap`): give its history as a "
                            "time-indexed DataFrame (or with a `time` column)")
    n = len(cols["close"])
    names = list(cols)
    for i in range(n):
        yield {c: cols[c][i] for c in names}


def other_bars(others: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Other markets' histories (time-indexed DataFrames) as bar lists, by market."""
    out = {}
    for market, frame in (others or {}).items():
        out[market] = list(history_bars(frame, True))
    return out
