"""`peak walkforward`: optimise on rolling or anchored train windows, trade out of sample.

Mounted on the main app by ``peakdsl.cli`` (``app.command("walkforward")(walkforward_cmd)``).
Import-light (typer only at import time) and it does not import ``peakdsl.cli`` at module
level: under ``python -m peakdsl.cli`` that would load the CLI a second time while this module
is half-initialised. The helpers of the main CLI (``guarded``, ``emit``) are imported when the
command runs. Exit codes as everywhere: 0 ok, 1 spec / param / data errors, 2 usage errors
(windows that do not fit the data among them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..cli_options import (
    CapitalOpt,
    DataOpt,
    FeeOpt,
    FromOpt,
    GridOpt,
    RandomOpt,
    SeedOpt,
    SpaceSetOpt,
    ToOpt,
)

if TYPE_CHECKING:
    from .walkforward import WalkForwardResult

EXIT_OK = 0  # as in peakdsl.cli
OBJECTIVE_NAMES = ("sharpe", "sortino", "calmar", "total_return", "profit_factor")  # types.py


def walkforward_cmd(
    spec: Annotated[str, typer.Argument(help="a strategy spec file")],
    train: Annotated[str, typer.Option(
        "--train", help="train window: bars (500, 500bars) or a duration (180d, 12h, 4w)")],
    test: Annotated[str, typer.Option(
        "--test", help="test window: bars or a duration, like --train")],
    step: Annotated[str | None, typer.Option(
        "--step", help="how far each window moves [default: --test]")] = None,
    anchored: Annotated[bool, typer.Option(
        "--anchored", help="every train window starts at the first bar (expanding)")] = False,
    objective: Annotated[str, typer.Option(
        "--objective", help="what the train optimisation maximises: "
        + ", ".join(OBJECTIVE_NAMES))] = "sharpe",
    grid: GridOpt = False,
    random: RandomOpt = None,
    seed: SeedOpt = None,
    set_: SpaceSetOpt = None,
    data: DataOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    fee_bps: FeeOpt = None,
    capital: CapitalOpt = 10_000.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON document")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="write an HTML report")
                      ] = None,
) -> None:
    """Walk forward: optimise on each train window, trade the winner on the next test window."""
    from ..cli import guarded

    guarded(_walkforward)(
        spec=spec, train=train, test=test, step=step, anchored=anchored, objective=objective,
        grid=grid, random=random, seed=seed, sets=set_ or [], data=data, start=start, end=end,
        fee_bps=fee_bps, capital=capital, as_json=as_json, report=report)


def _usage(message: str, where: str, help: str = "") -> Exception:
    from ..lang.diagnostics import diag
    from ..lang.project import UsageError

    return UsageError(diag("U005", message, where, help=help))


def _walkforward(*, spec: str, train: str, test: str, step: str | None, anchored: bool,
                 objective: str, grid: bool, random: int | None, seed: int | None,
                 sets: list[str], data: Path | None, start: str | None, end: str | None,
                 fee_bps: float | None, capital: float, as_json: bool,
                 report: Path | None) -> None:
    from .. import api
    from ..cli import Format, emit, exit_code
    from ..cli_options import check_run_inputs

    if grid and random is not None:
        raise _usage("--grid and --random exclude each other", "--random",
                     help="--grid tries every combination; --random N --seed S draws N")
    if report is not None and report.suffix.lower() not in (".html", ".htm"):
        raise _usage(f"--report {report}: use a .html file", "--report")
    check_run_inputs(spec, data, report, start, end)
    from .walkforward import walkforward, walkforward_doc

    try:
        result = walkforward(
            spec, train=train, test=test, step=step, anchored=anchored, objective=objective,
            mode="random" if random is not None else "grid", n=random, seed=seed, sets=sets,
            data=data, start=start, end=end, capital=capital, fee_bps=fee_bps)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    if result.candles.warnings:  # --data: the import's D008/D009 (stderr, also with --json)
        emit(result.candles.warnings, Format.text)
    if report is not None:
        from ..outputs import write_output
        from ..report.walkforward import render_walkforward_html

        write_output(report, render_walkforward_html(result).encode("utf-8"), "--report")
    if as_json:
        sys.stdout.write(json.dumps(walkforward_doc(result), indent=2, allow_nan=False) + "\n")
    else:
        print_walkforward(result, report)
    raise typer.Exit(EXIT_OK)


# --------------------------------------------------------------------------- text output

PERCENT = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "expectancy",
           "avg_trade", "best_trade", "worst_trade", "exposure"}


def fmt(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    text = f"{value * 100:,.2f}%" if name in PERCENT else f"{value:,.2f}"
    return "0.00" + ("%" if name in PERCENT else "") if text in ("-0.00%", "-0.00") else text


def _when(ts: Any, daily: bool) -> str:
    return str(ts.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"))


def print_walkforward(result: WalkForwardResult, report: Path | None = None) -> None:
    """The per-window table and the summary, on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    r = result
    times = r.candles.frame.index
    period = f"{times[0]:%Y-%m-%d %H:%M} → {times[-1]:%Y-%m-%d %H:%M}" if len(times) else "—"
    kind = "anchored" if r.anchored else "rolling"
    console.print(f"[bold]{r.spec}[/]  {r.market} {r.timeframe}  {len(times):,} bars  {period}")
    data = r.candles.source
    if r.candles.synthetic:
        data = f"[bold yellow]{data}[/] (no cached data for this market)"
    console.print(f"data source: {data}")
    console.print(f"walk-forward: {kind}, train {r.train}, test {r.test}, step {r.step}; "
                  f"objective {r.objective}; {r.mode} of {r.combinations:,} combination(s)"
                  + (f", seed {r.seed}" if r.seed is not None else ""))
    daily = r.candles.bar_seconds >= 86_400
    names = ", ".join(r.param_names)
    table = Table(show_header=True, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("test from")
    table.add_column(f"params ({names})" if names else "params")
    for title in (f"IS {r.objective}", "OOS return", "OOS Sharpe", "trades"):
        table.add_column(title, justify="right")
    for w in r.windows:
        win = w.window
        params = ", ".join(f"{v:g}" for v in w.chosen.values()) or "defaults"
        table.add_row(
            str(win.number) + ("*" if win.partial else ""), _when(win.test_first, daily), params,
            fmt(r.objective, w.objective), fmt("total_return", w.oos_metrics.get("total_return")),
            fmt("sharpe", w.oos_metrics.get("sharpe")), fmt("trades", w.oos_metrics.get("trades")))
    console.print(table)
    first, last = r.windows[0].window, r.windows[-1].window
    console.print(f"train windows of {first.train_bars:,}" + (
        f"…{last.train_bars:,}" if last.train_bars != first.train_bars else "")
        + " bars, each ending where its test window starts"
        + ("; * partial last test window" if last.partial else ""))
    m = r.oos_metrics
    console.print(f"out of sample ({len(r.oos_bars):,} bars, stitched): return "
                  f"{fmt('total_return', m.get('total_return'))}, Sharpe "
                  f"{fmt('sharpe', m.get('sharpe'))}, max drawdown "
                  f"{fmt('max_drawdown', m.get('max_drawdown'))}, trades "
                  f"{fmt('trades', m.get('trades'))}, CAGR {fmt('cagr', m.get('cagr'))}")
    wfe = "—" if r.wf_efficiency is None else f"{r.wf_efficiency:.2f}"
    console.print(f"walk-forward efficiency: {wfe}  (OOS annualised "
                  f"{fmt('cagr', r.oos_annual_return)} / in-sample annualised "
                  f"{fmt('cagr', r.is_annual_return)})")
    for name, s in r.stability.items():
        cv = "—" if s.cv is None else f"{s.cv:.2f}"
        console.print(f"stability of {name}: CV {cv}, {s.mode:g} chosen in "
                      f"{s.mode_share:.0%} of windows, {s.changes} change(s)")
    for note in r.notes:
        console.print(f"note: {note}")
    for warning in r.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"artifact sha256 {r.artifact_sha256[:16]}…  data "
                  f"{r.candles.fingerprint[:16]}…  engine {r.engine_version}")
    if report is not None:
        console.print(f"report: {report}")
