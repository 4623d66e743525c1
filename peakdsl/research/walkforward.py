"""Walk-forward analysis: optimise on a train window, trade the winner out of sample, repeat.

The contract is docs/walkforward.md. In short:

- **Windows** (``plan_windows``) are half-open bar ranges ``[start, end)`` on the candle
  timestamps. Lengths are bar counts (``500``, ``500bars``) or durations (``180d``, ``12h``,
  ``4w``, ``90m``); durations are laid on the clock from the first bar (``T0 + k·step``) and
  each boundary becomes the first bar at or after it, so gaps in the data shorten a window and
  never shift the later ones. Rolling: train ``[s, s+train)``, test ``[s+train, s+train+test)``,
  ``s`` advancing by ``step`` (default: ``test``); anchored: train always starts at bar 0 and
  grows by ``step``. A last test window cut short by the end of the data is kept when it has at
  least half the test length (in bars; for durations ``test / bar`` bars), else dropped.
- **Optimisation**: every combination of the param space is scored on the train slice with the
  sweep engine (``evaluate_block``); the winner is the best value of the objective (the
  highest, or the lowest for a metric where lower is better: ``peakdsl.metrics``; NaN loses,
  ties go to the first combination in canonical order).
- **Out of sample**: the winner runs on an extended slice that starts ``warmup(params)`` bars
  before the test window, with the simulator's warm-up set to the test window's first bar, so
  indicators are warm and no signal before the window is acted upon; only the test bars count.
- **Stitching**: every window is simulated from the same starting capital and the stitched
  curve chains the window returns multiplicatively; OOS metrics are ``compute_metrics`` of the
  stitched curve (trades, fees and quantities scaled by the chain factor of their window).
- **Efficiency and stability**: see ``wf_efficiency`` and ``param_stability``.
- **Where windows run**: each window (its train optimisation and its out-of-sample run) is one
  independent task (``run_window``), run in this process or on Dask workers through the
  sweep's machinery (``sweep.run_tasks``: ``--workers N`` / ``--scheduler ADDRESS``) and put
  back by window number, so the result is the same bit for bit wherever the windows ran.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..engine.results import SimResult, SimSettings
from ..engine.stats import INT_METRICS, METRIC_KEYS
from ..lang.diagnostics import Diagnostic, diag
from ..lang.project import UsageError
from ..metrics import OBJECTIVES, Direction, objective_choices, objective_direction, produced_by
from .types import ParamSpace, RunConfig

if TYPE_CHECKING:
    import pandas as pd
    from pandas import DataFrame

    from ..compile import models as m
    from ..data.candles import CandleSet
    from ..repro import Recipe

Array = np.ndarray[Any, Any]
Metric = float | int | None
BlockEvaluator = Callable[..., dict[str, Array]]
Progress = Callable[[int, int], None]  # (windows done, windows in the plan)

DEFAULT_RUN = RunConfig()
YEAR_SECONDS = 365 * 86_400
PROMOTION_KEYS = produced_by("walkforward")  # what `promotion_metrics` holds
UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_LENGTH = re.compile(r"^\s*(\d+)\s*(bars?|m|h|d|w)?\s*$", re.IGNORECASE)


class WindowError(ValueError):
    """The data cannot hold the requested windows (carries a U005 diagnostic)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class WalkForwardInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the walk-forward after ``done`` of ``total`` windows. A walk-forward
    keeps no partial state, so nothing was written or recorded; the windows are discarded."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"walk-forward interrupted: {done} of {total} windows done")
        self.done = done
        self.total = total


# --------------------------------------------------------------------------- window lengths


@dataclass(frozen=True)
class Length:
    """A window length: a bar count or a duration (exactly one is set)."""

    text: str
    bars: int | None = None
    seconds: int | None = None

    @property
    def is_bars(self) -> bool:
        return self.bars is not None

    def __str__(self) -> str:
        return self.text


def parse_length(text: str, option: str) -> Length:
    """``500`` / ``500bars`` → bars; ``180d`` / ``12h`` / ``4w`` / ``90m`` → a duration.

    Raises ``UsageError`` (U005) for anything else or a zero length.
    """
    match = _LENGTH.match(text)
    if match is None or int(match.group(1)) <= 0:
        raise UsageError(diag(
            "U005", f"{option} {text!r} is not a window length", option,
            help="give a positive bar count (500 or 500bars) or a duration "
                 "(90m, 12h, 180d, 4w)"))
    count = int(match.group(1))
    unit = (match.group(2) or "").lower()
    if unit in ("", "bar", "bars"):
        return Length(f"{count} bars", bars=count)
    return Length(f"{count}{unit}", seconds=count * UNITS[unit])


def check_lengths(train: Length, test: Length, step: Length | None) -> Length:
    """The step to use (default: the test length); U005 for mixed kinds or overlapping tests."""
    step = step or Length(test.text, test.bars, test.seconds)
    kinds = {length.is_bars for length in (train, test, step)}
    if len(kinds) > 1:
        raise UsageError(diag(
            "U005", f"--train {train}, --test {test}, --step {step}: mix bar counts and "
                    "durations", "--train",
            help="give all three as bar counts (500) or all as durations (30d)"))
    if (step.bars or step.seconds or 0) < (test.bars or test.seconds or 0):
        raise UsageError(diag(
            "U005", f"--step {step} is shorter than --test {test}: test windows would overlap",
            "--step", help="use a step at least as long as the test window (the default "
                           "equals it)"))
    return step


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """One train/test pair as half-open bar ranges, with the first and last bar times."""

    number: int  # 1-based
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    train_first: pd.Timestamp
    train_last: pd.Timestamp
    test_first: pd.Timestamp
    test_last: pd.Timestamp
    partial: bool = False  # the last test window, cut short by the end of the data

    @property
    def train_bars(self) -> int:
        return self.train_end - self.train_start

    @property
    def test_bars(self) -> int:
        return self.test_end - self.test_start


@dataclass(frozen=True)
class WindowPlan:
    windows: tuple[Window, ...]
    notes: tuple[str, ...] = ()


def _fmt_seconds(seconds: float) -> str:
    from ..data.candles import format_duration

    return format_duration(seconds)


def plan_windows(times: pd.DatetimeIndex, bar_seconds: int, train: Length, test: Length,
                 step: Length | None = None, anchored: bool = False) -> WindowPlan:
    """The train/test windows over ``times`` (see the module docstring and the docs).

    Raises ``WindowError`` (U005, with the numbers) when not even one window fits.
    """
    step = check_lengths(train, test, step)
    n = len(times)
    stamps = times.as_unit("ns").asi8 if n else np.zeros(0, dtype=np.int64)
    windows: list[Window] = []
    notes: list[str] = []
    by_bars = train.is_bars

    if by_bars:
        tr, te, st = int(train.bars or 0), int(test.bars or 0), int(step.bars or 0)
        expected = te
    else:
        ns = 1_000_000_000
        tr, te, st = (int(x.seconds or 0) * ns for x in (train, test, step))
        expected = max(1, int(test.seconds or 0) // bar_seconds)
        t0 = int(stamps[0]) if n else 0
        data_end = int(stamps[-1]) + bar_seconds * ns if n else 0

    def index(t: int) -> int:
        return int(np.searchsorted(stamps, t, side="left"))

    k = 0
    while n:
        if by_bars:
            a = 0 if anchored else k * st
            b = tr + k * st
            c, nominal_end = b + te, b + te
            if b >= n:
                break
            full = c <= n
        else:
            ta = t0 if anchored else t0 + k * st
            tb = t0 + tr + k * st
            tc = tb + te
            if tb >= data_end:
                break
            a, b, c = index(ta), index(tb), index(tc)
            full = tc <= data_end
            nominal_end = c
        c = min(c, n)
        k += 1
        if not full:
            got = c - b
            if 2 * got >= expected:
                notes.append(f"the last test window is partial ({got:,} of {expected:,} bars) "
                             "and kept (at least half the test length)")
            else:
                notes.append(f"the last test window would have {got:,} of {expected:,} bars "
                             "(less than half the test length) and is dropped")
                break
        if c <= b or b - a < 2:
            notes.append(f"window at bars {a:,}..{nominal_end:,} skipped: "
                         f"{'no test bars' if c <= b else 'fewer than 2 train bars'} "
                         "(gap in the data)")
            if not full:
                break
            continue
        windows.append(Window(
            number=len(windows) + 1, train_start=a, train_end=b, test_start=b, test_end=c,
            train_first=times[a], train_last=times[b - 1], test_first=times[b],
            test_last=times[c - 1], partial=not full))
        if not full:
            break

    if not windows:
        if by_bars:
            need = f"{tr + (te + 1) // 2:,} bars (train {tr:,} + at least half of test {te:,})"
            have = f"{n:,} bars"
        else:
            need = (f"{_fmt_seconds((tr + te // 2) / 1e9)} (train {train} + at least half of "
                    f"test {test})")
            have = (f"{_fmt_seconds((data_end - t0) / 1e9)} ({n:,} bars)" if n else "no bars")
        raise WindowError(diag(
            "U005", f"too few bars for one walk-forward window: need {need}, the data has "
                    f"{have}", "--train",
            help="shorten --train/--test, or use more data (--from/--to, --data, "
                 "peak data fetch)"))
    return WindowPlan(tuple(windows), tuple(notes))


# --------------------------------------------------------------------------- optimisation


def pick_best(scores: Array, direction: Direction = Direction.HIGHER) -> int:
    """The winner as ``peak sweep`` ranks: the best objective (highest, or lowest when lower
    is better), NaN last, ties to the first row."""
    from .sweep import ranking

    values = np.asarray(scores, dtype=np.float64)
    if len(values) == 0:
        raise ValueError("no combinations to choose from")
    return int(ranking(values, direction)[0])


def _row_metrics(metrics: Mapping[str, Array], row: int) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    for key in METRIC_KEYS:
        value = float(metrics[key][row])
        if math.isnan(value):
            out[key] = None
        elif key in INT_METRICS:
            out[key] = int(value)
        else:
            out[key] = value
    return out


def optimise(artifact: m.StrategyArtifact, candles: CandleSet, space: ParamSpace,
             objective: str, run: RunConfig = DEFAULT_RUN,
             evaluator: BlockEvaluator | None = None) -> tuple[int, dict[str, Metric]]:
    """The winning row of ``space`` on ``candles`` and its metrics (all ``METRIC_KEYS``)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {objective_choices()}")
    if not space.names or len(space) == 0:
        from .types import reference_block

        block = reference_block(artifact, candles, (), np.zeros((1, 0)), run)
        return 0, _row_metrics(block, 0)
    from .sweep import DEFAULT_MAX_MEMORY, block_size, evaluate, new_kernel_cache

    cache = new_kernel_cache()  # one per train slice: indicators shared by its combinations
    size = block_size(len(candles), DEFAULT_MAX_MEMORY)
    parts: list[dict[str, Array]] = []
    for lo in range(0, len(space), size):
        combos = space.combos[lo:lo + size]
        if evaluator is not None:
            parts.append(evaluator(artifact, candles, space.names, combos, run))
        else:
            parts.append(evaluate(artifact, candles, space.names, combos, run, cache))
    metrics = {key: np.concatenate([p[key] for p in parts]) for key in METRIC_KEYS}
    row = pick_best(metrics[objective], objective_direction(objective))
    return row, _row_metrics(metrics, row)


# --------------------------------------------------------------------------- out of sample


@dataclass(frozen=True)
class OosRun:
    """The winner on one test window: the window's own SimResult (bars 0 … test_bars-1)."""

    sim: SimResult
    settings: SimSettings
    metrics: dict[str, Metric]
    params: dict[str, float]
    lead: int  # bars evaluated before the test window (indicator warm-up)
    warmup: int  # the strategy's warm-up for these params
    ext_start: int  # first bar of the extended slice


def bar_slice(candles: CandleSet, start: int, end: int) -> CandleSet:
    """Bars ``start <= i < end`` as a CandleSet (same market, source and provenance; the
    other markets a spec reads kept whole: ``data.frames.inputs_for`` cuts them to the
    bars' span)."""
    return candles.rebuilt(candles.frame.iloc[start:end])


def evaluate_oos(artifact: m.StrategyArtifact, candles: CandleSet, window: Window,
                 params: Mapping[str, float], run: RunConfig = DEFAULT_RUN) -> OosRun:
    """The winner on ``window``'s test bars, warmed up on the bars before them.

    Signals are evaluated on ``[test_start - warmup(params), test_end)`` (clipped at bar 0) and
    simulated there with ``settings.warmup = test_start - ext_start`` (or the strategy's own
    warm-up when the data before the window is shorter), so no signal before the test window is
    acted upon and nothing happens before it; the result keeps the test bars only.
    """
    from ..backtest import sim_settings
    from ..data.frames import inputs_for
    from ..engine.evaluate import evaluate, resolve_params
    from ..engine.simulate import simulate
    from ..engine.stats import compute_metrics

    cfg = artifact.config
    resolved = resolve_params(cfg, params)
    warmup = cfg.warmup.evaluate(resolved)
    ext_start = max(0, window.test_start - warmup)
    lead = window.test_start - ext_start
    frame = candles.frame.iloc[ext_start:window.test_end]
    signals = evaluate(cfg, inputs_for(cfg, candles, frame), resolved)
    settings = sim_settings(cfg, signals.params, max(lead, signals.warmup), run.capital,
                            run.fee_bps)
    full = simulate(frame["open"].to_numpy(), frame["high"].to_numpy(),
                    frame["low"].to_numpy(), frame["close"].to_numpy(), signals.rules,
                    settings, levels=signals.levels, position_rules=signals.position_rules)
    sim = restrict(full, lead)
    metrics = compute_metrics(sim, settings, cfg.timeframe_seconds)
    return OosRun(sim, settings, metrics, dict(signals.params), lead, warmup, ext_start)


def restrict(sim: SimResult, lead: int) -> SimResult:
    """Drop the first ``lead`` bars of a run in which nothing happened before bar ``lead``."""
    trades = {k: np.asarray(v).copy() for k, v in sim.trades.items()}
    if len(trades["entry_bar"]) and float(np.min(trades["entry_bar"])) < lead:
        raise AssertionError("a trade entered before the test window")
    opened = {k: np.asarray(v).copy() for k, v in sim.open_trades.items()}
    for table in (trades, opened):
        table["entry_bar"] = table["entry_bar"] - lead
        table["exit_bar"] = table["exit_bar"] - lead
    return SimResult(equity=np.asarray(sim.equity)[lead:].copy(),
                     position=np.asarray(sim.position)[lead:].copy(), trades=trades,
                     ambiguous_bars=sim.ambiguous_bars, fees_paid=sim.fees_paid,
                     open_trades=opened)


def stitch(runs: Sequence[SimResult], offsets: Sequence[int], capital: float) -> SimResult:
    """Chain window runs (each from ``capital``) into one curve: window ``i`` is scaled by the
    factor ``f_i = Π_{j<i} E_j[-1] / capital``; trade bars become global (``offsets[i] + bar``),
    trade pnl, fees and quantities and positions are scaled by ``f_i``, trade returns are not."""
    equity: list[Array] = []
    position: list[Array] = []
    trade_parts: list[dict[str, Array]] = []
    factor = 1.0
    fees = 0.0
    ambiguous = 0
    for sim, offset in zip(runs, offsets, strict=True):
        eq = np.asarray(sim.equity, dtype=np.float64)
        equity.append(eq * factor)
        position.append(np.asarray(sim.position, dtype=np.float64) * factor)
        t = {k: np.asarray(v, dtype=np.float64).copy() for k, v in sim.trades.items()}
        for key in ("entry_bar", "exit_bar"):
            t[key] = t[key] + offset
        for key in ("qty", "fees", "pnl"):
            t[key] = t[key] * factor
        trade_parts.append(t)
        fees += sim.fees_paid * factor
        ambiguous += sim.ambiguous_bars
        if len(eq):
            factor *= float(eq[-1]) / capital
    from ..engine.results import TRADE_COLUMNS

    trades = {k: (np.concatenate([p[k] for p in trade_parts]) if trade_parts
                  else np.zeros(0)) for k in TRADE_COLUMNS}
    return SimResult(
        equity=np.concatenate(equity) if equity else np.zeros(0),
        position=np.concatenate(position) if position else np.zeros(0),
        trades=trades, ambiguous_bars=ambiguous, fees_paid=fees)


# --------------------------------------------------------------------------- windows as tasks


@dataclass(frozen=True)
class WindowOutcome:
    """What one window's task hands back (picklable: it may come from a Dask worker)."""

    number: int
    row: int  # the winner's row in the param space
    is_metrics: dict[str, Metric]
    oos: OosRun
    seconds: tuple[float, float]  # optimising, out of sample


def run_window(artifact: m.StrategyArtifact, candles: CandleSet, space: ParamSpace,
               window: Window, objective: str, run: RunConfig = DEFAULT_RUN,
               evaluator: BlockEvaluator | None = None) -> WindowOutcome:
    """One window from start to end: optimise on its train bars, trade the winner on its
    test bars. Depends on nothing but its arguments, so windows can run anywhere."""
    t0 = time.perf_counter()
    train_set = bar_slice(candles, window.train_start, window.train_end)
    row, is_metrics = optimise(artifact, train_set, space, objective, run, evaluator)
    chosen = space.params(row) if space.names else {}
    t1 = time.perf_counter()
    oos = evaluate_oos(artifact, candles, window, chosen, run)
    return WindowOutcome(window.number, row, is_metrics, oos, (t1 - t0, time.perf_counter() - t1))


def worker_window(artifact_json: str, candles: CandleSet, space: ParamSpace, window: Window,
                  objective: str, run: RunConfig, evaluator: BlockEvaluator | None = None
                  ) -> WindowOutcome:
    """``run_window`` on a Dask worker: the artifact travels as its canonical JSON and is
    parsed once per worker (``sweep.worker_artifact``), the candles and space once per run."""
    from .sweep import worker_artifact

    return run_window(worker_artifact(artifact_json), candles, space, window, objective, run,
                      evaluator)


def _shared(artifact: m.StrategyArtifact, candles: CandleSet,
            space: ParamSpace) -> tuple[str, CandleSet, ParamSpace]:
    """What every window reads, sent to each worker once: the artifact as its canonical JSON
    (parsed there once, ``worker_window``), the candles and the param space."""
    from ..compile.artifacts import dump_model

    return dump_model(artifact).decode("utf-8"), candles, space


def run_windows(artifact: m.StrategyArtifact, candles: CandleSet, space: ParamSpace,
                windows: Sequence[Window], objective: str, run: RunConfig = DEFAULT_RUN, *,
                evaluator: BlockEvaluator | None = None, workers: int | None = None,
                scheduler: str | None = None,
                progress: Progress | None = None) -> list[WindowOutcome]:
    """Every window's outcome in window order, run in this process or on Dask (``workers`` /
    ``scheduler`` as for sweeps); ``progress(done, total)`` after each window.

    Raises ``WalkForwardInterrupted`` on Ctrl-C: in this process at once; on Dask the first
    Ctrl-C cancels the pending windows within a quarter of a second (``sweep.StopFlag``).
    """
    from .sweep import StopFlag, Tasks, placement, run_tasks

    where = placement(workers, scheduler)
    outcomes: dict[int, WindowOutcome] = {}

    def done(outcome: WindowOutcome) -> None:
        outcomes[outcome.number] = outcome
        if progress is not None:
            progress(len(outcomes), len(windows))

    tasks = Tasks([(w, objective, run, evaluator) for w in windows],
                  partial(run_window, artifact, candles, space), worker_window,
                  _shared(artifact, candles, space) if where.distributed else ())
    stop = StopFlag()
    if progress is not None:
        progress(0, len(windows))
    try:
        with stop.installed() if where.distributed else nullcontext(stop):
            run_tasks(tasks, where, stop, done)
    except KeyboardInterrupt:
        raise WalkForwardInterrupted(len(outcomes), len(windows)) from None
    if len(outcomes) < len(windows):  # the first Ctrl-C stopped a run on Dask
        raise WalkForwardInterrupted(len(outcomes), len(windows))
    return [outcomes[w.number] for w in windows]


# --------------------------------------------------------------------------- summary numbers


def pooled_annual_return(total_returns: Sequence[float | None], bars: Sequence[int],
                         bars_per_year: float) -> float | None:
    """``(Π (1 + R_i)) ** (bars_per_year / Σ n_i) - 1``: the windows' returns chained as if
    run back to back, annualised over their bars. None when a return is missing, a window
    lost everything, or the growth overflows."""
    if not total_returns or any(r is None for r in total_returns) or sum(bars) <= 0:
        return None
    growth = [1.0 + float(r) for r in total_returns if r is not None]
    if min(growth) <= 0:
        return -1.0
    log_growth = bars_per_year / sum(bars) * sum(math.log(g) for g in growth)
    return math.expm1(log_growth) if log_growth < 700 else None


def wf_efficiency(oos_annual: float | None, is_annual: float | None) -> float | None:
    """Walk-forward efficiency: annualised OOS return / annualised in-sample return.

    None when either is undefined or the in-sample return is not positive.
    """
    if oos_annual is None or is_annual is None or not is_annual > 0:
        return None
    value = oos_annual / is_annual
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class ParamStability:
    """How one param's winning value moved across windows."""

    name: str
    values: tuple[float, ...]
    mean: float
    std: float  # population (ddof=0)
    cv: float | None  # std / |mean|; None when the mean is 0
    mode: float  # the most frequent value (ties: the smallest)
    mode_share: float  # share of windows that picked ``mode``
    changes: int  # windows whose value differs from the previous window's


def param_stability(names: Sequence[str],
                    chosen: Sequence[Mapping[str, float]]) -> dict[str, ParamStability]:
    """Per param: coefficient of variation and the modal value's share across windows."""
    out: dict[str, ParamStability] = {}
    for name in names:
        values = tuple(float(c[name]) for c in chosen)
        if not values:
            continue
        arr = np.asarray(values)
        mean = float(np.mean(arr))
        std = float(np.std(arr, ddof=0))
        counts = Counter(values)
        top = max(counts.values())
        mode = min(v for v, c in counts.items() if c == top)
        out[name] = ParamStability(
            name=name, values=values, mean=mean, std=std,
            cv=std / abs(mean) if mean != 0 else None, mode=mode,
            mode_share=top / len(values),
            changes=sum(1 for a, b in itertools.pairwise(values) if a != b))
    return out


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class WindowResult:
    """One window: where it lies, what won in sample, and how it did out of sample."""

    window: Window
    params: dict[str, float]  # every param of the winner (swept ones and defaults)
    chosen: dict[str, float]  # the swept params only
    row: int  # the winner's row in the param space
    objective: float | None  # the in-sample objective value of the winner
    is_metrics: dict[str, Metric]
    oos_metrics: dict[str, Metric]
    lead: int  # bars evaluated before the test window to warm the indicators
    warmup: int  # the strategy's warm-up for these params
    oos_equity: Array  # the window's own OOS equity (starts from the capital)
    oos_trades: dict[str, Array]  # the window's trades, bars relative to test_start

    @property
    def warm(self) -> bool:
        return self.lead >= self.warmup


@dataclass(frozen=True)
class WalkForwardResult:
    """Everything ``peak walkforward`` prints, writes as JSON or draws in the report."""

    spec: str
    source_path: str
    artifact_sha256: str
    market: str
    timeframe: str
    candles: CandleSet
    objective: str
    mode: str  # "grid" | "random"
    seed: int | None
    combinations: int
    anchored: bool
    train: str
    test: str
    step: str
    capital: float
    fee_bps: float | None
    param_names: tuple[str, ...]
    windows: tuple[WindowResult, ...]
    oos_bars: Array  # global bar indices of the stitched OOS curve
    oos_sim: SimResult  # stitched: equity, position, trades (global bars), fees
    oos_metrics: dict[str, Metric]
    is_annual_return: float | None
    oos_annual_return: float | None
    wf_efficiency: float | None
    stability: dict[str, ParamStability]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    engine_version: str = __version__
    timing: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None  # the registry's walkforward run (None when not recorded)
    execution: str = "in-process"  # where the windows ran (not part of the JSON document)
    command: str = ""  # the `peak walkforward` line that reproduces it (peakdsl.repro)
    recipe: Recipe | None = None  # that line, typed (None: inputs only in memory)

    @property
    def oos_equity(self) -> Array:
        return np.asarray(self.oos_sim.equity)

    @property
    def oos_times(self) -> pd.DatetimeIndex:
        return self.candles.frame.index[self.oos_bars]

    def window_recipe(self, w: WindowResult) -> Recipe | None:
        """The line that reproduces window ``w`` exactly: the walk-forward of that window
        alone (``Recipe.one_window``), or this whole walk-forward when the window alone
        would warm up on fewer bars than it did here (a warm-up longer than its train
        window, which the bars before the train window helped to cover). Not a backtest of
        the test period: see docs/registry.md, *Reproducible by construction*."""
        if self.recipe is None:
            return None
        win = w.window
        if w.lead != min(w.warmup, win.train_bars):
            return self.recipe
        import pandas as pd

        from ..repro import stamp_text

        end = win.test_last + pd.Timedelta(seconds=self.candles.bar_seconds)
        return self.recipe.one_window(stamp_text(win.train_first), stamp_text(end),
                                      win.train_bars, win.test_bars)

    def window_bars(self, w: WindowResult) -> CandleSet:
        """The bars window ``w`` computed from: its train and test bars, and the bars before
        them its out-of-sample run warmed up on, if any (its registry run's data)."""
        first = min(w.window.train_start, w.window.test_start - w.lead)
        return bar_slice(self.candles, first, w.window.test_end)

    @property
    def promotion_metrics(self) -> dict[str, float | None]:
        """The values promotion criteria read (``require oos_sharpe >= 1.0``)."""
        m = self.oos_metrics

        def f(v: Metric) -> float | None:
            return None if v is None else float(v)

        return {"oos_sharpe": f(m.get("sharpe")), "oos_total_return": f(m.get("total_return")),
                "oos_max_drawdown": f(m.get("max_drawdown")),
                "wf_efficiency": self.wf_efficiency}


def run_walkforward(artifact: m.StrategyArtifact, candles: CandleSet, space: ParamSpace | None,
                    train: Length, test: Length, step: Length | None = None, *,
                    anchored: bool = False, objective: str = "sharpe",
                    run: RunConfig = DEFAULT_RUN, source_text: str = "",
                    artifact_sha256: str = "",
                    evaluator: BlockEvaluator | None = None, workers: int | None = None,
                    scheduler: str | None = None,
                    progress: Progress | None = None) -> WalkForwardResult:
    """Plan the windows, optimise on each train slice, trade the winner on each test slice
    (``run_windows``: here or on Dask), stitch, and summarise. Raises ``WindowError`` when
    no window fits the data and ``WalkForwardInterrupted`` on Ctrl-C."""
    from ..engine.stats import bars_per_year, calendar_warning, compute_metrics
    from .sweep import Placement

    del source_text  # the spec text is not part of the result (the artifact hash is)
    clock = time.perf_counter()
    cfg = artifact.config
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {objective_choices()}")
    step = check_lengths(train, test, step)
    plan = plan_windows(candles.frame.index, cfg.timeframe_seconds, train, test, step, anchored)
    if space is None:
        space = ParamSpace(names=(), combos=np.zeros((1, 0)), mode="grid", candidates=1)
    outcomes = run_windows(artifact, candles, space, plan.windows, objective, run,
                           evaluator=evaluator, workers=workers, scheduler=scheduler,
                           progress=progress)
    results = [_window_result(window, outcome, space, objective)
               for window, outcome in zip(plan.windows, outcomes, strict=True)]
    runs = [outcome.oos.sim for outcome in outcomes]

    offsets = [w.window.test_start for w in results]
    stitched = stitch(runs, offsets, run.capital)
    bars = np.concatenate([np.arange(w.window.test_start, w.window.test_end, dtype=np.int64)
                           for w in results])
    bpy = bars_per_year(cfg.timeframe_seconds, cfg.calendar)
    settings = SimSettings(capital=run.capital, bars_per_year=bpy, calendar=cfg.calendar)
    oos_metrics = compute_metrics(stitched, settings, cfg.timeframe_seconds)
    is_annual = pooled_annual_return(
        [r.is_metrics.get("total_return") for r in results],
        [r.window.train_bars for r in results], bpy)
    oos_cagr = oos_metrics.get("cagr")
    oos_annual = None if oos_cagr is None else float(oos_cagr)
    from ..backtest import data_warnings

    warnings = data_warnings(candles)  # also in --json and the registry, as a backtest's
    cold = [r.window.number for r in results if not r.warm]
    if cold:
        warnings.append("window(s) " + ", ".join(map(str, cold)) + ": fewer bars before the "
                        "test window than the warm-up; the test started with cold indicators")
    if cfg.execution.fill == "close":
        warnings.append("fill close: orders fill at the signal bar's close (optimistic)")
    if candles.synthetic:
        warnings.append(f"data source: {candles.source}")
    calendar = calendar_warning(candles.frame.index, cfg.timeframe_seconds, cfg.calendar,
                                cfg.calendar_declared)
    if calendar:
        warnings.append(calendar)
    return WalkForwardResult(
        spec=cfg.name, source_path=artifact.source.path, artifact_sha256=artifact_sha256,
        market=cfg.market.symbol, timeframe=cfg.timeframe, candles=candles,
        objective=objective, mode=space.mode, seed=space.seed, combinations=len(space),
        anchored=anchored, train=str(train), test=str(test), step=str(step),
        capital=run.capital, fee_bps=run.fee_bps, param_names=tuple(space.names),
        windows=tuple(results), oos_bars=bars, oos_sim=stitched, oos_metrics=oos_metrics,
        is_annual_return=is_annual, oos_annual_return=oos_annual,
        wf_efficiency=wf_efficiency(oos_annual, is_annual),
        stability=param_stability(space.names, [r.chosen for r in results]),
        notes=plan.notes, warnings=tuple(warnings),
        timing={"optimise": sum(o.seconds[0] for o in outcomes),  # summed over windows,
                # which overlap on workers; "total" is the wall time
                "out_of_sample": sum(o.seconds[1] for o in outcomes),
                "total": time.perf_counter() - clock},
        execution=Placement(workers, scheduler).describe())


def _window_result(window: Window, outcome: WindowOutcome, space: ParamSpace,
                   objective: str) -> WindowResult:
    """A window's record from its task's outcome."""
    oos = outcome.oos
    score = outcome.is_metrics.get(objective)
    return WindowResult(
        window=window, params=dict(sorted(oos.params.items())),
        chosen=space.params(outcome.row) if space.names else {}, row=outcome.row,
        objective=None if score is None else float(score), is_metrics=outcome.is_metrics,
        oos_metrics=oos.metrics, lead=oos.lead, warmup=oos.warmup,
        oos_equity=np.asarray(oos.sim.equity), oos_trades=oos.sim.trades)


# --------------------------------------------------------------------------- end to end


def walkforward(spec: str, *, train: str, test: str, step: str | None = None,
                anchored: bool = False, objective: str = "sharpe", mode: str = "grid",
                n: int | None = None, seed: int | None = None, sets: Sequence[str] = (),
                root: Path | None = None, data: Path | DataFrame | None = None,
                start: str | None = None, end: str | None = None, capital: float = 10_000.0,
                fee_bps: float | None = None,
                evaluator: BlockEvaluator | None = None, record: bool = True,
                outputs: Callable[[WalkForwardResult], Mapping[str, Path]] | None = None,
                workers: int | None = None, scheduler: str | None = None,
                progress: Progress | None = None) -> WalkForwardResult:
    """Compile ``spec``, build its param space, load its data, walk forward and (by default)
    record it in the run registry (``peakdsl.research.wf_record``), with ``run_id`` set.

    ``outputs(result)`` writes what the caller asked for and returns the files by name
    (``{"report": path}``); the run is recorded after it, so failed outputs leave no row. The
    registry is opened before the run, so a project that cannot record fails at once.
    Windows run in this process, on a local Dask cluster (``workers``) or on the Dask
    scheduler at ``scheduler``, with ``progress(windows done, total)`` after each.
    Raises ``UsageError`` for malformed options and an unusable registry (exit 2),
    ``api.SpecError`` with the diagnostics for spec, space, data and window problems (exit 1)
    and ``WalkForwardInterrupted`` on Ctrl-C (nothing written, nothing recorded).
    """
    from .. import api
    from ..lang.diagnostics import has_errors
    from ..repro import recipe, walkforward_options
    from ..resolve import resolve
    from .sweep import placement

    placement(workers, scheduler)
    train_len = parse_length(train, "--train")
    test_len = parse_length(test, "--test")
    step_len = check_lengths(train_len, test_len,
                             parse_length(step, "--step") if step is not None else None)
    if objective not in OBJECTIVES:
        raise UsageError(diag("U005", f"--objective {objective!r} is not an objective",
                              "--objective", help="use one of " + objective_choices()))
    resolved = resolve("walkforward", spec, root=root, data=data, start=start, end=end,
                       capital=capital, fee_bps=fee_bps)
    project_root, artifact, candles = resolved.root, resolved.artifact, resolved.candles
    line = recipe(resolved, command="walkforward", sets=sets, options=walkforward_options(
        train, test, step, anchored, objective, mode, n, seed))
    from .space import build_space

    space, problems = build_space(artifact.config, tuple(sets),
                                  mode="random" if mode == "random" else "grid", n=n, seed=seed)
    if has_errors(problems) or space is None:
        raise api.SpecError(tuple(problems) or (diag(
            "U005", "the param space is empty", "--set"),))
    from ..registry.recording import open_registry, record_run
    from .wf_record import walkforward_records

    try:  # windows that do not fit are a usage error before anything is created
        plan_windows(candles.frame.index, artifact.config.timeframe_seconds, train_len,
                     test_len, step_len, anchored)
    except WindowError as exc:
        raise api.SpecError((exc.diagnostic,)) from None
    registry = open_registry(project_root) if record else None
    try:
        result = run_walkforward(artifact, candles, space, train_len, test_len, step_len,
                                 anchored=anchored, objective=objective,
                                 run=RunConfig(capital=capital, fee_bps=fee_bps),
                                 source_text=resolved.source_text,
                                 artifact_sha256=resolved.artifact_sha256,
                                 evaluator=evaluator, workers=workers, scheduler=scheduler,
                                 progress=progress)
        result = dataclasses.replace(result, command=line.line() if line else "",
                                     recipe=line)
        written = outputs(result) if outputs is not None else {}
        if registry is not None:
            run_id = record_run(registry, *walkforward_records(
                result, written, line.line(project_root) if line else None,
                window_lines(result, project_root)))
            result = dataclasses.replace(result, run_id=run_id)
    except WindowError as exc:
        raise api.SpecError((exc.diagnostic,)) from None
    finally:
        if registry is not None:
            registry.close()
    return result


def window_lines(result: WalkForwardResult, base: Path | None = None) -> list[str | None]:
    """Each window's reproducing line (``window_recipe``), paths relative to ``base``
    (default: the working directory); None for inputs that exist only in memory."""
    out: list[str | None] = []
    for w in result.windows:
        found = result.window_recipe(w)
        out.append(None if found is None else found.line(base))
    return out


# --------------------------------------------------------------------------- JSON


JSON_SCHEMA_VERSION = 1


def _iso(ts: Any) -> str:
    return str(ts.isoformat())


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.floating):
        return _clean(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def walkforward_doc(result: WalkForwardResult) -> dict[str, Any]:
    """The ``--json`` document (deterministic: no clock, no run id). ``command`` and each
    window's ``command`` are the lines that reproduce them, paths relative to the working
    directory (null for inputs that exist only in memory)."""
    times = result.candles.frame.index
    windows = []
    for w, line in zip(result.windows, window_lines(result), strict=True):
        win = w.window
        windows.append({
            "number": win.number,
            "command": line,
            "train": {"start_bar": win.train_start, "end_bar": win.train_end,
                      "bars": win.train_bars, "first": _iso(win.train_first),
                      "last": _iso(win.train_last)},
            "test": {"start_bar": win.test_start, "end_bar": win.test_end,
                     "bars": win.test_bars, "first": _iso(win.test_first),
                     "last": _iso(win.test_last), "partial": win.partial},
            "params": {k: _clean(v) for k, v in sorted(w.params.items())},
            "chosen": {k: _clean(v) for k, v in sorted(w.chosen.items())},
            "objective_value": _clean(w.objective),
            "warmup_bars": w.lead,
            "in_sample": {k: _clean(v) for k, v in w.is_metrics.items()},
            "out_of_sample": {k: _clean(v) for k, v in w.oos_metrics.items()},
        })
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "command": result.command or None,
        "spec": result.spec, "source_path": result.source_path,
        "artifact_sha256": result.artifact_sha256, "engine_version": result.engine_version,
        "market": result.market, "timeframe": result.timeframe,
        "data": {"source": result.candles.source, "synthetic": result.candles.synthetic,
                 "fingerprint": result.candles.fingerprint, "bars": len(times),
                 "start": _iso(times[0]) if len(times) else "",
                 "end": _iso(times[-1]) if len(times) else ""},
        "config": {"train": result.train, "test": result.test, "step": result.step,
                   "anchored": result.anchored, "objective": result.objective,
                   "mode": result.mode, "seed": result.seed,
                   "combinations": result.combinations, "capital": result.capital,
                   "fee_bps": result.fee_bps, "params": list(result.param_names)},
        "windows": windows,
        "out_of_sample": {
            "bars": len(result.oos_bars),
            "metrics": {k: _clean(v) for k, v in result.oos_metrics.items()},
            "annual_return": _clean(result.oos_annual_return),
        },
        "in_sample_annual_return": _clean(result.is_annual_return),
        "wf_efficiency": _clean(result.wf_efficiency),
        "promotion_metrics": {k: _clean(v) for k, v in result.promotion_metrics.items()},
        "stability": {name: {"values": list(s.values), "mean": s.mean, "std": s.std,
                             "cv": _clean(s.cv), "mode": s.mode, "mode_share": s.mode_share,
                             "changes": s.changes}
                      for name, s in result.stability.items()},
        "notes": list(result.notes),
        "warnings": list(result.warnings),
    }
