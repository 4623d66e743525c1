"""The Parquet candle cache: ``<root>/.peak/data/<BASE>-<QUOTE>[-<SETTLE>]/<timeframe>.parquet``.

Each dataset is one Parquet file (a ``time`` column of UTC nanoseconds and five float64
columns, market and timeframe in the schema metadata) plus its manifest, a JSON sidecar:
provenance (where the bars came from and, for fetched data, which ranges the exchange has
already been asked for, so a re-run fetches only what is missing) and the file's seal (sha256,
size, bars and span of the exact bytes; see :mod:`peakdsl.data.integrity`).

Both are written atomically, Parquet first, under an exclusive lock on the dataset's folder.
Every read checks the bytes against the seal before parsing them, because a damaged file can
still parse into plausible prices. A mismatch, a missing or unreadable manifest, or a file that
is not valid candles is D013: the file is quarantined and nothing runs on it. A manifest
written before peak sealed its cache has no seal: that is D014 until the dataset is written
again or its current contents are adopted (``peak data check --adopt``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_atomic
from ..lang.diagnostics import Diagnostic, diag
from ..lang.project import display_path
from ..lang.schema import TIMEFRAMES
from . import DataError
from .candles import COLUMNS, CandleSet, normalise_market, parse_market
from .integrity import (
    TOMBSTONE_SUFFIX,
    Seal,
    Tombstone,
    dataset_lock,
    fix_command,
    quarantine,
    tombstone_path,
)

DATA_DIR = Path(".peak") / "data"
FORMAT_VERSION = 1    # of the Parquet files (schema metadata ``peak.format``)
MANIFEST_FORMAT = 2   # of the sidecar; 2 added the seal ("content")


def dataset_dir(market: str) -> str:
    base, quote, settle = parse_market(market)
    return f"{base}-{quote}" + (f"-{settle}" if settle else "")


def market_of_dir(name: str) -> str | None:
    """The market a dataset folder holds (``BTC-USDT-USDT`` → ``BTC/USDT:USDT``), or None."""
    parts = name.split("-")
    if len(parts) not in (2, 3):
        return None
    try:
        return normalise_market(f"{parts[0]}/{parts[1]}" + (f":{parts[2]}" if parts[2:]
                                                             else ""))
    except ValueError:
        return None


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


def parse_parquet(data: bytes, market: str, timeframe: str, source: str,
                  synthetic: bool) -> CandleSet:
    """Cache file bytes back into candles; raises (any exception) if they are not the
    candles of ``market`` at ``timeframe``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    metadata = table.schema.metadata or {}
    held = (metadata.get(b"peak.market", b"").decode(),
            metadata.get(b"peak.timeframe", b"").decode())
    if held != (market, timeframe):
        raise ValueError(f"it holds {held[0] or '?'} {held[1] or '?'} data, not {market} "
                         f"{timeframe}")
    column = table.column("time")
    if not pa.types.is_timestamp(column.type):
        raise TypeError(f"the time column is {column.type}, not a timestamp")
    stamps = column.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    index = pd.DatetimeIndex(stamps.astype("datetime64[ns]")).tz_localize("UTC")
    frame = pd.DataFrame({c: table.column(c).to_numpy() for c in COLUMNS}, index=index)
    return CandleSet.of(frame, market, timeframe, source, synthetic)


@dataclass(frozen=True)
class Meta:
    """The manifest's provenance part: where a cached dataset came from."""

    market: str
    timeframe: str
    origin: str                    # "import", "fetch", "synth" or "mixed"
    synthetic: bool = False
    detail: str = ""               # the file, exchange or seed it came from
    exchange: str | None = None
    seed: int | None = None
    ranges: tuple[tuple[int, int], ...] = ()   # fetched [start, end) in ms since 1970

    def to_json(self, seal: Seal | None = None) -> str:
        """The manifest: this provenance and, when given, the file's seal."""
        doc: dict[str, Any] = {
            "format": MANIFEST_FORMAT, "market": self.market, "timeframe": self.timeframe,
            "origin": self.origin, "synthetic": self.synthetic, "detail": self.detail,
            "exchange": self.exchange, "seed": self.seed,
            "fetched_ranges_ms": [list(r) for r in self.ranges]}
        if seal is not None:
            doc["content"] = seal.as_dict()
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> Meta:
        return Meta.from_dict(json.loads(text))

    @staticmethod
    def from_dict(doc: dict[str, Any]) -> Meta:
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


@dataclass(frozen=True)
class Manifest:
    """A dataset's sidecar as found: ``state`` is missing, unreadable, unsealed or sealed."""

    state: str
    meta: Meta | None = None
    seal: Seal | None = None
    error: str = ""


def read_manifest(parquet: Path) -> Manifest:
    path = sidecar_path(parquet)
    try:
        doc = json.loads(path.read_text("utf-8"))
        meta = Meta.from_dict(doc)
    except (FileNotFoundError, NotADirectoryError):
        return Manifest("missing")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return Manifest("unreadable", error=_short(exc))
    if "content" not in doc:
        return Manifest("unsealed", meta)
    try:
        return Manifest("sealed", meta, Seal.from_dict(doc["content"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return Manifest("unreadable", meta, error=f"its seal: {_short(exc)}")


def read_meta(parquet: Path) -> Meta | None:
    return read_manifest(parquet).meta


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def cache_source(path: Path, meta: Meta | None) -> str:
    text = f"cache: {display_path(path)}"
    if meta is not None and meta.synthetic:
        text += f" (synthetic, seed {meta.seed})"
    return text


# ------------------------------------------------------------------------------ reading

class _Damaged(Exception):
    """The file cannot be trusted; ``reason`` completes "cached dataset FILE …"."""

    def __init__(self, reason: str, manifest: Manifest) -> None:
        super().__init__(reason)
        self.reason, self.manifest = reason, manifest


def load_cached(root: Path, market: str, timeframe: str, *,
                quarantined_ok: bool = False) -> CandleSet | None:
    """The verified cached dataset for (market, timeframe), or None when there is none.

    Raises DataError: D013 when the file fails verification (it is quarantined first) or was
    quarantined earlier (unless ``quarantined_ok``: a writer that re-creates the dataset
    starts afresh), D014 when it predates checksums, D001 when the OS refuses to read it.
    """
    market = normalise_market(market)
    path = cache_path(root, market, timeframe)
    try:
        with dataset_lock(path.parent):
            return _load(path, market, timeframe, quarantined_ok)
    except _Damaged:
        pass
    with dataset_lock(path.parent, exclusive=True):  # a writer may have repaired it meanwhile
        try:
            return _load(path, market, timeframe, quarantined_ok)
        except _Damaged as exc:
            raise DataError([_quarantined(root, path, market, timeframe, exc)]) from None


def _load(path: Path, market: str, timeframe: str, quarantined_ok: bool) -> CandleSet | None:
    manifest = read_manifest(path)
    data = _read_bytes(path)
    if data is None:
        _absent(path, manifest, quarantined_ok)
        return None
    seal = _seal_of(path, manifest, market, timeframe)
    problem = seal.problem(data)
    if problem is not None:
        raise _Damaged(problem, manifest)
    meta = manifest.meta
    try:
        return parse_parquet(data, market, timeframe, cache_source(path, meta),
                             bool(meta and meta.synthetic))
    except Exception as exc:
        raise _Damaged(f"matches its checksum but is not valid candles ({_short(exc)})",
                       manifest) from None


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes; None when there is no file; D001 when the OS refuses to read it."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # NotADirectory: `.peak` is a file
        return None
    except OSError as exc:
        shown = display_path(path)
        raise DataError([diag("D001", f"cannot read cached data {shown}: "
                              f"{exc.strerror or exc}", shown,
                              help="check the file's permissions and that it is a file")]
                        ) from None


def _absent(path: Path, manifest: Manifest, quarantined_ok: bool) -> None:
    """No data file: fine when nothing was cached; D013 when it was quarantined (or only
    its manifest is left)."""
    if manifest.state != "missing":
        raise _Damaged(f"is missing, but its manifest {sidecar_path(path).name} is there",
                       manifest)
    tomb = Tombstone.read(tombstone_path(path))
    if tomb is None or quarantined_ok:
        return
    shown = display_path(path)
    where = f"; the file is in {tomb.moved_to}" if tomb.moved_to else ""
    raise DataError([diag(
        "D013", f"cached dataset {shown} was quarantined at {tomb.at}: it {tomb.reason}{where}",
        shown, help=f"nothing runs on it until it is re-created: "
        f"{tomb.fix or 'import, fetch or synthesise it again'}")])


_UNTRUSTED = {
    "missing": "has no manifest ({name} is missing): peak did not write it, or its write was "
               "interrupted",
    "unreadable": "has a damaged manifest {name} ({error})",
}


def _seal_of(path: Path, manifest: Manifest, market: str, timeframe: str) -> Seal:
    """The seal to check the file against; _Damaged or D014 when there is none to trust."""
    if manifest.seal is not None:
        return manifest.seal
    if manifest.state in _UNTRUSTED:
        raise _Damaged(_UNTRUSTED[manifest.state].format(name=sidecar_path(path).name,
                                                         error=manifest.error), manifest)
    shown = display_path(path)
    fix = fix_command(market, timeframe, manifest.meta, None)
    raise DataError([diag(
        "D014", f"cached dataset {shown} has no checksum: it was written before peak verified "
        "its cache, so damage to it cannot be detected", shown,
        help=f"re-create it: {fix}; or, if you trust its contents, record their checksum: "
             f"`peak data check {market} {timeframe} --adopt`")])


def _quarantined(root: Path, path: Path, market: str, timeframe: str,
                 exc: _Damaged) -> Diagnostic:
    """Quarantine the damaged file and say so (D013); a failed move is reported, not raised."""
    shown = display_path(path)
    fix = fix_command(market, timeframe, exc.manifest.meta, exc.manifest.seal)
    try:
        moved = quarantine(root, path, exc.reason, fix)
        where = f"moved to {display_path(moved)}" if moved else "its manifest was quarantined"
    except OSError as err:
        where = f"it could not be moved to quarantine ({err.strerror or err})"
    return diag("D013", f"cached dataset {shown} {exc.reason}; {where}", shown,
                help=f"nothing ran on it; re-create it: {fix}")


# ------------------------------------------------------------------------------ writing

def store(root: Path, candles: CandleSet, meta: Meta) -> Path:
    """Write candles, then their sealed manifest, under the dataset's lock; clear a tombstone.

    Returns the Parquet path. A crash between the two writes leaves a manifest whose seal does
    not match the file (or no manifest): the next read reports it (D013), never trusts it.
    """
    path = cache_path(root, candles.market, candles.timeframe)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = parquet_bytes(candles)
    with dataset_lock(path.parent, exclusive=True):
        write_atomic(path, data)
        write_atomic(sidecar_path(path), meta.to_json(Seal.of(data, candles)).encode())
        tombstone_path(path).unlink(missing_ok=True)
    return path


def adopt(root: Path, market: str, timeframe: str,
          accept: Callable[[CandleSet], bool]) -> bool:
    """Seal a dataset written before checksums, if ``accept`` approves its candles.

    True when a seal was written; False when there was nothing to adopt (no file, or sealed
    already) or ``accept`` refused. The seal covers exactly the bytes ``accept`` saw.
    Raises DataError (D013, quarantined) when the file is not valid candles.
    """
    market = normalise_market(market)
    path = cache_path(root, market, timeframe)
    with dataset_lock(path.parent, exclusive=True):
        manifest = read_manifest(path)
        data = _read_bytes(path)
        if manifest.meta is None or manifest.state != "unsealed" or data is None:
            return False
        try:
            candles = parse_parquet(data, market, timeframe, cache_source(path, manifest.meta),
                                    manifest.meta.synthetic)
        except Exception as exc:
            damaged = _Damaged(f"is not valid candles ({_short(exc)})", manifest)
            raise DataError([_quarantined(root, path, market, timeframe, damaged)]) from None
        if not accept(candles):
            return False
        write_atomic(sidecar_path(path), manifest.meta.to_json(Seal.of(data, candles)).encode())
        return True


def merge(old: CandleSet | None, new: CandleSet, source: str) -> CandleSet:
    """Union of two candle sets; where both have a bar, ``new`` wins."""
    if old is None or old.bars == 0:
        return new.with_source(source)
    frame = pd.concat([old.frame, new.frame])
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return CandleSet.of(frame, new.market, new.timeframe, source,
                        old.synthetic and new.synthetic)


# ------------------------------------------------------------------------------ listing

@dataclass(frozen=True)
class Entry:
    """One cached dataset, as ``peak data list`` shows it.

    ``status``: ok; unverified (no checksum, D014); damaged (fails verification, D013: the
    next read quarantines it); quarantined (a tombstone where the file was).
    """

    market: str
    timeframe: str
    path: Path
    bars: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    source: str
    synthetic: bool
    status: str = "ok"


def list_cached(root: Path) -> list[Entry]:
    """Every dataset under ``root/.peak/data``, sorted by market and timeframe.

    Only files named like datasets (``<market folder>/<timeframe>.parquet``) are listed: no
    run can use any other. Listing verifies but never moves a file.
    """
    base = root / DATA_DIR
    if not base.is_dir():
        return []
    out = [_entry(path) for path in sorted(base.glob("*/*.parquet")) if _named_ok(path)]
    for tomb in sorted(base.glob(f"*/*{TOMBSTONE_SUFFIX}")):
        path = tomb.with_name(tomb.name[: -len(TOMBSTONE_SUFFIX)] + ".parquet")
        if _named_ok(path) and not path.exists():
            out.append(_bare_entry(path, "", False, "quarantined"))
    order = list(TIMEFRAMES)
    out.sort(key=lambda e: (e.market, order.index(e.timeframe), e.timeframe))
    return out


def cached_timeframes(root: Path, market: str) -> list[str]:
    """The timeframes ``market`` has anything cached for — data, a manifest or a quarantine
    tombstone (reading those is D013/D014, never silence) — finest first."""
    folder = cache_path(root, market, "1h").parent
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return [tf for tf in TIMEFRAMES
            if {f"{tf}.parquet", f"{tf}.json", f"{tf}{TOMBSTONE_SUFFIX}"} & names]


def _named_ok(path: Path) -> bool:
    return market_of_dir(path.parent.name) is not None and path.stem in TIMEFRAMES


def _bare_entry(path: Path, source: str, synthetic: bool, status: str) -> Entry:
    market = market_of_dir(path.parent.name)
    assert market is not None
    return Entry(market, path.stem, path, 0, None, None, source, synthetic, status)


def _entry(path: Path) -> Entry:
    manifest = read_manifest(path)
    meta = manifest.meta
    source, synthetic = (meta.describe() if meta else "unknown"), bool(meta and meta.synthetic)
    with dataset_lock(path.parent):
        status, candles = _inspect(path, manifest)
    if candles is None:
        return _bare_entry(path, source, synthetic, status)
    index = candles.frame.index
    return Entry(candles.market, candles.timeframe, path, candles.bars,
                 index[0] if candles.bars else None, index[-1] if candles.bars else None,
                 source, synthetic, status)


def _inspect(path: Path, manifest: Manifest) -> tuple[str, CandleSet | None]:
    """(status, candles) of one file, without moving it."""
    try:
        data = path.read_bytes()
    except OSError:
        return "damaged", None
    if manifest.state in _UNTRUSTED or (manifest.seal and manifest.seal.problem(data)):
        return "damaged", None
    market = market_of_dir(path.parent.name)
    assert market is not None
    try:
        candles = parse_parquet(data, market, path.stem, "", False)
    except Exception:
        return "damaged", None
    return ("ok" if manifest.state == "sealed" else "unverified"), candles
