"""``sma``'s rolling mean (``engine.kernels_mean``): exact to ~1e-15 of the window's size
against ``math.fsum`` on real-shaped and hostile data, constant windows, gaps, the whole-array
fast path equal to the bar-by-bar rule, and the state form equal to the kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from peakdsl.engine import kernels_mean as km
from peakdsl.engine.kernels import KERNELS, STATES

nan = math.nan
TOLERANCE = 1e-15  # of the window's largest magnitude (the bound allows ~9e-16, see module)


def exact(x: np.ndarray, n: int) -> np.ndarray:
    """The correctly rounded mean of every window of n finite values, NaN elsewhere."""
    out = np.full(len(x), nan)
    for i in range(n - 1, len(x)):
        window = x[i - n + 1: i + 1]
        if np.isfinite(window).all():
            out[i] = math.fsum(window) / n
    return out


def scale(x: np.ndarray, n: int) -> np.ndarray:
    """The largest magnitude in every window (what a sum of it can be exact relative to)."""
    out = np.ones(len(x))
    for i in range(n - 1, len(x)):
        out[i] = np.max(np.abs(x[i - n + 1: i + 1]))
    return out


def by_bar(x: np.ndarray, n: int) -> np.ndarray:
    """``_bar``'s rule at every bar, no fast path: what ``rolling_mean`` must equal."""
    out = np.empty(len(x))
    run = same = since = 0
    shift = s = bound = 0.0
    for i in range(len(x)):
        out[i], run, same, since, shift, s, bound = km._bar(x, i, n, run, same, since,
                                                             shift, s, bound)
    return out


def pushed(x: np.ndarray, n: int) -> np.ndarray:
    state = STATES["sma"](n)
    return np.array([state.push(float(v)) for v in x])


def assert_identical(got: np.ndarray, want: np.ndarray) -> None:
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    bad = np.flatnonzero(~same)
    assert bad.size == 0, f"bars {bad[:5].tolist()}: {got[bad[:5]]} != {want[bad[:5]]}"


def assert_exact(x: np.ndarray, n: int) -> None:
    got, want = KERNELS["sma"](x, n), exact(x, n)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    error = np.abs(got[ok] - want[ok]) / np.maximum(scale(x, n)[ok], 5e-324)  # 0 / tiny
    assert error.max(initial=0.0) <= TOLERANCE, f"worst {error.max():.3g} at n={n}"


def prices(seed: int, size: int, vol: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, vol, size)))


def hostile(seed: int, size: int) -> np.ndarray:
    """Values near 5 with outliers of ±1e9 and 1e15, tiny values, zeros, gaps and flat runs."""
    rng = np.random.default_rng(seed)
    x = 5.0 + rng.normal(0.0, 1.0, size)
    x[rng.integers(0, size, size // 50)] = rng.choice([1e9, -1e9, 1e15, 1e-300, 0.0],
                                                      size // 50)
    x[rng.integers(0, size, 6)] = nan
    start = int(rng.integers(0, size - 40))
    x[start: start + 40] = 0.1  # a flat run: its full windows are exactly 0.1
    return x


# ---------------------------------------------------------------- literal values


def test_outlier_leaves_no_trace() -> None:
    """The regression ``rolling_mean_after_an_outlier``: 7/3, not 2.3333333134651184 (to
    the last bit: the windows after it are running sums again, 5/3 one unit off)."""
    x = np.array([1.0, 2, 3, 2, 1e9, 2, 3, 2, 1, 2, 3])
    got = KERNELS["sma"](x, 3)
    assert got[7] == 7 / 3 and got[8] == 2.0 and got[10] == 2.0
    assert abs(got[9] - 5 / 3) <= math.ulp(5 / 3)


def test_constant_windows_are_the_constant() -> None:
    x = np.array([0.3, 0.1, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1, 0.1])
    got = KERNELS["sma"](x, 3)
    assert got[3] == 0.1 and got[4] == 0.1 and got[8] == 0.1  # 0.1 * 3 / 3 is not 0.1
    flat = np.full(3000, 0.7)
    assert (KERNELS["sma"](flat, 25)[24:] == 0.7).all()


def test_a_gap_restarts_the_run() -> None:
    x = np.array([1.0, 2, 3, nan, 4, 5, 6, np.inf, 7])
    got = KERNELS["sma"](x, 2)
    np.testing.assert_array_equal(np.isnan(got), [1, 0, 0, 1, 1, 0, 0, 1, 1])
    assert got[[1, 2, 5, 6]].tolist() == [1.5, 2.5, 4.5, 5.5]


def test_window_one_is_the_value() -> None:
    x = np.array([1.0, nan, 0.1, -3.0, 1e300])
    assert_identical(KERNELS["sma"](x, 1), np.array([1.0, nan, 0.1, -3.0, 1e300]))


# ---------------------------------------------------------------- precision


@pytest.mark.parametrize("vol", [0.002, 0.01, 0.03])
@pytest.mark.parametrize("n", [2, 10, 30, 200])
def test_prices_are_exact(vol: float, n: int) -> None:
    assert_exact(prices(n, 6000, vol), n)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [3, 10, 40])
def test_hostile_values_are_exact(seed: int, n: int) -> None:
    assert_exact(hostile(seed, 4000), n)


@pytest.mark.parametrize("n", [5, 30])
def test_values_near_zero_are_exact(n: int) -> None:
    rng = np.random.default_rng(n)
    returns = rng.normal(0.0, 0.01, 5000)
    assert_exact(returns, n)
    counts = np.where(rng.random(5000) < 0.2, 0.0, rng.integers(1, 1000, 5000).astype(float))
    assert_exact(counts, n)


def test_far_from_zero_is_exact() -> None:
    rng = np.random.default_rng(0)
    assert_exact(1e6 + rng.normal(0.0, 1.0, 5000), 50)


# ---------------------------------------------------------------- one rule, three drivers


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_fast_path_is_the_bar_rule(seed: int, n: int) -> None:
    """Blocks of plain updates, their fall-backs to ``_bar`` and the periodic re-summation
    (3,000 bars: past ``PERIOD``) give the bar-by-bar rule's doubles."""
    for x in (hostile(seed, 3000), prices(seed, 3000, 0.03)):
        assert_identical(KERNELS["sma"](x, n), by_bar(x, n))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n", [2, 9, 40])
def test_state_is_the_kernel(seed: int, n: int) -> None:
    for x in (hostile(seed, 2500), prices(seed, 2500, 0.01)):
        assert_identical(pushed(x, n), KERNELS["sma"](x, n))
