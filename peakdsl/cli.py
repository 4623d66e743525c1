"""The `peak` command line: parses arguments, calls ``peakdsl.api``, prints, exits.

The only module that prints. Exit codes: 0 ok, 1 spec or data errors, 2 usage or internal
error. Every bad input is a coded diagnostic: click's own parse errors (an unknown option, a
value of the wrong type, a missing argument) are turned into U005/U008 by ``PeakGroup``,
options validate themselves while parsed (``peakdsl.cli_options``), and an exception a
command lets through becomes the diagnostic ``peakdsl.failures`` has for it (an unwritable
path, a damaged registry) or, only for peak's own bugs, I001. Tracebacks never reach the user.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from .cli_options import CapitalOpt, DataOpt, FeeOpt, FromOpt, ToOpt, check_period
from .lang.diagnostics import Diagnostic, diag, has_errors
from .lang.project import UsageError
from .lang.render import render_json, render_text
from .lang.source import SourceFile
from .registry.cli import runs_app

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])


class Format(str, Enum):
    text = "text"
    json = "json"


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
        try:
            code = run(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NO_ARGS_IS_HELP as exc:
            sys.exit(getattr(exc, "exit_code", EXIT_USAGE))  # the help is already printed
        except CLICK.UsageError as exc:
            emit([click_diagnostic(exc)])
            sys.exit(EXIT_USAGE)
        except UsageError as exc:
            emit([exc.diagnostic])
            sys.exit(EXIT_USAGE)
        except CLICK.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.stderr.write("Aborted!\n")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


app = typer.Typer(cls=PeakGroup, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="peak — spec-driven research and trading for crypto quant teams.")


def internal_error(exc: BaseException) -> Diagnostic:
    return diag("I001", f"internal error: {type(exc).__name__}: {exc}", "<peak>",
                help="this is a bug in peak, not in your spec; please report it")


def _format_of(kwargs: dict[str, Any]) -> Format:
    """Diagnostics as JSON when the command was asked for JSON (``--format json``, ``--json``)."""
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
        from .failures import diagnostic_for

        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            emit([diagnostic_for(exc) or internal_error(exc)], _format_of(kwargs))
            raise typer.Exit(EXIT_USAGE) from None
    return wrapper  # type: ignore[return-value]


def exit_code(diags: Sequence[Diagnostic]) -> int:
    """2 when every error is a usage error (U…: a date outside the data, an oversized grid),
    1 when any is a spec, param or data error."""
    errors = [d for d in diags if d.is_error]
    return EXIT_USAGE if errors and all(d.code.startswith("U") for d in errors) \
        else EXIT_SPEC


def _source_lookup(path: str) -> SourceFile | None:
    """A snippet's text: regular text files only (a device such as ``/dev/zero`` never ends)."""
    from .lang.parser import MAX_FILE_BYTES

    file = Path(path)
    if file.suffix.lower() in (".parquet", ".pq"):  # binary data files: no snippet
        return None
    try:
        if not file.is_file() or file.stat().st_size > MAX_FILE_BYTES:
            return None
        return SourceFile.of(path, file.read_text("utf-8", errors="replace"))
    except OSError:
        return None


def emit(diags: Sequence[Diagnostic], fmt: Format = Format.text, stream: Any = None) -> None:
    """Print diagnostics once, at the edge."""
    out = stream or (sys.stdout if fmt is Format.json else sys.stderr)
    if fmt is Format.json:
        out.write(render_json(diags))
    else:
        out.write(render_text(diags, _source_lookup, color=out.isatty()))


def _version(value: bool) -> None:
    if value:
        from . import __version__

        sys.stdout.write(f"peak {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="print the version and exit")] = False
         ) -> None:
    """peak — spec-driven research and trading for crypto quant teams."""


PathsArg = Annotated[list[str] | None,
                     typer.Argument(help="spec files or folders [default: specs/]")]
FormatOpt = Annotated[Format, typer.Option("--format", help="diagnostics as text or json")]
FmtCheckOpt = Annotated[bool, typer.Option(
    "--check", help="only report files that would change (exit 1 if any)")]


@app.command("check")
@guarded
def check_cmd(paths: PathsArg = None, format: FormatOpt = Format.text) -> None:
    """Parse and check specs: names, types, units, look-ahead, references, limits."""
    from . import api

    result = api.check(paths or ["specs"])
    emit(result.diagnostics, format)
    raise typer.Exit(EXIT_SPEC if has_errors(result.diagnostics) else EXIT_OK)


@app.command("fmt")
@guarded
def fmt_cmd(paths: PathsArg = None, check: FmtCheckOpt = False,
            format: FormatOpt = Format.text) -> None:
    """Format specs canonically (idempotent; comments kept)."""
    from .api import regular_paths
    from .lang.fmt import format_paths

    regular_paths(paths or ["specs"])
    results = format_paths(paths or ["specs"], check)
    diags = [d for r in results for d in r.diagnostics]
    if diags:
        emit(diags, format)
        raise typer.Exit(EXIT_SPEC)
    changed = [r.path for r in results if r.changed]
    verb = "would reformat" if check else "reformatted"
    for path in changed:
        sys.stderr.write(f"{verb} {path}\n")
    sys.stderr.write(f"{len(changed)} of {len(results)} file(s) {verb}\n" if changed
                     else f"{len(results)} file(s) already formatted\n")
    raise typer.Exit(EXIT_SPEC if check and changed else EXIT_OK)


class GraphFormat(str, Enum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"


def _root_folder(value: Path | None) -> Path | None:
    from .api import project_folder

    return project_folder(value)


RootOpt = Annotated[Path | None,
                    typer.Option("--root", help="project folder [default: nearest with specs/]",
                                 callback=_root_folder)]
CompileCheckOpt = Annotated[bool, typer.Option(
    "--check", help="only report whether compiled/ is stale (exit 1 if so)")]


@app.command("compile")
@guarded
def compile_cmd(check: CompileCheckOpt = False, root: RootOpt = None,
                format: FormatOpt = Format.text) -> None:
    """Compile specs/ into canonical, content-hashed artifacts in compiled/."""
    from . import api

    result = api.compile(root, check_only=check)
    if not result.ok:
        emit(result.diagnostics, format)
        raise typer.Exit(EXIT_SPEC)
    if result.diagnostics:
        emit(result.diagnostics, format)
    out = display_dir(result.out_dir)
    if check and result.changed:
        sys.stderr.write(f"{out} is stale; run `peak compile`:\n")
        sys.stderr.write("".join(f"  {rel}\n" for rel in result.changed))
        raise typer.Exit(EXIT_SPEC)
    verb = "up to date" if not result.changed else (
        f"{len(result.changed)} file(s) written" if not check else "")
    sys.stdout.write(f"{out}: {len(result.artifacts)} artifacts, {verb}\n")
    raise typer.Exit(EXIT_OK)


def display_dir(path: Path) -> str:
    from .lang.project import display_path

    return display_path(path) + "/"


@app.command("graph")
@guarded
def graph_cmd(spec: Annotated[str, typer.Argument(help="a strategy spec file")],
              format: Annotated[GraphFormat, typer.Option("--format")] = GraphFormat.text) -> None:
    """Show a strategy's signal graph with lookbacks and warm-up."""
    from . import api
    from .compile.models import StrategyArtifact
    from .compile.render_graph import RENDERERS

    try:
        artifact = api.compile_spec(spec)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    if not isinstance(artifact, StrategyArtifact):
        raise UsageError(diag("U003", f"`peak graph` needs a strategy; {spec} is a "
                              f"{getattr(artifact, 'kind', '?')}", spec))
    sys.stdout.write(RENDERERS[format.value](artifact.config))


SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="override a param: name=value (repeatable)", metavar="NAME=VALUE")]


@app.command("backtest")
@guarded
def backtest_cmd(
    spec: Annotated[str, typer.Argument(help="a strategy spec file")],
    data: DataOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    set_: SetOpt = None,
    fee_bps: FeeOpt = None,
    capital: CapitalOpt = 10_000.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON summary")] = False,
    trades: Annotated[Path | None, typer.Option("--trades", help="write trades CSV")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="write FILE.html or FILE.md")
                      ] = None,
    record: Annotated[bool, typer.Option("--record/--no-record",
                                         help="record the run in .peak/registry")] = True,
) -> None:
    """Backtest a strategy on its market's data (cache, --data, or the synthetic demo)."""
    from functools import partial

    from . import api

    _check_outputs(spec, data, trades, report)
    check_period(start, end)
    try:
        run = api.backtest(spec, data=data, start=start, end=end, overrides=set_ or (),
                           fee_bps=fee_bps, capital=capital, record=record,
                           outputs=partial(_write_outputs, trades=trades, report=report))
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    if run.result.candles.warnings:  # --data: the import's D008/D009 (stderr, also with --json)
        emit(run.result.candles.warnings, Format.text)
    if as_json:
        from .backtest import backtest_doc

        sys.stdout.write(backtest_doc(run.result, run.run_id).model_dump_json(indent=2) + "\n")
    else:
        from .backtest_view import print_summary

        print_summary(run.result, run.run_id, trades, report)
    raise typer.Exit(EXIT_OK)


REPORT_SUFFIXES = (".html", ".htm", ".md")  # as peakdsl.report.REPORT_SUFFIXES (import-light)


def _check_outputs(spec: str, data: Path | None, trades: Path | None,
                   report: Path | None) -> None:
    """Refuse outputs that cannot be written before the backtest runs (nothing is recorded)."""
    from .outputs import check_distinct, check_output

    if report is not None and report.suffix.lower() not in REPORT_SUFFIXES:
        raise UsageError(diag("U005", f"--report {report}: use a .html or .md file",
                              "--report"))
    inputs = [Path(spec), *([data] if data is not None else [])]
    check_distinct([("--trades", trades), ("--report", report)], inputs)
    for option, path in (("--trades", trades), ("--report", report)):
        if path is not None:
            check_output(path, option)


def _write_outputs(result: Any, trades: Path | None, report: Path | None) -> None:
    """Write the trades CSV and the report; called by the API before the run is recorded."""
    from .outputs import write_output

    if trades is not None:
        frame = result.trades_frame()
        write_output(trades, frame.to_csv(index=False, float_format="%.10g").encode(),
                     "--trades")
    if report is not None:
        from .report import write_report

        write_report(result, report)


app.add_typer(runs_app, name="runs")


from .data.cli import data_app  # noqa: E402  (light: typer only; see peakdsl/data/cli.py)

app.add_typer(data_app, name="data")

from .research.wf_cli import walkforward_cmd  # noqa: E402  (light: typer only)

app.command("walkforward")(walkforward_cmd)

from .research.cli import sweep_cmd  # noqa: E402  (light: typer only)

app.command("sweep")(sweep_cmd)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    app(args=list(argv) if argv is not None else None, prog_name="peak")


if __name__ == "__main__":
    main()
