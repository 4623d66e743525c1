"""What the dashboard shows, as typed data read through the library — never written.

Three sources, each read on its own so that one that is damaged never hides the others:

* the **run registry** (``.peak/registry.sqlite``), opened read-only (``registry_view``):
  runs of every kind the registry records, their children (a sweep's trials, a
  walk-forward's windows) and the files they wrote;
* the **promotion records** (``promotions/<spec>/*.json``) through ``promote.records``:
  each spec's chain, verified (hashes, links, entries the registry knows but whose file is
  gone);
* the **deployments** (``live_data``).

A source that cannot be read raises ``Unavailable`` with a ``Problem`` (a code, a message, a
fix); a name that matches nothing raises ``NotFound``; a bad query value ``BadQuery``. The
views turn them into an error panel, a 404 page and a 400 page.

A file a run wrote is linked (and served) only when it is a report-like file (``SERVED``)
inside the project, outside every hidden folder (``.peak/`` holds the stores and the arming
key) — after symlinks are resolved.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..promote.records import PROMOTIONS_DIR, Approval, PromotionRecord, file_name, load_chain
from ..registry.kinds import KINDS
from ..registry.records import STATES, KindRecord, RunRecord
from ..registry.store import RegistryError, RunNotFoundError, registry_path
from .registry_view import ReadOnlyRegistry

SERVED = {".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
          ".md": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8",
          ".csv": "text/plain; charset=utf-8", ".json": "application/json",
          ".png": "image/png"}
CHILDREN_SHOWN = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Problem:
    """Why a source could not be read: its diagnostic code, what happened, the fix."""

    code: str
    message: str
    help: str = ""


class Unavailable(Exception):
    """A source is damaged or unreadable; the page shows ``problem``."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class NotFound(LookupError):
    """No run, promotion chain, deployment or file of that name (a 404)."""


class BadQuery(ValueError):
    """A query-string value the dashboard cannot use (a 400)."""


# ------------------------------------------------------------------ the registry


def registry_problem(exc: BaseException, root: Path) -> Problem:
    """The registry's failure as ``peak runs`` reports it (U009, or U006)."""
    from ..failures import registry_failure

    if isinstance(exc, OSError):
        exc = RegistryError(f"{type(exc).__name__}: {exc.strerror or exc}")
    found = registry_failure(exc if isinstance(exc, Exception) else RegistryError(str(exc)),
                             registry_path(root))
    return Problem(found.code, found.message, found.help)


@contextmanager
def registry(root: Path) -> Iterator[ReadOnlyRegistry | None]:
    """The registry read-only, None when no run was ever recorded; ``Unavailable`` when it
    cannot be read (also for a query that fails part-way: a file damaged past its header)."""
    try:
        reg = ReadOnlyRegistry(root)
    except FileNotFoundError:
        yield None
        return
    except (sqlite3.Error, RegistryError, OSError) as exc:
        raise Unavailable(registry_problem(exc, root)) from None
    try:
        yield reg
    except (sqlite3.Error, RegistryError) as exc:
        raise Unavailable(registry_problem(exc, root)) from None
    finally:
        reg.close()


@dataclass(frozen=True)
class RunList:
    """``/runs``: the newest runs (top-level unless a kind of child run is asked for)."""

    runs: list[RunRecord]
    kinds: list[KindRecord]
    counts: dict[str, int]  # runs recorded per kind, children included
    kind: str | None = None
    spec: str | None = None
    status: str | None = None
    limit: int = 100
    recorded: bool = True  # False: no registry yet


def known_kinds(reg: ReadOnlyRegistry | None) -> list[KindRecord]:
    if reg is not None:
        return reg.kinds()
    return [KindRecord(k.name, k.description, k.parent, k.trial) for k in KINDS]


def list_runs(root: Path, *, kind: str | None = None, spec: str | None = None,
              status: str | None = None, limit: int = 100) -> RunList:
    """Runs, newest first; ``BadQuery`` for an unknown kind or state or a bad limit."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit {limit} is out of range: 1 to {MAX_LIMIT}")
    if status is not None and status not in STATES:
        raise BadQuery(f"no run state {status!r}; the states are {', '.join(STATES)}")
    with registry(root) as reg:
        kinds = known_kinds(reg)
        by_name = {k.kind: k for k in kinds}
        if kind is not None and kind not in by_name:
            raise BadQuery(f"no kind of run {kind!r}; the kinds are {', '.join(by_name)}")
        if reg is None:
            return RunList([], kinds, {}, kind, spec, status, limit, recorded=False)
        child = kind is not None and by_name[kind].parent is not None
        runs = reg.list_runs(spec, limit, status, kind=kind, top_level=not child)
        return RunList(runs, kinds, reg.counts_by_kind(), kind, spec, status, limit)


@dataclass(frozen=True)
class Artifact:
    """A file a run wrote: ``served`` when the dashboard links it (see the module)."""

    name: str
    path: str
    served: bool


@dataclass(frozen=True)
class RunDetail:
    """``/runs/{id}``: one run, its parent, its first children and its files."""

    record: RunRecord
    parent: RunRecord | None
    children: list[RunRecord]
    artifacts: list[Artifact] = field(default_factory=list)


def run_detail(root: Path, run_id: str) -> RunDetail:
    with registry(root) as reg:
        if reg is None:
            raise NotFound(f"no run {run_id}: no runs are recorded yet")
        record = _get(reg, run_id)
        parent = _get(reg, record.parent_id) if record.parent_id else None
        children = reg.child_runs(record.id, CHILDREN_SHOWN) if record.children else []
    files = [Artifact(name, path, served_path(root, path) is not None)
             for name, path in sorted(record.artifacts.items())]
    return RunDetail(record, parent, children, files)


def _get(reg: ReadOnlyRegistry, run_id: str) -> RunRecord:
    try:
        return reg.get_run(run_id)
    except RunNotFoundError as exc:
        raise NotFound(exc.reason) from None


def served_path(root: Path, recorded: str) -> Path | None:
    """The file ``recorded`` names when the dashboard may serve it, else None."""
    base = root.resolve()
    given = Path(recorded)
    try:
        full = (given if given.is_absolute() else base / given).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    if not full.is_relative_to(base) or full.suffix.lower() not in SERVED:
        return None
    if any(part.startswith(".") for part in full.relative_to(base).parts):
        return None
    return full if full.is_file() else None


def artifact_file(root: Path, run_id: str, name: str) -> Path:
    """The file ``name`` of run ``run_id``; ``NotFound`` unless it may be served."""
    detail = run_detail(root, run_id)
    recorded = detail.record.artifacts.get(name)
    path = served_path(root, recorded) if recorded is not None else None
    if path is None:
        raise NotFound(f"run {detail.record.id} has no file `{name}` the dashboard serves")
    return path


# ------------------------------------------------------------------ promotions


@dataclass(frozen=True)
class RecordView:
    """One promotion record with the approvals that name it."""

    record: PromotionRecord
    file: str
    approvals: list[Approval]

    @property
    def decision(self) -> str:
        """What was decided: the gate passed at a stage (live: approved or awaiting)."""
        passed = f"passed `{self.record.gate}` for {self.record.stage}"
        if self.record.stage != "live":
            return passed
        if not self.approvals:
            return passed + "; awaiting a reviewer's approval"
        return passed + "; approved by " + ", ".join(a.reviewer for a in self.approvals)


@dataclass(frozen=True)
class ChainView:
    """A spec's promotion chain as the files hold it, and what is wrong with it."""

    spec: str
    records: list[RecordView]
    entries: int
    problems: list[str]


def promotion_specs(root: Path) -> list[str]:
    base = root / PROMOTIONS_DIR
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def _known(root: Path, spec: str) -> set[str] | None:
    """The records the registry says were written for ``spec`` (None: no readable
    registry — a deleted file then goes unnoticed here, not everywhere)."""
    try:
        with registry(root) as reg:
            if reg is None:
                return None
            return {str(r.inputs["record"]) for r in reg.list_runs(
                spec=spec, kind="promotion", limit=None) if r.inputs.get("record")}
    except Unavailable:
        return None


def promotion_chain(root: Path, spec: str) -> ChainView:
    if spec not in promotion_specs(root):
        raise NotFound(f"no promotion records for `{spec}`")
    chain = load_chain(root, spec, _known(root, spec))
    views = [RecordView(r, file_name(r), chain.approvals_of(r)) for r in chain.records()]
    return ChainView(spec, views, len(chain.entries), list(chain.problems))


def promotion_chains(root: Path) -> list[ChainView]:
    return [promotion_chain(root, spec) for spec in promotion_specs(root)]


__all__ = ["CHILDREN_SHOWN", "SERVED", "Artifact", "BadQuery", "ChainView", "NotFound",
           "Problem", "RecordView", "RunDetail", "RunList", "Unavailable", "artifact_file",
           "list_runs", "promotion_chain", "promotion_chains", "promotion_specs", "registry",
           "run_detail", "served_path"]
