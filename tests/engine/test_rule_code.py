"""Rule code (engine/rule_code.py) means what numpy's evaluation of the same tree means.

Random comparison / logic trees over float series with gaps, bool series, lags read as
views (NaN / False before their first bar), params and constants: ``write_rows`` (event by
event through ``first_fire``) must give exactly ``program.eval_bool``'s rows, and
``first_fire`` from any start the first bar where those rows hold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from peakdsl.engine.program import eval_bool
from peakdsl.engine.rule_code import (
    CONST,
    FLAGS,
    INTERPRETED,
    ROW,
    SERIES,
    SERIES_TERMS,
    TERMS,
    TRUTH_OF_ROW,
    Leaf,
    Operand,
    Template,
    Unsupported,
    fill,
    first_fire,
    form,
    layout,
    template,
    write_rows,
)

N = 120
FLOATS = (0, 1, 2)  # nodes holding float series (with NaN gaps)
BOOLS = (3, 4)  # nodes holding bool series
SCALARS = {5: np.float64(0.25), 6: np.bool_(True)}  # a param and a folded bool


def values(rng: np.random.Generator) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for node in FLOATS:
        x = np.round(rng.normal(0, 1, N), 1)  # rounded: ties happen, `==` gets exercised
        x[rng.random(N) < 0.08] = np.nan
        out[node] = x
    for node in BOOLS:
        out[node] = rng.random(N) < 0.4
    out.update(SCALARS)
    return out


def leaf(rng: np.random.Generator, numeric: bool) -> tuple[Any, ...]:
    """A leaf for a comparison (numeric) or for a logic position (bool)."""
    pick = int(rng.integers(4))
    pool = FLOATS if numeric else BOOLS
    node = int(rng.choice(pool))
    if pick == 0:  # a lag by a constant window, read as a view of its target
        return ("lag", 100 + node, node, int(rng.integers(1, 4)))
    if pick == 1:
        if numeric:
            return ("const", float(rng.choice([-0.5, 0.0, 0.3])))
        return ("var", 6)
    if pick == 2 and numeric:
        return ("var", 5)
    return ("var", node)


def tree(rng: np.random.Generator, depth: int, root: bool = True) -> tuple[Any, ...]:
    """A random BoolTree: comparisons of leaves (a bool one now and then: numpy compares
    it as 0 / 1), logic over subtrees and bool leaves; never a bare leaf at the root (a
    rule's tree never is one, see ``program.bool_tree``)."""
    kind = int(rng.integers(5)) if depth > 0 else int(rng.integers(2))
    if kind == 0 or (kind == 1 and root):
        op = str(rng.choice(["lt", "le", "gt", "ge", "eq", "ne"]))
        return (op, leaf(rng, bool(rng.integers(4))), leaf(rng, bool(rng.integers(4))))
    if kind == 1:
        return leaf(rng, False)
    if kind == 2:
        return ("not", tree(rng, depth - 1, False))
    return (str(rng.choice(["and", "or"])), tree(rng, depth - 1, False),
            tree(rng, depth - 1, False))


class Operands:
    """Resolve leaves the way the sweep does: series and bool rows, shifted for lags."""

    def __init__(self, vals: dict[int, Any]) -> None:
        self.vals = vals
        self.series: list[np.ndarray] = []
        self.flags: list[np.ndarray] = []
        self.consts: list[float] = []

    def __call__(self, item: Leaf) -> Operand:
        if item[0] == "lag":
            kind, index, _ = self(("var", item[2]))
            return kind, index, int(item[3])
        value = item[1] if item[0] == "const" else self.vals[item[1]]
        if np.ndim(value) == 0:
            self.consts.append(float(value))
            return CONST, len(self.consts) - 1, 0
        target = self.flags if value.dtype == np.bool_ else self.series
        target.append(value)
        return (FLAGS if value.dtype == np.bool_ else SERIES), len(target) - 1, 0

    def matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        series = np.array(self.series).reshape(-1, N)
        flags = np.array(self.flags, dtype=np.bool_).reshape(-1, N)
        return series, flags, np.array([*self.consts, 0.0])


def encode(trees: list[tuple[Any, ...] | None], vals: dict[int, Any]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    templates: list[Template | None] = [None if t is None else template(t) for t in trees]
    code, spans = layout(templates)
    operands = Operands(vals)
    fill(code, spans, templates, operands)
    return (code, spans, *operands.matrices())


def expected(t: tuple[Any, ...], vals: dict[int, Any]) -> np.ndarray:
    out = np.empty(N, dtype=np.bool_)
    eval_bool(t, vals, out)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_rule_code_equals_numpy_on_random_trees(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vals = values(rng)
    trees = [tree(rng, int(rng.integers(0, 4))) for _ in range(24)]
    code, spans, series, flags, consts = encode(list(trees), vals)
    rows = np.empty((len(trees), N), dtype=np.bool_)
    write_rows(code, spans, series, flags, consts, rows)
    for i, t in enumerate(trees):
        want = expected(t, vals)
        np.testing.assert_array_equal(rows[i], want, err_msg=str(t))
        shape, head = form(code, spans[i, 0], spans[i, 1])
        for start in rng.integers(0, N, 5).tolist():
            stop = int(rng.integers(start, N + 1))
            hits = np.flatnonzero(want[start:stop])
            first = start + int(hits[0]) if hits.size else stop
            assert first_fire(code, spans[i, 0], spans[i, 1], shape, head, series, flags,
                              consts, start, stop) == first, t


def test_crossover_takes_the_tight_loop_and_agrees() -> None:
    """A crossover and a threshold crossing are the shapes the sweep meets most: their
    form is a comparison pair (all series, or with a constant), and they agree too."""
    rng = np.random.default_rng(7)
    vals = values(rng)
    cross = ("and", ("gt", ("var", 0), ("var", 1)), ("le", ("lag", 100, 0, 1),
                                                     ("lag", 101, 1, 1)))
    level = ("and", ("lt", ("var", 2), ("const", 0.0)), ("ge", ("lag", 102, 2, 1),
                                                          ("const", 0.0)))
    code, spans, series, flags, consts = encode([cross, level], vals)
    assert form(code, spans[0, 0], spans[0, 1]) == (SERIES_TERMS, 1)
    assert form(code, spans[1, 0], spans[1, 1]) == (TERMS, 1)
    rows = np.empty((2, N), dtype=np.bool_)
    write_rows(code, spans, series, flags, consts, rows)
    np.testing.assert_array_equal(rows[0], expected(cross, vals))
    np.testing.assert_array_equal(rows[1], expected(level, vals))
    assert rows.any(axis=1).all()  # something was compared


def test_forms_and_absent_slots() -> None:
    vals = values(np.random.default_rng(1))
    row_template = Template(TRUTH_OF_ROW.ops, tuple((r, c, ("var", 3))
                                                    for r, c, _ in TRUTH_OF_ROW.holes))
    templates: list[Template | None] = [row_template, None, template(("not", ("var", 4)))]
    code, spans = layout(templates)
    operands = Operands(vals)
    fill(code, spans, templates, operands)
    series, flags, consts = operands.matrices()
    assert form(code, spans[0, 0], spans[0, 1]) == (ROW, 0)
    assert form(code, spans[2, 0], spans[2, 1])[0] == INTERPRETED
    assert spans[1, 0] == spans[1, 1]  # an unused slot has no code and never fires
    assert first_fire(code, spans[1, 0], spans[1, 1], INTERPRETED, 0, series, flags, consts,
                      0, N) == N
    assert first_fire(code, spans[0, 0], spans[0, 1], ROW, 0, series, flags, consts, 0,
                      N) == int(np.argmax(vals[3]))


def test_a_comparison_of_sub_expressions_is_not_code() -> None:
    with pytest.raises(Unsupported):
        template(("eq", ("gt", ("var", 0), ("var", 1)), ("var", 3)))
    with pytest.raises(Unsupported):
        template(("xor", ("var", 3), ("var", 4)))
