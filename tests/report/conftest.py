"""Fixtures for the report tests.

Backtests are hand-built: the simulator is not used, candles are a seeded random walk,
signals come from the real evaluator on ma_crossover, and trades, equity and metrics are made
up here so that the reports can be tested on their own. Sweeps and walk-forwards are real,
small runs on the demo market (session fixtures: each runs once, when a test asks for it).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from peakdsl import api
from peakdsl.backtest import BacktestResult
from peakdsl.compile import models as m
from peakdsl.data.candles import CandleSet
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.results import TRADE_COLUMNS, SimResult, SimSettings
from peakdsl.engine.trade_stats import backtest_only_metrics

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "specs" / "strategies" / "ma_crossover.peak"

if TYPE_CHECKING:
    from peakdsl.research.sweep import SweepPlan, SweepResult
    from peakdsl.research.walkforward import WalkForwardResult

MakeResult = Callable[..., BacktestResult]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: runs a real headless Chromium (skipped when it is not installed)")


def candles(n: int, seed: int = 7, synthetic: bool = True,
            source: str = "synthetic demo (seed 7)") -> CandleSet:
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n)))
    volume = rng.lognormal(3, 1, n)
    index = pd.date_range("2023-01-01", periods=n, freq="h", tz="UTC", name="time")
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                          "volume": volume}, index=index)
    return CandleSet.of(frame, "BTC/USDT", "1h", source, synthetic=synthetic)


def hand_sim(frame: pd.DataFrame, trades: int, capital: float, seed: int = 3) -> SimResult:
    """Non-overlapping trades alternating long/short with pnl from the closes."""
    n = len(frame)
    close = frame["close"].to_numpy()
    rng = np.random.default_rng(seed)
    cols: dict[str, list[float]] = {c: [] for c in TRADE_COLUMNS}
    equity = np.full(n, capital)
    position = np.zeros(n)
    cash = capital
    span = max((n - 60) // max(trades, 1), 2)
    for k in range(trades):
        entry = 50 + k * span + 1
        exit_ = min(entry + max(span - 1, 1), n - 1)
        side = 1.0 if k % 2 == 0 else -1.0
        qty = round(0.25 * cash / close[entry], 6)
        fees = qty * (close[entry] + close[exit_]) * 0.001
        pnl = side * qty * (close[exit_] - close[entry]) - fees
        position[entry:exit_] = side * qty
        equity[entry:exit_] = cash + side * qty * (close[entry:exit_] - close[entry])
        cash += pnl
        equity[exit_:] = cash
        reason = 4 if exit_ == n - 1 else int(rng.integers(0, 4))
        for name, value in zip(TRADE_COLUMNS, (entry, exit_, side, qty, close[entry],
                                               close[exit_], fees, pnl,
                                               pnl / (qty * close[entry]), reason, 0, 0),
                               strict=True):
            cols[name].append(float(value))
    arrays = {name: np.asarray(values, dtype=np.int64 if name in
                               ("entry_bar", "exit_bar", "exit_reason") else np.float64)
              for name, values in cols.items()}
    return SimResult(equity=equity, position=position, trades=arrays, ambiguous_bars=0,
                     fees_paid=float(np.sum(arrays["fees"])))


def metrics_for(sim: SimResult, capital: float) -> dict[str, float | int | None]:
    pnl = sim.trades["pnl"]
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    eq = sim.equity
    return {
        "total_return": float(eq[-1] / capital - 1), "cagr": float(eq[-1] / capital - 1) * 1.5,
        "volatility": 0.4213, "sharpe": 1.23456, "sortino": 1.9, "calmar": None,
        "max_drawdown": float(np.min(eq / np.maximum.accumulate(eq) - 1)),
        "max_drawdown_bars": 321, "profit_factor":
            float(wins.sum() / -losses.sum()) if len(losses) else None,
        "win_rate": float(len(wins) / len(pnl)) if len(pnl) else None,
        "expectancy": None, "trades": int(sim.trade_count), "avg_trade": 0.0123,
        "best_trade": 0.08, "worst_trade": -0.05, "exposure": 0.62,
        "fees_paid": sim.fees_paid, "ambiguous_bars": 0, "orders_reduced": 0,
        # the backtest-only ones as engine.trade_stats computes them; buy & hold left
        # undefined, as in a result computed without its closes (the report fills it in)
        **backtest_only_metrics(sim, {"cagr": float(eq[-1] / capital - 1) * 1.5,
                                      "exposure": 0.62}),
    }


def build_result(artifact: m.StrategyArtifact, n: int = 2000, trades: int = 20,
                 synthetic: bool = True, source_text: str | None = None,
                 **overrides: Any) -> BacktestResult:
    cs = candles(n, synthetic=synthetic,
                 source="synthetic demo (seed 7)" if synthetic else "binance BTC/USDT 1h")
    signals = evaluate(artifact.config, cs.frame)
    settings = SimSettings(capital=10_000.0, fees=0.001, slippage=0.0005,
                           sizing_value=0.25, warmup=signals.warmup)
    sim = hand_sim(cs.frame, trades, settings.capital)
    fields: dict[str, Any] = {
        "spec": "ma_crossover", "source_path": "specs/strategies/ma_crossover.peak",
        "source_text": SPEC.read_text(encoding="utf-8") if source_text is None
        else source_text,
        "artifact_sha256": "ab" * 32, "market": "BTC/USDT", "timeframe": "1h",
        "candles": cs, "params": dict(signals.params), "settings": settings,
        "signals": signals, "sim": sim, "metrics": metrics_for(sim, settings.capital),
        "engine_version": "0.3.0",
        "warnings": ("data source: synthetic demo (seed 7)",) if synthetic else (),
        "timing": {"total": 0.123},
    }
    fields.update(overrides)
    return BacktestResult(**fields)


@pytest.fixture(scope="session")
def artifact() -> m.StrategyArtifact:
    art = api.compile_spec(str(SPEC), REPO)
    assert isinstance(art, m.StrategyArtifact)
    return art


@pytest.fixture(scope="session")
def make_result(artifact: m.StrategyArtifact) -> MakeResult:
    """``make_result(n=2000, trades=20, synthetic=True, source_text=None, **overrides)``."""
    return functools.partial(build_result, artifact)


@pytest.fixture(scope="session")
def result(make_result: MakeResult) -> BacktestResult:
    return make_result()


# --------------------------------------------------------------------------- research runs


@dataclass(frozen=True)
class SweptRsi:
    """A 3 × 3 × 3 grid sweep of rsi_reversion on the demo market (not recorded), its plan and
    the best combination's backtest."""

    plan: SweepPlan
    result: SweepResult
    best: BacktestResult


RSI_SETS = ("length=10..14:2", "oversold=25..35:5", "overbought=65..75:5")


@pytest.fixture(scope="session")
def research_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-research")
    shutil.copytree(REPO / "specs", root / "specs")
    return root


@pytest.fixture(scope="session")
def swept_rsi(research_project: Path) -> SweptRsi:
    from peakdsl.report.sweep import best_backtest
    from peakdsl.research.sweep import execute_sweep, plan_sweep

    plan = plan_sweep(str(research_project / "specs/strategies/rsi_reversion.peak"),
                      root=research_project, sets=RSI_SETS, record=False)
    result = execute_sweep(plan)
    best = best_backtest(plan, result)
    assert best is not None
    return SweptRsi(plan, result, best)


@pytest.fixture(scope="session")
def walked(research_project: Path) -> WalkForwardResult:
    """ma_crossover walked forward on the demo market: 8 windows, 4 combinations each."""
    from peakdsl.research.walkforward import walkforward

    return walkforward(str(research_project / "specs/strategies/ma_crossover.peak"),
                       train="1000", test="500", sets=("fast=10..20:10", "slow=40..60:20"),
                       root=research_project, record=False)
