"""The sweep engine: metrics of a block of param combinations, fast and equal to the reference.

``evaluate_block`` returns what ``types.reference_block`` (one ``run_backtest`` per
combination) returns, to the last bit in practice (the contract says 1e-12), because every
number goes through the same code:

* **Kernels once per distinct call.** Each graph node gets a structural key (op, input keys,
  concrete window / scalar values; the candles' fingerprint at the sources — ``node_key``).
  Kernel outputs (and param-dependent series expressions) live in a :class:`KernelCache`
  keyed by it, so ``sma(close, 20)`` is computed once for every combination with ``fast =
  20`` *or* ``slow = 20``, and reused by later blocks of the sweep when the caller passes the
  cache. The calls are exactly ``evaluate``'s (``KERNELS[op](*args)``), so the arrays are
  identical.
* **Signals per combination, only the param-dependent part.** Only nodes the rules need are
  evaluated. Rule expressions run through numexpr with the compiler's string, an explicit
  ``local_dict`` of 1-D cached arrays and ``global_dict={}`` (never ``eval``), writing
  straight into a row of one preallocated ``(rows, bars)`` bool buffer (``out=``). Equal rule
  keys share a row (e.g. a sweep over a stop-loss param evaluates the signals once).
* **One parallel numba call per chunk** simulates every combination (``prange`` over
  ``numba.get_num_threads()`` interleaved groups, each with its own scratch buffers: no
  per-combination equity or trade arrays are kept) with ``simulate.loop`` — the bar loop of
  ``simulate`` — and computes its metrics with ``stats.metrics_core`` — the core of
  ``compute_metrics``. Warm-up and every execution setting (fees, slippage, sizing, stops:
  any may be a param; end of data, leverage) are resolved per combination with
  ``backtest.sim_settings``, and the metrics are annualised with the strategy's calendar.

Combinations are processed in chunks of half ``chunk_size(bars, max_memory)``, two in flight:
the numba call of one chunk runs in a helper thread (it releases the GIL) while the next
chunk's signals are built, so the working memory stays within ``max_memory`` (plus the
cache's own bound). numexpr is set to one thread for the call (process-global, restored
after): with the numba threads busy, its own pool only adds contention.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import numba
import numexpr as ne
import numpy as np

from ..backtest import sim_settings
from ..compile import models as m
from ..compile.ops import apply
from ..data.candles import CandleSet
from ..engine import kernels as kernel_module
from ..engine.evaluate import EvaluationError, columns_of
from ..engine.results import TRADE_COLUMNS
from ..engine.simulate import (
    NSTATE,
    RULE_SLOTS,
    SIZING_CODES,
    STATE_AMBIGUOUS,
    STATE_EXPOSED,
    STATE_FEES,
    STATE_REDUCED,
    STATE_TRADES,
    check_settings,
    loop,
)
from ..engine.stats import METRIC_KEYS, N_METRICS, bars_per_year, metrics_core, scratch_size
from ..lang.builtins import BUILTINS, Arg
from .kernel_cache import DEFAULT_CACHE_BYTES, KernelCache
from .types import Array, RunConfig

__all__ = ["DEFAULT_BLOCK_MEMORY", "KernelCache", "block_memory", "chunk_size",
           "evaluate_block", "node_key"]

DEFAULT_BLOCK_MEMORY = 256 * 2**20  # working memory of one evaluate_block call (cache apart)
_TRANSIENT_SERIES = 8  # float64 series alive at once while one combination's graph runs
_PNL = TRADE_COLUMNS.index("pnl")
_RETURN = TRADE_COLUMNS.index("return")
_NCOL = len(TRADE_COLUMNS)
# per-combination settings: float columns, int columns
(_F_CAPITAL, _F_FEES, _F_SLIPPAGE, _F_VALUE, _F_STOP, _F_TARGET, _F_TRAIL, _F_QTY_STEP,
 _F_MIN_NOTIONAL, _F_BARS_PER_YEAR, _F_LEVERAGE) = range(11)
_NF = 11
_I_FILL_CLOSE, _I_MODE, _I_WARMUP, _I_VOL_LOOKBACK, _I_MARK_END = range(5)
_NI = 5

Key = Hashable
_DEFAULT_RUN = RunConfig()  # frozen: the same as a fresh RunConfig()


# ---------------------------------------------------------------- memory bound


def _threads() -> int:
    return int(numba.get_num_threads())


def block_memory(n_bars: int, k: int) -> int:
    """Upper bound of the bytes ``evaluate_block`` allocates for ``k`` combinations on
    ``n_bars`` bars, the kernel cache apart (it has its own bound).

    Per combination: up to four rule-signal rows of ``n_bars`` bools, settings, slots and
    metrics. Per call: one all-False row, a few transient float64 series of the graph run,
    and per numba thread an equity curve, a trade table (``n_bars`` rows) and the metrics
    scratch.
    """
    n = max(int(n_bars), 1)
    per_combo = len(RULE_SLOTS) * n + 8 * (_NF + _NI + len(RULE_SLOTS) + 2 * N_METRICS)
    per_thread = 8 * (n + n * _NCOL + scratch_size(n, n) + NSTATE)
    fixed = n + 8 * n * _TRANSIENT_SERIES + _threads() * per_thread
    return fixed + max(int(k), 0) * per_combo


def chunk_size(n_bars: int, max_memory_bytes: int) -> int:
    """The most combinations per chunk with ``block_memory(n_bars, k) <= max_memory_bytes``
    (at least 1: one combination always runs)."""
    fixed = block_memory(n_bars, 0)
    per_combo = block_memory(n_bars, 1) - fixed
    return max(1, (int(max_memory_bytes) - fixed) // per_combo)


# ---------------------------------------------------------------- graph plan


@dataclass
class _Plan:
    """What one (config, param names) pair needs, worked out once per call."""

    cfg: m.StrategyConfig
    steps: list[m.Step]  # the program's steps the rules need, in program order
    leaves: list[m.GraphNode]  # source / param / const nodes the rules need
    rule_nodes: frozenset[int]
    slot_nodes: list[int | None]  # per RULE_SLOTS entry: its node, None when unused
    inputs: dict[int, tuple[tuple[str, int], ...]]  # expr step node -> sorted (name, node)
    direct: dict[int, bool] = field(default_factory=dict)  # rule expr -> numexpr out= ok
    bool_trees: dict[int, BoolTree] = field(default_factory=dict)  # rule expr -> numpy form


# A rule expression made only of comparisons and logic over materialised inputs evaluates
# exactly (no rounding anywhere) with numpy's branch-free ufuncs, about three times faster
# than numexpr's boolean opcodes; anything else stays with numexpr.
BoolTree = tuple[Any, ...]  # ("var", node) | ("const", value) | (op, child, ...)
_COMPARE = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
            "eq": np.equal, "ne": np.not_equal}  # IEEE: `!=` is True with NaN, as `ops` says
_LOGIC = {"and": np.logical_and, "or": np.logical_or}


def _bool_tree(nodes: list[m.GraphNode], node_id: int, materialised: frozenset[int],
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
    children = [_bool_tree(nodes, i, materialised, False) for i in node.inputs]
    if any(c is None for c in children):
        return None
    return (node.op, *children)


def _max_lag(tree: BoolTree) -> int:
    if tree[0] == "lag":
        return int(tree[3])
    if tree[0] in ("var", "const"):
        return 0
    return max((_max_lag(child) for child in tree[1:]), default=0)


def _leaf_value(tree: BoolTree, values: Mapping[int, Any], lo: int, hi: int,
                shifted: bool) -> Any:
    """A leaf over bars [lo, hi): arrays sliced; lags as views of their target if allowed."""
    if tree[0] == "const":
        return tree[1]
    if tree[0] == "lag" and shifted:
        target = values[tree[2]]
        if isinstance(target, np.ndarray) and target.ndim == 1:
            return target[lo - tree[3]: hi - tree[3]]
    value = values[tree[1]]
    return value[lo:hi] if isinstance(value, np.ndarray) and value.ndim == 1 else value


def _eval_region(tree: BoolTree, values: Mapping[int, Any], lo: int, hi: int, shifted: bool,
                 out: Array | None = None) -> Any:
    op = tree[0]
    if op in ("var", "const", "lag"):
        return _leaf_value(tree, values, lo, hi, shifted)
    args = [_eval_region(child, values, lo, hi, shifted) for child in tree[1:]]
    if op == "not":
        return np.logical_not(args[0], out=out)
    ufunc = _COMPARE.get(op) or _LOGIC[op]
    return ufunc(args[0], args[1], out=out)


def _eval_bool(tree: BoolTree, values: Mapping[int, Any], out: Array) -> None:
    """Evaluate a ``_bool_tree`` into ``out`` with numpy: the first bars (where a lag is
    still filling) from the lag arrays, the rest reading lags as shifted views."""
    n = out.shape[0]
    head = min(_max_lag(tree), n)
    if head:
        _eval_region(tree, values, 0, head, False, out=out[:head])
    if head < n:
        _eval_region(tree, values, head, n, True, out=out[head:])


def _plan(cfg: m.StrategyConfig) -> _Plan:
    nodes = cfg.graph.nodes
    needed: set[int] = set()
    todo = list(cfg.graph.rules.values())
    while todo:
        i = todo.pop()
        if i not in needed:
            needed.add(i)
            todo.extend(nodes[i].inputs)
    steps = [s for s in cfg.graph.program if s.node in needed]
    leaves = [n for n in nodes if n.id in needed and n.op in ("source", "param", "const")]
    slot_nodes = [cfg.graph.rules.get(slot) for slot in RULE_SLOTS]
    inputs = {s.node: tuple(sorted(s.inputs.items())) for s in steps if s.kind == "expr"}
    rule_nodes = frozenset(cfg.graph.rules.values())
    trees = {}
    for step in steps:
        if step.kind == "expr" and step.node in rule_nodes:
            tree = _bool_tree(nodes, step.node, frozenset(step.inputs.values()))
            if tree is not None:
                trees[step.node] = tree
    return _Plan(cfg, steps, leaves, rule_nodes, slot_nodes, inputs, bool_trees=trees)


def _window_value(node: m.GraphNode, params: Mapping[str, float]) -> int:
    """A window argument exactly as ``evaluate`` resolves it (a param or a literal)."""
    value = params[str(node.value)] if node.op == "param" else node.value
    return int(cast(float, value))


def _leaf(node: m.GraphNode, cols: Mapping[str, Array], params: Mapping[str, float],
          fingerprint: str) -> tuple[Any, Key]:
    """A leaf's value (as ``evaluate`` builds it) and its key."""
    if node.op == "source":
        return cols[str(node.value)], ("src", fingerprint, str(node.value))
    if node.op == "param":
        value: Any = np.float64(params[str(node.value)])
    elif isinstance(node.value, bool):
        value = np.bool_(node.value)
    else:
        value = np.float64(cast(float, node.value))
    return value, ("v", type(value).__name__, value.item())


def node_key(node: m.GraphNode, keys: Mapping[int, Key], nodes: list[m.GraphNode],
             params: Mapping[str, float], values: Mapping[int, Any], n_bars: int
             ) -> tuple[Key, tuple[Any, ...]]:
    """A kernel node's cache key and its ``KERNELS`` arguments, resolved as ``evaluate``
    resolves them: ``(op, input keys and concrete window / scalar values)``."""
    if node.op == "lag":
        target, n = node.inputs
        window = _window_value(nodes[n], params)
        value = values[target]  # a folded constant is lagged as a full series, as evaluate does
        if np.ndim(value) == 0:
            value = np.full(n_bars, value, dtype=np.asarray(value).dtype)
        return ("k", "lag", keys[target], ("w", window)), (value, window)
    builtin = BUILTINS[node.op]
    implicit = len(builtin.implicit)
    args: list[Any] = [values[i] for i in node.inputs[:implicit]]
    parts: list[Key] = [keys[i] for i in node.inputs[:implicit]]
    for (_, kind), i in zip(builtin.args, node.inputs[implicit:], strict=True):
        if kind is Arg.WINDOW:
            window = _window_value(nodes[i], params)
            args.append(window)
            parts.append(("w", window))
        elif kind is Arg.SCALAR:
            scalar = float(values[i])
            args.append(scalar)
            parts.append(("f", scalar))
        else:  # a constant series argument is broadcast, as ``evaluate`` does
            value = values[i]
            args.append(np.full(n_bars, value, dtype=np.float64) if np.ndim(value) == 0
                        else value)
            parts.append(keys[i])
    modes = builtin.mode_args(node.value)  # ("sample",) etc.: part of the key, never shared
    return ("k", node.op, *parts, *modes), (*args, *modes)


# ---------------------------------------------------------------- the block


@dataclass
class _Chunk:
    """Buffers of one chunk: signal rows, their owners' keys, slots and settings."""

    signals: Array  # (rows, bars) bool; row 0 all False
    slots: Array  # (k, 4) int64 row per rule slot
    fpar: Array  # (k, _NF) float64
    ipar: Array  # (k, _NI) int64
    row_of: dict[Key, int] = field(default_factory=dict)
    used: int = 1
    kernel_seconds: float = 0.0

    def new_row(self, key: Key) -> int:
        row = self.used
        self.used += 1
        self.row_of[key] = row
        return row


def _validate(cfg: m.StrategyConfig, names: tuple[str, ...], combos: Array) -> None:
    known = {p.name: p for p in cfg.params}
    if len(set(names)) != len(names):
        raise EvaluationError(f"duplicate param names: {', '.join(names)}")
    for col, name in enumerate(names):
        if name not in known:
            raise EvaluationError(
                f"unknown param `{name}`; params: {', '.join(known) or 'none'}")
        p = known[name]
        values = combos[:, col]
        bad = ~((values >= p.low) & (values <= p.high))
        if bad.any():
            value = float(values[int(np.argmax(bad))])
            raise EvaluationError(f"`{name}` = {value:g} is outside {p.low:g}..{p.high:g}")


def _run_graph(plan: _Plan, params: dict[str, float], cols: Mapping[str, Array],
               fingerprint: str, cache: KernelCache, chunk: _Chunk, n: int
               ) -> tuple[dict[int, Any], dict[int, Key], dict[int, int]]:
    """Values and keys of the needed nodes for one combination; rule expressions go
    straight into signal rows (returned: rule node -> row)."""
    nodes = plan.cfg.graph.nodes
    values: dict[int, Any] = {}
    keys: dict[int, Key] = {}
    rows: dict[int, int] = {}
    for leaf in plan.leaves:
        values[leaf.id], keys[leaf.id] = _leaf(leaf, cols, params, fingerprint)
    for step in plan.steps:
        node = nodes[step.node]
        if step.kind == "kernel":
            key, args = node_key(node, keys, nodes, params, values, n)
            value = cache.get(key)
            if value is None:
                t0 = time.perf_counter()
                value = kernel_module.KERNELS[node.op](*args)
                chunk.kernel_seconds += time.perf_counter() - t0
                cache.put(key, value)
        elif step.kind == "scalar":
            value = apply(node.op, *(values[i] for i in node.inputs))
            key = ("s", node.op, tuple(keys[i] for i in node.inputs))
        else:
            inputs = plan.inputs[node.id]
            key = ("e", step.expr, tuple((name, keys[i]) for name, i in inputs))
            local = {name: values[i] for name, i in inputs}
            if node.id in plan.rule_nodes and plan.direct.get(node.id, False):
                row = chunk.row_of.get(key)
                if row is None:
                    row = chunk.new_row(key)
                    tree = plan.bool_trees.get(node.id)
                    if tree is not None:
                        _eval_bool(tree, values, out=chunk.signals[row])
                    else:
                        ne.evaluate(cast(str, step.expr), local_dict=local, global_dict={},
                                    out=chunk.signals[row])
                rows[node.id] = row
                value = chunk.signals[row]
            elif node.id in plan.rule_nodes:
                value = ne.evaluate(cast(str, step.expr), local_dict=local, global_dict={})
                plan.direct[node.id] = bool(value.dtype == np.bool_ and value.shape == (n,))
            else:
                value = cache.get(key)
                if value is None:
                    value = ne.evaluate(cast(str, step.expr), local_dict=local,
                                        global_dict={})
                    if np.ndim(value) > 0:
                        cache.put(key, value)
        values[node.id] = value
        keys[node.id] = key
    return values, keys, rows


def _fill_combo(plan: _Plan, j: int, params: dict[str, float], cols: Mapping[str, Array],
                fingerprint: str, cache: KernelCache, chunk: _Chunk, n: int,
                run: RunConfig) -> None:
    values, keys, rows = _run_graph(plan, params, cols, fingerprint, cache, chunk, n)
    for s, node in enumerate(plan.slot_nodes):
        if node is None:
            chunk.slots[j, s] = 0
            continue
        row = rows.get(node)
        if row is None:
            row = chunk.row_of.get(keys[node])
        if row is None:  # a kernel / leaf rule, or the first run of a rule expression
            row = chunk.new_row(keys[node])
            arr = np.asarray(values[node])
            signal = np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr
            chunk.signals[row] = signal.astype(bool, copy=False)
        chunk.slots[j, s] = row
    cfg = plan.cfg
    warmup = min(cfg.warmup.evaluate(params), n)
    st = sim_settings(cfg, params, warmup, run.capital, run.fee_bps)
    check_settings(st)
    f = chunk.fpar[j]
    f[_F_CAPITAL] = float(st.capital)
    f[_F_FEES] = float(st.fees)
    f[_F_SLIPPAGE] = float(st.slippage)
    f[_F_VALUE] = float(st.sizing_value)
    f[_F_STOP] = float(st.stop_loss)
    f[_F_TARGET] = float(st.take_profit)
    f[_F_TRAIL] = float(st.trailing_stop)
    f[_F_QTY_STEP] = float(st.qty_step)
    f[_F_MIN_NOTIONAL] = float(st.min_notional)
    f[_F_BARS_PER_YEAR] = float(st.bars_per_year)
    f[_F_LEVERAGE] = float(st.leverage)
    i = chunk.ipar[j]
    i[_I_FILL_CLOSE] = st.fill == "close"
    i[_I_MODE] = SIZING_CODES[st.sizing_mode]
    i[_I_WARMUP] = int(st.warmup)
    i[_I_VOL_LOOKBACK] = int(st.vol_lookback)
    i[_I_MARK_END] = st.end_of_data == "mark"


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _simulate_block(open_: Array, high: Array, low: Array, close: Array, signals: Array,
                    slots: Array, fpar: Array, ipar: Array, bpy: float, threads: int,
                    out: Array) -> None:  # pragma: no cover - compiled
    k = slots.shape[0]
    n = close.shape[0]
    groups = max(1, min(threads, k))
    for g in numba.prange(groups):
        equity = np.empty(n)
        position = np.empty(0)
        trades = np.empty((n, _NCOL))
        state = np.empty(NSTATE)
        scratch = np.empty(max(3 * n, 1))  # stats.scratch_size(n, n): trades <= bars
        for j in range(g, k, groups):  # interleaved: neighbouring combos cost alike
            f = fpar[j]
            p = ipar[j]
            loop(open_, high, low, close, signals[slots[j, 0]], signals[slots[j, 1]],
                 signals[slots[j, 2]], signals[slots[j, 3]], f[_F_CAPITAL],
                 p[_I_FILL_CLOSE] != 0, f[_F_FEES], f[_F_SLIPPAGE], p[_I_MODE], f[_F_VALUE],
                 f[_F_STOP], f[_F_TARGET], f[_F_TRAIL], f[_F_QTY_STEP], f[_F_MIN_NOTIONAL],
                 p[_I_WARMUP], f[_F_BARS_PER_YEAR], p[_I_VOL_LOOKBACK], p[_I_MARK_END] != 0,
                 f[_F_LEVERAGE], equity, position, trades, state)
            count = int(state[STATE_TRADES])
            metrics_core(f[_F_CAPITAL], equity, state[STATE_EXPOSED], trades[:count, _PNL],
                         trades[:count, _RETURN], state[STATE_FEES], state[STATE_AMBIGUOUS],
                         state[STATE_REDUCED], bpy, scratch, out[j])


@dataclass
class BlockTimings:
    """Where an ``evaluate_block`` call spent its time (seconds), for profiling."""

    signals: float = 0.0  # graph runs: kernels (cache misses), numexpr, settings
    kernels: float = 0.0  # of which: kernel calls
    simulate: float = 0.0  # the parallel numba calls (bar loops and metrics), submit to done
    waiting: float = 0.0  # of which the caller waited (not overlapped with graph runs)
    chunks: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def evaluate_block(artifact: m.StrategyArtifact, candles: CandleSet, names: tuple[str, ...],
                   combos: Array, run: RunConfig = _DEFAULT_RUN, cache: KernelCache | None = None,
                   *, max_memory: int = DEFAULT_BLOCK_MEMORY,
                   timings: BlockTimings | None = None) -> dict[str, Array]:
    """Metrics of each combination (rows of ``combos``, columns ``names``; other params at
    their defaults): one float64 array per ``METRIC_KEYS`` entry, NaN where undefined.

    Equal to ``types.reference_block`` on the same inputs. ``cache`` keeps kernel outputs
    across calls (one per sweep or worker process; a private one otherwise);
    ``max_memory`` bounds the working memory (combinations run in chunks of
    ``chunk_size(bars, max_memory)``); ``timings``, when given, is filled in.
    """
    cfg = artifact.config
    names = tuple(names)
    combos = np.asarray(combos, dtype=np.float64)
    if combos.ndim != 2 or combos.shape[1] != len(names):
        raise ValueError(f"combos has shape {combos.shape}, expected (K, {len(names)})")
    _validate(cfg, names, combos)
    if cfg.timeframe_seconds <= 0:
        raise ValueError("timeframe_seconds must be positive")
    total = combos.shape[0]
    out = np.full((total, N_METRICS), np.nan)
    cols = columns_of(candles.frame)
    n = len(cols["close"])
    if cache is None:
        cache = KernelCache(DEFAULT_CACHE_BYTES)
    plan = _plan(cfg)
    defaults = {p.name: p.default for p in cfg.params}
    bpy = bars_per_year(cfg.timeframe_seconds, cfg.calendar)
    # two chunks in flight (one simulating on the numba threads while the next one's signals
    # are built here), so each gets half the memory bound
    step = max(1, chunk_size(n, max_memory) // 2) if total > 1 else 1
    rows_per_combo = sum(node is not None for node in plan.slot_nodes)
    pending: Future[None] | None = None
    pending_t0 = 0.0
    # numexpr single-threaded here: the simulation of the previous chunk uses the cores
    numexpr_threads = ne.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            for lo in range(0, total, step):
                block = combos[lo:lo + step]
                k = block.shape[0]
                t0 = time.perf_counter()
                chunk = _Chunk(np.empty((1 + rows_per_combo * k, n), dtype=np.bool_),
                               np.zeros((k, len(RULE_SLOTS)), dtype=np.int64),
                               np.empty((k, _NF)), np.empty((k, _NI), dtype=np.int64))
                chunk.signals[0] = False
                for j, row in enumerate(block.tolist()):
                    params = dict(defaults)
                    params.update(zip(names, row, strict=True))
                    _fill_combo(plan, j, params, cols, candles.fingerprint, cache, chunk, n,
                                run)
                t1 = time.perf_counter()
                if pending is not None:
                    pending.result()
                    now = time.perf_counter()
                    if timings is not None:
                        timings.simulate += now - pending_t0
                        timings.waiting += now - t1
                pending_t0 = time.perf_counter()
                pending = pool.submit(
                    _simulate_block, cols["open"], cols["high"], cols["low"], cols["close"],
                    chunk.signals, chunk.slots, chunk.fpar, chunk.ipar, bpy, _threads(),
                    out[lo:lo + k])
                if timings is not None:
                    timings.signals += t1 - t0
                    timings.kernels += chunk.kernel_seconds
                    timings.chunks += 1
            if pending is not None:
                t1 = time.perf_counter()
                pending.result()
                now = time.perf_counter()
                if timings is not None:
                    timings.simulate += now - pending_t0
                    timings.waiting += now - t1
    finally:
        ne.set_num_threads(numexpr_threads)
    return {key: np.ascontiguousarray(out[:, i]) for i, key in enumerate(METRIC_KEYS)}
