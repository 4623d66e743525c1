"""The ccxt execution adapter against the loopback exchange (real ccxt, 127.0.0.1 only).

Issue 11 item 6: for each error the exchange can provoke, the exact number of HTTP calls and
the outcome; create_order sent exactly once and resolved by client id; partial fills;
duplicate ids; insufficient funds; precision; Retry-After.
"""

from __future__ import annotations

import inspect
import logging
import socket
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt
import pytest
from ccxt.base import errors as ccxt_errors
from loopback_setup import API_KEY, SECRET, START_MS
from pydantic import SecretStr

from peakdsl.live.gate import Refused
from peakdsl.live.loopback import Fault, LoopbackExchange
from peakdsl.live.venue import (
    ERROR_OUTCOMES,
    OrderRequest,
    Outcome,
    ResolveState,
    SubmitStatus,
    Venue,
    VenueError,
    classify,
    client_urls,
    make_client,
    resend_id,
)

D = Decimal
ORDER = "POST /api/v3/order"
ACCOUNT = "GET /api/v3/account"
LOOKUP = "GET /api/v3/order"


def buy(client_id: str, qty: str = "0.01", symbol: str = "BTC/USDT") -> OrderRequest:
    return OrderRequest(symbol, "buy", D(qty), client_id)


# --- the client never leaves 127.0.0.1 ---------------------------------------------------
@pytest.mark.parametrize("sandbox", [False, True])
def test_every_url_of_a_loopback_client_is_loopback(exchange: LoopbackExchange,
                                                    sandbox: bool) -> None:
    client = make_client("binance", base_url=exchange.url, sandbox=sandbox,
                         api_key=SecretStr(API_KEY), secret=SecretStr(SECRET), timeout_ms=500)
    urls = client_urls(client)
    assert len(urls) > 10
    assert {urlsplit(u).netloc for u in urls} == {urlsplit(exchange.url).netloc}
    assert all(key in client.urls for key in ("api", "test", "demo"))
    assert client.session.trust_env is False and client.enableRateLimit is False
    assert client.timeout == 500 and client.apiKey == API_KEY
    assert client.isSandboxModeEnabled is sandbox


def test_a_whole_session_connects_to_loopback_only(exchange: LoopbackExchange, venue: Venue,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        seen.append(address)
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    venue.load()
    venue.balances()
    venue.submit(buy("everything-1"))
    venue.resolve("BTC/USDT", "everything-1")
    venue.submit(OrderRequest("BTC/USDT", "buy", D("0.01"), "everything-2", "limit", D("40000")))
    venue.cancel("BTC/USDT", "everything-2")
    venue.open_orders()
    venue.trades_since("BTC/USDT", since_ms=0)
    venue.fetch_ohlcv("BTC/USDT", "1h", START_MS, 5)
    assert len(seen) == sum(exchange.calls.values()) == 8  # one connection per request
    assert {address[0] for address in seen} == {"127.0.0.1"}


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"exchange_id": "binanse"}, "E002"),
    ({"base_url": "ftp://127.0.0.1:9"}, "E003"),
    ({"base_url": "http://api.binance.com"}, "E003"),  # plain http off loopback
    ({"base_url": "https://example.com"}, "E004"),
    ({"base_url": "https://testnet.binance.vision"}, "E005"),  # testnet URL, live client
    ({"base_url": "https://api.binance.com", "sandbox": True}, "E005"),
    ({"exchange_id": "kraken", "sandbox": True}, "E006"),
])
def test_make_client_refuses_what_the_endpoint_rules_refuse(kwargs: dict[str, Any],
                                                            code: str) -> None:
    args: dict[str, Any] = {"exchange_id": "binance", **kwargs}
    with pytest.raises(Refused) as refused:
        make_client(args.pop("exchange_id"), **args)
    assert refused.value.codes == [code]


def test_credentials_never_reach_the_logs(exchange: LoopbackExchange, venue: Venue,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    venue.balances()
    venue.submit(buy("logged-1"))
    assert caplog.records  # urllib3 logged the requests at DEBUG …
    assert API_KEY not in caplog.text and SECRET not in caplog.text  # … but not the key
    assert inspect.signature(make_client).parameters["api_key"].annotation == \
        "SecretStr | None"


# --- classification ----------------------------------------------------------------------
EXPECTED_OUTCOMES = {  # every ccxt error class → what it means here (literal, on purpose)
    "AccountNotEnabled": "fatal", "AccountSuspended": "fatal", "AddressPending": "fatal",
    "ArgumentsRequired": "fatal", "AuthenticationError": "fatal", "BadRequest": "rejected",
    "BadResponse": "transient", "BadSymbol": "rejected", "BaseError": "fatal",
    "CancelPending": "transient", "ChecksumError": "transient",
    "ContractUnavailable": "rejected", "DDoSProtection": "backoff",
    "DuplicateOrderId": "resolve", "ExchangeClosedByUser": "fatal", "ExchangeError": "fatal",
    "ExchangeNotAvailable": "transient", "InsufficientFunds": "rejected",
    "InvalidAddress": "fatal", "InvalidNonce": "transient", "InvalidOrder": "rejected",
    "InvalidProxySettings": "fatal", "ManualInteractionNeeded": "fatal",
    "MarginModeAlreadySet": "rejected", "MarketClosed": "rejected",
    "NetworkError": "transient", "NoChange": "rejected", "NotSupported": "fatal",
    "NullResponse": "transient", "OnMaintenance": "transient", "OperationFailed": "transient",
    "OperationRejected": "rejected", "OrderImmediatelyFillable": "rejected",
    "OrderNotCached": "rejected", "OrderNotFillable": "rejected", "OrderNotFound": "not_found",
    "PermissionDenied": "fatal", "RateLimitExceeded": "backoff",
    "RequestTimeout": "transient", "RestrictedLocation": "fatal", "UnsubscribeError": "fatal",
}
CCXT_ERRORS = sorted(name for name, cls in inspect.getmembers(ccxt_errors, inspect.isclass)
                     if issubclass(cls, ccxt.BaseError))


def test_every_ccxt_error_class_has_a_decided_outcome() -> None:
    assert sorted(EXPECTED_OUTCOMES) == CCXT_ERRORS, "a new ccxt error class: decide its outcome"
    assert set(ERROR_OUTCOMES) <= set(CCXT_ERRORS)


@pytest.mark.parametrize("name", CCXT_ERRORS)
def test_each_ccxt_error_class_is_classified(name: str) -> None:
    error = getattr(ccxt_errors, name)("binance something went wrong")
    assert classify(error).value == EXPECTED_OUTCOMES[name]


@pytest.mark.parametrize(("error", "outcome"), [
    (ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'), "resolve"),
    (ccxt.DDoSProtection('binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions '
                         'for action."}'), "fatal"),
    (ccxt.DDoSProtection("binance 429 Too Many Requests"), "backoff"),
    (ValueError("not from ccxt"), "fatal"),
    (KeyError("RequestTimeout"), "fatal"),
])
def test_message_rules_and_foreign_exceptions(error: Exception, outcome: str) -> None:
    assert classify(error).value == outcome


# --- the error table against the exchange ------------------------------------------------
READS = [  # fault (times) → calls to GET /api/v3/account, what was slept, the result
    ("timeout", Fault(ACCOUNT, "timeout", hold_s=2.0), 2, [0.5], None),
    ("disconnect", Fault(ACCOUNT, "disconnect"), 2, [0.5], None),
    ("429", Fault(ACCOUNT, "rate_limited", retry_after=3), 2, [3.0], None),
    ("500", Fault(ACCOUNT, "server_error", status=500), 2, [0.5], None),
    ("502", Fault(ACCOUNT, "server_error", status=502), 2, [0.5], None),
    ("503", Fault(ACCOUNT, "server_error", status=503), 2, [0.5], None),
    ("504", Fault(ACCOUNT, "server_error", status=504), 2, [0.5], None),
    ("maintenance", Fault(ACCOUNT, "maintenance"), 2, [0.5], None),
    ("503 x2", Fault(ACCOUNT, "server_error", times=2), 3, [0.5, 1.0], None),
    ("503 x3", Fault(ACCOUNT, "server_error", times=3), 3, [0.5, 1.0], "E032"),
    ("429 x3", Fault(ACCOUNT, "rate_limited", times=3, retry_after=2), 3, [2.0, 2.0], "E032"),
    ("maintenance x5", Fault(ACCOUNT, "maintenance", times=5), 3, [0.5, 1.0], "E032"),
    ("auth", Fault(ACCOUNT, "auth_error"), 1, [], "E031"),
    ("insufficient", Fault(ACCOUNT, "insufficient_funds"), 1, [], "E035"),
    ("duplicate", Fault(ACCOUNT, "duplicate_client_id"), 1, [], "E035"),
]


@pytest.mark.parametrize(("name", "fault", "calls", "sleeps", "code"), READS,
                         ids=[r[0] for r in READS])
def test_read_error_table(exchange: LoopbackExchange, venue: Venue, slept: list[float],
                          name: str, fault: Fault, calls: int, sleeps: list[float],
                          code: str | None) -> None:
    exchange.faults.add(fault)
    if code is None:
        assert venue.balances()["USDT"].free == D("10000")
    else:
        with pytest.raises(VenueError) as failed:
            venue.balances()
        assert [d.code for d in failed.value.diagnostics] == [code]
    assert exchange.calls == Counter({ACCOUNT: calls})
    assert slept == sleeps


SUBMITS = [  # how create_order fails → ccxt class, outcome, status, code, orders left behind
    ("timeout", Fault(ORDER, "timeout", hold_s=2.0), "RequestTimeout", "transient", "unknown",
     None, 0),
    ("disconnect", Fault(ORDER, "disconnect"), "NetworkError", "transient", "unknown", None, 0),
    ("timeout after fill", Fault(ORDER, "timeout_after_fill", hold_s=2.0), "RequestTimeout",
     "transient", "unknown", None, 1),
    ("429", Fault(ORDER, "rate_limited"), "DDoSProtection", "backoff", "unknown", None, 0),
    ("500", Fault(ORDER, "server_error", status=500), "ExchangeNotAvailable", "transient",
     "unknown", None, 0),
    ("502", Fault(ORDER, "server_error", status=502), "ExchangeNotAvailable", "transient",
     "unknown", None, 0),
    ("503", Fault(ORDER, "server_error", status=503), "ExchangeNotAvailable", "transient",
     "unknown", None, 0),
    ("504", Fault(ORDER, "server_error", status=504), "RequestTimeout", "transient", "unknown",
     None, 0),
    ("maintenance", Fault(ORDER, "maintenance"), "OnMaintenance", "transient", "unknown", None,
     0),
    ("insufficient funds", Fault(ORDER, "insufficient_funds"), "InsufficientFunds", "rejected",
     "rejected", "E033", 0),
    ("duplicate client id", Fault(ORDER, "duplicate_client_id"), "InvalidOrder", "resolve",
     "unknown", None, 0),
    ("auth", Fault(ORDER, "auth_error"), "AuthenticationError", "fatal", "fatal", "E031", 0),
    ("below min notional", OrderRequest("BTC/USDT", "buy", D("0.00005"), "n1"), "BadRequest",
     "rejected", "rejected", "E033", 0),
    ("above max quantity", OrderRequest("BTC/USDT", "sell", D("9001"), "n2"), "InvalidOrder",
     "rejected", "rejected", "E033", 0),
    ("real insufficient balance", buy("n3", "1"), "InsufficientFunds", "rejected", "rejected",
     "E033", 0),
]


@pytest.mark.parametrize(("name", "trigger", "error", "outcome", "status", "code", "left"),
                         SUBMITS, ids=[s[0] for s in SUBMITS])
def test_submit_error_table(exchange: LoopbackExchange, venue: Venue, slept: list[float],
                            name: str, trigger: Fault | OrderRequest, error: str, outcome: str,
                            status: str, code: str | None, left: int) -> None:
    order = trigger if isinstance(trigger, OrderRequest) else buy("table-1")
    if isinstance(trigger, Fault):
        exchange.faults.add(trigger)
    result = venue.submit(order)
    assert (result.error, result.outcome, result.status) == (error, Outcome(outcome),
                                                             SubmitStatus(status))
    assert (result.diagnostic.code if result.diagnostic else None) == code
    assert exchange.calls == Counter({ORDER: 1})  # exactly once, never retried
    assert slept == [] and len(exchange.orders()) == left


# --- exactly once, then resolved by client id --------------------------------------------
def test_timeout_then_not_found_then_resend_with_a_new_id(exchange: LoopbackExchange,
                                                          venue: Venue,
                                                          slept: list[float]) -> None:
    exchange.faults.add(Fault(ORDER, "timeout", hold_s=2.0))
    first = venue.submit(buy("bar-7-leg-0"))
    assert first.status is SubmitStatus.UNKNOWN
    resolution = venue.resolve("BTC/USDT", "bar-7-leg-0")
    assert (resolution.state, resolution.queries) == (ResolveState.NOT_FOUND, 3)
    assert resolution.diagnostic is not None and resolution.diagnostic.code == "E034"
    assert slept == [1.0, 2.0]
    assert exchange.calls == Counter({ORDER: 1, LOOKUP: 3})
    again = venue.submit(buy(resend_id("bar-7-leg-0")))
    assert again.status is SubmitStatus.ACCEPTED and again.order is not None
    assert again.order.client_id == "bar-7-leg-0_r1" and again.order.filled == D("0.01")
    assert [o.client_id for o in exchange.orders()] == ["bar-7-leg-0_r1"]
    assert exchange.calls[ORDER] == 2


def test_timeout_after_fill_is_found_filled_and_adopted(exchange: LoopbackExchange,
                                                        venue: Venue) -> None:
    exchange.faults.add(Fault(ORDER, "timeout_after_fill", hold_s=2.0))
    assert venue.submit(buy("bar-8-leg-0")).status is SubmitStatus.UNKNOWN
    resolution = venue.resolve("BTC/USDT", "bar-8-leg-0")
    assert (resolution.state, resolution.queries) == (ResolveState.FOUND, 1)
    order = resolution.order
    assert order is not None
    assert (order.status, order.amount, order.filled, order.average) == (
        "closed", D("0.01"), D("0.01"), D("50000"))
    assert exchange.calls == Counter({ORDER: 1, LOOKUP: 1})
    assert len(exchange.orders()) == 1 and exchange.balance("BTC") == (D("1.00999"), D("0"))


RESOLVES = [  # faults on the lookup → state, queries, sleeps, code
    ("found after a 503", [Fault(LOOKUP, "server_error")], "found", 2, [1.0], None),
    ("found after a 429", [Fault(LOOKUP, "rate_limited", retry_after=4)], "found", 2, [4.0],
     None),
    ("errors only", [Fault(LOOKUP, "server_error", times=3)], "unresolved", 3, [1.0, 2.0],
     "E032"),
    ("auth", [Fault(LOOKUP, "auth_error")], "fatal", 1, [], "E031"),
]


@pytest.mark.parametrize(("name", "faults", "state", "queries", "sleeps", "code"), RESOLVES,
                         ids=[r[0] for r in RESOLVES])
def test_resolve_table(exchange: LoopbackExchange, venue: Venue, slept: list[float], name: str,
                       faults: list[Fault], state: str, queries: int, sleeps: list[float],
                       code: str | None) -> None:
    assert venue.submit(buy("resolve-me")).status is SubmitStatus.ACCEPTED
    for fault in faults:
        exchange.faults.add(fault)
    resolution = venue.resolve("BTC/USDT", "resolve-me")
    assert (resolution.state.value, resolution.queries) == (state, queries)
    assert (resolution.diagnostic.code if resolution.diagnostic else None) == code
    assert slept == sleeps and exchange.calls[LOOKUP] == queries


def test_not_found_needs_every_query_to_say_so(exchange: LoopbackExchange, venue: Venue,
                                               slept: list[float]) -> None:
    """Two "does not exist" and one error: still unknown, not rejected (fail closed)."""
    exchange.faults.add(Fault(LOOKUP, "server_error"))
    resolution = venue.resolve("BTC/USDT", "never-sent", attempts=3)
    assert resolution.state is ResolveState.UNRESOLVED
    assert resolution.diagnostic is not None and resolution.diagnostic.code == "E032"
    assert "failed 1 of 3 times" in resolution.diagnostic.message


def test_partial_fills_sum_to_the_order(exchange: LoopbackExchange, venue: Venue) -> None:
    exchange.faults.add(Fault(ORDER, "partial_fill", parts=3))
    accepted = venue.submit(buy("partial-1", "0.03"))
    assert accepted.order is not None
    assert (accepted.order.status, accepted.order.filled) == ("open", D("0.01"))
    seen = venue.resolve("BTC/USDT", "partial-1").order
    assert seen is not None and seen.filled == D("0.02")
    fills = venue.trades_since("BTC/USDT", since_ms=0)
    assert [f.qty for f in fills] == [D("0.01")] * 3
    assert sum(f.qty for f in fills) == D("0.03") and {f.order_id for f in fills} == {"1"}
    assert sum(f.fee for f in fills) == D("0.00003") and {f.fee_asset for f in fills} == {"BTC"}
    done = venue.resolve("BTC/USDT", "partial-1").order
    assert done is not None and (done.status, done.filled, done.average) == (
        "closed", D("0.03"), D("50000"))


def test_duplicate_client_id_resolves_to_the_existing_order(exchange: LoopbackExchange,
                                                            venue: Venue) -> None:
    resting = OrderRequest("BTC/USDT", "buy", D("0.01"), "dup-1", "limit", D("40000"))
    first = venue.submit(resting)
    assert first.status is SubmitStatus.ACCEPTED and first.order is not None
    second = venue.submit(resting)
    assert (second.status, second.outcome, second.error) == (
        SubmitStatus.UNKNOWN, Outcome.RESOLVE, "InvalidOrder")
    found = venue.resolve("BTC/USDT", "dup-1")
    assert found.state is ResolveState.FOUND and found.order is not None
    assert found.order.order_id == first.order.order_id and found.order.status == "open"
    assert len(exchange.orders()) == 1 and exchange.calls == Counter({ORDER: 2, LOOKUP: 1})


def test_insufficient_funds_is_a_rejection(exchange: LoopbackExchange, venue: Venue) -> None:
    result = venue.submit(buy("too-big", "0.5"))  # 25000 USDT, 10000 held
    assert (result.status, result.outcome) == (SubmitStatus.REJECTED, Outcome.REJECTED)
    assert result.diagnostic is not None and result.diagnostic.code == "E033"
    assert "insufficient balance" in result.diagnostic.message
    assert exchange.orders() == [] and exchange.balance("USDT") == (D("10000"), D("0"))


@pytest.mark.parametrize(("client_id", "symbol", "code"), [
    ("has space", "BTC/USDT", "E033"),
    ("x" * 37, "BTC/USDT", "E033"),
    ("ok-id", "BTC/USDC", "E030"),
])
def test_submit_refuses_locally_what_must_not_be_sent(exchange: LoopbackExchange, venue: Venue,
                                                      client_id: str, symbol: str,
                                                      code: str) -> None:
    result = venue.submit(buy(client_id, symbol=symbol))
    assert result.status is SubmitStatus.REJECTED
    assert result.diagnostic is not None and result.diagnostic.code == code
    assert exchange.calls == Counter()


@pytest.mark.parametrize(("given", "expected"), [
    ("abc", "abc_r1"), ("abc_r1", "abc_r2"), ("abc_r9", "abc_r10"),
    ("run-3_bar-9", "run-3_bar-9_r1"),
])
def test_resend_id_is_new_and_deterministic(given: str, expected: str) -> None:
    assert resend_id(given) == expected


def test_resend_id_refuses_ids_that_would_not_fit() -> None:
    with pytest.raises(ValueError, match="longer than 36"):
        resend_id("x" * 34)


# --- precision ---------------------------------------------------------------------------
def test_market_rules_come_from_ccxt_market_data(venue: Venue) -> None:
    btc, eth = venue.market_rules("BTC/USDT"), venue.market_rules("ETH/USDT")
    assert (btc.qty_step, btc.price_tick, btc.min_qty, btc.min_notional) == (
        D("0.00001"), D("0.01"), D("0.00001"), D("5"))
    assert (eth.qty_step, eth.price_tick, eth.min_qty, eth.min_notional) == (
        D("0.0001"), D("0.1"), D("0.001"), D("10"))


ROUNDING = [  # symbol, quantity, price → rounded quantity, reason (empty: tradable)
    ("BTC/USDT", "0.123456789", "50000", "0.12345", ""),
    ("BTC/USDT", "0.0999999", "50000", "0.09999", ""),
    ("BTC/USDT", "0.0001", "50000", "0.0001", ""),  # notional exactly the minimum
    ("BTC/USDT", "0.00009999", "50000", "0", "its notional 4.50000 at 50000 is below the "
     "minimum notional 5.0"),
    ("BTC/USDT", "0.000009", "50000", "0", "nothing is left to trade"),
    ("ETH/USDT", "0.00099", "2500000", "0", "below the minimum quantity 0.001"),
    ("ETH/USDT", "0.0039", "2500", "0", "its notional 9.7500 at 2500 is below the minimum "
     "notional 10.0"),
    ("ETH/USDT", "0.00409", "2500", "0.004", ""),
]


@pytest.mark.parametrize(("symbol", "qty", "price", "rounded", "reason"), ROUNDING)
def test_round_qty_down_never_up_and_respects_the_minimums(venue: Venue, symbol: str, qty: str,
                                                           price: str, rounded: str,
                                                           reason: str) -> None:
    result = venue.round_qty_down(symbol, qty, price)
    assert (result.qty, result.reason) == (D(rounded), reason)
    assert result.qty <= D(qty)
    assert (result.diagnostic.code if result.diagnostic else None) == ("E036" if reason
                                                                       else None)


def test_unknown_market_is_e030_with_a_suggestion(venue: Venue) -> None:
    with pytest.raises(VenueError) as failed:
        venue.market_rules("BTC/USDC")
    (problem,) = failed.value.diagnostics
    assert (problem.code, problem.message) == ("E030", "binance has no spot market BTC/USDC")
    assert "BTC/USDT" in problem.help


# --- Retry-After and backoff -------------------------------------------------------------
def test_429_honours_retry_after(exchange: LoopbackExchange, venue: Venue,
                                 slept: list[float]) -> None:
    exchange.faults.add(Fault(ACCOUNT, "rate_limited", times=2, retry_after=7))
    assert venue.balances()["BTC"].total == D("1")
    assert slept == [7.0, 7.0] and exchange.calls == Counter({ACCOUNT: 3})


def test_retry_after_is_capped(exchange: LoopbackExchange, venue: Venue,
                               slept: list[float]) -> None:
    exchange.faults.add(Fault(ACCOUNT, "rate_limited", retry_after=100))
    venue.balances()
    assert slept == [30.0]


def test_auth_error_after_success_is_still_fatal(exchange: LoopbackExchange, venue: Venue,
                                                 slept: list[float]) -> None:
    """ccxt raises DDoSProtection for Binance -2015 once a signed call has succeeded."""
    venue.balances()
    exchange.faults.add(Fault(ACCOUNT, "auth_error"))
    with pytest.raises(VenueError) as failed:
        venue.balances()
    assert failed.value.outcome is Outcome.FATAL
    assert [d.code for d in failed.value.diagnostics] == ["E031"]
    assert "DDoSProtection" in failed.value.diagnostics[0].message
    assert exchange.calls == Counter({ACCOUNT: 2}) and slept == []


def test_wrong_key_is_e031_without_retries(exchange: LoopbackExchange,
                                           client_at: Callable[..., Any],
                                           slept: list[float]) -> None:
    venue = Venue(client_at(exchange.url, key="someone-else-key"), sleep=slept.append)
    with pytest.raises(VenueError) as failed:
        venue.balances()
    assert [d.code for d in failed.value.diagnostics] == ["E031"]
    assert exchange.calls[ACCOUNT] == 1 and slept == []


def test_unreachable_exchange_is_e032_and_shows_no_signature(exchange: LoopbackExchange,
                                                             venue: Venue,
                                                             slept: list[float]) -> None:
    venue.load()
    exchange.stop()
    with pytest.raises(VenueError) as failed:
        venue.balances()
    (problem,) = failed.value.diagnostics
    assert problem.code == "E032" and "after 3 attempts: NetworkError" in problem.message
    assert "signature" not in problem.message and "?…" in problem.message
    assert slept == [0.5, 1.0]


# --- orders and reads --------------------------------------------------------------------
def test_cancel_by_client_id(exchange: LoopbackExchange, venue: Venue,
                             slept: list[float]) -> None:
    venue.submit(OrderRequest("BTC/USDT", "sell", D("0.5"), "rest-1", "limit", D("60000")))
    exchange.faults.add(Fault("DELETE /api/v3/order", "server_error"))
    canceled = venue.cancel("BTC/USDT", "rest-1")
    assert canceled is not None and (canceled.client_id, canceled.status) == (
        "rest-1", "canceled")
    assert venue.cancel("BTC/USDT", "rest-1") is None  # not open any more
    assert exchange.calls["DELETE /api/v3/order"] == 3 and slept == [0.5]
    assert exchange.balance("BTC") == (D("1"), D("0"))


def test_open_orders_of_every_market(exchange: LoopbackExchange, venue: Venue) -> None:
    exchange.place("ETH/USDT", "BUY", "LIMIT", "1", "2000", client_id="web-eth")
    venue.submit(OrderRequest("BTC/USDT", "buy", D("0.01"), "mine", "limit", D("40000")))
    orders = venue.open_orders()
    assert sorted((o.symbol, o.client_id) for o in orders) == [
        ("BTC/USDT", "mine"), ("ETH/USDT", "web-eth")]
    assert [o.client_id for o in venue.open_orders("ETH/USDT")] == ["web-eth"]


def test_balances(exchange: LoopbackExchange, venue: Venue) -> None:
    venue.submit(OrderRequest("BTC/USDT", "buy", D("0.1"), "lock", "limit", D("40000")))
    balances = venue.balances()
    assert sorted(balances) == ["BTC", "USDT"]
    usdt = balances["USDT"]
    assert (usdt.free, usdt.used, usdt.total) == (D("6000"), D("4000"), D("10000"))


def test_trades_since_pages_by_id(exchange: LoopbackExchange, venue: Venue) -> None:
    for i in range(5):
        venue.submit(buy(f"t{i}", "0.001"))
    exchange.reset_counts()
    fills = venue.trades_since("BTC/USDT", since_ms=0, page=2)
    assert [f.trade_id for f in fills] == ["1", "2", "3", "4", "5"]
    assert [r.param("fromId") for r in exchange.requests] == [None, "3", "5"]
    assert exchange.requests[0].param("startTime") == "0"
    later = venue.trades_since("BTC/USDT", from_id="4", page=2)
    assert [f.trade_id for f in later] == ["4", "5"]
    assert fills[0].price == D("50000") and fills[0].timestamp > START_MS


def test_fetch_ohlcv(exchange: LoopbackExchange, venue: Venue) -> None:
    exchange.set_candles("BTC/USDT", "1m", [[START_MS, 1, 2, 0.5, 1.5, 10],
                                            [START_MS + 60_000, 1.5, 2, 1, 1.2, 3]])
    assert venue.fetch_ohlcv("BTC/USDT", "1m", START_MS) == [
        [START_MS, 1.0, 2.0, 0.5, 1.5, 10.0], [START_MS + 60_000, 1.5, 2.0, 1.0, 1.2, 3.0]]


def test_zero_queries_can_never_mean_not_found(client: Any, venue: Venue) -> None:
    with pytest.raises(ValueError, match="at least one query"):
        venue.resolve("BTC/USDT", "any", attempts=0)
    with pytest.raises(ValueError, match="at least 1"):
        Venue(client, resolve_attempts=0)
