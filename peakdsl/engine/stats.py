"""Run statistics: one pure function from a ``SimResult`` to the metric table.

Definitions (docs/backtest.md, "Metrics"): the equity curve is the starting capital followed
by the per-bar equity, so a run of ``n`` bars has ``n`` bar returns
``r[t] = E[t] / E[t-1] - 1``; annualisation uses the strategy's calendar,
``bars_per_year(timeframe_seconds, calendar)``: 365 trading days for ``always`` (crypto, the
default), 252 for ``weekdays``. Every value is a finite float, an int or ``None``
(undefined: e.g. a Sharpe ratio of a flat curve), so the result is JSON-safe.
``calendar_warning`` compares the declared calendar with the data's timestamps (W008).

The arithmetic lives in one ``numba`` function, :func:`metrics_core`, shared by
``compute_metrics`` (one run) and the sweep engine (many runs inside one parallel loop), so a
sweep and ``peak backtest`` give bit-identical numbers; after the specialised bar loop, which
kept the bar returns and the drawdown while it marked the equity (``mark_bar``), both call
:func:`metrics_marked` instead: the same function without its first pass. Sums and means
reproduce numpy's pairwise summation exactly (:func:`pairwise_sum`), so the values are also
bit-identical to the plain numpy formulas (``np.mean``, ``np.std(ddof=1)``, ``.sum()``) they
replace.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

from ..lang.diagnostics import diag
from ..metrics import BACKTEST_METRICS, CORE_METRICS
from ..metrics import INT_METRICS as INT_CATALOGUE
from .results import SimResult, SimSettings
from .trade_stats import backtest_only_metrics

YEAR_SECONDS = 365 * 86_400
DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
# calendar -> (trading days a year, trading days a week)
CALENDARS: dict[str, tuple[int, int]] = {"always": (365, 7), "weekdays": (252, 5)}
CALENDAR_WORDS = {"always": "24/7 (`calendar always`)",
                  "weekdays": "weekdays only (`calendar weekdays`)"}
# The core's keys (what every backtest and every sweep row has), in the catalogue's order;
# ``compute_metrics`` adds the backtest-only ones (``trade_stats``) after them. Counts: ints.
METRIC_KEYS = CORE_METRICS
INT_METRICS = frozenset(INT_CATALOGUE & set(BACKTEST_METRICS))
N_METRICS = len(METRIC_KEYS)

# The slots ``metrics_core`` writes, by index. Spelled out here rather than read from the
# catalogue: numba caches the compiled core keyed on this file and freezes these indices into
# it, so an order kept only in another module could change under a stale cache.
CORE_SLOTS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar",
              "max_drawdown", "max_drawdown_bars", "profit_factor", "win_rate", "expectancy",
              "trades", "avg_trade", "best_trade", "worst_trade", "exposure", "fees_paid",
              "ambiguous_bars", "orders_reduced")


def check_core_slots(keys: tuple[str, ...]) -> None:
    """Refuse a catalogue whose ``backtest`` metrics are not the core's slots, in order: a
    metric the core does not write would be null in every run, a reordered one mislabelled."""
    if keys != CORE_SLOTS:
        differ = sorted(set(keys) ^ set(CORE_SLOTS)) or ["their order"]
        raise RuntimeError("peakdsl/metrics.py and engine.stats.metrics_core disagree on "
                           f"{', '.join(differ)}: write each backtest metric in the core, "
                           "at its catalogue position")


check_core_slots(METRIC_KEYS)
(_TOTAL_RETURN, _CAGR, _VOLATILITY, _SHARPE, _SORTINO, _CALMAR, _MAX_DD, _MAX_DD_BARS,
 _PROFIT_FACTOR, _WIN_RATE, _EXPECTANCY, _TRADES, _AVG_TRADE, _BEST, _WORST, _EXPOSURE,
 _FEES, _AMBIGUOUS, _REDUCED) = range(len(CORE_SLOTS))
# calendar inference (W008): spans shorter than this say nothing about the week
MIN_INFERENCE_DAYS = 14
EMPTY_DAYS_SHARE = 0.1  # two adjacent weekdays holding less than this share: a 5-day week
BARS_RATIO_LIMIT = 1.5  # bars a year off the calendar's by more than this factor: warn

_PW_BLOCK = 128  # numpy's PW_BLOCKSIZE
_PW_DEPTH = 64  # stack depth of the pairwise tree (halves until <= 128: < 64 levels)

Metric = float | int | None
FloatArray = npt.NDArray[np.float64]

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(fn: _F) -> _F:
    """``numba.njit(cache=True)`` with numpy float semantics (x / 0 is inf or NaN, no raise)."""
    return cast(_F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


# the terms ``pairwise_sums`` adds: the values (and, alongside, their downside squares
# ``min(x, 0)²``), or their squared deviations from a given mean
PLAIN, DEVIATION = 0, 1


@_jit
def _downside(x: float) -> float:
    low = min(x, 0.0)
    return low * low


@_jit
def _leaf_plain(a: FloatArray, lo: int, n: int) -> tuple[float, float]:
    """numpy's pairwise_sum for ``n <= 128`` (8 accumulators, combined as a tree) of
    ``a[lo:lo+n]`` and, on the same tree, of the downside squares: one read, two sums."""
    if n < 8:
        res = 0.0
        down = 0.0
        for i in range(lo, lo + n):
            res += a[i]
            down += _downside(a[i])
        return res, down
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    d0, d1, d2, d3 = _downside(r0), _downside(r1), _downside(r2), _downside(r3)
    d4, d5, d6, d7 = _downside(r4), _downside(r5), _downside(r6), _downside(r7)
    i = 8
    m = n - n % 8
    while i < m:
        j = lo + i
        x0, x1, x2, x3 = a[j], a[j + 1], a[j + 2], a[j + 3]
        x4, x5, x6, x7 = a[j + 4], a[j + 5], a[j + 6], a[j + 7]
        r0 += x0
        r1 += x1
        r2 += x2
        r3 += x3
        r4 += x4
        r5 += x5
        r6 += x6
        r7 += x7
        d0 += _downside(x0)
        d1 += _downside(x1)
        d2 += _downside(x2)
        d3 += _downside(x3)
        d4 += _downside(x4)
        d5 += _downside(x5)
        d6 += _downside(x6)
        d7 += _downside(x7)
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    down = ((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7))
    while i < n:
        res += a[lo + i]
        down += _downside(a[lo + i])
        i += 1
    return res, down


@_jit
def _square(x: float, mean: float) -> float:
    d = x - mean
    return d * d


@_jit
def _leaf_deviation(a: FloatArray, lo: int, n: int, mean: float) -> float:
    """numpy's pairwise_sum for ``n <= 128`` of ``(a - mean)²`` over ``a[lo:lo+n]``."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += _square(a[i], mean)
        return res
    r0, r1 = _square(a[lo], mean), _square(a[lo + 1], mean)
    r2, r3 = _square(a[lo + 2], mean), _square(a[lo + 3], mean)
    r4, r5 = _square(a[lo + 4], mean), _square(a[lo + 5], mean)
    r6, r7 = _square(a[lo + 6], mean), _square(a[lo + 7], mean)
    i = 8
    m = n - n % 8
    while i < m:
        j = lo + i
        r0 += _square(a[j], mean)
        r1 += _square(a[j + 1], mean)
        r2 += _square(a[j + 2], mean)
        r3 += _square(a[j + 3], mean)
        r4 += _square(a[j + 4], mean)
        r5 += _square(a[j + 5], mean)
        r6 += _square(a[j + 6], mean)
        r7 += _square(a[j + 7], mean)
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += _square(a[lo + i], mean)
        i += 1
    return res


@_jit
def _pairwise_leaf(a: FloatArray, lo: int, n: int, kind: int,
                   mean: float) -> tuple[float, float]:
    if kind == PLAIN:
        return _leaf_plain(a, lo, n)
    return _leaf_deviation(a, lo, n, mean), 0.0


@_jit
def pairwise_sums(a: FloatArray, lo: int, n: int, kind: int,
                  mean: float) -> tuple[float, float]:
    """``terms.sum()`` with numpy's pairwise summation (same tree, same bits) of the
    ``kind`` terms of ``a[lo:lo+n]`` (``PLAIN``: the values, ``DEVIATION``: their squared
    deviations from ``mean``), computed on the fly, never stored; with ``PLAIN`` also the
    sum of the downside squares, on the same tree.

    numpy splits ``n > 128`` into ``n2 = n // 2 - (n // 2) % 8`` and the rest and adds the
    two halves' sums; this walks the same tree with an explicit stack (numba cannot cache
    recursive functions)."""
    if n <= _PW_BLOCK:
        return _pairwise_leaf(a, lo, n, kind, mean)
    los = np.empty(_PW_DEPTH, dtype=np.int64)
    ns = np.empty(_PW_DEPTH, dtype=np.int64)
    phase = np.empty(_PW_DEPTH, dtype=np.int64)
    left = np.empty((_PW_DEPTH, 2))
    right = np.empty((_PW_DEPTH, 2))
    los[0] = lo
    ns[0] = n
    phase[0] = 0
    sp = 1
    result = (0.0, 0.0)
    while sp > 0:
        top = sp - 1
        size = ns[top]
        if size <= _PW_BLOCK or phase[top] == 2:
            if size <= _PW_BLOCK:
                value = _pairwise_leaf(a, los[top], size, kind, mean)
            else:
                value = (left[top, 0] + right[top, 0], left[top, 1] + right[top, 1])
            sp -= 1
            if sp == 0:
                result = value
            elif phase[sp - 1] == 1:
                left[sp - 1, 0], left[sp - 1, 1] = value
            else:
                right[sp - 1, 0], right[sp - 1, 1] = value
            continue
        half = size // 2
        half -= half % 8
        if phase[top] == 0:  # descend left
            phase[top] = 1
            los[sp] = los[top]
            ns[sp] = half
        else:  # left done: descend right
            phase[top] = 2
            los[sp] = los[top] + half
            ns[sp] = size - half
        phase[sp] = 0
        sp += 1
    return result


@_jit
def pairwise_sum(a: FloatArray, lo: int, n: int) -> float:
    """``a[lo:lo+n].sum()`` with numpy's pairwise summation (same tree, same bits)."""
    return pairwise_sums(a, lo, n, PLAIN, 0.0)[0]


@_jit
def _finite(x: float) -> float:
    return x if math.isfinite(x) else math.nan


# The running state of the bar returns and the drawdown over an equity curve, as the bar
# loop keeps it while it marks the equity (``fast_slot.run_fast_slot``) and the one pass
# over a finished curve alike (``_returns_and_drawdown``): the previous point, the running
# peak, the deepest drawdown of the peaks left behind, the lowest point under the current
# peak, the bars below it in a row, the longest such run, whether every return was finite.
(M_PREVIOUS, M_PEAK, M_DRAWDOWN, M_LOW, M_RUN, M_LONGEST, M_FINITE) = range(7)
MARKS = 7


@_jit
def reset_marks(initial: float, marks: FloatArray) -> None:
    """The state before the first bar of a curve starting at ``initial`` (the capital)."""
    marks[M_PREVIOUS] = initial
    marks[M_PEAK] = initial
    marks[M_DRAWDOWN] = initial / initial - 1.0
    marks[M_LOW] = math.inf
    marks[M_RUN] = 0.0
    marks[M_LONGEST] = 0.0
    marks[M_FINITE] = 1.0


@_jit
def mark_bar(v: float, previous: float, peak: float, drawdown: float, low: float, run: int,
             longest: int) -> tuple[float, float, float, float, int, int]:
    """One point ``v`` of the curve: its bar return ``v / previous - 1`` and the drawdown
    state after it, ``(return, peak, drawdown, low, run, longest)``. A point at or above the
    peak has a drawdown of exactly 0; below it, ``v / peak - 1`` is monotone in ``v``
    (correctly rounded), so each peak's deepest point is found without dividing at every
    bar: the division happens when the peak is left behind (and at the end: ``drawdown_of``).
    Scalars only, so the bar loop's call costs no reference counting."""
    r = v / previous - 1.0
    if v >= peak:
        if low < peak:
            drawdown = min(drawdown, low / peak - 1.0)
        return r, v, drawdown, math.inf, 0, longest
    run += 1
    return r, peak, drawdown, min(low, v), run, max(longest, run)


@_jit
def mark_flat(v: float, bars: int, previous: float, peak: float, drawdown: float, low: float,
              run: int, longest: int
              ) -> tuple[float, float, float, float, float, int, int]:
    """``mark_bar`` over ``bars >= 1`` equal points ``v`` (a flat account's cash):
    ``(first return, every later one, peak, drawdown, low, run, longest)``. After the first,
    each point repeats the same step: at or above the peak it changes nothing, below it
    only the run grows (``min(low, v)`` is already ``low``); the runs' length is exact
    integer arithmetic. (A NaN point's return is NaN: the drawdown is then recomputed from
    the curve, ``_drawdown_nan``.)"""
    first, peak, drawdown, low, run, longest = mark_bar(v, previous, peak, drawdown, low,
                                                        run, longest)
    later = v / v - 1.0
    if bars > 1 and not v >= peak:
        run += bars - 1
        longest = max(longest, run)
    return first, later, peak, drawdown, low, run, longest


@_jit
def drawdown_of(peak: float, drawdown: float, low: float) -> float:
    """The deepest drawdown of a curve whose state ends with this peak and low."""
    if low < peak:
        drawdown = min(drawdown, low / peak - 1.0)
    return drawdown


@_jit
def _returns_and_drawdown(initial: float, equity: FloatArray,
                          out: FloatArray) -> tuple[bool, float, int]:
    """One pass over the equity: the bar returns ``out[t] = equity[t] / equity[t - 1] - 1``
    (``equity[-1]`` is ``initial``), whether every one is finite, and — valid when they
    all are — the deepest drawdown from the running peak and the longest run below a peak
    (``mark_bar`` at every point). (One pass, not three: at 1M bars the equity is read
    once.)"""
    peak = initial
    drawdown = initial / initial - 1.0
    low = math.inf
    run = 0
    longest = 0
    previous = initial
    finite = True
    for t in range(equity.shape[0]):
        v = equity[t]
        r, peak, drawdown, low, run, longest = mark_bar(v, previous, peak, drawdown, low,
                                                        run, longest)
        out[t] = r
        finite &= math.isfinite(r)
        previous = v
    return finite, drawdown_of(peak, drawdown, low), longest


@_jit
def _drawdown_nan(initial: float, equity: FloatArray) -> tuple[float, int]:
    """``_returns_and_drawdown``'s drawdown where equity is not finite: NaN-propagating like
    ``np.maximum.accumulate`` and ``np.min``; the run counts points strictly below the peak
    seen with ``>=``."""
    peak = initial
    drawdown = initial / initial - 1.0
    run_peak = initial
    run = 0
    longest = 0
    for t in range(equity.shape[0]):
        v = equity[t]
        if math.isnan(peak) or math.isnan(v):
            peak = math.nan
        elif v > peak:
            peak = v
        d = v / peak - 1.0
        if math.isnan(drawdown) or math.isnan(d):
            drawdown = math.nan
        elif d < drawdown:
            drawdown = d
        if v >= run_peak:
            run_peak = v
            run = 0
        else:
            run += 1
            longest = max(longest, run)
    return drawdown, longest


@_jit
def _return_metrics(n: int, bpy: float, returns: FloatArray, out: FloatArray) -> None:
    """Volatility, Sharpe and Sortino from the ``n`` finite bar returns: two pairwise
    passes (their sum with the downside squares', then the squared deviations)."""
    total, down = pairwise_sums(returns, 0, n, PLAIN, 0.0)
    mean = total / n
    downside = math.sqrt(down / n)
    std = math.sqrt(pairwise_sums(returns, 0, n, DEVIATION, mean)[0] / (n - 1))
    out[_VOLATILITY] = _finite(std * math.sqrt(bpy))
    if std > 0:
        out[_SHARPE] = _finite(mean / std * math.sqrt(bpy))
    if downside > 0:
        out[_SORTINO] = _finite(mean / downside * math.sqrt(bpy))


@_jit
def _trade_metrics(pnl: FloatArray, returns: FloatArray, scratch: FloatArray,
                   out: FloatArray) -> None:
    """Profit factor, win rate, expectancy, best and worst of the closed trades."""
    count = pnl.shape[0]
    out[_TRADES] = count
    if count == 0:
        return
    k = 0
    for i in range(count):
        if pnl[i] > 0:
            scratch[k] = pnl[i]
            k += 1
    wins = k
    gross_profit = pairwise_sum(scratch, 0, k)
    k = 0
    for i in range(count):
        if pnl[i] < 0:
            scratch[k] = -pnl[i]
            k += 1
    gross_loss = pairwise_sum(scratch, 0, k)
    if gross_loss > 0:
        out[_PROFIT_FACTOR] = _finite(gross_profit / gross_loss)
    out[_WIN_RATE] = _finite(wins / count)
    best = returns[0]
    worst = returns[0]
    for i in range(count):
        scratch[i] = returns[i]
        x = returns[i]
        if math.isnan(best) or math.isnan(x):
            best = math.nan
            worst = math.nan
        else:
            best = max(best, x)
            worst = min(worst, x)
    avg = _finite(pairwise_sum(scratch, 0, count) / count)
    out[_EXPECTANCY] = avg
    out[_AVG_TRADE] = avg
    out[_BEST] = _finite(best)
    out[_WORST] = _finite(worst)


@_jit
def metrics_core(capital: float, equity: FloatArray, exposed: float, pnl: FloatArray,
                 returns: FloatArray, fees_paid: float, ambiguous: float, reduced: float,
                 bpy: float, scratch: FloatArray, out: FloatArray) -> None:
    """Every metric into ``out`` (``METRIC_KEYS`` order, NaN = undefined).

    ``exposed`` is the number of bars with a non-zero position, ``pnl`` / ``returns`` those
    of the closed trades, ``reduced`` the entries cut down to fit the account; ``scratch`` is
    a work buffer of at least ``scratch_size(len(equity), len(pnl))`` floats (overwritten).
    Over the bars: one pass for the bar returns (into ``scratch``) and the drawdown, two
    pairwise passes for the return moments (the fused reference's shape).
    """
    finite, drawdown, longest = True, 0.0, 0
    if equity.shape[0] > 0 and capital > 0:
        finite, drawdown, longest = _returns_and_drawdown(capital, equity, scratch)
    _metrics(capital, equity, finite, drawdown, longest, scratch, exposed, pnl, returns,
             fees_paid, ambiguous, reduced, bpy, scratch, out)


@_jit
def metrics_marked(capital: float, equity: FloatArray, marks: FloatArray,
                   bar_returns: FloatArray, exposed: float, pnl: FloatArray,
                   returns: FloatArray, fees_paid: float, ambiguous: float, reduced: float,
                   bpy: float, scratch: FloatArray, out: FloatArray) -> None:
    """``metrics_core`` of a curve whose bar returns (``bar_returns``) and drawdown state
    (``marks``, from ``reset_marks(capital)``) the bar loop kept while it marked the equity
    (``fast_slot.run_fast_slot``): the same numbers without the pass over the equity.
    ``bar_returns`` may be ``scratch`` (read before the trade metrics overwrite it)."""
    _metrics(capital, equity, marks[M_FINITE] != 0.0,
             drawdown_of(marks[M_PEAK], marks[M_DRAWDOWN], marks[M_LOW]),
             int(marks[M_LONGEST]), bar_returns, exposed, pnl, returns, fees_paid, ambiguous,
             reduced, bpy, scratch, out)


@_jit
def _metrics(capital: float, equity: FloatArray, finite: bool, drawdown: float, longest: int,
             bar_returns: FloatArray, exposed: float, pnl: FloatArray, returns: FloatArray,
             fees_paid: float, ambiguous: float, reduced: float, bpy: float,
             scratch: FloatArray, out: FloatArray) -> None:
    """The metrics given the bar returns and what ``_returns_and_drawdown`` says of them
    (read only for a non-empty curve from a positive capital)."""
    for i in range(out.shape[0]):
        out[i] = math.nan
    n = equity.shape[0]
    initial = capital
    final = equity[n - 1] if n > 0 else capital
    cagr = math.nan
    if initial > 0:
        out[_TOTAL_RETURN] = _finite(final / initial - 1.0)
        if n > 0:
            if final <= 0:
                cagr = -1.0
            else:  # exp(log) form: a huge annualised growth is undefined (inf), no overflow
                log_growth = bpy / n * math.log(final / initial)
                if log_growth < 700:
                    cagr = _finite(math.expm1(log_growth))
            out[_CAGR] = cagr
    if n > 0 and initial > 0:
        if not (finite and math.isfinite(initial)):
            drawdown, longest = _drawdown_nan(initial, equity)
        if n >= 2 and finite:
            _return_metrics(n, bpy, bar_returns, out)
        out[_MAX_DD] = _finite(drawdown)
        out[_MAX_DD_BARS] = longest
        if drawdown < 0 and not math.isnan(cagr):
            out[_CALMAR] = _finite(cagr / abs(drawdown))
        out[_EXPOSURE] = _finite(exposed / n)
    _trade_metrics(pnl, returns, scratch, out)
    out[_FEES] = _finite(fees_paid)
    out[_AMBIGUOUS] = ambiguous
    out[_REDUCED] = reduced


@_jit
def _nonzero(values: FloatArray) -> int:
    """``np.count_nonzero`` of a float array (NaN counts, -0.0 does not) in a loop that
    vectorises: a fifth of numpy's time on a 100k-bar position."""
    count = 0
    for i in range(values.shape[0]):
        count += values[i] != 0.0
    return count


def scratch_size(bars: int, trades: int) -> int:
    """Floats of work space ``metrics_core`` needs for ``bars`` bars and ``trades`` trades."""
    return max(bars, trades, 1)


_SCRATCH = threading.local()


def _scratch(size: int) -> FloatArray:
    """A work buffer of ``size`` floats, kept per thread between runs: a fresh 8 MB buffer
    (1M bars) costs more to fault in than ``metrics_core`` takes to fill it."""
    buffer: FloatArray | None = getattr(_SCRATCH, "buffer", None)
    if buffer is None or buffer.shape[0] < size:
        buffer = np.empty(size)
        _SCRATCH.buffer = buffer
    return buffer[:size]


def metrics_dict(values: FloatArray) -> dict[str, Metric]:
    """``metrics_core`` output as the metric table: ``None`` for NaN, ints where counted."""
    out: dict[str, Metric] = {}
    for key, v in zip(METRIC_KEYS, values.tolist(), strict=True):
        if math.isnan(v):
            out[key] = None
        else:
            out[key] = int(v) if key in INT_METRICS else v
    return out


def _read_only(values: Any) -> FloatArray:
    """A contiguous float64 read-only view: one compiled ``metrics_core`` for every caller."""
    out = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    view = out.view()
    view.flags.writeable = False
    return view


def bars_per_year(timeframe_seconds: int, calendar: str = "always") -> float:
    """Bars in a year of the calendar: trading days a year · bars per trading day.

    ``always`` (crypto): 365 days of 24 h, so ``365 · 86400 / timeframe_seconds``;
    ``weekdays``: 252 trading days, a week being 5 of them (a ``1w`` bar spans 5 days).
    """
    if timeframe_seconds <= 0:
        raise ValueError("timeframe_seconds must be positive")
    days, week = CALENDARS[calendar]
    span = timeframe_seconds
    if timeframe_seconds % WEEK_SECONDS == 0:
        span = timeframe_seconds // 7 * week
    return days * DAY_SECONDS / span


def compute_metrics(sim: SimResult, settings: SimSettings, timeframe_seconds: int,
                    close: FloatArray | None = None) -> dict[str, Metric]:
    """All run metrics (keys: the catalogue's ``BACKTEST_METRICS``: the core's, then the
    backtest-only ones); ``None`` where a metric is undefined.

    Annualised with ``settings.calendar``; trade metrics count closed trades only (the open
    position of an ``end_of_data mark`` run is in the equity, not among the trades).
    ``close``, the closes of the run's bars, defines ``buy_hold_return`` (None: undefined)."""
    bpy = bars_per_year(timeframe_seconds, settings.calendar)
    equity = _read_only(sim.equity)
    pnl = _read_only(sim.trades["pnl"])
    returns = _read_only(sim.trades["return"])
    exposed = sim.exposed if sim.exposed is not None else \
        _nonzero(_read_only(sim.position)) if len(equity) else 0  # NaN counts, != 0
    scratch = _scratch(scratch_size(len(equity), len(pnl)))
    values = np.empty(N_METRICS)
    counts = (float(sim.fees_paid), float(int(sim.ambiguous_bars)), float(sim.orders_reduced))
    if sim.marks is not None and sim.bar_returns is not None:  # kept by the bar loop
        # the returns writable like ``scratch``, which ``metrics_core`` passes in their
        # place: one compiled ``_metrics`` and pairwise sums for both
        bar_returns = np.ascontiguousarray(sim.bar_returns, dtype=np.float64)
        metrics_marked(float(settings.capital), equity, _read_only(sim.marks), bar_returns,
                       float(exposed), pnl, returns, *counts, bpy, scratch, values)
    else:
        metrics_core(float(settings.capital), equity, float(exposed), pnl, returns, *counts,
                     bpy, scratch, values)
    core = metrics_dict(values)
    return {**core, **backtest_only_metrics(sim, core, close)}


# ---------------------------------------------------------------- calendar check (W008)


def infer_calendar(times: Any, timeframe_seconds: int) -> str | None:
    """``weekdays`` when two adjacent days of the week (UTC) hold almost no bars, else
    ``always``; None when the data cannot tell (bars longer than a day, or less than two
    weeks of data)."""
    index = pd.DatetimeIndex(times)
    if timeframe_seconds > DAY_SECONDS or len(index) < 2:
        return None
    if (index[-1] - index[0]).total_seconds() < MIN_INFERENCE_DAYS * DAY_SECONDS:
        return None
    counts = np.bincount(np.asarray(index.day_of_week), minlength=7)
    pairs = counts + np.roll(counts, -1)  # (Mon, Tue), …, (Sun, Mon)
    return "weekdays" if pairs.min() < EMPTY_DAYS_SHARE * len(index) else "always"


def observed_bars_per_year(times: Any, timeframe_seconds: int) -> float:
    """Bars a year the data actually has: its bar count over its span (end bar included)."""
    index = pd.DatetimeIndex(times)
    span = float((index[-1] - index[0]).total_seconds()) + timeframe_seconds
    return len(index) * YEAR_SECONDS / span


def calendar_warning(times: Any, timeframe_seconds: int, calendar: str,
                     declared: bool) -> str | None:
    """W008 as a warning line when the data contradicts the calendar, else None.

    ``declared`` says whether the spec wrote ``calendar`` (else the 24/7 default applies).
    Two checks: the data's week (a 5-day week against ``always`` or the reverse), then its
    bars per year against the calendar's (e.g. 7-hour stock sessions in 1h bars)."""
    inferred = infer_calendar(times, timeframe_seconds)
    if inferred is None:
        return None
    assumed = bars_per_year(timeframe_seconds, calendar)
    observed = observed_bars_per_year(times, timeframe_seconds)
    source = "declared" if declared else "default"
    if inferred != calendar:
        message = (f"the data looks {CALENDAR_WORDS[inferred]} but the {source} calendar is "
                   f"{CALENDAR_WORDS[calendar]}: annualised metrics assume {assumed:,.0f} bars "
                   f"a year, the data has about {observed:,.0f}")
        fix = f"declare `calendar {inferred}` in the strategy"
    elif not 1 / BARS_RATIO_LIMIT <= observed / assumed <= BARS_RATIO_LIMIT:
        message = (f"the data has about {observed:,.0f} bars a year but the {source} "
                   f"calendar {CALENDAR_WORDS[calendar]} assumes {assumed:,.0f} (trading "
                   f"sessions shorter than a day, or long gaps?)")
        fix = ("annualised metrics (CAGR, volatility, Sharpe, Sortino, Calmar) are off by "
               "that ratio; compare total returns, or use daily bars")
    else:
        return None
    diagnostic = diag("W008", message, "data", help=fix)
    return f"{diagnostic.code} {diagnostic.message}; help: {diagnostic.help}"
