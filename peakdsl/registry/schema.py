"""The registry's schema as forward migrations, each applied once, in order, in one transaction.

A migration is a version, a description and its steps: SQL statements, or Python functions of
the connection for conversions SQL says badly (JSON rewritten exactly as peak writes it).
``Registry`` applies every migration newer than the registry's ``schema_version`` in one
``BEGIN IMMEDIATE`` transaction with foreign keys off (the documented way to rebuild a SQLite
table), checks ``PRAGMA foreign_key_check`` before committing, and records each version; an
exception or a kill anywhere leaves the registry exactly as it was.

Migration 3 turns runs into generic records: a ``run_kinds`` table (``peakdsl.registry.kinds``);
``runs`` rebuilt with ``parent_id`` (a sweep's trials, a walk-forward's windows), ``inputs``
(name → sha256, replacing the ``artifact_sha256`` and ``data_fingerprint`` columns),
``artifacts`` (name → path of the files a run wrote) and ``summary`` (a kind's structured
outcome); every ``sweeps`` row becomes a run of kind ``sweep`` with the same id. Migration 4
adds ``command``: the ``peak …`` line that reproduces a run (``peakdsl.repro``), part of what
the run was. Written once, never edited: a registry migrated by a version must stay what it
was.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import kinds
from .encoding import canonical_json, number

Step = str | Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[Step, ...]


# ------------------------------------------------------------------ versions 1 and 2

METRICS_TRIGGERS = (
    """CREATE TRIGGER metrics_only_when_done BEFORE INSERT ON metrics
       WHEN (SELECT status FROM runs WHERE id = NEW.run_id) IS NOT 'done'
       BEGIN SELECT RAISE(ABORT, 'metrics belong to finished runs'); END""",
    """CREATE TRIGGER metrics_immutable BEFORE UPDATE ON metrics
       BEGIN SELECT RAISE(ABORT, 'metrics are immutable'); END""",
    """CREATE TRIGGER metrics_append_only BEFORE DELETE ON metrics
       BEGIN SELECT RAISE(ABORT, 'metrics are never deleted'); END""",
)

V1 = Migration(1, "runs, metrics and sweeps", (
    """CREATE TABLE schema_version (
        version     INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at  TEXT NOT NULL
    )""",
    """CREATE TABLE sweeps (
        id          TEXT PRIMARY KEY,
        lineage     TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        config      TEXT NOT NULL
    )""",
    """CREATE TABLE runs (
        id               TEXT PRIMARY KEY,
        kind             TEXT NOT NULL,
        spec             TEXT NOT NULL,
        lineage          TEXT NOT NULL,
        sweep_id         TEXT REFERENCES sweeps (id),
        status           TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        created_at       TEXT NOT NULL,
        finished_at      TEXT,
        artifact_sha256  TEXT NOT NULL,
        data_fingerprint TEXT NOT NULL,
        data_source      TEXT NOT NULL,
        data_start       TEXT,
        data_end         TEXT,
        data_bars        INTEGER,
        market           TEXT,
        timeframe        TEXT,
        params           TEXT NOT NULL,
        seed             INTEGER,
        engine_version   TEXT NOT NULL,
        settings         TEXT NOT NULL,
        metrics          TEXT,
        timing           TEXT,
        trades           INTEGER,
        warnings         TEXT,
        error            TEXT,
        pid              INTEGER NOT NULL,
        hostname         TEXT NOT NULL,
        process          TEXT,
        CHECK ((status = 'done') = (metrics IS NOT NULL)),
        CHECK ((status = 'failed') = (error IS NOT NULL)),
        CHECK ((status = 'running') = (finished_at IS NULL))
    )""",
    """CREATE TABLE metrics (
        run_id TEXT NOT NULL REFERENCES runs (id),
        name   TEXT NOT NULL,
        value  REAL,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID""",
    "CREATE INDEX runs_by_lineage ON runs (lineage, status)",
    "CREATE INDEX runs_by_spec ON runs (spec, id)",
    "CREATE INDEX runs_by_sweep ON runs (sweep_id) WHERE sweep_id IS NOT NULL",
    "CREATE INDEX metrics_by_name ON metrics (name, value)",
    """CREATE TRIGGER runs_finish_once BEFORE UPDATE ON runs
       WHEN OLD.status != 'running'
       BEGIN SELECT RAISE(ABORT, 'a finished run is immutable'); END""",
    """CREATE TRIGGER runs_keep_identity BEFORE UPDATE OF id, kind, spec, lineage,
           sweep_id, created_at, artifact_sha256, data_fingerprint, params, seed,
           engine_version, settings ON runs
       BEGIN SELECT RAISE(ABORT, 'what a run was is immutable'); END""",
    """CREATE TRIGGER runs_append_only BEFORE DELETE ON runs
       BEGIN SELECT RAISE(ABORT, 'runs are never deleted (trial counts must not shrink)');
       END""",
    *METRICS_TRIGGERS,
))

V2 = Migration(2, "sweep status, summary and owner", (
    "ALTER TABLE sweeps ADD COLUMN spec TEXT",
    """ALTER TABLE sweeps ADD COLUMN status TEXT NOT NULL DEFAULT 'running'
       CHECK (status IN ('running', 'done', 'failed'))""",
    "ALTER TABLE sweeps ADD COLUMN finished_at TEXT",
    "ALTER TABLE sweeps ADD COLUMN summary TEXT",
    "ALTER TABLE sweeps ADD COLUMN pid INTEGER",
    "ALTER TABLE sweeps ADD COLUMN hostname TEXT",
    "ALTER TABLE sweeps ADD COLUMN process TEXT",
    "CREATE INDEX sweeps_by_lineage ON sweeps (lineage, id)",
    """CREATE TRIGGER sweeps_finish_once BEFORE UPDATE ON sweeps
       WHEN OLD.status != 'running'
       BEGIN SELECT RAISE(ABORT, 'a finished sweep is immutable'); END""",
    """CREATE TRIGGER sweeps_keep_identity BEFORE UPDATE OF id, spec, lineage, created_at,
           config ON sweeps
       BEGIN SELECT RAISE(ABORT, 'what a sweep was is immutable'); END""",
    """CREATE TRIGGER sweeps_consistent BEFORE UPDATE ON sweeps
       WHEN (NEW.status = 'running') != (NEW.finished_at IS NULL)
           OR (NEW.status = 'running') = (NEW.summary IS NOT NULL)
       BEGIN SELECT RAISE(ABORT, 'a finished sweep has a finish time and a summary');
       END""",
    """CREATE TRIGGER sweeps_append_only BEFORE DELETE ON sweeps
       BEGIN SELECT RAISE(ABORT, 'sweeps are never deleted'); END""",
))


# ------------------------------------------------------------------------ version 3

RUNS_V3 = """CREATE TABLE runs_v3 (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL REFERENCES run_kinds (kind),
    parent_id      TEXT REFERENCES runs_v3 (id),
    spec           TEXT NOT NULL,
    lineage        TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    created_at     TEXT NOT NULL,
    finished_at    TEXT,
    inputs         TEXT NOT NULL,
    data_source    TEXT,
    data_start     TEXT,
    data_end       TEXT,
    data_bars      INTEGER,
    market         TEXT,
    timeframe      TEXT,
    params         TEXT NOT NULL,
    seed           INTEGER,
    engine_version TEXT NOT NULL,
    settings       TEXT NOT NULL,
    metrics        TEXT,
    timing         TEXT,
    trades         INTEGER,
    warnings       TEXT,
    error          TEXT,
    summary        TEXT,
    artifacts      TEXT,
    pid            INTEGER,
    hostname       TEXT,
    process        TEXT,
    CHECK (parent_id IS NOT id),
    CHECK ((status = 'done') = (metrics IS NOT NULL)),
    CHECK ((status = 'failed') = (error IS NOT NULL)),
    CHECK ((status = 'running') = (finished_at IS NULL))
)"""

RUNS_V3_FROM_V2 = """INSERT INTO runs_v3 (
    id, kind, parent_id, spec, lineage, status, created_at, finished_at, inputs, data_source,
    data_start, data_end, data_bars, market, timeframe, params, seed, engine_version, settings,
    metrics, timing, trades, warnings, error, pid, hostname, process)
SELECT id, kind, sweep_id, spec, lineage, status, created_at, finished_at,
    json_object('artifact', artifact_sha256, 'data', data_fingerprint), data_source,
    data_start, data_end, data_bars, market, timeframe, params, seed, engine_version, settings,
    metrics, timing, trades, warnings, error, pid, hostname, process
FROM runs"""

V3_INDEXES_AND_TRIGGERS = (
    "CREATE INDEX runs_by_lineage ON runs (lineage, status)",
    # Listings are newest first (created_at, id) and of top-level runs unless asked otherwise:
    # these serve them without a sort, and a block of child runs (a sweep's trials) updates
    # none of them, only the parent index.
    "CREATE INDEX runs_top_level ON runs (created_at, id) WHERE parent_id IS NULL",
    "CREATE INDEX runs_by_spec ON runs (spec, created_at, id) WHERE parent_id IS NULL",
    "CREATE INDEX runs_by_kind ON runs (kind, created_at, id) WHERE parent_id IS NULL",
    "CREATE INDEX runs_by_parent ON runs (parent_id, id) WHERE parent_id IS NOT NULL",
    """CREATE TRIGGER runs_finish_once BEFORE UPDATE ON runs
       WHEN OLD.status != 'running'
       BEGIN SELECT RAISE(ABORT, 'a finished run is immutable'); END""",
    """CREATE TRIGGER runs_keep_identity BEFORE UPDATE OF id, kind, parent_id, spec, lineage,
           created_at, inputs, params, seed, engine_version, settings ON runs
       BEGIN SELECT RAISE(ABORT, 'what a run was is immutable'); END""",
    """CREATE TRIGGER runs_append_only BEFORE DELETE ON runs
       BEGIN SELECT RAISE(ABORT, 'runs are never deleted (trial counts must not shrink)');
       END""",
    """CREATE TRIGGER runs_parent_of_its_kind BEFORE INSERT ON runs
       WHEN (NEW.parent_id IS NULL)
               != ((SELECT parent_kind FROM run_kinds WHERE kind = NEW.kind) IS NULL)
           OR (NEW.parent_id IS NOT NULL
               AND (SELECT kind FROM runs WHERE id = NEW.parent_id AND status = 'running')
                   IS NOT (SELECT parent_kind FROM run_kinds WHERE kind = NEW.kind))
       BEGIN SELECT RAISE(ABORT, 'a child run belongs to a running run of its parent kind');
       END""",
    """CREATE TRIGGER run_kinds_immutable BEFORE UPDATE ON run_kinds
       BEGIN SELECT RAISE(ABORT, 'run kinds are immutable'); END""",
    """CREATE TRIGGER run_kinds_append_only BEFORE DELETE ON run_kinds
       BEGIN SELECT RAISE(ABORT, 'run kinds are never deleted'); END""",
    *METRICS_TRIGGERS,
)


def sync_kinds(conn: sqlite3.Connection) -> int:
    """Insert the kinds of ``peakdsl.registry.kinds`` the registry lacks; how many were new.

    Rows are only ever added: a kind's meaning never changes once recorded.
    """
    have = {row[0] for row in conn.execute("SELECT kind FROM run_kinds")}
    new = [k for k in kinds.KINDS if k.name not in have]
    conn.executemany("INSERT INTO run_kinds (kind, description, parent_kind, trial) "
                     "VALUES (?, ?, ?, ?)",
                     [(k.name, k.description, k.parent, int(k.trial)) for k in new])
    return len(new)


def _v3_kinds(conn: sqlite3.Connection) -> None:
    """Today's kinds, and any other kind an older peak recorded (counted as trials, as every
    run was before kinds existed)."""
    sync_kinds(conn)
    conn.execute("INSERT INTO run_kinds (kind, description, parent_kind, trial) "
                 "SELECT DISTINCT kind, ?, NULL, 1 FROM runs "
                 "WHERE kind NOT IN (SELECT kind FROM run_kinds)", (kinds.LEGACY_DESCRIPTION,))


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float | int]:
    """The numbers at the top level of a sweep's summary: its metrics (``deflated_sharpe``,
    ``trials``, ``combinations``, …). ±inf counts (also as stored, ``"inf"``); NaN, null and
    bools do not."""
    values = {k: number(v) for k, v in summary.items()}
    return {k: v for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
            and not (isinstance(v, float) and math.isnan(v))}


def sweep_outcome(status: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The outcome columns of a sweep that finished ``status`` with ``summary``: its numeric
    summary as metrics when done, its error when failed, its results file as an artifact."""
    parquet = summary.get("parquet")
    warnings = summary.get("warnings")
    error = summary.get("error")
    return {
        "metrics": summary_metrics(summary) if status == "done" else None,
        "error": (error if isinstance(error, str) and error else "failed")
        if status == "failed" else None,
        "artifacts": {"results": parquet} if isinstance(parquet, str) and parquet else None,
        "warnings": list(warnings) if isinstance(warnings, list)
        and all(isinstance(w, str) for w in warnings) else [],
    }


SWEEP_INSERT = """INSERT INTO runs_v3 (
    id, kind, parent_id, spec, lineage, status, created_at, finished_at, inputs, data_source,
    data_start, data_end, data_bars, market, timeframe, params, seed, engine_version, settings,
    metrics, warnings, error, summary, artifacts, pid, hostname, process)
VALUES (?, 'sweep', NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
    ?)"""


def sweep_inputs(config: Mapping[str, Any]) -> dict[str, str]:
    """A sweep's input hashes, from the config ``peak sweep`` records (empty when absent)."""
    names = (("artifact", "artifact_sha256"), ("data", "data_fingerprint"))
    return {name: config[key] for name, key in names if isinstance(config.get(key), str)}


def _v3_sweep_row(conn: sqlite3.Connection, sweep: sqlite3.Row) -> tuple[Any, ...]:
    """One ``sweeps`` row as a ``sweep`` run; data and engine from its first trial."""
    config = json.loads(sweep["config"])
    summary = json.loads(sweep["summary"]) if sweep["summary"] is not None else None
    found = conn.execute("SELECT data_source, data_start, data_end, data_bars, market, "
                         "timeframe, engine_version FROM runs WHERE sweep_id = ? "
                         "ORDER BY id LIMIT 1", (sweep["id"],)).fetchone()
    trial = tuple(found) if found is not None else (None,) * 6 + ("",)
    out = sweep_outcome(sweep["status"], summary or {})
    seed = config.get("seed")
    return (sweep["id"], sweep["spec"] or sweep["lineage"], sweep["lineage"], sweep["status"],
            sweep["created_at"], sweep["finished_at"], canonical_json(sweep_inputs(config)),
            *trial[:6], seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            trial[6], sweep["config"],
            None if out["metrics"] is None else canonical_json(out["metrics"]),
            canonical_json(out["warnings"]), out["error"], sweep["summary"],
            None if out["artifacts"] is None else canonical_json(out["artifacts"]),
            sweep["pid"], sweep["hostname"], sweep["process"])


def _v3_sweeps(conn: sqlite3.Connection) -> None:
    """Every sweep becomes a run of kind ``sweep`` (same id), its numeric summary its metrics."""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    for sweep in cursor.execute("SELECT * FROM sweeps ORDER BY id").fetchall():
        conn.execute(SWEEP_INSERT, _v3_sweep_row(conn, sweep))
        if sweep["status"] == "done":
            metrics = summary_metrics(json.loads(sweep["summary"]))
            conn.executemany("INSERT INTO metrics (run_id, name, value) VALUES (?, ?, ?)",
                             [(sweep["id"], name, float(value))
                              for name, value in sorted(metrics.items())])


V3 = Migration(3, "generic runs: kinds, input hashes, artifacts, parent runs; sweeps are runs", (
    """CREATE TABLE run_kinds (
        kind        TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        parent_kind TEXT REFERENCES run_kinds (kind),
        trial       INTEGER NOT NULL CHECK (trial IN (0, 1))
    ) WITHOUT ROWID""",
    _v3_kinds,
    RUNS_V3,
    "DROP TRIGGER metrics_only_when_done",  # it names `runs`, which is rebuilt
    "DROP TRIGGER metrics_immutable",
    "DROP TRIGGER metrics_append_only",
    _v3_sweeps,
    RUNS_V3_FROM_V2,
    "DROP TABLE runs",
    "DROP TABLE sweeps",
    "ALTER TABLE runs_v3 RENAME TO runs",
    *V3_INDEXES_AND_TRIGGERS,
))

# ------------------------------------------------------------------------ version 4

V4 = Migration(4, "the command line that reproduces each run", (
    # NULL for the runs recorded before: `peak runs rerun` says so (U015) instead of guessing.
    "ALTER TABLE runs ADD COLUMN command TEXT",
    "DROP TRIGGER runs_keep_identity",
    """CREATE TRIGGER runs_keep_identity BEFORE UPDATE OF id, kind, parent_id, spec, lineage,
           created_at, inputs, params, seed, engine_version, settings, command ON runs
       BEGIN SELECT RAISE(ABORT, 'what a run was is immutable'); END""",
))

MIGRATIONS: tuple[Migration, ...] = (V1, V2, V3, V4)
SCHEMA_VERSION = MIGRATIONS[-1].version

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "summary_metrics",
           "sweep_inputs", "sweep_outcome", "sync_kinds"]
