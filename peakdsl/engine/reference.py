"""A slow, obvious reference interpreter of a checked strategy, for cross-checking.

``reference_evaluate`` walks the AST of a ``CheckedSpec`` and computes every ``let`` and
rule with plain Python loops and numpy, independently of ``kernels.py`` (which it does not
import). Every value is materialised as a full-length array of the bars it is a series of
(``Val``: the strategy's, or a frame's for ``x@4h``; constants at the strategy's length), so
the interpreter never needs to reason about shapes; frames follow ``lang.frames`` (the rule is
on ``_Interpreter``, the bars and alignment are ``reference_frames``).

Semantics (the same contract as ``kernels.py``):

* a non-finite value (NaN, ±inf) is *missing*; window indicators need every value they
  read to be finite, recursive ones (ema rma rsi atr macd* plus_di minus_di adx) skip
  missing bars, keeping their state, and seed with the mean of the first ``n`` valid
  values;
* comparisons with a NaN operand are False, except ``!=``, which is ``not ==``; ``and or
  not`` on bools; ``a / b`` is NaN when ``b`` is 0 or not finite; ``log(x)`` is NaN for
  ``x <= 0``; the integer ``not`` of numexpr never appears: booleans are booleans;
* ``x[n]`` shifts with NaN (False for bools); ``if c then a else b`` is ``where(c, a, b)``;
* ``min``/``max`` are NaN when either operand is NaN, else the smaller / larger;
  ``clip(x, lo, hi) = min(max(x, lo), hi)``;
* ``crossover(a, b) = a > b and a[1] <= b[1]``, ``crossunder(a, b) = a < b and
  a[1] >= b[1]``, NaN never crosses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..lang import ast
from ..lang.builtins import (
    BUILTINS,
    DERIVED_SOURCES,
    DEVIATION,
    POSITION_SOURCES,
    SEEDING,
    Arg,
    Mode,
)
from ..lang.checker import CheckedSpec
from ..lang.frames import frame_of
from ..lang.levels import level_slot, levels_of
from ..lang.position import reads_position
from ..lang.types import Unit
from .reference_frames import FrameData, seconds_of
from .reference_state import state_values
from .reference_ta import REFERENCE_TA

Array = npt.NDArray[Any]
RefFunc = Callable[..., Array]
OHLCV = ("open", "high", "low", "close", "volume")
NAN = float("nan")


def _ok(v: float) -> bool:
    return math.isfinite(v)


def _floats(x: npt.ArrayLike) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=np.float64)]


def _result(values: Sequence[float]) -> Array:
    return np.array(values, dtype=np.float64)


# ---------------------------------------------------------------- indicators, one by one


def _windows(x: npt.ArrayLike, n: int, fn: Callable[[list[float]], float]) -> Array:
    """``fn`` of each full window of the last ``n`` values, NaN if any is missing."""
    xs = _floats(x)
    out = [NAN] * len(xs)
    for i in range(n - 1, len(xs)):
        window = xs[i - n + 1 : i + 1]
        if all(_ok(v) for v in window):
            out[i] = fn(window)
    return _result(out)


def _mean(w: list[float]) -> float:
    return math.fsum(w) / len(w)


def _pstdev(w: list[float]) -> float:
    if max(w) == min(w):
        return 0.0
    m = _mean(w)
    return math.sqrt(math.fsum((v - m) ** 2 for v in w) / len(w))


def _sstdev(w: list[float]) -> float:
    """The sample deviation (squares over n - 1); undefined for a single value."""
    if len(w) < 2:
        return NAN
    if max(w) == min(w):
        return 0.0
    m = _mean(w)
    return math.sqrt(math.fsum((v - m) ** 2 for v in w) / (len(w) - 1))


_DEVIATIONS: dict[str, Callable[[list[float]], float]] = {
    "population": _pstdev, "sample": _sstdev,
}


def _checked(mode: str, choices: Mode) -> str:
    if mode not in choices.choices:
        raise ValueError(f"unknown mode {mode!r}")
    return mode


def ref_sma(x: npt.ArrayLike, n: int) -> Array:
    return _windows(x, n, _mean)


def ref_stdev(x: npt.ArrayLike, n: int, mode: str = "population") -> Array:
    return _windows(x, n, _DEVIATIONS[_checked(mode, DEVIATION)])


def ref_zscore(x: npt.ArrayLike, n: int, mode: str = "population") -> Array:
    deviation = _DEVIATIONS[_checked(mode, DEVIATION)]

    def z(w: list[float]) -> float:
        sd = deviation(w)
        return NAN if sd == 0.0 else (w[-1] - _mean(w)) / sd
    return _windows(x, n, z)


def ref_bb_upper(x: npt.ArrayLike, n: int, k: float, mode: str = "population") -> Array:
    deviation = _DEVIATIONS[_checked(mode, DEVIATION)]
    return _windows(x, n, lambda w: _mean(w) + k * deviation(w))


def ref_bb_lower(x: npt.ArrayLike, n: int, k: float, mode: str = "population") -> Array:
    deviation = _DEVIATIONS[_checked(mode, DEVIATION)]
    return _windows(x, n, lambda w: _mean(w) - k * deviation(w))


def ref_wma(x: npt.ArrayLike, n: int) -> Array:
    def weighted(w: list[float]) -> float:
        return math.fsum((j + 1) * v for j, v in enumerate(w)) / (n * (n + 1) / 2)
    return _windows(x, n, weighted)


def ref_highest(x: npt.ArrayLike, n: int) -> Array:
    return _windows(x, n, max)


def ref_lowest(x: npt.ArrayLike, n: int) -> Array:
    return _windows(x, n, min)


def ref_percent_rank(x: npt.ArrayLike, n: int) -> Array:
    # a window of n + 1 values: the n previous ones and the current one (last)
    return _windows(x, n + 1, lambda w: 100.0 * sum(1 for v in w[:-1] if v <= w[-1]) / n)


def ref_roc(x: npt.ArrayLike, n: int) -> Array:
    xs = _floats(x)
    out = [NAN] * len(xs)
    for i in range(n, len(xs)):
        if _ok(xs[i]) and _ok(xs[i - n]) and xs[i - n] != 0:  # only these two are read
            out[i] = xs[i] / xs[i - n] - 1.0
    return _result(out)


def _smoothed(x: npt.ArrayLike, n: int, alpha: float, start: int = 0) -> Array:
    """Recursive smoothing over the valid values only, seeded with the mean of n of them:
    the first n, or (``start`` > n) the n ending at the ``start``-th valid value."""
    xs = _floats(x)
    out = [NAN] * len(xs)
    valid = [i for i, v in enumerate(xs) if _ok(v)]
    seed = max(n, start)  # the seed's position among the valid values, from 1
    if len(valid) < seed:
        return _result(out)
    state = math.fsum(xs[i] for i in valid[seed - n : seed]) / n
    out[valid[seed - 1]] = state
    for i in valid[seed:]:
        state = alpha * xs[i] + (1 - alpha) * state
        out[i] = state
    return _result(out)


def ref_ema(x: npt.ArrayLike, n: int) -> Array:
    return _smoothed(x, n, 2 / (n + 1))


def ref_rma(x: npt.ArrayLike, n: int) -> Array:
    return _smoothed(x, n, 1 / n)


def ref_rsi(x: npt.ArrayLike, n: int) -> Array:
    xs = _floats(x)
    gains = [NAN] * len(xs)
    losses = [NAN] * len(xs)
    for i in range(1, len(xs)):
        if _ok(xs[i]) and _ok(xs[i - 1]):
            d = xs[i] - xs[i - 1]
            gains[i] = max(d, 0.0)
            losses[i] = max(-d, 0.0)
    g, lo = ref_rma(gains, n), ref_rma(losses, n)
    out = [NAN] * len(xs)
    for i in range(len(xs)):
        if math.isnan(g[i]):
            continue
        if lo[i] == 0:
            out[i] = 50.0 if g[i] == 0 else 100.0
        else:
            out[i] = 100 - 100 / (1 + g[i] / lo[i])
    return _result(out)


def ref_true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> Array:
    h, lo, c = _floats(high), _floats(low), _floats(close)
    out = [NAN] * len(h)
    for i in range(1, len(h)):
        if _ok(h[i]) and _ok(lo[i]) and _ok(c[i - 1]):
            out[i] = max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1]))
    return _result(out)


def ref_atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int) -> Array:
    return ref_rma(ref_true_range(high, low, close), n)


def _wilder_sums(x: npt.ArrayLike, n: int) -> Array:
    """TA-Lib's Wilder smoothing over the valid values: the plain sum of the first n - 1,
    then ``s - s/n + x`` from the n-th on (n times peak's ``rma`` scale)."""
    xs = _floats(x)
    out = [NAN] * len(xs)
    valid = [i for i, v in enumerate(xs) if _ok(v)]
    if len(valid) < n:
        return _result(out)
    state = math.fsum(xs[i] for i in valid[: n - 1])
    for i in valid[n - 1 :]:
        state = state - state / n + xs[i]
        out[i] = state
    return _result(out)


def _held_rma(dx: list[float], flat: list[bool], n: int) -> Array:
    """TA-Lib's ADX: the mean of the first n DX, then Wilder steps, except that a bar whose
    DIs sum to 0 (``flat``) leaves the value unchanged once the seed is taken."""
    out = [NAN] * len(dx)
    valid = [i for i, v in enumerate(dx) if _ok(v)]
    if len(valid) < n:
        return _result(out)
    state = math.fsum(dx[i] for i in valid[:n]) / n
    out[valid[n - 1]] = state
    for i in valid[n:]:
        if not flat[i]:
            state = (state * (n - 1) + dx[i]) / n
        out[i] = state
    return _result(out)


def _directional(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                 n: int, mode: str = "peak") -> tuple[Array, Array, Array]:
    """(+DI, -DI, ADX): the bar counts when h, l, h[1], l[1], c[1] are all finite."""
    talib = _checked(mode, SEEDING) == "talib"
    h, lo = _floats(high), _floats(low)
    tr = _floats(ref_true_range(high, low, close))
    size = len(h)
    pdm, mdm = [NAN] * size, [NAN] * size
    for i in range(1, size):
        if not (_ok(tr[i]) and _ok(h[i - 1]) and _ok(lo[i - 1])):
            tr[i] = NAN
            continue
        up, down = h[i] - h[i - 1], lo[i - 1] - lo[i]
        pdm[i] = up if up > down and up > 0 else 0.0
        mdm[i] = down if down > up and down > 0 else 0.0
    smooth = _wilder_sums if talib else ref_rma
    s_tr, s_p, s_m = smooth(tr, n), smooth(pdm, n), smooth(mdm, n)
    plus, minus, dx = [NAN] * size, [NAN] * size, [NAN] * size
    flat = [False] * size

    def percent(a: float, b: float) -> float:  # TA-Lib divides first
        return 0.0 if not b > 0 else 100 * (a / b) if talib else 100 * a / b
    for i in range(size):
        if math.isnan(s_tr[i]):
            continue
        plus[i], minus[i] = percent(s_p[i], s_tr[i]), percent(s_m[i], s_tr[i])
        # TA-Lib's DX uses the smoothed DMs (the TR cancels); peak's the DIs
        up, down = (s_p[i], s_m[i]) if talib else (plus[i], minus[i])
        flat[i] = not up + down > 0
        dx[i] = percent(abs(up - down), up + down)
    adx = _held_rma(dx, flat, n) if talib else ref_rma(dx, n)
    return _result(plus), _result(minus), adx


def ref_plus_di(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                n: int, mode: str = "peak") -> Array:
    return _directional(high, low, close, n, mode)[0]


def ref_minus_di(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike,
                 n: int, mode: str = "peak") -> Array:
    return _directional(high, low, close, n, mode)[1]


def ref_adx(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int,
            mode: str = "peak") -> Array:
    return _directional(high, low, close, n, mode)[2]


def ref_macd(x: npt.ArrayLike, fast: int, slow: int, mode: str = "peak") -> Array:
    """peak: two independent EMAs. talib: both seeded at the longer one's first bar, the
    shorter with the mean of its last ``n`` values there."""
    start = max(fast, slow) if _checked(mode, SEEDING) == "talib" else 0
    return _smoothed(x, fast, 2 / (fast + 1), start) - _smoothed(x, slow, 2 / (slow + 1), start)


def ref_macd_signal(x: npt.ArrayLike, fast: int, slow: int, signal: int,
                    mode: str = "peak") -> Array:
    return ref_ema(ref_macd(x, fast, slow, mode), signal)


def ref_macd_hist(x: npt.ArrayLike, fast: int, slow: int, signal: int,
                  mode: str = "peak") -> Array:
    return ref_macd(x, fast, slow, mode) - ref_macd_signal(x, fast, slow, signal, mode)


def _streak(x: npt.ArrayLike, n: int, up: bool) -> Array:
    xs = _floats(x)
    out = [False] * len(xs)
    for i in range(n, len(xs)):
        ok = True
        for j in range(n):
            a, b = xs[i - j], xs[i - j - 1]
            if not (_ok(a) and _ok(b) and (a > b if up else a < b)):
                ok = False
        out[i] = ok
    return np.array(out, dtype=bool)


def ref_rising(x: npt.ArrayLike, n: int) -> Array:
    return _streak(x, n, True)


def ref_falling(x: npt.ArrayLike, n: int) -> Array:
    return _streak(x, n, False)


def ref_lag(x: npt.ArrayLike, n: int) -> Array:
    arr = np.asarray(x)
    is_bool = arr.dtype == np.bool_
    values: list[Any] = list(arr) if is_bool else _floats(arr)
    fill: Any = False if is_bool else NAN
    out = [values[i - n] if i >= n else fill for i in range(len(values))]
    return np.array(out, dtype=bool if is_bool else np.float64)


def ref_abs(x: npt.ArrayLike) -> Array:
    return np.abs(np.asarray(x, dtype=np.float64))


def ref_log(x: npt.ArrayLike) -> Array:
    xs = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(xs) & (xs > 0)
    return np.where(ok, np.log(np.where(ok, xs, 1.0)), NAN)


def ref_sqrt(x: npt.ArrayLike) -> Array:
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.asarray(x, dtype=np.float64))


def _either_nan(a: Array, b: Array) -> Array:
    return np.isnan(a) | np.isnan(b)


def ref_min(a: npt.ArrayLike, b: npt.ArrayLike) -> Array:
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.where(_either_nan(a_, b_), NAN, np.where(a_ < b_, a_, b_))


def ref_max(a: npt.ArrayLike, b: npt.ArrayLike) -> Array:
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.where(_either_nan(a_, b_), NAN, np.where(a_ > b_, a_, b_))


def ref_nz(x: npt.ArrayLike, fallback: npt.ArrayLike) -> Array:
    xs = np.asarray(x)
    return np.where(np.isnan(xs.astype(np.float64)), fallback, xs)


def ref_clip(x: npt.ArrayLike, lo: npt.ArrayLike, hi: npt.ArrayLike) -> Array:
    return ref_min(ref_max(x, lo), hi)


def ref_crossover(a: npt.ArrayLike, b: npt.ArrayLike) -> Array:
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a_ > b_) & (ref_lag(a_, 1) <= ref_lag(b_, 1))


def ref_crossunder(a: npt.ArrayLike, b: npt.ArrayLike) -> Array:
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a_ < b_) & (ref_lag(a_, 1) >= ref_lag(b_, 1))


# Same names and calling convention as ``kernels.KERNELS``, plus the elementwise builtins
# and crosses (which the compiler lowers to numexpr instead of kernels).
REFERENCE: dict[str, RefFunc] = {
    "sma": ref_sma, "ema": ref_ema, "wma": ref_wma, "rma": ref_rma, "rsi": ref_rsi,
    "true_range": ref_true_range, "atr": ref_atr, "stdev": ref_stdev, "zscore": ref_zscore,
    "roc": ref_roc, "highest": ref_highest, "lowest": ref_lowest, "bb_upper": ref_bb_upper,
    "bb_lower": ref_bb_lower, "macd": ref_macd, "macd_signal": ref_macd_signal,
    "macd_hist": ref_macd_hist, "adx": ref_adx, "plus_di": ref_plus_di,
    "minus_di": ref_minus_di, "percent_rank": ref_percent_rank, "rising": ref_rising,
    "falling": ref_falling, "lag": ref_lag, "abs": ref_abs, "log": ref_log, "sqrt": ref_sqrt,
    "min": ref_min, "max": ref_max, "clip": ref_clip, "nz": ref_nz, "crossover": ref_crossover,
    "crossunder": ref_crossunder,
    **REFERENCE_TA,  # the ported indicators (reference_ta.py)
}


# ---------------------------------------------------------------- the interpreter

_ARITH: dict[str, Callable[[Array, Array], Array]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
}
_INT_ARITH: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
}
_COMPARE: dict[str, Callable[[Array, Array], Array]] = {
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
    "==": np.equal, "!=": np.not_equal,
}


@dataclass(frozen=True)
class Val:
    """A value and the bars it is a series of: ``frame`` None for a constant (no market
    data: literals, params and what is computed from them only; its ``data`` is the
    strategy's length, every element equal), "" for the strategy's own bars, else a frame
    key (``4h``, ``ETH/USDT``, ``ETH/USDT@4h``) whose bars ``data`` has one value per."""

    data: Array
    frame: str | None
    literal: bool = False  # a constant of literals only (no param): what the language folds


def _literal(pairs: Sequence[tuple[Any, Val]]) -> bool:
    return all(v.literal for _, v in pairs)


class _Interpreter:
    """The AST, evaluated over whole arrays. The frame rule (``lang.frames``): a value's
    frame is the single frame of its series operands (constants are neutral; a window, lag
    or cross of constants only is on the strategy's own bars); sources read the frame of the
    ``@`` they are written in, a let named inside ``@F`` is recomputed on F; where operands
    of different frames meet, each one that is not the strategy's own is aligned to its
    bars first (``FrameData.align``), and so is every let, rule and level read out."""

    def __init__(self, columns: dict[str, Array], params: dict[str, float | int],
                 frames: FrameData | None = None) -> None:
        self.columns = columns
        self.params = params
        self.frames = frames
        self.lets: dict[str, Val] = {}
        self.let_exprs: dict[str, ast.Expr] = {}
        self.framed: dict[tuple[str, str], Val] = {}
        self.context = ""  # the frame the ``@`` being evaluated reads ("" none)
        self.size = len(columns["close"])

    def const(self, value: float | bool, literal: bool = True) -> Val:
        return Val(np.full(self.size, value, dtype=bool if isinstance(value, bool)
                           else np.float64), None, literal)

    # frames -------------------------------------------------------------
    def frame_columns(self, key: str) -> dict[str, Array]:
        if not key:
            return self.columns
        if self.frames is None:
            raise ValueError("the spec reads other frames (`@`): give reference_evaluate a "
                             "time-indexed DataFrame")
        return self.frames.columns(key)

    def length(self, frame: str | None) -> int:
        return self.size if not frame else len(self.frame_columns(frame)["close"])

    def meet(self, pairs: Sequence[tuple[ast.Expr | None, Val]]
             ) -> tuple[str | None, list[Array]]:
        """The frame operands meet on and their data there: theirs when they share one
        (constants stretched to its length), else the strategy's own, the others aligned."""
        frames = {v.frame for _, v in pairs if v.frame is not None}
        frame = None if not frames else frames.pop() if len(frames) == 1 else ""
        return frame, [self.shaped(e, v, frame) for e, v in pairs]

    def shaped(self, expr: ast.Expr | None, val: Val, frame: str | None) -> Array:
        """``val``'s data on ``frame``'s bars (a constant stays as it is for None)."""
        if frame is None or val.frame == frame:
            return val.data
        self.moved(expr, val, frame)
        return self.reshape(val, frame)

    def reshape(self, val: Val, frame: str) -> Array:
        """A constant stretched to ``frame``'s length, or a frame's series aligned to the
        strategy's bars (the only two ways values move)."""
        if val.frame is None:
            fill = val.data[0] if len(val.data) else np.nan
            return np.full(self.length(frame), fill, dtype=val.data.dtype)
        assert frame == "" and self.frames is not None, "frames meet on the strategy's bars"
        return self.frames.align(val.data, val.frame)

    def moved(self, expr: ast.Expr | None, val: Val, frame: str | None) -> None:
        """Hook: ``expr``'s value ``val`` was read on ``frame`` (``rounding``'s judge)."""

    def based(self, expr: ast.Expr | None, val: Val) -> Array:
        """``val`` on the strategy's bars, full length: how lets, rules and levels are read."""
        return self.shaped(expr, val, "")

    def value_of(self, expr: ast.Expr) -> Array:
        """``expr`` on the strategy's bars, one value per bar."""
        return self.based(expr, self.evaluate(expr))

    # the walk -----------------------------------------------------------
    def evaluate(self, expr: ast.Expr) -> Val:
        match expr:
            case ast.Number() | ast.Percent() | ast.Bps():
                return self.const(float(expr.value))
            case ast.Money():
                return self.const(float(expr.amount))
            case ast.Bool():
                return self.const(bool(expr.value))
            case ast.Name():
                return self.name(expr.id)
            case ast.Neg():
                x = self.evaluate(expr.operand)
                return Val(-x.data, x.frame, x.literal)
            case ast.Not():
                x = self.evaluate(expr.operand)
                return Val(np.logical_not(x.data), x.frame, x.literal)
            case ast.Binary():
                pairs = self.pairs(expr.left, expr.right)
                decided = self.decided(expr.op, [v for _, v in pairs])
                if decided is not None:
                    return decided[1]
                frame, (a, b) = self.meet(pairs)
                return Val(self.binary(expr.op, a, b), frame, _literal(pairs))
            case ast.IfElse():
                pairs = self.pairs(expr.cond, expr.then, expr.orelse)
                decided = self.decided("if", [v for _, v in pairs])
                if decided is not None:
                    return decided[1]
                frame, (c, a, b) = self.meet(pairs)
                return Val(np.where(c, a, b), frame, _literal(pairs))
            case ast.Lag():
                return self.lagged(expr)
            case ast.Call():
                return self.call(expr)
            case ast.At():
                return self.at(expr)
        raise TypeError(f"cannot evaluate {type(expr).__name__} in a signal expression")

    def pairs(self, *exprs: ast.Expr) -> list[tuple[ast.Expr | None, Val]]:
        return [(e, self.evaluate(e)) for e in exprs]

    def decided(self, op: str, vals: Sequence[Val]) -> tuple[int | None, Val] | None:
        """What a literal boolean decides alone, whatever the other operands' frames (the
        language's own identities: ``if true then a else b`` is ``a``, ``if c then true
        else true`` is ``true``, ``x and false`` is ``false``, ``x or false`` is ``x``): (the
        operand it is, or None for a new constant, and its value)."""
        def known(v: Val) -> bool:
            return v.literal and v.frame is None and v.data.dtype == np.bool_ and len(v.data) > 0

        if op == "if":
            if known(vals[0]):
                return (1, vals[1]) if bool(vals[0].data[0]) else (2, vals[2])
            same = known(vals[1]) and known(vals[2]) and vals[1].data[0] == vals[2].data[0]
            return (None, self.const(bool(vals[1].data[0]))) if same else None
        if op not in ("and", "or"):
            return None
        for k, v in enumerate(vals):
            if known(v):
                absorbs = bool(v.data[0]) == (op == "or")
                return (None, self.const(op == "or")) if absorbs else (1 - k, vals[1 - k])
        return None

    def lagged(self, expr: ast.Lag) -> Val:
        """``x[n]``: n bars of x's own frame back (a constant lagged is a series of the
        strategy's bars, missing at first)."""
        x = self.evaluate(expr.target)
        return Val(ref_lag(x.data, self.integer(expr.lag)), "" if x.frame is None else x.frame)

    def at(self, expr: ast.At) -> Val:
        """``x@F``: x with every source reading F (the strategy's own frame: just x)."""
        assert self.frames is not None or (expr.market is None and expr.timeframe is None)
        market, timeframe = (self.frames.market, self.frames.timeframe) if self.frames \
            else ("", "")
        frame = frame_of(expr, market, timeframe)
        if frame is None:
            return self.evaluate(expr.target)
        saved, self.context = self.context, frame.key
        try:
            return self.evaluate(expr.target)
        finally:
            self.context = saved

    def name(self, name: str) -> Val:
        if name in self.lets:
            return self.framed_let(name) if self.context else self.lets[name]
        if name in self.params:
            return self.const(float(self.params[name]), literal=False)
        columns = self.frame_columns(self.context)
        if name in columns:
            return Val(columns[name], self.context)
        if name in DERIVED_SOURCES:
            parts = [columns[c] for c in DERIVED_SOURCES[name]]
            return Val(np.asarray(sum(parts) / len(parts), dtype=np.float64), self.context)
        raise KeyError(f"unknown name {name!r}")

    def framed_let(self, name: str) -> Val:
        """A let named inside an ``@``: its expression computed on that frame (once)."""
        key = (name, self.context)
        if key not in self.framed:
            self.framed[key] = self.evaluate(self.let_exprs[name])
        return self.framed[key]

    def integer(self, expr: ast.Expr) -> int:
        """A window or lag: an int literal, an int param, or arithmetic on them (``+ - *``,
        unary minus, ``min``/``max`` of two), in Python ints."""
        match expr:
            case ast.Number(is_int=True):
                return int(expr.value)
            case ast.Name(id=name) if isinstance(self.params.get(name), int):
                return int(self.params[name])
            case ast.Neg(operand=operand):
                return -self.integer(operand)
            case ast.Binary(op=op, left=a, right=b) if op in _INT_ARITH:
                return _INT_ARITH[op](self.integer(a), self.integer(b))
            case ast.Call(func="min" | "max", args=(a, b)):
                pair = (self.integer(a), self.integer(b))
                return min(pair) if expr.func == "min" else max(pair)
        raise TypeError("a window or lag must be int arithmetic on int literals and params")

    def binary(self, op: str, left: Array, right: Array) -> Array:
        if op == "and":
            return np.logical_and(left, right)
        if op == "or":
            return np.logical_or(left, right)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if op == "/":
                a, b = left.astype(np.float64), right.astype(np.float64)
                return np.where((b == 0) | ~np.isfinite(b), NAN, a / np.where(b == 0, 1.0, b))
            if op in _ARITH:
                return _ARITH[op](left.astype(np.float64), right.astype(np.float64))
            result = _COMPARE[op](left, right)
        if left.dtype != np.bool_ and op != "!=":  # `!=` is `not ==`: True with NaN
            result &= ~np.isnan(left) & ~np.isnan(right)
        return result

    def call(self, expr: ast.Call) -> Val:
        """A built-in: implicit sources (``atr``'s high low close) read the current frame;
        value arguments meet like operands; windows and scalars are numbers."""
        builtin = BUILTINS[expr.func]
        columns = self.frame_columns(self.context)
        pairs: list[tuple[ast.Expr | None, Val]] = [
            (None, Val(columns[c], self.context)) for c in builtin.implicit]
        slots: list[Any] = []
        for (_, kind), arg in zip(builtin.args, expr.args[:len(builtin.args)], strict=True):
            if kind is Arg.WINDOW:
                slots.append(self.integer(arg))
            elif kind is Arg.SCALAR:
                value = self.evaluate(arg).data
                slots.append(float(value.flat[0]) if value.size else 0.0)
            else:
                slots.append(len(pairs))
                pairs.append((arg, self.evaluate(arg)))
        frame, data = self.meet(pairs)
        literal = _literal(pairs) and builtin.elementwise
        if frame is None and not builtin.elementwise:
            frame = ""  # a window over constants only: the strategy's own bars
        args: list[Any] = data[:len(builtin.implicit)]
        for (_, kind), slot in zip(builtin.args, slots, strict=True):
            args.append(slot if kind in (Arg.WINDOW, Arg.SCALAR) else data[slot])
        return Val(np.asarray(REFERENCE[expr.func](*args, *builtin.mode_args(
            builtin.call_mode(expr)))), frame, literal)

    def define(self, let: ast.Let, types: Mapping[int, Any]) -> Val:
        """Evaluate ``let`` (a ``state`` bar by bar) and keep it under its name."""
        self.let_exprs[let.name] = let.expr
        if let.state:
            ty = types.get(id(let.expr))
            value = Val(state_values(self, let, ty is not None and ty.unit is Unit.BOOL), "")
        else:
            value = self.evaluate(let.expr)
        self.lets[let.name] = value
        return value


def reference_inputs(spec: CheckedSpec, frame: Any, params: Mapping[str, float],
                     markets: Mapping[str, Any] | None = None
                     ) -> tuple[dict[str, Array], dict[str, float | int], FrameData]:
    """The OHLCV columns as float64 arrays, every param's value (overrides, else the
    default; int params as Python ints) and the frames the spec may read (``frame``'s time
    index and ``markets``' candles, built when first read): what the interpreter starts
    from."""
    values: dict[str, float | int] = {}
    for p in spec.params:
        value = float(params.get(p.name, p.default))
        values[p.name] = round(value) if p.unit is Unit.INT else value
    columns = {c: np.asarray(frame[c].to_numpy(), dtype=np.float64) for c in OHLCV}
    if isinstance(getattr(frame, "index", None), pd.DatetimeIndex):  # ``session_vwap``
        columns["time"] = seconds_of(frame.index)
    settings = spec.settings()
    market, timeframe = settings.get("market"), settings.get("timeframe")
    symbol = market.value.symbol if market and isinstance(market.value, ast.Market) else ""
    tf = timeframe.value.text if timeframe and isinstance(timeframe.value, ast.Duration) \
        else ""
    return columns, values, FrameData(frame, symbol, tf, markets)


def reference_evaluate(spec: CheckedSpec, frame: Any,
                       params: Mapping[str, float] | None = None,
                       markets: Mapping[str, Any] | None = None) -> dict[str, Array]:
    """Every ``let`` by name, each rule slot the spec has and each stop or size expression
    (under ``level SLOT``, ``lang.levels.LEVEL_SLOTS``), as full-length arrays on the
    strategy's bars.

    ``frame`` is a pandas DataFrame with columns open high low close volume (time-indexed
    when the spec reads frames with ``@``); ``markets`` holds the other markets' candles at
    the strategy's timeframe, by symbol; ``params`` override the spec's defaults (int
    params become Python ints).
    """
    given = dict(params or {})
    unknown = set(given) - {p.name for p in spec.params}
    if unknown:
        raise KeyError(f"unknown params: {sorted(unknown)}")
    interp = _Interpreter(*reference_inputs(spec, frame, given, markets))
    out: dict[str, Array] = {}
    for item in spec.decl.items:
        if isinstance(item, ast.Let):
            out[item.name] = interp.based(item.expr, interp.define(item, spec.types)).copy()
    for item in spec.decl.items:
        if isinstance(item, ast.Rule) and not reads_position(item.expr):
            out[item.slot] = np.asarray(interp.value_of(item.expr), dtype=bool)
    n = len(frame)
    for slot, expr in level_exprs(spec):
        value = np.asarray(interp.value_of(expr), dtype=np.float64)
        out[f"level {slot}"] = np.broadcast_to(value, (n,)).copy()
    return out


PositionRuleAt = Callable[[int, Sequence[float]], bool]


def reference_position_rules(spec: CheckedSpec, frame: Any,
                             params: Mapping[str, float] | None = None,
                             markets: Mapping[str, Any] | None = None
                             ) -> dict[str, PositionRuleAt]:
    """Each rule that reads the position (``lang.position``) as a function of the signal bar
    and the position's values there (``POSITION_SOURCES`` order): the rule as written,
    evaluated over whole arrays with the position sources held at those values — slow and
    obvious, for ``reference_sim``."""
    interp = _Interpreter(*reference_inputs(spec, frame, dict(params or {}), markets))
    for item in spec.decl.items:
        if isinstance(item, ast.Let):
            interp.define(item, spec.types)
    out: dict[str, PositionRuleAt] = {}
    for item in spec.decl.items:
        if isinstance(item, ast.Rule) and reads_position(item.expr):
            out[item.slot] = _rule_at(interp, item.expr)
    return out


def _rule_at(interp: _Interpreter, expr: ast.Expr) -> PositionRuleAt:
    def at(bar: int, values: Sequence[float]) -> bool:
        for name, value in zip(POSITION_SOURCES, values, strict=True):
            interp.columns[name] = interp.const(float(value)).data
        return bool(np.asarray(interp.value_of(expr), dtype=bool)[bar])
    return at


def level_exprs(spec: CheckedSpec) -> list[tuple[str, ast.Expr]]:
    """The stop and size expressions of ``spec`` under their engine slots (``lang.levels``)."""
    named = {p.name: p for p in spec.params}
    return [(level_slot(key, spec.types[id(expr)].unit), expr)
            for key, expr in levels_of(spec.settings(), spec.items(ast.Size), named)]
