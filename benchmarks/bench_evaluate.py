"""Signal evaluation speed: peak's compiled evaluator vs. peers in the same process.

Peers: the slow reference interpreter (plain numpy/pandas over the AST) and a hand-written
pandas version of the same SMA-crossover signals (what a researcher would write by hand).
Prints a Markdown table of median wall times and ratios.

    python benchmarks/bench_evaluate.py [--bars 100000 1000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from peakdsl import api
from peakdsl.compile.models import StrategyArtifact
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.reference import reference_evaluate
from peakdsl.lang.project import load_project

ROOT = Path(__file__).resolve().parents[1]


def synthetic(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.01))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.lognormal(3, 1, n)})


def pandas_crossover(frame: pd.DataFrame, fast: int, slow: int) -> tuple[pd.Series, pd.Series]:
    f = frame["close"].rolling(fast).mean()
    s = frame["close"].rolling(slow).mean()
    entry = (f > s) & (f.shift(1) <= s.shift(1))
    exit_ = (f < s) & (f.shift(1) >= s.shift(1))
    return entry, exit_


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm (numba compilation, caches)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    cpu = "unknown CPU"
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import os

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, pandas {pd.__version__}, {platform.system()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    spec_path = ROOT / "specs" / "strategies" / "ma_crossover.peak"
    artifact = api.compile_spec(str(spec_path), ROOT)
    assert isinstance(artifact, StrategyArtifact)
    cfg = artifact.config
    checked = load_project([str(spec_path)], ROOT).specs["ma_crossover"]
    library = []
    for path in sorted((ROOT / "specs" / "strategies").glob("*.peak")):
        art = api.compile_spec(str(path), ROOT)
        assert isinstance(art, StrategyArtifact)
        library.append(art.config)
    print(f"machine: {machine()}\n")
    print("| bars | task | peak (ms) | peer | peer (ms) | peer / peak |")
    print("|---:|---|---:|---|---:|---:|")
    for n in args.bars:
        frame = synthetic(n)
        few = max(1, args.repeat // 3)
        peak_t = median_time(lambda f=frame: evaluate(cfg, f), args.repeat)
        pandas_t = median_time(lambda f=frame: pandas_crossover(f, 20, 50), args.repeat)
        ref_t = median_time(lambda f=frame: reference_evaluate(checked, f), few)
        lib_t = median_time(lambda f=frame: [evaluate(c, f) for c in library], few)
        rows = [("SMA(20/50) crossover signals", peak_t, "hand-written pandas", pandas_t),
                ("SMA(20/50) crossover signals", peak_t, "reference interpreter", ref_t)]
        for task, a, peer, b in rows:
            print(f"| {n:,} | {task} | {a * 1e3:.2f} | {peer} | {b * 1e3:.2f} | {b / a:.2f}x |")
        print(f"| {n:,} | all {len(library)} library strategies | {lib_t * 1e3:.1f} | — | — | — |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
