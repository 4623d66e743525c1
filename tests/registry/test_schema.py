"""The schema's migrations: a registry written by peak before runs were generic (schema 2)
is migrated in place.

The fixture (``fixtures/registry_v2.sqlite``) was written by the schema-2 code of f219d70
through its public API, and ``fixtures/registry_v2.json`` holds what that code read back (see
``fixtures/make_registry_v2.py``). Opening a copy with today's code must read every run, sweep,
metric row and trial count back the same; a migration interrupted by an exception or a SIGKILL
must leave the file exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peakdsl.engine.stats import METRIC_KEYS
from peakdsl.registry import schema, store
from peakdsl.registry.encoding import plain
from peakdsl.registry.kinds import KINDS
from peakdsl.registry.store import (
    SCHEMA_VERSION,
    Registry,
    RunOutcome,
    RunStart,
    registry_path,
)

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "registry_v2.json").read_text("utf-8"))
RUNS = {run["id"]: run for run in EXPECTED["runs"]}
SWEEPS = {sweep["id"]: sweep for sweep in EXPECTED["sweeps"]}
NEW_FIELDS = {"state", "parent_id", "inputs", "artifacts", "summary", "children", "command"}


def v2_project(tmp_path: Path) -> Path:
    """A project folder holding a copy of the schema-2 registry."""
    db = registry_path(tmp_path)
    db.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "registry_v2.sqlite", db)
    return tmp_path


def dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_the_fixture_is_a_schema_2_registry() -> None:
    assert EXPECTED["schema_version"] == 2
    kinds = {run["kind"] for run in EXPECTED["runs"]}
    assert kinds == {"backtest", "sweep_trial", "experiment"}
    assert {run["status"] for run in EXPECTED["runs"]} == {"done", "failed", "running"}
    assert {sweep["status"] for sweep in EXPECTED["sweeps"]} == {"done", "failed", "running"}
    assert len(RUNS) == 12 and len(SWEEPS) == 4


def test_every_old_run_reads_back_the_same(tmp_path: Path) -> None:
    root = v2_project(tmp_path)
    with Registry(root) as reg:
        assert reg.schema_version() == SCHEMA_VERSION == 4
        for run_id, old in RUNS.items():
            new = reg.get_run(run_id).to_dict()
            assert new["command"] is None  # recorded before command lines were stored
            assert {k: v for k, v in new.items() if k not in NEW_FIELDS} == old, run_id
            assert new["inputs"] == {"artifact": old["artifact_sha256"],
                                     "data": old["data_fingerprint"]}
            assert new["parent_id"] == old["sweep_id"]
            assert plain(reg.metric_rows(run_id)) == EXPECTED["metric_rows"][run_id]
            # the recording process is long gone: a run left running is incomplete
            assert new["state"] == ("incomplete" if old["status"] == "running"
                                    else old["status"])
        for sweep_id, old in SWEEPS.items():
            new = reg.get_sweep(sweep_id).to_dict()
            assert {k: v for k, v in new.items() if k != "state"} == old, sweep_id
        assert [s.id for s in reg.list_sweeps(limit=None)] == [s["id"] for s in
                                                               EXPECTED["sweeps"]]
        for lineage, count in EXPECTED["trial_count"].items():
            assert reg.trial_count(lineage) == count, lineage
        listed = {r.id for r in reg.list_runs(limit=None)}
        assert listed == set(RUNS) | set(SWEEPS)  # every sweep is now a run too
        assert reg.pragma("foreign_keys") == 1


def test_sweeps_become_runs_of_kind_sweep(tmp_path: Path) -> None:
    with Registry(v2_project(tmp_path)) as reg:
        done = next(s for s in SWEEPS.values() if s["status"] == "done")
        run = reg.get_run(done["id"])
        assert (run.kind, run.parent_id, run.settings, run.children) == (
            "sweep", None, done["config"], done["runs"])
        assert run.inputs == {"artifact": "a" * 64, "data": "f" * 64}  # from its config
        assert run.metrics == {"combinations": 3, "deflated_sharpe": 0.42, "trials": 11}
        assert reg.metric_rows(run.id) == {"combinations": 3.0, "deflated_sharpe": 0.42,
                                           "trials": 11.0}
        assert run.artifacts == {"results": ".peak/sweeps/kkkk/results.parquet"}
        assert run.warnings == ("best fast=9 lies on the edge of the grid",)
        assert (run.market, run.timeframe, run.data_bars, run.engine_version) == (
            "BTC/USDT", "1h", 1417, "0.1.0")  # from its first trial
        trials = reg.child_runs(run.id)
        assert len(trials) == 4 and {t.kind for t in trials} == {"sweep_trial"}
        failed = next(s for s in SWEEPS.values() if s["status"] == "failed")
        assert reg.get_run(failed["id"]).error == "data missing"
        legacy = reg.get_run("s00000000abcd")
        assert (legacy.state, legacy.pid, legacy.engine_version) == ("incomplete", None, "")


def test_kinds_of_the_old_runs(tmp_path: Path) -> None:
    with Registry(v2_project(tmp_path)) as reg:
        kinds = {k.kind: k for k in reg.kinds()}
        assert set(kinds) == {k.name for k in KINDS} | {"experiment"}
        # a kind recorded before kinds were listed counts as a trial, as every run did
        assert kinds["experiment"].trial and kinds["experiment"].parent is None
        assert (kinds["sweep_trial"].parent, kinds["sweep"].trial) == ("sweep", False)
        names = [row[0] for row in reg._connection().execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        assert names == ["metrics", "run_kinds", "runs", "schema_version"]
        conn = reg._connection()
        assert conn.execute("PRAGMA integrity_check").fetchall()[0][0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_migrated_registry_keeps_working(tmp_path: Path) -> None:
    with Registry(v2_project(tmp_path)) as reg:
        left = next(s for s in SWEEPS.values() if s["status"] == "running"
                    and s["pid"] is not None)
        assert reg.resume_sweep(left["id"]).state == "running"
        combos = np.array([[1.0, 2.0]])
        ids = reg.record_sweep_block(left["id"], "rsi_reversion", "b" * 64, "f" * 64, "cache",
                                     "0.2.0", {}, ("fast", "slow"), combos,
                                     {k: np.zeros(1) for k in METRIC_KEYS}, 0.0)
        reg.finish_sweep(left["id"], {"trials": 3})
        assert reg.get_sweep(left["id"]).runs == left["runs"] + 1
        assert reg.trial_count("rsi") == EXPECTED["trial_count"]["rsi"] + 1
        assert reg.get_run(ids[0]).lineage == "rsi"
        run_id = reg.record(RunStart("backtest", "ma_crossover", {"artifact": "a" * 64},
                                     "0.2.0"), RunOutcome({"sharpe": 1.0}))
        assert reg.trial_count("ma_crossover") == EXPECTED["trial_count"]["ma_crossover"] + 1
        assert reg.list_runs(limit=1)[0].id == run_id


def _interrupted(step: schema.Step) -> tuple[schema.Migration, ...]:
    """The migrations with ``step`` run just after migration 3 dropped the old runs table."""
    v3 = schema.MIGRATIONS[2]
    at = v3.statements.index("DROP TABLE runs") + 1
    broken = schema.Migration(3, v3.description,
                              (*v3.statements[:at], step, *v3.statements[at:]))
    return (*schema.MIGRATIONS[:2], broken)


def test_an_exception_mid_migration_leaves_the_old_registry(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    root = v2_project(tmp_path)
    before = dump(registry_path(root))

    def boom(conn: sqlite3.Connection) -> None:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs'"
                            ).fetchone()[0] == 0  # the old table is really gone by now
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(store, "MIGRATIONS", _interrupted(boom))
        with pytest.raises(RuntimeError, match="disk on fire"):
            Registry(root)
    assert dump(registry_path(root)) == before  # schema 2, every row, as it was
    with Registry(root) as reg:  # and the real migration still goes through
        assert reg.schema_version() == 4 and len(reg.list_runs(limit=None)) == 16


KILLER = """\
import os, signal, sys
from pathlib import Path
from peakdsl.registry import schema, store

v3 = schema.MIGRATIONS[2]
at = v3.statements.index("DROP TABLE sweeps") + 1
def die(conn):
    os.kill(os.getpid(), signal.SIGKILL)
store.MIGRATIONS = (*schema.MIGRATIONS[:2], schema.Migration(
    3, v3.description, (*v3.statements[:at], die, *v3.statements[at:])))
store.Registry(Path(sys.argv[1]))
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_a_kill_mid_migration_leaves_the_old_registry(tmp_path: Path) -> None:
    root = v2_project(tmp_path)
    before = dump(registry_path(root))
    proc = subprocess.run([sys.executable, "-c", KILLER, str(root)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert dump(registry_path(root)) == before
    with Registry(root) as reg:
        assert reg.schema_version() == 4
        assert reg.get_run(next(iter(RUNS))).id == next(iter(RUNS))


def test_migration_4_adds_the_command_line_of_each_run(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema-3 registry (the v2 fixture migrated by peak before command lines) gains an
    empty ``command`` per run, and a command, once written, is part of what a run was."""
    root = v2_project(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(store, "MIGRATIONS", schema.MIGRATIONS[:3])
        patch.setattr(store, "SCHEMA_VERSION", 3)
        Registry(root).close()
    conn = sqlite3.connect(registry_path(root))
    columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    conn.close()
    assert "command" not in columns
    with Registry(root) as reg:
        assert [row[0] for row in reg._connection().execute(
            "SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3, 4]
        assert {reg.get_run(run_id).command for run_id in RUNS} == {None}
        running = reg.start(RunStart("backtest", "ma", {"artifact": "a" * 64}, "0.4.0",
                                     command="peak backtest specs/ma.peak"))
        assert reg.get_run(running).command == "peak backtest specs/ma.peak"
        with pytest.raises(sqlite3.IntegrityError, match="what a run was is immutable"):
            reg._connection().execute("UPDATE runs SET command = 'peak backtest other' "
                                      "WHERE id = ?", (running,))
