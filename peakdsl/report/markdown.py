"""A GitHub-flavoured Markdown summary of one backtest, sized for a pull-request comment.

Metrics, data source, hashes, the run against buy & hold, holding times, settings and params,
the trade count and the ten best trades by pnl. No charts (see the HTML report for those).
Deterministic: same result, same text.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined

from .html import bucket_size, context, trade_rows

if TYPE_CHECKING:
    from ..backtest import BacktestResult

TOP_TRADES = 10


def md_cell(value: object) -> str:
    """Text safe inside a GFM table cell: pipes and backslashes escaped, newlines flattened."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split())


def md_code(value: object) -> str:
    """Inline code that survives backticks in the value."""
    text = " ".join(str(value).split())
    longest = 0
    run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def top_trade_indices(result: BacktestResult, count: int = TOP_TRADES) -> list[int]:
    """Indices of the ``count`` trades with the highest pnl (ties: earlier trade first)."""
    pnl = np.asarray(result.sim.trades["pnl"], dtype=np.float64)
    order = np.lexsort((np.arange(len(pnl)), -np.nan_to_num(pnl, nan=-np.inf)))
    return [int(i) for i in order[:count]]


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("peakdsl.report", "templates"), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["cell"] = md_cell
    env.filters["code"] = md_code
    return env


def render_markdown(result: BacktestResult, *, reproduce: str | None = None) -> str:
    """The summary as GitHub-flavoured Markdown (``reproduce``: the command line that
    reproduces the run, ``peakdsl.repro.command_line``, shown when given)."""
    ctx: dict[str, Any] = context(result, reproduce)
    ctx["top_trades"] = trade_rows(result, top_trade_indices(result))
    ctx["top_count"] = TOP_TRADES
    ctx["bucket"] = bucket_size(len(result.candles.frame))
    return environment().get_template("summary.md.j2").render(ctx)
