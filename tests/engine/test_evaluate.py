"""The compiled evaluator (kernels + numexpr) agrees with the slow AST reference interpreter
for every spec in the library, on random markets and random in-range params."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.engine.evaluate import EvaluationError, evaluate, require_masks
from peakdsl.engine.reference import reference_evaluate
from peakdsl.lang.project import load_project

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = sorted((ROOT / "specs" / "strategies").glob("*.peak"))


def market(seed: int, n: int) -> pd.DataFrame:
    """A random OHLCV frame with valid candles (low <= open, close <= high)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.01))
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, n)))
    volume = rng.lognormal(3, 1, n)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume})


def timed(frame: pd.DataFrame, cfg: m.StrategyConfig) -> pd.DataFrame:
    """``frame`` as bars of ``cfg``'s timeframe opening at 05:00 on 2024-01-01 and on (inside
    a day, so a strategy reading ``@1d`` starts in a partial day, dropped): what a strategy
    reading other timeframes needs (``lang.frames``)."""
    return frame.set_axis(pd.date_range("2024-01-01 05:00", periods=len(frame), tz="UTC",
                                        freq=pd.Timedelta(seconds=cfg.timeframe_seconds)))


def random_params(cfg: m.StrategyConfig, rng: np.random.Generator) -> dict[str, float]:
    """Random on-step params, retried until every `require` holds (defaults as fallback)."""
    for _ in range(50):
        values: dict[str, float] = {}
        for p in cfg.params:
            step = p.step or (p.high - p.low) / 10 or 1.0
            k = int(rng.integers(0, round((p.high - p.low) / step) + 1))
            values[p.name] = float(p.low + k * step)
        if all(bool(holds) for _, holds in require_masks(cfg, values)):
            return values
    return {p.name: p.default for p in cfg.params}


def assert_same(name: str, fast: np.ndarray, slow: np.ndarray) -> None:
    assert fast.shape == slow.shape, name
    if fast.dtype == bool or slow.dtype == bool:
        np.testing.assert_array_equal(fast.astype(bool), slow.astype(bool), err_msg=name)
    else:
        np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9, equal_nan=True,
                                   err_msg=name)


class Library(dict):  # type: ignore[type-arg]
    """Compiled configs and checked specs by name (short repr for hypothesis reports)."""

    def __repr__(self) -> str:
        return f"<library of {len(self)} strategies>"


@pytest.fixture(scope="module")
def compiled() -> dict[str, tuple[m.StrategyConfig, object]]:
    project = load_project([str(ROOT / "specs" / "strategies")], ROOT)
    out = Library()
    for path in STRATEGIES:
        artifact = api.compile_spec(str(path), ROOT)
        assert isinstance(artifact, m.StrategyArtifact)
        out[path.stem] = (artifact.config, project.specs[path.stem])
    return out


def test_library_is_not_empty() -> None:
    assert len(STRATEGIES) >= 10


@pytest.mark.parametrize("name", [p.stem for p in STRATEGIES])
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400))
def test_evaluator_matches_reference(compiled: dict[str, tuple[m.StrategyConfig, object]],
                                     name: str, seed: int, n: int) -> None:
    cfg, spec = compiled[name]
    frame = timed(market(seed, n), cfg)
    params = random_params(cfg, np.random.default_rng(seed))
    fast = evaluate(cfg, frame, params)
    slow = reference_evaluate(spec, frame, params)  # type: ignore[arg-type]
    levels = {f"level {slot}": values for slot, values in fast.levels.items()}
    rules = {slot: signal for slot, signal in fast.rules.items()  # a rule reading the
             if slot not in fast.position_rules}  # position is compared by simulating
    assert set(fast.series) | set(rules) | set(levels) == set(slow)
    for let, values in [*fast.series.items(), *levels.items()]:
        assert_same(f"{name}.{let}", values, slow[let])
    for slot, signal in rules.items():
        expected = np.asarray(slow[slot], dtype=bool).copy()
        expected[: fast.warmup] = False
        assert_same(f"{name}.{slot}", signal, expected)


def test_warmup_bars_never_signal(compiled: dict[str, tuple[m.StrategyConfig, object]]) -> None:
    cfg, _ = compiled["ma_crossover"]
    result = evaluate(cfg, market(1, 300))
    assert result.warmup == cfg.warmup_bars == 50
    for signal in result.rules.values():
        assert not signal[: result.warmup].any()


def test_params_are_validated(compiled: dict[str, tuple[m.StrategyConfig, object]]) -> None:
    cfg, _ = compiled["ma_crossover"]
    with pytest.raises(EvaluationError, match=r"unknown param"):
        evaluate(cfg, market(1, 50), {"fats": 10})
    with pytest.raises(EvaluationError, match="outside"):
        evaluate(cfg, market(1, 50), {"fast": 10_000})
    with pytest.raises(EvaluationError, match="missing columns"):
        evaluate(cfg, {"close": np.ones(5)})


def test_numexpr_sees_only_generated_names(compiled: dict[str, tuple[m.StrategyConfig, object]]
                                           ) -> None:
    import re

    for cfg, _ in compiled.values():
        for step in cfg.graph.program:
            if step.expr is None:
                continue
            names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", step.expr))
            assert names <= set(step.inputs) | {"where", "abs", "log", "sqrt", "True", "False"}


EVERY_CONSTRUCT = """
strategy every_construct {
    market BTC/EUR
    timeframe 1h
    param n: int = 5 in 1..20 step 1
    param back: int = 2 in 0..5 step 1
    param k: float = 1.5 in 0.5..3 step 0.5
    param edge: percent = 1% in 0%..5% step 0.5%
    let mid = hl2 + hlc3 - ohlc4
    let band = bb_upper(close, n, k) - bb_lower(close, n, k)
    let capped = clip(rsi(close, n), 20, 80)
    let level = if close > open then max(close, mid) else min(open, mid)
    let flip = sma(close, n) != sma(close, n)[back]
    let swing = abs(roc(close, n)) > edge and not (close == close[1])
    let strength = sqrt(band * band) / log(close) - -atr(n) * k
    entry long when flip and swing or crossover(capped, 50) and level > mid
    exit long when crossunder(close, sma(close, n)) or strength < 0
    entry short when (close < lowest(low, n)[1]) != rising(close, 2)
    exit short when falling(close, n) or percent_rank(close, n) > 90 and adx(n) > 20
    size 10% of equity
}
"""


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120),
       fast=st.integers(1, 20), back=st.integers(0, 5))
def test_every_construct_matches_reference(seed: int, n: int, fast: int, back: int) -> None:
    """One spec touching every operator and most built-ins, NaN warm-up included."""
    from peakdsl.compile.artifacts import build_artifact
    from peakdsl.lang.checker import check_module
    from peakdsl.lang.parser import parse_text

    module = parse_text(EVERY_CONSTRUCT, "every_construct.peak").module
    assert module is not None
    spec, diags = check_module(module)
    assert not [d for d in diags if d.is_error], diags
    artifact = build_artifact(spec, EVERY_CONSTRUCT.encode(), "every_construct.peak", {})
    assert isinstance(artifact, m.StrategyArtifact)
    params = {"n": fast, "back": back}
    frame = market(seed, n)
    fast_out = evaluate(artifact.config, frame, params)
    slow = reference_evaluate(spec, frame, params)
    for let, values in fast_out.series.items():
        assert_same(let, values, slow[let])
    for slot, signal in fast_out.rules.items():
        expected = np.asarray(slow[slot], dtype=bool).copy()
        expected[: fast_out.warmup] = False
        assert_same(slot, signal, expected)
