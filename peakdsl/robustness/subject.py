"""What a study is about: a strategy (as a portfolio of one) or a portfolio, resolved."""

from __future__ import annotations

from pathlib import Path

from ..portfolio.plan import PortfolioPlan


def subject_plan(spec: str, *, root: Path | None = None, data: Path | None = None,
                 start: str | None = None, end: str | None = None,
                 capital: float | None = None, risk: str | None = None
                 ) -> tuple[PortfolioPlan, str | None]:
    """The plan of ``spec`` and the sha256 of the risk spec it enforces (None: none).
    ``SpecError`` for spec and data problems, ``UsageError`` for another kind of spec."""
    from ..api import compile_spec
    from ..compile.artifacts import dump_model, sha256
    from ..compile.models import PortfolioArtifact, StrategyArtifact
    from ..lang.diagnostics import diag
    from ..lang.project import UsageError, find_root
    from ..portfolio.plan import portfolio_plan
    from ..resolve import resolve, risk_artifact

    project = find_root(root or Path(spec).resolve().parent)
    artifact = compile_spec(spec, project)
    if isinstance(artifact, PortfolioArtifact):
        if data is not None:
            raise UsageError(diag("U005", "--data does not apply to a portfolio", "--data",
                                  help="portfolios read each component's market from the "
                                  "cache (peak data import / fetch)"))
        return portfolio_plan(spec, root=project, start=start, end=end, capital=capital,
                              risk=risk)
    if not isinstance(artifact, StrategyArtifact):
        raise UsageError(diag("U003", f"{spec} is a {artifact.kind}; `peak robustness` "
                              "studies strategies and portfolios", spec))
    run = resolve("robustness", spec, root=project, data=data, start=start, end=end,
                  capital=capital or 10_000.0, fee_bps=None, risk=risk)
    risk_sha = None
    if risk is not None:
        market = run.config.market
        risk_sha = sha256(dump_model(risk_artifact(risk, project, market.quote,
                                                   market.symbol)))
    return PortfolioPlan.of_strategy(run), risk_sha
