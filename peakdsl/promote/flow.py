"""`peak promote`: gate a spec on its evidence, record the decision, approve, show, check.

- ``promote``: resolve the spec as it is now (artifact and data), collect the evidence each
  criterion of the gate needs (``evidence``; with ``run=True`` produce what is missing:
  backtest, walk-forward, robustness, sweep), evaluate every criterion, and — only when all
  pass — write a record (``records``) to ``promotions/<spec>/`` and the registry. Live needs
  an applicable testnet record first. A failing gate writes nothing (R001).
- ``approve``: four eyes — a reviewer other than the author approves a live record.
- ``status``: the chain (research evidence → testnet → live) and, for each record, exactly why
  it no longer applies (spec, component, gate, data or engine changed).
- ``check``: the yes / no the live executor asks: is there an applicable (and, for live,
  approved) record of this exact artifact at this stage, in an intact chain?
"""

from __future__ import annotations

import getpass
import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__
from ..compile import models as m
from ..lang.diagnostics import Diagnostic, diag
from ..metrics import format_metric
from ..registry.records import RunOutcome, RunStart
from ..registry.store import Registry
from .evidence import Subject, collect, lineage_figures, metric_value, source_kind
from .records import (
    RECORD_VERSION,
    STAGES,
    Approval,
    Chain,
    CriterionResult,
    Entry,
    PromotionRecord,
    Stage,
    load_chain,
    sealed,
    write,
)

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne}


class PromotionError(Exception):
    """A refusal with its diagnostics (exit 1; 2 when they are all usage errors)."""

    def __init__(self, diagnostics: list[Diagnostic],
                 table: list[CriterionResult] | None = None) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = tuple(diagnostics)
        self.table = table or []


@dataclass(frozen=True)
class Context:
    """The spec and gate as they are now."""

    root: Path
    subject: Subject
    gate: m.PromotionArtifact
    gate_sha256: str


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def author_name(given: str | None) -> str:
    """``--author``, else ``PEAK_AUTHOR``, else the login name."""
    return given or os.environ.get("PEAK_AUTHOR") or getpass.getuser()


def _gate(name: str, root: Path) -> tuple[m.PromotionArtifact, str]:
    from ..api import compile_spec
    from ..compile.artifacts import dump_model, sha256
    from ..lang.project import UsageError, spec_index

    path = Path(name)
    if not (path.suffix == ".peak" and path.is_file()):
        found = spec_index(root, []).get(name, [])
        if len(found) != 1:
            raise UsageError(diag("U001", f"--gate {name}: no promotion spec of that name",
                                  "--gate", help="give a promotion spec's name or file"))
        path = found[0]
    artifact = compile_spec(str(path), root)
    if not isinstance(artifact, m.PromotionArtifact):
        raise UsageError(diag("U003", f"--gate {name}: {path} is a {artifact.kind}, not a "
                              "promotion spec", "--gate"))
    return artifact, sha256(dump_model(artifact))


def context(spec: str, gate: str, root: Path | None = None) -> Context:
    from ..lang.project import find_root
    from ..robustness.subject import subject_plan

    project = find_root(root or Path(spec).resolve().parent)
    plan, _ = subject_plan(spec, root=project)
    artifact, sha = _gate(gate, project)
    return Context(project, Subject.of(plan), artifact, sha)


def _needed(ctx: Context) -> dict[str, str]:
    """Each criterion's metric → the kind of run that computes it; R003 when none does."""
    out, problems = {}, []
    for c in ctx.gate.config.criteria:
        kind = source_kind(c.metric, ctx.subject.kind)
        if kind is None:
            problems.append(diag("R003", f"`{c.metric}` in gate `{ctx.gate.name}`: no kind "
                                 f"of run computes it for a {ctx.subject.kind}", "--gate",
                                 help="use a gate without it for this spec"))
        else:
            out[c.metric] = kind
    if problems:
        raise PromotionError(problems)
    return out


def evaluate(ctx: Context, evidence: Mapping[str, object]) -> list[CriterionResult]:
    from ..registry.records import RunRecord

    table = []
    for c in ctx.gate.config.criteria:
        run = evidence.get(source_kind(c.metric, ctx.subject.kind) or "")
        value = metric_value(run, c.metric) if isinstance(run, RunRecord) else None
        passed = value is not None and OPS[c.op](value, c.threshold)
        table.append(CriterionResult(metric=c.metric, op=c.op, threshold=c.threshold,
                                     value=value, passed=passed,
                                     source=run.id if isinstance(run, RunRecord) else None))
    return table


RUNNERS: dict[str, Callable[[str, Path], None]] = {}


def _runner(kind: str) -> Callable[[Callable[[str, Path], None]], Callable[[str, Path], None]]:
    def register(fn: Callable[[str, Path], None]) -> Callable[[str, Path], None]:
        RUNNERS[kind] = fn
        return fn
    return register


@_runner("backtest")
def _run_backtest(spec: str, root: Path) -> None:
    from .. import api

    api.backtest(spec, root=root)


@_runner("portfolio")
def _run_portfolio(spec: str, root: Path) -> None:
    from .. import api

    api.portfolio_backtest(spec, root=root)


@_runner("walkforward")
def _run_walkforward(spec: str, root: Path) -> None:
    """Train on 40 % of the bars, test on the next 20 %, rolling (three windows), choosing
    among 50 random param sets (seed 0) in each: bounded time whatever the space."""
    from .. import api
    from ..resolve import resolve

    bars = resolve("walkforward", spec, root=root).candles.bars
    api.walkforward(spec, root=root, train=str(bars * 2 // 5), test=str(bars // 5),
                    mode="random", n=50, seed=0)


@_runner("robustness")
def _run_robustness(spec: str, root: Path) -> None:
    from ..robustness.run import run_study

    run_study(spec, {}, root=root)


@_runner("sweep")
def _run_sweep(spec: str, root: Path) -> None:
    """100 random combinations of the spec's space, seed 0."""
    from .. import api

    api.sweep(spec, root=root, mode="random", n=100, seed=0)


def _evidence(ctx: Context, spec: str, registry: Registry, run: bool) -> dict[str, object]:
    kinds = set(_needed(ctx).values())
    found: dict[str, object] = dict(collect(registry, ctx.subject, kinds))
    missing = sorted(kinds - set(found))
    if missing and run:
        for kind in missing:
            RUNNERS[kind](spec, ctx.root)
        found = dict(collect(registry, ctx.subject, kinds))
        missing = sorted(kinds - set(found))
    if missing:
        raise PromotionError([diag(
            "R002", f"no {kind} run of `{ctx.subject.spec}` on this artifact "
            f"({ctx.subject.artifact_sha256[:12]}) and data", "<peak>",
            help=f"run `peak {_command(kind)} {spec}` first, or `peak promote … --run`")
            for kind in missing])
    return found


def _command(kind: str) -> str:
    return {"portfolio": "backtest", "robustness": "robustness"}.get(kind, kind)


def _registry_shas(registry: Registry, spec: str) -> set[str]:
    return {str(r.inputs.get("record")) for r in registry.list_runs(
        spec=spec, kind="promotion", limit=None) if r.inputs.get("record")}


def _record_entry(root: Path, registry: Registry, entry: Entry) -> Path:
    """Write the entry's file, then register it (kind ``promotion``)."""
    path = write(root, entry)
    inputs = {"record": entry.sha256}
    if isinstance(entry, PromotionRecord):
        inputs.update({"artifact": entry.artifact_sha256, "gate": entry.gate_sha256,
                       **{f"component:{k}": v for k, v in entry.components.items()},
                       **entry.data})
    metrics: dict[str, float | None] = {}
    if isinstance(entry, PromotionRecord):
        metrics = {c.metric: c.value for c in entry.criteria}
    registry.record(RunStart("promotion", entry.spec, inputs, __version__,
                             settings={"entry": entry.entry, "sequence": entry.sequence}),
                    RunOutcome(metrics, artifacts={"record": path},
                               summary=entry.model_dump(mode="json")))
    return path


@dataclass(frozen=True)
class Promoted:
    record: PromotionRecord
    path: Path
    table: list[CriterionResult]


def promote(spec: str, *, gate: str, stage: Stage, root: Path | None = None,
            author: str | None = None, run: bool = False) -> Promoted:
    """Gate ``spec`` (module docstring); raises ``PromotionError`` with the reasons."""
    from ..registry.recording import open_registry

    ctx = context(spec, gate, root)
    with open_registry(ctx.root) as registry:
        evidence = _evidence(ctx, spec, registry, run)
        table = evaluate(ctx, evidence)
        failed = [t for t in table if not t.passed]
        if failed:
            raise PromotionError([diag(
                "R001", f"gate `{ctx.gate.name}` not met: {len(failed)} of {len(table)} "
                "criteria failed", "<peak>", help="failed: " + ", ".join(
                    f"{t.metric} {format_metric(t.metric, t.value)} (needs {t.op} "
                    f"{format_metric(t.metric, t.threshold)})" for t in failed))], table)
        chain = load_chain(ctx.root, ctx.subject.spec, _registry_shas(registry,
                                                                      ctx.subject.spec))
        _intact(chain)
        gates = GatesNow(ctx.root, {ctx.gate.name: ctx.gate_sha256})
        if stage == "live" and not _applicable(chain, ctx.subject, gates, "testnet"):
            raise PromotionError([diag(
                "R006", f"`{ctx.subject.spec}` has no testnet record for this artifact",
                "--stage", help=f"promote it to testnet first: peak promote {spec} "
                f"--gate {gate} --stage testnet")])
        record = sealed(_record(ctx, chain, stage, evidence, table,
                                lineage_figures(registry, ctx.subject, {}),
                                author_name(author)))
        assert isinstance(record, PromotionRecord)
        path = _record_entry(ctx.root, registry, record)
    return Promoted(record, path, table)


def _record(ctx: Context, chain: Chain, stage: Stage, evidence: Mapping[str, object],
            table: list[CriterionResult], lineage: Mapping[str, object],
            author: str) -> PromotionRecord:
    return PromotionRecord(
        record_version=RECORD_VERSION, entry="promotion", sequence=len(chain.entries) + 1,
        previous=chain.head, spec=ctx.subject.spec, kind=ctx.subject.kind, stage=stage,
        artifact_sha256=ctx.subject.artifact_sha256, components=ctx.subject.components,
        data=ctx.subject.data, gate=ctx.gate.name, gate_sha256=ctx.gate_sha256,
        engine_version=__version__,
        evidence={k: getattr(v, "id", "") for k, v in sorted(evidence.items())},
        criteria=table, lineage=dict(lineage), author=author,
        created_at=_now())


def _intact(chain: Chain) -> None:
    if chain.problems:
        raise PromotionError([diag("R004", f"promotion chain: {p}", "promotions/",
                                   help="restore the file from version control; records "
                                   "are never edited") for p in chain.problems])


class GatesNow:
    """The sha256 of each gate as it is now, by name, compiled once each; "" for a gate that
    no longer resolves or checks (it changed). A record is judged against its own gate."""

    def __init__(self, root: Path, known: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.shas = dict(known or {})

    def __call__(self, name: str) -> str:
        if name not in self.shas:
            from ..api import SpecError
            from ..lang.project import UsageError

            try:
                self.shas[name] = _gate(name, self.root)[1]
            except (SpecError, UsageError):
                self.shas[name] = ""
        return self.shas[name]


def why_not(record: PromotionRecord, subject: Subject, gates: GatesNow) -> list[str]:
    """Why a record no longer applies to the spec as it is now (empty: it applies)."""
    reasons = []
    if record.artifact_sha256 != subject.artifact_sha256:
        reasons.append(f"the spec changed (artifact {record.artifact_sha256[:12]} → "
                       f"{subject.artifact_sha256[:12]})")
    reasons += [f"component `{k}` changed" for k, v in record.components.items()
                if subject.components.get(k) != v]
    if record.gate_sha256 != gates(record.gate):
        reasons.append(f"gate `{record.gate}` changed")
    reasons += [f"the data changed ({k})" for k, v in record.data.items()
                if subject.data.get(k) != v]
    if record.engine_version != __version__:
        reasons.append(f"the engine changed ({record.engine_version} → {__version__})")
    return reasons


def _applicable(chain: Chain, subject: Subject, gates: GatesNow,
                stage: Stage) -> PromotionRecord | None:
    """The newest record at ``stage`` or above that applies (live: and is approved)."""
    wanted = STAGES[STAGES.index(stage):]
    for record in reversed(chain.records()):
        if record.stage in wanted and not why_not(record, subject, gates) and (
                record.stage != "live" or chain.approvals_of(record)):
            return record
    return None


def approve(record_ref: str, *, reviewer: str, root: Path | None = None) -> Approval:
    """Approve the live record whose sha256 starts with ``record_ref``."""
    from ..lang.project import UsageError, find_root
    from ..registry.recording import open_registry

    project = find_root(root or Path.cwd())
    record = _find_record(project, record_ref)  # before the registry: nothing written on U013
    with open_registry(project) as registry:
        chain = load_chain(project, record.spec, _registry_shas(registry, record.spec))
        _intact(chain)
        if record.stage != "live":
            raise UsageError(diag("U005", f"record {record.sha256[:12]} is a {record.stage} "
                                  "record; only live records need approval", "<peak>"))
        if reviewer == record.author:
            raise UsageError(diag("U012", f"{reviewer} wrote record {record.sha256[:12]} and "
                                  "cannot approve it", "--reviewer",
                                  help="four eyes: another person approves a live record"))
        approval = sealed(Approval(
            record_version=RECORD_VERSION, entry="approval", sequence=len(chain.entries) + 1,
            previous=chain.head, spec=record.spec, record=record.sha256, reviewer=reviewer,
            created_at=_now()))
        assert isinstance(approval, Approval)
        _record_entry(project, registry, approval)
    return approval


def _find_record(root: Path, ref: str) -> PromotionRecord:
    from ..lang.project import UsageError
    from .records import PROMOTIONS_DIR

    ref = ref.strip().lower()
    base = root / PROMOTIONS_DIR
    specs = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    hits = [r for spec in specs for r in load_chain(root, spec).records()
            if len(ref) >= 6 and r.sha256.startswith(ref)]
    if len(hits) != 1:
        raise UsageError(diag("U013", f"no promotion record {ref}" if not hits else
                              f"{len(hits)} records start with {ref}", "<peak>",
                              help="give at least 6 characters of the record's sha256 "
                              "(peak promote status SPEC lists them)"))
    return hits[0]


@dataclass(frozen=True)
class Status:
    spec: str
    chain: Chain
    applies: dict[str, list[str]]  # record sha256 → why it no longer applies (empty: it does)
    evidence: dict[str, str]  # run kind → newest matching run id


def status(spec: str, *, gate: str = "live_gate", root: Path | None = None) -> Status:
    from ..registry.recording import open_registry

    ctx = context(spec, gate, root)
    with open_registry(ctx.root) as registry:
        chain = load_chain(ctx.root, ctx.subject.spec,
                           _registry_shas(registry, ctx.subject.spec))
        kinds = {source_kind(c.metric, ctx.subject.kind) for c in ctx.gate.config.criteria}
        found = collect(registry, ctx.subject, {k for k in kinds if k})
    gates = GatesNow(ctx.root, {ctx.gate.name: ctx.gate_sha256})
    return Status(ctx.subject.spec, chain,
                  {r.sha256: why_not(r, ctx.subject, gates) for r in chain.records()},
                  {k: v.id for k, v in found.items()})


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str
    record: PromotionRecord | None = None


def check(spec: str, stage: Stage, *, root: Path | None = None) -> Check:
    """May ``spec`` run at ``stage``? Fails closed: any problem is a no, with its reason."""
    from ..lang.project import find_root
    from ..registry.recording import open_registry
    from ..robustness.subject import subject_plan

    project = find_root(root or Path(spec).resolve().parent)
    plan, _ = subject_plan(spec, root=project)
    subject = Subject.of(plan)
    with open_registry(project) as registry:
        chain = load_chain(project, subject.spec, _registry_shas(registry, subject.spec))
    if chain.problems:
        return Check(False, "the promotion chain is broken: " + chain.problems[0])
    reasons, gates = [], GatesNow(project)
    for record in reversed(chain.records()):
        if record.stage not in STAGES[STAGES.index(stage):]:
            continue
        why = why_not(record, subject, gates)
        if record.stage == "live" and not chain.approvals_of(record):
            why.append("it is not approved by a reviewer")
        if not why:
            return Check(True, f"{record.stage} record {record.sha256[:12]} applies", record)
        reasons.append(f"{record.stage} record {record.sha256[:12]}: " + "; ".join(why))
    if not reasons:
        return Check(False, f"`{subject.spec}` has no {stage} record")
    return Check(False, reasons[0])
