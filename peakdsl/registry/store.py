"""The run registry: one SQLite file under ``<project>/.peak/``, append-only, crash-consistent.

Every product of peak is a **run** of some kind (``peakdsl.registry.kinds``: backtest, sweep
and its trials, walk-forward and its windows, …), stored as one generic record: what ran
(``RunStart``: kind, spec, lineage, parent run, input hashes, params, settings, seed, engine
version, data) and how it went (``RunOutcome``: metrics, timing, trades, warnings, the files it
wrote, a kind's summary). ``start`` inserts a run as ``running``; ``finish`` sets it ``done``
*and* writes its metrics (and any child runs) in one transaction, so a reader sees either a
finished run with all its metrics or an unfinished one with none; ``record`` does both for a
run that has already happened. A process killed in between leaves a ``running`` row whose
process is gone; queries report it as ``incomplete``. ``start_run``/``finish_run``/
``record_backtest`` and the sweep methods are thin users of these.

The file is opened in WAL mode with ``synchronous=FULL`` (a commit survives power loss, not
just a crash of peak) and ``foreign_keys=ON``. Writers take the lock up front
(``BEGIN IMMEDIATE``) and wait up to the busy timeout, so several processes may record runs at
once. Triggers make finished runs immutable and rows undeletable: ``trial_count`` (the number
of trials behind a result, for the deflated Sharpe ratio) can only grow.

Schema changes are forward migrations (``peakdsl.registry.schema``), applied in order on open,
in one transaction, and listed in ``schema_version``; a registry written by a newer peak is
refused, never rewritten. See docs/registry.md.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ..atomic import folder_lock, write_atomic
from ..metrics import INT_METRICS  # counts are stored as ints
from . import kinds
from .encoding import canonical_json, decode, metric_value
from .kinds import RUN_PREFIX, SWEEP_PREFIX, RunKind, run_kind
from .records import (
    STATES,
    Child,
    DataRange,
    Difference,
    KindRecord,
    MetricRow,
    Number,
    PathLike,
    RunComparison,
    RunOutcome,
    RunRecord,
    RunStart,
    State,
    Status,
    SweepRecord,
    compare_records,
)
from .schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    sweep_inputs,
    sweep_outcome,
    sync_kinds,
)

if TYPE_CHECKING:
    import numpy as np

    from ..backtest import BacktestResult

    NDArray = np.ndarray[Any, Any]

REGISTRY_DIR = ".peak"
REGISTRY_FILE = "registry.sqlite"
BUSY_TIMEOUT_S = 30.0
MIN_PREFIX = 4
ID_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
ID_RANDOM_BITS = 6
ID_HEX = 12
ID_RETRIES = 16


class RegistryError(Exception):
    """The registry cannot do what was asked (bad state, newer schema, unusable file)."""


class RunNotFoundError(RegistryError, LookupError):
    """No run, or more than one run, matches an id or id prefix."""

    def __init__(self, query: str, candidates: Sequence[str] = (), reason: str = "") -> None:
        self.query = query
        self.candidates = tuple(candidates)
        self.reason = reason or (f"`{query}` matches {len(self.candidates)} runs"
                                 if self.candidates else f"no run matches `{query}`")
        super().__init__(self.reason)


class SweepNotFoundError(RunNotFoundError):
    """No sweep, or more than one sweep, matches an id or id prefix."""

    def __init__(self, query: str, candidates: Sequence[str] = (), reason: str = "") -> None:
        super().__init__(query, candidates, reason or (
            f"`{query}` matches {len(candidates)} sweeps" if candidates
            else f"no sweep matches `{query}`"))


def registry_path(root: Path) -> Path:
    """Where the registry of the project at ``root`` lives (it may not exist yet)."""
    return Path(root) / REGISTRY_DIR / REGISTRY_FILE


# ---------------------------------------------------------------------------- ids

_id_lock = threading.Lock()
_last_id = [0]  # the last id value drawn in this process


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id(prefix: str = RUN_PREFIX) -> str:
    """``prefix`` + 12 hex digits: 42 bits of milliseconds since 2020 (until 2159) and 6
    random bits. Ids sort by creation time and never go backwards within a process;
    across processes a clash is caught by the primary key and a new id drawn."""
    with _id_lock:
        value = ((_now_ms() - ID_EPOCH_MS) << ID_RANDOM_BITS) | secrets.randbits(ID_RANDOM_BITS)
        value = max(value, _last_id[0] + 1)
        _last_id[0] = value
    return f"{prefix}{value:0{ID_HEX}x}"


def id_time(run_id: str) -> str:
    """The creation time encoded in an id, as ISO 8601 UTC with milliseconds."""
    ms = (int(run_id[1:], 16) >> ID_RANDOM_BITS) + ID_EPOCH_MS
    return _iso(ms)


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)  # integers: no float rounding of the milliseconds
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


# ------------------------------------------------------------------- process liveness

def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text("ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # fields 3.. (state, ppid, …, starttime at [19])


def process_identity(pid: int) -> str | None:
    """``boot id:start time`` of a process (Linux), so a reused pid is not taken for it."""
    boot, stat = _boot_id(), _proc_stat(pid)
    if boot is None or stat is None or len(stat) < 20:
        return None
    return f"{boot}:{stat[19]}"


def process_alive(pid: int, hostname: str, identity: str | None) -> bool | None:
    """True/False when it can be told from here, None when not (another host, no POSIX)."""
    if hostname != socket.gethostname() or os.name != "posix":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return None
    stat = _proc_stat(pid)
    if stat is not None and stat and stat[0] in ("Z", "X"):
        return False
    if identity is not None:
        now = process_identity(pid)
        if now is not None and now != identity:
            return False
    return True



# ------------------------------------------------------------------ rows → records

SELECT_RUNS = ("SELECT r.*, (SELECT count(*) FROM runs c WHERE c.parent_id = r.id) "
               "AS n_children FROM runs r")
NEWEST_FIRST = " ORDER BY r.created_at DESC, r.id DESC"


def _state(row: sqlite3.Row) -> State:
    """``incomplete`` for a running row whose process is gone (or was never recorded)."""
    status: Status = row["status"]
    if status == "running" and (row["pid"] is None or process_alive(
            row["pid"], row["hostname"] or "", row["process"]) is False):
        return "incomplete"
    return status


def _noun(run_id: str) -> str:
    return "sweep" if run_id.startswith(SWEEP_PREFIX) else "run"


def _record(row: sqlite3.Row) -> RunRecord:
    inputs = {str(k): str(v) for k, v in decode(row["inputs"]).items()}
    parent = row["parent_id"]
    return RunRecord(
        id=row["id"], kind=row["kind"], spec=row["spec"], lineage=row["lineage"],
        sweep_id=parent if parent is not None and parent.startswith(SWEEP_PREFIX) else None,
        status=row["status"], state=_state(row), created_at=row["created_at"],
        finished_at=row["finished_at"], artifact_sha256=inputs.get("artifact", ""),
        data_fingerprint=inputs.get("data", ""), data_source=row["data_source"],
        data_start=row["data_start"], data_end=row["data_end"], data_bars=row["data_bars"],
        market=row["market"], timeframe=row["timeframe"], params=decode(row["params"]),
        seed=row["seed"], engine_version=row["engine_version"],
        settings=decode(row["settings"]), metrics=decode(row["metrics"]),
        timing=decode(row["timing"]), trades=row["trades"],
        warnings=tuple(json.loads(row["warnings"] or "[]")), error=row["error"],
        pid=row["pid"], hostname=row["hostname"], parent_id=parent, inputs=inputs,
        artifacts={str(k): str(v) for k, v in decode(row["artifacts"]).items()},
        summary=None if row["summary"] is None else decode(row["summary"]),
        children=int(row["n_children"]), command=row["command"])


def _sweep_record(row: sqlite3.Row) -> SweepRecord:
    return SweepRecord(
        id=row["id"], spec=row["spec"], lineage=row["lineage"], status=row["status"],
        state=_state(row), created_at=row["created_at"], finished_at=row["finished_at"],
        config=decode(row["settings"]),
        summary=None if row["summary"] is None else decode(row["summary"]),
        runs=int(row["n_children"]), pid=row["pid"], hostname=row["hostname"])


def top_level_only(kind: str | None, parent: str | None, everything: bool) -> bool:
    """Whether a listing hides child runs (a sweep's trials, a walk-forward's windows): yes,
    unless it asks for everything, for one run's children, or for a kind of child run."""
    known = kinds.RUN_KINDS
    child_kind = kind is not None and kind in known and known[kind].parent is not None
    return not (everything or parent is not None or child_kind)


# ------------------------------------------------------------------ records → rows

START_COLUMNS = ("kind", "parent_id", "spec", "lineage", "inputs", "data_source", "data_start",
                 "data_end", "data_bars", "market", "timeframe", "params", "seed",
                 "engine_version", "settings", "pid", "hostname", "process", "command")
OUTCOME_COLUMNS = ("metrics", "timing", "trades", "warnings", "summary", "artifacts")
INSERT_STARTED = (f"INSERT INTO runs (id, created_at, status, {', '.join(START_COLUMNS)}) "
                  f"VALUES (?, ?, 'running', {', '.join('?' * len(START_COLUMNS))})")
INSERT_FINISHED = (  # a child recorded finished: created and finished in the same moment
    f"INSERT INTO runs (id, created_at, finished_at, status, {', '.join(START_COLUMNS)}, "
    f"{', '.join(OUTCOME_COLUMNS)}) VALUES (?1, ?2, ?2, 'done', "
    + ", ".join(f"?{i}" for i in range(3, 3 + len(START_COLUMNS) + len(OUTCOME_COLUMNS)))
    + ")")
SET_DONE = ("UPDATE runs SET status = 'done', finished_at = ?, "
            + ", ".join(f"{c} = ?" for c in OUTCOME_COLUMNS) + " WHERE id = ?")
INSERT_METRIC = "INSERT INTO metrics (run_id, name, value) VALUES (?, ?, ?)"


class _Shared:
    """``canonical_json`` remembered per object: a block of child runs shares one inputs and
    one settings mapping, encoded (and checked) once instead of once per row."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[object, str]] = {}

    def __call__(self, value: Mapping[str, Any], check: bool = False) -> str:
        hit = self._memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        if check:
            _check_inputs(value)
        text = canonical_json(value)
        self._memo[id(value)] = (value, text)
        return text


def _check_inputs(inputs: Mapping[str, Any]) -> None:
    """Input hashes are named strings (``artifact`` → the artifact's sha256, …)."""
    for name, value in inputs.items():
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise TypeError(f"an input hash is a name and a string, not {name!r}: {value!r}")


def _metric_rows(run_id: str, metrics: Mapping[str, Any]) -> list[tuple[str, str, float | None]]:
    return [(run_id, str(name), metric_value(str(name), value))
            for name, value in sorted(metrics.items())]


def _block_value(name: str, value: float) -> float | int | None:
    """One metric of one combination as ``finish_run`` would store it (NaN → None)."""
    if math.isnan(value):
        return None
    if name in INT_METRICS and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


# ------------------------------------------------------------------------ registry

class Registry:
    """The registry of one project: ``Registry(root)`` opens (or creates) ``root/.peak/``.
    (``peakdsl.serve.registry_view.ReadOnlyRegistry`` opens it for reading only.)

    One SQLite connection per object, guarded by a lock, so an object may be shared by
    threads; other processes open their own (the database does the locking). An object
    must not be used in a child after ``fork()``. Use it as a context manager, or ``close()``.
    """

    def _bind(self, root: Path) -> None:
        """What every opening shares: where the file is, the lock, who this process is."""
        self.root = Path(root)
        self.path = registry_path(self.root)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._host = socket.gethostname()
        self._process: str | None = None  # set by a writer (process_identity)

    def __init__(self, root: Path, *, timeout: float = BUSY_TIMEOUT_S) -> None:
        self._bind(root)
        self._process = process_identity(self._pid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ignore = self.path.parent / ".gitignore"
        if not ignore.exists():
            write_atomic(ignore, b"# peak's local run registry: not for version control\n*\n")
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            # Switching to WAL takes an exclusive lock without waiting on the busy handler, so
            # processes that open a fresh registry at once could fail with "database is
            # locked": the mode switch and the migration are serialised on the folder.
            with folder_lock(self.path.parent, exclusive=True):
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise RegistryError(f"{self.path}: cannot use WAL mode here (got {mode!r})")
                self._conn.execute("PRAGMA synchronous = FULL")
                self._conn.execute("PRAGMA foreign_keys = ON")
                self._migrate()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    # -- plumbing

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RegistryError("the registry is closed")
        if os.getpid() != self._pid:
            raise RegistryError("a Registry cannot be used after fork(); open a new one")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from the start."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection().execute(sql, args).fetchall()

    def pragma(self, name: str) -> Any:
        """The current value of a PRAGMA (for checks and tests)."""
        if not re.fullmatch(r"[a-z_]+", name):
            raise ValueError(f"not a pragma name: {name!r}")
        with self._lock:
            return self._connection().execute(f"PRAGMA {name}").fetchone()[0]

    def schema_version(self) -> int:
        with self._lock:
            row = self._connection().execute("SELECT max(version) FROM schema_version").fetchone()
            return int(row[0])

    # -- migrations

    def _migrate(self) -> None:
        """Apply the missing migrations and kinds in one transaction, or nothing at all.

        Foreign keys are off while it runs (a table rebuild needs that) and checked with
        ``foreign_key_check`` before the commit; an up-to-date registry is not written to.
        """
        with self._lock:
            conn = self._connection()
            if self._version_now(conn) == SCHEMA_VERSION and not self._kinds_missing(conn):
                return
            conn.execute("PRAGMA foreign_keys = OFF")
            try:
                with self._write() as conn:
                    self._apply_migrations(conn)
                    if self._has_table(conn, "run_kinds"):
                        sync_kinds(conn)
                    dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
                    if dangling:
                        raise RegistryError(f"{self.path}: {len(dangling)} rows refer to "
                                            "missing rows; nothing was migrated")
            finally:
                conn.execute("PRAGMA foreign_keys = ON")

    def _apply_migrations(self, conn: sqlite3.Connection) -> None:
        current = self._version_now(conn)
        if current > SCHEMA_VERSION:
            raise RegistryError(
                f"{self.path} has schema version {current}, newer than this peak knows "
                f"({SCHEMA_VERSION}); upgrade peak to use it")
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            for step in migration.statements:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
            conn.execute("INSERT INTO schema_version (version, description, applied_at) "
                         "VALUES (?, ?, ?)",
                         (migration.version, migration.description, _iso(_now_ms())))

    @staticmethod
    def _has_table(conn: sqlite3.Connection, name: str) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (name,)).fetchone() is not None

    def _kinds_missing(self, conn: sqlite3.Connection) -> bool:
        """Whether ``peakdsl.registry.kinds`` lists a kind this registry lacks."""
        if not self._has_table(conn, "run_kinds"):
            return False
        have = {row[0] for row in conn.execute("SELECT kind FROM run_kinds")}
        return not set(kinds.RUN_KINDS) <= have

    @classmethod
    def _version_now(cls, conn: sqlite3.Connection) -> int:
        if not cls._has_table(conn, "schema_version"):
            return 0
        return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version"
                                ).fetchone()[0])

    # -- writing: the generic run

    def start(self, run: RunStart) -> str:
        """Record that a run has begun (status ``running``, committed); returns its id.

        A child kind (``sweep_trial``, ``walkforward_window``) needs a running parent of its
        parent kind, and takes the parent's lineage unless given one.
        """
        kind = run_kind(run.kind)
        shared = _Shared()
        with self._write() as conn:
            parent = self._parent_for(conn, kind, run.parent_id)
            lineage = run.lineage or (parent["lineage"] if parent is not None else run.spec)
            values = self._start_values(run, lineage, shared)
            return self._insert_with_new_id(conn, kind.prefix, INSERT_STARTED, values)

    def finish(self, run_id: str, outcome: RunOutcome,
               children: Sequence[Child] = ()) -> list[str]:
        """Mark a running run ``done`` with its outcome and metrics, and record its finished
        ``children`` (a walk-forward's windows), all in one transaction; returns the
        children's ids in order."""
        rows = _metric_rows(run_id, outcome.metrics)
        values = self._outcome_values(outcome)
        with self._write() as conn:
            parent = self._require_running(conn, run_id)
            ids = self._insert_children(conn, parent, children) if children else []
            conn.execute(SET_DONE, (_iso(_now_ms()), *values, run_id))
            conn.executemany(INSERT_METRIC, rows)
        return ids

    def fail(self, run_id: str, error: str, summary: Mapping[str, Any] | None = None) -> None:
        """Mark a running run ``failed`` with the error that stopped it."""
        with self._write() as conn:
            self._require_running(conn, run_id)
            self._set_failed(conn, run_id, error, summary)

    def record(self, run: RunStart, outcome: RunOutcome,
               children: Sequence[Child] = ()) -> str:
        """Record a run that has happened: ``start`` then ``finish`` (with its children); if
        finishing fails (a metric that is not a number, …) the run is left ``failed``."""
        run_id = self.start(run)
        try:
            self.finish(run_id, outcome, children)
        except Exception as exc:
            self.fail(run_id, f"{type(exc).__name__}: {exc}")
            raise
        return run_id

    def add_children(self, parent_id: str, children: Sequence[Child]) -> list[str]:
        """Record finished child runs of a running run in one transaction (all or none);
        returns their ids in order. Ids sort by creation, so the order is kept."""
        if not children:
            return []
        with self._write() as conn:
            parent = self._parent_row(conn, parent_id)
            return self._insert_children(conn, parent, children)

    def _parent_row(self, conn: sqlite3.Connection, parent_id: str) -> sqlite3.Row:
        """The parent run, which must exist and still be running."""
        row: sqlite3.Row | None = conn.execute(
            "SELECT id, kind, status, lineage FROM runs WHERE id = ?", (parent_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no {_noun(parent_id)} `{parent_id}` in the registry")
        if row["status"] != "running":
            raise RegistryError(f"{_noun(parent_id)} {parent_id} is already {row['status']}")
        return row

    def _parent_for(self, conn: sqlite3.Connection, kind: RunKind,
                    parent_id: str | None) -> sqlite3.Row | None:
        """Check that a run of ``kind`` may have ``parent_id`` as its parent (or none)."""
        if parent_id is None:
            if kind.parent is not None:
                raise RegistryError(f"a {kind.name} run belongs to a {kind.parent} run: "
                                    "give its parent_id")
            return None
        row = self._parent_row(conn, parent_id)
        if row["kind"] != kind.parent:
            raise RegistryError(f"a {kind.name} run cannot belong to {_noun(parent_id)} "
                                f"{parent_id} (a {row['kind']} run)")
        return row

    def _insert_children(self, conn: sqlite3.Connection, parent: sqlite3.Row,
                         children: Sequence[Child]) -> list[str]:
        shared = _Shared()
        rows, prefixes = [], []
        for start, _ in children:
            if start.parent_id not in (None, parent["id"]):
                raise RegistryError(f"a child of {parent['id']} names {start.parent_id} as "
                                    "its parent")
            kind = run_kind(start.kind)
            if kind.parent != parent["kind"]:
                raise RegistryError(f"a {kind.name} run cannot belong to {_noun(parent['id'])} "
                                    f"{parent['id']} (a {parent['kind']} run)")
            prefixes.append(kind.prefix)
        for start, outcome in children:
            values = self._start_values(start, start.lineage or parent["lineage"], shared,
                                        parent["id"])
            rows.append((*values, *self._outcome_values(outcome)))
        metrics = [outcome.metrics for _, outcome in children]
        ids = self._insert_many(conn, INSERT_FINISHED, rows, prefixes)
        conn.executemany(INSERT_METRIC, [row for run_id, values in zip(ids, metrics, strict=True)
                                         for row in _metric_rows(run_id, values)])
        return ids

    def _start_values(self, run: RunStart, lineage: str, shared: _Shared,
                      parent_id: str | None = None) -> tuple[Any, ...]:
        data = run.data
        seed = run.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"a seed is an integer or None, not {seed!r}")
        return (run.kind, parent_id or run.parent_id, run.spec, lineage,
                shared(run.inputs, check=True), data.source, data.start, data.end, data.bars,
                data.market, data.timeframe, canonical_json(run.params), seed,
                run.engine_version, shared(run.settings), self._pid, self._host,
                self._process, run.command)

    def _outcome_values(self, outcome: RunOutcome) -> tuple[Any, ...]:
        trades = None if outcome.trades is None else int(outcome.trades)
        summary = None if outcome.summary is None else canonical_json(outcome.summary)
        artifacts = ({name: self._artifact_path(path)
                      for name, path in outcome.artifacts.items()} if outcome.artifacts else None)
        warnings = canonical_json(list(outcome.warnings)) if outcome.warnings else "[]"
        return (canonical_json(outcome.metrics), canonical_json(outcome.timing), trades,
                warnings, summary,
                None if artifacts is None else canonical_json(artifacts))

    def _artifact_path(self, path: PathLike) -> str:
        """A file a run wrote: relative to the project folder when inside it, else absolute."""
        full = Path(path).resolve()
        try:
            return full.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return full.as_posix()

    def _require_running(self, conn: sqlite3.Connection, run_id: str, kind: str | None = None,
                         missing: type[RunNotFoundError] = RunNotFoundError) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT id, kind, status, lineage FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None or (kind is not None and row["kind"] != kind):
            raise missing(run_id)
        if row["status"] != "running":
            raise RegistryError(f"{_noun(run_id)} {run_id} is already {row['status']}")
        return row

    def _set_failed(self, conn: sqlite3.Connection, run_id: str, error: str,
                    summary: Mapping[str, Any] | None) -> None:
        conn.execute("UPDATE runs SET status = 'failed', finished_at = ?, error = ?, "
                     "summary = ? WHERE id = ?",
                     (_iso(_now_ms()), error or "failed",
                      None if summary is None else canonical_json(summary), run_id))

    def _insert_with_new_id(self, conn: sqlite3.Connection, prefix: str, sql: str,
                            values: Sequence[Any]) -> str:
        return self._insert_many(conn, sql, [tuple(values)], [prefix])[0]

    def _insert_many(self, conn: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]],
                     prefixes: Sequence[str]) -> list[str]:
        """Insert ``rows`` with fresh ids (``id, created_at`` first); a clash with another
        process's id (same millisecond, same random bits) draws them all again."""
        for _ in range(ID_RETRIES):
            ids = [new_id(prefix) for prefix in prefixes]
            conn.execute("SAVEPOINT new_ids")
            try:
                conn.executemany(sql, [(run_id, id_time(run_id), *row)
                                       for run_id, row in zip(ids, rows, strict=True)])
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK TO new_ids")
                conn.execute("RELEASE new_ids")
                if "UNIQUE" not in str(exc) or ".id" not in str(exc):
                    raise
                continue
            conn.execute("RELEASE new_ids")
            return ids
        raise RegistryError("could not draw unique ids")  # pragma: no cover

    # -- writing: backtests (thin users of the generic run)

    def start_run(self, kind: str, spec: str, artifact_sha256: str, data_fingerprint: str,
                  data_source: str, params: Mapping[str, Any], seed: int | None,
                  engine_version: str, settings: Mapping[str, Any],
                  sweep_id: str | None = None, *, lineage: str | None = None,
                  market: str | None = None, timeframe: str | None = None,
                  data_start: str | None = None, data_end: str | None = None,
                  data_bars: int | None = None) -> str:
        """``start`` with the artifact and data hashes as the inputs; ``lineage`` defaults to
        the spec name (also for a sweep trial); ``sweep_id`` is the parent run."""
        return self.start(RunStart(
            kind, spec, {"artifact": artifact_sha256, "data": data_fingerprint},
            engine_version, params, settings, seed, lineage or spec, sweep_id,
            DataRange(data_source, market, timeframe, data_start, data_end, data_bars)))

    def finish_run(self, run_id: str, metrics: Mapping[str, Any], timing: Mapping[str, float],
                   trades: int, warnings: Sequence[str] = ()) -> None:
        """Mark a running run ``done`` and store its metrics, all in one transaction."""
        self.finish(run_id, RunOutcome(metrics, timing, int(trades), tuple(warnings)))

    def fail_run(self, run_id: str, error: str) -> None:
        """Mark a running run ``failed`` with the error that stopped it."""
        self.fail(run_id, error)

    def record_backtest(self, result: BacktestResult, seed: int | None = None,
                        artifacts: Mapping[str, PathLike] | None = None,
                        command: str | None = None) -> str:
        """Record a finished backtest (start + finish); returns the run id. ``artifacts``:
        the files it wrote (``report``, ``trades``); ``command``: the line reproducing it."""
        index = result.candles.frame.index
        data = DataRange(result.candles.source, result.market, result.timeframe,
                         index[0].isoformat() if len(index) else None,
                         index[-1].isoformat() if len(index) else None, len(index))
        run = RunStart("backtest", result.spec,
                       {"artifact": result.artifact_sha256, "data": result.candles.fingerprint},
                       result.engine_version, result.params, result.settings.model_dump(), seed,
                       data=data, command=command)
        return self.record(run, RunOutcome(result.metrics, result.timing,
                                           result.sim.trade_count, tuple(result.warnings),
                                           artifacts or {}))

    # -- writing: sweeps (a sweep is a run of kind `sweep`, its trials are its children)

    def start_sweep(self, spec: str, config: Mapping[str, Any], *,
                    lineage: str | None = None, command: str | None = None) -> str:
        """Open a sweep (a group of trials), owned by this process; record its trials with
        ``record_sweep_block`` (or pass its id as ``sweep_id`` to ``start_run``) and close it
        with ``finish_sweep``. ``config`` is stored as its settings; its ``artifact_sha256``
        and ``data_fingerprint`` entries, when present, as its input hashes."""
        from .. import __version__

        seed = config.get("seed")
        return self.start(RunStart(
            "sweep", spec, sweep_inputs(config), __version__, settings=config,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            lineage=lineage, command=command))

    def record_sweep_block(self, sweep_id: str, spec: str, artifact_sha256: str,
                           data_fingerprint: str, data_source: str, engine_version: str,
                           settings: Mapping[str, Any], names: Sequence[str],
                           combos: NDArray, metrics: Mapping[str, NDArray],
                           timing_per_combo: float | Sequence[float] | NDArray, *,
                           seed: int | None = None, kind: str = "sweep_trial",
                           market: str | None = None, timeframe: str | None = None,
                           data_start: str | None = None, data_end: str | None = None,
                           data_bars: int | None = None,
                           commands: Sequence[str] | None = None) -> list[str]:
        """Record a block of finished trials of a running sweep; returns their run ids in
        row order.

        One run per row of ``combos`` (params: ``names`` → the row's values), already
        ``done``, with ``metrics[name][row]`` as its metrics (NaN: undefined, stored as null)
        and ``timing_per_combo`` (seconds, one number for all rows or one per row) as its
        timing, ``commands[row]`` (when given) the line that reproduces it. All runs and
        metric rows are written in one transaction: a crash leaves the whole block or none
        of it. The runs take the sweep's lineage, so ``trial_count``
        counts them; the sweep takes the data of its first block.
        """
        params, per_run, timing = _block_rows(names, combos, metrics, timing_per_combo)
        if not params:
            return []
        data = DataRange(data_source, market, timeframe, data_start, data_end, data_bars)
        inputs = {"artifact": artifact_sha256, "data": data_fingerprint}
        lines = list(commands) if commands is not None else [None] * len(params)
        children = [(RunStart(kind, spec, inputs, engine_version, row, settings, seed, None,
                              sweep_id, data, line),
                     RunOutcome(values, {"total": seconds}, _trades(values)))
                    for row, values, seconds, line in zip(params, per_run, timing, lines,
                                                          strict=True)]
        with self._write() as conn:
            parent = self._parent_row(conn, sweep_id)
            ids = self._insert_children(conn, parent, children)
            conn.execute("UPDATE runs SET data_source = ?, data_start = ?, data_end = ?, "
                         "data_bars = ?, market = ?, timeframe = ? WHERE id = ? "
                         "AND data_source IS NULL", (data.source, data.start, data.end,
                                                     data.bars, data.market, data.timeframe,
                                                     sweep_id))
        return ids

    def finish_sweep(self, sweep_id: str, summary: Mapping[str, Any], *,
                     status: Literal["done", "failed"] = "done") -> None:
        """Close a running sweep with its summary (best result, deflated Sharpe ratio, …).

        The summary's numbers become the sweep's metrics and its ``parquet`` entry its
        ``results`` artifact. ``failed`` records a sweep that stopped for good; an
        interrupted sweep that may be resumed is left running (shown as ``incomplete`` once
        its process is gone).
        """
        if status not in ("done", "failed"):
            raise ValueError(f"a sweep finishes done or failed, not {status!r}")
        out = sweep_outcome(status, summary)
        outcome = RunOutcome(out["metrics"] or {}, warnings=out["warnings"],
                             artifacts=out["artifacts"] or {}, summary=summary)
        rows = _metric_rows(sweep_id, outcome.metrics)
        values = self._outcome_values(outcome)
        with self._write() as conn:
            self._require_running(conn, sweep_id, "sweep", SweepNotFoundError)
            if status == "failed":
                self._set_failed(conn, sweep_id, out["error"], summary)
                return
            conn.execute(SET_DONE, (_iso(_now_ms()), *values, sweep_id))
            conn.executemany(INSERT_METRIC, rows)

    def resume_sweep(self, sweep_id: str) -> SweepRecord:
        """Take over a running (or incomplete) sweep: this process becomes its owner."""
        with self._write() as conn:
            self._require_running(conn, sweep_id, "sweep", SweepNotFoundError)
            conn.execute("UPDATE runs SET pid = ?, hostname = ?, process = ? WHERE id = ?",
                         (self._pid, self._host, self._process, sweep_id))
        return self.get_sweep(sweep_id)

    # -- reading

    def list_runs(self, spec: str | None = None, limit: int | None = 50,
                  status: State | None = None, *, sweep_id: str | None = None,
                  kind: str | None = None, parent: str | None = None,
                  top_level: bool = False, since: str | None = None) -> list[RunRecord]:
        """Newest first; ``status`` filters by state (``incomplete`` included); ``parent``
        (or ``sweep_id``) keeps one run's children; ``top_level`` hides every child run;
        ``since`` (an ISO time as ``created_at`` is written) keeps the runs created then or
        later."""
        where, args = [], []
        if since is not None:
            where.append("r.created_at >= ?")
            args.append(since)
        for column, value in (("spec", spec), ("parent_id", sweep_id), ("parent_id", parent),
                              ("kind", kind)):
            if value is not None:
                where.append(f"r.{column} = ?")
                args.append(value)
        if top_level:
            where.append("r.parent_id IS NULL")
        if status is not None:
            if status not in STATES:
                raise ValueError(f"unknown status {status!r}")
            where.append("r.status = ?")
            args.append("running" if status == "incomplete" else status)
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        post_filter = status in ("running", "incomplete")
        sql = (SELECT_RUNS + (" WHERE " + " AND ".join(where) if where else "") + NEWEST_FIRST
               + (f" LIMIT {int(limit)}" if limit is not None and not post_filter else ""))
        records = [_record(row) for row in self._read(sql, args)]
        if post_filter:
            records = [r for r in records if r.state == status]
        return records[:limit] if limit is not None else records

    def get_run(self, id_or_prefix: str) -> RunRecord:
        """The run (of any kind, a sweep included) with this id, or the only run whose id
        starts with it (≥ 4 characters)."""
        with self._lock:
            row = self._by_prefix(id_or_prefix, (RUN_PREFIX, SWEEP_PREFIX), None,
                                  RunNotFoundError)
        return _record(row)

    def _by_prefix(self, query_text: str, prefixes: Sequence[str], kind: str | None,
                   error: type[RunNotFoundError]) -> sqlite3.Row:
        """The one run whose id is or starts with ``query_text`` (lock held)."""
        noun = "run" if kind is None else kind
        query = query_text.strip().lower()
        if len(query) < MIN_PREFIX:
            raise error(query_text, reason=f"`{query_text}` is too short to name a {noun} "
                        f"(give at least {MIN_PREFIX} characters)")
        if not re.fullmatch(rf"[{''.join(prefixes)}][0-9a-f]{{0,{ID_HEX}}}", query):
            raise error(query_text, reason=f"`{query_text}` is not a {noun} id "
                        f"(ids look like {prefixes[0]}0123456789ab)")
        sql = SELECT_RUNS + " WHERE r.id GLOB ?" + (" AND r.kind = ?" if kind else "")
        rows = self._connection().execute(sql + " ORDER BY r.id LIMIT 11",
                                          (query + "*", *((kind,) if kind else ()))).fetchall()
        if len(rows) != 1:
            raise error(query_text, [row["id"] for row in rows])
        return rows[0]  # type: ignore[no-any-return]

    def child_runs(self, parent_id: str, limit: int | None = None) -> list[RunRecord]:
        """The children of a run (a sweep's trials, a walk-forward's windows), oldest first."""
        sql = SELECT_RUNS + " WHERE r.parent_id = ? ORDER BY r.id"
        return [_record(row) for row in self._read(
            sql + (f" LIMIT {int(limit)}" if limit is not None else ""), (parent_id,))]

    def metric_rows(self, run_id: str) -> dict[str, float | None]:
        """The normalised ``metrics`` rows of one run (empty unless it is done)."""
        rows = self._read("SELECT name, value FROM metrics WHERE run_id = ? ORDER BY name",
                          (run_id,))
        return {row[0]: row[1] for row in rows}

    def compare(self, a: str, b: str) -> RunComparison:
        return compare_records(self.get_run(a), self.get_run(b))

    def get_sweep(self, id_or_prefix: str) -> SweepRecord:
        """The sweep with this id, or the only sweep whose id starts with it (≥ 4 characters)."""
        with self._lock:
            row = self._by_prefix(id_or_prefix, (SWEEP_PREFIX,), "sweep", SweepNotFoundError)
        return _sweep_record(row)

    def list_sweeps(self, spec: str | None = None, *, lineage: str | None = None,
                    limit: int | None = 50) -> list[SweepRecord]:
        """Newest first, optionally only those of one spec or lineage."""
        where, args = ["r.kind = 'sweep'"], []
        for column, value in (("spec", spec), ("lineage", lineage)):
            if value is not None:
                where.append(f"r.{column} = ?")
                args.append(value)
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        sql = (SELECT_RUNS + " WHERE " + " AND ".join(where) + NEWEST_FIRST
               + (f" LIMIT {int(limit)}" if limit is not None else ""))
        return [_sweep_record(row) for row in self._read(sql, args)]

    def sweep_runs(self, sweep_id: str) -> list[RunRecord]:
        """Every run of a sweep, oldest first (a block's runs in its row order)."""
        return self.child_runs(sweep_id)

    def trial_count(self, lineage: str) -> int:
        """Every run ever started for this lineage, of a kind that counts as a trial
        (backtests, sweep trials), except those that failed.

        Done runs count, and so do running and incomplete ones: their result may have been
        seen before the record was finished. A failed run produced no result to select on.
        Runs are never deleted, so this number only grows.
        """
        rows = self._read("SELECT count(*) FROM runs WHERE lineage = ? AND status != 'failed' "
                          "AND kind IN (SELECT kind FROM run_kinds WHERE trial = 1)",
                          (lineage,))
        return int(rows[0][0])

    def kinds(self) -> list[KindRecord]:
        """The kinds of run this registry knows (``run_kinds``), in name order."""
        rows = self._read("SELECT kind, description, parent_kind, trial FROM run_kinds "
                          "ORDER BY kind")
        return [KindRecord(row[0], row[1], row[2], bool(row[3])) for row in rows]


def _block_rows(names: Sequence[str], combos: NDArray, metrics: Mapping[str, NDArray],
                timing_per_combo: float | Sequence[float] | NDArray
                ) -> tuple[list[dict[str, float]], list[dict[str, Number]], list[float]]:
    """A sweep block as per-row params, metrics and seconds; ``ValueError`` for bad shapes."""
    import numpy as np

    values = np.asarray(combos, dtype=np.float64)
    k = values.shape[0] if values.ndim == 2 else 0
    if values.shape != (k, len(names)) and values.size:
        raise ValueError(f"combos has shape {values.shape}, expected (K, {len(names)})")
    columns: dict[str, list[float]] = {}
    for name, column in sorted(metrics.items()):
        array = np.asarray(column, dtype=np.float64)
        if array.shape != (k,):
            raise ValueError(f"metric {name!r} has shape {array.shape}, expected ({k},)")
        columns[str(name)] = array.tolist()
    timing = np.broadcast_to(np.asarray(timing_per_combo, dtype=np.float64), (k,)).tolist()
    params = [dict(zip(names, row, strict=True)) for row in values.tolist()] if k else []
    per_run = [{name: _block_value(name, column[i]) for name, column in columns.items()}
               for i in range(k)]
    return params, per_run, timing


def _settings_dict(settings: Any) -> dict[str, Any]:
    """A run's settings as a mapping: a pydantic model's dump, or a dataclass's fields."""
    dump = getattr(settings, "model_dump", None)
    if callable(dump):
        return dict(dump())
    if is_dataclass(settings) and not isinstance(settings, type):
        return asdict(settings)
    raise TypeError(f"cannot record settings of type {type(settings).__name__}")


def _trades(metrics: Mapping[str, Number]) -> int | None:
    trades = metrics.get("trades")
    return trades if isinstance(trades, int) else None


__all__ = [
    "MIGRATIONS", "SCHEMA_VERSION", "Child", "DataRange", "Difference", "KindRecord",
    "MetricRow", "Migration", "Registry", "RegistryError", "RunComparison", "RunNotFoundError",
    "RunOutcome", "RunRecord", "RunStart", "SweepNotFoundError", "SweepRecord",
    "canonical_json", "compare_records", "new_id", "registry_path", "top_level_only",
]
