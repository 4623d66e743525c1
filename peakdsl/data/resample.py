"""Candles of one timeframe built from a finer one: a 4h spec runs on cached 1h candles.

Why here and not in each command: every run that loads candles for a spec goes through
``peakdsl.data.select.load_for``, so resampling there serves backtests, sweeps, walk-forwards,
portfolios, robustness studies and live replays alike, and its provenance (``source`` ends in
``resampled from 1h``; ``CandleSet.resampled_from``) reaches every output.

The rules, as exchanges build their own klines:

* a bar is a **bucket** of the target timeframe: it opens at a whole multiple of the timeframe
  since 1970-01-01T00:00Z (so ``1d`` bars open at 00:00 UTC), except ``1w``, whose bars open
  on Mondays at 00:00 UTC like Binance's (1970-01-01 was a Thursday);
* open is the bucket's first open, high the highest high, low the lowest low, close the last
  close, volume the sum (unknown — NaN — when the base has no volume);
* the **first and last** bucket are dropped unless complete: the data starts or ends inside
  them (the last one may still be forming). The last one is kept when its closing bar is
  there, gaps inside it or not, as an interior one is: a bucket is over when its last bar
  closes (what the truncation property of ``@`` frames needs: cutting the data after a
  bucket's closing bar changes nothing about that bucket);
* an **interior** bucket with missing base bars (a gap in the base) is kept, built from the bars
  that are there — what the exchange itself reports for an outage, since it aggregates the
  trades it had — and counted in one D019 warning that names the first few; a bucket with no
  base bar at all is a gap in the result, as the gap was in the base;
* the base's bars must open on their own grid (``1h`` bars at whole hours): bars that do not
  are D010, since buckets of them would be stamped with times they do not cover.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..lang.diagnostics import Diagnostic, diag
from ..lang.frames import derivable, grid_offset
from ..lang.schema import TIMEFRAMES
from . import DataError
from .candles import NS, CandleSet, format_time

LISTED = 3  # incomplete buckets named in the D019 message; the rest are counted


def bases_for(target: str) -> list[str]:
    """The timeframes ``target`` can be built from, coarsest first (fewest bars to read)."""
    return sorted((tf for tf in TIMEFRAMES if derivable(tf, target)),
                  key=lambda tf: -TIMEFRAMES[tf])


@dataclass(frozen=True)
class Resampled:
    """The resampled candles and what resampling found: interior buckets built from fewer
    base bars than they span (open time in ns, bars present), and the edge buckets dropped."""

    candles: CandleSet
    incomplete: tuple[tuple[int, int], ...]
    per_bar: int  # base bars in a complete bucket
    edges_dropped: int

    def warnings(self, path: str, start: pd.Timestamp | None = None,
                 end: pd.Timestamp | None = None,
                 gaps_help: str = "`peak data check` lists the gaps") -> tuple[Diagnostic, ...]:
        """D019 for the incomplete interior buckets among the bars a run uses (``start <=
        time < end``, as ``CandleSet.slice``): one diagnostic, the first few named, counted
        against the bars of that range, not the whole dataset. ``gaps_help`` says where the
        gaps can be seen (the cache's are listed by ``peak data check``; a file's are not)."""
        used = self.candles.slice(start, end)
        lo = None if start is None else int(pd.Timestamp(start).value)
        hi = None if end is None else int(pd.Timestamp(end).value)
        found = [(t, k) for t, k in self.incomplete
                 if (lo is None or t >= lo) and (hi is None or t < hi)]
        if not found:
            return ()
        n, base = len(found), used.resampled_from
        named = ", ".join(f"{format_time(t)} ({k} of {self.per_bar})" for t, k in found[:LISTED])
        more = f", … and {n - LISTED} more" if n > LISTED else ""
        return (diag("D019", f"{n:,} of {used.bars:,} {used.market} {used.timeframe} bars "
                     f"resampled from {base} lack some {base} bars (gaps in the base): "
                     f"{named}{more}", path,
                     help=f"they are built from the {base} bars that are there, as an "
                     f"exchange builds its bars over an outage; {gaps_help}"),)


def resample(candles: CandleSet, timeframe: str, path: str = "<peak>") -> Resampled:
    """``candles`` as ``timeframe`` bars (module docstring). Raises DataError (D010) when
    the timeframe cannot be built from theirs or their bars are off their own grid."""
    base = candles.timeframe
    if not derivable(base, timeframe):
        raise DataError([not_derivable(candles.market, base, timeframe, path)])
    times = candles.frame.index.as_unit("ns").asi8
    _check_grid(candles, times, path)
    b = _Buckets.of(times, base, timeframe)
    frame = _aggregate(candles.frame, b.starts, b.buckets)[b.keep]
    starts, buckets, counts, keep, per_bar = b.starts, b.buckets, b.counts, b.keep, b.per_bar
    short = np.flatnonzero(keep & (counts < per_bar))
    out = CandleSet.of(frame, candles.market, timeframe,
                       f"{candles.source}, resampled from {base}", candles.synthetic)
    return Resampled(replace(out, resampled_from=base),
                     tuple((int(buckets[starts[i]]), int(counts[i])) for i in short),
                     per_bar, int(np.sum(~keep)))


@dataclass(frozen=True)
class _Buckets:
    """Which base bars make which ``timeframe`` bar: each bucket's first bar (``starts``),
    open time (``buckets``, per base bar), bar count, and whether it is kept (interior
    buckets always, the first and last only when complete)."""

    starts: npt.NDArray[np.int64]
    buckets: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    keep: npt.NDArray[np.bool_]
    per_bar: int

    @staticmethod
    def of(times: npt.NDArray[np.int64], base: str, timeframe: str) -> _Buckets:
        step, offset = TIMEFRAMES[timeframe] * NS, grid_offset(timeframe) * NS
        buckets = (times - offset) // step * step + offset
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])[:len(times)]
        counts = np.diff(np.r_[starts, len(times)])
        per_bar = TIMEFRAMES[timeframe] // TIMEFRAMES[base]
        keep = counts == per_bar
        keep[1:-1] = True  # interior buckets stay, complete or not; the edges only if complete
        if len(starts) > 1 and times[-1] + TIMEFRAMES[base] * NS == buckets[-1] + step:
            keep[-1] = True  # the last bar closes the last bucket: it is not forming
            # (unless it is also the first: the data may start inside it)
        return _Buckets(starts, buckets, counts, keep, per_bar)


def resample_frame(frame: pd.DataFrame, base: str, timeframe: str) -> pd.DataFrame:
    """A time-indexed OHLCV frame of ``base`` bars as ``timeframe`` bars, by the rules of
    ``resample`` (the frames a spec reads with ``@``, ``data.frames``); the bars must open
    on their grid, as the candles a run loads do."""
    b = _Buckets.of(frame.index.as_unit("ns").asi8, base, timeframe)
    return _aggregate(frame, b.starts, b.buckets)[b.keep]


def _aggregate(frame: pd.DataFrame, starts: npt.NDArray[np.int64],
               buckets: npt.NDArray[np.int64]) -> pd.DataFrame:
    """One row per bucket: first open, highest high, lowest low, last close, summed volume
    (NaN stays NaN: no volume in, no volume out)."""
    ends = np.r_[starts[1:], len(frame)] - 1
    col = {c: frame[c].to_numpy(dtype=np.float64) for c in frame.columns}
    if not len(starts):  # no bars: reduceat needs at least one
        return frame.iloc[:0]
    data = {"open": col["open"][starts], "high": np.maximum.reduceat(col["high"], starts),
            "low": np.minimum.reduceat(col["low"], starts), "close": col["close"][ends],
            "volume": np.add.reduceat(col["volume"], starts)}
    index = pd.DatetimeIndex(buckets[starts].astype("datetime64[ns]")).tz_localize("UTC")
    return pd.DataFrame(data, index=index)[["open", "high", "low", "close", "volume"]]


def _check_grid(candles: CandleSet, times: npt.NDArray[np.int64], path: str) -> None:
    """D010 unless every bar opens on its own timeframe's grid (1h bars at whole hours)."""
    step, offset = candles.bar_seconds * NS, grid_offset(candles.timeframe) * NS
    off = np.flatnonzero((times - offset) % step)
    if len(off):
        first = format_time(int(times[off[0]]))
        raise DataError([diag(
            "D010", f"{candles.market} {candles.timeframe} bars do not open on the "
            f"{candles.timeframe} grid ({len(off):,} of {len(times):,}, the first at {first}), "
            "so they cannot be resampled: a bucket would be stamped with a time it does not "
            "cover", path, help=f"use {candles.timeframe} bars that open at whole multiples "
            f"of {candles.timeframe} since 1970-01-01T00:00Z (UTC)")])


def not_derivable(market: str, base: str, target: str, path: str) -> Diagnostic:
    """D010: ``target`` bars cannot be built from ``base`` bars (coarser, or not a divisor)."""
    finer = ", ".join(bases_for(target)[:3])
    return diag("D010", f"the {market} data is {base}, which cannot make {target} bars: a "
                f"timeframe is built only from a finer one that divides it", path,
                help=f"give {target} candles, or a finer timeframe that divides it "
                     f"({finer}, …): those are resampled" if finer else
                     f"give {target} candles")
