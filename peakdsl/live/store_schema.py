"""Opening the live state store: its schema, the one-writer lock, and every refusal (E020–E027).

A live store is one SQLite file per deployment. Opening it for writing first takes an
exclusive ``flock`` on a sibling ``<name>.lock`` file (the kernel drops it when the holder
dies, even by SIGKILL, so a crashed runner never leaves a stale lock), then checks the file
*before* writing anything: a SQLite header, ``PRAGMA quick_check``, our ``meta`` table with the
store's kind and a ``schema_version`` this peak knows. Only a missing, empty or table-less file
gets the schema (in one transaction); anything else that is not a valid store is refused with a
coded diagnostic and left exactly as it was.

Versions only move forward, and only under the writer lock: a writer that opens a store of an
older version this peak knows applies the ``MIGRATIONS`` after it in one transaction (all or
nothing) and records each in ``meta`` (``migration_<version>``, with the last bar saved before
it); a reader (status, reports) reads an older store as it is, without the newer tables. A
version newer than this peak's is refused (E022): guessing at a newer layout could lose state.

Version 2 adds ``equity``, the append-only history of the book's equity, cash and exposure at
every saved bar (``LiveStore.save_bar`` writes it in the snapshot's transaction), which the
status reports read (``peakdsl.live.report``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from ..failures import REASONS
from ..lang.diagnostics import Diagnostic, diag
from .store_rows import ORDER_STATUSES, ORDER_TYPES, RISK_DECISIONS, SESSION_STATUSES, SIDES

SCHEMA_VERSION = 2
OLDEST_VERSION = 1  # the oldest version a writer migrates and a reader reads
STORE_KIND = "peak-live-state"
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5_000


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _append_only(table: str, what: str) -> str:
    return (f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{what} are append-only'); END;\n"
            + _undeletable(table, what))


def _undeletable(table: str, what: str) -> str:
    return (f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{what} are never deleted'); END;\n")


# version 2: the book's equity after every saved bar (bar times only move forward, so the
# bar time is the key); written with the snapshot, never changed
EQUITY_SCHEMA = f"""CREATE TABLE equity (
    bar_time INTEGER PRIMARY KEY, session TEXT NOT NULL REFERENCES sessions(id),
    equity REAL NOT NULL, cash REAL NOT NULL, exposure REAL NOT NULL, risk TEXT NOT NULL);
{_append_only("equity", "equity history rows")}"""

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, artifact_sha256 TEXT NOT NULL,
    mode TEXT NOT NULL, account TEXT NOT NULL, exchange TEXT NOT NULL, params TEXT NOT NULL,
    started_at INTEGER NOT NULL, ended_at INTEGER,
    status TEXT NOT NULL CHECK (status IN {_in(SESSION_STATUSES)}));
CREATE TABLE log (
    seq INTEGER PRIMARY KEY, session TEXT REFERENCES sessions(id), at INTEGER NOT NULL,
    level TEXT NOT NULL, event TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE intents (
    id TEXT PRIMARY KEY, session TEXT NOT NULL REFERENCES sessions(id),
    slot INTEGER NOT NULL, bar INTEGER NOT NULL, leg INTEGER NOT NULL, market TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN {_in(SIDES)}), qty REAL NOT NULL,
    approved_qty REAL NOT NULL, decision TEXT NOT NULL CHECK (decision IN {_in(RISK_DECISIONS)}),
    risk_reason TEXT NOT NULL, reason TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY, intent_id TEXT REFERENCES intents(id),
    market TEXT NOT NULL, side TEXT NOT NULL CHECK (side IN {_in(SIDES)}),
    type TEXT NOT NULL CHECK (type IN {_in(ORDER_TYPES)}), qty REAL NOT NULL, price REAL,
    attempt INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN {_in(ORDER_STATUSES)}),
    exchange_order_id TEXT, filled_qty REAL NOT NULL, average_price REAL NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (intent_id, attempt));
CREATE INDEX orders_by_status ON orders (status);
CREATE TABLE fills (
    market TEXT NOT NULL, trade_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL REFERENCES orders(client_order_id),
    side TEXT NOT NULL CHECK (side IN {_in(SIDES)}), qty REAL NOT NULL, price REAL NOT NULL,
    fee REAL NOT NULL, fee_currency TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (market, trade_id)) WITHOUT ROWID;
CREATE INDEX fills_by_order ON fills (client_order_id);
CREATE TABLE positions (
    market TEXT PRIMARY KEY, qty REAL NOT NULL, average_price REAL NOT NULL,
    realized_pnl REAL NOT NULL, fees REAL NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE kill_switch (
    id INTEGER PRIMARY KEY CHECK (id = 1), engaged INTEGER NOT NULL CHECK (engaged IN (0, 1)),
    reason TEXT NOT NULL, by TEXT NOT NULL, at INTEGER);
INSERT INTO kill_switch VALUES (1, 0, '', '', NULL);
CREATE TABLE cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1), session TEXT NOT NULL REFERENCES sessions(id),
    bar_time INTEGER NOT NULL);
CREATE TABLE snapshot_arrays (
    name TEXT PRIMARY KEY, dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB NOT NULL)
    WITHOUT ROWID;
CREATE TABLE used_tokens (digest TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
{_append_only("log", "session log entries")}{_append_only("intents", "intents")}\
{_append_only("fills", "fills")}{_append_only("used_tokens", "used arming tokens")}\
{_undeletable("sessions", "sessions")}{_undeletable("orders", "orders")}\
{_undeletable("kill_switch", "kill switch rows")}\
{EQUITY_SCHEMA}\
INSERT INTO meta VALUES ('kind', '{STORE_KIND}'), ('schema_version', '{SCHEMA_VERSION}');
"""
# version → the statements that turn a store of the version before into one of it
MIGRATIONS: dict[int, str] = {2: EQUITY_SCHEMA}
TABLES_SINCE: dict[str, int] = {"equity": 2}  # tables a later version added
TABLES = frozenset({"meta", "sessions", "log", "intents", "orders", "fills", "positions",
                    "kill_switch", "cursors", "snapshot", "snapshot_arrays", "used_tokens",
                    *TABLES_SINCE})

HELP = {
    "E020": "one runner per deployment: stop the other `peak live run` first (its lock is "
            "released when it exits, even when it is killed); status commands read the store "
            "without the lock",
    "E021": "peak never repairs or overwrites it: restore it from a backup, or move it away "
            "(keep it for inspection) and start again; a new store reconciles with the "
            "exchange before the strategy may act",
    "E022": "this store was written by a newer version of peak, or its version is damaged: "
            "use that version of peak (a store is migrated forward by a writer of a newer "
            "peak, never back)",
    "E023": "check the path; a store is created by `peak live run`",
    "E024": "check that the folder exists or can be created, is writable and has free space",
    "E025": "the deployment is not the one this store belongs to, or a restart decided "
            "differently from before: check the spec, params, mode and account; nothing "
            "was written",
    "E026": "the exchange reports a trade peak cannot attribute: stop the runner and "
            "reconcile the account by hand; nothing was written",
    "E027": "pay fees in the market's base or quote currency (turn off paying fees with "
            "another asset, such as BNB)",
}


def os_reason(exc: OSError) -> str:
    """What an OS refusal means for a path peak writes, in words."""
    return REASONS.get(exc.errno or 0, exc.strerror or str(exc))


class StoreError(Exception):
    """The live store refuses: ``diagnostics`` says why (coded E02x errors)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        self.diagnostics: tuple[Diagnostic, ...] = (diagnostic,)
        super().__init__(f"{diagnostic.code} {diagnostic.message}")


def refusal(code: str, path: Path, message: str) -> StoreError:
    """A ``StoreError`` with its code's help line, located at the store file."""
    return StoreError(diag(code, message, str(path), help=HELP[code]))


# ---------------------------------------------------------------- the writer lock

def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def acquire_lock(path: Path) -> int:
    """An exclusive, non-blocking ``flock`` on ``<path>.lock``; its fd (closing it unlocks).

    Held by another opener → E020 (naming its pid when it wrote one); a file system without
    locks → E020 too: without the lock, two runners could both send orders (fail closed).
    """
    target = lock_path(path)
    try:
        fd = os.open(target, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise refusal("E024", path, f"cannot create the lock file {target}: "
                      f"{os_reason(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd)
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise refusal("E020", path, f"{path} is already open for writing (its lock is held"
                          f"{holder})") from None
        raise refusal("E020", path, f"cannot lock {target}: {exc.strerror or exc}; "
                      "peak refuses to write a live store it cannot lock") from None
    _write_pid(fd)
    return fd


def _holder(fd: int) -> str:
    """`` by pid N`` from the lock file, or nothing when it holds no pid."""
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        if text.isdigit():
            return f" by pid {int(text)}"
    return ""


def _write_pid(fd: int) -> None:
    """Our pid in the lock file, for E020's message (best effort: it is only a hint)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)


# ---------------------------------------------------------------- checking a file

def header_state(path: Path) -> str:
    """``missing``, ``empty`` or ``sqlite``; E021 for anything else (a folder, another
    format, a file that cannot be read)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        raise refusal("E021", path, f"cannot read {path}: {os_reason(exc)}") from None
    if not head:
        return "empty"
    if head != SQLITE_HEADER:
        raise refusal("E021", path, f"{path} is not an SQLite database")
    return "sqlite"


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit); read-only never creates."""
    target = f"file:{quote(str(path.resolve()))}?mode={'ro' if readonly else 'rwc'}"
    try:
        conn = sqlite3.connect(target, uri=True, isolation_level=None,
                               check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise refusal("E021", path, f"cannot open {path}: {exc}") from None
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def check_store(conn: sqlite3.Connection, path: Path) -> int | None:
    """Validate an existing file without writing to it: its schema version, or None when it
    holds no tables yet (a store whose creation never committed). Refusals: E021, E022."""
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise refusal("E021", path, f"{path} is damaged: {problems[0]}")
    tables = {str(r[0]) for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    if not tables:
        return None
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) \
        if "meta" in tables else {}
    if meta.get("kind") != STORE_KIND:
        raise refusal("E021", path, f"{path} is an SQLite database but not a peak live store")
    version = _check_version(meta.get("schema_version"), path)
    missing = tables_of(version) - tables
    if missing:
        raise refusal("E021", path, f"{path} lacks the tables {', '.join(sorted(missing))}")
    return version


def tables_of(version: int) -> frozenset[str]:
    """The tables a store of ``version`` has."""
    return frozenset(t for t in TABLES if TABLES_SINCE.get(t, OLDEST_VERSION) <= version)


def _check_version(value: object, path: Path) -> int:
    known = [str(v) for v in range(OLDEST_VERSION, SCHEMA_VERSION + 1)]
    if value not in known:
        raise refusal("E022", path, f"{path} has schema version {value}; this peak reads "
                      f"versions {OLDEST_VERSION} to {SCHEMA_VERSION}")
    return int(str(value))


def migrate(conn: sqlite3.Connection, version: int) -> int:
    """Bring a store of ``version`` to ``SCHEMA_VERSION`` in one transaction, recording each
    migration in ``meta``; the version it had. Only a writer (holding the lock) calls it."""
    if version >= SCHEMA_VERSION:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            _migrate_to(conn, target)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return version


def _migrate_to(conn: sqlite3.Connection, target: int) -> None:
    """One migration: its statements, the new version and ``migration_<target>`` =
    ``{"from": …, "last_bar": …}`` (the last bar saved before it, or null)."""
    for statement in _statements(MIGRATIONS[target]):
        conn.execute(statement)
    row = conn.execute("SELECT bar_time FROM snapshot WHERE id = 1").fetchone()
    record = json.dumps({"from": target - 1, "last_bar": None if row is None else row[0]},
                        sort_keys=True)
    conn.execute("INSERT INTO meta VALUES (?, ?)", (f"migration_{target}", record))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(target),))


def create_schema(conn: sqlite3.Connection) -> None:
    """The whole schema in one transaction: a crash leaves a store with no tables."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(SCHEMA):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` (``executescript`` would commit our transaction)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement: {buffer.strip()[:60]}")


def set_pragmas(conn: sqlite3.Connection, path: Path) -> None:
    """WAL (a writer never blocks readers), synchronous=FULL (a commit survives power loss),
    foreign keys enforced."""
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    if mode != "wal":
        raise refusal("E024", path, f"{path} cannot use WAL journaling here (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def database_failure(exc: sqlite3.Error, path: Path) -> StoreError | None:
    """A database error outside the caller's control as E021 (damaged) or E024 (cannot be
    written: full disk, I/O error, read-only file system); None for a bug in peak (a
    constraint or trigger violated, a misused API), which must surface as it is."""
    text = str(exc)
    if type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text:
        return refusal("E021", path, f"{path} is damaged: {text}")
    if isinstance(exc, sqlite3.OperationalError):
        return refusal("E024", path, f"cannot write {path}: {text}")
    return None


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """Database errors the caller cannot prevent leave as coded refusals (E021/E024)."""
    try:
        yield
    except sqlite3.Error as exc:
        failure = database_failure(exc, path)
        if failure is None:
            raise
        raise failure from None
