"""A Monte-Carlo distribution, its summary figures and their metric names.

Percentiles are numpy's default (linear interpolation between order statistics, the
``method="linear"`` of ``np.percentile``) at ``PERCENTILES``. The Sharpe percentiles are
taken over the runs whose Sharpe is defined (a run with no spread has none) and are undefined
when no run has one. ``prob_loss`` is the share of runs whose total return is below 0 (a run
that ends flat is not a loss); ``risk_of_ruin`` the share whose max drawdown reaches the
threshold, i.e. ``max_drawdown <= -threshold`` (a threshold of 0.5 counts the runs that lost
half of a peak at some point).

Metric names (``metrics``): ``mc_<method>_<figure>`` for every method that ran, with figures
``p05_return`` … ``p95_return``, ``p05_max_drawdown`` … ``p95_max_drawdown``, ``p05_sharpe``
… ``p95_sharpe``, ``prob_loss`` and ``risk_of_ruin``; the methods are ``reshuffle``,
``bootstrap``, ``skip`` and ``block``. The headline ``mc_<figure>`` (``mc_p05_return``,
``mc_prob_loss``, …) repeats the trade ``bootstrap``'s: resampling trades with replacement
varies both the order and the mix of trades, the broadest of the trade methods, and it is
defined for any trade list (a reshuffle cannot move the total return at all). Drawdowns keep
the backtest's sign (``<= 0``), so the bad tail of the drawdown is its 5th percentile,
``mc_p05_max_drawdown``; ``mc_p95_max_drawdown`` is the mildest 5 %.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..metrics import MC_PERCENTILES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Figure = float | None

PERCENTILES = MC_PERCENTILES  # the catalogue's: every figure is a named metric
RUIN_DRAWDOWN = 0.5  # the default risk-of-ruin threshold: a 50 % fall from a peak
HEADLINE_METHOD = "bootstrap"
# statistic -> its name in the metric names
STATISTICS = {"total_return": "return", "max_drawdown": "max_drawdown", "sharpe": "sharpe"}


@dataclass(frozen=True, eq=False)
class Fan:
    """Equity percentile bands for a fan chart (equity 1 = the starting capital).

    ``equity[i, j]`` is the ``levels[i]``-th percentile, across the sampled runs, of the
    equity after ``steps[j]`` steps; ``runs`` says how many runs were sampled.
    """

    steps: IntArray
    levels: tuple[int, ...]
    equity: FloatArray
    runs: int


@dataclass(frozen=True, eq=False)
class Distribution:
    """Every run's total return, max drawdown (``<= 0``) and Sharpe (NaN: undefined)."""

    method: str
    seed: int
    total_return: FloatArray
    max_drawdown: FloatArray
    sharpe: FloatArray
    fan: Fan

    @property
    def runs(self) -> int:
        return int(self.total_return.shape[0])

    def percentiles(self, statistic: str) -> dict[int, Figure]:
        """``PERCENTILES`` of one statistic (a key of ``STATISTICS``); None when undefined."""
        values = getattr(self, statistic)
        defined = values[~np.isnan(values)]
        if defined.shape[0] == 0:
            return dict.fromkeys(PERCENTILES)
        found = np.percentile(defined, PERCENTILES)
        return {level: finite_or_none(float(v))
                for level, v in zip(PERCENTILES, found, strict=True)}

    def prob_loss(self) -> float:
        """The share of runs that end below the starting capital."""
        return float(np.count_nonzero(self.total_return < 0.0)) / self.runs

    def risk_of_ruin(self, threshold: float = RUIN_DRAWDOWN) -> float:
        """The share of runs whose drawdown reaches ``threshold`` (a fraction in (0, 1])."""
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"the ruin threshold must be a drawdown in (0, 1], got {threshold}")
        return float(np.count_nonzero(self.max_drawdown <= -threshold)) / self.runs

    def metrics(self, prefix: str | None = None,
                threshold: float = RUIN_DRAWDOWN) -> dict[str, Figure]:
        """The named figures: ``<prefix>_p05_return`` …; prefix ``mc_<method>`` by default."""
        head = f"mc_{self.method}" if prefix is None else prefix
        out: dict[str, Figure] = {}
        for statistic, word in STATISTICS.items():
            for level, value in self.percentiles(statistic).items():
                out[f"{head}_p{level:02d}_{word}"] = value
        out[f"{head}_prob_loss"] = self.prob_loss()
        out[f"{head}_risk_of_ruin"] = self.risk_of_ruin(threshold)
        return out


def metric_names(method: str | None) -> tuple[str, ...]:
    """Every name ``metrics`` produces for ``method`` (None: the headline ``mc_*`` names)."""
    head = "mc" if method is None else f"mc_{method}"
    names = [f"{head}_p{level:02d}_{word}" for word in STATISTICS.values()
             for level in PERCENTILES]
    return (*names, f"{head}_prob_loss", f"{head}_risk_of_ruin")


def all_metrics(distributions: Mapping[str, Distribution],
                threshold: float = RUIN_DRAWDOWN) -> dict[str, Figure]:
    """Every method's figures, then the headline ``mc_*`` ones when ``bootstrap`` ran.

    Keys of ``distributions`` are method names; figures keep that order, then the headline.
    """
    out: dict[str, Figure] = {}
    for method, dist in distributions.items():
        out.update(dist.metrics(f"mc_{method}", threshold))
    headline = distributions.get(HEADLINE_METHOD)
    if headline is not None:
        out.update(headline.metrics("mc", threshold))
    return out


def fan_steps(n: int, points: int) -> IntArray:
    """Step counts to sample a path of ``n`` steps at: all of ``0..n`` when they fit in
    ``points``, else ``points`` evenly spread ones (rounded, first and last included)."""
    if n + 1 <= points:
        return np.arange(n + 1, dtype=np.int64)
    return np.unique(np.rint(np.linspace(0, n, points)).astype(np.int64))


def fan(steps: IntArray, paths: FloatArray) -> Fan:
    """The percentile bands of the sampled runs' equity (rows: runs, columns: ``steps``)."""
    bands = np.percentile(paths, PERCENTILES, axis=0).astype(np.float64)
    return Fan(steps=steps, levels=PERCENTILES, equity=bands, runs=int(paths.shape[0]))


def finite_or_none(value: float) -> Figure:
    """A figure as JSON takes it: None for NaN or infinity."""
    return value if math.isfinite(value) else None
