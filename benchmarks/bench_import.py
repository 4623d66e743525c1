"""Benchmark importing candles: 1M valid bars from Parquet and CSV, validated and cached.

Generates a 1,000,000-bar 1m OHLCV file in each format in a temporary directory (never in
the repository), then times, in this process and as the median of ``--runs`` runs after one
discarded warm-up run:

* **import**: :func:`peakdsl.data.importer.import_file` (read, every row check, sort,
  de-duplicate, gaps, fingerprint) plus :func:`peakdsl.data.cache.store` into a temporary
  cache: what ``peak data import`` does after start-up;
* **floor**: ``pyarrow.parquet.read_table`` + ``to_pandas`` of the same file (CSV:
  ``pyarrow.csv.read_csv`` + ``to_pandas``): reading the bytes, no checks, nothing written.

    python benchmarks/bench_import.py                 # print the Markdown table
    python benchmarks/bench_import.py --runs 7 --bars 1000000

Run from the repository root with the project's virtualenv active. Timings are never test
assertions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine_info import cpu_name  # noqa: E402

from peakdsl.data.cache import Meta, store  # noqa: E402
from peakdsl.data.importer import import_file  # noqa: E402

AIM_PARQUET = 1.0  # seconds for 1M bars from Parquet, the goal


def make_files(folder: Path, bars: int) -> dict[str, Path]:
    """A valid random-walk 1m series written as Parquet and CSV (the same rows)."""
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, bars)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.random(bars) * 1e-3)
    low = np.minimum(open_, close) * (1 - rng.random(bars) * 1e-3)
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2020-01-01", periods=bars, freq="1min", tz="UTC"),
        "open": open_, "high": high, "low": low, "close": close,
        "volume": rng.random(bars) * 10})
    paths = {"parquet": folder / "bars.parquet", "csv": folder / "bars.csv"}
    frame.to_parquet(paths["parquet"], index=False)
    frame.to_csv(paths["csv"], index=False)
    return paths


def import_once(path: Path, cache: Path) -> None:
    """Validate and cache one file, as ``peak data import --replace`` does in-process."""
    result = import_file(path, "BTC/EUR", "1m")
    if result.candles is None or not result.ok:
        raise SystemExit(f"the generated file did not import: {result.diagnostics[:3]}")
    store(cache, result.candles, Meta("BTC/EUR", "1m", "import", False, path.name))


def floor_once(path: Path) -> None:
    """Read the same file into pandas with pyarrow and nothing else."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        pq.read_table(path).to_pandas()
    else:
        import pyarrow.csv as pcsv  # type: ignore[import-untyped]

        pcsv.read_csv(path).to_pandas()


def median_time(action: Callable[[], None], runs: int) -> float:
    """Median wall time of ``runs`` calls, after one discarded warm-up call."""
    action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    """CPU, cores and the versions that decide the numbers."""
    cpu = cpu_name()
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, pandas {pd.__version__}, pyarrow {pyarrow.__version__}")


def main(argv: list[str] | None = None) -> int:
    """Generate the files, time import and floor per format, print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="peak-bench-import-") as tmp:
        folder = Path(tmp)
        paths = make_files(folder, args.bars)
        rows = []
        for kind, path in paths.items():
            cache = folder / f"cache-{kind}"
            imp = median_time(partial(import_once, path, cache), args.runs)
            flo = median_time(partial(floor_once, path), args.runs)
            rows.append((kind, path.stat().st_size, imp, flo))
    print(f"Measured {dt.date.today().isoformat()} on {machine()}; {args.bars:,} bars, "
          f"median of {args.runs} runs after a warm-up:\n")
    print("| format | file size (MB) | import: validated + cached (s) | floor: pyarrow read + "
          "to_pandas (s) | import / floor |")
    print("|---|---:|---:|---:|---:|")
    for kind, size, imp, flo in rows:
        print(f"| {kind} | {size / 1e6:.0f} | {imp:.2f} | {flo:.2f} | {imp / flo:.1f}× |")
    parquet = rows[0][2]
    print(f"\nParquet aim < {AIM_PARQUET:.0f} s: {'met' if parquet < AIM_PARQUET else 'NOT met'} "
          f"({parquet:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
