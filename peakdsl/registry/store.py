"""The run registry: one SQLite file under ``<project>/.peak/``, append-only, crash-consistent.

Every backtest is a row in ``runs`` (what ran: spec, artifact hash, data fingerprint, params,
settings, seed, engine version; how it went: metrics, timing, trades, warnings). A run is
written in two committed transactions: ``start_run`` inserts it as ``running``;
``finish_run`` sets it ``done`` *and* writes its metrics in one transaction, so a reader sees
either a finished run with all its metrics or an unfinished one with none. A process killed in
between leaves a ``running`` row whose process is gone; queries report it as ``incomplete``.

The file is opened in WAL mode with ``synchronous=FULL`` (a commit survives power loss, not
just a crash of peak) and ``foreign_keys=ON``. Writers take the lock up front
(``BEGIN IMMEDIATE``) and wait up to the busy timeout, so several processes may record runs at
once. Triggers make finished runs immutable and rows undeletable: ``trial_count`` (the number
of trials behind a result, for the deflated Sharpe ratio) can only grow.

Schema changes are forward migrations, applied in order on open and listed in
``schema_version``; a registry written by a newer peak is refused, never rewritten.
See docs/registry.md.
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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ..atomic import folder_lock, write_atomic

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
RUN_PREFIX, SWEEP_PREFIX = "r", "s"

Status = Literal["running", "done", "failed"]
State = Literal["running", "incomplete", "done", "failed"]
STATES: tuple[State, ...] = ("running", "incomplete", "done", "failed")
Number = float | int | None


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


# ------------------------------------------------------------------------------ schema

@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, metrics and sweeps", (
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
        """CREATE TRIGGER metrics_only_when_done BEFORE INSERT ON metrics
           WHEN (SELECT status FROM runs WHERE id = NEW.run_id) IS NOT 'done'
           BEGIN SELECT RAISE(ABORT, 'metrics belong to finished runs'); END""",
        """CREATE TRIGGER metrics_immutable BEFORE UPDATE ON metrics
           BEGIN SELECT RAISE(ABORT, 'metrics are immutable'); END""",
        """CREATE TRIGGER metrics_append_only BEFORE DELETE ON metrics
           BEGIN SELECT RAISE(ABORT, 'metrics are never deleted'); END""",
    )),
    Migration(2, "sweep status, summary and owner", (
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
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def registry_path(root: Path) -> Path:
    """Where the registry of the project at ``root`` lives (it may not exist yet)."""
    return Path(root) / REGISTRY_DIR / REGISTRY_FILE


# ------------------------------------------------------------------------- encoding

def _plain(value: Any) -> Any:
    """JSON-ready: NaN → null, ±inf → "inf"/"-inf", numpy scalars → Python, tuples → lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _plain(item())
    raise TypeError(f"cannot record a value of type {type(value).__name__}: {value!r}")


def canonical_json(value: Any) -> str:
    """The one encoding the registry stores: sorted keys, compact, standard JSON only."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False)


def _number(value: Any) -> Any:
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return value


def _decode(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    return {k: _number(v) for k, v in json.loads(text).items()}


def _metric_value(name: str, value: Any) -> float | None:
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, int | float):
        value = item()
    if not isinstance(value, int | float):
        raise TypeError(f"metric {name!r} is not a number: {value!r}")
    value = float(value)
    return None if math.isnan(value) else value


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


# ------------------------------------------------------------------------- records

@dataclass(frozen=True)
class RunRecord:
    """One recorded run. ``status`` is as stored; ``state`` adds ``incomplete`` for a
    ``running`` row whose process is gone (killed, crashed, machine rebooted)."""

    id: str
    kind: str
    spec: str
    lineage: str
    sweep_id: str | None
    status: Status
    state: State
    created_at: str
    finished_at: str | None
    artifact_sha256: str
    data_fingerprint: str
    data_source: str
    data_start: str | None
    data_end: str | None
    data_bars: int | None
    market: str | None
    timeframe: str | None
    params: dict[str, Any]
    seed: int | None
    engine_version: str
    settings: dict[str, Any]
    metrics: dict[str, Number]
    timing: dict[str, float]
    trades: int | None
    warnings: tuple[str, ...]
    error: str | None
    pid: int
    hostname: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers encoded as in the registry)."""
        out: dict[str, Any] = _plain(asdict(self))
        return out


@dataclass(frozen=True)
class SweepRecord:
    """One recorded sweep. ``state`` adds ``incomplete`` for a ``running`` sweep whose
    process is gone (it can be resumed); ``runs`` counts its recorded trials."""

    id: str
    spec: str
    lineage: str
    status: Status
    state: State
    created_at: str
    finished_at: str | None
    config: dict[str, Any]
    summary: dict[str, Any] | None
    runs: int
    pid: int | None
    hostname: str | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _plain(asdict(self))
        return out


@dataclass(frozen=True)
class Difference:
    name: str
    a: Any
    b: Any


@dataclass(frozen=True)
class MetricRow:
    name: str
    a: Number
    b: Number
    delta: float | int | None  # b - a when both are finite numbers


@dataclass(frozen=True)
class RunComparison:
    """Two runs side by side: what differs in what ran, and how the results differ."""

    a: RunRecord
    b: RunRecord
    same_spec: bool
    same_artifact: bool
    same_data: bool
    same_engine: bool
    same_seed: bool
    params: tuple[Difference, ...]  # only the params that differ
    settings: tuple[Difference, ...]  # only the settings that differ
    metrics: tuple[MetricRow, ...]  # every metric of either run

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.to_dict(), "b": self.b.to_dict(),
            "same": {"spec": self.same_spec, "artifact": self.same_artifact,
                     "data": self.same_data, "engine": self.same_engine,
                     "seed": self.same_seed},
            "params": [_plain(asdict(d)) for d in self.params],
            "settings": [_plain(asdict(d)) for d in self.settings],
            "metrics": [_plain(asdict(m)) for m in self.metrics],
        }


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[Difference, ...]:
    return tuple(Difference(name, a.get(name), b.get(name))
                 for name in sorted(set(a) | set(b))
                 if (name in a) != (name in b) or _plain(a.get(name)) != _plain(b.get(name)))


def _delta(a: Number, b: Number) -> float | int | None:
    """``b - a`` when both are finite numbers (an int when both are ints), else None."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if isinstance(a, int) and isinstance(b, int):
        return b - a
    if isinstance(a, int | float) and isinstance(b, int | float) \
            and math.isfinite(a) and math.isfinite(b):
        return float(b) - float(a)
    return None


def compare_records(a: RunRecord, b: RunRecord) -> RunComparison:
    names = sorted(set(a.metrics) | set(b.metrics))
    rows = tuple(MetricRow(n, a.metrics.get(n), b.metrics.get(n),
                           _delta(a.metrics.get(n), b.metrics.get(n))) for n in names)
    return RunComparison(
        a=a, b=b, same_spec=a.spec == b.spec, same_artifact=a.artifact_sha256 == b.artifact_sha256,
        same_data=a.data_fingerprint == b.data_fingerprint,
        same_engine=a.engine_version == b.engine_version, same_seed=a.seed == b.seed,
        params=_differences(a.params, b.params), settings=_differences(a.settings, b.settings),
        metrics=rows)


def _record(row: sqlite3.Row) -> RunRecord:
    status: Status = row["status"]
    state: State = status
    if status == "running" and process_alive(row["pid"], row["hostname"],
                                             row["process"]) is False:
        state = "incomplete"
    return RunRecord(
        id=row["id"], kind=row["kind"], spec=row["spec"], lineage=row["lineage"],
        sweep_id=row["sweep_id"], status=status, state=state, created_at=row["created_at"],
        finished_at=row["finished_at"], artifact_sha256=row["artifact_sha256"],
        data_fingerprint=row["data_fingerprint"], data_source=row["data_source"],
        data_start=row["data_start"], data_end=row["data_end"], data_bars=row["data_bars"],
        market=row["market"], timeframe=row["timeframe"], params=_decode(row["params"]),
        seed=row["seed"], engine_version=row["engine_version"],
        settings=_decode(row["settings"]), metrics=_decode(row["metrics"]),
        timing=_decode(row["timing"]),
        trades=row["trades"], warnings=tuple(json.loads(row["warnings"] or "[]")),
        error=row["error"], pid=row["pid"], hostname=row["hostname"],
    )


def _sweep_record(row: sqlite3.Row, runs: int) -> SweepRecord:
    status: Status = row["status"]
    state: State = status
    if status == "running" and (row["pid"] is None or process_alive(
            row["pid"], row["hostname"], row["process"]) is False):
        state = "incomplete"  # its process is gone (or it predates recorded owners)
    return SweepRecord(
        id=row["id"], spec=row["spec"] or row["lineage"], lineage=row["lineage"],
        status=status, state=state, created_at=row["created_at"],
        finished_at=row["finished_at"], config=_decode(row["config"]),
        summary=None if row["summary"] is None else _decode(row["summary"]), runs=runs,
        pid=row["pid"], hostname=row["hostname"])


INT_METRICS = frozenset({"trades", "max_drawdown_bars", "ambiguous_bars"})


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

    One SQLite connection per object, guarded by a lock, so an object may be shared by
    threads; other processes open their own (the database does the locking). An object
    must not be used in a child after ``fork()``. Use it as a context manager, or ``close()``.
    """

    def __init__(self, root: Path, *, timeout: float = BUSY_TIMEOUT_S) -> None:
        self.root = Path(root)
        self.path = registry_path(self.root)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._host = socket.gethostname()
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

    def _migrate(self) -> None:
        with self._lock:
            if self._version_now(self._connection()) == SCHEMA_VERSION:
                return
        with self._write() as conn:
            current = self._version_now(conn)
            if current > SCHEMA_VERSION:
                raise RegistryError(
                    f"{self.path} has schema version {current}, newer than this peak knows "
                    f"({SCHEMA_VERSION}); upgrade peak to use it")
            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version, description, applied_at) "
                             "VALUES (?, ?, ?)",
                             (migration.version, migration.description, _iso(_now_ms())))

    @staticmethod
    def _version_now(conn: sqlite3.Connection) -> int:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'schema_version'").fetchone():
            return 0
        return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version"
                                ).fetchone()[0])

    def _insert_with_new_id(self, conn: sqlite3.Connection, prefix: str, sql: str,
                            values: Sequence[Any]) -> str:
        for _ in range(ID_RETRIES):
            new = new_id(prefix)
            try:
                conn.execute("SAVEPOINT new_id")
                conn.execute(sql, (new, id_time(new), *values))
                conn.execute("RELEASE new_id")
                return new
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK TO new_id")
                conn.execute("RELEASE new_id")
                if "UNIQUE" not in str(exc) or ".id" not in str(exc):
                    raise
        raise RegistryError("could not draw a unique id")  # pragma: no cover

    # -- writing

    def start_sweep(self, spec: str, config: Mapping[str, Any], *,
                    lineage: str | None = None) -> str:
        """Open a sweep (a group of trials), owned by this process; record its trials with
        ``record_sweep_block`` (or pass its id as ``sweep_id`` to ``start_run``) and close it
        with ``finish_sweep``."""
        config_json = canonical_json(config)
        with self._write() as conn:
            return self._insert_with_new_id(
                conn, SWEEP_PREFIX,
                "INSERT INTO sweeps (id, created_at, spec, lineage, config, pid, hostname, "
                "process) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (spec, lineage or spec, config_json, self._pid, self._host, self._process))

    def record_sweep_block(self, sweep_id: str, spec: str, artifact_sha256: str,
                           data_fingerprint: str, data_source: str, engine_version: str,
                           settings: Mapping[str, Any], names: Sequence[str],
                           combos: NDArray, metrics: Mapping[str, NDArray],
                           timing_per_combo: float | Sequence[float] | NDArray, *,
                           seed: int | None = None, kind: str = "sweep_trial",
                           market: str | None = None, timeframe: str | None = None,
                           data_start: str | None = None, data_end: str | None = None,
                           data_bars: int | None = None) -> list[str]:
        """Record a block of finished trials of a running sweep; returns their run ids in
        row order.

        One run per row of ``combos`` (params: ``names`` → the row's values), already
        ``done``, with ``metrics[name][row]`` as its metrics (NaN: undefined, stored as null)
        and ``timing_per_combo`` (seconds, one number for all rows or one per row) as its
        timing. All runs and metric rows are written in one transaction: a crash leaves the
        whole block or none of it. The runs take the sweep's lineage, so ``trial_count``
        counts them.
        """
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
        if k == 0:
            return []
        params = [canonical_json(dict(zip(names, row, strict=True))) for row in values.tolist()]
        per_run = [{name: _block_value(name, column[i]) for name, column in columns.items()}
                   for i in range(k)]
        metrics_json = [canonical_json(row) for row in per_run]
        timing_json = [canonical_json({"total": t}) for t in timing]
        trades = [row.get("trades") if isinstance(row.get("trades"), int) else None
                  for row in per_run]
        settings_json = canonical_json(settings)
        finished = _iso(_now_ms())
        sql = ("INSERT INTO runs (id, created_at, status, finished_at, kind, spec, lineage, "
               "sweep_id, artifact_sha256, data_fingerprint, data_source, data_start, "
               "data_end, data_bars, market, timeframe, params, seed, engine_version, "
               "settings, metrics, timing, trades, warnings, pid, hostname, process) "
               "VALUES (?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
               "?, '[]', ?, ?, ?)")
        with self._write() as conn:
            row = conn.execute("SELECT lineage, status FROM sweeps WHERE id = ?",
                               (sweep_id,)).fetchone()
            if row is None:
                raise RegistryError(f"no sweep `{sweep_id}` in the registry")
            if row["status"] != "running":
                raise RegistryError(f"sweep {sweep_id} is already {row['status']}")
            lineage = row["lineage"]
            for _ in range(ID_RETRIES):
                ids = [new_id(RUN_PREFIX) for _ in range(k)]
                rows = [(run_id, id_time(run_id), finished, kind, spec, lineage, sweep_id,
                         artifact_sha256, data_fingerprint, data_source, data_start, data_end,
                         data_bars, market, timeframe, params[i], seed, engine_version,
                         settings_json, metrics_json[i], timing_json[i], trades[i], self._pid,
                         self._host, self._process) for i, run_id in enumerate(ids)]
                conn.execute("SAVEPOINT block")
                try:
                    conn.executemany(sql, rows)
                except sqlite3.IntegrityError as exc:
                    conn.execute("ROLLBACK TO block")
                    conn.execute("RELEASE block")
                    if "UNIQUE" not in str(exc) or ".id" not in str(exc):
                        raise
                    continue
                conn.execute("RELEASE block")
                break
            else:  # pragma: no cover
                raise RegistryError("could not draw unique ids")
            conn.executemany("INSERT INTO metrics (run_id, name, value) VALUES (?, ?, ?)",
                             [(run_id, name, _metric_value(name, value))
                              for run_id, run in zip(ids, per_run, strict=True)
                              for name, value in run.items()])
        return ids

    def finish_sweep(self, sweep_id: str, summary: Mapping[str, Any], *,
                     status: Literal["done", "failed"] = "done") -> None:
        """Close a running sweep with its summary (best result, deflated Sharpe ratio, …).

        ``failed`` records a sweep that stopped for good; an interrupted sweep that may be
        resumed is left running (shown as ``incomplete`` once its process is gone).
        """
        if status not in ("done", "failed"):
            raise ValueError(f"a sweep finishes done or failed, not {status!r}")
        with self._write() as conn:
            row = conn.execute("SELECT status FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
            if row is None:
                raise SweepNotFoundError(sweep_id)
            if row["status"] != "running":
                raise RegistryError(f"sweep {sweep_id} is already {row['status']}")
            conn.execute("UPDATE sweeps SET status = ?, finished_at = ?, summary = ? "
                         "WHERE id = ?",
                         (status, _iso(_now_ms()), canonical_json(summary), sweep_id))

    def resume_sweep(self, sweep_id: str) -> SweepRecord:
        """Take over a running (or incomplete) sweep: this process becomes its owner."""
        with self._write() as conn:
            row = conn.execute("SELECT status FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
            if row is None:
                raise SweepNotFoundError(sweep_id)
            if row["status"] != "running":
                raise RegistryError(f"sweep {sweep_id} is already {row['status']}")
            conn.execute("UPDATE sweeps SET pid = ?, hostname = ?, process = ? WHERE id = ?",
                         (self._pid, self._host, self._process, sweep_id))
        return self.get_sweep(sweep_id)

    def start_run(self, kind: str, spec: str, artifact_sha256: str, data_fingerprint: str,
                  data_source: str, params: Mapping[str, Any], seed: int | None,
                  engine_version: str, settings: Mapping[str, Any],
                  sweep_id: str | None = None, *, lineage: str | None = None,
                  market: str | None = None, timeframe: str | None = None,
                  data_start: str | None = None, data_end: str | None = None,
                  data_bars: int | None = None) -> str:
        """Record that a run has begun (status ``running``, committed); returns its id.

        ``lineage`` (default: the spec name) groups the runs that count as trials of one
        idea for ``trial_count``.
        """
        values = (kind, spec, lineage or spec, sweep_id, artifact_sha256, data_fingerprint,
                  data_source, data_start, data_end, data_bars, market, timeframe,
                  canonical_json(params), seed, engine_version, canonical_json(settings),
                  self._pid, self._host, self._process)
        sql = ("INSERT INTO runs (id, created_at, status, kind, spec, lineage, sweep_id, "
               "artifact_sha256, data_fingerprint, data_source, data_start, data_end, "
               "data_bars, market, timeframe, params, seed, engine_version, settings, pid, "
               "hostname, process) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
               "?, ?, ?, ?, ?, ?, ?, ?)")
        with self._write() as conn:
            try:
                return self._insert_with_new_id(conn, RUN_PREFIX, sql, values)
            except sqlite3.IntegrityError as exc:
                if sweep_id is not None and "FOREIGN KEY" in str(exc):
                    raise RegistryError(f"no sweep `{sweep_id}` in the registry") from None
                raise

    def finish_run(self, run_id: str, metrics: Mapping[str, Any], timing: Mapping[str, float],
                   trades: int, warnings: Sequence[str] = ()) -> None:
        """Mark a running run ``done`` and store its metrics, all in one transaction."""
        rows = [(run_id, str(name), _metric_value(str(name), value))
                for name, value in sorted(metrics.items())]
        payload = (_iso(_now_ms()), canonical_json(metrics), canonical_json(timing),
                   int(trades), canonical_json(list(warnings)), run_id)
        with self._write() as conn:
            self._require_running(conn, run_id)
            conn.execute("UPDATE runs SET status = 'done', finished_at = ?, metrics = ?, "
                         "timing = ?, trades = ?, warnings = ? WHERE id = ?", payload)
            conn.executemany("INSERT INTO metrics (run_id, name, value) VALUES (?, ?, ?)", rows)

    def fail_run(self, run_id: str, error: str) -> None:
        """Mark a running run ``failed`` with the error that stopped it."""
        with self._write() as conn:
            self._require_running(conn, run_id)
            conn.execute("UPDATE runs SET status = 'failed', finished_at = ?, error = ? "
                         "WHERE id = ?", (_iso(_now_ms()), error or "failed", run_id))

    def _require_running(self, conn: sqlite3.Connection, run_id: str) -> None:
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(run_id)
        if row[0] != "running":
            raise RegistryError(f"run {run_id} is already {row[0]}")

    def record_backtest(self, result: BacktestResult, seed: int | None = None) -> str:
        """Record a finished backtest (start + finish); returns the run id."""
        index = result.candles.frame.index
        run_id = self.start_run(
            "backtest", result.spec, result.artifact_sha256, result.candles.fingerprint,
            result.candles.source, result.params, seed, result.engine_version,
            asdict(result.settings), market=result.market, timeframe=result.timeframe,
            data_start=index[0].isoformat() if len(index) else None,
            data_end=index[-1].isoformat() if len(index) else None, data_bars=len(index))
        try:
            self.finish_run(run_id, result.metrics, result.timing, result.sim.trade_count,
                            result.warnings)
        except Exception as exc:
            self.fail_run(run_id, f"{type(exc).__name__}: {exc}")
            raise
        return run_id

    # -- reading

    def list_runs(self, spec: str | None = None, limit: int | None = 50,
                  status: State | None = None, *, sweep_id: str | None = None
                  ) -> list[RunRecord]:
        """Newest first; ``status`` filters by state (``incomplete`` included)."""
        where, args = [], []
        if spec is not None:
            where.append("spec = ?")
            args.append(spec)
        if sweep_id is not None:
            where.append("sweep_id = ?")
            args.append(sweep_id)
        if status is not None:
            if status not in STATES:
                raise ValueError(f"unknown status {status!r}")
            where.append("status = ?")
            args.append("running" if status == "incomplete" else status)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC"
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        post_filter = status in ("running", "incomplete")
        if limit is not None and not post_filter:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._connection().execute(sql, args).fetchall()
        records = [_record(row) for row in rows]
        if post_filter:
            records = [r for r in records if r.state == status]
        return records[:limit] if limit is not None else records

    def get_run(self, id_or_prefix: str) -> RunRecord:
        """The run with this id, or the only run whose id starts with it (≥ 4 characters)."""
        with self._lock:
            row = self._by_prefix("runs", RUN_PREFIX, id_or_prefix, RunNotFoundError)
        return _record(row)

    def _by_prefix(self, table: str, prefix: str, query_text: str,
                   error: type[RunNotFoundError]) -> sqlite3.Row:
        """The one row of ``table`` whose id is or starts with ``query_text`` (lock held)."""
        noun = "run" if table == "runs" else "sweep"
        query = query_text.strip().lower()
        if len(query) < MIN_PREFIX:
            raise error(query_text, reason=f"`{query_text}` is too short to name a {noun} "
                        f"(give at least {MIN_PREFIX} characters)")
        if not re.fullmatch(rf"{prefix}[0-9a-f]{{0,{ID_HEX}}}", query):
            raise error(query_text, reason=f"`{query_text}` is not a {noun} id "
                        f"(ids look like {prefix}0123456789ab)")
        # `table` is "runs" or "sweeps", never user input
        rows = self._connection().execute(
            f"SELECT * FROM {table} WHERE id GLOB ? ORDER BY id LIMIT 11",
            (query + "*",)).fetchall()
        if len(rows) != 1:
            raise error(query_text, [row["id"] for row in rows])
        return rows[0]  # type: ignore[no-any-return]

    def metric_rows(self, run_id: str) -> dict[str, float | None]:
        """The normalised ``metrics`` rows of one run (empty unless it is done)."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT name, value FROM metrics WHERE run_id = ? ORDER BY name",
                (run_id,)).fetchall()
        return {row[0]: row[1] for row in rows}

    def compare(self, a: str, b: str) -> RunComparison:
        return compare_records(self.get_run(a), self.get_run(b))

    def get_sweep(self, id_or_prefix: str) -> SweepRecord:
        """The sweep with this id, or the only sweep whose id starts with it (≥ 4 characters)."""
        with self._lock:
            row = self._by_prefix("sweeps", SWEEP_PREFIX, id_or_prefix, SweepNotFoundError)
            count = self._connection().execute("SELECT count(*) FROM runs WHERE sweep_id = ?",
                                               (row["id"],)).fetchone()[0]
        return _sweep_record(row, int(count))

    def list_sweeps(self, spec: str | None = None, *, lineage: str | None = None,
                    limit: int | None = 50) -> list[SweepRecord]:
        """Newest first, optionally only those of one spec or lineage."""
        where, args = [], []
        if spec is not None:
            where.append("coalesce(s.spec, s.lineage) = ?")
            args.append(spec)
        if lineage is not None:
            where.append("s.lineage = ?")
            args.append(lineage)
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        sql = ("SELECT s.*, (SELECT count(*) FROM runs r WHERE r.sweep_id = s.id) AS n_runs "
               "FROM sweeps s" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY s.id DESC" + (f" LIMIT {int(limit)}" if limit is not None else ""))
        with self._lock:
            rows = self._connection().execute(sql, args).fetchall()
        return [_sweep_record(row, int(row["n_runs"])) for row in rows]

    def sweep_runs(self, sweep_id: str) -> list[RunRecord]:
        """Every run of a sweep, oldest first (a block's runs in its row order)."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT * FROM runs WHERE sweep_id = ? ORDER BY id", (sweep_id,)).fetchall()
        return [_record(row) for row in rows]

    def trial_count(self, lineage: str) -> int:
        """Every run ever started for this lineage, except those that failed.

        Done runs count, and so do running and incomplete ones: their result may have been
        seen before the record was finished. A failed run produced no result to select on.
        Runs are never deleted, so this number only grows.
        """
        with self._lock:
            row = self._connection().execute(
                "SELECT count(*) FROM runs WHERE lineage = ? AND status != 'failed'",
                (lineage,)).fetchone()
        return int(row[0])


__all__ = [
    "MIGRATIONS", "SCHEMA_VERSION", "Difference", "MetricRow", "Registry", "RegistryError",
    "RunComparison", "RunNotFoundError", "RunRecord", "SweepNotFoundError", "SweepRecord",
    "canonical_json", "new_id", "registry_path",
]
