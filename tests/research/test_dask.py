"""Distributed sweeps: a local Dask cluster (`--workers N`) and an existing scheduler
(`--scheduler tcp://…`, here a LocalCluster on loopback) give the in-process results."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from peakdsl.engine.stats import METRIC_KEYS
from peakdsl.research.sweep import SweepResult, run_sweep

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/ma_crossover.peak"
SETS = ("fast=5..30:5", "slow=40..100:20")  # 6 × 4 = 24 combinations
MEMORY = 1000  # below one combination's need: one per block, many blocks on each worker


def make_project(path: Path) -> Path:
    shutil.copytree(REPO / "specs", path / "specs")
    return path


def sweep(project: Path, **kwargs: object) -> SweepResult:
    return run_sweep(str(project / SPEC), root=project, sets=SETS, max_memory=MEMORY,
                     record=False, **kwargs)  # type: ignore[arg-type]


def assert_identical(a: SweepResult, b: SweepResult) -> None:
    assert a.key == b.key
    for key in METRIC_KEYS:
        np.testing.assert_array_equal(a.metrics[key], b.metrics[key], err_msg=key)
    np.testing.assert_array_equal(a.ranking, b.ranking)
    assert a.best_set == b.best_set
    assert a.parquet.read_bytes() == b.parquet.read_bytes()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    result = sweep(make_project(tmp_path_factory.mktemp("local")))
    assert result.computed == 24 and result.execution == "in-process"
    return result


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR) as local:
        yield str(local.scheduler_address)


def test_local_cluster_workers(tmp_path: Path, in_process: SweepResult) -> None:
    result = sweep(make_project(tmp_path), workers=2)
    assert result.computed == 24 and "2 worker" in result.execution
    assert_identical(result, in_process)


def test_existing_scheduler(tmp_path: Path, in_process: SweepResult, cluster: str) -> None:
    assert cluster.startswith("tcp://127.0.0.1:")
    result = sweep(make_project(tmp_path), scheduler=cluster)
    assert result.computed == 24 and cluster in result.execution
    assert_identical(result, in_process)


def test_cli_scheduler(tmp_path: Path, in_process: SweepResult, cluster: str) -> None:
    project = make_project(tmp_path)
    args = ["sweep", SPEC, *(x for s in SETS for x in ("--set", s)), "--max-memory",
            str(MEMORY), "--scheduler", cluster, "--json", "--top", "24", "--no-record"]
    run = subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=project,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["computed"] == 24 and doc["key"] == in_process.key
    assert [row["row"] for row in doc["top"]] == in_process.ranking.tolist()
    assert (project / doc["parquet"]).read_bytes() == in_process.parquet.read_bytes()


def test_unreachable_scheduler_is_a_usage_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    run = subprocess.run([sys.executable, "-m", "peakdsl.cli", "sweep", SPEC, "--set",
                          "fast=10", "--set", "slow=40..60:10", "--scheduler",
                          "tcp://127.0.0.1:9", "--no-record"], cwd=project,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert run.returncode == 2, run.stderr
    assert "U005" in run.stderr and "cannot connect" in run.stderr
