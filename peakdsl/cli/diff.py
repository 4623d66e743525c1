"""`peak diff A [B]`: what changed between two versions of the specs, classified for review.

A thin wrapper over ``peakdsl.api.diff``: it renders the result as text, Markdown (a
pull-request comment) or JSON (``docs/schemas/diff.schema.json``), and turns it into an exit
code a CI job can gate on — 0 when nothing semantic changed, 1 when something did, or with
``--fail-on LEVEL`` 1 only when a change at that level or above exists. Specs that do not
check exit 1 with their diagnostics; arguments that name nothing usable exit 2.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from ..lang.project import UsageError
from ..lang.source import SourceFile
from .options import JsonOpt, RootOpt, json_flag
from .root import EXIT_OK, EXIT_SPEC, EXIT_USAGE, Format, emit, exit_code, guarded, spec_source

if TYPE_CHECKING:
    from ..review.model import DiffResult


class DiffFormat(str, Enum):
    """How `peak diff` prints: for people, for a pull request, for tools."""

    text = "text"
    markdown = "markdown"
    json = "json"


class FailOn(str, Enum):
    """The least severe change level that fails the command (exit 1)."""

    critical = "critical"
    review = "review"
    info = "info"


def diff_format(value: DiffFormat) -> DiffFormat:
    """``--format json`` is noted eagerly, so a later option's error is JSON too."""
    json_flag(value is DiffFormat.json)
    return value


OldArg = Annotated[str, typer.Argument(
    metavar="A", help="the old version: a file, a folder, a git revision, or a range v1..v2")]
NewArg = Annotated[str | None, typer.Argument(
    metavar="B", help="the new version: a file or folder (when A is one), or a revision "
    "(default: the work tree)", show_default=False)]
DiffFormatOpt = Annotated[DiffFormat, typer.Option(
    "--format", help="text, markdown (a pull-request comment) or json",
    callback=diff_format, is_eager=True)]
FailOnOpt = Annotated[FailOn | None, typer.Option(
    "--fail-on", help="exit 1 only when a change at this level or above exists (default: "
    "any semantic change)", show_default=False)]
ImpactOpt = Annotated[bool, typer.Option(
    "--impact", help="backtest both versions of every changed strategy and portfolio on the "
    "same data: metric deltas, trades added and removed")]


@guarded
def diff_cmd(a: OldArg, b: NewArg = None, format: DiffFormatOpt = DiffFormat.text,
             as_json: JsonOpt = False, fail_on: FailOnOpt = None, impact: ImpactOpt = False,
             root: RootOpt = None) -> None:
    """Compare two versions of the specs by meaning: every change classified and levelled."""
    from .. import api
    from ..review.render import RENDERERS

    chosen = DiffFormat.json if as_json else format
    shown = Format.json if chosen is DiffFormat.json else Format.text
    try:
        result = api.diff(a, b, root=root, impact=impact)
    except UsageError as exc:
        emit([exc.diagnostic], shown)
        raise typer.Exit(EXIT_USAGE) from None
    except api.SpecError as exc:
        texts = getattr(exc, "texts", {})
        emit(exc.diagnostics, shown, sources=lambda p: _source(p, texts))
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    sys.stdout.write(RENDERERS[chosen.value](result))
    raise typer.Exit(_exit(result, fail_on))


def _source(path: str, texts: dict[str, str]) -> SourceFile | None:
    """A snippet's file: a revision's text kept by the diff, else the file on disk."""
    return SourceFile.of(path, texts[path]) if path in texts else spec_source(path)


def _exit(result: DiffResult, fail_on: FailOn | None) -> int:
    if fail_on is None:
        return EXIT_SPEC if result.semantic else EXIT_OK
    return EXIT_SPEC if result.fails(fail_on.value) else EXIT_OK
