"""The `peak` command line: one module per command group, mounted here on the root app.

``root`` holds the Typer app, error rendering and exit codes; ``options`` the options every
command shares (each validates itself); ``runs_common`` what the ``runs`` group's two modules
share. The command modules — ``init``, ``spec`` (check, fmt, compile, graph), ``explain``,
``backtest``, ``sweep``, ``walkforward``, ``robustness``, ``diff``, ``serve``, ``lsp``,
``data``, ``runs`` and ``runs_rerun``, ``promote``, ``live``, ``report``, ``drill`` — import
only those and the library, never each other or this package, so there is no import cycle and
each can be imported on its own. This module imports them and mounts their commands, in the order
``peak --help`` lists them (``init`` first: it is where a new user starts). It is the only
layer that prints: the library returns data.

Everything here is light at import time (typer and peak's diagnostics): ``peak check`` must
not pay for pandas, numpy, numba or ccxt (tests/test_cli_imports.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

from . import (
    backtest,
    data,
    diff,
    drill,
    explain,
    init,
    live,
    lsp,
    promote,
    report,
    robustness,
    runs,
    runs_common,
    runs_rerun,
    serve,
    spec,
    sweep,
    walkforward,
)
from .root import app

COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("init", init.init_cmd),
    ("check", spec.check_cmd),
    ("fmt", spec.fmt_cmd),
    ("compile", spec.compile_cmd),
    ("graph", spec.graph_cmd),
    ("explain", explain.explain_cmd),
    ("backtest", backtest.backtest_cmd),
    ("sweep", sweep.sweep_cmd),
    ("walkforward", walkforward.walkforward_cmd),
    ("robustness", robustness.robustness_cmd),
    ("diff", diff.diff_cmd),
    ("serve", serve.serve_cmd),
    ("lsp", lsp.lsp_cmd),
)
GROUPS: tuple[tuple[str, typer.Typer], ...] = (
    ("data", data.data_app),
    ("runs", runs_common.runs_app),
    ("promote", promote.promote_app),
    ("live", live.live_app),
    ("report", report.report_app),
    ("drill", drill.drill_app),
)

# the modules that add their commands to the runs group's app when imported
EXTENDING: tuple[object, ...] = (runs, runs_rerun)

for _name, _command in COMMANDS:
    app.command(_name)(_command)
for _name, _group in GROUPS:
    app.add_typer(_group, name=_name)
live.live_app.command("note")(report.note_cmd)  # `peak live note`: it lives with the reports


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``peak = "peakdsl.cli:main"``)."""
    app(args=list(argv) if argv is not None else None, prog_name="peak")


__all__ = ["COMMANDS", "GROUPS", "app", "main"]
