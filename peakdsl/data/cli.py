"""`peak data …`: import, fetch, synth, list and check candle datasets.

Mounted into ``peak`` by ``peakdsl.cli``. Light at import time (typer only): pandas, pyarrow
and ccxt are imported inside the commands, so ``peak check`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Created before importing ``peakdsl.cli``: under ``python -m peakdsl.cli`` that import runs
# peakdsl/cli.py a second time, and its ``from .data.cli import data_app`` must find this.
data_app: typer.Typer = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="Market data: import, fetch, synthesise, list and check candles.")

from ..cli import EXIT_OK, EXIT_SPEC, Format, FormatOpt, RootOpt, emit, guarded  # noqa: E402
from ..lang.diagnostics import Diagnostic, diag, has_errors  # noqa: E402
from ..lang.project import UsageError  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

    from .candles import CandleSet


def _root(root: Path | None) -> Path:
    from ..lang.project import find_root

    return root if root is not None else find_root(Path.cwd())


def _usage(message: str, help: str = "") -> UsageError:
    return UsageError(diag("U005", message, "<peak>", help=help))


def _emit(diags: Sequence[Diagnostic], fmt: Format) -> None:
    """Diagnostics once, at the edge; data files are shown by line, never parsed as specs."""
    if fmt is Format.json or not diags:
        if diags or fmt is Format.json:
            emit(diags, fmt)
        return
    from ..lang.render import render_text

    cache: dict[str, Any] = {}

    def lookup(path: str) -> Any:
        if path not in cache:
            cache[path] = _text_source(path)
        return cache[path]

    sys.stderr.write(render_text(list(diags), lookup, color=sys.stderr.isatty()))


def _text_source(path: str) -> Any:
    import re

    from ..lang.source import SourceFile

    p = Path(path)
    if p.suffix.lower() not in (".csv", ".txt", ".tsv") or not p.is_file():
        return None
    try:
        text = p.read_text("utf-8-sig", errors="replace")
    except OSError:
        return None
    starts = (0, *(m.end() for m in re.finditer("\n", text)))
    return SourceFile(path, text, starts)


def _market(market: str) -> str:
    from .candles import normalise_market

    try:
        return normalise_market(market)
    except ValueError as exc:
        raise _usage(str(exc)) from None


def _timeframe(timeframe: str) -> str:
    from ..lang.schema import TIMEFRAMES

    if timeframe not in TIMEFRAMES:
        from ..lang.diagnostics import did_you_mean

        raise _usage(f"unknown timeframe `{timeframe}`",
                     did_you_mean(timeframe, TIMEFRAMES) or "use one of " + " ".join(TIMEFRAMES))
    return timeframe


def _when(text: str | None, option: str) -> pd.Timestamp | None:
    """An option's date in UTC; U005 when it is not a date or lies outside 1970–2200."""
    if text is None:
        return None
    import pandas as pd

    from .candles import EARLIEST, LATEST, format_time, utc

    try:
        when = utc(pd.Timestamp(text))
    except (ValueError, TypeError, OverflowError):
        raise _usage(f"{option} `{text}` is not a date",
                     help="write an ISO-8601 date or time, e.g. 2024-01-31 or "
                          "2024-01-31T13:00Z (UTC unless an offset is given)") from None
    if not EARLIEST <= when <= LATEST:
        raise _usage(f"{option} `{text}` is outside {format_time(EARLIEST)} … "
                     f"{format_time(LATEST)}", help="peak's candles lie between 1970 and 2200; "
                     "a date outside is usually a typo")
    return when


def _bars_fit(bars: int, timeframe: str, end: pd.Timestamp | None) -> None:
    """U005 unless ``bars`` bars of ``timeframe`` ending at ``end`` start in 1970 or later."""
    from .candles import EARLIEST, NS, format_time, timeframe_seconds
    from .synth import DEMO_END

    stop = DEMO_END if end is None else end
    first_ns = int(stop.value) - bars * timeframe_seconds(timeframe) * NS
    if first_ns < int(EARLIEST.value):
        raise _usage(f"--bars {bars:,} of {timeframe} ending {format_time(stop)} would start "
                     f"before {format_time(EARLIEST)}",
                     help="give fewer --bars or a later --end")


def _existing_file(file: Path) -> None:
    """U001 for a path that does not exist, U007 for one that is not a file."""
    if not file.exists():
        raise UsageError(diag("U001", f"no such file: {file}", str(file),
                              help="give a CSV or Parquet file of candles"))
    if not file.is_file():
        what = "a folder" if file.is_dir() else "not a regular file"
        raise UsageError(diag("U007", f"{file} is {what}", str(file),
                              help="give a CSV or Parquet file of candles"))


def _span(candles: CandleSet) -> str:
    from .candles import format_time

    if not candles.bars:
        return "no bars"
    return f"{format_time(candles.frame.index[0])} … {format_time(candles.frame.index[-1])}"


MarketArg = Annotated[str, typer.Argument(help="market, BASE/QUOTE (e.g. BTC/EUR)")]
TimeframeArg = Annotated[str, typer.Argument(help="bar interval, e.g. 1h")]


# ------------------------------------------------------------------------------ import

@data_app.command("import")
@guarded
def import_cmd(
    file: Annotated[Path, typer.Argument(help="a CSV or Parquet file of candles")],
    market: Annotated[str, typer.Option("--market", help="the market, BASE/QUOTE")],
    timeframe: Annotated[str | None, typer.Option(
        "--timeframe", help="bar interval [default: inferred from the spacing]")] = None,
    column: Annotated[list[str] | None, typer.Option(
        "--column", help="map a column: ROLE=NAME (roles: time open high low close "
                         "volume); repeatable")] = None,
    time_format: Annotated[str, typer.Option(
        "--time-format", help="auto, iso, s, ms, us, ns or a strptime pattern")] = "auto",
    replace: Annotated[bool, typer.Option(
        "--replace", help="replace the cached dataset instead of merging into it")] = False,
    root: RootOpt = None, format: FormatOpt = Format.text,
) -> None:
    """Import candles from a file into the cache (validated; nothing written on errors)."""
    from ..lang.project import display_path
    from .cache import Meta, cache_path, merge, read_meta, store
    from .importer import import_file, time_format_problem

    market = _market(market)
    if timeframe is not None:
        timeframe = _timeframe(timeframe)
    _existing_file(file)
    problem = time_format_problem(time_format)
    if problem is not None:
        raise _usage(problem)
    mapping: dict[str, str] = {}
    for item in column or []:
        role, sep, name = item.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise _usage(f"--column `{item}` is not ROLE=NAME", help="e.g. --column time=Date")
        mapping[role.strip().lower()] = name.strip()
    shown = display_path(file)
    result = import_file(file, market, timeframe, columns=mapping, time_format=time_format,
                         display=shown)
    if result.candles is None or has_errors(result.diagnostics):
        _emit(result.diagnostics, format)
        raise typer.Exit(EXIT_SPEC)
    candles = result.candles
    base = _root(root)
    path = cache_path(base, market, candles.timeframe)
    old_meta = read_meta(path)
    old = None if replace else _merge_base(base, market, candles.timeframe, format)
    if old is not None and old.synthetic:
        old = None
    source = f"cache: {display_path(path)}"
    merged = merge(old, candles, source) if old is not None else candles.with_source(source)
    origin = "import" if old is None or old_meta is None or old_meta.origin == "import" \
        else "mixed"
    detail = shown if origin == "import" else \
        f"{old_meta.describe() if old_meta else 'cache'} + imported from {shown}"
    ranges = old_meta.ranges if old is not None and old_meta is not None else ()
    store(base, merged, Meta(market, candles.timeframe, origin, False, detail,
                             old_meta.exchange if old is not None and old_meta else None,
                             None, ranges))
    if result.diagnostics:
        _emit(result.diagnostics, format)
    if format is Format.text:
        extra = [f"{result.duplicates} duplicate(s) dropped"] if result.duplicates else []
        extra += [f"{result.gaps} gap(s) kept"] if result.gaps else []
        sys.stdout.write(
            f"imported {candles.bars:,} bars of {market} {candles.timeframe} from {shown} "
            f"({_span(candles)}) into {display_path(path)}"
            + (f"; {', '.join(extra)}" if extra else "")
            + (f"; the dataset now has {merged.bars:,} bars" if old is not None else "")
            + "\n")
    raise typer.Exit(EXIT_OK)


def _merge_base(base: Path, market: str, timeframe: str, format: Format) -> CandleSet | None:
    """The cached dataset an import merges into; exit 1 (nothing written) when it cannot be
    trusted: damaged (D013, now quarantined) or without a checksum (D014)."""
    from . import DataError
    from .cache import load_cached

    try:
        return load_cached(base, market, timeframe, quarantined_ok=True)
    except DataError as exc:
        _emit(exc.diagnostics, format)
        if format is Format.text:
            sys.stderr.write("nothing was imported: the cached dataset it would merge into "
                             "cannot be trusted. Pass --replace to start the dataset afresh"
                             + (", or run the import again: the damaged file is out of the "
                                "way" if any(d.code == "D013" for d in exc.diagnostics)
                                else "") + "\n")
        raise typer.Exit(EXIT_SPEC) from None


# ------------------------------------------------------------------------------ fetch

@data_app.command("fetch")
@guarded
def fetch_cmd(
    exchange: Annotated[str, typer.Argument(help="a ccxt exchange id, e.g. binance")],
    market: MarketArg, timeframe: TimeframeArg,
    since: Annotated[str, typer.Option("--since", help="first bar, ISO-8601 (UTC)")],
    until: Annotated[str | None, typer.Option(
        "--until", help="end, exclusive, ISO-8601 [default: the last closed bar]")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="replace the cached dataset instead of merging into it")] = False,
    root: RootOpt = None, format: FormatOpt = Format.text,
) -> None:
    """Fetch candles from an exchange into the cache (resumable: only what is missing)."""
    from ..lang.project import display_path
    from . import DataError
    from .candles import format_time
    from .fetch import fetch_ohlcv

    market, timeframe = _market(market), _timeframe(timeframe)
    start = _when(since, "--since")
    end = _when(until, "--until")
    assert start is not None
    if end is not None and end <= start:
        raise _usage("--until must be after --since")
    try:
        report = fetch_ohlcv(exchange, market, timeframe, start, end, root=_root(root),
                             replace=replace)
    except DataError as exc:
        _emit(exc.diagnostics, format)
        raise typer.Exit(EXIT_SPEC) from None
    if report.diagnostics:
        _emit(report.diagnostics, format)
    if format is Format.text:
        out = sys.stdout
        for note in report.notes:
            out.write(f"note: {note}\n")
        asked = f"{format_time(report.since)} … {format_time(report.until)}"
        if not report.missing:
            out.write(f"{exchange} {market} {timeframe}: nothing to fetch; the cache already "
                      f"covers {asked}\n")
        else:
            out.write(f"{exchange} {market} {timeframe}: {report.new_bars:,} new bars for "
                      f"{asked} in {report.requests} request(s)"
                      + (f", {report.retries} retried" if report.retries else "") + "\n")
        if report.bars:
            out.write(f"cache {display_path(report.path)}: {report.bars:,} bars, "
                      f"{format_time(report.first)} … {format_time(report.last)}"
                      + ("" if report.complete else " (incomplete; run again to resume)")
                      + "\n")
    raise typer.Exit(EXIT_SPEC if has_errors(report.diagnostics) else EXIT_OK)


# ------------------------------------------------------------------------------ synth

@data_app.command("synth")
@guarded
def synth_cmd(
    market: MarketArg, timeframe: TimeframeArg,
    bars: Annotated[int, typer.Option("--bars", help="number of bars")] = 5000,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="random seed [default: derived from market and timeframe]")] = None,
    end: Annotated[str | None, typer.Option(
        "--end", help="when the last bar closes [default: 2026-01-01T00:00Z]")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="replace a cached dataset of real (non-synthetic) data")] = False,
    root: RootOpt = None, format: FormatOpt = Format.text,
) -> None:
    """Write a deterministic synthetic market into the cache (marked synthetic)."""
    from ..lang.project import display_path
    from .cache import Meta, cache_path, read_meta, store
    from .synth import MAX_BARS, demo_seed, synth_market

    market, timeframe = _market(market), _timeframe(timeframe)
    if not 1 <= bars <= MAX_BARS:
        raise _usage(f"--bars must be between 1 and {MAX_BARS:,}")
    if seed is not None and not 0 <= seed < 2**63:
        raise _usage("--seed must be between 0 and 2**63 - 1")
    stop = _when(end, "--end")
    _bars_fit(bars, timeframe, stop)
    base = _root(root)
    path = cache_path(base, market, timeframe)
    meta = read_meta(path)
    if path.exists() and not force and (meta is None or not meta.synthetic):
        what = meta.describe() if meta else "unknown source"
        raise _usage(f"{display_path(path)} holds real data ({what}); synthetic data would "
                     "replace it",
                     help="pass --force to replace it, or synthesise another market")
    seed = demo_seed(market, timeframe) if seed is None else seed
    candles = synth_market(market, timeframe, bars, seed, stop)
    store(base, candles, Meta(market, timeframe, "synth", True, f"seed {seed}", None, seed))
    if format is Format.json:
        sys.stdout.write(json.dumps({"market": market, "timeframe": timeframe,
                                     "bars": candles.bars, "seed": seed,
                                     "path": display_path(path),
                                     "fingerprint": candles.fingerprint}, indent=2) + "\n")
    else:
        sys.stdout.write(f"synthesised {candles.bars:,} bars of {market} {timeframe} "
                         f"(seed {seed}, {_span(candles)}) into {display_path(path)}\n")
    raise typer.Exit(EXIT_OK)


# ------------------------------------------------------------------------------ list

@data_app.command("list")
@guarded
def list_cmd(root: RootOpt = None, format: FormatOpt = Format.text) -> None:
    """List the cached datasets: market, timeframe, bars, from, to, source, status."""
    from ..lang.project import display_path
    from .cache import DATA_DIR, list_cached
    from .candles import format_time

    base = _root(root)
    entries = list_cached(base)
    rows = [{"market": e.market, "timeframe": e.timeframe, "bars": e.bars,
             "from": format_time(e.start) if e.start is not None else "",
             "to": format_time(e.end) if e.end is not None else "",
             "source": e.source, "status": e.status, "synthetic": e.synthetic,
             "path": display_path(e.path)}
            for e in entries]
    if format is Format.json:
        sys.stdout.write(json.dumps({"datasets": rows}, indent=2) + "\n")
        raise typer.Exit(EXIT_OK)
    if not rows:
        sys.stdout.write(f"no datasets in {display_path(base / DATA_DIR)}/; runs use the "
                         "synthetic demo market (data source: synthetic demo)\n")
        raise typer.Exit(EXIT_OK)
    sys.stdout.write(_table(rows))
    if any(r["status"] != "ok" for r in rows):
        sys.stdout.write("`peak data check` says what is wrong with a dataset whose status is "
                         "not ok, and how to fix it\n")
    raise typer.Exit(EXIT_OK)


LIST_COLUMNS = ("market", "timeframe", "bars", "from", "to", "source", "status")


def _table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns; bars right-aligned with thousands separators."""
    table = [{k: k for k in LIST_COLUMNS}] + [
        {k: (f"{r[k]:,}" if k == "bars" else str(r[k])) for k in LIST_COLUMNS} for r in rows]
    widths = {k: max(len(r[k]) for r in table) for k in LIST_COLUMNS}
    lines = ["  ".join(r[k].rjust(widths[k]) if k == "bars" else r[k].ljust(widths[k])
                       for k in LIST_COLUMNS).rstrip() for r in table]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ check

@data_app.command("check")
@guarded
def check_cmd(market: Annotated[str | None, typer.Argument(help="only this market")] = None,
              timeframe: Annotated[str | None, typer.Argument(
                  help="only this timeframe")] = None,
              adopt: Annotated[bool, typer.Option(
                  "--adopt", help="record the checksum of datasets cached before peak "
                  "verified its cache, if they pass the checks")] = False,
              root: RootOpt = None, format: FormatOpt = Format.text) -> None:
    """Verify every cached dataset and report coverage, gaps and anomalies (exit 1 on
    damaged, unverified or invalid data)."""
    from ..lang.project import display_path
    from .cache import DATA_DIR

    base = _root(root)
    targets = _check_targets(base, market, timeframe)
    if not targets:
        if format is Format.json:
            sys.stdout.write(json.dumps({"datasets": [], "diagnostics": []}, indent=2) + "\n")
        else:
            sys.stdout.write(f"no datasets in {display_path(base / DATA_DIR)}/; nothing to "
                             "check\n")
        raise typer.Exit(EXIT_OK)
    diags: list[Diagnostic] = []
    docs: list[dict[str, Any]] = []
    out: list[str] = []
    for mkt, tf in targets:
        doc, lines, found = _check_dataset(base, mkt, tf, adopt)
        docs.append(doc)
        out.extend(lines)
        diags.extend(found)
    if format is Format.json:
        doc = json.loads(_json(diags))
        doc["datasets"] = docs
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n".join(out) + "\n")
        _emit(diags, format)
    raise typer.Exit(EXIT_SPEC if has_errors(diags) else EXIT_OK)


def _check_targets(base: Path, market: str | None,
                   timeframe: str | None) -> list[tuple[str, str]]:
    """(market, timeframe) of the datasets to check; U005 when a named one is not cached."""
    from .cache import list_cached

    entries = [(e.market, e.timeframe) for e in list_cached(base)]
    if market is None:
        return entries
    market = _market(market)
    tf = None if timeframe is None else _timeframe(timeframe)
    chosen = [(m, t) for m, t in entries if m == market and tf in (None, t)]
    if not chosen:
        raise _usage(f"nothing cached for {market}" + (f" {tf}" if tf else ""),
                     help="`peak data list` shows the cached datasets")
    return chosen


STATUS_OF = {"D013": "damaged", "D014": "unverified", "D001": "unreadable"}


def _check_dataset(base: Path, market: str, timeframe: str, adopt: bool
                   ) -> tuple[dict[str, Any], list[str], list[Diagnostic]]:
    """One dataset: (its JSON doc, its text lines, its diagnostics)."""
    from ..lang.project import display_path
    from . import DataError
    from .cache import cache_path, load_cached

    shown = display_path(cache_path(base, market, timeframe))
    found: list[Diagnostic] = []
    adopted = False
    try:
        if adopt:
            adopted, found = _adopt(base, market, timeframe, shown)
        candles = load_cached(base, market, timeframe)
    except DataError as exc:
        found.extend(exc.diagnostics)
        status = next((STATUS_OF[d.code] for d in exc.diagnostics if d.code in STATUS_OF),
                      "invalid")
        return ({"market": market, "timeframe": timeframe, "path": shown, "status": status},
                [f"{market} {timeframe}  {shown}  ({status}; see below)"], found)
    assert candles is not None
    report, problems = _check_one(candles, shown)
    lines = _report_lines(candles, report, shown)
    if adopted:
        lines.insert(1, "  checksum   adopted: recorded the current contents' sha256")
    return ({"market": market, "timeframe": timeframe, "path": shown, "source": candles.source,
             "synthetic": candles.synthetic, "status": "ok", "adopted": adopted,
             **report.as_dict()}, lines, problems)


def _adopt(base: Path, market: str, timeframe: str, shown: str
           ) -> tuple[bool, list[Diagnostic]]:
    """Seal a pre-checksum dataset if it passes the checks; the errors that stopped it."""
    from .cache import adopt

    errors: list[Diagnostic] = []

    def accept(candles: CandleSet) -> bool:
        errors.extend(d for d in _check_one(candles, shown)[1] if d.is_error)
        return not errors

    return adopt(base, market, timeframe, accept), errors


def _report_lines(candles: CandleSet, report: Any, shown: str) -> list[str]:
    from .candles import format_duration, format_time

    largest = report.largest_gap
    out = [f"{candles.market} {candles.timeframe}  {shown}"
           + ("  (synthetic)" if candles.synthetic else "")]
    if report.bars:
        out.append(f"  bars       {report.bars:,}  {format_time(report.start_ns)} … "
                   f"{format_time(report.end_ns)}")
    out.append(f"  coverage   {report.coverage * 100:.2f} % of {report.expected:,} "
               "expected bars")
    out.append(f"  gaps       {len(report.gaps):,}" + (
        f" ({report.missing:,} missing bars); largest {largest.missing:,} bars "
        f"({format_duration(largest.seconds)}) after {format_time(largest.prev_ns)}"
        if largest else ""))
    out.append(f"  anomalies  zero volume {report.zero_volume:,}, extreme returns "
               f"(>10σ) {report.extreme_returns:,}, flat bars {report.flat_bars:,}")
    return out


def _json(diags: Sequence[Diagnostic]) -> str:
    from ..lang.render import render_json

    return render_json(list(diags))


def _check_one(candles: CandleSet, shown: str) -> tuple[Any, list[Diagnostic]]:
    from .candles import NS, format_time
    from .quality import assess, off_grid, row_problems

    f = candles.frame
    found: list[Diagnostic] = []
    values = {c: f[c].to_numpy() for c in f.columns}
    problems = row_problems(values)
    for p in problems[:50]:
        found.append(diag(p.code, f"row {p.row + 1} ({format_time(f.index[p.row])}): "
                          f"{p.message}", shown,
                          help="the cache was changed outside peak; import or fetch again"))
    times = f.index.as_unit("ns").asi8
    for i in off_grid(times, candles.bar_seconds)[:50]:
        step = int(times[i] - times[i - 1]) // NS
        found.append(diag("D010", f"row {i + 1} ({format_time(f.index[i])}) is {step} s "
                          f"after the previous bar; {candles.timeframe} bars are "
                          f"{candles.bar_seconds} s apart", shown,
                          help="the cache was changed outside peak; import or fetch again"))
    report = assess(candles)
    if report.gaps:
        largest = report.largest_gap
        assert largest is not None
        found.append(diag("D009", f"{candles.market} {candles.timeframe}: {len(report.gaps):,} "
                          f"gap{'s' * (len(report.gaps) != 1)}, {report.missing:,} missing "
                          f"bars; the largest: {largest.describe()}", shown,
                          help="gaps are kept, not filled; fetch the range again or accept "
                               "them"))
    return report, found
