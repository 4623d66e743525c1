"""The Parquet candle cache: ``<root>/.peak/data/<BASE>-<QUOTE>[-<SETTLE>]/<timeframe>.parquet``.

Each dataset is one Parquet file (a ``time`` column of UTC nanoseconds and five float64
columns, market and timeframe in the schema metadata) plus a JSON sidecar with provenance:
where the bars came from and, for fetched data, which ranges the exchange has already been
asked for (so a re-run fetches only what is missing). Both are written atomically, Parquet
first: an interruption can leave the sidecar behind the data, never ahead of it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_atomic
from ..lang.diagnostics import diag
from ..lang.project import display_path
from . import DataError
from .candles import COLUMNS, CandleSet, normalise_market, parse_market

DATA_DIR = Path(".peak") / "data"
FORMAT_VERSION = 1


def dataset_dir(market: str) -> str:
    base, quote, settle = parse_market(market)
    return f"{base}-{quote}" + (f"-{settle}" if settle else "")


def cache_path(root: Path, market: str, timeframe: str) -> Path:
    return root / DATA_DIR / dataset_dir(market) / f"{timeframe}.parquet"


def sidecar_path(parquet: Path) -> Path:
    return parquet.with_suffix(".json")


def parquet_bytes(candles: CandleSet) -> bytes:
    """Deterministic Parquet bytes: same candles (and pyarrow version) → same bytes."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    f = candles.frame
    arrays = [pa.array(f.index.as_unit("ns").asi8, type=pa.int64()).cast(
        pa.timestamp("ns", tz="UTC"))]
    arrays += [pa.array(f[c].to_numpy(dtype=np.float64), type=pa.float64()) for c in COLUMNS]
    schema = pa.schema([pa.field("time", pa.timestamp("ns", tz="UTC"), nullable=False),
                        *(pa.field(c, pa.float64(), nullable=False) for c in COLUMNS)],
                       metadata={b"peak.market": candles.market.encode(),
                                 b"peak.timeframe": candles.timeframe.encode(),
                                 b"peak.format": str(FORMAT_VERSION).encode()})
    table = pa.Table.from_arrays(arrays, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", write_statistics=True)
    return buffer.getvalue()


def read_parquet(path: Path, market: str, timeframe: str, source: str,
                 synthetic: bool) -> CandleSet:
    """A cache file back into candles; DataError (D001) if it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shown = display_path(path)
    try:
        table = pq.read_table(path)
        column = table.column("time")
        if not pa.types.is_timestamp(column.type):
            raise TypeError(f"the time column is {column.type}, not a timestamp")
        stamps = column.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
        index = pd.DatetimeIndex(stamps.astype("datetime64[ns]")).tz_localize("UTC")
        frame = pd.DataFrame({c: table.column(c).to_numpy() for c in COLUMNS}, index=index)
        return CandleSet.of(frame, market, timeframe, source, synthetic)
    except Exception as exc:
        raise DataError([diag("D001", f"cannot read cached data {shown}: "
                              f"{type(exc).__name__}: {str(exc)[:200]}", shown,
                              help="delete the file and import, fetch or synth it again")]
                        ) from None


@dataclass(frozen=True)
class Meta:
    """The sidecar: provenance of a cached dataset."""

    market: str
    timeframe: str
    origin: str                    # "import", "fetch", "synth" or "mixed"
    synthetic: bool = False
    detail: str = ""               # the file, exchange or seed it came from
    exchange: str | None = None
    seed: int | None = None
    ranges: tuple[tuple[int, int], ...] = ()   # fetched [start, end) in ms since 1970

    def to_json(self) -> str:
        doc = {"format": FORMAT_VERSION, "market": self.market, "timeframe": self.timeframe,
               "origin": self.origin, "synthetic": self.synthetic, "detail": self.detail,
               "exchange": self.exchange, "seed": self.seed,
               "fetched_ranges_ms": [list(r) for r in self.ranges]}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> Meta:
        doc: dict[str, Any] = json.loads(text)
        return Meta(market=str(doc["market"]), timeframe=str(doc["timeframe"]),
                    origin=str(doc.get("origin", "import")),
                    synthetic=bool(doc.get("synthetic", False)),
                    detail=str(doc.get("detail", "")), exchange=doc.get("exchange"),
                    seed=doc.get("seed"),
                    ranges=tuple((int(a), int(b)) for a, b in doc.get("fetched_ranges_ms", [])))

    def describe(self) -> str:
        if self.origin == "synth":
            return f"synthetic (seed {self.seed})"
        if self.origin == "fetch":
            return f"fetched from {self.exchange}"
        if self.origin == "import":
            return f"imported from {self.detail}"
        return self.detail or self.origin


def read_meta(parquet: Path) -> Meta | None:
    try:
        return Meta.from_json(sidecar_path(parquet).read_text("utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cache_source(path: Path, meta: Meta | None) -> str:
    text = f"cache: {display_path(path)}"
    if meta is not None and meta.synthetic:
        text += f" (synthetic, seed {meta.seed})"
    return text


def load_cached(root: Path, market: str, timeframe: str) -> CandleSet | None:
    """The cached dataset for (market, timeframe), or None when there is none."""
    market = normalise_market(market)
    path = cache_path(root, market, timeframe)
    if not path.is_file():
        return None
    meta = read_meta(path)
    return read_parquet(path, market, timeframe, cache_source(path, meta),
                        bool(meta and meta.synthetic))


def store(root: Path, candles: CandleSet, meta: Meta) -> Path:
    """Write candles and their sidecar atomically (Parquet first); return the Parquet path."""
    path = cache_path(root, candles.market, candles.timeframe)
    write_atomic(path, parquet_bytes(candles))
    write_atomic(sidecar_path(path), meta.to_json().encode())
    return path


def merge(old: CandleSet | None, new: CandleSet, source: str) -> CandleSet:
    """Union of two candle sets; where both have a bar, ``new`` wins."""
    if old is None or old.bars == 0:
        return new.with_source(source)
    frame = pd.concat([old.frame, new.frame])
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return CandleSet.of(frame, new.market, new.timeframe, source,
                        old.synthetic and new.synthetic)


@dataclass(frozen=True)
class Entry:
    """One cached dataset, as ``peak data list`` shows it."""

    market: str
    timeframe: str
    path: Path
    bars: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    source: str
    synthetic: bool


def list_cached(root: Path) -> list[Entry]:
    """Every dataset under ``root/.peak/data``, sorted by market and timeframe."""
    import pyarrow.parquet as pq

    from ..lang.schema import TIMEFRAMES

    out: list[Entry] = []
    base = root / DATA_DIR
    if not base.is_dir():
        return out
    for path in sorted(base.glob("*/*.parquet")):
        meta = read_meta(path)
        try:
            pf = pq.ParquetFile(path)
            md = pf.schema_arrow.metadata or {}
            market = md.get(b"peak.market", b"").decode() or (meta.market if meta else "")
            timeframe = md.get(b"peak.timeframe", b"").decode() or path.stem
            times = pq.read_table(path, columns=["time"]).column("time")
            bars = len(times)
            start = pd.Timestamp(times[0].as_py()) if bars else None
            end = pd.Timestamp(times[bars - 1].as_py()) if bars else None
            source = meta.describe() if meta else "unknown"
        except Exception as exc:
            market, timeframe, bars, start, end = path.parent.name, path.stem, 0, None, None
            source = f"unreadable: {type(exc).__name__}"
        out.append(Entry(market, timeframe, path, bars, start, end, source,
                         bool(meta and meta.synthetic)))
    order = list(TIMEFRAMES)
    out.sort(key=lambda e: (e.market, order.index(e.timeframe) if e.timeframe in order
                            else len(order), e.timeframe))
    return out
