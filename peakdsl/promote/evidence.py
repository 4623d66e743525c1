"""Evidence for a promotion: the registry runs of the *exact* artifact on the *exact* data.

A spec's subject (``robustness.subject``: a strategy as a portfolio of one, or a portfolio)
names what must match — the artifact sha256 (a portfolio's and every component's) and each
component's data fingerprint, at the spec's default params. Each metric a gate reads comes
from one kind of run (``SOURCES``, a table): the backtest's catalogue from a ``backtest`` (a
strategy) or ``portfolio`` run, ``oos_*`` and ``wf_efficiency`` from a ``walkforward``,
``deflated_sharpe`` and ``pbo`` from a ``sweep``, the study's figures from ``robustness``.
The newest finished run that matches is the evidence; nothing older, nothing approximate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..metrics import CATALOGUE
from ..portfolio.plan import PortfolioPlan
from ..registry.records import RunRecord
from ..registry.store import Registry


@dataclass(frozen=True)
class Subject:
    """What a promotion is about, as the registry's inputs name it."""

    spec: str
    kind: str  # "strategy" | "portfolio"
    artifact_sha256: str
    components: dict[str, str]  # label → artifact sha256 (a portfolio's; empty otherwise)
    data: dict[str, str]  # input name ("data" or "data:LABEL") → fingerprint
    params: dict[str, float]  # a strategy's default params (a portfolio: none)

    @classmethod
    def of(cls, plan: PortfolioPlan) -> Subject:
        if plan.strategy:
            only = plan.components[0]
            return cls(plan.config.name, "strategy", plan.artifact_sha256, {},
                       {"data": only.candles.fingerprint}, dict(only.params))
        return cls(plan.config.name, "portfolio", plan.artifact_sha256,
                   {c.label: c.artifact_sha256 for c in plan.components},
                   {f"data:{c.label}": c.candles.fingerprint for c in plan.components}, {})

    def inputs(self) -> dict[str, str]:
        """The registry inputs a run of this subject carries (risk aside)."""
        out = {"artifact": self.artifact_sha256, **self.data}
        out.update({f"component:{k}": v for k, v in self.components.items()})
        return out


# metric → the kind of run that computes it, per subject kind (None: none does)
_WALKFORWARD = ("oos_sharpe", "oos_total_return", "oos_max_drawdown", "wf_efficiency")
_SWEEP = ("deflated_sharpe", "pbo")


def source_kind(metric: str, subject_kind: str) -> str | None:
    """The run kind that computes ``metric`` for a subject of ``subject_kind``."""
    runs = CATALOGUE[metric].runs
    if "robustness" in runs:
        return "robustness"
    if metric in _WALKFORWARD:
        return "walkforward" if subject_kind == "strategy" else None
    if metric in _SWEEP:
        return "sweep" if subject_kind == "strategy" else None
    return "backtest" if subject_kind == "strategy" else "portfolio"


def _matches(run: RunRecord, subject: Subject) -> bool:
    wanted = subject.inputs()
    if any(run.inputs.get(k) != v for k, v in wanted.items()):
        return False
    if run.kind in ("backtest", "walkforward", "robustness") and subject.kind == "strategy":
        params = {k: float(v) for k, v in run.params.items()} if run.kind != "walkforward" \
            else subject.params
        return all(params.get(k) == v for k, v in subject.params.items())
    return True


def find(registry: Registry, subject: Subject, kind: str) -> RunRecord | None:
    """The newest finished ``kind`` run of ``subject`` (None: there is none)."""
    for run in registry.list_runs(spec=subject.spec, kind=kind, status="done", limit=None,
                                  top_level=True):
        if _matches(run, subject):
            return run
    return None


def collect(registry: Registry, subject: Subject, kinds: set[str]) -> dict[str, RunRecord]:
    """The evidence run of each kind that has one."""
    found = {kind: find(registry, subject, kind) for kind in sorted(kinds)}
    return {kind: run for kind, run in found.items() if run is not None}


def metric_value(run: RunRecord, metric: str) -> float | None:
    value = run.metrics.get(metric)
    return None if value is None else float(value)


def lineage_figures(registry: Registry, subject: Subject,
                    evidence: Mapping[str, RunRecord]) -> dict[str, float | int | None]:
    """The lineage's trial count, and the deflated Sharpe and PBO of its newest sweep on the
    same data (None without one)."""
    sweep = evidence.get("sweep") or find(registry, subject, "sweep")
    return {"trials": registry.trial_count(subject.spec),
            "deflated_sharpe": metric_value(sweep, "deflated_sharpe") if sweep else None,
            "pbo": metric_value(sweep, "pbo") if sweep else None,
            "sweep": sweep.id if sweep else None}  # type: ignore[dict-item]
