"""`peak init [DIR]`: a new project, ready for `peak check`, `compile` and `backtest`.

A thin wrapper over ``peakdsl.project_init.init_project``: it prints the files written and
the commands to run next, or the U014/U007 diagnostics of a refusal (exit 2, nothing
written). Light, like `peak check`: no pandas, numpy or rich.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .options import JsonOpt
from .root import EXIT_OK, Format, emit, exit_code, guarded, json_document

if TYPE_CHECKING:
    from ..project_init import InitResult

DirArg = Annotated[Path, typer.Argument(
    metavar="DIR", help="the project folder, made if missing [default: .]",
    show_default=False)]


@guarded
def init_cmd(folder: DirArg = Path("."), as_json: JsonOpt = False) -> None:
    """Create a project: specs/ folders, an example strategy, a README and a .gitignore."""
    from ..project_init import init_project

    result = init_project(folder)
    fmt = Format.json if as_json else Format.text
    if not result.ok:
        emit(result.diagnostics, fmt)
        raise typer.Exit(exit_code(result.diagnostics))
    if fmt is Format.json:
        sys.stdout.write(json_document((), root=str(result.root),
                                       written=list(result.written)))
    else:
        sys.stdout.write(_summary(result, folder))
    raise typer.Exit(EXIT_OK)


def _summary(result: InitResult, given: Path) -> str:
    """The files written, then what to type next (``cd`` only when DIR is not here)."""
    from ..project_init import EXAMPLE_PATH

    where = given.as_posix()
    lines = [f"created a peak project in {where}/", *(f"  {p}" for p in result.written),
             "next:"]
    if result.root != Path.cwd():
        lines.append(f"  cd {shlex.quote(where)}")
    lines += ["  peak check", "  peak compile", f"  peak backtest {EXAMPLE_PATH}"]
    return "\n".join(lines) + "\n"
