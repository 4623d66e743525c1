"""A robustness study end to end: resolve the spec (strategy or portfolio), run the study in
this process or with its Monte-Carlo chunks on Dask, and record it (kind ``robustness``).

The registry record carries the study's named figures as metrics, so promotion criteria such
as ``mc_p05_return`` read them by the exact artifact hash and data fingerprints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..registry.records import DataRange, PathLike, RunOutcome, RunStart
from . import montecarlo as mc
from .doc import RobustnessDoc, robustness_doc
from .scenarios import SCENARIOS
from .study import Settings, StudyResult, study
from .summary import Distribution


@dataclass(frozen=True)
class StudyRun:
    result: StudyResult
    doc: RobustnessDoc
    run_id: str | None


def remote_chunk(jobs: Mapping[str, mc.Job], method: str, start: int, stop: int) -> mc.Chunk:
    """One chunk on a Dask worker (module level: the workers import it)."""
    return mc.compute_chunk(jobs[method], start, stop)


def distributed(workers: int | None, scheduler: str | None
                ) -> Callable[[Mapping[str, mc.Job], Callable[[], None]],
                              dict[str, Distribution]]:
    """Compute the jobs' chunks on Dask (``--workers`` / ``--scheduler``): each run draws from
    its own stream, so the distributions are the bytes an in-process study gives."""
    from ..research.sweep import StopFlag, Tasks, placement, run_tasks

    where = placement(workers, scheduler)

    def compute(jobs: Mapping[str, mc.Job], tick: Callable[[], None]
                ) -> dict[str, Distribution]:
        items = [(method, lo, hi) for method, job in jobs.items()
                 for lo, hi in mc.chunk_bounds(job.runs)]
        done: dict[str, list[mc.Chunk]] = {method: [] for method in jobs}

        def arrived(chunk: mc.Chunk) -> None:
            done[chunk.method].append(chunk)
            tick()

        tasks = Tasks(items, lambda m, lo, hi: remote_chunk(jobs, m, lo, hi), remote_chunk,
                      (dict(jobs),))
        with StopFlag().installed() as stop:
            run_tasks(tasks, where, stop, arrived)
            if stop.requested:
                raise KeyboardInterrupt
        return {m: mc.combine(jobs[m], chunks) for m, chunks in done.items()}

    return compute


def check_stress(names: list[str]) -> tuple[str, ...]:
    """``--stress`` names (``all`` for every scenario, ``none`` for none), U005 otherwise."""
    from ..lang.diagnostics import did_you_mean
    from ..lang.project import UsageError
    from ..research.sweep import _usage

    if names == ["all"]:
        return tuple(SCENARIOS)
    if names == ["none"]:
        return ()
    for name in names:
        if name not in SCENARIOS:
            error = _usage(f"--stress {name}: no such scenario", "--stress",
                           help=did_you_mean(name, SCENARIOS) or "one of "
                           + ", ".join(SCENARIOS) + ", or all / none")
            assert isinstance(error, UsageError)
            raise error
    return tuple(dict.fromkeys(names))


def study_records(doc: RobustnessDoc, result: StudyResult, risk_sha256: str | None,
                  artifacts: Mapping[str, PathLike] | None = None
                  ) -> tuple[RunStart, RunOutcome]:
    inputs = {"artifact": doc.artifact_sha256}
    for c, d in zip(result.plan.components, doc.data, strict=True):
        key = "" if result.plan.strategy else f":{c.label}"
        if not result.plan.strategy:
            inputs[f"component{key}"] = c.artifact_sha256
        inputs[f"data{key}"] = d.fingerprint
    if risk_sha256 is not None:
        inputs["risk"] = risk_sha256
    first = doc.data[0]
    run = RunStart("robustness", doc.spec, inputs, doc.engine_version,
                   params={c.label: c.params for c in result.plan.components}
                   if not result.plan.strategy else dict(result.plan.components[0].params),
                   settings=doc.settings.model_dump(), seed=doc.settings.seed,
                   data=DataRange("; ".join(sorted({d.source for d in doc.data})),
                                  first.market if result.plan.strategy else None,
                                  first.timeframe if result.plan.strategy else None,
                                  doc.start, doc.end, sum(d.bars for d in doc.data)))
    summary: dict[str, Any] = {
        "kind": doc.kind, "base": doc.base.model_dump(),  # type: ignore[attr-defined]
        "stress": [v.model_dump() for v in doc.stress],
        "jitter": [v.model_dump() for v in doc.jitter], "notes": doc.notes}
    metrics = doc.metrics.model_dump()  # type: ignore[attr-defined]
    return run, RunOutcome(metrics, dict(result.timing), None, doc.notes, artifacts or {},
                           summary)


def run_study(spec: str, settings: dict[str, Any], *, root: Path | None = None,
              data: Path | None = None, start: str | None = None, end: str | None = None,
              capital: float | None = None,
              fee_bps: float | None = None, risk: str | None = None, record: bool = True,
              workers: int | None = None, scheduler: str | None = None,
              outputs: Callable[[StudyResult, RobustnessDoc], Mapping[str, Path]] | None = None,
              progress: Callable[[int, int], None] | None = None) -> StudyRun:
    """Resolve ``spec``, run its study (``settings`` override its `robustness {}` block:
    runs, seed, skip, block_size, ruin, jitter, stress) and record it."""
    from ..registry.recording import open_registry, record_run
    from .subject import subject_plan

    plan, risk_sha = subject_plan(spec, root=root, data=data, start=start, end=end,
                                  capital=capital, risk=risk)
    config = Settings.of(plan.robustness, **settings)
    distribute = (distributed(workers, scheduler)
                  if workers is not None or scheduler is not None else None)
    registry = open_registry(plan.root) if record else None
    try:
        result = study(plan, config, fee_bps, distribute, progress)
        doc = robustness_doc(result, None)
        files = outputs(result, doc) if outputs is not None else {}
        run_id = (record_run(registry, *study_records(doc, result, risk_sha, files))
                  if registry is not None else None)
    finally:
        if registry is not None:
            registry.close()
    return StudyRun(result, doc.model_copy(update={"run_id": run_id}), run_id)
