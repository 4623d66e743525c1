"""`peak backtest PORTFOLIO --json`: the portfolio run as one validated document.

Its schema is generated from these models (``docs/schemas/portfolio.schema.json``, a test
keeps the committed file equal to them); docs/portfolio.md describes every field. Apart from
``run_id`` and ``timing`` the same run gives the same document byte for byte.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backtest import MetricsDoc, _Frozen
from ..engine.state import RISK_LIMITS
from ..metrics import DASH
from .analysis import (
    ComponentFigures,
    allocation,
    component_figures,
    correlation,
    exposure_by_market,
    utilisation,
)
from .run import PortfolioResult

JSON_SCHEMA_VERSION = 1
SERIES_POINTS = 250  # equity, exposure and allocation are sampled to at most this many points


class ComponentDoc(_Frozen):
    """One component: what ran, on which data, and how it did."""

    label: str
    strategy: str
    market: str
    timeframe: str
    weight: float
    artifact_sha256: str
    data_fingerprint: str
    data_source: str
    bars: int
    params: dict[str, float]
    pnl: float
    contribution_return: float
    contribution_drawdown: float
    metrics: MetricsDoc  # type: ignore[valid-type]  # generated from the catalogue


class RiskUseDoc(_Frozen):
    """The risk spec the run enforced, what it cut, and how close it came to each limit."""

    spec: str | None
    limits: dict[str, float | None]
    reduced: dict[str, int]
    denied: dict[str, int]
    utilisation: dict[str, float | None]  # the most of each limit used, 1.0 = at it


class SeriesDoc(_Frozen):
    """Series sampled on the clock: ``time`` then one list per name, equal lengths."""

    time: list[str]
    values: dict[str, list[float | None]]


class PortfolioDoc(_Frozen):
    """`peak backtest PORTFOLIO --json`: see docs/portfolio.md."""

    schema_version: int
    run_id: str | None
    portfolio: str
    source_path: str
    artifact_sha256: str
    engine_version: str
    capital: float
    currency: str
    start: str
    end: str
    points: int
    rebalance_seconds: int | None
    rebalance_drift: float | None
    rebalances: int
    metrics: MetricsDoc  # type: ignore[valid-type]
    final_equity: float
    components: list[ComponentDoc]
    correlation: dict[str, dict[str, float | None]]
    risk: RiskUseDoc
    equity: SeriesDoc
    exposure: SeriesDoc
    allocation: SeriesDoc
    warnings: list[str]


def _number(x: Any) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def sample(n: int, points: int = SERIES_POINTS) -> np.ndarray[Any, Any]:
    """At most ``points`` indices spread over ``n``, always the first and the last."""
    if n <= points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))


def _series(result: PortfolioResult, columns: dict[str, np.ndarray[Any, Any]]) -> SeriesDoc:
    pick = sample(len(result.times))
    return SeriesDoc(time=[t.isoformat() for t in result.times[pick]],
                     values={k: [_number(x) for x in v[pick]] for k, v in columns.items()})


def _component(result: PortfolioResult, fig: ComponentFigures) -> ComponentDoc:
    run = next(r for r in result.components if r.label == fig.label)
    candles = run.component.candles
    return ComponentDoc(
        label=fig.label, strategy=fig.strategy, market=fig.market, timeframe=fig.timeframe,
        weight=fig.weight, artifact_sha256=fig.artifact_sha256,
        data_fingerprint=candles.fingerprint, data_source=candles.source, bars=candles.bars,
        params=fig.params, pnl=fig.pnl, contribution_return=fig.contribution_return,
        contribution_drawdown=fig.contribution_drawdown,
        metrics=MetricsDoc.model_validate(fig.metrics))


def _risk(result: PortfolioResult) -> RiskUseDoc:
    def counted(kind: str) -> dict[str, int]:
        return {k.removeprefix(kind + "_"): v for k, v in sorted(result.sim.risk.items())
                if k.startswith(kind + "_")}

    limits = {k: (v if math.isfinite(v) else None)
              for k, v in result.limits.model_dump().items() if k in RISK_LIMITS}
    return RiskUseDoc(spec=result.plan.risk.name if result.plan.risk else None, limits=limits,
                      reduced=counted("reduced"), denied=counted("denied"),
                      utilisation=utilisation(result))


def portfolio_doc(result: PortfolioResult, run_id: str | None) -> PortfolioDoc:
    """The machine-readable summary of a portfolio run."""
    cfg, plan = result.plan.config, result.plan
    corr = correlation(result)
    exposure = exposure_by_market(result)
    alloc = allocation(result)
    return PortfolioDoc(
        schema_version=JSON_SCHEMA_VERSION, run_id=run_id, portfolio=cfg.name,
        source_path=plan.artifact.source.path, artifact_sha256=plan.artifact_sha256,
        engine_version=result.engine_version, capital=plan.capital,
        currency=cfg.capital.currency, start=plan.start.isoformat(), end=plan.end.isoformat(),
        points=len(result.times), rebalance_seconds=cfg.rebalance_seconds,
        rebalance_drift=cfg.rebalance_drift, rebalances=result.sim.rebalances,
        metrics=MetricsDoc.model_validate(result.metrics),
        final_equity=float(result.sim.equity[-1]),
        components=[_component(result, f) for f in component_figures(result)],
        correlation={a: {b: _number(corr.loc[a, b]) for b in corr.columns} for a in corr.index},
        risk=_risk(result),
        equity=_series(result, {"equity": result.sim.equity}),
        exposure=_series(result, {k: exposure[k].to_numpy() for k in exposure.columns}),
        allocation=_series(result, {k: alloc[k].to_numpy() for k in alloc.columns}),
        warnings=list(result.warnings))


__all__ = ["DASH", "JSON_SCHEMA_VERSION", "PortfolioDoc", "portfolio_doc", "sample"]
