"""The numba kernel of the Monte-Carlo: one equity path per run, reduced to three figures.

Each run is an index array (``bootstrap``): step ``t`` compounds the original return
``base[index[t]]`` onto an equity that starts at 1 (the starting capital), or stays flat when
the step was skipped. Per run the kernel writes

* the total return, ``equity at the end - 1``;
* the max drawdown, the lowest ``equity / running peak - 1`` with the peak starting at the
  starting capital — the backtest's ``max_drawdown`` (``engine.stats.metrics_core``): a
  fraction ``<= 0``, ``-0.25`` for a 25 % fall, measured on the path sampled once per step
  (per trade for the trade methods: a fall inside a trade is not seen);
* the Sharpe ratio of the step returns, ``mean / std (ddof 1) · sqrt(steps per year)``, as
  the backtest computes it from bar returns, with ``steps per year = periods_per_year · kept
  / n``: a run that kept fewer trades made fewer of them a year. Undefined (NaN) with fewer
  than two kept steps or no spread.

A step return below -100 % (a short or leveraged loss larger than the equity) takes the
equity to exactly zero, counts as -100 %, and every later step of that run returns 0: a
ruined account trades no more. Total returns therefore stay ``>= -1`` and drawdowns in
``[-1, 0]``, the ranges of the metric catalogue.

Runs are independent and computed in one plain loop, so a run's figures do not depend on
which other runs share its call: chunking cannot change a bit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..engine._jit import jit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@jit
def one_path(base: FloatArray, index: IntArray, periods_per_year: float, steps: IntArray,
             path: FloatArray, kept: FloatArray) -> tuple[float, float, float]:
    """(total return, max drawdown, Sharpe) of one run; its equity at ``steps`` into ``path``.

    ``steps`` are ascending step counts in ``0..n`` (0 = the start, equity 1); ``path`` may be
    empty (no samples wanted). ``kept`` is a work buffer of ``n`` floats (overwritten).
    """
    n = index.shape[0]
    equity = 1.0
    peak = 1.0
    drawdown = 0.0
    count = 0
    total = 0.0
    k = 0
    sample = path.shape[0] > 0
    if sample and steps[0] == 0:
        path[0] = 1.0
        k = 1
    for t in range(n):
        j = index[t]
        if j >= 0:
            r = max(base[j], -1.0) if equity > 0.0 else 0.0
            equity = equity * (1.0 + r) if r > -1.0 else 0.0
            kept[count] = r
            total += r
            count += 1
            if equity >= peak:
                peak = equity
            else:
                drawdown = min(drawdown, equity / peak - 1.0)
        if sample and k < steps.shape[0] and steps[k] == t + 1:
            path[k] = equity
            k += 1
    return equity - 1.0, drawdown, _sharpe(kept, count, total, periods_per_year * count / n)


@jit
def _sharpe(kept: FloatArray, count: int, total: float, per_year: float) -> float:
    """``mean / std (ddof 1) · sqrt(per_year)`` of ``kept[:count]``; NaN when undefined."""
    if count < 2:
        return math.nan
    mean = total / count
    squares = 0.0
    for i in range(count):
        dev = kept[i] - mean
        squares += dev * dev
    std = math.sqrt(squares / (count - 1))
    if not std > 0.0:
        return math.nan
    return mean / std * math.sqrt(per_year)


@jit
def run_paths(base: FloatArray, index: IntArray, periods_per_year: float, steps: IntArray,
              paths: FloatArray, totals: FloatArray, drawdowns: FloatArray,
              sharpes: FloatArray) -> None:
    """Every row of ``index`` (one run each) into ``totals``/``drawdowns``/``sharpes``.

    ``paths`` has one row per leading run whose equity samples are wanted (possibly none):
    row ``b`` of ``paths`` is run ``b`` of ``index``.
    """
    kept = np.empty(index.shape[1])
    empty = np.empty(0)
    for b in range(index.shape[0]):
        path = paths[b] if b < paths.shape[0] else empty
        totals[b], drawdowns[b], sharpes[b] = one_path(base, index[b], periods_per_year, steps,
                                                       path, kept)
