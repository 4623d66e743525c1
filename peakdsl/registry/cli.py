"""`peak runs`: list, show and compare the runs in the project's registry.

Mounted on the main app by ``peakdsl.cli``; kept import-light (no rich, no sqlite, no pandas at
import time) so that mounting it costs ``peak check`` nothing. Same conventions as the main
CLI: results on stdout, diagnostics on stderr (on stdout as JSON with ``--json``), exit 0 ok,
2 usage or internal error, never a traceback.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ..lang.diagnostics import Diagnostic, diag, did_you_mean
from ..lang.project import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from .store import Registry, RunComparison, RunRecord

EXIT_OK, EXIT_USAGE = 0, 2  # as in peakdsl.cli
F = TypeVar("F", bound=Callable[..., Any])
STATES = ("running", "incomplete", "done", "failed")  # store.STATES, without importing it
PERCENT = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "expectancy",
           "avg_trade", "best_trade", "worst_trade", "exposure"}
LIST_METRICS = (("total_return", "return"), ("sharpe", "sharpe"), ("max_drawdown", "max dd"))
STATE_STYLE = {"done": "green", "failed": "red", "incomplete": "yellow", "running": "cyan"}

runs_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       pretty_exceptions_enable=False,
                       help="List, show and compare recorded runs (.peak/registry.sqlite).")

RootOpt = Annotated[Path | None,
                    typer.Option("--root", help="project folder [default: nearest with specs/]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


def _emit(diags: Sequence[Diagnostic], as_json: bool) -> None:
    from ..lang.render import render_json, render_text

    if as_json:
        sys.stdout.write(render_json(diags))
    else:
        sys.stderr.write(render_text(diags, lambda _path: None, color=sys.stderr.isatty()))


def _guarded(func: F) -> F:
    """Usage errors and unexpected exceptions become diagnostics and exit code 2.

    A registry that cannot be read or written (damaged, locked, read-only) is the
    U006/U009 of ``peakdsl.failures``; only peak's own bugs are I001.
    """
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..failures import diagnostic_for

        as_json = bool(kwargs.get("as_json", False))
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            d = diagnostic_for(exc) or diag(
                "I001", f"internal error: {type(exc).__name__}: {exc}", "<peak>",
                help="this is a bug in peak, not in your spec; please report it")
            _emit([d], as_json)
            raise typer.Exit(EXIT_USAGE) from None
    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------------ helpers

def _root(root: Path | None) -> Path:
    from ..lang.project import display_path, find_root

    if root is None:
        return find_root(Path.cwd())
    if root.exists() and not root.is_dir():
        raise UsageError(diag("U007", f"--root {display_path(root)}: is a file, not a folder",
                              "--root", help="--root takes the project folder"))
    if not root.is_dir():
        raise UsageError(diag("U001", f"no such folder: {display_path(root)}",
                              display_path(root), help="--root takes the project folder"))
    return root.resolve()


def _registry_label(root: Path) -> str:
    from ..lang.project import display_path
    from .store import registry_path

    return display_path(registry_path(root))


def _open(root: Path) -> Registry | None:
    """The project's registry, or None when nothing has been recorded yet (not created)."""
    from .store import Registry, registry_path

    return Registry(root) if registry_path(root).is_file() else None


def _get(registry: Registry | None, root: Path, query: str) -> RunRecord:
    from .store import RunNotFoundError

    label = _registry_label(root)
    if registry is None:
        raise UsageError(diag("U004", f"no run matches `{query}`: no runs recorded yet",
                              label, help="`peak backtest` records runs"))
    try:
        return registry.get_run(query)
    except RunNotFoundError as exc:
        if exc.candidates:
            shown = ", ".join(exc.candidates[:10]) + (", …" if len(exc.candidates) > 10 else "")
            help_ = f"it could be {shown}; give more characters of the id"
        else:
            help_ = "`peak runs list` shows the recorded runs"
        raise UsageError(diag("U004", exc.reason, label, help=help_)) from None


def _console() -> Console:
    from rich.console import Console

    # Piped output is not cut to 80 columns: tables stay whole for grep and diff.
    tty = sys.stdout.isatty()
    return Console(highlight=False, width=None if tty else 200, soft_wrap=not tty)


def _json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False,
                                allow_nan=False) + "\n")


def fmt_value(name: str, value: Any) -> str:
    """A param or setting for people: shortest exact-enough number, '—' for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def fmt_metric(name: str, value: Any) -> str:
    """A metric for people, as `peak backtest` prints it: percentages, 2 decimals, counts."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return fmt_value(name, value)
    if name in PERCENT:
        return f"{value * 100:,.2f}%"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def fmt_delta(name: str, value: float | int | None) -> str:
    if value is None:
        return ""
    text = fmt_metric(name, value)
    return text if text.startswith("-") or value == 0 else "+" + text


def _short_time(iso: str | None) -> str:
    return "—" if not iso else iso.replace("T", " ")[:19]


def _state(record: RunRecord) -> str:
    style = STATE_STYLE.get(record.state, "")
    return f"[{style}]{record.state}[/]" if style else record.state


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_value(k, v)}" for k, v in sorted(values.items())) or "—"


# ----------------------------------------------------------------------- commands

@runs_app.command("list")
@_guarded
def list_cmd(
    spec: Annotated[str | None, typer.Option("--spec", help="only runs of this spec")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="only runs in this state: running, incomplete, done, failed")] = None,
    limit: Annotated[int, typer.Option("--limit", help="at most N runs, newest first")] = 50,
    as_json: JsonOpt = False, root: RootOpt = None,
) -> None:
    """List recorded runs, newest first (`incomplete`: its process died before finishing)."""
    if limit < 1:
        raise UsageError(diag("U005", f"--limit {limit}: give a positive number of runs",
                              "--limit"))
    if status is not None and status not in STATES:
        raise UsageError(diag("U005", f"--status {status}: not a run state", "--status",
                              help=did_you_mean(status, STATES)
                              or f"use one of {', '.join(STATES)}"))
    project = _root(root)
    registry = _open(project)
    if registry is None:
        records: list[RunRecord] = []
    else:
        with registry:
            records = registry.list_runs(spec, limit, status)  # type: ignore[arg-type]
    if as_json:
        _json({"runs": [r.to_dict() for r in records]})
        raise typer.Exit(EXIT_OK)
    if not records:
        where = _registry_label(project)
        sys.stderr.write(f"no runs recorded in {where}\n" if registry is None and not spec
                         and not status else "no matching runs\n")
        raise typer.Exit(EXIT_OK)
    _print_list(records)
    if len(records) == limit:
        sys.stderr.write(f"(the newest {limit} shown; --limit N for more)\n")
    raise typer.Exit(EXIT_OK)


def _table(title: str | None = None) -> Any:
    from rich import box
    from rich.table import Table

    return Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False,
                 collapse_padding=True,
                 title=title, title_justify="left", title_style="bold")


def _print_list(records: list[RunRecord]) -> None:
    from rich.text import Text

    table = _table()
    for name, justify in (("id", "left"), ("created (UTC)", "left"), ("spec", "left"),
                          ("market", "left"), ("tf", "left"), ("state", "left"),
                          ("trades", "right"), *((label, "right") for _, label in LIST_METRICS)):
        table.add_column(name, justify=justify, no_wrap=True)
    for r in records:
        table.add_row(r.id, _short_time(r.created_at), Text(r.spec), Text(r.market or "—"),
                      Text(r.timeframe or "—"), _state(r), fmt_metric("trades", r.trades),
                      *(fmt_metric(name, r.metrics.get(name)) if r.state == "done" else ""
                        for name, _ in LIST_METRICS))
    _console().print(table)


@runs_app.command("show")
@_guarded
def show_cmd(run_id: Annotated[str, typer.Argument(
                 metavar="ID", help="a run id or a unique prefix of one (≥ 4 characters)")],
             as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Show one run: what ran (spec, artifact, data, params, settings) and its results."""
    project = _root(root)
    registry = _open(project)
    try:
        record = _get(registry, project, run_id)
    finally:
        if registry is not None:
            registry.close()
    if as_json:
        _json(record.to_dict())
    else:
        _print_run(record)
    raise typer.Exit(EXIT_OK)


def _print_run(r: RunRecord) -> None:
    from rich.markup import escape
    from rich.text import Text

    console = _console()
    console.print(f"[bold]run {r.id}[/]  {_state(r)}  {escape(r.kind)} of "
                  f"[bold]{escape(r.spec)}[/]")
    period = ""
    if r.data_start or r.data_end:
        bars = f", {r.data_bars:,} bars" if r.data_bars is not None else ""
        period = f"  ({_short_time(r.data_start)} → {_short_time(r.data_end)}{bars})"
    rows = [
        ("created", f"{r.created_at}   finished {r.finished_at or '—'}"),
        ("market", f"{r.market or '—'} {r.timeframe or ''}".rstrip()),
        ("lineage", r.lineage + (f"   sweep {r.sweep_id}" if r.sweep_id else "")),
        ("artifact", f"sha256 {r.artifact_sha256}"),
        ("data", f"{r.data_source}{period}"),
        ("data fingerprint", r.data_fingerprint),
        ("engine", r.engine_version),
        ("seed", "—" if r.seed is None else str(r.seed)),
        ("params", _pairs(r.params)),
        ("settings", _pairs(r.settings)),
        ("process", f"pid {r.pid} on {r.hostname}"),
    ]
    if r.status == "done":
        rows.append(("trades", fmt_metric("trades", r.trades)))
        rows.append(("timing", ", ".join(f"{k} {v:.3f} s" for k, v in sorted(r.timing.items())
                                         if isinstance(v, int | float)) or "—"))
    for key, value in rows:
        console.print(Text.assemble((f"{key:<18}", "bold"), value))
    if r.metrics:
        table = _table()
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, metric in sorted(r.metrics.items()):
            table.add_row(name, fmt_metric(name, metric))
        console.print(table)
    for warning in r.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if r.error:
        console.print(f"[red]error:[/] {escape(r.error)}")
    if r.state == "incomplete":
        console.print("[yellow]incomplete:[/] its process ended before the run was finished; "
                      "no results were recorded")


@runs_app.command("compare")
@_guarded
def compare_cmd(a: Annotated[str, typer.Argument(metavar="A", help="a run id or prefix")],
                b: Annotated[str, typer.Argument(metavar="B", help="a run id or prefix")],
                as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Compare two runs: what differs in what ran, and their metrics side by side (B − A)."""
    from .store import compare_records

    project = _root(root)
    registry = _open(project)
    try:
        comparison = compare_records(_get(registry, project, a), _get(registry, project, b))
    finally:
        if registry is not None:
            registry.close()
    if as_json:
        _json(comparison.to_dict())
    else:
        _print_comparison(comparison)
    raise typer.Exit(EXIT_OK)


def _print_comparison(c: RunComparison) -> None:
    from rich.text import Text

    console = _console()
    same = _table()
    same.add_column("")
    same.add_column(f"A {c.a.id}")
    same.add_column(f"B {c.b.id}")
    same.add_column("")
    for label, flag, va, vb in (
        ("spec", c.same_spec, Text(c.a.spec), Text(c.b.spec)),
        ("artifact", c.same_artifact, c.a.artifact_sha256[:16], c.b.artifact_sha256[:16]),
        ("data", c.same_data, c.a.data_fingerprint[:16], c.b.data_fingerprint[:16]),
        ("engine", c.same_engine, c.a.engine_version, c.b.engine_version),
        ("seed", c.same_seed, fmt_value("seed", c.a.seed), fmt_value("seed", c.b.seed)),
        ("state", c.a.state == c.b.state, c.a.state, c.b.state),
    ):
        same.add_row(label, va, vb, "same" if flag else "[bold yellow]differs[/]")
    console.print(same)
    for title, diffs in (("params", c.params), ("settings", c.settings)):
        if not diffs:
            console.print(f"{title}: identical")
            continue
        table = _table(f"{title} that differ")
        for col in ("name", "A", "B"):
            table.add_column(col, justify="left" if col == "name" else "right")
        for d in diffs:
            table.add_row(Text(d.name), Text(fmt_value(d.name, d.a)),
                          Text(fmt_value(d.name, d.b)))
        console.print(table)
    if c.metrics:
        table = _table("metrics")
        for col in ("metric", "A", "B", "B − A"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for m in c.metrics:
            table.add_row(m.name, fmt_metric(m.name, m.a), fmt_metric(m.name, m.b),
                          fmt_delta(m.name, m.delta))
        console.print(table)
    else:
        console.print("metrics: neither run has finished")
