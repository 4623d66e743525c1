"""`peak robustness SPEC`: Monte-Carlo, parameter jitter and stress scenarios of a strategy
or a portfolio, driven by its `robustness {}` block with command-line overrides.

The study is ``peakdsl.robustness.run.run_study``; this module checks the command line, draws
the progress bar on stderr and renders the result (tables, or JSON with ``--json``). Exit
codes: 0 ok, 1 spec / data errors, 2 usage errors, 130 interrupted (nothing recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..metrics import CATALOGUE, format_metric
from .options import (
    DataOpt,
    FeeOpt,
    FromOpt,
    JsonOpt,
    ReportOpt,
    SchedulerOpt,
    SpecArg,
    SpecCapitalOpt,
    ToOpt,
    WorkersOpt,
    check_outputs,
    check_period,
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
    print_provenance,
)

if TYPE_CHECKING:
    from rich.console import Console

    from ..robustness.doc import RobustnessDoc
    from ..robustness.study import StudyResult

RunsOpt = Annotated[int | None, typer.Option(
    "--runs", help="Monte-Carlo runs per method [default: the spec's monte_carlo, 1000]",
    metavar="N")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="random seed [default: the spec's]")]
SkipOpt = Annotated[float | None, typer.Option(
    "--skip", help="share of trades a `skip` run drops, 0 < x <= 0.9 [default: 0.1]")]
BlockOpt = Annotated[int | None, typer.Option(
    "--block-size", help="bars per block of the block bootstrap [default: cube root of bars]",
    metavar="BARS")]
RuinOpt = Annotated[float | None, typer.Option(
    "--ruin", help="drawdown counted as ruin, 0 < x <= 1 [default: 0.5]")]
JitterOpt = Annotated[bool | None, typer.Option(
    "--jitter/--no-jitter", help="run every param neighbour one step away [default: yes]")]
StressOpt = Annotated[str | None, typer.Option(
    "--stress", help="scenarios, comma-separated, or all / none [default: the spec's list]",
    metavar="LIST")]
RiskOpt = Annotated[str | None, typer.Option(
    "--risk", metavar="NAME", help="enforce a risk spec's limits (a portfolio: instead of its "
    "own)")]
RecordOpt = Annotated[bool, typer.Option("--record/--no-record",
                                         help="record the study in .peak/registry")]
HEADLINE = ("mc_p05_return", "mc_p50_return", "mc_p05_max_drawdown", "mc_p05_sharpe",
            "mc_prob_loss", "mc_risk_of_ruin", "stress_worst_return",
            "stress_worst_max_drawdown", "jitter_worst_sharpe", "jitter_median_sharpe")


def _settings(runs: int | None, seed: int | None, skip: float | None, block: int | None,
              ruin: float | None, jitter: bool | None, stress: str | None) -> dict[str, object]:
    """The command line's changes to the spec's block, each checked (U005)."""
    from ..robustness.run import check_stress

    checks: tuple[tuple[float | None, str, Callable[[float], bool], str], ...] = (
        (runs, "--runs", lambda v: 1 <= v <= 1_000_000, "1..1,000,000"),
        (seed, "--seed", lambda v: 0 <= v < 2**31, "0..2147483647"),
        (skip, "--skip", lambda v: 0 < v <= 0.9, "above 0 and at most 0.9"),
        (block, "--block-size", lambda v: 1 <= v <= 100_000, "1..100,000"),
        (ruin, "--ruin", lambda v: 0 < v <= 1, "above 0 and at most 1"))
    for value, option, ok, allowed in checks:
        if value is not None and not ok(value):
            raise usage(option, f"{option} {value:g} is out of range", f"allowed: {allowed}")
    out: dict[str, object] = {"runs": runs, "seed": seed, "skip": skip, "block_size": block,
                              "ruin": ruin, "jitter": jitter}
    if stress is not None:
        out["stress"] = check_stress([s.strip() for s in stress.split(",") if s.strip()])
    return out


@guarded
def robustness_cmd(spec: SpecArg, runs: RunsOpt = None, seed: SeedOpt = None,
                   skip: SkipOpt = None, block_size: BlockOpt = None, ruin: RuinOpt = None,
                   jitter: JitterOpt = None, stress: StressOpt = None, data: DataOpt = None,
                   start: FromOpt = None, end: ToOpt = None, capital: SpecCapitalOpt = None,
                   fee_bps: FeeOpt = None, risk: RiskOpt = None, workers: WorkersOpt = None,
                   scheduler: SchedulerOpt = None, as_json: JsonOpt = False,
                   report: ReportOpt = None, record: RecordOpt = True) -> None:
    """Stress a strategy or a portfolio: Monte-Carlo, param jitter and stress scenarios."""
    from .. import api
    from ..research.sweep import placement
    from ..robustness.run import run_study

    check_outputs([("--report", report)], spec, data)
    check_period(start, end)
    placement(workers, scheduler)
    changes = _settings(runs, seed, skip, block_size, ruin, jitter, stress)
    err = _stderr()
    try:
        with ProgressBar(err, "robustness", noun="steps") as bar:
            run = run_study(spec, changes, data=data, start=start, end=end, capital=capital,
                            fee_bps=fee_bps, risk=risk, record=record, workers=workers,
                            scheduler=scheduler, outputs=lambda r, d: write_report(r, d, report),
                            progress=bar)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted:[/] nothing written or recorded")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        import sys

        sys.stdout.write(run.doc.model_dump_json(indent=2) + "\n")
    else:
        print_study(run.doc, report)
    raise typer.Exit(EXIT_OK)


def write_report(result: StudyResult, doc: RobustnessDoc, report: Path | None
                 ) -> dict[str, Path]:
    if report is None:
        return {}
    from ..report.robustness import write_robustness_report

    write_robustness_report(result, doc, report)
    return {"report": report}


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def print_study(doc: RobustnessDoc, report: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    s = doc.settings
    console.print(f"[bold]{doc.spec}[/] ({doc.kind})  {doc.start[:16]} → {doc.end[:16]}  "
                  f"{s.runs:,} runs per method, seed {s.seed}")
    for d in doc.data:  # where each component's candles came from (resampled, synthetic…)
        console.print(f"data: {d.label} {d.market} {d.timeframe}, {d.bars:,} bars — {d.source}")
    base = doc.base.model_dump()  # type: ignore[attr-defined]
    console.print("base run: " + ", ".join(
        f"{CATALOGUE[k].short} {format_metric(k, base.get(k))}"
        for k in ("total_return", "max_drawdown", "sharpe", "trades")))
    figures = Table(title="robustness", header_style="bold")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    metrics = doc.metrics.model_dump()  # type: ignore[attr-defined]
    for name in HEADLINE:
        figures.add_row(CATALOGUE[name].label, format_metric(name, metrics.get(name)))
    console.print(figures)
    if doc.stress:
        table = Table(title="stress scenarios", header_style="bold")
        for column in ("scenario", "return", "max drawdown", "Sharpe", "trades"):
            table.add_column(column, justify="left" if column == "scenario" else "right")
        for v in doc.stress:
            table.add_row(v.name, _pct(v.total_return), _pct(v.max_drawdown),
                          "—" if v.sharpe is None else f"{v.sharpe:.2f}",
                          "—" if v.trades is None else str(v.trades))
        console.print(table)
    console.print(f"param neighbours run: {len(doc.jitter)}")
    for note in doc.notes:
        console.print(f"[yellow]note:[/] {note}")
    print_provenance(console, doc.artifact_sha256, doc.engine_version, doc.run_id,
                     (("report", report),))
