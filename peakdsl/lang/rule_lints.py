"""Lints on entry/exit rules: a rule that is constant (W007) or can never be true (W006).

Both are almost always mistakes that would otherwise surface only as a backtest with no
trades: ``close > highest(high, 20)`` (the current bar is inside its own window, so the close
never exceeds it — ``highest(high, 20)[1]`` was meant), ``rsi(close, 14) > 100``, or a let
that folds to ``false``. The proofs are structural (AST equality ignores spans) over a small
table of facts that hold on every valid candle; anything not proven is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import ast
from .scalar import Scalar, ScalarError, eval_scalar

# a <= b on every valid candle (low <= open, close <= high)
ALWAYS_LE: frozenset[tuple[str, str]] = frozenset({
    ("low", "high"), ("low", "open"), ("low", "close"), ("open", "high"), ("close", "high"),
    ("low", "hl2"), ("hl2", "high"), ("low", "hlc3"), ("hlc3", "high"), ("low", "ohlc4"),
    ("ohlc4", "high"),
})
OSCILLATORS = frozenset({"rsi", "percent_rank", "adx", "plus_di", "minus_di", "stoch_k",
                         "stoch_d", "mfi"})  # 0..100


class RuleFacts:
    """Constant values and definitions of a strategy's lets, to see through names."""

    def __init__(self, lets: Mapping[str, ast.Expr]) -> None:
        self.lets = dict(lets)
        self.consts: dict[str, Scalar] = {}
        for name, expr in lets.items():
            value = self.constant(expr)
            if value is not None:
                self.consts[name] = value

    def resolve(self, expr: ast.Expr) -> ast.Expr:
        seen = 0
        while isinstance(expr, ast.Name) and expr.id in self.lets and seen < len(self.lets):
            expr, seen = self.lets[expr.id], seen + 1
        return expr

    def constant(self, expr: ast.Expr) -> Scalar | None:
        """The value of ``expr`` when it does not depend on data or params: ``x and false``
        is False whatever ``x`` is."""
        if isinstance(expr, ast.Binary) and expr.op in ("and", "or"):
            left, right = self.constant(expr.left), self.constant(expr.right)
            absorbing = expr.op == "or"  # True absorbs `or`, False absorbs `and`
            if absorbing in (left, right):
                return absorbing
            if left is not None and right is not None:
                return bool(left) and bool(right) if expr.op == "and" else \
                    bool(left) or bool(right)
            return None
        if isinstance(expr, ast.Not):
            inner = self.constant(expr.operand)
            return None if inner is None else not inner
        try:
            return eval_scalar(expr, self.consts)
        except (ScalarError, OverflowError):
            return None

    def never_true(self, expr: ast.Expr) -> str | None:
        """Why ``expr`` is False on every bar of every valid market, or None."""
        expr = self.resolve(expr)
        if isinstance(expr, ast.Binary) and expr.op == "and":
            return self.never_true(expr.left) or self.never_true(expr.right)
        if isinstance(expr, ast.Binary) and expr.op == "or":
            left = self.never_true(expr.left)
            return left and self.never_true(expr.right)
        if isinstance(expr, ast.Binary) and expr.op in (">", "<"):
            low, high = (expr.left, expr.right) if expr.op == ">" else (expr.right, expr.left)
            return self._at_most(low, high)
        if isinstance(expr, ast.Call) and expr.func in ("crossover", "crossunder") \
                and len(expr.args) == 2:
            a, b = expr.args if expr.func == "crossover" else reversed(expr.args)
            return self._at_most(a, b)
        return None

    def _at_most(self, a: ast.Expr, b: ast.Expr) -> str | None:
        """Why ``a <= b`` always holds (so ``a > b`` never does), or None."""
        a, b = self.resolve(a), self.resolve(b)
        if a == b:
            return "both sides are the same series"
        if isinstance(a, ast.Name) and isinstance(b, ast.Name) and _candle_le(a, b):
            return f"`{a.id}` is never above `{b.id}` on a valid candle"
        top, bottom = _window_of(b, "highest"), _window_of(a, "lowest")
        if (top is not None and _le(a, self.resolve(top))) or \
                (bottom is not None and _le(self.resolve(bottom), b)):
            return ("the current bar is inside its own window; compare with the previous "
                    "bars' extreme, e.g. `highest(high, 20)[1]`")
        bound = self.constant(b)
        if isinstance(a, ast.Call) and _oscillator(a) and isinstance(bound, float) \
                and bound >= 100:
            return f"`{a.func}` never exceeds 100"
        bound = self.constant(a)
        if isinstance(b, ast.Call) and _oscillator(b) and isinstance(bound, float) \
                and bound <= 0:
            return f"`{b.func}` is never below 0"
        return None


def _candle_le(a: ast.Expr, b: ast.Expr) -> bool:
    return isinstance(a, ast.Name) and isinstance(b, ast.Name) and (a.id, b.id) in ALWAYS_LE


def _le(a: ast.Expr, b: ast.Expr) -> bool:
    """``a <= b`` on every bar: the same series, or a fact of the candle."""
    return a == b or _candle_le(a, b)


def _window_of(expr: ast.Expr, func: str) -> ast.Expr | None:
    if isinstance(expr, ast.Call) and expr.func == func and expr.args:
        return expr.args[0]
    return None


def _oscillator(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.Call) and expr.func in OSCILLATORS
