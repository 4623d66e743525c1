"""`peak runs list|show|compare`: the runs in the project's registry (``rerun`` and
``export`` are in ``runs_rerun``; what both share in ``runs_common``).

The registry is ``peakdsl.registry.store``, opened read-only in spirit (nothing is created
when no run was recorded), asked for typed records (rows: ``registry.listing``) and rendered:
tables on stdout, or JSON with ``--json``.
Light at import time (no rich, no sqlite, no pandas), so mounting it costs ``peak check``
nothing. Exit 0 ok, 1 a rerun that does not reproduce its run (or whose spec or data no
longer check), 2 usage or internal error.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..metrics import CATALOGUE
from .options import JsonOpt, RootOpt
from .root import EXIT_OK, guarded
from .runs_common import (
    LIST_METRICS,
    SHOWN_CHILDREN,
    SUMMARY_WIDTH,
    AllOpt,
    Filters,
    KindOpt,
    LimitOpt,
    ParentOpt,
    RunIdArg,
    SinceOpt,
    SpecFilterOpt,
    StatusOpt,
    _console,
    _get,
    _json,
    _open,
    _pairs,
    _project,
    _registry_label,
    _selected,
    _short_time,
    _since,
    _state,
    _table,
    fmt_delta,
    fmt_metric,
    fmt_value,
    runs_app,
)

if TYPE_CHECKING:

    from ..registry.store import RunComparison, RunRecord




# ----------------------------------------------------------------------- list

@runs_app.command("list")
@guarded
def list_cmd(spec: SpecFilterOpt = None, status: StatusOpt = None, limit: LimitOpt = 50,
             kind: KindOpt = None, parent: ParentOpt = None, everything: AllOpt = False,
             since: SinceOpt = None, as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """List recorded runs, newest first (`incomplete`: its process died before finishing).

    Child runs (sweep trials, walk-forward windows) are folded into their sweep's or
    walk-forward's row unless asked for; a sweep's row shows its best combination."""
    project = _project(root)
    records, recorded = _selected(project, Filters(spec, status, kind, parent, everything,
                                                   _since(since)), limit)
    if parent is not None and not recorded:
        _get(None, project, parent)  # U004: nothing is recorded yet
    if as_json:
        _json({"runs": [r.to_dict() for r in records]})
        raise typer.Exit(EXIT_OK)
    if not records:
        where = _registry_label(project)
        sys.stderr.write(f"no runs recorded in {where}\n" if not recorded and not spec
                         and not status and not kind and not since else "no matching runs\n")
        raise typer.Exit(EXIT_OK)
    _print_list(records)
    if len(records) == limit:
        sys.stderr.write(f"(the newest {limit} shown; --limit N for more)\n")
    raise typer.Exit(EXIT_OK)



LIST_COLUMNS = (("id", "left"), ("created (UTC)", "left"), ("kind", "left"), ("spec", "left"),
                ("market", "left"), ("tf", "left"), ("state", "left"), ("params", "left"),
                ("runs", "right"), ("trades", "right"),
                *((CATALOGUE[name].short, "right") for name in LIST_METRICS))


def _print_list(records: list[RunRecord]) -> None:
    """One row per run: a sweep's row shows its best combination (``best:``), a sweep's or
    walk-forward's child runs are counted (``174 trials``)."""
    from rich.text import Text

    from ..registry.listing import run_row

    table = _table()
    for name, justify in LIST_COLUMNS:
        table.add_column(name, justify=justify, no_wrap=name != "params")
    for r in records:
        row = run_row(r)
        params = ("best: " if r.kind == "sweep" and row.params else "") + _pairs(row.params)
        table.add_row(r.id, _short_time(r.created_at), r.kind, Text(r.spec),
                      Text(r.market or "—"), Text(r.timeframe or "—"), _state(r),
                      Text(params), row.folded, fmt_metric("trades", row.trades),
                      *(fmt_metric(name, row.metrics.get(name)) if r.state == "done" else ""
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
        ("command", r.command or "— (recorded before peak stored command lines)"),
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
    for key, value in _run_rows(r):  # unwrapped: a command line stays one line to paste
        console.print(Text.assemble((f"{key:<18}" if len(key) < 18 else key + " ", "bold"),
                                    value), soft_wrap=True)
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
