"""A loopback HTTP server that answers Binance's spot klines endpoint from a generator.

``GET /api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=…&limit=…`` returns Binance's own
format (arrays of open time, prices as strings, volume, close time, …). Faults can be
scheduled per request number: ``429`` (rate limited) or ``drop`` (the connection is closed
without a response — a network error for the client).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

HOUR_MS = 3_600_000
EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00Z: the first bar the fake exchange has


def candle(ts: int) -> list[Any]:
    """A deterministic, valid Binance kline for open time ``ts``."""
    i = (ts - EPOCH_MS) // HOUR_MS
    base = 40_000 + 500 * math.sin(i / 17) + 3 * i
    o, c = base, base + 40 * math.sin(i / 3)
    h, lo = max(o, c) + 25 + (i % 7), min(o, c) - 20 - (i % 5)
    vol = 10 + (i % 13)
    return [ts, f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}", f"{c:.2f}", f"{vol:.5f}",
            ts + HOUR_MS - 1, f"{vol * c:.4f}", 100 + i % 50, "1.0", "40000.0", "0"]


@dataclass
class FakeBinance:
    """The exchange's state: which bars exist, the request log and scheduled faults."""

    last_ms: int  # bars exist for EPOCH_MS <= t <= last_ms (hourly)
    missing: set[int] = field(default_factory=set)  # open times the exchange never had
    faults: dict[int, str] = field(default_factory=dict)  # request number -> "429" / "drop"
    log: list[dict[str, str]] = field(default_factory=list)  # every klines request's query
    lock: threading.Lock = field(default_factory=threading.Lock)

    def klines(self, start: int, limit: int) -> list[list[Any]]:
        first = max(EPOCH_MS, start + (-(start - EPOCH_MS)) % HOUR_MS)
        out: list[list[Any]] = []
        t = first
        while t <= self.last_ms and len(out) < limit:
            if t not in self.missing:
                out.append(candle(t))
            t += HOUR_MS
        return out

    def expected(self, start: int, end: int) -> list[list[Any]]:
        return [candle(t) for t in range(start, end, HOUR_MS)
                if EPOCH_MS <= t <= self.last_ms and t not in self.missing]


def _handler(state: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path != "/api/v3/klines":
                self._send(404, {"code": -1, "msg": f"no route {url.path}"})
                return
            with state.lock:
                state.log.append(query)
                fault = state.faults.get(len(state.log))
            if fault == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if fault == "429":
                self._send(429, {"code": -1003, "msg": "Too many requests"})
                return
            start = int(query.get("startTime", EPOCH_MS))
            limit = min(int(query.get("limit", 500)), 1000)
            self._send(200, state.klines(start, limit))

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serve(state: FakeBinance) -> Iterator[str]:
    """Run the fake exchange on 127.0.0.1 (a free port); yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


BTC_USDT_MARKET = {
    "id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC",
    "quoteId": "USDT", "type": "spot", "spot": True, "margin": False, "swap": False,
    "future": False, "option": False, "contract": False, "linear": None, "inverse": None,
    "active": True, "settle": None, "settleId": None, "contractSize": None, "expiry": None,
    "expiryDatetime": None, "strike": None, "optionType": None,
    "precision": {"amount": 0.00001, "price": 0.01}, "limits": {}, "info": {},
}


def binance_at(base_url: str) -> Any:
    """Real ccxt binance, every API URL pointed at the loopback server, markets preset."""
    import ccxt

    exchange = ccxt.binance({"enableRateLimit": True, "timeout": 5000})
    for key, url in list(exchange.urls["api"].items()):
        if isinstance(url, str):
            rest = url.split("://", 1)[1].split("/", 1)
            exchange.urls["api"][key] = base_url + "/" + (rest[1] if len(rest) > 1 else "")
    exchange.set_markets([BTC_USDT_MARKET])
    exchange.rateLimit = 1  # ms between requests: keep the test fast, but throttled
    exchange.session.trust_env = False  # never route 127.0.0.1 through a proxy
    return exchange
