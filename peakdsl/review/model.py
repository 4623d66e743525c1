"""What `peak diff` returns: typed change records and the result, as frozen pydantic models.

The JSON document of ``peak diff --format json`` is ``DiffResult`` dumped as is; its schema
is generated from these models (``docs/schemas/diff.schema.json``, a test keeps the committed
file equal to them), so a tool reading the document and the document itself never drift.
Levels and change kinds are ``Literal`` types: the schema lists every value a tool can meet.
The table that gives each change kind its level lives in ``peakdsl.review.levels``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1

Level = Literal["info", "review", "critical"]
LEVEL_ORDER: tuple[Level, ...] = ("info", "review", "critical")  # least to most severe

ChangeKind = Literal[
    "spec_added", "spec_removed", "spec_renamed", "description",
    "market", "timeframe", "calendar",
    "param_default", "param_range", "param_added", "param_removed", "constraint",
    "logic", "warmup", "sizing", "leverage", "exits", "trade_rules", "cost_model", "robustness",
    "risk_limit", "alerts", "risk_spec", "criterion",
    "component_added", "component_removed", "component_weight", "component_overrides",
    "component_changed", "component_order", "capital", "rebalance",
    "other",
]

SpecKind = Literal["strategy", "portfolio", "risk", "promotion"]
SpecStatus = Literal["unchanged", "reformatted", "changed", "added", "removed"]
SourceForm = Literal["revision", "worktree", "folder", "file"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Change(Frozen):
    """One semantic change to one spec, classified.

    ``subject`` names what changed inside the spec (a param, a limit, a rule slot such as
    ``entry_long``, a component); ``before``/``after`` are the values as a person reads them
    (``5%``, ``crossover(fast_ma, slow_ma)``), null where the thing did not exist on that side.
    ``direction`` is what decided the level of a directed kind (``loosened``, ``weakened``).
    """

    spec: str
    spec_kind: SpecKind
    kind: ChangeKind
    level: Level
    subject: str
    before: str | None
    after: str | None
    direction: str
    message: str


class SideDoc(Frozen):
    """One side of the comparison: what was given and what it resolved to."""

    label: str  # as typed: `HEAD`, `v1`, `specs/`, `a.peak`; `work tree`
    form: SourceForm
    commit: str | None = None  # the full commit id of a revision


class SpecDoc(Frozen):
    """One spec compared: its status and artifact hashes on both sides (null: absent)."""

    name: str
    kind: SpecKind
    status: SpecStatus
    before_sha256: str | None
    after_sha256: str | None
    level: Level | None  # the highest level among its changes


class TradeDoc(Frozen):
    """A trade one version makes and the other does not (matched by entry time and side)."""

    component: str | None  # the portfolio component; null for a strategy
    entry_time: str
    exit_time: str
    side: Literal["long", "short"]
    pnl: float
    trade_return: float  # a fraction of the entry value
    exit_reason: str


class MetricDelta(Frozen):
    """One metric on both versions; ``delta`` is after − before (null when either is)."""

    name: str
    before: float | None
    after: float | None
    delta: float | None


class ImpactDataDoc(Frozen):
    """The candles one version ran on."""

    source: str
    synthetic: bool
    bars: int
    start: str
    end: str


class ImpactDoc(Frozen):
    """Both versions of one changed strategy or portfolio backtested on the same data."""

    spec: str
    kind: Literal["strategy", "portfolio"]
    ran: bool
    note: str  # why it did not run, or what differs between the two runs' data
    data_before: ImpactDataDoc | None
    data_after: ImpactDataDoc | None
    metrics: list[MetricDelta]
    trades_before: int
    trades_after: int
    trades_added: list[TradeDoc]
    trades_removed: list[TradeDoc]


class Counts(Frozen):
    critical: int
    review: int
    info: int


class DiffResult(Frozen):
    """`peak diff A B`: every spec compared, every semantic change, the optional impact."""

    schema_version: int
    before: SideDoc
    after: SideDoc
    specs: list[SpecDoc]
    changes: list[Change]
    counts: Counts
    highest: Level | None  # the most severe level among the changes; null: none
    impact: list[ImpactDoc] | None  # null unless --impact

    @property
    def semantic(self) -> bool:
        """Whether anything beyond comments and formatting changed."""
        return bool(self.changes)

    def fails(self, at: Level) -> bool:
        """Whether a change at ``at`` or above exists (``--fail-on``)."""
        return self.highest is not None and \
            LEVEL_ORDER.index(self.highest) >= LEVEL_ORDER.index(at)
