"""OS and registry failures become U006/U007/U009 diagnostics that name the path, never I001."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest

from peakdsl.failures import diagnostic_for, os_failure, registry_failure
from peakdsl.lang.diagnostics import diag
from peakdsl.lang.project import UsageError
from peakdsl.registry.store import RegistryError, RunNotFoundError


def oserror(code: int, name: str, name2: str | None = None) -> OSError:
    return OSError(code, os.strerror(code), name, None, name2)


@pytest.mark.parametrize(("code", "expected", "reason"), [
    (errno.EACCES, "U006", "permission denied"),
    (errno.EROFS, "U006", "the file system is read-only"),
    (errno.ENOSPC, "U006", "no space left on the device"),
    (errno.EISDIR, "U007", "it is a folder, not a file"),
    (errno.ENOTDIR, "U007", "a part of the path is a file, not a folder"),
    (errno.EEXIST, "U007", "a file is in the way of a folder of that name"),
    (errno.EIO, "U006", os.strerror(errno.EIO)),
])
def test_os_errors_by_errno(code: int, expected: str, reason: str) -> None:
    d = os_failure(oserror(code, "/nowhere/x.html"))
    assert (d.code, d.message) == (expected, f"cannot write /nowhere/x.html: {reason}")
    assert d.path == "<peak>" and d.help


def test_a_rename_names_the_target_not_the_temp_file() -> None:
    d = os_failure(oserror(errno.EISDIR, "/w/.out.abcd1234.tmp", "/w/out"), "--trades")
    assert d.message == "cannot write /w/out: it is a folder, not a file"
    assert d.path == "--trades"


@pytest.mark.parametrize(("message", "code"), [
    ("attempt to write a readonly database", "U006"),
    ("unable to open database file", "U006"),
    ("database or disk is full", "U006"),
    ("file is not a database", "U009"),
    ("database is locked", "U009"),
])
def test_registry_failures(message: str, code: str) -> None:
    d = registry_failure(sqlite3.OperationalError(message), Path("/p/.peak/registry.sqlite"))
    assert d.code == code and message in d.message
    assert "/p/.peak/registry.sqlite" in d.message


def test_diagnostic_for_translates_and_leaves_bugs_alone(tmp_path: Path) -> None:
    usage = diag("U005", "bad", "--x")
    assert diagnostic_for(UsageError(usage)) is usage
    assert diagnostic_for(sqlite3.DatabaseError("file is not a database")).code == "U009"
    assert diagnostic_for(RegistryError("newer schema")).code == "U009"
    assert diagnostic_for(oserror(errno.EACCES, str(tmp_path))).code == "U006"
    assert diagnostic_for(RunNotFoundError("r1234")) is None  # a lookup that escaped: a bug
    assert diagnostic_for(KeyError("x")) is None
