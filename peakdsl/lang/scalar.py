"""A tiny evaluator for constant expressions over params (``require`` constraints).

Used at check time on defaults and overrides, and to find constant sub-expressions that
have no value (``1 / 0``). It interprets the AST directly with Python arithmetic: no
``eval``, and anything that is not a constant expression is refused. The arithmetic is the
engine's (``compile/ops.py``; a test holds the two together): division by zero, ``log`` of
``x <= 0`` and ``sqrt`` of ``x < 0`` are NaN; ``min``/``max``/``clip`` are NaN when an
operand is; comparisons with NaN are False except ``!=``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping

from . import ast


class ScalarError(Exception):
    """The expression is not a constant expression over the given values."""


Scalar = float | bool

def _div(a: float, b: float) -> float:
    return a / b if b != 0 and math.isfinite(b) else math.nan


def _log(x: float) -> float:
    return math.log(x) if x > 0 and math.isfinite(x) else math.nan


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


def _min(a: float, b: float) -> float:
    return a if a < b or math.isnan(a) else b


def _max(a: float, b: float) -> float:
    return a if a > b or math.isnan(a) else b


BINARY: dict[str, Callable[[float, float], Scalar]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _div,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
FUNCTIONS: dict[str, Callable[..., float]] = {
    "abs": abs, "min": _min, "max": _max, "sqrt": _sqrt, "log": _log,
    "clip": lambda x, lo, hi: _min(_max(x, lo), hi),
}


def eval_scalar(expr: ast.Expr, values: Mapping[str, float]) -> Scalar:
    """Value of a constant expression; raises ``ScalarError`` on series or unknown names."""
    match expr:
        case ast.Number(value=v) | ast.Percent(value=v) | ast.Bps(value=v):
            return v
        case ast.Bool(value=b):
            return b
        case ast.Name(id=name):
            if name not in values:
                raise ScalarError(name)
            return values[name]
        case ast.Neg(operand=o):
            return -eval_scalar(o, values)
        case ast.Not(operand=o):
            return not eval_scalar(o, values)
        case ast.Binary(op="and", left=a, right=b):
            return bool(eval_scalar(a, values)) and bool(eval_scalar(b, values))
        case ast.Binary(op="or", left=a, right=b):
            return bool(eval_scalar(a, values)) or bool(eval_scalar(b, values))
        case ast.Binary(op=op, left=a, right=b):
            return BINARY[op](eval_scalar(a, values), eval_scalar(b, values))
        case ast.IfElse(cond=c, then=t, orelse=e):
            return eval_scalar(t if eval_scalar(c, values) else e, values)
        case ast.Call(func=f, args=args) if f in FUNCTIONS:
            try:
                return FUNCTIONS[f](*(eval_scalar(a, values) for a in args))
            except (ValueError, TypeError) as exc:
                raise ScalarError(f) from exc
    raise ScalarError(type(expr).__name__)


def constant_value(expr: ast.Expr) -> Scalar | None:
    """The value of a constant expression (no params, no series), else None."""
    try:
        return eval_scalar(expr, {})
    except (ScalarError, OverflowError):
        return None
