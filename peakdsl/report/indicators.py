"""Which of a strategy's lets get an indicator pane in the backtest report, and the levels the
rules compare them with — decided from the compiled graph, not guessed from the values.

Every let's node carries the unit the type checker gave it (docs/language.md, units): the
built-ins that run 0–100 (``rsi``, ``adx``, ``plus_di``, ``minus_di``, ``percent_rank``) are
``oscillator``, and arithmetic keeps that unit only when the result is still a 0–100 reading
(``rsi(close, 14) - 50`` is; ``rsi / atr`` does not type-check). The report's rule:

- ``price`` lets on the price scale are drawn over the candles (``charts.price_overlays``);
- every other numeric let gets a pane, one pane per unit, in ``UNITS`` order: oscillators on
  a fixed 0–100 axis, ``percent`` lets (``roc``) with percent ticks, ``number`` lets
  (``zscore``), ``price`` lets off the price scale (``macd``, ``atr``), volumes;
- ``bool`` lets (conditions) are not drawn: the trades show what they did.

Levels: each comparison (``<``, ``<=``, ``>``, ``>=``; ``crossover``/``crossunder`` lower to
these) between a let — or a lag of it — and a scalar (a param, a constant, or arithmetic on
them, evaluated with the run's params by the graph's own operators) is a dashed line at that
value: ``r < oversold`` draws the run's ``oversold``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..compile.ops import apply

if TYPE_CHECKING:
    from ..compile import models as m

COMPARISONS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}


@dataclass(frozen=True)
class PaneUnit:
    """How the panes of one unit look: title, fixed y range (None: fitted), tick format."""

    title: str
    y_range: tuple[float, float] | None = None
    tickformat: str | None = None


UNITS: dict[str, PaneUnit] = {
    "oscillator": PaneUnit("Oscillators (0–100)", (0.0, 100.0)),
    "percent": PaneUnit("Rates of change", tickformat=".1%"),
    "number": PaneUnit("Indicators"),
    "price": PaneUnit("Price-unit indicators (off the price scale)"),
    "notional": PaneUnit("Traded-value indicators"),
    "volume": PaneUnit("Volume indicators"),
    "int": PaneUnit("Counts"),
}


@dataclass(frozen=True)
class Level:
    """A value a rule compares a let with: ``r < oversold`` at 30."""

    let: str
    value: float
    text: str  # "r < oversold"


@dataclass(frozen=True)
class Pane:
    """One indicator chart: the lets of one unit and the levels they are compared with."""

    unit: str
    look: PaneUnit
    lets: tuple[str, ...]
    levels: tuple[Level, ...]


def indicator_panes(graph: m.Graph, params: Mapping[str, float],
                    on_price: Collection[str] = ()) -> list[Pane]:
    """The panes of a run's lets (``on_price``: those already over the candles)."""
    nodes = graph.nodes
    by_unit: dict[str, list[str]] = {}
    for name, node_id in sorted(graph.lets.items()):
        unit = nodes[node_id].unit
        if unit in UNITS and name not in on_price and nodes[node_id].series:
            by_unit.setdefault(unit, []).append(name)
    scalars = scalar_values(graph, params)
    return [Pane(unit, UNITS[unit], tuple(names),
                 tuple(lv for name in names for lv in levels(graph, name, scalars)))
            for unit in UNITS if (names := by_unit.get(unit))]


def scalar_values(graph: m.Graph, params: Mapping[str, float]) -> dict[int, float]:
    """Every non-series node's value for ``params`` (params, constants and arithmetic on them,
    through the evaluator's operators); nodes that are not plain numbers are left out."""
    values: dict[int, Any] = {}
    for node in graph.nodes:
        if node.series:
            continue
        if node.op == "param":
            values[node.id] = float(params.get(str(node.value), math.nan))
        elif node.op == "const" and _number(node.value):
            values[node.id] = float(node.value)  # type: ignore[arg-type]
        elif node.inputs and all(i in values for i in node.inputs):
            values[node.id] = apply(node.op, *(values[i] for i in node.inputs))
    return {k: float(v) for k, v in values.items()
            if isinstance(v, float) and not isinstance(v, bool) and math.isfinite(v)}


def levels(graph: m.Graph, let: str, scalars: Mapping[int, float]) -> list[Level]:
    """The distinct scalars the rules compare ``let`` (or a lag of it) with, in graph order."""
    nodes = graph.nodes
    target = graph.lets[let]
    selves = {target} | {n.id for n in nodes if n.op == "lag" and n.inputs[:1] == [target]}
    found: dict[float, Level] = {}
    for node in nodes:
        if node.op not in COMPARISONS or len(node.inputs) != 2:
            continue
        a, b = node.inputs
        mine, other = (a, b) if a in selves else (b, a)
        if mine not in selves or other not in scalars:
            continue
        value = scalars[other]
        symbol = COMPARISONS[node.op] if mine == a else _flipped(node.op)
        found.setdefault(value, Level(let, value, f"{let} {symbol} {_text(nodes, other)}"))
    return list(found.values())


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flipped(op: str) -> str:
    """``30 > r`` read from the let's side: ``r < 30``."""
    return {"lt": ">", "le": ">=", "gt": "<", "ge": "<="}[op]


# how a scalar's expression is written back (``-entry_z``, ``exit + 5``); others: "…"
SPELLING = {"neg": "-{0}", "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}",
            "div": "{0} / {1}"}


def _text(nodes: list[m.GraphNode], node_id: int) -> str:
    """A scalar node as the spec would write it: a param's name, a constant, arithmetic."""
    node = nodes[node_id]
    if node.op == "param":
        return str(node.value)
    if node.op == "const":
        return f"{node.value:g}" if _number(node.value) else str(node.value)
    form = SPELLING.get(node.op)
    if form is None or form.count("{") != len(node.inputs):
        return "…"
    return form.format(*(_text(nodes, i) for i in node.inputs))
