"""Atomic writes and the removal of temp files left by killed writers (issue 7).

A SIGKILL between the temp write and the rename leaves ``.NAME.XXXXXXXX.tmp``; the next write
into that folder removes it — but never the temp file of a writer that is still running.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peakdsl.atomic import STALE_AFTER, remove_stale_temps, write_atomic

# The child writes 100 kB with os.replace patched to report "ready" and wait: it is then
# exactly between its temp write (fsynced, locked) and its rename, where it gets killed.
CHILD = """
import os, sys
from pathlib import Path
import peakdsl.atomic

def stop_before_rename(src, dst):
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    sys.stdin.readline()
    raise SystemExit(3)

os.replace = stop_before_rename
peakdsl.atomic.write_atomic(Path(sys.argv[1]), b"x" * 100_000)
"""


def age(path: Path, seconds: float) -> None:
    """Pretend ``path`` was last written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.txt"
    write_atomic(path, b"one")
    assert path.read_bytes() == b"one" and (path.stat().st_mode & 0o777) == 0o644
    path.chmod(0o600)
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and (path.stat().st_mode & 0o777) == 0o600
    assert temps(path.parent) == []


def test_a_stale_temp_is_removed_on_the_next_write(tmp_path: Path) -> None:
    stale = tmp_path / ".a.txt.k3j_9xq2.tmp"
    stale.write_bytes(b"half")
    write_atomic(tmp_path / "b.txt", b"b")
    assert stale.exists()  # younger than the safety margin: kept
    age(stale, STALE_AFTER + 1)
    write_atomic(tmp_path / "b.txt", b"b")
    assert not stale.exists()


def test_only_our_own_pattern_is_touched(tmp_path: Path) -> None:
    keep = [".a.txt.ABCDEFGH.tmp", "a.txt.abcdefgh.tmp", ".a.txt.abc.tmp", ".notes.tmp",
            ".a.txt.abcdefgh.tmp.bak"]
    for name in keep:
        (tmp_path / name).write_bytes(b"")
        age(tmp_path / name, 10_000)
    folder = tmp_path / ".d.abcdefgh.tmp"
    folder.mkdir()
    age(folder, 10_000)
    link = tmp_path / ".l.abcdefgh.tmp"
    link.symlink_to(tmp_path / "a.txt.abcdefgh.tmp")
    age(link, 10_000)
    assert remove_stale_temps(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*keep, ".d.abcdefgh.tmp", ".l.abcdefgh.tmp"])


def test_a_live_writers_temp_is_kept_however_old(tmp_path: Path) -> None:
    """Two writers in one folder: the one holding its temp file's lock is left alone."""
    live = tmp_path / ".a.txt.abcdefgh.tmp"
    live.write_bytes(b"in progress")
    age(live, 10_000)
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        write_atomic(tmp_path / "b.txt", b"b")
        assert live.exists()
    finally:
        os.close(fd)
    write_atomic(tmp_path / "b.txt", b"b")
    assert not live.exists()


def test_kill_9_between_temp_write_and_rename(tmp_path: Path) -> None:
    """A real SIGKILL of a writer paused just before its rename: its temp file survives the
    kill, is kept while the writer lives, and is removed by the next write after it died."""
    target = tmp_path / "t.txt"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        (leftover,) = [tmp_path / n for n in temps(tmp_path)]
        assert leftover.name.startswith(".t.txt.") and leftover.stat().st_size == 100_000
        age(leftover, 10_000)
        write_atomic(tmp_path / "other.txt", b"1")
        assert leftover.exists()  # its writer is alive and holds the lock
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -9
    assert leftover.exists() and not target.exists()  # the kill left it behind
    write_atomic(tmp_path / "other.txt", b"2")
    assert temps(tmp_path) == [] and not target.exists()
    assert (tmp_path / "other.txt").read_bytes() == b"2"


@pytest.mark.parametrize("name", [".x.abcdefgh.tmp"])
def test_remove_stale_temps_reports_what_it_removed(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert remove_stale_temps(tmp_path, now=time.time() + STALE_AFTER + 1) == [tmp_path / name]
    assert remove_stale_temps(tmp_path / "missing") == []


def test_a_refused_temp_file_is_reported_as_the_file_peak_meant_to_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only file system refuses the temp sibling first; U006 must name the target
    (``.gitignore``), not ``..gitignore.xpki15d3.tmp``."""
    import errno
    import tempfile

    from peakdsl.failures import os_failure

    target = tmp_path / ".peak" / ".gitignore"

    def read_only(prefix: str, suffix: str, dir: Path) -> tuple[int, str]:
        name = os.path.join(dir, f"{prefix}xpki15d3{suffix}")
        raise OSError(errno.EROFS, "Read-only file system", name)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as caught:
        write_atomic(target, b"*\n")
    assert caught.value.filename == str(target)
    assert os_failure(caught.value, what="").message == (
        f"cannot write {target.as_posix()}: the file system is read-only")
    assert temps(target.parent) == []


def test_a_refused_rename_still_names_the_target(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    target = tmp_path / "out.html"

    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EACCES, "Permission denied", src, None, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError) as caught:
        write_atomic(target, b"x")
    assert (caught.value.filename2, temps(tmp_path)) == (target, [])
