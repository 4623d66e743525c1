"""The text summary of `peak backtest PORTFOLIO`: the portfolio's metrics, its components
side by side, what the risk spec cut and how close the run came to each limit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..metrics import BACKTEST_METRICS, CATALOGUE, format_metric

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..portfolio.doc import PortfolioDoc

COMPONENT_METRICS = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate",
                     "exposure")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def _metrics_table(doc: PortfolioDoc) -> Table:
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", title="portfolio")
    table.add_column("metric")
    table.add_column("value", justify="right")
    metrics = doc.metrics.model_dump()  # type: ignore[attr-defined]
    for name in BACKTEST_METRICS:
        table.add_row(CATALOGUE[name].label, format_metric(name, metrics.get(name)))
    return table


def _components_table(doc: PortfolioDoc) -> Table:
    """One column per component (labels wrap; a row per figure keeps it narrow)."""
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", title="components")
    table.add_column("")
    for c in doc.components:
        table.add_column(c.label, justify="right", overflow="fold")
    rows = [("market", [f"{c.market} {c.timeframe}" for c in doc.components]),
            ("weight", [_pct(c.weight) for c in doc.components]),
            ("contribution to return", [_pct(c.contribution_return) for c in doc.components]),
            ("contribution to drawdown",
             [_pct(c.contribution_drawdown) for c in doc.components])]
    for name in COMPONENT_METRICS:
        rows.append((CATALOGUE[name].short, [
            format_metric(name, c.metrics.model_dump().get(name))  # type: ignore[attr-defined]
            for c in doc.components]))
    for label, cells in rows:
        table.add_row(label, *cells)
    return table


def _risk_lines(console: Console, doc: PortfolioDoc) -> None:
    risk = doc.risk
    if risk.spec is None:
        console.print("risk: no risk spec enforced")
        return
    used = ", ".join(f"{k} {_pct(v)}" for k, v in risk.utilisation.items() if v is not None)
    console.print(f"risk spec [bold]{risk.spec}[/]: most of each limit used: {used}")
    cuts = [f"{n} reduced by {k}" for k, n in risk.reduced.items()] + [
        f"{n} denied by {k}" for k, n in risk.denied.items()]
    console.print("  entries cut: " + (", ".join(cuts) if cuts else "none"))


def print_portfolio(doc: PortfolioDoc, trades: Path | None, report: Path | None) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    console.print(f"[bold]{doc.portfolio}[/]  {len(doc.components)} components  "
                  f"{doc.start[:16]} → {doc.end[:16]}  capital {doc.capital:,.2f} "
                  f"{doc.currency}")
    rebalance = [f"every {doc.rebalance_seconds // 86_400}d"
                 if doc.rebalance_seconds and doc.rebalance_seconds % 86_400 == 0 else
                 f"every {doc.rebalance_seconds}s" if doc.rebalance_seconds else "",
                 f"on {_pct(doc.rebalance_drift)} drift" if doc.rebalance_drift else ""]
    shown = " and ".join(r for r in rebalance if r) or "never"
    console.print(f"rebalancing: {shown} ({doc.rebalances} times)")
    console.print(_metrics_table(doc))
    console.print(_components_table(doc))
    _risk_lines(console, doc)
    console.print(f"final equity: {doc.final_equity:,.2f} {doc.currency}")
    for warning in doc.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"artifact sha256 {doc.artifact_sha256[:16]}…  engine {doc.engine_version}")
    if doc.run_id:
        console.print(f"run id: [bold]{doc.run_id}[/]  (peak runs show {doc.run_id})")
    for label, path in (("trades", trades), ("report", report)):
        if path is not None:
            console.print(f"{label}: {path}")
