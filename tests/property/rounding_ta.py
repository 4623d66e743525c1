"""Rounding judgements of the ported indicators (``engine/kernels_ta.py``), for ``rounding``.

The same two questions as ``rounding.py`` answers for the core built-ins: how far apart two
correct evaluators may be (``err``), and which bars hang on a decision rounding can flip
(``doubt``). Most ported indicators read the candles themselves and do the same operations
in the same order in the kernel and the reference (selections, midpoints, Heikin-Ashi
averages, the range position of stochastic and %R, the money-flow signs), so they are exact
apart from summation order; the ones over an arbitrary series propagate its error, and the
Supertrend's band comparisons are decisions on a computed ATR. ``rounding.py`` merges
``TA_RULES`` into ``BUILTIN_RULES``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rounding import (
    BUILTIN_RULES,
    TOL,
    CallArgs,
    Judged,
    _finite,
    _mag,
    _rolling,
    _window_rule,
    near,
)

from peakdsl.engine.reference import REFERENCE

Array = np.ndarray


def _none(c: CallArgs) -> Array:
    return np.zeros(len(c.value), dtype=bool)


def _size(c: CallArgs) -> Array:
    return np.nan_to_num(np.abs(c.value), nan=0.0)


def _candles(c: CallArgs) -> Judged:
    """Read from the candles with the same operations on both sides: only the order of a
    sum may differ, a rounding of the value itself."""
    return Judged(_size(c), _none(c))


def _scale(c: CallArgs, scale: float) -> Judged:
    """A bounded value (0..100) from sums over exact inputs: rounding of its scale."""
    return Judged(np.full(len(c.value), scale) + _size(c), _none(c))


def _stoch_d(c: CallArgs) -> Judged:
    """The mean of m exact %K values, summed in a different order."""
    k = np.nan_to_num(np.abs(REFERENCE["stoch_k"](*_hlc(c), c.windows[0])), nan=0.0)
    return Judged(_rolling(k, c.windows[1], np.max) + _size(c), _none(c))


def _hlc(c: CallArgs) -> tuple[Array, Array, Array]:
    return c.columns["high"], c.columns["low"], c.columns["close"]


def _cci(c: CallArgs) -> Judged:
    """(x - mean) / (0.015 · mean deviation): amplified by a small deviation; a window
    within its inputs' error of flat decides between 0 and a ratio."""
    x, j, n = c.xs[0], c.js[0], c.windows[0]
    base = _window_rule(0)(c)
    windows = [x[max(0, t - n + 1): t + 1] for t in range(len(x))]
    with np.errstate(all="ignore"):
        spread = np.array([np.ptp(w) if len(w) == n else np.nan for w in windows])
        dev = np.array([np.mean(np.abs(w - np.mean(w))) if len(w) == n else np.nan
                        for w in windows])
        err = base.err * (1 / 0.015 + np.abs(c.value)) / dev
    noise = _rolling(j.err, n, np.max)
    return _finite(np.where(spread == 0, 0.0, err), c.value,
                   base.doubt | near(spread, 0.0, noise))


def _channel_ema(c: CallArgs) -> Judged:
    """Keltner: EMAs of the close and of the true range, seeded by sums in another order."""
    h, lo, cl = _hlc(c)
    width = np.nan_to_num(REFERENCE["true_range"](h, lo, cl), nan=0.0)
    k = abs(c.scalars[0]) if c.scalars else 0.0
    err = np.maximum.accumulate(np.nan_to_num(np.abs(cl), nan=0.0) + k * width)
    return Judged(err + _size(c), _none(c))


def _running(c: CallArgs) -> Judged:
    """``obv``: a running sum of exact volumes in bar order on both sides."""
    volume = np.nan_to_num(np.abs(c.columns["volume"]), nan=0.0)
    return Judged(np.cumsum(volume) + _size(c), _none(c))


def _vwap(c: CallArgs) -> Judged:
    """A volume-weighted mean of exact typical prices: rounding of the prices."""
    h, lo, cl = _hlc(c)
    typical = np.nan_to_num(np.abs((h + lo + cl) / 3), nan=0.0)
    return Judged(_rolling(typical, c.windows[0], np.max) + _size(c), _none(c))


def _session_vwap(c: CallArgs) -> Judged:
    """The same mean over the session so far (the kernel sums in bar order, the reference
    exactly): rounding of the largest typical price summed, bounded by the data's."""
    h, lo, cl = _hlc(c)
    typical = np.nan_to_num(np.abs((h + lo + cl) / 3), nan=0.0)
    return Judged(np.maximum.accumulate(typical) + _size(c), _none(c))


def _sum(c: CallArgs) -> Judged:
    """n values summed in another order: n times the largest magnitude."""
    base = _window_rule(0)(c)
    mag = _rolling(_mag(c.xs[0], c.js[0]), c.windows[0], np.max) * c.windows[0]
    return Judged(mag + _size(c), base.doubt)


def _cumsum(c: CallArgs) -> Judged:
    """Every earlier value's error stays in a running sum."""
    return Judged(np.cumsum(_mag(c.xs[0], c.js[0])) + _size(c),
                  np.logical_or.accumulate(c.js[0].doubt))


def _barssince(c: CallArgs) -> Judged:
    """A count; a doubtful condition may move the last true bar from then on."""
    return Judged(np.zeros(len(c.value)), np.logical_or.accumulate(c.js[0].doubt))


def _valuewhen(c: CallArgs) -> Judged:
    """x at the chosen bar, judged as x was there; a doubtful condition may change which
    bar is chosen from then on."""
    (cond, x), (jc, jx), n = c.xs, c.js, c.windows[0]
    flags = cond.astype(bool) if cond.dtype == np.bool_ else np.isfinite(cond) & (cond != 0)
    err, doubt = np.zeros(len(x)), np.logical_or.accumulate(jc.doubt)
    hits: list[int] = []
    for t, flag in enumerate(flags):
        if flag:
            hits.append(t)
        if len(hits) > n:
            err[t], doubt[t] = jx.err[hits[-1 - n]], doubt[t] | jx.doubt[hits[-1 - n]]
    return Judged(err + _size(c), doubt)


def _supertrend(c: CallArgs) -> Judged:
    """Bands hl2 ± k·atr compared with the previous bands and the closes: where two sides
    are within the ATR's rounding, the two evaluators may take different branches, and the
    recursion carries that on (doubt from then on)."""
    h, lo, cl = _hlc(c)
    k, n = c.scalars[0], c.windows[0]
    atr = REFERENCE["atr"](h, lo, cl, n)
    scale = np.maximum.accumulate(np.nan_to_num(REFERENCE["true_range"](h, lo, cl), nan=0.0))
    mid = (h + lo) / 2
    band_err = abs(k) * scale + np.where(scale > 0, np.nan_to_num(np.abs(mid), nan=0.0), 0.0)
    doubt = _band_ties(h, lo, cl, atr, k, band_err)
    return Judged(band_err + _size(c), np.logical_or.accumulate(doubt))


def _band_ties(h: Array, lo: Array, cl: Array, atr: Array, k: float, err: Array) -> Array:
    """Bars where a Supertrend comparison is within rounding: the reference recursion
    replayed, each comparison's two sides checked."""
    doubt = np.zeros(len(cl), dtype=bool)
    prev: tuple[float, float, float] | None = None
    for t in range(1, len(cl)):
        if not (np.isfinite(atr[t]) and np.isfinite(cl[t])):
            continue
        mid = (h[t] + lo[t]) / 2
        lower, upper = mid - k * atr[t], mid + k * atr[t]
        p_lower, p_upper, p_line = prev if prev else (0.0, 0.0, 0.0)
        pairs = [(lower, p_lower), (cl[t - 1], p_lower), (upper, p_upper), (cl[t - 1], p_upper),
                 (p_lower, p_upper)]
        lower = lower if lower > p_lower or cl[t - 1] < p_lower else p_lower
        upper = upper if upper < p_upper or cl[t - 1] > p_upper else p_upper
        pairs += [(cl[t], lower), (cl[t], upper)]
        doubt[t] = any(abs(a - b) < TOL * 2 * err[t] for a, b in pairs)
        up = prev is not None and (cl[t] > upper if p_line == p_upper else cl[t] >= lower)
        prev = (lower, upper, lower if up else upper)
    return doubt


TA_RULES: dict[str, Callable[[CallArgs], Judged]] = {
    **dict.fromkeys(("stoch_k", "willr", "donchian_upper", "donchian_lower",
                     "donchian_middle", "ichimoku_tenkan", "ichimoku_kijun",
                     "ichimoku_senkou_a", "ichimoku_senkou_b", "ha_open", "ha_high", "ha_low",
                     "ha_close"), _candles),
    **dict.fromkeys(("kc_upper", "kc_middle", "kc_lower"), _channel_ema),
    **dict.fromkeys(("supertrend", "supertrend_dir"), _supertrend),
    "stoch_d": _stoch_d, "cci": _cci, "mfi": lambda c: _scale(c, 100.0), "obv": _running,
    "vwap": _vwap, "session_vwap": _session_vwap, "sum": _sum, "cumsum": _cumsum,
    "barssince": _barssince,
    "valuewhen": _valuewhen,
}

BUILTIN_RULES.update(TA_RULES)
