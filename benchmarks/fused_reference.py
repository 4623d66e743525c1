"""A fused numba reference for the benchmark strategy: the yardstick peak's speed is measured
against (issue 8, item 6), computing the same metrics as ``peak backtest``.

The strategy is the one of ``bench_backtest.py`` and ``bench_sweep_engine.py``: an SMA(fast,
slow) crossover, long only (entry on ``crossover(fast_ma, slow_ma)``, exit on
``crossunder``), no stops, one position. ``fused_backtest`` runs it in ONE pass over the bars
— both moving averages slide along, the crossover is tested, the order filled and booked,
the equity marked and the drawdown, exposure and trade statistics accumulated in the same
iteration, which stores only the bar return — followed by three short passes over the
stored returns for the sample moments (their sum, their downside squares, their squared
deviations from the mean). No signal array is built, nothing is allocated per bar.
``fused_sweep`` runs many (fast, slow) pairs with ``numba.prange``, each thread reusing its
own work buffers, as peak's sweep engine does.

Written from docs/backtest.md, not from peak's engine (it imports nothing from peak):

* signals (§1): ``sma(close, n)`` is the mean of the last ``n`` closes; a crossover at bar
  ``t`` is ``fast[t] > slow[t]`` and ``fast[t-1] <= slow[t-1]`` (a crossunder mirrored); no
  signal before the warm-up ``max(fast, slow)`` (the lookback of a lag-1 of the slow SMA);
* fills (§1–§4, §6): ``fill next_open`` acts at ``open[t+1]`` (signals of the last bar are
  never executed), ``fill close`` at ``close[t]`` (no entry on the last bar); buys at
  ``price·(1+slippage)``, sells at ``price·(1−slippage)``; fee ``fees·qty·fill``; size
  ``100% of equity`` buys ``equity / (fill·(1+fees))``, a fixed quantity is cut to that
  cap if the cash cannot pay it (counted in ``orders_reduced``); a position still open on the
  last bar is sold at its close (``end_of_data close``);
* metrics (§9): the formulas of the metric table. Its sums (``mean``, ``std``, gross profit,
  …) are numpy's (``np.mean``, ``np.std(ddof=1)``, ``.sum()``), so they are summed here in
  numpy's pairwise order (``pairwise``: the same tree, the same doubles as ``np.sum``,
  tested), with the terms computed on the fly: the squared deviations and downside squares
  are never stored. Equal sums make the metrics comparable to 1e-12 *relative* even where a
  sum nearly cancels (a mean return near 0 would otherwise differ in the 10th digit by
  summation order alone).

The SMAs are running sums, re-summed exactly every ``max(n, RESUM_BARS)`` bars (no drift),
compared as ``sum_fast · slow`` against ``sum_slow · fast`` (no division). They are not bit
for bit peak's (``kernels._moments`` sums deviations from a shift), which does not matter:
only the crossings are used, and a crossing would move only where the two averages are within
a few ulps of each other. ``tests/benchmarks/test_fused_reference.py`` and the ``--check``
of ``bench_fused.py`` compare every metric with peak's on hundreds of random combinations.

Domain: finite positive prices and capital (a long-only cash account then never has
non-finite equity; peak's extra handling of NaN equity is not repeated here).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_F = TypeVar("_F", bound=Callable[..., Any])

# The metrics, in the order of ``out`` (docs/backtest.md §9; peak's names).
METRICS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar",
           "max_drawdown", "max_drawdown_bars", "profit_factor", "win_rate", "expectancy",
           "trades", "avg_trade", "best_trade", "worst_trade", "exposure", "fees_paid",
           "ambiguous_bars", "orders_reduced")
COUNTS = frozenset({"max_drawdown_bars", "trades", "ambiguous_bars", "orders_reduced"})
(TOTAL_RETURN, CAGR, VOLATILITY, SHARPE, SORTINO, CALMAR, MAX_DD, MAX_DD_BARS, PROFIT_FACTOR,
 WIN_RATE, EXPECTANCY, TRADES, AVG_TRADE, BEST, WORST, EXPOSURE, FEES_PAID, AMBIGUOUS,
 REDUCED) = range(len(METRICS))
TRADE_ROWS = 4  # pnl, return, gains, losses
# the terms ``pairwise`` sums: x, (x - mean)², min(x, 0)²
PLAIN, DEVIATION, DOWNSIDE = 0, 1, 2
LEAF = 128  # numpy's PW_BLOCKSIZE: pairwise sums split until a block is this small
DEPTH = 64  # more than the depth of any pairwise tree (it halves down to 128 terms)
RESUM_BARS = 1024  # a rolling sum is re-summed exactly at least this often (no drift)


@dataclass(frozen=True)
class Setup:
    """What a benchmark spec fixes besides the two windows (its ``execution`` and ``size``,
    the run's capital and the timeframe's bars per year)."""

    fill_close: bool  # fill close (True) or fill next_open
    fixed_qty: bool  # size is a quantity (True) or a fraction of equity
    size: float
    fees: float
    slippage: float
    capital: float
    bars_per_year: float


def _jit(**options: Any) -> Callable[[_F], _F]:
    """``numba.njit`` (cached, GIL released, numpy float semantics: x / 0 is inf or NaN)
    keeping the Python signature for the type checker."""
    def wrap(fn: _F) -> _F:
        return cast(_F, numba.njit(cache=True, nogil=True, error_model="numpy", **options)(fn))
    return wrap


@_jit(inline="always")
def _slide(x: FloatArray, t: int, n: int, total: float, due: int) -> tuple[float, int]:
    """The sum of ``x[t-n+1 .. t]`` (of ``x[0 .. t]`` while ``t < n``) from the previous
    one, updated in O(1) and re-summed exactly at bar ``due``, then every
    ``max(n, RESUM_BARS)`` bars, so rounding never builds up (a re-sum is a serial chain of
    ``n`` additions: once every ``n`` bars it took about a fifth of the bar loop's time). Returns
    the sum and the next ``due``."""
    if t < n:
        return total + x[t], due
    if t == due:
        exact = 0.0
        for i in range(t - n + 1, t + 1):
            exact += x[i]
        return exact, due + max(n, RESUM_BARS)
    return total + (x[t] - x[t - n]), due


@_jit(inline="always")
def _finite(x: float) -> float:
    return x if math.isfinite(x) else math.nan


@_jit(inline="always")
def _term(x: float, kind: int, mean: float) -> float:
    if kind == DEVIATION:
        d = x - mean
        return d * d
    if kind == DOWNSIDE:
        low = min(x, 0.0)
        return low * low
    return x


@_jit(inline="always")
def _leaf(x: FloatArray, lo: int, n: int, kind: int, mean: float) -> float:
    """numpy's pairwise sum of at most ``LEAF`` terms from ``x[lo]``: a plain loop below 8,
    else eight running sums (``r0`` … ``r7``, every eighth term each) added as a tree, then
    the terms left over."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += _term(x[i], kind, mean)
        return res
    r0 = _term(x[lo], kind, mean)
    r1 = _term(x[lo + 1], kind, mean)
    r2 = _term(x[lo + 2], kind, mean)
    r3 = _term(x[lo + 3], kind, mean)
    r4 = _term(x[lo + 4], kind, mean)
    r5 = _term(x[lo + 5], kind, mean)
    r6 = _term(x[lo + 6], kind, mean)
    r7 = _term(x[lo + 7], kind, mean)
    end = lo + n - n % 8
    for i in range(lo + 8, end, 8):
        r0 += _term(x[i], kind, mean)
        r1 += _term(x[i + 1], kind, mean)
        r2 += _term(x[i + 2], kind, mean)
        r3 += _term(x[i + 3], kind, mean)
        r4 += _term(x[i + 4], kind, mean)
        r5 += _term(x[i + 5], kind, mean)
        r6 += _term(x[i + 6], kind, mean)
        r7 += _term(x[i + 7], kind, mean)
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, lo + n):
        res += _term(x[i], kind, mean)
    return res


@_jit()
def pairwise(x: FloatArray, n: int, kind: int, mean: float) -> float:  # pragma: no cover
    """The sum of the ``kind`` terms of ``x[:n]`` in numpy's pairwise order, equal to
    ``np.sum`` of them bit for bit: above ``LEAF`` terms the block splits at
    ``n // 2 - (n // 2) % 8`` and the halves' sums are added. numpy recurses; numba cannot
    cache a recursive function, so the same tree is walked here with an explicit stack (a
    frame: its block, whether its left half is done, that half's sum)."""
    if n <= LEAF:
        return _leaf(x, 0, n, kind, mean)
    start = np.empty(DEPTH, dtype=np.int64)
    size = np.empty(DEPTH, dtype=np.int64)
    left_done = np.zeros(DEPTH, dtype=np.bool_)
    left = np.empty(DEPTH)
    start[0], size[0], top = 0, n, 0
    while True:
        half = size[top] // 2 - (size[top] // 2) % 8
        if size[top] > LEAF:  # descend into the next half not yet summed
            lo = start[top] + half if left_done[top] else start[top]
            top += 1
            start[top], size[top] = lo, size[top - 1] - half if left_done[top - 1] else half
            left_done[top] = False
            continue
        value = _leaf(x, start[top], size[top], kind, mean)
        while True:  # a finished block: give its sum to its parent
            if top == 0:
                return value
            top -= 1
            if not left_done[top]:
                left_done[top] = True
                left[top] = value
                break
            value = left[top] + value


@_jit(inline="always")
def _sell(qty: float, price: float, slippage: float, fees: float, entry: float,
          entry_fee: float) -> tuple[float, float, float]:
    """Closing the long ``qty`` at ``price``: (cash received net of the fee, fee, pnl)."""
    fill = price * (1.0 - slippage)
    fee = fees * qty * fill
    return qty * fill - fee, fee, qty * (fill - entry) - (entry_fee + fee)


@_jit()
def fused_backtest(open_: FloatArray, close: FloatArray, fast: int, slow: int,
                   fill_close: bool, fixed_qty: bool, size: float, fees: float,
                   slippage: float, capital: float, bars_per_year: float,
                   returns: FloatArray, trades: FloatArray,
                   out: FloatArray) -> None:  # pragma: no cover - jitted
    """One backtest of the SMA(fast, slow) crossover, metrics into ``out`` (``METRICS``
    order, NaN = undefined). ``returns`` (``bars`` floats) and ``trades`` (``(4, bars + 1)``)
    are work buffers, overwritten."""
    n = close.shape[0]
    warmup = min(max(fast, slow), n)
    cash = capital
    qty = entry = entry_fee = fees_paid = 0.0  # qty: the long position, 0 = flat
    count = wins = reduced = exposed = 0
    sum_fast = sum_slow = 0.0
    due_fast, due_slow = fast + RESUM_BARS - 1, slow + RESUM_BARS - 1
    prev_fast = prev_slow = math.nan
    pending = 0  # next_open: the signal of bar t - 1 (+1 crossover, -1 crossunder, 0 none)
    last_equity = peak = trough = capital
    drawdown = 0.0
    run = longest = 0
    finite = True
    for t in range(n):
        sum_fast, due_fast = _slide(close, t, fast, sum_fast, due_fast)
        sum_slow, due_slow = _slide(close, t, slow, sum_slow, due_slow)
        # fast mean > slow mean, as sum_fast / fast > sum_slow / slow without dividing
        f = sum_fast * slow
        s = sum_slow * fast
        signal = 0
        if t >= warmup:
            if f > s and prev_fast <= prev_slow:
                signal = 1
            elif f < s and prev_fast >= prev_slow:
                signal = -1
        prev_fast = f
        prev_slow = s
        if fill_close:  # this bar's signal at this bar's close, no entry on the last bar
            order, price, can_enter = signal, close[t], t != n - 1
        else:  # the previous bar's signal at this bar's open
            order, price, can_enter = pending, open_[t], True
            pending = signal
        if order == -1 and qty > 0.0:
            received, fee, pnl = _sell(qty, price, slippage, fees, entry, entry_fee)
            cash += received
            fees_paid += fee
            trades[0, count] = pnl
            trades[1, count] = pnl / (qty * entry)
            count += 1
            if pnl > 0.0:
                wins += 1
            qty = 0.0
        elif order == 1 and qty == 0.0 and can_enter:
            buy = price * (1.0 + slippage)
            cap = cash / (buy * (1.0 + fees))  # notional + fee within the equity (= cash)
            want = size if fixed_qty else cash * size / (buy * (1.0 + fees))
            cut = want > cap
            if cut:
                want = cap
            if want > 0.0 and math.isfinite(want):
                fee = fees * want * buy
                cash -= want * buy + fee
                fees_paid += fee
                qty, entry, entry_fee = want, buy, fee
                if cut:
                    reduced += 1
        if t == n - 1 and qty > 0.0:  # end_of_data close
            received, fee, pnl = _sell(qty, close[t], slippage, fees, entry, entry_fee)
            cash += received
            fees_paid += fee
            trades[0, count] = pnl
            trades[1, count] = pnl / (qty * entry)
            count += 1
            if pnl > 0.0:
                wins += 1
            qty = 0.0
        equity = cash
        if qty > 0.0:
            equity += qty * close[t]
            exposed += 1
        # the bar return (exactly 0 while the equity stands still: x / x is 1)
        r = 0.0 if equity == last_equity else equity / last_equity - 1.0
        last_equity = equity
        returns[t] = r
        finite = finite and math.isfinite(r)
        if equity >= peak:  # a new peak: the drawdown run ends
            peak = trough = equity
            run = 0
        else:
            run += 1
            longest = max(longest, run)
            if equity < trough:  # v / peak - 1 is monotone in v: only new lows can deepen
                trough = equity
                drawdown = min(drawdown, equity / peak - 1.0)
    _metrics(n, capital, last_equity, drawdown, longest, exposed, finite, bars_per_year,
             returns, count, wins, trades, fees_paid, reduced, out)


@_jit(inline="always")
def _metrics(n: int, capital: float, final: float, drawdown: float, longest: int,
             exposed: int, finite: bool, bpy: float, returns: FloatArray, count: int, wins: int,
             trades: FloatArray, fees_paid: float, reduced: int,
             out: FloatArray) -> None:  # pragma: no cover - jitted
    """docs/backtest.md §9 from what the bar loop accumulated. The return moments take the
    only extra passes over the bars: the mean, then the squared deviations and downside
    squares."""
    out[:] = math.nan
    cagr = math.nan
    out[TOTAL_RETURN] = _finite(final / capital - 1.0)
    if n > 0:
        if final <= 0:
            cagr = -1.0
        else:  # exp(log): an absurd annualised growth is undefined, not an overflow
            growth = bpy / n * math.log(final / capital)
            if growth < 700:
                cagr = _finite(math.expm1(growth))
        out[CAGR] = cagr
        out[MAX_DD] = drawdown
        out[MAX_DD_BARS] = longest
        out[EXPOSURE] = _finite(exposed / n)
        if drawdown < 0 and not math.isnan(cagr):
            out[CALMAR] = _finite(cagr / abs(drawdown))
    if n >= 2 and finite:
        mean = pairwise(returns, n, PLAIN, 0.0) / n
        downside = math.sqrt(pairwise(returns, n, DOWNSIDE, 0.0) / n)
        std = math.sqrt(pairwise(returns, n, DEVIATION, mean) / (n - 1))
        out[VOLATILITY] = _finite(std * math.sqrt(bpy))
        if std > 0:
            out[SHARPE] = _finite(mean / std * math.sqrt(bpy))
        if downside > 0:
            out[SORTINO] = _finite(mean / downside * math.sqrt(bpy))
    _trade_metrics(count, wins, trades, out)
    out[FEES_PAID] = _finite(fees_paid)
    out[AMBIGUOUS] = 0.0  # no stops or targets: never an ambiguous bar
    out[REDUCED] = reduced


@_jit(inline="always")
def _trade_metrics(count: int, wins: int, trades: FloatArray,
                   out: FloatArray) -> None:  # pragma: no cover - jitted
    """Profit factor, win rate, expectancy, best and worst of the closed trades."""
    out[TRADES] = count
    if count == 0:
        return
    gains = losses = 0
    for i in range(count):  # positive and negative pnl, in trade order, for the sums
        if trades[0, i] > 0:
            trades[2, gains] = trades[0, i]
            gains += 1
        elif trades[0, i] < 0:
            trades[3, losses] = -trades[0, i]
            losses += 1
    gross_loss = pairwise(trades[3], losses, PLAIN, 0.0)
    if gross_loss > 0:
        out[PROFIT_FACTOR] = _finite(pairwise(trades[2], gains, PLAIN, 0.0) / gross_loss)
    out[WIN_RATE] = wins / count
    average = _finite(pairwise(trades[1], count, PLAIN, 0.0) / count)
    out[EXPECTANCY] = average
    out[AVG_TRADE] = average
    out[BEST] = _finite(trades[1, :count].max())
    out[WORST] = _finite(trades[1, :count].min())


@_jit(parallel=True)
def fused_sweep(open_: FloatArray, close: FloatArray, fasts: Any, slows: Any,
                fill_close: bool, fixed_qty: bool, size: float, fees: float, slippage: float,
                capital: float, bars_per_year: float, threads: int,
                out: FloatArray) -> None:  # pragma: no cover - jitted
    """``fused_backtest`` for every pair ``(fasts[j], slows[j])`` into ``out[j]``, on
    ``threads`` interleaved groups, each with its own work buffers (allocated once)."""
    k = fasts.shape[0]
    n = close.shape[0]
    groups = max(1, min(threads, k))
    for g in numba.prange(groups):
        returns = np.empty(n)
        trades = np.empty((TRADE_ROWS, n + 1))
        for j in range(g, k, groups):
            fused_backtest(open_, close, fasts[j], slows[j], fill_close, fixed_qty, size,
                           fees, slippage, capital, bars_per_year, returns, trades, out[j])


# ---------------------------------------------------------------- Python entry points


def _prices(values: Any) -> FloatArray:
    return np.ascontiguousarray(values, dtype=np.float64)


def run(open_: Any, close: Any, fast: int, slow: int, setup: Setup) -> FloatArray:
    """The metrics of one backtest (``METRICS`` order, NaN = undefined)."""
    o, c = _prices(open_), _prices(close)
    n = c.shape[0]
    out = np.empty(len(METRICS))
    fused_backtest(o, c, int(fast), int(slow), setup.fill_close, setup.fixed_qty, setup.size,
                   setup.fees, setup.slippage, setup.capital, setup.bars_per_year,
                   np.empty(n), np.empty((TRADE_ROWS, n + 1)), out)
    return out


def sweep(open_: Any, close: Any, pairs: Any, setup: Setup) -> FloatArray:
    """The metrics of every (fast, slow) row of ``pairs``: shape ``(len(pairs), METRICS)``."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    out = np.empty((pairs.shape[0], len(METRICS)))
    fused_sweep(_prices(open_), _prices(close), np.ascontiguousarray(pairs[:, 0]),
                np.ascontiguousarray(pairs[:, 1]), setup.fill_close, setup.fixed_qty,
                setup.size, setup.fees, setup.slippage, setup.capital, setup.bars_per_year,
                int(numba.get_num_threads()), out)
    return out


def as_dict(values: FloatArray) -> dict[str, float | int | None]:
    """One row of metrics as peak's metric table: None for undefined, ints for counts."""
    return {key: (None if math.isnan(v) else int(v) if key in COUNTS else v)
            for key, v in zip(METRICS, values.tolist(), strict=True)}
