"""Window and lag arithmetic evaluated per params set: bit for bit what writing the literal
gives (whole arrays, bar by bar, the reference interpreter), and the kernel cache keys on
the evaluated window, so a sweep computes `highest(high, 2 * n)` at n = 10 and
`highest(high, 20)` once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.data.candles import CandleSet
from peakdsl.engine.program import Program
from peakdsl.engine.reference import reference_evaluate
from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text
from peakdsl.research.engine import KernelCache, evaluate_block
from peakdsl.research.types import reference_block

PARAMS = ("param n: int = 10 in 1..20", "param m: int = 4 in 2..10 step 2")
# every kind of window argument: rolling, recursive, several windows, implicit columns, modes
BODY = """
    let h = highest(high, {w1})
    let s = stdev(close, {w2}, sample)
    let e = ema(close, {w3})
    let g = macd_signal(close, {w4}, {w5}, {w6})
    let a = adx({w7}, talib)
    let r = percent_rank(close, {w8})
    entry long when close > h[1] and e > s and a > 20
    exit long when crossunder(g, 0) or r < 10
"""
ARITH = {"w1": "2 * n", "w2": "n + 1", "w3": "n * m", "w4": "max(n - 5, 2)", "w5": "n + m",
         "w6": "-(1 - m)", "w7": "min(n, m) + 1", "w8": "21 - n"}


def literal(name: str, n: int, m_: int) -> str:
    """What ``ARITH[name]`` is at these params, written as a literal."""
    values = {"w1": 2 * n, "w2": n + 1, "w3": n * m_, "w4": max(n - 5, 2), "w5": n + m_,
              "w6": m_ - 1, "w7": min(n, m_) + 1, "w8": 21 - n}
    return str(values[name])


def spec_text(windows: dict[str, str]) -> str:
    lines = "\n    ".join(PARAMS)
    return (f"strategy s {{\n    market BTC/USDT\n    timeframe 1h\n    {lines}\n"
            f"{BODY.format(**windows)}}}\n")


def config(text: str) -> m.StrategyConfig:
    artifact = api.compile_source(text)
    assert isinstance(artifact, m.StrategyArtifact)
    return artifact.config


def frame(bars: int = 400, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    index = pd.date_range("2022-01-01", periods=bars, freq="h", tz="UTC")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.003,
                         "low": np.minimum(open_, close) * 0.997, "close": close,
                         "volume": rng.lognormal(2, 1, bars)}, index=index)


def same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


@pytest.mark.parametrize(("n", "m_"), [(1, 2), (10, 4), (20, 10), (7, 6)])
def test_arithmetic_is_bit_identical_to_the_literal(n: int, m_: int) -> None:
    data = frame()
    got = Program(config(spec_text(ARITH))).signals(data, {"n": n, "m": m_})
    fixed = config(spec_text({k: literal(k, n, m_) for k in ARITH}))
    want = Program(fixed).signals(data)
    assert got.warmup == want.warmup
    assert all(same(got.series[k], want.series[k]) for k in want.series)
    assert all(same(got.rules[k], want.rules[k]) for k in want.rules)


def test_bar_by_bar_equals_whole_arrays() -> None:
    data = frame(250)
    program = Program(config(spec_text(ARITH)))
    params = {"n": 6.0, "m": 4.0}
    whole = program.signals(data, params)
    stream = program.stream(params)
    cols = {c: data[c].to_numpy() for c in data.columns}
    bars = [stream.push({c: cols[c][i] for c in cols}) for i in range(len(data))]
    for slot, signal in whole.rules.items():
        assert [b.rules[slot] for b in bars] == signal.tolist()
    for name in ("h", "e", "r"):
        assert same([b.series[name] for b in bars], whole.series[name])
    assert program.history(params) == max(whole.warmup, 2 * 6 - 1, 6 * 4 - 1, 20 - 6)


def test_the_reference_interpreter_evaluates_the_arithmetic() -> None:
    data = frame(300)
    text = spec_text(ARITH)
    parsed = parse_text(text, "s.peak")
    assert parsed.module is not None
    spec, _ = check_module(parsed.module)
    params = {"n": 9.0, "m": 8.0}
    got = Program(config(text)).signals(data, params)
    ref = reference_evaluate(spec, data, params)
    for name in ("h", "r"):  # order statistics: exact in both
        assert same(got.series[name], ref[name])
    for name in ("s", "e", "g", "a"):
        np.testing.assert_allclose(got.series[name], ref[name], rtol=1e-9, equal_nan=True)


class Counting(KernelCache):
    """A kernel cache that remembers every key stored."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: list[Any] = []

    def put(self, key: Any, value: Any) -> None:
        self.stored.append(key)
        super().put(key, value)


SWEPT = """strategy swept {
    market BTC/USDT
    timeframe 1h
    param n: int = 10 in 5..20 step 5
    let wide = highest(high, 2 * n)
    let fixed = highest(high, 20)
    entry long when close > wide[1] or close > fixed[1]
    exit long when close < lowest(low, n + 5)[1]
}
"""


def test_a_sweep_keys_kernels_on_the_evaluated_window() -> None:
    artifact = api.compile_source(SWEPT)
    assert isinstance(artifact, m.StrategyArtifact)
    candles = CandleSet.of(frame(500), "BTC/USDT", "1h", "random 7", synthetic=True)
    combos = np.array([[5.0], [10.0], [15.0]])
    cache = Counting()
    got = evaluate_block(artifact, candles, ("n",), combos, cache=cache)
    highs = [k for k in cache.stored if k[1] == "highest"]
    assert sorted(k[-1] for k in highs) == [("w", 10), ("w", 20), ("w", 30)]  # 20: once
    lows = sorted(k[-1] for k in cache.stored if k[1] == "lowest")
    assert lows == [("w", 10), ("w", 15), ("w", 20)]
    ref = reference_block(artifact, candles, ("n",), combos)
    for key, values in got.items():
        np.testing.assert_allclose(values, ref[key], rtol=1e-12, equal_nan=True, err_msg=key)


LAGGED = """strategy lagged {{
    market BTC/USDT
    timeframe 1h
    param n: int = 3 in 1..8
    let a = close[{lag}]
    let b = (close > open)[{lag}]
    entry long when b and close > a
    exit long when crossunder(close, a)
}}
"""


@pytest.mark.parametrize("n", [1, 3, 8])
def test_lag_arithmetic_is_bit_identical_to_the_literal(n: int) -> None:
    data = frame(120)
    program = Program(config(LAGGED.format(lag="2 * n - 1")))
    got = program.signals(data, {"n": n})
    want = Program(config(LAGGED.format(lag=str(2 * n - 1)))).signals(data)
    assert got.warmup == want.warmup == 2 * n
    assert all(same(got.series[k], want.series[k]) for k in want.series)
    assert all(same(got.rules[k], want.rules[k]) for k in want.rules)
    stream = program.stream({"n": n})
    cols = {c: data[c].to_numpy() for c in data.columns}
    bars = [stream.push({c: cols[c][i] for c in cols}) for i in range(len(data))]
    assert [b.rules["entry_long"] for b in bars] == got.rules["entry_long"].tolist()
    parsed = parse_text(LAGGED.format(lag="2 * n - 1"), "lagged.peak")
    assert parsed.module is not None
    ref = reference_evaluate(check_module(parsed.module)[0], data, {"n": n})
    assert same(ref["a"], got.series["a"]) and same(ref["b"], got.series["b"])
