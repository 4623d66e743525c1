"""The backtest-only metrics (``engine.trade_stats``) against literal numbers worked by hand:
the trade durations, SQN, the exposure-adjusted return and buy & hold, and their place after
the core's metrics in ``compute_metrics``.

The run is the worked example of docs/backtest.md (capital 1,000, seven weekly bars, four
trades), with the trades' bars filled in: held 3, 1, 8 and 4 bars.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from peakdsl.engine.results import TRADE_COLUMNS, SimResult, SimSettings
from peakdsl.engine.stats import METRIC_KEYS, compute_metrics
from peakdsl.engine.trade_stats import (
    BACKTEST_ONLY,
    buy_hold_return,
    durations,
    exposure_adjusted_return,
    holding_bars,
    sqn,
)
from peakdsl.metrics import BACKTEST_METRICS

WEEK = 7 * 86_400
EQUITY = [1010.0, 990.0, 1030.0, 1020.0, 1000.0, 1050.0, 1040.0]
POSITION = [10.0, 10.0, 0.0, -5.0, -5.0, 0.0, 0.0]
RETURNS = [0.03, -0.02, 0.05, -0.01]
BARS = [(0, 3), (5, 6), (7, 15), (16, 20)]  # held 3, 1, 8, 4
CLOSE = np.array([100.0, 110.0, 99.0, 120.0, 118.0, 125.0, 90.0])


def sim(bars: list[tuple[int, int]], returns: list[float]) -> SimResult:
    trades = {c: np.zeros(len(bars)) for c in TRADE_COLUMNS}
    trades["entry_bar"] = np.array([b[0] for b in bars], dtype=np.int64)
    trades["exit_bar"] = np.array([b[1] for b in bars], dtype=np.int64)
    trades["return"] = np.array(returns, dtype=float)
    trades["pnl"] = np.array(returns, dtype=float) * 1000
    return SimResult(equity=np.array(EQUITY), position=np.array(POSITION), trades=trades,
                     ambiguous_bars=0, fees_paid=0.0)


def test_worked_example_literals() -> None:
    got = compute_metrics(sim(BARS, RETURNS), SimSettings(capital=1000.0), WEEK, close=CLOSE)
    assert list(got) == list(BACKTEST_METRICS) == [*METRIC_KEYS, *BACKTEST_ONLY]
    assert got["avg_bars_held"] == 4.0 and isinstance(got["avg_bars_held"], float)
    assert got["median_bars_held"] == 3.5
    assert got["max_bars_held"] == 8 and isinstance(got["max_bars_held"], int)
    # √4 · 0.0125 / stdev(0.03, −0.02, 0.05, −0.01) = 0.025 / 0.0330404 (statistics module)
    assert got["sqn"] == pytest.approx(0.756650, abs=5e-7)
    # CAGR 33.931 % (the worked example) over an exposure of 4 bars in 7
    assert got["exposure_adjusted_return"] == pytest.approx(0.593792, abs=5e-7)
    assert got["buy_hold_return"] == pytest.approx(-0.1)  # 90 / 100 − 1


def test_core_metrics_are_unchanged_by_the_extras() -> None:
    """The core's numbers do not depend on trade bars or closes (the sweep computes them
    without either)."""
    with_bars = compute_metrics(sim(BARS, RETURNS), SimSettings(capital=1000.0), WEEK, CLOSE)
    without = compute_metrics(sim([(0, 0)] * 4, RETURNS), SimSettings(capital=1000.0), WEEK)
    assert {k: with_bars[k] for k in METRIC_KEYS} == {k: without[k] for k in METRIC_KEYS}
    assert without["buy_hold_return"] is None  # no closes given: undefined
    assert without["max_bars_held"] == 0


def test_no_trades_and_one_trade() -> None:
    none = compute_metrics(sim([], []), SimSettings(capital=1000.0), WEEK, close=CLOSE)
    for key in ("avg_bars_held", "median_bars_held", "max_bars_held", "sqn"):
        assert none[key] is None, key
    one = compute_metrics(sim([(2, 7)], [0.04]), SimSettings(capital=1000.0), WEEK)
    assert (one["avg_bars_held"], one["max_bars_held"], one["sqn"]) == (5.0, 5, None)


@pytest.mark.parametrize(("returns", "want"), [
    ([0.01, 0.01, 0.01], None),  # no spread: undefined, not infinite
    ([0.02, -0.02], 0.0),
    ([0.1, 0.3], math.sqrt(2) * 0.2 / math.sqrt(0.02)),  # stdev of 0.1, 0.3 = √0.02
])
def test_sqn(returns: list[float], want: float | None) -> None:
    got = sqn(np.array(returns))
    assert got == (None if want is None else pytest.approx(want, abs=1e-12))


@pytest.mark.parametrize(("cagr", "exposure", "want"), [
    (0.05, 0.25, 0.2), (-0.1, 0.5, -0.2), (0.05, 0.0, None), (None, 0.5, None),
    (0.05, None, None),
])
def test_exposure_adjusted_return(cagr: float | None, exposure: float | None,
                                  want: float | None) -> None:
    got = exposure_adjusted_return(cagr, exposure)
    assert got == (None if want is None else pytest.approx(want))


def test_buy_hold_and_holding_bars_edges() -> None:
    assert buy_hold_return(np.array([50.0, 75.0])) == pytest.approx(0.5)
    assert buy_hold_return(np.array([])) is None
    assert buy_hold_return(np.array([0.0, 1.0])) is None  # no price to start from
    assert buy_hold_return(np.array([np.nan, 1.0])) is None
    trades = {"entry_bar": np.array([3, 10]), "exit_bar": np.array([7, 10])}
    assert holding_bars(trades).tolist() == [4, 0]


@pytest.mark.parametrize("seed", range(40))
def test_numpy_statistics_to_the_bit(seed: int) -> None:
    """The durations (one sum, one partition) and SQN (its mean once) give numpy's
    ``mean``, ``median``, ``max`` and ``std(ddof=1)`` figures exactly (odd and even counts,
    int and float bar columns)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 2000)) if seed % 4 else int(rng.integers(1, 9))
    entry = np.sort(rng.integers(0, 10**6, n)).astype(np.float64)
    trades = {"entry_bar": entry, "exit_bar": entry + rng.integers(0, 5000, n)}
    if seed % 2:
        trades = {k: v.astype(np.int64) for k, v in trades.items()}
    held = holding_bars(trades)
    assert durations(trades) == {"avg_bars_held": float(np.mean(held)),
                                 "median_bars_held": float(np.median(held)),
                                 "max_bars_held": int(held.max())}
    returns = rng.normal(0.001, 0.05, n) * 10.0 ** int(rng.integers(-4, 4))
    if n >= 2:
        want = math.sqrt(n) * float(np.mean(returns)) / float(np.std(returns, ddof=1))
        assert sqn(returns) == want
