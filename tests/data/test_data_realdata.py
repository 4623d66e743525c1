"""Real exchange candles from ../shared/data (never copied into the project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from peakdsl.data.candles import CandleSet
from peakdsl.data.importer import import_file
from peakdsl.data.quality import assess

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"real candles not present ({SHARED})"),
]


def test_binance_btcusdt_1h() -> None:
    result = import_file(SHARED / "binance_BTCUSDT_1h.csv", "BTC/USDT", "1h")
    assert result.ok, result.diagnostics[:3]
    c = result.candles
    assert isinstance(c, CandleSet)
    assert c.bars == 52_106 and result.gaps == 28 and result.duplicates == 0
    assert {d.code for d in result.diagnostics} == {"D009"}
    assert str(c.frame.index[0]) == "2017-08-17 04:00:00+00:00"
    report = assess(c)
    assert len(report.gaps) == 28 and report.bars == 52_106


def test_binance_btc_1m_with_gaps() -> None:
    result = import_file(SHARED / "binance_BTC_1m_with_gaps.csv", "BTC/USDT")
    assert result.ok
    assert result.candles is not None and result.candles.timeframe == "1m"
    assert result.candles.bars == 13_681 and result.gaps == 538
    (summary,) = result.diagnostics  # one D009 for all the gaps (issue 14: 50 + a count)
    assert summary.message.startswith("538 gaps, 717 missing bars; the largest: 7 missing ")
    assert len(result.gap_details) == 538  # each at its line, for --verbose
    assert all(d.code == "D009" for d in result.gap_details)


def test_every_shared_file_imports_cleanly_of_errors() -> None:
    for path in sorted(SHARED.glob("*.csv")):
        result = import_file(path, "BTC/USDT")
        assert result.ok, (path.name, result.diagnostics[:3])
