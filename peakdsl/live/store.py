"""The live session's state in SQLite: everything that must survive a crash, ``kill -9`` or a
power cut, in one file per deployment.

``LiveStore.open(path)`` (see ``store_schema`` for the lock, the checks and the refusals)
gives the runner typed rows (``store_rows``) for sessions, the append-only session log,
intents, orders with their state machine, fills, positions, the kill switch, cursors, the
engine snapshot, the equity history (one row per saved bar, for status reports) and used
arming tokens. Every write is one explicit transaction
(``BEGIN IMMEDIATE`` … ``COMMIT``, WAL, ``synchronous=FULL``); ``atomic()`` groups several
writes into one, and nests as savepoints. Writes are idempotent where a restarted runner
repeats them — the same intent, order or fill recorded again changes nothing — and a
*different* payload under a known id is refused (E025): after a crash, doubt is a refusal.

No clock and no randomness inside: timestamps come from the caller, ids are derived from
their inputs, so the same calls give the same database content.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..registry.encoding import canonical_json
from .store_base import SESSION_FIELDS, columns, differences, insert_sql
from .store_rows import (
    SESSION_STATUSES,
    Intent,
    KillState,
    RiskSpecRecord,
    Session,
    SessionStatus,
    Snapshot,
)
from .store_schema import (
    StoreError,
    acquire_lock,
    check_store,
    connect,
    create_schema,
    header_state,
    migrate,
    os_reason,
    refusal,
    set_pragmas,
    translated,
)
from .store_trading import TradingStore

ARRAY_KINDS = "biufc"  # bool, integer and floating dtypes: a fixed byte layout, no pickle
SESSION_IDENTITY = ("spec", "artifact_sha256", "mode", "account", "exchange", "params")
BINDING = ("mode", "account", "exchange")


def _deployment(binding: Mapping[str, str]) -> str:
    return f"{binding['mode']} account {binding['account']} on {binding['exchange']}"


class LiveStore(TradingStore):
    """One deployment's live state. Open with ``LiveStore.open``; close, or use ``with``.

    One object may be shared by threads (a lock serialises it) but not across ``fork()``.
    """

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True,
             readonly: bool = False) -> LiveStore:
        """Open (and by default create) the store at ``path`` for writing, holding its lock;
        ``readonly=True`` for status commands: no lock, never creates, refuses writes.

        Refusals (``StoreError``): E020 another process writes it, E021 damaged or not a
        store, E022 unknown schema version, E023 not found, E024 cannot be created.
        """
        where = Path(path)
        return cls._open_readonly(where) if readonly else cls._open_writer(where, create)

    @classmethod
    def _open_writer(cls, path: Path, create: bool) -> LiveStore:
        if header_state(path) == "missing" and not create:
            raise refusal("E023", path, f"no live store at {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise refusal("E024", path, f"cannot create the folder {path.parent}: "
                          f"{os_reason(exc)}") from None
        fd = acquire_lock(path)
        try:
            return cls(path, cls._prepare(path, create), fd)
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def _prepare(path: Path, create: bool) -> sqlite3.Connection:
        """Check under the lock, then switch to WAL and create the schema if there is none
        (a missing or empty file, or a database whose creation never committed), or migrate
        a store of an older version (``store_schema.migrate``)."""
        existing = header_state(path) == "sqlite"
        conn = connect(path, readonly=False)
        try:
            with translated(path):
                version = check_store(conn, path) if existing else None
                if version is None and not create:
                    raise refusal("E023", path, f"no live store at {path} (never created)")
                set_pragmas(conn, path)
                if version is None:
                    create_schema(conn)
                else:
                    migrate(conn, version)
        except BaseException:
            conn.close()
            raise
        return conn

    @classmethod
    def _open_readonly(cls, path: Path) -> LiveStore:
        if header_state(path) != "sqlite":
            raise refusal("E023", path, f"no live store at {path}")
        conn = connect(path, readonly=True)
        try:
            with translated(path):
                if check_store(conn, path) is None:
                    raise refusal("E023", path, f"no live store at {path} (never created)")
                conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, None)

    # ------------------------------------------------------------------ sessions

    def start_session(self, session_id: str, *, spec: str, artifact_sha256: str, mode: str,
                      account: str, exchange: str, params: Mapping[str, Any],
                      at: int) -> Session:
        """Start a session, or resume one a restart finds (same id: same spec, artifact,
        params, mode, account and exchange, else E025).

        The first session binds the store to its mode, account and exchange: paper, testnet
        and live state, or two accounts', are never mixed in one store (E025).
        """
        given = Session(session_id, spec, artifact_sha256, mode, account, exchange,
                        json.loads(canonical_json(params)), at, None, "running")
        for name in ("id", "spec", "artifact_sha256", "mode", "account", "exchange"):
            if not isinstance(getattr(given, name), str) or not getattr(given, name):
                raise ValueError(f"{name} must be a non-empty string")
        with self.atomic():
            self._bind(given)
            stored = self.session(session_id)
            if stored is None:
                self._exec(insert_sql("sessions", SESSION_FIELDS),
                           (*astuple(given)[:6], canonical_json(params), at, None, "running"))
                self.log("session_started", f"session {session_id} started", at=at,
                         session=session_id)
            else:
                self._resume(stored, given)
        return self._session_or_fail(session_id)

    def _bind(self, session: Session) -> None:
        binding = {name: getattr(session, name) for name in BINDING}
        row = self._one("SELECT value FROM meta WHERE key = 'binding'")
        if row is None:
            self._exec("INSERT INTO meta VALUES ('binding', ?)", (canonical_json(binding),))
        elif json.loads(row["value"]) != binding:
            raise refusal("E025", self.path, f"this store belongs to "
                          f"{_deployment(json.loads(row['value']))}, not to "
                          f"{_deployment(binding)}")

    def _resume(self, stored: Session, given: Session) -> None:
        differs = differences(stored, given, SESSION_IDENTITY)
        if differs:
            raise refusal("E025", self.path, f"session {given.id} was started with other "
                          f"settings: {differs}")
        self._exec("UPDATE sessions SET status = 'running', ended_at = NULL WHERE id = ?",
                   (given.id,))
        self.log("session_resumed", f"session {given.id} resumed (it was {stored.status})",
                 at=given.started_at, session=given.id)

    def end_session(self, session_id: str, status: SessionStatus, *, at: int) -> Session:
        """End a running session as ``stopped``, ``halted`` or ``crashed``."""
        if status not in SESSION_STATUSES or status == "running":
            raise ValueError(f"a session ends as stopped, halted or crashed, not {status!r}")
        with self.atomic():
            stored = self._session_or_fail(session_id)
            if stored.status != "running":
                raise RuntimeError(f"session {session_id} is {stored.status}, not running")
            self._exec("UPDATE sessions SET status = ?, ended_at = ? WHERE id = ?",
                       (status, at, session_id))
            self.log("session_ended", f"session {session_id} {status}", at=at,
                     session=session_id, level="info" if status == "stopped" else "error")
        return self._session_or_fail(session_id)

    def session(self, session_id: str) -> Session | None:
        row = self._one(f"SELECT {columns(Session)} FROM sessions WHERE id = ?", (session_id,))
        return None if row is None else Session(**{**dict(row), "params": json.loads(
            row["params"])})

    def _session_or_fail(self, session_id: str) -> Session:
        found = self.session(session_id)
        if found is None:
            raise KeyError(f"no session {session_id!r} in {self.path}")
        return found

    def sessions(self) -> list[Session]:
        """Every session, oldest first."""
        ids = self._rows("SELECT id FROM sessions ORDER BY started_at, id")
        return [self._session_or_fail(row["id"]) for row in ids]

    # ------------------------------------------------------------------ the risk spec

    def record_risk_spec(self, record: RiskSpecRecord, *, at: int,
                         session: str | None = None) -> None:
        """Remember the risk spec the deployment runs under (``meta`` key ``risk_spec``), so
        that the commands that read the store without running it — status, health, reports,
        the dashboard — show and check the same limits and alert sinks, whether they came
        from ``--risk`` or from the spec. A change is logged (event ``risk_spec``)."""
        value = canonical_json({"name": record.name, "sha256": record.sha256,
                                "given": record.given})
        with self.atomic():
            row = self._one("SELECT value FROM meta WHERE key = 'risk_spec'")
            if row is not None and row["value"] == value:
                return
            self._exec("INSERT INTO meta VALUES ('risk_spec', ?) ON CONFLICT (key) DO UPDATE "
                       "SET value = excluded.value", (value,))
            text = "no risk spec" if record.name is None else \
                f"risk spec {record.name} ({(record.sha256 or '')[:12]}" + \
                (", given with --risk)" if record.given else ", the spec's own)")
            self.log("risk_spec", f"the deployment runs under {text}", at=at,
                     session=session, data=json.loads(value))

    def risk_spec(self) -> RiskSpecRecord | None:
        """The risk spec recorded by ``record_risk_spec``; None before the first start (or in
        a store of a runner that did not record it)."""
        row = self._one("SELECT value FROM meta WHERE key = 'risk_spec'")
        if row is None:
            return None
        try:
            found = json.loads(row["value"])
            return RiskSpecRecord(found["name"], found["sha256"], bool(found["given"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise refusal("E021", self.path, f"{self.path}: its risk spec record is damaged: "
                          f"{type(exc).__name__}") from None

    # ------------------------------------------------------------------ kill switch

    def kill_state(self) -> KillState:
        row = self._one("SELECT engaged, reason, by, at FROM kill_switch WHERE id = 1")
        if row is None:
            raise refusal("E021", self.path, f"{self.path} lost its kill switch row")
        return KillState(bool(row["engaged"]), row["reason"], row["by"], row["at"])

    def engage_kill(self, reason: str, by: str, *, at: int,
                    session: str | None = None) -> KillState:
        """Engage the kill switch (durable until ``reset_kill``). Engaging it again keeps
        the first reason; every call is logged."""
        return self._set_kill(True, reason, by, at, session)

    def reset_kill(self, reason: str, by: str, *, at: int,
                   session: str | None = None) -> KillState:
        """Release the kill switch, saying why and who; logged."""
        return self._set_kill(False, reason, by, at, session)

    def _set_kill(self, engage: bool, reason: str, by: str, at: int,
                  session: str | None) -> KillState:
        if not reason.strip() or not by.strip():
            raise ValueError("the kill switch needs a reason and who")
        event = "kill_engaged" if engage else "kill_reset"
        with self.atomic():
            before = self.kill_state()
            if before.engaged != engage:
                self._exec("UPDATE kill_switch SET engaged = ?, reason = ?, by = ?, at = ? "
                           "WHERE id = 1", (int(engage), reason, by, at))
            self.log(event, f"{event.replace('_', ' ')} by {by}: {reason}", at=at,
                     session=session, level="critical" if engage else "warning",
                     data={"changed": before.engaged != engage})
        return self.kill_state()

    # ------------------------------------------------------------------ cursors & tokens

    def get_cursor(self, key: str) -> str | None:
        row = self._one("SELECT value FROM cursors WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_cursor(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"a cursor is a non-empty key and a string, not {key!r}: {value!r}")
        with self.atomic():
            self._exec("INSERT INTO cursors VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                       "value = excluded.value", (key, value))

    def cursors(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._rows("SELECT key, value FROM cursors "
                                                         "ORDER BY key")}

    def consume_token(self, digest: str, at: int) -> bool:
        """Mark an arming token (by its digest) used; False when it already was."""
        if not isinstance(digest, str) or not digest:
            raise ValueError("a token digest is a non-empty string")
        with self.atomic():
            cursor = self._exec("INSERT OR IGNORE INTO used_tokens VALUES (?, ?)", (digest, at))
        return cursor.rowcount == 1

    # ------------------------------------------------------------------ engine snapshot

    def save_bar(self, bar_time: int, arrays: Mapping[str, np.ndarray[Any, Any]],
                 intents: Sequence[Intent] = (), *, session: str,
                 cursors: Mapping[str, str] | None = None) -> list[Intent]:
        """After a processed bar: the book's arrays, the bar's intents and cursors, and the
        equity history's row (when ``arrays`` hold the book's ``account`` and ``positions``:
        ``equity_row``), in ONE transaction; returns the stored intents. Bar times only move
        forward."""
        encoded = [_encode_array(name, array) for name, array in sorted(arrays.items())]
        equity = equity_row(bar_time, session, arrays)
        with self.atomic():
            last = self._one("SELECT bar_time FROM snapshot WHERE id = 1")
            if last is not None and bar_time <= last["bar_time"]:
                raise ValueError(f"bar {bar_time} is not after the saved bar {last['bar_time']}")
            stored = [self.record_intent(intent) for intent in intents]
            self._exec("INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?)", (session, bar_time))
            self._exec("DELETE FROM snapshot_arrays")
            for row in encoded:
                self._exec("INSERT INTO snapshot_arrays VALUES (?, ?, ?, ?)", row)
            if equity is not None:
                self._exec("INSERT INTO equity VALUES (?, ?, ?, ?, ?, ?)", equity)
            for key, value in sorted((cursors or {}).items()):
                self.set_cursor(key, value)
        return stored

    def last_snapshot(self) -> Snapshot | None:
        """The book after the last saved bar, to resume from (writable copies)."""
        head = self._one("SELECT session, bar_time FROM snapshot WHERE id = 1")
        if head is None:
            return None
        rows = self._rows("SELECT name, dtype, shape, data FROM snapshot_arrays ORDER BY name")
        arrays = {r["name"]: self._decode_array(r) for r in rows}
        return Snapshot(head["session"], head["bar_time"], arrays)

    # ------------------------------------------------------------------ equity history

    def equity_history(self, since: int | None = None,
                       until: int | None = None) -> list[EquityRow]:
        """The saved bars with ``since <= bar_time < until`` (either bound optional), oldest
        first; none in a store read at version 1 (it kept no history)."""
        if not self._has_equity():
            return []
        rows = self._rows("SELECT * FROM equity WHERE bar_time >= ? AND bar_time < ? "
                          "ORDER BY bar_time", (-(2**62) if since is None else since,
                                                2**62 if until is None else until))
        return [_equity_of(r) for r in rows]

    def last_equity(self, before: int | None = None) -> EquityRow | None:
        """The last saved bar (before ``bar_time`` ``before``), or None."""
        if not self._has_equity():
            return None
        row = self._one("SELECT * FROM equity WHERE bar_time < ? ORDER BY bar_time DESC "
                        "LIMIT 1", (2**62 if before is None else before,))
        return None if row is None else _equity_of(row)

    def history_starts_after(self) -> int | None:
        """The last bar a store migrated from version 1 saved before it kept a history (the
        book's equity before it is unknown); None when the history is complete."""
        row = self._one("SELECT value FROM meta WHERE key = 'migration_2'")
        last = None if row is None else json.loads(row["value"]).get("last_bar")
        return None if last is None else int(last)

    def _has_equity(self) -> bool:
        return self._one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                         "name = 'equity'") is not None

    def _decode_array(self, row: sqlite3.Row) -> np.ndarray[Any, Any]:
        try:
            dtype = np.dtype(row["dtype"])
            if dtype.kind not in ARRAY_KINDS:
                raise ValueError(f"dtype {dtype}")
            shape = tuple(int(n) for n in json.loads(row["shape"]))
            return np.frombuffer(row["data"], dtype=dtype).reshape(shape).copy()
        except (TypeError, ValueError) as exc:
            raise refusal("E021", self.path, f"snapshot array {row['name']} is damaged: "
                          f"{exc}") from None


@dataclass(frozen=True, slots=True)
class EquityRow:
    """The book after one saved bar: equity and cash (quote currency), gross exposure (the
    positions' notional at their marks) and the risk stage's cumulative reductions and
    denials by reason (``engine.simulate.risk_counts``; they restart with a fresh book)."""

    bar_time: int
    session: str
    equity: float
    cash: float
    exposure: float
    risk: dict[str, int]


def _equity_of(row: sqlite3.Row) -> EquityRow:
    return EquityRow(int(row["bar_time"]), str(row["session"]), float(row["equity"]),
                     float(row["cash"]), float(row["exposure"]), json.loads(row["risk"]))


def equity_row(bar_time: int, session: str, arrays: Mapping[str, np.ndarray[Any, Any]]
               ) -> tuple[int, str, float, float, float, str] | None:
    """The equity history's row of a book's arrays (``ClockBook.state()``): its account's
    ``LAST_EQUITY`` and ``CASH``, the gross notional of the slots it holds at their marks (as
    the runner's ``TickState`` counts it) and its risk counts. None when ``arrays`` are not a
    book's (tests save other arrays) or its equity is not a number: the history then skips
    the bar rather than the snapshot failing."""
    from ..engine.state import ACCOUNT_SIZE, CASH, LAST_EQUITY, MARK, POSITION_SIZE, QTY, SIDE

    account, positions = arrays.get("account"), arrays.get("positions")
    if account is None or positions is None or account.shape != (ACCOUNT_SIZE,) or \
            positions.ndim != 2 or positions.shape[1] != POSITION_SIZE:
        return None
    equity, cash = float(account[LAST_EQUITY]), float(account[CASH])
    if not (math.isfinite(equity) and math.isfinite(cash)):
        return None
    from ..engine.simulate import risk_counts

    held = positions[:, SIDE] != 0.0
    exposure = float(np.nansum(np.abs(positions[held, QTY] * positions[held, MARK])))
    return bar_time, session, equity, cash, exposure, canonical_json(risk_counts(account))


def _encode_array(name: str, array: np.ndarray[Any, Any]) -> tuple[str, str, str, bytes]:
    """(name, dtype, shape, raw bytes): a plain numeric array, no pickle."""
    values = np.ascontiguousarray(array)
    if not name or values.dtype.kind not in ARRAY_KINDS:
        raise ValueError(f"snapshot array {name!r}: a named numeric array, not {values.dtype}")
    return name, values.dtype.str, json.dumps(list(values.shape)), values.tobytes()


__all__ = ["EquityRow", "LiveStore", "StoreError", "equity_row"]

