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
import pandas as pd
import pytest

from peakdsl.engine.results import EXIT_REASONS, TRADE_COLUMNS, SimResult, SimSettings
from peakdsl.engine.stats import (
    CORE_SLOTS,
    INT_METRICS,
    METRIC_KEYS,
    bars_per_year,
    calendar_warning,
    check_core_slots,
    compute_metrics,
    infer_calendar,
)
from peakdsl.lang.schema import METRICS
from peakdsl.metrics import CORE_METRICS, produced_by
from peakdsl.metrics import INT_METRICS as CATALOGUE_INTS

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
    "orders_reduced": 0,
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
    assert list(example()) == list(produced_by("backtest"))  # the core's, then trade_stats'


def test_keys_are_the_catalogue_backtest_metrics_and_the_core_writes_each() -> None:
    """A metric added to the catalogue's backtest kind but not to ``metrics_core`` stops the
    import (``check_core_slots``); every slot is written (the worked example defines all of
    them, so none may stay NaN) and read back under its catalogue name, counts as ints."""
    assert METRIC_KEYS == CORE_METRICS == CORE_SLOTS
    assert INT_METRICS == CATALOGUE_INTS
    assert set(EXPECTED) == set(METRIC_KEYS)
    got = example()
    assert all(got[k] is not None for k in METRIC_KEYS)
    assert {k for k, v in got.items() if isinstance(v, int)} == INT_METRICS


@pytest.mark.parametrize("keys", [
    (*CORE_SLOTS, "ulcer_index"),  # a metric the core does not write
    CORE_SLOTS[:-1],  # one the catalogue dropped
    (CORE_SLOTS[1], CORE_SLOTS[0], *CORE_SLOTS[2:]),  # a different order
])
def test_a_catalogue_the_core_does_not_match_is_refused(keys: tuple[str, ...]) -> None:
    with pytest.raises(RuntimeError, match="disagree on"):
        check_core_slots(keys)
    check_core_slots(CORE_SLOTS)


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


# ---------------------------------------------------------------- open trades, reductions


def test_open_trade_is_in_the_equity_not_among_the_trades() -> None:
    """`end_of_data mark`: trade metrics count closed trades; orders_reduced counts both."""
    sim = sim_result([1010.0, 1050.0], [0.0, 2.0], [10.0], [0.01])
    sim.trades["reduced"][:] = 1.0
    opened = {c: np.zeros(1) for c in TRADE_COLUMNS}
    opened.update(side=np.ones(1), qty=np.full(1, 2.0), pnl=np.full(1, 40.0),
                  exit_reason=np.full(1, float(EXIT_REASONS.index("open"))),
                  reduced=np.ones(1))
    sim = SimResult(equity=sim.equity, position=sim.position, trades=sim.trades,
                    ambiguous_bars=0, fees_paid=0.0, open_trades=opened)
    got = compute_metrics(sim, SimSettings(capital=1000.0), 86_400)
    assert got["trades"] == 1 and got["win_rate"] == 1.0 and got["best_trade"] == 0.01
    assert got["total_return"] == pytest.approx(0.05)  # the marked position counts here
    assert got["exposure"] == 0.5
    assert got["orders_reduced"] == 2 and isinstance(got["orders_reduced"], int)


# ---------------------------------------------------------------- calendars (annualisation)


@pytest.mark.parametrize(("timeframe", "calendar", "bars"), [
    (3600, "always", 8760.0), (86_400, "always", 365.0), (WEEK, "always", 365 / 7),
    (3600, "weekdays", 6048.0), (86_400, "weekdays", 252.0), (WEEK, "weekdays", 50.4),
])
def test_bars_per_year(timeframe: int, calendar: str, bars: float) -> None:
    assert bars_per_year(timeframe, calendar) == bars


def weekday_days(n: int) -> pd.DatetimeIndex:
    """``n`` consecutive weekdays (no holidays) from Monday 2024-01-01, UTC."""
    days = pd.date_range("2024-01-01", periods=2 * n, freq="D", tz="UTC")
    return days[days.day_of_week < 5][:n]


def test_weekday_market_cagr_by_calendar() -> None:
    """GOOG-like daily data, no weekends: a year of 252 bars growing 20.9% is a CAGR of
    20.9% by the market's calendar and 31.6% if the bars are read as 24/7 days."""
    equity = [1000.0 * 1.209 ** ((t + 1) / 252) for t in range(252)]
    sim = sim_result(equity, [0.0] * 252, [], [])
    weekdays = compute_metrics(sim, SimSettings(capital=1000.0, calendar="weekdays"), 86_400)
    always = compute_metrics(sim, SimSettings(capital=1000.0), 86_400)
    assert weekdays["cagr"] == pytest.approx(0.209, abs=1e-12)
    assert always["cagr"] == pytest.approx(0.316398, abs=5e-7)
    # volatility scales with √bars_per_year: √(365/252) between the two
    assert always["volatility"] / weekdays["volatility"] == pytest.approx(math.sqrt(365 / 252))


def test_calendar_inference() -> None:
    assert infer_calendar(weekday_days(100), 86_400) == "weekdays"
    hourly = pd.date_range("2024-01-01", periods=24 * 30, freq="h", tz="UTC")
    assert infer_calendar(hourly, 3600) == "always"
    # a 5-day week shifted by a time zone (Sunday to Thursday in UTC) is still 5 days
    assert infer_calendar(weekday_days(100) - pd.Timedelta(days=1), 86_400) == "weekdays"
    assert infer_calendar(hourly[:24 * 10], 3600) is None  # under two weeks: cannot tell
    weekly = pd.date_range("2024-01-01", periods=60, freq="7D", tz="UTC")
    assert infer_calendar(weekly, WEEK) is None  # weekly bars have no weekends to count


def test_calendar_warning_w008() -> None:
    days = weekday_days(300)
    text = calendar_warning(days, 86_400, "always", declared=False)
    assert text is not None and text.startswith("W008 ")
    assert "weekdays only" in text and "365 bars" in text and "`calendar weekdays`" in text
    assert calendar_warning(days, 86_400, "weekdays", declared=True) is None
    hourly = pd.date_range("2024-01-01", periods=24 * 60, freq="h", tz="UTC")
    text = calendar_warning(hourly, 3600, "weekdays", declared=True)
    assert text is not None and "24/7" in text and "`calendar always`" in text
    assert calendar_warning(hourly, 3600, "always", declared=False) is None
    # SPY-like hourly bars: 7 a weekday; the week matches `weekdays`, the bars a year do not:
    # 840 bars over 165 days 7 hours (Monday 14:00 to the 24th Friday 21:00) = 1,855 a year
    sessions = [d + pd.Timedelta(hours=14 + h) for d in weekday_days(120) for h in range(7)]
    text = calendar_warning(pd.DatetimeIndex(sessions), 3600, "weekdays", declared=True)
    assert text is not None and "about 1,855 bars a year" in text and "6,048" in text


@pytest.mark.parametrize("n", [*range(0, 300, 7), 1000, 1023, 8191, 8192, 8193, 100_003])
def test_pairwise_sums_are_numpys_sums_bit_for_bit(n: int) -> None:
    """The metric core's two pairwise passes: the returns with their downside squares on one
    tree, then the squared deviations from the mean — each equal to ``np.sum`` of the
    stored terms (the numpy formulas the metrics are defined by), to the bit."""
    from peakdsl.engine.stats import DEVIATION, PLAIN, pairwise_sums

    rng = np.random.default_rng(n)
    x = rng.standard_t(3, n) * 10.0 ** rng.integers(-4, 1, n)
    total, down = pairwise_sums(x, 0, n, PLAIN, 0.0)
    assert total == x.sum()
    assert down == (np.minimum(x, 0.0) ** 2).sum()
    mean = total / n if n else 0.0
    assert pairwise_sums(x, 0, n, DEVIATION, mean)[0] == ((x - mean) ** 2).sum()
    if n > 10:  # an offset start reads the same tree over the slice
        assert pairwise_sums(x, 3, n - 3, PLAIN, 0.0)[0] == x[3:].sum()
