"""Hypothesis strategies for the differential property: spec SOURCE TEXT and candle data.

Why text and not ASTs: the property ties what `peak check` accepts to what the engine does,
so every example has to travel the user's path — parser, checker, lowering, code
generation — and a regression is a spec a user could have written.

Why typed generation: a random token soup almost never checks clean, and a property that
mostly skips tests nothing. Every production asks for a unit (or a boolean) and a shape
(constant, series, or either) and only combines operands that the checker's own unit
algebra (``peakdsl.lang.types``) and built-in table (``peakdsl.lang.builtins``) accept, so
the generator follows the language when those tables change. What the algebra cannot see
(a division by a constant zero, a ``require`` that the defaults break, unit rules written
outside the tables) is left to the checker: those specs are skipped, and counted.

Why the candle shapes: NaN and infinity come from the data as much as from the spec —
zero-volume runs divide by zero, flat prices give a zero deviation, tiny and huge prices
stress relative tolerances, and frames shorter than the warm-up never leave it. Candles
come as a few runs of bars sharing a move, a gap, wicks and a volume (cheap to draw, and
flat or zero-volume runs come naturally); every choice lists its plainest option first, so
hypothesis shrinks a failure towards one flat run of unit volume.

Choices are drawn by index from cached strategies (``pick``) rather than fresh
``sampled_from`` strategies: a spec takes a hundred choices, and building a strategy for
each one cost more than checking, compiling and running the spec.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from itertools import product
from typing import Any, TypeVar, cast

import pandas as pd
from hypothesis import strategies as st

from peakdsl.lang.builtins import BUILTINS, JOIN, SAME, SOURCES, Arg, Builtin
from peakdsl.lang.types import (
    ARITH,
    FRACTIONS,
    NUMERIC,
    PARAM_TYPES,
    PLAIN,
    Unit,
    UnitError,
    add_units,
)

T = TypeVar("T")

# ---------------------------------------------------------------- the unit algebra, as tables

# Every numeric unit, in declaration order (plain numbers first: hypothesis shrinks a
# choice towards the front of its list).
UNITS = tuple(u for u in Unit if u in NUMERIC)


def _combine(fn: Callable[[Unit, Unit], Unit], a: Unit, b: Unit) -> Unit | None:
    try:
        return fn(a, b)
    except UnitError:
        return None


def _pairs(fn: Callable[[Unit, Unit], Unit]) -> dict[Unit, list[tuple[Unit, Unit]]]:
    """Result unit → every operand pair the checker accepts for it."""
    out: dict[Unit, list[tuple[Unit, Unit]]] = {u: [] for u in UNITS}
    for a, b in product(UNITS, UNITS):
        result = _combine(fn, a, b)
        if result is not None:
            out[result].append((a, b))
    return out


ARITH_PAIRS = {op: _pairs(fn) for op, fn in ARITH.items()}
JOIN_PAIRS = _pairs(add_units)  # `+`, `min`/`max`/`clip`, `if` branches
COMPARABLE = [(a, b) for a, b in product(UNITS, UNITS) if _combine(add_units, a, b) is not None]

# Shapes an expression may take: no market data, market data somewhere, or either.
CONST, ANY, SERIES = "const", "any", "series"

# Precedence levels of the grammar, tightest first; an operand is parenthesised only when
# its level is looser than the slot allows, so the text reads as a person would write it.
ATOM, UNARY, PRODUCT, SUM, COMPARE, NOT, AND, OR, IF = range(9)
BINARY_LEVEL = {"*": PRODUCT, "/": PRODUCT, "+": SUM, "-": SUM, "and": AND, "or": OR}

# Units with constants; the others (prices, volumes, oscillators, …) only exist as series.
LITERALS: dict[Unit, tuple[str, ...]] = {
    Unit.INT: ("1", "2", "0", "3", "10", "-1", "100"),
    Unit.NUMBER: ("0.5", "1.5", "2.25", "1e3", "2.5E-2", "-0.5", "0.0", "1e-3"),
    Unit.PERCENT: ("1%", "2.5%", "0%", "50%", "100%", "-2%"),
    Unit.BPS: ("10bps", "5bps", "0bps", "2.5bps", "-10bps"),
}
WINDOWS = ("2", "1", "3", "5", "14", "30")
LAGS = ("1", "0", "2", "3", "10")

# Units with a leaf of their own (a literal or a source), in UNITS order.
LEAFY_UNITS = tuple(u for u in UNITS if u in LITERALS or u in SOURCES.values())
LEAFY = frozenset(LEAFY_UNITS)


@cache
def _index(size: int) -> st.SearchStrategy[int]:
    return st.integers(0, size - 1)


def pick(draw: st.DrawFn, options: Sequence[T]) -> T:
    """``sampled_from`` with one cached strategy per length (see the module docstring);
    shrinks towards the first option, like ``sampled_from``."""
    return options[draw(_index(len(options)))]


@dataclass(frozen=True, slots=True)
class Term:
    """Generated expression text with the type the checker will give it."""

    text: str
    unit: Unit
    series: bool
    level: int = ATOM

    def at(self, level: int) -> str:
        """The text for a slot that takes expressions up to ``level`` (parenthesised if not)."""
        return self.text if self.level <= level else f"({self.text})"


# ---------------------------------------------------------------- params


@dataclass(frozen=True, slots=True)
class ParamShape:
    """A declared range; ``step`` None is continuous (int params then step by 1)."""

    low: str
    high: str
    step: str | None


PARAM_SHAPES: dict[str, tuple[ParamShape, ...]] = {
    "int": (ParamShape("1", "20", None), ParamShape("2", "10", "2"), ParamShape("0", "5", None),
            ParamShape("1", "50", "1")),
    "float": (ParamShape("-2", "2", "0.5"), ParamShape("0.5", "3", "0.25"),
              ParamShape("-1", "1", None)),
    "percent": (ParamShape("1", "10", "0.5"), ParamShape("0.5", "20", None)),
    "bps": (ParamShape("0", "30", "5"), ParamShape("1", "50", None)),
}
SUFFIX = {"int": "", "float": "", "percent": "%", "bps": "bps"}


def _grid(kind: str, shape: ParamShape) -> tuple[str, ...]:
    """Values on the declared grid (continuous ranges: both ends and the middle)."""
    low, high = Decimal(shape.low), Decimal(shape.high)
    step = Decimal(shape.step) if shape.step else Decimal(1) if kind == "int" else None
    if step is None:
        values = [low, (low + high) / 2, high]
    else:
        values = [low + k * step for k in range(int((high - low) / step) + 1)]
    return tuple(format(v.normalize(), "f") for v in values)


@dataclass(frozen=True, slots=True)
class ParamDef:
    name: str
    kind: str  # a key of PARAM_TYPES
    shape: ParamShape
    default: str

    @property
    def unit(self) -> Unit:
        return PARAM_TYPES[self.kind]

    @property
    def grid(self) -> tuple[str, ...]:
        return _grid(self.kind, self.shape)

    def literal(self, value: str) -> str:
        return value + SUFFIX[self.kind]

    @property
    def decl(self) -> str:
        s = self.shape
        step = f" step {self.literal(s.step)}" if s.step else ""
        return (f"param {self.name}: {self.kind} = {self.literal(self.default)} in "
                f"{self.literal(s.low)}..{self.literal(s.high)}{step}")

    def window_from(self, least: int) -> bool:
        return self.kind == "int" and Decimal(self.shape.low) >= least


# ---------------------------------------------------------------- window and lag arithmetic

# Int arithmetic on int params as windows and lags (`highest(high, 2 * n)`, `x[n + 1]`), each
# form with its meaning in Python ints. A form is offered only where its least value over
# the params' whole grids — found here by enumerating them, independently of the checker's
# interval arithmetic — is at least the least window (lags: 0); ``test_window_arithmetic``
# offers the others too and requires the checker to refuse exactly those.
IntForm = tuple[str, Callable[[int, int], int]]
INT_FORMS: tuple[IntForm, ...] = (
    ("2 * {a}", lambda a, b: 2 * a),
    ("{a} + 3", lambda a, b: a + 3),
    ("{a} - 1", lambda a, b: a - 1),
    ("({a} + 1) * 2", lambda a, b: (a + 1) * 2),
    ("{a} * {b}", lambda a, b: a * b),
    ("{a} + {b}", lambda a, b: a + b),
    ("{b} - {a}", lambda a, b: b - a),
    ("max({a} - 2, 1)", lambda a, b: max(a - 2, 1)),
    ("min({a}, {b}) + 1", lambda a, b: min(a, b) + 1),
    ("-(1 - {a}) * {b}", lambda a, b: -(1 - a) * b),
)


def _int_grid(shape: ParamShape) -> tuple[int, ...]:
    return tuple(int(v) for v in _grid("int", shape))


@cache
def form_least(form: int, a: ParamShape, b: ParamShape, same: bool) -> int:
    """The least value of ``INT_FORMS[form]`` over the grids (``same``: a and b are one
    param, written twice)."""
    fn = INT_FORMS[form][1]
    if same:
        return min(fn(x, x) for x in _int_grid(a))
    return min(fn(x, y) for x in _int_grid(a) for y in _int_grid(b))


def int_arithmetic(params: Sequence[ParamDef], least: int | None) -> list[str]:
    """Every form over the int params (pairs, and a param paired with itself) whose least
    value is at least ``least`` (None: every form)."""
    ints = [p for p in params if p.kind == "int"]
    out = []
    for k, (template, _) in enumerate(INT_FORMS):
        for a, b in product(ints, ints):
            if least is None or form_least(k, a.shape, b.shape, a is b) >= least:
                out.append(template.format(a=a.name, b=b.name))
    return out




# ---------------------------------------------------------------- expressions


class ExprGen:
    """Typed expression productions over the params and the lets defined so far."""

    NUMERIC = ("leaf", "arith", "call", "arith", "call", "neg", "ifelse", "lag")
    BOOLEAN = ("leaf", "compare", "compare", "logic", "not_", "cross", "streak", "eq_bool",
               "ifelse_bool", "lag_bool")

    def __init__(self, draw: st.DrawFn, params: Sequence[ParamDef],
                 frames: Sequence[str] = ()) -> None:
        self.draw = draw
        self.params = list(params)
        self.lets: list[tuple[str, Term]] = []
        # frames (``x@4h``): the suffixes this spec may read, whether an ``@`` is being
        # drawn (no ``@``, state or let that reads one inside it: T021), and those lets
        self.frames = tuple(frames)
        self.inside = False
        self.unframeable: set[str] = set()

    def productions(self, base: tuple[str, ...]) -> tuple[str, ...]:
        return (*base, "at") if self.frames and not self.inside else base

    def visible(self) -> list[tuple[str, Term]]:
        """The lets an expression may name here (inside an ``@``, those it can recompute)."""
        return [(n, t) for n, t in self.lets if not self.inside or n not in self.unframeable]

    def let_defined(self, name: str, term: Term, state: bool = False) -> None:
        """Record a let; one that is a state or reads a frame or such a let cannot be
        named inside an ``@``."""
        self.lets.append((name, term))
        names = set(re.findall(r"\b[sv]\d+\b", term.text))
        if state or "@" in term.text or names & self.unframeable:
            self.unframeable.add(name)

    def at(self, unit: Unit, mode: str, depth: int) -> Term | None:
        """``x@F``: a series computed on another frame (a constant target is T021)."""
        if mode == CONST or not self.frames or self.inside:
            return None
        frame = self.choose(self.frames)
        self.inside = True
        try:
            x = self.boolean(SERIES, depth - 1) if unit is Unit.BOOL else \
                self.num(unit, SERIES, depth - 1)
        finally:
            self.inside = False
        return Term(f"{x.at(ATOM)}@{frame}", x.unit, True)

    def at_bool(self, mode: str, depth: int) -> Term | None:
        return self.at(Unit.BOOL, mode, depth)

    def choose(self, options: Sequence[T]) -> T:
        return pick(self.draw, options)

    def modes(self, mode: str, units: Sequence[Unit]) -> list[str]:
        """Shapes for the operands of a node of shape ``mode`` (constants mixed in)."""
        if mode == CONST:
            return [CONST] * len(units)
        out = [self.choose((ANY, CONST)) if u in LITERALS else ANY for u in units]
        if mode == SERIES:
            out[self.choose(range(len(units)))] = SERIES
        return out

    @staticmethod
    def allowed(mode: str, units: Sequence[Unit]) -> bool:
        """A constant can only be made of units that have constants."""
        return mode != CONST or all(u in LITERALS for u in units)

    # numeric ------------------------------------------------------------
    def num(self, unit: Unit, mode: str, depth: int) -> Term:
        """An expression of ``unit`` and shape ``mode``, at most ``depth`` operators deep."""
        if depth > 0:
            production = self.choose(self.productions(self.NUMERIC))
            if production != "leaf":
                term: Term | None = getattr(self, production)(unit, mode, depth)
                if term is not None:
                    return term
        return self.num_leaf(unit, mode)

    def num_leaf(self, unit: Unit, mode: str) -> Term:
        series = [Term(name, unit, True) for name, u in SOURCES.items() if u is unit]
        series += [Term(name, t.unit, True) for name, t in self.visible()
                   if t.unit is unit and t.series]
        consts = [Term(t, unit, False, UNARY if t.startswith("-") else ATOM)
                  for t in LITERALS.get(unit, ())]
        consts += [Term(p.name, unit, False) for p in self.params if p.unit is unit]
        consts += [Term(name, t.unit, False) for name, t in self.visible()
                   if t.unit is unit and not t.series]
        if mode == ANY and series and consts:  # even odds, whatever the list lengths
            mode = self.choose((CONST, SERIES))
        options = consts if mode == CONST else series if mode == SERIES else series + consts
        return self.choose(options) if options else self.ground(unit)

    def ground(self, unit: Unit) -> Term:
        """A series of ``unit`` made of leaves only, for units no source or let has: a
        window built-in over a leaf, an indicator of that unit, or price × volume."""
        calls = [b for b in BUILTINS.values() if not b.elementwise
                 and (b.result is unit or (b.result == SAME and unit in LEAFY))]
        if calls:
            builtin = self.choose(calls)
            count = _value_count(builtin)
            units = [unit if builtin.result == SAME else self.choose(LEAFY_UNITS)
                     for _ in range(count)]
            return self.call_term(builtin, unit, [self.num_leaf(u, ANY) for u in units], 0)
        op, a, b = self.choose([(op, a, b) for op, table in ARITH_PAIRS.items()
                                for a, b in table[unit] if a in LEAFY and b in LEAFY])
        left, right = self.num_leaf(a, SERIES), self.num_leaf(b, ANY)
        level = BINARY_LEVEL[op]
        return Term(f"{left.at(level)} {op} {right.at(level - 1)}", unit, True, level)

    @staticmethod
    def _shape_fits(term: Term, mode: str) -> bool:
        return mode == ANY or term.series == (mode == SERIES)

    def arith(self, unit: Unit, mode: str, depth: int) -> Term | None:
        op = self.choose(("+", "-", "*", "/"))
        pairs = [p for p in ARITH_PAIRS[op][unit] if self.allowed(mode, p)]
        if not pairs:
            return None
        units = self.choose(pairs)
        ma, mb = self.modes(mode, units)
        a, b = self.num(units[0], ma, depth - 1), self.num(units[1], mb, depth - 1)
        level = BINARY_LEVEL[op]
        return Term(f"{a.at(level)} {op} {b.at(level - 1)}", unit, a.series or b.series, level)

    def neg(self, unit: Unit, mode: str, depth: int) -> Term | None:
        x = self.num(unit, mode, depth - 1)
        return Term(f"-{x.at(UNARY)}", unit, x.series, UNARY)

    def ifelse(self, unit: Unit, mode: str, depth: int) -> Term | None:
        pairs = [p for p in JOIN_PAIRS[unit] if self.allowed(mode, p)]
        if not pairs:
            return None
        units = self.choose(pairs)
        mc, ma, mb = self.modes(mode, (Unit.BOOL, *units))
        c = self.boolean(mc, depth - 1)
        a, b = self.num(units[0], ma, depth - 1), self.num(units[1], mb, depth - 1)
        return Term(f"if {c.text} then {a.text} else {b.text}", unit,
                    c.series or a.series or b.series, IF)

    def lag(self, unit: Unit, mode: str, depth: int) -> Term | None:
        if mode == CONST:
            return None
        x = self.num(unit, SERIES, depth - 1) if unit is not Unit.BOOL else \
            self.boolean(SERIES, depth - 1)
        return Term(f"{x.at(ATOM)}[{self.lag_amount()}]", unit, True)

    def lag_amount(self) -> str:
        """A lag: a literal, an int param, or (a third of the time, once the grammar takes
        it) int arithmetic on params that is never negative."""
        arithmetic = int_arithmetic(self.params, 0)
        if arithmetic and self.choose(("plain", "plain", "arithmetic")) == "arithmetic":
            return self.choose(arithmetic)
        return self.choose([*LAGS, *(p.name for p in self.params if p.kind == "int")])

    def window(self, least: int = 1) -> str:
        """A window literal or int param whose whole range is at least ``least``, or (a
        third of the time) int arithmetic on params that provably is."""
        arithmetic = int_arithmetic(self.params, least)
        if arithmetic and self.choose(("plain", "plain", "arithmetic")) == "arithmetic":
            return self.choose(arithmetic)
        return self.choose([*(w for w in (*WINDOWS, "0") if int(w) >= least),
                            *(p.name for p in self.params if p.window_from(least))])

    # calls --------------------------------------------------------------
    def call(self, unit: Unit, mode: str, depth: int) -> Term | None:
        options = [b for b in BUILTINS.values() if self._produces(b, unit, mode)]
        if not options:
            return None
        builtin = self.choose(options)
        units = self._value_units(builtin, unit, mode)
        modes = self.modes(mode, units) if builtin.elementwise else [ANY] * len(units)
        values = [self.num(u, m, depth - 1) for u, m in zip(units, modes, strict=True)]
        return self.call_term(builtin, unit, values, depth)

    def call_term(self, builtin: Builtin, unit: Unit, values: Sequence[Term], depth: int
                  ) -> Term:
        """``builtin`` over ``values`` (its value arguments), with windows, scalars,
        conditions (boolean series, drawn here) and a mode."""
        mode = self.mode(builtin)
        rest = iter(values)
        args: list[str] = []
        for name, kind in builtin.args:
            if kind is Arg.WINDOW:
                args.append(self.window(builtin.mode.least_window(mode)
                                        if mode and builtin.mode else builtin.least_window))
            elif kind is Arg.SCALAR:
                scale = self.choose((Unit.INT, Unit.NUMBER, Unit.PERCENT))
                args.append(self.num(scale, CONST, depth - 1).text)
            elif name in builtin.conditions:
                args.append(self.boolean(ANY, depth - 1).text)
            else:
                args.append(next(rest).text)
        series = not builtin.elementwise or bool(builtin.implicit) or any(v.series for v in values)
        return Term(f"{builtin.name}({', '.join(args + ([mode] if mode else []))})", unit,
                    series)

    def mode(self, builtin: Builtin) -> str | None:
        """A built-in's optional mode keyword: left out, spelt as the default, or another."""
        if builtin.mode is None:
            return None
        return self.choose((None, *builtin.mode.choices))

    def _produces(self, b: Builtin, unit: Unit, mode: str) -> bool:
        if (not b.elementwise or b.implicit) and mode == CONST:
            return False
        if b.result == SAME:
            return self.allowed(mode, (unit,))
        if b.result == JOIN:
            return any(self.allowed(mode, p) for p in JOIN_PAIRS[unit])
        return b.result is unit

    def _value_units(self, b: Builtin, unit: Unit, mode: str) -> list[Unit]:
        """Units of the value arguments of ``b`` for a result of ``unit``."""
        count = _value_count(b)
        if b.result == SAME:
            return [unit] * count
        if b.result == JOIN:
            pairs = [p for p in JOIN_PAIRS[unit] if self.allowed(mode, p)]
            first = list(self.choose(pairs))
            extra = [u for u in UNITS
                     if (unit, u) in JOIN_PAIRS[unit] and self.allowed(mode, (u,))]
            return first + [self.choose(extra) for _ in range(count - 2)]
        free = [u for u in UNITS if self.allowed(mode, (u,))]
        if Unit.PRICE in free:  # indicators mostly read prices; keep that common
            free.insert(0, Unit.PRICE)
        return [self.choose(free) for _ in range(count)]

    # boolean ------------------------------------------------------------
    def boolean(self, mode: str, depth: int) -> Term:
        """A boolean expression of shape ``mode``, at most ``depth`` operators deep."""
        if depth > 0:
            production = self.choose(self.productions(self.BOOLEAN))
            production = "at_bool" if production == "at" else production
            if production != "leaf":
                term: Term | None = getattr(self, production)(mode, depth)
                if term is not None:
                    return term
        return self.bool_leaf(mode)

    def bool_leaf(self, mode: str) -> Term:
        options: list[Term] = []
        if mode != SERIES:
            options += [Term("true", Unit.BOOL, False), Term("false", Unit.BOOL, False)]
        options += [Term(name, t.unit, t.series) for name, t in self.visible()
                    if t.unit is Unit.BOOL and self._shape_fits(t, mode)]
        return self.choose(options) if options else self.compare(mode, 0)

    def compare(self, mode: str, depth: int) -> Term:
        if mode != CONST and self.choose(("plain", "indicator")) == "indicator":
            return self.indicator(mode, depth)
        op = self.choose(("<", ">", "<=", ">=", "==", "!="))
        pairs = [p for p in COMPARABLE if self.allowed(mode, p)]
        units = self.choose(pairs)
        ma, mb = self.modes(mode, units)
        a, b = _compared(self.num(units[0], ma, depth - 1), self.num(units[1], mb, depth - 1))
        return Term(f"{a.at(SUM)} {op} {b.at(SUM)}", Unit.BOOL, a.series or b.series, COMPARE)

    def eq_bool(self, mode: str, depth: int) -> Term | None:
        op = self.choose(("==", "!="))
        ma, mb = self.modes(mode, (Unit.BOOL, Unit.BOOL))
        a, b = self.boolean(ma, depth - 1), self.boolean(mb, depth - 1)
        return Term(f"{a.at(SUM)} {op} {b.at(SUM)}", Unit.BOOL, a.series or b.series, COMPARE)

    def logic(self, mode: str, depth: int) -> Term | None:
        op = self.choose(("and", "or"))
        ma, mb = self.modes(mode, (Unit.BOOL, Unit.BOOL))
        a, b = self.boolean(ma, depth - 1), self.boolean(mb, depth - 1)
        level = BINARY_LEVEL[op]
        return Term(f"{a.at(level)} {op} {b.at(level - 1)}", Unit.BOOL,
                    a.series or b.series, level)

    def not_(self, mode: str, depth: int) -> Term | None:
        x = self.boolean(mode, depth - 1)
        return Term(f"not {x.at(NOT)}", Unit.BOOL, x.series, NOT)

    def ifelse_bool(self, mode: str, depth: int) -> Term | None:
        mc, ma, mb = self.modes(mode, (Unit.BOOL, Unit.BOOL, Unit.BOOL))
        c, a, b = (self.boolean(m, depth - 1) for m in (mc, ma, mb))
        return Term(f"if {c.text} then {a.text} else {b.text}", Unit.BOOL,
                    c.series or a.series or b.series, IF)

    def cross(self, mode: str, depth: int) -> Term | None:
        if mode == CONST:
            return None
        units = self.choose(COMPARABLE)
        a, b = _compared(*(self.num(u, ANY, depth - 1) for u in units))
        func = self.choose(("crossover", "crossunder"))
        return Term(f"{func}({a.text}, {b.text})", Unit.BOOL, True)

    def indicator(self, mode: str, depth: int) -> Term:
        """An indicator of a unit of its own (``supertrend``, ``stoch_k``, ``barssince``, …)
        compared with a value of that unit, as strategies use them: half of the comparisons
        of series. A price comes from so many built-ins that a call for one reaches each
        indicator of price unit only every few hundred examples; this reaches each every few
        dozen. (Not a production of its own: constants, ``require`` among them, would draw
        it and fall back to a leaf, and leaves make ``require false``.)"""
        builtin = self.choose(FIXED_UNIT)
        unit = cast(Unit, builtin.result)
        values = [self.num(u, ANY, depth - 1) for u in self._value_units(builtin, unit, ANY)]
        other = self.choose([b for a, b in COMPARABLE if a is unit])
        a, b = _compared(self.call_term(builtin, unit, values, depth),
                         self.num(other, ANY, depth - 1))
        op = self.choose(("<", ">", "<=", ">=", "==", "!="))
        return Term(f"{a.at(SUM)} {op} {b.at(SUM)}", Unit.BOOL, True, COMPARE)

    def streak(self, mode: str, depth: int) -> Term | None:
        if mode == CONST:
            return None
        x = self.num(self.choose(UNITS), ANY, depth - 1)
        func = self.choose(("rising", "falling"))
        return Term(f"{func}({x.text}, {self.window()})", Unit.BOOL, True)

    def lag_bool(self, mode: str, depth: int) -> Term | None:
        return self.lag(Unit.BOOL, mode, depth)


# Non-elementwise built-ins whose result has a unit of its own (not "same as x", not bool).
FIXED_UNIT = tuple(b for b in BUILTINS.values() if isinstance(b.result, Unit)
                   and b.result is not Unit.BOOL and not b.elementwise)


def _value_count(b: Builtin) -> int:
    """How many numeric series arguments ``b`` takes (its conditions are booleans)."""
    return sum(1 for name, kind in b.args if kind is Arg.SERIES and name not in b.conditions)


def _compared(a: Term, b: Term) -> tuple[Term, Term]:
    """Operands of a comparison or a cross. Next to a percentage, a bare number of size 1 or
    more is an error (T002: `roc(x, 10) > 2` would mean 200 %), so such a literal is
    written as ±0.5 instead."""
    return _tame(a, b), _tame(b, a)


def _tame(term: Term, other: Term) -> Term:
    if other.unit not in FRACTIONS or term.unit not in PLAIN:
        return term
    try:
        value = float(term.text)
    except ValueError:
        return term
    return term if abs(value) < 1 else Term(repr(math.copysign(0.5, value)), term.unit, False,
                                            term.level)


# ---------------------------------------------------------------- whole specs

MARKETS = (("BTC/EUR", "BTC", "EUR"), ("ETH/USDT", "ETH", "USDT"))
LET_UNITS = (Unit.BOOL, Unit.PRICE, *(u for u in UNITS if u is not Unit.PRICE))
RULES = ("entry long", "exit long", "entry short", "exit short")
# Conditions on the position a rule may add (``lang.position``): ``{k}`` bars, ``{q}`` a
# percentage, ``{p}`` a price term — a time exit, loss and profit exits, an entry-price stop,
# entries only from flat.
POSITION_EXITS = ("bars_in_trade >= {k}", "unrealized < -{q}", "abs(unrealized) > {q}",
                  "close < entry_price - {p}", "close > entry_price + {p}",
                  "if position > 0 then unrealized < -{q} else bars_in_trade > {k}")
POSITION_ENTRIES = ("position == 0", "position != 0", "not (position > 0)")


def position_rule(draw: st.DrawFn, gen: ExprGen, rule: str, condition: Term) -> str:
    """The rule's condition, a quarter of the time combined with one on the position."""
    if draw(st.integers(0, 3)) != 0:
        return condition.text
    forms = POSITION_ENTRIES if rule.startswith("entry") else POSITION_EXITS
    extra = pick(draw, forms).format(
        k=draw(st.integers(0, 8)), q=pick(draw, ("1%", "2%", "0.5%")),
        p=gen.num(Unit.PRICE, SERIES, 1).at(PRODUCT - 1))
    join = "and" if rule.startswith("entry") else pick(draw, ("or", "and"))
    level = AND - 1 if join == "and" else OR - 1
    return f"{condition.at(level)} {join} ({extra})"


@dataclass(frozen=True)
class Case:
    """One generated example: spec text, candles and `--set` overrides for its params; for
    a spec that reads frames (``@``), each bar's open time (seconds since the epoch) and the
    other market's candles and times.

    Its repr is a ready-to-paste entry for ``regressions/cases.py``, so a shrunk failure
    becomes a regression test by copying what hypothesis prints.
    """

    spec: str
    candles: dict[str, list[float]]
    overrides: tuple[str, ...] = ()
    times: tuple[int, ...] = ()
    other: str = ""
    other_candles: dict[str, list[float]] | None = None
    other_times: tuple[int, ...] = ()

    def frame(self) -> pd.DataFrame:
        return _frame(self.candles, self.times)

    def markets(self) -> dict[str, pd.DataFrame]:
        """The other market's candles, by symbol (none when the spec reads none)."""
        if not self.other or self.other_candles is None:
            return {}
        return {self.other: _frame(self.other_candles, self.other_times)}

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis prints a falsifying example: the same paste-ready text."""
        printer.text(repr(self))

    def __repr__(self) -> str:
        candles = ",\n        ".join(f"{c!r}: {json.dumps(self.candles[c])}" for c in COLUMNS)
        extra = ""
        if self.times:
            extra += f"    times={self.times!r},\n"
        if self.other and self.other_candles is not None:
            other = ",\n        ".join(f"{c!r}: {json.dumps(self.other_candles[c])}"
                                      for c in COLUMNS)
            extra += (f"    other={self.other!r},\n    other_candles={{\n        {other},\n"
                      f"    }},\n    other_times={self.other_times!r},\n")
        return (f"Case(\n    spec='''\\\n{self.spec}''',\n    candles={{\n        {candles},\n"
                f"    }},\n    overrides={self.overrides!r},\n{extra})")


def _frame(candles: dict[str, list[float]], times: Sequence[int]) -> pd.DataFrame:
    """Candles as a DataFrame, time-indexed (UTC) when ``times`` are given."""
    data = {c: [float(v) for v in candles[c]] for c in COLUMNS}
    if not times:
        return pd.DataFrame(data)
    return pd.DataFrame(data, index=pd.to_datetime(list(times), unit="s", utc=True))


@st.composite
def param_defs(draw: st.DrawFn) -> tuple[ParamDef, ...]:
    kinds = draw(st.lists(st.sampled_from(("int", "float", "percent", "bps")), max_size=4))
    out = []
    for i, kind in enumerate(kinds):
        shape = pick(draw, PARAM_SHAPES[kind])
        default = pick(draw, _grid(kind, shape))
        out.append(ParamDef(f"p{i}", kind, shape, default))
    return tuple(out)


def _of_kind(params: Sequence[ParamDef], kind: str) -> list[str]:
    return [p.name for p in params if p.kind == kind]


# Stops and sizes written as expressions (``lang.levels``): ``{p}`` a price series, ``{q}`` a
# percentage series, ``{w}`` a window, ``{k}`` a positive factor — the usual ATR and
# volatility forms, and raw terms that go negative or missing (no entry there).
STOP_FORMS = ("{k} * atr({w})", "abs({p})", "{p}", "{k} * stdev(roc(close, 1), {w})",
              "abs({q})")
SIZE_FORMS = ("25% / stdev(roc(close, 1), {w})", "min({k} * 10% / stdev(roc(close, 1), {w}), 1)",
              "abs({q})")


# The same on a frame (``{f}``), when the spec reads frames: a daily ATR stop, a 4h
# volatility size.
FRAME_STOP_FORMS = ("{k} * atr({w})@{f}", "{k} * stdev(roc(close, 1), {w})@{f}")
FRAME_SIZE_FORMS = ("25% / stdev(roc(close, 1), {w})@{f}",)


def level_text(draw: st.DrawFn, gen: ExprGen, forms: Sequence[str],
               framed: Sequence[str] = ()) -> str:
    """A stop or size expression from ``forms`` (or ``framed`` ones, a third of the time
    when the spec reads frames), its holes drawn from ``gen``."""
    depth = draw(st.integers(1, 2))
    if gen.frames and framed and draw(st.integers(0, 2)) == 0:
        forms = framed
    return pick(draw, forms).format(
        p=gen.num(Unit.PRICE, SERIES, depth).at(PRODUCT - 1),
        q=gen.num(Unit.PERCENT, SERIES, depth).at(PRODUCT - 1),
        w=gen.window(2), k=pick(draw, ("2", "0.5", "1.5")),
        f=pick(draw, gen.frames) if gen.frames else "")


@st.composite
def settings_text(draw: st.DrawFn, params: Sequence[ParamDef], gen: ExprGen | None = None,
                  where: tuple[tuple[str, str, str], str] | None = None) -> list[str]:
    """Market, timeframe (``where``, else drawn), sizing, exits and execution; params stand
    in where they fit, and with ``gen`` a stop or a size may be an expression."""
    (market, base, quote), timeframe = where or (pick(draw, MARKETS),
                                                 pick(draw, TIMEFRAME_CHOICES))
    percents = ["25%", *_of_kind(params, "percent")]
    bps = ["10bps", "0bps", *_of_kind(params, "bps")]
    lines = [f"market {market}", f"timeframe {timeframe}"]
    sizing = pick(draw, ("size {p} of equity", f"size 1000 {quote}", f"size 0.5 {base}",
                         "vol_target {p}", "size {e} of equity", ""))
    if sizing:
        expr = level_text(draw, gen, SIZE_FORMS, FRAME_SIZE_FORMS) \
            if gen is not None and "{e}" in sizing else pick(draw, percents)
        lines.append(sizing.format(p=pick(draw, percents), e=expr))
    for key in ("stop_loss", "take_profit", "trailing_stop"):
        if draw(st.booleans()):
            as_expr = gen is not None and draw(st.integers(0, 2)) == 0
            value = level_text(draw, gen, STOP_FORMS, FRAME_STOP_FORMS) \
                if as_expr and gen is not None else pick(draw, ['5%', *percents])
            lines.append(f"{key} {value}")
    lines += trade_rules_text(draw)
    execution = [f"fill {pick(draw, ('next_open', 'close'))}",
                 f"fees {pick(draw, bps)}", f"slippage {pick(draw, bps)}"]
    if draw(st.booleans()):
        execution.append(f"qty_step {pick(draw, ('0.001', '1'))}")
    if draw(st.booleans()):
        execution.append(f"min_notional 10 {quote}")
    lines.append("execution { " + " ".join(execution) + " }")
    return lines


def trade_rules_text(draw: st.DrawFn) -> list[str]:
    """The trade rules (min/max hold, cooldown after a stop, a loss streak, reversal), each
    a quarter of the time; ``max_hold`` above ``min_hold`` as the checker wants."""
    lines = []
    least = 0
    if draw(st.integers(0, 3)) == 0:
        least = draw(st.integers(1, 4))
        lines.append(f"min_hold {least}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"max_hold {least + draw(st.integers(1, 8))}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"cooldown after stop {draw(st.integers(1, 5))}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"max_consecutive_losses {draw(st.integers(1, 3))}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"reversal {pick(draw, ('flip', 'flat'))}")
    return lines


def require(draw: st.DrawFn, gen: ExprGen, params: Sequence[ParamDef]) -> str:
    """A constant condition over params; half of them hold on the whole declared range (a
    random one holds for the defaults only half of the time: T008, a skipped spec)."""
    condition = gen.boolean(CONST, draw(st.integers(1, 2)))
    if draw(st.booleans()):
        return condition.text
    p = pick(draw, params)
    return f"{condition.at(OR)} or {p.name} >= {p.literal(p.shape.low)}"


# The shapes of a generated ``state`` (``{s}`` its name, ``{t}`` a series of its unit, ``{c}``
# ``{d}`` conditions, ``{k}`` a lag of 1–3): ratchets, smoothing, running sums, latches,
# counters — what states are written for — each of the unit the checker infers.
STATE_SHAPES = (
    "max(nz({s}[1], {t}), {t})", "min(nz({s}[{k}], {t}), {t})",
    "nz({s}[1], {t}) * 0.5 + {t} * 0.5", "nz({s}[{k}], {t}) + {t}",
    "if {c} then {t} else nz({s}[1], {t})",
)
COUNTER = "if {c} then nz({s}[1], 0) + 1 else 0"
LATCH = "if {c} then true else if {d} then false else {s}[{k}]"


def state_body(draw: st.DrawFn, gen: ExprGen, name: str, unit: Unit, depth: int
               ) -> tuple[str, Unit]:
    """A ``state`` named ``name``: its expression and the unit the checker gives it (a
    boolean asks for a latch; a plain number may be a counter)."""
    k = draw(st.integers(1, 3))
    cond, other = (gen.boolean(SERIES, depth).at(AND - 1) for _ in range(2))
    if unit is Unit.BOOL:
        return LATCH.format(s=name, c=cond, d=other, k=k), Unit.BOOL
    if unit in (Unit.INT, Unit.NUMBER) and draw(st.booleans()):
        return COUNTER.format(s=name, c=cond), Unit.NUMBER
    shape = pick(draw, STATE_SHAPES)
    term = gen.num(unit, SERIES, depth).at(PRODUCT - 1)
    return shape.format(s=name, t=term, c=cond, k=k), \
        Unit.NUMBER if unit is Unit.INT else unit


# Frames a spec may read (``x@F``, ``lang.frames``), by its timeframe: own-market timeframes
# its own divides (the commonest first), and the other market of ``MARKETS``, alone and on
# the first of them; the strategy's own timeframe and market (``close@1h`` in a 1h spec is
# ``close``) come last.
TIMEFRAME_CHOICES = ("1h", "1d", "15m")
FRAME_TIMEFRAMES = {"1h": ("4h", "2h", "1d"), "15m": ("1h", "30m", "4h"), "1d": ("3d", "1w")}
OTHER_MARKET = {"BTC/EUR": "ETH/USDT", "ETH/USDT": "BTC/EUR"}


def frames_for(market: str, timeframe: str) -> tuple[str, ...]:
    tfs = FRAME_TIMEFRAMES[timeframe]
    other = OTHER_MARKET[market]
    return (*tfs, other, f"{other}@{tfs[0]}", timeframe, market)


@st.composite
def specs(draw: st.DrawFn, max_lets: int = 4, max_depth: int = 3, frames: bool = True
          ) -> tuple[str, tuple[ParamDef, ...]]:
    """A strategy's source text (named ``gen``) and its params; with ``frames``, a third
    of them read other frames (``@``)."""
    params = draw(param_defs())
    where = (pick(draw, MARKETS), pick(draw, TIMEFRAME_CHOICES))
    framed = frames and draw(st.integers(0, 2)) == 0
    gen = ExprGen(draw, params, frames_for(where[0][0], where[1]) if framed else ())
    body = [p.decl for p in params]
    if params and draw(st.integers(0, 3)) == 0:
        body.append(f"require {require(draw, gen, params)}")
    for i in range(draw(st.integers(0, max_lets))):
        unit = pick(draw, LET_UNITS)
        depth = draw(st.integers(1, max_depth))
        if draw(st.integers(0, 3)) == 0:
            text, unit = state_body(draw, gen, f"s{i}", unit, depth)
            body.append(f"state s{i} = {text}")
            gen.let_defined(f"s{i}", Term(f"s{i}", unit, True), state=True)
            continue
        term = gen.boolean(ANY, depth) if unit is Unit.BOOL else gen.num(unit, ANY, depth)
        body.append(f"let v{i} = {term.text}")
        gen.let_defined(f"v{i}", term)
    for rule in RULES:
        if rule == "entry long" or draw(st.booleans()):
            condition = gen.boolean(SERIES, draw(st.integers(1, max_depth)))
            body.append(f"{rule} when {position_rule(draw, gen, rule, condition)}")
    body += draw(settings_text(params, gen, where))
    text = "strategy gen {\n" + "".join(f"    {line}\n" for line in body) + "}\n"
    return text, params


# ---------------------------------------------------------------- candles

COLUMNS = ("open", "high", "low", "close", "volume")
SCALES = (100.0, 1.0, 1e-8, 1e9, 0.01)
MOVES = (0.0, 0.01, -0.01, 0.2, -0.2, 1.0, -1.0)  # log returns per bar; 0 is a flat run
GAPS = (0.0, 0.005, -0.05)  # open against the previous close
WICKS = (0.0, 0.001, 0.1)
VOLUMES = (1.0, 0.0, 1000.0, 1e-6, 1e9)
DRIFT = 5.0  # prices stay within e^±5 of their scale: tiny and huge, never absurd


@dataclass(frozen=True, slots=True)
class Run:
    """Bars that share a move, a gap, wicks and a volume: flat runs, zero-volume runs."""

    bars: int
    move: float
    gap: float
    wick: float
    volume: float


runs = st.builds(Run, st.integers(1, 12), st.sampled_from(MOVES), st.sampled_from(GAPS),
                 st.sampled_from(WICKS), st.sampled_from(VOLUMES))


@st.composite
def candles(draw: st.DrawFn, max_bars: int = 60) -> dict[str, list[float]]:
    """Valid candles (positive prices, low <= open, close <= high) that provoke NaN and inf,
    drawn as a few runs (cheap to draw, and shrinking merges them into one flat run)."""
    scale = pick(draw, SCALES)
    bars = [r for r in draw(st.lists(runs, min_size=1, max_size=8)) for _ in range(r.bars)]
    out: dict[str, list[float]] = {c: [] for c in COLUMNS}
    level = 0.0
    for r in bars[:max_bars]:
        prev = scale * math.exp(level)
        level += r.move if abs(level + r.move) <= DRIFT else -r.move
        close, open_ = scale * math.exp(level), prev * math.exp(r.gap)
        out["open"].append(open_)
        out["close"].append(close)
        out["high"].append(max(open_, close) * (1 + r.wick))
        out["low"].append(min(open_, close) * (1 - r.wick))
        out["volume"].append(r.volume)
    return out


# ---------------------------------------------------------------- examples


START = 1_704_067_200  # 2024-01-01T00:00Z, a Monday: every frame's grid starts here
BAR_SECONDS = {"15m": 900, "1h": 3600, "1d": 86_400}


@st.composite
def bar_times(draw: st.DrawFn, bars: int, timeframe: str) -> tuple[int, ...]:
    """Open times of ``bars`` bars: from a bar of the grid that may start a frame's bucket
    or not, a third of the time with gaps (a few bars missing here and there)."""
    step = BAR_SECONDS[timeframe]
    t = START + draw(st.integers(0, 23)) * step
    jumps: dict[int, int] = {}
    if bars > 1 and draw(st.integers(0, 2)) == 0:
        jumps = dict(draw(st.lists(st.tuples(st.integers(1, bars - 1), st.integers(1, 6)),
                                   max_size=3)))
    out = []
    for i in range(bars):
        t += step * (1 + jumps.get(i, 0)) if i else 0
        out.append(t)
    return tuple(out)


@st.composite
def other_market(draw: st.DrawFn, times: Sequence[int], timeframe: str
                 ) -> tuple[dict[str, list[float]], tuple[int, ...]]:
    """Another market's candles around the strategy's span: the bars of its grid from a
    few before its first to a few after its last (a run cuts them to the span), a few
    missing (its own gaps), possibly ending early."""
    step = BAR_SECONDS[timeframe]
    before, after = draw(st.integers(0, 6)), draw(st.integers(0, 3))
    grid = list(range(times[0] - before * step, times[-1] + 1 + after * step, step))
    gone = set(draw(st.lists(st.integers(0, len(grid) - 1), max_size=3))) \
        if draw(st.integers(0, 2)) == 0 else set()
    kept = [t for i, t in enumerate(grid) if i not in gone] or grid[:1]
    other = draw(candles(len(kept)))
    return other, tuple(kept[:len(other["close"])])


@st.composite
def cases(draw: st.DrawFn, max_bars: int = 60, max_lets: int = 4, max_depth: int = 3,
          frames: bool = True) -> Case:
    """A spec, candles, and an in-range, on-step value for some of its params; for a spec
    that reads frames, bar times and the other market's candles."""
    text, params = draw(specs(max_lets, max_depth, frames))
    overrides = tuple(f"{p.name}={pick(draw, p.grid)}{SUFFIX[p.kind]}"
                      for p in params if draw(st.booleans()))
    bars = draw(candles(max_bars))
    if "@" not in text and "session_vwap" not in text:  # what reads no bar time
        return Case(text, bars, overrides)
    timeframe = re.search(r"^\s*timeframe (\S+)$", text, re.M)
    market = re.search(r"^\s*market (\S+)$", text, re.M)
    assert timeframe and market, text
    times = draw(bar_times(len(bars["close"]), timeframe.group(1)))
    other = OTHER_MARKET[market.group(1)]
    if f"@{other}" not in text:
        return Case(text, bars, overrides, times)
    other_bars, other_times = draw(other_market(times, timeframe.group(1)))
    return Case(text, bars, overrides, times, other, other_bars, other_times)
