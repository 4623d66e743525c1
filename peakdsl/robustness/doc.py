"""`peak robustness --json`: a study as one validated document (schema generated from these
models: ``docs/schemas/robustness.schema.json``; docs/robustness.md describes the fields).
Apart from ``run_id`` the same study gives the same document byte for byte."""

from __future__ import annotations

from typing import Any

from pydantic import create_model

from .. import __version__
from ..backtest import MetricsDoc, _Frozen
from ..metrics import produced_by
from .study import SHOWN, StudyResult
from .summary import STATISTICS, Distribution, finite_or_none

JSON_SCHEMA_VERSION = 1


def _study_metrics_model() -> type[_Frozen]:
    """The ``metrics`` object: one field per catalogue metric of the ``robustness`` kind."""
    fields: dict[str, Any] = dict.fromkeys(produced_by("robustness"), (float | None, ...))
    return create_model("StudyMetricsDoc", __base__=_Frozen, __module__=__name__,
                        __doc__="The study's named figures (null: undefined).", **fields)


StudyMetricsDoc = _study_metrics_model()


class DataDoc(_Frozen):
    label: str
    market: str
    timeframe: str
    source: str
    fingerprint: str
    bars: int


class SettingsDoc(_Frozen):
    runs: int
    seed: int
    skip: float
    block_size: int | None
    ruin: float
    jitter: bool
    stress: list[str]


class FanDoc(_Frozen):
    """Equity percentile bands (1 = the starting capital) after ``steps`` trades or bars."""

    levels: list[int]
    steps: list[int]
    equity: list[list[float]]
    runs: int


class HistogramDoc(_Frozen):
    """``edges`` (one more than ``counts``) of equal-width bins over the defined values."""

    edges: list[float]
    counts: list[int]


class MethodDoc(_Frozen):
    """One resampling method's distribution."""

    runs: int
    percentiles: dict[str, dict[str, float | None]]  # statistic → p05 … p95
    prob_loss: float
    risk_of_ruin: float
    fan: FanDoc
    histogram: dict[str, HistogramDoc]  # statistic → its histogram


class VariantDoc(_Frozen):
    name: str
    doc: str
    total_return: float | None
    max_drawdown: float | None
    sharpe: float | None
    trades: int | None


class RobustnessDoc(_Frozen):
    """`peak robustness --json`: see docs/robustness.md."""

    schema_version: int
    run_id: str | None
    spec: str
    kind: str  # "strategy" | "portfolio"
    source_path: str
    artifact_sha256: str
    engine_version: str
    start: str
    end: str
    data: list[DataDoc]
    settings: SettingsDoc
    base: MetricsDoc  # type: ignore[valid-type]
    metrics: StudyMetricsDoc  # type: ignore[valid-type]
    monte_carlo: dict[str, MethodDoc]
    stress: list[VariantDoc]
    jitter: list[VariantDoc]
    notes: list[str]


HISTOGRAM_BINS = 30


def _histogram(values: Any) -> HistogramDoc:
    import numpy as np

    defined = values[np.isfinite(values)]
    if defined.size == 0:
        return HistogramDoc(edges=[], counts=[])
    spread = float(defined.max() - defined.min())
    # one bin when the runs agree up to rounding (a reshuffle's return: the same product)
    bins = HISTOGRAM_BINS if spread > 1e-9 * max(1.0, float(np.abs(defined).max())) else 1
    counts, edges = np.histogram(defined, bins=bins)
    return HistogramDoc(edges=[float(e) for e in edges], counts=[int(c) for c in counts])


def _method(dist: Distribution, ruin: float) -> MethodDoc:
    fan = dist.fan
    return MethodDoc(
        runs=dist.runs,
        percentiles={name: {f"p{level:02d}": value
                            for level, value in dist.percentiles(name).items()}
                     for name in STATISTICS},
        prob_loss=dist.prob_loss(), risk_of_ruin=dist.risk_of_ruin(ruin),
        fan=FanDoc(levels=list(fan.levels), steps=[int(s) for s in fan.steps],
                   equity=[[float(x) for x in row] for row in fan.equity], runs=fan.runs),
        histogram={name: _histogram(getattr(dist, name)) for name in STATISTICS})


def _variant(name: str, doc: str, metrics: dict[str, Any]) -> VariantDoc:
    values = {k: metrics.get(k) for k in SHOWN}
    return VariantDoc(name=name, doc=doc, **{
        k: (None if v is None else int(v) if k == "trades" else finite_or_none(float(v)))
        for k, v in values.items()})


def robustness_doc(result: StudyResult, run_id: str | None) -> RobustnessDoc:
    plan, settings = result.plan, result.settings
    data = [DataDoc(label=c.label, market=c.config.market.symbol, timeframe=c.config.timeframe,
                    source=c.candles.source, fingerprint=c.candles.fingerprint,
                    bars=c.candles.bars) for c in plan.components]
    return RobustnessDoc(
        schema_version=JSON_SCHEMA_VERSION, run_id=run_id, spec=plan.config.name,
        kind="strategy" if plan.strategy else "portfolio",
        source_path=plan.artifact.source.path, artifact_sha256=plan.artifact_sha256,
        engine_version=__version__, start=plan.start.isoformat(), end=plan.end.isoformat(),
        data=data,
        settings=SettingsDoc(runs=settings.runs, seed=settings.seed, skip=settings.skip,
                             block_size=settings.block_size, ruin=settings.ruin,
                             jitter=settings.jitter, stress=list(settings.stress)),
        base=MetricsDoc.model_validate(result.base.metrics),
        metrics=StudyMetricsDoc.model_validate(
            {k: result.metrics.get(k) for k in produced_by("robustness")}),
        monte_carlo={m: _method(d, settings.ruin) for m, d in result.distributions.items()},
        stress=[_variant(v.name, v.doc, v.metrics) for v in result.variants
                if v.kind == "stress"],
        jitter=[_variant(v.name, v.doc, v.metrics) for v in result.variants
                if v.kind == "jitter"],
        notes=list(result.notes) + [f"{d.code}: {d.message}" for d in plan.warnings])
