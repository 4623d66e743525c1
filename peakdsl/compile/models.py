"""Frozen pydantic runtime configs: what every later stage (backtest, sweep, live) consumes.

``extra='forbid'`` everywhere: an artifact with a key the engine does not know is rejected,
never half-understood. JSON Schemas in ``compiled/schema/`` are generated from these.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
CalendarName = Literal["always", "weekdays"]  # the `calendar` setting (annualisation)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scalar(Frozen):
    """A setting that is either a constant or a param reference (so sweeps can vary it)."""

    const: float | None = None
    param: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Scalar:
        if (self.const is None) == (self.param is None):
            raise ValueError("a scalar is exactly one of const or param")
        return self

    def resolve(self, params: dict[str, float]) -> float:
        return params[self.param] if self.param is not None else float(self.const or 0.0)


class Money(Frozen):
    amount: float
    currency: str


class Market(Frozen):
    symbol: str
    base: str
    quote: str
    settle: str | None = None


class LinearForm(Frozen):
    const: int
    terms: dict[str, int] = Field(default_factory=dict)


class Lookback(Frozen):
    """max over linear forms of params; ``text`` is for people."""

    forms: list[LinearForm]
    text: str
    exact: bool = True  # False: a safe upper bound (too many forms to keep; W005)

    def evaluate(self, params: dict[str, float]) -> int:
        """A term's name is a param or a product of params (``"k*n"``: lang/lookback.py)."""
        return max(0, *(f.const + sum(int(c * math.prod(params[p] for p in n.split("*")))
                                      for n, c in f.terms.items())
                        for f in self.forms))


class Param(Frozen):
    name: str
    type: Literal["int", "float", "percent", "bps"]
    default: float
    low: float
    high: float
    step: float | None = None


class Require(Frozen):
    """A param constraint: ``node`` is its boolean node (over params only) in the graph."""

    node: int
    source: str


class GraphNode(Frozen):
    id: int
    op: str
    inputs: list[int]
    value: float | str | bool | None = None
    unit: str
    series: bool
    lookback: Lookback
    names: list[str] = Field(default_factory=list)


class Step(Frozen):
    node: int
    kind: Literal["kernel", "expr", "scalar"]
    expr: str | None = None
    inputs: dict[str, int] = Field(default_factory=dict)


class Graph(Frozen):
    nodes: list[GraphNode]
    program: list[Step]
    lets: dict[str, int]
    rules: dict[str, int]
    # stops and sizes written as expressions, by engine slot (``lang.levels.LEVEL_SLOTS``):
    # each read at the signal bar of an entry and held for its trade
    levels: dict[str, int] = Field(default_factory=dict)


class Sizing(Frozen):
    mode: Literal["equity_fraction", "notional", "quantity", "vol_target"]
    value: Scalar | None  # None: a fraction of equity given by an expression (graph.levels)


class Execution(Frozen):
    fill: Literal["next_open", "close"] = "next_open"
    fees: Scalar = Scalar(const=0.001)
    slippage: Scalar = Scalar(const=0.0005)
    qty_step: float | None = None
    min_notional: Money | None = None
    end_of_data: Literal["close", "mark"] = "close"
    leverage: float = Field(default=1.0, gt=0, le=100)


class Holding(Frozen):
    """A strategy's trade rules (docs/backtest.md §3; 0: off)."""

    min_hold: int = 0
    max_hold: int = 0
    cooldown_after_stop: int = 0
    max_consecutive_losses: int = 0
    reversal: Literal["flip", "flat"] = "flip"


class Robustness(Frozen):
    """A spec's `robustness {}` block (defaults where it is silent; see docs/robustness.md)."""

    monte_carlo: int = 1000
    skip: float = 0.1
    block_size: int | None = None  # None: the cube root of the bars
    ruin: float = 0.5
    jitter: bool = True
    seed: int = 0
    stress: list[str] = Field(default_factory=list)


class StrategyConfig(Frozen):
    name: str
    description: str = ""
    market: Market
    timeframe: str
    timeframe_seconds: int
    params: list[Param]
    requires: list[Require]
    graph: Graph
    warmup: Lookback
    warmup_bars: int  # at the param defaults
    sizing: Sizing
    stop_loss: Scalar | None = None
    take_profit: Scalar | None = None
    trailing_stop: Scalar | None = None
    calendar: CalendarName = "always"
    calendar_declared: bool = False  # written in the spec (else the crypto default, 24/7)
    execution: Execution
    holding: Holding = Holding()
    robustness: Robustness = Robustness()


class Component(Frozen):
    name: str
    kind: Literal["strategy", "portfolio"]
    weight: float
    overrides: dict[str, float] = Field(default_factory=dict)
    artifact_sha256: str


class PortfolioConfig(Frozen):
    name: str
    description: str = ""
    capital: Money
    components: list[Component]
    rebalance_seconds: int | None = None
    rebalance_drift: float | None = None
    risk: str | None = None
    risk_sha256: str | None = None
    robustness: Robustness = Robustness()


SinkKind = Literal["log", "stderr", "webhook", "slack", "apprise"]
SeverityName = Literal["info", "warning", "critical"]


class AlertSink(Frozen):
    """One sink of an ``alerts`` block; a URL is never here, only the variable holding it."""

    kind: SinkKind
    severity: SeverityName
    url_env: str | None = None


class Alerts(Frozen):
    throttle_seconds: int = 300
    queue: int = 1000
    sinks: list[AlertSink] = []


class RiskConfig(Frozen):
    name: str
    description: str = ""
    max_order_notional: Money
    max_symbol_exposure: float
    max_total_exposure: float
    max_open_positions: int
    max_daily_loss: float
    max_orders_per_minute: int
    daily_loss_warn: float = 0.8
    alerts: Alerts | None = None  # None: the deployment's default (its log only)


class Criterion(Frozen):
    metric: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    threshold: float
    unit: Literal["percent", "number", "int"]


class PromotionConfig(Frozen):
    name: str
    description: str = ""
    criteria: list[Criterion]


class SourceRef(Frozen):
    path: str
    sha256: str


class _Artifact(Frozen):
    schema_version: int
    compiler_version: str
    name: str
    source: SourceRef


class StrategyArtifact(_Artifact):
    kind: Literal["strategy"]
    config: StrategyConfig


class PortfolioArtifact(_Artifact):
    kind: Literal["portfolio"]
    config: PortfolioConfig


class RiskArtifact(_Artifact):
    kind: Literal["risk"]
    config: RiskConfig


class PromotionArtifact(_Artifact):
    kind: Literal["promotion"]
    config: PromotionConfig


Artifact = StrategyArtifact | PortfolioArtifact | RiskArtifact | PromotionArtifact
ARTIFACT_MODELS: dict[str, type[_Artifact]] = {
    "strategy": StrategyArtifact, "portfolio": PortfolioArtifact, "risk": RiskArtifact,
    "promotion": PromotionArtifact,
}


class ManifestEntry(Frozen):
    kind: str
    name: str
    path: str
    source_path: str
    source_sha256: str
    artifact_sha256: str


class Manifest(Frozen):
    schema_version: int
    compiler_version: str
    artifacts: list[ManifestEntry]
