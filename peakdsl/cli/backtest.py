"""`peak backtest`: one strategy on its market's data; a metrics table, or JSON with --json.

The run itself is ``peakdsl.api.backtest``; this module checks the command line, hands the API
the writer of the outputs (called before the run is recorded, so a run whose trades file
cannot be written is not recorded) and renders the result. Light at import time: pandas, numpy
and rich are imported when the command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..metrics import BACKTEST_METRICS, CATALOGUE, format_metric
from .options import (
    DataOpt,
    FeeOpt,
    FromOpt,
    JsonOpt,
    ReportOpt,
    SetOpt,
    SpecArg,
    SpecCapitalOpt,
    ToOpt,
    TradesOpt,
    check_outputs,
    check_period,
)
from .root import EXIT_OK, Format, emit, exit_code, guarded, print_provenance

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..backtest import BacktestResult
    from ..portfolio.doc import PortfolioDoc
    from ..portfolio.run import PortfolioResult

RecordOpt = Annotated[bool, typer.Option("--record/--no-record",
                                         help="record the run in .peak/registry")]
RiskOpt = Annotated[str | None, typer.Option(
    "--risk", metavar="NAME", help="enforce a risk spec's limits: its name "
    "(specs/risk/NAME.peak) or its file")]


@guarded
def backtest_cmd(spec: SpecArg, data: DataOpt = None, start: FromOpt = None, end: ToOpt = None,
                 set_: SetOpt = None, fee_bps: FeeOpt = None, capital: SpecCapitalOpt = None,
                 as_json: JsonOpt = False, trades: TradesOpt = None, report: ReportOpt = None,
                 record: RecordOpt = True, risk: RiskOpt = None) -> None:
    """Backtest a strategy on its market's data (cache, --data, or the synthetic demo), or a
    portfolio: its components on one account (docs/portfolio.md)."""
    from .. import api

    check_outputs([("--trades", trades), ("--report", report)], spec, data)
    check_period(start, end)
    if _declares(spec) == "portfolio":
        _portfolio(spec, data, set_, start, end, fee_bps, capital, as_json, trades, report,
                   record, risk)
    try:
        run = api.backtest(spec, data=data, start=start, end=end, overrides=set_ or (),
                           fee_bps=fee_bps, capital=capital or 10_000.0, record=record,
                           outputs=partial(write_outputs, trades=trades, report=report),
                           risk=risk)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    if run.result.candles.warnings:  # D008/D009/D019…: on stderr with their help, also with
        emit(run.result.candles.warnings, Format.text)  # --json (whose warnings list them)
    if as_json:
        from ..backtest import backtest_doc

        sys.stdout.write(backtest_doc(run.result, run.run_id).model_dump_json(indent=2) + "\n")
    else:
        print_summary(run.result, run.run_id, trades, report)
    raise typer.Exit(EXIT_OK)


def _declares(spec: str) -> str | None:
    """The kind the spec file declares. None when it is not a regular file of at most the
    parser's size limit, or does not parse: the strategy path then reports why (a device
    such as ``/dev/zero`` is never read)."""
    from ..lang.parser import MAX_FILE_BYTES, parse_bytes

    path = Path(spec)
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        parsed = parse_bytes(spec, path.read_bytes())
    except OSError:
        return None
    return parsed.module.decl.kind if parsed.module is not None else None


def _portfolio(spec: str, data: Path | None, set_: list[str] | None, start: str | None,
               end: str | None, fee_bps: float | None, capital: float | None, as_json: bool,
               trades: Path | None, report: Path | None, record: bool, risk: str | None) -> None:
    """`peak backtest PORTFOLIO`: run, write the outputs, print or emit JSON; always exits."""
    from .. import api
    from ..lang.diagnostics import diag
    from ..lang.project import UsageError

    for option, given in (("--data", data), ("--set", set_)):
        if given:
            raise UsageError(diag(
                "U005", f"{option} does not apply to a portfolio", option,
                help="portfolios read each component's market from the cache (peak data "
                "import / fetch) and take per-component params from `with { … }`"))
    try:
        run = api.portfolio_backtest(spec, start=start, end=end, fee_bps=fee_bps,
                                     capital=capital, risk=risk, record=record,
                                     outputs=partial(write_portfolio_outputs, trades=trades,
                                                     report=report))
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    if as_json:
        sys.stdout.write(run.doc.model_dump_json(indent=2) + "\n")
    else:
        print_portfolio(run.doc, trades, report)
    raise typer.Exit(EXIT_OK)


def write_portfolio_outputs(result: PortfolioResult, doc: PortfolioDoc, trades: Path | None,
                            report: Path | None) -> dict[str, Path]:
    """The trades CSV (every component's, labelled) and the report, before the run is
    recorded; returns what was written."""
    from ..outputs import write_output

    written = {}
    if trades is not None:
        from ..portfolio.trades import trades_frame

        frame = trades_frame(result)
        write_output(trades, frame.to_csv(index=False, float_format="%.10g").encode(),
                     "--trades")
        written["trades"] = trades
    if report is not None:
        from ..report.portfolio import write_portfolio_report

        write_portfolio_report(result, doc, report)
        written["report"] = report
    return written


def write_outputs(result: BacktestResult, trades: Path | None, report: Path | None) -> None:
    """Write the trades CSV and the report; called by the API before the run is recorded."""
    from ..outputs import write_output

    if trades is not None:
        frame = result.trades_frame()
        write_output(trades, frame.to_csv(index=False, float_format="%.10g").encode(),
                     "--trades")
    if report is not None:
        from ..report import write_report

        write_report(result, report, graph=result.graph, reproduce=result.command)


def print_summary(result: BacktestResult, run_id: str | None, trades: Path | None,
                  report: Path | None) -> None:
    """The metrics table and the provenance a reviewer needs (spec, data, hashes, run id)."""
    from rich.console import Console

    console = Console(highlight=False)
    _print_header(console, result)
    console.print(_metrics_table(result.metrics))
    _print_footer(console, result, run_id, trades, report)


def _print_header(console: Console, result: BacktestResult) -> None:
    """Spec, market, bars and period; where the data came from; the params."""
    times = result.times
    period = f"{times[0]:%Y-%m-%d %H:%M} → {times[-1]:%Y-%m-%d %H:%M}" if len(times) else "—"
    data = result.candles.source
    if result.candles.synthetic:
        data = f"[bold yellow]{data}[/] (no usable cached data: see D018)"
    console.print(f"[bold]{result.spec}[/]  {result.market} {result.timeframe}  "
                  f"{len(times):,} bars  {period}")
    console.print(f"data source: {data}")
    params = ", ".join(f"{k}={v:g}" for k, v in sorted(result.params.items())) or "—"
    console.print(f"params: {params}")


def _metrics_table(metrics: Mapping[str, Any], title: str | None = None) -> Table:
    """One row per catalogue backtest metric, labelled and formatted by the catalogue."""
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in BACKTEST_METRICS:
        table.add_row(CATALOGUE[name].label, format_metric(name, metrics.get(name)))
    return table


def _print_footer(console: Console, result: BacktestResult, run_id: str | None,
                  trades: Path | None, report: Path | None) -> None:
    """Final equity, warnings, hashes, the run id and the files written."""
    equity = result.sim.equity
    final = float(equity[-1]) if len(equity) else result.settings.capital
    still_open = len(result.sim.open_trades["entry_bar"])
    console.print(f"final equity: {final:,.2f}"
                  + (" (a position left open, valued at the last close)" if still_open else ""))
    from ..backtest import data_warnings

    shown = set(data_warnings(result.candles))  # already on stderr, with their help
    for warning in (w for w in result.warnings if w not in shown):
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"artifact sha256 {result.artifact_sha256[:16]}…  data "
                  f"{result.candles.fingerprint[:16]}…  engine {result.engine_version}")
    if run_id:
        console.print(f"run id: [bold]{run_id}[/]  (peak runs show {run_id})")
    for label, path in (("trades", trades), ("report", report)):
        if path is not None:
            console.print(f"{label}: {path}")


# ---------------------------------------------------------------- the portfolio summary

COMPONENT_METRICS = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate",
                     "exposure")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def _resampled(source: str) -> str:
    """`` (from 1h)`` for candles resampled from a finer timeframe (peakdsl.data.resample)."""
    base = source.rpartition(", resampled from ")[2] if ", resampled from " in source else ""
    return f" (from {base})" if base else ""


def _components_table(doc: PortfolioDoc) -> Table:
    """One column per component (labels wrap; a row per figure keeps it narrow)."""
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", title="components")
    table.add_column("")
    for c in doc.components:
        table.add_column(c.label, justify="right", overflow="fold")
    rows = [("market", [f"{c.market} {c.timeframe}{_resampled(c.data_source)}"
                        for c in doc.components]),
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
    console.print(_metrics_table(doc.metrics.model_dump(), "portfolio"))  # type: ignore[attr-defined]
    console.print(_components_table(doc))
    _risk_lines(console, doc)
    console.print(f"final equity: {doc.final_equity:,.2f} {doc.currency}")
    for warning in doc.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    print_provenance(console, doc.artifact_sha256, doc.engine_version, doc.run_id,
                     (("trades", trades), ("report", report)))
