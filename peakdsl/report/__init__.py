"""Backtest reports: a self-contained HTML page and a Markdown summary.

``write_report(result, path)`` picks the format from the file suffix (``.html``/``.htm`` or
``.md``) and writes atomically; a path the OS refuses is a ``UsageError`` on ``--report``
(U006/U007), never an internal error. See docs/reports.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..outputs import write_output
from .html import render_html
from .markdown import render_markdown

if TYPE_CHECKING:
    from ..backtest import BacktestResult
    from ..compile.models import Graph

__all__ = ["REPORT_SUFFIXES", "render_html", "render_markdown", "write_report"]

REPORT_SUFFIXES = (".html", ".htm", ".md")


def write_report(result: BacktestResult, path: Path, *, graph: Graph | None = None,
                 reproduce: str | None = None) -> None:
    """Write the HTML report (``.html``/``.htm``) or the Markdown summary (``.md``).

    ``graph`` (the run's compiled graph, ``artifact.config.graph``) gives the HTML report its
    indicator panes; ``reproduce`` (``peakdsl.repro.command_line``) is shown in both."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        text = render_html(result, graph=graph, reproduce=reproduce)
    elif suffix == ".md":
        text = render_markdown(result, reproduce=reproduce)
    else:
        raise ValueError(f"cannot tell the report format of {str(path)!r}: "
                         f"use a .html, .htm or .md file name (got {suffix or 'no suffix'!r})")
    write_output(path, text.encode("utf-8"), "--report")
