"""Walk-forward speed: one walk-forward in this process and on local Dask workers, same session.

The spec is the library's ``ma_crossover`` (SMA crossover, BTC/USDT 1h) over its whole
declared grid (174 combinations after ``require``), train 365d / test 30d, rolling windows
and anchored ones (whose train windows grow to the whole history: more work per window), on
the real Binance BTC/USDT 1h candles (../shared/data: 52,106 bars, 2017-08 → 2023-08) or,
where that folder is absent, on as many synthetic hourly bars (the output says which).

Times, in this process, ``run_walkforward`` from the compiled artifact and the loaded candles
to the result (every window's optimisation and out-of-sample run, stitching, summary):

* **in-process**: every window here, one after another (after one discarded warm-up run, so
  numba's compilation is not counted);
* **--workers N**: a new loopback ``LocalCluster`` of N processes for each run, as ``peak
  walkforward --workers N`` does: its start, peak's imports on the workers and its shutdown
  are part of the time;
* **cluster only**: starting and stopping the same cluster and importing peak's engine on its
  workers, no windows: the fixed cost of ``--workers``.

Median of ``--runs`` runs each. Every run's result is checked against the first in-process
run (the ``--json`` document and the stitched equity, bit for bit); a difference aborts. The
load average is printed: on a shared machine other processes take cores from both sides.

    python benchmarks/bench_walkforward.py                # 3 runs each, 2 workers
    python benchmarks/bench_walkforward.py --runs 5 --workers 2 --train 365d --test 30d

Run from the repository root with the project's virtualenv active. Timings are never test
assertions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine_info import cpu_name  # noqa: E402

from peakdsl import __version__, api  # noqa: E402
from peakdsl.compile.artifacts import dump_model, sha256  # noqa: E402
from peakdsl.compile.models import StrategyArtifact  # noqa: E402
from peakdsl.data.candles import CandleSet  # noqa: E402
from peakdsl.research.space import build_space  # noqa: E402
from peakdsl.research.types import ParamSpace  # noqa: E402
from peakdsl.research.walkforward import (  # noqa: E402
    Length,
    WalkForwardResult,
    parse_length,
    run_walkforward,
    walkforward_doc,
)

SPEC = REPO / "specs" / "strategies" / "ma_crossover.peak"
REAL = REPO.parent / "shared" / "data" / "binance_BTCUSDT_1h.csv"
REAL_BARS = 52_106


def load_candles() -> CandleSet:
    """The real BTC/USDT 1h candles, or synthetic hourly bars of the same count."""
    if REAL.exists():
        from peakdsl.data.importer import import_file

        imported = import_file(REAL, "BTC/USDT", "1h")
        if imported.candles is None:
            raise SystemExit(f"{REAL} did not import: {imported.diagnostics[:3]}")
        return imported.candles
    from peakdsl.data.synth import synth_market

    print(f"{REAL} is absent: synthetic candles instead", file=sys.stderr)
    return synth_market("BTC/USDT", "1h", REAL_BARS, 7)


def inputs() -> tuple[StrategyArtifact, CandleSet, ParamSpace]:
    artifact = api.compile_spec(str(SPEC), REPO)
    if not isinstance(artifact, StrategyArtifact):
        raise SystemExit(f"{SPEC} is not a strategy")
    space, problems = build_space(artifact.config, ())
    if space is None:
        raise SystemExit(f"no param space: {problems}")
    return artifact, load_candles(), space


def fingerprint(result: WalkForwardResult) -> tuple[str, bytes]:
    """What must not change with the worker count: the document and the stitched equity."""
    doc = json.dumps(walkforward_doc(result), sort_keys=True)
    return doc, np.asarray(result.oos_equity, dtype=np.float64).tobytes()


@dataclass(frozen=True)
class Timing:
    """Wall seconds of ``runs`` calls (median and best) and the cores this process kept busy
    meanwhile (its CPU time, all threads, over the wall time; median)."""

    median: float
    best: float
    busy: float

    def __str__(self) -> str:
        return f"{self.median:.2f} ({self.best:.2f})"


def timed(action: Callable[[], Any], runs: int) -> tuple[Timing, list[Any]]:
    """How long ``runs`` calls took, and what each returned."""
    times, busy, outs = [], [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        outs.append(action())
        times.append(time.perf_counter() - start)
        busy.append((time.process_time() - cpu) / times[-1])
    return Timing(statistics.median(times), min(times), statistics.median(busy)), outs


def cluster_only(workers: int) -> None:
    """Start and stop a local cluster, importing peak's engine on every worker."""
    from peakdsl.research.sweep import dask_client

    def warm() -> None:
        for module in ("peakdsl.research.engine", "peakdsl.research.walkforward"):
            importlib.import_module(module)

    with dask_client(workers, None) as client:
        client.run(warm)


def machine() -> str:
    return (f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, peak {__version__}")


def compare(artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace,
            train: Length, test: Length, anchored: bool, workers: int,
            runs: int) -> tuple[int, Timing, Timing]:
    """Windows, the in-process and the ``workers`` timings; aborts when results differ."""
    digest = sha256(dump_model(artifact))

    def walk(placed: int | None) -> Callable[[], WalkForwardResult]:
        return lambda: run_walkforward(artifact, candles, space, train, test,
                                       anchored=anchored, artifact_sha256=digest,
                                       workers=placed)

    reference = walk(None)()  # the warm-up: numba compiles (or loads its cache) here
    serial, serial_out = timed(walk(None), runs)
    parallel, parallel_out = timed(walk(workers), runs)
    for result in (*serial_out, *parallel_out):
        if fingerprint(result) != fingerprint(reference):
            raise SystemExit(f"{result.execution}: the result differs from the serial run")
    return len(reference.windows), serial, parallel


def main(argv: list[str] | None = None) -> int:
    """Time rolling and anchored walk-forwards in-process and on workers, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train", default="365d")
    parser.add_argument("--test", default="30d")
    args = parser.parse_args(argv)
    artifact, candles, space = inputs()
    train, test = parse_length(args.train, "--train"), parse_length(args.test, "--test")
    load = os.getloadavg()[0]
    rows = [(kind, *compare(artifact, candles, space, train, test, kind == "anchored",
                            args.workers, args.runs)) for kind in ("rolling", "anchored")]
    fixed, _ = timed(lambda: cluster_only(args.workers), args.runs)
    source = "real" if REAL.exists() else "synthetic"
    print(f"Measured {dt.date.today().isoformat()} on {machine()}; load average "
          f"{load:.1f} → {os.getloadavg()[0]:.1f} (other processes); {SPEC.stem}, "
          f"{len(space):,} combinations per train window, train {train}, test {test}, on "
          f"{candles.bars:,} {source} BTC/USDT 1h bars; seconds: median (best) of {args.runs} "
          "runs; results identical bit for bit:\n")
    print(f"| windows | in-process (s) | cores busy in-process | `--workers {args.workers}` (s) "
          "| speed-up |")
    print("|---|---:|---:|---:|---:|")
    for kind, windows, serial, parallel in rows:
        print(f"| {windows} {kind} | {serial} | {serial.busy:.2f} | {parallel} | "
              f"{serial.median / parallel.median:.2f}× |")
    print(f"| none (cluster start, engine import, stop) | — | — | {fixed} | — |")
    return 0


if __name__ == "__main__":  # the guard Dask's worker processes need
    raise SystemExit(main())
