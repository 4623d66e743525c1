"""The fused numba reference of benchmarks/ (the yardstick of issue 8, item 6): its sums are
numpy's, a worked example by hand, and its metrics equal peak's on random combinations."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from peakdsl.data.candles import CandleSet

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_fused  # noqa: E402
import bench_sweep_engine  # noqa: E402
import fused_reference as fused  # noqa: E402

# Worked example: SMA(2) over SMA(3) of these closes crosses up at bar 4, down at bar 7 and up
# again at bar 9, the last bar (never entered). The opens gap away from the previous close.
CLOSE = np.array([10, 9, 8, 9, 11, 12, 11, 8, 7, 10], dtype=np.float64)
OPEN = np.array([10, 10, 9, 8, 9, 11.5, 12, 11, 7.5, 7], dtype=np.float64)
FEES = 0.001


def setup(*, fill_close: bool, fixed_qty: bool, size: float) -> fused.Setup:
    return fused.Setup(fill_close=fill_close, fixed_qty=fixed_qty, size=size, fees=FEES,
                       slippage=0.0, capital=100.0, bars_per_year=8760.0)


def example(s: fused.Setup) -> dict[str, float | int | None]:
    return fused.as_dict(fused.run(OPEN, CLOSE, 2, 3, s))


def numpy_terms(x: fused.FloatArray, kind: int, mean: float) -> fused.FloatArray:
    if kind == fused.DEVIATION:
        return np.square(x - mean)
    if kind == fused.DOWNSIDE:
        return np.square(np.minimum(x, 0.0))
    return x


@pytest.mark.parametrize("kind", [fused.PLAIN, fused.DEVIATION, fused.DOWNSIDE])
def test_pairwise_is_numpys_sum_bit_for_bit(kind: int) -> None:
    rng = np.random.default_rng(3)
    for n in [*range(300), 1000, 1023, 8191, 8192, 8193, 100_003]:
        x = rng.standard_t(3, n) * 10.0 ** rng.integers(-3, 3, n)
        got = fused.pairwise(x, n, kind, 0.25)
        assert got == numpy_terms(x, kind, 0.25).sum(), n


def test_fill_close_quantity_by_hand() -> None:
    """Buy 1 at close[4] = 11 (fee 0.011), sell at close[7] = 8 (fee 0.008): cash 96.981."""
    m = example(setup(fill_close=True, fixed_qty=True, size=1.0))
    assert m["trades"] == 1  # the crossover on the last bar is not entered
    assert m["total_return"] == pytest.approx(-0.03019, rel=1e-12)
    assert m["fees_paid"] == pytest.approx(0.019, rel=1e-12)
    assert m["expectancy"] == pytest.approx(-3.019 / 11, rel=1e-12)
    assert m["best_trade"] == m["worst_trade"] == m["avg_trade"] == m["expectancy"]
    # equity 100 ×4, 99.989, 100.989 (the peak), 99.989, 96.981 ×3
    assert m["max_drawdown"] == pytest.approx(96.981 / 100.989 - 1, rel=1e-12)
    assert m["max_drawdown_bars"] == 4
    assert m["exposure"] == pytest.approx(0.3, rel=1e-12)
    assert (m["win_rate"], m["profit_factor"], m["orders_reduced"]) == (0.0, 0.0, 0)


def test_next_open_whole_equity_by_hand() -> None:
    """Bar 4's crossover buys 100 / (11.5 · 1.001) at open[5] = 11.5; bar 7's crossunder
    sells at open[8] = 7.5: the peak is that quantity at close[5] = 12, the trough what the
    sale nets."""
    m = example(setup(fill_close=False, fixed_qty=False, size=1.0))
    qty = 100 / (11.5 * 1.001)
    assert m["trades"] == 1
    assert m["total_return"] == pytest.approx(qty * 7.5 * 0.999 / 100 - 1, rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(7.5 * 0.999 / 12 - 1, rel=1e-12)  # -0.375625
    assert m["max_drawdown_bars"] == 4
    assert m["fees_paid"] == pytest.approx(FEES * qty * (11.5 + 7.5), rel=1e-12)
    assert m["expectancy"] == pytest.approx(-4.019 / 11.5, rel=1e-12)
    assert m["exposure"] == pytest.approx(0.3, rel=1e-12)


def test_an_order_the_cash_cannot_pay_is_reduced() -> None:
    m = example(setup(fill_close=True, fixed_qty=True, size=20.0))
    assert m["orders_reduced"] == 1
    assert m["total_return"] == pytest.approx(100 / (11 * 1.001) * 8 * 0.999 / 100 - 1,
                                              rel=1e-12)


def test_undefined_metrics_without_trades() -> None:
    m = fused.as_dict(fused.run(OPEN[:4], CLOSE[:4], 2, 3, setup(fill_close=True,
                                                                 fixed_qty=True, size=1.0)))
    assert m["trades"] == 0 and m["total_return"] == 0.0
    assert m["sharpe"] is m["sortino"] is m["profit_factor"] is m["win_rate"] is None


@pytest.fixture(scope="module")
def candles() -> CandleSet:
    return bench_fused.gapped(20_000)


def test_sweep_rows_equal_single_runs(candles: CandleSet) -> None:
    f = candles.frame
    pairs = bench_fused.random_pairs(bench_sweep_engine.grid(), 40, seed=5)
    case = bench_fused.cases()[1]
    rows = fused.sweep(f["open"], f["close"], pairs, case.setup)
    singles = [fused.run(f["open"], f["close"], int(a), int(b), case.setup) for a, b in pairs]
    np.testing.assert_array_equal(rows, np.array(singles))


def test_matches_evaluate_block(candles: CandleSet) -> None:
    case = bench_fused.cases()[1]
    assert bench_fused.check_sweep(case, candles, 300) <= bench_fused.TOLERANCE


@pytest.mark.parametrize("which", [0, 1])
def test_matches_run_backtest(candles: CandleSet, which: int) -> None:
    case = bench_fused.cases()[which]
    assert bench_fused.check_backtests(case, candles, 12) <= bench_fused.TOLERANCE


def test_the_check_sees_a_difference() -> None:
    row = np.zeros((1, len(fused.METRICS)))
    row[0, fused.SHARPE] = math.nan
    theirs = {name: np.zeros(1) for name in fused.METRICS}
    assert bench_fused.worst_difference(row, theirs) == (math.inf, "sharpe")
    row[0, fused.SHARPE] = 0.0
    theirs["total_return"] = np.array([1e-3])
    worst, name = bench_fused.worst_difference(row, theirs)
    assert (worst, name) == (1.0, "total_return")
    theirs["new_metric"] = np.zeros(1)
    assert bench_fused.worst_difference(row, theirs)[0] == math.inf
