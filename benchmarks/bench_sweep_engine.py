"""Sweep-engine throughput: the SMA(fast, slow) grid through ``evaluate_block``.

Grid: fast in 5..50 step 1 x slow in 20..200 step 5 with fast < slow (1,590 combinations),
long-only SMA crossover, 100 % of equity, 0.1 % fees, no slippage, fill next_open, on 100k
synthetic hourly bars (the generator of bench_backtest.py).

Reports, for a cold kernel cache per run (so every run computes its indicators):

* combos/s: median of ``--repeat`` full-grid runs (after one warm-up run that loads the
  numba cache / compiles);
* peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (Linux: KiB) of this process,
  i.e. the high-water resident set including Python, numpy, numba and the candles, and the
  RSS before the sweep for reference;
* a profile of the median run: kernels (indicator calls, cache misses only), the rest of
  the per-combination graph runs (numexpr signals, keys, settings: Python + numexpr), and
  the one parallel numba call per chunk (bar loops + metrics; split by timing the same
  block with metrics only, see ``--split``);
* identity spot check: ``--check N`` random combinations against ``reference_block``
  (``run_backtest`` per combination), max relative difference.

    python benchmarks/bench_sweep_engine.py [--bars 100000] [--repeat 3] [--check 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numba
import numexpr as ne
import numpy as np
import pandas as pd

from peakdsl.api import compile_source
from peakdsl.compile.models import StrategyArtifact
from peakdsl.data.candles import CandleSet
from peakdsl.engine.stats import METRIC_KEYS
from peakdsl.research.engine import (
    DEFAULT_BLOCK_MEMORY,
    BlockTimings,
    KernelCache,
    chunk_size,
    evaluate_block,
)
from peakdsl.research.types import RunConfig, reference_block

ROOT = Path(__file__).resolve().parents[1]
SPEC = """
strategy bench_sweep {
    market BTC/USDT
    timeframe 1h
    param fast: int = 10 in 5..50 step 1
    param slow: int = 30 in 20..200 step 5
    require fast < slow
    let fast_ma = sma(close, fast)
    let slow_ma = sma(close, slow)
    entry long when crossover(fast_ma, slow_ma)
    exit long when crossunder(fast_ma, slow_ma)
    size 100% of equity
    execution {
        fill next_open
        fees 10bps
        slippage 0bps
    }
}
"""


def artifact() -> StrategyArtifact:
    art = compile_source(SPEC, "bench_sweep")
    assert isinstance(art, StrategyArtifact)
    return art


def synthetic(n: int, seed: int = 11) -> CandleSet:
    rng = np.random.default_rng(seed)
    close = 20_000 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.004))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n)))
    index = pd.date_range("2000-01-01", periods=n, freq="h", tz="UTC")
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                          "volume": rng.lognormal(3, 1, n)}, index=index)
    return CandleSet.of(frame, "BTC/USDT", "1h", f"synthetic (seed {seed})", synthetic=True)


def grid() -> np.ndarray:
    rows = [(f, s) for f in range(5, 51) for s in range(20, 201, 5) if f < s]
    return np.array(rows, dtype=np.float64)


def rss_mib() -> float:
    """Current resident set (Linux /proc), MiB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check", type=int, default=20, help="random combos vs reference_block")
    ap.add_argument("--max-memory", type=int, default=DEFAULT_BLOCK_MEMORY)
    args = ap.parse_args()

    art = artifact()
    candles = synthetic(args.bars)
    combos = grid()
    names = ("fast", "slow")
    run = RunConfig()
    print(f"# Sweep engine: {len(combos):,} SMA combos on {args.bars:,} bars\n")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {platform.system()}")
    print(f"- numba {numba.__version__} threads={numba.get_num_threads()} "
          f"(layer {numba.threading_layer() if hasattr(numba, 'threading_layer') else '?'}), "
          f"numexpr {ne.__version__} threads={ne.get_num_threads()}")
    print(f"- chunk size {chunk_size(args.bars, args.max_memory)} combos "
          f"(max_memory {args.max_memory / 2**20:.0f} MiB, cache bound 256 MiB)")

    t0 = time.perf_counter()
    evaluate_block(art, candles, names, combos[:4], run)  # load / compile numba
    warm = time.perf_counter() - t0
    rss_before = rss_mib()
    print(f"- warm-up (numba cache load or compile): {warm:.2f} s; "
          f"RSS before sweeping {rss_before:.0f} MiB")

    runs: list[tuple[float, BlockTimings, dict[str, int]]] = []
    result: dict[str, np.ndarray] = {}
    for _ in range(args.repeat):
        cache = KernelCache()
        timings = BlockTimings()
        t0 = time.perf_counter()
        result = evaluate_block(art, candles, names, combos, run, cache,
                                max_memory=args.max_memory, timings=timings)
        runs.append((time.perf_counter() - t0, timings, cache.stats()))
    runs.sort(key=lambda r: r[0])
    wall, timings, stats = runs[len(runs) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rate = len(combos) / wall
    print("\n| measure | value |\n|---|---:|")
    print(f"| combos/s (median of {args.repeat}) | {rate:,.0f} |")
    print(f"| wall per sweep (s), runs | {wall:.3f} "
          f"({', '.join(f'{r[0]:.3f}' for r in runs)}) |")
    print(f"| peak RSS (ru_maxrss, MiB) | {peak:,.0f} |")
    print(f"| kernel calls (cache misses) / hits | {stats['misses']} / {stats['hits']} |")
    print(f"| cache bytes (MiB) | {stats['bytes'] / 2**20:.0f} |")
    print(f"| finite Sharpe values | {int(np.isfinite(result['sharpe']).sum())} |")

    other = timings.signals - timings.kernels
    print("\n| phase (median run; numba overlaps the next chunk's graph runs) | s | of wall |")
    print("|---|---:|---:|")
    for label, sec in (("kernels (indicator calls, cache misses)", timings.kernels),
                       ("graph runs: numexpr signals, keys, settings (main thread)", other),
                       ("numba bar loops + metrics, submit to done (parallel)",
                        timings.simulate),
                       ("  of which the main thread waited (not overlapped)", timings.waiting)):
        print(f"| {label} | {sec:.3f} | {sec / wall:.0%} |")

    if args.check:
        rng = np.random.default_rng(7)
        pick = combos[rng.choice(len(combos), size=min(args.check, len(combos)),
                                 replace=False)]
        got = evaluate_block(art, candles, names, pick, run)
        t0 = time.perf_counter()
        ref = reference_block(art, candles, names, pick, run)
        ref_rate = len(pick) / (time.perf_counter() - t0)
        worst = 0.0
        for key in METRIC_KEYS:
            a, b = got[key], ref[key]
            assert np.array_equal(np.isnan(a), np.isnan(b)), key
            ok = ~np.isnan(b)
            if ok.any():
                worst = max(worst, float(np.max(np.abs(a[ok] - b[ok])
                                                / np.maximum(1.0, np.abs(b[ok])))))
        print(f"\nidentity: {len(pick)} random combos vs reference_block (run_backtest each, "
              f"{ref_rate:.0f} combos/s): max relative difference {worst:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
