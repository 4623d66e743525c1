"""A process SIGKILLed while recording leaves the registry consistent.

The child opens the registry like ``peak backtest`` does and is killed (a) while asleep between
``start_run`` and ``finish_run``, (b) at a random moment of a tight loop of ``finish_run``
transactions. Afterwards SQLite's integrity check passes, every run is either ``done`` with all
its metric rows or ``running`` (shown as ``incomplete``) with none, and ``peak runs list`` works.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from peakdsl.registry.store import Registry, registry_path

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

N_METRICS = 25

CHILD = """\
import sys, time
from pathlib import Path
from peakdsl.registry.store import Registry

root, mode = Path(sys.argv[1]), sys.argv[2]
N_METRICS = int(sys.argv[3])

def start(reg, i):
    return reg.start_run("backtest", "crash_test", "a" * 64, "f" * 64, "synthetic:test",
                         {"i": i}, i, "0.0.0", {"fees": 0.001})

def metrics(i):
    return {f"m{k:02d}": i + k / 100 for k in range(N_METRICS)}

reg = Registry(root)
if mode == "sleep":
    run_id = start(reg, 0)
    print("started", run_id, flush=True)
    time.sleep(60)
    reg.finish_run(run_id, metrics(0), {}, 0)
else:
    batch = 0
    while True:
        ids = [start(reg, batch * 1000 + j) for j in range(40)]
        for j, run_id in enumerate(ids):
            if j % 13 == 12:
                reg.fail_run(run_id, "planned failure")
            else:
                reg.finish_run(run_id, metrics(j), {"total": 0.001}, j)
        batch += 1
        print("batch", batch, flush=True)
"""


def spawn(root: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(root), mode, str(N_METRICS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # reaped: its pid is gone
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()


def check_consistent(root: Path) -> dict[str, int]:
    """Integrity, foreign keys, and the all-or-nothing rule for every run."""
    conn = sqlite3.connect(registry_path(root))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = conn.execute("SELECT r.id, r.status, r.metrics, r.finished_at, count(m.name) "
                            "FROM runs r LEFT JOIN metrics m ON m.run_id = r.id "
                            "GROUP BY r.id").fetchall()
        counts = {"running": 0, "done": 0, "failed": 0}
        for run_id, status, metrics, finished_at, n_rows in rows:
            counts[status] += 1
            if status == "done":
                assert finished_at is not None
                assert n_rows == N_METRICS == len(json.loads(metrics)), run_id
                stored = dict(conn.execute("SELECT name, value FROM metrics WHERE run_id = ?",
                                           (run_id,)).fetchall())
                assert stored == json.loads(metrics), run_id
            else:
                assert (n_rows, metrics) == (0, None), run_id
                assert (finished_at is None) == (status == "running"), run_id
        return counts
    finally:
        conn.close()


def peak_list(root: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "peakdsl.cli", "runs", "list", "--limit",
                           "100000", "--json"], cwd=root, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def test_killed_between_start_and_finish(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    proc = spawn(tmp_path, "sleep")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("started "), line + proc.stderr.read()  # type: ignore[union-attr]
    run_id = line.split()[1]
    kill(proc)

    assert check_consistent(tmp_path) == {"running": 1, "done": 0, "failed": 0}
    with Registry(tmp_path) as reg:
        record = reg.get_run(run_id)
        assert (record.status, record.state, record.metrics) == ("running", "incomplete", {})
        assert reg.metric_rows(run_id) == {}
        assert reg.trial_count("crash_test") == 1  # it may have been seen: it counts
        # the registry is fully usable after the crash
        again = reg.start_run("backtest", "crash_test", "a" * 64, "f" * 64, "s", {}, None,
                              "0.0.0", {})
        reg.finish_run(again, {"sharpe": 1.0}, {}, 0)
    runs = json.loads(peak_list(tmp_path).stdout)["runs"]
    assert {(r["id"], r["state"]) for r in runs} == {(run_id, "incomplete"), (again, "done")}
    text = subprocess.run([sys.executable, "-m", "peakdsl.cli", "runs", "list"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "incomplete" in text.stdout


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_at_a_random_moment_of_a_finish_loop(tmp_path: Path, seed: int) -> None:
    (tmp_path / "specs").mkdir()
    rng = random.Random(seed)
    proc = spawn(tmp_path, "loop")
    assert proc.stdout is not None
    line = proc.stdout.readline()  # one batch is done: the loop is in full swing
    assert line.startswith("batch"), line + proc.stderr.read()  # type: ignore[union-attr]
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=rng.uniform(0.0, 0.3))
    assert proc.poll() is None, "the child stopped on its own"
    kill(proc)

    counts = check_consistent(tmp_path)
    assert counts["done"] >= 37 and counts["failed"] >= 3  # the first batch at least
    runs = json.loads(peak_list(tmp_path).stdout)["runs"]
    assert len(runs) == sum(counts.values())
    states = {r["state"] for r in runs}
    assert "running" not in states  # the writer is dead: nothing is still running
    assert states <= {"done", "failed", "incomplete"}
    with Registry(tmp_path) as reg:
        assert reg.trial_count("crash_test") == counts["done"] + counts["running"]


WRITER = """\
import sys
from pathlib import Path
from peakdsl.registry.store import Registry

with Registry(Path(sys.argv[1])) as reg:
    for i in range(int(sys.argv[2])):
        run_id = reg.start_run("backtest", "parallel", "a" * 64, "f" * 64, "s", {"i": i},
                               None, "0.0.0", {})
        reg.finish_run(run_id, {f"m{k:02d}": float(k) for k in range(int(sys.argv[3]))}, {}, i)
print("ok", flush=True)
"""


def test_parallel_writers_on_a_fresh_registry(tmp_path: Path) -> None:
    """Processes that create and write the same registry at once all succeed."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "25", str(N_METRICS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out == "ok\n", err
    assert check_consistent(tmp_path) == {"running": 0, "done": 100, "failed": 0}
    with Registry(tmp_path) as reg:
        ids = [r.id for r in reg.list_runs(limit=None)]
        assert len(set(ids)) == 100 and ids == sorted(ids, reverse=True)
        assert reg.trial_count("parallel") == 100
