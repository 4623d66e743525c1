"""The elementwise operators: one table, two faces that compute the same thing.

Each operator has a numexpr template (for expressions over series) and a numpy function (for
constant folding at compile time, for steps over params only, and for ``require`` masks over
whole columns of parameter combinations). Both faces are written with the same formula, so
they agree to the bit; ``tests/compile/test_ops.py`` checks them against each other and
against the checker's pure-Python ``lang.scalar`` on every special value.

The semantics of missing values (docs/language.md, "Missing values"):

* a comparison with NaN is False, and ``a != b`` is exactly ``not (a == b)`` (True with NaN);
* ``a / b`` is NaN when ``b`` is 0 (or missing), never ±inf: ``(a / b) * (b / b)`` — for a
  finite non-zero ``b``, ``b / b`` is exactly 1;
* ``log(x)`` is NaN for ``x <= 0``: ``log(x) * (x / x)``; ``sqrt(x)`` is NaN for ``x < 0``;
* ``min``/``max`` (and ``clip``, lowered to them) are NaN when either operand is NaN;
* ``nz(a, b)`` is ``b`` where ``a`` is NaN, else ``a``.

A template that names an operand more than once would duplicate that operand's text; the
code generator materialises such operands first (``Op.repeated``), so code size stays linear.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def _div(a: Any, b: Any) -> Any:
    return (a / b) * (b / b)


def _log(x: Any) -> Any:
    return np.log(x) * (x / x)


def _min(a: Any, b: Any) -> Any:
    return np.where((a < b) | np.isnan(a), a, b)


def _max(a: Any, b: Any) -> Any:
    return np.where((a > b) | np.isnan(a), a, b)


def _nz(a: Any, b: Any) -> Any:
    return np.where(a != a, b, a)  # noqa: PLR0124 (NaN is the value unequal to itself)


@dataclass(frozen=True, slots=True)
class Op:
    name: str
    template: str  # numexpr text with {0}, {1}, … for the operands
    numpy: Callable[..., Any]
    # Simpler text when operand k is a finite constant (a NaN guard on it is moot); numexpr
    # would otherwise fold the guard itself (``0.5 / 0.5``, ``2.0 != 2.0``) in Python.
    when_const: tuple[tuple[int, str], ...] = ()

    def text(self, args: list[str], constant: list[bool]) -> str:
        """The numexpr text for these operand texts (``constant[k]``: operand k is a finite
        constant printed inline)."""
        for k, template in self.when_const:
            if constant[k]:
                return template.format(*args)
        return self.template.format(*args)

    @property
    def arity(self) -> int:
        return len(set(re.findall(r"\{(\d)\}", self.template)))

    @property
    def repeated(self) -> frozenset[int]:
        """Operands the template names more than once."""
        found = re.findall(r"\{(\d)\}", self.template)
        return frozenset(int(i) for i in set(found) if found.count(i) > 1)


_TABLE = (
    Op("add", "({0} + {1})", np.add),
    Op("sub", "({0} - {1})", np.subtract),
    Op("mul", "({0} * {1})", np.multiply),
    Op("div", "(({0} / {1}) * ({1} / {1}))", _div, ((1, "({0} / {1})"),)),
    Op("neg", "(-{0})", np.negative),
    Op("lt", "({0} < {1})", np.less),
    Op("le", "({0} <= {1})", np.less_equal),
    Op("gt", "({0} > {1})", np.greater),
    Op("ge", "({0} >= {1})", np.greater_equal),
    Op("eq", "({0} == {1})", np.equal),
    Op("ne", "({0} != {1})", np.not_equal),
    Op("and", "({0} & {1})", np.logical_and),
    Op("or", "({0} | {1})", np.logical_or),
    Op("not", "(~{0})", np.logical_not),
    Op("where", "where({0}, {1}, {2})", np.where),
    Op("abs", "abs({0})", np.abs),
    Op("log", "(log({0}) * ({0} / {0}))", _log),  # never constant: folded
    Op("sqrt", "sqrt({0})", np.sqrt),
    Op("min", "where((({0} < {1}) | ({0} != {0})), {0}, {1})", _min,
       ((0, "where(({0} < {1}), {0}, {1})"),)),
    Op("max", "where((({0} > {1}) | ({0} != {0})), {0}, {1})", _max,
       ((0, "where(({0} > {1}), {0}, {1})"),)),
    Op("nz", "where(({0} != {0}), {1}, {0})", _nz, ((0, "{0}"),)),
)

OPS: dict[str, Op] = {op.name: op for op in _TABLE}


def apply(op: str, *args: Any) -> Any:
    """``op`` on numpy scalars or arrays, floating-point warnings silenced (NaN is data)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return OPS[op].numpy(*args)


def fold(op: str, *values: float | bool) -> float | bool:
    """The value of ``op`` on constants, exactly as the evaluator would compute it."""
    args = [np.bool_(v) if isinstance(v, bool) else np.float64(v) for v in values]
    result = np.asarray(apply(op, *args))
    if result.dtype == np.bool_:
        return bool(result)
    return float(result)
