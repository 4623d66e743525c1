"""Which candles a run uses: ``--data FILE``, else the cache, else the synthetic demo market.

Every command that runs a spec loads its candles here (backtest, sweep, walk-forward,
portfolio, robustness, live replay, ``peak diff --impact``), so what this module decides holds
for all of them:

* **Resampling.** When the cache has no candles of the spec's timeframe for its market but has
  a finer timeframe that divides it (4h from 1h), those are resampled
  (``peakdsl.data.resample``): ``source`` ends in ``resampled from 1h`` and
  ``CandleSet.resampled_from`` says so to every output. A ``--data`` file (or DataFrame) of a
  finer timeframe is resampled the same way.
* **The demo, loudly.** With no usable cached candles for the market, the run uses the
  deterministic synthetic demo market (seed from sha256 of market and timeframe, 5,000 bars
  ending 2026-01-01T00:00Z) — so a fresh install runs end to end — and carries a D018 warning
  naming the ``peak data import`` / ``peak data fetch`` command that would fill the cache.
  ``source`` is ``synthetic demo (seed N)`` and ``synthetic`` is True, so nothing downstream can
  mistake it for market data. A cached dataset that fails verification or was quarantined is
  an error (D013), never a reason to run on the demo instead.
* **``--data`` warnings.** The import's findings travel in ``CandleSet.warnings``, shortened for
  a run: the first few duplicates (D008), the gap summary (D009), a file without volume or with
  the close only (D021), a file whose name or symbol column states another market (D020).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..lang.diagnostics import Diagnostic, diag, has_errors
from ..lang.project import display_path
from . import DataError
from .cache import cache_path, cached_timeframes, load_cached
from .candles import CandleSet, format_time, normalise_market, timeframe_seconds
from .importer import FRAME, ImportResult, import_file, import_frame
from .names import market_mismatch, other_market
from .resample import bases_for, resample
from .synth import DEMO_BARS, DEMO_END, demo_seed, synth_market

RUN_WARNINGS = 3  # duplicates listed for a run on --data; the rest are counted in one more line


def demo_market(market: str, timeframe: str) -> CandleSet:
    """The synthetic demo candles for a market and timeframe (same every time)."""
    market = normalise_market(market)
    seed = demo_seed(market, timeframe)
    return synth_market(market, timeframe, DEMO_BARS, seed, DEMO_END,
                        source=f"synthetic demo (seed {seed})")


def load_for(market: str, timeframe: str, *, root: Path,
             data: Path | pd.DataFrame | None = None, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None) -> CandleSet:
    """Candles for (market, timeframe), sliced to ``start <= time < end``.

    ``data`` given → that file, imported in memory (validated; its bars must be the timeframe's
    or a finer one that divides it, which is resampled, else D010; its warnings in
    ``warnings``); a DataFrame likewise (``import_frame``); else the verified cache under
    ``root/.peak/data`` (resampled from a finer cached timeframe when needed); else the
    synthetic demo, with a D018 warning. A resample's D019 counts the bars of this period
    only. Raises DataError with the diagnostics when the data cannot be used.
    """
    try:
        market = normalise_market(market)
        timeframe_seconds(timeframe)
    except ValueError as exc:
        raise DataError([diag("U005", str(exc), "<peak>")]) from None
    period = (start, end)
    if isinstance(data, pd.DataFrame):
        candles = _checked(import_frame(data, market, timeframe, finer=True), FRAME,
                           market, timeframe, period=period)
    elif data is not None:
        candles = _from_file(data, market, timeframe, period)
    else:
        candles = from_cache(root, market, timeframe, period)
    if start is None and end is None:
        return candles
    sliced = candles.slice(start, end)
    if sliced.bars == 0:
        span = (f"{format_time(candles.frame.index[0])} to "
                f"{format_time(candles.frame.index[-1])}" if candles.bars else "no bars")
        between = f"{_show(start, 'the start')} and {_show(end, 'the end')}"
        raise DataError([diag("U005", f"no {market} {timeframe} bars between {between}; the "
                              f"data ({candles.source}) covers {span}", "<peak>",
                              help="choose dates inside the data, or import or fetch more")])
    return sliced


Period = tuple[pd.Timestamp | None, pd.Timestamp | None]  # --from, --to (either open)
WHOLE: Period = (None, None)


def from_cache(root: Path, market: str, timeframe: str, period: Period = WHOLE) -> CandleSet:
    """The cached candles of (market, timeframe); else the coarsest cached finer timeframe
    that divides it, resampled (its D019 counted within ``period``); else the demo with D018.
    Raises DataError (D013, D014, D010)."""
    cached = load_cached(root, market, timeframe)
    if cached is not None:
        return cached
    present = cached_timeframes(root, market)
    for base in (tf for tf in bases_for(timeframe) if tf in present):
        candles = load_cached(root, market, base)
        if candles is not None:
            shown = display_path(cache_path(root, market, base))
            done = resample(candles, timeframe, shown)
            return done.candles.with_warnings(done.warnings(shown, *period))
    demo = demo_market(market, timeframe)
    return demo.with_warnings((demo_notice(market, timeframe, present),))


def demo_notice(market: str, timeframe: str, present: Sequence[str]) -> Diagnostic:
    """D018: the run is on the demo market, why, and the commands that would fill the cache."""
    finer = ", ".join(bases_for(timeframe)[:2])
    why = (f"{market} is cached only as {', '.join(present)}, which cannot make {timeframe} "
           "bars (a timeframe is built only from a finer one that divides it)" if present
           else f"no {market} candles in the cache")
    return diag("D018", f"{why}: running on the synthetic demo market (seed "
                f"{demo_seed(market, timeframe)})", "<peak>",
                help=f"fill the cache with `peak data import FILE --market {market}` (a file of "
                     f"{timeframe} candles" + (f", or of a finer timeframe such as {finer}"
                                               if finer else "")
                     + f") or `peak data fetch binance {market} {timeframe} --since "
                       "2024-01-01` (any ccxt exchange id)")


def _from_file(data: Path, market: str, timeframe: str, period: Period = WHOLE) -> CandleSet:
    shown = display_path(data)
    if not data.is_file():
        what = "it is a folder" if data.is_dir() else "no such file"
        raise DataError([diag("D001", f"cannot read {shown}: {what}", shown,
                              help="give an existing CSV or Parquet file with --data")])
    return _checked(import_file(data, market, timeframe, display=shown, finer=True), shown,
                    market, timeframe, data.name, period)


def _checked(result: ImportResult, shown: str, market: str, timeframe: str,
             name: str = "", period: Period = WHOLE) -> CandleSet:
    """The imported candles, resampled to ``timeframe`` when finer, with the run's share of
    the warnings and D020 when the file states another market; DataError on any error."""
    if result.candles is None or has_errors(result.diagnostics):
        raise DataError([d for d in result.diagnostics if d.is_error])
    candles, warnings = result.candles, run_warnings(result, shown)
    if candles.timeframe != timeframe:
        done = resample(candles, timeframe, shown)
        gaps = (f"the gaps are in {shown}'s own {candles.timeframe} bars (its D009 warning "
                "counts them)")
        candles, warnings = done.candles, warnings + done.warnings(shown, *period, gaps)
    stated = other_market(market, name, result.symbols)
    if stated is not None:
        warnings += (market_mismatch(stated, market, shown, bool(result.symbols)),)
    return candles.with_warnings(warnings)


def run_warnings(result: ImportResult, shown: str) -> tuple[Diagnostic, ...]:
    """The import's warnings for a run: the first ``RUN_WARNINGS`` duplicates and one line
    counting the rest, the gap summary, the derived-columns note — the same findings as
    ``peak data import``, shorter."""
    duplicates = [d for d in result.diagnostics if d.code == "D008"
                  and not d.message.startswith("…")]
    out = duplicates[:RUN_WARNINGS]
    if result.duplicates > RUN_WARNINGS:
        first = duplicates[min(RUN_WARNINGS, len(duplicates) - 1)]
        out.append(diag("D008", f"… and {result.duplicates - RUN_WARNINGS} more like this "
                        f"({result.duplicates} in all; `peak data import` lists each)", shown,
                        first.span, help=first.help))
    return (*out, *_for_a_run(d for d in result.diagnostics if d.code in ("D009", "D021")))


def _for_a_run(found: Iterable[Diagnostic]) -> list[Diagnostic]:
    """A run has no ``--verbose``: its gap summary points at ``peak data import`` instead."""
    return [replace(d, help=d.help.replace("`--verbose` lists each at its line",
                                           "`peak data import --verbose` lists each"))
            for d in found]


def require_volume(config: Any, candles: CandleSet) -> None:
    """D022 when the strategy ``config`` reads ``volume`` and the candles have none (a file
    imported without volume): its volume rules would silently never hold."""
    reads = any(n.op == "source" and n.value == "volume" for n in config.graph.nodes)
    if reads and not candles.has_volume:
        raise DataError([diag(
            "D022", f"`{config.name}` reads `volume`, but the {candles.market} "
            f"{candles.timeframe} candles ({candles.source}) have no volume", "<peak>",
            help="import candles with a volume column (`peak data import FILE --market "
                 f"{candles.market} --replace`), or run a strategy that does not read volume")])


def _show(ts: pd.Timestamp | None, open_end: str) -> str:
    """A ``--from``/``--to`` bound as the message names it; ``open_end`` when not given."""
    return open_end if ts is None else format_time(ts)
