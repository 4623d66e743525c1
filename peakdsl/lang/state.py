"""Checking ``state`` lets: recursive series, causal by construction.

``state trail = max(nz(trail[1], line), line)`` defines a series that reads its own past.
What makes it causal, and what the compiler's scan kernel (``engine.scan``) can run, is
checked here:

* the state reads itself only through a lag of at least one bar written as a literal
  (``trail[1]``, ``trail[3]``): reading ``trail`` at the bar being defined is a cycle
  (L004), and the lag fixes how much past the scan keeps, so it cannot vary with a param
  (T017);
* its past only meets elementwise operations — arithmetic, comparisons, logic, ``if``,
  ``abs`` ``log`` ``sqrt`` ``min`` ``max`` ``clip`` ``nz`` — never a window or a recursive
  indicator (``sma(trail[1], 5)``) nor a lag of a larger expression (``(trail + 1)[1]``):
  those would need the whole series before the bar is known (T018).

The state's unit is inferred by reading its past as a plain number first (it adapts to the
other side, as a literal does), then checking the unit found holds when the past is read
with it; a state that is true/false throughout (a latch) is read as a boolean. The past
before the first bar is missing (NaN), or False for a boolean state.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import ast
from .builtins import BUILTINS
from .typecheck import ExprChecker, Symbol
from .types import NUMERIC, PLAIN, Ty, Unit

MAX_DEPTH = 1_000  # bars of its own past a state may read; beyond it a typo, not a strategy


def self_uses(let: ast.Let) -> Iterator[tuple[str, ast.Expr, str, str]]:
    """Every illegal use of the state's own name: (code, node, message, help)."""
    yield from _visit(let.name, let.expr, True)


def _visit(name: str, expr: ast.Expr, elementwise: bool
           ) -> Iterator[tuple[str, ast.Expr, str, str]]:
    if isinstance(expr, ast.Name) and expr.id == name:
        yield ("L004", expr, f"`{name}` reads its own value at the bar it defines",
               f"read the previous bar's value: `{name}[1]`")
    elif isinstance(expr, ast.Lag) and _is_self(name, expr.target):
        yield from _self_lag(name, expr, elementwise)
    elif isinstance(expr, ast.Lag) and mentions(name, expr.target):
        yield ("T018", expr, f"this lags an expression that reads `{name}`",
               f"lag the state itself: `({name} + 1)[1]` is `{name}[1] + 1`")
    elif isinstance(expr, ast.Call):
        builtin = BUILTINS.get(expr.func)
        inner = elementwise and builtin is not None and builtin.elementwise
        for arg in expr.args:
            yield from _visit(name, arg, inner)
    else:
        for child in ast.children(expr):
            yield from _visit(name, child, elementwise)


def _self_lag(name: str, expr: ast.Lag, elementwise: bool
              ) -> Iterator[tuple[str, ast.Expr, str, str]]:
    if not elementwise:
        yield ("T018", expr, f"`{expr_text(name, expr)}` is used where a whole series is "
               "needed", "a state's past only meets arithmetic, comparisons, logic, `if` and "
               "abs/log/sqrt/min/max/clip/nz; compute the indicator outside the state")
    depth = state_lag(expr)
    if depth is None:
        yield ("T017", expr.lag, f"the lag of `{name}` must be a whole number of bars from 1 "
               f"to {MAX_DEPTH:,} written as a literal",
               f"read the previous bar's value as `{name}[1]`; a state keeps a fixed past")


def _is_self(name: str, expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Name) and expr.id == name


def state_lag(expr: ast.Lag) -> int | None:
    """The bars back a self lag reads, when it is a literal from 1 to ``MAX_DEPTH``."""
    lag = expr.lag
    if isinstance(lag, ast.Number) and lag.is_int and 1 <= lag.value <= MAX_DEPTH:
        return int(lag.value)
    return None


def expr_text(name: str, expr: ast.Lag) -> str:
    depth = state_lag(expr)
    return f"{name}[{depth}]" if depth is not None else f"{name}[…]"


def mentions(name: str, expr: ast.Expr) -> bool:
    """Whether ``expr`` reads the state ``name`` anywhere."""
    return any(isinstance(e, ast.Name) and e.id == name for e in ast.walk(expr))


# ---------------------------------------------------------------- units

def infer_state(exprs: ExprChecker, let: ast.Let) -> Ty | None:
    """The state's type: its past read with the unit of what it meets (``_candidates``: a
    running sum of percentages is a percentage), else as a plain number (adapting to the
    other side), else as a boolean; the unit found must read back the same (``_holds``).
    Errors are those of the numeric reading when none holds."""
    was_used = let.name in exprs.used
    for guess in (*_candidates(exprs, let), Unit.NUMBER, Unit.BOOL):
        ty = _attempt(exprs, let, guess)
        if ty is not None:
            _forget_self_use(exprs, let.name, was_used)
            return ty
    _bind(exprs, let, Unit.NUMBER)
    ty = exprs.infer(let.expr)
    _forget_self_use(exprs, let.name, was_used)
    return ty


def _candidates(exprs: ExprChecker, let: ast.Let) -> list[Unit]:
    """The dimensioned units (price, volume, percentage…) of the largest parts of the
    expression that do not read the state, in order of appearance, found silently."""
    found: list[Unit] = []
    mark = len(exprs.diagnostics)
    todo = [let.expr]
    while todo:
        expr = todo.pop(0)
        if mentions(let.name, expr):
            todo.extend(ast.children(expr))
            continue
        ty = exprs.infer(expr)
        if ty is not None and ty.unit in NUMERIC and ty.unit not in PLAIN and \
                ty.unit not in found:
            found.append(ty.unit)
    del exprs.diagnostics[mark:]
    return found


def _attempt(exprs: ExprChecker, let: ast.Let, guess: Unit) -> Ty | None:
    """The type when reading the past as ``guess`` checks clean and the unit found holds,
    else None with nothing reported."""
    mark = len(exprs.diagnostics)
    _bind(exprs, let, guess)
    ty = exprs.infer(let.expr)
    if ty is not None and len(exprs.diagnostics) == mark and ty.unit is not guess:
        ty = _holds(exprs, let, ty) if guess is Unit.NUMBER and ty.unit in NUMERIC else None
    if ty is None or len(exprs.diagnostics) != mark:
        del exprs.diagnostics[mark:]
        return None
    return Ty(ty.unit, True)


def _holds(exprs: ExprChecker, let: ast.Let, found: Ty) -> Ty | None:
    """``found`` when reading the past with its unit gives that unit back."""
    _bind(exprs, let, found.unit)
    again = exprs.infer(let.expr)
    return again if again is not None and again.unit is found.unit else None


def _bind(exprs: ExprChecker, let: ast.Let, unit: Unit) -> None:
    exprs.symbols[let.name] = Symbol("let", Ty(unit, True), let.name_span)


def _forget_self_use(exprs: ExprChecker, name: str, was_used: bool) -> None:
    """A state reading its own past does not make it used (W002 still applies)."""
    if not was_used:
        exprs.used.discard(name)
