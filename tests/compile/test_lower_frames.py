"""Frames in the graph (``compile.lower``): sources on a frame, ``align`` where a frame's value
meets the strategy's bars, and lookbacks scaled to the strategy's bars."""

from __future__ import annotations

from peakdsl.compile.ir import Node, SignalGraph
from peakdsl.compile.lower import lower_strategy
from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text


def graph_of(*lines: str, timeframe: str = "1h") -> SignalGraph:
    body = "\n    ".join(lines)
    text = (f"strategy s {{\n    market BTC/USDT\n    timeframe {timeframe}\n"
            f"    param n: int = 20 in 2..50\n    {body}\n}}\n")
    parsed = parse_text(text, "s.peak")
    assert parsed.module is not None, parsed.diagnostics
    spec, diags = check_module(parsed.module)
    assert not [d for d in diags if d.is_error], diags
    return lower_strategy(spec)


def ops(graph: SignalGraph, op: str) -> list[Node]:
    return [n for n in graph.nodes if n.op == op]


def test_a_daily_window_runs_on_daily_bars_and_is_aligned_once() -> None:
    g = graph_of("entry long when close > sma(close, 5)@1d")
    sources = sorted(str(n.value) for n in ops(g, "source"))
    assert sources == ["@1d", "close", "close@1d"]
    (align,) = ops(g, "align")
    assert align.value == "1d"
    inner = g.nodes[align.inputs[0]]
    assert inner.op == "sma" and g.nodes[inner.inputs[0]].value == "close@1d"
    # 4 daily bars back, 24 hourly bars each, plus up to 2 * 24 - 2 bars of phase
    assert inner.lookback.text() == "4" and align.lookback.text() == "142"
    assert g.warmup.text() == "142"


def test_another_market_at_the_same_timeframe_adds_no_warm_up() -> None:
    g = graph_of("let spread = close - close@ETH/USDT",
                 "entry long when spread > sma(spread, n)")
    (align,) = ops(g, "align")
    assert align.value == "ETH/USDT" and align.lookback.text() == "0"
    assert g.warmup.text() == "max(0, n - 1)"


def test_a_frame_read_twice_is_one_source_and_one_index() -> None:
    g = graph_of("entry long when close@4h > close@4h[1] and close > close@4h")
    assert [n.value for n in ops(g, "source")].count("close@4h") == 1
    assert [n.value for n in ops(g, "source")].count("@4h") == 1
    # the comparison of two 4h values is made on 4h bars, then aligned; the other reads
    # the 4h close aligned
    assert sorted(g.nodes[a.inputs[0]].op for a in ops(g, "align")) == ["gt", "source"]


def test_implied_sources_and_named_lets_are_computed_on_the_frame() -> None:
    g = graph_of("let m = sma(close, 3)", "entry long when atr(14)@1d > 0 and m@4h > m")
    values = {str(n.value) for n in ops(g, "source")}
    assert {"high@1d", "low@1d", "close@1d", "close@4h", "close"} <= values
    assert {str(a.value) for a in ops(g, "align")} == {"1d", "4h"}


def test_rules_lets_and_stops_are_read_on_the_strategys_bars() -> None:
    g = graph_of("let d = sma(close, 3)@4h", "entry long when (close > open)@4h",
                 "stop_loss 2 * atr(14)@1d")
    for node_id in (*g.lets.values(), *g.rules.values(), *g.levels.values()):
        assert g.nodes[node_id].op == "align"


def test_a_states_framed_input_is_aligned_before_the_scan() -> None:
    g = graph_of("state hi = max(nz(hi[1], 0), close@4h)", "entry long when close > hi")
    (state,) = ops(g, "state")
    assert [g.nodes[i].op for i in state.inputs] == ["align"]


def test_the_strategys_own_frame_is_no_frame() -> None:
    g = graph_of("entry long when close@1h > open@BTC/USDT")
    assert not ops(g, "align")
    assert sorted(str(n.value) for n in ops(g, "source")) == ["close", "open"]
