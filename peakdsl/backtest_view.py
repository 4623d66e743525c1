"""Human output of `peak backtest`: a rich metrics table and the provenance a reviewer needs."""

from __future__ import annotations

from pathlib import Path

from .backtest import BacktestResult

PERCENT = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "expectancy",
           "avg_trade", "best_trade", "worst_trade", "exposure"}
LABELS = {
    "total_return": "Total return", "cagr": "CAGR", "volatility": "Volatility (ann.)",
    "sharpe": "Sharpe", "sortino": "Sortino", "calmar": "Calmar",
    "max_drawdown": "Max drawdown", "max_drawdown_bars": "Max drawdown duration (bars)",
    "profit_factor": "Profit factor", "win_rate": "Win rate", "expectancy": "Expectancy",
    "trades": "Trades", "avg_trade": "Average trade", "best_trade": "Best trade",
    "worst_trade": "Worst trade", "exposure": "Exposure", "fees_paid": "Fees paid",
    "ambiguous_bars": "Ambiguous bars (stop and target in one bar)",
    "orders_reduced": "Orders reduced to fit the account",
}


def format_metric(name: str, value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    text = f"{value * 100:,.2f}%" if name in PERCENT else f"{value:,.2f}"
    return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) \
        else text  # no "-0.00%"


def print_summary(result: BacktestResult, run_id: str | None, trades: Path | None,
                  report: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    times = result.times
    period = f"{times[0]:%Y-%m-%d %H:%M} → {times[-1]:%Y-%m-%d %H:%M}" if len(times) else "—"
    data = result.candles.source
    if result.candles.synthetic:
        data = f"[bold yellow]{data}[/] (no cached data for this market)"
    console.print(f"[bold]{result.spec}[/]  {result.market} {result.timeframe}  "
                  f"{len(times):,} bars  {period}")
    console.print(f"data source: {data}")
    params = ", ".join(f"{k}={v:g}" for k, v in sorted(result.params.items())) or "—"
    console.print(f"params: {params}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, label in LABELS.items():
        table.add_row(label, format_metric(name, result.metrics.get(name)))
    console.print(table)
    equity = result.sim.equity
    final = float(equity[-1]) if len(equity) else result.settings.capital
    still_open = len(result.sim.open_trades["entry_bar"])
    console.print(f"final equity: {final:,.2f}"
                  + (" (a position left open, valued at the last close)" if still_open else ""))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"artifact sha256 {result.artifact_sha256[:16]}…  data "
                  f"{result.candles.fingerprint[:16]}…  engine {result.engine_version}")
    if run_id:
        console.print(f"run id: [bold]{run_id}[/]  (peak runs show {run_id})")
    for label, path in (("trades", trades), ("report", report)):
        if path is not None:
            console.print(f"{label}: {path}")
