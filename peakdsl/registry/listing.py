"""Runs as rows: what ``peak runs list`` shows and ``peak runs export`` writes for notebooks.

A run's row has its identity (id, kind, spec, market, state, …), its params and its metrics
as columns. A sweep is one row, its trials folded into a count: its row carries the params
and metrics of its best combination (beside its own: combinations, deflated Sharpe, PBO,
trials), so sweeps rank beside backtests. A walk-forward's row has its stitched
out-of-sample metrics and its windows as a count; its params vary by window and stay in the
windows' rows (``--all``, ``--parent ID``).

The export is deterministic: rows oldest first (by creation, then id), the fixed columns in
``FIXED`` order, then every param as ``param_NAME`` and every metric under its own name, each
group sorted by name. The same registry gives byte-identical CSV and Parquet files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .records import Number, RunRecord

CHILD_NOUNS = {"sweep": "trials", "walkforward": "windows"}  # what a kind's children are
FIXED = ("id", "kind", "parent_id", "spec", "lineage", "state", "created_at", "finished_at",
         "market", "timeframe", "data_source", "data_start", "data_end", "data_bars",
         "data_fingerprint", "artifact_sha256", "engine_version", "seed", "children",
         "command")
PARAM_PREFIX = "param_"
EXPORT_SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class RunRow:
    """One run as a row: the record, and the params and metrics its row shows (a sweep's
    best combination's, beside the sweep's own metrics)."""

    record: RunRecord
    params: dict[str, Any]
    metrics: dict[str, Number]

    @property
    def folded(self) -> str:
        """``174 trials``, ``7 windows``, ``3 runs``, or '' when it has no child runs."""
        count = self.record.children
        if not count:
            return ""
        return f"{count:,} {CHILD_NOUNS.get(self.record.kind, 'runs')}"

    @property
    def trades(self) -> int | None:
        trades = self.metrics.get("trades", self.record.trades)
        if isinstance(trades, int | float) and math.isfinite(trades):
            return int(trades)
        return None


def run_row(record: RunRecord) -> RunRow:
    """The row of ``record`` (see the module docstring for what a sweep's row carries)."""
    best = (record.summary or {}).get("best") if record.kind == "sweep" else None
    if not isinstance(best, Mapping):
        return RunRow(record, dict(record.params), dict(record.metrics))
    from .encoding import number

    params = best.get("params")
    metrics = best.get("metrics")
    best_metrics = ({str(k): number(v) for k, v in metrics.items()}
                    if isinstance(metrics, Mapping) else {})
    return RunRow(record, dict(params) if isinstance(params, Mapping) else {},
                  {**best_metrics, **record.metrics})


# ------------------------------------------------------------------------ --since

UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def since_time(text: str, now_ms: int) -> str:
    """``--since``: an ISO date or time (UTC unless it says otherwise), or a duration back
    from ``now_ms`` (``90m``, ``12h``, ``7d``, ``2w``), as ``created_at`` is written
    (``2026-11-30T01:47:47.000Z``); ``ValueError`` for anything else."""
    import re

    import pandas as pd

    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if match:
        stamp = pd.Timestamp(now_ms - int(match.group(1)) * UNITS[match.group(2)] * 1000,
                             unit="ms", tz="UTC")
    else:
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, TypeError, OverflowError):
            stamp = pd.NaT
        if stamp is pd.NaT:
            raise ValueError(f"{text!r} is neither a date nor a duration")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return str(stamp.strftime("%Y-%m-%dT%H:%M:%S.")) + f"{stamp.microsecond // 1000:03d}Z"


# ------------------------------------------------------------------------ the export

def export_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run, oldest first; columns as the module docstring orders them."""
    import pandas as pd

    rows = sorted((run_row(r) for r in records),
                  key=lambda row: (row.record.created_at, row.record.id))
    params = sorted({name for row in rows for name in row.params})
    metrics = sorted({name for row in rows for name in row.metrics})
    columns = [*FIXED, *(PARAM_PREFIX + p for p in params),
               *(m if m not in FIXED else f"metric_{m}" for m in metrics)]
    data = [[*_fixed(row.record), *(_cell(row.params.get(p)) for p in params),
             *(_cell(row.metrics.get(m)) for m in metrics)] for row in rows]
    frame = pd.DataFrame(data, columns=columns)
    for column in columns[len(FIXED):]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in ("data_bars", "seed", "children"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _fixed(r: RunRecord) -> list[Any]:
    return [r.id, r.kind, r.parent_id, r.spec, r.lineage, r.state, r.created_at,
            r.finished_at, r.market, r.timeframe, r.data_source, r.data_start, r.data_end,
            r.data_bars, r.data_fingerprint or None, r.artifact_sha256 or None,
            r.engine_version, r.seed, r.children, r.command]


def _cell(value: Any) -> Any:
    """A param or metric as a number (None for a missing or non-numeric value)."""
    from .encoding import number

    value = number(value)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def export_bytes(frame: pd.DataFrame, suffix: str) -> bytes:
    """The frame as a ``.parquet`` or ``.csv`` file's bytes (the same frame, the same bytes)."""
    if suffix == ".csv":
        text: str = frame.to_csv(index=False, lineterminator="\n")
        return text.encode("utf-8")
    if suffix != ".parquet":
        raise ValueError(f"export to {suffix!r}: use one of {', '.join(EXPORT_SUFFIXES)}")
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def write_export(records: Sequence[RunRecord], out: Path) -> pd.DataFrame:
    """Write ``records`` to ``out`` (its suffix picks the format) atomically; the frame."""
    from ..atomic import write_atomic

    frame = export_frame(records)
    write_atomic(out, export_bytes(frame, out.suffix.lower()))
    return frame


__all__ = ["CHILD_NOUNS", "EXPORT_SUFFIXES", "FIXED", "PARAM_PREFIX", "RunRow", "export_bytes",
           "export_frame", "run_row", "since_time", "write_export"]
