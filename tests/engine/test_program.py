"""The Program: one plan, whole-array (plain, cached, caller-owned rule rows) and bar by bar.

The parity contract (``peakdsl/engine/program.py``): a stream fed every bar from the first
one returns, at every bar, what the whole-array run returns there, and a stream built from a
history window equals the whole-array run on that window. The state forms repeat the numba
loops operation for operation, so this is tested as *bit* identity (NaN at the same bars,
the same doubles, the same booleans) on every library strategy; the random-spec property
(tests/property/test_program_parity.py) adds the tolerances the brief allows.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_evaluate import market, random_params, timed  # tests/engine is on sys.path

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.engine import program as program_module
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.program import EvaluationError, Program, Signals
from peakdsl.engine.stream import BarSignals, Stream
from peakdsl.research.kernel_cache import KernelCache

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = sorted((ROOT / "specs" / "strategies").glob("*.peak"))
Array = np.ndarray[Any, Any]


class Library(dict):  # type: ignore[type-arg]
    """Compiled configs by name (a short repr for hypothesis reports)."""

    def __repr__(self) -> str:
        return f"<library of {len(self)} strategies>"


@pytest.fixture(scope="module")
def library() -> dict[str, m.StrategyConfig]:
    out = Library()
    for path in STRATEGIES:
        artifact = api.compile_spec(str(path), ROOT)
        assert isinstance(artifact, m.StrategyArtifact)
        out[path.stem] = artifact.config
    return out


def config(text: str) -> m.StrategyConfig:
    artifact = api.compile_source(text, "t")
    assert isinstance(artifact, m.StrategyArtifact)
    return artifact.config


def streamed(stream: Stream, frame: pd.DataFrame) -> list[BarSignals]:
    """Every bar of ``frame`` pushed, with its open time when it is time-indexed."""
    cols: dict[str, Any] = {c: frame[c].to_numpy() for c in frame.columns}
    if isinstance(frame.index, pd.DatetimeIndex):
        cols["time"] = frame.index
    return [stream.push({c: cols[c][i] for c in cols}) for i in range(len(frame))]


def assert_identical(whole: Signals, bars: list[BarSignals], skip: int = 0) -> None:
    """Every let and rule of ``bars`` equals ``whole`` from bar ``skip`` on, bit for bit."""
    assert [b.index for b in bars] == list(range(skip, skip + len(bars)))
    for name, values in {**whole.series, **whole.rules}.items():
        got = np.array([{**b.series, **b.rules}[name] for b in bars], dtype=values.dtype)
        want = values[skip:]
        same = got == want
        if values.dtype != np.bool_:
            same |= np.isnan(got) & np.isnan(want)
        bad = np.flatnonzero(~same)
        assert bad.size == 0, (f"{name} differs from bar {skip + bad[0]}: stream "
                               f"{got[bad[:5]].tolist()}, whole {want[bad[:5]].tolist()}")


# ---------------------------------------------------------------- parity


@pytest.mark.parametrize("name", [p.stem for p in STRATEGIES])
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 260))
def test_stream_from_the_first_bar_equals_the_whole_array_run(
        library: dict[str, m.StrategyConfig], name: str, seed: int, n: int) -> None:
    cfg = library[name]
    frame = timed(market(seed, n), cfg)
    params = random_params(cfg, np.random.default_rng(seed))
    program = Program(cfg)
    assert_identical(program.signals(frame, params), streamed(program.stream(params), frame))


@pytest.mark.parametrize("name", [p.stem for p in STRATEGIES])
@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), start=st.integers(0, 150),
       window=st.integers(0, 120))
def test_stream_from_a_history_window_equals_the_run_on_that_window(
        library: dict[str, m.StrategyConfig], name: str, seed: int, start: int,
        window: int) -> None:
    """A live start: the stream is built from ``window`` bars of history beginning at bar
    ``start`` and then pushed the rest: equal to the whole-array run on the truncated data
    (recursive kernels are seeded at ``start`` in both)."""
    cfg = library[name]
    frame = timed(market(seed, 300).iloc[start:].reset_index(drop=True), cfg)
    params = random_params(cfg, np.random.default_rng(seed))
    program = Program(cfg)
    stream = program.stream(params, history=frame.iloc[:window])
    assert stream.bars == window
    assert_identical(program.signals(frame, params), streamed(stream, frame.iloc[window:]),
                     skip=window)


def test_evaluate_is_the_program(library: dict[str, m.StrategyConfig]) -> None:
    cfg = library["macd"]
    frame = market(3, 200)
    a, b = evaluate(cfg, frame), Program.plan(cfg).signals(frame)
    assert a.warmup == b.warmup and a.params == b.params
    for name in (*a.series, *a.rules):
        want = {**b.series, **b.rules}[name]
        assert np.array_equal({**a.series, **a.rules}[name], want,
                              equal_nan=want.dtype != np.bool_)


# ---------------------------------------------------------------- warm-up and history

EMA = """
strategy t {
    market BTC/EUR
    timeframe 1h
    param n: int = 3 in 2..10
    let e = ema(close, n)
    entry long when close > e
    size 10% of equity
}
"""


def bars(closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"open": closes, "high": closes, "low": closes, "close": closes,
                         "volume": [1.0] * len(closes)})


def test_a_recursive_kernel_is_seeded_where_its_history_starts() -> None:
    """ema(3), alpha 0.5, on 2 4 6 8 12 10: from bar 0 the seed is (2+4+6)/3 = 4 at bar 2,
    then 6, 9, 9.5. Started at bar 2 (history 6 8 12) the seed is (6+8+12)/3 = 26/3 and the
    next value 0.5·10 + 0.5·26/3 = 28/3, not 9.5: the documented warm-up dependence."""
    program = Program(config(EMA))
    full = streamed(program.stream(), bars([2, 4, 6, 8, 12, 10]))
    e = [b.series["e"] for b in full]
    assert np.isnan(e[:2]).all() and e[2:] == [4.0, 6.0, 9.0, 9.5]
    late = program.stream(history=bars([6, 8, 12]))
    (last,) = streamed(late, bars([10]))
    assert last.index == 3 and last.series["e"] == pytest.approx(28 / 3, rel=1e-15)


def test_rules_are_masked_during_the_warm_up_bar_by_bar() -> None:
    """Warm-up max(1, 2) = 2: `close > close[1]` holds on bar 1 but bar 1 is warm-up."""
    program = Program(config(EMA.replace("when close > e", "when close > close[1] or close > e")))
    got = streamed(program.stream(), bars([1, 2, 3, 4, 5]))
    assert program.stream().warmup == 2
    assert [b.rules["entry_long"] for b in got] == [False, False, True, True, True]
    assert [b.series["e"] for b in got][2:] == [2.0, 3.0, 4.0]


LONG_LET = """
strategy t {
    market BTC/EUR
    timeframe 1h
    param fast: int = 5 in 2..20
    let slow = sma(close, 30)[2]
    let quick = sma(close, fast)
    entry long when crossover(close, quick)
    size 10% of equity
}
"""


def test_history_is_the_largest_lookback_of_lets_and_rules() -> None:
    program = Program(config(LONG_LET))
    assert program.cfg.warmup.evaluate({"fast": 5}) == 5  # crossover(close, sma 5): 4 + 1
    assert program.history() == 31  # the let looks 29 + 2 bars back
    assert program.history({"fast": 20}) == 31
    assert Program(config(EMA)).history({"n": 9}) == 8


@pytest.mark.parametrize("name", ["ma_crossover", "macd", "rsi_reversion", "trend_following",
                                  "vol_breakout", "bollinger_bands"])
def test_a_stream_built_from_history_bars_is_defined_at_once(
        library: dict[str, m.StrategyConfig], name: str) -> None:
    """With exactly ``history(params)`` bars of history, every let is defined at the first
    bar pushed and rules can fire there (no bar of it is warm-up any more)."""
    cfg = library[name]
    program = Program(cfg)
    need = program.history()
    frame = market(5, need + 1)
    stream = program.stream(history=frame.iloc[:need])
    (bar,) = streamed(stream, frame.iloc[need:])
    assert bar.index == need >= stream.warmup
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in bar.series.values())
    short = program.stream(history=frame.iloc[:need - 1])
    (early,) = streamed(short, frame.iloc[need - 1:need])
    undefined = [v for v in early.series.values() if isinstance(v, float) and math.isnan(v)]
    assert undefined or early.index < short.warmup  # one bar less is not enough


def test_stream_state_stays_bounded(library: dict[str, m.StrategyConfig]) -> None:
    """Ring buffers never grow past their window: the state after 400 bars is as large as
    after 4,000 (deques are measured through the states' slots)."""
    program = Program(library["trend_following"])
    frame = market(9, 4000)
    stream = program.stream(history=frame.iloc[:400])
    before = state_size(stream)
    streamed(stream, frame.iloc[400:])
    assert state_size(stream) == before > 0


def state_size(stream: Stream) -> int:
    def size(obj: Any) -> int:
        if hasattr(obj, "maxlen"):
            return len(obj)
        slots = getattr(type(obj), "__slots__", ())
        return sum(size(getattr(obj, s)) for s in slots if hasattr(obj, s))
    return sum(size(state) for state in stream.states)


# ---------------------------------------------------------------- inputs


def test_bad_bars_and_params_are_evaluation_errors(library: dict[str, m.StrategyConfig]
                                                   ) -> None:
    program = Program(library["ma_crossover"])
    with pytest.raises(EvaluationError, match="unknown param"):
        program.stream({"fats": 10})
    with pytest.raises(EvaluationError, match="outside"):
        program.history({"fast": 10_000})
    stream = program.stream()
    with pytest.raises(EvaluationError, match="missing columns: volume"):
        stream.push({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0})
    with pytest.raises(EvaluationError, match="not a number"):
        stream.push({"open": "x", "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0})
    with pytest.raises(EvaluationError, match="missing columns"):
        program.stream(history={"close": [1.0]})


def test_numexpr_gets_only_generated_names_and_no_globals(
        library: dict[str, m.StrategyConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, dict[str, Any], Any]] = []
    real = program_module.ne.evaluate

    def spy(expr: str, *, local_dict: dict[str, Any], global_dict: Any, out: Any = None
            ) -> Any:
        seen.append((expr, local_dict, global_dict))
        return real(expr, local_dict=local_dict, global_dict=global_dict, out=out)

    monkeypatch.setattr(program_module.ne, "evaluate", spy)
    cfg = library["mean_reversion"]
    program = Program(cfg)
    program.signals(market(1, 50))
    streamed(program.stream(), market(1, 3))
    assert seen
    steps = {s.expr: set(s.inputs) for s in cfg.graph.program if s.expr}
    for expr, local, globals_ in seen:
        assert globals_ == {} and set(local) == steps[expr]


# ---------------------------------------------------------------- the shared cache


CROSS = """
strategy t {
    market BTC/EUR
    timeframe 1h
    param fast: int = 10 in 5..50
    param slow: int = 20 in 10..100
    param stop: percent = 5% in 1%..10% step 1%
    let gap = sma(close, fast) - sma(close, slow)
    entry long when crossover(sma(close, fast), sma(close, slow))
    exit long when gap < 0
    size 10% of equity
    stop_loss stop
}
"""


class Rows:
    """A caller-owned signal matrix, as the sweep's chunk."""

    def __init__(self, n: int) -> None:
        self.matrix = np.zeros((8, n), dtype=bool)
        self.row_of: dict[Hashable, int] = {}
        self.writes = 0

    def claim(self, key: Hashable) -> tuple[Array, bool]:
        if key in self.row_of:
            return self.matrix[self.row_of[key]], False
        self.row_of[key] = len(self.row_of)
        self.writes += 1
        return self.matrix[self.row_of[key]], True


def test_kernels_are_shared_by_structure_across_params() -> None:
    """sma(close, 20) is one cache entry whether `slow` (first run) or `fast` (second run)
    asked for it: the second run computes only sma(close, 40) and the series expression
    `gap` (which the exit rule reads). The crossover's lags are read as views of the
    moving averages: never computed, never cached."""
    program = Program(config(CROSS), lets=False)
    assert len(program.view_lags) == 2
    cols = {c: v.to_numpy() for c, v in market(2, 300).items()}
    cache = KernelCache()
    first = program.run({"fast": 10.0, "slow": 20.0, "stop": 0.05}, cols, cache=cache)
    assert (cache.misses, cache.hits) == (3, 0)  # sma 10, sma 20, gap
    assert not program.view_lags & set(first.values)  # no value...
    assert program.view_lags <= set(first.keys)  # ...but a key (the rules' keys use it)
    second = program.run({"fast": 20.0, "slow": 40.0, "stop": 0.05}, cols, cache=cache)
    assert (cache.misses, cache.hits) == (5, 1)  # sma 20 was there
    program.run({"fast": 20.0, "slow": 40.0, "stop": 0.09}, cols, cache=cache)
    assert (cache.misses, cache.hits) == (5, 4)  # a stop-loss computes nothing
    sma20 = [i for i, key in second.keys.items() if key == ("k", "sma", ("src", "", "close"),
                                                            ("w", 20))]
    assert len(sma20) == 1
    assert any(v is second.values[sma20[0]] for v in first.values.values())
    assert first.kernel_seconds > 0.0


def test_rule_rows_are_claimed_once_per_distinct_rule() -> None:
    """A stop-loss param does not change the signals: equal rule keys share their row, and
    the row holds what the whole-array run computes."""
    program = Program(config(CROSS), lets=False)
    frame = market(4, 200)
    cols = {c: v.to_numpy() for c, v in frame.items()}
    rows = Rows(200)
    for stop in (0.01, 0.02, 0.03, 0.04):
        run = program.run({"fast": 10.0, "slow": 20.0, "stop": stop}, cols,
                          cache=KernelCache(), rows=rows)
    # both rules are comparison trees, written into their rows from the first run on
    # (numexpr is never asked); later runs find the rows claimed
    assert rows.writes == 2 and not program.direct
    whole = program.signals(frame, {"fast": 10, "slow": 20})
    node = program.rules["entry_long"]
    raw = np.asarray(run.values[node], dtype=bool).copy()
    raw[: whole.warmup] = False
    assert np.array_equal(raw, whole.rules["entry_long"])
    assert run.values[node] is not None and run.values[node].base is rows.matrix


# ---------------------------------------------------------------- the plan


def test_a_rules_only_plan_skips_what_only_lets_need() -> None:
    cfg = config(LONG_LET)
    everything, rules = Program(cfg), Program(cfg, lets=False)
    kernels = {s.node for s in everything.steps if s.kind == "kernel"}
    only_let = kernels - {s.node for s in rules.steps}
    assert [cfg.graph.nodes[i].op for i in sorted(only_let)] == ["sma", "lag"]
    assert rules.history() == 5 and everything.history() == 31


def test_plans_are_kept_per_config_object_and_bounded() -> None:
    cfg = config(EMA)
    assert Program.plan(cfg) is Program.plan(cfg)
    assert Program.plan(cfg, lets=False) is not Program.plan(cfg)
    assert Program(cfg) is not Program.plan(cfg)
    for _ in range(program_module._PLANS_KEPT + 5):
        Program.plan(config(EMA))
    assert len(program_module._PLANS) == program_module._PLANS_KEPT
