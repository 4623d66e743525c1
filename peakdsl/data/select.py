"""Which candles a run uses: ``--data FILE``, else the cache, else the synthetic demo market.

The synthetic fallback is deterministic (seed from sha256 of market and timeframe, 5,000 bars
ending 2026-01-01T00:00Z) and says what it is: ``source`` is ``synthetic demo (seed N)`` and
``synthetic`` is True, so nothing downstream can mistake it for market data. It is used only
when nothing is cached: a cached dataset that fails verification or was quarantined is an
error (D013), never a reason to run on the demo instead.

A ``--data`` file gets the import's warnings (duplicate rows D008, gaps D009) in
``CandleSet.warnings``, the first few per code and then one line with the count, so a run's
output stays about the strategy.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..lang.diagnostics import Diagnostic, diag, has_errors
from ..lang.project import display_path
from . import DataError
from .cache import load_cached
from .candles import CandleSet, format_time, normalise_market, timeframe_seconds
from .importer import ImportResult, import_file
from .synth import DEMO_BARS, DEMO_END, demo_seed, synth_market

RUN_WARNINGS = 3  # per code, for a run on --data; the rest are counted in one more line


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
    timeframe, D010; its warnings in ``warnings``); else the verified cache under
    ``root/.peak/data``; else the synthetic demo. Raises DataError with the diagnostics when
    the data cannot be used.
    """
    try:
        market = normalise_market(market)
        timeframe_seconds(timeframe)
    except ValueError as exc:
        raise DataError([diag("U005", str(exc), "<peak>")]) from None
    if data is not None:
        candles = _from_file(data, market, timeframe)
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


def _from_file(data: Path, market: str, timeframe: str) -> CandleSet:
    shown = display_path(data)
    if not data.is_file():
        what = "it is a folder" if data.is_dir() else "no such file"
        raise DataError([diag("D001", f"cannot read {shown}: {what}", shown,
                              help="give an existing CSV or Parquet file with --data")])
    result = import_file(data, market, timeframe, display=shown)
    if result.candles is None or has_errors(result.diagnostics):
        raise DataError([d for d in result.diagnostics if d.is_error])
    return result.candles.with_warnings(run_warnings(result, shown))


def run_warnings(result: ImportResult, shown: str) -> tuple[Diagnostic, ...]:
    """The import's warnings, the first ``RUN_WARNINGS`` per code, then one line counting
    the rest: the same findings as ``peak data import``, shorter."""
    out: list[Diagnostic] = []
    for code, total in (("D008", result.duplicates), ("D009", result.gaps)):
        listed = [d for d in result.diagnostics if d.code == code
                  and not d.message.startswith("…")]
        out += listed[:RUN_WARNINGS]
        if total > RUN_WARNINGS:
            first = listed[RUN_WARNINGS] if len(listed) > RUN_WARNINGS else listed[-1]
            out.append(diag(code, f"… and {total - RUN_WARNINGS} more like this ({total} in "
                            f"all; `peak data import` lists each)", shown, first.span,
                            help=first.help))
    return tuple(out)


def _show(ts: pd.Timestamp | None) -> str:
    return "the start" if ts is None else format_time(ts)
