"""Render a compiled strategy's signal graph as text, Graphviz dot or Mermaid."""

from __future__ import annotations

from collections.abc import Callable

from . import models as m
from .scan_body import body_source


def node_label(node: m.GraphNode) -> str:
    if node.op == "source":
        return str(node.value)
    if node.op == "param":
        return f"param {node.value}"
    if node.op == "const":
        return repr(node.value)
    if node.op in ("state", "position_rule"):  # the scan body, as the expression it runs
        return f"{node.op}[{body_source(str(node.value), [f'%{i}' for i in node.inputs])}]"
    if isinstance(node.value, str):  # a built-in's mode: `stdev[sample]`
        return f"{node.op}[{node.value}]"
    return node.op


def _names(node: m.GraphNode, cfg: m.StrategyConfig) -> list[str]:
    rules = [slot for slot, i in cfg.graph.rules.items() if i == node.id]
    requires = [f"require {r.source}" for r in cfg.requires if r.node == node.id]
    return [*node.names, *rules, *requires]


def render_text(cfg: m.StrategyConfig) -> str:
    steps = {s.node: s for s in cfg.graph.program}
    lines = [f"strategy {cfg.name}  ({cfg.market.symbol} {cfg.timeframe})",
             f"warm-up: {cfg.warmup.text} bars ({cfg.warmup_bars} at defaults"
             + ("" if cfg.warmup.exact else "; an upper bound, see W005") + ")",
             f"{len(cfg.graph.nodes)} nodes, {len(cfg.graph.program)} steps", ""]
    for node in cfg.graph.nodes:
        inputs = ", ".join(f"%{i}" for i in node.inputs)
        names = _names(node, cfg)
        tag = f"  [{', '.join(names)}]" if names else ""
        line = f"%{node.id:<3} = {node_label(node)}({inputs})" if node.inputs else \
            f"%{node.id:<3} = {node_label(node)}"
        step = steps.get(node.id)
        how = f"  numexpr: {step.expr}" if step and step.expr else ""
        lines.append(f"{line:<40} lookback {node.lookback.text:<18}{tag}{how}")
    return "\n".join(lines) + "\n"


def _edges(cfg: m.StrategyConfig) -> list[tuple[int, int]]:
    return [(i, n.id) for n in cfg.graph.nodes for i in n.inputs]


def render_dot(cfg: m.StrategyConfig) -> str:
    lines = [f'digraph "{cfg.name}" {{', "  rankdir=LR;",
             f'  label="{cfg.name}: warm-up {cfg.warmup.text} ({cfg.warmup_bars} bars)";']
    for node in cfg.graph.nodes:
        extra = "\\n" + ", ".join(_names(node, cfg)) if _names(node, cfg) else ""
        shape = "box" if node.op in ("source", "param", "const") else "ellipse"
        lines.append(f'  n{node.id} [shape={shape}, label="{node_label(node)}{extra}'
                     f'\\nlookback {node.lookback.text}"];')
    lines.extend(f"  n{a} -> n{b};" for a, b in _edges(cfg))
    return "\n".join([*lines, "}"]) + "\n"


def render_mermaid(cfg: m.StrategyConfig) -> str:
    lines = ["flowchart LR", f"  %% {cfg.name}: warm-up {cfg.warmup.text} "
             f"({cfg.warmup_bars} bars at defaults)"]
    for node in cfg.graph.nodes:
        names = _names(node, cfg)
        extra = "<br/>" + ", ".join(names) if names else ""
        label = f"{node_label(node)}{extra}<br/>lookback {node.lookback.text}"
        lines.append(f'  n{node.id}["{label}"]')
    lines.extend(f"  n{a} --> n{b}" for a, b in _edges(cfg))
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[m.StrategyConfig], str]] = {
    "text": render_text, "dot": render_dot, "mermaid": render_mermaid,
}
