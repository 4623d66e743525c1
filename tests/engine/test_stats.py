"""``compute_metrics`` against literal numbers, worked once by hand (with the statistics
module, independently of the implementation) and printed in docs/backtest.md.

The worked example in the docs and ``EXPECTED`` below must stay the same numbers: the test
asserts every ``| metric | value |`` row of the docs table is present verbatim.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from peakdsl.engine.results import TRADE_COLUMNS, SimResult, SimSettings
from peakdsl.engine.stats import METRIC_KEYS, compute_metrics
from peakdsl.lang.schema import METRICS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "backtest.md"
WEEK = 7 * 86_400

# capital 1000, seven weekly bars (see docs/backtest.md, "Worked statistics example")
EQUITY = [1010.0, 990.0, 1030.0, 1020.0, 1000.0, 1050.0, 1040.0]
POSITION = [10.0, 10.0, 0.0, -5.0, -5.0, 0.0, 0.0]
TRADE_PNL = [30.0, -20.0, 50.0, -10.0]
TRADE_RETURN = [0.03, -0.02, 0.05, -0.01]

# literal values, rounded to 6 decimals as printed in the docs
EXPECTED: dict[str, float | int | None] = {
    "total_return": 0.04,
    "cagr": 0.33931,
    "volatility": 0.2073,
    "sharpe": 1.500634,
    "sortino": 3.675705,
    "calmar": 11.649631,
    "max_drawdown": -0.029126,
    "max_drawdown_bars": 2,
    "profit_factor": 2.666667,
    "win_rate": 0.5,
    "expectancy": 0.0125,
    "trades": 4,
    "avg_trade": 0.0125,
    "best_trade": 0.05,
    "worst_trade": -0.02,
    "exposure": 0.571429,
    "fees_paid": 4.5,
    "ambiguous_bars": 1,
}


def sim_result(equity: list[float], position: list[float], pnl: list[float],
               returns: list[float], fees: float = 0.0, ambiguous: int = 0) -> SimResult:
    k = len(pnl)
    trades = {c: np.zeros(k) for c in TRADE_COLUMNS}
    trades["pnl"] = np.array(pnl, dtype=float)
    trades["return"] = np.array(returns, dtype=float)
    return SimResult(equity=np.array(equity, dtype=float), position=np.array(position, float),
                     trades=trades, ambiguous_bars=ambiguous, fees_paid=fees)


def example() -> dict[str, float | int | None]:
    sim = sim_result(EQUITY, POSITION, TRADE_PNL, TRADE_RETURN, fees=4.5, ambiguous=1)
    return compute_metrics(sim, SimSettings(capital=1000.0), WEEK)


def test_keys_are_the_schema_metrics() -> None:
    assert set(METRIC_KEYS) <= set(METRICS)
    assert list(example()) == list(METRIC_KEYS)


def test_worked_example_literals() -> None:
    got = example()
    for name, want in EXPECTED.items():
        value = got[name]
        if isinstance(want, int):
            assert value == want and isinstance(value, int), name
        else:
            assert isinstance(value, float), name
            assert value == pytest.approx(want, abs=5e-7), name


def test_docs_table_has_the_same_literals() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, want in EXPECTED.items():
        assert f"| `{name}` | {want} |" in text, f"docs/backtest.md lacks `{name}` = {want}"
    # and the inputs of the example
    assert "1010, 990, 1030, 1020, 1000, 1050, 1040" in text
    assert "30, −20, 50, −10" in text


def test_no_trades_and_flat_equity() -> None:
    sim = sim_result([1000.0] * 5, [0.0] * 5, [], [])
    got = compute_metrics(sim, SimSettings(capital=1000.0), 3600)
    assert got["total_return"] == 0.0 and got["cagr"] == 0.0
    assert got["volatility"] == 0.0
    assert got["sharpe"] is None and got["sortino"] is None and got["calmar"] is None
    assert got["max_drawdown"] == 0.0 and got["max_drawdown_bars"] == 0
    assert got["trades"] == 0 and got["exposure"] == 0.0
    for key in ("profit_factor", "win_rate", "expectancy", "avg_trade", "best_trade",
                "worst_trade"):
        assert got[key] is None, key
    json.dumps(got, allow_nan=False)


def test_all_winners_have_no_profit_factor() -> None:
    sim = sim_result([1010.0, 1020.0, 1030.0], [1.0, 1.0, 0.0], [10.0, 20.0], [0.01, 0.02])
    got = compute_metrics(sim, SimSettings(capital=1000.0), 86_400)
    assert got["profit_factor"] is None
    assert got["win_rate"] == 1.0
    assert got["sortino"] is None  # no down bar: downside deviation 0
    assert got["max_drawdown"] == 0.0 and got["calmar"] is None
    assert got["sharpe"] == pytest.approx(
        np.mean([0.01, 0.01 / 1.01, 0.01 / 1.02]) / np.std([0.01, 0.01 / 1.01, 0.01 / 1.02],
                                                           ddof=1) * math.sqrt(365))


def test_all_losers_profit_factor_zero_and_ruin() -> None:
    sim = sim_result([500.0, -10.0], [1.0, 0.0], [-1010.0], [-1.01])
    got = compute_metrics(sim, SimSettings(capital=1000.0), 86_400)
    assert got["profit_factor"] == 0.0 and got["win_rate"] == 0.0
    assert got["cagr"] == -1.0  # equity at or below zero
    assert got["total_return"] == pytest.approx(-1.01)
    json.dumps(got, allow_nan=False)


def test_empty_and_single_bar() -> None:
    got = compute_metrics(sim_result([], [], [], []), SimSettings(), 3600)
    assert got["trades"] == 0 and got["cagr"] is None and got["sharpe"] is None
    got = compute_metrics(sim_result([1100.0], [0.0], [], []), SimSettings(capital=1000.0), 3600)
    assert got["total_return"] == pytest.approx(0.1)
    assert got["volatility"] is None and got["sharpe"] is None  # one return
    json.dumps(got, allow_nan=False)


def test_deterministic() -> None:
    assert json.dumps(example()) == json.dumps(example())
