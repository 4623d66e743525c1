"""benchmarks/bench_montecarlo.py runs on a small case and its chunk check holds."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_montecarlo  # noqa: E402


def test_a_small_measurement_runs_every_method() -> None:
    lines = bench_montecarlo.measure(runs=20, trades=50, repeat=1)
    labels = [line.split(" | ")[0] for line in lines if line.startswith("| `")]
    assert labels == ["| `reshuffle`", "| `bootstrap` (the aim)", "| `skip` 10 %",
                      "| `block`, default block", "| `block`, default block"]
    assert "20 × 50" in lines[3] and "2 × 52,560" in lines[-2]
    assert lines[-1].endswith("chunked result identical to in-process: yes")
