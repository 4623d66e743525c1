"""Window and lag arithmetic in the graph: the expression becomes nodes over params (a scalar
step), merged and folded like any other, and the lookbacks stay symbolic in the params."""

from __future__ import annotations

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.compile.codegen import emit_program
from peakdsl.compile.ir import SignalGraph
from peakdsl.compile.lower import lower_strategy
from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text

PARAMS = "param n: int = 10 in 1..20\n    param m: int = 4 in 2..10 step 2"


def text(body: str) -> str:
    return (f"strategy s {{\n    market BTC/EUR\n    timeframe 1h\n    {PARAMS}\n    {body}\n"
            "    size 10% of equity\n}\n")


def graph_of(body: str) -> SignalGraph:
    parsed = parse_text(text(body), "s.peak")
    assert parsed.module is not None, parsed.diagnostics
    spec, diags = check_module(parsed.module)
    assert not [d for d in diags if d.is_error], diags
    return lower_strategy(spec)


def test_a_window_expression_is_a_scalar_step_feeding_the_kernel() -> None:
    graph = graph_of("let h = highest(high, 2 * n)\n    entry long when close > h[1]")
    node = graph.nodes[graph.lets["h"]]
    window = graph.nodes[node.inputs[1]]
    assert (window.op, window.series, window.unit) == ("mul", False, "int")
    assert sorted((graph.nodes[i].op, graph.nodes[i].value) for i in window.inputs) == \
        [("const", 2.0), ("param", "n")]
    steps = {s.node: s.kind for s in emit_program(graph)}
    assert steps[window.id] == "scalar"
    assert node.lookback.text() == "2*n - 1"
    assert graph.warmup.text() == "max(0, 2*n)"  # `close` itself needs no bar before it
    assert graph.warmup.evaluate({"n": 7.0}) == 14


def test_equal_windows_merge_and_constants_fold() -> None:
    graph = graph_of("let a = sma(close, 2 * n)\n    let b = sma(close, n * 2)\n"
                     "    let c = sma(close, 3 * 4)\n    let d = sma(close, 12)\n"
                     "    entry long when a > b and c > d")
    assert graph.lets["a"] == graph.lets["b"] and graph.lets["c"] == graph.lets["d"]
    twelve = graph.nodes[graph.nodes[graph.lets["c"]].inputs[1]]
    assert (twelve.op, twelve.value) == ("const", 12.0)


def test_lookbacks_of_products_differences_and_maxima() -> None:
    graph = graph_of("let p = sma(close, n * m)\n    let d = sma(close, 21 - n)\n"
                     "    let x = sma(close, max(n - 5, m))\n"
                     "    entry long when p > d and x > 0")
    assert graph.nodes[graph.lets["p"]].lookback.text() == "m*n - 1"
    assert graph.nodes[graph.lets["d"]].lookback.text() == "20 - n"
    assert graph.nodes[graph.lets["x"]].lookback.text() == "max(m - 1, n - 6)"
    for n, m_ in ((1, 2), (20, 10), (7, 6)):
        assert graph.warmup.evaluate({"n": n, "m": m_}) == max(n * m_, 21 - n, n - 5, m_) - 1


def test_the_artifact_carries_the_expression_and_the_symbolic_warmup() -> None:
    artifact = api.compile_source(text("entry long when close > highest(high, n * m + 1)[1]"))
    assert isinstance(artifact, m.StrategyArtifact)
    cfg = artifact.config
    assert [f.model_dump() for f in cfg.warmup.forms] == [
        {"const": 0, "terms": {}}, {"const": 1, "terms": {"m*n": 1}}]
    assert cfg.warmup.text == "max(0, m*n + 1)" and cfg.warmup.exact
    assert cfg.warmup_bars == 41  # n = 10, m = 4 at the defaults
    assert cfg.warmup.evaluate({"n": 3, "m": 6}) == 19
    ops = {n.op for n in cfg.graph.nodes}
    assert {"mul", "add", "param"} <= ops
    assert [s.kind for s in cfg.graph.program if cfg.graph.nodes[s.node].op == "add"] == \
        ["scalar"]


def test_a_lag_expression_is_lowered_like_a_window() -> None:
    graph = graph_of("let a = close[n + 1]\n    let b = close[1 - 1]\n"
                     "    entry long when a > b")
    lag = graph.nodes[graph.lets["a"]]
    assert lag.op == "lag" and graph.nodes[lag.inputs[1]].op == "add"
    assert lag.lookback.text() == "n + 1"
    b = graph.nodes[graph.lets["b"]]  # a lag that folds to 0 is its target, as `close[0]`
    assert (b.op, b.value) == ("source", "close")
