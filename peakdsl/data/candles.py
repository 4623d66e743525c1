"""Candles as one validated value: a UTC OHLCV frame, what market it is, where it came from."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..lang.schema import TIMEFRAMES

if TYPE_CHECKING:
    from ..lang.diagnostics import Diagnostic

COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICES: tuple[str, ...] = ("open", "high", "low", "close")
NS = 1_000_000_000
# Bars must open in [EARLIEST, LATEST): before 1970 is almost always a unit mistake (ms read
# as s), and nanosecond timestamps end in 2262. The importer, synth and fetch share the range.
EARLIEST = pd.Timestamp("1970-01-01T00:00:00Z")
LATEST = pd.Timestamp("2200-01-01T00:00:00Z")

_MARKET = re.compile(r"^([A-Z0-9]{1,20})/([A-Z0-9]{1,20})(?::([A-Z0-9]{1,20}))?$")


def parse_market(market: str) -> tuple[str, str, str | None]:
    """``BTC/EUR`` → ("BTC", "EUR", None); ``BTC/USDT:USDT`` → (…, "USDT"). ValueError if bad."""
    match = _MARKET.match(market.strip().upper())
    if match is None:
        raise ValueError(f"`{market}` is not a market; write BASE/QUOTE, e.g. BTC/EUR")
    return match.group(1), match.group(2), match.group(3)


def normalise_market(market: str) -> str:
    base, quote, settle = parse_market(market)
    return f"{base}/{quote}" + (f":{settle}" if settle else "")


def timeframe_seconds(timeframe: str) -> int:
    """Seconds per bar; ValueError for a timeframe peak does not know."""
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"unknown timeframe `{timeframe}`; use one of {' '.join(TIMEFRAMES)}")
    return TIMEFRAMES[timeframe]


def timeframe_for_seconds(seconds: float) -> str | None:
    for name, secs in TIMEFRAMES.items():
        if secs == seconds:
            return name
    return None


def format_duration(seconds: float) -> str:
    """``93600`` → ``1d 2h``: short and exact to the minute."""
    seconds = int(seconds)
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2]) or "0s"


def format_time(ts: Any) -> str:
    """A UTC instant as ``2024-01-02T03:00Z`` (seconds only when not zero)."""
    stamp = _utc(pd.Timestamp(int(ts), unit="ns") if isinstance(ts, int | np.integer) else ts)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S" if stamp.second else "%Y-%m-%dT%H:%M")
    return str(text) + "Z"


def canonical_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The five float64 columns on a ``time`` index of UTC nanoseconds (no other checks)."""
    index = pd.DatetimeIndex(frame.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    index = index.as_unit("ns")
    index.name = "time"
    data = {c: np.ascontiguousarray(frame[c].to_numpy(dtype=np.float64)) for c in COLUMNS}
    return pd.DataFrame(data, index=index, columns=list(COLUMNS))


def fingerprint_of(frame: pd.DataFrame, market: str, timeframe: str) -> str:
    """sha256 over market, timeframe, int64 ns timestamps and the five float64 columns (LE)."""
    h = hashlib.sha256()
    h.update(b"peak-candles-v1\0")
    h.update(market.encode() + b"\0" + timeframe.encode() + b"\0")
    h.update(len(frame).to_bytes(8, "little"))
    stamps = frame.index.as_unit("ns").asi8.astype("<i8", copy=False)
    h.update(stamps.tobytes())
    for col in COLUMNS:
        h.update(frame[col].to_numpy(dtype="<f8").tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class CandleSet:
    """Validated candles: sorted, unique UTC index named ``time``; float64 OHLCV columns.

    Build with :meth:`of`, which canonicalises the frame and computes the fingerprint.
    Equality is by fingerprint (identical data and identity → equal). ``warnings`` are what
    loading found but tolerated (duplicate rows, gaps, resampled buckets with gaps, the demo
    market standing in: D008, D009, D019, D018…), kept with the candles so that every command
    that runs on them can show them, as ``peak data import`` does. ``resampled_from`` names the
    timeframe they were built from (``peakdsl.data.resample``), None for candles as stored.
    """

    frame: pd.DataFrame
    market: str
    timeframe: str
    source: str
    synthetic: bool
    fingerprint: str
    warnings: tuple[Diagnostic, ...] = ()
    resampled_from: str | None = None  # the base timeframe when built from a finer one
    # the other markets a spec reads (``close@ETH/USDT``), at this timeframe and range
    # (``data.frames``); their fingerprints are part of this one (``with_others``)
    others: tuple[CandleSet, ...] = ()
    own_fp: str = ""  # the fingerprint of these candles alone, when ``others`` are held
    own_source: str = ""  # their source alone (``source`` then names the others' too)

    @staticmethod
    def of(frame: pd.DataFrame, market: str, timeframe: str, source: str,
           synthetic: bool = False) -> CandleSet:
        canon = canonical_frame(frame)
        if not canon.index.is_monotonic_increasing or not canon.index.is_unique:
            raise ValueError("candle index must be sorted and unique")
        return CandleSet(canon, market, timeframe, source, synthetic,
                         fingerprint_of(canon, market, timeframe))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CandleSet) and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def bars(self) -> int:
        return len(self.frame)

    @property
    def bar_seconds(self) -> int:
        return TIMEFRAMES[self.timeframe]

    @property
    def has_volume(self) -> bool:
        """False for candles imported without volume (stored as NaN, never invented as 0)."""
        return not self.bars or not bool(np.isnan(self.frame["volume"].to_numpy()).all())

    def slice(self, start: pd.Timestamp | None = None,
              end: pd.Timestamp | None = None) -> CandleSet:
        """Bars with ``start <= time < end`` (either bound optional)."""
        frame = self.frame
        if start is not None:
            frame = frame[frame.index >= _utc(start)]
        if end is not None:
            frame = frame[frame.index < _utc(end)]
        sliced = CandleSet.of(frame, self.market, self.timeframe, self.base_source,
                              self.synthetic)
        sliced = replace(sliced, warnings=self.warnings, resampled_from=self.resampled_from)
        return sliced.with_others(tuple(o.slice(start, end) for o in self.others))

    def rebuilt(self, frame: pd.DataFrame) -> CandleSet:
        """Other bars of the same market, timeframe and source (a stretch of these, or a
        stress scenario's changed prices), with the same other markets."""
        return CandleSet.of(frame, self.market, self.timeframe, self.base_source,
                            self.synthetic).with_others(self.others)

    def with_others(self, others: tuple[CandleSet, ...]) -> CandleSet:
        """These candles with the other markets' a spec reads; the fingerprint and the
        source then cover them all (a run on the same BTC bars but other ETH bars is another
        run, and says where the ETH bars came from)."""
        if not others:
            return self
        h = hashlib.sha256(b"peak-candles-with-others-v1\0" + self.own_fingerprint.encode())
        for other in others:
            h.update(other.market.encode() + b"\0" + other.fingerprint.encode())
        source = "; ".join([self.base_source,
                            *(f"{o.market}: {o.source}" for o in others)])
        return replace(self, others=others, fingerprint=h.hexdigest(),
                       own_fp=self.own_fingerprint, source=source,
                       own_source=self.base_source)

    @property
    def base_source(self) -> str:
        """The source of these candles alone (``source`` names the others' too)."""
        return self.own_source or self.source

    @property
    def own_fingerprint(self) -> str:
        """The fingerprint of these candles alone (``fingerprint`` covers ``others`` too)."""
        return self.own_fp or self.fingerprint

    def with_source(self, source: str) -> CandleSet:
        return replace(self, source=source)

    def with_warnings(self, warnings: tuple[Diagnostic, ...]) -> CandleSet:
        return replace(self, warnings=warnings)


def _utc(ts: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def utc(ts: Any) -> pd.Timestamp:
    """A timestamp in UTC; naive input is taken to be UTC."""
    return _utc(ts)
