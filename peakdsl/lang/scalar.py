"""A tiny evaluator for constant expressions over params (``require`` constraints).

Used at check time on defaults and overrides. It interprets the AST directly with Python
arithmetic: no ``eval``, and anything that is not a constant expression is refused.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping

from . import ast


class ScalarError(Exception):
    """The expression is not a constant expression over the given values."""


Scalar = float | bool

BINARY: dict[str, Callable[[float, float], Scalar]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
    "/": lambda a, b: a / b if b else math.nan,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
FUNCTIONS: dict[str, Callable[..., float]] = {
    "abs": abs, "min": min, "max": max, "sqrt": math.sqrt, "log": math.log,
    "clip": lambda x, lo, hi: min(max(x, lo), hi),
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
