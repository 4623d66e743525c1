"""`peak explain CODE`: print a diagnostic code's entry from docs/diagnostics.md.

Light like `peak check` (typer and peak's diagnostics only): a porter reads the entry for
the code `peak check` just printed, then fixes the spec. The text is the page's, for people;
a tool reads the same entry as data from ``peakdsl.lang.explain.explain``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..lang.diagnostics import CODES, diag, did_you_mean
from ..lang.project import UsageError
from .root import EXIT_OK, guarded

CodeArg = Annotated[str, typer.Argument(help="a diagnostic code, e.g. P009 or N018")]


@guarded
def explain_cmd(code: CodeArg) -> None:
    """Explain a diagnostic code: what it means, why, an example and the fix."""
    from ..lang.explain import explain, normalise

    entry = explain(code)
    if entry is None:
        wanted = normalise(code)
        raise UsageError(diag("U005", f"unknown diagnostic code `{code}`", "<peak>",
                              help=did_you_mean(wanted, CODES)
                              or "codes are a letter and three digits, e.g. P001; "
                              "`peak check` prints them"))
    sys.stdout.write(f"{entry.code} — {entry.title}\n\n{entry.text}\n")
    raise typer.Exit(EXIT_OK)
