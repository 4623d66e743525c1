"""`peak check`, `peak fmt`, `peak compile`, `peak graph`: the commands on spec files.

They must stay light (tests/test_cli_imports.py): nothing here imports pandas, numpy, numba
or ccxt, at import time or when they run; the compiler is imported inside the commands.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..lang.diagnostics import diag, has_errors
from ..lang.project import UsageError
from .options import FormatOpt, JsonOpt, RootOpt, output_format
from .root import EXIT_OK, EXIT_SPEC, Format, emit, exit_code, guarded, json_document

if TYPE_CHECKING:
    from ..api import CompileResult
    from ..lang.fmt import FileFormat

PathsArg = Annotated[list[str] | None,
                     typer.Argument(help="spec files or folders [default: specs/]")]
FmtCheckOpt = Annotated[bool, typer.Option(
    "--check", help="only report files that would change (exit 1 if any)")]
CompileCheckOpt = Annotated[bool, typer.Option(
    "--check", help="only report whether compiled/ is stale (exit 1 if so)")]


class GraphFormat(str, Enum):
    """What `peak graph` draws: a text tree, Graphviz dot or Mermaid."""

    text = "text"
    dot = "dot"
    mermaid = "mermaid"


FixOpt = Annotated[bool, typer.Option(
    "--fix", help="apply every machine-applicable fix in place, then check again")]
DiffOpt = Annotated[bool, typer.Option(
    "--diff", help="show the fixes --fix would apply as a diff; write nothing "
    "(exit 1 if there are any)")]


@guarded
def check_cmd(paths: PathsArg = None, fix: FixOpt = False, diff: DiffOpt = False,
              as_json: JsonOpt = False, format: FormatOpt = Format.text) -> None:
    """Parse and check specs: names, types, units, look-ahead, references, limits."""
    from .. import api

    fmt = output_format(format, as_json)
    if diff:
        _show_fixes(paths or ["specs"], fmt)
    fixed = _apply_fixes(paths or ["specs"]) if fix else None
    result = api.check(paths or ["specs"])
    if fmt is Format.json and fixed is not None:
        sys.stdout.write(json_document(result.diagnostics, fixed=fixed))
    else:
        emit(result.diagnostics, fmt)
    raise typer.Exit(EXIT_SPEC if has_errors(result.diagnostics) else EXIT_OK)


def _apply_fixes(paths: list[str]) -> list[dict[str, object]]:
    """`--fix`: rewrite each file with its fixes; say what changed on stderr."""
    from ..api import regular_paths
    from ..lang.fixes import fix_paths

    regular_paths(paths)
    done = [r for r in fix_paths(paths, write=True) if r.changed]
    for r in done:
        sys.stderr.write(f"fixed {len(r.fixed)} problem(s) in {r.path}: "
                         + ", ".join(sorted({d.code for d in r.fixed})) + "\n")
    return [{"path": r.path, "fixes": len(r.fixed), "codes": [d.code for d in r.fixed]}
            for r in done]


def _show_fixes(paths: list[str], fmt: Format) -> None:
    """`--diff`: the fixes as a unified diff on stdout; nothing is written. Exit 1 when
    there is something to fix (as `peak fmt --check`), 0 when there is not."""
    from ..api import regular_paths
    from ..lang.diagnostics import diag as make_diag
    from ..lang.fixes import fix_paths

    if fmt is Format.json:
        raise UsageError(make_diag("U005", "--diff prints a diff, not JSON", "--diff",
                                   help="use --diff alone, or --fix --json"))
    regular_paths(paths)
    changed = [r for r in fix_paths(paths, write=False) if r.changed]
    sys.stdout.write("".join(r.diff() for r in changed))
    count = sum(len(r.fixed) for r in changed)
    sys.stderr.write(f"{count} fix(es) in {len(changed)} file(s) would be applied by "
                     "`peak check --fix`\n" if changed else "nothing to fix\n")
    raise typer.Exit(EXIT_SPEC if changed else EXIT_OK)


@guarded
def fmt_cmd(paths: PathsArg = None, check: FmtCheckOpt = False, as_json: JsonOpt = False,
            format: FormatOpt = Format.text) -> None:
    """Format specs canonically (idempotent; comments kept)."""
    from ..api import regular_paths
    from ..lang.fmt import format_paths

    fmt = output_format(format, as_json)
    regular_paths(paths or ["specs"])
    results = format_paths(paths or ["specs"], check)
    diags = [d for r in results for d in r.diagnostics]
    if diags:
        emit(diags, fmt)
        raise typer.Exit(EXIT_SPEC)
    changed = [r.path for r in results if r.changed]
    _report_formatted(results, changed, check)
    if fmt is Format.json:
        sys.stdout.write(json_document(diags, files=len(results), changed=changed,
                                       check=check))
    raise typer.Exit(EXIT_SPEC if check and changed else EXIT_OK)


def _report_formatted(results: list[FileFormat], changed: list[str], check: bool) -> None:
    """What fmt did, for people, on stderr (also with --json: stdout holds the document)."""
    verb = "would reformat" if check else "reformatted"
    for path in changed:
        sys.stderr.write(f"{verb} {path}\n")
    sys.stderr.write(f"{len(changed)} of {len(results)} file(s) {verb}\n" if changed
                     else f"{len(results)} file(s) already formatted\n")


@guarded
def compile_cmd(check: CompileCheckOpt = False, root: RootOpt = None,
                as_json: JsonOpt = False, format: FormatOpt = Format.text) -> None:
    """Compile specs/ into canonical, content-hashed artifacts in compiled/."""
    from .. import api

    fmt = output_format(format, as_json)
    result = api.compile(root, check_only=check)
    if not result.ok:
        emit(result.diagnostics, fmt)
        raise typer.Exit(EXIT_SPEC)
    if result.diagnostics and fmt is Format.text:
        emit(result.diagnostics, fmt)
    stale = check and bool(result.changed)
    if stale:
        sys.stderr.write(f"{display_dir(result.out_dir)} is stale; run `peak compile`:\n")
        sys.stderr.write("".join(f"  {rel}\n" for rel in result.changed))
    if fmt is Format.json:
        sys.stdout.write(_compile_json(result, check, stale))
    elif not stale:
        sys.stdout.write(_compile_line(result))
    raise typer.Exit(EXIT_SPEC if stale else EXIT_OK)


def _compile_json(result: CompileResult, check: bool, stale: bool) -> str:
    """The compile as one document: diagnostics, where, how many artifacts, what changed."""
    return json_document(result.diagnostics, out_dir=display_dir(result.out_dir),
                         artifacts=len(result.artifacts), changed=list(result.changed),
                         check=check, stale=stale)


def _compile_line(result: CompileResult) -> str:
    """``compiled/: 12 artifacts, up to date`` (or how many files were written)."""
    verb = f"{len(result.changed)} file(s) written" if result.changed else "up to date"
    return f"{display_dir(result.out_dir)}: {len(result.artifacts)} artifacts, {verb}\n"


def display_dir(path: Path) -> str:
    """A folder as diagnostics name it, with a trailing slash."""
    from ..lang.project import display_path

    return display_path(path) + "/"


@guarded
def graph_cmd(spec: Annotated[str, typer.Argument(help="a strategy spec file")],
              format: Annotated[GraphFormat, typer.Option(
                  "--format", help="text, dot (Graphviz) or mermaid")] = GraphFormat.text
              ) -> None:
    """Show a strategy's signal graph with lookbacks and warm-up."""
    from .. import api
    from ..compile.models import StrategyArtifact
    from ..compile.render_graph import RENDERERS

    try:
        artifact = api.compile_spec(spec)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    if not isinstance(artifact, StrategyArtifact):
        raise UsageError(diag("U003", f"`peak graph` needs a strategy; {spec} is a "
                              f"{getattr(artifact, 'kind', '?')}", spec))
    sys.stdout.write(RENDERERS[format.value](artifact.config))
