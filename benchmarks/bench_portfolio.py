"""Portfolio speed (issue 9, item 6): a 3-component portfolio from the resolved plan to its
metrics, and the same components in vectorbt's grouped, cash-sharing ``from_signals``.

The portfolio is three library strategies on two synthetic markets in a scratch project's
cache: ``ma_crossover`` and ``vol_breakout`` on BTC/USDT 1h, ``trend_following_eth_usdt`` on
ETH/USDT 1h, weights 40 / 30 / 30 %, ``rebalance 7d`` and ``rebalance drift 5%``; ``--bars``
bars per market from ``synth_market``, each open moved off the previous close by a small
random gap (``gapped``: the generator opens every bar at the previous close, where ``fill
close`` and ``fill next_open`` would trade at the same prices), stored with ``cache.store``.

(1) Speed: ``run_portfolio`` on the resolved plan — every component's signals, the clock
    (``simulate_slots``), the portfolio metrics — as the strategies are written (their own
    sizing, slippage, stops, ``fill next_open``), without and with the ``live_moderate_usdt``
    risk limits. The first call of the process, then the median and best wall time and the
    median CPU time of ``--repeat`` warm runs, with ``run_portfolio``'s own stage timings
    (medians). The aim: under 0.5 s at 100k bars.

(2) vectorbt: the same plan with the semantics matched (``matched``): fees as written,
    no slippage, no stops, a fixed 1,000 USDT notional per entry (peak ``notional`` sizing,
    vectorbt ``size_type="value"`` of 1,000 / (1 + fees): the same quantity), capital
    1,000,000 USDT so no entry is ever cut (checked: no reduced entry), once with ``fill
    close`` and once with ``fill next_open``. vectorbt gets peak's own rule signals
    (``Signals.rules``) and prices (``vectorbt_inputs`` says how they are laid out) and runs
    ``Portfolio.from_signals(..., group_by=True, cash_sharing=True)``. Reported: final
    equity's relative difference (goal ``TOLERANCE``; exit 1 beyond it), the same for the
    profit, the worst relative difference of the equity at any bar, closed trades on each
    side, and the times: peak's ``run_portfolio`` and its clock alone; vectorbt's
    ``from_signals`` alone, and with final value, total return, Sharpe and max drawdown.
    Skipped, saying so, when vectorbt is not importable (it is not in the project venv:
    install it in its own, see benchmarks/README.md).

    python benchmarks/bench_portfolio.py [--bars 100000 1000000] [--repeat 5]
    python benchmarks/bench_portfolio.py --profile     # where run_portfolio's time goes
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import math
import os
import platform
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from peakdsl.api import compile_spec
from peakdsl.compile import models as m
from peakdsl.data.cache import Meta, store
from peakdsl.data.candles import CandleSet
from peakdsl.data.synth import synth_market
from peakdsl.engine.evaluate import Signals, evaluate
from peakdsl.engine.results import SimSettings
from peakdsl.engine.simulate import rule_matrix
from peakdsl.engine.timeline import Slot, SlotsDriver, build_clock
from peakdsl.portfolio import run as portfolio_run
from peakdsl.portfolio.plan import PortfolioPlan, resolve_portfolio
from peakdsl.portfolio.run import PortfolioResult, run_portfolio
from peakdsl.resolve import risk_config

try:
    from machine_info import cpu_name
except ImportError:  # imported from elsewhere
    def cpu_name() -> str:
        return "unknown CPU"

REPO = Path(__file__).resolve().parents[1]
AIM_SECONDS = 0.5  # issue 9, item 6: 3 components × 100k bars, warm
AIM_BARS = 100_000
TOLERANCE = 1e-9  # final equity, peak vs vectorbt, relative
MARKETS = {"BTC/USDT": 11, "ETH/USDT": 12}  # market → synthetic seed
GAP = 5e-4  # standard deviation of an open's relative gap from the previous close
RISK = "live_moderate_usdt"
PORTFOLIO = """portfolio bench_three {
    capital 10000 USDT
    component ma_crossover weight 40%
    component vol_breakout weight 30%
    component trend_following_eth_usdt weight 30%
    rebalance 7d
    rebalance drift 5%
}
"""
CAPITAL = 1_000_000.0  # the comparison's: entries never reach the sleeves' or the cash cap
NOTIONAL = 1_000.0  # USDT per entry, fees included (peak's `notional` sizing)
FILLS = ("close", "next_open")
STAGES = ("signals", "simulate", "metrics")


# ---------------------------------------------------------------- the scratch project


def gapped(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``frame`` with every open but the first ``close[k - 1] × (1 + ε)``, ε normal with
    deviation ``GAP`` (seeded), high and low widened to hold it."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    close = frame["close"].to_numpy()
    opens = frame["open"].to_numpy().copy()
    opens[1:] = close[:-1] * (1.0 + rng.normal(0.0, GAP, len(close) - 1))
    out["open"] = opens
    out["high"] = np.maximum(frame["high"].to_numpy(), opens)
    out["low"] = np.minimum(frame["low"].to_numpy(), opens)
    return out


def cache_market(root: Path, market: str, seed: int, bars: int) -> None:
    """``bars`` synthetic 1h bars of ``market`` (``gapped``) into ``root``'s cache."""
    frame = gapped(synth_market(market, "1h", bars, seed).frame, seed)
    detail = f"seed {seed}, opens gapped"
    store(root, CandleSet.of(frame, market, "1h", f"synthetic ({detail})", synthetic=True),
          Meta(market, "1h", "synth", True, detail, None, seed))


@contextmanager
def scratch_project(bars: int) -> Iterator[Path]:
    """A temporary project: the repository's spec library, the benchmark portfolio and
    ``bars`` synthetic 1h bars of each market in its cache (both ending at the same close,
    so the components share their bars). Removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench_portfolio_") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "specs", root / "specs")
        for market, seed in MARKETS.items():
            cache_market(root, market, seed, bars)
        (root / "specs" / "portfolios" / "bench_three.peak").write_text(
            PORTFOLIO, encoding="utf-8")
        yield root


def resolved(root: Path, risk: str | None = None) -> PortfolioPlan:
    """The benchmark portfolio's plan (under the risk spec ``risk``, when given): what
    ``peak backtest`` has before it calls ``run_portfolio``."""
    path = root / "specs" / "portfolios" / "bench_three.peak"
    artifact = compile_spec(str(path), root)
    assert isinstance(artifact, m.PortfolioArtifact)
    limits = risk_config(risk, root, "USDT", artifact.config.name) if risk else None
    return resolve_portfolio(str(path), artifact, root, risk=limits)


# ---------------------------------------------------------------- (1) speed


@dataclass
class Timed:
    """A function's first call (wall seconds), then ``repeat`` warm calls: wall and CPU
    seconds of this thread (the jitted code runs in it; the CPU time moves less than the
    wall time when other processes load the machine), what ``keep`` kept of each result,
    and the last result (earlier ones are dropped: at 1M bars each holds hundreds of MB)."""

    first: float
    wall: list[float]
    cpu: list[float]
    kept: list[Any]
    last: Any = None

    @property
    def median(self) -> float:
        return statistics.median(self.wall)


def timed(fn: Callable[[], Any], repeat: int,
          keep: Callable[[Any], Any] = lambda _: None) -> Timed:
    start = time.perf_counter()
    fn()
    out = Timed(time.perf_counter() - start, [], [], [])
    for _ in range(repeat):
        out.last = None
        start, cpu = time.perf_counter(), time.thread_time()
        out.last = fn()
        out.wall.append(time.perf_counter() - start)
        out.cpu.append(time.thread_time() - cpu)
        out.kept.append(keep(out.last))
    return out


@dataclass(frozen=True)
class Speed:
    """One plan's timings: first call, warm median, best and median CPU time, and each
    stage's median (wall)."""

    label: str
    bars: int
    first: float
    median: float
    best: float
    cpu: float
    stages: dict[str, float]

    def row(self) -> str:
        stages = " | ".join(f"{self.stages[s] * 1e3:.1f}" for s in STAGES)
        aim, met = "", ""
        if self.bars == AIM_BARS and "risk" not in self.label:
            aim, met = f"< {AIM_SECONDS:g} s", "yes" if self.median < AIM_SECONDS else "no"
        return (f"| {self.label} | {self.bars:,} | {self.median:.3f} | {self.best:.3f} | "
                f"{self.cpu:.3f} | {stages} | {aim} | {met} |")


SPEED_HEAD = ["| portfolio | bars per component | median (s) | best (s) | median CPU (s) | "
              "signals (ms) | simulate (ms) | metrics (ms) | aim | met |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]


def speed(label: str, plan: PortfolioPlan, repeat: int) -> Speed:
    """``run_portfolio`` on ``plan``: the first call, then ``repeat`` warm ones."""
    runs = timed(lambda: run_portfolio(plan), repeat, keep=lambda r: r.timing)
    stages = {s: statistics.median(timing[s] for timing in runs.kept) for s in STAGES}
    return Speed(label, plan.components[0].candles.bars, runs.first, runs.median,
                 min(runs.wall), statistics.median(runs.cpu), stages)


# ---------------------------------------------------------------- (2) vectorbt


def matched(fill: str) -> portfolio_run.Adjust:
    """Each component's settings with the semantics vectorbt can share: fill at ``fill``,
    no slippage, no stops, a fixed notional per entry; its signals untouched."""
    def adjust(signals: Signals, settings: SimSettings) -> tuple[Signals, SimSettings]:
        return signals, settings.replace(
            fill=fill, slippage=0.0, sizing_mode="notional", sizing_value=NOTIONAL,
            stop_loss=math.nan, take_profit=math.nan, trailing_stop=math.nan)
    return adjust


@dataclass(frozen=True)
class VbtInputs:
    """vectorbt's arrays, ``(bars + 1, components)``: a row per bar and one more at the last
    bar's close, where every position still open is closed (peak's ``end_of_data
    close``)."""

    index: pd.DatetimeIndex
    close: np.ndarray[Any, Any]
    price: np.ndarray[Any, Any]
    entries: np.ndarray[Any, Any]
    exits: np.ndarray[Any, Any]
    short_entries: np.ndarray[Any, Any]
    short_exits: np.ndarray[Any, Any]
    value: np.ndarray[Any, Any]  # the notional per entry, fees taken out
    fees: np.ndarray[Any, Any]
    conflicts: int  # bars with an entry and an exit of one side (vectorbt resolves otherwise)


def vectorbt_inputs(result: PortfolioResult) -> VbtInputs:
    """Peak's prices and rule signals as vectorbt's inputs. ``fill close``: the signals of
    bar k trade at ``close[k]`` (no entry on the last bar, as in peak); ``fill next_open``:
    they trade at ``open[k + 1]`` (row k + 1, price the open). The extra last row trades at
    the last close with every exit set and no entry."""
    index = shared_bars(result)
    columns = [_component_inputs(run.component.candles.frame, run.signals, run.settings,
                                 len(index)) for run in result.components]
    stacked = [np.column_stack(parts) for parts in zip(*columns, strict=True)]
    close, price, entries, exits, short_entries, short_exits = stacked
    index = index.append(pd.DatetimeIndex([index[-1] + pd.Timedelta(hours=1)]))
    fees = np.array([run.settings.fees for run in result.components])
    conflicts = int(np.sum(entries & exits) + np.sum(short_entries & short_exits))
    return VbtInputs(index, close, price, entries, exits, short_entries, short_exits,
                     NOTIONAL / (1.0 + fees), fees, conflicts)


def shared_bars(result: PortfolioResult) -> pd.DatetimeIndex:
    """The bars every component has (vectorbt's rows are one index for all columns)."""
    index = result.components[0].component.candles.frame.index
    if any(not run.component.candles.frame.index.equals(index) for run in result.components):
        raise SystemExit("the comparison needs every component on the same bars")
    return index


def _component_inputs(frame: pd.DataFrame, signals: Signals, settings: SimSettings,
                      n: int) -> tuple[np.ndarray[Any, Any], ...]:
    """One component's (close, price, entry, exit, short entry, short exit) columns."""
    rules = rule_matrix(signals.rules, n)
    opens, closes = frame["open"].to_numpy(), frame["close"].to_numpy()
    close = np.append(closes, closes[-1])
    rows = np.zeros((4, n + 1), dtype=np.bool_)
    if settings.fill == "close":
        rows[:, :n] = rules
        rows[[0, 2], n - 1] = False  # no entry on the last bar
        price = close
    else:
        rows[:, 1:n] = rules[:, : n - 1]
        price = np.append(opens, closes[-1])
    rows[[1, 3], n] = True
    return close, price, rows[0], rows[1], rows[2], rows[3]


def run_vectorbt(inputs: VbtInputs, metrics: bool = False) -> Any:
    """``Portfolio.from_signals`` on one group sharing its cash: fixed value per entry,
    an opposite entry reverses (peak's flip), both entries on one bar cancel (peak's rule),
    no accumulation. Returns the portfolio, or with ``metrics`` its final value, total
    return, Sharpe and max drawdown."""
    pf = vectorbt_module().Portfolio.from_signals(
        pd.DataFrame(inputs.close, index=inputs.index), inputs.entries, inputs.exits,
        inputs.short_entries, inputs.short_exits, size=inputs.value, size_type="value",
        price=inputs.price, fees=inputs.fees, slippage=0.0, init_cash=CAPITAL,
        group_by=True, cash_sharing=True, accumulate=False, upon_dir_conflict="ignore",
        upon_opposite_entry="reverse", freq="1h")
    if not metrics:
        return pf
    return pf.final_value(), pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown()


def relative(mine: float, theirs: float) -> float:
    return abs(mine - theirs) / abs(theirs)


@dataclass(frozen=True)
class Agreement:
    """peak against vectorbt on one matched run."""

    final: float  # relative difference of final equity
    profit: float  # of final equity minus capital
    worst_bar: float  # the largest relative difference of the equity at a bar's close
    trades: tuple[int, int]  # closed trades: peak, vectorbt
    conflicts: int
    reduced: int  # peak entries cut (sleeve or cash cap): must be 0 for the match

    @property
    def holds(self) -> bool:
        return self.final <= TOLERANCE and self.reduced == 0


def agreement(result: PortfolioResult, inputs: VbtInputs, pf: Any) -> Agreement:
    """Final equity, profit, the equity at every bar (peak's clock point after bar k's close
    is vectorbt's row k; the last bar is compared after the end-of-data close) and trades."""
    ours = result.sim.equity
    theirs = np.asarray(pf.value(), dtype=np.float64)
    n = len(ours) - 1
    worst = float(np.max(np.abs(ours[1:n] - theirs[: n - 1]) / np.abs(theirs[: n - 1])))
    final = float(pf.final_value())
    trades = (len(result.sim.trades["slot"]), int(pf.trades.closed.count()))
    reduced = int(np.count_nonzero(result.sim.trades["reduced"]))
    return Agreement(relative(float(ours[-1]), final),
                     relative(float(ours[-1]) - CAPITAL, final - CAPITAL), worst, trades,
                     inputs.conflicts, reduced)


def slots_of(result: PortfolioResult) -> list[Slot]:
    """``result``'s components as the slots ``run_portfolio`` gave the clock."""
    markets = sorted({c.config.market.symbol for c in result.plan.components})
    return [portfolio_run._slot(r.component, r.signals, r.settings,
                                markets.index(r.component.config.market.symbol))
            for r in result.components]


def clock_only(result: PortfolioResult) -> Callable[[], None]:
    """The clock alone on ``result``'s slots, as ``run_portfolio`` builds them."""
    plan, slots = result.plan, slots_of(result)
    rebalance = portfolio_run._rebalance(plan)

    def run() -> None:
        driver = SlotsDriver(slots, plan.capital, limits=result.limits, rebalance=rebalance)
        driver.run(0, driver.points)
        driver.result()
    return run


def vectorbt_module() -> Any:
    """vectorbt, imported by name (it is not a dependency of the project: no stubs)."""
    return importlib.import_module("vectorbt")


def has_vectorbt() -> bool:
    try:
        vectorbt_module()
    except ImportError:
        return False
    return True


COMPARE_HEAD = ["| fill | bars per component | peak `run_portfolio` (ms) | peak clock only (ms) | "
                "vectorbt `from_signals` (ms) | vectorbt + 3 metrics (ms) | "
                "clock: vectorbt / peak | end to end: vectorbt / peak | "
                "closed trades peak / vectorbt | final equity rel. diff | profit rel. diff | "
                "worst bar rel. diff |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]


def compare(plan: PortfolioPlan, fill: str, repeat: int) -> tuple[str, Agreement]:
    """One matched run of ``plan`` in peak and in vectorbt: the table row, the agreement."""
    plan = replace(plan, capital=CAPITAL)
    adjust = matched(fill)
    ours = timed(lambda: run_portfolio(plan, adjust=adjust), repeat)
    result = ours.last
    clock = timed(clock_only(result), repeat)
    inputs = vectorbt_inputs(result)
    theirs = timed(lambda: run_vectorbt(inputs), repeat)
    theirs_metrics = timed(lambda: run_vectorbt(inputs, metrics=True), repeat)
    agreed = agreement(result, inputs, theirs.last)
    ms = [t.median * 1e3 for t in (ours, clock, theirs, theirs_metrics)]
    cells = [f"`{fill}`", f"{result.plan.components[0].candles.bars:,}",
             *(f"{t:.1f}" for t in ms), f"{ms[2] / ms[1]:.1f}x", f"{ms[3] / ms[0]:.1f}x",
             f"{agreed.trades[0]:,} / {agreed.trades[1]:,}", f"{agreed.final:.1e}",
             f"{agreed.profit:.1e}", f"{agreed.worst_bar:.1e}"]
    return "| " + " | ".join(cells) + " |", agreed


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Measured:
    """One ``--bars`` size: both tables' rows, and the first ``run_portfolio`` call's time."""

    speeds: list[Speed]
    compared: list[tuple[str, Agreement]]  # a row and its agreement per fill

    @property
    def first(self) -> float:
        return self.speeds[0].first


def measure(bars: int, repeat: int, vectorbt: bool) -> Measured:
    """Both tables' rows at ``bars`` per market (a scratch project of its own); raises
    SystemExit when peak and vectorbt disagree beyond ``TOLERANCE`` or an entry was cut."""
    with scratch_project(bars) as root:
        plan = resolved(root)
        speeds = [speed("3 components", plan, repeat),
                  speed(f"3 components, risk `{RISK}`", resolved(root, RISK), repeat)]
        compared = [compare(plan, fill, repeat) for fill in FILLS] if vectorbt else []
    for (_, agreed), fill in zip(compared, FILLS, strict=False):
        if not agreed.holds:
            raise SystemExit(f"peak and vectorbt disagree at {bars:,} bars, fill {fill}: "
                             f"{agreed}")
    return Measured(speeds, compared)


def profile(bars: int, repeat: int) -> None:
    """Where one warm ``run_portfolio`` spends its time, in CPU time of this thread (so
    other processes' load matters less): cProfile's top functions, then each stage alone."""
    with scratch_project(bars) as root:
        plan = resolved(root)
        result = run_portfolio(plan)
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        result = run_portfolio(plan)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(20)
        print(f"cProfile of run_portfolio at {bars:,} bars per component (CPU time):")
        print(out.getvalue())
        print(f"stages alone, CPU ms, median of {repeat}:")
        for name, ms in stage_costs(result, repeat).items():
            print(f"  {name}: {ms:.1f}")


def stage_costs(result: PortfolioResult, repeat: int) -> dict[str, float]:
    """Median CPU ms of each stage of ``run_portfolio``, fed what the run had: the signals,
    the clock's set-up (``build_clock`` alone, then the whole ``SlotsDriver``), its jitted
    loop, its result, the metrics."""
    slots, plan = slots_of(result), result.plan
    times = [np.asarray(slot.times, dtype=np.float64) for slot in slots]
    costs: dict[str, list[float]] = {}
    for _ in range(repeat + 1):  # the first round is not counted
        marks = [time.thread_time()]
        for run in result.components:
            evaluate(run.component.config, run.component.candles.frame, run.component.params)
        marks.append(time.thread_time())
        build_clock(times, [slot.timeframe_seconds for slot in slots])
        marks.append(time.thread_time())
        driver = SlotsDriver(slots, plan.capital, limits=result.limits,
                             rebalance=portfolio_run._rebalance(plan))
        marks.append(time.thread_time())
        driver.run(0, driver.points)
        marks.append(time.thread_time())
        driver.result()
        marks.append(time.thread_time())
        portfolio_run.portfolio_metrics(result)
        marks.append(time.thread_time())
        for name, cost in zip(STAGE_NAMES, np.diff(marks), strict=True):
            costs.setdefault(name, []).append(float(cost))
    return {name: statistics.median(c[1:]) * 1e3 for name, c in costs.items()}


STAGE_NAMES = ("signals (evaluate, every component)", "clock: build_clock alone",
               "clock: SlotsDriver set-up (build_clock again, padding, rules, state)",
               "clock: run_clock (the jitted loop)", "clock: result", "metrics")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true",
                    help="profile one warm run_portfolio at the first --bars instead")
    args = ap.parse_args()
    import numba

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}, numba {numba.__version__}; "
          f"load {os.getloadavg()[0]:.2f}\n")
    if args.profile:
        profile(args.bars[0], args.repeat)
        return
    vectorbt = has_vectorbt()
    runs = [measure(bars, args.repeat, vectorbt) for bars in args.bars]
    print("\n".join([*SPEED_HEAD, *(s.row() for run in runs for s in run.speeds)]))
    print(f"\nfirst run_portfolio call of the process (numba's cache loaded): "
          f"{runs[0].first:.2f} s")
    if vectorbt:
        print(f"\nvectorbt {vectorbt_module().__version__}, same components, semantics matched:\n")
        compared = [c for run in runs for c in run.compared]
        print("\n".join([*COMPARE_HEAD, *(row for row, _ in compared)]))
        print("\nbars with an entry and an exit of one side (which vectorbt resolves "
              f"otherwise): {sum(agreed.conflicts for _, agreed in compared)}")
    else:
        print("\nvectorbt is not importable here: comparison skipped "
              "(see benchmarks/README.md for its own venv)")
    print(f"\nload at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
