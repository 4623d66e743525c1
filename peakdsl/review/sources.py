"""The two sides of `peak diff`: two files, two folders, or git revisions.

``peak diff REV`` compares revision REV with the work tree, ``peak diff R1..R2`` (or
``peak diff R1 R2``) two revisions, ``peak diff A B`` two existing files or two existing
folders. An argument that exists on disk is a path; otherwise it is a revision.

A revision is read through git without touching the work tree, the index or any ref:
``git archive COMMIT -- <project>/specs`` streams that folder as a tar, which is unpacked
(regular files and folders only) into a temporary folder that lives as long as the
``open_sources`` context. git runs as a list argv, never through a shell, with
``--end-of-options`` before the revision, and a revision that starts with ``-`` is refused
before git sees it. Unknown revisions (U010), a project outside any git repository (U011),
a missing path (U001) and a file compared with a folder (U007) are usage errors.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..lang.diagnostics import diag, did_you_mean
from ..lang.project import UsageError, display_path, find_root
from .model import SideDoc, SourceForm

WORK_TREE = "work tree"
GIT_ENV = {"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
PATHS_HELP = "give two files, two folders, a revision (`peak diff main`) or a range (`v1..v2`)"


@dataclass(frozen=True)
class Source:
    """One side: where its specs are, the project folder their references resolve in, and
    how to name it. ``shown_as`` maps a temporary folder to the ``REV:`` prefix diagnostics
    use instead of its path."""

    label: str
    form: SourceForm
    root: Path
    paths: tuple[Path, ...]  # spec files or folders; empty: a revision without specs/
    commit: str | None = None
    shown_as: tuple[Path, str] | None = None

    def doc(self) -> SideDoc:
        return SideDoc(label=self.label, form=self.form, commit=self.commit)


@contextmanager
def open_sources(a: str, b: str | None, root: Path | None = None
                 ) -> Iterator[tuple[Source, Source]]:
    """The two sides named by the command line's arguments (module docstring), with any
    revision unpacked in a temporary folder removed on exit."""
    project = find_root(root or Path.cwd())
    with ExitStack() as stack:
        def revision(rev: str) -> Source:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="peak-diff-")))
            return checkout(project, rev, folder)

        if b is None and ".." in refuse_path(a):
            old, new = split_range(a)
            yield revision(old), revision(new)
        elif b is None:
            yield revision(a), work_tree(project)
        elif Path(a).exists() or Path(b).exists():
            yield path_pair(a, b)
        else:
            yield revision(a), revision(b)


def split_range(text: str) -> tuple[str, str]:
    """``v1..v2`` → (v1, v2); an empty end is HEAD, as in git. ``a...b`` is refused."""
    old, _, new = text.partition("..")
    if new.startswith("."):
        raise UsageError(diag("U010", f"`{text}`: a symmetric range (`...`) is not a pair of "
                              "versions", text, help="give `OLD..NEW` or two revisions"))
    return old or "HEAD", new or "HEAD"


def refuse_path(arg: str) -> str:
    """One argument names a revision; a path alone has nothing to be compared with."""
    if Path(arg).exists():
        raise UsageError(diag("U008", f"`{arg}` is a path; one argument must be a git "
                              "revision", arg, help=PATHS_HELP))
    return arg


def work_tree(project: Path) -> Source:
    specs = project / "specs"
    if not specs.is_dir():
        raise UsageError(diag("U001", f"no specs/ folder in {display_path(project)}",
                              display_path(project), help="run peak diff in a project folder "
                              "(the one holding specs/), or give --root"))
    return Source(WORK_TREE, "worktree", project, (specs,))


def path_pair(a: str, b: str) -> tuple[Source, Source]:
    """Two existing files or two existing folders (U001 for a missing one, U007 for a mix)."""
    for arg in (a, b):
        if not Path(arg).exists():
            raise UsageError(diag("U001", f"no such file or folder: {arg}", arg,
                                  help=PATHS_HELP))
    sides = (path_source(a), path_source(b))
    if sides[0].form != sides[1].form:
        raise UsageError(diag("U007", f"{a} is a {_noun(sides[0])} and {b} a "
                              f"{_noun(sides[1])}", "<peak>",
                              help="compare two files or two folders"))
    return sides


def _noun(source: Source) -> str:
    return "file" if source.form == "file" else "folder"


def path_source(arg: str) -> Source:
    """A file under a project's `specs/` is checked in that project (as `peak check FILE`:
    its references resolve there); any other file, like a folder, is a project of its own —
    a copy of `specs/risk/r.peak` kept in `old/` would otherwise meet its original as a
    second declaration of the same name (N004). A folder is its `specs/` when it has one,
    else every spec under it."""
    path = Path(arg)
    if path.is_file():
        root = find_root(path.parent)
        inside = path.resolve().is_relative_to((root / "specs").resolve())
        return Source(arg, "file", root if inside else path.parent, (path,))
    if not path.is_dir():
        raise UsageError(diag("U007", f"{arg} is not a regular file or folder", arg,
                              help="give .peak files or folders of them"))
    specs = path / "specs"
    return Source(arg, "folder", path, (specs if specs.is_dir() else path,))


# ----------------------------------------------------------------------------------- git

def git(project: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run git in ``project`` (list argv, no shell, no prompts, no optional locks)."""
    try:
        return subprocess.run(["git", *args], cwd=project, capture_output=True, check=False,
                              env={**os.environ, **GIT_ENV}, timeout=120)
    except FileNotFoundError:
        raise UsageError(diag("U011", "git is not installed, so revisions cannot be read",
                              "<peak>", help="install git, or compare two paths")) from None


def toplevel(project: Path) -> Path:
    """The repository's top folder (U011 when the project is in none)."""
    run = git(project, "rev-parse", "--show-toplevel")
    if run.returncode != 0:
        raise UsageError(diag("U011", f"not a git repository: {project.resolve().as_posix()}",
                              "<peak>",
                              help="revisions need a git repository; compare two files or "
                              "two folders instead (`peak diff OLD NEW`)"))
    return Path(run.stdout.decode().strip())


def commit_of(project: Path, rev: str) -> str:
    """The full commit id ``rev`` names (U010 when it names none)."""
    run = None if rev.startswith("-") or not rev.strip() else git(
        project, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if run is None or run.returncode != 0:
        refs = git(project, "for-each-ref", "--format=%(refname:short)").stdout.decode()
        hint = did_you_mean(rev, refs.split())
        raise UsageError(diag("U010", f"unknown git revision `{rev}`", rev,
                              help=hint or "give a branch, a tag or a commit "
                              "(`git log --oneline` lists commits); paths must exist"))
    return run.stdout.decode().strip()


def checkout(project: Path, rev: str, folder: Path) -> Source:
    """Revision ``rev``'s `specs/` unpacked under ``folder`` (work tree untouched)."""
    top = toplevel(project)
    commit = commit_of(project, rev)
    prefix = project.resolve().relative_to(top.resolve()).as_posix()
    specs = "specs" if prefix == "." else f"{prefix}/specs"
    listed = git(top, "ls-tree", "-d", "--name-only", commit, "--", specs)
    side_root = folder / prefix
    side_root.mkdir(parents=True, exist_ok=True)
    if listed.returncode == 0 and listed.stdout.strip():
        run = git(top, "archive", "--format=tar", commit, "--", specs)
        if run.returncode != 0:
            raise UsageError(diag("U010", f"git could not read `{rev}`: "
                                  f"{run.stderr.decode(errors='replace').strip()}", rev))
        unpack(run.stdout, folder)
    paths = (side_root / "specs",) if (side_root / "specs").is_dir() else ()
    return Source(rev, "revision", side_root, paths, commit, (folder.resolve(), f"{rev}:"))


def unpack(data: bytes, folder: Path) -> None:
    """A tar from git archive: its regular files and folders only (no links, no devices),
    each checked to stay inside ``folder`` (tarfile's ``data`` filter)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(folder, members=members, filter="data")
