"""Read a CSV or Parquet file of candles into a validated :class:`CandleSet`.

Column names and the timestamp format are detected (or given); timestamps become UTC; rows
are sorted and de-duplicated (the last of equal timestamps wins, D008). Every invalid row is
a diagnostic that names its line (CSV: the header is line 1) or row (Parquet: row index + 1);
if there is any, no candles are returned. Gaps are reported (D009), never filled.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..lang.diagnostics import Diagnostic, diag, did_you_mean, has_errors
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
from .quality import find_gaps, off_grid, row_problems, typical_spacing

ROLES: tuple[str, ...] = ("time", *COLUMNS)
CAP = 50  # listed diagnostics per code; the rest are summarised in one more

# Accepted names per role, most specific first; compared case-insensitively with spaces,
# dashes and dots folded to underscores.
ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time", "timestamp", "date", "datetime", "date_time", "open_time", "opentime",
             "time_utc", "timestamp_utc", "ts", "unix", "unix_timestamp", "start", "t"),
    "open": ("open", "o", "open_price", "opening_price"),
    "high": ("high", "h", "high_price", "max"),
    "low": ("low", "l", "low_price", "min"),
    "close": ("close", "c", "close_price", "closing_price", "last"),
    "volume": ("volume", "v", "vol", "base_volume", "volume_base"),
}
PREFIXES: dict[str, str] = {"volume": "volume", "time": "timestamp"}
TIME_FORMATS = ("auto", "iso", "s", "ms", "us", "ns")
_UNIT_NS = {"s": NS, "ms": 1_000_000, "us": 1_000, "ns": 1}
_LOW_NS = int(EARLIEST.value)
_HIGH_NS = int(LATEST.value)
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ImportFailed(Exception):
    """The file cannot be read at all (D001/D002); carries the diagnostics."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = tuple(diagnostics)


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

    @property
    def unit(self) -> str:
        return "line" if self.kind == "csv" else "row"


def import_file(path: Path, market: str, timeframe: str | None = None, *,
                columns: Mapping[str, str] | None = None, time_format: str = "auto",
                display: str | None = None) -> ImportResult:
    """Read, validate and normalise one file. ``timeframe`` None: inferred from the spacing.

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
    return _Import(raw, shown, market, timeframe, mapping, time_format).run()


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
    if blank.any():
        frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    return _Raw(frame, lines, "csv", path, delimiter, header)


def _looks_like_time(text: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}", text))


def _read_parquet(path: Path) -> _Raw:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    frame = pq.read_table(path).to_pandas()
    if isinstance(frame.index, pd.DatetimeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    frame.columns = [str(c).strip() for c in frame.columns]
    return _Raw(frame.reset_index(drop=True), np.arange(len(frame), dtype=np.int64) + 1,
                "parquet", path)


# ------------------------------------------------------------------------------ columns

def _fold(name: str) -> str:
    return re.sub(r"[\s.\-/]+", "_", name.strip().lower()).strip("_")


def _map_columns(raw: _Raw, shown: str, given: Mapping[str, str]) -> dict[str, str]:
    names = list(raw.frame.columns)
    problems: list[Diagnostic] = []
    mapping: dict[str, str] = {}
    for role, name in given.items():
        if role not in ROLES:
            problems.append(diag("D002", f"unknown column role `{role}`", shown,
                                 help=f"roles are {', '.join(ROLES)}; "
                                      + did_you_mean(role, ROLES)))
        elif name not in names:
            matches = [n for n in names if n.lower() == name.lower()]
            if len(matches) == 1:
                mapping[role] = matches[0]
                continue
            problems.append(diag(
                "D002", f"no column `{name}` (given for {role}) in {shown}", shown,
                help=(did_you_mean(name, names) or f"the columns are: {', '.join(names)}")))
        else:
            mapping[role] = name
    if not raw.header:
        for i, role in enumerate(ROLES):
            if role not in mapping and i < len(names):
                mapping[role] = names[i]
    folded = {n: _fold(n) for n in names}
    for role in ROLES:
        if role in mapping or role in given:
            continue
        taken = set(mapping.values())
        found = _detect(role, [n for n in names if n not in taken], folded)
        if isinstance(found, str):
            mapping[role] = found
        elif found:
            problems.append(diag(
                "D002", f"ambiguous {role} column: "
                + " or ".join(f"`{n}`" for n in found), shown, Span(0, 0, 1, 1, 1, 1),
                help=f"choose one with --column {role}=NAME"))
        else:
            hint = f"the columns are: {', '.join(names)}" if raw.header else \
                f"the file has {len(names)} columns; expected time, open, high, low, close, volume"
            problems.append(diag("D002", f"no {role} column in {shown}", shown,
                                 Span(0, 0, 1, 1, 1, 1),
                                 help=f"{hint}; name it with --column {role}=NAME"))
    if problems:
        raise ImportFailed(problems)
    return mapping


def _detect(role: str, names: list[str], folded: dict[str, str]) -> str | list[str]:
    for alias in ALIASES[role]:
        hits = [n for n in names if folded[n] == alias]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return hits
    prefix = PREFIXES.get(role)
    if prefix:
        hits = [n for n in names if folded[n].startswith(prefix)]
        if len(hits) == 1:
            return hits[0]
        return hits
    return []


# ------------------------------------------------------------------------------ the import

class _Import:
    def __init__(self, raw: _Raw, shown: str, market: str, timeframe: str | None,
                 mapping: dict[str, str], time_format: str) -> None:
        self.raw, self.shown, self.market = raw, shown, market
        self.timeframe, self.mapping, self.time_format = timeframe, mapping, time_format
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
        times, fmt = self.parse_times(frame[self.mapping["time"]])
        values = self.parse_values(frame)
        problems = row_problems(values, self.cell_text)
        for p in problems:
            self.report(p.code, p.message, int(raw.lines[p.row]), p.column, _HELP[p.code])
        base = ImportResult(None, (), len(frame), columns=dict(self.mapping), time_format=fmt)
        if any(c not in ("D008", "D009") for c in self.counts):
            return _replace(base, diagnostics=self.finished())
        return self.normalise(times, values, base)

    def parse_times(self, column: pd.Series) -> tuple[npt.NDArray[np.int64], str]:
        """int64 ns UTC per row (``_BAD`` where invalid, each reported as D003)."""
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
        for k, i in enumerate(failing):
            shown = str(raw_text[k]).strip()[:40]
            if not shown or shown in ("nan", "NaT", "None", "<NA>"):
                msg = "missing timestamp"
            elif out_of_range[i]:
                msg = f"timestamp `{shown}` is outside 1970–2200 read as {_fmt_name(fmt)}"
            else:
                msg = f"cannot read timestamp `{shown}` as {_fmt_name(fmt)}"
            self.report("D003", msg, int(self.raw.lines[i]), _TIME_COLUMN, _time_help(fmt))
        values[out_of_range] = _BAD
        return values, fmt

    def parse_values(self, frame: pd.DataFrame) -> dict[str, npt.NDArray[np.float64]]:
        """open…volume as float arrays, NaN where missing or not a number (then a D004)."""
        values: dict[str, npt.NDArray[np.float64]] = {}
        for role in COLUMNS:
            col = frame[self.mapping[role]]
            if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(
                    col.dtype):
                values[role] = col.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values[role] = pd.to_numeric(col.astype(str).str.strip(), errors="coerce") \
                    .to_numpy(dtype=np.float64, na_value=np.nan)
        return values

    def cell_text(self, role: str, rows: npt.NDArray[np.int64]) -> list[str]:
        """The file's text of the ``role`` cells at ``rows`` (called for failing rows only)."""
        return _texts_at(self.raw.frame[self.mapping[role]], rows)

    def normalise(self, times: npt.NDArray[np.int64], values: dict[str, npt.NDArray[np.float64]],
                  base: ImportResult) -> ImportResult:
        lines = self.raw.lines
        if not _is_sorted(times):  # most files are: skip copying every column twice
            order = np.argsort(times, kind="stable")
            times, lines = times[order], lines[order]
            values = {k: v[order] for k, v in values.items()}
        dup_next = np.flatnonzero(times[1:] == times[:-1])  # i: row i repeated by row i + 1
        keep = np.ones(len(times), dtype=bool)
        keep[dup_next] = False
        for i in dup_next:
            j = i + 1
            while j + 1 < len(times) and times[j + 1] == times[j]:
                j += 1
            self.report("D008", f"duplicate timestamp {format_time(int(times[i]))}: "
                        f"{self.raw.unit} {lines[i]} is repeated by {self.raw.unit} "
                        f"{lines[j]}; keeping {self.raw.unit} {lines[j]} (the last)",
                        int(lines[i]), _TIME_COLUMN,
                        "remove the duplicate rows, or accept that the last one wins")
        if len(dup_next):
            times, lines = times[keep], lines[keep]
            values = {k: v[keep] for k, v in values.items()}
        timeframe = self.timeframe
        spacing = typical_spacing(times)
        if timeframe is None:
            guess = timeframe_for_seconds(spacing) if spacing else None
            if guess is None:
                what = f"{format_duration(spacing)} apart" if spacing else "a single bar"
                self.diags["D010"].append(diag(
                    "D010", f"cannot infer the timeframe: the bars are {what}", self.shown,
                    help="give --timeframe (one of the timeframes peak knows)"))
                self.counts["D010"] += 1
                return _replace(base, diagnostics=self.finished())
            timeframe = guess
        seconds = timeframe_seconds(timeframe)
        smallest = int(np.diff(times).min()) // NS if len(times) > 1 else None
        if spacing is not None and seconds not in (spacing, smallest):
            self.diags["D010"].append(diag(
                "D010", f"the bars are {format_duration(spacing)} apart (mostly), but the "
                f"timeframe is {timeframe}", self.shown,
                help=(f"pass --timeframe {timeframe_for_seconds(spacing)}"
                      if timeframe_for_seconds(spacing) else
                      "resample the file to the timeframe first")))
            self.counts["D010"] += 1
            return _replace(base, diagnostics=self.finished())
        stray = off_grid(times, seconds)
        for i in stray:
            step = int(times[i] - times[i - 1]) // NS
            self.report("D010", f"this bar is {format_duration(step)} after the previous one "
                        f"({self.raw.unit} {lines[i - 1]}); {timeframe} bars are "
                        f"{format_duration(seconds)} apart", int(lines[i]), _TIME_COLUMN,
                        "remove or fix the stray bar")
        if len(stray):
            return _replace(base, diagnostics=self.finished())
        gaps = find_gaps(times, seconds)
        for gap in gaps:
            self.report("D009", f"gap: {gap.describe()}", int(lines[gap.after + 1]),
                        _TIME_COLUMN, "gaps are kept, not filled; check the source, or "
                        "fetch the missing range")
        index = pd.DatetimeIndex(times.astype("datetime64[ns]")).tz_localize("UTC")
        frame = pd.DataFrame(values, index=index)
        candles = CandleSet.of(frame, self.market, timeframe, f"file: {self.shown}")
        return _replace(base, candles=candles, diagnostics=self.finished(),
                        duplicates=len(dup_next), gaps=len(gaps))


_BAD = np.iinfo(np.int64).min
_SENTINEL = int(pd.Timestamp("2262-01-01").value)
_TIME_COLUMN = "time"
_FMT_NAME = {"iso": "an ISO-8601 date and time", "s": "seconds since 1970",
             "ms": "milliseconds since 1970", "us": "microseconds since 1970",
             "ns": "nanoseconds since 1970", "datetime": "a datetime"}
_HELP = {
    "D004": "fill in or remove the row; peak does not guess missing prices",
    "D005": "remove the row, or fix the price; prices must be positive",
    "D006": "fix the row so that low <= open, close <= high, or remove it",
    "D007": "fix or remove the row; volume cannot be negative",
}


def _is_sorted(times: npt.NDArray[np.int64]) -> bool:
    """Whether ``times`` is already in order (a stable sort would then change nothing)."""
    return bool(np.all(times[1:] >= times[:-1]))


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
