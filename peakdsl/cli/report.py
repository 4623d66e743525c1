"""`peak report live` (a deployment's status report) and `peak live note` (an operator note).

* ``report live SPEC --mode M``: the report of one UTC day or ISO week of the deployment
  (``peakdsl.live.report``), from its store opened read-only (the runner may be running) and
  its notes: Markdown on stdout, or a file with ``--out`` (Markdown or self-contained HTML);
  ``--json`` prints the report as one JSON document.
* ``live note SPEC --mode M --text …`` (mounted on ``peak live``): appends a note to the
  deployment's notes file without the store's write lock (``peakdsl.live.notes``).

Exit codes: 0 ok, 1 a spec error or a deployment that cannot be read (E021–E023, as
``peak live status``), 2 usage (a bad option, ``--format html`` without ``--out``, an
``--out`` that cannot be written). Light at import time: typer and peak's options only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from .options import JsonOpt, one_of, output_file, usage
from .root import EXIT_OK, Format, emit, exit_code, guarded, write_json

if TYPE_CHECKING:
    from ..live.notes import Note

T = TypeVar("T")
MODES = ("paper", "testnet", "live")
report_app = typer.Typer(no_args_is_help=True, help="Status reports of live deployments.")

SpecArg = Annotated[str, typer.Argument(help="the deployment's strategy or portfolio spec")]
ModeOpt = Annotated[str, typer.Option(
    "--mode", help="the deployment's mode: paper, testnet or live",
    callback=one_of("--mode", MODES, "a mode"))]
AccountOpt = Annotated[str, typer.Option("--account", help="the deployment's account")]
PeriodOpt = Annotated[str, typer.Option(
    "--period", help="daily (a UTC day) or weekly (an ISO week, Monday to Sunday)",
    callback=one_of("--period", ("daily", "weekly"), "a period"))]
FormatOpt = Annotated[str, typer.Option(
    "--format", help="md (Markdown) or html (a self-contained page; needs --out)",
    callback=one_of("--format", ("md", "html"), "a report format"))]
RiskOpt = Annotated[str | None, typer.Option(
    "--risk", metavar="NAME", help="the risk spec the deployment runs with, when it was "
    "started with --risk (its limits' use is shown)")]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", help="write the report to FILE instead of printing it",
    callback=output_file("--out"), metavar="FILE")]
TextOpt = Annotated[str, typer.Option("--text", help="the note (up to 2,000 characters)")]


def _day(value: str | None) -> date | None:
    """``--at``: a calendar date, YYYY-MM-DD."""
    if value is None:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise usage("--at", f"--at {value}: not a date", "give a UTC day as YYYY-MM-DD, "
                    "e.g. --at 2025-12-07") from None


AtOpt = Annotated[str | None, typer.Option(
    "--at", metavar="YYYY-MM-DD", help="a day in the period (default: the day of the "
    "deployment's last bar, else today)")]


def _attempt(action: Callable[[], T], as_json: bool) -> T:
    """``action()``, its spec and store refusals rendered as diagnostics (exit 1 or 2)."""
    from ..api import SpecError
    from ..live.store_schema import StoreError

    try:
        return action()
    except (SpecError, StoreError) as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None


@report_app.command("live")
@guarded
def live_cmd(spec: SpecArg, mode: ModeOpt, account: AccountOpt = "default",
             period: PeriodOpt = "daily", at: AtOpt = None, fmt: FormatOpt = "md",
             out: OutOpt = None, risk: RiskOpt = None, as_json: JsonOpt = False) -> None:
    """A deployment's status report of a day or a week, from its state (read-only).

    Equity and PnL, trades, risk-limit use, alerts and incidents, operator notes."""
    from ..live.report import (
        deployment_of,
        render_markdown,
        report_deployment,
        write_live_report,
    )

    day = _day(at)
    if fmt == "html" and out is None:
        raise usage("--format", "--format html writes a page: give --out FILE",
                    "e.g. --format html --out report.html (Markdown prints to stdout)")
    where, plan = _attempt(lambda: deployment_of(spec, mode, account, risk), as_json)
    _check_out(out, spec, where.store_path)
    report = _attempt(lambda: report_deployment(where, plan, period=period,  # type: ignore[arg-type]
                                                at=day, now_s=time.time()), as_json)
    if out is not None:
        write_live_report(report, out, "html" if fmt == "html" else "md")
    if as_json:
        write_json(report.model_dump(mode="json"))
    elif out is not None:
        typer.echo(f"live report of {report.spec} ({report.period} {report.label}) written "
                   f"to {out}")
    else:
        typer.echo(render_markdown(report), nl=False)
    raise typer.Exit(EXIT_OK)


def _check_out(out: Path | None, spec: str, store: Path) -> None:
    """U005 when ``--out`` would overwrite the spec, the deployment's store or its notes."""
    from ..live.notes import notes_path
    from ..outputs import check_distinct

    check_distinct([("--out", out)], [Path(spec), store, notes_path(store)])


@guarded
def note_cmd(spec: SpecArg, mode: ModeOpt, text: TextOpt, account: AccountOpt = "default",
             as_json: JsonOpt = False) -> None:
    """Add an operator note to a deployment, for its status reports.

    Needs no lock: a running deployment is not disturbed."""
    from ..live.notes import Note, append_note, check_text, notes_path
    from ..live.report import deployment_of
    from ..live.store import LiveStore
    from ..promote.flow import author_name

    try:
        checked = check_text(text)
    except ValueError as exc:
        raise usage("--text", f"--text: {exc}", "write a line or a few, in plain text") \
            from None
    where, _ = _attempt(lambda: deployment_of(spec, mode, account), as_json)
    _attempt(lambda: LiveStore.open(where.store_path, readonly=True).close(), as_json)
    note = Note(at=int(time.time() * 1000), by=author_name(None), text=checked)
    append_note(notes_path(where.store_path), note)  # an OSError is U006 (``guarded``)
    _print_note(note, where.spec_name, mode, account, as_json)
    raise typer.Exit(EXIT_OK)


def _print_note(note: Note, spec: str, mode: str, account: str, as_json: bool) -> None:
    from ..live.report import iso_ms

    if as_json:
        write_json({"spec": spec, "mode": mode, "account": account, "at": iso_ms(note.at),
                    "by": note.by, "text": note.text})
    else:
        typer.echo(f"note added to {spec} ({mode}, {account}) at {iso_ms(note.at)} by "
                   f"{note.by}")


__all__ = ["live_cmd", "note_cmd", "report_app"]
