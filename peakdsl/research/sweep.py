"""Parameter sweeps: a space of combinations → blocks → local or Dask execution → results.

``plan_sweep`` does everything that can fail on bad input (compile the spec, load the data,
build the space, open the resume store) and says how much work is left; ``execute_sweep``
runs the missing blocks, in this process or on a ``dask.distributed`` cluster, saves each
finished block (resume store first, then the registry), ranks the rows by the objective,
judges the best (deflated Sharpe ratio, probability of backtest overfitting) and writes
``results.parquet``. ``run_sweep`` is the two in one.

Every execution mode runs the same blocks through the same function (``evaluate_block``) and
puts the results back by row number, so the results do not depend on where they ran nor on
whether the sweep was interrupted and resumed. Where tasks run (``Placement``), how they run
(``Tasks``, ``run_tasks``, ``dask_client``), Ctrl-C (``StopFlag``) and the worker-side artifact
(``worker_artifact``) are not sweep-specific: walk-forward runs its windows through them.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..engine.stats import INT_METRICS, METRIC_KEYS, bars_per_year, calendar_warning
from ..lang.diagnostics import Diagnostic, diag, has_errors
from ..metrics import HEADLINE, OBJECTIVES, Direction, objective_choices, objective_direction
from .kernel_cache import DEFAULT_CACHE_BYTES
from .pbo import PBOResult, block_count, probability_of_overfitting
from .store import Loaded, SweepStore, missing_blocks, sweep_key
from .types import Array, ParamSpace, RunConfig, reference_block

MAX_BLOCK = 64  # combinations per block at most, so progress moves and Ctrl-C is quick
DEFAULT_MAX_MEMORY = 2 << 30
TABLE_METRICS = HEADLINE[:4]  # the metric columns `peak sweep` prints
MOMENTS = "cscv_moments"  # a block's (rows, S, 3) return moments, beside its metrics

Progress = Callable[[int, int], None]  # (rows done, rows in the space)

if TYPE_CHECKING:
    from pandas import DataFrame


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the sweep; every finished block is saved (and recorded)."""

    def __init__(self, done: int, total: int, store: Path, sweep_id: str | None) -> None:
        super().__init__(f"sweep interrupted: {done} of {total} combinations kept")
        self.done = done
        self.total = total
        self.store = store
        self.sweep_id = sweep_id


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class SweepPlan:
    """A sweep ready to run: inputs resolved, space built, what is already on disk loaded."""

    spec: str  # the strategy's name
    spec_path: str
    root: Path
    artifact: Any  # StrategyArtifact
    artifact_json: str
    artifact_sha256: str
    candles: Any  # CandleSet
    space: ParamSpace
    space_id: str
    run: RunConfig
    objective: str
    key: str
    store: SweepStore
    block_size: int
    loaded: Loaded
    todo: tuple[tuple[int, int], ...]
    workers: int | None
    scheduler: str | None
    max_memory: int
    record: bool
    diagnostics: tuple[Diagnostic, ...] = ()  # warnings from building the space
    cache_bytes: int = DEFAULT_CACHE_BYTES  # the kernel cache's bound: every distinct series
    pbo_blocks: int = 0  # S of the CSCV blocks (``pbo.block_count`` of the bars; 0: none)
    recipe: Any = None  # peakdsl.repro.Recipe: the `peak sweep` line that reproduces it

    @property
    def total(self) -> int:
        return len(self.space)

    @property
    def resumed(self) -> int:
        return self.loaded.rows_done

    @property
    def to_compute(self) -> int:
        return sum(end - start for start, end in self.todo)

    @property
    def bars(self) -> int:
        return int(self.candles.bars)

    @property
    def placement(self) -> Placement:
        return Placement(self.workers, self.scheduler)

    @property
    def execution(self) -> str:
        return self.placement.describe()


def _usage(message: str, where: str, help: str = "") -> Exception:
    from ..lang.project import UsageError

    return UsageError(diag("U005", message, where, help=help))


def plan_sweep(spec_path: str, *, root: Path | None = None, data: Path | DataFrame | None = None,
               start: str | None = None, end: str | None = None, sets: Sequence[str] = (),
               mode: str = "grid", n: int | None = None, seed: int | None = None,
               objective: str = "sharpe", run: RunConfig | None = None,
               workers: int | None = None, scheduler: str | None = None,
               max_memory: int = DEFAULT_MAX_MEMORY, record: bool = True,
               store_root: Path | None = None) -> SweepPlan:
    """Resolve a sweep's inputs. Raises ``SpecError`` (spec, ``--set`` or data problems,
    exit 1) or ``UsageError`` (a portfolio, bad options, exit 2). ``store_root``: where the
    resume store lives instead of the project (an empty folder computes every row again:
    ``peak runs rerun``)."""
    from ..api import SpecError
    from ..repro import recipe, search_options
    from ..resolve import resolve
    from .kernel_cache import distinct_entries, sized_cache_bytes
    from .space import build_space, space_id

    run = run or RunConfig()
    if objective not in OBJECTIVES:
        raise _usage(f"--objective {objective}: not an objective", "--objective",
                     help="one of " + objective_choices())
    if mode not in ("grid", "random"):
        raise _usage(f"sweep mode {mode!r}: use grid or random", "--random")
    placement(workers, scheduler)
    if max_memory < 1:
        raise _usage("--max-memory must be positive", "--max-memory")

    resolved = resolve("sweep", spec_path, root=root, data=data, start=start, end=end,
                       capital=run.capital, fee_bps=run.fee_bps)
    project_root, artifact, candles = resolved.root, resolved.artifact, resolved.candles
    cfg = artifact.config
    space, problems = build_space(cfg, tuple(sets), mode="random" if mode == "random" else "grid",
                                  n=n, seed=seed)
    if space is None or has_errors(problems):
        raise SpecError(tuple(problems))
    artifact_sha = resolved.artifact_sha256
    sid = space_id(space)
    key = sweep_key(artifact_sha, candles.fingerprint, sid, run, __version__)
    store = SweepStore(store_root or project_root, key)
    blocks = block_count(candles.bars)
    loaded = store.load(space.names, space.combos, moments=blocks)
    size = max(1, min(block_size(candles.bars, max_memory), len(space)))
    todo = tuple(missing_blocks(loaded.done, size))
    return SweepPlan(
        spec=cfg.name, spec_path=spec_path, root=project_root, artifact=artifact,
        artifact_json=resolved.artifact_json, artifact_sha256=artifact_sha,
        candles=candles, space=space, space_id=sid, run=run, objective=objective, key=key,
        store=store, block_size=size, loaded=loaded, todo=todo, workers=workers,
        scheduler=scheduler, max_memory=max_memory, record=record,
        diagnostics=tuple(problems),
        cache_bytes=sized_cache_bytes(distinct_entries(cfg, space.names, space.combos),
                                      candles.bars),
        pbo_blocks=blocks, recipe=recipe(resolved, command="sweep", sets=sets,
                                         options=search_options(objective, mode, n, seed)))


def block_size(n_bars: int, max_memory: int) -> int:
    """Combinations per block: what the memory bound allows, at most ``MAX_BLOCK``."""
    try:
        from .engine import chunk_size
    except ImportError:  # without the fast engine: a rough bound of 32 float64 series each
        return max(1, min(MAX_BLOCK, max_memory // (max(n_bars, 1) * 8 * 32)))
    return max(1, min(MAX_BLOCK, int(chunk_size(n_bars, max_memory))))


# --------------------------------------------------------------------------- evaluation


def evaluate(artifact: Any, candles: Any, names: tuple[str, ...], combos: Array,
             run: RunConfig, cache: Any = None, max_memory: int = DEFAULT_MAX_MEMORY,
             blocks: int = 0) -> dict[str, Array]:
    """The metrics of one block (the fast engine, or the reference when it is missing)
    and, with ``blocks`` > 0, under ``MOMENTS`` its per-block return moments (the fast
    engine only: without it they stay NaN and the PBO is undefined)."""
    moments = np.full((len(combos), blocks, 3), np.nan)
    try:
        from .engine import evaluate_block
    except ImportError:
        out = reference_block(artifact, candles, names, combos, run)
    else:
        out = evaluate_block(artifact, candles, names, combos, run=run, cache=cache,
                             max_memory=max_memory, moments=moments)
    return {**out, MOMENTS: moments} if blocks else out


def new_kernel_cache(max_bytes: int | None = None) -> Any:
    try:
        from .engine import KernelCache
    except ImportError:
        return None
    return KernelCache() if max_bytes is None else KernelCache(max_bytes)


_WORKER_STATE: dict[str, Any] = {}  # on a Dask worker: the last artifact, data and cache


def worker_artifact(artifact_json: str) -> Any:
    """The ``StrategyArtifact`` of ``artifact_json``, parsed once per worker process: the
    tasks of one run (a sweep's blocks, a walk-forward's windows) all carry the same text.
    A different artifact replaces it, and drops the kernel cache kept with it."""
    from ..compile.artifacts import sha256
    from ..compile.models import StrategyArtifact

    digest = sha256(artifact_json.encode("utf-8"))
    if _WORKER_STATE.get("artifact_sha256") != digest:
        _WORKER_STATE.clear()
        _WORKER_STATE.update(artifact_sha256=digest,
                             artifact=StrategyArtifact.model_validate_json(artifact_json))
    return _WORKER_STATE["artifact"]


def worker_block(artifact_json: str, candles: Any, names: tuple[str, ...], combos: Array,
                 run: RunConfig, start: int, end: int, max_memory: int = DEFAULT_MAX_MEMORY,
                 cache_bytes: int | None = None,
                 blocks: int = 0) -> tuple[int, int, dict[str, Array], float]:
    """One block on a Dask worker. The parsed artifact and a kernel cache are kept per
    (artifact, data), so the blocks of one sweep share indicator results on each worker."""
    artifact = worker_artifact(artifact_json)
    if _WORKER_STATE.get("data") != candles.fingerprint or "cache" not in _WORKER_STATE:
        _WORKER_STATE.update(data=candles.fingerprint, cache=new_kernel_cache(cache_bytes))
    clock = time.perf_counter()
    metrics = evaluate(artifact, candles, names, combos, run, _WORKER_STATE["cache"],
                       max_memory, blocks)
    return start, end, metrics, time.perf_counter() - clock


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: every row's metrics, the ranking and what to make of the best."""

    sweep_id: str | None  # the registry's sweep id (None when not recorded)
    key: str  # the resume store's key: .peak/sweeps/<key>/
    spec: str
    spec_path: str
    market: str
    timeframe: str
    space: ParamSpace
    metrics: dict[str, Array]
    objective: str
    ranking: Array  # row indices, best first (NaN objective last; ties by row order)
    best_row: int | None
    best_params: dict[str, float]
    best_set: str  # "--set fast=10 --set slow=30"
    deflated_sharpe: float | None
    trials_total: int
    warnings: tuple[str, ...]
    parquet: Path
    computed: int  # rows computed by this call
    resumed: int  # rows loaded from the resume store
    timing: dict[str, float]
    data_source: str
    data_fingerprint: str
    data_synthetic: bool
    data_bars: int
    data_start: str
    data_end: str
    artifact_sha256: str
    engine_version: str = __version__
    block_size: int = MAX_BLOCK
    execution: str = "in-process"
    diagnostics: tuple[Diagnostic, ...] = field(default=())
    units: Mapping[str, str] = field(default_factory=dict)  # param → "%", "bps" or ""
    pbo: PBOResult | None = None  # probability of backtest overfitting (None: undefined)
    command: str = ""  # the `peak sweep` line that reproduces it (peakdsl.repro)
    best_command: str = ""  # the `peak backtest` line of the best combination

    @property
    def pbo_value(self) -> float | None:
        return None if self.pbo is None else self.pbo.pbo

    def show(self, name: str, value: float) -> str:
        """A param value for people: ``20``, ``3%``, ``10bps``, ``0.25``."""
        unit = self.units.get(name, "")
        scale = {"%": 100.0, "bps": 10_000.0}.get(unit, 1.0)
        return f"{value * scale:g}{unit}"

    def rank_of(self) -> Array:
        """1-based rank of every row (in row order)."""
        rank = np.empty(len(self.ranking), dtype=np.int64)
        rank[self.ranking] = np.arange(1, len(self.ranking) + 1)
        return rank

    def row(self, index: int) -> dict[str, Any]:
        """One row: its rank, params, objective and every metric."""
        rank = int(np.flatnonzero(self.ranking == index)[0]) + 1
        return {"rank": rank, "row": int(index), "params": self.space.params(index),
                "objective": _number(self.metrics[self.objective][index]),
                "metrics": {k: _number(self.metrics[k][index], k in INT_METRICS)
                            for k in METRIC_KEYS}}

    def top(self, k: int) -> list[dict[str, Any]]:
        return [self.row(int(i)) for i in self.ranking[:max(0, k)]]

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """The `peak sweep --json` document (JSON-safe: NaN → null, ±inf → "inf"/"-inf")."""
        space = self.space
        return {
            "sweep_id": self.sweep_id, "key": self.key, "spec": self.spec,
            "spec_path": self.spec_path, "market": self.market, "timeframe": self.timeframe,
            "space": {"mode": space.mode, "seed": space.seed, "names": list(space.names),
                      "combinations": len(space), "candidates": int(space.candidates),
                      "axes": {name: [_number(v) for v in np.asarray(values).tolist()]
                               for name, values in space.axes.items()}},
            "objective": self.objective, "top": self.top(top),
            "best": None if self.best_row is None else self.row(self.best_row),
            "best_set": self.best_set, "deflated_sharpe": _number(self.deflated_sharpe),
            "pbo": _number(self.pbo_value), "cscv": _cscv_doc(self.pbo),
            "trials": self.trials_total, "warnings": list(self.warnings),
            "parquet": str(self.parquet), "computed": self.computed, "resumed": self.resumed,
            "timing": {k: _number(v) for k, v in self.timing.items()},
            "data": {"source": self.data_source, "synthetic": self.data_synthetic,
                     "fingerprint": self.data_fingerprint, "bars": self.data_bars,
                     "start": self.data_start, "end": self.data_end},
            "artifact_sha256": self.artifact_sha256, "engine_version": self.engine_version,
            "block_size": self.block_size, "execution": self.execution,
            "command": self.command, "best_command": self.best_command,
        }


def _cscv_doc(result: PBOResult | None) -> dict[str, Any] | None:
    """How the PBO was computed, JSON-safe (None when it is undefined)."""
    if result is None:
        return None
    return {k: _json_safe(v) for k, v in result.to_dict().items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return _number(value) if isinstance(value, float) else value


def _number(value: Any, as_int: bool = False) -> Any:
    """JSON-safe: NaN → None, ±inf → "inf"/"-inf", counts as ints."""
    if value is None:
        return None
    v = float(value)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return int(v) if as_int and v.is_integer() else v


def ranking(objective: Array, direction: Direction = Direction.HIGHER) -> Array:
    """Row indices best first: the better objective first (higher, or lower for a metric
    where lower is better), NaN last, ties by row order."""
    if direction is Direction.NEITHER:
        raise ValueError("a metric with no better direction cannot rank")
    obj = np.asarray(objective, dtype=np.float64)
    nan = np.isnan(obj)
    key = -obj if direction is Direction.HIGHER else obj
    order: Array = np.lexsort((np.arange(len(obj)), np.where(nan, 0.0, key), nan))
    return order


def format_value(param: Any, value: float) -> str:
    """``value`` as ``--set`` takes it for this param (``3%``, ``10bps``, ``20``), exactly:
    the text parses back to the same float (units divide, as the parser does)."""
    from ..lang.parser import unit_value
    from ..overrides import SCALE

    unit = {"percent": "%", "bps": "bps"}.get(param.type)
    exponent = SCALE[unit]
    if param.type == "int" and float(value).is_integer():
        return f"{int(value)}"
    shown = value * 10.0 ** -exponent
    for digits in range(0, 17):  # the shortest decimal that parses back exactly
        text = np.format_float_positional(round(shown, digits), trim="-")
        if unit_value(text, exponent) == value:
            return text + (unit or "")
    return np.format_float_positional(shown, trim="-", unique=True) + (unit or "")


def set_line(cfg: Any, params: Mapping[str, float]) -> str:
    """``--set fast=10 --set slow=30``: ready to paste after ``peak backtest SPEC``."""
    by_name = {p.name: p for p in cfg.params}
    return " ".join(f"--set {name}={format_value(by_name[name], value)}"
                    for name, value in params.items() if name in by_name)


# --------------------------------------------------------------------------- execution


@dataclass(frozen=True)
class Placement:
    """Where independent tasks run: in this process (neither set), on a new loopback
    ``LocalCluster`` of ``workers`` processes, or on the Dask cluster at ``scheduler``.
    Sweeps run their blocks this way and walk-forward its windows (``run_tasks``)."""

    workers: int | None = None
    scheduler: str | None = None

    @property
    def distributed(self) -> bool:
        return self.workers is not None or self.scheduler is not None

    def describe(self) -> str:
        """``in-process``, ``local dask cluster, 2 worker process(es)`` or ``dask scheduler …``."""
        if self.scheduler:
            return f"dask scheduler {self.scheduler}"
        if self.workers:
            return f"local dask cluster, {self.workers} worker process(es)"
        return "in-process"


def placement(workers: int | None, scheduler: str | None) -> Placement:
    """``--workers`` / ``--scheduler`` checked (U005: both given, fewer than one worker, an
    address without a scheme), so a bad option fails before anything is compiled or started."""
    if workers is not None and scheduler is not None:
        raise _usage("give --workers (a local cluster) or --scheduler (an existing one), "
                     "not both", "--workers")
    if workers is not None and workers < 1:
        raise _usage(f"--workers {workers}: need at least 1", "--workers")
    if scheduler is not None and "://" not in scheduler:
        raise _usage(f"--scheduler {scheduler}: not a scheduler address", "--scheduler",
                     help="e.g. --scheduler tcp://10.0.0.5:8786")
    return Placement(workers, scheduler)


class StopFlag:
    """The first Ctrl-C asks the run to stop after the running task; a second one
    interrupts at once (what was already handed back stays)."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class Tasks:
    """Independent tasks and the two ways to run one: ``local(*item)`` in this process, or
    ``remote(*shared, *item)`` on a Dask worker. ``remote`` is a module-level function (the
    workers import it); ``shared`` holds the large inputs every task reads (artifact text,
    candles), sent to each worker once."""

    items: Sequence[tuple[Any, ...]]
    local: Callable[..., Any]
    remote: Callable[..., Any]
    shared: tuple[Any, ...] = ()


def run_tasks(tasks: Tasks, where: Placement, stop: StopFlag,
              on_done: Callable[[Any], None]) -> None:
    """Run every task where ``where`` says and hand each result to ``on_done`` in this
    process as it arrives (in this process: in order; on Dask: as tasks finish). Stops
    early, without calling ``on_done`` again, once ``stop.requested``."""
    if where.distributed:
        _run_dask(tasks, where, stop, on_done)
        return
    for item in tasks.items:
        if stop.requested:
            return
        on_done(tasks.local(*item))


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A ``distributed.Client``: on a new loopback ``LocalCluster`` of ``workers`` processes,
    or connected to the scheduler at ``scheduler``."""
    import importlib
    import logging

    dist: Any = importlib.import_module("distributed")  # untyped: used through Any
    if scheduler is not None:
        try:
            client = dist.Client(scheduler)  # timeout: distributed.comm.timeouts.connect
        except (OSError, TimeoutError) as exc:
            raise _usage(f"--scheduler {scheduler}: cannot connect ({exc})", "--scheduler",
                         help="start one with `dask scheduler` and workers with "
                         "`dask worker tcp://HOST:8786` (peak installed on each)") from None
        try:
            yield client
        finally:
            client.close()
        return
    # No dashboard; the scheduler's small HTTP server (health, metrics) takes a free loopback
    # port instead of 8787, so a second cluster on the machine does not print a port warning.
    # Logs below CRITICAL stay quiet: a worker whose heartbeat races the cluster's shutdown
    # logs a traceback at ERROR; a task's own failure reaches us through its future anyway.
    with dist.LocalCluster(n_workers=workers or 1, threads_per_worker=1, host="127.0.0.1",
                           dashboard_address=None, processes=True,
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                           silence_logs=logging.CRITICAL) as cluster, \
            dist.Client(cluster) as client:
        yield client


def _run_dask(tasks: Tasks, where: Placement, stop: StopFlag,
              on_done: Callable[[Any], None]) -> None:
    import importlib

    wait: Any = importlib.import_module("distributed").wait
    with dask_client(where.workers, where.scheduler) as client:
        shared = client.scatter(list(tasks.shared), broadcast=True) if tasks.shared else []
        pending = {client.submit(tasks.remote, *shared, *item, pure=False)
                   for item in tasks.items}
        try:
            while pending and not stop.requested:
                try:
                    done, _ = wait(list(pending), timeout=0.25, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    continue
                for future in sorted(done, key=lambda f: str(f.key)):
                    pending.discard(future)
                    on_done(future.result())
        finally:
            if pending:
                client.cancel(list(pending))


BlockDone = Callable[[int, int, dict[str, Array], float], None]


def _block_tasks(plan: SweepPlan) -> Tasks:
    """The sweep's missing blocks as tasks: ``(start, end, metrics, seconds)`` each; in this
    process the blocks share one kernel cache, on Dask each worker keeps its own."""
    cache = new_kernel_cache(plan.cache_bytes) if not plan.placement.distributed else None

    def local(names: tuple[str, ...], combos: Array, run: RunConfig, start: int, end: int,
              max_memory: int, cache_bytes: int,
              blocks: int) -> tuple[int, int, dict[str, Array], float]:
        clock = time.perf_counter()
        metrics = evaluate(plan.artifact, plan.candles, names, combos, run, cache, max_memory,
                           blocks)
        return start, end, metrics, time.perf_counter() - clock

    names, combos = plan.space.names, plan.space.combos
    items = [(names, combos[start:end], plan.run, start, end, plan.max_memory,
              plan.cache_bytes, plan.pbo_blocks) for start, end in plan.todo]
    return Tasks(items, local, worker_block, (plan.artifact_json, plan.candles))


def execute_sweep(plan: SweepPlan, progress: Progress | None = None) -> SweepResult:
    """Run what is missing, save each block, rank, write ``results.parquet``.

    Raises ``SweepInterrupted`` after a Ctrl-C (finished blocks kept; run again to resume).
    """
    space = plan.space
    total = len(space)
    metrics = {k: v.copy() for k, v in plan.loaded.metrics.items()}
    moments = _loaded_moments(plan)
    done = plan.loaded.done.copy()
    clock = time.perf_counter()
    compute_seconds = [0.0]
    computed = [0]
    registry = _SweepRecorder(plan) if plan.record else None
    try:
        if registry is not None:
            registry.catch_up(metrics, done)
        if progress is not None:
            progress(int(done.sum()), total)

        def on_block(start: int, end: int, block: dict[str, Array], seconds: float) -> None:
            block_moments = block.pop(MOMENTS, None)
            plan.store.write_block(start, end, space.names, space.combos[start:end], block,
                                   block_moments)
            if block_moments is not None:
                moments[start:end] = block_moments
            for key in METRIC_KEYS:
                metrics[key][start:end] = block[key]
            done[start:end] = True
            if registry is not None:
                registry.record(start, end, block, seconds)
            computed[0] += end - start
            compute_seconds[0] += seconds
            if progress is not None:
                progress(int(done.sum()), total)

        stop = StopFlag()
        with stop.installed():
            if plan.todo:
                run_tasks(_block_tasks(plan), plan.placement, stop,
                          lambda done: on_block(*done))
            if stop.requested and not done.all():
                raise SweepInterrupted(int(done.sum()), total, plan.store.path,
                                       registry.sweep_id if registry else None)
        return _finish(plan, metrics, registry, computed[0], time.perf_counter() - clock,
                       compute_seconds[0], moments)
    finally:
        if registry is not None:
            registry.close()


def _loaded_moments(plan: SweepPlan) -> Array:
    """The moments of the rows on disk, NaN elsewhere, ``(rows, S, 3)``."""
    loaded = plan.loaded.moments
    if loaded.shape == (plan.total, plan.pbo_blocks, 3):
        return loaded.copy()
    return np.full((plan.total, plan.pbo_blocks, 3), np.nan)


def run_sweep(spec_path: str, *, root: Path | None = None, data: Path | DataFrame | None = None,
              start: str | None = None, end: str | None = None, sets: Sequence[str] = (),
              mode: str = "grid", n: int | None = None, seed: int | None = None,
              objective: str = "sharpe", run: RunConfig | None = None,
              workers: int | None = None, scheduler: str | None = None,
              max_memory: int = DEFAULT_MAX_MEMORY, progress: Progress | None = None,
              record: bool = True,
              on_plan: Callable[[SweepPlan], None] | None = None,
              store_root: Path | None = None) -> SweepResult:
    """Plan and execute a sweep (see ``plan_sweep`` and ``execute_sweep``)."""
    plan = plan_sweep(spec_path, root=root, data=data, start=start, end=end, sets=sets,
                      mode=mode, n=n, seed=seed, objective=objective, run=run,
                      workers=workers, scheduler=scheduler, max_memory=max_memory,
                      record=record, store_root=store_root)
    if on_plan is not None:
        on_plan(plan)
    return execute_sweep(plan, progress)


# --------------------------------------------------------------------------- registry


def _params_key(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


class _SweepRecorder:
    """The registry side of a sweep: one sweep id (re-used on resume), every row one run."""

    def __init__(self, plan: SweepPlan) -> None:
        from ..registry.store import Registry

        self.plan = plan
        self.registry = Registry(plan.root)
        self.closed = False  # the registry's sweep is already finished (a re-run)
        sweep_id = plan.store.read_meta().get("registry_sweep_id")
        if isinstance(sweep_id, str):
            try:
                record = self.registry.get_sweep(sweep_id)
            except LookupError:  # the registry was replaced: start the sweep again there
                sweep_id = None
            else:
                if record.status == "running":
                    self.registry.resume_sweep(sweep_id)
                else:
                    self.closed = True
        self.sweep_id: str = sweep_id if isinstance(sweep_id, str) else self._start()

    def _start(self) -> str:
        recipe = self.plan.recipe
        sweep_id = self.registry.start_sweep(
            self.plan.spec, self.config(),
            command=recipe.line(self.plan.root) if recipe is not None else None)
        self.plan.store.write_meta({**self.meta(), "registry_sweep_id": sweep_id})
        self.closed = False
        return sweep_id

    def meta(self) -> dict[str, Any]:
        plan = self.plan
        return {"key": plan.key, "spec": plan.spec, "spec_path": plan.spec_path,
                "artifact_sha256": plan.artifact_sha256,
                "data_fingerprint": plan.candles.fingerprint, "space_id": plan.space_id,
                "names": list(plan.space.names), "combinations": len(plan.space),
                "engine_version": __version__}

    def config(self) -> dict[str, Any]:
        plan = self.plan
        space = plan.space
        return {"key": plan.key, "space_id": plan.space_id, "mode": space.mode,
                "seed": space.seed, "names": list(space.names), "combinations": len(space),
                "candidates": int(space.candidates), "capital": plan.run.capital,
                "fee_bps": plan.run.fee_bps, "data_fingerprint": plan.candles.fingerprint,
                "artifact_sha256": plan.artifact_sha256}

    def _recorded(self) -> set[tuple[float, ...]]:
        names = self.plan.space.names
        out = set()
        for run in self.registry.sweep_runs(self.sweep_id):
            try:
                out.add(_params_key([run.params[n] for n in names]))
            except (KeyError, TypeError):
                continue
        return out

    def catch_up(self, metrics: dict[str, Array], done: Array) -> None:
        """Record rows saved in the store but not in the registry (killed in between)."""
        if not done.any():
            return
        recorded = self._recorded()
        combos = self.plan.space.combos
        missing = np.array([bool(done[i]) and _params_key(combos[i]) not in recorded
                            for i in range(len(combos))], dtype=bool)
        if not missing.any():
            return
        if self.closed:  # finished without these rows: they are new trials of a new sweep
            self.sweep_id = self._start()
        for start, end in missing_blocks(~missing, len(combos) or 1):
            self.record(start, end, {k: v[start:end] for k, v in metrics.items()}, 0.0)

    def record(self, start: int, end: int, block: Mapping[str, Array], seconds: float) -> None:
        plan = self.plan
        if self.closed:  # rows of a finished sweep computed again: new trials, new sweep
            self.sweep_id = self._start()
        count = max(end - start, 1)
        self.registry.record_sweep_block(
            self.sweep_id, plan.spec, plan.artifact_sha256, plan.candles.fingerprint,
            plan.candles.source, __version__, _settings(plan.run), plan.space.names,
            plan.space.combos[start:end], dict(block), seconds / count,
            market=plan.artifact.config.market.symbol, timeframe=plan.artifact.config.timeframe,
            data_start=_iso(plan.candles, 0), data_end=_iso(plan.candles, -1),
            data_bars=plan.bars, commands=self.commands(start, end))

    def commands(self, start: int, end: int) -> list[str] | None:
        """Each row's `peak backtest` line (paths relative to the project folder)."""
        plan = self.plan
        if plan.recipe is None:
            return None
        return list(plan.recipe.backtest_lines(
            plan.artifact.config, (plan.space.params(row) for row in range(start, end)),
            plan.space.names, plan.root))

    def trials(self) -> int:
        return int(self.registry.trial_count(self.plan.spec))

    def finish(self, summary: Mapping[str, Any]) -> None:
        if not self.closed:
            self.registry.finish_sweep(self.sweep_id, dict(summary))
            self.closed = True

    def close(self) -> None:
        self.registry.close()


def _iso(candles: Any, at: int) -> str | None:
    index = candles.frame.index
    return index[at].isoformat() if len(index) else None


def _settings(run: RunConfig) -> dict[str, Any]:
    return {"capital": float(run.capital), "fee_bps": run.fee_bps}


# --------------------------------------------------------------------------- finish


def _honesty(plan: SweepPlan, metrics: Mapping[str, Array], best: int | None,
             trials: int) -> float | None:
    """The deflated Sharpe ratio of the best row's Sharpe, given ``trials`` trials."""
    from ..backtest import run_backtest
    from .honesty import deflated_sharpe, returns_moments, sharpe_variance

    if best is None:
        return None
    sharpe = metrics["sharpe"]
    best_sharpe = float(sharpe[best])
    finite = sharpe[np.isfinite(sharpe)]
    if not math.isfinite(best_sharpe) or len(finite) == 0:
        return None
    variance = sharpe_variance(sharpe)
    variance = 0.0 if math.isnan(variance) else variance
    result = run_backtest(plan.artifact, plan.candles, "", plan.artifact_sha256,
                          plan.space.params(best), capital=plan.run.capital,
                          fee_bps=plan.run.fee_bps)
    curve = np.concatenate([[float(plan.run.capital)],
                            np.asarray(result.sim.equity, dtype=np.float64)])
    skew, kurtosis, n_obs = returns_moments(curve)
    cfg = plan.artifact.config
    periods = bars_per_year(cfg.timeframe_seconds, cfg.calendar)
    value = deflated_sharpe(best_sharpe, max(trials, 1), variance, n_obs, skew, kurtosis,
                            periods)
    return None if value is None or not math.isfinite(value) else float(value)


def _overfitting(plan: SweepPlan, moments: Array) -> PBOResult | None:
    """The probability of backtest overfitting of every row (CSCV, ``pbo``); its Sharpe
    ratios annualised with the strategy's calendar."""
    cfg = plan.artifact.config
    return probability_of_overfitting(
        moments, periods_per_year=bars_per_year(cfg.timeframe_seconds, cfg.calendar))


def edge_warnings(space: ParamSpace, row: int | None) -> tuple[str, ...]:
    """"best fast=5 lies on the edge of the grid: widen the range", one per edge param."""
    from .space import on_edge

    if row is None:
        return ()
    values = space.params(row)
    return tuple(f"best {name}={values[name]:g} lies on the edge of the grid: widen the range"
                 for name in on_edge(space, row))


def _finish(plan: SweepPlan, metrics: dict[str, Array], registry: _SweepRecorder | None,
            computed: int, wall: float, compute_seconds: float,
            moments: Array) -> SweepResult:
    space = plan.space
    order = ranking(metrics[plan.objective], objective_direction(plan.objective))
    best = int(order[0]) if len(order) and not math.isnan(metrics[plan.objective][order[0]]) \
        else None
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    overfitting = _overfitting(plan, moments)
    meta = {"peak.sweep": plan.key, "peak.objective": plan.objective,
            "peak.spec": plan.spec, "peak.space_id": plan.space_id,
            "peak.pbo": json.dumps(_cscv_doc(overfitting), sort_keys=True, allow_nan=False)}
    parquet = plan.store.write_results(space.names, space.combos, metrics, rank, meta)
    trials = registry.trials() if registry is not None else len(space)
    dsr = _honesty(plan, metrics, best, trials)
    cfg = plan.artifact.config
    calendar = calendar_warning(plan.candles.frame.index, cfg.timeframe_seconds, cfg.calendar,
                                cfg.calendar_declared)
    warnings = edge_warnings(space, best) + ((calendar,) if calendar else ())
    best_params = space.params(best) if best is not None else {}
    timing = {"total": wall, "compute": compute_seconds,
              "per_combination": compute_seconds / computed if computed else 0.0}
    result = SweepResult(
        sweep_id=registry.sweep_id if registry is not None else None, key=plan.key,
        spec=plan.spec, spec_path=plan.spec_path, market=plan.artifact.config.market.symbol,
        timeframe=plan.artifact.config.timeframe, space=space, metrics=metrics,
        objective=plan.objective, ranking=order, best_row=best, best_params=best_params,
        best_set=set_line(plan.artifact.config, best_params), deflated_sharpe=dsr,
        trials_total=trials, warnings=warnings, parquet=parquet, computed=computed,
        resumed=plan.resumed, timing=timing, data_source=str(plan.candles.source),
        data_fingerprint=str(plan.candles.fingerprint),
        data_synthetic=bool(plan.candles.synthetic), data_bars=plan.bars,
        data_start=_iso(plan.candles, 0) or "", data_end=_iso(plan.candles, -1) or "",
        artifact_sha256=plan.artifact_sha256, block_size=plan.block_size,
        execution=plan.execution, diagnostics=plan.diagnostics,
        units={p.name: {"percent": "%", "bps": "bps"}.get(p.type, "")
               for p in plan.artifact.config.params},
        pbo=overfitting, command=plan.recipe.line() if plan.recipe else "",
        best_command=plan.recipe.backtest(cfg, best_params, space.names).line()
        if plan.recipe and best is not None else "")
    if registry is not None:
        registry.finish(_summary(result))
    return result


def _summary(result: SweepResult) -> dict[str, Any]:
    best = None if result.best_row is None else result.row(result.best_row)
    return {"objective": result.objective, "combinations": len(result.space),
            "best": best, "best_set": result.best_set,
            "deflated_sharpe": _number(result.deflated_sharpe),
            "pbo": _number(result.pbo_value), "cscv": _cscv_doc(result.pbo),
            "trials": result.trials_total,
            "warnings": list(result.warnings), "parquet": str(result.parquet),
            "key": result.key}
