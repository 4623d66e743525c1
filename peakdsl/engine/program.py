"""The Program: the one evaluator of a compiled strategy graph, planned once, run three ways.

Backtests, walk-forward and reports evaluate a graph once per run; a sweep evaluates it for
thousands of param sets that share most indicators; the live runner needs it one closed bar
at a time. One plan serves all three, so argument resolution (windows, scalars, lags,
leaves), numexpr use and the rule fast path exist once:

``Program.plan(cfg)`` (kept for the last configs planned; ``Program(cfg)`` plans afresh)
    the program steps the lets and rules need (only the rules with ``lets=False``), in
    program order; the leaf nodes; for every kernel step how its arguments are read; which
    rule expressions have a numpy fast path (``BoolTree``).

``Program.run(params, cols, cache=..., rows=...)``: whole arrays for one params set
    kernel steps call ``KERNELS[op](*args)``, scalar steps ``ops.apply``, expression steps
    numexpr on the compiler-generated string with an explicit ``local_dict`` of generated
    names and ``global_dict={}`` (never ``eval``). Every node also gets a *structural key*
    (``node_key``: op, input keys, concrete window / scalar values, the candles' fingerprint
    at the sources), so with a shared cache (the sweep's ``KernelCache``) ``sma(close, 20)``
    is computed once for every combination and block that needs it, whichever param supplied
    the 20. ``rows`` lets a caller own the rule buffers (the sweep writes each distinct rule
    straight into a row of its signal matrix). ``Program.signals`` is ``evaluate()``.

``Program.stream(params, history)``: one closed bar at a time (``engine/stream.py``)
    every kernel step becomes its state form (``kernels.STATES``): a ring buffer of the
    inputs for window kernels (as long as the window the builtin's lookback rule adds), the
    carried values for recursive ones (ema, rma, rsi, atr, macd*, ±DI, adx); expression
    steps run numexpr on one-element arrays, scalar steps once. ``Stream.push(bar)`` returns
    the lets and rules at that bar. Memory does not grow with the bars seen. A graph that
    reads frames (``lang.frames``) needs each bar's open ``time`` (and ``others``: the other
    markets' bars): the stream builds the frames' bars as the whole-array run's inputs do
    and runs a frame's steps only when one of its bars completes (``engine.frame_stream``).

Warm-up, precisely. A stream fed every bar from the first one returns, at every bar, exactly
what the whole-array run returns there (the state forms repeat the numba loops operation
for operation; rules masked during the warm-up alike). A stream built from a history window
is a stream fed the window's bars first, so it equals the whole-array run on *that window*:
its first bar is bar 0. How that relates to the run on the full history depends on the
kernel:

* window kernels (sma wma stdev zscore highest lowest bb_* roc percent_rank rising falling
  true_range lag) read only their last window, so once the window lies inside the history
  they agree with the full-history run. Exactly, except the rolling sums of sma, stdev,
  zscore and bb_*: their running sums are re-summed on a schedule counted from the start of
  the data (``kernels_mean`` for sma, ``kernels._moments`` for the others), so two runs
  started at different bars round differently in the last bits: measured, up to ~4e-16
  relative for sma (each within ~1e-15 of the exact mean), ~6e-14 for stdev, ~1e-11 for
  a z-score near 0 (a difference of nearly equal numbers); never a different NaN;
* recursive kernels have no window: their value after the warm-up depends on the seed,
  the mean of the first n valid values *of the data they were given*. Started later, they
  are seeded later and differ from the full-history run by a term that decays by a factor
  ``1 - alpha`` per bar (ema ``alpha = 2/(n+1)``; rma, rsi, atr, ±DI, adx ``1/n``; the
  ported kc_*, supertrend*, ha_* through their EMAs, ATR and previous candle alike);
* running kernels (obv, cumsum) and ``state`` lets (``engine.scan``) remember from the
  first bar they are given: a sum's level, a latch, a ratchet depend on where the data
  starts, for good (barssince and valuewhen only until the condition fires again).

``Program.history(params)`` is the history a live start needs: the largest lookback among
the lets and rules, i.e. the derived warm-up ``cfg.warmup.evaluate(params)`` (lags are part
of it: ``x[n]`` adds n, a crossover 1) unless a let looks further back. A stream built from
that many bars has every let and rule defined at the first bar pushed, and rules that can
fire there; recursive values are then those seeded at the start of the history, as above.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numexpr as ne
import numpy as np
import pandas as pd

from ..compile import models as m
from ..compile.ops import apply
from ..lang.ast import RULE_SLOTS
from ..lang.builtins import BUILTINS, TIME, Arg
from . import kernels_rules
from .kernels import KERNELS
from .position import PositionRule

if TYPE_CHECKING:
    from .stream import Stream

COLUMNS = ("open", "high", "low", "close", "volume")
BODIES = frozenset({"state", "position_rule"})  # nodes whose value is a scan body's text
Array = np.ndarray[Any, Any]
Key = Hashable


class EvaluationError(ValueError):
    """Bad inputs to evaluation (missing columns, unknown or out-of-range params)."""


@dataclass(frozen=True)
class Signals:
    """Named series (lets), rule signals (warm-up masked) and the warm-up used."""

    series: dict[str, Array]
    rules: dict[str, Array]
    warmup: int
    params: dict[str, float]
    # stops and sizes written as expressions, by ``lang.levels.LEVEL_SLOTS`` slot: float64
    # series the engine reads at an entry's signal bar
    levels: dict[str, Array] = field(default_factory=dict)
    # rules that read the position, by slot: their bodies and inputs (``engine.position``);
    # their ``rules`` row only says they may fire
    position_rules: dict[str, PositionRule] = field(default_factory=dict)


def resolve_params(cfg: m.StrategyConfig,
                   overrides: Mapping[str, float] | None) -> dict[str, float]:
    """Defaults with overrides applied; unknown names and out-of-range values are errors."""
    values = {p.name: p.default for p in cfg.params}
    known = {p.name: p for p in cfg.params}
    for name, value in (overrides or {}).items():
        if name not in known:
            raise EvaluationError(f"unknown param `{name}`; params: {', '.join(known) or 'none'}")
        p = known[name]
        if not p.low <= value <= p.high:
            raise EvaluationError(f"`{name}` = {value:g} is outside {p.low:g}..{p.high:g}")
        values[name] = value
    return values


def _float_column(values: Any) -> Array:
    """A column as contiguous float64 (no copy when it is one): a pandas column through its
    ``to_numpy`` (``np.asarray`` probes a Series for numpy's array protocols, each probe a
    slow pandas attribute lookup), anything else through ``np.asarray``."""
    to_numpy = getattr(values, "to_numpy", None)
    array = to_numpy(dtype=np.float64) if to_numpy is not None else \
        np.asarray(values, dtype=np.float64)
    return np.ascontiguousarray(array)


def _ready(value: Any) -> bool:
    """A contiguous read-only 1-D float64 array: what ``_column`` makes of a column."""
    return isinstance(value, np.ndarray) and value.dtype == np.float64 and \
        value.ndim == 1 and value.flags.c_contiguous and not value.flags.writeable


def _column(frame: Any, name: str) -> Array:
    """One column of a DataFrame or a mapping as contiguous float64, read-only. A DataFrame
    column is read from its block (``_get_column_array``, pandas ≥ 1.3): ``frame[name]``
    builds a Series with its index each time, ~30 µs a column — half of a 100-bar
    backtest's fixed cost. A mapping's column that already is one (``columns_of``'s own
    output, handed back to ``evaluate``) is returned as it is."""
    if isinstance(frame, dict) and _ready(frame.get(name)):
        return cast(Array, frame[name])
    get = getattr(frame, "_get_column_array", None)
    loc = frame.columns.get_loc(name) if get is not None else None
    column = get(loc) if get is not None and isinstance(loc, int) else frame[name]
    array = _float_column(column)
    view = array.view()
    view.flags.writeable = False
    return view


def _seconds(frame: Any) -> Array:
    """Each bar's open time in seconds since the epoch: a mapping's ``time`` column (as
    given), else a DataFrame's DatetimeIndex."""
    if not isinstance(frame, pd.DataFrame) and TIME in frame:
        return np.ascontiguousarray(frame[TIME], dtype=np.float64)
    index = getattr(frame, "index", None)
    if not isinstance(index, pd.DatetimeIndex):
        raise EvaluationError("this strategy reads the bars' times (`session_vwap`): give "
                              "its candles as a time-indexed DataFrame")
    from .simulate import epoch_seconds

    return epoch_seconds(index)


def columns_of(frame: Any) -> dict[str, Array]:
    """float64 arrays for open/high/low/close/volume from a DataFrame or a mapping."""
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise EvaluationError("missing columns: " + ", ".join(missing))
    return {c: _column(frame, c) for c in COLUMNS}


class NodeCache(Protocol):
    """What ``Program.run`` needs of a shared cache (``research.kernel_cache.KernelCache``):
    values stored under structural keys; stored arrays are never written to."""

    def get(self, key: Key) -> Any | None: ...

    def put(self, key: Key, value: Any) -> None: ...


class RuleRows(Protocol):
    """Caller-owned buffers for rule expressions (the sweep's signal matrix)."""

    def claim(self, key: Key) -> tuple[Array, bool]:
        """The bool row for the rule expression with structural ``key``, and whether it is
        new (to be written) rather than written already by an equal rule."""
        ...


# ---------------------------------------------------------------- leaves and keys


def leaf_value(node: m.GraphNode, cols: Mapping[str, Array], params: Mapping[str, float]
               ) -> Any:
    """A source, param or const node's value: a column, or a numpy scalar (bool or float)."""
    if node.op == "source":
        return cols[str(node.value)]
    if node.op == "param":
        return np.float64(params[str(node.value)])
    if isinstance(node.value, bool):
        return np.bool_(node.value)
    return np.float64(cast(float, node.value))


def _leaf_key(node: m.GraphNode, value: Any, fingerprint: str) -> Key:
    """Sources by the candles' fingerprint and column, numbers by type and value."""
    if node.op == "source":
        return ("src", fingerprint, str(node.value))
    return ("v", type(value).__name__, value.item())


def _window_value(value: Any) -> int:
    """A window or lag argument as the kernels take it, from its node's value: a param, a
    literal, or int arithmetic on them (``2 * n``: a scalar step, evaluated before the
    kernels). The checker proved it a whole number in range for every param value."""
    return int(value)


@dataclass(frozen=True, slots=True)
class Call:
    """How a kernel step reads its arguments: ``(kind, node)`` in ``KERNELS`` order (the
    implicit columns and lag targets are series), then the builtin's mode."""

    op: str
    args: tuple[tuple[Arg, int], ...]
    modes: tuple[str, ...]

    @staticmethod
    def of(node: m.GraphNode) -> Call:
        if node.op == "lag":
            target, n = node.inputs
            return Call("lag", ((Arg.SERIES, target), (Arg.WINDOW, n)), ())
        if node.op == "align":  # a frame's series and its index (``data.frames``)
            series, index = node.inputs
            return Call("align", ((Arg.SERIES, series), (Arg.SERIES, index)),
                        (str(node.value),))
        if node.op in BODIES:  # the body's text is its last argument (``engine.scan``)
            return Call(node.op, tuple((Arg.SERIES, i) for i in node.inputs),
                        (str(node.value),))
        builtin = BUILTINS[node.op]
        implicit = len(builtin.implicit)
        args = [(Arg.SERIES, i) for i in node.inputs[:implicit]]
        args += [(kind, i) for (_, kind), i in zip(builtin.args, node.inputs[implicit:],
                                                    strict=True)]
        return Call(node.op, tuple(args), builtin.mode_args(node.value))

    def static(self, nodes: list[m.GraphNode], values: Mapping[int, Any],
               params: Mapping[str, float]) -> list[Any]:
        """The window and scalar arguments, in order (what ``STATES[op]`` takes)."""
        return [_window_value(values[i]) if kind is Arg.WINDOW else float(values[i])
                for kind, i in self.args if kind is not Arg.SERIES]


def _series_arg(value: Any, n: int) -> Any:
    """A constant passed where a series goes (``sma(5, 10)``, a folded lag target) is a full
    column of it, of its own dtype."""
    return np.full(n, value, dtype=np.asarray(value).dtype) if np.ndim(value) == 0 else value


def node_key(call: Call, nodes: list[m.GraphNode], keys: Mapping[int, Key],
             values: Mapping[int, Any], params: Mapping[str, float], n: int
             ) -> tuple[Key, tuple[Any, ...]]:
    """A kernel step's structural key and its ``KERNELS`` arguments:
    ``("k", op, input keys and ("w", window) / ("f", scalar) in order, modes)``. Two nodes
    with equal keys compute the same array, whatever params or nodes they came from."""
    args: list[Any] = []
    parts: list[Key] = []
    for kind, i in call.args:
        if kind is Arg.WINDOW:
            window = _window_value(values[i])
            args.append(window)
            parts.append(("w", window))
        elif kind is Arg.SCALAR:
            scalar = float(values[i])
            args.append(scalar)
            parts.append(("f", scalar))
        else:
            args.append(_series_arg(values[i], n))
            parts.append(keys[i])
    return ("k", call.op, *parts, *call.modes), (*args, *call.modes)


# ---------------------------------------------------------------- the rule fast path

# A rule expression made only of comparisons and logic over materialised inputs evaluates
# exactly (no rounding anywhere) with numpy's branch-free ufuncs, about three times faster
# than numexpr's boolean opcodes; anything else stays with numexpr.
BoolTree = tuple[Any, ...]  # ("var", node) | ("const", value) | ("lag", node, target, w) | (op, …)
_COMPARE = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
            "eq": np.equal, "ne": np.not_equal}  # IEEE: `!=` is True with NaN, as `ops` says
_LOGIC = {"and": np.logical_and, "or": np.logical_or}


def bool_tree(nodes: list[m.GraphNode], node_id: int, materialised: frozenset[int],
              root: bool = True) -> BoolTree | None:
    """The comparison/logic tree of a rule step, or None when it holds anything else.

    A materialised input that is a lag by a constant window of another materialised node
    becomes ``("lag", node, target, window)``: past the first ``window`` bars it is just the
    target shifted, so it can be read as a view of the target instead of as its own array
    (crossover rules then stream each moving average once instead of twice)."""
    node = nodes[node_id]
    if not root and node_id in materialised:
        if node.op == "lag" and nodes[node.inputs[1]].op == "const":
            window = int(cast(float, nodes[node.inputs[1]].value))
            if window > 0:
                return ("lag", node_id, node.inputs[0], window)
        return ("var", node_id)
    if node.op == "const":
        return ("const", node.value)
    if node.op not in _COMPARE and node.op not in _LOGIC and node.op != "not":
        return None
    children = [bool_tree(nodes, i, materialised, False) for i in node.inputs]
    if any(c is None for c in children):
        return None
    return (node.op, *children)


def _max_lag(tree: BoolTree) -> int:
    if tree[0] == "lag":
        return int(tree[3])
    if tree[0] in ("var", "const"):
        return 0
    return max((_max_lag(child) for child in tree[1:]), default=0)


def viewable(value: Any) -> bool:
    """A lag of ``value`` by a constant window can be read as a view of it: a 1-D float64 or
    bool array, which the ``lag`` kernel would copy as it is (NaN / False fill)."""
    return isinstance(value, np.ndarray) and value.ndim == 1 and \
        value.dtype in (np.float64, np.bool_)


def _lag_head(target: Array, window: int, lo: int, hi: int) -> Array:
    """``lag(target, window)[lo:hi]`` for ``lo < window``, built from its target: the fill
    (NaN, or False for bools) where the lag has no value yet, then the target."""
    fill: float | bool = False if target.dtype == np.bool_ else np.nan
    out = np.full(hi - lo, fill, dtype=target.dtype)
    first = min(max(window - lo, 0), hi - lo)
    out[first:] = target[lo + first - window: hi - window]
    return out


def _tree_leaf(tree: BoolTree, values: Mapping[int, Any], lo: int, hi: int,
               shifted: bool) -> Any:
    """A leaf over bars [lo, hi): arrays sliced; lags as views of their target if allowed
    (and always when the lag itself was not materialised: ``Program.view_lags``)."""
    if tree[0] == "const":
        return tree[1]
    if tree[0] == "lag" and (shifted or tree[1] not in values):
        target = values[tree[2]]
        if viewable(target):
            if lo >= tree[3]:
                return target[lo - tree[3]: hi - tree[3]]
            return _lag_head(target, tree[3], lo, hi)
    value = values[tree[1]]
    return value[lo:hi] if isinstance(value, np.ndarray) and value.ndim == 1 else value


def _eval_region(tree: BoolTree, values: Mapping[int, Any], lo: int, hi: int, shifted: bool,
                 out: Array | None = None) -> Any:
    op = tree[0]
    if op in ("var", "const", "lag"):
        return _tree_leaf(tree, values, lo, hi, shifted)
    args = [_eval_region(child, values, lo, hi, shifted) for child in tree[1:]]
    if op == "not":
        return np.logical_not(args[0], out=out)
    ufunc = _COMPARE.get(op) or _LOGIC[op]
    return ufunc(args[0], args[1], out=out)


def _series_leaf(leaf: BoolTree, values: Mapping[int, Any], n: int
                 ) -> tuple[Array, int] | None:
    """A leaf as ``eval_bool`` reads it past the head (a lag as a view of its target where
    it can be), as (float64 series of ``n``, bars back); None if it is anything else."""
    value, shift = None, 0
    if leaf[0] == "lag" and viewable(values.get(leaf[2])):
        value, shift = values[leaf[2]], int(leaf[3])
    elif leaf[0] in ("var", "lag"):
        value = values.get(leaf[1])
    if isinstance(value, np.ndarray) and value.dtype == np.float64 and value.shape == (n,):
        return value, shift
    return None


def _series_terms(tree: BoolTree, values: Mapping[int, Any], n: int
                  ) -> list[kernels_rules.Term] | None:
    """``tree`` as ``kernels_rules`` terms when it is comparisons of float series joined by
    ``and`` (a crossover), else None (numpy evaluates it)."""
    compares = kernels_rules.conjunction(tree)
    terms = []
    for node in compares or ():
        left, right = _series_leaf(node[1], values, n), _series_leaf(node[2], values, n)
        if left is None or right is None:
            return None
        op, swapped = kernels_rules.OPS[node[0]]
        (x, hx), (y, hy) = (right, left) if swapped else (left, right)
        terms.append((op, x, hx, y, hy))
    return terms or None


def eval_bool(tree: BoolTree, values: Mapping[int, Any], out: Array) -> None:
    """Evaluate a ``bool_tree`` into ``out``: by ``kernels_rules``' loops when the tree is
    comparisons of float series joined by ``and`` (a crossover), else with numpy — the
    first bars (where a lag is still filling) from the lag arrays, the rest reading lags as
    shifted views."""
    n = out.shape[0]
    terms = _series_terms(tree, values, n)
    if terms is not None:
        kernels_rules.write_terms(terms, out)
        return
    head = min(_max_lag(tree), n)
    if head:
        _eval_region(tree, values, 0, head, False, out=out[:head])
    for lo in range(head, n, EVAL_BLOCK):
        hi = min(lo + EVAL_BLOCK, n)
        _eval_region(tree, values, lo, hi, True, out=out[lo:hi])


# Bars a rule's comparisons and logic are evaluated for at a time: the temporaries of a
# block stay in the cache (at 1M bars, whole-array temporaries made the rules a third
# slower).
EVAL_BLOCK = 1 << 16


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class Planned:
    """One program step as the plan runs it. ``kind`` is the artifact's, except that an
    expression computing a rule is ``"rule"`` (it may go to a caller's row)."""

    node: int
    kind: str  # "kernel" | "scalar" | "expr" | "rule"
    op: str
    inputs: tuple[int, ...]  # scalar: operand nodes; expr/rule: the nodes of ``names``
    names: tuple[str, ...] = ()  # expr/rule: numexpr variable names, sorted
    expr: str = ""
    call: Call | None = None  # kernel
    tree: BoolTree | None = None  # rule with a numpy fast path


def _tree_leaves(tree: BoolTree) -> list[BoolTree]:
    if tree[0] in ("var", "const", "lag"):
        return [tree]
    return [leaf for child in tree[1:] for leaf in _tree_leaves(child)]


def _view_lags(steps: list[Planned], outputs: set[int]) -> frozenset[int]:
    """Lag steps every consumer of which is a rule tree reading them as a ``("lag", …)``
    leaf (a view of the target, see ``bool_tree``): they need not be materialised."""
    lags = {s.node for s in steps if s.kind == "kernel" and s.op == "lag"} - outputs
    for step in steps:
        as_views = {leaf[1] for leaf in _tree_leaves(step.tree) if leaf[0] == "lag"} \
            if step.tree is not None else set()
        lags -= set(step.inputs) - as_views
        if step.tree is not None:
            lags -= {leaf[1] for leaf in _tree_leaves(step.tree) if leaf[0] == "var"}
    return frozenset(lags)


def _needed(cfg: m.StrategyConfig, outputs: list[int]) -> set[int]:
    nodes = cfg.graph.nodes
    needed: set[int] = set()
    todo = list(outputs)
    while todo:
        i = todo.pop()
        if i not in needed:
            needed.add(i)
            todo.extend(nodes[i].inputs)
    return needed


def _planned(step: m.Step, node: m.GraphNode, rules: frozenset[int],
             nodes: list[m.GraphNode]) -> Planned:
    if step.kind == "kernel":
        return Planned(node.id, "kernel", node.op, tuple(node.inputs), call=Call.of(node))
    if step.kind == "scalar":
        return Planned(node.id, "scalar", node.op, tuple(node.inputs))
    pairs = sorted(step.inputs.items())
    names, inputs = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    if node.id not in rules:
        return Planned(node.id, "expr", node.op, inputs, names, cast(str, step.expr))
    tree = bool_tree(nodes, node.id, frozenset(inputs))
    return Planned(node.id, "rule", node.op, inputs, names, cast(str, step.expr), tree=tree)


@dataclass
class Evaluation:
    """One whole-array run: every needed node's value and structural key."""

    params: Mapping[str, float]
    cols: Mapping[str, Array]
    n: int
    fingerprint: str
    cache: NodeCache | None
    rows: RuleRows | None
    skip: frozenset[int] = frozenset()  # rule nodes left to the caller
    values: dict[int, Any] = field(default_factory=dict)
    keys: dict[int, Key] = field(default_factory=dict)
    kernel_seconds: float = 0.0  # spent in kernel calls (cache misses)


class Program:
    """A compiled strategy's graph, planned once (see the module docstring)."""

    def __init__(self, cfg: m.StrategyConfig, *, lets: bool = True) -> None:
        graph = cfg.graph
        self.cfg = cfg
        self.nodes = graph.nodes
        self.lets = dict(graph.lets) if lets else {}
        self.rules = dict(graph.rules)
        self.levels = dict(graph.levels)
        # the inputs of the rules that read the position, in ``engine.position.pack`` order
        self.position_inputs = tuple(
            k for slot in RULE_SLOTS if slot in self.rules
            and self.nodes[self.rules[slot]].op == "position_rule"
            for k in self.nodes[self.rules[slot]].inputs)
        needed = _needed(cfg, [*self.rules.values(), *self.lets.values(),
                               *self.levels.values()])
        rule_nodes = frozenset(self.rules.values())
        self.leaves = [n for n in self.nodes
                       if n.id in needed and n.op in ("source", "param", "const")]
        # the frames read (``lang.frames``): their align nodes and the inputs they need
        self.aligns = tuple(n.id for n in self.nodes if n.id in needed and n.op == "align")
        self.frame_inputs = tuple(str(n.value) for n in self.leaves
                                  if n.op == "source" and "@" in str(n.value))
        self.reads_time = any(n.op == "source" and n.value == TIME for n in self.leaves)
        self.steps = [_planned(s, self.nodes[s.node], rule_nodes, self.nodes)
                      for s in graph.program if s.node in needed]
        # lags read only as shifted views by rule trees: their kernel is not called when the
        # target is viewable (``_kernel``); the key is still made (rule keys include it)
        self.view_lags = _view_lags(self.steps, {*self.rules.values(), *self.lets.values(),
                                                 *self.levels.values()})
        # rule outputs a whole-array run creates afresh and nothing else holds (one slot,
        # no let): ``signals`` masks their warm-up in place instead of copying them
        slots = list(self.rules.values())
        self.fresh_rules = frozenset(s.node for s in self.steps if s.kind == "rule"
                                     and slots.count(s.node) == 1
                                     and s.node not in self.lets.values())
        # rule expression -> numexpr may write it into a caller's bool row (learned on the
        # first run: a bool array of the candles' length)
        self.direct: dict[int, bool] = {}

    @classmethod
    def plan(cls, cfg: m.StrategyConfig, *, lets: bool = True) -> Program:
        """The plan for ``cfg``: lets and rules, or the rules only (``lets=False``).

        Planning costs about as much as evaluating a few hundred bars, so the plans of the
        last ``_PLANS_KEPT`` config objects are kept: a repeated ``evaluate()`` of the same
        config (warm backtests, walk-forward windows) plans once. Keyed by identity: a
        kept plan holds its config, so the id cannot be reused while it is kept."""
        key = (id(cfg), lets)
        with _PLANS_LOCK:
            program = _PLANS.get(key)
            if program is not None:
                _PLANS.move_to_end(key)
                return program
        program = cls(cfg, lets=lets)
        with _PLANS_LOCK:
            _PLANS[key] = program
            while len(_PLANS) > _PLANS_KEPT:
                _PLANS.popitem(last=False)
        return program

    # ------------------------------------------------------------ whole arrays

    def run(self, params: Mapping[str, float], cols: Mapping[str, Array], *,
            fingerprint: str = "", cache: NodeCache | None = None,
            rows: RuleRows | None = None, skip: frozenset[int] = frozenset()) -> Evaluation:
        """Values and keys of every planned node for ``params`` (all params, resolved) on
        ``cols``. ``cache`` shares kernel outputs and series expressions by key; ``rows``
        receives the rule expressions (see ``RuleRows``); the rule steps in ``skip`` are
        not run (neither value nor key: the sweep evaluates their ``BoolTree`` from its
        leaves). Lags in ``view_lags`` get a key but no value (read as views)."""
        run = Evaluation(params, cols, len(cols["close"]), fingerprint, cache, rows, skip)
        for leaf in self.leaves:
            value = leaf_value(leaf, cols, params)
            run.values[leaf.id] = value
            run.keys[leaf.id] = _leaf_key(leaf, value, fingerprint)
        for step in self.steps:
            _RUN[step.kind](self, step, run)
        return run

    def signals(self, frame: Any, params: Mapping[str, float] | None = None) -> Signals:
        """Lets and warm-up-masked rules on ``frame`` for ``params`` (defaults otherwise):
        what ``evaluate()`` returns."""
        values = resolve_params(self.cfg, params)
        cols = self.inputs(frame)
        run = self.run(values, cols)
        length = run.n
        warmup = min(self.cfg.warmup.evaluate(values), length)
        series = {name: _broadcast(run.values[i], length) for name, i in self.lets.items()}
        rules = {}
        for slot, i in self.rules.items():
            signal = run.values[i]
            if i not in self.fresh_rules or not _bool_series(signal, length):
                signal = _broadcast(signal, length).astype(bool, copy=True)
            signal[:warmup] = False
            rules[slot] = signal
        return Signals(series, rules, warmup, values, self.level_series(run),
                       self.position_rules(run))

    def inputs(self, frame: Any) -> dict[str, Array]:
        """The columns a run reads from ``frame``: open/high/low/close/volume and, for a
        graph that reads other timeframes or markets (``lang.frames``), each frame's columns
        and index — taken from ``frame`` when it has them (``data.frames.inputs_for``), else
        built from its time index (other timeframes of its own market only)."""
        cols = columns_of(frame)
        if self.reads_time:
            cols[TIME] = _seconds(frame)
        if not self.frame_inputs:
            return cols
        if all(k in frame for k in self.frame_inputs):
            return cols | {k: np.asarray(frame[k]) for k in self.frame_inputs}
        index = getattr(frame, "index", None)
        if not isinstance(index, pd.DatetimeIndex) or not self.cfg.timeframe:
            raise EvaluationError("this strategy reads other timeframes or markets (`@`): "
                                  "give its candles as a time-indexed DataFrame")
        from ..data import DataError
        from ..data.frames import frame_inputs

        keys = sorted({str(self.nodes[k].value) for k in self.aligns})
        try:
            return cols | frame_inputs(keys, frame, self.cfg.timeframe, {})
        except DataError as exc:
            raise EvaluationError(exc.diagnostics[0].message) from None

    def position_rules(self, run: Evaluation) -> dict[str, PositionRule]:
        """The rules that read the position, with their inputs over the run's bars."""
        out = {}
        for slot, i in self.rules.items():
            node = self.nodes[i]
            if node.op == "position_rule":
                inputs = np.array([_broadcast(run.values[k], run.n) for k in node.inputs],
                                  dtype=np.float64).reshape(len(node.inputs), run.n)
                out[slot] = PositionRule(str(node.value), inputs)
        return out

    def level_series(self, run: Evaluation) -> dict[str, Array]:
        """The stop and size expressions of a run as float64 series of its length."""
        return {slot: np.ascontiguousarray(_broadcast(run.values[i], run.n), dtype=np.float64)
                for slot, i in self.levels.items()}

    def _kernel(self, step: Planned, run: Evaluation) -> None:
        key, args = node_key(cast(Call, step.call), self.nodes, run.keys, run.values,
                             run.params, run.n)
        run.keys[step.node] = key
        if step.node in self.view_lags and viewable(run.values[step.inputs[0]]):
            return  # read as a view of its target by the rules (``_tree_leaf``)
        value = run.cache.get(key) if run.cache is not None else None
        if value is None:
            t0 = time.perf_counter()
            value = KERNELS[step.op](*args)
            run.kernel_seconds += time.perf_counter() - t0
            if run.cache is not None:
                run.cache.put(key, value)
        run.values[step.node] = value

    def _scalar(self, step: Planned, run: Evaluation) -> None:
        run.values[step.node] = apply(step.op, *(run.values[i] for i in step.inputs))
        run.keys[step.node] = ("s", step.op, tuple(run.keys[i] for i in step.inputs))

    def _expr(self, step: Planned, run: Evaluation) -> None:
        key = _expr_key(step, run.keys)
        value = run.cache.get(key) if run.cache is not None else None
        if value is None:
            value = _numexpr(step, run.values)
            if run.cache is not None and np.ndim(value) > 0:
                run.cache.put(key, value)
        run.values[step.node] = value
        run.keys[step.node] = key

    def _rule(self, step: Planned, run: Evaluation) -> None:
        if step.node in run.skip:
            return  # the caller reads the tree itself (the sweep: ``rule_code``)
        key = _expr_key(step, run.keys)
        if step.tree is not None or (run.rows is not None and self.direct.get(step.node)):
            value, fresh = run.rows.claim(key) if run.rows is not None else \
                (np.empty(run.n, dtype=np.bool_), True)
            if fresh:
                _write_rule(step, run.values, value)
        else:
            value = _numexpr(step, run.values)
            self.direct[step.node] = bool(value.dtype == np.bool_ and value.shape == (run.n,))
        run.values[step.node] = value
        run.keys[step.node] = key

    # ------------------------------------------------------------ bar by bar

    def history(self, params: Mapping[str, float] | None = None) -> int:
        """Bars of history a live start needs for every let and rule to be defined (and
        rules able to fire) at the first bar pushed: the largest lookback among them."""
        values = resolve_params(self.cfg, params)
        looks = [self.nodes[i].lookback.evaluate(values) for i in self.lets.values()]
        return max([self.cfg.warmup.evaluate(values), *looks])

    def stream(self, params: Mapping[str, float] | None = None, history: Any = None,
               others: Mapping[str, Any] | None = None) -> Stream:
        """A ``Stream`` for ``params`` (defaults otherwise), fed the bars of ``history`` (a
        frame or mapping of columns, optional) first (``engine.stream.stream_of``)."""
        from .stream import stream_of

        return stream_of(self, params, history, others)


def _expr_key(step: Planned, keys: Mapping[int, Key]) -> Key:
    return ("e", step.expr, tuple(zip(step.names, (keys[i] for i in step.inputs),
                                      strict=True)))


def _numexpr(step: Planned, values: Mapping[int, Any], out: Array | None = None) -> Any:
    """The compiler's expression string over the generated names only, no globals."""
    local = {name: values[i] for name, i in zip(step.names, step.inputs, strict=True)}
    return ne.evaluate(step.expr, local_dict=local, global_dict={}, out=out)


def _write_rule(step: Planned, values: Mapping[int, Any], out: Array) -> None:
    if step.tree is not None:
        eval_bool(step.tree, values, out)
    else:
        _numexpr(step, values, out=out)


_PLANS: OrderedDict[tuple[int, bool], Program] = OrderedDict()
_PLANS_KEPT = 32
_PLANS_LOCK = threading.Lock()
_RUN: dict[str, Callable[[Program, Planned, Evaluation], None]] = {
    "kernel": Program._kernel, "scalar": Program._scalar, "expr": Program._expr,
    "rule": Program._rule,
}


def _bool_series(value: Any, length: int) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == np.bool_ and \
        value.shape == (length,)


def _broadcast(value: Any, length: int) -> Array:
    arr = np.asarray(value)
    return np.broadcast_to(arr, (length,)).copy() if arr.ndim == 0 else arr
