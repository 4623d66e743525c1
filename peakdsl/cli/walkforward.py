"""`peak walkforward`: optimise on rolling or anchored train windows, trade out of sample.

The analysis is ``peakdsl.research.walkforward``; this module checks the command line and
renders the result (a per-window table and the summary, or JSON with --json). Exit codes as
everywhere: 0 ok, 1 spec / param / data errors, 2 usage errors (windows that do not fit the
data among them), 130 interrupted (Ctrl-C: nothing is written or recorded). The windows run
in this process or on Dask (``--workers``, ``--scheduler``, as for ``peak sweep``) under a
progress bar on stderr. Light at import time (typer only).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ..metrics import format_metric, objective_choices
from .options import (
    CapitalOpt,
    DataOpt,
    FeeOpt,
    FromOpt,
    GridOpt,
    HtmlReportOpt,
    JsonOpt,
    RandomOpt,
    SchedulerOpt,
    SeedOpt,
    SpaceSetOpt,
    SpecArg,
    ToOpt,
    WorkersOpt,
    check_run_inputs,
    usage,
)
from .root import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Format,
    ProgressBar,
    emit,
    exit_code,
    guarded,
    write_json,
)

if TYPE_CHECKING:
    from rich.console import Console

    from ..research.walkforward import WalkForwardResult

Progress = Callable[[int, int], None]  # (windows done, windows planned)
TrainOpt = Annotated[str, typer.Option(
    "--train", help="train window: bars (500, 500bars) or a duration (180d, 12h, 4w)")]
TestOpt = Annotated[str, typer.Option(
    "--test", help="test window: bars or a duration, like --train")]
StepOpt = Annotated[str | None, typer.Option(
    "--step", help="how far each window moves [default: --test]")]
AnchoredOpt = Annotated[bool, typer.Option(
    "--anchored", help="every train window starts at the first bar (expanding)")]
ObjectiveOpt = Annotated[str, typer.Option(
    "--objective", help="what picks each train window's winner: " + objective_choices())]
RecordOpt = Annotated[bool, typer.Option("--record/--no-record",
                                         help="record the run in .peak/registry")]


@guarded
def walkforward_cmd(
    spec: SpecArg, train: TrainOpt, test: TestOpt, step: StepOpt = None,
    anchored: AnchoredOpt = False, objective: ObjectiveOpt = "sharpe", grid: GridOpt = False,
    random: RandomOpt = None, seed: SeedOpt = None, set_: SpaceSetOpt = None,
    data: DataOpt = None, start: FromOpt = None, end: ToOpt = None, fee_bps: FeeOpt = None,
    capital: CapitalOpt = 10_000.0, as_json: JsonOpt = False, report: HtmlReportOpt = None,
    record: RecordOpt = True, workers: WorkersOpt = None, scheduler: SchedulerOpt = None,
) -> None:
    """Walk forward: optimise on each train window, trade the winner on the next test window."""
    from .. import api
    from ..research.walkforward import WalkForwardInterrupted, walkforward, walkforward_doc

    if grid and random is not None:
        raise usage("--random", "--grid and --random exclude each other",
                    "--grid tries every combination; --random N --seed S draws N")
    check_run_inputs(spec, data, report, start, end)
    err = _stderr()
    try:
        with _progress(err, as_json) as progress:
            result = walkforward(
                spec, train=train, test=test, step=step, anchored=anchored,
                objective=objective, mode="random" if random is not None else "grid", n=random,
                seed=seed, sets=set_ or [], data=data, start=start, end=end, capital=capital,
                fee_bps=fee_bps, record=record, outputs=lambda done: write_report(done, report),
                workers=workers, scheduler=scheduler, progress=progress)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    except WalkForwardInterrupted as stop:
        _interrupted(err, f"{stop.done:,} of {stop.total:,} windows done; ")
    except KeyboardInterrupt:  # before the windows started (compiling, loading data)
        _interrupted(err, "")
    if result.candles.warnings:  # D008/D009/D019…: on stderr with their help, also with
        emit(result.candles.warnings, Format.text)  # --json (whose warnings list them)
    if as_json:
        write_json(walkforward_doc(result))
    else:
        print_walkforward(result, report)
    raise typer.Exit(EXIT_OK)


def _interrupted(err: Console, progress: str) -> NoReturn:
    """Ctrl-C: a walk-forward keeps nothing partial, so there is nothing to resume (exit 130)."""
    err.print(f"[yellow]interrupted:[/] {progress}nothing written or recorded")
    raise typer.Exit(EXIT_INTERRUPTED)


def write_report(result: WalkForwardResult, report: Path | None) -> dict[str, Path]:
    """Write the HTML report (before the run is recorded); the files written, by name."""
    if report is None:
        return {}
    from ..outputs import write_output
    from ..report.walkforward import render_walkforward_html

    write_output(report, render_walkforward_html(result).encode("utf-8"), "--report")
    return {"report": report}


# --------------------------------------------------------------------------- progress


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _progress(err: Console, as_json: bool) -> AbstractContextManager[Progress | None]:
    """Progress on stderr while the windows run: a bar on a terminal, one line per window
    elsewhere (a pipe, a CI log, where a bar shows only at the end), none with ``--json``."""
    if as_json:
        return nullcontext(None)
    if err.is_terminal:
        return ProgressBar(err, "walk-forward", noun="windows")

    def line(done: int, total: int) -> None:
        if done:
            err.print(f"walk-forward: {done:,} of {total:,} windows done")

    return nullcontext(line)



# --------------------------------------------------------------------------- text output

fmt = format_metric  # the catalogue's


def _when(ts: Any, daily: bool) -> str:
    return str(ts.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"))


def print_walkforward(result: WalkForwardResult, report: Path | None = None) -> None:
    """The per-window table and the summary, on stdout."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    r = result
    times = r.candles.frame.index
    period = f"{times[0]:%Y-%m-%d %H:%M} → {times[-1]:%Y-%m-%d %H:%M}" if len(times) else "—"
    kind = "anchored" if r.anchored else "rolling"
    console.print(f"[bold]{r.spec}[/]  {r.market} {r.timeframe}  {len(times):,} bars  {period}")
    data = r.candles.source
    if r.candles.synthetic:
        data = f"[bold yellow]{data}[/] (no usable cached data: see D018)"
    console.print(f"data source: {data}")
    console.print(f"walk-forward: {kind}, train {r.train}, test {r.test}, step {r.step}; "
                  f"objective {r.objective}; {r.mode} of {r.combinations:,} combination(s)"
                  + (f", seed {r.seed}" if r.seed is not None else ""))
    console.print(_window_table(r))
    _print_summary(console, r)
    if r.command:  # one line, never wrapped: it is meant to be pasted
        console.print(f"reproduce: {escape(r.command)}", soft_wrap=True)
    if report is not None:
        console.print(f"report: {report}")
    if r.run_id:
        console.print(f"run id: [bold]{r.run_id}[/]  (peak runs show {r.run_id}, "
                      f"peak runs rerun {r.run_id})", soft_wrap=True)


def _window_table(r: WalkForwardResult) -> Any:
    """One row per window: test start, chosen params, in-sample objective, OOS results."""
    from rich.table import Table

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
    return table


def _print_summary(console: Console, r: WalkForwardResult) -> None:
    """Windows, stitched out-of-sample results, efficiency, stability, provenance."""
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
    from ..backtest import data_warnings

    shown = set(data_warnings(r.candles))  # already on stderr, with their help
    for warning in (w for w in r.warnings if w not in shown):
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"{len(r.windows):,} windows in {r.timing.get('total', 0.0):.1f}s; "
                  f"{r.execution}")
    console.print(f"artifact sha256 {r.artifact_sha256[:16]}…  data "
                  f"{r.candles.fingerprint[:16]}…  engine {r.engine_version}")
