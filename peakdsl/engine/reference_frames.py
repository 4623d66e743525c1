"""The reference interpreter's frames (``x@4h``, ``x@ETH/USDT``, ``lang.frames``): each
frame's bars and, per strategy bar, which of them is the last closed — written with pandas
from the semantics, independently of ``data.frames`` / ``data.resample`` (which it does not
import), so the differential property cross-checks them.

* another **timeframe** is ``DataFrame.resample`` on the epoch grid (weekly: Mondays), left
  labelled and closed; a bucket with no bar is absent, the first is kept only when complete
  (timeframe / base bars: the data may start inside it), the last when complete or when its
  closing bar is there (it is over: cutting the data after that bar must change nothing),
  interior incomplete ones are kept as they are;
* another **market** reads that market's candles at the strategy's timeframe, cut to the
  strategy's span (a stretch sees what a run on it alone sees);
* the **index** is ``merge_asof`` on close times: the frame bar whose open + its timeframe is
  the latest at or before the strategy bar's open + the strategy's timeframe (-1: none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..lang.frames import Frame
from ..lang.schema import TIMEFRAMES

Array = npt.NDArray[Any]
OHLCV = ("open", "high", "low", "close", "volume")
MONDAY = pd.Timestamp("1970-01-05", tz="UTC")  # the first Monday after the epoch
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def seconds_of(index: pd.DatetimeIndex) -> Array:
    """Bar open times in seconds since the epoch (what ``session_vwap`` reads)."""
    return np.asarray(index.as_unit("ns").asi8 // 1_000_000_000, dtype=np.float64)


def _first(s: pd.Series) -> float:
    return float(s.iloc[0]) if len(s) else float("nan")


def _last(s: pd.Series) -> float:
    return float(s.iloc[-1]) if len(s) else float("nan")


def _total(s: pd.Series) -> float:
    """The plain sum: a NaN volume makes the bucket's NaN (pandas' ``sum`` would skip it)."""
    return float(np.sum(s.to_numpy(dtype=np.float64)))


AGGREGATE = {"open": _first, "high": "max", "low": "min", "close": _last, "volume": _total}


def resampled(df: pd.DataFrame, base: str, timeframe: str) -> pd.DataFrame:
    """``df``'s ``base`` bars as ``timeframe`` bars (module docstring)."""
    if not len(df):
        return df[list(OHLCV)].iloc[:0]
    seconds = TIMEFRAMES[timeframe]
    origin = MONDAY if timeframe == "1w" else EPOCH
    buckets = df[list(OHLCV)].resample(f"{seconds}s", label="left", closed="left",
                                       origin=origin)
    counts = buckets["close"].size()
    bars = buckets.agg(AGGREGATE)[list(OHLCV)]
    bars = bars[counts.to_numpy() > 0]
    counts = counts[counts > 0]
    complete = counts.to_numpy() == seconds // TIMEFRAMES[base]
    closed = df.index[-1] + pd.Timedelta(seconds=TIMEFRAMES[base]) == \
        bars.index[-1] + pd.Timedelta(seconds=seconds)  # its closing bar is there
    keep = np.ones(len(bars), dtype=bool)
    keep[-1] = complete[-1] or closed
    keep[0] = complete[0]  # one bucket is first: the data may start inside it
    return bars[keep].astype(np.float64)


class FrameData:
    """The strategy's candles (``base``, time-indexed, of ``timeframe``) and the other
    markets' (``markets``, by symbol, at ``timeframe``): every frame's bars and index, built
    on first use."""

    def __init__(self, base: Any, market: str, timeframe: str,
                 markets: Mapping[str, pd.DataFrame] | None = None) -> None:
        self.base = base
        self.market = market
        self.timeframe = timeframe
        self.markets = dict(markets or {})
        self._bars: dict[str, pd.DataFrame] = {}
        self._columns: dict[str, dict[str, Array]] = {}
        self._index: dict[str, Array] = {}

    def _times(self) -> pd.DatetimeIndex:
        index = getattr(self.base, "index", None)
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError("the spec reads other frames (`@`): give the candles as a "
                             "DataFrame with a DatetimeIndex")
        return index

    def bars(self, key: str) -> pd.DataFrame:
        if key not in self._bars:
            frame = Frame.parse(key)
            base = self._times()
            if frame.market:
                if frame.market not in self.markets:
                    raise KeyError(f"no candles for {frame.market}")
                other = self.markets[frame.market]
                end = base[-1] + pd.Timedelta(seconds=TIMEFRAMES[self.timeframe]) \
                    if len(base) else base.min()
                source = other[(other.index >= base.min()) & (other.index < end)] \
                    if len(base) else other.iloc[:0]
            else:
                source = self.base
            self._bars[key] = resampled(source, self.timeframe, frame.timeframe) \
                if frame.timeframe else source[list(OHLCV)].astype(np.float64)
        return self._bars[key]

    def columns(self, key: str) -> dict[str, Array]:
        if key not in self._columns:
            bars = self.bars(key)
            self._columns[key] = {c: bars[c].to_numpy(dtype=np.float64).copy() for c in OHLCV}
            self._columns[key]["time"] = seconds_of(bars.index)  # each bar's open
        return self._columns[key]

    def index(self, key: str) -> Array:
        """Per strategy bar, the position of the frame's last closed bar (-1: none yet)."""
        if key not in self._index:
            frame = Frame.parse(key)
            own = pd.Timedelta(seconds=TIMEFRAMES[self.timeframe])
            span = pd.Timedelta(seconds=TIMEFRAMES[frame.timeframe or self.timeframe])
            times = self._times()
            bars = self.bars(key)
            left = pd.DataFrame({"closes": (times + own).as_unit("ns")})
            right = pd.DataFrame({"closes": (bars.index + span).as_unit("ns"),
                                  "at": np.arange(len(bars), dtype=np.int64)})
            joined = pd.merge_asof(left, right, on="closes", direction="backward",
                                   allow_exact_matches=True)
            self._index[key] = joined["at"].fillna(-1).to_numpy(dtype=np.int64)
        return self._index[key]

    def align(self, data: Array, key: str) -> Array:
        """``data`` (a series of ``key``'s bars) at each strategy bar: its value at the last
        closed bar, missing (NaN, False) before the first."""
        at = self.index(key)
        values = np.asarray(data)
        fill: Any = False if values.dtype == np.bool_ else np.nan
        out = np.full(len(at), fill, dtype=values.dtype if values.dtype == np.bool_
                      else np.float64)
        seen = at >= 0
        out[seen] = values[at[seen]]
        return out
