"""The inputs a spec's ``@`` frames read (``lang.frames``): each frame's candles and, per bar of
the strategy, which of them is the last closed.

A compiled graph names a frame's columns ``close@4h``, ``high@ETH/USDT``, … (its source
nodes) and its alignment index ``@4h`` (the second input of its ``align`` nodes). This module
builds those arrays from the run's candles, so every run kind that evaluates a graph —
backtest, sweep, walk-forward, portfolio, report — gets them from one place:

* a frame of another **timeframe** is resampled from the candles of its market
  (``resample.resample_frame``: buckets on the epoch grid, weekly on Mondays, the first and
  last bucket only when complete, interior ones built from the bars there are);
* a frame of another **market** reads that market's candles, loaded at the strategy's own
  timeframe with the run's range (``CandleSet.others``; D023 when a run has none);
* the **index** of a frame is, for every strategy bar ``i``, the position of the frame bar
  whose close time (open + its timeframe) is the latest at or before bar ``i``'s close, or
  -1 when none has closed yet. A frame bar is thus seen from the strategy bar that closes
  with it on, never while it forms (the truncation property: cutting the data after any bar
  changes no value at or before it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..lang.builtins import TIME
from ..lang.diagnostics import Diagnostic, diag
from ..lang.frames import Frame
from ..lang.schema import TIMEFRAMES
from . import DataError
from .candles import NS
from .resample import resample_frame

if TYPE_CHECKING:
    from ..compile import models as m
    from .candles import CandleSet

COLUMNS = ("open", "high", "low", "close", "volume")
Array = np.ndarray[Any, Any]


def frame_keys(cfg: m.StrategyConfig) -> tuple[str, ...]:
    """The frames ``cfg``'s graph reads, sorted (the values of its ``align`` nodes)."""
    return tuple(sorted({str(n.value) for n in cfg.graph.nodes if n.op == "align"}))


def markets_read(cfg: m.StrategyConfig) -> tuple[str, ...]:
    """The other markets ``cfg`` reads, sorted."""
    return tuple(sorted({f.market for f in map(Frame.parse, frame_keys(cfg)) if f.market}))


def frame_inputs(keys: Iterable[str], base: pd.DataFrame, timeframe: str,
                 markets: Mapping[str, pd.DataFrame]) -> dict[str, Array]:
    """The columns and alignment index of every frame in ``keys`` for the strategy bars of
    ``base`` (time-indexed, of ``timeframe``); ``markets`` holds the other markets' candles
    at ``timeframe``, by symbol (module docstring)."""
    from ..engine.simulate import epoch_seconds

    out: dict[str, Array] = {}
    base_seconds = TIMEFRAMES[timeframe]
    closes = _opens(base) + base_seconds * NS
    for key in keys:
        frame = Frame.parse(key)
        if frame.market and frame.market not in markets:
            raise DataError([missing_market(frame.market, timeframe)])
        source = markets[frame.market] if frame.market else base
        bars = resample_frame(source, timeframe, frame.timeframe) if frame.timeframe \
            else source
        frame_closes = _opens(bars) + frame.seconds(base_seconds) * NS
        out[f"@{key}"] = np.searchsorted(frame_closes, closes, side="right").astype(
            np.int64) - 1
        for col in COLUMNS:
            out[f"{col}@{key}"] = np.ascontiguousarray(bars[col].to_numpy(dtype=np.float64))
        out[f"time@{key}"] = epoch_seconds(bars.index)
    return out


def inputs_for(cfg: m.StrategyConfig, candles: CandleSet, frame: pd.DataFrame | None = None
               ) -> dict[str, Array]:
    """Everything ``cfg``'s graph reads on a run's candles (or on ``frame``, a stretch of
    them: a walk-forward window): the five columns, and each frame's columns and index.
    Other markets are cut to the stretch's time span, so a stretch sees what a run on that
    stretch alone sees."""
    from ..engine.program import columns_of
    from ..engine.simulate import epoch_seconds

    frame = candles.frame if frame is None else frame
    cols = columns_of(frame)
    if any(n.op == "source" and n.value == TIME for n in cfg.graph.nodes):
        cols[TIME] = epoch_seconds(frame.index)
    keys = frame_keys(cfg)
    if not keys:
        return cols
    return cols | frame_inputs(keys, frame, candles.timeframe,
                               {c.market: _span(c.frame, frame, candles.bar_seconds)
                                for c in candles.others})


def _span(other: pd.DataFrame, frame: pd.DataFrame, bar_seconds: int) -> pd.DataFrame:
    if not len(frame):
        return other.iloc[:0]
    start, end = frame.index[0], frame.index[-1] + pd.Timedelta(seconds=bar_seconds)
    return other[(other.index >= start) & (other.index < end)]


def load_run(cfg: m.StrategyConfig, root: Any, data: Any = None, start: Any = None,
             end: Any = None) -> CandleSet:
    """A strategy run's candles (``select.load_for``) with the other markets it reads
    (``CandleSet.others``), each from the cache at the strategy's timeframe and range.
    D023 when one is missing: the synthetic demo stands in for it only when it stands in
    for the strategy's own market too (never a made-up ETH beside real BTC)."""
    from .select import load_for

    candles = load_for(cfg.market.symbol, cfg.timeframe, root=root, data=data, start=start,
                       end=end)
    others = []
    for market in markets_read(cfg):
        other = load_for(market, cfg.timeframe, root=root, start=start, end=end)
        if other.synthetic and not candles.synthetic:
            raise DataError([missing_market(market, cfg.timeframe)])
        others.append(other)
    return candles.with_others(tuple(others))


def missing_market(market: str, timeframe: str) -> Diagnostic:
    """D023: a market the spec reads has no candles for this run."""
    return diag("D023", f"the spec reads {market}, but there are no {market} {timeframe} "
                "candles for this run", "<peak>",
                help=f"import them into the project's cache (`peak data import FILE --market "
                f"{market} --timeframe {timeframe}`) or fetch them (`peak data fetch "
                f"EXCHANGE {market} {timeframe} --since DATE`)")


def _opens(frame: pd.DataFrame) -> Array:
    return np.asarray(frame.index.as_unit("ns").asi8, dtype=np.int64)
