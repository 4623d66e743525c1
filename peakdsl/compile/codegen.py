"""Code generation: ``SignalGraph`` → a program of kernel calls and numexpr expressions.

Maximal elementwise subgraphs are fused into one numexpr string each. A node is
materialised (gets its own step) when it is named by a let, drives a rule, feeds a
kernel, or is used more than once; everything else is inlined into its consumer. An
expression with more distinct inputs than numexpr accepts is split by materialising its
largest inlined child until it fits. Variable names are generated (``n<id>``) and
constants are printed by the compiler, so numexpr only ever sees compiler-made text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .ir import LEAVES, Node, SignalGraph
from .ops import OPS

MAX_OPERANDS = 31  # numexpr/NumPy iterator limit, output included


@dataclass(frozen=True, slots=True)
class Step:
    """Compute one node: a kernel call, a numexpr expression over series, or a ``scalar``
    operator over params and constants (``ops.apply``, never numexpr)."""

    node: int
    expr: str | None = None
    inputs: tuple[tuple[str, int], ...] = ()  # numexpr variable → node id
    kind: str = "kernel"


def var(node_id: int) -> str:
    return f"n{node_id}"


def const_text(value: float | str | bool | None) -> str:
    assert isinstance(value, float) and math.isfinite(value), value
    text = repr(value)
    return f"({text})" if value < 0 else text


def _inline_const(node: Node) -> bool:
    """Finite numbers are printed into the text; anything else is passed as a variable."""
    return node.op == "const" and isinstance(node.value, float) and math.isfinite(node.value)


def _zero_divisor(node: Node, k: int, child: Node) -> bool:
    """A divisor that folded to 0 (``x / (if t then 0 else 1)``, which the checker cannot
    see as constant through a let): passed as a variable, so the division is NaN, as
    ``ops`` defines it, instead of numexpr's ZeroDivisionError on the literal."""
    return node.op == "div" and k == 1 and child.op == "const" and child.value == 0.0


def materialised(graph: SignalGraph) -> set[int]:
    """Nodes that must exist as arrays (see module docstring), plus every operator over
    params only (a ``scalar`` step) and every non-leaf operand that a template repeats."""
    consumers = graph.consumers()
    keep = set(graph.rules.values()) | set(graph.lets.values()) | set(graph.requires) | \
        set(graph.levels.values())
    for node in graph.nodes:
        if not node.elementwise:
            keep.add(node.id)
            keep.update(i for i in node.inputs)
            continue
        if len(consumers[node.id]) > 1 or not node.series:
            keep.add(node.id)
        for k in OPS[node.op].repeated:
            child = graph.nodes[node.inputs[k]]
            if child.elementwise:
                keep.add(child.id)
    return keep


class _Emitter:
    def __init__(self, graph: SignalGraph, keep: set[int]) -> None:
        self.graph = graph
        self.keep = keep

    def text(self, node_id: int, root: int, used: set[int]) -> str:
        """Expression text for ``node_id`` inside the expression computing ``root``."""
        node = self.graph.nodes[node_id]
        if _inline_const(node):
            return const_text(node.value)
        if node_id != root and (node_id in self.keep or not node.elementwise):
            used.add(node_id)
            return var(node_id)
        args, constant = [], []
        for k, i in enumerate(node.inputs):
            if _zero_divisor(node, k, self.graph.nodes[i]):
                used.add(i)  # numexpr raises on a literal `/ 0.0`; a variable divides by IEEE
                args.append(var(i))
                constant.append(False)
            else:
                args.append(self.text(i, root, used))
                constant.append(_inline_const(self.graph.nodes[i]))
        return OPS[node.op].text(args, constant)

    def step(self, node: Node) -> Step:
        while True:
            used: set[int] = set()
            text = self.text(node.id, node.id, used)
            if len(used) + 1 <= MAX_OPERANDS:
                return Step(node.id, text, tuple((var(i), i) for i in sorted(used)), "expr")
            self.keep.add(self._largest_inlined(node))

    def _largest_inlined(self, node: Node) -> int:
        """The inlined descendant that pulls in the most distinct inputs."""
        best, best_count = -1, -1
        for child in self._inlined(node):
            used: set[int] = set()
            self.text(child, child, used)
            if len(used) > best_count:
                best, best_count = child, len(used)
        return best

    def _inlined(self, node: Node) -> list[int]:
        out, stack = [], list(node.inputs)
        while stack:
            i = stack.pop()
            child = self.graph.nodes[i]
            if child.elementwise and i not in self.keep:
                out.append(i)
                stack.extend(child.inputs)
        return out


def emit_program(graph: SignalGraph) -> tuple[Step, ...]:
    """Steps in topological order; leaves (sources, params, consts) need no step."""
    emitter = _Emitter(graph, materialised(graph))
    steps: list[Step] = []
    for node in graph.nodes:
        if node.op in LEAVES:
            continue
        if not node.elementwise:
            steps.append(Step(node.id))
        elif not node.series:
            steps.append(Step(node.id, kind="scalar"))
        elif node.id in emitter.keep:
            steps.append(emitter.step(node))
    # splitting may have materialised nodes that come earlier than their consumer's step
    done = {s.node for s in steps}
    while pending := sorted(i for i in emitter.keep - done if graph.nodes[i].elementwise):
        for node_id in pending:
            steps.append(emitter.step(graph.nodes[node_id]))
            done.add(node_id)
    return tuple(sorted(steps, key=lambda s: s.node))
