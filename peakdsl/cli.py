"""The `peak` command line: parses arguments, calls ``peakdsl.api``, prints, exits.

The only module that prints. Exit codes: 0 ok, 1 spec errors, 2 usage or internal error.
Tracebacks never reach the user: internal errors are reported as such (I001).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from .cli_options import CapitalOpt, DataOpt, FeeOpt, FromOpt, ToOpt
from .lang.diagnostics import Diagnostic, diag, has_errors
from .lang.project import UsageError
from .lang.render import render_json, render_text
from .lang.source import SourceFile
from .registry.cli import runs_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="peak — spec-driven research and trading for crypto quant teams.")

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])


class Format(str, Enum):
    text = "text"
    json = "json"


def guarded(func: F) -> F:
    """Turn usage errors and unexpected exceptions into diagnostics and exit code 2."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            emit([exc.diagnostic], kwargs.get("format", Format.text))
            raise typer.Exit(EXIT_USAGE) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            d = diag("I001", f"internal error: {type(exc).__name__}: {exc}", "<peak>",
                     help="this is a bug in peak, not in your spec; please report it")
            emit([d], kwargs.get("format", Format.text))
            raise typer.Exit(EXIT_USAGE) from None
    return wrapper  # type: ignore[return-value]


def _source_lookup(path: str) -> SourceFile | None:
    try:
        return SourceFile.of(path, Path(path).read_text("utf-8", errors="replace"))
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
    from .lang.fmt import format_paths

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


RootOpt = Annotated[Path | None,
                    typer.Option("--root", help="project folder [default: nearest with specs/]")]
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
        raise typer.Exit(EXIT_SPEC) from None
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
    from . import api

    if report is not None and report.suffix.lower() not in (".html", ".htm", ".md"):
        raise UsageError(diag("U005", f"--report {report}: use a .html or .md file",
                              "--report"))
    if fee_bps is not None and not 0 <= fee_bps <= 1000:
        raise UsageError(diag("U005", f"--fee-bps {fee_bps:g} is outside 0..1000", "--fee-bps"))
    try:
        run = api.backtest(spec, data=data, start=start, end=end, overrides=set_ or (),
                           fee_bps=fee_bps, capital=capital, record=record)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(EXIT_SPEC) from None
    _write_outputs(run, trades, report)
    if as_json:
        from .backtest import backtest_doc

        sys.stdout.write(backtest_doc(run.result, run.run_id).model_dump_json(indent=2) + "\n")
    else:
        from .backtest_view import print_summary

        print_summary(run.result, run.run_id, trades, report)
    raise typer.Exit(EXIT_OK)


def _write_outputs(run: Any, trades: Path | None, report: Path | None) -> None:
    from .atomic import write_atomic

    if trades is not None:
        frame = run.result.trades_frame()
        write_atomic(trades, frame.to_csv(index=False, float_format="%.10g").encode())
    if report is not None:
        from .report import write_report

        write_report(run.result, report)


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
