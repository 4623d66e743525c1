"""Atomic file replacement: nothing peak writes is ever seen half-written.

A write goes to a temporary sibling ``.NAME.<random>.tmp`` (``mkstemp``), is fsynced and then
renamed over NAME, and the folder is fsynced so the rename survives a power cut. A process
killed between the temp write and the rename (SIGKILL, OOM killer, power loss) leaves the temp
file behind; the next write into the same folder removes such leftovers.

It must never remove the temp file of a writer that is still running (two peaks writing into
one folder), so every writer holds an exclusive ``flock`` on its temp file until the rename.
The kernel drops that lock when its holder dies, so a leftover whose lock can be taken belongs
to a dead writer. It is removed only when it is also older than ``STALE_AFTER`` seconds: the
margin covers the instant between ``mkstemp`` and ``flock``. Where the file system cannot lock
at all, only leftovers older than ``UNLOCKED_STALE_AFTER`` are removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")  # mkstemp's own alphabet
STALE_AFTER = 2.0             # seconds; a leftover must be older than this (and unlocked)
UNLOCKED_STALE_AFTER = 3600.0  # seconds; the only test where flock is unavailable
CLAIM_ATTEMPTS = 5


def write_atomic(path: Path, data: bytes) -> None:
    """Write a temp sibling, fsync it, keep the old file's mode, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    try:
        fd, tmp = _claim_temp(path)
    except OSError as exc:
        raise _as_target(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.chmod(tmp, _mode_for(path))
            os.replace(tmp, path)  # still under the temp file's lock: see the module doc
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _as_target(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _as_target(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path``, the file the caller asked for: the temp file is peak's own
    detail (a read-only folder refuses ``.NAME.x1y2z3.tmp`` first, and "cannot write
    .peak/..gitignore.x1y2z3.tmp" names a file nobody asked for). ``os.replace``'s error
    names both files, and U006 shows the second; it is kept as it is."""
    if exc.filename2 is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def _mode_for(path: Path) -> int:
    """The file's current permissions (a rewrite keeps them), else rw-r--r--."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o644


def _claim_temp(path: Path) -> tuple[int, str]:
    """A new, locked temp file next to ``path``.

    A cleaner that ran between ``mkstemp`` and ``flock`` (only possible if this process stalled
    for longer than ``STALE_AFTER``) may have unlinked the name; then the name no longer leads
    to our file and we start again with a new one.
    """
    for _ in range(CLAIM_ATTEMPTS):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        _lock(fd)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return fd, tmp
        os.close(fd)
    raise OSError(errno.EAGAIN, "could not create a temporary file", str(path.parent))


def _lock(fd: int) -> bool:
    """Take an exclusive lock without waiting; False when it is held or cannot be taken."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; best effort (some file systems refuse to fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path, now: float | None = None) -> list[Path]:
    """Remove temp files of dead writers in ``folder``; return what was removed.

    Only names of our own pattern (``.NAME.<random>.tmp``) that are regular files are
    considered. Errors are ignored: cleaning up must never make a write fail.
    """
    clock = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(folder) if TEMP_NAME.match(e.name)]
    except OSError:
        return removed
    for entry in entries:
        if _remove_if_stale(Path(entry.path), clock):
            removed.append(Path(entry.path))
    return removed


def _remove_if_stale(path: Path, now: float) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        return _unlink_if_stale(path, fd, info, now)
    finally:
        os.close(fd)


def _unlink_if_stale(path: Path, fd: int, info: os.stat_result, now: float) -> bool:
    """Unlink ``path`` (open as ``fd``) if no live writer holds it and it is old enough."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        margin = STALE_AFTER
    except BlockingIOError:
        return False  # a live writer holds it
    except OSError:
        margin = UNLOCKED_STALE_AFTER  # no locks on this file system: age alone decides
    if now - info.st_mtime < margin:
        return False
    try:
        if os.stat(path).st_ino != info.st_ino:  # the name was reused meanwhile
            return False
        os.unlink(path)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def folder_lock(folder: Path, exclusive: bool = False) -> Iterator[None]:
    """``flock`` on a folder (shared for readers, exclusive for writers).

    No folder, or a file system without locks: nothing to lock, go on unlocked (a read-only
    project can still be read).
    """
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        fd = -1
    try:
        if fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock
