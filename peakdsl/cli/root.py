"""The root of `peak`: the Typer app, error rendering and exit codes every command shares.

Exit codes: 0 ok, 1 spec or data errors, 2 usage or internal error. Every bad input leaves as
a coded diagnostic: click's own parse errors (an unknown option, a value of the wrong type, a
missing argument) become U005/U008 in ``PeakGroup``; options validate themselves while parsed
(``peakdsl.cli.options``) and their ``UsageError`` is rendered here too; an exception a command
lets through becomes the diagnostic ``peakdsl.failures`` has for it (an unwritable path, a
damaged registry) or, only for peak's own bugs, I001. Tracebacks never reach the user.

Diagnostics go to stderr as text, or to stdout as one JSON document when the command line asked
for machine output (``--json``, or its older spelling ``--format json``) — also for errors
found while the command line is still being parsed: the ``--json``/``--format`` options are
eager and note the wish in ``JSON_WANTED`` before any other option is checked.

This module imports typer and peak's diagnostics only; the command modules import it, it never
imports them (``peakdsl.cli`` mounts them on ``app``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import typer
from typer.core import TyperGroup

from ..lang.diagnostics import Diagnostic, diag
from ..lang.project import UsageError
from ..lang.render import render_json, render_text
from ..lang.source import SourceFile

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
F = TypeVar("F", bound=Callable[..., Any])
SourceLookup = Callable[[str], SourceFile | None]


class Format(str, Enum):
    """How a command prints: text for people, json for tools (``--json``)."""

    text = "text"
    json = "json"


# Set by the eager ``--json``/``--format`` callbacks, read when a later option fails: its
# diagnostic then goes out as JSON like the command's own. Reset at the start of every run.
JSON_WANTED: ContextVar[bool] = ContextVar("peak_json_wanted", default=False)

# The click exceptions typer raises: recent typers vendor click (typer._click), older ones
# use click itself; typer.BadParameter is public in both and names the module.
CLICK: Any = sys.modules[typer.BadParameter.__module__]
# click's parse errors, most specific first: a missing argument is a BadParameter too.
CLICK_CODES: tuple[tuple[type[Exception], str], ...] = (
    (CLICK.MissingParameter, "U008"), (CLICK.BadParameter, "U005"), (CLICK.UsageError, "U008"))


class _NeverRaised(Exception):
    """Stands in for click's NoArgsIsHelpError where click predates it (before 8.2)."""


NO_ARGS_IS_HELP: type[Exception] = getattr(CLICK, "NoArgsIsHelpError", _NeverRaised)


def click_diagnostic(exc: Exception) -> Diagnostic:
    """A click parse error as U005 (a value of the wrong type or not in the list) or U008."""
    code = next(code for kind, code in CLICK_CODES if isinstance(exc, kind))
    opts = getattr(getattr(exc, "param", None), "opts", None) or [
        getattr(exc, "option_name", None) or ""]
    where = opts[0] if opts[0].startswith("-") else "<peak>"
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "peak"
    return diag(code, exc.format_message(), where,  # type: ignore[attr-defined]
                help=f"see `{command} --help`")


def wanted_format() -> Format:
    """The format the command line asked for so far (JSON once ``--json`` was parsed)."""
    return Format.json if JSON_WANTED.get() else Format.text


def _fail(diagnostic: Diagnostic) -> None:
    emit([diagnostic], wanted_format())
    sys.exit(EXIT_USAGE)


class PeakGroup(TyperGroup):
    """The root command: every error it sees leaves as a coded diagnostic and exit code 2.

    click would print its own boxed message without a code for a parse error, and an option
    callback's ``UsageError`` would escape as a traceback; both are rendered here, once.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        run = super().main
        if not standalone_mode:
            return run(args, prog_name, complete_var, False, windows_expand_args, **extra)
        token = JSON_WANTED.set(False)
        try:
            code = run(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NO_ARGS_IS_HELP as exc:
            sys.exit(getattr(exc, "exit_code", EXIT_USAGE))  # the help is already printed
        except CLICK.UsageError as exc:
            _fail(click_diagnostic(exc))
        except UsageError as exc:
            _fail(exc.diagnostic)
        except CLICK.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.stderr.write("Aborted!\n")
            sys.exit(1)
        finally:
            JSON_WANTED.reset(token)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


app = typer.Typer(cls=PeakGroup, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="peak — spec-driven research and trading for crypto quant teams.")


def internal_error(exc: BaseException) -> Diagnostic:
    """peak's own bug: said so, with the exception, never with a traceback."""
    return diag("I001", f"internal error: {type(exc).__name__}: {exc}", "<peak>",
                help="this is a bug in peak, not in your spec; please report it")


def format_of(kwargs: dict[str, Any]) -> Format:
    """The command's output format from its arguments (``--json`` or ``--format json``)."""
    if kwargs.get("as_json"):
        return Format.json
    fmt = kwargs.get("format", Format.text)
    return fmt if isinstance(fmt, Format) else Format.text


def guarded(func: F) -> F:
    """Turn what a command raises into one diagnostic and exit code 2 (no traceback).

    Usage errors carry their diagnostic; an unwritable path or a damaged registry gets the
    one ``peakdsl.failures`` knows; anything else is peak's bug (I001).
    """
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..failures import diagnostic_for

        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            emit([diagnostic_for(exc) or internal_error(exc)], format_of(kwargs))
            raise typer.Exit(EXIT_USAGE) from None
    return wrapper  # type: ignore[return-value]


def exit_code(diags: Sequence[Diagnostic]) -> int:
    """2 when every error is a usage error (U…: a date outside the data, an oversized grid),
    1 when any is a spec, param or data error."""
    errors = [d for d in diags if d.is_error]
    return EXIT_USAGE if errors and all(d.code.startswith("U") for d in errors) \
        else EXIT_SPEC


BINARY_SUFFIXES = frozenset({".parquet", ".pq", ".sqlite"})  # data files: never a snippet


def spec_source(path: str) -> SourceFile | None:
    """A snippet's text: regular text files only (a device such as ``/dev/zero`` never ends,
    a Parquet file or the run registry is not text)."""
    from ..lang.parser import MAX_FILE_BYTES

    file = Path(path)
    if file.suffix.lower() in BINARY_SUFFIXES:
        return None
    try:
        if not file.is_file() or file.stat().st_size > MAX_FILE_BYTES:
            return None
        return SourceFile.of(path, file.read_text("utf-8", errors="replace"))
    except OSError:
        return None


def emit(diags: Sequence[Diagnostic], fmt: Format = Format.text, stream: TextIO | None = None,
         sources: SourceLookup = spec_source) -> None:
    """Print diagnostics once, at the edge: text on stderr, or JSON on stdout."""
    out = stream or (sys.stdout if fmt is Format.json else sys.stderr)
    if fmt is Format.json:
        out.write(render_json(diags))
    else:
        out.write(render_text(diags, sources, color=out.isatty()))


def json_document(diags: Sequence[Diagnostic], **fields: Any) -> str:
    """One JSON document: the diagnostics (as ``render_json`` writes them) plus ``fields``.

    With no fields it is byte for byte ``render_json(diags)``, so a command that adds what it
    did to its JSON keeps the diagnostics where tools already read them.
    """
    if not fields:
        return render_json(diags)
    doc = {**json.loads(render_json(diags)), **fields}
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(doc: Any, *, sort_keys: bool = False, ensure_ascii: bool = True) -> None:
    """A JSON document on stdout: indented, strict (no NaN), newline-terminated."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=sort_keys, ensure_ascii=ensure_ascii,
                                allow_nan=False) + "\n")


def print_provenance(console: Any, artifact_sha256: str, engine: str, run_id: str | None,
                     files: Sequence[tuple[str, Path | None]] = ()) -> None:
    """The last lines of a run's summary: the artifact's hash, the engine, the run id a
    reviewer looks up, and the files written."""
    console.print(f"artifact sha256 {artifact_sha256[:16]}…  engine {engine}")
    if run_id:
        console.print(f"run id: [bold]{run_id}[/]  (peak runs show {run_id})")
    for label, path in files:
        if path is not None:
            console.print(f"{label}: {path}")


class ProgressBar:
    """A rich progress bar on stderr: ``label``, the bar, ``done/total`` (then ``noun``, if
    given), the rate in ``rate`` units per second (if given), elapsed time and ETA.

    Used as a context manager, it yields the ``(done, total)`` callback the library calls (a
    sweep after each block, a walk-forward after each window, a robustness study after each
    step). It appears with the first update, so that errors found before the work starts
    (spec, data, options) print alone. On a terminal it redraws in place; elsewhere (a pipe,
    a CI log) rich prints its last state once, when it stops.
    """

    def __init__(self, console: Any, label: str, total: int | None = None, done: int = 0,
                 noun: str | None = None, rate: str | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        extra = [*([TextColumn(noun)] if noun else []), *([_rate_column(rate)] if rate else [])]
        self.progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                                 *extra, TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=console,
                                 transient=False)
        self.task = self.progress.add_task(label, total=total, completed=done)
        self.started = False

    def __enter__(self) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            if not self.started:
                self.progress.start()
                self.started = True
            self.progress.update(self.task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.progress.stop()


def _rate_column(unit: str) -> Any:
    """A progress column with ``N unit`` per second (``— unit`` before the first update)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"— {unit}" if speed is None else f"{speed:,.1f} {unit}",
                        style="progress.data.speed")

    return RateColumn()


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        sys.stdout.write(f"peak {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="print the version and exit")] = False
         ) -> None:
    """peak — spec-driven research and trading for crypto quant teams."""
