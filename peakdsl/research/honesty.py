"""Honest reporting of a sweep's best result: the deflated Sharpe ratio.

Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality", *Journal of Portfolio Management*
40 (5), 94–107. The best of ``N`` trials has a high Sharpe ratio by luck alone; the DSR is the
probability that the true Sharpe ratio is above the one the best of ``N`` unskilled trials
would be expected to show, given how many observations it rests on and how skewed and
fat-tailed its returns are:

    SR0 = sqrt(V) · ((1 − γ) · Φ⁻¹(1 − 1/N) + γ · Φ⁻¹(1 − 1/(N·e)))
    DSR = Φ((SR − SR0) · sqrt(T − 1) / sqrt(1 − skew · SR + (kurtosis − 1)/4 · SR²))

with ``SR`` and ``V`` (the variance of the trials' Sharpe ratios) per observation period,
``T`` the number of return observations, ``kurtosis`` the non-excess kurtosis (3 for normal
returns) and γ the Euler–Mascheroni constant. Standard library only: Φ is
``statistics.NormalDist``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from .types import Array

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def expected_max_sharpe(trials: int, variance: float) -> float:
    """SR0: the Sharpe ratio the best of ``trials`` unskilled trials is expected to reach,
    in the units of ``variance`` (the variance of the trials' Sharpe ratios).

    One trial involves no selection: SR0 = 0.
    """
    if trials <= 1 or variance == 0:
        return 0.0
    z = ((1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / trials)
         + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (trials * math.e)))
    return math.sqrt(variance) * z


def deflated_sharpe(best_sharpe_annual: float, trials: int, sharpe_variance_annual: float,
                    n_obs: int, skew: float, kurtosis: float,
                    periods_per_year: float) -> float | None:
    """The deflated Sharpe ratio (a probability in [0, 1]) of the best of ``trials`` results.

    ``best_sharpe_annual`` and ``sharpe_variance_annual`` (the variance of the annualised
    Sharpe ratios across the trials) are annualised with ``periods_per_year``, the same factor
    the returns behind ``n_obs``, ``skew`` and ``kurtosis`` (non-excess) were sampled at.

    ``trials == 1`` gives SR0 = 0: the DSR is then the probabilistic Sharpe ratio PSR(0), the
    probability that the true Sharpe ratio is positive. ``None`` when the number is undefined:
    fewer than one trial or two observations, a non-finite or negative input, or moments no
    distribution has (kurtosis < 1 + skew²) making the Sharpe estimate's variance
    non-positive.
    """
    values = (best_sharpe_annual, sharpe_variance_annual, skew, kurtosis, periods_per_year)
    if trials < 1 or n_obs < 2 or not all(math.isfinite(v) for v in values):
        return None
    if sharpe_variance_annual < 0 or periods_per_year <= 0:
        return None
    sr = best_sharpe_annual / math.sqrt(periods_per_year)
    sr0 = expected_max_sharpe(trials, sharpe_variance_annual / periods_per_year)
    spread = 1 - skew * sr + (kurtosis - 1) / 4 * sr * sr
    if not spread > 0:
        return None
    return _NORMAL.cdf((sr - sr0) * math.sqrt(n_obs - 1) / math.sqrt(spread))


def returns_moments(equity: Sequence[float] | Array) -> tuple[float, float, int]:
    """``(skew, kurtosis, n_obs)`` of the simple returns of an equity curve.

    Population (biased) moments as in Bailey & López de Prado; ``kurtosis`` is non-excess
    (3 for normal returns). Non-finite returns (a zero or missing equity) are dropped. Skew
    and kurtosis are NaN when fewer than two returns remain or they do not vary — and then
    ``deflated_sharpe`` returns None.
    """
    curve = np.asarray(equity, dtype=np.float64)
    if curve.ndim != 1 or len(curve) < 2:
        return math.nan, math.nan, 0
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = curve[1:] / curve[:-1] - 1.0
    returns = returns[np.isfinite(returns)]
    n = len(returns)
    if n < 2:
        return math.nan, math.nan, n
    centred = returns - returns.mean()
    m2 = float(np.mean(centred ** 2))
    if not m2 > 0:
        return math.nan, math.nan, n
    m3 = float(np.mean(centred ** 3))
    m4 = float(np.mean(centred ** 4))
    return m3 / m2 ** 1.5, m4 / m2 ** 2, n


def sharpe_variance(sharpes: Sequence[float] | Array) -> float:
    """The sample variance of the trials' Sharpe ratios (undefined ones ignored); NaN when
    fewer than two are defined."""
    values = np.asarray(sharpes, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return math.nan
    return float(np.var(values, ddof=1))
