"""The loopback exchange set up for live tests: credentials, markets, a fixed clock.

A module of its own (not conftest) so that test files can import these names.
"""

from __future__ import annotations

from peakdsl.live.loopback import LoopbackExchange, MarketSpec

API_KEY, SECRET = "loopback-key-0001", "loopback-secret-0001"
CLIENT_TIMEOUT_MS = 500
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
MARKETS = (MarketSpec("BTC", "USDT"),
           MarketSpec("ETH", "USDT", tick="0.1", min_price="0.1", step="0.0001", min_qty="0.001",
                      min_notional="10", notional_filter="MIN_NOTIONAL"))


class Clock:
    """The exchange's clock: starts at START_MS and moves 1 ms per reading."""

    def __init__(self) -> None:
        self.now = START_MS

    def __call__(self) -> int:
        self.now += 1
        return self.now


def new_exchange() -> LoopbackExchange:
    return LoopbackExchange(markets=MARKETS, balances={"USDT": "10000", "BTC": "1"},
                            prices={"BTC/USDT": "50000", "ETH/USDT": "2500"},
                            api_key=API_KEY, secret=SECRET, clock=Clock())
