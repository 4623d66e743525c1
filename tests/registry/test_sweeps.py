"""Sweeps in the registry: bulk trial blocks, sweep status and summary, the v1 → current
migration, and a SIGKILL during ``record_sweep_block`` leaving the whole block or none of it.

Since schema 3 a sweep is a run of kind ``sweep`` (its config the run's settings) and its trials
are its child runs; the raw-SQL checks below address the ``runs`` table accordingly."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from peakdsl.engine.stats import METRIC_KEYS
from peakdsl.registry import store
from peakdsl.registry.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Registry,
    RegistryError,
    SweepNotFoundError,
    registry_path,
)

NAMES = ("fast", "slow", "stop")
SHA, FP = "a" * 64, "f" * 64


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path) as registry:
        yield registry


def block(k: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    combos = np.column_stack([rng.integers(5, 50, k), rng.integers(50, 200, k),
                              rng.integers(1, 10, k) / 100]).astype(np.float64)
    metrics = {key: rng.normal(size=k) for key in METRIC_KEYS}
    metrics["trades"] = rng.integers(0, 100, k).astype(np.float64)
    metrics["profit_factor"][::7] = np.nan  # undefined where there were no losing trades
    return combos, metrics


def record(reg: Registry, sweep: str, combos: np.ndarray, metrics: dict[str, np.ndarray],
           **kw: object) -> list[str]:
    return reg.record_sweep_block(sweep, "ma", SHA, FP, "synthetic:test", "0.1.0",
                                  {"capital": 10_000.0}, NAMES, combos, metrics, 0.002,
                                  **kw)  # type: ignore[arg-type]


def test_a_block_of_1590_trials(reg: Registry) -> None:
    sweep = reg.start_sweep("ma", {"mode": "grid", "combinations": 1590})
    combos, metrics = block(1590)
    clock = time.perf_counter()
    ids = record(reg, sweep, combos, metrics, timeframe="1h", market="BTC/EUR", seed=None)
    elapsed = time.perf_counter() - clock
    print(f"record_sweep_block: 1590 runs in {elapsed * 1000:.0f} ms")  # no timed assertion
    assert len(ids) == len(set(ids)) == 1590
    assert ids == sorted(ids)  # ids sort by creation: row order is kept
    runs = reg.sweep_runs(sweep)
    assert [r.id for r in runs] == ids
    for row in (0, 7, 1589):
        run = runs[row]
        assert (run.status, run.state, run.kind, run.sweep_id) == ("done", "done",
                                                                   "sweep_trial", sweep)
        assert run.params == dict(zip(NAMES, combos[row].tolist(), strict=True))
        assert run.timing == {"total": 0.002}
        assert run.trades == int(metrics["trades"][row]) == run.metrics["trades"]
        assert isinstance(run.metrics["trades"], int)
        assert run.metrics["sharpe"] == metrics["sharpe"][row]
        assert (run.timeframe, run.market) == ("1h", "BTC/EUR")
        rows = reg.metric_rows(run.id)
        assert set(rows) == set(METRIC_KEYS)
        assert rows["sharpe"] == metrics["sharpe"][row]
    assert runs[7].metrics["profit_factor"] is None  # NaN → null, as finish_run stores it
    assert reg.metric_rows(runs[7].id)["profit_factor"] is None
    assert reg.trial_count("ma") == 1590
    assert reg.get_sweep(sweep).runs == 1590


def test_a_block_stores_what_finish_run_stores(reg: Registry) -> None:
    """A trial recorded in bulk reads back exactly like the same trial recorded one by one."""
    sweep = reg.start_sweep("ma", {})
    combos, metrics = block(3, seed=4)
    bulk = reg.get_run(record(reg, sweep, combos, metrics)[1])
    one = reg.start_run("sweep_trial", "ma", SHA, FP, "synthetic:test",
                        dict(zip(NAMES, combos[1].tolist(), strict=True)), None, "0.1.0",
                        {"capital": 10_000.0}, sweep)
    reg.finish_run(one, {k: (None if math.isnan(v[1]) else
                             int(v[1]) if k == "trades" else float(v[1]))
                         for k, v in metrics.items()}, {"total": 0.002},
                   int(metrics["trades"][1]))
    single = reg.get_run(one)
    assert (bulk.params, bulk.metrics, bulk.timing, bulk.trades, bulk.settings) == (
        single.params, single.metrics, single.timing, single.trades, single.settings)
    assert reg.metric_rows(bulk.id) == reg.metric_rows(one)
    conn = reg._connection()
    raw = [conn.execute("SELECT params, metrics, settings FROM runs WHERE id = ?",
                        (i,)).fetchone() for i in (bulk.id, one)]
    assert tuple(raw[0]) == tuple(raw[1])  # byte-identical canonical JSON


def test_blocks_count_as_trials_of_the_sweeps_lineage(reg: Registry) -> None:
    sweep = reg.start_sweep("ma_v2", {}, lineage="ma")
    combos, metrics = block(10)
    ids = record(reg, sweep, combos, metrics)
    assert {reg.get_run(i).lineage for i in ids} == {"ma"}
    assert reg.trial_count("ma") == 10
    assert reg.trial_count("ma_v2") == 0
    assert reg.get_sweep(sweep).spec == "ma_v2"


def test_an_empty_block_writes_nothing(reg: Registry) -> None:
    sweep = reg.start_sweep("ma", {})
    assert record(reg, sweep, np.empty((0, 3)), {k: np.empty(0) for k in METRIC_KEYS}) == []
    assert reg.sweep_runs(sweep) == []


def test_bad_blocks_are_refused_whole(reg: Registry) -> None:
    sweep = reg.start_sweep("ma", {})
    combos, metrics = block(5)
    with pytest.raises(ValueError, match="shape"):
        record(reg, sweep, combos[:, :2], metrics)
    with pytest.raises(ValueError, match="sharpe"):
        record(reg, sweep, combos, metrics | {"sharpe": np.zeros(4)})
    with pytest.raises(RegistryError, match="no sweep"):
        record(reg, "s000000000000", combos, metrics)
    assert reg.trial_count("ma") == 0


def test_finish_sweep(reg: Registry) -> None:
    sweep = reg.start_sweep("ma", {"mode": "grid"})
    combos, metrics = block(4)
    record(reg, sweep, combos, metrics)
    record_ = reg.get_sweep(sweep)
    assert (record_.status, record_.state, record_.summary, record_.finished_at) == (
        "running", "running", None, None)
    summary = {"best": {"sharpe": 1.5}, "dsr": 0.42, "edge": ["fast"], "nan": math.nan}
    reg.finish_sweep(sweep, summary)
    done = reg.get_sweep(sweep)
    assert (done.status, done.state, done.runs) == ("done", "done", 4)
    assert done.summary == {"best": {"sharpe": 1.5}, "dsr": 0.42, "edge": ["fast"],
                            "nan": None}
    assert done.config == {"mode": "grid"} and done.finished_at is not None
    assert json.loads(json.dumps(done.to_dict(), allow_nan=False))["id"] == sweep
    with pytest.raises(RegistryError, match="already done"):
        record(reg, sweep, combos, metrics)
    with pytest.raises(RegistryError, match="already done"):
        reg.finish_sweep(sweep, {})
    with pytest.raises(RegistryError, match="already done"):
        reg.resume_sweep(sweep)
    conn = reg._connection()
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("UPDATE runs SET summary = '{}' WHERE id = ?", (sweep,))
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM runs WHERE id = ?", (sweep,))
    failed = reg.start_sweep("ma", {})
    reg.finish_sweep(failed, {"error": "data missing"}, status="failed")
    assert reg.get_sweep(failed).status == "failed"
    with pytest.raises(ValueError):
        reg.finish_sweep(reg.start_sweep("ma", {}), {}, status="running")  # type: ignore[arg-type]
    with pytest.raises(SweepNotFoundError):
        reg.finish_sweep("s000000000000", {})


def test_sweep_integrity_triggers(reg: Registry) -> None:
    sweep = reg.start_sweep("ma", {})
    conn = reg._connection()
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("UPDATE runs SET settings = '{}' WHERE id = ?", (sweep,))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # done: a finish time, metrics
        conn.execute("UPDATE runs SET status = 'done' WHERE id = ?", (sweep,))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE runs SET status = 'done', finished_at = 'x' WHERE id = ?",
                     (sweep,))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE runs SET status = 'paused', finished_at = 'x', summary = '{}' "
                     "WHERE id = ?", (sweep,))


def test_get_and_list_sweeps(reg: Registry) -> None:
    a = reg.start_sweep("ma", {})
    b = reg.start_sweep("rsi", {})
    c = reg.start_sweep("ma_v2", {}, lineage="ma")
    assert reg.get_sweep(a).id == a
    assert reg.get_sweep(b.upper()).id == b
    with pytest.raises(SweepNotFoundError, match="too short"):
        reg.get_sweep("s0")
    with pytest.raises(SweepNotFoundError, match="not a sweep id"):
        reg.get_sweep("r0123456789ab")
    with pytest.raises(SweepNotFoundError, match="no sweep matches"):
        reg.get_sweep("s000000000000")
    common = next(a[:i] for i in range(len(a), 0, -1) if b.startswith(a[:i])
                  and c.startswith(a[:i]))
    assert len(common) >= 4
    with pytest.raises(SweepNotFoundError, match="matches 3 sweeps"):
        reg.get_sweep(common)
    assert [s.id for s in reg.list_sweeps()] == [c, b, a]
    assert [s.id for s in reg.list_sweeps("ma")] == [a]
    assert [s.id for s in reg.list_sweeps(lineage="ma")] == [c, a]
    assert [s.id for s in reg.list_sweeps(limit=1)] == [c]
    assert reg.get_sweep(a).state == "running"  # this process owns it and is alive


def test_migration_from_version_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(store, "MIGRATIONS", MIGRATIONS[:1])
        patch.setattr(store, "SCHEMA_VERSION", 1)
        with Registry(tmp_path) as old:
            assert old.schema_version() == 1
            conn = old._connection()
            conn.execute("INSERT INTO sweeps (id, lineage, created_at, config) VALUES "
                         "('s00000000abcd', 'rsi', '2024-01-01T00:00:00.000Z', '{}')")
    with Registry(tmp_path) as reg:
        assert reg.schema_version() == SCHEMA_VERSION == 4
        legacy = reg.get_sweep("s00000000abcd")
        # no owner was recorded before version 2: it cannot be running any more
        assert (legacy.spec, legacy.status, legacy.state) == ("rsi", "running", "incomplete")
        reg.resume_sweep(legacy.id)
        record(reg, legacy.id, *block(2))
        reg.finish_sweep(legacy.id, {"best": None})
        assert reg.get_sweep(legacy.id).runs == 2


# ------------------------------------------------------------------------ SIGKILL

BLOCK, N_METRICS = 400, len(METRIC_KEYS)

CHILD = """\
import sys
from pathlib import Path
import numpy as np
from peakdsl.engine.stats import METRIC_KEYS
from peakdsl.registry.store import Registry

root, size = Path(sys.argv[1]), int(sys.argv[2])
reg = Registry(root)
sweep = reg.start_sweep("killed", {"block": size})
print("sweep", sweep, flush=True)
rng = np.random.default_rng(0)
n = 0
while True:
    combos = np.column_stack([np.full(size, float(n)), np.arange(size, dtype=float)])
    metrics = {k: rng.normal(size=size) for k in METRIC_KEYS}
    reg.record_sweep_block(sweep, "killed", "a" * 64, "f" * 64, "synthetic", "0", {"block": n},
                           ("block", "row"), combos, metrics, 0.001)
    n += 1
    print("block", n, flush=True)
"""


def check_blocks(root: Path) -> int:
    """Integrity; every block is complete (all its runs, each with all its metric rows)."""
    conn = sqlite3.connect(registry_path(root))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        sizes = conn.execute("SELECT json_extract(params, '$.block'), count(*), "
                             "count(DISTINCT json_extract(params, '$.row')) FROM runs "
                             "WHERE kind = 'sweep_trial' GROUP BY 1 ORDER BY 1").fetchall()
        assert all(n == distinct == BLOCK for _, n, distinct in sizes), sizes
        assert [b for b, _, _ in sizes] == [float(i) for i in range(len(sizes))]
        statuses = conn.execute("SELECT DISTINCT status FROM runs "
                                "WHERE kind = 'sweep_trial'").fetchall()
        assert statuses in ([], [("done",)])
        lacking = conn.execute("SELECT count(*) FROM runs r WHERE kind = 'sweep_trial' AND "
                               "(SELECT count(*) FROM metrics m WHERE m.run_id = r.id) != ?",
                               (N_METRICS,)).fetchone()[0]
        assert lacking == 0
        return len(sizes)
    finally:
        conn.close()


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("seed", [1, 2])
def test_killed_while_recording_blocks(tmp_path: Path, seed: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(BLOCK)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert first.startswith("sweep "), first + proc.stderr.read()
    sweep = first.split()[1]
    line = proc.stdout.readline()  # one block is in: the loop is in full swing
    assert line.startswith("block"), line + proc.stderr.read()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=random.Random(seed).uniform(0.0, 0.3))
    assert proc.poll() is None, "the child stopped on its own"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()
    proc.stderr.close()

    blocks = check_blocks(tmp_path)
    assert blocks >= 1
    with Registry(tmp_path) as reg:
        assert reg.trial_count("killed") == blocks * BLOCK
        left = reg.get_sweep(sweep)
        assert (left.state, left.runs) == ("incomplete", blocks * BLOCK)
        assert reg.resume_sweep(sweep).state == "running"  # this process takes it over
        combos = np.column_stack([np.full(BLOCK, float(blocks)), np.arange(BLOCK, dtype=float)])
        reg.record_sweep_block(sweep, "killed", SHA, FP, "synthetic", "0", {}, ("block", "row"),
                               combos, {k: np.zeros(BLOCK) for k in METRIC_KEYS}, 0.0)
        reg.finish_sweep(sweep, {"blocks": blocks + 1})
        assert reg.get_sweep(sweep).state == "done"
    assert check_blocks(tmp_path) == blocks + 1
