"""Where two correct evaluators may disagree: rounding-level error bounds and near-ties.

Why this exists: the evaluator (running sums, numexpr) and the reference interpreter
(``math.fsum``, Python loops) round differently, by design. On real markets that never
shows, but the property feeds them flat prices and constants, where a comparison is often
an exact tie in one and off by an ulp in the other (``rma(0.001, 14) != 0.001``), or a
difference is 0 in one and 1e-19 in the other. Bars like that prove nothing either way;
every other bar must agree exactly (booleans, NaN positions) or to 1e-9 relative to the
magnitudes that went into the value.

``judge_reference`` walks the spec with the reference interpreter itself (a subclass that
sees every node's value) and returns, per let and rule:

* ``err``: a per-bar absolute error scale — the magnitudes that flowed into the value,
  amplified by divisions (first-order error propagation); the two evaluators may differ by
  ``TOL * err`` where a value is finite;
* ``doubt``: bars whose value depends on a decision that rounding can flip — a comparison
  whose sides lie within ``TOL * err`` of each other, a divisor, ``log``/``sqrt`` argument,
  deviation or range within rounding of zero — spread through lags, windows (their length)
  and recursive indicators (from then on).

Sources and literals are exact (both evaluators read the same doubles), so decisions on
them — ``close == open`` on a flat bar — are never in doubt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from peakdsl.engine.reference import (
    REFERENCE,
    Val,
    _Interpreter,
    level_exprs,
    reference_inputs,
)
from peakdsl.engine.reference_frames import FrameData
from peakdsl.engine.reference_state import state_values
from peakdsl.lang import ast
from peakdsl.lang.builtins import BUILTINS, DERIVED_SOURCES, Arg
from peakdsl.lang.checker import CheckedSpec
from peakdsl.lang.frames import frame_of
from peakdsl.lang.position import reads_position
from peakdsl.lang.types import Unit

Array = np.ndarray[Any, Any]
Key = tuple[int, str]  # a node (``id``) in a frame context ("" the strategy's own)
TOL = 1e-9  # rounding is ~1e-16 relative; a factor of 1e7 of slack for crude bounds


@dataclass(frozen=True)
class Judged:
    err: Array  # float64, >= 0, finite
    doubt: Array  # bool

    def shifted(self, n: int) -> Judged:
        return Judged(_shift(self.err, n, 0.0), _shift(self.doubt, n, False))


def _shift(a: Array, n: int, fill: Any) -> Array:
    out = np.full_like(a, fill)
    if n < len(a):
        out[n:] = a[: len(a) - n]
    return out


def _rolling(a: Array, n: int, fn: Callable[[Array], Any]) -> Array:
    return np.array([fn(a[max(0, t - n + 1): t + 1]) for t in range(len(a))], dtype=a.dtype)


def _finite(err: Array, value: Array, doubt: Array) -> Judged:
    """Unbounded error on a finite value is doubt; NaN values are exact (a decision)."""
    with np.errstate(invalid="ignore"):
        unbounded = ~np.isfinite(err) & np.isfinite(value)
    clean = np.where(np.isfinite(err) & np.isfinite(value), err, 0.0)
    return Judged(clean, doubt | unbounded)


def near(a: Array, b: Array | float, err: Array) -> Array:
    """``a`` and ``b`` (finite) closer than rounding could tell apart."""
    with np.errstate(invalid="ignore"):
        return np.asarray(np.abs(a - b) < TOL * err)


def _mag(x: Array, j: Judged) -> Array:
    return np.nan_to_num(np.abs(x), nan=0.0, posinf=0.0) + j.err


# ---------------------------------------------------------------- operators


def _arith(op: str, left: Array, right: Array, jl: Judged, jr: Judged, v: Array) -> Judged:
    """First-order error propagation of + - * /."""
    with np.errstate(all="ignore"):
        if op in ("+", "-"):
            err = jl.err + jr.err + np.abs(v)
        elif op == "*":
            err = jl.err * np.abs(right) + jr.err * np.abs(left) + np.abs(v)
        else:  # a divisor within rounding of 0 decides between NaN and a number
            err = (jl.err + np.abs(v) * jr.err) / np.abs(right) + np.abs(v)
            return _finite(err, v, jl.doubt | jr.doubt | near(right, 0.0, jr.err))
    return _finite(err, v, jl.doubt | jr.doubt)


def _logic(op: str, left: Array, right: Array, jl: Judged, jr: Judged) -> Array:
    """A doubtful operand matters only where the other one does not decide alone (false
    decides `and`, true decides `or`)."""
    def decides(x: Array) -> Array:
        return ~x if op == "and" else x

    return ((jl.doubt & (~decides(right) | jr.doubt))
            | (jr.doubt & (~decides(left) | jl.doubt)))


def judge_binary(op: str, left: Array, right: Array, jl: Judged, jr: Judged, v: Array
                 ) -> Judged:
    """Arithmetic propagates error; a comparison of numbers within rounding is a tie."""
    zero = np.zeros(len(v))
    if op in ("and", "or"):
        return Judged(zero, _logic(op, left, right, jl, jr))
    if op in ("+", "-", "*", "/"):
        return _arith(op, left, right, jl, jr, v)
    both_bool = left.dtype == np.bool_ and right.dtype == np.bool_
    tie = np.zeros(len(v), dtype=bool) if both_bool else near(left, right, jl.err + jr.err)
    return Judged(zero, jl.doubt | jr.doubt | tie)


# ---------------------------------------------------------------- built-ins


@dataclass(frozen=True)
class CallArgs:
    """A call's evaluated arguments: value args with their judgement, windows, scalars."""

    name: str
    xs: list[Array]
    js: list[Judged]
    windows: list[int]
    scalars: list[float]
    mode: tuple[str, ...]
    columns: Mapping[str, Array]
    value: Array


def _window_rule(extra: int) -> Callable[[CallArgs], Judged]:
    """Averages, extremes and deviations over ``n + extra`` bars: input magnitudes."""
    def rule(c: CallArgs) -> Judged:
        span = c.windows[0] + extra
        mag = _rolling(_mag(c.xs[0], c.js[0]), span, np.max) * (1 + sum(map(abs, c.scalars)))
        return Judged(mag + np.nan_to_num(np.abs(c.value)), _rolling(c.js[0].doubt, span, np.any))
    return rule


def _recursive(c: CallArgs) -> Judged:
    """Recursive averages remember every bar: errors and doubts last from then on."""
    mag = np.maximum.accumulate(_mag(c.xs[0], c.js[0]))
    return Judged(mag, np.logical_or.accumulate(c.js[0].doubt))


def _zscore(c: CallArgs) -> Judged:
    """(x - mean) / sd: NaN on a flat window; a deviation within the inputs' own error of 0
    decides between NaN and a number (an exact flat window from exact inputs does not)."""
    base = _window_rule(0)(c)
    noise = _rolling(c.js[0].err, c.windows[0], np.max)
    sd = REFERENCE["stdev"](c.xs[0], c.windows[0], *c.mode)
    with np.errstate(all="ignore"):
        err = base.err * (1 + np.abs(c.value)) / sd
    return _finite(err, c.value, base.doubt | near(sd, 0.0, noise))


def _ratio(c: CallArgs) -> Judged:
    """``roc``: x / x[n] - 1, a division by the value n bars back."""
    n = c.windows[0]
    back = c.js[0].shifted(n)
    prev = _shift(c.xs[0], n, np.nan)
    return _arith("/", c.xs[0], prev, c.js[0], back, c.value + 1.0)


def _rsi(c: CallArgs) -> Judged:
    """100·g/(g+l) of smoothed gains and losses; g + l within the inputs' error of 0 decides
    between 50 and a ratio."""
    x, j, n = c.xs[0], c.js[0], c.windows[0]
    diff = x - _shift(x, 1, np.nan)
    g = REFERENCE["rma"](np.where(np.isnan(diff), np.nan, np.maximum(diff, 0.0)), n)
    lo = REFERENCE["rma"](np.where(np.isnan(diff), np.nan, np.maximum(-diff, 0.0)), n)
    noise = np.maximum.accumulate(j.err + j.shifted(1).err)
    size = np.maximum.accumulate(np.nan_to_num(np.abs(diff))) + noise
    with np.errstate(all="ignore"):
        err = 100 * size / (g + lo)
    doubt = np.logical_or.accumulate(j.doubt) | near(g + lo, 0.0, noise)
    return _finite(np.where(g + lo == 0, 0.0, err), c.value, doubt)


def _hlc(c: CallArgs) -> tuple[Array, Array, Array]:
    return c.columns["high"], c.columns["low"], c.columns["close"]


def _directional(c: CallArgs) -> Judged:
    """DI and ADX divide smoothed moves by the smoothed range (ADX also by +DI + -DI). Their
    inputs are the candles themselves, exact on both sides: zero ranges are exact too."""
    h, lo, cl = _hlc(c)
    n = c.windows[0]
    scale = np.maximum.accumulate(np.nan_to_num(REFERENCE["true_range"](h, lo, cl)))
    total = sum(REFERENCE[f](h, lo, cl, n, *c.mode) for f in ("plus_di", "minus_di"))
    atr = REFERENCE["atr"](h, lo, cl, n)
    with np.errstate(all="ignore"):
        err = 100 * scale / atr * (1 + 200 / total if c.name == "adx" else 1)
    err = np.where((atr > 0) & (total > 0), np.nan_to_num(err, nan=0.0), 0.0)
    return Judged(np.maximum.accumulate(err), np.zeros(len(h), dtype=bool))


def _true_range(c: CallArgs) -> Judged:
    return Judged(np.nan_to_num(np.abs(c.value)), np.zeros(len(c.value), dtype=bool))


def _atr(c: CallArgs) -> Judged:
    scale = np.maximum.accumulate(np.nan_to_num(REFERENCE["true_range"](*_hlc(c))))
    return Judged(scale, np.zeros(len(c.value), dtype=bool))


def _steps(c: CallArgs) -> Judged:
    """``rising``/``falling``: each bar compared with the one before, over n + 1 bars."""
    x, j = c.xs[0], c.js[0]
    tie = near(x, _shift(x, 1, np.nan), j.err + j.shifted(1).err)
    span = c.windows[0] + 1
    return Judged(np.zeros(len(x)), _rolling(tie | j.doubt, span, np.any))


def _percent_rank(c: CallArgs) -> Judged:
    """Counts of the previous n values <= the current one: each count is a comparison."""
    x, j, n = c.xs[0], c.js[0], c.windows[0]
    tie = np.zeros(len(x), dtype=bool)
    for k in range(1, n + 1):
        tie |= near(_shift(x, k, np.nan), x, j.shifted(k).err + j.err)
    return Judged(np.zeros(len(x)), tie | _rolling(j.doubt, n + 1, np.any))


def _cross(c: CallArgs) -> Judged:
    (a, b), (ja, jb) = c.xs, c.js
    now = near(a, b, ja.err + jb.err) | ja.doubt | jb.doubt
    return Judged(np.zeros(len(a)), now | _shift(now, 1, False))


def _elementwise(c: CallArgs) -> Judged:
    """abs, min, max, clip, nz: the value is one of the operands (NaN propagation is
    exact)."""
    err = np.max([_mag(x, j) for x, j in zip(c.xs, c.js, strict=True)], axis=0)
    return Judged(err, np.any([j.doubt for j in c.js], axis=0))


def _domain(c: CallArgs) -> Judged:
    """log and sqrt: an argument within rounding of 0 decides NaN against a number."""
    x, j = c.xs[0], c.js[0]
    with np.errstate(all="ignore"):
        slope = 1 / np.abs(x) if c.name == "log" else 1 / (2 * np.sqrt(np.abs(x)))
        err = j.err * slope + np.abs(c.value)
    return _finite(err, c.value, j.doubt | near(x, 0.0, j.err))


BUILTIN_RULES: dict[str, Callable[[CallArgs], Judged]] = {
    **dict.fromkeys(("sma", "wma", "highest", "lowest", "stdev", "bb_upper", "bb_lower"),
                    _window_rule(0)),
    **dict.fromkeys(("ema", "rma", "macd", "macd_signal", "macd_hist"), _recursive),
    **dict.fromkeys(("plus_di", "minus_di", "adx"), _directional),
    **dict.fromkeys(("rising", "falling"), _steps),
    **dict.fromkeys(("crossover", "crossunder"), _cross),
    **dict.fromkeys(("abs", "min", "max", "clip", "nz"), _elementwise),
    **dict.fromkeys(("log", "sqrt"), _domain),
    "zscore": _zscore, "roc": _ratio, "rsi": _rsi, "true_range": _true_range, "atr": _atr,
    "percent_rank": _percent_rank,
}


# ---------------------------------------------------------------- the walk


class _Judge(_Interpreter):
    """The reference interpreter, recording every node's value and judgement, by node and
    frame context (a let named inside ``@F`` is evaluated again there). A value read on
    other bars than its own (``moved``: a constant stretched to a frame, a frame's series
    aligned to the strategy's bars) is recorded as read: its judgement moves with it."""

    def __init__(self, columns: dict[str, Array], params: dict[str, float | int],
                 frames: FrameData | None = None) -> None:
        super().__init__(columns, params, frames)
        self.raw: dict[Key, tuple[Val, Judged]] = {}
        self.values: dict[Key, Array] = {}
        self.judged: dict[Key, Judged] = {}
        self.let_judged: dict[str, Judged] = {}
        self.call_columns: dict[str, Array] = {}

    def key(self, expr: ast.Expr) -> Key:
        return id(expr), self.context

    def evaluate(self, expr: ast.Expr) -> Val:
        val = super().evaluate(expr)
        judged = self.judge(expr, val.data)
        self.raw[self.key(expr)] = (val, judged)
        self.values[self.key(expr)], self.judged[self.key(expr)] = val.data, judged
        return val

    def moved(self, expr: ast.Expr | None, val: Val, frame: str | None) -> None:
        if expr is None or frame is None or self.key(expr) not in self.raw:
            return
        raw, judged = self.raw[self.key(expr)]
        err = self.reshape(Val(judged.err, raw.frame), frame)
        doubt = self.reshape(Val(judged.doubt, raw.frame), frame)
        self.values[self.key(expr)] = self.reshape(raw, frame)
        self.judged[self.key(expr)] = Judged(np.nan_to_num(err, nan=0.0), doubt)

    def child(self, expr: ast.Expr) -> tuple[Array, Judged]:
        return self.values[self.key(expr)], self.judged[self.key(expr)]

    @staticmethod
    def exact(n: int) -> Judged:
        return Judged(np.zeros(n), np.zeros(n, dtype=bool))

    def judge(self, expr: ast.Expr, value: Array) -> Judged:
        match expr:
            case ast.Name(id=name) if name in self.lets and self.context:
                return self.raw[(id(self.let_exprs[name]), self.context)][1]
            case ast.Name(id=name) if name in self.let_judged:
                return self.let_judged[name]
            case ast.Name(id=name) if name in DERIVED_SOURCES:
                return Judged(np.abs(value), np.zeros(len(value), dtype=bool))
            case ast.Neg(operand=x) | ast.Not(operand=x):
                return self.child(x)[1]
            case ast.At(target=x):
                frame = frame_of(expr, self.frames.market, self.frames.timeframe) \
                    if self.frames is not None else None
                return self.judged[(id(x), frame.key if frame else self.context)]
            case ast.Binary(op=op, left=a, right=b) if self.folded(op, (a, b)) is not None:
                return self.folded(op, (a, b)) or self.exact(len(value))
            case ast.Binary(op=op, left=a, right=b):
                (left, jl), (right, jr) = self.child(a), self.child(b)
                return judge_binary(op, left, right, jl, jr, value)
            case ast.IfElse(cond=c, then=t, orelse=e) if self.folded("if", (c, t, e)) \
                    is not None:
                return self.folded("if", (c, t, e)) or self.exact(len(value))
            case ast.IfElse(cond=c, then=t, orelse=e):
                return self._where(c, t, e)
            case ast.Lag(target=x, lag=n):
                return self.child(x)[1].shifted(self.integer(n))
            case ast.Call():
                return BUILTIN_RULES[expr.func](self.call_args(expr, value))
        return self.exact(len(value))  # literals, params, sources: the same doubles on both sides

    def folded(self, op: str, exprs: tuple[ast.Expr, ...]) -> Judged | bool | None:
        """A node a literal boolean decides (``_Interpreter.decided``): the judgement of
        the operand it is, False when it is a new constant, None when not decided."""
        found = self.decided(op, [self.raw[self.key(e)][0] for e in exprs])
        if found is None:
            return None
        return False if found[0] is None else self.raw[self.key(exprs[found[0]])][1]

    def _where(self, c: ast.Expr, t: ast.Expr, e: ast.Expr) -> Judged:
        (cond, jc), (_, jt), (_, je) = self.child(c), self.child(t), self.child(e)
        return Judged(np.where(cond, jt.err, je.err), jc.doubt | np.where(cond, jt.doubt,
                                                                          je.doubt))

    def call(self, expr: ast.Call) -> Val:
        """The call, keeping the candles its implicit sources read (on the call's bars)."""
        val = super().call(expr)
        columns = self.frame_columns(self.context)
        aligned = val.frame == "" and self.context != ""  # its sources met the strategy's
        self.call_columns = {c: self.reshape(Val(columns[c], self.context), "") if aligned
                             else columns[c] for c in ("open", "high", "low", "close", "volume")}
        return val

    def call_args(self, expr: ast.Call, value: Array) -> CallArgs:
        builtin = BUILTINS[expr.func]
        xs, js, windows, scalars = [], [], [], []
        for (_, kind), arg in zip(builtin.args, expr.args[: len(builtin.args)], strict=True):
            if kind is Arg.WINDOW:
                windows.append(self.integer(arg))
            elif kind is Arg.SCALAR:
                scalar = self.values[self.key(arg)]
                scalars.append(float(scalar[0]) if len(scalar) else 0.0)
            else:
                x, j = self.child(arg)
                xs.append(x)
                js.append(j)
        mode = builtin.mode_args(builtin.call_mode(expr))
        return CallArgs(expr.func, xs, js, windows, scalars, mode, self.call_columns, value)


def _judge_state(judge: _Judge, spec: CheckedSpec, let: ast.Let) -> Judged:
    """A ``state``: its values as the reference computes them, then its body judged once
    more over the final past. Each bar's rounding is carried into every later bar (the
    errors add up, as in a running sum, which bounds the additive and extremum recursions
    states are made of), and a decision in doubt stays in doubt from then on."""
    ty = spec.types.get(id(let.expr))
    judge.let_judged[let.name] = judge.exact(judge.size)
    judge.let_exprs[let.name] = let.expr
    judge.lets[let.name] = Val(state_values(judge, let, ty is not None and
                                            ty.unit is Unit.BOOL), "")
    judge.value_of(let.expr)
    body = judge.judged[(id(let.expr), "")]
    return Judged(np.cumsum(body.err), np.logical_or.accumulate(body.doubt))


def judge_reference(spec: CheckedSpec, frame: pd.DataFrame, params: Mapping[str, float],
                    markets: Mapping[str, pd.DataFrame] | None = None) -> dict[str, Judged]:
    """Per let and rule slot: where the reference is within rounding of a decision."""
    judge = _Judge(*reference_inputs(spec, frame, params, markets))
    out: dict[str, Judged] = {}
    for let in spec.items(ast.Let):  # lets first, then rules: reference_evaluate's order
        assert isinstance(let, ast.Let)
        if let.state:
            out[let.name] = judge.let_judged[let.name] = _judge_state(judge, spec, let)
            continue
        value = judge.define(let, spec.types)
        judge.let_judged[let.name] = judge.raw[(id(let.expr), "")][1]
        judge.based(let.expr, value)
        out[let.name] = judge.judged[(id(let.expr), "")]
    for rule in spec.items(ast.Rule):
        if reads_position(rule.expr):
            continue  # compared by simulating (reference_position_rules)
        judge.value_of(rule.expr)
        out[rule.slot] = judge.judged[(id(rule.expr), "")]
    for slot, expr in level_exprs(spec):  # reference_evaluate's `level SLOT` entries
        judge.value_of(expr)
        found = judge.judged[(id(expr), "")]
        out[f"level {slot}"] = Judged(*(np.broadcast_to(np.asarray(a), (len(frame),))
                                        for a in (found.err, found.doubt)))
    return out


# The ported indicators' rules live in ``rounding_ta.py`` and join BUILTIN_RULES on import.
import rounding_ta  # noqa: E402, F401
