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
  identical.
* **Signals per combination, only the param-dependent part.** Only nodes the rules need are
  evaluated. Rule expressions run through numexpr with the compiler's string, an explicit
  ``local_dict`` of 1-D cached arrays and ``global_dict={}`` (never ``eval``), writing
  straight into a row of one preallocated ``(rows, bars)`` bool buffer (``out=``). Equal rule
  keys share a row (e.g. a sweep over a stop-loss param evaluates the signals once).
* **One parallel numba call per chunk** simulates every combination (``prange`` over
  ``numba.get_num_threads()`` interleaved groups, each with its own scratch buffers: no
  per-combination equity or trade arrays are kept) with ``step.run_slot`` — the bar loop of
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

import numba
import numexpr as ne
import numpy as np

from ..backtest import sim_settings
from ..compile import models as m
from ..data.candles import CandleSet
from ..engine.book import reset_account, reset_positions
from ..engine.evaluate import EvaluationError, columns_of
from ..engine.program import Program, node_key
from ..engine.results import TRADE_COLUMNS
from ..engine.risk import NO_LIMITS
from ..engine.settings import SETTING_COLUMNS, SETTINGS_DTYPE, record_values
from ..engine.simulate import RULE_SLOTS
from ..engine.state import (
    ACCOUNT_SIZE,
    AMBIGUOUS,
    EXPOSED,
    FEES,
    POSITION_SIZE,
    REDUCED,
    TRADES,
)
from ..engine.stats import METRIC_KEYS, N_METRICS, bars_per_year, metrics_core, scratch_size
from ..engine.step import run_slot
from .kernel_cache import DEFAULT_CACHE_BYTES, KernelCache
from .pbo import block_bounds, block_moments
from .types import Array, RunConfig

__all__ = ["DEFAULT_BLOCK_MEMORY", "KernelCache", "block_memory", "chunk_size",
           "evaluate_block", "node_key"]

DEFAULT_BLOCK_MEMORY = 256 * 2**20  # working memory of one evaluate_block call (cache apart)
_TRANSIENT_SERIES = 8  # float64 series alive at once while one combination's graph runs
_PNL = TRADE_COLUMNS.index("pnl")
_RETURN = TRADE_COLUMNS.index("return")
_NCOL = len(TRADE_COLUMNS)
_NO_LIMITS = NO_LIMITS.vector()
_CAPITAL = SETTING_COLUMNS["capital"]

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
    per_combo = (len(RULE_SLOTS) * n + SETTINGS_DTYPE.itemsize
                 + 8 * (len(RULE_SLOTS) + 2 * N_METRICS))
    per_thread = 8 * (n + (n + 1) * _NCOL + scratch_size(n, n + 1) + ACCOUNT_SIZE
                      + POSITION_SIZE + 1)
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
    """The sweep's view of a strategy: its ``Program`` (rules only; lets are not simulated)
    and which rule node feeds each simulator slot."""

    cfg: m.StrategyConfig
    program: Program
    slot_nodes: list[int | None]  # per RULE_SLOTS entry: its node, None when unused


def _plan(cfg: m.StrategyConfig) -> _Plan:
    return _Plan(cfg, Program.plan(cfg, lets=False),
                 [cfg.graph.rules.get(slot) for slot in RULE_SLOTS])


# ---------------------------------------------------------------- the block


@dataclass
class _Chunk:
    """Buffers of one chunk: signal rows, their owners' keys, slots and settings."""

    signals: Array  # (rows, bars) bool; row 0 all False
    slots: Array  # (k, 4) int64 row per rule slot
    settings: Array  # (k, fields) float64: one settings record per row (``as_matrix``)
    row_of: dict[Key, int] = field(default_factory=dict)
    used: int = 1
    kernel_seconds: float = 0.0

    def new_row(self, key: Key) -> int:
        row = self.used
        self.used += 1
        self.row_of[key] = row
        return row

    def claim(self, key: Key) -> tuple[Array, bool]:
        """``program.RuleRows``: the row of the rule expression ``key`` (equal rules of
        different combinations share one) and whether it is new, to be written."""
        row = self.row_of.get(key)
        if row is not None:
            return self.signals[row], False
        return self.signals[self.new_row(key)], True


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


def _fill_combo(plan: _Plan, j: int, params: dict[str, float], cols: Mapping[str, Array],
                fingerprint: str, cache: KernelCache, chunk: _Chunk, n: int,
                run: RunConfig) -> None:
    """Signal rows, slots and settings of combination ``j``: the Program writes each new
    rule expression into its own row, equal ones share it."""
    result = plan.program.run(params, cols, fingerprint=fingerprint, cache=cache, rows=chunk)
    chunk.kernel_seconds += result.kernel_seconds
    for s, node in enumerate(plan.slot_nodes):
        if node is None:
            chunk.slots[j, s] = 0
            continue
        key = result.keys[node]
        row = chunk.row_of.get(key)
        if row is None:  # a kernel / leaf rule, or the first run of a rule expression
            row = chunk.new_row(key)
            arr = np.asarray(result.values[node])
            signal = np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr
            chunk.signals[row] = signal.astype(bool, copy=False)
        chunk.slots[j, s] = row
    cfg = plan.cfg
    warmup = min(cfg.warmup.evaluate(params), n)
    chunk.settings[j] = record_values(sim_settings(cfg, params, warmup, run.capital,
                                                   run.fee_bps))


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _simulate_block(opens: Array, highs: Array, lows: Array, closes: Array, signals: Array,
                    slots: Array, settings: Array, limits: Array, bpy: float, threads: int,
                    out: Array, bounds: Array,
                    moments: Array) -> None:  # pragma: no cover - compiled
    """Every combination through ``step.run_slot`` (one slot, its rule rows and settings
    record) and ``stats.metrics_core``, on ``threads`` interleaved groups with their own
    scratch state; per-block return moments (``pbo.block_moments``) into ``moments[j]``
    while its equity is at hand (no blocks: ``bounds`` of length 1)."""
    k = slots.shape[0]
    n = closes.shape[1]
    groups = max(1, min(threads, k))
    no_times = np.empty(0)
    for g in numba.prange(groups):
        equity = np.empty(n)
        position = np.empty((1, 0))
        trades = np.empty((n + 1, _NCOL))
        account = np.empty(ACCOUNT_SIZE)
        positions = np.zeros((1, POSITION_SIZE))
        ring = np.empty(1)
        scratch = np.empty(max(3 * (n + 1), 1))  # stats.scratch_size(n, n + 1)
        for j in range(g, k, groups):  # interleaved: neighbouring combos cost alike
            cfg = settings[j:j + 1]
            capital = settings[j, _CAPITAL]
            reset_account(account, capital)
            reset_positions(positions)
            run_slot(0, n, n - 1, opens, highs, lows, closes, signals, slots[j:j + 1],
                     no_times, cfg, limits, account, positions, trades, ring, equity,
                     position)
            count = int(account[TRADES])
            metrics_core(capital, equity, account[EXPOSED], trades[:count, _PNL],
                         trades[:count, _RETURN], account[FEES], account[AMBIGUOUS],
                         account[REDUCED], bpy, scratch, out[j])
            block_moments(capital, equity, bounds, moments[j])


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
                   timings: BlockTimings | None = None,
                   moments: Array | None = None) -> dict[str, Array]:
    """Metrics of each combination (rows of ``combos``, columns ``names``; other params at
    their defaults): one float64 array per ``METRIC_KEYS`` entry, NaN where undefined.

    Equal to ``types.reference_block`` on the same inputs. ``cache`` keeps kernel outputs
    across calls (one per sweep or worker process; a private one otherwise);
    ``max_memory`` bounds the working memory (combinations run in chunks of
    ``chunk_size(bars, max_memory)``); ``timings``, when given, is filled in. ``moments``,
    when given (float64, shape ``(K, S, 3)``), receives each combination's per-block
    ``(count, sum, sum of squares)`` of bar returns over ``S`` contiguous blocks
    (``pbo.block_bounds``): what the probability of backtest overfitting needs.
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
    if moments is None:
        moments = np.empty((total, 0, 3))
    if moments.ndim != 3 or moments.shape[0] != total or moments.shape[2] != 3:
        raise ValueError(f"moments has shape {moments.shape}, expected ({total}, S, 3)")
    bounds = block_bounds(n, moments.shape[1])
    if cache is None:
        cache = KernelCache(DEFAULT_CACHE_BYTES)
    plan = _plan(cfg)
    p_open, p_high, p_low, p_close = (cols[name].reshape(1, n)
                                      for name in ("open", "high", "low", "close"))
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
                               np.zeros((k, len(SETTINGS_DTYPE.names or ()))))
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
                    _simulate_block, p_open, p_high, p_low, p_close, chunk.signals,
                    chunk.slots, chunk.settings, _NO_LIMITS, bpy, _threads(), out[lo:lo + k],
                    bounds, moments[lo:lo + k])
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
