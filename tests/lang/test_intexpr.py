"""Window and lag arithmetic (``lang/intexpr.py``) and the lookback forms it makes.

Every bound and extreme is checked against brute force over the params' grids (Python ints,
written out here), and every symbolic lookback against the expression's value at each grid
point, so the interval arithmetic never answers for itself.
"""

from __future__ import annotations

from itertools import product

import pytest

from peakdsl.lang import ast
from peakdsl.lang.intexpr import (
    SEARCH_LIMIT,
    Grid,
    bounds,
    breach,
    extreme,
    grid,
    lookback,
    names,
    not_integral,
    show_at,
    text,
    value,
)
from peakdsl.lang.lookback import Linear, Lookback, _dominating
from peakdsl.lang.parser import parse_text

GRIDS = {"n": grid(1, 20, None), "m": grid(2, 10, 2), "k": grid(-3, 3, None),
         "z": grid(0, 5, None)}


def expr(source: str) -> ast.Expr:
    """The expression ``source`` as the parser builds it (the right side of a let)."""
    parsed = parse_text(f"strategy s {{\n let v = {source}\n}}\n")
    assert parsed.module is not None, parsed.diagnostics
    let = parsed.module.decl.items[0]
    assert isinstance(let, ast.Let)
    return let.expr


def points(e: ast.Expr) -> list[dict[str, int]]:
    used = sorted(names(e))
    return [dict(zip(used, p, strict=True)) for p in product(*(GRIDS[n].values() for n in used))]


def brute(e: ast.Expr) -> tuple[int, int]:
    found = [value(e, at) for at in points(e)]
    return min(found), max(found)


def test_grid_ends_on_the_last_value_on_step() -> None:
    assert grid(1, 10, 4) == Grid(1, 9, 4) and list(grid(1, 10, 4).values()) == [1, 5, 9]
    assert grid(2, 10, 2).values() == range(2, 11, 2)
    assert grid(5, 5, None) == Grid(5, 5, 1)
    assert grid(5, 1, None).values() == range(5, 6)  # an empty range (T007) stays one point


@pytest.mark.parametrize("source", [
    "2", "n", "2 * n", "n + 3", "n - 1", "(n + 1) * 2", "n * m", "m - n", "-n", "-(1 - n) * m",
    "max(n - 2, 1)", "min(n, m) + 1", "k * n", "k * k", "n - n", "2 * n - m * k", "-k * -k",
])
def test_extremes_equal_brute_force_with_a_witness(source: str) -> None:
    e = expr(source)
    least, most = brute(e)
    low, high = extreme(e, GRIDS, lowest=True), extreme(e, GRIDS, lowest=False)
    assert low is not None and high is not None
    assert (low.value, high.value) == (least, most)
    assert value(e, low.at) == least and value(e, high.at) == most
    b = bounds(e, GRIDS)
    assert b.low.value <= least and b.high.value >= most  # always a sound bound


def test_interval_bounds_are_attained_when_each_param_occurs_once() -> None:
    e = expr("n * m - 3 * z + max(k, 1)")
    b = bounds(e, GRIDS)
    assert (b.low.value, b.high.value) == brute(e) == (-12, 203)
    assert value(e, b.low.at) == -12 and value(e, b.high.at) == 203


def test_a_param_written_twice_is_searched_on_its_grid() -> None:
    e = expr("n - n")
    assert bounds(e, GRIDS).low.value == -19  # loose: the two `n` vary independently
    found = extreme(e, GRIDS, lowest=True)
    assert found is not None and found.value == 0
    assert breach(e, GRIDS, 0, lowest=True) is None  # a lag of 0: proven
    wide = {"n": grid(1, SEARCH_LIMIT + 1, None)}
    assert extreme(e, wide, lowest=True) is None  # too large to search: not decided
    unproven = breach(e, wide, 0, lowest=True)
    assert unproven is not None and unproven.at is None and unproven.value == -SEARCH_LIMIT


@pytest.mark.parametrize(("source", "limit", "lowest", "found"), [
    ("2 * n - 2", 1, True, (0, {"n": 1})),
    ("m - n", 0, True, (-18, {"m": 2, "n": 20})),
    ("n * m", 150, False, (200, {"m": 10, "n": 20})),
    ("-1", 0, True, (-1, {})),
])
def test_breach_names_the_params_that_leave_the_range(
        source: str, limit: int, lowest: bool, found: tuple[int, dict[str, int]]) -> None:
    got = breach(expr(source), GRIDS, limit, lowest)
    assert got is not None and (got.value, dict(got.at or {})) == found


def test_breach_is_none_when_proven() -> None:
    assert breach(expr("2 * n"), GRIDS, 2, lowest=True) is None
    assert breach(expr("n * m"), GRIDS, 200, lowest=False) is None
    assert show_at({"n": 1, "m": 5}) == "m = 5, n = 1"


@pytest.mark.parametrize(("source", "bad"), [
    ("2 * n", None), ("max(n, 2) - -1", None), ("n / 2", "n / 2"), ("2 * x", "x"),
    ("n + 1.5", "1.5"), ("sma(close, 2)", "sma(close, 2)"), ("min(n, 1, 2)", "min(n, 1, 2)"),
    ("close", "close"),
])
def test_not_integral_finds_the_first_part_that_is_not(source: str, bad: str | None) -> None:
    part = not_integral(expr(source), {"n": 1})
    assert (part is None) == (bad is None)
    if part is not None:
        assert part == expr(bad or "")


@pytest.mark.parametrize("source", ["2 * n", "(n + 1) * 2", "n - (m - 1)", "-(1 - n) * m",
                                    "max(n - 2, 1)", "2 * -n", "-n * m", "n - m - 1"])
def test_text_reads_back_as_the_same_expression(source: str) -> None:
    e = expr(source)
    assert expr(text(e)) == e
    assert text(e) == source


# ---------------------------------------------------------------- lookbacks


@pytest.mark.parametrize(("source", "forms", "exact"), [
    ("2 * n", "2*n", True),
    ("n + 3", "n + 3", True),
    ("m - n + 20", "m - n + 20", True),
    ("n * m", "m*n", True),
    ("(n + 1) * (m - 1)", "m + m*n - n - 1", True),
    ("max(n - 2, m)", "max(m, n - 2)", True),
    ("3 * max(n, m)", "max(3*m, 3*n)", True),
    ("min(n, m)", "max(m, n)", False),  # bounded by the larger one
    ("k + 10", "13", False),  # k may be negative: the greatest value, as a constant
    ("n - max(m, 2)", "18", False),  # minus a maximum: not a form; its greatest value
])
def test_lookback_of_window_arithmetic(source: str, forms: str, exact: bool) -> None:
    e = expr(source)
    lb = lookback(e, GRIDS)
    assert (lb.text(), lb.exact) == (forms, exact)
    for at in points(e):
        want = max(0, value(e, at))
        got = lb.evaluate({k: float(v) for k, v in at.items()})
        assert got == want if exact else got >= want


def test_polynomial_product_and_negation_of_forms() -> None:
    a = Linear(1, (("n", 2),))  # 2n + 1
    b = Linear(-1, (("m", 1), ("n", 1)))  # m + n - 1
    product_ = a.times(b)
    for n, m in product(range(4), range(4)):
        params = {"n": float(n), "m": float(m)}
        assert product_.evaluate(params) == (2 * n + 1) * (m + n - 1)
    assert product_.text() == "m + 2*m*n - n + 2*n*n - 1"
    assert Lookback.param("n").max(Lookback.const(2)).negated() is None
    negated = Lookback.param("n").negated()
    assert negated is not None and negated.text() == "-n"
    scaled = Lookback.param("n").max(Lookback.const(2)).times(Lookback.const(3))
    assert scaled is not None and scaled.text() == "max(6, 3*n)"
    assert Lookback.param("n").max(Lookback.const(2)).times(Lookback.param("m")) is None


def test_the_dominating_form_bounds_negative_coefficients_and_monomials() -> None:
    forms = [Linear(5, (("n", -1),)), Linear(0, (("m*n", 2),)), Linear(-3, (("m", 4),))]
    top = _dominating(forms)
    for n, m in product(range(6), range(6)):
        params = {"n": float(n), "m": float(m)}
        assert all(top.evaluate(params) >= f.evaluate(params) for f in forms)
