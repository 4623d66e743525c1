"""`peak sweep`: run a strategy over a grid (or a seeded random draw) of its params.

The sweep itself is ``peakdsl.research.sweep`` (``plan_sweep``, then ``execute_sweep``); this
module checks the command line, shows the plan and a progress bar, and renders the result.
Results go to stdout; the plan line, the progress bar and notes to stderr. Exit codes: 0 ok,
1 spec / ``--set`` / data errors, 2 usage errors, 130 interrupted (Ctrl-C: the finished blocks
are kept and the same command resumes). Light at import time (typer only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..metrics import format_metric, objective_choices, objective_goal
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
    at_least,
    check_run_inputs,
    heatmap,
    max_memory,
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

    from ..research.sweep import SweepPlan, SweepResult

DEFAULT_MAX_MEMORY = "2GiB"

ObjectiveOpt = Annotated[str, typer.Option(
    "--objective", help="what ranks the combinations: " + objective_choices())]
TopOpt = Annotated[int, typer.Option(
    "--top", help="rows of the ranked table", metavar="K",
    callback=at_least("--top", 0, "a non-negative number of rows"))]
MaxMemoryOpt = Annotated[str, typer.Option(
    "--max-memory", help="memory bound of one block of combinations (512MB, 2GB, 1.5GiB)",
    callback=max_memory)]
HeatmapOpt = Annotated[str | None, typer.Option(
    "--heatmap", help="the two params of the report's heatmap: x,y [default: the first two "
    "that vary]", metavar="X,Y", callback=heatmap)]
RecordOpt = Annotated[bool, typer.Option(
    "--record/--no-record", help="record every combination in .peak/registry")]


@guarded
def sweep_cmd(
    spec: SpecArg, grid: GridOpt = False, random: RandomOpt = None, seed: SeedOpt = None,
    set_: SpaceSetOpt = None, objective: ObjectiveOpt = "sharpe", top: TopOpt = 10,
    workers: WorkersOpt = None, scheduler: SchedulerOpt = None,
    max_memory: MaxMemoryOpt = DEFAULT_MAX_MEMORY, as_json: JsonOpt = False,
    report: HtmlReportOpt = None, heatmap: HeatmapOpt = None, data: DataOpt = None,
    start: FromOpt = None, end: ToOpt = None, fee_bps: FeeOpt = None,
    capital: CapitalOpt = 10_000.0, record: RecordOpt = True,
) -> None:
    """Sweep a strategy's params: rank the combinations, resume, run on Dask."""
    from .. import api
    from ..research.store import parse_size
    from ..research.sweep import plan_sweep
    from ..research.types import RunConfig

    if grid and random is not None:
        raise usage("--random", "--grid and --random exclude each other",
                    "--grid runs every combination; --random N --seed S draws N")
    check_run_inputs(spec, data, report, start, end)
    try:
        plan = plan_sweep(spec, data=data, start=start, end=end, sets=set_ or [],
                          mode="random" if random is not None else "grid", n=random, seed=seed,
                          objective=objective, run=RunConfig(capital=capital, fee_bps=fee_bps),
                          workers=workers, scheduler=scheduler,
                          max_memory=parse_size(max_memory), record=record)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    axes = _heatmap_axes(heatmap, plan)
    if plan.diagnostics or plan.candles.warnings:  # --data: the import's D008/D009 too
        emit((*plan.diagnostics, *plan.candles.warnings), Format.text)
    result = _execute(plan)
    if report is not None:
        _write_report(plan, result, report, axes)
    if as_json:
        write_json({**result.to_dict(top), "report": str(report) if report else None})
    else:
        print_sweep(result, top, report)
    raise typer.Exit(EXIT_OK)


def _heatmap_axes(text: str | None, plan: SweepPlan) -> tuple[str, str] | None:
    """``--heatmap x,y`` as two params of the spec (U005 for a name it does not have)."""
    if text is None:
        return None
    x, y = (part.strip() for part in text.split(","))
    for name in (x, y):
        if name not in plan.space.names:
            raise usage("--heatmap", f"--heatmap: `{name}` is not a param of {plan.spec}",
                        "params: " + ", ".join(plan.space.names))
    return x, y


def _execute(plan: SweepPlan) -> SweepResult:
    """Run the plan under a progress bar; Ctrl-C keeps the finished blocks (exit 130)."""
    from ..research.sweep import SweepInterrupted, execute_sweep

    err = _console(stderr=True)
    _print_plan(err, plan)
    try:
        with ProgressBar(err, "sweep", len(plan.space), plan.resumed,
                         rate="combos/s") as progress:
            return execute_sweep(plan, progress)
    except SweepInterrupted as stop:
        kept = f"kept {stop.done:,} of {stop.total:,} combinations in {_shown(stop.store)}/"
        sweep = f" (sweep {stop.sweep_id})" if stop.sweep_id else ""
        err.print(f"[yellow]interrupted:[/] {kept}{sweep}; run the same command again to "
                  "resume")
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted:[/] finished blocks are kept in "
                  f"{_shown(plan.store.path)}/; run the same command again to resume")
    raise typer.Exit(EXIT_INTERRUPTED)


def _write_report(plan: SweepPlan, result: SweepResult, report: Path,
                  axes: tuple[str, str] | None) -> None:
    """The HTML report, with the best combination run as a backtest for its equity chart."""
    from ..outputs import write_output
    from ..report.sweep import best_backtest, render_sweep_html

    page = render_sweep_html(result, axes, best=best_backtest(plan, result))
    write_output(report, page.encode("utf-8"), "--report")


# --------------------------------------------------------------------------- text output


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _shown(path: Path) -> str:
    from ..lang.project import display_path

    return display_path(path)


def _print_plan(err: Console, plan: SweepPlan) -> None:
    from ..research.store import format_bytes

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


def _params_text(result: SweepResult, params: dict[str, float]) -> list[str]:
    return [result.show(name, value) for name, value in params.items()]


def print_sweep(result: SweepResult, top: int, report: Path | None = None) -> None:
    """The ranked table, the best combination's command line, honesty and provenance, on
    stdout."""
    from rich.markup import escape

    console = _console()
    r = result
    console.print(f"[bold]{r.spec}[/]  {r.market} {r.timeframe}  {r.data_bars:,} bars  "
                  f"{len(r.space):,} combinations ({r.space.mode}"
                  + (f", seed {r.space.seed}" if r.space.seed is not None else "")
                  + f"), objective {r.objective}")
    data = r.data_source
    if r.data_synthetic:
        data = f"[bold yellow]{data}[/] (no usable cached data: see D018)"
    console.print(f"data source: {data}")
    if top > 0:
        console.print(_ranked_table(r, top))
    if r.best_row is None:
        console.print(f"[yellow]no combination has a defined {r.objective}[/]")
    else:  # the whole command (data, period, costs, capital): pasted, it gives these metrics
        best = r.best_command or f"peak backtest {r.spec_path} {r.best_set}"
        console.print(f"best: {escape(best)}")
    _print_footer(console, r, report)


def _ranked_table(r: SweepResult, top: int) -> Any:
    """The top combinations: params, the objective first, then the table metrics."""
    from rich.table import Table

    from ..research.sweep import TABLE_METRICS

    table = Table(show_header=True, header_style="bold")
    table.add_column("#", justify="right")
    for name in r.space.names:
        table.add_column(name, justify="right")
    metric_cols = [r.objective, *(m for m in TABLE_METRICS if m != r.objective)]
    arrow = " ▲" if objective_goal(r.objective) == "minimise" else " ▼"  # the sort order
    for name in metric_cols:
        table.add_column(name + (arrow if name == r.objective else ""), justify="right")
    for row in r.top(top):
        metrics = row["metrics"]
        table.add_row(str(row["rank"]), *_params_text(r, row["params"]),
                      *(format_metric(m, _float(metrics[m])) for m in metric_cols))
    return table


def _print_footer(console: Console, r: SweepResult, report: Path | None) -> None:
    """Honesty (deflated Sharpe, PBO, warnings), timing and provenance."""
    dsr = "—" if r.deflated_sharpe is None else f"{r.deflated_sharpe:.3f}"
    console.print(f"deflated Sharpe ratio of the best: {dsr}  ({r.trials_total:,} trials of "
                  f"{r.spec} counted)")
    console.print(f"probability of backtest overfitting: {pbo_text(r)}")
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


def pbo_text(r: SweepResult) -> str:
    """``0.312  (CSCV: 16 blocks, 12,870 splits; 0.5 or more: overfit)`` or why it is
    undefined."""
    from ..research.pbo import MIN_BLOCK_BARS

    p = r.pbo
    if p is None:
        return f"—  (undefined: it needs 2 combinations or more and {2 * MIN_BLOCK_BARS} bars)"
    splits = (f"a sample of {p.splits:,} of {p.splits_total:,} splits, seed {p.seed}"
              if p.sampled else f"{p.splits:,} splits")
    return f"{p.pbo:.3f}  (CSCV: {p.blocks} blocks, {splits}; 0.5 or more: overfit)"


def _float(value: Any) -> float | int | None:
    """A metric from the result document: "inf"/"-inf" strings back to floats."""
    if value is None:
        return None
    if value == "inf":
        return float("inf")
    if value == "-inf":
        return float("-inf")
    return value if isinstance(value, int | float) else None

