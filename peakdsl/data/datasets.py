"""What `peak data import|synth|check` do to the cache, as functions returning typed results.

The command line only parses, calls these and renders what they return (``peakdsl.cli.data``);
a notebook or a script gets the same behaviour: an import validated and merged into the cached
dataset (nothing written on errors), a synthetic market that never silently replaces real
data, and a check of every cached dataset that reports coverage, gaps and anomalies as
diagnostics. Raises ``DataError`` when a dataset cannot be trusted and ``UsageError`` when what
was asked for makes no sense here (synthetic data over real data, a dataset that is not
cached).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..lang.diagnostics import Diagnostic, diag
from ..lang.project import UsageError, display_path
from . import DataError
from .cache import (
    Meta,
    adopt,
    cache_path,
    list_cached,
    load_cached,
    merge,
    read_meta,
    store,
)
from .candles import NS, CandleSet, format_time
from .importer import ImportResult, import_file
from .names import market_mismatch, other_market
from .quality import QualityReport, assess, off_grid, row_problems
from .synth import demo_seed, synth_market

LISTED = 50  # row diagnostics listed per dataset: a damaged cache can have millions
STATUS_OF = {"D013": "damaged", "D014": "unverified", "D001": "unreadable"}
OUTSIDE = "the cache was changed outside peak; import or fetch again"


# ------------------------------------------------------------------------------ import

@dataclass(frozen=True)
class Imported:
    """An import: the file's result, and where it went (``path`` None: nothing written).

    ``dataset_bars`` is the size of the cached dataset after merging when the import was
    merged into one, else None (the import started the dataset or replaced it).
    """

    result: ImportResult
    path: Path | None = None
    dataset_bars: int | None = None


def import_into_cache(root: Path, file: Path, market: str, timeframe: str | None, *,
                      columns: Mapping[str, str], time_format: str, replace: bool
                      ) -> Imported:
    """Validate ``file`` and merge it into the cached dataset (or replace it).

    Nothing is written when the file has errors. Raises DataError (D013, D014) when the cached
    dataset it would merge into cannot be trusted; ``replace`` starts afresh instead.
    """
    shown = display_path(file)
    result = import_file(file, market, timeframe, columns=dict(columns),
                         time_format=time_format, display=shown)
    if not result.ok or result.candles is None:
        return Imported(result)
    result = _named_market(result, market, file.name, shown)
    candles = result.candles
    assert candles is not None
    path = cache_path(root, market, candles.timeframe)
    old_meta = read_meta(path)
    old = None if replace else load_cached(root, market, candles.timeframe,
                                           quarantined_ok=True)
    if old is not None and old.synthetic:
        old = None
    if old is not None and old.bars and old.has_volume != candles.has_volume:
        return Imported(_refused(result, _volume_clash(old, candles, shown)))
    source = f"cache: {display_path(path)}"
    merged = merge(old, candles, source) if old is not None else candles.with_source(source)
    store(root, merged, _import_meta(candles, shown, old is not None, old_meta))
    return Imported(result, path, merged.bars if old is not None else None)


def _volume_clash(old: CandleSet, new: CandleSet, shown: str) -> Diagnostic:
    """D002: merged, the dataset's volume would be known on some bars and not on others."""
    has, lacks = ("the cached dataset", shown) if old.has_volume else (shown, "the cached "
                                                                        "dataset")
    return diag("D002", f"{lacks} has no volume column but {has} has volume: merged, "
                f"{old.market} {old.timeframe} volume would be unknown on some bars", shown,
                help="pass --replace to start the dataset afresh from this file, or import a "
                     "file with the same columns")


def _named_market(result: ImportResult, market: str, name: str, shown: str) -> ImportResult:
    """The result with D020 when the file's name or symbol column states another market."""
    stated = other_market(market, name, result.symbols)
    if stated is None:
        return result
    warning = market_mismatch(stated, market, shown, bool(result.symbols))
    return replace(result, diagnostics=(*result.diagnostics, warning))


def _refused(result: ImportResult, problem: Diagnostic) -> ImportResult:
    return replace(result, candles=None, diagnostics=(*result.diagnostics, problem))


def _import_meta(candles: CandleSet, shown: str, merged: bool, old: Meta | None) -> Meta:
    """Provenance of the dataset after an import: pure ``import``, or ``mixed`` with what was
    fetched or synthesised before (its exchange and fetched ranges kept)."""
    origin = "import" if not merged or old is None or old.origin == "import" else "mixed"
    detail = shown if origin == "import" else \
        f"{old.describe() if old else 'cache'} + imported from {shown}"
    kept = old if merged else None
    return Meta(candles.market, candles.timeframe, origin, False, detail,
                kept.exchange if kept else None, None, kept.ranges if kept else ())


# ------------------------------------------------------------------------------ synth

@dataclass(frozen=True)
class Synthesised:
    """A synthetic market written into the cache (marked synthetic) and its seed."""

    candles: CandleSet
    path: Path
    seed: int


def synth_into_cache(root: Path, market: str, timeframe: str, bars: int, seed: int | None,
                     end: pd.Timestamp | None, force: bool) -> Synthesised:
    """Write a deterministic synthetic market; U005 instead of replacing real data
    (unless ``force``). ``seed`` None: derived from market and timeframe, like the demo's."""
    path = cache_path(root, market, timeframe)
    meta = read_meta(path)
    if path.exists() and not force and (meta is None or not meta.synthetic):
        what = meta.describe() if meta else "unknown source"
        raise UsageError(diag("U005", f"{display_path(path)} holds real data ({what}); "
                              "synthetic data would replace it", "<peak>",
                              help="pass --force to replace it, or synthesise another market"))
    seed = demo_seed(market, timeframe) if seed is None else seed
    candles = synth_market(market, timeframe, bars, seed, end)
    store(root, candles, Meta(market, timeframe, "synth", True, f"seed {seed}", None, seed))
    return Synthesised(candles, path, seed)


# ------------------------------------------------------------------------------ check

@dataclass(frozen=True)
class DatasetCheck:
    """One cached dataset checked. ``status``: ok, damaged, unverified, unreadable or invalid;
    ``candles`` and ``report`` are None unless it could be loaded."""

    market: str
    timeframe: str
    path: Path
    status: str
    diagnostics: tuple[Diagnostic, ...]
    candles: CandleSet | None = None
    report: QualityReport | None = None
    adopted: bool = False


def select_datasets(root: Path, market: str | None,
                    timeframe: str | None) -> list[tuple[str, str]]:
    """(market, timeframe) of the cached datasets to check; U005 when a named one is not
    cached. ``market`` and ``timeframe`` are normalised already."""
    entries = [(e.market, e.timeframe) for e in list_cached(root)]
    if market is None:
        return entries
    chosen = [(m, t) for m, t in entries if m == market and timeframe in (None, t)]
    if not chosen:
        raise UsageError(diag("U005", f"nothing cached for {market}"
                              + (f" {timeframe}" if timeframe else ""), "<peak>",
                              help="`peak data list` shows the cached datasets"))
    return chosen


def check_dataset(root: Path, market: str, timeframe: str, adopt_it: bool) -> DatasetCheck:
    """Verify one dataset's seal and rows, then assess coverage, gaps and anomalies.

    ``adopt_it``: first seal a dataset cached before peak verified its cache, if its rows pass.
    """
    path = cache_path(root, market, timeframe)
    found: list[Diagnostic] = []
    adopted = False
    try:
        if adopt_it:
            adopted, found = _adopt(root, market, timeframe, display_path(path))
        candles = load_cached(root, market, timeframe)
    except DataError as exc:
        found.extend(exc.diagnostics)
        status = next((STATUS_OF[d.code] for d in exc.diagnostics if d.code in STATUS_OF),
                      "invalid")
        return DatasetCheck(market, timeframe, path, status, tuple(found))
    assert candles is not None
    report, problems = assess_rows(candles, display_path(path))
    return DatasetCheck(market, timeframe, path, "ok", tuple(problems), candles, report,
                        adopted)


def _adopt(root: Path, market: str, timeframe: str, shown: str
           ) -> tuple[bool, list[Diagnostic]]:
    """Seal a pre-checksum dataset if it passes the checks; the errors that stopped it."""
    errors: list[Diagnostic] = []

    def accept(candles: CandleSet) -> bool:
        errors.extend(d for d in assess_rows(candles, shown)[1] if d.is_error)
        return not errors

    return adopt(root, market, timeframe, accept), errors


def assess_rows(candles: CandleSet, shown: str) -> tuple[QualityReport, list[Diagnostic]]:
    """The quality report and the findings: bad rows, bars off the grid (the first 50 of
    each) and gaps (D009, one summary)."""
    found = [*_row_findings(candles, shown), *_grid_findings(candles, shown)]
    report = assess(candles)
    largest = report.largest_gap
    if report.gaps and largest is not None:
        found.append(diag("D009", f"{candles.market} {candles.timeframe}: "
                          f"{len(report.gaps):,} gap{'s' * (len(report.gaps) != 1)}, "
                          f"{report.missing:,} missing bars; the largest: "
                          f"{largest.describe()}", shown,
                          help="gaps are kept, not filled; fetch the range again or accept "
                               "them"))
    return report, found


def _row_findings(candles: CandleSet, shown: str) -> list[Diagnostic]:
    f = candles.frame
    problems = row_problems({c: f[c].to_numpy() for c in f.columns},
                            no_volume=not candles.has_volume)
    return [diag(p.code, f"row {p.row + 1} ({format_time(f.index[p.row])}): {p.message}",
                 shown, help=OUTSIDE) for p in problems[:LISTED]]


def _grid_findings(candles: CandleSet, shown: str) -> list[Diagnostic]:
    f = candles.frame
    times = f.index.as_unit("ns").asi8
    found = []
    for i in off_grid(times, candles.bar_seconds)[:LISTED]:
        step = int(times[i] - times[i - 1]) // NS
        found.append(diag("D010", f"row {i + 1} ({format_time(f.index[i])}) is {step} s "
                          f"after the previous bar; {candles.timeframe} bars are "
                          f"{candles.bar_seconds} s apart", shown, help=OUTSIDE))
    return found
