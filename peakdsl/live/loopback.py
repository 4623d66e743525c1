"""A fake Binance spot exchange on 127.0.0.1, with scheduled faults, for the real ccxt client.

It speaks enough of Binance's spot REST API (v3) for ``ccxt.binance`` to load markets, read
balances, create, fetch and cancel orders, list open and past orders and trades, and fetch
candles, with Binance's own JSON shapes and error answers (``{"code": -2010, "msg": …}``), so
the error classes the execution adapter sees are the ones ccxt raises against the real venue.
Signed endpoints check the ``X-MBX-APIKEY`` header and the HMAC-SHA256 signature.

Why not pytest-httpserver: this server is also used at run time by drills and by ``peak live``
tests in subprocesses, so it must not depend on pytest; and its faults need per-request control
that a canned-response server does not give: holding a response past the client's timeout,
dropping the connection *after* the order was filled, releasing partial fills on later
requests. It is stdlib only (``ThreadingHTTPServer`` in a daemon thread) and binds nothing but
127.0.0.1: the host is not a parameter.

Determinism: nothing depends on wall time except the timestamps the clock reports (inject
``clock`` to fix them). Delayed fills are released by *request number*, not by time: a fill
scheduled "K requests later" is applied at the start of the K-th request after the order, so
a test sees exactly the same sequence on every run. One lock serialises all state changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

from .loopback_http import HOST, LoopbackService

API_KEY_HEADER = "X-MBX-APIKEY"
EIGHT = Decimal("0.00000001")

FaultKind = Literal["timeout", "disconnect", "timeout_after_fill", "rate_limited",
                    "server_error", "maintenance", "partial_fill", "fill_later",
                    "insufficient_funds", "duplicate_client_id", "auth_error"]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

INSUFFICIENT = "Account has insufficient balance for requested action."
DUPLICATE = "Duplicate order sent."
MAINTENANCE = "System is under maintenance."
BAD_KEY = "Invalid API-key, IP, or permissions for action."

INTERVAL_MS = {  # Binance's kline intervals
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
    "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000,
    "1w": 604_800_000,
}
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
NEVER = 2**62  # an end time after every timestamp


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault: the next ``times`` requests to ``endpoint`` misbehave as ``kind``.

    ``endpoint`` is ``"METHOD /path"`` (``"POST /api/v3/order"``) or ``"*"`` for any request.
    ``timeout``: the request is not processed; the answer is held ``hold_s`` seconds (longer
    than the client's timeout), then the connection is closed. ``disconnect``: not processed,
    the connection is closed at once. ``timeout_after_fill``: the request IS processed (an
    order is accepted and filled), then it is answered like ``timeout``. ``rate_limited``: 429
    with ``Retry-After: retry_after``. ``server_error``: ``status`` (500/502/503/504) with an
    HTML body. ``maintenance``: Binance's "System is under maintenance." (HTTP 503).
    ``partial_fill``: an order that can execute fills in ``parts`` parts, the first at once and
    one more at the start of each later request. ``fill_later``: it fills only at the start of
    the ``after_requests``-th later request (these two shape the order a ``POST /api/v3/order``
    creates, when it can execute at once; elsewhere they are used up without effect).
    ``insufficient_funds``, ``duplicate_client_id``,
    ``auth_error``: Binance's -2010 and -2015 answers, the request not processed.
    """

    endpoint: str
    kind: FaultKind
    times: int = 1
    status: int = 503
    retry_after: int = 1
    parts: int = 2
    after_requests: int = 1
    hold_s: float = 30.0

    def __post_init__(self) -> None:
        problems = {
            "kind": self.kind not in FAULT_KINDS,
            "times": self.times < 1,
            "status": not 500 <= self.status <= 599,
            "retry_after": self.retry_after < 0,
            "parts": self.parts < 1,
            "after_requests": self.after_requests < 1,
            "hold_s": self.hold_s < 0,
        }
        bad = [name for name, wrong in problems.items() if wrong]
        if bad:
            raise ValueError(f"invalid fault {self!r}: check {', '.join(bad)}")


class Faults:
    """The schedule: faults are consumed first come, first served, per matching request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[list[Any]] = []  # [fault, remaining]

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append([fault, fault.times])

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pending(self) -> int:
        """How many faulty answers are still scheduled."""
        with self._lock:
            return sum(int(entry[1]) for entry in self._queue)

    def take(self, endpoint: str) -> Fault | None:
        """The fault for this request, if one is due; it is used up."""
        with self._lock:
            for entry in self._queue:
                fault: Fault = entry[0]
                if fault.endpoint in (endpoint, "*"):
                    entry[1] -= 1
                    if entry[1] == 0:
                        self._queue.remove(entry)
                    return fault
        return None


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """A spot market and its filters (PRICE_FILTER, LOT_SIZE, NOTIONAL or MIN_NOTIONAL)."""

    base: str
    quote: str
    tick: str = "0.01"
    step: str = "0.00001"
    min_qty: str = "0.00001"
    max_qty: str = "9000"
    min_notional: str = "5"
    min_price: str = "0.01"
    max_price: str = "1000000"
    notional_filter: Literal["NOTIONAL", "MIN_NOTIONAL"] = "NOTIONAL"

    @property
    def id(self) -> str:
        return self.base + self.quote

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server saw it; the signature is left out."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...]

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)


@dataclass
class Order:
    """An order on the fake exchange (mutable: fills and cancels change it)."""

    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    qty: Decimal
    price: Decimal
    lock_price: Decimal
    time: int
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    status: str = "NEW"
    update_time: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    maker: bool


@dataclass(frozen=True, slots=True)
class _Scheduled:
    release_at: int
    order_id: int
    qty: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class Reply:
    """What the HTTP layer sends: a status and JSON (or text), or nothing (``drop``)."""

    status: int = 200
    payload: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    hold_s: float = 0.0
    drop: bool = False


class BinanceError(Exception):
    """An error answer in Binance's shape."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.reply = Reply(status, {"code": code, "msg": msg})


@dataclass
class Balance:
    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)


Params = dict[str, str]


def _dec(value: object, name: str) -> Decimal:
    """A positive decimal parameter, or Binance's -1100 illegal-parameter answer."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number <= 0:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return number


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(EIGHT, rounding=ROUND_DOWN):f}"


def _mandatory(params: Params, name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was "
                           "empty/null, or malformed.")
    return value


def _int(params: Params, name: str, default: int) -> int:
    """An integer parameter (ids, times, limits), or Binance's -1100 answer."""
    text = params.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'; "
                           "legal range is '^[0-9]{1,20}$'.") from None


def _on_step(value: Decimal, low: Decimal, step: Decimal) -> bool:
    return (value - low) % step == 0


class Book:
    """The exchange's state and matching; every method runs under the server's lock."""

    def __init__(self, markets: Iterable[MarketSpec], balances: Mapping[str, object],
                 prices: Mapping[str, object], fee_rate: str, clock: Callable[[], int]) -> None:
        self.markets = {m.id: m for m in markets}
        self.balances: dict[str, Balance] = {
            asset: Balance(Decimal(str(amount))) for asset, amount in balances.items()}
        self.prices = {self.market_id(sym): Decimal(str(p)) for sym, p in prices.items()}
        self.fee_rate = Decimal(fee_rate)
        self.clock = clock
        self.orders: dict[int, Order] = {}
        self.trades: list[Trade] = []
        self.scheduled: list[_Scheduled] = []
        self.candles: dict[tuple[str, str], dict[int, tuple[float, ...]]] = {}
        self.request_no = 0
        self._auto_ids = 0

    def market_id(self, symbol: str) -> str:
        return symbol.replace("/", "")

    def balance(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    # --- public endpoints -------------------------------------------------------------
    def ping(self, params: Params, fault: Fault | None) -> Any:
        return {}

    def server_time(self, params: Params, fault: Fault | None) -> Any:
        return {"serverTime": self.clock()}

    def exchange_info(self, params: Params, fault: Fault | None) -> Any:
        return {"timezone": "UTC", "serverTime": self.clock(), "rateLimits": [],
                "exchangeFilters": [], "symbols": [_symbol_info(m) for m in
                                                   self.markets.values()]}

    def ticker_price(self, params: Params, fault: Fault | None) -> Any:
        rows = [{"symbol": s, "price": _fmt(p)} for s, p in self._priced(params)]
        return rows[0] if "symbol" in params else rows

    def book_ticker(self, params: Params, fault: Fault | None) -> Any:
        rows = [{"symbol": s, "bidPrice": _fmt(p), "bidQty": "1.00000000", "askPrice": _fmt(p),
                 "askQty": "1.00000000"} for s, p in self._priced(params)]
        return rows[0] if "symbol" in params else rows

    def ticker_24hr(self, params: Params, fault: Fault | None) -> Any:
        now = self.clock()
        rows = [{"symbol": s, "lastPrice": _fmt(p), "openPrice": _fmt(p), "highPrice": _fmt(p),
                 "lowPrice": _fmt(p), "bidPrice": _fmt(p), "askPrice": _fmt(p),
                 "volume": "0.00000000", "quoteVolume": "0.00000000",
                 "openTime": now - 86_400_000, "closeTime": now, "count": 0}
                for s, p in self._priced(params)]
        return rows[0] if "symbol" in params else rows

    def _priced(self, params: Params) -> list[tuple[str, Decimal]]:
        if "symbol" in params:
            market = self._market(params)
            return [(market.id, self._last(market.id))]
        return sorted(self.prices.items())

    def klines(self, params: Params, fault: Fault | None) -> Any:
        market = self._market(params)
        interval = _mandatory(params, "interval")
        if interval not in INTERVAL_MS:
            raise BinanceError(400, -1120, "Invalid interval.")
        start, end = _int(params, "startTime", 0), _int(params, "endTime", NEVER)
        rows = [r for r in sorted(self.candles.get((market.id, interval), {}).items())
                if start <= r[0] <= end]
        rows = list(_limited(rows, params, "startTime"))
        step = INTERVAL_MS[interval]
        return [[t, *(f"{v:.8f}" for v in row[:5]), t + step - 1, "0", 0, "0", "0", "0"]
                for t, row in rows]

    # --- signed endpoints -------------------------------------------------------------
    def account(self, params: Params, fault: Fault | None) -> Any:
        balances = [{"asset": a, "free": _fmt(b.free), "locked": _fmt(b.locked)}
                    for a, b in sorted(self.balances.items())]
        return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
                "sellerCommission": 0, "canTrade": True, "canWithdraw": False,
                "canDeposit": False, "updateTime": self.clock(), "accountType": "SPOT",
                "balances": balances, "permissions": ["SPOT"]}

    def new_order(self, params: Params, fault: Fault | None) -> Any:
        order = self.place(params, fault)
        body = self._order_json(order)
        body["transactTime"] = order.time
        body["fills"] = [{"price": _fmt(t.price), "qty": _fmt(t.qty),
                          "commission": _fmt(t.commission),
                          "commissionAsset": t.commission_asset, "tradeId": t.trade_id}
                         for t in self.trades if t.order_id == order.order_id]
        return body

    def get_order(self, params: Params, fault: Fault | None) -> Any:
        return self._order_json(self._find(params))

    def cancel_order(self, params: Params, fault: Fault | None) -> Any:
        try:
            order = self._find(params)
        except BinanceError:
            raise BinanceError(400, -2011, "Unknown order sent.") from None
        if not order.is_open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        self.cancel(order)
        body = self._order_json(order)
        body["origClientOrderId"] = order.client_id
        body["clientOrderId"] = params.get("newClientOrderId") or self._auto_client_id()
        return body

    def open_orders(self, params: Params, fault: Fault | None) -> Any:
        wanted = self._market(params).id if "symbol" in params else None
        return [self._order_json(o) for o in self.orders.values()
                if o.is_open and wanted in (None, o.symbol)]

    def all_orders(self, params: Params, fault: Fault | None) -> Any:
        market = self._market(params)
        first, start = _int(params, "orderId", 0), _int(params, "startTime", 0)
        end = _int(params, "endTime", NEVER)
        rows = [o for o in self.orders.values() if o.symbol == market.id
                and o.order_id >= first and start <= o.time <= end]
        return [self._order_json(o) for o in _limited(rows, params, "orderId", "startTime")]

    def my_trades(self, params: Params, fault: Fault | None) -> Any:
        market = self._market(params)
        order, first = _int(params, "orderId", -1), _int(params, "fromId", 0)
        start, end = _int(params, "startTime", 0), _int(params, "endTime", NEVER)
        rows = [t for t in self.trades if t.symbol == market.id
                and order in (-1, t.order_id) and t.trade_id >= first
                and start <= t.time <= end]
        return [_trade_json(t) for t in _limited(rows, params, "fromId", "startTime")]

    # --- matching ---------------------------------------------------------------------
    def place(self, params: Params, fault: Fault | None) -> Order:
        """Validate, reserve the balance, open the order and execute what can execute."""
        market = self._market(params)
        side = _choice(params, "side", ("BUY", "SELL"))
        kind = _choice(params, "type", ("MARKET", "LIMIT"))
        client_id = params.get("newClientOrderId") or self._auto_client_id()
        if any(o.is_open and o.client_id == client_id for o in self.orders.values()):
            raise BinanceError(400, -2010, DUPLICATE)
        last = self._last(market.id)
        qty, price = self._sizes(market, kind, params, last)
        lock_price = price if kind == "LIMIT" else last
        self._reserve(market, side, qty * lock_price if side == "BUY" else qty)
        now = self.clock()
        order = Order(len(self.orders) + 1, client_id, market.id, side, kind, qty,
                      price if kind == "LIMIT" else Decimal(0), lock_price, now, update_time=now)
        self.orders[order.order_id] = order
        if kind == "MARKET" or _crosses(order, last):
            self._schedule(order, last, fault)
        return order

    def _sizes(self, market: MarketSpec, kind: str, params: Params,
               last: Decimal) -> tuple[Decimal, Decimal]:
        price = _dec(_mandatory(params, "price"), "price") if kind == "LIMIT" else last
        if kind == "MARKET" and "quoteOrderQty" in params:
            step = Decimal(market.step)
            qty = (_dec(params["quoteOrderQty"], "quoteOrderQty") / last // step) * step
        else:
            qty = _dec(_mandatory(params, "quantity"), "quantity")
        failed = next((name for name, check in FILTERS
                       if not check(market, kind, qty, price)), None)
        if failed is not None:
            name = market.notional_filter if failed == "NOTIONAL" else failed
            raise BinanceError(400, -1013, f"Filter failure: {name}")
        return qty, price

    def _reserve(self, market: MarketSpec, side: str, amount: Decimal) -> None:
        balance = self.balance(market.quote if side == "BUY" else market.base)
        if balance.free < amount:
            raise BinanceError(400, -2010, INSUFFICIENT)
        balance.free -= amount
        balance.locked += amount

    def _schedule(self, order: Order, price: Decimal, fault: Fault | None) -> None:
        """Fill now, or in parts on later requests (partial_fill), or later (fill_later)."""
        parts = fault.parts if fault is not None and fault.kind == "partial_fill" else 1
        delay = fault.after_requests if fault is not None and fault.kind == "fill_later" else 0
        step = Decimal(self.markets[order.symbol].step)
        part = (order.qty / parts // step) * step
        sizes = [part] * (parts - 1) if part > 0 else []
        sizes.append(order.qty - sum(sizes, Decimal(0)))
        for i, qty in enumerate(sizes):
            self.scheduled.append(_Scheduled(self.request_no + delay + i, order.order_id, qty,
                                             price))
        self.release()

    def release(self) -> None:
        """Apply every scheduled fill that is due at the current request number."""
        due = [s for s in self.scheduled if s.release_at <= self.request_no]
        self.scheduled = [s for s in self.scheduled if s.release_at > self.request_no]
        for item in due:
            self._fill(self.orders[item.order_id], item.qty, item.price, maker=False)

    def _fill(self, order: Order, qty: Decimal, price: Decimal, maker: bool) -> None:
        market = self.markets[order.symbol]
        buy = order.side == "BUY"
        commission = ((qty if buy else qty * price) * self.fee_rate).quantize(EIGHT)
        base, quote = self.balance(market.base), self.balance(market.quote)
        if buy:
            quote.locked -= qty * order.lock_price
            quote.free += qty * (order.lock_price - price)
            base.free += qty - commission
        else:
            base.locked -= qty
            quote.free += qty * price - commission
        order.executed += qty
        order.quote += qty * price
        order.status = "FILLED" if order.executed == order.qty else "PARTIALLY_FILLED"
        order.update_time = self.clock()
        self.trades.append(Trade(len(self.trades) + 1, order.order_id, order.symbol, order.side,
                                 price, qty, commission, market.base if buy else market.quote,
                                 order.update_time, maker))

    def cancel(self, order: Order) -> None:
        market = self.markets[order.symbol]
        remaining = order.qty - order.executed
        buy = order.side == "BUY"
        balance = self.balance(market.quote if buy else market.base)
        amount = remaining * order.lock_price if buy else remaining
        balance.locked -= amount
        balance.free += amount
        order.status = "CANCELED"
        order.update_time = self.clock()
        self.scheduled = [s for s in self.scheduled if s.order_id != order.order_id]

    def set_price(self, symbol: str, price: Decimal) -> None:
        """A new last price; resting LIMIT orders it crosses fill at their own price."""
        market_id = self.market_id(symbol)
        self.prices[market_id] = price
        for order in self.orders.values():
            pending = any(s.order_id == order.order_id for s in self.scheduled)
            if (order.symbol == market_id and order.type == "LIMIT" and order.is_open
                    and not pending and _crosses(order, price)):
                self._fill(order, order.qty - order.executed, order.price, maker=True)

    # --- lookups ----------------------------------------------------------------------
    def _market(self, params: Params) -> MarketSpec:
        market = self.markets.get(_mandatory(params, "symbol"))
        if market is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    def _last(self, market_id: str) -> Decimal:
        if market_id not in self.prices:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return self.prices[market_id]

    def _find(self, params: Params) -> Order:
        market = self._market(params)
        client_id, order_id = params.get("origClientOrderId"), params.get("orderId")
        if client_id is None and order_id is None:
            raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be "
                               "sent, but both were empty/null!")
        found = [o for o in self.orders.values() if o.symbol == market.id
                 and (client_id is None or o.client_id == client_id)
                 and (order_id is None or str(o.order_id) == order_id)]
        if not found:
            raise BinanceError(400, -2013, "Order does not exist.")
        return found[-1]  # a client id may be reused once its order is closed: the latest

    def _auto_client_id(self) -> str:
        self._auto_ids += 1
        return f"loopback{self._auto_ids:08d}"

    def _order_json(self, order: Order) -> dict[str, Any]:
        return {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                "clientOrderId": order.client_id, "price": _fmt(order.price),
                "origQty": _fmt(order.qty), "executedQty": _fmt(order.executed),
                "cummulativeQuoteQty": _fmt(order.quote), "status": order.status,
                "timeInForce": "GTC", "type": order.type, "side": order.side,
                "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": order.time,
                "updateTime": order.update_time, "isWorking": True,
                "workingTime": order.time, "origQuoteOrderQty": "0.00000000",
                "selfTradePreventionMode": "NONE"}


def _crosses(order: Order, price: Decimal) -> bool:
    return price <= order.price if order.side == "BUY" else price >= order.price


def _choice(params: Params, name: str, allowed: tuple[str, ...]) -> str:
    value = _mandatory(params, name).upper()
    if value not in allowed:
        raise BinanceError(400, -1116 if name == "type" else -1117,
                           f"Invalid {'orderType' if name == 'type' else name}.")
    return value


def _price_ok(m: MarketSpec, kind: str, qty: Decimal, price: Decimal) -> bool:
    if kind != "LIMIT":
        return True
    low, high = Decimal(m.min_price), Decimal(m.max_price)
    return low <= price <= high and _on_step(price, low, Decimal(m.tick))


def _lot_ok(m: MarketSpec, kind: str, qty: Decimal, price: Decimal) -> bool:
    low, high = Decimal(m.min_qty), Decimal(m.max_qty)
    return low <= qty <= high and _on_step(qty, low, Decimal(m.step))


def _notional_ok(m: MarketSpec, kind: str, qty: Decimal, price: Decimal) -> bool:
    return qty * price >= Decimal(m.min_notional)


FILTERS: tuple[tuple[str, Callable[[MarketSpec, str, Decimal, Decimal], bool]], ...] = (
    ("PRICE_FILTER", _price_ok), ("LOT_SIZE", _lot_ok), ("NOTIONAL", _notional_ok))


def _limited(rows: Sequence[Any], params: Params, *from_keys: str) -> Sequence[Any]:
    """Binance pages: the first ``limit`` from a starting point, else the latest ``limit``."""
    limit = min(_int(params, "limit", 500), 1000)
    return rows[:limit] if any(k in params for k in from_keys) else rows[-limit:]


def _symbol_info(m: MarketSpec) -> dict[str, Any]:
    notional: dict[str, Any] = {"filterType": m.notional_filter, "minNotional": m.min_notional}
    notional.update({"applyMinToMarket": True, "maxNotional": "9000000",
                     "applyMaxToMarket": False, "avgPriceMins": 5}
                    if m.notional_filter == "NOTIONAL" else
                    {"applyToMarket": True, "avgPriceMins": 5})
    return {"symbol": m.id, "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8,
            "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": False,
            "ocoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
            "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "permissions": [], "permissionSets": [["SPOT"]],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": m.min_price,
                 "maxPrice": m.max_price, "tickSize": m.tick},
                {"filterType": "LOT_SIZE", "minQty": m.min_qty, "maxQty": m.max_qty,
                 "stepSize": m.step},
                notional]}


def _trade_json(t: Trade) -> dict[str, Any]:
    return {"symbol": t.symbol, "id": t.trade_id, "orderId": t.order_id, "orderListId": -1,
            "price": _fmt(t.price), "qty": _fmt(t.qty), "quoteQty": _fmt(t.price * t.qty),
            "commission": _fmt(t.commission), "commissionAsset": t.commission_asset,
            "time": t.time, "isBuyer": t.side == "BUY", "isMaker": t.maker,
            "isBestMatch": True}


Handler = Callable[[Book, Params, Fault | None], Any]
ROUTES: dict[str, tuple[bool, Handler]] = {  # endpoint → (signed, handler)
    "GET /api/v3/ping": (False, Book.ping),
    "GET /api/v3/time": (False, Book.server_time),
    "GET /api/v3/exchangeInfo": (False, Book.exchange_info),
    "GET /api/v3/klines": (False, Book.klines),
    "GET /api/v3/ticker/price": (False, Book.ticker_price),
    "GET /api/v3/ticker/bookTicker": (False, Book.book_ticker),
    "GET /api/v3/ticker/24hr": (False, Book.ticker_24hr),
    "GET /api/v3/account": (True, Book.account),
    "POST /api/v3/order": (True, Book.new_order),
    "GET /api/v3/order": (True, Book.get_order),
    "DELETE /api/v3/order": (True, Book.cancel_order),
    "GET /api/v3/openOrders": (True, Book.open_orders),
    "GET /api/v3/allOrders": (True, Book.all_orders),
    "GET /api/v3/myTrades": (True, Book.my_trades),
}


def _held(f: Fault) -> Reply:
    return Reply(0, hold_s=f.hold_s, drop=True)


BEFORE: dict[str, Callable[[Fault], Reply]] = {  # faults answered instead of processing
    "timeout": _held,
    "disconnect": lambda f: Reply(0, drop=True),
    "rate_limited": lambda f: Reply(429, {"code": -1003, "msg": "Too many requests; current "
                                          "limit is 6000 request weight per 1 MINUTE."},
                                    (("Retry-After", str(f.retry_after)),)),
    "server_error": lambda f: Reply(f.status, f"<html><body><h1>{f.status}</h1></body></html>"),
    "maintenance": lambda f: Reply(503, {"code": 1, "msg": MAINTENANCE}),
    "insufficient_funds": lambda f: Reply(400, {"code": -2010, "msg": INSUFFICIENT}),
    "duplicate_client_id": lambda f: Reply(400, {"code": -2010, "msg": DUPLICATE}),
    "auth_error": lambda f: Reply(401, {"code": -2015, "msg": BAD_KEY}),
}
AFTER: dict[str, Callable[[Fault], Reply]] = {  # faults that process, then do not answer
    "timeout_after_fill": _held,
}


@dataclass(frozen=True, slots=True)
class Incoming:
    method: str
    path: str
    query: str
    body: str
    api_key: str | None


def _params(incoming: Incoming) -> Params:
    pairs = parse_qsl(incoming.query, keep_blank_values=True)
    pairs += parse_qsl(incoming.body, keep_blank_values=True)
    return dict(pairs)


def _signed_payload(incoming: Incoming) -> tuple[str, str | None]:
    """The signed text (query string then body, signature removed) and the signature."""
    parts = [p for p in (incoming.query, incoming.body) if p]
    pieces = "&".join(parts).split("&")
    signature = next((p[len("signature="):] for p in pieces if p.startswith("signature=")),
                     None)
    return "&".join(p for p in pieces if not p.startswith("signature=")), signature


class LoopbackExchange(LoopbackService):
    """The fake exchange: ``with LoopbackExchange() as ex:`` serves on ``ex.url``.

    Tests drive it from Python: ``ex.faults.add(Fault(...))``, ``ex.set_price``,
    ``ex.set_candles``, ``ex.place`` (an order placed by someone else, e.g. to test adoption);
    and read it back: ``ex.calls[endpoint]``, ``ex.requests``, ``ex.orders()``,
    ``ex.trades()``, ``ex.balance(asset)``.
    """

    def __init__(self, *, markets: Iterable[MarketSpec] = (MarketSpec("BTC", "USDT"),),
                 balances: Mapping[str, object] | None = None,
                 prices: Mapping[str, object] | None = None, fee_rate: str = "0.001",
                 api_key: str = "loopback-key", secret: str = "loopback-secret",
                 clock: Callable[[], int] | None = None) -> None:
        self.book = Book(markets, {"USDT": "10000"} if balances is None else balances,
                         {"BTC/USDT": "50000"} if prices is None else prices, fee_rate,
                         clock or (lambda: int(time.time() * 1000)))
        self.faults = Faults()
        self._api_key, self._secret = api_key, secret
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._requests: list[RecordedRequest] = []
        super().__init__("loopback exchange", lambda address, stopping: _Server(
            address, _RequestHandler, self, stopping))

    @property
    def url(self) -> str:
        return self.origin

    # --- what tests read --------------------------------------------------------------
    @property
    def calls(self) -> Counter[str]:
        """Requests per endpoint (``"POST /api/v3/order"``), faulty ones included."""
        with self._lock:
            return Counter(self._calls)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset_counts(self) -> None:
        with self._lock:
            self._calls.clear()
            self._requests.clear()

    def orders(self) -> list[Order]:
        with self._lock:
            return [Order(**vars(o)) for o in self.book.orders.values()]

    def trades(self) -> list[Trade]:
        with self._lock:
            return list(self.book.trades)

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of ``asset``."""
        with self._lock:
            b = self.book.balances.get(asset, Balance())
            return b.free, b.locked

    # --- what tests set ---------------------------------------------------------------
    def set_price(self, symbol: str, price: object) -> None:
        with self._lock:
            self.book.set_price(symbol, Decimal(str(price)))

    def set_balance(self, asset: str, free: object) -> None:
        with self._lock:
            self.book.balance(asset).free = Decimal(str(free))

    def set_candles(self, symbol: str, interval: str, rows: Iterable[Sequence[float]]) -> None:
        """Candles ``[open_ms, open, high, low, close, volume]`` served by ``klines``."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {interval!r}")
        with self._lock:
            table = self.book.candles.setdefault((self.book.market_id(symbol), interval), {})
            table.update({int(r[0]): tuple(float(v) for v in r[1:6]) for r in rows})

    def place(self, symbol: str, side: str, type: str, quantity: str, price: str | None = None,
              client_id: str | None = None) -> Order:
        """An order placed by another client (the web UI, another bot): no request counted."""
        params = {"symbol": self.book.market_id(symbol), "side": side, "type": type,
                  "quantity": quantity, **({"price": price} if price else {}),
                  **({"newClientOrderId": client_id} if client_id else {})}
        with self._lock:
            return Order(**vars(self.book.place(params, None)))

    # --- serving ----------------------------------------------------------------------
    def handle(self, incoming: Incoming) -> Reply:
        """Count, record, release due fills, apply a due fault, else answer the route."""
        endpoint = f"{incoming.method} {incoming.path}"
        params = _params(incoming)
        with self._lock:
            self._calls[endpoint] += 1
            self._requests.append(RecordedRequest(incoming.method, incoming.path, tuple(
                (k, v) for k, v in params.items() if k != "signature")))
            self.book.request_no += 1
            self.book.release()
            fault = self.faults.take(endpoint)
            if fault is not None and fault.kind in BEFORE:
                return BEFORE[fault.kind](fault)
            reply = self._answer(endpoint, incoming, params, fault)
        if fault is not None and fault.kind in AFTER and reply.status == 200:
            return AFTER[fault.kind](fault)
        return reply

    def _answer(self, endpoint: str, incoming: Incoming, params: Params,
                fault: Fault | None) -> Reply:
        route = ROUTES.get(endpoint)
        if route is None:
            return Reply(404, "<html><body><h1>404 Not Found</h1></body></html>")
        signed, handler = route
        try:
            if signed:
                self._authenticate(incoming)
            return Reply(200, handler(self.book, params, fault))
        except BinanceError as exc:
            return exc.reply

    def _authenticate(self, incoming: Incoming) -> None:
        if not incoming.api_key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(incoming.api_key, self._api_key):
            raise BinanceError(401, -2015, BAD_KEY)
        payload, signature = _signed_payload(incoming)
        expected = hmac.new(self._secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if signature is None or not hmac.compare_digest(signature, expected):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 exchange: LoopbackExchange, stopping: threading.Event) -> None:
        if address[0] != HOST:
            raise ValueError("the loopback exchange binds 127.0.0.1 only")
        self.exchange, self.stopping = exchange, stopping
        super().__init__(address, handler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request list is the log (and it never holds a key or signature)."""

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        incoming = Incoming(method, split.path, split.query, body,
                            self.headers.get(API_KEY_HEADER))
        reply = self.server.exchange.handle(incoming)
        if reply.hold_s:
            self.server.stopping.wait(reply.hold_s)
        if reply.drop:
            self.close_connection = True
            return
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        text = isinstance(reply.payload, str)
        data = (reply.payload if text else json.dumps(reply.payload)).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/html" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

