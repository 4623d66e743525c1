"""The per-run kernel on hand-computed paths: total return, drawdown, Sharpe, ruin, samples."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from peakdsl.robustness import paths

# Three trades, -10 %, -20 %, +50 %: every order ends at 0.9 · 0.8 · 1.5 = 1.08.
TRADES = np.array([-0.1, -0.2, 0.5])
# Drawdown of each order (itertools.permutations order), by hand:
# (-.1, -.2, .5): 0.9, 0.72, 1.08 → 0.72 − 1 = −0.28
# (-.1, .5, -.2): 0.9, 1.35, 1.08 → 1.08 / 1.35 − 1 = −0.2
# (-.2, -.1, .5): 0.8, 0.72, 1.08 → −0.28
# (-.2, .5, -.1): 0.8, 1.2, 1.08 → −0.2 (from the start; 1.08 / 1.2 − 1 = −0.1)
# (.5, -.1, -.2): 1.5, 1.35, 1.08 → 1.08 / 1.5 − 1 = −0.28
# (.5, -.2, -.1): 1.5, 1.2, 1.08 → −0.28
DRAWDOWNS = [-0.28, -0.2, -0.28, -0.2, -0.28, -0.28]
# Sharpe: mean 0.2/3; squared deviations 0.1667², 0.2667², 0.4333² sum to 0.286667, /2 →
# std 0.378594; 0.0666667 / 0.378594 = 0.176090; · sqrt(3 trades a year) = 0.304997
SHARPE = 0.3049971406652093


def run(returns: list[float] | np.ndarray, index: list[list[int]], per_year: float = 3.0,
        steps: list[int] | None = None) -> tuple[np.ndarray, ...]:
    base = np.asarray(returns, dtype=np.float64)
    idx = np.asarray(index, dtype=np.int64)
    sampled = np.asarray(steps if steps is not None else [0], dtype=np.int64)
    out = np.empty((idx.shape[0] if steps is not None else 0, sampled.shape[0]))
    figures = [np.empty(idx.shape[0]) for _ in range(3)]
    paths.run_paths(base, idx, per_year, sampled, out, *figures)
    return (*figures, out)


def test_every_order_of_three_trades_by_hand() -> None:
    orders = [list(p) for p in itertools.permutations(range(3))]
    total, drawdown, sharpe, _ = run(TRADES, orders)
    assert total == pytest.approx([0.08] * 6, abs=1e-12)
    assert drawdown == pytest.approx(DRAWDOWNS, abs=1e-12)
    assert sharpe == pytest.approx([SHARPE] * 6, abs=1e-12)


def test_sampled_equity_of_one_order() -> None:
    *_, out = run(TRADES, [[1, 2, 0], [0, 1, 2]], steps=[0, 1, 2, 3])
    assert out == pytest.approx(np.array([[1.0, 0.8, 1.2, 1.08], [1.0, 0.9, 0.72, 1.08]]),
                                abs=1e-12)


def test_only_the_leading_runs_are_sampled() -> None:
    base = np.array([0.1, 0.2])
    idx = np.array([[0, 1], [1, 0], [0, 0]], dtype=np.int64)
    out = np.full((1, 2), -5.0)  # one row: only run 0 is sampled, at steps 1 and 2
    figures = [np.empty(3) for _ in range(3)]
    paths.run_paths(base, idx, 1.0, np.array([1, 2], dtype=np.int64), out, *figures)
    assert out == pytest.approx(np.array([[1.1, 1.32]]), abs=1e-12)
    assert figures[0] == pytest.approx([0.32, 0.32, 0.21], abs=1e-12)


def test_a_skipped_trade_leaves_the_equity_flat_and_the_sharpe_counts_kept_trades() -> None:
    # kept -10 %, +50 %: 0.9, 0.9, 1.35. Sharpe: mean 0.2, std sqrt(0.09 + 0.09) = 0.424264,
    # 0.471405 per trade; 2 of 3 trades kept → 3 · 2/3 = 2 a year → · sqrt(2) = 0.666667
    total, drawdown, sharpe, out = run(TRADES, [[0, -1, 2]], steps=[0, 1, 2, 3])
    assert (total[0], drawdown[0], sharpe[0]) == pytest.approx((0.35, -0.1, 2 / 3), abs=1e-12)
    assert out[0] == pytest.approx([1.0, 0.9, 0.9, 1.35], abs=1e-12)


def test_a_loss_beyond_the_equity_ruins_the_run_for_good() -> None:
    # -150 % counts as -100 %: equity 0, then +50 % of nothing is 0 (a return of 0).
    # Sharpe of (-1, 0): mean -0.5, std 0.707107 → -0.707107 at one step a year
    total, drawdown, sharpe, out = run([-1.5, 0.5], [[0, 1]], per_year=1.0, steps=[0, 1, 2])
    assert (total[0], drawdown[0]) == (-1.0, -1.0)
    assert sharpe[0] == pytest.approx(-math.sqrt(0.5), abs=1e-12)
    assert out[0].tolist() == [1.0, 0.0, 0.0]


def test_exactly_minus_one_hundred_percent_is_ruin_too() -> None:
    total, drawdown, _, out = run([0.5, -1.0, 0.2], [[0, 1, 2]], steps=[3])
    assert (total[0], drawdown[0], out[0, 0]) == (-1.0, -1.0, 0.0)


def test_sharpe_is_undefined_without_spread_or_with_one_step() -> None:
    _, drawdown, sharpe, _ = run([0.01, 0.01], [[0, 1], [0, -1]])
    assert np.isnan(sharpe).all()
    assert drawdown.tolist() == [0.0, 0.0]


def test_a_new_high_resets_the_peak() -> None:
    # 1.2, 0.96 (-0.2 from 1.2), 1.44 (a new peak), 1.152 (-0.2), 0.72 (-0.5 from 1.44)
    total, drawdown, _, _ = run([0.2, -0.2, 0.5, -0.2, -0.375], [[0, 1, 2, 3, 4]])
    assert total[0] == pytest.approx(-0.28, abs=1e-12)
    assert drawdown[0] == pytest.approx(-0.5, abs=1e-12)
