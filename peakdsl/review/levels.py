"""The classification table: each change kind, what it covers, and its level per direction.

One table, read by the comparison (``peakdsl.review.diff``), the JSON schema (through the
``ChangeKind`` literal) and docs/diff.md (``markdown_table``; a test keeps the page's table
equal to it). A kind's level can depend on the direction of the change: a risk limit that
grows is *loosened* (critical), one that shrinks *tightened* (review); a promotion criterion
that admits more is *weakened* (critical). ``changed`` is the direction of every undirected
change and the fallback of a directed kind whose direction cannot be told (a currency that
changed, a criterion turned from a lower into an upper bound): such a change is given the
most severe level of its kind, because a reviewer must not be told "tightened" by a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import LEVEL_ORDER, ChangeKind, Level

CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class KindInfo:
    """One change kind: what it covers (for people) and its level per direction."""

    covers: str
    level: Level  # undirected, and the default of a directed kind
    directed: Mapping[str, Level] = field(default_factory=dict)

    def level_of(self, direction: str) -> Level:
        if direction == CHANGED and self.directed:
            return max(self.directed.values(), key=LEVEL_ORDER.index)
        return self.directed.get(direction, self.level)


KINDS: dict[ChangeKind, KindInfo] = {
    "spec_added": KindInfo("a spec exists only in the new version", "review"),
    "spec_removed": KindInfo("a spec exists only in the old version", "review"),
    "spec_renamed": KindInfo("two files compared hold differently named specs", "review"),
    "description": KindInfo("the `description` line", "info"),
    "market": KindInfo("a strategy's `market`, or the other markets it reads "
                       "(`close@ETH/USDT`)", "review"),
    "timeframe": KindInfo("a strategy's `timeframe`", "review"),
    "calendar": KindInfo("the annualisation `calendar`", "review"),
    "param_default": KindInfo("a param's default (what a backtest and live run use)", "review"),
    "param_range": KindInfo("a param's type, range or step (what sweeps explore)", "info"),
    "param_added": KindInfo("a param declared only in the new version", "info"),
    "param_removed": KindInfo("a param declared only in the old version", "info"),
    "constraint": KindInfo("a `require` between params", "info"),
    "logic": KindInfo("an entry or exit rule's signal graph (added, removed or changed)",
                      "review"),
    "warmup": KindInfo("the warm-up derived from the graph", "info"),
    "sizing": KindInfo("`size` or `vol_target`", "review"),
    "leverage": KindInfo("the execution's `leverage`", "review",
                         {"loosened": "critical", "tightened": "review"}),
    "exits": KindInfo("`stop_loss`, `take_profit`, `trailing_stop`", "review"),
    "trade_rules": KindInfo("`min_hold`, `max_hold`, `cooldown after stop`, "
                            "`max_consecutive_losses`, `reversal`", "review"),
    "cost_model": KindInfo("fees, slippage, fill, end of data, quantity step, minimum "
                           "notional", "review"),
    "robustness": KindInfo("the `robustness {}` block", "info"),
    "risk_limit": KindInfo("one limit of a risk spec, or of the risk spec a portfolio uses",
                           "review", {"loosened": "critical", "tightened": "review"}),
    "alerts": KindInfo("a risk spec's `alerts {}` block: its sinks, their severities, the "
                       "throttle and queue", "review",
                       {"weakened": "critical", "strengthened": "info", "changed": "review"}),
    "risk_spec": KindInfo("which risk spec a portfolio names", "review",
                          {"removed": "critical", "added": "review", "swapped": "review"}),
    "criterion": KindInfo("one criterion of a promotion gate", "review",
                          {"weakened": "critical", "strengthened": "review"}),
    "component_added": KindInfo("a portfolio component only in the new version", "review"),
    "component_removed": KindInfo("a portfolio component only in the old version", "review"),
    "component_weight": KindInfo("a component's weight", "review"),
    "component_overrides": KindInfo("a component's `with { … }` param overrides", "review"),
    "component_changed": KindInfo("the spec a component runs changed (see its own changes)",
                                  "review"),
    "component_order": KindInfo("the order of components (on a bar where several enter, the "
                                "risk stage judges the first listed first)", "review"),
    "capital": KindInfo("a portfolio's `capital`", "review"),
    "rebalance": KindInfo("a portfolio's `rebalance` calendar or drift", "review"),
    "other": KindInfo("a compiled field no rule above covers (a new compiler field)",
                      "review"),
}


def level(kind: ChangeKind, direction: str) -> Level:
    return KINDS[kind].level_of(direction)


def markdown_table() -> str:
    """The table of docs/diff.md: kind, what it covers, level (per direction)."""
    rows = ["| change kind | covers | level |", "|---|---|---|"]
    for kind, info in KINDS.items():
        levels = ", ".join(f"{d}: **{lv}**" for d, lv in info.directed.items()) \
            if info.directed else f"**{info.level}**"
        rows.append(f"| `{kind}` | {info.covers} | {levels} |")
    return "\n".join(rows) + "\n"
