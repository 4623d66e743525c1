"""Compare two snapshots spec by spec and classify every semantic change.

Specs are matched by name. Each config field has a comparer in its kind's table
(``FIELDS``); a comparer returns ``Found`` records and ``levels.KINDS`` gives each its
level. ``IGNORED`` lists the fields that are derived from others (the graph is compared
through its rules, the warm-up bars through the warm-up formula) or carry no meaning; a
field in neither (a field a later compiler adds) is still compared, as kind ``other``, and a
test requires every field of every config model to be in one of the two. Last, a spec whose
semantic fingerprint (``Snapshot.fingerprint``) differs although no comparer found anything
gets an ``other`` change: nothing that changes a run can pass as "no semantic change".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from ..compile import models as m
from ..lang.frames import Frame
from ..lang.levels import LEVEL_BASIS
from . import values as show
from .levels import CHANGED, level
from .logic import Renderer, require_hashes, rule_hashes
from .model import (
    LEVEL_ORDER,
    SCHEMA_VERSION,
    Change,
    ChangeKind,
    Counts,
    DiffResult,
    ImpactDoc,
    Level,
    SpecDoc,
    SpecKind,
    SpecStatus,
)
from .snapshot import Snapshot, warmup_key

KIND_RANK = {"risk": 0, "promotion": 1, "strategy": 2, "portfolio": 3}


@dataclass(frozen=True)
class Found:
    """A change before it is given its level: what, about which item, from → to."""

    kind: ChangeKind
    subject: str
    before: str | None
    after: str | None
    direction: str = CHANGED
    what: str = ""  # how the message names the item; default: the subject

    def message(self) -> str:
        what = self.what or self.subject
        if self.before is None:
            return f"{what} added: {self.after}"
        if self.after is None:
            return f"{what} removed (was {self.before})"
        verb = self.direction if self.direction not in (CHANGED, "swapped") else "changed"
        return f"{what} {verb}: {self.before} → {self.after}"


@dataclass(frozen=True)
class Pair:
    """One spec on both sides."""

    name: str
    old: Any  # the config models of one kind
    new: Any
    before: Snapshot
    after: Snapshot


Comparer = Callable[[Pair], Iterable[Found]]


def when(kind: ChangeKind, subject: str, old: str, new: str, what: str = "") -> list[Found]:
    """One undirected change when the two shown values differ."""
    return [] if old == new else [Found(kind, subject, old, new, what=what)]


def field_of(kind: ChangeKind, attr: str, fmt: Callable[[Any], str]) -> Comparer:
    """A comparer of one attribute, shown with ``fmt``."""
    return lambda p: when(kind, attr, fmt(getattr(p.old, attr)), fmt(getattr(p.new, attr)))


# ----------------------------------------------------------------------- strategy parts

def params(p: Pair) -> list[Found]:
    old = {x.name: x for x in p.old.params}
    new = {x.name: x for x in p.new.params}
    out = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            kind: ChangeKind = "param_added" if a is None else "param_removed"
            out.append(Found(kind, name, _param(a), _param(b), what=f"param `{name}`"))
            continue
        shown = show.PARAM_SHOW[b.type]
        out += when("param_default", name, show.PARAM_SHOW[a.type](a.default),
                    shown(b.default), f"default of param `{name}`")
        out += when("param_range", name, show.param_range(a), show.param_range(b),
                    f"range of param `{name}`")
    return out


def _param(p: m.Param | None) -> str | None:
    if p is None:
        return None
    return f"{show.PARAM_SHOW[p.type](p.default)} in {show.param_range(p)}"


def requires(p: Pair) -> list[Found]:
    old, new = require_hashes(p.old), require_hashes(p.new)
    gone = [Found("constraint", "require", old[h], None) for h in old if h not in new]
    return gone + [Found("constraint", "require", None, new[h]) for h in new if h not in old]


def logic(p: Pair) -> list[Found]:
    """Each rule slot whose signal differs: the rule as written, or, when the text is the
    same (a `let` it uses changed), the graph's expression of it."""
    old, new = rule_hashes(p.old), rule_hashes(p.new)
    out = []
    for slot in [s for s in ("entry_long", "exit_long", "entry_short", "exit_short")
                 if old.get(s) != new.get(s)]:
        before, after = _rule(p.before, p, slot, p.old), _rule(p.after, p, slot, p.new)
        if before == after and before is not None:
            before = Renderer(p.old.graph)(p.old.graph.rules[slot])
            after = Renderer(p.new.graph)(p.new.graph.rules[slot])
        out.append(Found("logic", slot, before, after, what=slot.replace("_", " ") + " rule"))
    return out


def _rule(snap: Snapshot, pair: Pair, slot: str, cfg: m.StrategyConfig) -> str | None:
    if slot not in cfg.graph.rules:
        return None
    written = snap.entries[cfg.name].rule_text.get(slot)
    return written or Renderer(cfg.graph)(cfg.graph.rules[slot])


def markets(p: Pair) -> list[Found]:
    """The strategy's market, and the other markets its frames read (``close@ETH/USDT``):
    a rule that starts reading another market's candles is a market change too, not only a
    logic change — the run now needs (and its fingerprint covers) that market's data."""
    out = when("market", "market", _symbol(p.old.market), _symbol(p.new.market))
    a, b = _markets_read(p.old), _markets_read(p.new)
    if a != b:
        out.append(Found("market", "markets_read", a or None, b or None,
                         what="other markets read"))
    return out


def _symbol(market: m.Market) -> str:
    return market.symbol + (f":{market.settle}" if market.settle else "")


def _markets_read(cfg: m.StrategyConfig) -> str:
    """The other markets the graph reads (its ``align`` nodes' frames), sorted; "" none."""
    keys = {str(n.value) for n in cfg.graph.nodes if n.op == "align"}
    return ", ".join(sorted({f.market for f in map(Frame.parse, keys) if f.market}))


def warmup(p: Pair) -> list[Found]:
    def text(c: m.StrategyConfig) -> str:
        return f"{c.warmup.text} ({c.warmup_bars} bars at the defaults)"

    return [] if warmup_key(p.old.warmup) == warmup_key(p.new.warmup) else [
        Found("warmup", "warmup", text(p.old), text(p.new), what="warm-up")]


def _level(cfg: m.StrategyConfig, slot: str, suffix: str) -> str | None:
    """A stop or size written as an expression, as the graph renders it (None: not one)."""
    node = cfg.graph.levels.get(slot)
    return None if node is None else Renderer(cfg.graph)(node) + suffix


def _sizing(cfg: m.StrategyConfig) -> str:
    return _level(cfg, "size", " of equity") or show.sizing(cfg.sizing, cfg.market)


def sizing(p: Pair) -> list[Found]:
    return when("sizing", "size", _sizing(p.old), _sizing(p.new))


def _exit(cfg: m.StrategyConfig, attr: str) -> str:
    """A stop as written: a percentage or param, or an expression (a fraction or a price
    distance, read at the signal bar)."""
    for slot in (attr, f"{attr}_distance"):
        shown = _level(cfg, slot, f" ({LEVEL_BASIS[slot]}, at the signal bar)")
        if shown is not None:
            return shown
    return show.scalar(getattr(cfg, attr), show.percent)


def holding(p: Pair) -> list[Found]:
    """Each trade rule that changed (min/max hold, cooldown, loss streak, reversal)."""
    a, b = p.old.holding.model_dump(), p.new.holding.model_dump()
    return [f for key in a for f in when("trade_rules", key, _rule_value(a[key]),
                                         _rule_value(b[key]))]


def _rule_value(value: object) -> str:
    return "off" if value == 0 else str(value)


def exits(attr: str) -> Comparer:
    def compare(p: Pair) -> list[Found]:
        a, b = _exit(p.old, attr), _exit(p.new, attr)
        if a == b:
            return []
        return [Found("exits", attr, None if a == "none" else a, None if b == "none" else b)]
    return compare


EXECUTION: dict[str, Callable[[m.Execution], str]] = {
    "fill": lambda e: e.fill, "end_of_data": lambda e: e.end_of_data,
    "fees": lambda e: show.scalar(e.fees, show.bps),
    "slippage": lambda e: show.scalar(e.slippage, show.bps),
    "qty_step": lambda e: "none" if e.qty_step is None else show.number(e.qty_step),
    "min_notional": lambda e: show.money(e.min_notional),
}


def execution(p: Pair) -> list[Found]:
    a, b = p.old.execution, p.new.execution
    out = [f for key, fmt in EXECUTION.items()
           for f in when("cost_model", key, fmt(a), fmt(b))]
    if a.leverage != b.leverage:
        out.append(Found("leverage", "leverage", show.number(a.leverage),
                         show.number(b.leverage),
                         "loosened" if b.leverage > a.leverage else "tightened"))
    return out


def robustness(p: Pair) -> list[Found]:
    a, b = p.old.robustness.model_dump(), p.new.robustness.model_dump()
    return [f for key in a for f in when("robustness", f"robustness.{key}", str(a[key]),
                                         str(b[key]))]


def description(p: Pair) -> list[Found]:
    return when("description", "description", repr(p.old.description),
                repr(p.new.description))


# ----------------------------------------------------------------------- risk and gates

# limit → how it is shown; every limit is "at most": a larger value lets more through
RISK_LIMITS: dict[str, Callable[[Any], str]] = {
    "max_order_notional": show.money, "max_symbol_exposure": show.percent,
    "max_total_exposure": show.percent, "max_open_positions": show.number,
    "max_daily_loss": show.percent, "max_orders_per_minute": show.number,
    "daily_loss_warn": show.percent,
}


def limits(old: m.RiskConfig, new: m.RiskConfig, prefix: str = "") -> list[Found]:
    """Each limit that differs, loosened (larger) or tightened (smaller)."""
    out = []
    for key, fmt in RISK_LIMITS.items():
        a, b = getattr(old, key), getattr(new, key)
        if a == b:
            continue
        out.append(Found("risk_limit", prefix + key, fmt(a), fmt(b), _loosened(a, b)))
    return out


def _loosened(a: Any, b: Any) -> str:
    if isinstance(a, m.Money):
        if a.currency != b.currency:
            return CHANGED
        a, b = a.amount, b.amount
    return "loosened" if b > a else "tightened"


def risk_limits(p: Pair) -> list[Found]:
    return limits(p.old, p.new)


SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def alerts(p: Pair) -> list[Found]:
    """Each sink added, removed or changed, and the throttle and queue: a sink that goes, or
    hears fewer severities, and a longer throttle mean fewer alerts (``weakened``)."""
    old, new = p.old.alerts or m.Alerts(), p.new.alerts or m.Alerts()
    a = {s.kind: s for s in old.sinks}
    b = {s.kind: s for s in new.sinks}
    out = [_sink_change(kind, a.get(kind), b.get(kind)) for kind in sorted(a.keys() | b.keys())
           if a.get(kind) != b.get(kind)]
    if old.throttle_seconds != new.throttle_seconds:
        out.append(Found("alerts", "alerts.throttle", show.duration(old.throttle_seconds),
                         show.duration(new.throttle_seconds),
                         "weakened" if new.throttle_seconds > old.throttle_seconds
                         else "strengthened"))
    out += when("alerts", "alerts.queue", str(old.queue), str(new.queue))
    return out


def _sink_change(kind: str, a: m.AlertSink | None, b: m.AlertSink | None) -> Found:
    def text(s: m.AlertSink) -> str:
        return s.severity + " and above" + (f" (URL from ${s.url_env})" if s.url_env else "")

    subject = f"alerts.{kind}"
    if a is None or b is None:
        return Found("alerts", subject, text(a) if a else None, text(b) if b else None,
                     "strengthened" if a is None else "weakened")
    rank_a, rank_b = SEVERITY_RANK[a.severity], SEVERITY_RANK[b.severity]
    direction = CHANGED if rank_a == rank_b else \
        "weakened" if rank_b > rank_a else "strengthened"
    return Found("alerts", subject, text(a), text(b), direction)


# criterion family → (does a larger threshold make it stricter, the strict operator)
FAMILIES: dict[str, tuple[str, bool | None, str]] = {
    ">=": ("lower bound", True, ">"), ">": ("lower bound", True, ">"),
    "<=": ("upper bound", False, "<"), "<": ("upper bound", False, "<"),
    "==": ("equality", None, ""), "!=": ("inequality", None, ""),
}


def criteria(p: Pair) -> list[Found]:
    """Criteria matched by metric and bound (a lower and an upper bound on one metric are
    two criteria); a criterion that admits more runs than before is weakened."""
    old, new = _criteria(p.old), _criteria(p.new)
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        a_text = show.criterion(a) if a else None
        b_text = show.criterion(b) if b else None
        out.append(Found("criterion", key[0], a_text, b_text, _strength(a, b),
                         what=f"criterion on `{key[0]}`"))
    return out


def _criteria(cfg: m.PromotionConfig) -> dict[tuple[str, str], m.Criterion]:
    """The strictest criterion per (metric, family): the one that decides."""
    out: dict[tuple[str, str], m.Criterion] = {}
    for c in cfg.criteria:
        key = (c.metric, FAMILIES[c.op][0])
        held = out.get(key)
        if held is None or _strength(held, c) == "strengthened":
            out[key] = c
    return out


def _strength(a: m.Criterion | None, b: m.Criterion | None) -> str:
    """``strengthened`` when ``b`` admits fewer values than ``a``, ``weakened`` when more."""
    if a is None or b is None:
        return "strengthened" if a is None else "weakened"
    up = FAMILIES[a.op][1]
    if up is None or FAMILIES[b.op][0] != FAMILIES[a.op][0]:
        return CHANGED
    rank_a = (a.threshold if up else -a.threshold, a.op == FAMILIES[a.op][2])
    rank_b = (b.threshold if up else -b.threshold, b.op == FAMILIES[b.op][2])
    return "strengthened" if rank_b > rank_a else "weakened"


# ----------------------------------------------------------------------- portfolios

def components(p: Pair) -> list[Found]:
    old = {c.name: c for c in p.old.components}
    new = {c.name: c for c in p.new.components}
    out = [Found("component_removed", n, show.percent(old[n].weight), None,
                 what=f"component `{n}`") for n in old if n not in new]
    out += [Found("component_added", n, None, show.percent(new[n].weight),
                  what=f"component `{n}`") for n in new if n not in old]
    for name in [n for n in new if n in old]:
        out += _component(p, old[name], new[name])
    kept = [n for n in old if n in new]
    out += when("component_order", "components", ", ".join(kept),
                ", ".join(n for n in new if n in old), "order of components")
    return out


def _component(p: Pair, a: m.Component, b: m.Component) -> list[Found]:
    what = f"component `{b.name}`"
    types = _param_types(p.after, b.name)
    out = when("component_weight", b.name, show.percent(a.weight), show.percent(b.weight),
               f"weight of {what}")
    out += when("component_overrides", b.name, _overrides(a.overrides, types),
                _overrides(b.overrides, types), f"overrides of {what}")
    before = p.before.fingerprint_or(a.name, a.artifact_sha256)
    after = p.after.fingerprint_or(b.name, b.artifact_sha256)
    if before != after:
        out.append(Found("component_changed", b.name, a.artifact_sha256[:12],
                         b.artifact_sha256[:12], what=f"the {b.kind} of {what}"))
    return out


def _param_types(snap: Snapshot, name: str) -> dict[str, str]:
    entry = snap.entries.get(name)
    if entry is None or not isinstance(entry.artifact.config, m.StrategyConfig):
        return {}
    return {x.name: x.type for x in entry.artifact.config.params}


def _overrides(values: dict[str, float], types: dict[str, str]) -> str:
    if not values:
        return "none"
    shown = [f"{k} = {show.PARAM_SHOW.get(types.get(k, 'float'), show.number)(v)}"
             for k, v in sorted(values.items())]
    return "{ " + ", ".join(shown) + " }"


def rebalance(p: Pair) -> list[Found]:
    def text(c: m.PortfolioConfig) -> str:
        every = f"every {show.duration(c.rebalance_seconds)}" if c.rebalance_seconds else ""
        drift = f"drift {show.percent(c.rebalance_drift)}" if c.rebalance_drift else ""
        return ", ".join(x for x in (every, drift) if x) or "none"

    return when("rebalance", "rebalance", text(p.old), text(p.new))


def risk_spec(p: Pair) -> list[Found]:
    """The risk spec a portfolio enforces: named, dropped or swapped, and its limits as the
    portfolio sees them (a swap to a looser spec, or a loosened spec, is critical)."""
    a, b = p.old.risk, p.new.risk
    if a is None and b is None:
        return []
    if a is None or b is None:
        return [Found("risk_spec", "risk", a, b, "added" if a is None else "removed",
                      what="risk spec")]
    out = [] if a == b else [Found("risk_spec", "risk", a, b, "swapped", what="risk spec")]
    old, new = _risk(p.before, a), _risk(p.after, b)
    if old is not None and new is not None:
        return out + limits(old, new, prefix=f"{b}.")
    if p.before.fingerprint_or(a, p.old.risk_sha256) != \
            p.after.fingerprint_or(b, p.new.risk_sha256):
        out.append(Found("risk_spec", "risk", a, b, what=f"risk spec `{b}` (not compared)"))
    return out


def _risk(snap: Snapshot, name: str) -> m.RiskConfig | None:
    entry = snap.entries.get(name)
    config = entry.artifact.config if entry is not None else None
    return config if isinstance(config, m.RiskConfig) else None


# ----------------------------------------------------------------------- the tables

def _text(value: Any) -> str:
    return str(value)


FIELDS: dict[str, dict[str, Comparer]] = {
    "strategy": {
        "description": description,
        "market": markets,
        "timeframe": field_of("timeframe", "timeframe", _text),
        "calendar": field_of("calendar", "calendar", _text),
        "params": params, "requires": requires, "graph": logic, "warmup": warmup,
        "sizing": sizing, "stop_loss": exits("stop_loss"),
        "take_profit": exits("take_profit"), "trailing_stop": exits("trailing_stop"),
        "execution": execution, "holding": holding, "robustness": robustness,
    },
    "portfolio": {
        "description": description, "capital": field_of("capital", "capital", show.money),
        "components": components, "rebalance_seconds": rebalance, "risk": risk_spec,
        "robustness": robustness,
    },
    "risk": {"description": description, **dict.fromkeys(RISK_LIMITS, risk_limits),
             "alerts": alerts},
    "promotion": {"description": description, "criteria": criteria},
}
# derived from compared fields (the comparer named in the comment covers them) or the key
IGNORED: dict[str, frozenset[str]] = {
    "strategy": frozenset({"name", "timeframe_seconds", "warmup_bars", "calendar_declared"}),
    "portfolio": frozenset({"name", "rebalance_drift", "risk_sha256"}),  # rebalance, risk
    "risk": frozenset({"name"}),
    "promotion": frozenset({"name"}),
}
CONFIGS: dict[str, type[m.Frozen]] = {
    "strategy": m.StrategyConfig, "portfolio": m.PortfolioConfig, "risk": m.RiskConfig,
    "promotion": m.PromotionConfig}


def compare_configs(kind: str, pair: Pair) -> list[Found]:
    """Every comparer of the kind once (several fields may share one), then ``other`` for a
    field no table knows, then the fingerprint safety net."""
    table = FIELDS[kind]
    found: list[Found] = []
    for comparer in dict.fromkeys(table.values()):
        found.extend(comparer(pair))
    for key in CONFIGS[kind].model_fields:
        if key not in table and key not in IGNORED[kind]:
            found += when("other", key, repr(getattr(pair.old, key)),
                          repr(getattr(pair.new, key)))
    if not found and pair.before.fingerprint(pair.name) != pair.after.fingerprint(pair.name):
        found.append(Found("other", "config", pair.before.entries[pair.name].sha256[:12],
                           pair.after.entries[pair.name].sha256[:12], what="compiled config"))
    return found


# ----------------------------------------------------------------------- specs and result

def matched(before: Snapshot, after: Snapshot) -> list[tuple[str | None, str | None]]:
    """Specs paired by name; two single files are paired whatever their names."""
    if before.source.form == "file" and len(before.names) == len(after.names) == 1:
        return [(before.names[0], after.names[0])]
    names = sorted(set(before.names) | set(after.names), key=lambda n: _rank(before, after, n))
    return [(n if n in before.names else None, n if n in after.names else None)
            for n in names]


def _rank(before: Snapshot, after: Snapshot, name: str) -> tuple[int, str]:
    entry = after.entries.get(name) or before.entries[name]
    return KIND_RANK[entry.kind], name


def compare_spec(before: Snapshot, after: Snapshot, old: str | None, new: str | None
                 ) -> list[Found]:
    """The changes of one matched pair (an addition, a removal, or field by field)."""
    a = before.entries[old] if old else None
    b = after.entries[new] if new else None
    if a is None or b is None or a.kind != b.kind:
        gone = [Found("spec_removed", a.name, a.kind, None, what=f"{a.kind} `{a.name}`")] \
            if a else []
        return gone + ([Found("spec_added", b.name, None, b.kind, what=f"{b.kind} `{b.name}`")]
                       if b else [])
    renamed = when("spec_renamed", "name", a.name, b.name)
    pair = Pair(b.name, a.artifact.config, b.artifact.config, before, after)
    if renamed:
        before = _aliased(before, a.name, b.name)
        pair = Pair(b.name, a.artifact.config, b.artifact.config, before, after)
    return renamed + compare_configs(b.kind, pair)


def _aliased(snap: Snapshot, old: str, new: str) -> Snapshot:
    """``snap`` with spec ``old`` also reachable as ``new`` (two files of different names)."""
    copy = Snapshot(snap.source, dict(snap.entries), list(snap.names))
    copy.entries[new] = snap.entries[old]
    return copy


def classify(spec: str, kind: str, found: Found) -> Change:
    return Change(spec=spec, spec_kind=cast(SpecKind, kind), kind=found.kind,
                  level=level(found.kind, found.direction), subject=found.subject,
                  before=found.before, after=found.after, direction=found.direction,
                  message=found.message())


def compare(before: Snapshot, after: Snapshot) -> tuple[list[SpecDoc], list[Change]]:
    """Every matched spec's status and all the changes: specs in kind then name order, a
    spec's changes most severe first (then in the order of its fields)."""
    specs, changes = [], []
    for old, new in matched(before, after):
        a = before.entries[old] if old else None
        b = after.entries[new] if new else None
        entry = b or a
        assert entry is not None
        mine = sorted((classify(entry.name, entry.kind, f)
                       for f in compare_spec(before, after, old, new)),
                      key=lambda c: -LEVEL_ORDER.index(c.level))
        changes += mine
        specs.append(SpecDoc(name=entry.name, kind=cast(SpecKind, entry.kind),
                             status=_status(a, b, mine), before_sha256=a.sha256 if a else None,
                             after_sha256=b.sha256 if b else None, level=highest(mine)))
    return specs, changes


def _status(a: Any, b: Any, changes: list[Change]) -> SpecStatus:
    if a is None or b is None:
        return "added" if a is None else "removed"
    if changes:
        return "changed"
    return "unchanged" if a.sha256 == b.sha256 else "reformatted"


def highest(changes: Iterable[Change]) -> Level | None:
    levels = [c.level for c in changes]
    return max(levels, key=LEVEL_ORDER.index) if levels else None


def result(before: Snapshot, after: Snapshot, specs: list[SpecDoc], changes: list[Change],
           impact: list[ImpactDoc] | None = None) -> DiffResult:
    """The whole comparison as one document."""
    counts = Counts(**{lv: sum(c.level == lv for c in changes) for lv in LEVEL_ORDER})
    return DiffResult(schema_version=SCHEMA_VERSION, before=before.source.doc(),
                      after=after.source.doc(), specs=specs, changes=changes, counts=counts,
                      highest=highest(changes), impact=impact)
