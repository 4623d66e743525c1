"""The scan kernel of ``state`` lets (``engine.scan``): each operator means what
``compile.ops`` says on every special value, the past reads the right bars, and the
bar-by-bar form gives the same doubles as the whole-array kernel."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakdsl.compile.ops import OPS, apply
from peakdsl.engine.scan import OPCODES, ScanState, body_text, parse_body, scan

SPECIAL = (np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.5, 3.0)
PAIRS = list(itertools.product(SPECIAL, repeat=2))
A = np.array([a for a, _ in PAIRS])
B = np.array([b for _, b in PAIRS])
BINARY = ("add", "sub", "mul", "div", "lt", "le", "gt", "ge", "eq", "ne", "min", "max")
UNARY = ("neg", "abs", "log", "sqrt")


def same(x: object, y: object) -> bool:
    return bool(np.array_equal(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                               equal_nan=True))


def one(op: str, *operands: tuple[str, int], consts: tuple[float, ...] = (),
        inputs: int = 2, boolean: bool = False) -> str:
    return body_text([(op, list(operands))], list(consts), inputs, boolean)


@pytest.mark.parametrize("op", BINARY)
def test_binary_operators_are_the_ops_table(op: str) -> None:
    got = scan(A, B, one(op, ("input", 0), ("input", 1)))
    assert same(got, apply(op, A, B))


@pytest.mark.parametrize("op", UNARY)
def test_unary_operators_are_the_ops_table(op: str) -> None:
    got = scan(A, one(op, ("input", 0), inputs=1))
    assert same(got, apply(op, A))


@pytest.mark.parametrize("op", ("and", "or"))
def test_logic_on_booleans(op: str) -> None:
    a, b = np.array([True, True, False, False]), np.array([True, False, True, False])
    got = scan(a, b, one(op, ("input", 0), ("input", 1), boolean=True))
    assert got.tolist() == apply(op, a, b).tolist()
    assert scan(a, one("not", ("input", 0), inputs=1, boolean=True)).tolist() == \
        [False, False, True, True]


def test_where_and_nz() -> None:
    cond = np.array([True, False, True, False])
    a, b = np.array([1.0, 2.0, np.nan, 4.0]), np.array([9.0, 8.0, 7.0, np.nan])
    got = scan(cond, a, b, body_text([("where", [("input", 0), ("input", 1), ("input", 2)])],
                                     [], 3, False))
    assert same(got, apply("where", cond, a, b))
    assert same(scan(a, b, one("nz", ("input", 0), ("input", 1))), [1.0, 2.0, 7.0, 4.0])


def test_a_trailing_maximum_reads_the_bar_before() -> None:
    """``state trail = max(nz(trail[1], line), line)``: the running maximum, NaN until the
    line is defined."""
    text = body_text([("nz", [("self", 1), ("input", 0)]), ("max", [("reg", 0), ("input", 0)])],
                     [], 1, False)
    line = np.array([np.nan, 1.0, 3.0, 2.0, 5.0, 4.0])
    assert same(scan(line, text), [np.nan, 1.0, 3.0, 3.0, 5.0, 5.0])


def test_deeper_past_and_a_running_sum() -> None:
    """``s = nz(s[2], 0) + x``: sums of every other bar; the past before bar 0 is NaN."""
    text = body_text([("nz", [("self", 2), ("const", 0)]), ("add", [("reg", 0), ("input", 0)])],
                     [0.0], 1, False)
    x = np.array([1.0, 10.0, 2.0, 20.0, 3.0])
    assert same(scan(x, text), [1.0, 10.0, 3.0, 30.0, 6.0])
    assert parse_body(text).depth == 2


def test_a_boolean_state_starts_false() -> None:
    """``state armed = if x > 2 then true else armed[1]``: a latch, False before it is set."""
    text = body_text([("gt", [("input", 0), ("const", 0)]),
                      ("where", [("reg", 0), ("const", 1), ("self", 1)])], [2.0, 1.0], 1, True)
    got = scan(np.array([1.0, 0.0, 3.0, 1.0]), text)
    assert got.dtype == np.bool_
    assert got.tolist() == [False, False, True, True]


def test_no_bars_no_values() -> None:
    assert scan(np.zeros(0), one("neg", ("input", 0), inputs=1)).shape == (0,)


# ---------------------------------------------------------------- bar by bar = whole array

OPERAND_KINDS = ("input", "self", "const", "reg")


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, int]:
    """A random body over two inputs: any operator, operands of every kind."""
    size = draw(st.integers(1, 6))
    rows: list[tuple[str, list[tuple[str, int]]]] = []
    for r in range(size):
        op = draw(st.sampled_from(sorted(OPCODES)))
        arity = 3 if op == "where" else 1 if op in ("neg", "not", "abs", "log", "sqrt") else 2
        operands = []
        for _ in range(arity):
            kind = draw(st.sampled_from(OPERAND_KINDS if r else OPERAND_KINDS[:3]))
            bound = {"input": 1, "self": 3, "const": 1, "reg": r - 1}[kind]
            operands.append((kind, draw(st.integers(1 if kind == "self" else 0, bound))))
        rows.append((op, operands))
    return body_text(rows, [0.5, -2.0], 2, draw(st.booleans())), size


values = st.lists(st.sampled_from((*SPECIAL, 0.25, 7.0)), min_size=0, max_size=40)


@settings(max_examples=200, deadline=None)
@given(body=bodies(), xs=values, ys=values)
def test_bar_by_bar_equals_the_whole_array(body: tuple[str, int], xs: list[float],
                                            ys: list[float]) -> None:
    n = min(len(xs), len(ys))
    x, y = np.array(xs[:n]), np.array(ys[:n])
    text, _ = body
    whole = scan(x, y, text)
    state = ScanState(text)
    stepped = [state.push(a, b) for a, b in zip(x, y, strict=True)]
    assert same(whole, np.array(stepped, dtype=whole.dtype))


def test_every_ops_operator_a_body_may_hold_is_known() -> None:
    """The body's operators are the elementwise table's (plus ``nz``), so lowering can put
    any elementwise node of a state's expression into it."""
    assert set(OPS) <= set(OPCODES)
