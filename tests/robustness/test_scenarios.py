"""Stress scenarios by hand: each change to prices, signals or settings on tiny series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from peakdsl.data.candles import CandleSet
from peakdsl.engine.evaluate import Signals
from peakdsl.engine.results import SimSettings
from peakdsl.robustness.scenarios import SCENARIOS, window, worst_moment

TIMES = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")
CLOSE = np.array([100.0, 110.0, 121.0, 110.0, 100.0, 100.0])


def candles() -> CandleSet:
    frame = pd.DataFrame({"open": CLOSE, "high": CLOSE * 1.01, "low": CLOSE * 0.99,
                          "close": CLOSE, "volume": 1.0}, index=TIMES)
    return CandleSet.of(frame, "BTC/EUR", "1h", "test")


def changed(name: str, start: int, stop: int) -> pd.DataFrame:
    change = SCENARIOS[name].candles
    assert change is not None
    return change(candles(), TIMES[start], TIMES[stop]).frame


def test_crash_takes_a_fifth_off_every_price_from_the_moment() -> None:
    out = changed("crash", 2, 3)
    np.testing.assert_allclose(out["close"], [100, 110, 96.8, 88, 80, 80])
    np.testing.assert_allclose(out["high"], out["close"] * 1.01)


def test_vol_spike_doubles_the_returns_in_the_window_then_continues() -> None:
    out = changed("vol_spike", 1, 3)  # bars 1 and 2: +10 % each → +21 % each
    np.testing.assert_allclose(out["close"], [100, 121, 146.41, 133.1, 121, 121])
    np.testing.assert_allclose(out["low"], out["close"] * 0.99)


def test_flat_market_freezes_the_window_at_the_last_close_before_it() -> None:
    out = changed("flat_market", 2, 4)
    np.testing.assert_allclose(out["close"], [100, 110, 110, 110, 100, 100])
    assert (out.iloc[2:4][["open", "high", "low"]] == 110.0).all().all()
    np.testing.assert_allclose(out["close"].iloc[4:], [100, 100])  # 100 × 110/110


def test_data_gap_removes_the_window() -> None:
    out = changed("data_gap", 2, 4)
    assert list(out.index) == [TIMES[0], TIMES[1], TIMES[4], TIMES[5]]


def test_fill_delay_moves_every_signal_one_bar_later() -> None:
    signals = Signals({}, {"entry_long": np.array([True, False, True, False])}, 0, {})
    late, _ = SCENARIOS["fill_delay"].adjust(signals, SimSettings())
    assert late.rules["entry_long"].tolist() == [False, True, False, True]


@pytest.mark.parametrize(("name", "field", "factor"), [("fee_x2", "fees", 2.0),
                                                       ("slippage_x3", "slippage", 3.0)])
def test_cost_scenarios(name: str, field: str, factor: float) -> None:
    base = SimSettings(fees=0.001, slippage=0.0005)
    _, out = SCENARIOS[name].adjust(Signals({}, {}, 0, {}), base)
    assert getattr(out, field) == factor * getattr(base, field)


def test_the_worst_moment_is_the_most_net_long_point() -> None:
    values = np.array([[0.0, 5.0, 9.0, 2.0], [0.0, 1.0, -4.0, 6.0]])  # net 0, 6, 5, 8
    assert worst_moment(TIMES[:4], values) == TIMES[3]
    short = np.array([[0.0, -5.0, -9.0, 0.0]])
    assert worst_moment(TIMES[:4], short) == TIMES[2]  # never long: the largest exposure
    assert worst_moment(TIMES[:4], np.zeros((1, 4))) == TIMES[2]  # never exposed: the middle
    assert window(TIMES, TIMES[1]) == (TIMES[1], TIMES[1] + pd.Timedelta(minutes=15))
