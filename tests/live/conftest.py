"""Fixtures for live-trading tests: a running loopback exchange and clients pointed at it.

Everything here talks to 127.0.0.1 only; clients time out after 0.5 s, so no test can hang
on the fake exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alert_setup import dead_url, hook  # noqa: F401  (fixtures for every live test)
from loopback_setup import API_KEY, CLIENT_TIMEOUT_MS, SECRET, new_exchange
from pydantic import SecretStr

from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.venue import Venue, make_client


@pytest.fixture
def exchange() -> Iterator[LoopbackExchange]:
    with new_exchange() as ex:
        yield ex


@pytest.fixture
def client_at() -> Callable[..., Any]:
    """``client_at(url, key=…, secret=…)``: a real ccxt binance client on ``url``."""
    def build(url: str, key: str | None = API_KEY, secret: str | None = SECRET,
              timeout_ms: int = CLIENT_TIMEOUT_MS) -> Any:
        return make_client("binance", base_url=url,
                           api_key=SecretStr(key) if key is not None else None,
                           secret=SecretStr(secret) if secret is not None else None,
                           timeout_ms=timeout_ms)
    return build


@pytest.fixture
def client(exchange: LoopbackExchange, client_at: Callable[..., Any]) -> Any:
    """A client with markets loaded; the exchange's call counts start at zero after it."""
    built = client_at(exchange.url)
    built.load_markets()
    exchange.reset_counts()
    return built


@pytest.fixture
def slept() -> list[float]:
    """What the venue asked to sleep (the injected sleep records instead of waiting)."""
    return []


@pytest.fixture
def venue(exchange: LoopbackExchange, client: Any, slept: list[float]) -> Venue:
    """A venue over ``client``: 3 read attempts, 3 resolve queries, sleeps recorded."""
    return Venue(client, read_attempts=3, backoff_s=0.5, max_backoff_s=30.0,
                 resolve_attempts=3, resolve_delay_s=1.0, sleep=slept.append)
