"""Which candles a run uses: ``--data FILE``, else the cache, else the synthetic demo market.

The synthetic fallback is deterministic (seed from sha256 of market and timeframe, 5,000 bars
ending 2026-01-01T00:00Z) and says what it is: ``source`` is ``synthetic demo (seed N)`` and
``synthetic`` is True, so nothing downstream can mistake it for market data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..lang.diagnostics import diag, has_errors
from ..lang.project import display_path
from . import DataError
from .cache import load_cached
from .candles import CandleSet, format_time, normalise_market, timeframe_seconds
from .importer import import_file
from .synth import DEMO_BARS, DEMO_END, demo_seed, synth_market


def demo_market(market: str, timeframe: str) -> CandleSet:
    """The synthetic demo candles for a market and timeframe (same every time)."""
    market = normalise_market(market)
    seed = demo_seed(market, timeframe)
    return synth_market(market, timeframe, DEMO_BARS, seed, DEMO_END,
                        source=f"synthetic demo (seed {seed})")


def load_for(market: str, timeframe: str, *, root: Path, data: Path | None = None,
             start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> CandleSet:
    """Candles for (market, timeframe), sliced to ``start <= time < end``.

    ``data`` given → that file, imported in memory (validated; its spacing must match the
    timeframe, D010); else the cache under ``root/.peak/data``; else the synthetic demo.
    Raises DataError with the diagnostics when the data cannot be used.
    """
    try:
        market = normalise_market(market)
        timeframe_seconds(timeframe)
    except ValueError as exc:
        raise DataError([diag("U005", str(exc), "<peak>")]) from None
    if data is not None:
        shown = display_path(data)
        if not data.is_file():
            raise DataError([diag("D001", f"cannot read {shown}: no such file", shown,
                                  help="give an existing CSV or Parquet file with --data")])
        result = import_file(data, market, timeframe, display=shown)
        if result.candles is None or has_errors(result.diagnostics):
            raise DataError([d for d in result.diagnostics if d.is_error])
        candles = result.candles
    else:
        cached = load_cached(root, market, timeframe)
        candles = cached if cached is not None else demo_market(market, timeframe)
    if start is None and end is None:
        return candles
    sliced = candles.slice(start, end)
    if sliced.bars == 0:
        span = (f"{format_time(candles.frame.index[0])} to "
                f"{format_time(candles.frame.index[-1])}" if candles.bars else "no bars")
        raise DataError([diag("U005", f"no {market} {timeframe} bars between "
                              f"{_show(start)} and {_show(end)}; the data ({candles.source}) "
                              f"covers {span}", "<peak>",
                              help="choose dates inside the data, or import or fetch more")])
    return sliced


def _show(ts: pd.Timestamp | None) -> str:
    return "the start" if ts is None else format_time(ts)
