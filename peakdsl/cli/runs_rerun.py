"""`peak runs rerun` and `peak runs export`: a recorded run computed again from its command
line (``peakdsl.registry.rerun``), and the runs as one table for notebooks
(``peakdsl.registry.listing``). Registered on ``runs_app`` (``peakdsl.cli.runs``); light at
import time, like it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..lang.diagnostics import diag
from ..lang.project import UsageError
from ..metrics import CATALOGUE
from .options import JsonOpt, RootOpt, output_file
from .root import EXIT_OK, EXIT_SPEC, Format, emit, exit_code, guarded, json_document
from .runs_common import (
    AllOpt,
    Filters,
    KindOpt,
    ParentOpt,
    RunIdArg,
    SinceOpt,
    SpecFilterOpt,
    StatusOpt,
    _console,
    _get,
    _open,
    _project,
    _registry_label,
    _selected,
    _since,
    _table,
    fmt_metric,
    fmt_value,
    runs_app,
)

if TYPE_CHECKING:
    from ..registry.records import RunRecord
    from ..registry.rerun import Rerun


# ----------------------------------------------------------------------- rerun

@runs_app.command("rerun")
@guarded
def rerun_cmd(run_id: RunIdArg, as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Run a recorded run again from its stored command line; exit 1 unless it matches.

    Nothing is recorded; the values are compared exactly (NaN equals NaN)."""
    from .. import api
    from ..registry.rerun import NoCommandError, rerun

    project = _project(root)
    registry = _open(project)
    if registry is None:
        _get(None, project, run_id)  # U004: nothing is recorded yet
        return
    try:
        with registry:
            _get(registry, project, run_id)  # U004 (with candidates) before anything runs
            with _rerun_progress(as_json) as progress:
                found = rerun(registry, run_id, progress)
    except NoCommandError as exc:
        raise UsageError(diag("U015", exc.reason, _registry_label(project),
                              help=_no_command_help(exc.record))) from None
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    problems = () if found.matches else (_mismatch(found, _registry_label(project)),)
    if as_json:
        sys.stdout.write(json_document(problems, **found.to_dict()))
    else:
        _print_rerun(found)
        if problems:
            emit(problems)
    raise typer.Exit(EXIT_OK if found.matches else EXIT_SPEC)


def _rerun_progress(as_json: bool) -> Any:
    """A progress bar on stderr while a sweep or walk-forward runs again (none with --json)."""
    from contextlib import nullcontext

    if as_json:
        return nullcontext(None)
    from rich.console import Console

    from .root import ProgressBar

    return ProgressBar(Console(stderr=True, highlight=False), "rerun")


def _no_command_help(record: RunRecord) -> str:
    if record.kind in ("backtest", "sweep_trial"):
        return (f"`peak runs show {record.id}` lists its params and settings; run it again "
                "with `peak backtest` and compare with `peak runs compare`")
    return f"`peak runs show {record.id}` lists what it ran with"


def _mismatch(found: Rerun, where: str) -> Any:
    """R007: the rerun computed other values than the record (and the likely reason)."""
    n = len(found.differences)
    why = [what for what, same in (("the spec's artifact", found.same_artifact),
                                   ("the candles", found.same_data)) if not same]
    return diag("R007", f"run {found.record.id} is not reproduced: {n} of "
                f"{len(found.checks)} values differ", where,
                help=(" and ".join(why) + " changed since it was recorded") if why
                else "same spec and candles: the engine version or the environment differs "
                f"(recorded with engine {found.record.engine_version})")


def _print_rerun(found: Rerun) -> None:
    from rich.markup import escape

    console = _console()
    r = found.record
    console.print(f"[bold]rerun {r.id}[/]  {escape(r.kind)} of [bold]{escape(r.spec)}[/]")
    console.print(f"command   {escape(found.command)}", soft_wrap=True)
    for label, same, recorded, now in (
            ("artifact", found.same_artifact, r.artifact_sha256, found.artifact_now),
            ("data", found.same_data, r.data_fingerprint, found.data_now)):
        console.print(f"{label:<9} " + ("same" if same else f"[bold yellow]differs[/]: "
                                        f"recorded {recorded[:16]}, now {now[:16]}"))
    if found.matches:
        console.print(f"[green]reproduced[/]: all {len(found.checks):,} recorded values "
                      "match exactly")
        return
    table = _table(f"{len(found.differences):,} of {len(found.checks):,} values differ")
    for col in ("value", "recorded", "now"):
        table.add_column(col, justify="left" if col == "value" else "right")
    for c in found.differences:
        name = c.name.rsplit(" ", 1)[-1]
        table.add_row(c.name, _fmt_check(name, c.recorded), _fmt_check(name, c.now))
    console.print(table)


def _fmt_check(name: str, value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and name in CATALOGUE:
        return fmt_metric(name, value)
    return fmt_value(name, value)


# ----------------------------------------------------------------------- export

ExportOutOpt = Annotated[Path, typer.Option(
    "--out", help="the file to write: FILE.parquet or FILE.csv",
    callback=output_file("--out", (".parquet", ".csv")))]


@runs_app.command("export")
@guarded
def export_cmd(out: ExportOutOpt, kind: KindOpt = None, spec: SpecFilterOpt = None,
               status: StatusOpt = None, parent: ParentOpt = None,
               everything: AllOpt = False, since: SinceOpt = None,
               root: RootOpt = None) -> None:
    """Write the runs as a Parquet or CSV table for notebooks, one row per run.

    Params (param_NAME) and metrics are columns, rows oldest first; the selection is that
    of `peak runs list`, without a limit."""
    from ..registry.listing import write_export

    project = _project(root)
    records, _ = _selected(project, Filters(spec, status, kind, parent, everything,
                                            _since(since)), None)
    frame = write_export(records, out)
    sys.stderr.write(f"wrote {len(frame):,} runs × {len(frame.columns):,} columns to {out}\n")
    raise typer.Exit(EXIT_OK)
