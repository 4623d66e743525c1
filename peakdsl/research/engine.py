"""The sweep engine: metrics of a block of param combinations, fast and equal to the reference.

``evaluate_block`` returns what ``types.reference_block`` (one ``run_backtest`` per
combination) returns, to the last bit in practice (the contract says 1e-12), because every
number goes through the same code:

* **Kernels once per distinct call.** The strategy's ``engine.program.Program`` (the one
  evaluator, planned once per call) gives each graph node a structural key (op, input keys,
  concrete window / scalar values; the candles' fingerprint at the sources — ``node_key``).
  Kernel outputs (and param-dependent series expressions) live in a :class:`KernelCache`
  keyed by it, so ``sma(close, 20)`` is computed once for every combination with ``fast =
  20`` *or* ``slow = 20``, and reused by later blocks of the sweep when the caller passes the
  cache. The calls are exactly ``evaluate``'s (the same Program), so the arrays are
  identical; lags by a constant window are never computed (read as views of their target).
* **Rules inside the numba loop.** A rule made of comparisons and logic over materialised
  series (crossovers, thresholds, ``and`` / ``or`` / ``not``: a ``program.BoolTree``) is not
  written out per combination: it becomes a few instructions (``engine.rule_code``) that the
  bar loop evaluates, in its own thread, at the bars it needs, from the cached series — each
  distinct one copied once per chunk into a ``(series, bars)`` matrix. Other rules (arithmetic
  inside, a bool kernel) run through numexpr as in ``evaluate`` (the compiler's string, an
  explicit ``local_dict`` of 1-D arrays, ``global_dict={}``: never ``eval``), straight into a
  row of the chunk's bool matrix; equal rules share a row.
* **One parallel numba call per chunk** simulates every combination (``prange`` over
  ``numba.get_num_threads()`` interleaved groups, each with its own scratch buffers: no
  per-combination equity or trade arrays are kept): a combination entering on one side only,
  without stops, runs ``engine.fast_slot.run_fast_slot`` (event to event); any other writes
  its rule rows and runs ``step.run_slot`` — the two loops of ``simulate``, chosen the same
  way — then ``stats.metrics_core``, the core of ``compute_metrics``. Warm-up and every
  execution setting (fees, slippage, sizing, stops: any may be a param; end of data,
  leverage) are resolved per combination with ``backtest.sim_settings`` (once per distinct
  warm-up and setting values), and the metrics are annualised with the strategy's calendar.

Chunks of an eighth of the block are built while the previous one simulates in a helper
thread (the numba call releases the GIL). Their operands are rows of one matrix kept for the
whole call, each distinct series copied in once; when the rows would exceed the memory left
by the per-thread buffers, the chunks reading them finish and the rows start over, so the
working memory stays within ``max_memory`` (plus the cache's own bound). numexpr is set to
one thread for the call (process-global, restored after): with the numba threads busy, its
own pool only adds contention.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numba
import numexpr as ne
import numpy as np

from ..backtest import sim_settings
from ..compile import models as m
from ..data.candles import CandleSet
from ..data.frames import inputs_for
from ..engine.book import reset_account, reset_positions
from ..engine.decide import FLAT, LONG, SHORT
from ..engine.evaluate import EvaluationError
from ..engine.fast_slot import TRADE_RULES, entry_rows, run_fast_slot
from ..engine.position import Code, code_of
from ..engine.program import Evaluation, Program, node_key
from ..engine.results import TRADE_COLUMNS
from ..engine.risk import NO_LIMITS
from ..engine.rule_code import (
    CONST,
    FLAGS,
    SERIES,
    TRUTH_OF_ROW,
    WIDTH,
    Leaf,
    Operand,
    Template,
    Unsupported,
    fill,
    layout,
    template,
    write_rows,
)
from ..engine.settings import SETTING_COLUMNS, SETTINGS_DTYPE, record_values
from ..engine.state import (
    ACCOUNT_SIZE,
    AMBIGUOUS,
    EXPOSED,
    FEES,
    POSITION_SIZE,
    REDUCED,
    TRADES,
)
from ..engine.stats import (
    MARKS,
    METRIC_KEYS,
    N_METRICS,
    bars_per_year,
    metrics_core,
    metrics_marked,
    reset_marks,
    scratch_size,
)
from ..engine.step import run_slot
from ..lang.ast import RULE_SLOTS
from ..lang.levels import LEVEL_SLOTS
from .kernel_cache import DEFAULT_CACHE_BYTES, KernelCache
from .pbo import block_bounds, block_moments
from .types import Array, RunConfig

__all__ = ["DEFAULT_BLOCK_MEMORY", "KernelCache", "block_memory", "chunk_size",
           "evaluate_block", "node_key"]

DEFAULT_BLOCK_MEMORY = 256 * 2**20  # working memory of one evaluate_block call (cache apart)
_TRANSIENT_SERIES = 8  # float64 series alive at once while one combination's graph runs
SERIES_PER_COMBO = 2  # block sizing: fresh series a combination brings (a crossover's two)
PIPELINE = 8  # a block is cut into at least this many chunks, to overlap build and simulate
MIN_CHUNK = 16  # ... of at least this many combinations (a parallel call's fixed cost)
_PNL = TRADE_COLUMNS.index("pnl")
_RETURN = TRADE_COLUMNS.index("return")
_NCOL = len(TRADE_COLUMNS)
_NO_LIMITS = NO_LIMITS.vector()
_CAPITAL = SETTING_COLUMNS["capital"]
_STOPS = np.array([SETTING_COLUMNS[k] for k in ("stop_loss", "take_profit", "trailing_stop")])
_TRADE_RULES = np.array(TRADE_RULES)
_ONE_SLOT_ROWS = np.arange(len(RULE_SLOTS), dtype=np.int64).reshape(1, -1)

Key = Hashable
_DEFAULT_RUN = RunConfig()  # frozen: the same as a fresh RunConfig()


# ---------------------------------------------------------------- memory bound


def _threads() -> int:
    return int(numba.get_num_threads())


def _per_combo(code_rows: int = 16, consts: int = 8) -> int:
    """Bytes a combination holds besides its series: code, constants, settings, metrics."""
    return 8 * (code_rows * WIDTH + consts + 2 * N_METRICS) + SETTINGS_DTYPE.itemsize


def _fixed(n: int) -> int:
    """Bytes of a call whatever its size: transient series of the graph runs, and per numba
    thread an equity curve, a trade table (``n + 1`` rows), the metrics scratch and the rule
    rows of the general loop."""
    per_thread = 8 * (n + (n + 1) * _NCOL + scratch_size(n, n + 1) + ACCOUNT_SIZE
                      + POSITION_SIZE + 1) + len(RULE_SLOTS) * n
    return 8 * n * _TRANSIENT_SERIES + _threads() * per_thread


def block_memory(n_bars: int, k: int, series: int | None = None) -> int:
    """Upper bound of the bytes ``evaluate_block`` allocates for ``k`` combinations on
    ``n_bars`` bars whose rules read ``series`` distinct float64 series (default
    ``SERIES_PER_COMBO`` fresh ones per combination; a bool row counts as a series), the
    kernel cache apart: the fixed part (``_fixed``), the series and per combination its
    code, constants, settings and metrics."""
    n = max(int(n_bars), 1)
    k = max(int(k), 0)
    rows = SERIES_PER_COMBO * k if series is None else max(int(series), 0)
    return _fixed(n) + 8 * n * rows + k * _per_combo()


def chunk_size(n_bars: int, max_memory_bytes: int) -> int:
    """The most combinations with ``block_memory(n_bars, k) <= max_memory_bytes`` (at least
    1: one combination always runs): the sweep's block size. ``evaluate_block`` itself
    keeps to the bound by the series its chunks actually hold."""
    fixed = block_memory(n_bars, 0)
    per_combo = block_memory(n_bars, 1) - fixed
    return max(1, (int(max_memory_bytes) - fixed) // per_combo)


# ---------------------------------------------------------------- graph plan


def _rule_template(program: Program, node: int | None) -> tuple[Template | None, bool]:
    """A slot's code and whether it reads the rule's tree (else, for arithmetic inside or
    a kernel or leaf as the rule, the truth of the rule's own bool row, which the Program
    computes); None when the slot is unused."""
    if node is None:
        return None, False
    tree = next((s.tree for s in program.steps if s.node == node and s.kind == "rule"), None)
    if tree is not None:
        try:
            return template(tree), True
        except Unsupported:
            pass
    return Template(TRUTH_OF_ROW.ops, tuple((r, c, ("var", node))
                                            for r, c, _ in TRUTH_OF_ROW.holes)), False


@dataclass
class _Plan:
    """The sweep's view of a strategy: its ``Program`` (rules only; lets are not simulated),
    each slot's rule code and which loop its combinations can take."""

    cfg: m.StrategyConfig
    program: Program
    templates: list[Template | None]  # per RULE_SLOTS entry
    code: Array  # the static code (``rule_code.layout``)
    spans: Array  # (slots, 2)
    encoded: frozenset[int]  # rule nodes read as code (``Program.run(skip=...)``)
    side: int  # LONG / SHORT: the fast loop can run them (stops permitting), FLAT: never
    fast_spans: Array  # (2, 2): the entry and exit spans of that side
    leaves: int  # operands per combination (the most rows it can add)
    scalars: tuple[m.Scalar | None, ...]  # the settings that may be params
    levels: tuple[tuple[int, int], ...]  # (LEVEL_SLOTS index, node) of each stop/size series
    position: Code  # the bodies of the rules that read the position (``engine.position``)
    position_inputs: tuple[int, ...]  # the graph nodes of their inputs, in input order


def _plan(cfg: m.StrategyConfig) -> _Plan:
    program = Program.plan(cfg, lets=False)
    nodes = [cfg.graph.rules.get(slot) for slot in RULE_SLOTS]
    made = [_rule_template(program, node) for node in nodes]
    templates = [tpl for tpl, _ in made]
    code, spans = layout(templates)
    encoded = frozenset(node for node, (_, tree) in zip(nodes, made, strict=True)
                        if tree and node is not None)
    long_entry, short_entry = nodes[0] is not None, nodes[2] is not None
    side = FLAT if long_entry and short_entry else SHORT if short_entry else LONG
    fast_spans = spans[list(entry_rows(side))] if side != FLAT else spans[:2]
    ex = cfg.execution
    levels = tuple((LEVEL_SLOTS.index(slot), node) for slot, node in program.levels.items())
    bodies = {slot: cfg.graph.nodes[node] for slot, node in zip(RULE_SLOTS, nodes, strict=True)
              if node is not None and cfg.graph.nodes[node].op == "position_rule"}
    inputs = tuple(k for slot in RULE_SLOTS if slot in bodies for k in bodies[slot].inputs)
    return _Plan(cfg, program, templates, code, spans, encoded, FLAT if bodies else side,
                 np.ascontiguousarray(fast_spans),
                 sum(len(t.holes) for t in templates if t is not None) + len(levels)
                 + len(inputs),
                 (ex.fees, ex.slippage, cfg.sizing.value, cfg.stop_loss, cfg.take_profit,
                  cfg.trailing_stop), levels,
                 code_of([{slot: str(b.value) for slot, b in bodies.items()}]), inputs)


# ---------------------------------------------------------------- the chunk


@dataclass
class _Rows:
    """The series and bool rows the rules of one call read, each distinct one copied in
    once (equal structural keys share a row) and kept for every later chunk: a grid's
    chunks read the same few dozen moving averages. The matrices are allocated for the
    whole byte budget, but only the rows written are ever touched (resident); when the
    budget is spent the call waits for the chunk in flight and starts over (``clear``)."""

    series: Array  # (capacity, bars) float64
    flags: Array  # (capacity, bars) bool
    budget: int  # bytes the rows may take
    row_of: dict[Key, tuple[int, int]] = field(default_factory=dict)  # key -> (kind, row)
    used_series: int = 0
    used_flags: int = 0

    @property
    def bytes(self) -> int:
        return int(self.series.shape[1]) * (8 * self.used_series + self.used_flags)

    def room(self, leaves: int) -> bool:
        """Whether ``leaves`` more rows (a combination's operands) surely fit."""
        return self.bytes + 8 * int(self.series.shape[1]) * leaves <= self.budget

    def clear(self) -> None:
        self.row_of.clear()
        self.used_series = self.used_flags = 0

    def row(self, key: Key, value: Array) -> Operand:
        """The operand of a series (float64 → a series row, bool → a bool row)."""
        found = self.row_of.get(key)
        if found is None:
            if value.dtype == np.bool_:
                found = (FLAGS, self.used_flags)
                self.flags[self.used_flags] = value
                self.used_flags += 1
            else:
                found = (SERIES, self.used_series)
                self.series[self.used_series] = value
                self.used_series += 1
            self.row_of[key] = found
        return found[0], found[1], 0

    def claim(self, key: Key) -> tuple[Array, bool]:
        """``program.RuleRows``: the bool row of a rule expression (equal ones share it)."""
        found = self.row_of.get(key)
        if found is not None:
            return self.flags[found[1]], False
        self.row_of[key] = (FLAGS, self.used_flags)
        self.used_flags += 1
        return self.flags[self.used_flags - 1], True


def _new_rows(plan: _Plan, n: int, budget: int) -> _Rows:
    budget = max(budget, 8 * max(n, 1) * plan.leaves)  # at least one combination's rows
    return _Rows(np.empty((max(budget // (8 * max(n, 1)), 1), n)),
                 np.empty((max(budget // max(n, 1), 1), n), dtype=np.bool_), budget)


@dataclass
class _Chunk:
    """One chunk: per combination its code, constants and settings (its operands are rows
    of the call's ``_Rows``)."""

    codes: Array  # (k, code rows, WIDTH) int64
    consts: Array  # (k, leaves) float64
    settings: Array  # (k, fields) float64: one settings record per row (``as_matrix``)
    level_rows: Array  # (k, len(LEVEL_SLOTS)) int64: series rows of the levels, -1 for none
    position_rows: Array  # (k, inputs) int64: series rows of the position rules' inputs
    k: int = 0

    @property
    def full(self) -> bool:
        return bool(self.k >= self.codes.shape[0])


def _new_chunk(plan: _Plan, combos: int) -> _Chunk:
    codes = np.empty((combos, *plan.code.shape), dtype=np.int64)
    codes[:] = plan.code
    return _Chunk(codes, np.zeros((combos, max(plan.leaves, 1))),
                  np.zeros((combos, len(SETTINGS_DTYPE.names or ()))),
                  np.full((combos, len(LEVEL_SLOTS)), -1, dtype=np.int64),
                  np.full((combos, len(plan.position_inputs)), -1, dtype=np.int64))


def _operand(chunk: _Chunk, rows: _Rows, run: Evaluation, j: int, leaf: Leaf,
             slot: list[int]) -> Operand:
    """A tree leaf of combination ``j`` as an operand: a constant (its value into the
    combination's constants), a series or bool row (a lag by a constant window: its
    target's row read ``window`` bars back, unless the lag was materialised)."""
    if leaf[0] == "lag" and leaf[1] not in run.values:
        kind, row, _ = _operand(chunk, rows, run, j, ("var", leaf[2]), slot)
        return kind, row, int(leaf[3])
    value = leaf[1] if leaf[0] == "const" else run.values[leaf[1]]
    if np.ndim(value) == 0:
        index = slot[0]
        slot[0] += 1
        chunk.consts[j, index] = float(value)
        return CONST, index, 0
    array = np.asarray(value)
    if array.dtype not in (np.float64, np.bool_):
        array = array.astype(np.float64)
    return rows.row(run.keys[leaf[1]], array)


class _Settings:
    """``sim_settings`` as a record row, once per distinct warm-up and setting values (a
    grid over windows repeats the same few)."""

    def __init__(self, plan: _Plan, run: RunConfig) -> None:
        self.plan, self.run = plan, run
        self.rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def __call__(self, params: dict[str, float], n: int) -> tuple[Any, ...]:
        cfg = self.plan.cfg
        warmup = min(cfg.warmup.evaluate(params), n)
        key = (warmup, *(None if s is None else s.resolve(params) for s in self.plan.scalars))
        row = self.rows.get(key)
        if row is None:
            row = record_values(sim_settings(cfg, params, warmup, self.run.capital,
                                             self.run.fee_bps))
            self.rows[key] = row
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


def _add_combo(plan: _Plan, chunk: _Chunk, rows: _Rows, params: dict[str, float],
               cols: Mapping[str, Array], fingerprint: str, cache: KernelCache,
               settings: _Settings) -> float:
    """Combination ``chunk.k``: the Program's kernels (cached) and non-tree rules (into bool
    rows), its code's operands and its settings. Returns the seconds spent in kernels."""
    j = chunk.k
    run = plan.program.run(params, cols, fingerprint=fingerprint, cache=cache, rows=rows,
                           skip=plan.encoded)
    consts = [0]
    fill(chunk.codes[j], plan.spans, plan.templates,
         lambda leaf: _operand(chunk, rows, run, j, leaf, consts))
    for index, node in plan.levels:  # stop and size series: rows the general loop reads
        value = np.asarray(run.values[node], dtype=np.float64)
        _, row, _ = rows.row(run.keys[node], np.broadcast_to(value, (run.n,)))
        chunk.level_rows[j, index] = row
    for k, node in enumerate(plan.position_inputs):  # inputs of rules reading the position
        value = np.asarray(run.values[node], dtype=np.float64)
        _, row, _ = rows.row(run.keys[node], np.broadcast_to(value, (run.n,)))
        chunk.position_rows[j, k] = row
    chunk.settings[j] = settings(params, run.n)
    chunk.k += 1
    return run.kernel_seconds


# ---------------------------------------------------------------- the parallel loop


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _simulate_block(opens: Array, highs: Array, lows: Array, closes: Array, codes: Array,
                    spans: Array, side: int, fast_spans: Array, series: Array, flags: Array,
                    consts: Array, settings: Array, level_rows: Array, pcode: Array,
                    pconsts: Array, pspans: Array, position_rows: Array, limits: Array,
                    bpy: float, threads: int,
                    out: Array, bounds: Array,
                    moments: Array) -> None:  # pragma: no cover - compiled
    """Every combination through one bar loop — ``fast_slot.run_fast_slot`` when it enters
    on one side without stops, else its rule rows (``rule_code.write_rows``) through
    ``step.run_slot`` — and ``stats.metrics_core`` (after the specialised loop, which kept
    the bar returns in ``scratch`` and the drawdown in ``marks``: ``stats.metrics_marked``),
    on ``threads`` interleaved groups with their own scratch state; per-block return
    moments (``pbo.block_moments``) into ``moments[j]`` while its equity is at hand (no
    blocks: ``bounds`` of length 1)."""
    k = codes.shape[0]
    n = closes.shape[1]
    groups = max(1, min(threads, k))
    no_times = np.empty(0)
    one_slot = np.arange(4).reshape(1, 4)
    for g in numba.prange(groups):
        equity = np.empty(n)
        position = np.empty((1, 0))
        trades = np.empty((n + 1, _NCOL))
        account = np.empty(ACCOUNT_SIZE)
        positions = np.zeros((1, POSITION_SIZE))
        ring = np.empty(1)
        scratch = np.empty(max(n + 1, 1))  # stats.scratch_size(n, n + 1)
        rows = np.empty((4, n), dtype=np.bool_)
        marks = np.empty(MARKS)
        for j in range(g, k, groups):  # interleaved: neighbouring combos cost alike
            cfg = settings[j:j + 1]
            capital = settings[j, _CAPITAL]
            reset_account(account, capital)
            reset_positions(positions)
            stopless = True
            for c in _STOPS:
                stopless = stopless and math.isnan(settings[j, c])
            for c in range(level_rows.shape[1]):
                stopless = stopless and level_rows[j, c] < 0
            for c in _TRADE_RULES:
                stopless = stopless and settings[j, c] == 0.0
            fast = side != 0 and stopless
            if fast:
                reset_marks(capital, marks)
                run_fast_slot(0, n, n - 1, opens, closes, codes[j], fast_spans, series, flags,
                              consts[j], side, cfg, account, positions, trades, equity,
                              position, scratch[:n], marks)
            else:
                write_rows(codes[j], spans, series, flags, consts[j], rows)
                run_slot(0, n, n - 1, opens, highs, lows, closes, rows, one_slot, series,
                         level_rows[j:j + 1], pcode, pconsts, series,
                         position_rows[j:j + 1], pspans, no_times, cfg, limits, account,
                         positions, trades, ring, equity, position)
            count = int(account[TRADES])
            if fast:
                metrics_marked(capital, equity, marks, scratch[:n], account[EXPOSED],
                               trades[:count, _PNL], trades[:count, _RETURN], account[FEES],
                               account[AMBIGUOUS], account[REDUCED], bpy, scratch, out[j])
            else:
                metrics_core(capital, equity, account[EXPOSED], trades[:count, _PNL],
                             trades[:count, _RETURN], account[FEES], account[AMBIGUOUS],
                             account[REDUCED], bpy, scratch, out[j])
            block_moments(capital, equity, bounds, moments[j])


@dataclass
class BlockTimings:
    """Where an ``evaluate_block`` call spent its time (seconds), for profiling."""

    signals: float = 0.0  # graph runs: kernels (cache misses), operands, numexpr, settings
    kernels: float = 0.0  # of which: kernel calls
    simulate: float = 0.0  # the parallel numba calls (bar loops and metrics), submit to done
    waiting: float = 0.0  # of which the caller waited (not overlapped with graph runs)
    chunks: int = 0
    row_bytes: int = 0  # the most bytes of series and bool rows one chunk held
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class _Block:
    """What every chunk of one ``evaluate_block`` call shares."""

    plan: _Plan
    prices: tuple[Array, Array, Array, Array]
    bpy: float
    out: Array
    bounds: Array
    moments: Array
    timings: BlockTimings | None
    pending: Future[None] | None = None
    started: float = 0.0

    def submit(self, pool: ThreadPoolExecutor, chunk: _Chunk, rows: _Rows, lo: int) -> None:
        """Wait for the chunk in flight, then start ``chunk`` (combinations ``lo`` on)
        simulating on ``rows``."""
        self.wait()
        plan, k = self.plan, chunk.k
        self.started = time.perf_counter()
        self.pending = pool.submit(
            _simulate_block, *self.prices, chunk.codes[:k], plan.spans, plan.side,
            plan.fast_spans, rows.series, rows.flags, chunk.consts[:k], chunk.settings[:k],
            chunk.level_rows[:k], plan.position.code, plan.position.consts,
            plan.position.spans, chunk.position_rows[:k], _NO_LIMITS, self.bpy, _threads(),
            self.out[lo:lo + k], self.bounds, self.moments[lo:lo + k])
        if self.timings is not None:
            self.timings.chunks += 1
            self.timings.row_bytes = max(self.timings.row_bytes, rows.bytes)

    def wait(self) -> None:
        if self.pending is None:
            return
        t0 = time.perf_counter()
        self.pending.result()
        now = time.perf_counter()
        self.pending = None
        if self.timings is not None:
            self.timings.simulate += now - self.started
            self.timings.waiting += now - t0


def _chunk_limit(total: int) -> int:
    """Combinations per chunk: a ``PIPELINE``-th of the block, at least ``MIN_CHUNK``."""
    return max(1, min(total, max(MIN_CHUNK, math.ceil(total / PIPELINE))))


def evaluate_block(artifact: m.StrategyArtifact, candles: CandleSet, names: tuple[str, ...],
                   combos: Array, run: RunConfig = _DEFAULT_RUN, cache: KernelCache | None = None,
                   *, max_memory: int = DEFAULT_BLOCK_MEMORY,
                   timings: BlockTimings | None = None,
                   moments: Array | None = None) -> dict[str, Array]:
    """Metrics of each combination (rows of ``combos``, columns ``names``; other params at
    their defaults): one float64 array per ``METRIC_KEYS`` entry, NaN where undefined.

    Equal to ``types.reference_block`` on the same inputs. ``cache`` keeps kernel outputs
    across calls (one per sweep or worker process; a private one otherwise);
    ``max_memory`` bounds the working memory (see the module docstring); ``timings``, when
    given, is filled in. ``moments``, when given (float64, shape ``(K, S, 3)``), receives
    each combination's per-block ``(count, sum, sum of squares)`` of bar returns over ``S``
    contiguous blocks (``pbo.block_bounds``): what the probability of backtest overfitting
    needs.
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
    cols = inputs_for(cfg, candles)
    n = len(cols["close"])
    if moments is None:
        moments = np.empty((total, 0, 3))
    if moments.ndim != 3 or moments.shape[0] != total or moments.shape[2] != 3:
        raise ValueError(f"moments has shape {moments.shape}, expected ({total}, S, 3)")
    plan = _plan(cfg)
    o, h, lo, c = (cols[name].reshape(1, n) for name in ("open", "high", "low", "close"))
    block = _Block(plan, (o, h, lo, c), bars_per_year(cfg.timeframe_seconds, cfg.calendar), out,
                   block_bounds(n, moments.shape[1]), moments, timings)
    _run_chunks(block, candles.fingerprint, cols, names, combos,
                KernelCache(DEFAULT_CACHE_BYTES) if cache is None else cache,
                _Settings(plan, run), int(max_memory) - _fixed(max(n, 1)))
    return {key: np.ascontiguousarray(out[:, i]) for i, key in enumerate(METRIC_KEYS)}


def _run_chunks(block: _Block, fingerprint: str, cols: Mapping[str, Array],
                names: tuple[str, ...], combos: Array, cache: KernelCache,
                settings: _Settings, budget: int) -> None:
    """Build chunk after chunk (two in flight: one simulating while the next is built) on
    one set of rows; when they are full, let the chunks reading them finish and refill."""
    plan, total, n = block.plan, combos.shape[0], len(cols["close"])
    limit = _chunk_limit(total)
    defaults = {p.name: p.default for p in plan.cfg.params}
    rows = _new_rows(plan, n, budget)
    numexpr_threads = ne.set_num_threads(1)  # the simulation of the last chunk has the cores
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            lo = 0
            while lo < total:
                t0 = time.perf_counter()
                chunk = _new_chunk(plan, min(limit, total - lo))
                kernels = 0.0
                while lo + chunk.k < total and not chunk.full:
                    if not rows.room(plan.leaves):
                        if chunk.k:  # simulate what is built, then start the rows over
                            break
                        block.wait()
                        rows.clear()
                    params = {**defaults, **dict(zip(names, combos[lo + chunk.k].tolist(),
                                                     strict=True))}
                    kernels += _add_combo(plan, chunk, rows, params, cols, fingerprint, cache,
                                          settings)
                if block.timings is not None:
                    block.timings.signals += time.perf_counter() - t0
                    block.timings.kernels += kernels
                block.submit(pool, chunk, rows, lo)
                lo += chunk.k
            block.wait()
    finally:
        ne.set_num_threads(numexpr_threads)
