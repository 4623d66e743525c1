"""The operator table's faces agree: numexpr template, numpy function and the checker's
pure-Python arithmetic (``lang.scalar``), on every pair of special values."""

from __future__ import annotations

import itertools
import math

import numexpr as ne
import numpy as np
import pytest

from peakdsl.compile.ops import OPS, apply, fold
from peakdsl.lang import ast
from peakdsl.lang.scalar import eval_scalar

SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, -3.0, 1e-300, 1e300, math.nan]
NUMERIC = ["add", "sub", "mul", "div", "lt", "le", "gt", "ge", "eq", "ne", "min", "max"]
UNARY = ["neg", "abs", "log", "sqrt"]
SCALAR_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "lt": "<", "le": "<=",
                 "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def same(a: object, b: object) -> bool:
    x, y = float(a), float(b)  # type: ignore[arg-type]
    return (math.isnan(x) and math.isnan(y)) or x == y


def numexpr_value(op: str, *args: float) -> object:
    names = [f"n{i}" for i in range(len(args))]
    local = {n: np.array([v]) for n, v in zip(names, args, strict=True)}
    return ne.evaluate(OPS[op].template.format(*names), local_dict=local, global_dict={})[0]


@pytest.mark.parametrize("op", NUMERIC)
def test_binary_faces_agree(op: str) -> None:
    for a, b in itertools.product(SPECIAL, SPECIAL):
        want = apply(op, np.float64(a), np.float64(b))
        assert same(numexpr_value(op, a, b), want), (op, a, b)
        assert same(fold(op, a, b), want), (op, a, b)
        if op in SCALAR_BINARY:
            expr = ast.Binary(SCALAR_BINARY[op], _num(a), _num(b))
            assert same(eval_scalar(expr, {}), want), (op, a, b)


@pytest.mark.parametrize("op", UNARY)
def test_unary_faces_agree(op: str) -> None:
    for a in SPECIAL:
        want = apply(op, np.float64(a))
        assert same(numexpr_value(op, a), want), (op, a)
        if op in ("log", "sqrt", "abs"):
            expr = ast.Call(op, (_num(a),))
            assert same(eval_scalar(expr, {}), want), (op, a)


def test_missing_value_rules() -> None:
    nan = math.nan
    assert math.isnan(fold("div", 1.0, 0.0)) and math.isnan(fold("div", 0.0, 0.0))
    assert math.isnan(fold("log", 0.0)) and math.isnan(fold("log", -1.0))
    assert math.isnan(fold("min", nan, -3.0)) and math.isnan(fold("min", -3.0, nan))
    assert math.isnan(fold("max", nan, -3.0)) and math.isnan(fold("max", -3.0, nan))
    assert fold("ne", nan, 1.0) is True and fold("eq", nan, 1.0) is False
    assert fold("lt", nan, 1.0) is False and fold("ge", nan, 1.0) is False
    assert fold("not", True) is False  # a boolean, never numexpr's integer -2


def test_repeated_operands_are_known() -> None:
    assert OPS["div"].repeated == frozenset({1})
    assert OPS["min"].repeated == frozenset({0, 1})
    assert OPS["add"].repeated == frozenset()


def _num(v: float) -> ast.Expr:
    if math.isnan(v):
        zero = ast.Number(0.0, True, "0")
        return ast.Binary("/", zero, zero)
    number = ast.Number(abs(v), False, repr(abs(v)))
    return ast.Neg(number) if math.copysign(1.0, v) < 0 else number
