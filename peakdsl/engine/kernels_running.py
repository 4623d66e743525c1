"""Recursions over the bars that need no other kernel: the Heikin-Ashi candle, the
Supertrend's band recursion (its ATR comes from ``kernels.atr``), the running sum, bars since
a condition and the value when it held; and the small input helpers of the ported kernels.

Part of the ported indicators (``kernels_ta.py`` has the module docstring with the contract
and merges this module's tables). Each loop's bar arithmetic is a jitted helper that the
state form calls too, so kernel and state agree to the bit. Imports nothing of the other
kernel modules, so it can be imported from any of them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from ._jit import jit

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Kernel = Callable[..., npt.NDArray[Any]]
NAN = math.nan


def as_floats(x: npt.ArrayLike) -> FloatArray:
    """Contiguous float64, as the jitted loops take their inputs (no copy if it is one)."""
    return np.ascontiguousarray(x, dtype=np.float64)


def checked_window(n: int | float, least: int = 1) -> int:
    """A window as an int, refused unless whole and at least ``least``: the checker only
    passes such windows, so anything else is a caller's bug, not a value to round."""
    w = int(n)
    if w != n or w < least:
        raise ValueError(f"window must be an integer >= {least}, got {n!r}")
    return w


def as_flags(cond: npt.ArrayLike) -> BoolArray:
    """A condition as booleans; numbers (only direct calls pass them: the checker admits
    booleans alone) are true where finite and not zero."""
    arr = np.asarray(cond)
    if arr.dtype == np.bool_:
        return np.ascontiguousarray(arr)
    values = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        flags: BoolArray = np.isfinite(values) & (values != 0.0)
    return flags


def as_flag(value: Any) -> bool:
    """One bar of ``as_flags``."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    return math.isfinite(value) and value != 0.0


def all_finite(*values: float) -> bool:
    """Whether a bar's inputs are all present (a non-finite value is missing)."""
    return all(math.isfinite(v) for v in values)


def own_row(rows: FloatArray, part: int) -> FloatArray:
    """One output of a loop that computes several, as an array of its own."""
    out: FloatArray = rows[part].copy()
    return out


# ---------------------------------------------------------------- Heikin-Ashi


@jit
def _heikin_ashi_at(o: float, h: float, lo: float, c: float, started: bool,
                    prev_open: float, prev_close: float
                    ) -> tuple[float, float, float, float]:
    """One Heikin-Ashi candle (open, high, low, close) from a complete bar and the previous
    Heikin-Ashi candle (``started``: there is one)."""
    ha_close = (o + h + lo + c) / 4.0
    ha_open = (prev_open + prev_close) / 2.0 if started else (o + c) / 2.0
    return ha_open, max(h, ha_open, ha_close), min(lo, ha_open, ha_close), ha_close


@jit
def _heikin_ashi(o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    """The four Heikin-Ashi series as the rows of a (4, len) array."""
    size = o.shape[0]
    out = np.full((4, size), np.nan)
    started = False
    prev_open = 0.0
    prev_close = 0.0
    for i in range(size):
        if not (math.isfinite(o[i]) and math.isfinite(h[i]) and math.isfinite(lo[i])
                and math.isfinite(c[i])):
            continue
        candle = _heikin_ashi_at(o[i], h[i], lo[i], c[i], started, prev_open, prev_close)
        for part in range(4):
            out[part, i] = candle[part]
        prev_open = candle[0]
        prev_close = candle[3]
        started = True
    return out


def _ha(part: int) -> Callable[..., FloatArray]:
    def kernel(open_: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike,
               close: npt.ArrayLike) -> FloatArray:
        rows = _heikin_ashi(as_floats(open_), as_floats(high), as_floats(low), as_floats(close))
        return own_row(rows, part)
    kernel.__name__ = kernel.__qualname__ = ("ha_open", "ha_high", "ha_low", "ha_close")[part]
    kernel.__doc__ = ("Heikin-Ashi candles (TradingView's): close ``ohlc4``; open ``(open + "
                      "close) / 2`` on the first complete bar, then the mean of the previous "
                      "candle's open and close; high and low also span the candle's open and "
                      "close. A bar missing any price is NaN and skipped.")
    return kernel


class _HeikinAshiState:
    __slots__ = ("part", "prev", "started")

    def __init__(self, part: int) -> None:
        self.part = part
        self.started = False
        self.prev = (0.0, 0.0)

    def push(self, o: float, h: float, lo: float, c: float) -> float:
        if not all_finite(o, h, lo, c):
            return NAN
        candle = _heikin_ashi_at(o, h, lo, c, self.started, *self.prev)
        self.prev = (candle[0], candle[3])
        self.started = True
        return float(candle[self.part])


# ---------------------------------------------------------------- Supertrend


@jit
def supertrend_step(h: float, lo: float, c: float, c_prev: float, atr: float, k: float,
                   started: bool, prev_lower: float, prev_upper: float, prev_line: float
                   ) -> tuple[float, float, float, float]:
    """One bar of TradingView's ``ta.supertrend(k, n)``, line for line: (line, direction,
    lower band, upper band). Before the first bar the previous bands are 0 (Pine's
    ``nz``) and the trend is down."""
    src = (h + lo) / 2.0
    upper = src + k * atr
    lower = src - k * atr
    if not started:
        prev_lower = 0.0
        prev_upper = 0.0
    if not (lower > prev_lower or c_prev < prev_lower):
        lower = prev_lower
    if not (upper < prev_upper or c_prev > prev_upper):
        upper = prev_upper
    if not started:
        rising = False
    elif prev_line == prev_upper:
        rising = c > upper
    else:
        rising = not c < lower
    return (lower if rising else upper), (1.0 if rising else -1.0), lower, upper


@jit
def supertrend_loop(h: FloatArray, lo: FloatArray, c: FloatArray, atr: FloatArray, k: float
                ) -> FloatArray:
    """Line and direction as the rows of a (2, len) array. A bar counts when its ATR (hence
    the previous close) and its close are present; the previous bands and line are those
    of the last bar that counted, ``close[1]`` the previous bar's close."""
    size = h.shape[0]
    out = np.full((2, size), np.nan)
    started = False
    bands = (0.0, 0.0, 0.0)  # lower, upper, line of the last bar that counted
    for i in range(1, size):
        if not (math.isfinite(atr[i]) and math.isfinite(c[i])):
            continue
        line, direction, lower, upper = supertrend_step(
            h[i], lo[i], c[i], c[i - 1], atr[i], k, started, bands[0], bands[1], bands[2])
        out[0, i] = line
        out[1, i] = direction
        bands = (lower, upper, line)
        started = True
    return out


@jit
def _cumsum(x: FloatArray) -> FloatArray:
    out = np.full(x.shape[0], np.nan)
    total = 0.0
    for i in range(x.shape[0]):
        if math.isfinite(x[i]):
            total += x[i]
            out[i] = total
    return out


def cumsum(x: npt.ArrayLike) -> FloatArray:
    """Running sum from the first finite value, in bar order; a missing bar is NaN and
    adds nothing."""
    return _cumsum(as_floats(x))


class _CumsumState:
    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0.0

    def push(self, x: float) -> float:
        if not math.isfinite(x):
            return NAN
        self.total += x
        return self.total


@jit
def _barssince(flags: BoolArray) -> FloatArray:
    out = np.full(flags.shape[0], np.nan)
    count = -1  # no true bar yet
    for i in range(flags.shape[0]):
        if flags[i]:
            count = 0
        elif count >= 0:
            count += 1
        if count >= 0:
            out[i] = count
    return out


def barssince(cond: npt.ArrayLike) -> FloatArray:
    """Bars since ``cond`` was last true: 0 on a true bar, NaN before the first one
    (TradingView's ``ta.barssince``)."""
    return _barssince(as_flags(cond))


class _BarssinceState:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = -1

    def push(self, cond: Any) -> float:
        if as_flag(cond):
            self.count = 0
        elif self.count >= 0:
            self.count += 1
        return float(self.count) if self.count >= 0 else NAN


@jit
def _valuewhen(flags: BoolArray, x: FloatArray, n: int) -> FloatArray:
    size = x.shape[0]
    out = np.full(size, np.nan)
    seen = np.empty(size, np.int64)  # the true bars so far, in order
    count = 0
    for i in range(size):
        if flags[i]:
            seen[count] = i
            count += 1
        if count > n:
            out[i] = x[seen[count - 1 - n]]
    return out


def valuewhen(cond: npt.ArrayLike, x: npt.ArrayLike, n: int) -> FloatArray:
    """``x`` on the ``n``-th most recent bar where ``cond`` was true (``n = 0``: the latest,
    possibly this bar), as TradingView's ``ta.valuewhen``; NaN until ``n + 1`` true bars
    were seen, and where ``x`` was missing on the bar it picks."""
    return _valuewhen(as_flags(cond), as_floats(x), checked_window(n, least=0))


class _ValuewhenState:
    __slots__ = ("n", "values")

    def __init__(self, n: int) -> None:
        self.n = checked_window(n, least=0)
        self.values: deque[float] = deque(maxlen=self.n + 1)

    def push(self, cond: Any, x: float) -> float:
        if as_flag(cond):
            self.values.append(x)
        return self.values[0] if len(self.values) > self.n else NAN


# ---------------------------------------------------------------- the tables

KERNELS: dict[str, Kernel] = {
    "ha_open": _ha(0), "ha_high": _ha(1), "ha_low": _ha(2), "ha_close": _ha(3),
    "cumsum": cumsum, "barssince": barssince, "valuewhen": valuewhen,
}

STATES: dict[str, Callable[..., Any]] = {
    **{name: partial(_HeikinAshiState, i)
       for i, name in enumerate(("ha_open", "ha_high", "ha_low", "ha_close"))},
    "cumsum": _CumsumState, "barssince": _BarssinceState, "valuewhen": _ValuewhenState,
}
