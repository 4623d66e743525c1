"""The deployments under ``.peak/live/<mode>/<account>/<spec>.sqlite``, read-only.

Each store is opened with ``LiveStore.open(path, readonly=True)`` — no lock (a running
deployment holds it), never created, writes refused — and read the way `peak live status`
reads it: ``live.ops.status_doc`` (kill switch, sessions, the risk spec it runs under, the
book's equity and PnL at its last tick, each risk limit's use, the risk stage's reductions and
denials in all and bar by bar, positions, open orders, the log's problems), plus the alerts
the runner logged (``event == "alert"``).

``status_doc`` needs the deployment's plan (its capital and risk limits), compiled from the
spec file of the store's name under the risk spec the deployment recorded when it started
(``live.deployed``: a ``peak live run --risk`` included); ``Plans`` keeps it while no spec
file of the project changes and the record stays the same, so a refresh every few seconds
does not compile again. Without a plan (the spec was moved or no longer compiles) the rest of
the state is still shown, with a note why the book is not.

``live_report`` is `peak report live`'s daily or weekly status report of a deployment
(``peakdsl.live.report``), for the dashboard to serve as it renders it.

A store that is damaged, of an unknown version or otherwise unreadable is a ``Problem`` of its
own deployment only.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..registry.encoding import plain
from .data import BadQuery, NotFound, Problem, Unavailable

MODES = ("paper", "testnet", "live")
SPEC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # as peakdsl.live.secrets.ACCOUNT
RECENT = 20


@dataclass(frozen=True)
class DeploymentRef:
    """One deployment's store."""

    mode: str
    account: str
    spec: str
    path: Path

    @property
    def key(self) -> str:
        return f"{self.mode}/{self.account}/{self.spec}"


def deployments(root: Path) -> list[DeploymentRef]:
    """Every store under ``.peak/live/``, by mode, account and spec; other files ignored."""
    base = root / ".peak" / "live"
    found = []
    for mode in MODES:
        for path in sorted((base / mode).glob("*/*.sqlite")) if (base / mode).is_dir() else []:
            account, spec = path.parent.name, path.stem
            if ACCOUNT_NAME.fullmatch(account) and SPEC_NAME.fullmatch(spec) \
                    and path.is_file():
                found.append(DeploymentRef(mode, account, spec, path))
    return found


def find_deployment(root: Path, mode: str, account: str, spec: str) -> DeploymentRef:
    for ref in deployments(root):
        if (ref.mode, ref.account, ref.spec) == (mode, account, spec):
            return ref
    raise NotFound(f"no deployment {mode}/{account}/{spec} in this project")


def store_problem(exc: BaseException) -> Problem:
    """A store's refusal (E021 damaged, E022 unknown version, E023 gone) or failure."""
    diagnostics = getattr(exc, "diagnostics", None)
    if diagnostics:
        first = diagnostics[0]
        return Problem(first.code, first.message, first.help)
    return Problem("E021", f"the store cannot be read: {type(exc).__name__}: {exc}",
                   "move the damaged store away and keep it for reference")


READ_ERRORS = (sqlite3.Error, OSError, ValueError, KeyError, RuntimeError)


def _open(ref: DeploymentRef) -> Any:
    from ..live.store import LiveStore

    return LiveStore.open(ref.path, readonly=True)


@dataclass(frozen=True)
class DeploymentSummary:
    """A deployment in the ``/live`` list: its switch, last session and last tick."""

    ref: DeploymentRef
    kill_engaged: bool | None = None
    kill_reason: str = ""
    session_status: str | None = None
    last_tick: int | None = None  # the last snapshot's bar time, ms
    equity: float | None = None
    problem: Problem | None = None


def summarize(ref: DeploymentRef) -> DeploymentSummary:
    from ..engine.state import LAST_EQUITY
    from ..live.store_schema import StoreError

    try:
        with _open(ref) as store:
            kill, sessions, snap = store.kill_state(), store.sessions(), store.last_snapshot()
    except (StoreError, *READ_ERRORS) as exc:
        return DeploymentSummary(ref, problem=store_problem(exc))
    equity = float(snap.arrays["account"][LAST_EQUITY]) if snap is not None else None
    return DeploymentSummary(ref, kill.engaged, kill.reason,
                             sessions[-1].status if sessions else None,
                             snap.bar_time if snap is not None else None, equity)


class Plans:
    """Each spec's plan, compiled once while no spec file of the project changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._memo: dict[str, tuple[object, Any]] = {}

    def _files(self) -> dict[str, list[Path]]:
        from ..lang.project import spec_index

        return spec_index(self.root, [])

    def plan(self, ref: DeploymentRef) -> Any:
        """The plan of the deployment ``ref``: its spec's, under the risk spec the deployment
        recorded when it started (``live.deployed``: what it enforces, ``--risk`` included);
        ``NoPlan`` saying why there is none (no such file, several, or it does not
        compile)."""
        return self.deployed(ref).plan

    def deployed(self, ref: DeploymentRef) -> Any:
        """``live.deployed.DeployedPlan`` of ``ref`` (see ``plan``)."""
        from ..live.deployed import recorded_risk

        recorded = recorded_risk(ref.path)
        with self._lock:
            files = self._files()
            try:
                key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size)
                            for paths in files.values() for p in paths)
            except OSError as exc:  # a spec file removed while we looked
                raise NoPlan(Problem("U001", f"a spec file vanished: {exc}")) from None
            hit = self._memo.get(ref.key)
            if hit is not None and hit[0] == (key, recorded):
                return hit[1]
            deployed = self._compile(ref, files.get(ref.spec, []))
            self._memo[ref.key] = ((key, recorded), deployed)
            return deployed

    def _compile(self, ref: DeploymentRef, paths: list[Path]) -> Any:
        from ..live.deployed import deployed_plan

        spec = ref.spec
        if len(paths) != 1:
            where = "in several files" if paths else "not"
            raise NoPlan(Problem("U001", f"the spec `{spec}` is {where} in this project's "
                                 "specs/", "run the dashboard from the deployment's project"))
        try:
            return deployed_plan(str(paths[0]), ref.mode, ref.account, root=self.root)[1]
        except Exception as exc:  # a spec that no longer compiles: said, never raised
            found = getattr(exc, "diagnostics", None) or [getattr(exc, "diagnostic", None)]
            first = found[0]
            raise NoPlan(Problem(first.code, first.message, first.help) if first is not None
                         else Problem("I001", f"{type(exc).__name__}: {exc}")) from None


class NoPlan(LookupError):
    """A deployment's spec cannot be compiled into its plan: ``problem`` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _WithoutBook:
    """A store whose snapshot ``status_doc`` does not read (no plan to value it with)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def last_snapshot(self) -> None:
        return None


@dataclass(frozen=True)
class LiveStatus:
    """``/live/{mode}/{account}/{spec}``: the deployment's state, or why it cannot be read.

    ``doc`` is ``status_doc``'s document (JSON-ready) with ``alerts``, ``denials``,
    ``last_tick`` and ``generated_at`` added; ``note`` says what is missing from it."""

    ref: DeploymentRef
    doc: dict[str, Any] | None
    problem: Problem | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        problem = None if self.problem is None else {
            "code": self.problem.code, "message": self.problem.message,
            "help": self.problem.help}
        return {"deployment": {"mode": self.ref.mode, "account": self.ref.account,
                               "spec": self.ref.spec},
                "status": self.doc, "error": problem, "note": self.note}


def live_status(ref: DeploymentRef, plans: Plans, now: float | None = None) -> LiveStatus:
    from ..live.store_schema import StoreError

    now = time.time() if now is None else now
    deployed, note = None, None
    try:
        deployed = plans.deployed(ref)
    except NoPlan as exc:
        note = f"equity, PnL and limit usage need the spec: {exc.problem.code} {exc}"
    try:
        with _open(ref) as store:
            doc = _document(store, deployed, now)
    except (StoreError, *READ_ERRORS) as exc:
        return LiveStatus(ref, None, store_problem(exc), note)
    return LiveStatus(ref, doc, None, note)


def _document(store: Any, deployed: Any, now: float) -> dict[str, Any]:
    from ..live.ops import status_doc

    plan = deployed.plan if deployed is not None else None
    doc = status_doc(store if plan is not None else _WithoutBook(store), plan, now,
                     risk=deployed.doc() if deployed is not None else None)
    snap = store.last_snapshot()
    log = store.log_since(0)
    doc["last_tick"] = snap.bar_time if snap is not None else None
    doc["session"] = doc["sessions"][-1] if doc["sessions"] else None
    risk = (doc["book"] or {}).get("risk") or {}
    doc["risk_counts"] = [{"reason": k, "count": v} for k, v in sorted(risk.items())]
    doc["alerts"] = [_alert(e) for e in log if e.event == "alert"][-RECENT:][::-1]
    doc["denials"] = doc["denials"][-RECENT:][::-1]
    doc["problems"] = doc["problems"][::-1]
    doc["log"] = doc["log"][::-1]
    doc["generated_at"] = int(now * 1000)
    out: dict[str, Any] = plain(doc)
    return out


def _alert(entry: Any) -> dict[str, Any]:
    data = entry.data if isinstance(entry.data, dict) else {}
    return {"at": entry.at, "severity": str(data.get("severity", entry.level)),
            "code": str(data.get("code", "")), "key": str(data.get("key", "")),
            "message": entry.message}


def live_report(ref: DeploymentRef, plans: Plans, period: str, day: str | None,
                now: float) -> Any:
    """``peak report live``'s report of the period (``daily``/``weekly``) holding ``day``
    (``--at``; default: the last bar's day); ``BadQuery`` for a bad period or day,
    ``Unavailable`` without a plan or a readable store."""
    from datetime import date

    from ..live.report import PERIODS, report_deployment
    from ..live.runner import Deployment
    from ..live.store_schema import StoreError

    if period not in PERIODS:
        raise BadQuery(f"no period {period!r}: daily or weekly")
    try:
        at = date.fromisoformat(day) if day else None
    except ValueError:
        raise BadQuery(f"at {day!r} is not a date (YYYY-MM-DD)") from None
    try:
        plan = plans.plan(ref)
    except NoPlan as exc:
        raise Unavailable(exc.problem) from None
    where = Deployment(plans.root, ref.mode, ref.account, ref.spec)
    try:
        return report_deployment(where, plan, period=period, at=at, now_s=now)
    except (StoreError, *READ_ERRORS) as exc:
        raise Unavailable(store_problem(exc)) from None


__all__ = ["MODES", "DeploymentRef", "DeploymentSummary", "LiveStatus", "NoPlan", "Plans",
           "deployments", "find_deployment", "live_report", "live_status", "summarize"]
