"""A portfolio run as a registry run (kind ``portfolio``), mirroring its ``--json`` document.

Inputs: the portfolio's artifact, every component's artifact (``component:LABEL``) and data
fingerprint (``data:LABEL``), and the risk spec's artifact when one was enforced — so a
reviewer can tell from the registry alone which exact component versions and candles a
result came from. Params: each component's params by label. Metrics: the portfolio's.
Summary: per-component contributions, the rebalances and the risk counts and utilisation.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..registry.records import DataRange, PathLike, RunOutcome, RunStart
from .doc import PortfolioDoc


def portfolio_records(doc: PortfolioDoc, timing: Mapping[str, float], risk_sha256: str | None,
                      artifacts: Mapping[str, PathLike] | None = None
                      ) -> tuple[RunStart, RunOutcome]:
    """The run and its outcome, ready for ``Registry.record``."""
    inputs = {"artifact": doc.artifact_sha256}
    for c in doc.components:
        inputs[f"component:{c.label}"] = c.artifact_sha256
        inputs[f"data:{c.label}"] = c.data_fingerprint
    if risk_sha256 is not None:
        inputs["risk"] = risk_sha256
    sources = sorted({c.data_source for c in doc.components})
    run = RunStart(
        "portfolio", doc.portfolio, inputs, doc.engine_version,
        params={c.label: c.params for c in doc.components},
        settings={"capital": doc.capital, "currency": doc.currency,
                  "rebalance_seconds": doc.rebalance_seconds,
                  "rebalance_drift": doc.rebalance_drift, "risk": doc.risk.spec,
                  "weights": {c.label: c.weight for c in doc.components}},
        data=DataRange("; ".join(sources), None, None, doc.start, doc.end, doc.points))
    summary = {
        "components": {c.label: {"contribution_return": c.contribution_return,
                                 "contribution_drawdown": c.contribution_drawdown,
                                 "trades": c.metrics.trades}  # type: ignore[attr-defined]
                       for c in doc.components},
        "rebalances": doc.rebalances, "final_equity": doc.final_equity,
        "risk": doc.risk.model_dump(mode="json"),
    }
    metrics = doc.metrics.model_dump()  # type: ignore[attr-defined]
    return run, RunOutcome(metrics, dict(timing), metrics.get("trades"), doc.warnings,
                           artifacts or {}, summary)


__all__ = ["portfolio_records"]
