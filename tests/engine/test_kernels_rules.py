"""Rule rows of comparisons (``engine.kernels_rules``): ``program.eval_bool``'s jitted path
gives numpy's booleans on every operator, with lags filling, NaNs and ties."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from peakdsl.engine import program
from peakdsl.engine.kernels_rules import OPS, conjunction

nan = math.nan
OPERATORS = sorted(OPS)


def series(seed: int, n: int) -> dict[int, Any]:
    """Three float series with NaNs and ties (values on a coarse grid), a bool, a scalar."""
    rng = np.random.default_rng(seed)
    values: dict[int, Any] = {}
    for node in range(3):
        x = np.round(rng.normal(0.0, 1.0, n), 1)
        x[rng.integers(0, max(n, 1), max(n // 10, 1) if n else 0)] = nan
        values[node] = x
    values[3] = rng.random(n) < 0.5
    values[4] = np.float64(0.2)
    return values


def leaf(rng: np.random.Generator, values: dict[int, Any]) -> tuple[Any, ...]:
    """A var or a lag by 1-3 bars (a view of its target, or materialised like ``lag``)."""
    node = int(rng.integers(0, 3))
    if rng.random() < 0.5:
        return ("var", node)
    window = int(rng.integers(1, 4))
    lag_node = 100 + node * 10 + window
    if rng.random() < 0.5:  # materialised: the lag kernel's array
        shifted = np.full(len(values[node]), nan)
        shifted[window:] = values[node][:-window]
        values[lag_node] = shifted
    return ("lag", lag_node, node, window)


def tree(seed: int, terms: int, values: dict[int, Any]) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    compares = [(OPERATORS[int(rng.integers(0, len(OPERATORS)))], leaf(rng, values),
                 leaf(rng, values)) for _ in range(terms)]
    out: tuple[Any, ...] = compares[0]
    for compare in compares[1:]:
        out = ("and", out, compare)
    return out


def by_numpy(t: tuple[Any, ...], values: dict[int, Any], n: int,
             monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    with monkeypatch.context() as patch:
        patch.setattr(program, "_series_terms", lambda *_: None)
        out = np.empty(n, dtype=np.bool_)
        program.eval_bool(t, values, out)
    return out


@pytest.mark.parametrize(("seed", "terms", "n"),
                         list(itertools.product(range(12), (1, 2, 3), (0, 2, 50, 3000))))
def test_jitted_rules_equal_numpy(seed: int, terms: int, n: int,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    values = series(seed, n)
    t = tree(seed, terms, values)
    assert program._series_terms(t, values, n) is not None
    got = np.empty(n, dtype=np.bool_)
    program.eval_bool(t, values, got)
    np.testing.assert_array_equal(got, by_numpy(t, values, n, monkeypatch))


def test_crossover_by_hand() -> None:
    fast = np.array([1.0, 2.0, 3.0, nan, 3.0, 1.0])
    slow = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    cross = ("and", ("gt", ("var", 0), ("var", 1)), ("le", ("lag", 9, 0, 1), ("lag", 8, 1, 1)))
    out = np.empty(6, dtype=np.bool_)
    program.eval_bool(cross, {0: fast, 1: slow}, out)
    assert out.tolist() == [False, False, True, False, False, False]  # after NaN: no cross
    ne = ("ne", ("lag", 9, 0, 2), ("var", 1))
    program.eval_bool(ne, {0: fast, 1: slow}, out)
    assert out.tolist() == [True, True, True, False, True, True]  # NaN != 2 holds


def test_other_trees_stay_with_numpy() -> None:
    values = series(0, 10)
    assert conjunction(("or", ("gt", ("var", 0), ("var", 1)), ("var", 3))) is None
    for t in [("gt", ("var", 0), ("const", 1.0)), ("gt", ("var", 0), ("var", 4)),
              ("and", ("gt", ("var", 0), ("var", 1)), ("var", 3))]:
        assert program._series_terms(t, values, 10) is None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("first", ["gt", "lt"])
@pytest.mark.parametrize("second", ["ge", "le"])
def test_crossovers_equal_numpy(seed: int, first: str, second: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-loop pair (``>`` then ``>=`` once normalised): crossover and crossunder."""
    values = series(seed, 5000)
    t = ("and", (first, ("var", 0), ("var", 1)), (second, ("lag", 9, 0, 1), ("lag", 8, 1, 1)))
    got = np.empty(5000, dtype=np.bool_)
    program.eval_bool(t, values, got)
    np.testing.assert_array_equal(got, by_numpy(t, values, 5000, monkeypatch))
