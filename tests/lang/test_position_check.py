"""Rules that read the position (``lang.position``): where the sources may appear, what may
surround them, their units, and the node the compiler makes of such a rule."""

from __future__ import annotations

import pytest

from peakdsl.api import compile_source
from peakdsl.compile import models as m
from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text


def strategy(*lines: str) -> str:
    body = "\n    ".join(lines)
    return f"strategy s {{\n    market BTC/EUR\n    timeframe 1h\n    {body}\n}}\n"


def codes(*lines: str) -> list[str]:
    parsed = parse_text(strategy(*lines), "s.peak")
    assert parsed.module is not None, parsed.diagnostics
    return [d.code for d in check_module(parsed.module)[1] if d.is_error]


ENTRY = "entry long when close > open"


@pytest.mark.parametrize("rule", [
    "exit long when bars_in_trade >= 10",
    "exit long when close < entry_price - 2 * atr(14)",
    "exit long when unrealized < -3% or unrealized > 5%",
    "exit long when abs(unrealized) > 4% and position > 0",
    "exit long when if position == 0 then false else bars_in_trade > 3",
    "exit long when max(bars_in_trade, 0) >= 5 and crossunder(close, sma(close, 20))",
])
def test_rules_may_read_the_position_elementwise(rule: str) -> None:
    assert codes(ENTRY, rule) == []


@pytest.mark.parametrize(("lines", "expected"), [
    (("let age = bars_in_trade + 1", ENTRY, "exit long when age > 3"), ["N019"]),
    (("state top = max(nz(top[1], close), entry_price)", ENTRY, "exit long when close < top"),
     ["N019"]),
    ((ENTRY, "stop_loss entry_price * 2%"), ["N019"]),
    ((ENTRY, "size abs(unrealized) of equity"), ["N019"]),
    ((ENTRY, "exit long when bars_in_trade[1] > 3"), ["T019"]),
    ((ENTRY, "exit long when sma(unrealized, 5) < 0%"), ["T019"]),
    ((ENTRY, "exit long when crossover(close, entry_price)"), ["T019"]),
    ((ENTRY, "exit long when unrealized > 2"), ["T002"]),  # 200 %: a bare number
    ((ENTRY, "exit long when entry_price > volume"), ["T002"]),
])
def test_the_position_elsewhere_or_inside_a_window_is_refused(lines: tuple[str, ...],
                                                              expected: list[str]) -> None:
    assert codes(*lines) == expected


def test_a_rule_reading_the_position_compiles_to_one_body_node() -> None:
    art = compile_source(strategy(ENTRY, "exit long when bars_in_trade >= 10 or close < "
                                         "entry_price - 2 * atr(14)"))
    assert isinstance(art, m.StrategyArtifact)
    graph = art.config.graph
    node = graph.nodes[graph.rules["exit_long"]]
    assert node.op == "position_rule" and node.unit == "bool"
    assert graph.nodes[graph.rules["entry_long"]].op != "position_rule"
    assert art.config.warmup_bars >= 14  # the atr input's lookback
