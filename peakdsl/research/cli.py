"""`peak sweep`: run a strategy over a grid (or a seeded random draw) of its params.

Mounted on the main app by ``peakdsl.cli`` (``app.command("sweep")(sweep_cmd)``). Import-light
(typer only at import time) and it does not import ``peakdsl.cli`` at module level: under
``python -m peakdsl.cli`` that would load the CLI a second time while this module is
half-initialised. Results go to stdout; the plan line, the progress bar and notes to stderr.
Exit codes: 0 ok, 1 spec / ``--set`` / data errors, 2 usage errors, 130 interrupted (Ctrl-C:
the finished blocks are kept and the same command resumes).
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
    from rich.console import Console

    from .sweep import SweepPlan, SweepResult

EXIT_OK, EXIT_INTERRUPTED = 0, 130
OBJECTIVE_NAMES = ("sharpe", "sortino", "calmar", "total_return", "profit_factor")  # types.py
DEFAULT_MAX_MEMORY = "2GiB"


def sweep_cmd(
    spec: Annotated[str, typer.Argument(help="a strategy spec file")],
    grid: GridOpt = False,
    random: RandomOpt = None,
    seed: SeedOpt = None,
    set_: SpaceSetOpt = None,
    objective: Annotated[str, typer.Option(
        "--objective", help="what ranks the combinations: "
        + ", ".join(OBJECTIVE_NAMES))] = "sharpe",
    top: Annotated[int, typer.Option("--top", help="rows of the ranked table", metavar="K")
                   ] = 10,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="start a local Dask cluster of N worker processes", metavar="N")
    ] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="run on an existing Dask cluster (tcp://HOST:PORT)",
        metavar="ADDRESS")] = None,
    max_memory: Annotated[str, typer.Option(
        "--max-memory", help="memory bound of one block of combinations (512MB, 2GB, 1.5GiB)")
    ] = DEFAULT_MAX_MEMORY,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON document")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="write an HTML report with a heatmap of the objective")] = None,
    heatmap: Annotated[str | None, typer.Option(
        "--heatmap", help="the two params of the report's heatmap: x,y [default: the first "
        "two that vary]", metavar="X,Y")] = None,
    data: DataOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    fee_bps: FeeOpt = None,
    capital: CapitalOpt = 10_000.0,
    record: Annotated[bool, typer.Option(
        "--record/--no-record", help="record every combination in .peak/registry")] = True,
) -> None:
    """Sweep a strategy's params: rank the combinations, resume, run on Dask."""
    from ..cli import guarded

    guarded(_sweep)(
        spec=spec, grid=grid, random=random, seed=seed, sets=set_ or [], objective=objective,
        top=top, workers=workers, scheduler=scheduler, max_memory=max_memory,
        as_json=as_json, report=report, heatmap=heatmap, data=data, start=start, end=end,
        fee_bps=fee_bps, capital=capital, record=record)


def _usage(message: str, where: str, help: str = "") -> Exception:
    from ..lang.diagnostics import diag
    from ..lang.project import UsageError

    return UsageError(diag("U005", message, where, help=help))


def _heatmap_axes(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise _usage(f"--heatmap {text}: give two different params as x,y", "--heatmap",
                     help="e.g. --heatmap fast,slow")
    return parts[0], parts[1]


def _sweep(*, spec: str, grid: bool, random: int | None, seed: int | None, sets: list[str],
           objective: str, top: int, workers: int | None, scheduler: str | None,
           max_memory: str, as_json: bool, report: Path | None, heatmap: str | None,
           data: Path | None, start: str | None, end: str | None, fee_bps: float | None,
           capital: float, record: bool) -> None:
    from .. import api
    from ..cli import Format, emit, exit_code
    from ..cli_options import check_run_inputs
    from .store import parse_size
    from .types import RunConfig

    if grid and random is not None:
        raise _usage("--grid and --random exclude each other", "--random",
                     help="--grid runs every combination; --random N --seed S draws N")
    if report is not None and report.suffix.lower() not in (".html", ".htm"):
        raise _usage(f"--report {report}: use a .html file", "--report")
    check_run_inputs(spec, data, report, start, end)
    if top < 0:
        raise _usage(f"--top {top}: give a non-negative number of rows", "--top")
    try:
        memory = parse_size(max_memory)
    except ValueError as exc:
        raise _usage(f"--max-memory {max_memory}: {exc}", "--max-memory",
                     help="e.g. --max-memory 512MB, 2GB or 1.5GiB") from None
    axes = _heatmap_axes(heatmap)
    from .sweep import SweepInterrupted, execute_sweep, plan_sweep

    fmt = Format.json if as_json else Format.text
    try:
        plan = plan_sweep(spec, data=data, start=start, end=end, sets=sets,
                          mode="random" if random is not None else "grid", n=random, seed=seed,
                          objective=objective, run=RunConfig(capital=capital, fee_bps=fee_bps),
                          workers=workers, scheduler=scheduler, max_memory=memory,
                          record=record)
    except api.SpecError as exc:
        emit(exc.diagnostics, fmt)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    if axes is not None:
        for name in axes:
            if name not in plan.space.names:
                raise _usage(f"--heatmap: `{name}` is not a param of {plan.spec}",
                             "--heatmap", help="params: " + ", ".join(plan.space.names))
    if plan.diagnostics or plan.candles.warnings:  # --data: the import's D008/D009 too
        emit((*plan.diagnostics, *plan.candles.warnings), Format.text)
    err = _console(stderr=True)
    _print_plan(err, plan)
    try:
        with ProgressBar(err, plan) as progress:
            result = execute_sweep(plan, progress)
    except SweepInterrupted as stop:
        kept = f"kept {stop.done:,} of {stop.total:,} combinations in {_shown(stop.store)}/"
        sweep = f" (sweep {stop.sweep_id})" if stop.sweep_id else ""
        err.print(f"[yellow]interrupted:[/] {kept}{sweep}; run the same command again to "
                  "resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted:[/] finished blocks are kept in "
                  f"{_shown(plan.store.path)}/; run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if report is not None:
        from ..outputs import write_output
        from ..report.sweep import render_sweep_html

        write_output(report, render_sweep_html(result, axes, top=max(top, 1)).encode("utf-8"),
                     "--report")
    if as_json:
        doc = result.to_dict(top)
        doc["report"] = str(report) if report is not None else None
        sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    else:
        print_sweep(result, top, report)
    raise typer.Exit(EXIT_OK)


# --------------------------------------------------------------------------- text output


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _shown(path: Path) -> str:
    from ..lang.project import display_path

    return display_path(path)


def _print_plan(err: Console, plan: SweepPlan) -> None:
    from .store import format_bytes

    space = plan.space
    if space.mode == "random":
        what = f" drawn with seed {space.seed} from a grid of {space.candidates:,}"
    else:
        what = (f" ({space.candidates:,} before require)" if space.candidates != len(space)
                else "")
    err.print(f"{len(space):,} combinations{what} × {plan.bars:,} bars; blocks of "
              f"{plan.block_size} (max memory {format_bytes(plan.max_memory)}); "
              f"{plan.execution}")
    if plan.resumed:
        err.print(f"resuming {_shown(plan.store.path)}/: {plan.resumed:,} of {len(space):,} "
                  f"combinations already done, {plan.to_compute:,} to compute")


class ProgressBar:
    """A rich progress bar (done/total, combinations per second, ETA) on stderr."""

    def __init__(self, console: Console, plan: SweepPlan) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task: Task) -> Text:
                speed = task.finished_speed or task.speed
                return Text("— combos/s" if speed is None else f"{speed:,.1f} combos/s",
                            style="progress.data.speed")

        self.progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                 RateColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=console, transient=False)
        self.task = self.progress.add_task("sweep", total=len(plan.space),
                                           completed=plan.resumed)

    def __enter__(self) -> Any:
        self.progress.start()

        def update(done: int, total: int) -> None:
            self.progress.update(self.task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _params_text(result: SweepResult, params: dict[str, float]) -> list[str]:
    return [result.show(name, value) for name, value in params.items()]


def print_sweep(result: SweepResult, top: int, report: Path | None = None) -> None:
    """The ranked table, the best `--set` line, honesty and provenance, on stdout."""
    from rich.table import Table

    from ..backtest_view import format_metric
    from .sweep import TABLE_METRICS

    console = _console()
    r = result
    console.print(f"[bold]{r.spec}[/]  {r.market} {r.timeframe}  {r.data_bars:,} bars  "
                  f"{len(r.space):,} combinations ({r.space.mode}"
                  + (f", seed {r.space.seed}" if r.space.seed is not None else "")
                  + f"), objective {r.objective}")
    data = r.data_source
    if r.data_synthetic:
        data = f"[bold yellow]{data}[/] (no cached data for this market)"
    console.print(f"data source: {data}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("#", justify="right")
    for name in r.space.names:
        table.add_column(name, justify="right")
    metric_cols = [r.objective, *(m for m in TABLE_METRICS if m != r.objective)]
    for name in metric_cols:
        table.add_column(name + (" ▼" if name == r.objective else ""), justify="right")
    for row in r.top(top):
        metrics = row["metrics"]
        table.add_row(str(row["rank"]), *_params_text(r, row["params"]),
                      *(format_metric(m, _float(metrics[m])) for m in metric_cols))
    if top > 0:
        console.print(table)
    if r.best_row is None:
        console.print(f"[yellow]no combination has a defined {r.objective}[/]")
    else:
        console.print(f"best: peak backtest {r.spec_path} {r.best_set}")
    dsr = "—" if r.deflated_sharpe is None else f"{r.deflated_sharpe:.3f}"
    console.print(f"deflated Sharpe ratio of the best: {dsr}  ({r.trials_total:,} trials of "
                  f"{r.spec} counted)")
    for warning in r.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    done = f"{r.computed:,} computed" + (f", {r.resumed:,} resumed" if r.resumed else "")
    per = r.timing.get("per_combination", 0.0)
    console.print(f"{done} in {r.timing.get('total', 0.0):.1f}s"
                  + (f" ({per * 1000:.2f} ms per combination)" if r.computed else "")
                  + f"; {r.execution}")
    console.print(f"artifact sha256 {r.artifact_sha256[:16]}…  data "
                  f"{r.data_fingerprint[:16]}…  engine {r.engine_version}")
    if r.sweep_id:
        console.print(f"sweep id: [bold]{r.sweep_id}[/]")
    console.print(f"results: {_shown(r.parquet)}")
    if report is not None:
        console.print(f"report: {report}")


def _float(value: Any) -> float | int | None:
    if value is None:
        return None
    if value == "inf":
        return float("inf")
    if value == "-inf":
        return float("-inf")
    return value if isinstance(value, int | float) else None
