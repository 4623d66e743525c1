"""What the `peak runs` commands share (``runs`` — list, show, compare — and ``runs_rerun`` —
rerun, export): the group's Typer app, its options, opening the registry (read-only in
spirit: nothing is created when no run was recorded) and the rendering helpers. Imports only
``root``, ``options`` and the library, like every shared CLI module; light at import time
(no rich, no sqlite, no pandas).
"""


from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..lang.diagnostics import diag, did_you_mean
from ..lang.project import UsageError
from ..metrics import format_metric
from .options import at_least, one_of, usage
from .root import write_json

if TYPE_CHECKING:
    from rich.console import Console

    from ..registry.store import Registry, RunRecord

STATES = ("running", "incomplete", "done", "failed")  # store.STATES, without importing it
LIST_METRICS = ("total_return", "sharpe", "max_drawdown")  # headers: the catalogue's short
STATE_STYLE = {"done": "green", "failed": "red", "incomplete": "yellow", "running": "cyan"}
SHOWN_CHILDREN = 20  # `peak runs show` lists up to this many child runs, else counts them
SUMMARY_WIDTH = 120  # characters of a summary entry `peak runs show` prints (all with --json)

runs_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       pretty_exceptions_enable=False,
                       help="List, show, compare, rerun and export recorded runs "
                       "(.peak/registry.sqlite).")

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
SinceOpt = Annotated[str | None, typer.Option(
    "--since", metavar="WHEN", help="only runs created since: a date or time (UTC), or a "
    "duration back from now (90m, 12h, 7d, 2w)")]
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



@dataclass(frozen=True)
class Filters:
    """Which runs `peak runs list` and `peak runs export` select (``since`` already as
    ``created_at`` is written)."""

    spec: str | None = None
    status: str | None = None
    kind: str | None = None
    parent: str | None = None
    everything: bool = False
    since: str | None = None


def _since(text: str | None) -> str | None:
    """``--since`` as a ``created_at`` time (U005 when it is neither a date nor a duration)."""
    if text is None:
        return None
    import time

    from ..registry.listing import since_time

    try:
        return since_time(text, time.time_ns() // 1_000_000)
    except ValueError as exc:
        raise usage("--since", f"--since {exc}", "give a date (2026-11-30), a time "
                    "(2026-11-30T14:00) or a duration back from now (90m, 12h, 7d, 2w)") from None


def _selected(project: Path, f: Filters, limit: int | None) -> tuple[list[RunRecord], bool]:
    """The runs `peak runs list` and `export` select, and whether a registry exists (with
    none, a --kind is still checked against the known kinds)."""
    registry = _open(project)
    if registry is None:
        if f.kind is not None:
            _check_kind(f.kind, None)
        return [], False
    with registry:
        return _listed(registry, project, f, limit), True


def _listed(registry: Registry, project: Path, f: Filters,
            limit: int | None) -> list[RunRecord]:
    """``Registry.list_runs`` for the options of ``peak runs list`` (checked here)."""
    from ..registry.store import top_level_only

    if f.kind is not None:
        _check_kind(f.kind, registry)
    parent_id = _get(registry, project, f.parent).id if f.parent is not None else None
    return registry.list_runs(f.spec, limit, f.status, kind=f.kind,  # type: ignore[arg-type]
                              parent=parent_id, since=f.since,
                              top_level=top_level_only(f.kind, parent_id, f.everything))


def _check_kind(kind: str, registry: Registry | None) -> None:
    """U005 unless ``kind`` is a kind of run peak (or this registry) knows."""
    from ..registry.kinds import RUN_KINDS

    known = sorted(set(RUN_KINDS) | {k.kind for k in (registry.kinds() if registry else ())})
    if kind not in known:
        raise UsageError(diag("U005", f"--kind {kind}: not a kind of run", "--kind",
                              help=did_you_mean(kind, known) or f"use one of {', '.join(known)}"))
