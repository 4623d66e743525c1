"""peak against a fused numba reference, side by side in one process (issue 8, item 6).

The yardstick is ``fused_reference.py``: the benchmark strategy (SMA(fast, slow) crossover,
long only) as one hand-written numba loop computing the same metrics as peak. One run of
this script measures, on the same synthetic candles (``bench_sweep_engine.synthetic``):

(a) a single warm backtest at each ``--bars``: peak from the compiled artifact to the
    metrics dict (``evaluate`` → ``sim_settings`` → ``simulate`` → ``compute_metrics``,
    what ``bench_backtest.py`` times) against ``fused_reference.run``, for the two benchmark
    specs: ``bench_backtest.py``'s (SMA(10, 30), fill close, 1 BTC, capital 1e9) and
    ``bench_sweep_engine.py``'s at its defaults (SMA(10, 30), fill next_open, 100 % of
    equity, capital 10,000); both 10 bps fees, no slippage;
(b) the sweep of ``bench_sweep_engine.py``: its 1,590-combination grid × ``--sweep-bars``
    through ``evaluate_block`` with a cold ``KernelCache`` per run (every indicator
    computed), against ``fused_reference.sweep`` (``prange`` over the same pairs); combos/s
    and the high-water RSS of the peak sweeps (``VmHWM``, reset before them where the kernel
    allows, else ``ru_maxrss`` of the whole process).

Each measurement alternates peak and the reference ``--repeat`` times (after two warm-up
runs of each) and reports the medians, their ratio and the range of the per-run ratios — the
machine's noise, since both sides share it. The machine may be busy with other work: each
measurement prints the 1-minute load average before and after it (it moves every 5 s and
counts this benchmark's own threads) and the cores other processes kept busy meanwhile
(from /proc: all busy CPU time, hypervisor steal included, minus this process's, over the
measurement and one idle second before it), which is the better noise figure. A ratio
measured under load is less certain than one measured idle.

Before timing, ``--check`` random combinations of the sweep grid are compared with
``evaluate_block`` and ``--check-backtests`` per spec with ``run_backtest``, on the same
candles with gapped opens (``gapped``): every metric must agree to ``TOLERANCE`` relative
(an undefined metric must be undefined on both sides), else the script says so and exits 1.

    python benchmarks/bench_fused.py [--repeat 5] [--bars 100000 1000000]
                                     [--sweep-bars 100000] [--check 300] [--check-backtests 20]
    python benchmarks/bench_fused.py --profile     # where peak's time goes, CPU time

``--profile`` times instead, in CPU time of the calling thread (so other processes' load
matters less), each stage of peak's single backtest fed the previous stage's output, at
``--bars`` and at 100 bars (the fixed cost per call), next to the reference and its metric
passes; and one sweep's ``BlockTimings``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bench_backtest
import bench_sweep_engine
import fused_reference as fused
import numba
import numexpr as ne
import numpy as np
from machine_info import cpu_name

from peakdsl.backtest import run_backtest, sim_settings
from peakdsl.compile.models import StrategyArtifact
from peakdsl.data.candles import CandleSet
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.kernels import KERNELS
from peakdsl.engine.program import columns_of
from peakdsl.engine.simulate import simulate
from peakdsl.engine.stats import compute_metrics
from peakdsl.metrics import CORE_METRICS
from peakdsl.research.engine import BlockTimings, KernelCache, evaluate_block
from peakdsl.research.types import RunConfig

TOLERANCE = 1e-12  # relative, every metric
NAMES = ("fast", "slow")
DEFAULT_PAIR = (10, 30)
# issue 8, item 6: sweep rate at least this share of the reference's; single backtest at
# most this many times the reference's time
SWEEP_GOAL = 0.5
SINGLE_GOAL = 3.0
NOISE_SAMPLE = 1.0  # seconds of idle sampling of the other processes before each measurement
WARM_UP = 2  # untimed runs of each side before a measurement


@dataclass(frozen=True)
class Case:
    """A benchmark spec, compiled, and the same run as the reference's ``Setup``."""

    label: str
    artifact: StrategyArtifact
    setup: fused.Setup


def cases() -> tuple[Case, Case]:
    """The two benchmark specs: (bench_backtest.py's, bench_sweep_engine.py's). The setup
    literals restate each spec's execution block; ``--check`` proves they mean the same."""
    return (Case("fill close, 1 BTC, capital 1e9 (bench_backtest.py)",
                 bench_backtest.artifact(),
                 fused.Setup(fill_close=True, fixed_qty=True, size=1.0, fees=0.001,
                             slippage=0.0, capital=1e9, bars_per_year=8760.0)),
            Case("fill next_open, 100% of equity, capital 10,000 (bench_sweep_engine.py)",
                 bench_sweep_engine.artifact(),
                 fused.Setup(fill_close=False, fixed_qty=False, size=1.0, fees=0.001,
                             slippage=0.0, capital=10_000.0, bars_per_year=8760.0)))


# ---------------------------------------------------------------- agreement


def relative_difference(mine: float, theirs: float) -> float:
    """|mine − theirs| / |theirs| (absolute where theirs is exactly 0); 0 when both are
    undefined (NaN), infinite when only one is."""
    if math.isnan(mine) or math.isnan(theirs):
        return 0.0 if math.isnan(mine) and math.isnan(theirs) else math.inf
    return abs(mine - theirs) / (abs(theirs) or 1.0)


def worst_difference(mine: Any, theirs: Mapping[str, Any]) -> tuple[float, str]:
    """The largest relative difference between reference rows ``mine`` (``(k, METRICS)``)
    and peak's metrics (one array of ``k`` per name, NaN = undefined), and its metric.
    A metric peak has and the reference lacks is a difference (infinite)."""
    rows = np.asarray(mine, dtype=np.float64).reshape(-1, len(fused.METRICS))
    worst, where = 0.0, ""
    for name, values in theirs.items():
        if name not in fused.METRICS:
            return math.inf, f"{name} (not computed by the reference)"
        column = rows[:, fused.METRICS.index(name)]
        for a, b in zip(column.tolist(), np.asarray(values, dtype=np.float64).tolist(),
                        strict=True):
            diff = relative_difference(a, b)
            if diff > worst or not where:
                worst, where = diff, name
    return worst, where


def as_columns(metrics: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metric dicts (None = undefined) as one float array per metric."""
    return {name: np.array([math.nan if m[name] is None else float(m[name]) for m in metrics])
            for name in metrics[0]}


def random_pairs(grid: Any, count: int, seed: int) -> Any:
    """``count`` distinct rows of ``grid`` (all when it has fewer), reproducibly."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(grid), size=min(count, len(grid)), replace=False)
    return np.asarray(grid)[np.sort(pick)]


def backtest_grid(case: Case) -> Any:
    """Every (fast, slow) of the case's param ranges with fast < slow."""
    space = {p.name: np.arange(p.low, p.high + 0.5, p.step or 1.0)
             for p in case.artifact.config.params}
    return np.array([(f, s) for f in space["fast"] for s in space["slow"] if f < s])


def gapped(n: int, seed: int = 11) -> CandleSet:
    """``bench_sweep_engine.synthetic`` candles with every open moved off the previous close
    by a random gap (high and low widened to hold it). There each open *is* the previous
    close, which would hide a fill at the wrong one of the two prices from the checks."""
    frame = bench_sweep_engine.synthetic(n, seed).frame.copy()
    rng = np.random.default_rng(seed + 1)
    frame["open"] = frame["open"].to_numpy() * np.exp(rng.normal(0.0, 0.003, n))
    frame["high"] = np.maximum(frame["high"], frame["open"])
    frame["low"] = np.minimum(frame["low"], frame["open"])
    return CandleSet.of(frame, "BTC/USDT", "1h", f"synthetic, gapped opens (seed {seed})",
                        synthetic=True)


def check_sweep(case: Case, candles: CandleSet, count: int, seed: int = 7) -> float:
    """Worst relative difference, reference sweep vs ``evaluate_block``, on ``count``
    random combinations of the sweep grid."""
    pairs = random_pairs(bench_sweep_engine.grid(), count, seed)
    theirs = evaluate_block(case.artifact, candles, NAMES, pairs,
                            RunConfig(capital=case.setup.capital))
    f = candles.frame
    mine = fused.sweep(f["open"].to_numpy(), f["close"].to_numpy(), pairs, case.setup)
    return worst_difference(mine, theirs)[0]


def check_backtests(case: Case, candles: CandleSet, count: int, seed: int = 11) -> float:
    """Worst relative difference, reference vs ``run_backtest``, on ``count`` random
    (fast, slow) pairs of the case's param ranges, over the core metrics (the reference
    computes those; a backtest adds buy & hold and trade-duration figures after them)."""
    pairs = random_pairs(backtest_grid(case), count, seed)
    f = candles.frame
    o, c = f["open"].to_numpy(), f["close"].to_numpy()
    theirs = [run_backtest(case.artifact, candles, "", "", dict(zip(NAMES, map(float, p),
                                                                     strict=True)),
                           capital=case.setup.capital).metrics for p in pairs]
    mine = np.array([fused.run(o, c, int(p[0]), int(p[1]), case.setup) for p in pairs])
    core = [{k: v for k, v in t.items() if k in CORE_METRICS} for t in theirs]
    return worst_difference(mine, as_columns(core))[0]


# ---------------------------------------------------------------- timing


def load() -> float:
    """The 1-minute load average (this benchmark's own threads included)."""
    return os.getloadavg()[0]


def cpu_snapshot() -> tuple[float, float, float]:
    """(CPU-seconds every core has been busy, including stolen by the hypervisor; CPU-seconds
    of this process; wall clock), from /proc; NaNs where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:9]]
        with open("/proc/self/stat") as fh:
            mine = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan, math.nan, time.perf_counter()
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy / tick, (int(mine[11]) + int(mine[12])) / tick, time.perf_counter()


def others_cores(before: tuple[float, float, float], after: tuple[float, float, float]
                 ) -> float:
    """Cores other processes kept busy on average between two snapshots: the noise."""
    busy, mine, wall = (b - a for a, b in zip(before, after, strict=True))
    return max(busy - mine, 0.0) / wall


@dataclass
class Duel:
    """Alternating timings of peak and the reference, with the load around them."""

    peak: list[float]
    reference: list[float]
    load_before: float
    load_after: float
    others: float  # cores other processes used meanwhile (average)

    @property
    def ratio(self) -> float:
        """peak's median time over the reference's."""
        return statistics.median(self.peak) / statistics.median(self.reference)

    def spread(self) -> tuple[float, float]:
        """The lowest and highest per-run ratio (how noisy the machine was)."""
        ratios = [p / r for p, r in zip(self.peak, self.reference, strict=True)]
        return min(ratios), max(ratios)


def duel(peak: Callable[[], object], reference: Callable[[], object], repeat: int) -> Duel:
    """Time both ``repeat`` times, alternating, after ``WARM_UP`` untimed runs of each; the
    other processes' load is sampled from ``NOISE_SAMPLE`` idle seconds before to the end."""
    before, snapshot = load(), cpu_snapshot()
    time.sleep(NOISE_SAMPLE)  # a short window alone is below /proc's 10 ms resolution
    for _ in range(WARM_UP):  # after the sleep: an idle core starts slow
        peak()
        reference()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, sink in ((peak, times[0]), (reference, times[1])):
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    return Duel(times[0], times[1], before, load(), others_cores(snapshot, cpu_snapshot()))


def peak_single(case: Case, candles: CandleSet) -> Callable[[], object]:
    """peak's warm single backtest at the default pair, artifact → metrics dict."""
    cfg = case.artifact.config
    params = dict(zip(NAMES, map(float, DEFAULT_PAIR), strict=True))

    def run() -> object:  # ``run_backtest``'s stages, without its result record
        cols = columns_of(candles.frame)
        signals = evaluate(cfg, cols, params)
        settings = sim_settings(cfg, signals.params, signals.warmup, case.setup.capital)
        sim = simulate(cols["open"], cols["high"], cols["low"], cols["close"], signals.rules,
                       settings)
        return compute_metrics(sim, settings, cfg.timeframe_seconds, close=cols["close"])
    return run


def fused_single(case: Case, candles: CandleSet) -> Callable[[], object]:
    def run() -> object:  # the columns read from the frame as peak reads them
        cols = columns_of(candles.frame)
        return fused.run(cols["open"], cols["close"], *DEFAULT_PAIR, case.setup)
    return run


def peak_sweep(case: Case, candles: CandleSet, grid: Any) -> Callable[[], object]:
    """The whole grid through ``evaluate_block``, a cold kernel cache each time."""
    def run() -> object:
        return evaluate_block(case.artifact, candles, NAMES, grid,
                              RunConfig(capital=case.setup.capital), KernelCache())
    return run


def fused_sweep(case: Case, candles: CandleSet, grid: Any) -> Callable[[], object]:
    frame = candles.frame

    def run() -> object:
        return fused.sweep(frame["open"].to_numpy(), frame["close"].to_numpy(), grid,
                           case.setup)
    return run


# ---------------------------------------------------------------- profile


def cpu_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU time of the calling thread (ms): robust to other processes' load."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return statistics.median(times) * 1e3


def phases(case: Case, candles: CandleSet) -> dict[str, Callable[[], object]]:
    """peak's single backtest cut into its stages (each fed the previous stage's output),
    the indicator kernels the signals call, and the reference's run and its metric passes."""
    cfg, frame = case.artifact.config, candles.frame
    params = dict(zip(NAMES, map(float, DEFAULT_PAIR), strict=True))
    signals = evaluate(cfg, frame, params)
    settings = sim_settings(cfg, signals.params, signals.warmup, case.setup.capital)
    o, h, lo, close = (frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    sim = simulate(o, h, lo, close, signals.rules, settings)
    n = len(frame)
    returns = np.empty(n)
    fused.fused_backtest(o, close, *DEFAULT_PAIR, case.setup.fill_close,
                         case.setup.fixed_qty, case.setup.size, case.setup.fees,
                         case.setup.slippage, case.setup.capital, case.setup.bars_per_year,
                         returns, np.empty((fused.TRADE_ROWS, n + 1)),
                         np.empty(len(fused.METRICS)))
    return {
        "peak: evaluate (signals)": lambda: evaluate(cfg, frame, params),
        "  of which the sma kernels": lambda: [KERNELS["sma"](close, w) for w in DEFAULT_PAIR],
        "peak: simulate": lambda: simulate(o, h, lo, close, signals.rules, settings),
        "peak: compute_metrics": lambda: compute_metrics(sim, settings, cfg.timeframe_seconds),
        "peak: the whole backtest": peak_single(case, candles),
        "reference: the whole backtest": fused_single(case, candles),
        "  of which the metric passes": lambda: [fused.pairwise(returns, n, kind, 0.0) for kind
                                                 in (fused.PLAIN, fused.DEVIATION,
                                                     fused.DOWNSIDE)],
    }


def profile_single(case: Case, bars: int, repeat: int) -> None:
    """CPU ms of each stage at ``bars`` bars and at 100 bars (≈ the fixed cost per call:
    conversions, planning, Python; the rest grows with the bars)."""
    big = phases(case, bench_sweep_engine.synthetic(bars))
    tiny = phases(case, bench_sweep_engine.synthetic(100))
    print(f"\n| {bars:,} bars, {case.label} | CPU ms | at 100 bars (fixed cost) |")
    print("|---|---:|---:|")
    for name, fn in big.items():
        print(f"| {name} | {cpu_ms(fn, repeat):.3f} | {cpu_ms(tiny[name], repeat):.3f} |")


def profile_sweep(case: Case, bars: int) -> None:
    """Where one peak sweep of the grid spends its time (``BlockTimings``, wall), and the
    CPU time of all threads for peak and for the reference."""
    candles, grid = bench_sweep_engine.synthetic(bars), bench_sweep_engine.grid()
    peak_sweep(case, candles, grid[:4])()
    fused_sweep(case, candles, grid[:4])()
    timings = BlockTimings()
    cpu, main, wall = time.process_time(), time.thread_time(), time.perf_counter()
    evaluate_block(case.artifact, candles, NAMES, grid, RunConfig(capital=case.setup.capital),
                   KernelCache(), timings=timings)
    cpu, main = time.process_time() - cpu, time.thread_time() - main
    wall = time.perf_counter() - wall
    ref_cpu, ref_wall = time.process_time(), time.perf_counter()
    fused_sweep(case, candles, grid)()
    ref_cpu, ref_wall = time.process_time() - ref_cpu, time.perf_counter() - ref_wall
    print(f"\n| sweep {len(grid):,} × {bars:,} | seconds |\n|---|---:|")
    for label, sec in (("peak wall", wall), ("peak CPU, all threads", cpu),
                       ("  main thread CPU (graph runs: kernels, rule operands, settings)",
                        main),
                       ("  numba threads CPU (rules, bar loops, metrics)", cpu - main),
                       ("  main thread wall in graph runs", timings.signals),
                       ("    of which indicator kernels", timings.kernels),
                       ("  numba call wall, submit to done", timings.simulate),
                       ("    of which the main thread waited", timings.waiting),
                       ("reference wall", ref_wall), ("reference CPU, all threads", ref_cpu)):
        print(f"| {label} | {sec:.3f} |")


# ---------------------------------------------------------------- memory


def _status_kib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water RSS mark to the current RSS (Linux ≥ 4.0); False when
    not possible (then the process-wide ``ru_maxrss`` is all there is)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def peak_rss_mib(was_reset: bool) -> tuple[float, str]:
    """The high-water RSS since the reset (or of the whole process), MiB, and which."""
    hwm = _status_kib("VmHWM") if was_reset else None
    if hwm is not None:
        return hwm / 1024, "VmHWM since the sweeps began"
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "ru_maxrss, whole process")


# ---------------------------------------------------------------- report


def machine() -> str:
    return (f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, numba {numba.__version__} "
            f"({numba.get_num_threads()} threads), numexpr {ne.__version__}, "
            f"{platform.system()} {platform.release()}")


def verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def single_row(label: str, bars: int, d: Duel) -> str:
    low, high = d.spread()
    peak_ms = statistics.median(d.peak) * 1e3
    ref_ms = statistics.median(d.reference) * 1e3
    return (f"| {bars:,} | {label} | {peak_ms:.2f} | {ref_ms:.2f} | {d.ratio:.2f}× "
            f"| {low:.2f}–{high:.2f} | {d.load_before:.2f} → {d.load_after:.2f} "
            f"| {d.others:.2f} | ≤ {SINGLE_GOAL:g}×: {verdict(d.ratio <= SINGLE_GOAL)} |")


def sweep_row(bars: int, combos: int, d: Duel, rss: tuple[float, str]) -> str:
    peak_rate = combos / statistics.median(d.peak)
    ref_rate = combos / statistics.median(d.reference)
    share = peak_rate / ref_rate
    low, high = d.spread()
    return (f"| {combos:,} × {bars:,} | {peak_rate:,.0f} | {ref_rate:,.0f} | {share:.2f} "
            f"| {1 / high:.2f}–{1 / low:.2f} | {rss[0]:,.0f} ({rss[1]}) "
            f"| {d.load_before:.2f} → {d.load_after:.2f} | {d.others:.2f} "
            f"| ≥ {SWEEP_GOAL:g}: {verdict(share >= SWEEP_GOAL)} |")


def run_checks(args: argparse.Namespace, pair: tuple[Case, Case]) -> bool:
    """The agreement checks; prints one line each, False if any exceeds ``TOLERANCE``."""
    ok = True
    small = gapped(min(args.bars))
    sweep_candles = gapped(args.sweep_bars)
    results = []
    if args.check:
        results.append((f"{args.check} random grid combos vs evaluate_block, "
                        f"{args.sweep_bars:,} bars", check_sweep(pair[1], sweep_candles,
                                                                 args.check)))
    if args.check_backtests:
        for case in pair:
            results.append((f"{args.check_backtests} random pairs vs run_backtest, "
                            f"{min(args.bars):,} bars, {case.label}",
                            check_backtests(case, small, args.check_backtests)))
    for label, worst in results:
        good = worst <= TOLERANCE
        ok = ok and good
        print(f"- agreement: {label}: max relative difference {worst:.1e} "
              f"({'ok' if good else f'ABOVE {TOLERANCE:g}'})")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bars", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--sweep-bars", type=int, default=100_000)
    ap.add_argument("--check", type=int, default=300,
                    help="random sweep combos compared with evaluate_block (0: none)")
    ap.add_argument("--check-backtests", type=int, default=20,
                    help="random pairs per spec compared with run_backtest (0: none)")
    ap.add_argument("--no-sweep", action="store_true", help="skip measurement (b)")
    ap.add_argument("--profile", action="store_true",
                    help="only profile: peak's stages against the reference (CPU time)")
    args = ap.parse_args()
    if args.profile:
        print(f"- machine: {machine()}; load average (1 min) {load():.2f}")
        for bars in args.bars:
            for case in cases():
                profile_single(case, bars, max(args.repeat, 9))
        profile_sweep(cases()[1], args.sweep_bars)
        print(f"\n- load average (1 min) at end: {load():.2f}")
        return 0
    pair = cases()
    print(f"# peak vs the fused numba reference ({dt.date.today().isoformat()})\n")
    print(f"- machine: {machine()}")
    print(f"- load average (1 min) at start: {load():.2f}")
    if not run_checks(args, pair):
        print("\nthe reference and peak disagree: no timings", file=sys.stderr)
        return 1

    print("\n| bars | spec, SMA(10, 30) | peak (ms) | reference (ms) | peak / reference "
          "| per-run ratios | load (1 min) | other processes (cores) | goal |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for bars in args.bars:
        candles = bench_sweep_engine.synthetic(bars)
        for case in pair:
            d = duel(peak_single(case, candles), fused_single(case, candles), args.repeat)
            print(single_row(case.label, bars, d), flush=True)

    if not args.no_sweep:
        candles = bench_sweep_engine.synthetic(args.sweep_bars)
        grid = bench_sweep_engine.grid()
        print("\n| sweep | peak combos/s | reference combos/s | peak / reference "
              "| per-run shares | peak RSS (MiB) | load (1 min) | other processes (cores) "
              "| goal |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        was_reset = reset_peak_rss()
        d = duel(peak_sweep(pair[1], candles, grid), fused_sweep(pair[1], candles, grid),
                 args.repeat)
        print(sweep_row(args.sweep_bars, len(grid), d, peak_rss_mib(was_reset)))
    print(f"\n- load average (1 min) at end: {load():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
