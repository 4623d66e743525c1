"""`peak data …`: import, fetch, synth, list and check candle datasets.

The work is in the library (``peakdsl.data.datasets``, ``peakdsl.data.fetch``,
``peakdsl.data.cache``); this module checks the command line — markets, timeframes and dates
validate themselves as options — and renders what comes back: text for people, or one JSON
document with ``--json`` (``--format json`` is the older spelling). Light at import time
(typer only): pandas, pyarrow and ccxt are imported inside the commands, so ``peak check``
stays fast.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ..lang.diagnostics import Diagnostic, diag, has_errors
from ..lang.project import UsageError
from .options import FormatOpt, JsonOpt, RootOpt, output_format
from .root import EXIT_OK, EXIT_SPEC, Format, emit, guarded, json_document, write_json

if TYPE_CHECKING:
    import pandas as pd

    from ..data.candles import CandleSet
    from ..data.datasets import DatasetCheck, Imported
    from ..data.fetch import FetchReport
    from ..data.importer import ImportResult
    from ..lang.source import SourceFile

data_app: typer.Typer = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="Market data: import, fetch, synthesise, list and check candles.")

TEXT_DATA = (".csv", ".txt", ".tsv")


# ------------------------------------------------------------------------------ options

def _usage(message: str, help: str = "") -> UsageError:
    return UsageError(diag("U005", message, "<peak>", help=help))


def market_value(market: str | None) -> str | None:
    """A market as BASE/QUOTE (normalised), U005 otherwise."""
    from ..data.candles import normalise_market

    if market is None:
        return None
    try:
        return normalise_market(market)
    except ValueError as exc:
        raise _usage(str(exc)) from None


def timeframe_value(timeframe: str | None) -> str | None:
    """A timeframe peak knows (1m … 1w), U005 with a suggestion otherwise."""
    from ..lang.diagnostics import did_you_mean
    from ..lang.schema import TIMEFRAMES

    if timeframe is None or timeframe in TIMEFRAMES:
        return timeframe
    raise _usage(f"unknown timeframe `{timeframe}`",
                 did_you_mean(timeframe, TIMEFRAMES) or "use one of " + " ".join(TIMEFRAMES))


def when(text: str | None, option: str) -> pd.Timestamp | None:
    """An option's date in UTC; U005 when it is not a date or lies outside 1970–2200."""
    if text is None:
        return None
    import pandas as pd

    from ..data.candles import EARLIEST, LATEST, format_time, utc

    try:
        stamp = utc(pd.Timestamp(text))
    except (ValueError, TypeError, OverflowError):
        raise _usage(f"{option} `{text}` is not a date",
                     help="write an ISO-8601 date or time, e.g. 2024-01-31 or "
                          "2024-01-31T13:00Z (UTC unless an offset is given)") from None
    if not EARLIEST <= stamp <= LATEST:
        raise _usage(f"{option} `{text}` is outside {format_time(EARLIEST)} … "
                     f"{format_time(LATEST)}", help="peak's candles lie between 1970 and 2200; "
                     "a date outside is usually a typo")
    return stamp


def date_option(option: str) -> Callable[[str | None], str | None]:
    """A callback checking a date option (``--since``, ``--until``, ``--end``) while parsed."""
    def check(value: str | None) -> str | None:
        when(value, option)
        return value
    return check


def existing_file(file: Path) -> Path:
    """U001 for a path that does not exist, U007 for one that is not a regular file."""
    if not file.exists():
        raise UsageError(diag("U001", f"no such file: {file}", str(file),
                              help="give a CSV or Parquet file of candles"))
    if not file.is_file():
        what = "a folder" if file.is_dir() else "not a regular file"
        raise UsageError(diag("U007", f"{file} is {what}", str(file),
                              help="give a CSV or Parquet file of candles"))
    return file


def time_format_value(value: str) -> str:
    """``--time-format``: auto, a unit or a strptime pattern peak can use."""
    from ..data.importer import time_format_problem

    problem = time_format_problem(value)
    if problem is not None:
        raise _usage(problem)
    return value


def columns_value(items: list[str] | None) -> list[str] | None:
    """Every ``--column`` is ROLE=NAME."""
    for item in items or []:
        role, sep, name = item.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise _usage(f"--column `{item}` is not ROLE=NAME", help="e.g. --column time=Date")
    return items


def bars_value(bars: int) -> int:
    """``--bars``: 1 … 5,000,000 (the synthetic generator's bound)."""
    from ..data.synth import MAX_BARS

    if not 1 <= bars <= MAX_BARS:
        raise _usage(f"--bars must be between 1 and {MAX_BARS:,}")
    return bars


def synth_seed(seed: int | None) -> int | None:
    """``--seed`` of a synthetic market: 0 … 2**63 - 1."""
    if seed is not None and not 0 <= seed < 2**63:
        raise _usage("--seed must be between 0 and 2**63 - 1")
    return seed


MarketArg = Annotated[str, typer.Argument(help="market, BASE/QUOTE (e.g. BTC/EUR)",
                                          callback=market_value)]
TimeframeArg = Annotated[str, typer.Argument(help="bar interval, e.g. 1h",
                                             callback=timeframe_value)]
ReplaceOpt = Annotated[bool, typer.Option(
    "--replace", help="replace the cached dataset instead of merging into it")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="list every gap (and, for check, every anomaly), not the first few")]
LISTED = 5  # gaps and anomalies of each kind `peak data check` lists without --verbose


def _root(root: Path | None) -> Path:
    from ..lang.project import find_root

    return root if root is not None else find_root(Path.cwd())


# ------------------------------------------------------------------------------ rendering

def _emit(diags: Sequence[Diagnostic], fmt: Format) -> None:
    """Diagnostics once, at the edge; data files are shown by line, never parsed as specs."""
    if fmt is Format.json:
        emit(diags, fmt)
    elif diags:
        cache: dict[str, SourceFile | None] = {}

        def lookup(path: str) -> SourceFile | None:
            if path not in cache:
                cache[path] = _text_source(path)
            return cache[path]

        emit(diags, fmt, sources=lookup)


def _text_source(path: str) -> SourceFile | None:
    """A CSV (or other text) data file as a source, for snippets under row diagnostics."""
    from ..lang.source import SourceFile

    p = Path(path)
    if p.suffix.lower() not in TEXT_DATA or not p.is_file():
        return None
    try:
        text = p.read_text("utf-8-sig", errors="replace")
    except OSError:
        return None
    starts = (0, *(m.end() for m in re.finditer("\n", text)))
    return SourceFile(path, text, starts)


def _span(candles: CandleSet) -> str:
    from ..data.candles import format_time

    if not candles.bars:
        return "no bars"
    return f"{format_time(candles.frame.index[0])} … {format_time(candles.frame.index[-1])}"


def _shown(path: Path) -> str:
    from ..lang.project import display_path

    return display_path(path)


# ------------------------------------------------------------------------------ import

@data_app.command("import")
@guarded
def import_cmd(
    file: Annotated[Path, typer.Argument(help="a CSV or Parquet file of candles",
                                         callback=existing_file)],
    market: Annotated[str, typer.Option("--market", help="the market, BASE/QUOTE",
                                        callback=market_value)],
    timeframe: Annotated[str | None, typer.Option(
        "--timeframe", help="bar interval [default: inferred from the spacing]",
        callback=timeframe_value)] = None,
    column: Annotated[list[str] | None, typer.Option(
        "--column", help="map a column: ROLE=NAME (roles: time open high low close "
                         "volume); repeatable", callback=columns_value)] = None,
    time_format: Annotated[str, typer.Option(
        "--time-format", help="auto, iso, s, ms, us, ns or a strptime pattern",
        callback=time_format_value)] = "auto",
    replace: ReplaceOpt = False, verbose: VerboseOpt = False, root: RootOpt = None,
    as_json: JsonOpt = False, format: FormatOpt = Format.text,
) -> None:
    """Import candles from a file into the cache (validated; nothing written on errors)."""
    from ..data import DataError
    from ..data.datasets import import_into_cache

    fmt = output_format(format, as_json)
    mapping = {role.strip().lower(): name.strip()
               for role, _, name in (item.partition("=") for item in column or [])}
    try:
        done = import_into_cache(_root(root), file, market, timeframe, columns=mapping,
                                 time_format=time_format, replace=replace)
    except DataError as exc:
        _untrusted_cache(exc.diagnostics, fmt)
    diags = _import_diagnostics(done.result, verbose or fmt is Format.json)
    if done.path is None:
        _emit(diags, fmt)
        raise typer.Exit(EXIT_SPEC)
    if fmt is Format.json:
        sys.stdout.write(json_document(diags, **_import_doc(done, market)))
    else:
        _emit(diags, fmt)
        sys.stdout.write(_import_line(done, market, file))
    raise typer.Exit(EXIT_OK)


def _import_diagnostics(result: ImportResult, every_gap: bool) -> tuple[Diagnostic, ...]:
    """The import's findings; with ``every_gap`` one D009 per gap instead of the summary."""
    if not every_gap or not result.gap_details:
        return result.diagnostics
    rest = [d for d in result.diagnostics if d.code != "D009"]
    return tuple(sorted([*rest, *result.gap_details],
                        key=lambda d: (d.span.line, d.code, d.message)))


def _untrusted_cache(diags: Sequence[Diagnostic], fmt: Format) -> NoReturn:
    """The cached dataset an import would merge into is damaged (D013, now quarantined) or
    unsealed (D014): say so, and how to go on; exit 1 with nothing imported."""
    _emit(diags, fmt)
    if fmt is Format.text:
        sys.stderr.write("nothing was imported: the cached dataset it would merge into "
                         "cannot be trusted. Pass --replace to start the dataset afresh"
                         + (", or run the import again: the damaged file is out of the "
                            "way" if any(d.code == "D013" for d in diags) else "") + "\n")
    raise typer.Exit(EXIT_SPEC)


def _import_line(done: Imported, market: str, file: Path) -> str:
    result = done.result
    assert result.candles is not None and done.path is not None
    candles = result.candles
    extra = [f"{result.resorted:,} row(s) out of order, re-sorted"] if result.resorted else []
    extra += [f"{result.duplicates} duplicate(s) dropped"] if result.duplicates else []
    extra += [f"{result.gaps} gap(s) kept"] if result.gaps else []
    extra += [_DERIVED[result.derived]] if result.derived else []
    extra += [empty_rows_text(result)] if result.empty_lines else []
    return (f"imported {candles.bars:,} bars of {market} {candles.timeframe} from "
            f"{_shown(file)} ({_span(candles)}) into {_shown(done.path)}"
            + (f"; {', '.join(extra)}" if extra else "")
            + (f"; the dataset now has {done.dataset_bars:,} bars"
               if done.dataset_bars is not None else "") + "\n")


EMPTY_LISTED = 3  # line numbers of empty rows named in the summary; the rest are counted


def empty_rows_text(result: ImportResult) -> str:
    """``2 empty rows skipped (lines 5, 9)``: rows without a single value (``,,,,,`` or a
    blank line) are not candles, so the import leaves them out, and says where they were."""
    lines = result.empty_lines
    named = ", ".join(f"{line:,}" for line in lines[:EMPTY_LISTED])
    more = f", … ({len(lines) - EMPTY_LISTED:,} more)" if len(lines) > EMPTY_LISTED else ""
    rows, where = ("row", "line") if len(lines) == 1 else ("rows", "lines")
    return f"{len(lines):,} empty {rows} skipped ({where} {named}{more})"


_DERIVED = {("volume",): "no volume", ("open", "high", "low"): "close only",
            ("open", "high", "low", "volume"): "close only, no volume"}


def _import_doc(done: Imported, market: str) -> dict[str, Any]:
    result = done.result
    assert result.candles is not None and done.path is not None
    candles = result.candles
    return {"market": market, "timeframe": candles.timeframe, "bars": candles.bars,
            "duplicates": result.duplicates, "gaps": result.gaps, "resorted": result.resorted,
            "derived": list(result.derived), "empty_rows": result.empty_rows,
            "empty_lines": list(result.empty_lines), "path": _shown(done.path),
            "dataset_bars": done.dataset_bars if done.dataset_bars is not None
            else candles.bars, "fingerprint": candles.fingerprint}


# ------------------------------------------------------------------------------ fetch

@data_app.command("fetch")
@guarded
def fetch_cmd(
    exchange: Annotated[str, typer.Argument(help="a ccxt exchange id, e.g. binance")],
    market: MarketArg, timeframe: TimeframeArg,
    since: Annotated[str, typer.Option("--since", help="first bar, ISO-8601 (UTC)",
                                       callback=date_option("--since"))],
    until: Annotated[str | None, typer.Option(
        "--until", help="end, exclusive, ISO-8601 [default: the last closed bar]",
        callback=date_option("--until"))] = None,
    replace: ReplaceOpt = False, root: RootOpt = None, as_json: JsonOpt = False,
    format: FormatOpt = Format.text,
) -> None:
    """Fetch candles from an exchange into the cache (resumable: only what is missing)."""
    from ..data import DataError
    from ..data.fetch import fetch_ohlcv

    fmt = output_format(format, as_json)
    start, end = when(since, "--since"), when(until, "--until")
    assert start is not None
    if end is not None and end <= start:
        raise _usage("--until must be after --since")
    try:
        report = fetch_ohlcv(exchange, market, timeframe, start, end, root=_root(root),
                             replace=replace)
    except DataError as exc:
        _emit(exc.diagnostics, fmt)
        raise typer.Exit(EXIT_SPEC) from None
    if fmt is Format.json:
        sys.stdout.write(json_document(report.diagnostics, **_fetch_doc(report)))
    else:
        _emit(report.diagnostics, fmt)
        sys.stdout.write(_fetch_text(report))
    raise typer.Exit(EXIT_SPEC if has_errors(report.diagnostics) else EXIT_OK)


def _fetch_text(report: FetchReport) -> str:
    """What the fetch did, in words that agree with its diagnostics: a failed fetch never
    reads as "nothing to fetch" (it said so after a D011, issue 14)."""
    from ..data.candles import format_time

    r = report
    lines = [f"note: {note}" for note in r.notes]
    lines.append(f"{r.exchange} {r.market} {r.timeframe}: " + _fetch_outcome(r))
    if r.bars:
        lines.append(f"cache {_shown(r.path)}: {r.bars:,} bars, {format_time(r.first)} … "
                     f"{format_time(r.last)}"
                     + ("" if r.complete else " (incomplete; run again to resume)"))
    return "".join(line + "\n" for line in lines)


def _fetch_outcome(r: FetchReport) -> str:
    """One clause: fetched, nothing to fetch (and why), or failed (and what was kept)."""
    from ..data.candles import format_time

    asked = f"{format_time(r.since)} … {format_time(r.until)}"
    requests = f"in {r.requests} request(s)" + (f", {r.retries} retried" if r.retries else "")
    if has_errors(r.diagnostics):
        if not r.new_bars:
            return f"nothing fetched for {asked}: the exchange failed (see above)"
        return (f"stopped by the error above after {r.new_bars:,} new bars for {asked} "
                f"{requests}; they are kept — run the same command again to resume")
    if r.since >= r.until:
        return f"nothing to fetch: {asked} is empty (no closed bar in the range)"
    if not r.missing:
        return f"nothing to fetch; the cache already covers {asked}"
    return f"{r.new_bars:,} new bars for {asked} {requests}"


def _fetch_doc(report: FetchReport) -> dict[str, Any]:
    from ..data.candles import format_time

    r = report
    return {"exchange": r.exchange, "market": r.market, "timeframe": r.timeframe,
            "since": format_time(r.since), "until": format_time(r.until),
            "new_bars": r.new_bars, "requests": r.requests, "retries": r.retries,
            "path": _shown(r.path), "bars": r.bars,
            "from": format_time(r.first) if r.first is not None else None,
            "to": format_time(r.last) if r.last is not None else None,
            "complete": r.complete, "notes": list(r.notes)}


# ------------------------------------------------------------------------------ synth

@data_app.command("synth")
@guarded
def synth_cmd(
    market: MarketArg, timeframe: TimeframeArg,
    bars: Annotated[int, typer.Option("--bars", help="number of bars",
                                      callback=bars_value)] = 5000,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="random seed [default: derived from market and timeframe]",
        callback=synth_seed)] = None,
    end: Annotated[str | None, typer.Option(
        "--end", help="when the last bar closes [default: 2026-01-01T00:00Z]",
        callback=date_option("--end"))] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="replace a cached dataset of real (non-synthetic) data")] = False,
    root: RootOpt = None, as_json: JsonOpt = False, format: FormatOpt = Format.text,
) -> None:
    """Write a deterministic synthetic market into the cache (marked synthetic)."""
    from ..data.datasets import synth_into_cache

    stop = when(end, "--end")
    _bars_fit(bars, timeframe, stop)
    made = synth_into_cache(_root(root), market, timeframe, bars, seed, stop, force)
    if output_format(format, as_json) is Format.json:
        write_json({"market": market, "timeframe": timeframe, "bars": made.candles.bars,
                    "seed": made.seed, "path": _shown(made.path),
                    "fingerprint": made.candles.fingerprint})
    else:
        sys.stdout.write(f"synthesised {made.candles.bars:,} bars of {market} {timeframe} "
                         f"(seed {made.seed}, {_span(made.candles)}) into "
                         f"{_shown(made.path)}\n")
    raise typer.Exit(EXIT_OK)


def _bars_fit(bars: int, timeframe: str, end: pd.Timestamp | None) -> None:
    """U005 unless ``bars`` bars of ``timeframe`` ending at ``end`` start in 1970 or later."""
    from ..data.candles import EARLIEST, NS, format_time, timeframe_seconds
    from ..data.synth import DEMO_END

    stop = DEMO_END if end is None else end
    first_ns = int(stop.value) - bars * timeframe_seconds(timeframe) * NS
    if first_ns < int(EARLIEST.value):
        raise _usage(f"--bars {bars:,} of {timeframe} ending {format_time(stop)} would start "
                     f"before {format_time(EARLIEST)}",
                     help="give fewer --bars or a later --end")


# ------------------------------------------------------------------------------ list

LIST_COLUMNS = ("market", "timeframe", "bars", "from", "to", "source", "status")


@data_app.command("list")
@guarded
def list_cmd(root: RootOpt = None, as_json: JsonOpt = False,
             format: FormatOpt = Format.text) -> None:
    """List the cached datasets: market, timeframe, bars, from, to, source, status."""
    from ..data.cache import DATA_DIR, list_cached
    from ..data.candles import format_time

    base = _root(root)
    rows = [{"market": e.market, "timeframe": e.timeframe, "bars": e.bars,
             "from": format_time(e.start) if e.start is not None else "",
             "to": format_time(e.end) if e.end is not None else "",
             "source": e.source, "status": e.status, "synthetic": e.synthetic,
             "path": _shown(e.path)}
            for e in list_cached(base)]
    if output_format(format, as_json) is Format.json:
        write_json({"datasets": rows})
    elif not rows:
        sys.stdout.write(f"no datasets in {_shown(base / DATA_DIR)}/; runs use the "
                         "synthetic demo market (data source: synthetic demo)\n")
    else:
        sys.stdout.write(_table(rows))
        if any(r["status"] != "ok" for r in rows):
            sys.stdout.write("`peak data check` says what is wrong with a dataset whose status "
                             "is not ok, and how to fix it\n")
    raise typer.Exit(EXIT_OK)


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
def check_cmd(market: Annotated[str | None, typer.Argument(
                  help="only this market", callback=market_value)] = None,
              timeframe: Annotated[str | None, typer.Argument(
                  help="only this timeframe", callback=timeframe_value)] = None,
              adopt: Annotated[bool, typer.Option(
                  "--adopt", help="record the checksum of datasets cached before peak "
                  "verified its cache, if they pass the checks")] = False,
              verbose: VerboseOpt = False, root: RootOpt = None, as_json: JsonOpt = False,
              format: FormatOpt = Format.text) -> None:
    """Verify every cached dataset and report coverage, gaps and anomalies, each with its time
    (exit 1 on damaged, unverified or invalid data)."""
    from ..data.cache import DATA_DIR
    from ..data.datasets import check_dataset, select_datasets

    fmt = output_format(format, as_json)
    base = _root(root)
    checks = [check_dataset(base, m, t, adopt) for m, t in select_datasets(base, market,
                                                                          timeframe)]
    diags = [d for c in checks for d in c.diagnostics]
    if fmt is Format.json:
        sys.stdout.write(json_document(diags, datasets=[_check_doc(c) for c in checks]))
    elif not checks:
        sys.stdout.write(f"no datasets in {_shown(base / DATA_DIR)}/; nothing to check\n")
    else:
        sys.stdout.write("\n".join(line for c in checks
                                   for line in _check_lines(c, verbose)) + "\n")
        _emit(diags, fmt)
    raise typer.Exit(EXIT_SPEC if has_errors(diags) else EXIT_OK)


def _check_doc(c: DatasetCheck) -> dict[str, Any]:
    """One dataset in ``peak data check --json``."""
    head = {"market": c.market, "timeframe": c.timeframe, "path": _shown(c.path)}
    if c.candles is None or c.report is None:
        return {**head, "status": c.status}
    return {**head, "source": c.candles.source, "synthetic": c.candles.synthetic,
            "status": c.status, "adopted": c.adopted, **c.report.as_dict()}


def _check_lines(c: DatasetCheck, verbose: bool = False) -> list[str]:
    """One dataset for people: bars, coverage, gaps, anomalies (or why it failed); each gap
    and anomaly with its time — the first ``LISTED`` of each kind, all with ``verbose``."""
    from ..data.candles import format_duration, format_time
    from ..data.quality import ANOMALIES

    shown = _shown(c.path)
    if c.candles is None or c.report is None:
        return [f"{c.market} {c.timeframe}  {shown}  ({c.status}; see below)"]
    report, largest = c.report, c.report.largest_gap
    out = [f"{c.market} {c.timeframe}  {shown}" + ("  (synthetic)" if c.candles.synthetic
                                                   else "")]
    if c.adopted:
        out.append("  checksum   adopted: recorded the current contents' sha256")
    if report.bars:
        out.append(f"  bars       {report.bars:,}  {format_time(report.start_ns)} … "
                   f"{format_time(report.end_ns)}")
    out.append(f"  coverage   {report.coverage * 100:.2f} % of {report.expected:,} "
               "expected bars")
    out.append(f"  gaps       {len(report.gaps):,}" + (
        f" ({report.missing:,} missing bars); largest {largest.missing:,} bars "
        f"({format_duration(largest.seconds)}) after {format_time(largest.prev_ns)}"
        if largest else ""))
    out += _listed([g.describe() for g in report.gaps], verbose, "gap")
    out.append(f"  anomalies  zero volume {report.zero_volume:,}, extreme returns "
               f"(>10σ) {report.extreme_returns:,}, flat bars {report.flat_bars:,}")
    for name, times in report.anomalies().items():
        out += _listed([format_time(t) for t in times], verbose, ANOMALIES[name])
    return out


def _listed(items: list[str], verbose: bool, label: str) -> list[str]:
    """``items`` under ``label``, several to a line; the first ``LISTED`` unless verbose."""
    if not items:
        return []
    shown = items if verbose else items[:LISTED]
    per_line = 1 if label == "gap" else 4
    rows = [", ".join(shown[i:i + per_line]) for i in range(0, len(shown), per_line)]
    lines = [f"    {label if i == 0 else '':<15} {row}" for i, row in enumerate(rows)]
    if len(items) > len(shown):
        lines.append(f"    {'':<15} … and {len(items) - len(shown):,} more (--verbose lists "
                     "all)")
    return lines
