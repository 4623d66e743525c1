"""Lowering a rule that reads the position (``lang.position``) → one ``position_rule`` node.

The rule becomes a scan body (``engine.scan``) evaluated by the engine's decide stage at
each fill point: what does not read the position (``close``, an ``atr``, a crossover, a
param) is lowered as usual and becomes an input, computed over whole arrays; each position
source is an operand of kind ``pos`` (``POSITION_OPERANDS`` order: side, bars in trade,
entry price, unrealized return) that the engine fills from the position it holds; the
elementwise operators above them are the body's instructions — the same ``compile.ops``
operators, with the same meaning, as everywhere else.

Over whole arrays the node is the rule's "may fire" row (true on every bar): the bar loop
then asks the body at each fill point (``engine.step``), with the position of that moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lang import ast
from ..lang.builtins import POSITION_SOURCES
from ..lang.lookback import ZERO
from ..lang.position import reads_position
from .scan_body import POSITION_NAMES, body_text
from .state_lower import Operand, StateBody

if TYPE_CHECKING:
    from .lower import Lowerer

POSITION_OPERANDS = POSITION_NAMES  # the engine's order of the ``pos`` operands


class PositionBody(StateBody):
    """A state body whose "past" is the position: ``pos`` operands instead of ``self``."""

    def operand(self, expr: ast.Expr) -> Operand:
        if isinstance(expr, ast.Name) and expr.id in POSITION_SOURCES:
            return ("pos", POSITION_OPERANDS.index(expr.id))
        if not reads_position(expr):
            return self._outside(self.lowerer.lower(expr))
        return self._row(*self._instruction(expr))


def lower_position_rule(lowerer: Lowerer, rule: ast.Rule) -> int:
    """The ``position_rule`` node of ``rule``: its inputs the body's (the close at least: the
    engine reads the unrealized return from it, and the node takes its length from it), its
    value the body's text, its lookback the longest of its inputs'."""
    body = PositionBody(lowerer, rule.slot)
    close = lowerer.source("close")
    body.inputs.append(close)  # input 0: the close the unrealized return is measured at
    body.result(rule.expr)
    text = body_text(body.rows, body.consts, len(body.inputs), True)
    inputs = tuple(body.inputs)
    looks = [lowerer.nodes[i].lookback for i in inputs]
    lookback = looks[0].max(*looks[1:]) if looks else ZERO
    return lowerer.add("position_rule", inputs, text, unit="bool", series=True,
                       lookback=lookback)
