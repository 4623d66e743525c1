"""The reference interpreter's ``state`` lets: the definition, one bar at a time.

The slow, obvious reading of ``state s = EXPR``: at each bar t, evaluate EXPR over whole
arrays with ``s`` bound to the values found so far (missing — NaN, or False for a boolean
state — from t on) and keep element t. Lags of ``s`` read only bars before t, and the
checker allows nothing but elementwise operators on them, so element t is final. Parts of
EXPR that do not read ``s`` are evaluated once (a cache by node), or this would be
quadratic in the indicators too. A state is a series of the strategy's own bars: its inputs
that read another frame (``x@4h``) meet it there, aligned, by the interpreter's frame rule.
Independent of the compiler's scan body (``engine.scan``): no instruction list, no operand
kinds — the AST, evaluated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..lang import ast
from ..lang.state import mentions

Array = np.ndarray[Any, Any]


def state_values(interp: Any, let: ast.Let, boolean: bool) -> Array:
    """The state's series: ``interp`` is the reference ``_Interpreter`` (its ``lets`` get
    the state under its name while it is computed)."""
    from .reference import Val

    size = interp.size
    values: Array = np.zeros(size, dtype=bool) if boolean else np.full(size, np.nan)
    interp.lets[let.name] = Val(values, "")
    fixed: dict[int, Any] = {}
    original = interp.evaluate

    def evaluate(expr: ast.Expr) -> Any:
        if mentions(let.name, expr):
            return original(expr)
        if id(expr) not in fixed:
            fixed[id(expr)] = original(expr)
        return fixed[id(expr)]

    interp.evaluate = evaluate
    try:
        for t in range(size):
            values[t] = np.asarray(interp.value_of(let.expr))[t]
    finally:
        interp.evaluate = original
    return values
