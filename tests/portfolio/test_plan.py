"""Resolving a portfolio: nested weights, per-component params, and the data checks
(D015 no common window, D016 bars off the grid, D017 real and synthetic mixed, D009 holes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peakdsl.api import compile_spec
from peakdsl.compile import models as m
from peakdsl.data import DataError
from peakdsl.data.cache import Meta, load_cached, store
from peakdsl.data.candles import CandleSet
from peakdsl.portfolio.plan import PortfolioPlan, resolve_portfolio

PAIR = """portfolio btc_pair {
    capital 10000 USDT
    component ma_crossover weight 60% with { fast = 15 }
    component macd weight 40%
}
"""
NESTED = """portfolio book {
    capital 10000 EUR
    component multi_style_moderate weight 80%
    component ma_trend_btc_conservative weight 20%
}
"""


def cached(root: Path, market: str, timeframe: str, start: str, bars: int,
           shift: str = "0min") -> None:
    """Real-looking (not synthetic) candles in the project's cache."""
    freq = {"1h": "h", "4h": "4h"}[timeframe]
    index = pd.date_range(start, periods=bars, freq=freq, tz="UTC") + pd.Timedelta(shift)
    close = 100 + np.sin(np.arange(bars) / 7) * 5
    frame = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                          "volume": 1.0}, index=index)
    store(root, CandleSet.of(frame, market, timeframe, "test"),
          Meta(market, timeframe, "import", detail="test"))


def plan(project: Path, name: str, text: str) -> PortfolioPlan:
    path = project / "specs" / "portfolios" / f"{name}.peak"
    path.write_text(text)
    artifact = compile_spec(str(path), project)
    assert isinstance(artifact, m.PortfolioArtifact)
    return resolve_portfolio(str(path), artifact, project)


def codes(exc: pytest.ExceptionInfo[DataError]) -> list[str]:
    return [d.code for d in exc.value.diagnostics]


def test_nested_weights_multiply_and_overrides_apply(project: Path) -> None:
    book = plan(project, "book", NESTED)
    assert [(c.label, c.weight) for c in book.components] == [
        ("multi_style_moderate/rsi_reversion_btc_moderate", 0.2),
        ("multi_style_moderate/ma_trend_btc_moderate", 0.2),
        ("multi_style_moderate/trend_following_eth_moderate", 0.4),
        ("ma_trend_btc_conservative", 0.2)]
    assert book.components[1].params["fast"] == 10.0
    assert all(c.candles.synthetic for c in book.components)
    assert book.capital == 10_000.0


def test_the_window_is_what_every_component_covers(project: Path) -> None:
    cached(project, "BTC/USDT", "1h", "2024-01-01", 2000)
    cached(project, "BTC/USDT", "4h", "2024-01-10", 500)
    pair = plan(project, "btc_pair", PAIR)
    assert pair.start == pd.Timestamp("2024-01-10", tz="UTC")
    assert pair.end == pd.Timestamp("2024-03-24T08:00", tz="UTC")  # 2,000 hours after Jan 1
    first, second = pair.components
    assert first.params["fast"] == 15.0 and first.candles.bars == 2000 - 9 * 24
    assert second.candles.frame.index[-1] + pd.Timedelta("4h") <= pair.end
    assert not pair.warnings


def test_disjoint_data_is_d015(project: Path) -> None:
    cached(project, "BTC/USDT", "1h", "2024-01-01", 100)
    cached(project, "BTC/USDT", "4h", "2025-01-01", 100)
    with pytest.raises(DataError) as exc:
        plan(project, "btc_pair", PAIR)
    assert codes(exc) == ["D015"]
    assert "`ma_crossover` (BTC/USDT 1h)" in exc.value.diagnostics[0].message


def test_bars_off_the_grid_are_d016(project: Path) -> None:
    cached(project, "BTC/USDT", "1h", "2024-01-01", 500, shift="30min")
    cached(project, "BTC/USDT", "4h", "2024-01-01", 100)
    with pytest.raises(DataError) as exc:
        plan(project, "btc_pair", PAIR)
    assert codes(exc) == ["D016"] and "`ma_crossover`" in exc.value.diagnostics[0].message


def test_real_and_synthetic_data_never_mix(project: Path) -> None:
    """4h candles only: macd (4h) runs on them, ma_crossover (1h) cannot be made from them
    (a 4h bar does not split into hours) and would fall back to the demo: refused."""
    cached(project, "BTC/USDT", "4h", "2024-01-01", 500)
    with pytest.raises(DataError) as exc:
        plan(project, "btc_pair", PAIR)
    assert codes(exc) == ["D017"]
    message = exc.value.diagnostics[0]
    assert "`ma_crossover` has no data for BTC/USDT 1h" in message.message
    assert "--market BTC/USDT --timeframe 1h" in (message.help or "")


def test_a_4h_component_runs_on_cached_hours(project: Path) -> None:
    cached(project, "BTC/USDT", "1h", "2024-01-01", 2000)
    pair = plan(project, "btc_pair", PAIR)
    sources = {c.label: c.candles.source for c in pair.components}
    assert "resampled from 1h" in sources["macd"]


def test_a_hole_is_a_warning_naming_the_component(project: Path) -> None:
    cached(project, "BTC/USDT", "1h", "2024-01-01", 2000)
    cached(project, "BTC/USDT", "4h", "2024-01-01", 500)
    full = load_cached(project, "BTC/USDT", "1h")
    assert full is not None
    holed = full.frame.drop(full.frame.index[100:105])
    store(project, CandleSet.of(holed, "BTC/USDT", "1h", "test"),
          Meta("BTC/USDT", "1h", "import", detail="test"))
    pair = plan(project, "btc_pair", PAIR)
    assert [w.code for w in pair.warnings] == ["D009"]
    assert "`ma_crossover`: 5 1h bar(s) missing" in pair.warnings[0].message


def test_a_component_reading_volume_on_candles_without_it_is_d022(project: Path) -> None:
    (project / "specs" / "strategies" / "volume_push.peak").write_text(
        "strategy volume_push {\n    market BTC/USDT\n    timeframe 1h\n"
        "    entry long when volume > sma(volume, 20)\n    exit long when close < open\n}\n")
    index = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    close = 100 + np.sin(np.arange(300) / 7) * 5
    frame = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                          "volume": np.nan}, index=index)
    store(project, CandleSet.of(frame, "BTC/USDT", "1h", "test"),
          Meta("BTC/USDT", "1h", "import", detail="test"))
    with pytest.raises(DataError) as exc:
        plan(project, "pushed", "portfolio pushed {\n    capital 10000 USDT\n"
             "    component volume_push weight 100%\n}\n")
    assert codes(exc) == ["D022"]
    assert "`volume_push` reads `volume`" in exc.value.diagnostics[0].message
