"""A compiled signal graph, compared by meaning and shown to people.

Node ids are positions, so adding a `let` renumbers every later node, and lowering sorts a
commutative operator's inputs by id: two graphs that compute the same rules can differ node
for node. ``node_hashes`` gives each node a Merkle hash of what it computes (its op, its
value, its inputs' hashes, sorted for commutative ops; ``a < b`` hashed as ``b > a``), so two
rules are the same exactly when their hashes are, whatever the numbering, the let names or the
spelling in the source (``crossunder(a, b)`` is ``crossover(b, a)``).

``render`` writes a node back as an expression for a reviewer: kernels with their arguments
(implicit OHLC inputs left out, a mode kept), infix operators, lags, and the crossover pattern
lowering produces (``a > b and a[1] <= b[1]``) folded back into ``crossover(a, b)``, a frame's
``align`` node back into ``x@4h`` with its columns written bare inside (``sma(close, 50)@1d``,
not ``sma(close@1d, 50)``, which would mean a 50-hour mean of the daily close). Shared
subexpressions are expanded, so the text is capped (``MAX_RENDER``): the hash, not the text,
decides equality.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from ..compile import models as m
from ..compile.ir import COMMUTATIVE
from ..compile.scan_body import body_source
from ..lang.builtins import BUILTINS

MAX_RENDER = 400
INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "lt": "<", "le": "<=", "gt": ">",
         "ge": ">=", "eq": "==", "ne": "!=", "and": "and", "or": "or"}
CROSSES = {("gt", "le"): "crossover", ("lt", "ge"): "crossunder"}
MIRRORED = {"lt": "gt", "le": "ge"}  # a < b is b > a, also for NaN (both false)


def node_hashes(graph: m.Graph) -> dict[int, str]:
    """Each node's hash of what it computes (nodes are in topological order)."""
    out: dict[int, str] = {}
    for node in graph.nodes:
        op, inputs = node.op, [out[i] for i in node.inputs]
        if op in MIRRORED:
            op, inputs = MIRRORED[op], inputs[::-1]
        if op in COMMUTATIVE:
            inputs.sort()
        key = json.dumps([op, _value_key(node.value), inputs])
        out[node.id] = hashlib.sha256(key.encode()).hexdigest()
    return out


def _value_key(value: float | str | bool | None) -> str:
    return f"{type(value).__name__}:{value!r}"


def rule_hashes(cfg: m.StrategyConfig) -> dict[str, str]:
    """Rule slot (``entry_long``, …) → the hash of its signal."""
    hashes = node_hashes(cfg.graph)
    return {slot: hashes[node] for slot, node in cfg.graph.rules.items()}


def require_hashes(cfg: m.StrategyConfig) -> dict[str, str]:
    """The hash of each `require` → its source text (for people)."""
    hashes = node_hashes(cfg.graph)
    return {hashes[r.node]: " ".join(r.source.split()) for r in cfg.requires}


class Renderer:
    """Writes nodes of one graph as expressions (memoised, so each is rendered once)."""

    def __init__(self, graph: m.Graph, frame: str = "") -> None:
        self.graph = graph
        self.nodes = {n.id: n for n in graph.nodes}
        self.done: dict[int, str] = {}
        self.frame = frame  # the key of the frame being rendered inside (``4h``), or ""
        self.frames: dict[str, Renderer] = {}

    def on(self, frame: str) -> Renderer:
        """The renderer of what is computed on ``frame`` (memoised per frame)."""
        if frame not in self.frames:
            self.frames[frame] = Renderer(self.graph, frame)
        return self.frames[frame]

    def __call__(self, node_id: int) -> str:
        text = self.text(node_id)
        if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            text = text[1:-1]
        return text if len(text) <= MAX_RENDER else text[:MAX_RENDER - 1] + "…"

    def text(self, node_id: int) -> str:
        if node_id not in self.done:
            node = self.nodes[node_id]
            self.done[node_id] = _FORMS.get(node.op, _call)(self, node)
        return self.done[node_id]


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _leaf(r: Renderer, node: m.GraphNode) -> str:
    """A source, bare inside its own frame (``close@4h`` is ``close`` under ``…@4h``)."""
    text = str(node.value)
    suffix = f"@{r.frame}"
    return text.removesuffix(suffix) if r.frame and node.op == "source" else text


def _align(r: Renderer, node: m.GraphNode) -> str:
    """``x@F``: ``x`` as computed on frame F (its columns bare), read at the strategy's bars.
    ``x`` renders as a name, a call, a lag or a parenthesised operation, each of which
    binds at least as tightly as ``@``."""
    key = str(node.value)
    return f"{r.on(key).text(node.inputs[0])}@{key}"


def _const(r: Renderer, node: m.GraphNode) -> str:
    if isinstance(node.value, bool):
        return "true" if node.value else "false"
    return f"{node.value:.12g}" if isinstance(node.value, float) else str(node.value)


def _lag(r: Renderer, node: m.GraphNode) -> str:
    target, amount = node.inputs
    return f"{r.text(target)}[{r.text(amount)}]"


def _infix(r: Renderer, node: m.GraphNode) -> str:
    cross = _cross(r, node) if node.op == "and" else None
    if cross is not None:
        return cross
    left, right = (r.text(i) for i in node.inputs)
    return f"({left} {INFIX[node.op]} {right})"


def _cross(r: Renderer, node: m.GraphNode) -> str | None:
    """``crossover(a, b)`` for ``a > b and a[1] <= b[1]`` (either input order)."""
    for now_id, before_id in (node.inputs, node.inputs[::-1]):
        now, before = r.nodes[now_id], r.nodes[before_id]
        name = CROSSES.get((now.op, before.op))
        lagged = [r.nodes[i] for i in before.inputs]
        if name and all(x.op == "lag" and _is_one(r, x.inputs[1]) for x in lagged) and \
                [x.inputs[0] for x in lagged] == now.inputs:
            return f"{name}({r.text(now.inputs[0])}, {r.text(now.inputs[1])})"
    return None


def _is_one(r: Renderer, node_id: int) -> bool:
    node = r.nodes[node_id]
    return node.op == "const" and node.value == 1.0 and not isinstance(node.value, bool)


def _prefix(word: str) -> Callable[[Renderer, m.GraphNode], str]:
    def form(r: Renderer, node: m.GraphNode) -> str:
        return f"({word}{r.text(node.inputs[0])})"
    return form


def _where(r: Renderer, node: m.GraphNode) -> str:
    cond, then, orelse = (r.text(i) for i in node.inputs)
    return f"(if {cond} then {then} else {orelse})"


def _call(r: Renderer, node: m.GraphNode) -> str:
    """A kernel or function: its written arguments (not the OHLC it reads implicitly)."""
    builtin = BUILTINS.get(node.op)
    skip = len(builtin.implicit) if builtin is not None else 0
    args = [r.text(i) for i in node.inputs[skip:]]
    if isinstance(node.value, str):
        args.append(node.value)  # a mode: `stdev(x, 20, sample)`
    return f"{node.op}({', '.join(args)})"


def _body(r: Renderer, node: m.GraphNode) -> str:
    """A ``state`` or a rule that reads the position: the expression its body runs."""
    text = body_source(str(node.value), [r.text(i) for i in node.inputs])
    return text if node.op == "position_rule" else f"state({text})"


_FORMS: dict[str, Callable[[Renderer, m.GraphNode], str]] = {
    "source": _leaf, "param": _leaf, "const": _const, "lag": _lag, "where": _where,
    "state": _body, "position_rule": _body, "align": _align,
    "neg": _prefix("-"), "not": _prefix("not "),
    **dict.fromkeys(INFIX, _infix),
}
