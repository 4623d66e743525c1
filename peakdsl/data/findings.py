"""Findings of an import worded for people: one summary for many gaps, the columns a file
lacks, rows out of order.

A normal import of real candles used to print one diagnostic per gap — some 140 lines for the
28 outages of six years of Binance BTC/USDT — before the line that said it worked. The summary
says what matters (how many, the largest, the first few); ``peak data import --verbose`` lists
each gap at its line, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..lang.diagnostics import Diagnostic, diag
from .candles import format_time
from .quality import Gap

FIRST = 3  # gaps named in the summary


def gap_summary(gaps: Sequence[Gap], details: Sequence[Diagnostic], shown: str) -> Diagnostic:
    """One D009 for all of ``gaps`` (``details``: one diagnostic each, in order), placed at the
    largest gap's line: the count, the missing bars, the largest, the first few."""
    if len(gaps) == 1:
        return details[0]
    largest = max(range(len(gaps)), key=lambda i: gaps[i].missing)
    missing = sum(g.missing for g in gaps)
    first = ", ".join(f"{g.missing:,}{' missing' * (i == 0)} after {format_time(g.prev_ns)}"
                      for i, g in enumerate(gaps[:FIRST]))
    return diag("D009", f"{len(gaps):,} gaps, {missing:,} missing bars; the largest: "
                f"{gaps[largest].describe()}", shown, details[largest].span,
                help=f"the first: {first}{', …' if len(gaps) > FIRST else ''} "
                     "(`--verbose` lists each at its line); gaps are kept, not filled")


def out_of_order(times: npt.NDArray[np.int64]) -> int:
    """How many rows are earlier than the row before them (0: the file is sorted)."""
    return int(np.count_nonzero(times[1:] < times[:-1]))


DERIVED = {
    ("volume",): "no volume column: the volume is unknown (kept as NaN, not invented as 0)",
    ("open", "high", "low"): "close only: open, high and low are set to the close, so every "
                             "bar is flat",
    ("open", "high", "low", "volume"): "close only: open, high and low are set to the close, "
                                       "so every bar is flat; the volume is unknown (NaN)",
}


def derived_warning(derived: tuple[str, ...], shown: str) -> Diagnostic:
    """D021: what a file without volume, or with the close only, becomes, and what follows."""
    consequences = ["strategies that read `volume` stop with D022"] if "volume" in derived \
        else []
    if "open" in derived:
        consequences.append("stops and targets see no range within a bar")
    return diag("D021", DERIVED[derived], shown,
                help="; ".join(consequences) + " (docs/data.md, 'Files without volume or "
                "with the close only')")
