"""Resume: a sweep killed (SIGKILL) or interrupted (Ctrl-C) and started again with the same
arguments computes only the missing combinations and ends with the same results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peakdsl.registry.store import Registry

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/ma_crossover.peak"
# The whole declared grid (174 combinations after `require`), one combination per block.
ARGS = ["sweep", SPEC, "--max-memory", "1KB", "--json"]


def make_project(path: Path) -> Path:
    shutil.copytree(REPO / "specs", path / "specs")
    return path


def sweep(project: Path) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-m", "peakdsl.cli", *ARGS], cwd=project,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    doc: dict[str, object] = json.loads(run.stdout)
    return doc


def blocks(project: Path) -> list[Path]:
    return sorted((project / ".peak" / "sweeps").glob("*/block-*.parquet"))


def start_and_wait(project: Path, at_least: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "peakdsl.cli", *ARGS], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(blocks(project)) < at_least:
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return proc


def rows_in(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        _, start, end = path.stem.split("-")
        total += int(end) - int(start)
    return total


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], bytes]:
    project = make_project(tmp_path_factory.mktemp("whole"))
    doc = sweep(project)
    assert doc["resumed"] == 0 and doc["computed"] == 174
    return doc, Path(project / str(doc["parquet"])).read_bytes()


def test_sigkill_then_resume(tmp_path: Path,
                             uninterrupted: tuple[dict[str, object], bytes]) -> None:
    whole, whole_bytes = uninterrupted
    project = make_project(tmp_path)
    proc = start_and_wait(project, 15)
    proc.kill()  # SIGKILL: no cleanup at all
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    kept = blocks(project)
    done = rows_in(kept)
    assert 15 <= done < 174
    store = kept[0].parent
    assert not (store / "results.parquet").exists()
    sweep_id = json.loads((store / "sweep.json").read_text())["registry_sweep_id"]

    doc = sweep(project)
    assert doc["resumed"] == done and doc["computed"] == 174 - done
    assert doc["sweep_id"] == sweep_id and doc["key"] == whole["key"]
    assert (project / str(doc["parquet"])).read_bytes() == whole_bytes
    assert doc["top"] == whole["top"] and doc["best_set"] == whole["best_set"]
    with Registry(project) as registry:
        runs = registry.sweep_runs(sweep_id)
        assert len(runs) == 174  # each combination recorded exactly once
        assert len({tuple(sorted(r.params.items())) for r in runs}) == 174
        assert registry.get_sweep(sweep_id).status == "done"
        assert registry.trial_count("ma_crossover") == 174

    again = sweep(project)  # nothing left to do
    assert again["computed"] == 0 and again["resumed"] == 174
    assert (project / str(again["parquet"])).read_bytes() == whole_bytes


def test_ctrl_c_keeps_finished_blocks(tmp_path: Path,
                                      uninterrupted: tuple[dict[str, object], bytes]) -> None:
    _, whole_bytes = uninterrupted
    project = make_project(tmp_path)
    proc = start_and_wait(project, 10)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    kept = blocks(project)
    done = rows_in(kept)
    assert 10 <= done < 174
    assert f"kept {done:,} of 174" in err
    assert not (kept[0].parent / "results.parquet").exists()
    sweep_id = json.loads((kept[0].parent / "sweep.json").read_text())["registry_sweep_id"]
    with Registry(project) as registry:
        assert len(registry.sweep_runs(sweep_id)) == done
        assert registry.get_sweep(sweep_id).status == "running"

    doc = sweep(project)
    assert doc["resumed"] == done and doc["computed"] == 174 - done
    assert (project / str(doc["parquet"])).read_bytes() == whole_bytes
