"""Expression typing: names, calls, units, shapes and causality of one expression.

``ExprChecker.infer`` returns the type of an expression (or ``None`` once an error has
been reported, so one mistake does not cascade) and records every node's type for the
lowering stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from . import ast, intexpr
from .builtins import BUILTINS, JOIN, LOOKAHEAD, MODE_WORDS, SAME, SOURCES, Arg, Builtin
from .diagnostics import Diagnostic, Fix, diag, did_you_mean
from .scalar import constant_value
from .source import Span
from .types import ARITH, FRACTIONS, PLAIN, Ty, Unit, UnitError, add_units, compare_units


@dataclass(frozen=True, slots=True)
class ParamInfo:
    """A declared parameter with its literal default, range and step (as plain floats)."""

    name: str
    type: str
    unit: Unit
    default: float
    low: float
    high: float
    step: float | None
    span: Span


@dataclass(frozen=True, slots=True)
class Symbol:
    kind: str  # "source" | "param" | "let"
    ty: Ty | None  # None: its definition had an error already reported
    span: Span | None = None


MAX_WINDOW = 100_000  # bars; beyond this a window is a typo, not a strategy
WINDOW_HELP = (f"windows are whole numbers of bars, from 1 to {MAX_WINDOW:,}: "
               f"{intexpr.ARITHMETIC}")
WHOLE = "an int literal, an int param or arithmetic on them (`2 * n`, `n + 1`)"
# The checker takes arithmetic in a lag too (`x[n + 1]`), but the grammar still admits only a
# literal or a name there, so the lag's words do not offer it.
LAG_HELP = ("lags count whole bars back, 0 or more: write x[1] for the previous bar, x[n], or "
            "int arithmetic such as x[n + 1]")
LAG_WHOLE = "a whole number of bars: an int literal, an int param or int arithmetic on them"

LITERALS = (ast.Number, ast.Percent, ast.Bps, ast.Duration, ast.Money, ast.Market, ast.String,
            ast.Bool)
LITERAL_UNITS: dict[type, Unit] = {
    ast.Percent: Unit.PERCENT, ast.Bps: Unit.BPS, ast.Duration: Unit.DURATION,
    ast.Money: Unit.MONEY, ast.Market: Unit.MARKET, ast.String: Unit.STRING, ast.Bool: Unit.BOOL,
}


def int_grids(params: Mapping[str, ParamInfo]) -> dict[str, intexpr.Grid]:
    """The value grid of every int param: what windows and lags are proven over (and what
    `--set` and sweeps may choose from)."""
    return {n: intexpr.grid(p.low, p.high, p.step) for n, p in params.items()
            if p.unit is Unit.INT}


class ExprChecker:
    """Types expressions against a symbol table, reporting into ``diagnostics``."""

    def __init__(self, path: str, symbols: dict[str, Symbol], params: dict[str, ParamInfo]):
        self.path = path
        self.symbols = symbols
        self.params = params
        self.diagnostics: list[Diagnostic] = []
        self.types: dict[int, Ty] = {}
        self.used: set[str] = set()
        self.later: dict[str, Span] = {}  # let names defined further down (N016)
        self.rules: dict[type, Callable[[ast.Expr], Ty | None]] = {
            ast.Number: self._number, ast.Name: self._name, ast.Call: self._call,
            ast.Lag: self._lag, ast.Neg: self._neg, ast.Not: self._not,
            ast.Binary: self._binary, ast.IfElse: self._ifelse, ast.List: self._list,
            ast.At: self._at,
        }

    def error(self, code: str, message: str, span: Span, help: str = "",
              fix: Fix | None = None) -> None:
        self.diagnostics.append(diag(code, message, self.path, span, help, fix=fix))

    def infer(self, expr: ast.Expr) -> Ty | None:
        rule = self.rules.get(type(expr))
        ty = rule(expr) if rule else Ty(LITERAL_UNITS[type(expr)], False)
        if ty is None or (not ty.series and not self._finite(expr)):
            return None
        self.types[id(expr)] = ty
        return ty

    def _finite(self, expr: ast.Expr) -> bool:
        """A constant expression (no params, no series) must have a finite value: the
        compiler folds it with the same arithmetic, and a NaN or infinite constant is a
        mistake (``1 / 0``, ``log(0)``), never a signal. Reports T012/T013."""
        if isinstance(expr, LITERALS):
            return True
        value = constant_value(expr)
        if not isinstance(value, float) or math.isfinite(value):
            return True
        if isinstance(expr, ast.Binary) and expr.op == "/" and constant_value(expr.right) == 0:
            self._division_by_zero(expr)
        else:
            self.error("T013", f"this constant expression is {value} (not a number)",
                       expr.span, "only series and params may produce missing values; "
                       "check the constants (log and sqrt need positive arguments)")
        return False

    def _division_by_zero(self, expr: ast.Binary) -> None:
        self.error("T012", "division by zero: the divisor is the constant 0", expr.right.span,
                   "divide by a series or a param, or drop the division")

    def expect(self, expr: ast.Expr, unit: Unit, what: str) -> Ty | None:
        ty = self.infer(expr)
        if ty is not None and ty.unit is not unit:
            self.error("T001", f"{what} must be {Ty(unit, ty.series).describe()}, "
                       f"found {ty.describe()}", expr.span)
            return None
        return ty

    # literals and names -------------------------------------------------
    def _number(self, expr: ast.Expr) -> Ty:
        assert isinstance(expr, ast.Number)
        return Ty(Unit.INT if expr.is_int else Unit.NUMBER, False)

    def _name(self, expr: ast.Expr) -> Ty | None:
        assert isinstance(expr, ast.Name)
        symbol = self.symbols.get(expr.id)
        if symbol is not None:
            self.used.add(expr.id)
            return symbol.ty
        self.unknown_name(expr.id, expr.span)
        return None

    def unknown_name(self, name: str, span: Span) -> None:
        if name in LOOKAHEAD:
            self.error("L003", f"look-ahead: `{name}` {LOOKAHEAD[name]}", span,
                       "signals may only use the current and earlier bars")
        elif name in self.later:
            self.used.add(name)  # used, just too early: no extra W002 on the `let`
            self.error("N016", f"`{name}` is used before its `let`", span,
                       f"move `let {name}` above this line")
        elif name in BUILTINS:
            self.error("N001", f"`{name}` is a function, not a value", span,
                       f"call it: {BUILTINS[name].signature}")
        else:
            self.error("N001", f"unknown name `{name}`", span,
                       did_you_mean(name, [*self.symbols, *self.later])
                       or "declare it with `param` or `let`; sources are "
                       + ", ".join(SOURCES))

    # calls --------------------------------------------------------------
    def _call(self, expr: ast.Expr) -> Ty | None:
        assert isinstance(expr, ast.Call)
        if expr.func in LOOKAHEAD:
            self.error("L003", f"look-ahead: `{expr.func}` {LOOKAHEAD[expr.func]}",
                       expr.func_span, "signals may only use the current and earlier bars")
            return None
        builtin = BUILTINS.get(expr.func)
        if builtin is None:
            self.error("N002", f"unknown function `{expr.func}`", expr.func_span,
                       did_you_mean(expr.func, BUILTINS) or "see docs/language.md for built-ins")
            return None
        low, high = builtin.arity
        if not low <= len(expr.args) <= high:
            modes = f"; mode: {builtin.mode.describe()}" if builtin.mode else ""
            self.error("T003", f"`{expr.func}` takes {low if low == high else f'{low} or {high}'}"
                       f" argument(s), got {len(expr.args)}", expr.span,
                       f"signature: {builtin.signature}{modes}")
            return None
        units = [self._argument(builtin, b, arg) for b, arg in zip(builtin.args, expr.args[:low],
                                                          strict=True)]
        if any(u is None for u in units) or not self._mode(builtin, expr):
            return None
        return self._call_result(builtin, expr, units)

    def _mode(self, builtin: Builtin, expr: ast.Call) -> bool:
        """The optional last argument: one of the built-in's mode keywords (N015 for an
        unknown word, T016 for a value), with a window that mode accepts (T004)."""
        mode = builtin.mode
        if mode is None or len(expr.args) == len(builtin.args):
            return True
        arg = expr.args[-1]
        if isinstance(arg, ast.Name) and arg.id in mode.choices:
            return self._mode_window(builtin, expr, arg.id)
        if isinstance(arg, ast.Name) and arg.id not in self.symbols:
            self.error("N015", f"unknown mode `{arg.id}` for `{builtin.name}`", arg.span,
                       did_you_mean(arg.id, mode.choices) or f"modes: {mode.describe()}")
        else:
            self.error("T016", f"the last argument of `{builtin.name}` must be a mode keyword: "
                       f"{mode.describe()}", arg.span, f"signature: {builtin.signature}")
        return False

    def _mode_window(self, builtin: Builtin, expr: ast.Call, choice: str) -> bool:
        """A mode may need a longer window (``sample`` deviation: 2 values at least)."""
        assert builtin.mode is not None
        least = builtin.mode.least_window(choice)
        windows = [(n, a) for (n, k), a in zip(builtin.args, expr.args[:len(builtin.args)],
                                               strict=True) if k is Arg.WINDOW]
        if least <= 1 or not windows:
            return True
        name, arg = windows[0]
        found = intexpr.breach(arg, self.grids(), least, lowest=True)
        if found is None:
            return True
        self.error("T004", f"window `{name}` of `{builtin.name}(…, {choice})` must be at "
                   f"least {least}, found {_breach_text(arg, found)}", arg.span,
                   f"with `{choice}`, a window of fewer than {least} bars has no value")
        return False

    def _argument(self, builtin: Builtin, spec: tuple[str, Arg], arg: ast.Expr) -> Ty | None:
        name, kind = spec
        if isinstance(arg, ast.Name) and arg.id in MODE_WORDS and arg.id not in self.symbols:
            users = [b.name for b in BUILTINS.values() if b.mode and arg.id in b.mode.choices]
            self.error("T016", f"`{arg.id}` is a mode keyword, not a value for `{name}`",
                       arg.span, f"a mode goes last, after every other argument, in "
                       f"{', '.join(users)}: e.g. `{users[0]}(…, {arg.id})`")
            return None
        if kind is Arg.WINDOW:
            return self.window(arg, name, builtin.least_window)
        if name in builtin.conditions:  # a boolean series, passed like any series
            return self.expect(arg, Unit.BOOL, f"argument `{name}` of `{builtin.name}`")
        ty = self.infer(arg)
        if ty is None:
            return None
        if not ty.numeric:
            self.error("T001", f"argument `{name}` must be numeric, found {ty.describe()}",
                       arg.span)
            return None
        if kind is Arg.SCALAR and ty.series:
            self.error("T001", f"argument `{name}` must be a constant or a param, "
                       "found a series", arg.span)
            return None
        return ty

    def _call_result(self, builtin: Builtin, expr: ast.Call, tys: list[Ty | None]) -> Ty | None:
        values = [t for t, (n, k) in zip(tys, builtin.args, strict=True)
                  if t is not None and k is not Arg.WINDOW and n not in builtin.conditions]
        exprs = [a for a, (n, k) in zip(expr.args[:len(builtin.args)], builtin.args,
                                        strict=True)
                 if k is not Arg.WINDOW and n not in builtin.conditions]
        series = bool(builtin.implicit) or not builtin.elementwise or any(t.series for t in values)
        if builtin.result == SAME:
            return Ty(values[0].unit, series)
        if builtin.result == JOIN:
            return self._join(values, expr.span, series, exprs)
        assert isinstance(builtin.result, Unit)
        if builtin.name in ("crossover", "crossunder") and \
                self._join(values, expr.span, True, exprs, compared=True) is None:
            return None
        return Ty(builtin.result, series)

    def _join(self, tys: list[Ty], span: Span, series: bool,
              exprs: Sequence[ast.Expr] = (), compared: bool = False) -> Ty | None:
        sides = list(zip(exprs, tys, strict=False))
        if compared and not self._literals_fit(sides, "the arguments", span):
            return None
        unit = tys[0].unit
        try:
            for ty in tys[1:]:
                unit = add_units(unit, ty.unit)
        except UnitError as exc:
            self.error("T002", f"unit mismatch: {exc}", span, _oscillator_fixit(sides),
                       _oscillator_fix(sides))
            return None
        return Ty(unit, series)

    def window(self, arg: ast.Expr, name: str, least: int = 1) -> Ty | None:
        """A window: int arithmetic over int literals and int params (``n``, ``2 * n``,
        ``n + 1``) from ``least`` (1; 0 for ``valuewhen``'s occurrence) to ``MAX_WINDOW``
        bars for every value the params may take."""
        what = f"window `{name}`"
        if not self._integral(arg, "T004", what, WINDOW_HELP):
            return None
        for limit, lowest in ((least, True), (MAX_WINDOW, False)):
            found = intexpr.breach(arg, self.grids(), limit, lowest)
            if found is not None:
                self.error("T004", _window_problem(what, arg, found, limit, lowest), arg.span,
                           WINDOW_HELP)
                return None
        return self.infer(arg)

    def grids(self) -> dict[str, intexpr.Grid]:
        return int_grids(self.params)

    def _integral(self, expr: ast.Expr, code: str, what: str, help: str,
                  whole: str = WHOLE) -> bool:
        """``expr`` is whole-number arithmetic (``intexpr``); otherwise one diagnostic at its
        first part that is not, unless that part's own error was reported already."""
        self.used.update(intexpr.names(expr) & self.params.keys())
        part = intexpr.not_integral(expr, self.grids())
        if part is None:
            return True
        found = self._non_integral(part)
        if found is not None:
            self.error(code, f"{what} must be {whole}, found {found}", part.span, help)
        return False

    def _non_integral(self, part: ast.Expr) -> str | None:
        """What ``part`` is, for the message; None when inferring it reported an error."""
        if isinstance(part, ast.Name) and part.id in self.params:
            return f"the {self.params[part.id].type} param `{part.id}`"
        if isinstance(part, ast.Number):
            return f"`{part.text}`, not a whole number"
        if isinstance(part, ast.Binary) and part.op == "/":
            return "a division (`/`): there is no integer division"
        ty = self.infer(part)
        return None if ty is None else ty.describe()

    # frames -------------------------------------------------------------
    def _at(self, expr: ast.Expr) -> Ty | None:
        """``x@F`` has ``x``'s type; it must be a series (what a frame's bars give).
        Whether F can be read is ``lang.frames`` (``checker.check_frames``)."""
        assert isinstance(expr, ast.At)
        target = self.infer(expr.target)
        if target is not None and not target.series:
            self.error("T021", "only a series can be read on another timeframe or market; "
                       "this value is constant", expr.target.span,
                       "put `@` after the market data it reads, e.g. `close@4h`")
            return None
        return target

    # lag ----------------------------------------------------------------
    def _lag(self, expr: ast.Expr) -> Ty | None:
        assert isinstance(expr, ast.Lag)
        target = self.infer(expr.target)
        if not self._lag_ok(expr.lag) or target is None:
            return None
        if not target.series:
            self.error("T001", "only series can be lagged; this value is constant",
                       expr.target.span)
            return None
        return target

    def _lag_ok(self, lag: ast.Expr) -> bool:
        """A lag: int arithmetic over int literals and int params, never negative for any
        value the params may take (a negative lag reads the future: L001)."""
        if not self._integral(lag, "L002", "a lag", LAG_HELP, LAG_WHOLE):
            return False
        found = intexpr.breach(lag, self.grids(), 0, lowest=True)
        if found is None:
            self.infer(lag)
            return True
        self.error("L001", _lag_problem(lag, found, self.params), lag.span,
                   "lags count bars back and must be >= 0")
        return False

    # operators ----------------------------------------------------------
    def _neg(self, expr: ast.Expr) -> Ty | None:
        assert isinstance(expr, ast.Neg)
        ty = self.infer(expr.operand)
        if ty is not None and not ty.numeric:
            self.error("T001", f"cannot negate {ty.describe()}", expr.span)
            return None
        return ty

    def _not(self, expr: ast.Expr) -> Ty | None:
        assert isinstance(expr, ast.Not)
        return self.expect(expr.operand, Unit.BOOL, "the operand of `not`")

    def _binary(self, expr: ast.Expr) -> Ty | None:
        assert isinstance(expr, ast.Binary)
        left, right = self.infer(expr.left), self.infer(expr.right)
        if left is None or right is None:
            return None
        series = left.series or right.series
        if expr.op in ast.LOGIC_OPS:
            return self._logic(expr, left, right, series)
        if expr.op in ("==", "!=") and left.unit is Unit.BOOL and right.unit is Unit.BOOL:
            return Ty(Unit.BOOL, series)
        for side, ty in ((expr.left, left), (expr.right, right)):
            if not ty.numeric:
                self.error("T001", f"`{expr.op}` needs numbers, found {ty.describe()}", side.span)
                return None
        if expr.op == "/" and constant_value(expr.right) == 0:
            self._division_by_zero(expr)
            return None
        sides = [(expr.left, left), (expr.right, right)]
        if expr.op in ast.COMPARE_OPS and not self._literals_fit(
                sides, f"`{expr.op}`", expr.op_span):
            return None
        try:
            if expr.op in ast.COMPARE_OPS:
                compare_units(left.unit, right.unit)
                return Ty(Unit.BOOL, series)
            return Ty(ARITH[expr.op](left.unit, right.unit), series)
        except UnitError as exc:
            self.error("T002", f"unit mismatch in `{expr.op}`: {exc}", expr.op_span,
                       _oscillator_fixit(sides) or _unit_help(left.unit, right.unit),
                       _oscillator_fix(sides))
            return None

    def _literals_fit(self, sides: list[tuple[ast.Expr, Ty]], where: str, span: Span) -> bool:
        """A bare number compared with a percentage is read as a fraction: `roc(x, 10) > 2`
        means 200 %. Zero and numbers below 1 in size are fine; 1 and above are a T002
        (arithmetic such as `1 + 2%` is not a comparison and stays allowed)."""
        if not any(ty.unit in FRACTIONS for _, ty in sides):
            return True
        for expr, ty in sides:
            value = _literal(expr, ast.Number)
            if value is not None and ty.unit in PLAIN and abs(value) >= 1:
                self.error("T002", f"unit mismatch in {where}: a bare number next to a "
                           "percentage", span, f"did you mean `{_text(value)}%`? a bare "
                           f"`{_text(value)}` here means {_text(value * 100)} %",
                           _literal_fix(expr, f"{_text(value)}%"))
                return False
        return True

    def _logic(self, expr: ast.Binary, left: Ty, right: Ty, series: bool) -> Ty | None:
        for side, ty in ((expr.left, left), (expr.right, right)):
            if ty.unit is not Unit.BOOL:
                self.error("T001", f"`{expr.op}` needs booleans, found {ty.describe()}",
                           side.span, "compare it first, e.g. `x > 0`")
                return None
        return Ty(Unit.BOOL, series)

    def _ifelse(self, expr: ast.Expr) -> Ty | None:
        assert isinstance(expr, ast.IfElse)
        cond = self.expect(expr.cond, Unit.BOOL, "the condition of `if`")
        a, b = self.infer(expr.then), self.infer(expr.orelse)
        if cond is None or a is None or b is None:
            return None
        series = cond.series or a.series or b.series
        if a.unit is Unit.BOOL and b.unit is Unit.BOOL:
            return Ty(Unit.BOOL, series)
        if not (a.numeric and b.numeric):
            self.error("T001", f"`if` branches must both be numeric or both boolean, found "
                       f"{a.describe()} and {b.describe()}", expr.span)
            return None
        return self._join([a, b], expr.span, series)

    def _list(self, expr: ast.Expr) -> Ty | None:
        self.error("T001", "a list is not a value in an expression", expr.span)
        return None


def _breach_text(expr: ast.Expr, found: intexpr.Breach) -> str:
    """``0``, ``0 at n = 1``, or, when the grid was too large to search, the bound."""
    if found.at is None:
        return f"possibly {found.value} (interval bound; write each param once to prove it)"
    return f"{found.value}" + (f" at {intexpr.show_at(found.at)}" if found.at else "")


def _window_problem(what: str, expr: ast.Expr, found: intexpr.Breach, limit: int,
                    lowest: bool) -> str:
    side = "at least" if lowest else "at most"
    if isinstance(expr, ast.Name):  # a param: its range is the problem
        where = f"below {limit}" if lowest else f"above {limit:,}"
        return f"{what}: param `{expr.id}` range reaches {where}"
    if not intexpr.names(expr):
        return f"{what} must be {side} {limit:,}, found {found.value}"
    return (f"{what} = `{intexpr.text(expr)}` must be {side} {limit:,} for every param "
            f"value, found {_breach_text(expr, found)}")


def _lag_problem(lag: ast.Expr, found: intexpr.Breach, params: dict[str, ParamInfo]) -> str:
    if isinstance(lag, ast.Name):
        info = params[lag.id]
        return (f"look-ahead: param `{lag.id}` may be negative "
                f"(range {info.low:g}..{info.high:g})")
    if not intexpr.names(lag):
        return f"look-ahead: `[{intexpr.text(lag)}]` reads a future bar"
    return (f"look-ahead: lag `{intexpr.text(lag)}` may be negative, found "
            + _breach_text(lag, found))


def _literal(expr: ast.Expr, kind: type) -> float | None:
    """The value of a literal of ``kind`` (``Number``, ``Percent``), negated or not."""
    if isinstance(expr, ast.Neg):
        inner = _literal(expr.operand, kind)
        return None if inner is None else -inner
    if isinstance(expr, ast.Number | ast.Percent) and isinstance(expr, kind):
        return float(expr.value)
    return None


def _text(value: float) -> str:
    return f"{value:.10g}"


def _oscillator_fixit(sides: Sequence[tuple[ast.Expr, Ty]]) -> str:
    """`rsi(close, 14) < 30%` compares with 0.3: the oscillator runs 0–100."""
    if not any(ty.unit is Unit.OSCILLATOR for _, ty in sides):
        return ""
    for expr, _ in sides:
        value = _literal(expr, ast.Percent)
        if value is not None:
            return (f"did you mean `{_text(value * 100)}`? an oscillator runs 0–100, so "
                    f"`{_text(value * 100)}%` would compare with {_text(value)}")
    return "oscillators (rsi, adx, ±DI, percent_rank) run 0–100: compare them with plain numbers"


def _oscillator_fix(sides: Sequence[tuple[ast.Expr, Ty]]) -> Fix | None:
    """The machine-applicable form of ``_oscillator_fixit``: the percentage becomes the
    plain number (`30%` → `30`), for `peak check --fix` and an editor's quick fix."""
    if not any(ty.unit is Unit.OSCILLATOR for _, ty in sides):
        return None
    for expr, _ in sides:
        value = _literal(expr, ast.Percent)
        if value is not None:
            return _literal_fix(expr, _text(value * 100))
    return None


def _literal_fix(expr: ast.Expr, text: str) -> Fix:
    """Replace a literal (negated or not: the sign is part of ``text``) with ``text``."""
    return Fix(expr.span, text)


def _unit_help(a: Unit, b: Unit) -> str:
    if {a, b} & {Unit.PERCENT, Unit.BPS} and {a, b} & {Unit.PRICE, Unit.VOLUME}:
        return "scale instead: `close * (1 + 2%)`, or compare a ratio: `roc(close, 1) > 2%`"
    return "convert one side so both measure the same thing"


def is_plain(unit: Unit) -> bool:
    return unit in PLAIN
