"""Window and lag arithmetic: whole-number expressions over int literals and int params.

A window or a lag may be computed from params — ``highest(high, 2 * n)``, ``x[n + 1]``,
``max(n - 5, 1)`` — with ``+``, ``-``, ``*``, unary minus, parentheses and ``min``/``max``
of two, over int literals and ``int`` params. No ``/``: a quotient of whole numbers is not
one, and the language has no integer division.

Such a value must be proven in range — a window from the built-in's least window up to
``MAX_WINDOW``, a lag at least 0 — for *every* value its params may take, because `--set`
overrides and sweeps may pick any value on a param's declared grid. The proof is interval
arithmetic (``bounds``): each operator is monotone in each operand (``*`` is bilinear), so
over a box of operand ranges its extremes lie at corners, reached with every param at one
end of its grid. When each param occurs once the bound is therefore attained, and the params
that attain it are the counterexample a refusal names. A param written twice (``n - n``)
makes the bound loose; then the grid itself is searched (``extreme``) while it is small
(``SEARCH_LIMIT`` points), and beyond that the checker refuses what it cannot prove.

The evaluators compute the value per params set in exact arithmetic: the compiled graph as a
scalar step over params (``engine.program``), the reference interpreter in Python ints
(``engine.reference``). ``lookback`` turns the expression into the symbolic warm-up form.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product

from . import ast
from .lookback import Linear, Lookback

INT_OPS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
}
INT_CALLS: dict[str, Callable[[int, int], int]] = {"min": min, "max": max}
SEARCH_LIMIT = 10_000  # grid points searched when interval arithmetic is not tight
ARITHMETIC = "int literals and int params, `+ - *`, `min`/`max` of two (`2 * n`, `n + 1`)"


@dataclass(frozen=True, slots=True)
class Grid:
    """An int param's values: ``low``, ``low + step``, … up to the last on-step value."""

    low: int
    high: int  # the last value on the grid (a declared upper bound may lie off it)
    step: int

    def values(self) -> range:
        return range(self.low, self.high + 1, self.step)


def grid(low: float, high: float, step: float | None) -> Grid:
    """The grid of a param declared ``low..high step step`` (an int param steps by 1)."""
    size = round(step) if step and step >= 1 else 1
    lo = round(low)
    return Grid(lo, lo + max(0, math.floor((round(high) - lo) / size)) * size, size)


@dataclass(frozen=True, slots=True)
class End:
    """One end of an expression's range and the param values that reach it."""

    value: int
    at: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Bounds:
    low: End
    high: End


@dataclass(frozen=True, slots=True)
class Breach:
    """Where a window or lag leaves its range: its value at params ``at``; ``at`` None when
    the grid was too large to search and ``value`` is only the interval bound."""

    value: int
    at: Mapping[str, int] | None


# ---------------------------------------------------------------- structure


def not_integral(expr: ast.Expr, int_params: Mapping[str, object]) -> ast.Expr | None:
    """The first part of ``expr`` that is not whole-number arithmetic over int literals and
    ``int_params``; None when all of it is."""
    match expr:
        case ast.Number(is_int=True):
            return None
        case ast.Name(id=name) if name in int_params:
            return None
        case ast.Neg(operand=operand):
            return not_integral(operand, int_params)
        case ast.Binary(op=op, left=a, right=b) if op in INT_OPS:
            return not_integral(a, int_params) or not_integral(b, int_params)
        case ast.Call(func=func, args=(a, b)) if func in INT_CALLS:
            return not_integral(a, int_params) or not_integral(b, int_params)
    return expr


def names(expr: ast.Expr) -> set[str]:
    """Every name ``expr`` reads (for an integral expression: its params)."""
    match expr:
        case ast.Name(id=name):
            return {name}
        case ast.Neg(operand=operand):
            return names(operand)
        case ast.Binary(left=a, right=b):
            return names(a) | names(b)
        case ast.Call(args=args):
            return set().union(*(names(a) for a in args))
    return set()


def value(expr: ast.Expr, values: Mapping[str, int]) -> int:
    """The value of an integral expression for int param ``values``, in Python ints."""
    match expr:
        case ast.Number(value=number):
            return int(number)
        case ast.Name(id=name):
            return values[name]
        case ast.Neg(operand=operand):
            return -value(operand, values)
        case ast.Binary(op=op, left=a, right=b):
            return INT_OPS[op](value(a, values), value(b, values))
        case ast.Call(func=func, args=(a, b)):
            return INT_CALLS[func](value(a, values), value(b, values))
    raise TypeError(f"not int arithmetic: {type(expr).__name__}")


# how tightly each form binds, for ``text``: sums, products, negation, atoms
_SUM, _PRODUCT, _UNARY, _ATOM = range(4)
_LEVEL = {"+": _SUM, "-": _SUM, "*": _PRODUCT}


def text(expr: ast.Expr, least: int = _SUM) -> str:
    """An integral expression as the spec would write it, parenthesised only where needed
    (messages name the window by it)."""
    level, out = _ATOM, ""
    match expr:
        case ast.Number(text=written):
            out = written
        case ast.Name(id=name):
            out = name
        case ast.Neg(operand=operand):
            level, out = _UNARY, "-" + text(operand, _UNARY)
        case ast.Binary(op=op, left=a, right=b):
            level = _LEVEL[op]
            out = f"{text(a, level)} {op} {text(b, level + 1)}"
        case ast.Call(func=func, args=args):
            out = f"{func}({', '.join(text(a) for a in args)})"
    return f"({out})" if level < least else out


# ---------------------------------------------------------------- the proof


def bounds(expr: ast.Expr, grids: Mapping[str, Grid]) -> Bounds:
    """Interval arithmetic: a lower and an upper bound of ``expr`` over the params' grids,
    each with the param values that reach it when every param occurs once."""
    match expr:
        case ast.Number(value=number):
            end = End(int(number), {})
            return Bounds(end, end)
        case ast.Name(id=name):
            g = grids[name]
            return Bounds(End(g.low, {name: g.low}), End(g.high, {name: g.high}))
        case ast.Neg(operand=operand):
            inner = bounds(operand, grids)
            return Bounds(End(-inner.high.value, inner.high.at),
                          End(-inner.low.value, inner.low.at))
        case ast.Binary(op=op, left=a, right=b):
            return _corners(INT_OPS[op], bounds(a, grids), bounds(b, grids))
        case ast.Call(func=func, args=(a, b)):
            return _corners(INT_CALLS[func], bounds(a, grids), bounds(b, grids))
    raise TypeError(f"not int arithmetic: {type(expr).__name__}")


def _corners(fn: Callable[[int, int], int], a: Bounds, b: Bounds) -> Bounds:
    """``fn`` is monotone in each operand, or bilinear (``*``): its extremes over the box of
    the operands' ranges lie at its corners."""
    ends = [End(fn(x.value, y.value), {**x.at, **y.at})
            for x in (a.low, a.high) for y in (b.low, b.high)]
    return Bounds(min(ends, key=lambda e: e.value), max(ends, key=lambda e: e.value))


def extreme(expr: ast.Expr, grids: Mapping[str, Grid], lowest: bool) -> End | None:
    """The exact least (``lowest``) or greatest value of ``expr`` over its params' grids and
    params where it is reached; None if the interval bound is not attained and the grid is
    larger than ``SEARCH_LIMIT`` points."""
    bound = bounds(expr, grids)
    end = bound.low if lowest else bound.high
    at = {name: end.at.get(name, grids[name].low) for name in sorted(names(expr))}
    if value(expr, at) == end.value:
        return End(end.value, at)
    return _search(expr, grids, lowest)


def _search(expr: ast.Expr, grids: Mapping[str, Grid], lowest: bool) -> End | None:
    used = sorted(names(expr))
    if math.prod(len(grids[n].values()) for n in used) > SEARCH_LIMIT:
        return None
    best: End | None = None
    for point in product(*(grids[n].values() for n in used)):
        at = dict(zip(used, point, strict=True))
        found = value(expr, at)
        if best is None or (found < best.value if lowest else found > best.value):
            best = End(found, at)
    return best


def breach(expr: ast.Expr, grids: Mapping[str, Grid], limit: int, lowest: bool
           ) -> Breach | None:
    """Where ``expr`` falls below ``limit`` (``lowest``) or rises above it for some params on
    their grids; None when it provably never does."""
    bound = bounds(expr, grids)
    end = bound.low if lowest else bound.high
    if (end.value >= limit) if lowest else (end.value <= limit):
        return None
    found = extreme(expr, grids, lowest)
    if found is None:
        return Breach(end.value, None)
    inside = found.value >= limit if lowest else found.value <= limit
    return None if inside else Breach(found.value, found.at)


def show_at(at: Mapping[str, int]) -> str:
    """``n = 1, m = 5``: the params of a counterexample."""
    return ", ".join(f"{name} = {v}" for name, v in sorted(at.items()))


# ---------------------------------------------------------------- warm-up


def lookback(expr: ast.Expr, grids: Mapping[str, Grid]) -> Lookback:
    """The window or lag as a symbolic lookback: exact where it is a maximum of polynomial
    forms (``Lookback``) in params that are never negative — what the form algebra assumes —
    otherwise its greatest value over the grids, a constant upper bound marked inexact."""
    if all(grids[name].low >= 0 for name in names(expr)):
        found = _symbolic(expr)
        if found is not None:
            return found
    return Lookback((Linear(bounds(expr, grids).high.value),), exact=False)


def _symbolic(expr: ast.Expr) -> Lookback | None:
    match expr:
        case ast.Number(value=number):
            return Lookback.const(int(number))
        case ast.Name(id=name):
            return Lookback.param(name)
        case ast.Neg(operand=operand):
            inner = _symbolic(operand)
            return None if inner is None else inner.negated()
        case ast.Binary(op=op, left=a, right=b):
            left, right = _symbolic(a), _symbolic(b)
            return None if left is None or right is None else _SYMBOLIC[op](left, right)
        case ast.Call(func=func, args=(a, b)):
            left, right = _symbolic(a), _symbolic(b)
            if left is None or right is None:
                return None
            both = left.max(right)  # `min` is at most the larger one: a bound, not exact
            return both if func == "max" else dataclasses.replace(both, exact=False)
    return None


def _minus(a: Lookback, b: Lookback) -> Lookback | None:
    negated = b.negated()
    return None if negated is None else a + negated


_SYMBOLIC: dict[str, Callable[[Lookback, Lookback], Lookback | None]] = {
    "+": lambda a, b: a + b, "-": _minus, "*": lambda a, b: a.times(b),
}
