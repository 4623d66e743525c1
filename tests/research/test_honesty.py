"""The deflated Sharpe ratio (Bailey & López de Prado 2014) and the return moments it needs.

Where the literals come from
----------------------------
``test_the_papers_numerical_example`` reproduces the worked example of the paper (section
"A numerical example"): a strategist ran N = 100 independent trials; the best has an annualised
Sharpe ratio of 2.5 over 5 years of daily returns (T = 1250, 250 per year); the trials'
annualised Sharpe ratios have variance V = 1/2; the best's returns have skewness −3 and
(non-excess) kurtosis 10. The paper reports SR0 ≈ 0.1132 (per day) and DSR ≈ 0.9004.

By hand, with Φ⁻¹(0.99) = 2.326348 and Φ⁻¹(1 − 1/(100·e)) = Φ⁻¹(0.996321) = 2.680210:

    SR   = 2.5 / √250                        = 0.158114 (per day)
    V    = 0.5 / 250                         = 0.002, √V = 0.044721
    SR0  = 0.044721 · (0.422784 · 2.326348 + 0.577216 · 2.680210)
         = 0.044721 · 2.530603               = 0.113172
    z    = (0.158114 − 0.113172) · √1249 / √(1 + 3 · 0.158114 + 9/4 · 0.025)
         = 0.044942 · 35.341194 / √1.530592  = 1.588300 / 1.237171 = 1.283817
    DSR  = Φ(1.283817)                       = 0.900397

Likewise for one trial (no selection, SR0 = 0), normal returns (skew 0, kurtosis 3), SR 1.0
annualised over 365 daily observations: SR = 1/√365 = 0.052342,
z = 0.052342 · √364 / √(1 + 2/4 · 0.052342²) = 0.998629 / 1.000685 = 0.997946, PSR = Φ(z) =
0.840847.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from peakdsl.research.honesty import (
    deflated_sharpe,
    expected_max_sharpe,
    returns_moments,
    sharpe_variance,
)


def test_the_papers_numerical_example() -> None:
    assert expected_max_sharpe(100, 0.5 / 250) == pytest.approx(0.113172, abs=1e-6)
    dsr = deflated_sharpe(2.5, 100, 0.5, 1250, -3.0, 10.0, 250)
    assert dsr == pytest.approx(0.900397, abs=1e-6)
    assert round(dsr or 0.0, 4) == 0.9004  # the paper's figure


def test_one_trial_is_the_probabilistic_sharpe_ratio() -> None:
    assert expected_max_sharpe(1, 0.5) == 0.0
    psr = deflated_sharpe(1.0, 1, 0.5, 365, 0.0, 3.0, 365)
    assert psr == pytest.approx(0.840847, abs=1e-6)
    # the trials' variance does not matter without selection
    assert deflated_sharpe(1.0, 1, 9.0, 365, 0.0, 3.0, 365) == psr
    # a zero Sharpe ratio with no selection is a coin toss
    assert deflated_sharpe(0.0, 1, 0.5, 365, 0.0, 3.0, 365) == 0.5


def test_undefined_cases_are_none() -> None:
    good = (2.5, 100, 0.5, 1250, -3.0, 10.0, 250.0)
    assert deflated_sharpe(*good) is not None
    for index, bad in [(1, 0), (3, 1), (2, math.nan), (0, math.inf), (4, math.nan),
                       (5, math.nan), (2, -0.1), (6, 0.0)]:
        args = list(good)
        args[index] = bad
        assert deflated_sharpe(*args) is None, (index, bad)  # type: ignore[arg-type]
    # moments no distribution has (kurtosis < 1 + skew²) can make the Sharpe estimate's
    # variance non-positive: undefined, not a number
    assert deflated_sharpe(1.0, 10, 0.5, 100, 2.0, 1.0, 1.0) is None


def test_no_spread_between_trials_means_no_selection_bias() -> None:
    assert deflated_sharpe(1.5, 50, 0.0, 500, 0.0, 3.0, 365) == \
        deflated_sharpe(1.5, 1, 0.0, 500, 0.0, 3.0, 365)


@settings(max_examples=200, deadline=None)
@given(st.floats(-3, 5), st.integers(1, 10_000), st.integers(1, 10_000),
       st.floats(0.01, 4.0), st.integers(30, 5000), st.floats(-2, 2), st.floats(1.5, 20))
def test_more_trials_never_raise_the_dsr(sr: float, n1: int, n2: int, var: float, t: int,
                                         skew: float, kurt: float) -> None:
    low, high = sorted((n1, n2))
    a = deflated_sharpe(sr, low, var, t, skew, kurt, 365)
    b = deflated_sharpe(sr, high, var, t, skew, kurt, 365)
    assume(a is not None and b is not None)
    assert a is not None and b is not None
    assert b <= a + 1e-12
    assert 0.0 <= b <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 4), st.floats(0, 4), st.integers(1, 10_000), st.floats(0.01, 4.0),
       st.integers(30, 5000), st.floats(1.5, 20))
def test_a_higher_sharpe_ratio_never_lowers_the_dsr(s1: float, s2: float, n: int, var: float,
                                                    t: int, kurt: float) -> None:
    """Monotone in SR for non-negative SR and non-positive skew (with positive skew the
    estimate's variance shrinks as SR grows, and so may the z-score — as the formula says)."""
    low, high = sorted((s1, s2))
    a = deflated_sharpe(low, n, var, t, -0.5, kurt, 365)
    b = deflated_sharpe(high, n, var, t, -0.5, kurt, 365)
    assert a is not None and b is not None
    assert b >= a - 1e-12


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 100_000), st.floats(1e-4, 10))
def test_expected_max_grows_with_trials(n: int, var: float) -> None:
    assert 0 < expected_max_sharpe(n, var) < expected_max_sharpe(n + 1, var)
    assert expected_max_sharpe(n, var) == pytest.approx(
        math.sqrt(var) * expected_max_sharpe(n, 1.0))


def test_returns_moments() -> None:
    equity = np.array([100.0, 110.0, 99.0, 103.95, 103.95, 114.345])
    returns = np.array([0.10, -0.10, 0.05, 0.0, 0.10])
    c = returns - returns.mean()
    skew, kurt, n = returns_moments(equity)
    assert n == 5
    assert skew == pytest.approx(np.mean(c ** 3) / np.mean(c ** 2) ** 1.5)
    assert kurt == pytest.approx(np.mean(c ** 4) / np.mean(c ** 2) ** 2)
    rng = np.random.default_rng(0)
    normal = 1000 * np.cumprod(1 + rng.normal(0, 0.01, 200_001))
    skew, kurt, n = returns_moments(normal)
    assert n == 200_000 and abs(skew) < 0.03 and kurt == pytest.approx(3.0, abs=0.05)


def test_returns_moments_undefined() -> None:
    skew, kurt, n = returns_moments([100.0])
    assert math.isnan(skew) and math.isnan(kurt) and n == 0
    skew, kurt, n = returns_moments([100.0, 100.0, 100.0])
    assert math.isnan(skew) and math.isnan(kurt) and n == 2
    skew, kurt, n = returns_moments([0.0, 100.0, 110.0, 100.0])  # 0 → 100 is not a return
    assert n == 2 and math.isfinite(skew)
    assert deflated_sharpe(1.0, 5, 0.5, 2, math.nan, math.nan, 365) is None


def test_sharpe_variance() -> None:
    assert sharpe_variance([1.0, 2.0, 3.0, math.nan]) == pytest.approx(1.0)
    assert math.isnan(sharpe_variance([1.0, math.nan]))


def test_normal_helpers_are_the_standard_librarys() -> None:
    assert NormalDist().inv_cdf(0.99) == pytest.approx(2.326348, abs=1e-6)
    assert NormalDist().inv_cdf(1 - 1 / (100 * math.e)) == pytest.approx(2.680210, abs=1e-6)
