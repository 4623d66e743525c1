"""Frames: reading another timeframe or another market in one spec (``close@4h``,
``sma(close, 50)@1d``, ``close@ETH/USDT``, ``close@ETH/USDT@4h``).

A *frame* is a (market, timeframe) pair other than the strategy's own. ``x@F`` computes ``x``
on F's bars — every source in it, written or implied (``atr(14)@1d`` is the daily ATR), reads
F's candles, every window and lag counts F's bars, a let named in it is computed there too —
and reads the result at each bar of the strategy from F's **last closed bar**: the F bar
whose close time is at or before the strategy bar's close. A 4h bar is therefore seen only
from the 1h bar that closes with it on, never while it is forming: the alignment is causal by
construction, which is what the look-ahead proof relies on (``compile.lower`` inserts an
``align`` node wherever a frame's value meets the strategy's bars).

Where each operation runs: on a frame when every series it reads is on that frame —
``sma(close@1d, 5)`` is the 5-day mean and ``close@4h[1]`` the previous 4h bar, exactly as
``sma(close, 5)@1d`` and ``close[1]@4h`` — and on the strategy's own bars when the series it
reads come from different frames (``close - close@4h``; ``sma(close - close@1d, 5)`` is then a
mean over 5 of the strategy's bars). Constants and params belong to every frame; an expression
that reads no series at all (``sma(5, 10)``) runs on the strategy's own bars.

What may be read on a frame (T021 otherwise): market data and what is computed from it. Not
another frame inside a frame, a ``state`` (its past is a series of the strategy's own bars) or
the position (it exists only at the strategy's bar being decided). A frame must be one the
data can give (T020): a timeframe the strategy's own divides, whose bar opens lie on the
strategy's grid (a ``1w`` bar opens on Monday, which a ``3d`` grid misses) — it is resampled
from the strategy's candles — and a market written as BASE/QUOTE, whose candles a run must
find (D023 when they are missing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from . import ast
from .builtins import POSITION_SOURCES
from .schema import TIMEFRAMES

WEEK_OFFSET = 4 * 86_400  # seconds from 1970-01-01 (a Thursday) to the first Monday
Problem = tuple[str, ast.Expr, str, str]


def grid_offset(timeframe: str) -> int:
    """Seconds from the epoch to the first bar open of ``timeframe``'s grid."""
    return WEEK_OFFSET if timeframe == "1w" else 0


def derivable(base: str, target: str) -> bool:
    """Whether ``target`` bars can be built from ``base`` bars: ``base`` is finer, divides
    ``target`` and its grid contains every ``target`` bar open."""
    b, t = TIMEFRAMES[base], TIMEFRAMES[target]
    return b < t and t % b == 0 and (grid_offset(target) - grid_offset(base)) % b == 0


@dataclass(frozen=True, slots=True, order=True)
class Frame:
    """A frame other than the strategy's own: ``market`` "" is the strategy's market,
    ``timeframe`` "" its timeframe (never both)."""

    market: str
    timeframe: str

    @property
    def key(self) -> str:
        """``4h``, ``ETH/USDT`` or ``ETH/USDT@4h``: how the compiled graph names it."""
        return "@".join(p for p in (self.market, self.timeframe) if p)

    @staticmethod
    def parse(key: str) -> Frame:
        if "/" not in key:
            return Frame("", key)
        market, _, timeframe = key.partition("@")
        return Frame(market, timeframe)

    def seconds(self, base_seconds: int) -> int:
        return TIMEFRAMES[self.timeframe] if self.timeframe else base_seconds


def frame_of(at: ast.At, market: str, timeframe: str) -> Frame | None:
    """The frame ``at`` reads in a strategy of ``market`` and ``timeframe``; None when it is
    the strategy's own (``close@1h`` in a 1h strategy is ``close``)."""
    other = at.market.symbol if at.market is not None else ""
    tf = at.timeframe.text if at.timeframe is not None else ""
    frame = Frame("" if other == market else other, "" if tf == timeframe else tf)
    return frame if frame.market or frame.timeframe else None


def timeframe_problem(at: ast.At, timeframe: str) -> Problem | None:
    """T020 when ``at``'s timeframe cannot be built from the strategy's ``timeframe``."""
    tf = at.timeframe
    if tf is None or tf.text == timeframe or timeframe not in TIMEFRAMES:
        return None
    if tf.text not in TIMEFRAMES:
        return ("T020", tf, f"unknown timeframe `{tf.text}`",
                "use one of " + " ".join(TIMEFRAMES))
    if TIMEFRAMES[tf.text] < TIMEFRAMES[timeframe]:
        return ("T020", tf, f"`@{tf.text}` is finer than the strategy's timeframe "
                f"({timeframe}): a bar cannot read the bars inside it",
                f"read a timeframe of {timeframe} or longer, or lower the strategy's "
                "`timeframe`")
    if not derivable(timeframe, tf.text):
        fits = [t for t in TIMEFRAMES if derivable(timeframe, t)][:4]
        return ("T020", tf, f"{tf.text} bars cannot be built from {timeframe} bars",
                f"read a timeframe that is a whole number of {timeframe} bars and opens "
                "on their grid" + (f", e.g. {', '.join(fits)}" if fits else
                                   f"; none does for {timeframe}: lower the strategy's "
                                   "`timeframe`"))
    return None


def frame_problems(at: ast.At, lets: Mapping[str, ast.Let]) -> Iterator[Problem]:
    """T021 for what cannot be computed on a frame: another frame, a state, the position,
    inside ``at`` or inside a let it names (each let looked into once)."""
    seen: set[str] = set()
    todo: list[tuple[ast.Expr, str]] = [(at.target, "")]
    while todo:
        expr, via = todo.pop()
        for e in ast.walk(expr):
            found = _unframeable(e, lets, via)
            if found is not None:
                yield ("T021", e if not via else at, found[0], found[1])
            elif isinstance(e, ast.Name) and e.id in lets and e.id not in seen:
                seen.add(e.id)
                todo.append((lets[e.id].expr, e.id))


def _unframeable(e: ast.Expr, lets: Mapping[str, ast.Let], via: str
                 ) -> tuple[str, str] | None:
    where = f" (through `{via}`)" if via else ""
    if isinstance(e, ast.At):
        return (f"a frame inside a frame{where}: `@` cannot be nested",
                "read each frame in the strategy's own expression, e.g. "
                "`close@4h - close@1d`")
    if isinstance(e, ast.Name) and e.id in POSITION_SOURCES:
        return (f"`{e.id}` reads the position{where}, which exists only at the strategy's "
                "own bar", "compare it outside the `@`")
    if isinstance(e, ast.Name) and e.id in lets and lets[e.id].state:
        return (f"the state `{e.id}`{where} is a series of the strategy's own bars",
                "read its inputs on the frame instead, or compute it from the frame's "
                "values outside the `@`")
    return None


def frames_in(exprs: list[ast.Expr]) -> list[ast.At]:
    """Every ``@`` in ``exprs``, in source order."""
    return [e for x in exprs for e in ast.walk(x) if isinstance(e, ast.At)]
