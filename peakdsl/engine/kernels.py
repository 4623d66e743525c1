"""Fast indicator kernels on float64 numpy arrays: the ``KERNELS`` table.

Calling convention (the compiled program relies on it exactly): ``KERNELS[name](*args)``
with the builtin's arguments in declared order and, for builtins whose ``implicit`` is
``("high", "low", "close")``, those three columns prepended as arrays::

    KERNELS["sma"](x, n)                 KERNELS["bb_upper"](x, n, k)
    KERNELS["atr"](high, low, close, n)  KERNELS["true_range"](high, low, close)
    KERNELS["macd_signal"](x, fast, slow, signal)
    KERNELS["lag"](x, n)

Windows are ints >= 1 (a lag >= 0), scalars floats. A builtin with a ``mode`` takes it as
an optional last argument, a string, defaulting to the first choice (today's behaviour)::

    KERNELS["stdev"](x, n, "sample")     KERNELS["adx"](high, low, close, n, "talib")

Every kernel returns a new array of the input's length: float64, or bool for
``rising``/``falling`` (and ``lag`` of a bool array).

Missing values. A non-finite input (NaN, ±inf) is *missing*. Upstream warm-up produces
leading NaNs; every kernel starts over at the first finite value, so for an input whose
first finite value is at index ``f`` and which has no gaps after it, the first valid output
is at ``f + lookback`` with ``lookback`` the formula of ``peakdsl.lang.builtins`` (and NaN /
False before). Gaps after the start follow two rules, the same in ``reference.py``:

* window kernels (sma wma stdev zscore highest lowest bb_* roc percent_rank rising
  falling, true_range): an output needs every input it reads to be finite; otherwise NaN
  (False for the bool kernels);
* recursive kernels (ema rma rsi atr macd* plus_di minus_di adx) *skip* missing bars:
  the output there is NaN and the state is carried over unchanged; the seed is the
  simple mean of the first ``n`` valid values, wherever they are (the ``talib`` seeding of
  macd* plus_di minus_di adx differs only in the seed: see those kernels).

Rolling sums are computed in O(len) with a shifted running sum that is re-summed exactly
on a schedule (no cumsum drift) and whenever an update may have lost precision (an outlier
leaving the window: ``_moments`` for the deviations, ``kernels_mean`` for ``sma``'s mean);
a window whose ``n`` values are all equal has a mean of exactly that value and a deviation
of exactly 0.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from ..lang.builtins import DEVIATION, SEEDING, Mode
from . import kernels_mean
from .scan import MayFire, ScanState, may_fire, scan

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Kernel = Callable[..., npt.NDArray[Any]]

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(fn: _F) -> _F:
    """``numba.njit(cache=True)`` keeping the Python signature for the type checker."""
    return cast(_F, numba.njit(cache=True, nogil=True)(fn))


def _f64(x: npt.ArrayLike) -> FloatArray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _window(n: int | float, least: int = 1) -> int:
    w = int(n)
    if w != n or w < least:
        raise ValueError(f"window must be an integer >= {least}, got {n!r}")
    return w


def _choice(value: str, mode: Mode) -> str:
    """A mode argument, checked: the checker only lets known keywords through, so anything
    else is a caller's bug, reported instead of silently falling back to the default."""
    if value not in mode.choices:
        raise ValueError(f"mode must be one of {', '.join(mode.choices)}, got {value!r}")
    return value


def _talib(mode: str) -> bool:
    return _choice(mode, SEEDING) == "talib"


# ---------------------------------------------------------------- numba loops


@_jit
def _resum(x: FloatArray, i: int, n: int) -> tuple[float, float, float]:
    """Exact re-summation of the window ending at ``i`` around its own mean (the shift):
    (shift, sum of deviations, sum of squared deviations)."""
    m = 0.0
    for j in range(i - n + 1, i + 1):
        m += x[j]
    shift = m / n
    s1 = 0.0
    s2 = 0.0
    for j in range(i - n + 1, i + 1):
        d = x[j] - shift
        s1 += d
        s2 += d * d
    return shift, s1, s2


# A running sum that loses more than this factor of its size to cancellation is re-summed.
CANCELLATION = 2.0 ** 26


@_jit
def _moments(x: FloatArray, n: int, mean: FloatArray, var: FloatArray) -> None:
    """Rolling mean and population variance over ``n`` finite values incl. the current
    (``stdev``, ``zscore``, ``bb_*``; ``sma`` has a mean-only loop, ``kernels_mean``).

    Sums of deviations from a shift (the mean at the last exact re-summation) keep the
    variance exact for prices far from 0; they are re-summed exactly every ``n`` updates,
    and at once when an update may have lost precision: when the value leaving was far
    larger than what the window keeps (a 1e9 outlier leaving small values: its square
    swallowed their bits when it entered), or when the window has moved more than 100
    deviations away from the shift (each ``x - shift`` is rounded to the shift's size)."""
    size = x.shape[0]
    run = 0  # consecutive finite values ending here
    same = 0  # consecutive equal finite values ending here
    since = 0  # running updates since the last exact re-summation
    shift = s1 = s2 = 0.0
    for i in range(size):
        v = x[i]
        if not math.isfinite(v) or run + 1 < n:
            mean[i] = np.nan
            var[i] = np.nan
        if not math.isfinite(v):
            run = 0
            same = 0
            continue
        run += 1
        same = same + 1 if run > 1 and v == x[i - 1] else 1
        if run < n:
            continue
        resum = run == n or since >= n
        if not resum:
            a = v - shift
            b = x[i - n] - shift
            s1 += a - b
            s2 += a * a - b * b
            since += 1
            mu = s1 / n
            resum = b * b > CANCELLATION * abs(s2) or \
                mu * mu > 1e4 * max(s2 / n - mu * mu, 0.0)
        if resum:
            shift, s1, s2 = _resum(x, i, n)
            since = 0
        if same >= n:
            mean[i] = v
            var[i] = 0.0
        else:
            mu = s1 / n
            mean[i] = shift + mu
            w = s2 / n - mu * mu
            var[i] = w if w > 0.0 else 0.0


@_jit
def _wma(x: FloatArray, n: int) -> FloatArray:
    size = x.shape[0]
    out = np.full(size, np.nan)
    denom = n * (n + 1) / 2.0
    run = 0
    for i in range(size):
        if not math.isfinite(x[i]):
            run = 0
            continue
        run += 1
        if run >= n:
            s = 0.0
            for j in range(n):
                s += (n - j) * x[i - j]
            out[i] = s / denom
    return out


@_jit
def _extreme(x: FloatArray, n: int, sign: float) -> FloatArray:
    """Rolling max (sign 1) or min (sign -1) with a monotonic deque of indices."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    dq = np.empty(size, np.int64)
    head = 0
    tail = 0
    run = 0
    for i in range(size):
        v = x[i]
        if not math.isfinite(v):
            run = 0
            head = 0
            tail = 0
            continue
        run += 1
        while tail > head and sign * x[dq[tail - 1]] <= sign * v:
            tail -= 1
        dq[tail] = i
        tail += 1
        while dq[head] <= i - n:
            head += 1
        if run >= n:
            out[i] = x[dq[head]]
    return out


@_jit
def _mean_last(x: FloatArray, i: int, n: int) -> float:
    """Mean of the last ``n`` finite values of ``x`` up to index ``i`` (there are at least
    ``n``), summed oldest first, the order a running seed sum would use."""
    j = i
    found = 0
    while found < n:
        if math.isfinite(x[j]):
            found += 1
        j -= 1
    total = 0.0
    for k in range(j + 1, i + 1):
        if math.isfinite(x[k]):
            total += x[k]
    return total / n


@_jit
def _smooth(x: FloatArray, n: int, alpha: float, seed_at: int) -> FloatArray:
    """s = alpha·x + (1 - alpha)·s[prev valid] over the valid values, seeded at the
    ``seed_at``-th valid value (``>= n``) with the mean of the last ``n`` valid values up to
    it. ``seed_at = n`` is the classic seed (the mean of the first n); a later one aligns a
    short average with a longer one, as TA-Lib's MACD does."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    count = 0
    state = 0.0
    for i in range(size):
        v = x[i]
        if not math.isfinite(v):
            continue
        count += 1
        if count < seed_at:
            continue
        seeded = count > seed_at
        state = alpha * v + (1.0 - alpha) * state if seeded else _mean_last(x, i, n)
        out[i] = state
    return out


@_jit
def _rsi_value(g: float, lo: float) -> float:
    if lo == 0.0:
        return 50.0 if g == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + g / lo)


@_jit
def _rsi(x: FloatArray, n: int) -> FloatArray:
    size = x.shape[0]
    out = np.full(size, np.nan)
    count = 0
    g = 0.0
    lo = 0.0
    for i in range(1, size):
        a = x[i]
        b = x[i - 1]
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        d = a - b
        gain = d if d > 0.0 else 0.0
        loss = -d if d < 0.0 else 0.0
        if count < n:
            g += gain
            lo += loss
            count += 1
            if count < n:
                continue
            g /= n
            lo /= n
        else:
            g = (g * (n - 1) + gain) / n
            lo = (lo * (n - 1) + loss) / n
        out[i] = _rsi_value(g, lo)
    return out


@_jit
def _true_range(h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    size = h.shape[0]
    out = np.full(size, np.nan)
    for i in range(1, size):
        if math.isfinite(h[i]) and math.isfinite(lo[i]) and math.isfinite(c[i - 1]):
            out[i] = max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1]))
    return out


@_jit
def _wilder(s: float, x: float, n: int, count: int, talib: bool) -> float:
    """Wilder's smoothing ``s`` after its ``count``-th value ``x`` (counting from 1).

    peak: the mean of the first n, then ``(s·(n-1) + x)/n``. TA-Lib: the *sum* of the first
    n - 1, then ``s - s/n + x`` from the n-th on (n times a mean; the DIs are ratios of two
    such sums, so the scale cancels but the different seed does not)."""
    if count < n:
        return s + x
    if talib:
        return s - s / n + x
    if count == n:
        return (s + x) / n
    return (s * (n - 1) + x) / n


@_jit
def _percent(a: float, b: float, talib: bool) -> float:
    """``100·a/b``, 0 when ``b`` is not positive; TA-Lib's order ``100·(a/b)`` for
    ``talib`` (equal up to rounding, which only shows with subnormal sums: after a thousand
    bars without directional movement)."""
    if not b > 0.0:
        return 0.0
    return 100.0 * (a / b) if talib else 100.0 * a / b


@_jit
def _dmi(h: FloatArray, lo: FloatArray, c: FloatArray, n: int,
         talib: bool) -> tuple[FloatArray, FloatArray, FloatArray]:
    """+DI, -DI and ADX (Wilder) in one pass; see ``plus_di`` and ``adx`` for the rules."""
    size = h.shape[0]
    plus = np.full(size, np.nan)
    minus = np.full(size, np.nan)
    adx = np.full(size, np.nan)
    count = 0
    s_tr = 0.0
    s_p = 0.0
    s_m = 0.0
    count_dx = 0
    s_dx = 0.0
    for i in range(1, size):
        if not (math.isfinite(h[i]) and math.isfinite(lo[i]) and math.isfinite(c[i - 1])
                and math.isfinite(h[i - 1]) and math.isfinite(lo[i - 1])):
            continue
        tr = max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1]))
        up = h[i] - h[i - 1]
        down = lo[i - 1] - lo[i]
        count += 1
        s_tr = _wilder(s_tr, tr, n, count, talib)
        s_p = _wilder(s_p, up if up > down and up > 0.0 else 0.0, n, count, talib)
        s_m = _wilder(s_m, down if down > up and down > 0.0 else 0.0, n, count, talib)
        if count < n:
            continue
        pdi = _percent(s_p, s_tr, talib)
        mdi = _percent(s_m, s_tr, talib)
        plus[i] = pdi
        minus[i] = mdi
        # DX from the DIs (peak) or, as TA-Lib does, from the smoothed DMs (TR cancels)
        a, b = (s_p, s_m) if talib else (pdi, mdi)
        count_dx += 1
        if talib and count_dx > n and not a + b > 0.0:
            adx[i] = s_dx  # TA-Lib leaves the ADX unchanged on a bar without a DX
            continue
        s_dx = _wilder(s_dx, _percent(abs(a - b), a + b, talib), n, count_dx, False)
        if count_dx >= n:
            adx[i] = s_dx
    return plus, minus, adx


@_jit
def _percent_rank(x: FloatArray, n: int) -> FloatArray:
    size = x.shape[0]
    out = np.full(size, np.nan)
    run = 0
    for i in range(size):
        if not math.isfinite(x[i]):
            run = 0
            continue
        run += 1
        if run > n:
            count = 0
            for j in range(1, n + 1):
                if x[i - j] <= x[i]:
                    count += 1
            out[i] = 100.0 * count / n
    return out


@_jit
def _streak(x: FloatArray, n: int, sign: float) -> BoolArray:
    """True where sign·x rose strictly on each of the last n bars (all values finite)."""
    size = x.shape[0]
    out = np.zeros(size, np.bool_)
    run = 0
    for i in range(1, size):
        a = x[i]
        b = x[i - 1]
        if math.isfinite(a) and math.isfinite(b) and sign * a > sign * b:
            run += 1
        else:
            run = 0
        out[i] = run >= n
    return out


# ---------------------------------------------------------------- public kernels


def sma(x: npt.ArrayLike, n: int) -> FloatArray:
    """Simple moving average: mean of the last ``n`` values including the current bar."""
    return kernels_mean.sma(x, _window(n))


def ema(x: npt.ArrayLike, n: int) -> FloatArray:
    """Exponential moving average, ``alpha = 2/(n+1)``: ``e = alpha·x + (1-alpha)·e[prev]``.

    Seeded with the simple mean of the first ``n`` valid values, at the index of the n-th
    (``first_valid + n - 1`` without gaps). Missing bars are skipped (NaN out, state kept).
    """
    w = _window(n)
    return _smooth(_f64(x), w, 2.0 / (w + 1.0), w)


def rma(x: npt.ArrayLike, n: int) -> FloatArray:
    """Wilder's moving average, ``alpha = 1/n``; seeded and gap-skipping like ``ema``."""
    w = _window(n)
    return _smooth(_f64(x), w, 1.0 / w, w)


def wma(x: npt.ArrayLike, n: int) -> FloatArray:
    """Linearly weighted mean of the last ``n`` values, weights 1..n (newest n), normalised
    by ``n(n+1)/2``."""
    return _wma(_f64(x), _window(n))


def rsi(x: npt.ArrayLike, n: int) -> FloatArray:
    """Relative strength index 0..100.

    Changes ``d = x - x[1]`` (missing when either side is); gains ``max(d, 0)`` and losses
    ``max(-d, 0)`` are Wilder-averaged (``g = (g·(n-1) + gain)/n``) after a seed equal to
    the simple mean of the first ``n`` changes, so the first value is at index ``n`` for a
    gap-free input. ``rsi = 100 - 100/(1 + g/l)``; ``l == 0`` gives 100, or 50 when also
    ``g == 0``.
    """
    return _rsi(_f64(x), _window(n))


def true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """``max(high - low, |high - close[1]|, |low - close[1]|)``; NaN at index 0 and where
    any of the three is missing."""
    return _true_range(_f64(high), _f64(low), _f64(close))


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int) -> FloatArray:
    """Average true range: ``rma(true_range, n)``; first valid at index ``n``."""
    return rma(true_range(high, low, close), n)


def _deviation(xs: FloatArray, n: int, mode: str) -> tuple[FloatArray, FloatArray]:
    """Rolling mean and standard deviation of the last ``n`` values: the population one
    (squares / n) or the sample one (squares / (n - 1), pandas' default; NaN for n = 1)."""
    w = _window(n)
    mean, var = np.empty_like(xs), np.empty_like(xs)
    _moments(xs, w, mean, var)
    if _choice(mode, DEVIATION) == "sample":
        var = var * (w / (w - 1.0)) if w > 1 else np.full_like(var, np.nan)
    return mean, np.sqrt(var)


def stdev(x: npt.ArrayLike, n: int, mode: str = "population") -> FloatArray:
    """Standard deviation of the last ``n`` values, ``population`` (ddof 0) or ``sample``
    (ddof 1); exactly 0 when they are all equal."""
    return _deviation(_f64(x), n, mode)[1]


def zscore(x: npt.ArrayLike, n: int, mode: str = "population") -> FloatArray:
    """``(x - sma(x, n)) / stdev(x, n, mode)``; NaN where the deviation is 0."""
    xs = _f64(x)
    mean, sd = _deviation(xs, n, mode)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (xs - mean) / sd
    out[sd == 0.0] = np.nan
    return out


def roc(x: npt.ArrayLike, n: int) -> FloatArray:
    """Rate of change ``x / x[n] - 1`` (a fraction); NaN for the first ``n`` bars, where
    either value is missing and where ``x[n]`` is 0 (division by zero is missing, never
    ±inf: docs/language.md, "Missing values")."""
    xs = _f64(x)
    w = _window(n)
    out = np.full_like(xs, np.nan)
    if w < xs.shape[0]:
        now, then = xs[w:], xs[:-w]
        with np.errstate(invalid="ignore", divide="ignore"):
            change = now / then - 1.0
        ok = np.isfinite(now) & np.isfinite(then) & (then != 0.0)
        out[w:] = np.where(ok, change, np.nan)
    return out


def highest(x: npt.ArrayLike, n: int) -> FloatArray:
    """Highest of the last ``n`` values including the current bar."""
    return _extreme(_f64(x), _window(n), 1.0)


def lowest(x: npt.ArrayLike, n: int) -> FloatArray:
    """Lowest of the last ``n`` values including the current bar."""
    return _extreme(_f64(x), _window(n), -1.0)


def bb_upper(x: npt.ArrayLike, n: int, k: float, mode: str = "population") -> FloatArray:
    """Upper Bollinger band ``sma(x, n) + k·stdev(x, n, mode)``."""
    mean, sd = _deviation(_f64(x), n, mode)
    return mean + float(k) * sd


def bb_lower(x: npt.ArrayLike, n: int, k: float, mode: str = "population") -> FloatArray:
    """Lower Bollinger band ``sma(x, n) - k·stdev(x, n, mode)``."""
    mean, sd = _deviation(_f64(x), n, mode)
    return mean - float(k) * sd


def macd(x: npt.ArrayLike, fast: int, slow: int, mode: str = "peak") -> FloatArray:
    """``ema(x, fast) - ema(x, slow)``; first valid at ``max(fast, slow) - 1``.

    ``peak``: each EMA seeded with the mean of its own first n valid values. ``talib``:
    both seeded at the ``max(fast, slow)``-th valid value, the shorter one with the mean of
    the last ``min(fast, slow)`` values up to there (TA-Lib computes the fast EMA from the
    slow one's first bar). Fast and slow are never swapped (TA-Lib swaps them when
    ``slow < fast``)."""
    xs = _f64(x)
    f, s = _window(fast), _window(slow)
    start = max(f, s) if _talib(mode) else 0
    fast_ema = _smooth(xs, f, 2.0 / (f + 1.0), max(f, start))
    return fast_ema - _smooth(xs, s, 2.0 / (s + 1.0), max(s, start))


def macd_signal(x: npt.ArrayLike, fast: int, slow: int, signal: int,
                mode: str = "peak") -> FloatArray:
    """``ema(macd(x, fast, slow, mode), signal)``, seeded with the mean of the macd line's
    first ``signal`` valid values (both modes); first valid at
    ``max(fast, slow) + signal - 2``."""
    return ema(macd(x, fast, slow, mode), signal)


def macd_hist(x: npt.ArrayLike, fast: int, slow: int, signal: int,
              mode: str = "peak") -> FloatArray:
    """``macd - macd_signal``."""
    line = macd(x, fast, slow, mode)
    return line - ema(line, signal)


def _dmi_all(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
             n: int, mode: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    return _dmi(_f64(high), _f64(low), _f64(close), _window(n), _talib(mode))


def plus_di(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
            n: int, mode: str = "peak") -> FloatArray:
    """+DI (Wilder), 0..100.

    ``up = high - high[1]``, ``down = low[1] - low``; ``+DM = up`` if ``up > down`` and
    ``up > 0`` else 0 (``-DM`` symmetric); TR as ``true_range``. A bar counts when high and
    low of it and of the previous bar and the previous close are finite; TR, +DM and -DM
    are smoothed jointly over counted bars with Wilder's smoothing, seeded (``peak``) with
    the mean of the first n counted bars or (``talib``) with the sum of the first n - 1 then
    one step ``s - s/n + x``. ``+DI = 100·+DM_s/TR_s`` (0 when ``TR_s`` is 0). First valid
    at the n-th counted bar (index ``n`` without gaps) in both modes.
    """
    return _dmi_all(high, low, close, n, mode)[0]


def minus_di(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
             n: int, mode: str = "peak") -> FloatArray:
    """-DI (Wilder), 0..100: ``100·-DM_s/TR_s``; see ``plus_di``."""
    return _dmi_all(high, low, close, n, mode)[1]


def adx(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int,
        mode: str = "peak") -> FloatArray:
    """Average directional index: ``rma(dx, n)`` over the DI bars, with
    ``dx = 100·|+DI - -DI|/(+DI + -DI)``; first valid at index ``2n - 1``.

    Where ``+DI + -DI`` is 0, ``dx`` counts as 0 (``peak``); ``talib`` counts it as 0 in
    the seed too but afterwards leaves the ADX unchanged on such a bar, as TA-Lib does."""
    return _dmi_all(high, low, close, n, mode)[2]


def percent_rank(x: npt.ArrayLike, n: int) -> FloatArray:
    """``100 · #{j in 1..n : x[j] <= x[0]} / n``: how many of the previous ``n`` values are
    at most the current one; first valid at index ``n``."""
    return _percent_rank(_f64(x), _window(n))


def rising(x: npt.ArrayLike, n: int) -> BoolArray:
    """``x[i] > x[i+1]`` for each ``i`` in ``0..n-1`` (strict); False while not computable."""
    return _streak(_f64(x), _window(n), 1.0)


def falling(x: npt.ArrayLike, n: int) -> BoolArray:
    """``x[i] < x[i+1]`` for each ``i`` in ``0..n-1`` (strict); False while not computable."""
    return _streak(_f64(x), _window(n), -1.0)


def lag(x: npt.ArrayLike, n: int) -> npt.NDArray[Any]:
    """The value ``n`` bars ago (``n >= 0``): NaN fill for numbers, False fill for bools."""
    arr = np.asarray(x)
    w = _window(n, least=0)
    if arr.dtype != np.bool_:
        arr = arr.astype(np.float64)
    fill: bool | float = False if arr.dtype == np.bool_ else np.nan
    out = np.full(arr.shape, fill, dtype=arr.dtype)
    if w == 0:
        out[:] = arr
    elif w < arr.shape[0]:
        out[w:] = arr[:-w]
    return out


def align(x: npt.ArrayLike, index: npt.ArrayLike, frame: str = "") -> npt.NDArray[Any]:
    """A frame's series read at each strategy bar (``lang.frames``): ``x[index[i]]``, where
    ``index`` (``data.frames``) is the frame's last closed bar at bar ``i``, or -1 before
    the first: NaN there for numbers, False for bools. ``frame`` only names the frame."""
    arr = np.asarray(x)
    at = np.asarray(index, dtype=np.int64)
    if arr.ndim == 0:  # a frame value that folded to a constant is that constant everywhere
        arr = np.full(max(int(at.max(initial=-1)) + 1, 1), arr)
    if arr.dtype != np.bool_:
        arr = arr.astype(np.float64)
    fill: bool | float = False if arr.dtype == np.bool_ else np.nan
    out = np.full(at.shape, fill, dtype=arr.dtype)
    seen = at >= 0
    out[seen] = arr[at[seen]]
    return out


KERNELS: dict[str, Kernel] = {
    "sma": sma, "ema": ema, "wma": wma, "rma": rma, "rsi": rsi,
    "true_range": true_range, "atr": atr, "stdev": stdev, "zscore": zscore, "roc": roc,
    "highest": highest, "lowest": lowest, "bb_upper": bb_upper, "bb_lower": bb_lower,
    "macd": macd, "macd_signal": macd_signal, "macd_hist": macd_hist,
    "adx": adx, "plus_di": plus_di, "minus_di": minus_di, "percent_rank": percent_rank,
    "rising": rising, "falling": falling, "lag": lag, "align": align,
    "state": scan,  # a ``state`` let's scan body (``engine.scan``)
    "position_rule": may_fire,  # a rule that reads the position (``engine.position``)
}


# ---------------------------------------------------------------- incremental forms
#
# The live runner sees one closed bar at a time. Every kernel has a *state form* here:
# ``STATES[name](*static)`` takes the kernel's windows, scalars and mode (the arguments of
# ``KERNELS[name]`` without the arrays, in the same order) and ``push(*values)`` takes the
# arrays' values at the next bar (the implicit high/low/close first) and returns the
# kernel's output at that bar. State is bounded: window kernels keep the last n (or n + 1)
# inputs in a ring buffer, recursive kernels their carried values (and, until seeded, the
# last n valid inputs for the seed).
#
# Each form repeats its numba loop above operation for operation, in the same order, or
# calls the same jitted helper (``_resum``, ``_wilder``, ``_percent``, ``_rsi_value``), so
# a state pushed every bar of an input returns *exactly* what the whole-array kernel
# returns at every bar: the same doubles, NaN at the same bars. Rolling sums included:
# ``_MomentsState`` carries ``_moments``' shift, sums and re-summation counters, not a
# fresh sum of the window (``kernels_mean.MeanState`` likewise for ``sma``).
# tests/engine/test_kernels.py checks every kernel and mode on random data with gaps, flat
# runs and leading NaNs.


class KernelState(Protocol):
    """One kernel, one bar at a time (see ``STATES``)."""

    def push(self, *values: Any) -> Any:
        """The kernel's output at the bar whose input values these are."""


class _MomentsState:
    """``_moments`` one bar at a time: the last n + 1 values (the window and the one leaving
    it), the finite and equal run lengths, and the shifted running sums with their
    re-summation counter."""

    __slots__ = ("n", "run", "s1", "s2", "same", "shift", "since", "window")

    def __init__(self, n: int) -> None:
        self.n = n
        self.window: deque[float] = deque(maxlen=n + 1)
        self.run = self.same = self.since = 0
        self.shift = self.s1 = self.s2 = 0.0

    def push(self, v: float) -> tuple[float, float]:
        """(mean, population variance) at this bar, NaN until n finite values in a row."""
        prev = self.window[-1] if self.window else math.nan
        self.window.append(v)
        if not math.isfinite(v):
            self.run = self.same = 0
            return math.nan, math.nan
        self.run += 1
        self.same = self.same + 1 if self.run > 1 and v == prev else 1
        if self.run < self.n:
            return math.nan, math.nan
        self._update(v)
        if self.same >= self.n:
            return v, 0.0
        mu = self.s1 / self.n
        w = self.s2 / self.n - mu * mu
        return self.shift + mu, w if w > 0.0 else 0.0

    def _update(self, v: float) -> None:
        n = self.n
        resum = self.run == n or self.since >= n
        if not resum:  # run > n: the window holds n + 1 values, window[0] is leaving
            a = v - self.shift
            b = self.window[0] - self.shift
            self.s1 += a - b
            self.s2 += a * a - b * b
            self.since += 1
            mu = self.s1 / n
            resum = b * b > CANCELLATION * abs(self.s2) or \
                mu * mu > 1e4 * max(self.s2 / n - mu * mu, 0.0)
        if resum:
            last = np.array(self.window, dtype=np.float64)
            self.shift, self.s1, self.s2 = _resum(last, last.shape[0] - 1, n)
            self.since = 0


def _sma_state(n: int) -> kernels_mean.MeanState:
    return kernels_mean.MeanState(_window(n))


class _DeviationState:
    """``_deviation``: the moments' mean and the population or sample deviation."""

    __slots__ = ("moments", "sample", "w")

    def __init__(self, n: int, mode: str) -> None:
        self.w = _window(n)
        self.sample = _choice(mode, DEVIATION) == "sample"
        self.moments = _MomentsState(self.w)

    def push(self, x: float) -> tuple[float, float]:
        mean, var = self.moments.push(x)
        if self.sample:
            var = var * (self.w / (self.w - 1.0)) if self.w > 1 else math.nan
        return mean, math.sqrt(var)


class _StdevState:
    __slots__ = ("dev",)

    def __init__(self, n: int, mode: str = "population") -> None:
        self.dev = _DeviationState(n, mode)

    def push(self, x: float) -> float:
        return self.dev.push(x)[1]


class _ZscoreState:
    __slots__ = ("dev",)

    def __init__(self, n: int, mode: str = "population") -> None:
        self.dev = _DeviationState(n, mode)

    def push(self, x: float) -> float:
        mean, sd = self.dev.push(x)
        return math.nan if sd == 0.0 else (x - mean) / sd


class _BandState:
    """``bb_upper`` (side 1) and ``bb_lower`` (side -1): ``mean ± k·sd``."""

    __slots__ = ("dev", "k", "side")

    def __init__(self, side: float, n: int, k: float, mode: str = "population") -> None:
        self.dev = _DeviationState(n, mode)
        self.k = float(k)
        self.side = side

    def push(self, x: float) -> float:
        mean, sd = self.dev.push(x)
        return mean + self.k * sd if self.side > 0 else mean - self.k * sd


class _WmaState:
    __slots__ = ("denom", "n", "run", "window")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.denom = self.n * (self.n + 1) / 2.0
        self.window: deque[float] = deque(maxlen=self.n)
        self.run = 0

    def push(self, x: float) -> float:
        self.window.append(x)
        self.run = self.run + 1 if math.isfinite(x) else 0
        if self.run < self.n:
            return math.nan
        s = 0.0
        for j, value in enumerate(reversed(self.window)):  # newest first, as ``_wma``
            s += (self.n - j) * value
        return s / self.denom


class _ExtremeState:
    """``_extreme``: the largest (sign 1) or smallest (sign -1) of the last n, the newest
    one among equals (the monotonic deque keeps the newest)."""

    __slots__ = ("n", "run", "sign", "window")

    def __init__(self, sign: float, n: int) -> None:
        self.n = _window(n)
        self.sign = sign
        self.window: deque[float] = deque(maxlen=self.n)
        self.run = 0

    def push(self, x: float) -> float:
        self.window.append(x)
        self.run = self.run + 1 if math.isfinite(x) else 0
        if self.run < self.n:
            return math.nan
        best = x
        for value in reversed(self.window):
            if self.sign * value > self.sign * best:
                best = value
        return best


class _SmoothState:
    """``_smooth``: the count of valid values, the carried average and, until the seed,
    the last n valid values (the seed is their mean, summed oldest first)."""

    __slots__ = ("alpha", "count", "last", "n", "seed_at", "state")

    def __init__(self, n: int, alpha: float, seed_at: int) -> None:
        self.n = n
        self.alpha = alpha
        self.seed_at = seed_at
        self.count = 0
        self.state = 0.0
        self.last: deque[float] = deque(maxlen=n)

    def push(self, x: float) -> float:
        if not math.isfinite(x):
            return math.nan
        self.count += 1
        if self.count > self.seed_at:
            self.state = self.alpha * x + (1.0 - self.alpha) * self.state
            return self.state
        self.last.append(x)
        if self.count < self.seed_at:
            return math.nan
        total = 0.0
        for value in self.last:
            total += value
        self.state = total / self.n
        self.last.clear()
        return self.state


def _ema_state(n: int) -> _SmoothState:
    w = _window(n)
    return _SmoothState(w, 2.0 / (w + 1.0), w)


def _rma_state(n: int) -> _SmoothState:
    w = _window(n)
    return _SmoothState(w, 1.0 / w, w)


class _RsiState:
    __slots__ = ("count", "g", "lo", "n", "prev")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.prev = math.nan
        self.count = 0
        self.g = self.lo = 0.0

    def push(self, x: float) -> float:
        before, self.prev = self.prev, x
        if not (math.isfinite(x) and math.isfinite(before)):
            return math.nan
        d = x - before
        gain = d if d > 0.0 else 0.0
        loss = -d if d < 0.0 else 0.0
        n = self.n
        if self.count < n:
            self.g += gain
            self.lo += loss
            self.count += 1
            if self.count < n:
                return math.nan
            self.g /= n
            self.lo /= n
        else:
            self.g = (self.g * (n - 1) + gain) / n
            self.lo = (self.lo * (n - 1) + loss) / n
        return float(_rsi_value(self.g, self.lo))


class _TrueRangeState:
    __slots__ = ("prev_close",)

    def __init__(self) -> None:
        self.prev_close = math.nan

    def push(self, h: float, lo: float, c: float) -> float:
        pc, self.prev_close = self.prev_close, c
        if math.isfinite(h) and math.isfinite(lo) and math.isfinite(pc):
            return max(h - lo, abs(h - pc), abs(lo - pc))
        return math.nan


class _AtrState:
    __slots__ = ("smooth", "tr")

    def __init__(self, n: int) -> None:
        self.tr = _TrueRangeState()
        self.smooth = _rma_state(n)

    def push(self, h: float, lo: float, c: float) -> float:
        return self.smooth.push(self.tr.push(h, lo, c))


class _DmiState:
    """``_dmi`` one bar at a time: the previous bar, the smoothed TR, +DM, -DM and DX."""

    __slots__ = ("count", "count_dx", "n", "prev", "s_dx", "s_m", "s_p", "s_tr", "talib")

    def __init__(self, n: int, mode: str) -> None:
        self.n = _window(n)
        self.talib = _talib(mode)
        self.prev = (math.nan, math.nan, math.nan)
        self.count = self.count_dx = 0
        self.s_tr = self.s_p = self.s_m = self.s_dx = 0.0

    def push(self, h: float, lo: float, c: float) -> tuple[float, float, float]:
        """(+DI, -DI, ADX) at this bar."""
        ph, plo, pc = self.prev
        self.prev = (h, lo, c)
        if not all(math.isfinite(v) for v in (h, lo, pc, ph, plo)):
            return math.nan, math.nan, math.nan
        n, talib = self.n, self.talib
        tr = max(h - lo, abs(h - pc), abs(lo - pc))
        up = h - ph
        down = plo - lo
        self.count += 1
        self.s_tr = _wilder(self.s_tr, tr, n, self.count, talib)
        self.s_p = _wilder(self.s_p, up if up > down and up > 0.0 else 0.0, n, self.count,
                           talib)
        self.s_m = _wilder(self.s_m, down if down > up and down > 0.0 else 0.0, n,
                           self.count, talib)
        if self.count < n:
            return math.nan, math.nan, math.nan
        pdi = float(_percent(self.s_p, self.s_tr, talib))
        mdi = float(_percent(self.s_m, self.s_tr, talib))
        return pdi, mdi, self._adx(pdi, mdi)

    def _adx(self, pdi: float, mdi: float) -> float:
        n, talib = self.n, self.talib
        a, b = (self.s_p, self.s_m) if talib else (pdi, mdi)
        self.count_dx += 1
        if talib and self.count_dx > n and not a + b > 0.0:
            return self.s_dx  # TA-Lib leaves the ADX unchanged on a bar without a DX
        self.s_dx = _wilder(self.s_dx, _percent(abs(a - b), a + b, talib), n, self.count_dx,
                            False)
        return self.s_dx if self.count_dx >= n else math.nan


class _DmiPartState:
    """One of +DI (0), -DI (1), ADX (2)."""

    __slots__ = ("dmi", "part")

    def __init__(self, part: int, n: int, mode: str = "peak") -> None:
        self.dmi = _DmiState(n, mode)
        self.part = part

    def push(self, h: float, lo: float, c: float) -> float:
        return self.dmi.push(h, lo, c)[self.part]


class _MacdState:
    __slots__ = ("fast", "slow")

    def __init__(self, fast: int, slow: int, mode: str = "peak") -> None:
        f, s = _window(fast), _window(slow)
        start = max(f, s) if _talib(mode) else 0
        self.fast = _SmoothState(f, 2.0 / (f + 1.0), max(f, start))
        self.slow = _SmoothState(s, 2.0 / (s + 1.0), max(s, start))

    def push(self, x: float) -> float:
        return self.fast.push(x) - self.slow.push(x)


class _MacdSignalState:
    """``macd_signal`` (hist False) or ``macd_hist`` (hist True)."""

    __slots__ = ("hist", "line", "signal")

    def __init__(self, hist: bool, fast: int, slow: int, signal: int,
                 mode: str = "peak") -> None:
        self.line = _MacdState(fast, slow, mode)
        self.signal = _ema_state(signal)
        self.hist = hist

    def push(self, x: float) -> float:
        line = self.line.push(x)
        smoothed = self.signal.push(line)
        return line - smoothed if self.hist else smoothed


class _RocState:
    __slots__ = ("n", "window")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.window: deque[float] = deque(maxlen=self.n + 1)

    def push(self, x: float) -> float:
        self.window.append(x)
        if len(self.window) <= self.n:
            return math.nan
        then = self.window[0]
        if math.isfinite(x) and math.isfinite(then) and then != 0.0:
            return x / then - 1.0
        return math.nan


class _PercentRankState:
    __slots__ = ("n", "run", "window")

    def __init__(self, n: int) -> None:
        self.n = _window(n)
        self.window: deque[float] = deque(maxlen=self.n + 1)
        self.run = 0

    def push(self, x: float) -> float:
        self.window.append(x)
        self.run = self.run + 1 if math.isfinite(x) else 0
        if self.run <= self.n:
            return math.nan
        count = 0
        for j in range(self.n):  # the n values before this one
            if self.window[j] <= x:
                count += 1
        return 100.0 * count / self.n


class _StreakState:
    __slots__ = ("n", "prev", "run", "sign")

    def __init__(self, sign: float, n: int) -> None:
        self.n = _window(n)
        self.sign = sign
        self.prev = math.nan  # the first bar never rises: no previous value
        self.run = 0

    def push(self, x: float) -> bool:
        before, self.prev = self.prev, x
        if math.isfinite(x) and math.isfinite(before) and self.sign * x > self.sign * before:
            self.run += 1
        else:
            self.run = 0
        return self.run >= self.n


class _LagState:
    """The value n bars ago: a ring of the last n values; NaN (False for booleans) before."""

    __slots__ = ("n", "window")

    def __init__(self, n: int) -> None:
        self.n = _window(n, least=0)
        self.window: deque[Any] = deque(maxlen=max(self.n, 1))

    def push(self, x: Any) -> Any:
        if self.n == 0:
            return x
        full = len(self.window) == self.n
        out = self.window[0] if full else (False if isinstance(x, bool | np.bool_) else math.nan)
        self.window.append(x)
        return out


class _AlignState:
    """``align`` one bar at a time: the frame's value at its last closed bar, i.e. ``x`` as
    the stream last computed it on the frame (the stream runs a frame's steps only when one
    of its bars completes, ``engine.frame_stream``), or NaN (False for booleans) while
    ``index`` — the frame bars completed, less one — is still -1."""

    __slots__ = ()

    def __init__(self, frame: str = "") -> None:
        del frame  # names the frame only, as in ``align``

    def push(self, x: Any, index: float) -> Any:
        if index >= 0:
            return x
        return False if isinstance(x, bool | np.bool_) else math.nan


STATES: dict[str, Callable[..., KernelState]] = {
    "sma": _sma_state, "ema": _ema_state, "wma": _WmaState, "rma": _rma_state,
    "rsi": _RsiState, "true_range": _TrueRangeState, "atr": _AtrState,
    "stdev": _StdevState, "zscore": _ZscoreState, "roc": _RocState,
    "highest": lambda n: _ExtremeState(1.0, n), "lowest": lambda n: _ExtremeState(-1.0, n),
    "bb_upper": lambda *a: _BandState(1.0, *a), "bb_lower": lambda *a: _BandState(-1.0, *a),
    "macd": _MacdState, "macd_signal": lambda *a: _MacdSignalState(False, *a),
    "macd_hist": lambda *a: _MacdSignalState(True, *a),
    "plus_di": lambda *a: _DmiPartState(0, *a), "minus_di": lambda *a: _DmiPartState(1, *a),
    "adx": lambda *a: _DmiPartState(2, *a), "percent_rank": _PercentRankState,
    "rising": lambda n: _StreakState(1.0, n), "falling": lambda n: _StreakState(-1.0, n),
    "lag": _LagState, "align": _AlignState, "state": ScanState, "position_rule": MayFire,
}

# The ported indicators (stochastic, CCI, Keltner, Supertrend, …) live in ``kernels_ta.py``
# and add their kernels and state forms to the two tables above when imported.
from . import kernels_ta  # noqa: E402, F401
