"""Lowering a ``state`` let: its expression → one ``state`` node running a scan body.

Every subexpression of the state that does not read the state's past is lowered as usual
(an indicator, ``close[1]``, a param) and becomes an *input* of the body, computed over
whole arrays before the scan; constants go into the body's table; what reads the past
(``trail[1]`` and the elementwise operators above it) becomes the body's instructions, in
evaluation order (``engine.scan``). The checker (``lang.state``) proved that only
elementwise operators stand between the past and the result, so each maps to one
``compile.ops`` operator — the same ones, with the same meaning, the whole-array graph uses
(``clip`` as ``min(max(x, lo), hi)``, ``if`` as ``where``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..lang import ast
from ..lang.lookback import ZERO
from ..lang.state import mentions, state_lag
from .ir import BINARY_OPS
from .scan_body import body_text

if TYPE_CHECKING:
    from .lower import Lowerer

Operand = tuple[str, int]


class StateBody:
    """The instructions, constants and inputs of one state's body, built from its AST."""

    def __init__(self, lowerer: Lowerer, name: str) -> None:
        self.lowerer = lowerer
        self.name = name
        self.inputs: list[int] = []
        self.consts: list[float] = []
        self.rows: list[tuple[str, list[Operand]]] = []

    def operand(self, expr: ast.Expr) -> Operand:
        """Where the body finds ``expr``'s value at a bar."""
        if isinstance(expr, ast.Lag) and isinstance(expr.target, ast.Name) and \
                expr.target.id == self.name:
            depth = state_lag(expr)
            assert depth is not None, "the checker proved a literal lag (T017)"
            return ("self", depth)
        if not mentions(self.name, expr):
            return self._outside(self.lowerer.lower(expr))
        return self._row(*self._instruction(expr))

    def _outside(self, node_id: int) -> Operand:
        """A value computed by the ordinary graph: a constant in the table, else an input
        (read on the strategy's own bars: a body runs over them)."""
        node_id = self.lowerer.based(node_id)
        node = self.lowerer.nodes[node_id]
        if node.op == "const" and isinstance(node.value, float | bool) and \
                math.isfinite(float(node.value)):
            self.consts.append(float(node.value))
            return ("const", len(self.consts) - 1)
        if node_id not in self.inputs:
            self.inputs.append(node_id)
        return ("input", self.inputs.index(node_id))

    def _row(self, op: str, operands: list[Operand]) -> Operand:
        self.rows.append((op, operands))
        return ("reg", len(self.rows) - 1)

    def _instruction(self, expr: ast.Expr) -> tuple[str, list[Operand]]:
        """The operator and operands of an expression that reads the past."""
        if isinstance(expr, ast.Binary):
            return BINARY_OPS[expr.op], [self.operand(expr.left), self.operand(expr.right)]
        if isinstance(expr, ast.Neg):
            return "neg", [self.operand(expr.operand)]
        if isinstance(expr, ast.Not):
            return "not", [self.operand(expr.operand)]
        if isinstance(expr, ast.IfElse):
            return "where", [self.operand(e) for e in (expr.cond, expr.then, expr.orelse)]
        assert isinstance(expr, ast.Call), f"the checker allows no {type(expr).__name__} here"
        if expr.func == "clip":
            x, lo, hi = (self.operand(a) for a in expr.args)
            return "min", [self._row("max", [x, lo]), hi]
        return expr.func, [self.operand(a) for a in expr.args]

    def result(self, expr: ast.Expr) -> None:
        """Lower the whole expression; a bare past (``state x = x[2]``) gets a row of its
        own (``nz(x, x)`` is ``x``), so the body's last row is always the value."""
        top = self.operand(expr)
        if top[0] != "reg" or int(top[1]) != len(self.rows) - 1:
            self._row("nz", [top, top])


def lower_state(lowerer: Lowerer, let: ast.Let) -> int:
    """The ``state`` node of ``let``: its inputs are the body's (at least one series: the
    scan takes its length from them), its value the body's text, its lookback the longest
    of its inputs' (the scan itself adds none: its first bar is the data's first)."""
    body = StateBody(lowerer, let.name)
    body.result(let.expr)
    if not body.inputs:  # all folded to constants: the close still carries the bar count
        body.inputs.append(lowerer.source("close"))
    unit = lowerer.unit_of(let.expr)
    text = body_text(body.rows, body.consts, len(body.inputs), unit == "bool")
    inputs = tuple(body.inputs)
    looks = [lowerer.nodes[i].lookback for i in inputs]
    lookback = looks[0].max(*looks[1:]) if looks else ZERO
    return lowerer.add("state", inputs, text, unit=unit, series=True, lookback=lookback)
