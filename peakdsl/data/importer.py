"""Read a CSV or Parquet file of candles into a validated :class:`CandleSet`.

Column names and the timestamp format are detected (or given); timestamps become UTC; rows
are sorted and de-duplicated (the last of equal timestamps wins, D008). Every invalid row is
a diagnostic that names its line (CSV: the header is line 1) or row (Parquet: row index + 1)
— one per row, whatever is wrong with it; if there is any, no candles are returned. Rows out of
order are counted (``resorted``); gaps are summarised in one D009 (each one, at its line, in
``gap_details``), never filled. Files without volume, or with the close only, are candles too
(``peakdsl.data.columns``; D021).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..lang.diagnostics import Diagnostic, diag, did_you_mean, has_errors
from ..lang.frames import derivable
from ..lang.source import Span
from .candles import (
    COLUMNS,
    EARLIEST,
    LATEST,
    NS,
    CandleSet,
    format_duration,
    format_time,
    timeframe_for_seconds,
    timeframe_seconds,
)
from .columns import ImportFailed, map_columns, missing_roles
from .findings import derived_warning, gap_summary, out_of_order
from .quality import RowProblem, by_row, find_gaps, off_grid, row_problems, typical_spacing
from .resample import bases_for

CAP = 50  # listed diagnostics per code; the rest are summarised in one more
FRAME = "DataFrame"  # how an in-memory table is named in diagnostics and provenance
TIME_FORMATS = ("auto", "iso", "s", "ms", "us", "ns")
_UNIT_NS = {"s": NS, "ms": 1_000_000, "us": 1_000, "ns": 1}
_LOW_NS = int(EARLIEST.value)
_HIGH_NS = int(LATEST.value)
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class ImportResult:
    """The candles (None when there are errors) and every diagnostic, sorted by line."""

    candles: CandleSet | None
    diagnostics: tuple[Diagnostic, ...]
    rows: int = 0
    duplicates: int = 0
    gaps: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    time_format: str = ""
    resorted: int = 0  # rows earlier than the row before them (the file was re-sorted)
    gap_details: tuple[Diagnostic, ...] = ()  # one D009 per gap, at its line (--verbose)
    derived: tuple[str, ...] = ()  # columns the file lacks: open/high/low (= close), volume
    symbols: tuple[str, ...] = ()  # the values of a symbol column, if the file has one
    empty_lines: tuple[int, ...] = ()  # CSV lines with no value at all (``,,,,,``, blank): skipped

    @property
    def empty_rows(self) -> int:
        return len(self.empty_lines)

    @property
    def ok(self) -> bool:
        return self.candles is not None and not has_errors(self.diagnostics)


@dataclass
class _Raw:
    """The file's table as read, plus how rows map back to the file."""

    frame: pd.DataFrame
    lines: npt.NDArray[np.int64]   # the line (CSV) or 1-based row (Parquet) of each row
    kind: str                      # "csv" or "parquet"
    path: Path
    delimiter: str = ","
    header: bool = True
    text_lines: list[str] | None = None
    empty_lines: tuple[int, ...] = ()  # rows without a single value, dropped when read

    @property
    def unit(self) -> str:
        return "line" if self.kind == "csv" else "row"


def import_file(path: Path, market: str, timeframe: str | None = None, *,
                columns: Mapping[str, str] | None = None, time_format: str = "auto",
                display: str | None = None, finer: bool = False) -> ImportResult:
    """Read, validate and normalise one file. ``timeframe`` None: inferred from the spacing.
    ``finer``: bars of a finer timeframe that divides ``timeframe`` are accepted as they are
    (the candles keep their own timeframe; a run resamples them, ``peakdsl.data.resample``).

    Raises ValueError for a ``time_format`` that is not one (see :func:`time_format_problem`;
    the CLI reports it as a usage error before calling this).
    """
    problem = time_format_problem(time_format)
    if problem is not None:
        raise ValueError(problem)
    shown = display if display is not None else path.as_posix()
    try:
        raw = _read(path, shown)
        mapping = _map_columns(raw, shown, columns or {})
    except ImportFailed as exc:
        return ImportResult(None, exc.diagnostics)
    return _Import(raw, shown, market, timeframe, mapping, time_format, finer).run()


def import_frame(frame: pd.DataFrame, market: str, timeframe: str | None = None, *,
                 display: str = FRAME, finer: bool = False) -> ImportResult:
    """Validate a pandas DataFrame as a file is imported: the same column detection, checks
    and diagnostics (rows are named by position, ``row N`` being ``frame.iloc[N - 1]``).

    Time comes from a ``DatetimeIndex`` or a time column (naive times are UTC). The caller's
    frame is not modified. The candles' source is ``display``.
    """
    raw = _table(frame, Path(display))
    try:
        mapping = _map_columns(raw, display, {}, frame=True)
    except ImportFailed as exc:
        return ImportResult(None, exc.diagnostics)
    result = _Import(raw, display, market, timeframe, mapping, "auto", finer).run()
    if result.candles is None:
        return result
    return _replace(result, candles=result.candles.with_source(display))


def time_format_problem(fmt: str) -> str | None:
    """Why ``fmt`` is not a usable ``--time-format``, or None when it is.

    Checked before any row is read: pandas rejects a bad strptime directive (``%Q``) with an
    exception in the middle of parsing, and a word that is not a format name (``millis``) is
    a typo of one far more often than a pattern without a directive.
    """
    if fmt in TIME_FORMATS:
        return None
    if "%" not in fmt:
        hint = did_you_mean(fmt, TIME_FORMATS)
        return (f"--time-format `{fmt}` is not a format: use one of {', '.join(TIME_FORMATS)} "
                "or a strptime pattern such as '%d/%m/%Y %H:%M'" + (f"; {hint}" if hint else ""))
    try:
        pd.to_datetime(pd.Series(["2000-01-02 03:04:05"]), format=fmt, errors="coerce",
                       utc=True)
    except (ValueError, TypeError) as exc:
        return f"--time-format `{fmt}` is not a strptime pattern: {_short(exc)}"
    return None


# ------------------------------------------------------------------------------ reading

def _read(path: Path, shown: str) -> _Raw:
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return _read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt", ".tsv") or suffix.startswith(".csv"):
            return _read_csv(path)
    except ImportFailed:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ImportFailed([diag("D001", f"cannot read {shown}: {_short(exc)}", shown,
                                 help="give a CSV or Parquet file of candles")]) from None
    except Exception as exc:  # pyarrow / parser errors of all kinds
        raise ImportFailed([diag("D001", f"cannot read {shown}: {type(exc).__name__}: "
                                 f"{_short(exc)}", shown,
                                 help="give a CSV or Parquet file of candles")]) from None
    raise ImportFailed([diag("D001", f"cannot read {shown}: unknown file type "
                             f"`{path.suffix or '(none)'}`", shown,
                             help="give a .csv or .parquet file")])


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _read_csv(path: Path) -> _Raw:
    with path.open("r", encoding="utf-8-sig", errors="strict", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise ValueError("the file is empty" if not first else "the first line is empty")
    delimiter = max((",", ";", "\t", "|"), key=first.count)
    cells = [c.strip().strip('"') for c in first.rstrip("\r\n").split(delimiter)]
    header = not all(_NUMERIC.match(c) or _looks_like_time(c) for c in cells if c)
    frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False,
                        skip_blank_lines=False, header=0 if header else None,
                        encoding="utf-8-sig", skipinitialspace=True)
    if not header:
        frame.columns = [str(i) for i in range(len(frame.columns))]
    frame.columns = [str(c).strip() for c in frame.columns]
    blank = (frame == "").all(axis=1).to_numpy()
    lines = np.arange(len(frame), dtype=np.int64) + (2 if header else 1)
    empty = tuple(int(line) for line in lines[blank])  # skipped, and said so (summary)
    if blank.any():
        frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    return _Raw(frame, lines, "csv", path, delimiter, header, empty_lines=empty)


def _looks_like_time(text: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}", text))


def _read_parquet(path: Path) -> _Raw:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    return _table(pq.read_table(path).to_pandas(), path)


def _table(frame: pd.DataFrame, path: Path) -> _Raw:
    """A table as rows to validate: an index that holds data (a ``DatetimeIndex`` — named
    ``time`` whatever its name, unless a column is — or any named index) becomes a column;
    rows are numbered from 1, as Parquet rows are reported."""
    if isinstance(frame.index, pd.DatetimeIndex) and "time" not in frame.columns:
        frame = frame.rename_axis("time")
    if isinstance(frame.index, pd.DatetimeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    frame = frame.set_axis([str(c).strip() for c in frame.columns], axis=1)
    return _Raw(frame.reset_index(drop=True), np.arange(len(frame), dtype=np.int64) + 1,
                "parquet", path)


# ------------------------------------------------------------------------------ columns

def _map_columns(raw: _Raw, shown: str, given: Mapping[str, str],
                 frame: bool = False) -> dict[str, str]:
    """Role → column (``peakdsl.data.columns``); raises ImportFailed (D002)."""
    return map_columns(list(raw.frame.columns), raw.header, shown, given, frame)


# ------------------------------------------------------------------------------ the import

class _Import:
    def __init__(self, raw: _Raw, shown: str, market: str, timeframe: str | None,
                 mapping: dict[str, str], time_format: str, finer: bool = False) -> None:
        self.raw, self.shown, self.market = raw, shown, market
        self.timeframe, self.mapping, self.time_format = timeframe, mapping, time_format
        self.finer, self.derived = finer, missing_roles(mapping)
        self.diags: dict[str, list[Diagnostic]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)
        self.first_hidden: dict[str, int] = {}

    # diagnostics -------------------------------------------------------------------
    def report(self, code: str, message: str, line: int, column: str | None = None,
               help: str = "") -> None:
        self.counts[code] += 1
        if len(self.diags[code]) >= CAP:
            self.first_hidden.setdefault(code, line)
            return
        where = f"{self.raw.unit} {line}" if self.raw.kind == "parquet" else ""
        text = f"{where}: {message}" if where else message
        self.diags[code].append(diag(code, text, self.shown, self._span(line, column),
                                     help=help))

    def _span(self, line: int, column: str | None) -> Span:
        col, end = 1, 1
        if self.raw.kind == "csv":
            text = self._line(line)
            if text is not None:
                col, end = 1, len(text) + 1
                if column is not None:
                    found = self._field(text, column)
                    if found is not None:
                        col, end = found
        return Span(0, 0, line, col, line, max(end, col + 1))

    def _line(self, line: int) -> str | None:
        if self.raw.text_lines is None:
            try:
                with self.raw.path.open(encoding="utf-8-sig", newline="") as handle:
                    self.raw.text_lines = handle.read().splitlines()
            except (OSError, UnicodeDecodeError):
                self.raw.text_lines = []
        return self.raw.text_lines[line - 1] if 1 <= line <= len(self.raw.text_lines) else None

    def _field(self, text: str, column: str) -> tuple[int, int] | None:
        name = self.mapping.get(column, column)
        names = list(self.raw.frame.columns)
        if name not in names or '"' in text:
            return None
        index = names.index(name)
        parts = text.split(self.raw.delimiter)
        if index >= len(parts):
            return None
        start = sum(len(p) + 1 for p in parts[:index]) + 1
        return start, start + max(1, len(parts[index]))

    def finished(self) -> tuple[Diagnostic, ...]:
        out: list[Diagnostic] = []
        for code in sorted(self.diags):
            out.extend(self.diags[code])
            hidden = self.counts[code] - len(self.diags[code])
            if hidden > 0:
                line = self.first_hidden[code]
                out.append(diag(code, f"… and {hidden} more like this ({self.counts[code]} in "
                                f"all; only the first {CAP} are listed)", self.shown,
                                Span(0, 0, line, 1, line, 2),
                                help=self.diags[code][0].help))
        return tuple(sorted(out, key=lambda d: (d.span.line, d.code, d.message)))

    # steps -------------------------------------------------------------------------
    def run(self) -> ImportResult:
        raw = self.raw
        frame = raw.frame
        if len(frame) == 0:
            return ImportResult(None, (diag("D001", f"{self.shown} has no rows of data",
                                            self.shown, help="give a file with candles"),))
        times, fmt, bad_times = self.parse_times(frame[self.mapping["time"]])
        values = self.parse_values(frame)
        found = row_problems(values, self.cell_text, no_volume="volume" in self.derived)
        found = [p for p in found if p.column not in self.derived]  # reported at the close
        for p in by_row([*bad_times, *found]):
            self.report(p.code, p.message, int(raw.lines[p.row]), p.column,
                        _time_help(fmt) if p.code == "D003" else _HELP[p.code])
        base = ImportResult(None, (), len(frame), columns=dict(self.mapping), time_format=fmt,
                            derived=self.derived, symbols=self.symbols(),
                            empty_lines=raw.empty_lines)
        if any(c not in ("D008", "D009") for c in self.counts):
            return _replace(base, diagnostics=self.finished())
        if self.derived:
            self.diags["D021"].append(derived_warning(self.derived, self.shown))
        return self.normalise(times, values, base)

    def symbols(self) -> tuple[str, ...]:
        """The distinct values of the symbol column (a few), for D020."""
        name = self.mapping.get("symbol")
        if name is None:
            return ()
        values = self.raw.frame[name].dropna().astype(str).str.strip().unique()
        return tuple(sorted(str(v) for v in values if v)[:5])

    def parse_times(self, column: pd.Series
                    ) -> tuple[npt.NDArray[np.int64], str, list[RowProblem]]:
        """int64 ns UTC per row (``_BAD`` where invalid, each a D003 problem)."""
        fmt = self.time_format
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            series, fmt = pd.to_datetime(column, utc=True), "datetime"
        else:
            numeric_dtype = pd.api.types.is_numeric_dtype(column.dtype) and \
                not pd.api.types.is_bool_dtype(column.dtype)
            text = column.astype(str).str.strip()
            if fmt == "auto":
                if numeric_dtype:
                    fmt = _unit_for(column)
                else:
                    numeric = text.str.fullmatch(_NUMERIC.pattern)
                    fmt = "iso" if numeric.mean() < 0.5 else _unit_for(text[numeric])
            if fmt in _UNIT_NS:
                nums = column if numeric_dtype else pd.to_numeric(
                    text.where(text.str.fullmatch(_NUMERIC.pattern), None), errors="coerce")
                series = _from_numbers(nums, _UNIT_NS[fmt])
            else:
                series = _parse_text_times(text, fmt)
        ns = series.astype("datetime64[ns, UTC]")
        values = np.full(len(column), _BAD, dtype=np.int64)
        valid = ns.notna().to_numpy()
        values[valid] = ns[valid].astype("int64").to_numpy()
        out_of_range = valid & ((values < _LOW_NS) | (values >= _HIGH_NS))
        failing = np.flatnonzero(~valid | out_of_range)
        raw_text = _texts_at(column, failing) if len(failing) else []
        problems = []
        for k, i in enumerate(failing):
            shown = str(raw_text[k]).strip()[:40]
            if not shown or shown in ("nan", "NaT", "None", "<NA>"):
                msg = "missing timestamp"
            elif out_of_range[i]:
                msg = f"timestamp `{shown}` is outside 1970–2200 read as {_fmt_name(fmt)}"
            else:
                msg = f"cannot read timestamp `{shown}` as {_fmt_name(fmt)}"
            problems.append(RowProblem(int(i), "D003", msg, _TIME_COLUMN))
        values[out_of_range] = _BAD
        return values, fmt, problems

    def parse_values(self, frame: pd.DataFrame) -> dict[str, npt.NDArray[np.float64]]:
        """open…volume as float arrays, NaN where missing or not a number (then a D004).
        A close-only file's open, high and low are its close; a file without volume has NaN."""
        values: dict[str, npt.NDArray[np.float64]] = {}
        for role in (r for r in COLUMNS if r not in self.derived):
            col = frame[self.mapping[role]]
            if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(
                    col.dtype):
                values[role] = col.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values[role] = pd.to_numeric(col.astype(str).str.strip(), errors="coerce") \
                    .to_numpy(dtype=np.float64, na_value=np.nan)
        for role in self.derived:
            values[role] = values["close"].copy() if role != "volume" else \
                np.full(len(frame), np.nan)
        return values

    def cell_text(self, role: str, rows: npt.NDArray[np.int64]) -> list[str]:
        """The file's text of the ``role`` cells at ``rows`` (called for failing rows only)."""
        if role not in self.mapping:  # a derived column: its problems are the close's
            return [""] * len(rows)
        return _texts_at(self.raw.frame[self.mapping[role]], rows)

    def normalise(self, times: npt.NDArray[np.int64], values: dict[str, npt.NDArray[np.float64]],
                  base: ImportResult) -> ImportResult:
        """Sort, drop duplicates, settle the timeframe, check the grid, summarise the gaps."""
        lines = self.raw.lines
        resorted = out_of_order(times)
        if resorted:  # most files are sorted: skip copying every column twice
            order = np.argsort(times, kind="stable")
            times, lines = times[order], lines[order]
            values = {k: v[order] for k, v in values.items()}
        times, lines, values, duplicates = self.deduplicate(times, lines, values)
        timeframe = self.timeframe_of(times)
        if timeframe is None or self.stray_bars(times, lines, timeframe):
            return _replace(base, diagnostics=self.finished(), resorted=resorted)
        gaps = find_gaps(times, timeframe_seconds(timeframe))
        details = tuple(diag("D009", f"gap: {g.describe()}", self.shown,
                             self._span(int(lines[g.after + 1]), _TIME_COLUMN), help=_GAP_HELP)
                        for g in gaps)
        if gaps:
            self.diags["D009"].append(gap_summary(gaps, details, self.shown))
            self.counts["D009"] = 1
        index = pd.DatetimeIndex(times.astype("datetime64[ns]")).tz_localize("UTC")
        candles = CandleSet.of(pd.DataFrame(values, index=index), self.market, timeframe,
                               f"file: {self.shown}")
        return _replace(base, candles=candles, diagnostics=self.finished(),
                        duplicates=duplicates, gaps=len(gaps), gap_details=details,
                        resorted=resorted)

    def deduplicate(self, times: npt.NDArray[np.int64], lines: npt.NDArray[np.int64],
                    values: dict[str, npt.NDArray[np.float64]]
                    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                               dict[str, npt.NDArray[np.float64]], int]:
        """The sorted rows without repeated timestamps (the last wins, D008 each)."""
        dup_next = np.flatnonzero(times[1:] == times[:-1])  # i: row i repeated by row i + 1
        if not len(dup_next):
            return times, lines, values, 0
        for i in dup_next:
            j = i + 1
            while j + 1 < len(times) and times[j + 1] == times[j]:
                j += 1
            self.report("D008", f"duplicate timestamp {format_time(int(times[i]))}: "
                        f"{self.raw.unit} {lines[i]} is repeated by {self.raw.unit} "
                        f"{lines[j]}; keeping {self.raw.unit} {lines[j]} (the last)",
                        int(lines[i]), _TIME_COLUMN,
                        "remove the duplicate rows, or accept that the last one wins")
        keep = np.ones(len(times), dtype=bool)
        keep[dup_next] = False
        return times[keep], lines[keep], {k: v[keep] for k, v in values.items()}, len(dup_next)

    def timeframe_of(self, times: npt.NDArray[np.int64]) -> str | None:
        """The timeframe given (or, with ``finer``, the file's own finer one that divides
        it), or inferred from the spacing; None after a D010."""
        spacing = typical_spacing(times)
        own = timeframe_for_seconds(spacing) if spacing else None
        if self.timeframe is None:
            if own is None:
                what = f"{format_duration(spacing)} apart" if spacing else "a single bar"
                self._d010(f"cannot infer the timeframe: the bars are {what}",
                           "give --timeframe (one of the timeframes peak knows)")
            return own
        seconds = timeframe_seconds(self.timeframe)
        smallest = int(np.diff(times).min()) // NS if len(times) > 1 else None
        if spacing is None or seconds in (spacing, smallest):
            return self.timeframe
        if self.finer and own is not None and derivable(own, self.timeframe):
            return own
        assert spacing is not None
        self._d010(f"the bars are {format_duration(spacing)} apart (mostly), but the "
                   f"timeframe is {self.timeframe}", self._spacing_help(own))
        return None

    def _spacing_help(self, own: str | None) -> str:
        tf = self.timeframe
        assert tf is not None
        if self.finer:  # a run's --data: the run's timeframe is the spec's
            finer = ", ".join(bases_for(tf)[:3])
            return (f"a {tf} strategy needs {tf} candles, or candles of a finer timeframe "
                    f"that divides {tf} ({finer}, …), which it resamples" if finer else
                    f"a {tf} strategy needs {tf} candles")
        if own is None:
            return "resample the file to the timeframe first"
        return (f"pass --timeframe {own} (or leave it out): a {tf} strategy resamples cached "
                f"{own} bars itself" if derivable(own, tf) else f"pass --timeframe {own}")

    def _d010(self, message: str, help: str) -> None:
        self.diags["D010"].append(diag("D010", message, self.shown, help=help))
        self.counts["D010"] += 1

    def stray_bars(self, times: npt.NDArray[np.int64], lines: npt.NDArray[np.int64],
                   timeframe: str) -> bool:
        """D010 for each bar off the timeframe's spacing; whether there was one."""
        seconds = timeframe_seconds(timeframe)
        stray = off_grid(times, seconds)
        for i in stray:
            step = int(times[i] - times[i - 1]) // NS
            self.report("D010", f"this bar is {format_duration(step)} after the previous one "
                        f"({self.raw.unit} {lines[i - 1]}); {timeframe} bars are "
                        f"{format_duration(seconds)} apart", int(lines[i]), _TIME_COLUMN,
                        "remove or fix the stray bar")
        return bool(len(stray))


_BAD = np.iinfo(np.int64).min
_SENTINEL = int(pd.Timestamp("2262-01-01").value)
_TIME_COLUMN = "time"
_GAP_HELP = "gaps are kept, not filled; check the source, or fetch the missing range"
_FMT_NAME = {"iso": "an ISO-8601 date and time", "s": "seconds since 1970",
             "ms": "milliseconds since 1970", "us": "microseconds since 1970",
             "ns": "nanoseconds since 1970", "datetime": "a datetime"}
_HELP = {
    "D004": "fill in or remove the row; peak does not guess missing prices",
    "D005": "remove the row, or fix the price; prices must be positive",
    "D006": "fix the row so that low <= open, close <= high, or remove it",
    "D007": "fix or remove the row; volume cannot be negative",
}


def _texts_at(column: pd.Series, rows: npt.NDArray[np.int64]) -> list[str]:
    """``column.astype(str)`` at ``rows`` only, exactly as if the whole column were converted.

    Converting a million-row column to text took seconds on files with no error at all; this
    converts just the rows being reported. Datetimes are the one place where pandas formats
    a value according to the whole column (its finest resolution: dates only, seconds, ms…),
    so when the chosen rows' resolution differs from the column's, the column is converted.
    """
    subset = column.iloc[rows]
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        if pd.DatetimeIndex(subset).resolution != pd.DatetimeIndex(column).resolution:
            return [str(t) for t in column.astype(str).to_numpy()[rows]]
    elif pd.api.types.is_timedelta64_dtype(column.dtype):
        return [str(t) for t in column.astype(str).to_numpy()[rows]]
    return [str(t) for t in subset.astype(str).to_numpy()]


def _parse_text_times(text: pd.Series, fmt: str) -> pd.Series:
    """ISO or strptime text → UTC datetimes, NaT where unreadable (each becomes a D003).

    A pattern is validated up front (:func:`time_format_problem`); should pandas still raise
    on some value, every row is reported as unreadable rather than crashing the import.
    """
    blank = text.isin(["", "nan", "NaT", "None"])
    try:
        return pd.to_datetime(text.where(~blank, None), utc=True, errors="coerce",
                              format="ISO8601" if fmt == "iso" else fmt)
    except (ValueError, TypeError, OverflowError):
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")


def _from_numbers(nums: pd.Series, scale: int) -> pd.Series:
    """Epoch numbers × scale → UTC datetimes; out of range → a sentinel the range check catches.

    Integers stay integers (exact to the nanosecond); fractions are rounded to the ns.
    """
    as_float = nums.astype("float64") * scale
    in_range = as_float.between(_LOW_NS, _HIGH_NS, inclusive="left")
    ns = np.full(len(nums), _BAD, dtype=np.int64)
    mask = in_range.to_numpy()
    if pd.api.types.is_integer_dtype(nums.dtype):
        ns[mask] = nums[in_range].astype("int64").to_numpy() * scale
    else:
        ns[mask] = np.round(as_float[in_range].to_numpy()).astype(np.int64)
    ns[(~mask) & nums.notna().to_numpy()] = _SENTINEL
    out = pd.Series(pd.to_datetime(np.where(ns == _BAD, 0, ns), unit="ns", utc=True),
                    index=nums.index)
    return out.where(ns != _BAD)


def _unit_for(numbers: pd.Series) -> str:
    """Guess s / ms / us / ns from the size of the numbers."""
    values = pd.to_numeric(numbers, errors="coerce").dropna().abs()
    if values.empty:
        return "s"
    median = float(values.median())
    return "ns" if median >= 1e17 else "us" if median >= 1e14 else "ms" if median >= 1e11 else "s"


def _fmt_name(fmt: str) -> str:
    return _FMT_NAME.get(fmt, f"`{fmt}`")


def _time_help(fmt: str) -> str:
    if fmt in ("iso", "datetime"):
        return ("write ISO-8601 (2024-01-31T13:00:00Z), or give the format with "
                "--time-format, e.g. '%d/%m/%Y %H:%M'")
    if fmt in _UNIT_NS:
        return "give --time-format s, ms, us or ns if the unit was guessed wrong"
    return "check the value against --time-format"


def _replace(result: ImportResult, **changes: object) -> ImportResult:
    from dataclasses import replace

    return replace(result, **changes)  # type: ignore[arg-type]
