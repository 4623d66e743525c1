"""Numba cold start of the engine: first backtest in a fresh process, with and without the
on-disk compilation cache (`cache=True` writes it next to the modules, in __pycache__).

    python benchmarks/bench_coldstart.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import time
t0 = time.perf_counter()
from peakdsl import api
t1 = time.perf_counter()
api.backtest("specs/strategies/ma_crossover.peak", record=False)
t2 = time.perf_counter()
api.backtest("specs/strategies/ma_crossover.peak", record=False)
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""


def run(env_cache: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, check=True, text=True,
                         capture_output=True, env={"NUMBA_CACHE_DIR": env_cache,
                                                   "PATH": "/usr/bin:/bin"}).stdout
    return [float(x) for x in out.split()]


def main() -> None:
    cache = tempfile.mkdtemp(prefix="peak-numba-")
    try:
        cold = run(cache)
        warm = run(cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print("| process | import (s) | first backtest (s) | second backtest (s) |")
    print("|---|---:|---:|---:|")
    print("| empty numba cache | {:.3f} | {:.3f} | {:.3f} |".format(*cold))
    print("| cache written by the previous process | {:.3f} | {:.3f} | {:.3f} |".format(*warm))


if __name__ == "__main__":
    main()
