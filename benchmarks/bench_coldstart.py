"""Numba cold start of the engine: the first backtest of every execution variant in a fresh
process, on a fresh install's numba cache and on the cache `scripts/demo` leaves behind.

Variants: `fill next_open | close` × sizing (`size 25% of equity`, `size 1000 USDT`,
`size 0.01 BTC`, `vol_target 20%`) × `end_of_data close | mark` — 16 specs, the SMA crossover
of `specs/strategies/ma_crossover.peak` otherwise, on its synthetic demo market (5,000 bars,
data synthesis included), through `peakdsl.api.backtest` without the registry.

For each variant, each in its own subprocess with its own `NUMBA_CACHE_DIR`:

* **empty cache**: a fresh directory — everything the backtest needs compiles;
* **after demo**: a copy of the directory the demo's backtest filled (`peak backtest
  specs/strategies/ma_crossover.peak --report … --trades …`, the numba work of
  `scripts/demo`), so each variant sees exactly what the demo left, not what another variant
  compiled;
* **second**: a second backtest of the variant in that same process (all warm);
* **compiled after demo**: numba cache files (`*.nbc`, one per compiled signature) the variant
  wrote into the demo's cache, new or rewritten — 0 means the variant ran entirely from the
  on-disk cache (what time remains is imports, numba's own start-up and loading the cached
  machine code).

Run it on a quiet machine and on sources nobody edits meanwhile: numba keys its cache on the
source files' time stamps, so an edit during the run recompiles (and is counted).

    python benchmarks/bench_coldstart.py            # prints a Markdown table
    python benchmarks/bench_coldstart.py --only 4   # the first 4 variants (a quick look)

Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from machine_info import cpu_name

ROOT = Path(__file__).resolve().parents[1]
BASE_SPEC = ROOT / "specs" / "strategies" / "ma_crossover.peak"
FILLS = ("next_open", "close")
SIZES = {"25% of equity": "size 25% of equity", "1000 USDT": "size 1000 USDT",
         "0.01 BTC": "size 0.01 BTC", "vol_target 20%": "vol_target 20%"}
ENDS = ("close", "mark")
PROBE = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from peakdsl import api
t1 = time.perf_counter()
api.backtest(sys.argv[1], root=Path(sys.argv[2]), record=False)
t2 = time.perf_counter()
api.backtest(sys.argv[1], root=Path(sys.argv[2]), record=False)
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""


def variant_spec(name: str, fill: str, size: str, end: str) -> str:
    """The demo strategy with one execution variant (name = file stem)."""
    text = BASE_SPEC.read_text(encoding="utf-8")
    text = text.replace("strategy ma_crossover", f"strategy {name}")
    text = text.replace("size 25% of equity", SIZES[size])
    return text.replace("fill next_open", f"fill {fill}\n        end_of_data {end}")


def environment(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(cache)
    return env


def probe(spec: Path, project: Path, cache: Path) -> list[float]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(spec), str(project)], cwd=ROOT,
                         check=True, text=True, capture_output=True,
                         env=environment(cache)).stdout
    return [float(x) for x in out.split()]


def compiled_files(cache: Path) -> dict[str, int]:
    """The cached compiled signatures under ``cache``: ``*.nbc`` path -> modification time
    (a recompile of a stale entry rewrites the same file name)."""
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*.nbc")}


def run_demo(cache: Path, scratch: Path) -> None:
    """The numba work of scripts/demo: its backtest with the report and the trades CSV."""
    subprocess.run([sys.executable, "-m", "peakdsl.cli", "backtest", str(BASE_SPEC),
                    "--no-record", "--report", str(scratch / "demo.html"), "--trades",
                    str(scratch / "demo.csv")], cwd=ROOT, check=True, capture_output=True,
                   env=environment(cache))


def machine() -> str:
    cpu = cpu_name()
    import numba
    import numpy

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numba {numba.__version__}, numpy {numpy.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, default=0, help="run the first N variants only")
    args = parser.parse_args()
    variants = list(itertools.product(FILLS, SIZES, ENDS))
    if args.only:
        variants = variants[: args.only]
    with tempfile.TemporaryDirectory(prefix="peak-coldstart-") as tmp:
        scratch = Path(tmp)
        project = scratch / "project"
        (project / "specs" / "strategies").mkdir(parents=True)
        demo_cache = scratch / "demo-cache"
        run_demo(demo_cache, scratch)
        print(f"machine: {machine()}\n")
        demo_files = compiled_files(demo_cache)
        print("| fill | size | end_of_data | import (s) | first backtest, empty cache (s) "
              "| first backtest after demo (s) | second backtest (s) | compiled after demo |")
        print("|---|---|---|---:|---:|---:|---:|---:|")
        for i, (fill, size, end) in enumerate(variants):
            spec = project / "specs" / "strategies" / f"variant_{i}.peak"
            spec.write_text(variant_spec(spec.stem, fill, size, end), encoding="utf-8")
            empty = scratch / f"empty-{i}"
            imp, cold, _ = probe(spec, project, empty)
            warm_cache = scratch / f"warm-{i}"
            shutil.copytree(demo_cache, warm_cache)
            _, after_demo, second = probe(spec, project, warm_cache)
            after = compiled_files(warm_cache)
            added = sum(demo_files.get(path) != stamp for path, stamp in after.items())
            shutil.rmtree(empty, ignore_errors=True)
            shutil.rmtree(warm_cache, ignore_errors=True)
            print(f"| `{fill}` | `{size}` | `{end}` | {imp:.2f} | {cold:.2f} | "
                  f"{after_demo:.2f} | {second:.3f} | {added} |", flush=True)


if __name__ == "__main__":
    main()
