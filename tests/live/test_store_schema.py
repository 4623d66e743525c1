"""Opening checks, the writer lock and refusals: peakdsl/live/store_schema.py."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from peakdsl.lang.diagnostics import CODES
from peakdsl.live.store_schema import (
    HELP,
    SCHEMA,
    TABLES,
    StoreError,
    _statements,
    acquire_lock,
    database_failure,
    header_state,
    lock_path,
)


@pytest.mark.parametrize(("exc", "code"), [
    (sqlite3.OperationalError("database or disk is full"), "E024"),
    (sqlite3.OperationalError("disk I/O error"), "E024"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "E024"),
    (sqlite3.DatabaseError("file is not a database"), "E021"),
    (sqlite3.DatabaseError("database disk image is malformed"), "E021"),
    (sqlite3.IntegrityError("UNIQUE constraint failed: fills.market"), None),
    (sqlite3.ProgrammingError("Cannot operate on a closed database."), None),
])
def test_database_failures_the_caller_cannot_prevent_are_refusals(
        exc: sqlite3.Error, code: str | None, tmp_path: Path) -> None:
    failure = database_failure(exc, tmp_path / "s.sqlite")
    assert (failure.diagnostic.code if failure else None) == code


def test_header_states(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text").write_text("hello, world and more")
    (tmp_path / "file").write_text("x")
    assert header_state(tmp_path / "nothing") == "missing"
    assert header_state(tmp_path / "file" / "below") == "missing"
    assert header_state(tmp_path / "empty") == "empty"
    with pytest.raises(StoreError, match="not an SQLite database"):
        header_state(tmp_path / "text")


def test_the_schema_is_complete_statements() -> None:
    statements = list(_statements(SCHEMA))
    conn = sqlite3.connect(":memory:")
    for statement in statements:
        conn.execute(statement)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == TABLES
    assert dict(conn.execute("SELECT key, value FROM meta").fetchall()) == {
        "kind": "peak-live-state", "schema_version": "2"}
    with pytest.raises(ValueError, match="incomplete"):
        list(_statements("CREATE TABLE x (a INTEGER);\nINSERT INTO x VALUES (1)"))


def test_the_lock_names_its_holder_and_is_released_by_closing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    fd = acquire_lock(path)
    assert lock_path(path).read_text() == f"{os.getpid()}\n"
    with pytest.raises(StoreError) as excinfo:
        acquire_lock(path)
    assert excinfo.value.diagnostic.code == "E020"
    assert excinfo.value.diagnostic.message.endswith(f"(its lock is held by pid {os.getpid()})")
    os.close(fd)
    os.close(acquire_lock(path))


def test_every_refusal_has_a_registered_code_and_help() -> None:
    assert set(HELP) == {f"E0{n}" for n in range(20, 28)}
    assert set(HELP) <= set(CODES)
    assert all(text and not text.endswith(".") for text in HELP.values())
