"""The sweep engine equals the reference (one ``run_backtest`` per combination) to 1e-12,
computes each distinct indicator call once, and keeps to its memory bounds."""

from __future__ import annotations

import math
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peakdsl.api import compile_source, compile_spec
from peakdsl.compile.models import StrategyArtifact
from peakdsl.data.candles import CandleSet
from peakdsl.data.select import demo_market
from peakdsl.engine import kernels
from peakdsl.engine.evaluate import EvaluationError
from peakdsl.engine.stats import METRIC_KEYS, N_METRICS, metrics_core, scratch_size
from peakdsl.research.engine import (
    BlockTimings,
    KernelCache,
    block_memory,
    chunk_size,
    evaluate_block,
)
from peakdsl.research.types import RunConfig, reference_block

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs" / "strategies").glob("*.peak"))
TOL = 1e-12


@cache
def artifact(path: Path) -> StrategyArtifact:
    art = compile_spec(str(path), ROOT)
    assert isinstance(art, StrategyArtifact)
    return art


@cache
def demo(path: Path) -> CandleSet:
    cfg = artifact(path).config
    return demo_market(cfg.market.symbol, cfg.timeframe)


def random_candles(seed: int, n: int, timeframe: str = "1h") -> CandleSet:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.standard_t(3, n) * 0.01))
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    index = pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC")
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                          "volume": rng.lognormal(2, 1, n)}, index=index)
    return CandleSet.of(frame, "BTC/USDT", timeframe, f"random {seed}", synthetic=True)


def assert_same(got: dict[str, Any], ref: dict[str, Any]) -> None:
    assert set(got) == set(METRIC_KEYS)
    for key in METRIC_KEYS:
        a, b = np.asarray(got[key]), np.asarray(ref[key])
        assert a.dtype == np.float64 and a.shape == b.shape, key
        assert np.array_equal(np.isnan(a), np.isnan(b)), (key, a, b)
        ok = ~np.isnan(b)
        err = np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(b[ok]))
        assert (err <= TOL).all(), (key, a, b)


@st.composite
def combos_for(draw: st.DrawFn, art: StrategyArtifact, max_rows: int = 5
               ) -> tuple[tuple[str, ...], np.ndarray]:
    params = art.config.params
    chosen = draw(st.lists(st.sampled_from(params), unique_by=lambda p: p.name,
                           max_size=len(params)))
    rows = draw(st.integers(1, max_rows))
    values = []
    for _ in range(rows):
        row = []
        for p in chosen:
            if p.type == "int":
                row.append(float(draw(st.integers(int(p.low), int(p.high)))))
            else:
                row.append(draw(st.floats(p.low, p.high, allow_nan=False)))
        values.append(row)
    return tuple(p.name for p in chosen), np.array(values, dtype=np.float64).reshape(
        rows, len(chosen))


run_configs = st.builds(RunConfig, capital=st.sampled_from([10_000.0, 1_234.5, 1e6]),
                        fee_bps=st.one_of(st.none(), st.sampled_from([0.0, 7.5, 30.0])))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), path=st.sampled_from(SPECS), run=run_configs)
def test_identity_with_reference_on_library_specs(data: st.DataObject, path: Path,
                                                  run: RunConfig) -> None:
    art = artifact(path)
    names, combos = data.draw(combos_for(art))
    candles = demo(path)
    assert_same(evaluate_block(art, candles, names, combos, run),
                reference_block(art, candles, names, combos, run))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), path=st.sampled_from(SPECS), seed=st.integers(0, 2**16),
       n=st.integers(1, 400))
def test_identity_on_random_candles(data: st.DataObject, path: Path, seed: int, n: int
                                    ) -> None:
    """Short and tiny candle sets too: warm-up longer than the data, one bar."""
    art = artifact(path)
    names, combos = data.draw(combos_for(art, max_rows=3))
    candles = random_candles(seed, n, art.config.timeframe)
    assert_same(evaluate_block(art, candles, names, combos),
                reference_block(art, candles, names, combos))


SETTINGS_SPEC = """
strategy settings_mix {
    market BTC/USDT
    timeframe 1h
    calendar CALENDAR
    param fast: int = 10 in 5..30 step 1
    param slow: int = 40 in 30..90 step 5
    param stop: percent = 3% in 1%..8% step 1%
    entry long when crossover(sma(close, fast), sma(close, slow))
    exit long when crossunder(sma(close, fast), sma(close, slow))
    entry short when crossunder(sma(close, fast), sma(close, slow))
    exit short when crossover(sma(close, fast), sma(close, slow))
    stop_loss stop
    SIZE
    execution {
        fill FILL
        fees 10bps
        slippage 5bps
        qty_step 0.001
        end_of_data END
        leverage LEVERAGE
    }
}
"""


@settings(max_examples=16, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fill=st.sampled_from(["next_open", "close"]),
       end=st.sampled_from(["close", "mark"]), leverage=st.sampled_from(["1", "0.5", "3"]),
       calendar=st.sampled_from(["always", "weekdays"]),
       size=st.sampled_from(["size 100% of equity", "size 250% of equity", "size 900 USDT",
                             "size 5000 USDT", "size 20 BTC", "vol_target 40%"]),
       seed=st.integers(0, 2**16), n=st.integers(50, 600))
def test_identity_with_every_execution_setting(data: st.DataObject, fill: str, end: str,
                                               leverage: str, calendar: str, size: str,
                                               seed: int, n: int) -> None:
    """End of data, leverage, calendar, each sizing mode and fill mode: the sweep engine
    honours them exactly as one backtest per combination does (orders get reduced here:
    20 BTC at ~100 and 5000 USDT do not fit 1,234.5 of capital)."""
    text = (SETTINGS_SPEC.replace("CALENDAR", calendar).replace("SIZE", size)
            .replace("FILL", fill).replace("END", end).replace("LEVERAGE", leverage))
    art = compile_source(text, "settings_mix")
    assert isinstance(art, StrategyArtifact)
    names, combos = data.draw(combos_for(art, max_rows=4))
    candles = random_candles(seed, n)
    run = RunConfig(capital=1_234.5)
    got = evaluate_block(art, candles, names, combos, run)
    assert_same(got, reference_block(art, candles, names, combos, run))


RULE_FORMS = """
strategy short_mix {
    market BTC/USDT
    timeframe 1h
    param fast: int = 10 in 3..30 step 1
    param slow: int = 30 in 10..80 step 5
    param band: percent = 1% in 0%..5% step 0.5%
    entry short when crossunder(sma(close, fast), sma(close, slow))
    exit short when close > sma(close, slow) * (1 + band)
    size 50% of equity
    execution {
        fill close
        fees 10bps
        slippage 5bps
    }
}
"""
KERNEL_RULES = """
strategy kernel_rules {
    market BTC/USDT
    timeframe 1h
    param k: int = 3 in 2..6 step 1
    param hi: float = 70 in 55..90 step 5
    param lo: float = 30 in 10..45 step 5
    param stop: percent = 2% in 1%..5% step 1%
    entry long when rising(close, k) and not (rsi(close, 14) > hi) or rsi(close, 14) < lo
    exit long when falling(close, k)
    STOP
    size 1 BTC
}
"""


@pytest.mark.parametrize(("text", "name"), [
    (RULE_FORMS, "short_mix"),  # one-sided short: the specialised loop; an arithmetic exit
    (KERNEL_RULES.replace("STOP", ""), "kernel_rules"),  # bool kernels in and / not / or
    (KERNEL_RULES.replace("STOP", "stop_loss stop"), "kernel_rules"),  # the general loop
])
def test_every_form_of_rule_equals_the_reference(text: str, name: str) -> None:
    """Rules read as code (a crossunder; bool kernels under ``and`` / ``not`` / ``or``
    against params), as a numexpr row (arithmetic inside) and as a kernel's own output,
    through the specialised loop (short side) and the general one (a stop)."""
    art = compile_source(text, name)
    assert isinstance(art, StrategyArtifact)
    rng = np.random.default_rng(5)
    params = art.config.params
    combos = np.array([[float(rng.choice(np.arange(p.low, p.high + p.step / 2, p.step)))
                        for p in params] for _ in range(10)])
    names = tuple(p.name for p in params)
    candles = random_candles(9, 700)
    got = evaluate_block(art, candles, names, combos)
    assert (got["trades"] > 0).all()
    assert_same(got, reference_block(art, candles, names, combos))


def test_defaults_and_empty_block() -> None:
    path = ROOT / "specs" / "strategies" / "ma_crossover.peak"
    art, candles = artifact(path), demo(path)
    none = np.empty((1, 0))
    assert_same(evaluate_block(art, candles, (), none), reference_block(art, candles, (), none))
    empty = evaluate_block(art, candles, ("fast",), np.empty((0, 1)))
    assert all(v.shape == (0,) for v in empty.values())


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> Counter[tuple[Any, ...]]:
    calls: Counter[tuple[Any, ...]] = Counter()
    real = kernels.KERNELS[name]

    def wrapped(*args: Any) -> Any:
        calls[tuple(a for a in args if not isinstance(a, np.ndarray))] += 1
        return real(*args)

    monkeypatch.setitem(kernels.KERNELS, name, wrapped)
    return calls


def test_each_sma_window_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    path = ROOT / "specs" / "strategies" / "ma_crossover.peak"
    art, candles = artifact(path), demo(path)
    grid = np.array([(f, s) for f in range(5, 51, 3) for s in range(20, 201, 10) if f < s],
                    dtype=np.float64)
    sma_calls = counting(monkeypatch, "sma")
    lag_calls = counting(monkeypatch, "lag")
    cache = KernelCache()
    got = evaluate_block(art, candles, ("fast", "slow"), grid, cache=cache,
                         max_memory=block_memory(len(candles), 40))  # several chunks
    windows = set(grid[:, 0].astype(int)) | set(grid[:, 1].astype(int))
    assert set(sma_calls) == {(w,) for w in windows}  # fast=20 and slow=20: one call
    assert all(c == 1 for c in sma_calls.values())
    assert not lag_calls  # the crossovers read the moving averages a bar back: no lag copies
    # the cache carries over to the next block of the sweep: no kernel runs again
    sma_calls.clear()
    again = evaluate_block(art, candles, ("fast", "slow"), grid[::-1], cache=cache)
    assert not sma_calls
    for key in METRIC_KEYS:
        np.testing.assert_array_equal(again[key][::-1], got[key])


def test_params_outside_the_graph_share_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep over stop / target only evaluates the indicators once."""
    path = ROOT / "specs" / "strategies" / "ma_trend_btc_moderate.peak"
    art, candles = artifact(path), demo(path)
    by_name = {p.name: p for p in art.config.params}
    stop, target = by_name["stop"], by_name["target"]
    combos = np.array([(a, b) for a in np.linspace(stop.low, stop.high, 4)
                       for b in np.linspace(target.low, target.high, 3)])
    sma_calls = counting(monkeypatch, "sma")
    got = evaluate_block(art, candles, ("stop", "target"), combos)
    assert sum(sma_calls.values()) == len(sma_calls) <= 2
    assert_same(got, reference_block(art, candles, ("stop", "target"), combos))


def test_small_cache_and_small_chunks_change_nothing() -> None:
    path = ROOT / "specs" / "strategies" / "macd.peak"
    art, candles = artifact(path), demo(path)
    names = ("fast", "slow", "signal")
    rng = np.random.default_rng(1)
    params = {p.name: p for p in art.config.params}
    combos = np.array([[float(rng.integers(int(params[n].low), int(params[n].high) + 1))
                        for n in names] for _ in range(12)])
    big = evaluate_block(art, candles, names, combos)
    tiny = KernelCache(max_bytes=3 * len(candles) * 8)
    timings = BlockTimings()
    small = evaluate_block(art, candles, names, combos, cache=tiny,
                           max_memory=block_memory(len(candles), 5), timings=timings)
    # the rows the chunks read hold at most what the per-thread buffers leave
    budget = block_memory(len(candles), 5) - block_memory(len(candles), 0)
    assert 0 < timings.row_bytes <= budget
    assert timings.chunks > 1
    assert tiny.nbytes <= tiny.max_bytes and tiny.evictions > 0
    for key in METRIC_KEYS:
        np.testing.assert_array_equal(small[key], big[key])


def test_cache_is_an_lru_bounded_by_bytes() -> None:
    cache = KernelCache(max_bytes=1000)
    a, b, c = np.zeros(50), np.zeros(50), np.zeros(50)  # 400 bytes each
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recent
    cache.put("c", c)  # 1200 > 1000: evicts b, the least recently used
    assert "b" not in cache and cache.get("a") is a and cache.get("c") is c
    assert cache.nbytes == 800 and cache.evictions == 1
    cache.put("huge", np.zeros(200))  # larger than the bound: never stored
    assert "huge" not in cache and cache.nbytes == 800
    cache.put("a", np.zeros(100))  # replacing a key frees its old bytes first
    assert cache.nbytes <= 1000 and cache.get("a") is not None
    assert cache.stats()["misses"] == 0
    assert cache.get("nope") is None and cache.misses == 1
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(ValueError):
        KernelCache(-1)


@pytest.mark.parametrize("bars", [1, 1_000, 100_000, 1_000_000])
@pytest.mark.parametrize("mib", [16, 256, 1024])
def test_chunk_size_respects_the_memory_bound(bars: int, mib: int) -> None:
    limit = mib * 2**20
    k = chunk_size(bars, limit)
    assert k >= 1
    if block_memory(bars, 1) <= limit:
        assert block_memory(bars, k) <= limit < block_memory(bars, k + 1)
    else:
        assert k == 1
    assert block_memory(bars, 2 * k) > block_memory(bars, k)


def test_bad_params_are_errors() -> None:
    path = ROOT / "specs" / "strategies" / "ma_crossover.peak"
    art, candles = artifact(path), demo(path)
    with pytest.raises(EvaluationError, match="unknown param"):
        evaluate_block(art, candles, ("nope",), np.ones((1, 1)))
    with pytest.raises(EvaluationError, match="outside"):
        evaluate_block(art, candles, ("fast",), np.array([[1e6]]))
    with pytest.raises(EvaluationError, match="outside"):
        evaluate_block(art, candles, ("fast",), np.array([[math.nan]]))
    with pytest.raises(EvaluationError, match="duplicate"):
        evaluate_block(art, candles, ("fast", "fast"), np.array([[10.0, 10.0]]))


# ---------------------------------------------------------------- the shared metrics core


def numpy_metrics(capital: float, equity: np.ndarray, position: np.ndarray, pnl: np.ndarray,
                  returns: np.ndarray, bpy: float) -> list[float]:
    """The numpy formulas ``compute_metrics`` used before its core moved to numba."""
    out = dict.fromkeys(METRIC_KEYS, math.nan)

    def fin(x: float) -> float:
        return x if math.isfinite(x) else math.nan

    curve = np.concatenate([[capital], equity])
    n = len(equity)
    initial, final = curve[0], curve[-1]
    if initial > 0:
        out["total_return"] = fin(final / initial - 1.0)
        if n > 0:
            if final <= 0:
                out["cagr"] = -1.0
            else:
                g = bpy / n * math.log(final / initial)
                out["cagr"] = fin(math.expm1(g)) if g < 700 else math.nan
    if n > 0 and initial > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = curve[1:] / curve[:-1] - 1.0
            if n >= 2 and np.isfinite(r).all():
                mean = float(np.mean(r))
                std = float(np.std(r, ddof=1))
                down = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
                out["volatility"] = fin(std * math.sqrt(bpy))
                if std > 0:
                    out["sharpe"] = fin(mean / std * math.sqrt(bpy))
                if down > 0:
                    out["sortino"] = fin(mean / down * math.sqrt(bpy))
            dd = float(np.min(curve / np.maximum.accumulate(curve) - 1.0))
        out["max_drawdown"] = fin(dd)
        peak, run, longest = -math.inf, 0, 0
        for v in curve.tolist():
            if v >= peak:
                peak, run = v, 0
            else:
                run += 1
                longest = max(longest, run)
        out["max_drawdown_bars"] = longest
        if dd < 0 and not math.isnan(out["cagr"]):
            out["calmar"] = fin(out["cagr"] / abs(dd))
        out["exposure"] = fin(np.count_nonzero(position != 0) / n)
    out["trades"] = len(pnl)
    if len(pnl):
        gl = float(-pnl[pnl < 0].sum())
        if gl > 0:
            out["profit_factor"] = fin(float(pnl[pnl > 0].sum()) / gl)
        out["win_rate"] = np.count_nonzero(pnl > 0) / len(pnl)
        out["expectancy"] = out["avg_trade"] = fin(float(np.mean(returns)))
        out["best_trade"] = fin(float(np.max(returns)))
        out["worst_trade"] = fin(float(np.min(returns)))
    out["fees_paid"] = 0.5
    out["ambiguous_bars"] = 2.0
    out["orders_reduced"] = 3.0
    return [out[k] for k in METRIC_KEYS]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 700), trades=st.integers(0, 300),
       special=st.sampled_from(["none", "nan", "inf", "zero", "negative", "flat"]),
       capital=st.sampled_from([1000.0, 1e-3, 0.0, -5.0]))
def test_metrics_core_is_bit_identical_to_the_numpy_formulas(
        seed: int, n: int, trades: int, special: str, capital: float) -> None:
    rng = np.random.default_rng(seed)
    equity = 1000.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    if special == "flat":
        equity[:] = 1000.0
    elif n:
        at = int(rng.integers(0, n))
        equity[at] = {"none": equity[at], "nan": math.nan, "inf": math.inf, "zero": 0.0,
                      "negative": -equity[at]}[special]
    position = np.where(rng.random(n) < 0.5, 0.0, 1.0)
    pnl = rng.normal(0, 10, trades) * (rng.random(trades) < 0.9)
    returns = rng.normal(0, 0.01, trades)
    got = np.empty(N_METRICS)
    scratch = np.empty(scratch_size(n, trades))
    metrics_core(capital, equity, float(np.count_nonzero(position)), pnl, returns[::1], 0.5,
                 2.0, 3.0, 8760.0, scratch, got)
    want = np.array(numpy_metrics(capital, equity, position, pnl, returns, 8760.0))
    assert np.array_equal(got, want, equal_nan=True), (got, want)
