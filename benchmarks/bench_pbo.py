"""The probability of backtest overfitting at the sweep benchmark's scale.

The grid of ``bench_sweep_engine.py`` (1,590 SMA combinations on 100k synthetic hourly bars)
through ``evaluate_block`` with and without the per-block return moments the PBO needs
(``moments=``, 16 blocks), then CSCV on those moments (``probability_of_overfitting``: all
12,870 splits). Reports the median wall time of ``--repeat`` runs of each (cold kernel cache
per run, after a warm-up that loads the numba caches) and the process's peak resident set
(``ru_maxrss``), which must stay under 1 GiB.

    python benchmarks/bench_pbo.py [--bars 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sweep_engine import artifact, grid, synthetic

from peakdsl.research.engine import KernelCache, evaluate_block
from peakdsl.research.pbo import (
    DEFAULT_BLOCKS,
    block_count,
    probability_of_overfitting,
)
from peakdsl.research.types import RunConfig


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    art, candles, combos = artifact(), synthetic(args.bars), grid()
    names, run = ("fast", "slow"), RunConfig()
    blocks = block_count(args.bars, DEFAULT_BLOCKS)
    moments = np.zeros((len(combos), blocks, 3))
    evaluate_block(art, candles, names, combos[:4], run, moments=moments[:4])  # warm-up
    plain = median_seconds(lambda: evaluate_block(art, candles, names, combos, run,
                                                  KernelCache()), args.repeat)
    with_moments = median_seconds(lambda: evaluate_block(art, candles, names, combos, run,
                                                         KernelCache(), moments=moments),
                                  args.repeat)
    result = probability_of_overfitting(moments)  # compiles or loads the CSCV core
    cscv = median_seconds(lambda: probability_of_overfitting(moments), args.repeat)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# PBO: {len(combos):,} combinations × {args.bars:,} bars, {blocks} blocks\n")
    print("| step | median s |\n|---|---|")
    print(f"| evaluate_block, no moments | {plain:.2f} |")
    print(f"| evaluate_block, with moments | {with_moments:.2f} |")
    print(f"| CSCV ({result.splits if result else 0:,} splits) | {cscv:.3f} |")
    print(f"\npeak RSS {peak_mib:.0f} MiB (goal < 1024); PBO "
          f"{'—' if result is None else f'{result.pbo:.3f}'}")
    return 0 if peak_mib < 1024 else 1


if __name__ == "__main__":
    raise SystemExit(main())
