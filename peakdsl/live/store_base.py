"""The plumbing of the live state store: one connection, explicit transactions, the log.

``StoreBase`` holds the connection and the writer lock's descriptor, runs every write inside
``atomic()`` (``BEGIN IMMEDIATE`` … ``COMMIT``; nested blocks are savepoints) and turns
database failures the caller cannot prevent into coded refusals (``store_schema.translated``).
The session log lives here because every part of the store appends to it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ..registry.encoding import canonical_json
from .store_rows import (
    LOG_LEVELS,
    WORD,
    Fill,
    Intent,
    LogEntry,
    LogLevel,
    Order,
    Position,
    Session,
)
from .store_schema import translated


def columns(cls: type) -> str:
    return ", ".join(f.name for f in fields(cls))


def insert_sql(table: str, names: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


INTENT_FIELDS = tuple(f.name for f in fields(Intent))
ORDER_FIELDS = tuple(f.name for f in fields(Order))
FILL_FIELDS = tuple(f.name for f in fields(Fill))
POSITION_FIELDS = tuple(f.name for f in fields(Position))
SESSION_FIELDS = tuple(f.name for f in fields(Session))
LOG_FIELDS = tuple(f.name for f in fields(LogEntry))


def differences(stored: Any, given: Any, names: Sequence[str]) -> str:
    """``qty 1.0 (stored) ≠ 2.0`` for every field that differs, for E025's message."""
    return "; ".join(f"{n} {getattr(stored, n)!r} (stored) ≠ {getattr(given, n)!r}"
                     for n in names if getattr(stored, n) != getattr(given, n))


class StoreBase:
    """The connection, transactions and session log shared by every part of ``LiveStore``.

    One object may be shared by threads (a lock serialises it) but not across ``fork()``.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, lock_fd: int | None) -> None:
        """Use ``LiveStore.open``: it takes the lock and checks the file first."""
        self.path = path
        self.readonly = lock_fd is None
        self._conn: sqlite3.Connection | None = conn
        self._lock_fd = lock_fd
        self._mutex = threading.RLock()
        self._depth = 0
        self._pid = os.getpid()
        conn.row_factory = sqlite3.Row

    def close(self) -> None:
        """Close the database, then release the writer lock (idempotent)."""
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the live store {self.path} is closed")
        if os.getpid() != self._pid:
            raise RuntimeError("a LiveStore cannot be used after fork(); open it again")
        return self._conn

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Do the writes inside as one transaction: all of them, or (on any exception) none.

        Nested blocks are savepoints: an inner failure the caller catches undoes the inner
        writes only. Refuses on a read-only store (a bug in the caller).
        """
        with self._mutex:
            conn = self._connection()
            if self.readonly:
                raise RuntimeError(f"the live store {self.path} was opened read-only")
            depth = self._depth
            begin, end = ("BEGIN IMMEDIATE", "COMMIT") if depth == 0 else \
                (f"SAVEPOINT s{depth}", f"RELEASE s{depth}")
            with translated(self.path):
                conn.execute(begin)
            self._depth = depth + 1
            try:
                yield
                with translated(self.path):
                    conn.execute(end)
            except BaseException:
                self._undo(conn, depth)
                raise
            finally:
                self._depth = depth

    @staticmethod
    def _undo(conn: sqlite3.Connection, depth: int) -> None:
        """Roll back the transaction (depth 0) or the savepoint; a failing rollback must not
        hide the error that caused it."""
        steps = ("ROLLBACK",) if depth == 0 else (f"ROLLBACK TO s{depth}", f"RELEASE s{depth}")
        try:
            for step in steps:
                if conn.in_transaction:
                    conn.execute(step)
        except sqlite3.Error:
            pass

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._mutex, translated(self.path):
            return self._connection().execute(sql, args).fetchall()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One statement inside the current ``atomic()`` block."""
        with translated(self.path):
            return self._connection().execute(sql, args)

    def pragma(self, name: str) -> Any:
        """The value of one PRAGMA on this connection (for checks and tests)."""
        if not WORD.match(name):
            raise ValueError(f"not a pragma name: {name!r}")
        row = self._one(f"PRAGMA {name}")
        return None if row is None else row[0]

    def integrity_problems(self) -> list[str]:
        """``PRAGMA integrity_check``'s findings; empty when the file is sound."""
        found = [str(r[0]) for r in self._rows("PRAGMA integrity_check")]
        return [] if found == ["ok"] else found

    # ------------------------------------------------------------------ session log

    def log(self, event: str, message: str, *, at: int, level: LogLevel = "info",
            session: str | None = None, data: Mapping[str, Any] | None = None) -> LogEntry:
        """Append one entry (``event`` a lower-case word); returns it with its ``seq``.

        ``data`` must be plain JSON values: a secret type cannot be encoded, so it can never
        reach the log by accident.
        """
        if not WORD.match(event) or level not in LOG_LEVELS:
            raise ValueError(f"bad log event {event!r} or level {level!r}")
        entry = LogEntry(0, session, at, level, event, message, dict(data or {}))
        encoded = canonical_json(entry.data)
        with self.atomic():
            cursor = self._exec(insert_sql("log", LOG_FIELDS[1:]),
                                (session, at, level, event, message, encoded))
        return LogEntry(int(cursor.lastrowid or 0), session, at, level, event, message,
                        json.loads(encoded))

    def log_since(self, seq: int = 0, limit: int | None = None) -> list[LogEntry]:
        """The entries after ``seq``, in order (at most ``limit``)."""
        rows = self._rows(f"SELECT {columns(LogEntry)} FROM log WHERE seq > ? ORDER BY seq "
                          "LIMIT ?", (seq, -1 if limit is None else limit))
        return [LogEntry(**{**dict(r), "data": json.loads(r["data"])}) for r in rows]

