"""Emit runtime configs from checked specs (one ``emit_*`` per declaration kind)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

from ..lang import ast
from ..lang.checker import CheckedSpec
from ..lang.levels import STOP_KEYS, is_level
from ..lang.lookback import Lookback as SymLookback
from ..lang.schema import METRICS, TIMEFRAMES
from . import models as m
from .codegen import Step, emit_program
from .ir import SignalGraph
from .lower import lower_strategy


def lookback_model(lb: SymLookback) -> m.Lookback:
    forms = [m.LinearForm(const=f.const, terms=dict(f.terms)) for f in lb.forms]
    return m.Lookback(forms=forms, text=lb.text(), exact=lb.exact)


def graph_model(graph: SignalGraph, program: tuple[Step, ...]) -> m.Graph:
    nodes = [m.GraphNode(id=n.id, op=n.op, inputs=list(n.inputs), value=n.value, unit=n.unit,
                         series=n.series, lookback=lookback_model(n.lookback),
                         names=list(n.names)) for n in graph.nodes]
    steps = [m.Step(node=s.node, kind=s.kind, expr=s.expr, inputs=dict(s.inputs))
             for s in program]
    return m.Graph(nodes=nodes, program=steps, lets=graph.lets, rules=graph.rules,
                   levels=graph.levels)


def _scalar(value: ast.Expr) -> m.Scalar:
    if isinstance(value, ast.Name):
        return m.Scalar(param=value.id)
    number = getattr(value, "value", None)
    assert isinstance(number, float | int)
    return m.Scalar(const=float(number))


def _text(spec: CheckedSpec, key: str) -> str:
    setting = spec.settings().get(key)
    return setting.value.value if setting and isinstance(setting.value, ast.String) else ""


def _money(value: ast.Expr) -> m.Money:
    assert isinstance(value, ast.Money)
    return m.Money(amount=value.amount, currency=value.currency)


def _sizing(spec: CheckedSpec, market: ast.Market) -> m.Sizing:
    settings = spec.settings()
    if "vol_target" in settings:
        return m.Sizing(mode="vol_target", value=_scalar(settings["vol_target"].value))
    sizes = spec.items(ast.Size)
    if not sizes:
        return m.Sizing(mode="equity_fraction", value=m.Scalar(const=1.0))
    size = sizes[0]
    assert isinstance(size, ast.Size)
    if isinstance(size.value, ast.Money):
        mode = "quantity" if size.value.currency == market.base else "notional"
        return m.Sizing(mode=mode, value=m.Scalar(const=size.value.amount))
    if is_level(size.value, {p.name: p for p in spec.params}):
        return m.Sizing(mode="equity_fraction", value=None)  # graph.levels["size"]
    return m.Sizing(mode="equity_fraction", value=_scalar(size.value))


def _execution(spec: CheckedSpec) -> m.Execution:
    block = spec.block("execution")
    fields: dict[str, object] = {}
    for key in ("fill", "end_of_data"):
        choice = block[key].value if key in block else None
        if isinstance(choice, ast.Name):
            fields[key] = choice.id
    for key in ("fees", "slippage"):
        if key in block:
            fields[key] = _scalar(block[key].value)
    for key in ("qty_step", "leverage"):
        if key in block:
            fields[key] = _scalar(block[key].value).const
    if "min_notional" in block:
        fields["min_notional"] = _money(block["min_notional"].value)
    return m.Execution.model_validate(fields)


def emit_strategy(spec: CheckedSpec, source: str) -> m.StrategyConfig:
    graph = lower_strategy(spec)
    program = emit_program(graph)
    settings = spec.settings()
    market = settings["market"].value
    timeframe = settings["timeframe"].value
    assert isinstance(market, ast.Market) and isinstance(timeframe, ast.Duration)
    defaults = {p.name: p.default for p in spec.params}
    texts = [source[r.expr.span.start:r.expr.span.end]
             for r in spec.items(ast.Require) if isinstance(r, ast.Require)]
    requires = [m.Require(node=node, source=text)
                for node, text in zip(graph.requires, texts, strict=True)]
    named = {p.name: p for p in spec.params}
    stops = {k: _scalar(settings[k].value) for k in STOP_KEYS
             if k in settings and not is_level(settings[k].value, named)}  # else graph.levels
    return m.StrategyConfig(
        name=spec.name, description=_text(spec, "description"),
        market=m.Market(symbol=market.symbol, base=market.base, quote=market.quote,
                        settle=market.settle),
        timeframe=_timeframe_name(timeframe.seconds), timeframe_seconds=timeframe.seconds,
        params=[m.Param(name=p.name, type=p.type, default=p.default, low=p.low,
                        high=p.high, step=p.step) for p in spec.params],
        requires=requires, graph=graph_model(graph, program),
        warmup=lookback_model(graph.warmup), warmup_bars=graph.warmup.evaluate(defaults),
        sizing=_sizing(spec, market), execution=_execution(spec), **stops,
        calendar=_calendar(settings), calendar_declared="calendar" in settings,
        holding=_holding(settings), robustness=_robustness(spec.block("robustness")),
    )


def _holding(settings: Mapping[str, ast.Setting]) -> m.Holding:
    """The trade rules a strategy sets (the others off)."""
    fields: dict[str, object] = {}
    for key in ("min_hold", "max_hold", "cooldown_after_stop", "max_consecutive_losses"):
        if key in settings:
            fields[key] = int(_override(settings[key].value))
    reversal = settings.get("reversal")
    if reversal is not None and isinstance(reversal.value, ast.Name):
        fields["reversal"] = reversal.value.id
    return m.Holding.model_validate(fields)


def _calendar(settings: Mapping[str, ast.Setting]) -> m.CalendarName:
    """The declared annualisation calendar; crypto markets trade 24/7 (``always``)."""
    setting = settings.get("calendar")
    if setting is not None and isinstance(setting.value, ast.Name):
        return cast(m.CalendarName, setting.value.id)
    return "always"


def _timeframe_name(seconds: int) -> str:
    return next(name for name, s in TIMEFRAMES.items() if s == seconds)


def emit_portfolio(spec: CheckedSpec, hashes: Mapping[str, tuple[str, str]]) -> m.PortfolioConfig:
    """``hashes`` maps a referenced name to (kind, artifact sha256)."""
    components = []
    for comp in spec.items(ast.Component):
        assert isinstance(comp, ast.Component) and isinstance(comp.weight, ast.Percent)
        kind, sha = hashes[comp.strategy]
        overrides = {o.name: _override(o.value) for o in comp.overrides}
        components.append(m.Component(name=comp.strategy, kind=kind,
                                      weight=comp.weight.value, overrides=overrides,
                                      artifact_sha256=sha))
    refs = spec.items(ast.RiskRef)
    risk = refs[0].name if refs else None
    settings, robust = spec.settings(), spec.block("robustness")
    rebalance = settings.get("rebalance")
    return m.PortfolioConfig(
        name=spec.name, description=_text(spec, "description"),
        capital=_money(settings["capital"].value), components=components,
        rebalance_seconds=rebalance.value.seconds if rebalance and isinstance(
            rebalance.value, ast.Duration) else None,
        rebalance_drift=_override(settings["rebalance_drift"].value)
        if "rebalance_drift" in settings else None,
        risk=risk, risk_sha256=hashes[risk][1] if risk else None,
        robustness=_robustness(robust),
    )


def _override(value: ast.Expr) -> float:
    if isinstance(value, ast.Neg):
        return -_override(value.operand)
    number = getattr(value, "value", None)
    assert isinstance(number, float | int)
    return float(number)


def _robustness(block: dict[str, ast.Setting]) -> m.Robustness:
    fields: dict[str, object] = {}
    for key in ("monte_carlo", "block_size", "seed"):
        if key in block:
            fields[key] = int(_override(block[key].value))
    for key in ("skip", "ruin"):
        if key in block:
            fields[key] = _override(block[key].value)
    if "jitter" in block and isinstance(block["jitter"].value, ast.Bool):
        fields["jitter"] = block["jitter"].value.value
    if "stress" in block and isinstance(block["stress"].value, ast.List):
        fields["stress"] = [i.id for i in block["stress"].value.items if isinstance(i, ast.Name)]
    return m.Robustness.model_validate(fields)


def emit_risk(spec: CheckedSpec) -> m.RiskConfig:
    fields: dict[str, object] = {"name": spec.name, "description": _text(spec, "description")}
    for key, setting in spec.settings().items():
        if key == "description":
            continue
        value = setting.value
        fields[key] = _money(value) if isinstance(value, ast.Money) else _override(value)
    for key in ("max_open_positions", "max_orders_per_minute"):
        fields[key] = int(fields[key])  # type: ignore[call-overload]
    block = next((b for b in spec.items(ast.Block) if b.key == "alerts"), None)
    fields["alerts"] = _alerts(block) if block is not None else None
    return m.RiskConfig.model_validate(fields)


LOCAL_SINKS = ("log", "stderr")  # sinks that default to every severity


def _alerts(block: ast.Block) -> m.Alerts:
    settings = {s.key: s.value for s in block.settings}
    fields: dict[str, object] = {}
    throttle = settings.get("throttle")
    if isinstance(throttle, ast.Duration):
        fields["throttle_seconds"] = throttle.seconds
    if "queue" in settings:
        fields["queue"] = int(_override(settings["queue"]))
    fields["sinks"] = [_sink(sink) for sink in block.blocks]
    return m.Alerts.model_validate(fields)


def _sink(block: ast.Block) -> m.AlertSink:
    settings = {s.key: s.value for s in block.settings}
    severity = settings.get("severity")
    url_env = settings.get("url_env")
    return m.AlertSink.model_validate({
        "kind": block.key,
        "severity": severity.id if isinstance(severity, ast.Name) else
        "info" if block.key in LOCAL_SINKS else "warning",
        "url_env": url_env.value if isinstance(url_env, ast.String) else None})


def emit_promotion(spec: CheckedSpec) -> m.PromotionConfig:
    criteria = []
    for req in spec.items(ast.Require):
        assert isinstance(req, ast.Require) and isinstance(req.expr, ast.Binary)
        assert isinstance(req.expr.left, ast.Name)
        metric = METRICS[req.expr.left.id]
        criteria.append(m.Criterion(metric=metric.name, op=req.expr.op,
                                    threshold=_override(req.expr.right),
                                    unit=metric.unit.value))
    return m.PromotionConfig(name=spec.name, description=_text(spec, "description"),
                             criteria=criteria)


Emitter = Callable[..., object]
