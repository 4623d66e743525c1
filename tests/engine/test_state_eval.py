"""``state`` lets end to end (issue 13, item 2): checked, compiled to a scan node, evaluated
whole-array and bar by bar, equal to the reference interpreter — and Supertrend written in
peak equal, bar for bar, to an independent implementation of TradingView's definition."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from peakdsl.compile import models as m
from peakdsl.compile.artifacts import build_artifact
from peakdsl.data.synth import synth_market
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.kernels import KERNELS
from peakdsl.engine.program import Program
from peakdsl.engine.reference import reference_evaluate
from peakdsl.lang.checker import CheckedSpec, check_module
from peakdsl.lang.parser import parse_text

SUPERTREND = """\
strategy supertrend_state {
    market BTC/USDT
    timeframe 1h
    param period: int = 10 in 5..30
    param mult: float = 3 in 1..5 step 0.5
    let line_up = hl2 - mult * atr(period)
    let line_dn = hl2 + mult * atr(period)
    state up = if close[1] > nz(up[1], line_up) then max(line_up, nz(up[1], line_up)) else line_up
    state dn = if close[1] < nz(dn[1], line_dn) then min(line_dn, nz(dn[1], line_dn)) else line_dn
    state trend = if nz(trend[1], 1) == -1 and close > nz(dn[1], line_dn) then 1
        else if nz(trend[1], 1) == 1 and close < nz(up[1], line_up) then -1
        else nz(trend[1], 1)
    let supertrend = if trend == 1 then up else dn
    entry long when trend == 1 and trend[1] == -1
    exit long when trend == -1
}
"""

SPECS = {
    "running maximum": "state top = max(nz(top[1], close), close)\n"
                       "entry long when close > top[1]\nexit long when close < top[1] * 0.97",
    "exponential average": "state e = nz(e[1], close) * 0.9 + close * 0.1\n"
                           "entry long when crossover(close, e)\nexit long when close < e",
    "latch": "state armed = if rsi(close, 14) < 30 then true else if close > sma(close, 20) "
             "then false else armed[1]\nentry long when armed and close > open\n"
             "exit long when not armed",
    "two bars back": "state alt = nz(alt[2], 0) + volume / 1000\n"
                     "entry long when alt > alt[1] and close > open\nexit long when close < open",
    "division and log": "state g = nz(g[1], 0) + log(close / close[1]) / (high - low)\n"
                        "entry long when g > g[5]\nexit long when g < g[5]",
}


def checked(text: str) -> CheckedSpec:
    parsed = parse_text(text, "spec.peak")
    assert parsed.module is not None, parsed.diagnostics
    spec, diags = check_module(parsed.module)
    assert not [d for d in diags if d.is_error], [(d.code, d.message) for d in diags]
    return spec


def artifact(text: str) -> m.StrategyArtifact:
    built = build_artifact(checked(text), text.encode(), "spec.peak", {})
    assert isinstance(built, m.StrategyArtifact)
    return built


def strategy(body: str) -> str:
    return "strategy s {\n    market BTC/USDT\n    timeframe 1h\n    " + \
        body.replace("\n", "\n    ") + "\n}\n"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synth_market("BTC/USDT", "1h", bars=1500, seed=7).frame


def same(a: object, b: object) -> bool:
    return bool(np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               equal_nan=True))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_state_equals_the_reference_interpreter(name: str, frame: pd.DataFrame) -> None:
    text = strategy(SPECS[name])
    signals = evaluate(artifact(text).config, frame)
    reference = reference_evaluate(checked(text), frame)
    for key, slow in reference.items():
        fast = signals.rules.get(key, signals.series.get(key))
        assert fast is not None, key
        expected = slow.copy()
        if key in signals.rules:
            expected[:signals.warmup] = False  # rules are masked during the warm-up
        assert close_to(fast, expected), key


def close_to(fast: np.ndarray, slow: np.ndarray) -> bool:
    """Equal, NaN where NaN; floats to 1e-12 relative (numexpr's ``log`` and numpy's may
    differ in the last bit, as in the differential test)."""
    if fast.dtype == np.bool_:
        return bool(np.array_equal(fast, slow))
    return bool(np.allclose(fast, np.asarray(slow, dtype=np.float64), rtol=1e-12, atol=0.0,
                            equal_nan=True))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_bar_by_bar_equals_the_whole_array(name: str, frame: pd.DataFrame) -> None:
    cfg = artifact(strategy(SPECS[name])).config
    whole = evaluate(cfg, frame)
    stream = Program.plan(cfg).stream()
    pushed = [stream.push(row) for row in frame.to_dict("records")]
    for let, values in whole.series.items():
        assert same([p.series[let] for p in pushed], values), let
    for slot, values in whole.rules.items():
        assert [p.rules[slot] for p in pushed] == values.tolist(), slot


def test_the_state_is_one_scan_node_with_what_does_not_read_it_as_inputs() -> None:
    """``nz(e[1], close) * 0.9 + close * 0.1``: ``close`` and ``close * 0.1`` are computed
    over whole arrays first; the body holds nz, the product with 0.9 and the sum."""
    graph = artifact(strategy(SPECS["exponential average"])).config.graph
    node = graph.nodes[graph.lets["e"]]
    assert node.op == "state"
    assert [graph.nodes[i].op for i in node.inputs] == ["source", "mul"]
    assert str(node.value) == (
        '{"bool":false,"code":[["nz",[["self",1],["input",0]]],["mul",[["reg",0],'
        '["const",0]]],["add",[["reg",1],["input",1]]]],"consts":[0.9],"inputs":2}')


def test_a_boolean_state_is_a_boolean_series(frame: pd.DataFrame) -> None:
    signals = evaluate(artifact(strategy(SPECS["latch"])).config, frame)
    assert signals.series["armed"].dtype == np.bool_
    assert 0 < signals.series["armed"].sum() < len(frame)


def supertrend_tradingview(high: np.ndarray, low: np.ndarray, close: np.ndarray,
                           atr: np.ndarray, mult: float) -> tuple[list[float], list[float]]:
    """Pine's ``supertrend`` (pine v4 reference script), a plain loop: the trailing bands
    ratchet while the previous close stays on their side; the trend flips when the close
    crosses the band of the bar before. Returns (supertrend line, trend)."""
    line, trend_out = [], []
    up_prev = dn_prev = math.nan
    trend = 1.0
    for t in range(len(close)):
        src = (high[t] + low[t]) / 2
        up, dn = src - mult * atr[t], src + mult * atr[t]
        up1 = up if math.isnan(up_prev) else up_prev
        dn1 = dn if math.isnan(dn_prev) else dn_prev
        if t > 0 and close[t - 1] > up1:
            up = max(up, up1) if not (math.isnan(up) or math.isnan(up1)) else math.nan
        if t > 0 and close[t - 1] < dn1:
            dn = min(dn, dn1) if not (math.isnan(dn) or math.isnan(dn1)) else math.nan
        if trend == -1 and close[t] > dn1:
            trend = 1.0
        elif trend == 1 and close[t] < up1:
            trend = -1.0
        line.append(up if trend == 1 else dn)
        trend_out.append(trend)
        up_prev, dn_prev = up, dn
    return line, trend_out


def test_supertrend_written_in_peak_is_tradingviews(frame: pd.DataFrame) -> None:
    signals = evaluate(artifact(SUPERTREND).config, frame)
    high, low, close = (frame[c].to_numpy() for c in ("high", "low", "close"))
    atr = KERNELS["atr"](high, low, close, 10)
    line, trend = supertrend_tradingview(high, low, close, atr, 3.0)
    defined = ~np.isnan(atr)
    assert same(signals.series["supertrend"][defined], np.array(line)[defined])
    assert same(signals.series["trend"][defined], np.array(trend)[defined])
    assert 5 < np.count_nonzero(np.diff(np.array(trend)[defined])) < 300  # it does flip
