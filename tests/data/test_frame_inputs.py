"""``data.frames.frame_inputs`` on hand-made candles with gaps: each frame's bars (resampled
on the epoch grid, the edges dropped unless complete, an interior bucket kept from the bars
it has) and the alignment index (the last frame bar closed at each strategy bar's close,
-1 before the first), with literal numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from peakdsl.data import DataError
from peakdsl.data.frames import frame_inputs

HOURS = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]  # 06:00 is missing


def candles(hours: list[int]) -> pd.DataFrame:
    """Bar i (open at ``hours[i]``:00 on 2024-01-01): close i + 1, open 0.5 below, high and
    low 1 away, volume i + 1."""
    close = np.arange(1.0, len(hours) + 1)
    index = pd.DatetimeIndex([pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=h)
                              for h in hours])
    return pd.DataFrame({"open": close - 0.5, "high": close + 1, "low": close - 1,
                         "close": close, "volume": close}, index=index)


def test_a_4h_frame_with_a_gap() -> None:
    """Buckets 00:00 (3 bars: the data starts in it, dropped), 04:00 (04 05 07: a gap
    inside, kept), 08:00 (complete), 12:00 (1 bar: still forming, dropped). The 04:00 bar
    closes at 08:00, so bars 07:00 to 10:00 read it; 11:00 closes with the 08:00 bucket."""
    out = frame_inputs(["4h"], candles(HOURS), "1h", {})
    assert out["@4h"].dtype == np.int64
    assert out["@4h"].tolist() == [-1, -1, -1, -1, -1, 0, 0, 0, 0, 1, 1]
    assert out["open@4h"].tolist() == [3.5, 6.5]
    assert out["high@4h"].tolist() == [7.0, 11.0]
    assert out["low@4h"].tolist() == [3.0, 6.0]
    assert out["close@4h"].tolist() == [6.0, 10.0]
    assert out["volume@4h"].tolist() == [15.0, 34.0]


def test_another_market_with_its_own_gap() -> None:
    """ETH lacks 03:00, BTC 06:00: BTC's 03:00 bar reads ETH's 02:00 (the last closed), and
    ETH's 06:00 bar is never read (no BTC bar closes with it)."""
    eth = candles([1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    out = frame_inputs(["ETH/USDT"], candles(HOURS), "1h", {"ETH/USDT": eth})
    assert out["@ETH/USDT"].tolist() == [0, 1, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert out["close@ETH/USDT"].tolist() == [float(i) for i in range(1, 12)]


def test_another_markets_timeframe() -> None:
    """ETH (no 03:00) on 4h: its 00:00 bucket is incomplete and first (dropped), 04:00 and
    08:00 complete, 12:00 forming (dropped)."""
    eth = candles([1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    out = frame_inputs(["ETH/USDT@4h"], candles(HOURS), "1h", {"ETH/USDT": eth})
    assert out["@ETH/USDT@4h"].tolist() == [-1, -1, -1, -1, -1, 0, 0, 0, 0, 1, 1]
    assert out["close@ETH/USDT@4h"].tolist() == [6.0, 10.0]
    assert out["volume@ETH/USDT@4h"].tolist() == [3 + 4 + 5 + 6, 7 + 8 + 9 + 10]


def test_a_market_without_candles_is_d023() -> None:
    with pytest.raises(DataError) as caught:
        frame_inputs(["ETH/USDT"], candles(HOURS), "1h", {})
    assert [d.code for d in caught.value.diagnostics] == ["D023"]


def test_the_last_bucket_is_kept_once_its_closing_bar_is_there() -> None:
    """The 04:00 bucket lacks its 04:00 bar but has its 07:00 one: it is over, kept (else
    cutting the data after 07:00 would hide a bar the whole run shows there)."""
    out = frame_inputs(["4h"], candles([1, 2, 3, 5, 6, 7]), "1h", {})
    assert out["@4h"].tolist() == [-1, -1, -1, -1, -1, 0]
    assert out["close@4h"].tolist() == [6.0]
    assert out["open@4h"].tolist() == [3.5]


def test_a_single_bucket_is_first_and_dropped_unless_complete() -> None:
    """One 1h bar at 01:00 closes the 00:00 2h bucket but the data starts inside it: the
    bar is not complete, so no 2h bar (as on all the bars, where it is the first bucket)."""
    out = frame_inputs(["2h"], candles([1]), "1h", {})
    assert out["@2h"].tolist() == [-1]
    assert out["close@2h"].tolist() == []
    complete = frame_inputs(["2h"], candles([0, 1]), "1h", {})
    assert complete["@2h"].tolist() == [-1, 0]
