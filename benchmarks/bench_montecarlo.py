"""Monte-Carlo resampling speed: 10,000 resamples of a 1,000-trade backtest, per method.

Times ``peakdsl.robustness.montecarlo`` end to end as ``peak robustness`` calls it in process
(every chunk drawn, each run's total return, max drawdown and Sharpe, the fan chart's
percentile bands, then the ``mc_*`` figures): the three trade methods on 1,000 random trade
returns, the circular block bootstrap on 1,000 and on 52,560 bar returns (six years of 1h
bars). For the trade bootstrap it also times the two stages alone — drawing the indices (one
seeded numpy stream per run) and the numba kernel on drawn indices — and checks that ten
chunks computed in reverse order and combined give the in-process result byte for byte.

Each: median and best of ``--repeat`` warm runs, after one call that loads numba's cache.

    python benchmarks/bench_montecarlo.py [--runs 10000] [--trades 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from peakdsl.robustness import montecarlo as mc
from peakdsl.robustness.bootstrap import draw_runs
from peakdsl.robustness.paths import run_paths
from peakdsl.robustness.summary import Distribution, fan_steps

try:
    from machine_info import cpu_name
except ImportError:  # run from elsewhere
    def cpu_name() -> str:
        return "unknown CPU"

AIM_SECONDS = 2.0  # issue 9, item 6: 10,000 trade resamples of 1,000 trades
SEED = 7
BARS = 52_560  # six years of 1h bars


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """(first call, median, best) wall seconds; the first call is not among the repeats."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), min(times)


def end_to_end(job: mc.Job) -> dict[str, float | None]:
    """What ``peak robustness`` does per method in process: runs, fan, figures."""
    return mc.run(job).metrics()


def same(a: Distribution, b: Distribution) -> bool:
    fields = ("total_return", "max_drawdown", "sharpe")
    return all(getattr(a, f).tobytes() == getattr(b, f).tobytes() for f in fields) \
        and a.fan.equity.tobytes() == b.fan.equity.tobytes()


def check_chunks(job: mc.Job) -> None:
    """Ten chunks, computed last first, combine to the in-process bytes (else exit 1)."""
    bounds = mc.chunk_bounds(job.runs, max(1, job.runs // 10))
    chunks = [mc.compute_chunk(job, lo, hi) for lo, hi in reversed(bounds)]
    if not same(mc.combine(job, chunks), mc.run(job)):
        raise SystemExit("chunked and in-process results differ")


def stages(job: mc.Job, repeat: int) -> list[tuple[str, float, float]]:
    """The trade bootstrap's two stages alone: drawing indices, the kernel on them."""
    index = draw_runs(job.method, job.seed, 0, job.runs, job.steps)
    steps = fan_steps(job.steps, mc.FAN_POINTS)
    paths = np.empty((min(job.runs, mc.FAN_RUNS), steps.shape[0]))
    out = [np.empty(job.runs) for _ in range(3)]
    draw = timed(lambda: draw_runs(job.method, job.seed, 0, job.runs, job.steps), repeat)
    kernel = timed(lambda: run_paths(job.returns, index, job.periods_per_year, steps, paths,
                                     *out), repeat)
    return [("  of which: drawing the indices", *draw[1:]),
            ("  of which: the numba kernel (return, drawdown, Sharpe, paths)", *kernel[1:])]


def row(label: str, shape: str, median: float, best: float, aim: str = "",
        met: str = "") -> str:
    return f"| {label} | {shape} | {median:.3f} | {best:.3f} | {aim} | {met} |"


def measure(runs: int, trades: int, repeat: int) -> list[str]:
    rng = np.random.default_rng(SEED)
    trade_returns = rng.normal(0.002, 0.02, trades)
    bar_returns = rng.normal(0.00002, 0.006, BARS)
    jobs = [("`reshuffle`", mc.make_job("reshuffle", trade_returns, runs=runs, seed=SEED,
                                        periods_per_year=250)),
            ("`bootstrap` (the aim)", mc.make_job("bootstrap", trade_returns, runs=runs,
                                                  seed=SEED, periods_per_year=250)),
            ("`skip` 10 %", mc.make_job("skip", trade_returns, runs=runs, seed=SEED,
                                        periods_per_year=250, share=0.1)),
            ("`block`, default block", mc.make_job("block", trade_returns, runs=runs,
                                                   seed=SEED, periods_per_year=8760)),
            ("`block`, default block", mc.make_job("block", bar_returns, runs=runs // 10,
                                                   seed=SEED, periods_per_year=8760))]
    start = time.perf_counter()
    end_to_end(jobs[0][1])
    first = time.perf_counter() - start
    check_chunks(jobs[1][1])
    out = ["| method | runs × steps | median (s) | best (s) | aim | met |",
           "|---|---:|---:|---:|---:|---|"]
    for label, job in jobs:
        _, median, best = timed(lambda job=job: end_to_end(job), repeat)
        shape = f"{job.runs:,} × {job.steps:,}"
        if job.method == "bootstrap" and runs >= 10_000 and trades >= 1_000:
            out.append(row(label, shape, median, best, f"< {AIM_SECONDS:g} s",
                           "yes" if median < AIM_SECONDS else "no"))
        else:
            out.append(row(label, shape, median, best))
        if job.method == "bootstrap":
            out.extend(row(name, shape, m, b) for name, m, b in stages(job, repeat))
    out.append(f"\nfirst call of the process (numba cache load included): {first:.2f} s; "
               "chunked result identical to in-process: yes")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--trades", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}; load {os.getloadavg()[0]:.2f}\n")
    print("\n".join(measure(args.runs, args.trades, args.repeat)))
    print(f"\nload at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
