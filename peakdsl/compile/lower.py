"""Lowering: a checked strategy's AST → ``SignalGraph``.

Every expression becomes nodes through one memo table keyed by (op, inputs, value), so a
subexpression written twice (``sma(close, 20)`` in two lets) is one node. Commutative
operators sort their inputs first, so ``a + b`` and ``b + a`` merge too.
"""

from __future__ import annotations

from collections.abc import Callable

from ..lang import ast
from ..lang.builtins import BUILTINS, DERIVED_SOURCES, SOURCES, Arg
from ..lang.checker import CheckedSpec
from ..lang.lookback import ZERO, Lookback
from .ir import BINARY_OPS, COMMUTATIVE, Node, SignalGraph, Value

RULE_SLOTS = ("entry_long", "exit_long", "entry_short", "exit_short")


class Lowerer:
    def __init__(self, spec: CheckedSpec) -> None:
        self.spec = spec
        self.nodes: list[Node] = []
        self.memo: dict[tuple[str, tuple[int, ...], Value], int] = {}
        self.params = {p.name: p for p in spec.params}
        self.lets: dict[str, int] = {}
        self.handlers: dict[type, Callable[[ast.Expr], int]] = {
            ast.Number: self._const, ast.Percent: self._const, ast.Bps: self._const,
            ast.Bool: self._bool, ast.Name: self._name, ast.Call: self._call, ast.Lag: self._lag,
            ast.Neg: self._neg, ast.Not: self._not, ast.Binary: self._binary,
            ast.IfElse: self._ifelse,
        }

    # node construction ----------------------------------------------------
    def add(self, op: str, inputs: tuple[int, ...], value: Value = None, unit: str = "number",
            series: bool | None = None, lookback: Lookback | None = None) -> int:
        if op in COMMUTATIVE:
            inputs = tuple(sorted(inputs))
        key = (op, inputs, value)
        found = self.memo.get(key)
        if found is not None:
            return found
        ins = [self.nodes[i] for i in inputs]
        node = Node(
            id=len(self.nodes), op=op, inputs=inputs, value=value, unit=unit,
            series=any(n.series for n in ins) if series is None else series,
            lookback=lookback or (ins[0].lookback.max(*(n.lookback for n in ins[1:]))
                                  if ins else ZERO),
        )
        self.nodes.append(node)
        self.memo[key] = node.id
        return node.id

    def unit_of(self, expr: ast.Expr, fallback: str = "number") -> str:
        ty = self.spec.types.get(id(expr))
        return ty.unit.value if ty is not None else fallback

    def lower(self, expr: ast.Expr) -> int:
        node_id = self.handlers[type(expr)](expr)
        return node_id

    # leaves -------------------------------------------------------------
    def _const(self, expr: ast.Expr) -> int:
        value = float(expr.value)  # type: ignore[union-attr]
        unit = self.unit_of(expr)
        return self.add("const", (), value, unit, series=False)

    def _bool(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Bool)
        return self.add("const", (), expr.value, "bool", series=False)

    def source(self, name: str) -> int:
        if name in DERIVED_SOURCES:
            cols = [self.source(c) for c in DERIVED_SOURCES[name]]
            total = cols[0]
            for col in cols[1:]:
                total = self.add("add", (total, col), unit="price")
            count = self.add("const", (), float(len(cols)), "int", series=False)
            return self.add("div", (total, count), unit="price")
        return self.add("source", (), name, SOURCES[name].value, series=True)

    def param(self, name: str) -> int:
        info = self.params[name]
        return self.add("param", (), name, info.unit.value, series=False)

    def _name(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Name)
        if expr.id in self.lets:
            return self.lets[expr.id]
        if expr.id in self.params:
            return self.param(expr.id)
        return self.source(expr.id)

    # calls --------------------------------------------------------------
    def _call(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Call)
        builtin = BUILTINS[expr.func]
        unit = self.unit_of(expr)
        if expr.func in ("crossover", "crossunder"):
            return self._cross(expr, unit)
        if expr.func == "clip":
            x, lo, hi = (self.lower(a) for a in expr.args)
            return self.add("min", (self.add("max", (x, lo), unit=unit), hi), unit=unit)
        inputs = tuple(self.source(c) for c in builtin.implicit)
        inputs += tuple(self.lower(a) for a in expr.args)
        if builtin.elementwise:
            return self.add(expr.func, inputs, unit=unit)
        values: list[Lookback] = []
        windows: list[Lookback] = []
        for (_, kind), arg, node_id in zip(builtin.args, expr.args,
                                           inputs[len(builtin.implicit):], strict=True):
            if kind is Arg.WINDOW:
                windows.append(self.window(arg))
            elif kind is Arg.SERIES:
                values.append(self.nodes[node_id].lookback)
        lookback = builtin.lookback(values, windows)
        return self.add(expr.func, inputs, unit=unit, series=True, lookback=lookback)

    def window(self, arg: ast.Expr) -> Lookback:
        if isinstance(arg, ast.Name):
            return Lookback.param(arg.id)
        assert isinstance(arg, ast.Number)
        return Lookback.const(int(arg.value))

    def _cross(self, expr: ast.Call, unit: str) -> int:
        a, b = (self.lower(x) for x in expr.args)
        one = self.add("const", (), 1.0, "int", series=False)
        a1 = self.lag_node(a, one, Lookback.const(1))
        b1 = self.lag_node(b, one, Lookback.const(1))
        now, before = ("gt", "le") if expr.func == "crossover" else ("lt", "ge")
        return self.add("and", (self.add(now, (a, b), unit="bool"),
                                self.add(before, (a1, b1), unit="bool")), unit="bool")

    def lag_node(self, target: int, n: int, amount: Lookback) -> int:
        """``target`` lagged by node ``n``; a constant lagged is itself."""
        node = self.nodes[target]
        if not node.series:
            return target
        return self.add("lag", (target, n), unit=node.unit, series=True,
                        lookback=node.lookback + amount)

    def _lag(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Lag)
        target = self.lower(expr.target)
        n = self.lower(expr.lag)
        if isinstance(expr.lag, ast.Number) and expr.lag.value == 0:
            return target
        return self.lag_node(target, n, self.window(expr.lag))

    # operators ----------------------------------------------------------
    def _neg(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Neg)
        if isinstance(expr.operand, ast.Number | ast.Percent | ast.Bps):
            value = -float(expr.operand.value)
            return self.add("const", (), value, self.unit_of(expr.operand), series=False)
        return self.add("neg", (self.lower(expr.operand),), unit=self.unit_of(expr))

    def _not(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Not)
        return self.add("not", (self.lower(expr.operand),), unit="bool")

    def _binary(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Binary)
        left, right = self.lower(expr.left), self.lower(expr.right)
        return self.add(BINARY_OPS[expr.op], (left, right), unit=self.unit_of(expr))

    def _ifelse(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.IfElse)
        inputs = (self.lower(expr.cond), self.lower(expr.then), self.lower(expr.orelse))
        return self.add("where", inputs, unit=self.unit_of(expr))


def lower_strategy(spec: CheckedSpec) -> SignalGraph:
    """Lower lets and rules; each let names its node, each rule slot points at one."""
    lowerer = Lowerer(spec)
    named: dict[int, list[str]] = {}
    for item in spec.decl.items:
        if isinstance(item, ast.Let):
            node_id = lowerer.lower(item.expr)
            lowerer.lets[item.name] = node_id
            named.setdefault(node_id, []).append(item.name)
    rules = {}
    for item in spec.decl.items:
        if isinstance(item, ast.Rule):
            rules[item.slot] = lowerer.lower(item.expr)
    nodes = tuple(_with_names(n, named.get(n.id, [])) for n in lowerer.nodes)
    ordered = {slot: rules[slot] for slot in RULE_SLOTS if slot in rules}
    return SignalGraph(nodes, dict(lowerer.lets), ordered, spec.params)


def _with_names(node: Node, names: list[str]) -> Node:
    if not names:
        return node
    return Node(node.id, node.op, node.inputs, node.value, node.unit, node.series,
                node.lookback, tuple(names))

