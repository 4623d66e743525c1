"""The signal-graph IR: nodes in topological order with merged common subexpressions.

Node ids are positions in ``SignalGraph.nodes``; every input id is smaller than the node's
own, so the node list is a valid evaluation order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..lang.lookback import Lookback
from ..lang.typecheck import ParamInfo
from .ops import OPS

# Elementwise operators the code generator fuses into numexpr expressions.
ELEMENTWISE = frozenset(OPS)
COMMUTATIVE = frozenset({"add", "mul", "eq", "ne", "and", "or"})
LEAVES = frozenset({"source", "param", "const"})
BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "<": "lt", "<=": "le",
              ">": "gt", ">=": "ge", "==": "eq", "!=": "ne", "and": "and", "or": "or"}

Value = float | str | bool | None


@dataclass(frozen=True, slots=True)
class Node:
    id: int
    op: str  # "source" | "param" | "const" | a kernel name | "lag" | an ELEMENTWISE op
    inputs: tuple[int, ...]
    value: Value  # const value, source or param name
    unit: str
    series: bool
    lookback: Lookback
    names: tuple[str, ...] = ()  # let bindings that name this node

    @property
    def elementwise(self) -> bool:
        return self.op in ELEMENTWISE

    @property
    def key(self) -> tuple[str, tuple[int, ...], Value]:
        return (self.op, self.inputs, self.value)


@dataclass(frozen=True, slots=True)
class SignalGraph:
    nodes: tuple[Node, ...]
    lets: dict[str, int]
    rules: dict[str, int]  # "entry_long" | "exit_long" | "entry_short" | "exit_short" → node
    params: tuple[ParamInfo, ...]
    requires: tuple[int, ...] = ()  # one boolean node over params per `require`
    # series-driven stops and sizes (``lang.levels.LEVEL_SLOTS`` → node)
    levels: dict[str, int] = field(default_factory=dict)

    @property
    def warmup(self) -> Lookback:
        """Bars before the first bar on which every rule can be evaluated, and every stop
        or size expression an entry there reads."""
        looks = [self.nodes[i].lookback for i in (*self.rules.values(), *self.levels.values())]
        if not looks:
            return Lookback.const(0)
        return looks[0].max(*looks[1:])

    def consumers(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for node in self.nodes:
            for i in node.inputs:
                out[i].append(node.id)
        return out
