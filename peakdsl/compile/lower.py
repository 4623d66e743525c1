"""Lowering: a checked strategy's AST → ``SignalGraph``.

Every expression becomes nodes through one memo table keyed by (op, inputs, value), so a
subexpression written twice (``sma(close, 20)`` in two lets) is one node. Commutative
operators sort their inputs first, so ``a + b`` and ``b + a`` merge too.
"""

from __future__ import annotations

from collections.abc import Callable

from ..lang import ast
from ..lang.ast import RULE_SLOTS
from ..lang.builtins import BUILTINS, DERIVED_SOURCES, SOURCES, Arg
from ..lang.checker import CheckedSpec
from ..lang.frames import Frame, frame_of
from ..lang.intexpr import lookback
from ..lang.levels import LEVEL_SLOTS, level_slot, levels_of
from ..lang.lookback import ZERO, Lookback
from ..lang.position import reads_position
from ..lang.schema import TIMEFRAMES
from ..lang.typecheck import int_grids
from ..lang.types import Unit
from .ir import BINARY_OPS, COMMUTATIVE, Node, SignalGraph, Value
from .ops import OPS, fold
from .position_lower import lower_position_rule
from .state_lower import lower_state


class Lowerer:
    def __init__(self, spec: CheckedSpec) -> None:
        self.spec = spec
        self.nodes: list[Node] = []
        self.memo: dict[tuple[str, tuple[int, ...], object], int] = {}
        self.params = {p.name: p for p in spec.params}
        self.lets: dict[str, int] = {}
        # frames (``lang.frames``): each node's frame key ("" the strategy's own), the frame
        # an ``@`` being lowered reads, and lets lowered on a frame by (name, frame)
        self.frame: dict[int, str] = {}
        self.context = ""
        self.framed_lets: dict[tuple[str, str], int] = {}
        settings = spec.settings()
        market, timeframe = settings.get("market"), settings.get("timeframe")
        self.market = market.value.symbol if market and isinstance(
            market.value, ast.Market) else ""
        self.timeframe = timeframe.value.text if timeframe and isinstance(
            timeframe.value, ast.Duration) else ""
        self.handlers: dict[type, Callable[[ast.Expr], int]] = {
            ast.Number: self._const, ast.Percent: self._const, ast.Bps: self._const,
            ast.Bool: self._bool, ast.Name: self._name, ast.Call: self._call, ast.Lag: self._lag,
            ast.Neg: self._neg, ast.Not: self._not, ast.Binary: self._binary,
            ast.IfElse: self._ifelse, ast.At: self._at,
        }

    # node construction ----------------------------------------------------
    def add(self, op: str, inputs: tuple[int, ...], value: Value = None, unit: str = "number",
            series: bool | None = None, lookback: Lookback | None = None) -> int:
        if op in OPS:
            simpler = self._simplify(op, inputs, unit)
            if simpler is not None:
                return simpler
        if op != "align":
            inputs = self.unify(inputs)
        if op in COMMUTATIVE:
            inputs = tuple(sorted(inputs))
        key = (op, inputs, _memo_value(value))
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
        frames = {self.frame.get(i, "") for i in inputs if self.nodes[i].series}
        self.frame[node.id] = self.context if op == "source" else \
            (frames.pop() if len(frames) == 1 and op not in BASE_OPS else "")
        return node.id

    # frames ---------------------------------------------------------------
    def unify(self, inputs: tuple[int, ...]) -> tuple[int, ...]:
        """Series inputs of one operation on different frames meet on the strategy's own
        bars: each frame's value is aligned there (``based``)."""
        frames = {self.frame.get(i, "") for i in inputs if self.nodes[i].series}
        if len(frames) <= 1:
            return inputs
        return tuple(self.based(i) for i in inputs)

    def based(self, node_id: int) -> int:
        """``node_id`` read on the strategy's bars: itself, or an ``align`` node giving at
        each bar the frame's value at its last closed bar. Its lookback is the frame's
        scaled to the strategy's bars, plus the bars the last closed frame bar may lie
        behind (``2r - 2`` for a frame of ``r`` bars: up to ``r - 1`` bars of the current
        frame bar and ``r - 1`` of the last closed one may be missing ahead of its open)."""
        key = self.frame.get(node_id, "")
        node = self.nodes[node_id]
        if not key or not node.series:
            return node_id
        base = TIMEFRAMES.get(self.timeframe, 1)
        ratio = max(Frame.parse(key).seconds(base) // base, 1)
        scaled = node.lookback.times(Lookback.const(ratio))
        assert scaled is not None, "a lookback scaled by a constant is a lookback"
        saved, self.context = self.context, ""
        index = self.add("source", (), f"@{key}", "int", series=True)
        aligned = self.add("align", (node_id, index), key, unit=node.unit, series=True,
                           lookback=scaled + (2 * ratio - 2))
        self.context = saved
        return aligned

    def _at(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.At)
        frame = frame_of(expr, self.market, self.timeframe)
        if frame is None:  # the strategy's own frame: `close@1h` in a 1h strategy
            return self.lower(expr.target)
        saved, self.context = self.context, frame.key
        try:
            return self.lower(expr.target)
        finally:
            self.context = saved

    def const(self, value: float | bool, unit: str) -> int:
        return self.add("const", (), value, "bool" if isinstance(value, bool) else unit,
                        series=False)

    def _simplify(self, op: str, inputs: tuple[int, ...], unit: str) -> int | None:
        """Fold an operator on constants with the engine's own arithmetic (``ops.fold``), and
        drop boolean constants from logic, so numexpr never sees a constant-only subtree."""
        values = [self.nodes[i].value if self.nodes[i].op == "const" else None for i in inputs]
        if all(v is not None for v in values):
            return self.const(fold(op, *(v for v in values if isinstance(v, float | bool))),
                              unit)
        rule = _BOOL_RULES.get(op)
        if rule is None or not any(isinstance(v, bool) for v in values):
            return None
        return rule(self, inputs, values)

    def unit_of(self, expr: ast.Expr, fallback: str = "number") -> str:
        ty = self.spec.types.get(id(expr))
        return ty.unit.value if ty is not None else fallback

    def lower(self, expr: ast.Expr) -> int:
        node_id = self.handlers[type(expr)](expr)
        return node_id

    # leaves -------------------------------------------------------------
    def _const(self, expr: ast.Expr) -> int:
        return self.const(float(expr.value), self.unit_of(expr))  # type: ignore[union-attr]

    def _bool(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Bool)
        return self.const(expr.value, "bool")

    def source(self, name: str) -> int:
        if name in DERIVED_SOURCES:
            cols = [self.source(c) for c in DERIVED_SOURCES[name]]
            total = cols[0]
            for col in cols[1:]:
                total = self.add("add", (total, col), unit="price")
            count = self.const(float(len(cols)), "int")
            return self.add("div", (total, count), unit="price")
        value = f"{name}@{self.context}" if self.context else name
        unit = SOURCES[name].value if name in SOURCES else "number"  # the bar's open time
        return self.add("source", (), value, unit, series=True)

    def param(self, name: str) -> int:
        info = self.params[name]
        return self.add("param", (), name, info.unit.value, series=False)

    def _name(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Name)
        if expr.id in self.lets and self.context:
            return self._framed_let(expr.id)
        if expr.id in self.lets:
            return self.lets[expr.id]
        if expr.id in self.params:
            return self.param(expr.id)
        return self.source(expr.id)

    def _framed_let(self, name: str) -> int:
        """A let named inside an ``@``: its expression lowered on that frame (once)."""
        key = (name, self.context)
        if key not in self.framed_lets:
            let = next(i for i in self.spec.items(ast.Let) if i.name == name)
            self.framed_lets[key] = self.lower(let.expr)
        return self.framed_lets[key]

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
        args = expr.args[:len(builtin.args)]  # a trailing mode is the node's value, not an input
        inputs = tuple(self.source(c) for c in builtin.implicit)
        inputs = self.unify(inputs + tuple(self.lower(a) for a in args))
        if builtin.elementwise:
            return self.add(expr.func, inputs, unit=unit)
        values: list[Lookback] = []
        windows: list[Lookback] = []
        for (_, kind), arg, node_id in zip(builtin.args, args,
                                           inputs[len(builtin.implicit):], strict=True):
            if kind is Arg.WINDOW:
                windows.append(self.window(arg))
            elif kind is Arg.SERIES:
                values.append(self.nodes[node_id].lookback)
        lookback = builtin.lookback(values, windows)
        return self.add(expr.func, inputs, builtin.call_mode(expr), unit=unit, series=True,
                        lookback=lookback)

    def window(self, arg: ast.Expr) -> Lookback:
        """A window or lag's lookback, symbolic in its params (``intexpr.lookback``). Its
        value reaches the kernels as the node ``lower(arg)``: a literal, a param, or int
        arithmetic on them, which code generation makes a scalar step over params."""
        return lookback(arg, int_grids(self.params))

    def _cross(self, expr: ast.Call, unit: str) -> int:
        a, b = self.unify(tuple(self.lower(x) for x in expr.args))
        one = self.const(1.0, "int")
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
        if self.nodes[n].op == "const" and self.nodes[n].value == 0:  # `x[0]`, `x[1 - 1]`
            return target
        if not self.nodes[target].series and self._is_series(expr.target):
            # a series that folded to a constant (`(c or true)[1]`) still starts missing
            node = self.nodes[target]
            return self.add("lag", (target, n), unit=node.unit, series=True,
                            lookback=node.lookback + self.window(expr.lag))
        return self.lag_node(target, n, self.window(expr.lag))

    def _is_series(self, expr: ast.Expr) -> bool:
        ty = self.spec.types.get(id(expr))
        return ty is not None and ty.series

    # operators ----------------------------------------------------------
    def _neg(self, expr: ast.Expr) -> int:
        assert isinstance(expr, ast.Neg)
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
    """Lower lets, rules and requires; each let names its node, each rule slot and each
    ``require`` points at one. Nodes nothing points at (left behind by folding) are dropped."""
    lowerer = Lowerer(spec)
    for item in spec.decl.items:
        if isinstance(item, ast.Let):
            lowerer.lets[item.name] = lower_state(lowerer, item) if item.state else \
                lowerer.lower(item.expr)
    rules = {}
    for item in spec.decl.items:
        if isinstance(item, ast.Rule):
            rules[item.slot] = lowerer.based(lower_position_rule(lowerer, item)
                                             if reads_position(item.expr)
                                             else lowerer.lower(item.expr))
    requires = [lowerer.lower(r.expr) for r in spec.decl.items if isinstance(r, ast.Require)]
    ordered = {slot: rules[slot] for slot in RULE_SLOTS if slot in rules}
    lets = {name: lowerer.based(i) for name, i in lowerer.lets.items()}
    return _pruned(lowerer.nodes, lets, ordered, requires, spec, _levels(lowerer, spec))


def _levels(lowerer: Lowerer, spec: CheckedSpec) -> dict[str, int]:
    """Each stop or size expression (``lang.levels``) under its engine slot, in slot order."""
    found = {}
    for key, expr in levels_of(spec.settings(), spec.items(ast.Size),
                               {p.name: p for p in spec.params}):
        slot = level_slot(key, Unit(lowerer.unit_of(expr)))
        found[slot] = lowerer.based(lowerer.lower(expr))
    return {slot: found[slot] for slot in LEVEL_SLOTS if slot in found}


def _pruned(nodes: list[Node], lets: dict[str, int], rules: dict[str, int],
            requires: list[int], spec: CheckedSpec, levels: dict[str, int]) -> SignalGraph:
    """The graph of the nodes reachable from lets, rules, requires and levels, renumbered
    in order."""
    live: set[int] = set()
    todo = [*lets.values(), *rules.values(), *requires, *levels.values()]
    while todo:
        i = todo.pop()
        if i not in live:
            live.add(i)
            todo.extend(nodes[i].inputs)
    new_id = {old: new for new, old in enumerate(sorted(live))}
    named: dict[int, list[str]] = {}
    for name, i in lets.items():
        named.setdefault(i, []).append(name)
    kept = tuple(
        Node(new_id[n.id], n.op, tuple(new_id[i] for i in n.inputs), n.value, n.unit, n.series,
             n.lookback, tuple(named.get(n.id, ()))) for n in nodes if n.id in live)
    return SignalGraph(kept, {k: new_id[v] for k, v in lets.items()},
                       {k: new_id[v] for k, v in rules.items()}, spec.params,
                       tuple(new_id[i] for i in requires),
                       {k: new_id[v] for k, v in levels.items()})


# operations always computed on the strategy's own bars: a state's past and the position are
# series of those bars, and an alignment is what brings a frame's value there
BASE_OPS = frozenset({"state", "position_rule", "align"})


def _memo_value(value: Value) -> object:
    """Memo key of a node value: ``True`` and ``1.0`` (equal in Python) stay apart."""
    return (type(value).__name__, repr(value) if isinstance(value, float) else value)


# Boolean constants in logic: each rule gets the inputs and their constant values (None for
# a non-constant input; at least one is a bool) and returns the node to use instead.
BoolRule = Callable[[Lowerer, tuple[int, ...], list[Value]], int | None]


def _and(lw: Lowerer, ins: tuple[int, ...], vals: list[Value]) -> int:
    k = 0 if isinstance(vals[0], bool) else 1
    return ins[1 - k] if vals[k] else lw.const(False, "bool")


def _or(lw: Lowerer, ins: tuple[int, ...], vals: list[Value]) -> int:
    k = 0 if isinstance(vals[0], bool) else 1
    return lw.const(True, "bool") if vals[k] else ins[1 - k]


def _eq(lw: Lowerer, ins: tuple[int, ...], vals: list[Value], negate: bool = False) -> int:
    k = 0 if isinstance(vals[0], bool) else 1
    other = ins[1 - k]
    return other if bool(vals[k]) != negate else lw.add("not", (other,), unit="bool")


def _ne(lw: Lowerer, ins: tuple[int, ...], vals: list[Value]) -> int:
    return _eq(lw, ins, vals, negate=True)


def _where(lw: Lowerer, ins: tuple[int, ...], vals: list[Value]) -> int | None:
    """``if c then a else b`` with a boolean constant: the condition or a branch."""
    c, a, b = ins
    if isinstance(vals[0], bool):  # a literal decides alone, whatever the branches' frames
        return a if vals[0] else b
    c, a, b = lw.unify(ins)  # the rewrites below meet the frames first: `not c` of an aligned c
    if isinstance(vals[1], bool) and isinstance(vals[2], bool):
        return _branches(lw, c, vals[1], vals[2])
    if isinstance(vals[1], bool):  # c ? const : b  ==  c or b  |  not c and b
        return lw.add("or", (c, b), unit="bool") if vals[1] else \
            lw.add("and", (lw.add("not", (c,), unit="bool"), b), unit="bool")
    if isinstance(vals[2], bool):  # c ? a : const  ==  not c or a  |  c and a
        return lw.add("or", (lw.add("not", (c,), unit="bool"), a), unit="bool") if vals[2] \
            else lw.add("and", (c, a), unit="bool")
    return None


def _branches(lw: Lowerer, c: int, a: bool, b: bool) -> int:
    if a == b:
        return lw.const(a, "bool")
    return c if a else lw.add("not", (c,), unit="bool")


_BOOL_RULES: dict[str, BoolRule] = {
    "and": _and, "or": _or, "eq": _eq, "ne": _ne, "where": _where,
}
