"""Which market a data file's name or symbol column states (D020 on a run's --data)."""

from __future__ import annotations

import pytest

from peakdsl.data.names import other_market, pairs_in


@pytest.mark.parametrize(("name", "pairs"), [
    ("binance_ETHUSDT_1h.csv", {("ETH", "USDT")}),
    ("binance_ETH_BTC_5m.csv", {("ETH", "BTC")}),
    ("coinbase_BTCUSD_1h.csv", {("BTC", "USD")}),
    ("btc-eur.parquet", {("BTC", "EUR")}),
    ("ftx_BTCPERP_1m.csv", set()),
    ("binance_BTC_1m_with_gaps.csv", set()),
    ("prices.csv", set()),
])
def test_pairs_a_name_spells(name: str, pairs: set[tuple[str, str]]) -> None:
    assert pairs_in(name) == pairs


def test_only_a_different_stated_market_is_reported() -> None:
    assert other_market("BTC/USDT", "binance_BTCUSDT_1h.csv") is None
    assert other_market("BTC/USDT", "binance_ETHUSDT_1h.csv") == "ETH/USDT"
    assert other_market("BTC/USDT", "coinbase_BTCUSD_1h.csv") == "BTC/USD"
    assert other_market("BTC/USDT:USDT", "btc_usdt_perp.csv") is None
    assert other_market("BTC/EUR", "prices.csv") is None  # says nothing: silence
    assert other_market("BTC/EUR", "prices.csv", ["ETH/EUR"]) == "ETH/EUR"
    assert other_market("BTC/EUR", "eth_eur.csv", ["BTCEUR"]) is None  # the column wins
    assert other_market("PEPE/BTC", "PEPEBTC.csv") is None  # the spec's codes count as known
