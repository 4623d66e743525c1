"""Checks on candles: row validity, bar spacing, gaps and anomalies.

Pure functions over numpy arrays (times as int64 ns); the importer, the fetcher, the cache
check and ``peak data check`` all use the same rules, so a dataset means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .candles import NS, CandleSet, format_duration, format_time

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One invalid row: its position in the input, the code, a message and the column at fault."""

    row: int
    code: str
    message: str
    column: str | None


# Original text of some cells: (column, row indices) -> one string per index. Asked only for
# rows that fail, so a valid file never pays for turning a million numbers into strings.
CellText = Callable[[str, IntArray], Sequence[str]]


@dataclass(frozen=True, slots=True)
class RowFailures:
    """Row indices that fail each check, in the order the diagnostics are built.

    Computed with whole-column masks, so that message building (the only per-row Python work)
    is bounded by the number of failures, not by the number of rows.
    """

    missing: dict[str, IntArray]      # D004, per column open…volume
    nonpositive: dict[str, IntArray]  # D005, per price column
    inconsistent: IntArray            # D006
    negative_volume: IntArray         # D007

    @property
    def count(self) -> int:
        """How many problems there are (a row can have several)."""
        groups = [*self.missing.values(), *self.nonpositive.values(), self.inconsistent,
                  self.negative_volume]
        return sum(len(g) for g in groups)


def failing_rows(values: Mapping[str, FloatArray], no_volume: bool = False) -> RowFailures:
    """The failing row indices of every row check, vectorised over whole columns.

    A row with a missing value gets no price checks; a row with a non-positive price is not
    also reported as inconsistent (one root cause, one diagnostic). ``no_volume``: the candles
    have no volume at all (NaN throughout, from a file without a volume column), which is not
    a missing value on every row.
    """
    o, h, lo, c, v = (values[k] for k in ("open", "high", "low", "close", "volume"))
    missing = np.zeros(len(o), dtype=bool)
    missing_at: dict[str, IntArray] = {}
    for col in ("open", "high", "low", "close", "volume"):
        bad = ~np.isfinite(values[col]) if not (no_volume and col == "volume") else \
            np.zeros(len(o), dtype=bool)
        missing |= bad
        missing_at[col] = _where(bad)
    priced = ~missing
    nonpos = np.zeros(len(o), dtype=bool)
    nonpos_at: dict[str, IntArray] = {}
    for col in ("open", "high", "low", "close"):
        bad = priced & (values[col] <= 0)
        nonpos |= bad
        nonpos_at[col] = _where(bad)
    ok = priced & ~nonpos
    with np.errstate(invalid="ignore"):
        incons = ok & ((lo > np.minimum(o, c)) | (h < np.maximum(o, c)) | (lo > h))
        negative = priced & (v < 0)
    return RowFailures(missing_at, nonpos_at, _where(incons), _where(negative))


def _where(mask: npt.NDArray[np.bool_]) -> IntArray:
    return np.flatnonzero(mask).astype(np.int64)


def row_problems(values: Mapping[str, FloatArray], cell_text: CellText | None = None,
                 failures: RowFailures | None = None, no_volume: bool = False
                 ) -> list[RowProblem]:
    """D004 missing / non-finite, D005 non-positive price, D006 inconsistent, D007 negative volume.

    ``values`` maps open…volume to float arrays (NaN where missing or unparseable);
    ``cell_text`` optionally gives the original text of failing cells, for messages.
    Messages are built only for the rows :func:`failing_rows` returns (``failures``, when
    the caller already has them).
    """
    found = failures if failures is not None else failing_rows(values, no_volume)
    o, h, lo, c, v = (values[k] for k in ("open", "high", "low", "close", "volume"))
    out: list[RowProblem] = []
    for col, rows in found.missing.items():
        texts = cell_text(col, rows) if cell_text is not None and len(rows) else None
        for k, i in enumerate(rows):
            raw = "" if texts is None else str(texts[k]).strip()
            what = ("missing value" if raw in ("", "nan", "NaN", "None", "null")
                    else f"`{raw[:40]}` is not a finite number")
            out.append(RowProblem(int(i), "D004", f"{what} in column `{col}`", col))
    for col, rows in found.nonpositive.items():
        for i in rows:
            out.append(RowProblem(int(i), "D005",
                                  f"{col} is {_num(values[col][i])}; prices must be > 0", col))
    for i in found.inconsistent:
        out.append(RowProblem(int(i), "D006", _inconsistency(o[i], h[i], lo[i], c[i]), None))
    for i in found.negative_volume:
        out.append(RowProblem(int(i), "D007", f"volume is {_num(v[i])}; volume must be >= 0",
                              "volume"))
    return out


def by_row(problems: Sequence[RowProblem]) -> list[RowProblem]:
    """One problem per row: a blank row used to be five D004s, one per empty cell.

    The row's first code (D003 before D004 …) is kept; missing cells are listed in one message,
    any other finding of the row is appended to it. Rows keep their first-seen order.
    """
    rows: dict[int, list[RowProblem]] = {}
    for p in problems:
        rows.setdefault(p.row, []).append(p)
    return [_merged(sorted(found, key=lambda p: p.code)) for found in rows.values()]


def _merged(found: list[RowProblem]) -> RowProblem:
    """``found`` (one row's problems, by code) as one: empty cells named together."""
    if len(found) == 1:
        return found[0]
    blank = "missing value in column "
    columns = ", ".join(p.message[len(blank):] for p in found if p.message.startswith(blank))
    parts: list[str] = []
    for p in found:
        if not p.message.startswith(blank):
            parts.append(p.message)
        elif columns:
            parts.append(f"missing values in columns {columns}" if "," in columns
                         else p.message)
            columns = ""
    return RowProblem(found[0].row, found[0].code, "; ".join(parts), None)


def _num(x: float) -> str:
    return f"{x:.10g}"


def _inconsistency(o: float, h: float, lo: float, c: float) -> str:
    if lo > h:
        why = f"low {_num(lo)} > high {_num(h)}"
    elif h < max(o, c):
        which = "open" if o >= c else "close"
        why = f"high {_num(h)} < {which} {_num(max(o, c))}"
    else:
        which = "open" if o <= c else "close"
        why = f"low {_num(lo)} > {which} {_num(min(o, c))}"
    return f"inconsistent candle: {why} (need low <= open, close <= high)"


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing bars between position ``after`` and ``after + 1`` of a sorted series."""

    after: int
    prev_ns: int
    next_ns: int
    missing: int

    @property
    def seconds(self) -> int:
        return (self.next_ns - self.prev_ns) // NS

    def describe(self) -> str:
        return (f"{self.missing} missing bar{'s' * (self.missing != 1)} between "
                f"{format_time(self.prev_ns)} and {format_time(self.next_ns)} "
                f"({format_duration(self.seconds)} apart)")


def find_gaps(times_ns: IntArray, bar_seconds: int) -> list[Gap]:
    """Steps longer than one bar that are whole multiples of it (others are spacing errors)."""
    step = bar_seconds * NS
    diffs = np.diff(times_ns)
    where = np.flatnonzero((diffs > step) & (diffs % step == 0))
    return [Gap(int(i), int(times_ns[i]), int(times_ns[i + 1]), int(diffs[i] // step - 1))
            for i in where]


def off_grid(times_ns: IntArray, bar_seconds: int) -> IntArray:
    """Positions ``i`` whose step from bar ``i - 1`` is not a whole number of bars."""
    step = bar_seconds * NS
    diffs = np.diff(times_ns)
    return (np.flatnonzero(diffs % step != 0) + 1).astype(np.int64)


def typical_spacing(times_ns: IntArray) -> int | None:
    """The most common step in seconds (ties: the smallest), or None with fewer than 2 bars."""
    if len(times_ns) < 2:
        return None
    steps, counts = np.unique(np.diff(times_ns), return_counts=True)
    return int(steps[int(np.argmax(counts))]) // NS


ANOMALIES: dict[str, str] = {  # QualityReport field → its label for people
    "zero_volume_at": "zero volume", "extreme_at": "extreme return", "flat_at": "flat bar"}


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Coverage, gaps and anomalies of one dataset (what ``peak data check`` prints): each
    anomaly is the open time (ns) of every bar that has it, so a report can say where."""

    bars: int
    start_ns: int | None
    end_ns: int | None
    expected: int
    gaps: tuple[Gap, ...]
    zero_volume_at: tuple[int, ...]
    extreme_at: tuple[int, ...]  # the bar whose close ends the extreme return
    flat_at: tuple[int, ...]
    off_grid: int

    @property
    def coverage(self) -> float:
        return self.bars / self.expected if self.expected else 1.0

    @property
    def missing(self) -> int:
        return sum(g.missing for g in self.gaps)

    @property
    def largest_gap(self) -> Gap | None:
        return max(self.gaps, key=lambda g: g.missing) if self.gaps else None

    @property
    def zero_volume(self) -> int:
        return len(self.zero_volume_at)

    @property
    def extreme_returns(self) -> int:
        return len(self.extreme_at)

    @property
    def flat_bars(self) -> int:
        return len(self.flat_at)

    def anomalies(self) -> dict[str, tuple[int, ...]]:
        """Anomaly name (``ANOMALIES``' keys) → the bars that have it."""
        return {name: getattr(self, name) for name in ANOMALIES}

    def as_dict(self) -> dict[str, object]:
        """Counts and, for gaps and anomalies, every one of them with its time."""
        largest = self.largest_gap
        return {
            "bars": self.bars,
            "from": format_time(self.start_ns) if self.start_ns is not None else None,
            "to": format_time(self.end_ns) if self.end_ns is not None else None,
            "expected_bars": self.expected, "coverage": round(self.coverage, 6),
            "gaps": len(self.gaps), "missing_bars": self.missing,
            "largest_gap": None if largest is None else _gap_doc(largest),
            "zero_volume_bars": self.zero_volume, "extreme_returns": self.extreme_returns,
            "flat_bars": self.flat_bars, "off_grid_bars": self.off_grid,
            "gap_list": [_gap_doc(g) for g in self.gaps],
            "anomaly_list": {key: [format_time(t) for t in getattr(self, name)]
                             for name, key in _ANOMALY_KEYS.items()},
        }


_ANOMALY_KEYS = {"zero_volume_at": "zero_volume", "extreme_at": "extreme_returns",
                 "flat_at": "flat_bars"}  # field → key in ``as_dict``'s anomaly_list


def _gap_doc(gap: Gap) -> dict[str, object]:
    return {"after": format_time(gap.prev_ns), "before": format_time(gap.next_ns),
            "missing_bars": gap.missing}


EXTREME_SIGMA = 10.0


def assess(candles: CandleSet) -> QualityReport:
    """Coverage against the timeframe's grid, gaps, and anomalies worth a look.

    Anomalies: bars with zero volume, close-to-close log returns more than 10 standard
    deviations from the mean, and flat bars (open = high = low = close).
    """
    f = candles.frame
    times = f.index.as_unit("ns").asi8
    if len(f) == 0:
        return QualityReport(0, None, None, 0, (), (), (), (), 0)
    step = candles.bar_seconds * NS
    o, h, lo, close = (f[c].to_numpy() for c in ("open", "high", "low", "close"))
    return QualityReport(
        bars=len(f), start_ns=int(times[0]), end_ns=int(times[-1]),
        expected=int((times[-1] - times[0]) // step) + 1,
        gaps=tuple(find_gaps(times, candles.bar_seconds)),
        zero_volume_at=_at(times, f["volume"].to_numpy() == 0),
        extreme_at=_at(times[1:], _extreme(close)),
        flat_at=_at(times, (o == h) & (h == lo) & (lo == close)),
        off_grid=len(off_grid(times, candles.bar_seconds)))


def _extreme(close: FloatArray) -> npt.NDArray[np.bool_]:
    """Close-to-close log returns more than ``EXTREME_SIGMA`` deviations from their mean."""
    returns = np.diff(np.log(close))
    sigma = float(np.std(returns)) if len(returns) > 2 else 0.0
    if sigma <= 0:
        return np.zeros(len(returns), dtype=bool)
    extreme: npt.NDArray[np.bool_] = np.abs(returns - np.mean(returns)) > EXTREME_SIGMA * sigma
    return extreme


def _at(times: IntArray, mask: npt.NDArray[np.bool_]) -> tuple[int, ...]:
    return tuple(int(t) for t in times[mask])
