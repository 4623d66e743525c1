"""Lowering and code generation called alone: CSE, lookbacks, warm-up, numexpr splitting."""

from __future__ import annotations

import re

import pytest

from peakdsl.compile.codegen import MAX_OPERANDS, emit_program
from peakdsl.compile.lower import lower_strategy
from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text


def checked(body: str, params: str = ""):
    text = f"""strategy s {{
        market BTC/EUR
        timeframe 1h
        {params}
        {body}
        size 10% of equity
    }}"""
    result = parse_text(text, "s.peak")
    assert result.module is not None, result.diagnostics
    spec, diags = check_module(result.module)
    assert not [d for d in diags if d.is_error], diags
    return spec


def test_common_subexpressions_are_merged() -> None:
    spec = checked("""
        let a = sma(close, 20) + 1
        let b = sma(close, 20) * 2
        entry long when a > b and sma(close, 20) > open
    """)
    graph = lower_strategy(spec)
    smas = [n for n in graph.nodes if n.op == "sma"]
    assert len(smas) == 1
    closes = [n for n in graph.nodes if n.op == "source" and n.value == "close"]
    assert len(closes) == 1


def test_commutative_operands_merge() -> None:
    spec = checked("""
        let a = close + open
        let b = open + close
        entry long when a > 0 and b > 0
    """)
    graph = lower_strategy(spec)
    assert graph.lets["a"] == graph.lets["b"]
    assert graph.nodes[graph.lets["a"]].names == ("a", "b")


def test_lookbacks_and_warmup_are_symbolic_in_params() -> None:
    spec = checked(
        """
        let f = ema(close, fast)
        let s = sma(close, slow)
        entry long when crossover(f, s) and rsi(close, 14) < 70
        exit long when close[3] > highest(high, 20)
        """,
        """
        param fast: int = 12 in 2..50
        param slow: int = 26 in 10..200
        require fast < slow
        """,
    )
    graph = lower_strategy(spec)
    assert graph.nodes[graph.lets["f"]].lookback.text() == "fast - 1"
    assert graph.nodes[graph.lets["s"]].lookback.text() == "slow - 1"
    assert graph.warmup.text() == "max(19, fast, slow)"
    assert graph.warmup.evaluate({"fast": 12, "slow": 26}) == 26
    assert graph.warmup.evaluate({"fast": 2, "slow": 10}) == 19


@pytest.mark.parametrize(
    ("expr", "bars"),
    [
        ("atr(14) > 0", 14),
        ("adx(14) > 25", 27),
        ("macd_signal(close, 12, 26, 9) > 0", 33),
        ("roc(close, 10) > 2%", 10),
        ("close[5] > close", 5),
        ("crossover(close, sma(close, 3))", 3),
        ("percent_rank(close, 50) > 90", 50),
    ],
)
def test_builtin_lookbacks(expr: str, bars: int) -> None:
    graph = lower_strategy(checked(f"entry long when {expr}"))
    assert graph.warmup.evaluate({}) == bars


def test_program_fuses_elementwise_nodes_into_numexpr() -> None:
    spec = checked("entry long when close > open and (high - low) / close < 2% or volume > 0")
    program = emit_program(lower_strategy(spec))
    exprs = [s for s in program if s.expr is not None]
    assert len(exprs) == 1
    assert "&" in exprs[0].expr and "|" in exprs[0].expr
    assert all(re.fullmatch(r"n\d+", name) for name, _ in exprs[0].inputs)


def test_wide_expressions_are_split_below_the_operand_limit() -> None:
    terms = " + ".join(f"close[{i}]" for i in range(1, 45))
    # 44 distinct lag nodes in one sum: must be split across several numexpr steps
    spec = checked(f"let wide = {terms}\nentry long when wide > 0")
    graph = lower_strategy(spec)
    program = emit_program(graph)
    steps = [s for s in program if s.expr is not None]
    assert len(steps) >= 2
    assert all(len(s.inputs) + 1 <= MAX_OPERANDS for s in steps)
    ids = [s.node for s in program]
    assert ids == sorted(ids)
    computed: set[int] = {n.id for n in graph.nodes if n.op in ("source", "param", "const")}
    for step in program:
        assert all(i in computed for _, i in step.inputs)
        computed.add(step.node)


def test_split_expressions_evaluate_like_the_unsplit_sum() -> None:
    import numpy as np

    from peakdsl.compile.artifacts import build_artifact
    from peakdsl.engine.evaluate import evaluate

    terms = " + ".join(f"close[{i}]" for i in range(1, 45))
    spec = checked(f"let wide = {terms}\nentry long when wide > 0")
    artifact = build_artifact(spec, b"", "s.peak", {})
    close = np.linspace(1.0, 2.0, 100)
    frame = {"open": close, "high": close, "low": close, "close": close, "volume": close}
    wide = evaluate(artifact.config, frame).series["wide"]  # type: ignore[attr-defined]
    expected = sum(np.concatenate([np.full(i, np.nan), close[:-i]]) for i in range(1, 45))
    np.testing.assert_allclose(wide, expected, rtol=1e-12, equal_nan=True)
    assert np.isnan(wide[:44]).all() and np.isfinite(wide[44:]).all()


def test_lagging_a_constant_adds_no_node() -> None:
    graph = lower_strategy(checked("entry long when crossover(close, 100)"))
    assert [n.op for n in graph.nodes].count("lag") == 1
    assert graph.warmup.evaluate({}) == 1
