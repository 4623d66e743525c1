"""The loopback exchange, driven by the real ccxt binance client (and raw HTTP where ccxt would
correct the request first). Every request goes to 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from loopback_setup import API_KEY, SECRET, START_MS, new_exchange

from peakdsl.live.loopback import INTERVAL_MS, Fault, LoopbackExchange, _Server

D = Decimal


def test_binds_loopback_only_and_stops(exchange: LoopbackExchange) -> None:
    assert exchange.url.startswith("http://127.0.0.1:")
    server = exchange._server
    assert server is not None and server.server_address[0] == "127.0.0.1"
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        _Server(("0.0.0.0", 0), object, exchange, None)  # type: ignore[arg-type]
    port = server.server_address[1]
    exchange.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = exchange.url


def test_context_manager_serves_and_stops() -> None:
    with new_exchange() as ex:
        with urllib.request.urlopen(ex.url + "/api/v3/time", timeout=2) as answer:
            assert json.load(answer) == {"serverTime": START_MS + 1}
        port = int(ex.url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


CALLS: list[tuple[str, Callable[[Any], Any], dict[str, int]]] = [
    ("load_markets", lambda c: c.load_markets(True), {"GET /api/v3/exchangeInfo": 1}),
    ("fetch_balance", lambda c: c.fetch_balance(), {"GET /api/v3/account": 1}),
    ("create_order", lambda c: c.create_order("BTC/USDT", "market", "buy", 0.01),
     {"POST /api/v3/order": 1}),
    ("fetch_order", lambda c: c.fetch_order("1", "BTC/USDT"), {"GET /api/v3/order": 1}),
    ("fetch_order by client id",
     lambda c: c.fetch_order(None, "BTC/USDT", {"clientOrderId": "resting-1"}),
     {"GET /api/v3/order": 1}),
    ("cancel_order", lambda c: c.cancel_order(None, "BTC/USDT", {"clientOrderId": "resting-1"}),
     {"DELETE /api/v3/order": 1}),
    ("fetch_open_orders", lambda c: c.fetch_open_orders("BTC/USDT"),
     {"GET /api/v3/openOrders": 1}),
    ("fetch_open_orders, all markets", lambda c: c.fetch_open_orders(),
     {"GET /api/v3/openOrders": 1}),
    ("fetch_closed_orders", lambda c: c.fetch_closed_orders("BTC/USDT"),
     {"GET /api/v3/allOrders": 1}),
    ("fetch_my_trades", lambda c: c.fetch_my_trades("BTC/USDT"), {"GET /api/v3/myTrades": 1}),
    ("fetch_ohlcv", lambda c: c.fetch_ohlcv("BTC/USDT", "1h", START_MS, 2),
     {"GET /api/v3/klines": 1}),
    ("fetch_ticker", lambda c: c.fetch_ticker("BTC/USDT"), {"GET /api/v3/ticker/24hr": 1}),
    ("fetch_time", lambda c: c.fetch_time(), {"GET /api/v3/time": 1}),
]


@pytest.mark.parametrize(("name", "call", "expected"), CALLS, ids=[c[0] for c in CALLS])
def test_each_ccxt_call_uses_exactly_these_endpoints(exchange: LoopbackExchange, client: Any,
                                                     name: str, call: Callable[[Any], Any],
                                                     expected: dict[str, int]) -> None:
    client.load_markets()
    client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "fill-1"})
    client.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"clientOrderId": "resting-1"})
    exchange.reset_counts()
    call(client)
    assert exchange.calls == Counter(expected)


def test_markets_carry_the_filters(client: Any) -> None:
    markets = client.load_markets()
    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    btc, eth = markets["BTC/USDT"], markets["ETH/USDT"]
    assert btc["spot"] and btc["precision"]["amount"] == 0.00001
    assert btc["precision"]["price"] == 0.01
    assert btc["limits"]["amount"]["min"] == 0.00001 and btc["limits"]["cost"]["min"] == 5.0
    assert eth["precision"]["amount"] == 0.0001 and eth["limits"]["amount"]["min"] == 0.001
    assert eth["limits"]["cost"]["min"] == 10.0  # from a MIN_NOTIONAL filter


def test_market_buy_fills_at_the_last_price_with_the_fee_in_the_base(
        exchange: LoopbackExchange, client: Any) -> None:
    order = client.create_order("BTC/USDT", "market", "buy", 0.01, None,
                                {"clientOrderId": "buy-1"})
    assert (order["status"], order["filled"], order["average"]) == ("closed", 0.01, 50000.0)
    assert order["clientOrderId"] == "buy-1"
    assert exchange.balance("USDT") == (D("9500"), D("0"))
    assert exchange.balance("BTC") == (D("1.00999"), D("0"))  # 0.01 - 0.1 % fee
    (trade,) = exchange.trades()
    assert (trade.price, trade.qty, trade.commission, trade.commission_asset) == (
        D("50000"), D("0.01"), D("0.00001"), "BTC")


def test_market_sell_pays_the_fee_in_the_quote(exchange: LoopbackExchange, client: Any) -> None:
    client.create_order("BTC/USDT", "market", "sell", 0.1)
    assert exchange.balance("BTC") == (D("0.9"), D("0"))
    assert exchange.balance("USDT") == (D("14995"), D("0"))  # 5000 - 5 fee


def test_limit_order_rests_until_the_price_crosses(exchange: LoopbackExchange,
                                                   client: Any) -> None:
    order = client.create_order("BTC/USDT", "limit", "buy", 0.02, 49000, {"clientOrderId": "l1"})
    assert order["status"] == "open" and order["filled"] == 0
    assert exchange.balance("USDT") == (D("9020"), D("980"))
    assert [o["clientOrderId"] for o in client.fetch_open_orders("BTC/USDT")] == ["l1"]
    exchange.set_price("BTC/USDT", "49500")  # not yet
    assert client.fetch_order(None, "BTC/USDT", {"clientOrderId": "l1"})["filled"] == 0
    exchange.set_price("BTC/USDT", "48000")  # crosses: fills at its limit, as a maker
    done = client.fetch_order(None, "BTC/USDT", {"clientOrderId": "l1"})
    assert (done["status"], done["filled"], done["average"]) == ("closed", 0.02, 49000.0)
    assert exchange.balance("USDT") == (D("9020"), D("0"))
    assert exchange.trades()[-1].maker
    assert client.fetch_open_orders("BTC/USDT") == []


def test_marketable_limit_fills_at_the_better_last_price(exchange: LoopbackExchange,
                                                         client: Any) -> None:
    order = client.create_order("BTC/USDT", "limit", "buy", 0.01, 51000)
    assert (order["status"], order["average"]) == ("closed", 50000.0)
    assert exchange.balance("USDT") == (D("9500"), D("0"))  # the reserve above 50000 returns


def test_cancel_releases_the_reserve_and_a_second_cancel_is_unknown(
        exchange: LoopbackExchange, client: Any) -> None:
    client.create_order("BTC/USDT", "limit", "sell", 0.5, 60000, {"clientOrderId": "s1"})
    assert exchange.balance("BTC") == (D("0.5"), D("0.5"))
    canceled = client.cancel_order(None, "BTC/USDT", {"clientOrderId": "s1"})
    assert canceled["status"] == "canceled" and canceled["info"]["origClientOrderId"] == "s1"
    assert exchange.balance("BTC") == (D("1"), D("0"))
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order(None, "BTC/USDT", {"clientOrderId": "s1"})


def test_duplicate_client_id_only_while_the_first_is_open(exchange: LoopbackExchange,
                                                          client: Any) -> None:
    client.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"clientOrderId": "same"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        client.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"clientOrderId": "same"})
    client.cancel_order(None, "BTC/USDT", {"clientOrderId": "same"})
    again = client.create_order("BTC/USDT", "market", "buy", 0.01, None,
                                {"clientOrderId": "same"})  # Binance: unique among open only
    assert again["status"] == "closed" and len(exchange.orders()) == 2
    latest = client.fetch_order(None, "BTC/USDT", {"clientOrderId": "same"})
    assert latest["id"] == "2"


REJECTIONS = [
    ("insufficient balance", ("BTC/USDT", "market", "buy", 1.0, None), ccxt.InsufficientFunds,
     "insufficient balance"),
    ("LOT_SIZE: above the maximum", ("BTC/USDT", "market", "sell", 9001.0, None),
     ccxt.InvalidOrder, "LOT_SIZE"),
    ("PRICE_FILTER: above the maximum", ("BTC/USDT", "limit", "buy", 0.01, 2_000_000.0),
     ccxt.InvalidOrder, "PRICE_FILTER"),
    ("NOTIONAL: below the minimum", ("BTC/USDT", "market", "buy", 0.00005, None),
     ccxt.BadRequest, "Filter failure: NOTIONAL"),
    ("MIN_NOTIONAL: below the minimum", ("ETH/USDT", "market", "buy", 0.003, None),
     ccxt.BadRequest, "Filter failure: MIN_NOTIONAL"),
]


@pytest.mark.parametrize(("name", "args", "error", "text"), REJECTIONS,
                         ids=[r[0] for r in REJECTIONS])
def test_rejections_leave_no_order_and_no_reserve(exchange: LoopbackExchange, client: Any,
                                                  name: str, args: tuple[Any, ...],
                                                  error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        client.create_order(*args)
    assert exchange.orders() == [] and exchange.calls["POST /api/v3/order"] == 1
    assert exchange.balance("USDT") == (D("10000"), D("0"))
    assert exchange.balance("BTC") == (D("1"), D("0"))


def test_lot_size_step_is_checked_on_the_wire(exchange: LoopbackExchange) -> None:
    """ccxt truncates amounts to the step before sending: a raw request shows the filter."""
    reply = _signed(exchange, "POST", "/api/v3/order", "symbol=BTCUSDT&side=BUY&type=MARKET"
                    "&quantity=0.000015")
    assert reply == (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"})


def _signed(exchange: LoopbackExchange, method: str, path: str, query: str,
            key: str = API_KEY) -> tuple[int, Any]:
    signature = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    body = f"{query}&signature={signature}".encode()
    request = urllib.request.Request(exchange.url + path, data=body, method=method,
                                     headers={"X-MBX-APIKEY": key})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_signed_requests_check_the_key_and_the_signature(exchange: LoopbackExchange,
                                                         client_at: Callable[..., Any]) -> None:
    assert _signed(exchange, "GET", "/api/v3/account", "timestamp=1")[0] == 200
    assert _signed(exchange, "GET", "/api/v3/account", "timestamp=1", key="other") == (
        401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        client_at(exchange.url, key="wrong-key-000").fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        client_at(exchange.url, secret="wrong-secret-000").fetch_balance()
    exchange.reset_counts()
    with pytest.raises(ccxt.AuthenticationError):  # ccxt refuses before sending
        client_at(exchange.url, key=None, secret=None).fetch_balance()
    assert exchange.calls == Counter({"GET /api/v3/exchangeInfo": 1})  # markets, no account


FAULTS = [  # kind (+ options) → the ccxt error the client raises
    (Fault("GET /api/v3/account", "timeout", hold_s=2.0), ccxt.RequestTimeout),
    (Fault("GET /api/v3/account", "disconnect"), ccxt.NetworkError),
    (Fault("GET /api/v3/account", "rate_limited", retry_after=3), ccxt.DDoSProtection),
    (Fault("GET /api/v3/account", "server_error", status=500), ccxt.ExchangeNotAvailable),
    (Fault("GET /api/v3/account", "server_error", status=502), ccxt.ExchangeNotAvailable),
    (Fault("GET /api/v3/account", "server_error", status=503), ccxt.ExchangeNotAvailable),
    (Fault("GET /api/v3/account", "server_error", status=504), ccxt.RequestTimeout),
    (Fault("GET /api/v3/account", "maintenance"), ccxt.OnMaintenance),
    (Fault("GET /api/v3/account", "insufficient_funds"), ccxt.InsufficientFunds),
    (Fault("GET /api/v3/account", "duplicate_client_id"), ccxt.InvalidOrder),
    (Fault("GET /api/v3/account", "auth_error"), ccxt.AuthenticationError),
]


@pytest.mark.parametrize(("fault", "error"), FAULTS,
                         ids=[f"{f.kind}-{f.status}" for f, _ in FAULTS])
def test_each_fault_raises_its_ccxt_error_once(exchange: LoopbackExchange, client: Any,
                                               fault: Fault, error: type[Exception]) -> None:
    exchange.faults.add(fault)
    with pytest.raises(error) as raised:
        client.fetch_balance()
    assert type(raised.value) is error  # exactly this class, not a subclass
    assert client.fetch_balance()["USDT"]["free"] == 10000.0  # used up: the next one works
    assert exchange.calls == Counter({"GET /api/v3/account": 2})
    assert exchange.faults.pending() == 0


def test_rate_limit_answer_carries_retry_after(exchange: LoopbackExchange, client: Any) -> None:
    exchange.faults.add(Fault("GET /api/v3/account", "rate_limited", retry_after=7))
    with pytest.raises(ccxt.DDoSProtection):
        client.fetch_balance()
    assert client.last_response_headers["Retry-After"] == "7"


def test_auth_error_after_a_successful_signed_call_is_ddos_protection_in_ccxt(
        exchange: LoopbackExchange, client: Any) -> None:
    """ccxt reads Binance -2015 on an authenticated session as a temporary ban: the venue's
    classification must still treat it as refused credentials (test_venue)."""
    client.fetch_balance()
    exchange.faults.add(Fault("GET /api/v3/account", "auth_error"))
    with pytest.raises(ccxt.DDoSProtection, match="-2015"):
        client.fetch_balance()


def test_faults_are_consumed_in_order_and_match_their_endpoint(exchange: LoopbackExchange,
                                                               client: Any) -> None:
    exchange.faults.add(Fault("GET /api/v3/account", "maintenance", times=2))
    exchange.faults.add(Fault("*", "server_error", status=502))
    assert exchange.faults.pending() == 3
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.fetch_time()  # "*" matches any request
    with pytest.raises(ccxt.OnMaintenance):
        client.fetch_balance()
    with pytest.raises(ccxt.OnMaintenance):
        client.fetch_balance()
    assert client.fetch_balance()["BTC"]["total"] == 1.0
    assert exchange.faults.pending() == 0


def test_star_fault_is_taken_by_the_first_request(exchange: LoopbackExchange,
                                                  client: Any) -> None:
    exchange.faults.add(Fault("*", "server_error", status=502))
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.fetch_time()
    client.fetch_time()
    assert exchange.calls == Counter({"GET /api/v3/time": 2})


@pytest.mark.parametrize("bad", [{"kind": "boom"}, {"times": 0}, {"status": 404},
                                 {"parts": 0}, {"after_requests": 0}, {"hold_s": -1.0}])
def test_fault_rejects_nonsense(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"endpoint": "*", "kind": "timeout", **bad}
    with pytest.raises(ValueError, match="invalid fault"):
        Fault(**fields)


def test_timeout_after_fill_fills_but_does_not_answer(exchange: LoopbackExchange,
                                                      client: Any) -> None:
    exchange.faults.add(Fault("POST /api/v3/order", "timeout_after_fill", hold_s=2.0))
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "taf"})
    (order,) = exchange.orders()
    assert (order.client_id, order.status, order.executed) == ("taf", "FILLED", D("0.01"))
    assert client.fetch_order(None, "BTC/USDT", {"clientOrderId": "taf"})["status"] == "closed"


def test_timeout_does_not_process_the_request(exchange: LoopbackExchange, client: Any) -> None:
    exchange.faults.add(Fault("POST /api/v3/order", "timeout", hold_s=2.0))
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "lost"})
    assert exchange.orders() == []
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order(None, "BTC/USDT", {"clientOrderId": "lost"})


def test_partial_fill_releases_one_part_per_later_request(exchange: LoopbackExchange,
                                                          client: Any) -> None:
    exchange.faults.add(Fault("POST /api/v3/order", "partial_fill", parts=3))
    first = client.create_order("BTC/USDT", "market", "buy", 0.03, None, {"clientOrderId": "p"})
    assert (first["status"], first["filled"]) == ("open", 0.01)
    seen = [client.fetch_order(None, "BTC/USDT", {"clientOrderId": "p"})["filled"]
            for _ in range(3)]
    assert seen == [0.02, 0.03, 0.03]
    trades = client.fetch_my_trades("BTC/USDT")
    assert [t["amount"] for t in trades] == [0.01, 0.01, 0.01]
    assert sum(D(str(t["amount"])) for t in trades) == D("0.03")
    assert exchange.balance("BTC") == (D("1.02997"), D("0"))
    assert exchange.balance("USDT") == (D("8500"), D("0"))


def test_partial_fill_splits_on_the_step(exchange: LoopbackExchange, client: Any) -> None:
    exchange.faults.add(Fault("POST /api/v3/order", "partial_fill", parts=3))
    client.create_order("BTC/USDT", "market", "buy", 0.01001)
    client.fetch_time()
    client.fetch_time()
    assert [t.qty for t in exchange.trades()] == [D("0.00333"), D("0.00333"), D("0.00335")]


def test_fill_later_fills_on_the_kth_later_request(exchange: LoopbackExchange,
                                                   client: Any) -> None:
    exchange.faults.add(Fault("POST /api/v3/order", "fill_later", after_requests=2))
    first = client.create_order("BTC/USDT", "market", "sell", 0.1, None, {"clientOrderId": "f"})
    assert (first["status"], first["filled"]) == ("open", 0.0)
    assert exchange.balance("BTC") == (D("0.9"), D("0.1"))  # reserved, not yet sold
    statuses = [client.fetch_order(None, "BTC/USDT", {"clientOrderId": "f"})["status"]
                for _ in range(2)]
    assert statuses == ["open", "closed"]
    assert exchange.balance("BTC") == (D("0.9"), D("0"))


def test_cancel_stops_pending_fills(exchange: LoopbackExchange, client: Any) -> None:
    exchange.faults.add(Fault("POST /api/v3/order", "partial_fill", parts=4))
    client.create_order("BTC/USDT", "market", "buy", 0.04, None, {"clientOrderId": "c"})
    canceled = client.cancel_order(None, "BTC/USDT", {"clientOrderId": "c"})  # part 2 first
    assert (canceled["status"], canceled["filled"]) == ("canceled", 0.02)
    client.fetch_time()
    client.fetch_time()
    assert sum(t.qty for t in exchange.trades()) == D("0.02")
    assert exchange.balance("USDT") == (D("9000"), D("0"))


def test_klines_serve_the_set_candles(exchange: LoopbackExchange, client: Any) -> None:
    hour = INTERVAL_MS["1h"]
    rows = [[START_MS + i * hour, 100 + i, 102 + i, 99 + i, 101 + i, 5.0] for i in range(5)]
    exchange.set_candles("BTC/USDT", "1h", rows)
    got = client.fetch_ohlcv("BTC/USDT", "1h", START_MS + hour, 2)
    assert got == [[float(v) if k else int(v) for k, v in enumerate(r)] for r in rows[1:3]]
    assert client.fetch_ohlcv("BTC/USDT", "1h", None, 2) == [
        [float(v) if k else int(v) for k, v in enumerate(r)] for r in rows[3:]]
    with pytest.raises(ValueError, match="unknown interval"):
        exchange.set_candles("BTC/USDT", "7m", rows)


def test_my_trades_pages_from_an_id(exchange: LoopbackExchange, client: Any) -> None:
    for _ in range(5):
        client.create_order("BTC/USDT", "market", "buy", 0.001)
    page = client.fetch_my_trades("BTC/USDT", None, 2, {"fromId": 2})
    assert [t["id"] for t in page] == ["2", "3"]
    assert [t["id"] for t in client.fetch_my_trades("BTC/USDT", None, 2)] == ["4", "5"]
    closed = client.fetch_closed_orders("BTC/USDT")
    assert [o["id"] for o in closed] == ["1", "2", "3", "4", "5"]


def test_orders_placed_by_someone_else_are_visible(exchange: LoopbackExchange,
                                                   client: Any) -> None:
    exchange.place("BTC/USDT", "SELL", "LIMIT", "0.2", "70000", client_id="web-1")
    assert exchange.calls == Counter()
    (order,) = client.fetch_open_orders("BTC/USDT")
    assert (order["clientOrderId"], order["amount"], order["price"]) == ("web-1", 0.2, 70000.0)


def test_the_request_log_holds_no_key_and_no_signature(exchange: LoopbackExchange,
                                                       client: Any) -> None:
    client.fetch_balance()
    client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "logged"})
    log = exchange.requests
    assert [r.endpoint for r in log] == ["GET /api/v3/account", "POST /api/v3/order"]
    assert log[1].param("newClientOrderId") == "logged" and log[1].param("quantity") == "0.01"
    assert all(r.param("signature") is None for r in log)
    assert API_KEY not in repr(log)


def test_unknown_endpoint_is_a_404(exchange: LoopbackExchange) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(exchange.url + "/sapi/v1/capital/config/getall", timeout=2)
    assert raised.value.code == 404
    assert exchange.calls == Counter({"GET /sapi/v1/capital/config/getall": 1})


def test_same_requests_same_state() -> None:
    """Determinism: the same scenario twice gives byte-identical orders and trades."""
    def scenario() -> str:
        with new_exchange() as ex:
            ex.faults.add(Fault("POST /api/v3/order", "partial_fill", parts=2))
            for quantity in ("0.01", "0.02"):
                _signed(ex, "POST", "/api/v3/order",
                        f"symbol=BTCUSDT&side=BUY&type=MARKET&quantity={quantity}")
            _signed(ex, "GET", "/api/v3/myTrades", "symbol=BTCUSDT")
            return repr((ex.orders(), ex.trades(), ex.balance("BTC"), ex.balance("USDT")))
    assert scenario() == scenario()


def test_malformed_numbers_get_binances_answer(exchange: LoopbackExchange) -> None:
    status, body = _signed(exchange, "GET", "/api/v3/myTrades", "symbol=BTCUSDT&fromId=x")
    assert (status, body["code"]) == (400, -1100) and "'fromId'" in body["msg"]
    status, body = _signed(exchange, "POST", "/api/v3/order",
                           "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=-1")
    assert (status, body["code"]) == (400, -1100) and "'quantity'" in body["msg"]
    status, body = _signed(exchange, "POST", "/api/v3/order", "symbol=BTCUSDT&side=BUY&type=STOP")
    assert (status, body) == (400, {"code": -1116, "msg": "Invalid orderType."})
    assert exchange.orders() == []


ANSWERS = [  # every error answer the loopback gives, as Binance sends it
    (400, {"code": -2010, "msg": "Duplicate order sent."}, ccxt.InvalidOrder),
    (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."},
     ccxt.InsufficientFunds),
    (400, {"code": -1013, "msg": "Filter failure: NOTIONAL"}, ccxt.BadRequest),
    (400, {"code": -1013, "msg": "Filter failure: MIN_NOTIONAL"}, ccxt.BadRequest),
    (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"}, ccxt.InvalidOrder),
    (400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}, ccxt.InvalidOrder),
    (400, {"code": -2013, "msg": "Order does not exist."}, ccxt.OrderNotFound),
    (400, {"code": -2011, "msg": "Unknown order sent."}, ccxt.OrderNotFound),
    (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
     ccxt.AuthenticationError),
    (401, {"code": -2014, "msg": "API-key format invalid."}, ccxt.AuthenticationError),
    (400, {"code": -1022, "msg": "Signature for this request is not valid."},
     ccxt.AuthenticationError),
    (503, {"code": 1, "msg": "System is under maintenance."}, ccxt.OnMaintenance),
    (429, {"code": -1003, "msg": "Too many requests"}, ccxt.DDoSProtection),
    (400, {"code": -1100, "msg": "Illegal characters found in parameter 'quantity'."},
     ccxt.BadRequest),
    (400, {"code": -1102, "msg": "Mandatory parameter 'price' was not sent."}, ccxt.BadRequest),
    (400, {"code": -1116, "msg": "Invalid orderType."}, ccxt.BadRequest),
    (400, {"code": -1117, "msg": "Invalid side."}, ccxt.BadRequest),
    (400, {"code": -1121, "msg": "Invalid symbol."}, ccxt.BadSymbol),
    (400, {"code": -1120, "msg": "Invalid interval."}, ccxt.BadRequest),
]


@pytest.fixture(scope="module")
def offline_binance() -> Any:
    """A ccxt client that never sends anything: only its error mapping is used."""
    return ccxt.binance()


@pytest.mark.parametrize("url", ["https://api.binance.com/api/v3/order",
                                 "http://127.0.0.1:1/api/v3/order"])
@pytest.mark.parametrize(("status", "body", "error"), ANSWERS,
                         ids=[f"{b['code']}-{b['msg'][:24]}" for _, b, _ in ANSWERS])
def test_ccxt_maps_each_answer_alike_on_binance_and_on_the_loopback(
        offline_binance: Any, url: str, status: int, body: dict[str, Any],
        error: type[Exception]) -> None:
    """ccxt picks some exception tables by hostname: the loopback's answers must raise the
    same classes there as on api.binance.com, or its tests would prove nothing."""
    text = json.dumps(body, separators=(",", ":"))
    with pytest.raises(ccxt.BaseError) as raised:
        offline_binance.handle_errors(status, "", url, "POST", {}, text, body, {}, "")
        offline_binance.handle_http_status_code(status, "", url, "POST", text)
    assert type(raised.value) is error
