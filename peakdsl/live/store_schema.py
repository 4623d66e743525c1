"""Opening the live state store: its schema, the one-writer lock, and every refusal (E020–E027).

A live store is one SQLite file per deployment. Opening it for writing first takes an
exclusive ``flock`` on a sibling ``<name>.lock`` file (the kernel drops it when the holder
dies, even by SIGKILL, so a crashed runner never leaves a stale lock), then checks the file
*before* writing anything: a SQLite header, ``PRAGMA quick_check``, our ``meta`` table with the
store's kind and a ``schema_version`` this peak knows. Only a missing, empty or table-less file
gets the schema (in one transaction); anything else that is not a valid store is refused with a
coded diagnostic and left exactly as it was. Versions are never migrated silently.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from ..failures import REASONS
from ..lang.diagnostics import Diagnostic, diag
from .store_rows import ORDER_STATUSES, ORDER_TYPES, RISK_DECISIONS, SESSION_STATUSES, SIDES

SCHEMA_VERSION = 1
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
{_undeletable("kill_switch", "kill switch rows")}
INSERT INTO meta VALUES ('kind', '{STORE_KIND}'), ('schema_version', '{SCHEMA_VERSION}');
"""
TABLES = frozenset({"meta", "sessions", "log", "intents", "orders", "fills", "positions",
                    "kill_switch", "cursors", "snapshot", "snapshot_arrays", "used_tokens"})

HELP = {
    "E020": "one runner per deployment: stop the other `peak live run` first (its lock is "
            "released when it exits, even when it is killed); status commands read the store "
            "without the lock",
    "E021": "peak never repairs or overwrites it: restore it from a backup, or move it away "
            "(keep it for inspection) and start again; a new store reconciles with the "
            "exchange before the strategy may act",
    "E022": "this store was written by another version of peak: use that version (peak "
            "never migrates a live store silently)",
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


def check_store(conn: sqlite3.Connection, path: Path) -> bool:
    """Validate an existing file without writing to it; False when it holds no tables yet
    (a store whose creation never committed), True for a valid store. Refusals: E021, E022."""
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise refusal("E021", path, f"{path} is damaged: {problems[0]}")
    tables = {str(r[0]) for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    if not tables:
        return False
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) \
        if "meta" in tables else {}
    if meta.get("kind") != STORE_KIND:
        raise refusal("E021", path, f"{path} is an SQLite database but not a peak live store")
    _check_version(meta.get("schema_version"), path)
    missing = TABLES - tables
    if missing:
        raise refusal("E021", path, f"{path} lacks the tables {', '.join(sorted(missing))}")
    return True


def _check_version(value: object, path: Path) -> None:
    if value != str(SCHEMA_VERSION):
        raise refusal("E022", path, f"{path} has schema version {value}; this peak reads "
                      f"version {SCHEMA_VERSION} only")


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
