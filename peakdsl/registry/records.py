"""The generic run record: what a run is (``RunStart``), how it went (``RunOutcome``), and how
it reads back (``RunRecord``, ``SweepRecord``), plus the side-by-side comparison of two runs.

Every kind of run (``peakdsl.registry.kinds``) is written with the same two records, so a new
product adds a kind, not a method and a table:

- ``RunStart``: kind, spec, lineage, parent run, **input hashes** (name → sha256: ``artifact``,
  ``data``, later ``risk``, a portfolio's components, …), params, settings, seed, the engine
  version and which data it read. Known when the run starts, immutable afterwards.
- ``RunOutcome``: metrics (numbers, one ``metrics`` row each), timing, trades, warnings,
  **artifact paths** (name → file the run wrote: ``report``, ``trades``, ``results``) and a
  kind's structured ``summary`` (a sweep's best row, a walk-forward's parameter stability).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .encoding import plain

Status = Literal["running", "done", "failed"]
State = Literal["running", "incomplete", "done", "failed"]
STATES: tuple[State, ...] = ("running", "incomplete", "done", "failed")
Number = float | int | None
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class DataRange:
    """The data a run read: where from, which market and timeframe, which bars (ISO times)."""

    source: str | None = None
    market: str | None = None
    timeframe: str | None = None
    start: str | None = None
    end: str | None = None
    bars: int | None = None


@dataclass(frozen=True)
class RunStart:
    """What a run is, known before it runs; the database keeps it immutable.

    ``lineage`` (default: the spec name, or the parent's lineage for a child run) groups the
    runs that count as trials of one idea; ``parent_id`` is required exactly for the kinds
    that belong to another run (``sweep_trial``, ``walkforward_window``).
    """

    kind: str
    spec: str
    inputs: Mapping[str, str]
    engine_version: str
    params: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    lineage: str | None = None
    parent_id: str | None = None
    data: DataRange = DataRange()
    command: str | None = None  # the `peak …` line that reproduces it (peakdsl.repro)


@dataclass(frozen=True)
class RunOutcome:
    """How a finished run went. ``metrics`` are numbers (None/NaN: undefined); ``artifacts``
    are the files it wrote, stored relative to the project folder when inside it."""

    metrics: Mapping[str, Any]
    timing: Mapping[str, float] = field(default_factory=dict)
    trades: int | None = None
    warnings: Sequence[str] = ()
    artifacts: Mapping[str, PathLike] = field(default_factory=dict)
    summary: Mapping[str, Any] | None = None


Child = tuple[RunStart, RunOutcome]


@dataclass(frozen=True)
class RunRecord:
    """One recorded run. ``status`` is as stored; ``state`` adds ``incomplete`` for a
    ``running`` row whose process is gone (killed, crashed, machine rebooted).

    ``artifact_sha256`` and ``data_fingerprint`` are ``inputs["artifact"]`` and
    ``inputs["data"]`` (empty when the run has none); ``sweep_id`` is ``parent_id`` when the
    parent is a sweep; ``children`` counts the runs whose parent this run is.
    """

    id: str
    kind: str
    spec: str
    lineage: str
    sweep_id: str | None
    status: Status
    state: State
    created_at: str
    finished_at: str | None
    artifact_sha256: str
    data_fingerprint: str
    data_source: str | None
    data_start: str | None
    data_end: str | None
    data_bars: int | None
    market: str | None
    timeframe: str | None
    params: dict[str, Any]
    seed: int | None
    engine_version: str
    settings: dict[str, Any]
    metrics: dict[str, Number]
    timing: dict[str, float]
    trades: int | None
    warnings: tuple[str, ...]
    error: str | None
    pid: int | None
    hostname: str | None
    parent_id: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    children: int = 0
    command: str | None = None  # None: recorded before peak stored command lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers encoded as in the registry)."""
        out: dict[str, Any] = plain(asdict(self))
        return out


@dataclass(frozen=True)
class SweepRecord:
    """One recorded sweep (a run of kind ``sweep``). ``state`` adds ``incomplete`` for a
    ``running`` sweep whose process is gone (it can be resumed); ``runs`` counts its trials."""

    id: str
    spec: str
    lineage: str
    status: Status
    state: State
    created_at: str
    finished_at: str | None
    config: dict[str, Any]
    summary: dict[str, Any] | None
    runs: int
    pid: int | None
    hostname: str | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(asdict(self))
        return out


@dataclass(frozen=True)
class KindRecord:
    """A kind as the registry lists it in ``run_kinds``."""

    kind: str
    description: str
    parent: str | None
    trial: bool


# ------------------------------------------------------------------------ comparison

@dataclass(frozen=True)
class Difference:
    name: str
    a: Any
    b: Any


@dataclass(frozen=True)
class MetricRow:
    name: str
    a: Number
    b: Number
    delta: float | int | None  # b - a when both are finite numbers


@dataclass(frozen=True)
class RunComparison:
    """Two runs side by side: what differs in what ran, and how the results differ."""

    a: RunRecord
    b: RunRecord
    same_spec: bool
    same_artifact: bool
    same_data: bool
    same_engine: bool
    same_seed: bool
    params: tuple[Difference, ...]  # only the params that differ
    settings: tuple[Difference, ...]  # only the settings that differ
    metrics: tuple[MetricRow, ...]  # every metric of either run

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.to_dict(), "b": self.b.to_dict(),
            "same": {"spec": self.same_spec, "artifact": self.same_artifact,
                     "data": self.same_data, "engine": self.same_engine,
                     "seed": self.same_seed},
            "params": [plain(asdict(d)) for d in self.params],
            "settings": [plain(asdict(d)) for d in self.settings],
            "metrics": [plain(asdict(m)) for m in self.metrics],
        }


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[Difference, ...]:
    return tuple(Difference(name, a.get(name), b.get(name))
                 for name in sorted(set(a) | set(b))
                 if (name in a) != (name in b) or plain(a.get(name)) != plain(b.get(name)))


def _delta(a: Number, b: Number) -> float | int | None:
    """``b - a`` when both are finite numbers (an int when both are ints), else None."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if isinstance(a, int) and isinstance(b, int):
        return b - a
    if isinstance(a, int | float) and isinstance(b, int | float) \
            and math.isfinite(a) and math.isfinite(b):
        return float(b) - float(a)
    return None


def compare_records(a: RunRecord, b: RunRecord) -> RunComparison:
    names = sorted(set(a.metrics) | set(b.metrics))
    rows = tuple(MetricRow(n, a.metrics.get(n), b.metrics.get(n),
                           _delta(a.metrics.get(n), b.metrics.get(n))) for n in names)
    return RunComparison(
        a=a, b=b, same_spec=a.spec == b.spec, same_artifact=a.artifact_sha256 == b.artifact_sha256,
        same_data=a.data_fingerprint == b.data_fingerprint,
        same_engine=a.engine_version == b.engine_version, same_seed=a.seed == b.seed,
        params=_differences(a.params, b.params), settings=_differences(a.settings, b.settings),
        metrics=rows)


__all__ = ["STATES", "Child", "DataRange", "Difference", "KindRecord", "MetricRow", "Number",
           "RunComparison", "RunOutcome", "RunRecord", "RunStart", "State", "Status",
           "SweepRecord", "compare_records"]
