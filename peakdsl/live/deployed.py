"""A deployment as the commands that read its store see it: where it lives, and its plan with
the risk spec it actually runs under.

``peak live run SPEC --risk NAME`` enforces a risk spec that ``SPEC`` does not name. The runner
records it in the store when it starts (``LiveStore.record_risk_spec``: name, artifact sha256,
given or the spec's own); ``deployed_plan`` reads that record back, so ``peak live status``,
``health``, ``verify``, ``peak report live`` and the dashboard show the limits and check the
alert sinks the deployment enforces, not the spec's own (or none). ``--risk`` on those commands
overrides the record (a store of a runner that did not record one, or a look at another risk
spec); a risk spec whose text changed since the start, or one ``--risk`` names against the
record, is said in ``notes`` — never silently taken for the enforced one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .store_rows import RiskSpecRecord

if TYPE_CHECKING:
    from ..portfolio.plan import PortfolioPlan
    from .runner import Deployment

RiskSource = Literal["--risk", "recorded", "spec", "none"]
SOURCES: dict[str, str] = {"--risk": "as --risk names it",
                           "recorded": "recorded by the deployment when it started",
                           "spec": "the spec's own", "none": "none"}


@dataclass(frozen=True)
class DeployedPlan:
    """The plan to read a deployment's store with, and where its risk spec came from."""

    plan: PortfolioPlan
    risk_sha256: str | None  # of the risk spec the plan carries now
    source: RiskSource  # --risk given now, recorded by the runner, the spec's own, or none
    recorded: RiskSpecRecord | None  # what the runner recorded (None: nothing recorded)
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``live_moderate (0e104146e158), recorded when it started``, or ``none``."""
        risk = self.plan.risk
        if risk is None:
            return "none" + (f" ({SOURCES[self.source]})" if self.source == "recorded" else "")
        return f"{risk.name} ({(self.risk_sha256 or '')[:12]}), {SOURCES[self.source]}"

    def doc(self) -> dict[str, Any]:
        """The ``risk_spec`` entry of ``peak live status --json`` and the dashboard."""
        risk = self.plan.risk
        return {"name": risk.name if risk is not None else None, "sha256": self.risk_sha256,
                "source": self.source, "label": self.label,
                "recorded": None if self.recorded is None else {
                    "name": self.recorded.name, "sha256": self.recorded.sha256,
                    "given": self.recorded.given},
                "notes": list(self.notes), "note": "; ".join(self.notes) or None}


def recorded_risk(store_path: Path) -> RiskSpecRecord | None:
    """The store's record of its risk spec; None when there is no store or no record (a
    store that cannot be read is the caller's to report when it opens it)."""
    from .store import LiveStore
    from .store_schema import StoreError

    if not store_path.exists():
        return None
    try:
        with LiveStore.open(store_path, readonly=True) as store:
            return store.risk_spec()
    except StoreError:
        return None


def deployed_plan(spec: str, mode: str, account: str, risk: str | None = None, *,
                  root: Path | None = None) -> tuple[Deployment, DeployedPlan]:
    """Where ``spec``'s deployment in ``mode`` on ``account`` keeps its state, and its plan
    under the risk spec ``risk`` names, else the one the store recorded, else the spec's own
    (module docstring). ``SpecError`` / ``UsageError`` as ``subject_plan`` raises them."""
    from ..lang.project import find_root
    from ..robustness.subject import subject_plan
    from .runner import Deployment

    project = root or find_root(Path(spec).resolve().parent)
    own, own_sha = subject_plan(spec, root=project)
    where = Deployment(project, mode, account, own.config.name)
    recorded = recorded_risk(where.store_path)
    if risk is not None:
        plan, sha = subject_plan(spec, root=project, risk=risk)
        return where, DeployedPlan(plan, sha, "--risk", recorded,
                                   _given_notes(risk, sha, recorded))
    if recorded is None:
        return where, DeployedPlan(own, own_sha, "spec" if own.risk else "none", None)
    return where, _from_record(spec, project, own, own_sha, recorded)


def _from_record(spec: str, project: Path, own: PortfolioPlan, own_sha: str | None,
                 recorded: RiskSpecRecord) -> DeployedPlan:
    """The plan under the recorded risk spec; when it no longer resolves, the plan without
    limits and a note why (the deployment's own limits are not the spec's)."""
    from ..robustness.subject import subject_plan

    if recorded.name is None:
        return DeployedPlan(replace(own, risk=None), None, "recorded", recorded)
    if not recorded.given and own.risk is not None and own.risk.name == recorded.name:
        plan, sha = own, own_sha
    else:
        try:
            plan, sha = subject_plan(spec, root=project, risk=recorded.name)
        except Exception as exc:  # the risk spec was removed or broken since the start
            first = (getattr(exc, "diagnostics", None) or [None])[0]
            why = f"{first.code} {first.message}" if first is not None else \
                f"{type(exc).__name__}: {exc}"
            return DeployedPlan(replace(own, risk=None), None, "recorded", recorded, (
                f"the deployment runs under risk spec {recorded.name}, which no longer "
                f"resolves ({why}): its limits are not shown",))
    return DeployedPlan(plan, sha, "recorded", recorded, _changed(recorded, sha))


def _changed(recorded: RiskSpecRecord, sha: str | None) -> tuple[str, ...]:
    if sha == recorded.sha256:
        return ()
    return (f"risk spec {recorded.name} changed since the deployment started (then "
            f"{(recorded.sha256 or '')[:12]}, now {(sha or '')[:12]}): a running deployment "
            "enforces the old limits until it restarts",)


def _given_notes(risk: str, sha: str | None,
                 recorded: RiskSpecRecord | None) -> tuple[str, ...]:
    if recorded is None:
        return ()
    if recorded.name == risk:
        return _changed(recorded, sha)
    runs = f"risk spec {recorded.name}" if recorded.name else "no risk spec"
    return (f"--risk {risk} given, but the deployment runs under {runs}: the limits shown "
            "are not the ones it enforces",)


__all__ = ["DeployedPlan", "RiskSource", "deployed_plan", "recorded_risk"]
