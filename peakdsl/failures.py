"""Failures of the surroundings, not of a spec, as coded diagnostics.

A read-only project, a full disk, a ``.peak`` that is a file, an output path that is a folder,
a damaged run registry: each is the user's to fix, so each must reach them as a diagnostic
that names the path and the reason (U006 cannot write, U007 wrong kind of path, U009 registry
unusable) and never as an internal error (I001). The CLI edge asks ``diagnostic_for`` for any
exception a command raises; the library raises ``UsageError`` with the same diagnostics where
it knows what it was doing (``registry_failure``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .lang.diagnostics import Diagnostic, diag

WRONG_KIND = frozenset({errno.EISDIR, errno.ENOTDIR, errno.EEXIST})
REASONS = {  # errno → what it means for a path peak writes (strerror for the rest)
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way of a folder of that name",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
}
HELP = {
    "U006": "check that the folder exists or can be created, is writable and has free space; "
            "or give a path elsewhere",
    "U007": "give a file where a file is expected and a folder where a folder is expected",
}
REGISTRY_WRITE = ("readonly", "read-only", "unable to open", "disk i/o", "database or disk is full")


def _shown(name: object) -> str:
    from .lang.project import display_path

    if isinstance(name, bytes | str | os.PathLike):
        return display_path(Path(os.fsdecode(name)))
    return "a file"


def os_failure(exc: OSError, where: str = "<peak>", what: str = "") -> Diagnostic:
    """U007 for a file where a folder must be (or the reverse), U006 for any other OS refusal.

    ``os.replace(tmp, path)`` names the temporary file first; the path the user knows is the
    second name, so that one is shown.
    """
    name = exc.filename2 if exc.filename2 is not None else exc.filename
    code = "U007" if exc.errno in WRONG_KIND else "U006"
    reason = REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    target = what or _shown(name)
    return diag(code, f"cannot write {target}: {reason}", where, help=HELP[code])


def registry_failure(exc: Exception, path: Path) -> Diagnostic:
    """The run registry at ``path`` cannot be written (U006) or cannot be used at all (U009)."""
    shown = _shown(path)
    if isinstance(exc, OSError):
        return os_failure(exc)
    text = str(exc)
    if any(part in text.lower() for part in REGISTRY_WRITE):
        return diag("U006", f"cannot write the run registry {shown}: {text}", "<peak>",
                    help=HELP["U006"] + "; or run with --no-record")
    return diag("U009", f"the run registry {shown} cannot be used: {text}", "<peak>",
                help="if it is damaged, move it away (peak starts a new one; recorded runs "
                "stay in the old file); if another peak holds it, wait and run again")


def _registry(exc: Exception) -> Diagnostic:
    from .registry.store import REGISTRY_DIR, REGISTRY_FILE

    return registry_failure(exc, Path(REGISTRY_DIR) / REGISTRY_FILE)


def _usage(exc: Any) -> Diagnostic:
    return exc.diagnostic  # type: ignore[no-any-return]


def _bug(_exc: Any) -> None:
    """A run lookup that escaped its command is peak's bug, not the registry's state."""
    return None


def diagnostic_for(exc: BaseException) -> Diagnostic | None:
    """The coded diagnostic for an exception a command let through, or None for a bug."""
    import sqlite3

    from .lang.project import UsageError
    from .registry.store import RegistryError, RunNotFoundError

    table: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...],
                       Callable[[Any], Diagnostic | None]], ...] = (
        (UsageError, _usage), (RunNotFoundError, _bug),
        ((RegistryError, sqlite3.DatabaseError), _registry), (OSError, os_failure))
    for kinds, make in table:
        if isinstance(exc, kinds):
            return make(exc)
    return None
