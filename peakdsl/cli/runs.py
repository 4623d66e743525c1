"""`peak runs`: list, show and compare the runs in the project's registry.

The registry is ``peakdsl.registry.store``; this module opens it read-only in spirit (nothing
is created when no run was recorded), asks it for typed records and renders them: tables on
stdout, or JSON with ``--json``. Light at import time (no rich, no sqlite, no pandas), so
mounting it costs ``peak check`` nothing. Exit 0 ok, 2 usage or internal error.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..lang.diagnostics import diag, did_you_mean
from ..lang.project import UsageError
from ..metrics import CATALOGUE, format_metric
from .options import JsonOpt, RootOpt, at_least, one_of
from .root import EXIT_OK, guarded, write_json

if TYPE_CHECKING:
    from rich.console import Console

    from ..registry.store import Registry, RunComparison, RunRecord

STATES = ("running", "incomplete", "done", "failed")  # store.STATES, without importing it
LIST_METRICS = ("total_return", "sharpe", "max_drawdown")  # headers: the catalogue's short
STATE_STYLE = {"done": "green", "failed": "red", "incomplete": "yellow", "running": "cyan"}
SHOWN_CHILDREN = 20  # `peak runs show` lists up to this many child runs, else counts them
SUMMARY_WIDTH = 120  # characters of a summary entry `peak runs show` prints (all with --json)

runs_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       pretty_exceptions_enable=False,
                       help="List, show and compare recorded runs (.peak/registry.sqlite).")

SpecFilterOpt = Annotated[str | None, typer.Option("--spec", help="only runs of this spec")]
StatusOpt = Annotated[str | None, typer.Option(
    "--status", help="only runs in this state: " + ", ".join(STATES),
    callback=one_of("--status", STATES, "a run state"))]
LimitOpt = Annotated[int, typer.Option(
    "--limit", help="at most N runs, newest first",
    callback=at_least("--limit", 1, "a positive number of runs"))]
KindOpt = Annotated[str | None, typer.Option(
    "--kind", help="only runs of this kind: backtest, sweep, walkforward, …")]
ParentOpt = Annotated[str | None, typer.Option(
    "--parent", metavar="ID", help="only the child runs of this run (a sweep's trials, "
    "a walk-forward's windows)")]
AllOpt = Annotated[bool, typer.Option(
    "--all", help="child runs too (hidden unless --all, --parent or a child --kind)")]
RunIdArg = Annotated[str, typer.Argument(
    metavar="ID", help="a run id (any kind: a backtest, a sweep, a walk-forward, …) or a "
    "unique prefix of one (≥ 4 characters)")]


# ------------------------------------------------------------------------ helpers

def _project(root: Path | None) -> Path:
    """``--root`` (already checked to be a folder) or the nearest folder with specs/."""
    from ..lang.project import find_root

    return root.resolve() if root is not None else find_root(Path.cwd())


def _registry_label(root: Path) -> str:
    from ..lang.project import display_path
    from ..registry.store import registry_path

    return display_path(registry_path(root))


def _open(root: Path) -> Registry | None:
    """The project's registry, or None when nothing has been recorded yet (not created)."""
    from ..registry.store import Registry, registry_path

    return Registry(root) if registry_path(root).is_file() else None


def _get(registry: Registry | None, root: Path, query: str) -> RunRecord:
    """The run ``query`` names (an id or a unique prefix); U004 with candidates otherwise."""
    from ..registry.store import RunNotFoundError

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
    write_json(doc, sort_keys=True, ensure_ascii=False)


def fmt_value(name: str, value: Any) -> str:
    """A param or setting for people: shortest exact-enough number, '—' for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, dict | list):  # a walk-forward window's range, a sweep's best row
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


fmt_metric = format_metric  # as `peak backtest` prints it: the catalogue's


def fmt_delta(name: str, value: float | int | None) -> str:
    """B − A with its sign ('+0.50'); '' when either run has no value."""
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


def _table(title: str | None = None) -> Any:
    from rich import box
    from rich.table import Table

    return Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False,
                 collapse_padding=True,
                 title=title, title_justify="left", title_style="bold")


# ----------------------------------------------------------------------- list

@runs_app.command("list")
@guarded
def list_cmd(spec: SpecFilterOpt = None, status: StatusOpt = None, limit: LimitOpt = 50,
             kind: KindOpt = None, parent: ParentOpt = None, everything: AllOpt = False,
             as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """List recorded runs, newest first (`incomplete`: its process died before finishing).

    Child runs (sweep trials, walk-forward windows) are left out unless asked for."""
    project = _project(root)
    registry = _open(project)
    records: list[RunRecord] = []
    if registry is not None:
        with registry:
            records = _listed(registry, project, spec, limit, status, kind, parent, everything)
    elif kind is not None:
        _check_kind(kind, None)
    if parent is not None and registry is None:
        _get(None, project, parent)  # U004: nothing is recorded yet
    if as_json:
        _json({"runs": [r.to_dict() for r in records]})
        raise typer.Exit(EXIT_OK)
    if not records:
        where = _registry_label(project)
        sys.stderr.write(f"no runs recorded in {where}\n" if registry is None and not spec
                         and not status and not kind else "no matching runs\n")
        raise typer.Exit(EXIT_OK)
    _print_list(records)
    if len(records) == limit:
        sys.stderr.write(f"(the newest {limit} shown; --limit N for more)\n")
    raise typer.Exit(EXIT_OK)


def _listed(registry: Registry, project: Path, spec: str | None, limit: int,
            status: str | None, kind: str | None, parent: str | None,
            everything: bool) -> list[RunRecord]:
    """``Registry.list_runs`` for the options of ``peak runs list`` (checked here)."""
    from ..registry.store import top_level_only

    if kind is not None:
        _check_kind(kind, registry)
    parent_id = _get(registry, project, parent).id if parent is not None else None
    return registry.list_runs(spec, limit, status, kind=kind,  # type: ignore[arg-type]
                              parent=parent_id,
                              top_level=top_level_only(kind, parent_id, everything))


def _check_kind(kind: str, registry: Registry | None) -> None:
    """U005 unless ``kind`` is a kind of run peak (or this registry) knows."""
    from ..registry.kinds import RUN_KINDS

    known = sorted(set(RUN_KINDS) | {k.kind for k in (registry.kinds() if registry else ())})
    if kind not in known:
        raise UsageError(diag("U005", f"--kind {kind}: not a kind of run", "--kind",
                              help=did_you_mean(kind, known) or f"use one of {', '.join(known)}"))


def _print_list(records: list[RunRecord]) -> None:
    from rich.text import Text

    table = _table()
    for name, justify in (("id", "left"), ("created (UTC)", "left"), ("kind", "left"),
                          ("spec", "left"),
                          ("market", "left"), ("tf", "left"), ("state", "left"),
                          ("trades", "right"),
                          *((CATALOGUE[name].short, "right") for name in LIST_METRICS)):
        table.add_column(name, justify=justify, no_wrap=True)
    for r in records:
        table.add_row(r.id, _short_time(r.created_at), r.kind, Text(r.spec),
                      Text(r.market or "—"),
                      Text(r.timeframe or "—"), _state(r), fmt_metric("trades", r.trades),
                      *(fmt_metric(name, r.metrics.get(name)) if r.state == "done" else ""
                        for name in LIST_METRICS))
    _console().print(table)


# ----------------------------------------------------------------------- show

@runs_app.command("show")
@guarded
def show_cmd(run_id: RunIdArg, as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Show one run: what ran (spec, inputs, data, params, settings), its results, the files
    it wrote and its child runs (a walk-forward's windows; a sweep's trials are counted)."""
    project = _project(root)
    registry = _open(project)
    children: list[RunRecord] = []
    try:
        record = _get(registry, project, run_id)
        if registry is not None and 0 < record.children <= SHOWN_CHILDREN:
            children = registry.child_runs(record.id)
    finally:
        if registry is not None:
            registry.close()
    if as_json:
        _json(record.to_dict())
    else:
        _print_run(record)
        _print_children(record, children)
    raise typer.Exit(EXIT_OK)


def _run_rows(r: RunRecord) -> list[tuple[str, str]]:
    """What ran, one (label, value) row each; timing and trades once it is done."""
    period = ""
    if r.data_start or r.data_end:
        bars = f", {r.data_bars:,} bars" if r.data_bars is not None else ""
        period = f"  ({_short_time(r.data_start)} → {_short_time(r.data_end)}{bars})"
    rows = [
        ("created", f"{r.created_at}   finished {r.finished_at or '—'}"),
        ("market", f"{r.market or '—'} {r.timeframe or ''}".rstrip()),
        ("lineage", r.lineage + (f"   sweep {r.sweep_id}" if r.sweep_id else
                                 f"   parent {r.parent_id}" if r.parent_id else "")),
        ("artifact", f"sha256 {r.artifact_sha256 or '—'}"),
        ("data", f"{r.data_source or '—'}{period}"),
        ("data fingerprint", r.data_fingerprint or "—"),
        *((f"input {name}", f"sha256 {value}") for name, value in sorted(r.inputs.items())
          if name not in ("artifact", "data")),
        ("engine", r.engine_version),
        ("seed", "—" if r.seed is None else str(r.seed)),
        ("params", _pairs(r.params)),
        ("settings", _pairs(r.settings)),
        ("process", f"pid {r.pid} on {r.hostname}" if r.pid is not None else "—"),
        *((f"wrote {name}", path) for name, path in sorted(r.artifacts.items())),
        *((f"summary {name}", _short(fmt_value(name, value)))
          for name, value in sorted((r.summary or {}).items())),
    ]
    if r.status == "done":
        rows.append(("trades", fmt_metric("trades", r.trades)))
        rows.append(("timing", ", ".join(f"{k} {v:.3f} s" for k, v in sorted(r.timing.items())
                                         if isinstance(v, int | float)) or "—"))
    return rows


def _print_run(r: RunRecord) -> None:
    from rich.markup import escape
    from rich.text import Text

    console = _console()
    console.print(f"[bold]run {r.id}[/]  {_state(r)}  {escape(r.kind)} of "
                  f"[bold]{escape(r.spec)}[/]")
    for key, value in _run_rows(r):
        console.print(Text.assemble((f"{key:<18}" if len(key) < 18 else key + " ", "bold"),
                                    value))
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


def _short(text: str, width: int = SUMMARY_WIDTH) -> str:
    """A long summary entry cut for the terminal (``--json`` shows it whole)."""
    return text if len(text) <= width else text[:width - 1] + "…"


def _print_children(r: RunRecord, children: list[RunRecord]) -> None:
    """A few child runs as a table (a walk-forward's windows); many only as a count."""
    from rich.text import Text

    if not r.children:
        return
    console = _console()
    if not children:
        console.print(f"{r.children:,} child runs: peak runs list --parent {r.id}")
        return
    table = _table(f"{len(children)} child runs")
    for name in ("id", "kind", "state", "params", "trades",
                 *(CATALOGUE[m].short for m in LIST_METRICS)):
        table.add_column(name, justify="left" if name in ("id", "kind", "state", "params")
                         else "right")
    for c in children:
        table.add_row(c.id, c.kind, _state(c), Text(_pairs(c.params)),
                      fmt_metric("trades", c.trades),
                      *(fmt_metric(name, c.metrics.get(name)) if c.state == "done" else ""
                        for name in LIST_METRICS))
    console.print(table)


# ----------------------------------------------------------------------- compare

@runs_app.command("compare")
@guarded
def compare_cmd(a: Annotated[str, typer.Argument(metavar="A", help="a run id or prefix")],
                b: Annotated[str, typer.Argument(metavar="B", help="a run id or prefix")],
                as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Compare two runs: what differs in what ran, and their metrics side by side (B − A)."""
    from ..registry.store import compare_records

    project = _project(root)
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
    console = _console()
    console.print(_identity_table(c))
    for title, diffs in (("params", c.params), ("settings", c.settings)):
        console.print(_diff_table(title, diffs) if diffs else f"{title}: identical")
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


def _identity_table(c: RunComparison) -> Any:
    """What ran, A beside B, each row marked same or differs."""
    from rich.text import Text

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
    return same


def _diff_table(title: str, diffs: Any) -> Any:
    """The params (or settings) that differ: name, A, B."""
    from rich.text import Text

    table = _table(f"{title} that differ")
    for col in ("name", "A", "B"):
        table.add_column(col, justify="left" if col == "name" else "right")
    for d in diffs:
        table.add_row(Text(d.name), Text(fmt_value(d.name, d.a)), Text(fmt_value(d.name, d.b)))
    return table
