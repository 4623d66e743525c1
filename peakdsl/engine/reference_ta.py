"""Slow, obvious reference implementations of the ported indicators (``kernels_ta.py``).

Written from each indicator's textbook or platform definition in plain Python loops, with
``math.fsum`` for every window sum, and without importing the kernels: the differential
property compares the two. Same semantics (``reference.py``'s docstring): a non-finite value
is missing; a window indicator needs every value it reads; a recursive one skips a bar with
a missing input, carrying its state; conditions are booleans (numbers count as true where
finite and non-zero). Same names and calling convention as ``kernels_ta.KERNELS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
NAN = float("nan")


def _ok(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _floats(x: npt.ArrayLike) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=np.float64)]


def _result(values: Sequence[float]) -> Array:
    return np.array(values, dtype=np.float64)


def _truth(x: npt.ArrayLike) -> list[bool]:
    arr = np.asarray(x)
    if arr.dtype == np.bool_:
        return [bool(v) for v in arr]
    return [_ok(v) and v != 0.0 for v in _floats(arr)]


def _windows(columns: Sequence[list[float]], n: int, fn: Callable[..., float]) -> Array:
    """``fn(*windows)`` over each bar's last ``n`` values of every column, NaN unless all
    of them are finite."""
    size = len(columns[0])
    out = [NAN] * size
    for i in range(n - 1, size):
        parts = [col[i - n + 1 : i + 1] for col in columns]
        if all(_ok(*part) for part in parts):
            out[i] = fn(*parts)
    return _result(out)


# ---------------------------------------------------------------- building blocks


def _ema(xs: list[float], n: int, alpha: float) -> list[float]:
    """Exponential smoothing over the finite values only, seeded with the mean of the first
    ``n`` of them."""
    out = [NAN] * len(xs)
    valid = [i for i, v in enumerate(xs) if _ok(v)]
    if len(valid) < n:
        return out
    state = math.fsum(xs[i] for i in valid[:n]) / n
    out[valid[n - 1]] = state
    for i in valid[n:]:
        state = alpha * xs[i] + (1 - alpha) * state
        out[i] = state
    return out


def _true_range(h: list[float], lo: list[float], c: list[float]) -> list[float]:
    out = [NAN] * len(h)
    for i in range(1, len(h)):
        if _ok(h[i], lo[i], c[i - 1]):
            out[i] = max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1]))
    return out


def _atr(h: list[float], lo: list[float], c: list[float], n: int) -> list[float]:
    """Wilder's average true range, seeded with the mean of the first n true ranges."""
    return _ema(_true_range(h, lo, c), n, 1 / n)


def _channel(high: npt.ArrayLike, low: npt.ArrayLike, n: int) -> tuple[list[float], list[float]]:
    """Highest high and lowest low of the last n bars (each needs its own column whole)."""
    top = _windows([_floats(high)], n, max)
    bottom = _windows([_floats(low)], n, min)
    return _floats(top), _floats(bottom)


def _middle(high: npt.ArrayLike, low: npt.ArrayLike, n: int) -> list[float]:
    top, bottom = _channel(high, low, n)
    return [(a + b) / 2 for a, b in zip(top, bottom, strict=True)]


def _delayed(xs: list[float], d: int) -> Array:
    return _result([xs[i - d] if i >= d else NAN for i in range(len(xs))])


def _typical(h: float, lo: float, c: float) -> float:
    return (h + lo + c) / 3


# ---------------------------------------------------------------- range oscillators


def ref_stoch_k(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int
                ) -> Array:
    """Lane's %K: where the close sits in the n-bar high-low range, in percent."""
    top, bottom = _channel(high, low, n)
    out = []
    for c, hh, ll in zip(_floats(close), top, bottom, strict=True):
        out.append(100 * (c - ll) / (hh - ll) if _ok(c, hh, ll) and hh != ll else NAN)
    return _result(out)


def ref_stoch_d(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int,
                m: int) -> Array:
    k = _floats(ref_stoch_k(high, low, close, n))
    return _windows([k], m, lambda w: math.fsum(w) / m)


def ref_willr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int) -> Array:
    """Williams: how far the close is below the n-bar high, as a negative percentage of
    the range."""
    top, bottom = _channel(high, low, n)
    out = []
    for c, hh, ll in zip(_floats(close), top, bottom, strict=True):
        out.append(-100 * (hh - c) / (hh - ll) if _ok(c, hh, ll) and hh != ll else NAN)
    return _result(out)


def ref_cci(x: npt.ArrayLike, n: int) -> Array:
    """Lambert's CCI: deviation from the mean over 0.015 times the mean absolute
    deviation; 0 on a window without any deviation."""
    def cci(w: list[float]) -> float:
        if max(w) == min(w):
            return 0.0
        mean = math.fsum(w) / n
        mad = math.fsum(abs(v - mean) for v in w) / n
        return (w[-1] - mean) / (0.015 * mad)
    return _windows([_floats(x)], n, cci)


# ---------------------------------------------------------------- volume


def ref_mfi(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
            volume: npt.ArrayLike, n: int) -> Array:
    """Money flow index: typical price × volume, split by whether the typical price rose
    or fell, summed over n bars, turned into an RSI-like ratio (100 when nothing fell, 50
    when nothing moved)."""
    h, lo, c, v = _floats(high), _floats(low), _floats(close), _floats(volume)
    tp = [_typical(*bar) for bar in zip(h, lo, c, strict=True)]
    up, down = [NAN] * len(tp), [NAN] * len(tp)
    for i in range(1, len(tp)):
        if _ok(tp[i], tp[i - 1], v[i]):
            up[i] = tp[i] * v[i] if tp[i] > tp[i - 1] else 0.0
            down[i] = tp[i] * v[i] if tp[i] < tp[i - 1] else 0.0

    def ratio(ups: list[float], downs: list[float]) -> float:
        gained, lost = math.fsum(ups), math.fsum(downs)
        if lost == 0:
            return 50.0 if gained == 0 else 100.0
        return 100 - 100 / (1 + gained / lost)
    return _windows([up, down], n, ratio)


def ref_obv(close: npt.ArrayLike, volume: npt.ArrayLike) -> Array:
    """Granville's on-balance volume, from 0 before the first change."""
    c, v = _floats(close), _floats(volume)
    out = [NAN] * len(c)
    total = 0.0
    for i in range(1, len(c)):
        if _ok(c[i], c[i - 1], v[i]):
            total += v[i] if c[i] > c[i - 1] else -v[i] if c[i] < c[i - 1] else 0.0
            out[i] = total
    return _result(out)


def ref_vwap(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
             volume: npt.ArrayLike, n: int) -> Array:
    h, lo, c, v = _floats(high), _floats(low), _floats(close), _floats(volume)
    traded = [_typical(*bar) * vol for *bar, vol in zip(h, lo, c, v, strict=True)]

    def weighted(values: list[float], volumes: list[float]) -> float:
        total = math.fsum(volumes)
        return math.fsum(values) / total if total != 0 else NAN
    return _windows([traded, v], n, weighted)


def _session_of(seconds: float, session: str) -> object:
    """The UTC calendar day, or the ISO week (Monday first), a bar opening at ``seconds``
    belongs to; None for a missing time."""
    if not math.isfinite(seconds):
        return None
    when = datetime.fromtimestamp(seconds, tz=UTC)
    return when.date() if session == "day" else when.isocalendar()[:2]


def ref_session_vwap(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                     volume: npt.ArrayLike, time: npt.ArrayLike, session: str = "day"
                     ) -> Array:
    h, lo, c, v, t = (_floats(x) for x in (high, low, close, volume, time))
    out, traded, volumes = [NAN] * len(h), [0.0], [0.0]
    current: object = object()
    for i in range(len(h)):
        key = _session_of(t[i], session)
        if key is None:
            continue  # no time: a missing bar
        if key != current:
            current, traded, volumes = key, [], []
        pv = _typical(h[i], lo[i], c[i]) * v[i]
        if _ok(pv, v[i]):
            traded.append(pv)
            volumes.append(v[i])
            total = math.fsum(volumes)
            out[i] = math.fsum(traded) / total if total != 0 else NAN
    return _result(out)


# ---------------------------------------------------------------- channels


def _keltner(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int, k: float,
             side: int) -> Array:
    h, lo, c = _floats(high), _floats(low), _floats(close)
    mid = _ema(c, n, 2 / (n + 1))
    width = _ema(_true_range(h, lo, c), n, 2 / (n + 1))
    return _result([m + side * k * w for m, w in zip(mid, width, strict=True)])


def ref_kc_upper(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int,
                 k: float) -> Array:
    return _keltner(high, low, close, n, k, 1)


def ref_kc_lower(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int,
                 k: float) -> Array:
    return _keltner(high, low, close, n, k, -1)


def ref_kc_middle(close: npt.ArrayLike, n: int) -> Array:
    return _result(_ema(_floats(close), n, 2 / (n + 1)))


def ref_donchian_upper(high: npt.ArrayLike, n: int) -> Array:
    return _windows([_floats(high)], n, max)


def ref_donchian_lower(low: npt.ArrayLike, n: int) -> Array:
    return _windows([_floats(low)], n, min)


def ref_donchian_middle(high: npt.ArrayLike, low: npt.ArrayLike, n: int) -> Array:
    return _result(_middle(high, low, n))


def ref_ichimoku_senkou_a(high: npt.ArrayLike, low: npt.ArrayLike, tenkan: int, kijun: int,
                          d: int) -> Array:
    """The span the chart draws d bars ahead, read at the bar it is drawn over."""
    lines = zip(_middle(high, low, tenkan), _middle(high, low, kijun), strict=True)
    return _delayed([(a + b) / 2 for a, b in lines], d)


def ref_ichimoku_senkou_b(high: npt.ArrayLike, low: npt.ArrayLike, n: int, d: int) -> Array:
    return _delayed(_middle(high, low, n), d)


# ---------------------------------------------------------------- Heikin-Ashi


def _heikin_ashi(open_: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike,
                 close: npt.ArrayLike) -> list[tuple[float, float, float, float]]:
    """(open, high, low, close) of every Heikin-Ashi candle; NaN on incomplete bars, which
    the next candle skips over."""
    bars = zip(_floats(open_), _floats(high), _floats(low), _floats(close), strict=True)
    out: list[tuple[float, float, float, float]] = []
    prev: tuple[float, float] | None = None
    for o, h, lo, c in bars:
        if not _ok(o, h, lo, c):
            out.append((NAN, NAN, NAN, NAN))
            continue
        ha_close = (o + h + lo + c) / 4
        ha_open = (o + c) / 2 if prev is None else (prev[0] + prev[1]) / 2
        out.append((ha_open, max(h, ha_open, ha_close), min(lo, ha_open, ha_close), ha_close))
        prev = (ha_open, ha_close)
    return out


def _ha(part: int) -> Callable[..., Array]:
    def ref(open_: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike,
            close: npt.ArrayLike) -> Array:
        return _result([candle[part] for candle in _heikin_ashi(open_, high, low, close)])
    return ref


# ---------------------------------------------------------------- Supertrend


def _supertrend(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, k: float,
                n: int) -> tuple[list[float], list[float]]:
    """TradingView's ``ta.supertrend``: hl2 ± k·ATR bands that only move towards the price
    while it stays on their side; the line follows the lower band after the close breaks
    above the upper one and the upper band after it breaks below the lower one."""
    h, lo, c = _floats(high), _floats(low), _floats(close)
    atr = _atr(h, lo, c, n)
    line, trend = [NAN] * len(c), [NAN] * len(c)
    last: tuple[float, float, float] | None = None  # lower, upper, line of the last bar
    for i in range(1, len(c)):
        if not _ok(atr[i], c[i]):
            continue
        mid = (h[i] + lo[i]) / 2
        lower, upper = mid - k * atr[i], mid + k * atr[i]
        before_lower, before_upper = (last[0], last[1]) if last else (0.0, 0.0)
        if lower <= before_lower and c[i - 1] >= before_lower:
            lower = before_lower
        if upper >= before_upper and c[i - 1] <= before_upper:
            upper = before_upper
        if last is None:
            up = False
        elif last[2] == last[1]:  # the line was the upper band
            up = c[i] > upper
        else:
            up = c[i] >= lower
        line[i], trend[i] = (lower, 1.0) if up else (upper, -1.0)
        last = (lower, upper, line[i])
    return line, trend


def ref_supertrend(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, k: float,
                   n: int) -> Array:
    return _result(_supertrend(high, low, close, k, n)[0])


def ref_supertrend_dir(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                       k: float, n: int) -> Array:
    return _result(_supertrend(high, low, close, k, n)[1])


# ---------------------------------------------------------------- running aggregates


def ref_sum(x: npt.ArrayLike, n: int) -> Array:
    return _windows([_floats(x)], n, math.fsum)


def ref_cumsum(x: npt.ArrayLike) -> Array:
    out = []
    total = 0.0
    for v in _floats(x):
        if _ok(v):
            total += v
        out.append(total if _ok(v) else NAN)
    return _result(out)


def ref_barssince(cond: npt.ArrayLike) -> Array:
    flags = _truth(cond)
    out = [NAN] * len(flags)
    last = None  # index of the latest true bar
    for i, flag in enumerate(flags):
        if flag:
            last = i
        if last is not None:
            out[i] = float(i - last)
    return _result(out)


def ref_valuewhen(cond: npt.ArrayLike, x: npt.ArrayLike, n: int) -> Array:
    flags, xs = _truth(cond), _floats(x)
    hits: list[int] = []
    out = [NAN] * len(xs)
    for i, flag in enumerate(flags):
        if flag:
            hits.append(i)
        if len(hits) > n:
            out[i] = xs[hits[-1 - n]]
    return _result(out)


REFERENCE_TA: dict[str, Callable[..., Array]] = {
    "stoch_k": ref_stoch_k, "stoch_d": ref_stoch_d, "willr": ref_willr, "cci": ref_cci,
    "mfi": ref_mfi, "obv": ref_obv, "vwap": ref_vwap, "session_vwap": ref_session_vwap,
    "kc_upper": ref_kc_upper,
    "kc_middle": ref_kc_middle, "kc_lower": ref_kc_lower,
    "donchian_upper": ref_donchian_upper, "donchian_lower": ref_donchian_lower,
    "donchian_middle": ref_donchian_middle, "ichimoku_tenkan": ref_donchian_middle,
    "ichimoku_kijun": ref_donchian_middle, "ichimoku_senkou_a": ref_ichimoku_senkou_a,
    "ichimoku_senkou_b": ref_ichimoku_senkou_b, "ha_open": _ha(0), "ha_high": _ha(1),
    "ha_low": _ha(2), "ha_close": _ha(3), "supertrend": ref_supertrend,
    "supertrend_dir": ref_supertrend_dir, "sum": ref_sum, "cumsum": ref_cumsum,
    "barssince": ref_barssince, "valuewhen": ref_valuewhen,
}
