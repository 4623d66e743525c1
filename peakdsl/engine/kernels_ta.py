"""Kernels of the indicators ported strategies use, and their state forms.

Stochastic, Williams %R, CCI, MFI, OBV, rolling VWAP, Keltner, Donchian, Ichimoku,
Heikin-Ashi, Supertrend, and the running aggregates ``sum``, ``cumsum``, ``barssince`` and
``valuewhen``. They live apart from ``kernels.py`` (the core kernels, tuned on their own),
here and in ``kernels_running.py`` (the recursions that need no other kernel, and the input
helpers), and register themselves in its ``KERNELS`` and ``STATES`` when this module is
imported; ``kernels.py`` imports it at its end, so whoever imports either sees one table.

The contract is ``kernels.py``'s, to the letter: ``KERNELS[name](*implicit, *args[, mode])``
with the implicit columns of the built-in first (``ha_open`` reads open, high, low, close;
``mfi`` and ``vwap`` high, low, close, volume; ``obv`` close, volume); a new array of the
input's length, float64; the first valid value at the built-in's lookback for a gap-free
input, which leading missing values only delay; and a state form that, pushed every bar,
returns exactly the kernel's doubles. Where an indicator is made of core indicators (ema,
true_range, atr, highest, lowest, sma, lag) it calls their public kernels and state forms,
which are bit-identical to each other; where it has a loop of its own, the kernel and the
state call the same jitted helper for a bar's arithmetic (``_cci_at``, ``_mfi_at``,
``_vwap_at``, ``kernels_running.supertrend_step``, the Heikin-Ashi candle), so the two cannot
drift.

Missing values (non-finite), as in ``kernels.py``:

* window indicators (stoch_k stoch_d willr cci mfi vwap donchian_* ichimoku_* sum): a value
  needs every input its window reads to be finite, otherwise NaN;
* recursive ones skip a bar with a missing input: NaN there, the state carried over. kc_*
  and supertrend* through their EMAs and ATR; obv and cumsum keep their running sum; the
  Heikin-Ashi candle needs all four prices of a bar and continues from the last complete one;
* conditions (``barssince``, ``valuewhen``) are booleans and never missing; numbers passed
  where a condition goes (direct calls only: the checker admits booleans alone) count as
  true where finite and non-zero.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from . import kernels as core
from . import kernels_running as running
from ._jit import jit
from .kernels_running import (
    NAN,
    FloatArray,
    all_finite,
    as_floats,
    checked_window,
    own_row,
    supertrend_loop,
    supertrend_step,
)

# ---------------------------------------------------------------- range position


def _position(num: FloatArray, den: FloatArray) -> FloatArray:
    """``100·num/den``, NaN where either is missing or ``den`` is 0 (a flat range)."""
    out = np.full(num.shape, NAN)
    ok = np.isfinite(num) & np.isfinite(den) & (den != 0.0)
    out[ok] = 100.0 * num[ok] / den[ok]
    return out


def _position_at(num: float, den: float) -> float:
    return 100.0 * num / den if all_finite(num, den) and den != 0.0 else NAN


def _range(high: npt.ArrayLike, low: npt.ArrayLike, n: int) -> tuple[FloatArray, FloatArray]:
    w = checked_window(n)
    return core.highest(high, w), core.lowest(low, w)


def stoch_k(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int
            ) -> FloatArray:
    """Fast stochastic %K, 0..100: ``100·(close - lowest(low, n)) / (highest(high, n) -
    lowest(low, n))`` (TradingView's ``ta.stoch``, TA-Lib's ``STOCHF`` fast-K with period
    n); NaN where the n-bar range is 0 (TA-Lib gives 0 there)."""
    top, bottom = _range(high, low, n)
    return _position(as_floats(close) - bottom, top - bottom)


def stoch_d(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int,
            m: int) -> FloatArray:
    """Stochastic %D: ``sma(stoch_k(n), m)``; first valid at ``n + m - 2``."""
    return core.sma(stoch_k(high, low, close, n), checked_window(m))


def willr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int
          ) -> FloatArray:
    """Williams %R, -100..0: ``100·(close - highest(high, n)) / (highest(high, n) -
    lowest(low, n))`` (TradingView's ``ta.wpr``, TA-Lib's ``WILLR``); NaN on a flat range."""
    top, bottom = _range(high, low, n)
    return _position(as_floats(close) - top, top - bottom)


class _RangeState:
    """``stoch_k`` (anchor -1: from the low) and ``willr`` (anchor 1: from the high)."""

    __slots__ = ("anchor", "bottom", "top")

    def __init__(self, anchor: int, n: int) -> None:
        self.anchor = anchor
        self.top = core.STATES["highest"](checked_window(n))
        self.bottom = core.STATES["lowest"](checked_window(n))

    def push(self, h: float, lo: float, c: float) -> float:
        top, bottom = self.top.push(h), self.bottom.push(lo)
        return _position_at(c - (top if self.anchor > 0 else bottom), top - bottom)


class _StochDState:
    __slots__ = ("k", "mean")

    def __init__(self, n: int, m: int) -> None:
        self.k = _RangeState(-1, n)
        self.mean = core.STATES["sma"](checked_window(m))

    def push(self, h: float, lo: float, c: float) -> float:
        return float(self.mean.push(self.k.push(h, lo, c)))


# ---------------------------------------------------------------- CCI


@jit
def _cci_at(window: FloatArray) -> float:
    """CCI of one window of finite values (the current one last): ``(x - mean) / (0.015 ·
    mean absolute deviation)``, summed oldest first; 0 when the values are all equal (no
    deviation and nothing to deviate: TA-Lib's value)."""
    n = window.shape[0]
    total = 0.0
    lo = window[0]
    hi = window[0]
    for v in window:
        total += v
        lo = min(lo, v)
        hi = max(hi, v)
    if lo == hi:
        return 0.0
    mean = total / n
    dev = 0.0
    for v in window:
        dev += abs(v - mean)
    cci: float = (window[n - 1] - mean) / (0.015 * (dev / n))
    return cci


@jit
def _cci(x: FloatArray, n: int) -> FloatArray:
    size = x.shape[0]
    out = np.full(size, np.nan)
    run = 0
    for i in range(size):
        if not math.isfinite(x[i]):
            run = 0
            continue
        run += 1
        if run >= n:
            out[i] = _cci_at(x[i - n + 1 : i + 1])
    return out


def cci(x: npt.ArrayLike, n: int) -> FloatArray:
    """Commodity channel index over ``n`` bars (TradingView's ``ta.cci(x, n)``, TA-Lib's
    ``CCI`` with ``x = hlc3``); O(n) per bar."""
    return _cci(as_floats(x), checked_window(n))


class _WindowState:
    """The last n values and the run of finite ones: a window kernel's memory."""

    __slots__ = ("n", "run", "window")

    def __init__(self, n: int) -> None:
        self.n = checked_window(n)
        self.window: deque[float] = deque(maxlen=self.n)
        self.run = 0

    def push(self, x: float) -> bool:
        """Take the bar's value; whether the window is now full of finite values."""
        self.window.append(x)
        self.run = self.run + 1 if math.isfinite(x) else 0
        return self.run >= self.n


class _CciState:
    __slots__ = ("last",)

    def __init__(self, n: int) -> None:
        self.last = _WindowState(n)

    def push(self, x: float) -> float:
        if not self.last.push(x):
            return NAN
        return float(_cci_at(np.array(self.last.window, dtype=np.float64)))


# ---------------------------------------------------------------- volume


@jit
def _typical(h: float, lo: float, c: float) -> float:
    """``hlc3``, summed as the compiled program sums it: ``(high + low + close) / 3``."""
    return (h + lo + c) / 3.0


@jit
def _flows(h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray
           ) -> tuple[FloatArray, FloatArray]:
    """Positive and negative money flow per bar: ``hlc3·volume`` on the side the typical
    price moved to (0 on the other, both 0 when it did not move); NaN where the typical
    price of the bar or of the one before, or the volume, is missing."""
    size = h.shape[0]
    pos = np.full(size, np.nan)
    neg = np.full(size, np.nan)
    for i in range(1, size):
        now = _typical(h[i], lo[i], c[i])
        before = _typical(h[i - 1], lo[i - 1], c[i - 1])
        if math.isfinite(now) and math.isfinite(before) and math.isfinite(v[i]):
            flow = now * v[i]
            pos[i] = flow if now > before else 0.0
            neg[i] = flow if now < before else 0.0
    return pos, neg


@jit
def _mfi_at(pos: FloatArray, neg: FloatArray) -> float:
    """100 - 100 / (1 + positive / negative flow), summed oldest first; like ``rsi``, 100
    when nothing flowed out and 50 when nothing flowed at all."""
    up = 0.0
    down = 0.0
    for j in range(pos.shape[0]):
        up += pos[j]
        down += neg[j]
    if down == 0.0:
        return 50.0 if up == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + up / down)


@jit
def _mfi(pos: FloatArray, neg: FloatArray, n: int) -> FloatArray:
    size = pos.shape[0]
    out = np.full(size, np.nan)
    run = 0
    for i in range(size):
        if not math.isfinite(pos[i]):
            run = 0
            continue
        run += 1
        if run >= n:
            out[i] = _mfi_at(pos[i - n + 1 : i + 1], neg[i - n + 1 : i + 1])
    return out


def mfi(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, volume: npt.ArrayLike,
        n: int) -> FloatArray:
    """Money flow index, 0..100, over the last ``n`` changes of the typical price (TA-Lib's
    ``MFI``, TradingView's ``ta.mfi(hlc3, n)``); first valid at index ``n``."""
    pos, neg = _flows(as_floats(high), as_floats(low), as_floats(close), as_floats(volume))
    return _mfi(pos, neg, checked_window(n))


class _MfiState:
    __slots__ = ("neg", "pos", "prev")

    def __init__(self, n: int) -> None:
        self.pos = _WindowState(n)
        self.neg: deque[float] = deque(maxlen=self.pos.n)
        self.prev = NAN

    def push(self, h: float, lo: float, c: float, v: float) -> float:
        now = float(_typical(h, lo, c))
        before, self.prev = self.prev, now
        up = down = NAN
        if all_finite(now, before, v):
            flow = now * v
            up = flow if now > before else 0.0
            down = flow if now < before else 0.0
        self.neg.append(down)
        if not self.pos.push(up):
            return NAN
        return float(_mfi_at(np.array(self.pos.window), np.array(self.neg)))


@jit
def _obv(c: FloatArray, v: FloatArray) -> FloatArray:
    size = c.shape[0]
    out = np.full(size, np.nan)
    total = 0.0
    for i in range(1, size):
        if math.isfinite(c[i]) and math.isfinite(c[i - 1]) and math.isfinite(v[i]):
            if c[i] > c[i - 1]:
                total += v[i]
            elif c[i] < c[i - 1]:
                total -= v[i]
            out[i] = total
    return out


def obv(close: npt.ArrayLike, volume: npt.ArrayLike) -> FloatArray:
    """On-balance volume: from 0, add the bar's volume when the close rose, subtract it
    when it fell (TradingView's ``ta.obv`` from bar 1; TA-Lib's ``OBV`` starts at
    ``volume[0]`` instead, a constant offset). NaN at index 0 and on bars whose close,
    previous close or volume is missing, which add nothing."""
    return _obv(as_floats(close), as_floats(volume))


class _ObvState:
    __slots__ = ("prev", "total")

    def __init__(self) -> None:
        self.prev = NAN
        self.total = 0.0

    def push(self, c: float, v: float) -> float:
        before, self.prev = self.prev, c
        if not all_finite(c, before, v):
            return NAN
        if c > before:
            self.total += v
        elif c < before:
            self.total -= v
        return self.total


@jit
def _vwap_at(pv: FloatArray, v: FloatArray) -> float:
    """``sum(hlc3·volume) / sum(volume)`` of one window, summed oldest first."""
    num = 0.0
    den = 0.0
    for j in range(pv.shape[0]):
        num += pv[j]
        den += v[j]
    return num / den if den != 0.0 else np.nan


@jit
def _vwap(h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray, n: int) -> FloatArray:
    size = h.shape[0]
    out = np.full(size, np.nan)
    pv = np.empty(size)
    run = 0
    for i in range(size):
        pv[i] = _typical(h[i], lo[i], c[i]) * v[i]
        if not math.isfinite(pv[i]):
            run = 0
            continue
        run += 1
        if run >= n:
            out[i] = _vwap_at(pv[i - n + 1 : i + 1], v[i - n + 1 : i + 1])
    return out


def vwap(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, volume: npt.ArrayLike,
         n: int) -> FloatArray:
    """Rolling VWAP of the typical price over ``n`` bars (TradingView's
    ``ta.vwma(hlc3, n)``); NaN where the window's volume sums to 0. O(n) per bar."""
    h, lo, c, v = (as_floats(col) for col in (high, low, close, volume))
    return _vwap(h, lo, c, v, checked_window(n))


class _VwapState:
    __slots__ = ("pv", "v")

    def __init__(self, n: int) -> None:
        self.pv = _WindowState(n)
        self.v: deque[float] = deque(maxlen=self.pv.n)

    def push(self, h: float, lo: float, c: float, v: float) -> float:
        self.v.append(v)
        if not self.pv.push(float(_typical(h, lo, c)) * v):
            return NAN
        return float(_vwap_at(np.array(self.pv.window), np.array(self.v)))


# Sessions a ``session_vwap`` restarts at: (length, offset from the epoch) in seconds. Days
# start at 00:00 UTC; weeks on Monday 00:00 UTC (1970-01-01 was a Thursday), as weekly bars.
SESSIONS = {"day": (86_400.0, 0.0), "week": (604_800.0, 4 * 86_400.0)}


@jit
def _session_vwap(h: FloatArray, lo: FloatArray, c: FloatArray, v: FloatArray,
                  t: FloatArray, length: float, offset: float) -> FloatArray:
    size = h.shape[0]
    out = np.full(size, np.nan)
    num = 0.0
    den = 0.0
    session = np.nan
    for i in range(size):
        if not math.isfinite(t[i]):
            continue  # a bar without a time is missing: NaN, in no session
        now = math.floor((t[i] - offset) / length)
        if now != session:
            session, num, den = now, 0.0, 0.0
        pv = _typical(h[i], lo[i], c[i]) * v[i]
        if not (math.isfinite(pv) and math.isfinite(v[i])):
            continue  # a missing bar: NaN, adds nothing
        num += pv
        den += v[i]
        out[i] = num / den if den != 0.0 else np.nan
    return out


def session_vwap(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                 volume: npt.ArrayLike, time: npt.ArrayLike, session: str = "day"
                 ) -> FloatArray:
    """VWAP of the typical price since the session began (TradingView's ``ta.vwap``,
    anchored to the session): the sums restart at the first bar of each UTC day (``day``)
    or week (``week``, from Monday), read from the bars' open ``time`` in epoch seconds;
    NaN while the session's volume sums to 0 and on a bar with a missing value (time
    included), which adds nothing."""
    h, lo, c, v, t = (as_floats(col) for col in (high, low, close, volume, time))
    length, offset = SESSIONS[session]
    return _session_vwap(h, lo, c, v, t, length, offset)


class _SessionVwapState:
    __slots__ = ("den", "length", "num", "offset", "session")

    def __init__(self, session: str = "day") -> None:
        self.length, self.offset = SESSIONS[session]
        self.session = NAN
        self.num = self.den = 0.0

    def push(self, h: float, lo: float, c: float, v: float, t: float) -> float:
        if not math.isfinite(t):
            return NAN
        now = math.floor((t - self.offset) / self.length)
        if now != self.session:
            self.session, self.num, self.den = now, 0.0, 0.0
        pv = float(_typical(h, lo, c)) * v
        if not (math.isfinite(pv) and math.isfinite(v)):
            return NAN
        self.num += pv
        self.den += v
        return self.num / self.den if self.den != 0.0 else NAN


# ---------------------------------------------------------------- channels


def kc_middle(close: npt.ArrayLike, n: int) -> FloatArray:
    """Keltner middle line: ``ema(close, n)``."""
    return core.ema(close, checked_window(n))


def _keltner(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int
             ) -> tuple[FloatArray, FloatArray]:
    """The middle line and the band width before scaling: ``ema(true_range(), n)``."""
    w = checked_window(n)
    return core.ema(close, w), core.ema(core.true_range(high, low, close), w)


def kc_upper(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int,
             k: float) -> FloatArray:
    """Keltner upper band ``ema(close, n) + k·ema(true_range(), n)``: TradingView's
    ``ta.kc`` (true range on) and pandas-ta's ``kc``; first valid at index ``n``."""
    mid, width = _keltner(high, low, close, n)
    return mid + float(k) * width


def kc_lower(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int,
             k: float) -> FloatArray:
    """Keltner lower band ``ema(close, n) - k·ema(true_range(), n)``."""
    mid, width = _keltner(high, low, close, n)
    return mid - float(k) * width


class _KeltnerState:
    """``kc_upper`` (side 1) and ``kc_lower`` (side -1)."""

    __slots__ = ("k", "mid", "side", "tr", "width")

    def __init__(self, side: int, n: int, k: float) -> None:
        self.side = side
        self.k = float(k)
        self.mid = core.STATES["ema"](checked_window(n))
        self.width = core.STATES["ema"](checked_window(n))
        self.tr = core.STATES["true_range"]()

    def push(self, h: float, lo: float, c: float) -> float:
        mid = self.mid.push(c)
        width = self.width.push(self.tr.push(h, lo, c))
        return float(mid + self.k * width if self.side > 0 else mid - self.k * width)


def donchian_upper(high: npt.ArrayLike, n: int) -> FloatArray:
    """Donchian upper band: ``highest(high, n)``, the current bar included."""
    return core.highest(high, checked_window(n))


def donchian_lower(low: npt.ArrayLike, n: int) -> FloatArray:
    """Donchian lower band: ``lowest(low, n)``, the current bar included."""
    return core.lowest(low, checked_window(n))


def donchian_middle(high: npt.ArrayLike, low: npt.ArrayLike, n: int) -> FloatArray:
    """Donchian middle line: ``(highest(high, n) + lowest(low, n)) / 2``; the Ichimoku
    tenkan and kijun lines are this line (TradingView's ``donchian(len)`` there)."""
    top, bottom = _range(high, low, n)
    return (top + bottom) / 2.0


def ichimoku_senkou_a(high: npt.ArrayLike, low: npt.ArrayLike, tenkan: int, kijun: int,
                      d: int) -> FloatArray:
    """Leading span A *as seen at each bar*: ``(tenkan line + kijun line) / 2`` computed
    ``d`` bars ago. Charts plot the span d bars ahead of the bar that computed it, so the
    cloud a chart shows above bar t is exactly this value: causal."""
    line = (donchian_middle(high, low, tenkan) + donchian_middle(high, low, kijun)) / 2.0
    return core.lag(line, checked_window(d))


def ichimoku_senkou_b(high: npt.ArrayLike, low: npt.ArrayLike, n: int, d: int) -> FloatArray:
    """Leading span B as seen at each bar: ``donchian_middle(n)`` of ``d`` bars ago."""
    return core.lag(donchian_middle(high, low, n), checked_window(d))


class _MiddleState:
    __slots__ = ("bottom", "top")

    def __init__(self, n: int) -> None:
        self.top = core.STATES["highest"](checked_window(n))
        self.bottom = core.STATES["lowest"](checked_window(n))

    def push(self, h: float, lo: float) -> float:
        return float((self.top.push(h) + self.bottom.push(lo)) / 2.0)


class _SenkouState:
    """Span A (two lines, ``n2`` set) or span B (one line), then delayed ``d`` bars."""

    __slots__ = ("delay", "first", "second")

    def __init__(self, n: int, n2: int | None, d: int) -> None:
        self.first = _MiddleState(n)
        self.second = _MiddleState(n2) if n2 is not None else None
        self.delay = core.STATES["lag"](checked_window(d))

    def push(self, h: float, lo: float) -> float:
        line = self.first.push(h, lo)
        if self.second is not None:
            line = (line + self.second.push(h, lo)) / 2.0
        return float(self.delay.push(line))


class _Upper:
    __slots__ = ("top",)

    def __init__(self, n: int) -> None:
        self.top = core.STATES["highest"](checked_window(n))

    def push(self, h: float) -> float:
        return float(self.top.push(h))


class _Lower:
    __slots__ = ("bottom",)

    def __init__(self, n: int) -> None:
        self.bottom = core.STATES["lowest"](checked_window(n))

    def push(self, lo: float) -> float:
        return float(self.bottom.push(lo))


# ---------------------------------------------------------------- Supertrend


def _supertrend_rows(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                     k: float, n: int) -> FloatArray:
    h, lo, c = as_floats(high), as_floats(low), as_floats(close)
    return supertrend_loop(h, lo, c, core.atr(h, lo, c, checked_window(n)), float(k))


def supertrend(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, k: float,
               n: int) -> FloatArray:
    """Supertrend line: TradingView's ``ta.supertrend(k, n)`` over ``atr(n)`` (peak's and
    TA-Lib's ATR, first valid at index n; Pine's counts bar 0's high - low, so its first
    values differ by a term that decays by (n - 1)/n per bar). Bands ``hl2 ± k·atr``
    ratchet towards the price; the line is the lower band in an uptrend, the upper one in
    a downtrend. First valid at index ``n``."""
    return own_row(_supertrend_rows(high, low, close, k, n), 0)


def supertrend_dir(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, k: float,
                   n: int) -> FloatArray:
    """Supertrend direction: 1 in an uptrend, -1 in a downtrend (TradingView returns the
    opposite sign: -1 for up)."""
    return own_row(_supertrend_rows(high, low, close, k, n), 1)


class _SupertrendState:
    """Line (part 0) or direction (part 1): the ATR's state, the previous close and the
    bands and line of the last bar that counted."""

    __slots__ = ("atr", "bands", "k", "part", "prev_close", "started")

    def __init__(self, part: int, k: float, n: int) -> None:
        self.part = part
        self.k = float(k)
        self.atr = core.STATES["atr"](checked_window(n))
        self.prev_close = NAN
        self.started = False
        self.bands = (0.0, 0.0, 0.0)

    def push(self, h: float, lo: float, c: float) -> float:
        atr = self.atr.push(h, lo, c)
        c_prev, self.prev_close = self.prev_close, c
        if not all_finite(atr, c):
            return NAN
        line, direction, lower, upper = supertrend_step(
            h, lo, c, c_prev, atr, self.k, self.started, *self.bands)
        self.bands = (lower, upper, line)
        self.started = True
        return float((line, direction)[self.part])


# ---------------------------------------------------------------- running aggregates


def rolling_sum(x: npt.ArrayLike, n: int) -> FloatArray:
    """``sum(x, n)``: ``sma(x, n)·n``, the rolling mean's drift-free running sums (re-summed
    on a schedule and after outliers: ``kernels.sma``) scaled back, so a sum inherits the
    mean's accuracy and its state form; n equal values sum to exactly ``n·value``."""
    w = checked_window(n)
    return core.sma(x, w) * w


class _SumState:
    __slots__ = ("mean", "n")

    def __init__(self, n: int) -> None:
        self.n = checked_window(n)
        self.mean = core.STATES["sma"](self.n)

    def push(self, x: float) -> float:
        return float(self.mean.push(x) * self.n)


# ---------------------------------------------------------------- the tables

KERNELS: dict[str, core.Kernel] = {
    "stoch_k": stoch_k, "stoch_d": stoch_d, "willr": willr, "cci": cci, "mfi": mfi,
    "obv": obv, "vwap": vwap, "session_vwap": session_vwap, "kc_upper": kc_upper,
    "kc_middle": kc_middle,
    "kc_lower": kc_lower, "donchian_upper": donchian_upper, "donchian_lower": donchian_lower,
    "donchian_middle": donchian_middle, "ichimoku_tenkan": donchian_middle,
    "ichimoku_kijun": donchian_middle, "ichimoku_senkou_a": ichimoku_senkou_a,
    "ichimoku_senkou_b": ichimoku_senkou_b, "supertrend": supertrend,
    "supertrend_dir": supertrend_dir, "sum": rolling_sum, **running.KERNELS,
}

STATES: dict[str, Callable[..., core.KernelState]] = {
    "stoch_k": lambda n: _RangeState(-1, n), "stoch_d": _StochDState,
    "willr": lambda n: _RangeState(1, n), "cci": _CciState, "mfi": _MfiState,
    "obv": _ObvState, "vwap": _VwapState, "session_vwap": _SessionVwapState,
    "kc_upper": lambda n, k: _KeltnerState(1, n, k), "kc_middle": core.STATES["ema"],
    "kc_lower": lambda n, k: _KeltnerState(-1, n, k), "donchian_upper": _Upper,
    "donchian_lower": _Lower, "donchian_middle": _MiddleState,
    "ichimoku_tenkan": _MiddleState, "ichimoku_kijun": _MiddleState,
    "ichimoku_senkou_a": _SenkouState,
    "ichimoku_senkou_b": lambda n, d: _SenkouState(n, None, d),
    "supertrend": lambda k, n: _SupertrendState(0, k, n),
    "supertrend_dir": lambda k, n: _SupertrendState(1, k, n), "sum": _SumState,
    **running.STATES,
}

core.KERNELS.update(KERNELS)
core.STATES.update(STATES)
