"""The backtest-only metrics: what the statistics core does not see.

``stats.metrics_core`` runs inside the sweep's parallel loop on a run's equity and its
trades' pnl and returns, nothing else, so every sweep row has its metrics. The metrics here
also read the trade table's bars (how long each trade was open) and the closes (buy & hold),
so a backtest and each walk-forward window have them, a sweep row does not (the catalogue
marks them ``runs: backtest``). Definitions: docs/backtest.md §9 and docs/metrics.md.

Plain numpy over the closed trades, once per run (the durations from one sum and one
partition: ``durations``). Like the core's, every value is a finite float, an int or
``None`` (undefined), so the table stays JSON-safe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..metrics import BACKTEST_METRICS, CORE_METRICS
from .results import SimResult

# The catalogue's backtest metrics after the core's, in its order.
BACKTEST_ONLY = tuple(name for name in BACKTEST_METRICS if name not in CORE_METRICS)

Metric = float | int | None
Array = np.ndarray[Any, Any]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def holding_bars(trades: Mapping[str, Array]) -> Array:
    """Bars each trade was open: its exit bar minus its entry bar (the report's "bars")."""
    entry = np.asarray(trades["entry_bar"], dtype=np.int64)
    return np.asarray(trades["exit_bar"], dtype=np.int64) - entry


def durations(trades: Mapping[str, Array]) -> dict[str, Metric]:
    """``avg_bars_held``, ``median_bars_held`` and ``max_bars_held`` (None without trades):
    numpy's ``mean``, ``median`` and ``max`` of ``holding_bars`` to the bit, from one sum and
    one partition. Bar counts are whole numbers far below 2**53, so their float sum is exact
    in any order (the mean is the exact sum over the count, correctly rounded) and a median
    of two is their float sum halved."""
    held = holding_bars(trades)
    n = len(held)
    if not n:
        return dict.fromkeys(("avg_bars_held", "median_bars_held", "max_bars_held"))
    mid = n // 2
    part = np.partition(held, (mid - 1, mid) if n % 2 == 0 else mid)
    median = float(part[mid]) if n % 2 else (float(part[mid - 1]) + float(part[mid])) / 2
    return {"avg_bars_held": int(held.sum()) / n, "median_bars_held": median,
            "max_bars_held": int(part[mid:].max())}


def buy_hold_return(close: Array) -> float | None:
    """The market over the run: last close / first close − 1 (the capital put in at the first
    close and valued at the last, no costs: the benchmark the reports draw)."""
    c = np.asarray(close, dtype=np.float64)
    if len(c) == 0 or not c[0] > 0:
        return None
    return _finite(float(c[-1] / c[0] - 1.0))


def sqn(returns: Array) -> float | None:
    """Van Tharp's system quality number on trade returns: √n · mean / std (ddof 1).

    Trade returns stand in for R-multiples (a spec need not declare the risk of a trade), so
    the figure is comparable across position sizes; undefined below two trades or when every
    trade returned the same."""
    r = np.asarray(returns, dtype=np.float64)
    n = len(r)
    if n < 2:
        return None
    # np.mean and np.std(ddof=1) step by step (the same reductions, so the same bits),
    # the mean computed once instead of twice
    mean = float(np.add.reduce(r)) / n
    deviation = r - mean
    std = math.sqrt(float(np.add.reduce(deviation * deviation)) / (n - 1))
    if not std > 0:
        return None
    return _finite(math.sqrt(n) * mean / std)


def exposure_adjusted_return(cagr: Metric, exposure: Metric) -> float | None:
    """CAGR per unit of time in the market (CAGR / exposure): a strategy in the market 25 %
    of the time earning 5 % a year earns at 20 % a year while it is in."""
    if cagr is None or exposure is None or exposure <= 0:
        return None
    return _finite(float(cagr) / float(exposure))


def backtest_only_metrics(sim: SimResult, core: Mapping[str, Metric],
                          close: Array | None = None) -> dict[str, Metric]:
    """The ``BACKTEST_ONLY`` metrics of a run, given the core's table (for CAGR and exposure)
    and the closes of its bars (None: buy & hold is undefined, e.g. a stitched walk-forward
    curve or a portfolio of several markets). Closed trades only, like the core."""
    values: dict[str, Metric] = {
        "buy_hold_return": None if close is None else buy_hold_return(close),
        "exposure_adjusted_return": exposure_adjusted_return(core.get("cagr"),
                                                             core.get("exposure")),
        "sqn": sqn(sim.trades["return"]),
        **durations(sim.trades),
    }
    return {name: values[name] for name in BACKTEST_ONLY}
