"""Reconciliation before the strategy may act (issue 11, item 3): the store and the exchange
must agree, and a deployment that does not know what it holds must not trade.

Orders left ``submitting`` by a crash are resolved by client id (on the exchange → adopted;
nowhere → rejected); unknown open exchange orders are cancelled or adopted as the declared
policy says; a store position the account does not hold is a problem, and ``run_deployment``
then refuses (E040) with the kill switch engaged — so the next start refuses too (E041).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_setup import (
    MARKET,
    TESTNET_ENV,
    deployment,
    entry,
    executor_on,
    live_request,
    promoted_project,
    runner_settings,
    slots,
)

from peakdsl.live.execute import VenueExecutor
from peakdsl.live.gate import Refused
from peakdsl.live.loopback import Fault, LoopbackExchange
from peakdsl.live.reconcile import reconcile
from peakdsl.live.runner import run_deployment
from peakdsl.live.store import LiveStore
from peakdsl.live.store_rows import Fill, OrderRequest
from peakdsl.live.venue import Venue

LOOKUP = "GET /api/v3/order"
OPEN = "GET /api/v3/openOrders"
TRADES = "GET /api/v3/myTrades"
ACCOUNT = "GET /api/v3/account"
CANCEL = "DELETE /api/v3/order"
BAR = 1_764_547_200.0 + 19 * 3600


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LiveStore]:
    with LiveStore.open(tmp_path / "live.sqlite") as opened:
        yield opened


@pytest.fixture
def executor(store: LiveStore, venue: Venue, exchange: LoopbackExchange) -> VenueExecutor:
    built = executor_on(store, venue)  # sets the trade cursor, as the first start did
    exchange.reset_counts()
    return built


def left_submitting(executor: VenueExecutor, qty: float = 0.01) -> str:
    """A crash between the write-ahead and the answer: the order is ``submitting``."""
    intent = executor.store.record_intent(executor.intent_for(entry(BAR, qty), 0, slots()[0]))
    cid = intent.client_order_id(1)
    executor.store.add_order(OrderRequest(cid, intent.id, MARKET, "buy", "market", qty, None,
                                          1), at=1, status="submitting")
    return cid


def test_a_submitting_order_the_exchange_has_is_adopted(executor: VenueExecutor,
                                                        store: LiveStore,
                                                        exchange: LoopbackExchange) -> None:
    cid = left_submitting(executor)
    placed = exchange.place(MARKET, "BUY", "MARKET", "0.01", client_id=cid)  # it arrived
    done = reconcile(executor, [MARKET])
    assert done.ok and done.resolved == [f"{cid}: on the exchange (closed)"]
    assert (done.adopted, done.cancelled, done.fills) == ([], [], 1)
    order = store.order(cid)
    assert order is not None and order.exchange_order_id == str(placed.order_id)
    assert (order.status, order.filled_qty) == ("filled", 0.01)
    assert store.position(MARKET).qty == pytest.approx(0.00999, abs=1e-12)
    assert exchange.calls == Counter({LOOKUP: 1, OPEN: 1, TRADES: 1, ACCOUNT: 1})
    assert reconcile(executor, [MARKET]).resolved == []  # settled: nothing to do again


def test_a_submitting_order_the_exchange_never_saw_is_rejected(
        executor: VenueExecutor, store: LiveStore, exchange: LoopbackExchange) -> None:
    cid = left_submitting(executor)
    done = reconcile(executor, [MARKET])
    assert done.ok and done.resolved == [f"{cid}: never arrived"]
    order = store.order(cid)
    assert order is not None and order.status == "rejected"
    assert exchange.calls == Counter({LOOKUP: 3, OPEN: 1, TRADES: 1})  # flat: no balance read
    assert exchange.orders() == []


def test_an_order_that_cannot_be_looked_up_is_a_problem(executor: VenueExecutor,
                                                        store: LiveStore,
                                                        exchange: LoopbackExchange) -> None:
    cid = left_submitting(executor)
    exchange.faults.add(Fault(LOOKUP, "server_error", times=3))
    done = reconcile(executor, [MARKET])
    assert not done.ok and len(done.problems) == 1
    assert done.problems[0].startswith(
        f"order {cid} is unresolved: binance unreachable: looking up order {cid} failed 3 of 3 "
        "times, last with ExchangeNotAvailable")
    order = store.order(cid)
    assert order is not None and order.status == "submitting"


@pytest.mark.parametrize("policy", ["cancel", "adopt"])
def test_an_unknown_open_order_is_handled_by_the_policy(policy: str, executor: VenueExecutor,
                                                        store: LiveStore,
                                                        exchange: LoopbackExchange) -> None:
    """Someone placed an order by hand: cancelled, or adopted into the store as ours."""
    theirs = exchange.place(MARKET, "BUY", "LIMIT", "0.01", "40000", client_id="web-ui-1")
    exchange.reset_counts()
    done = reconcile(executor, [MARKET], policy)  # type: ignore[arg-type]
    assert done.ok and done.resolved == [] and done.fills == 0
    line = "web-ui-1 (buy 0.01 BTC/USDT)"
    (after,) = exchange.orders()
    if policy == "cancel":
        assert (done.cancelled, done.adopted) == ([line], [])
        assert after.status == "CANCELED" and store.orders() == []
        assert exchange.calls == Counter({OPEN: 1, CANCEL: 1, TRADES: 1})
    else:
        assert (done.adopted, done.cancelled) == ([line], [])
        assert after.status == "NEW"
        (adopted,) = store.orders()
        assert (adopted.client_order_id, adopted.intent_id, adopted.status, adopted.type,
                adopted.price, adopted.qty, adopted.exchange_order_id) == (
            "web-ui-1", None, "open", "limit", 40_000.0, 0.01, str(theirs.order_id))
        assert exchange.calls == Counter({OPEN: 1, TRADES: 1})
        assert reconcile(executor, [MARKET], "adopt").adopted == []  # ours now


def test_our_own_open_order_is_brought_up_to_date_not_cancelled(
        executor: VenueExecutor, store: LiveStore, exchange: LoopbackExchange) -> None:
    cid = left_submitting(executor)
    placed = exchange.place(MARKET, "BUY", "LIMIT", "0.01", "40000", client_id=cid)
    done = reconcile(executor, [MARKET], "cancel")
    assert done.ok and done.cancelled == [] and done.adopted == []
    order = store.order(cid)
    assert order is not None and (order.status, order.exchange_order_id) == (
        "open", str(placed.order_id))
    assert exchange.orders()[0].status == "NEW"


def holding(store: LiveStore, qty: float) -> None:
    """The store believes it bought ``qty`` BTC (an order and its fill)."""
    store.add_order(OrderRequest("manual-0001", None, MARKET, "buy", "market", qty, None, 1),
                    at=1, status="open")
    store.apply_fill(Fill("t-1", "manual-0001", MARKET, "buy", qty, 50_000.0, 0.0, "USDT", 2))


def test_a_position_the_account_does_not_hold_is_a_problem(executor: VenueExecutor,
                                                           store: LiveStore,
                                                           exchange: LoopbackExchange) -> None:
    holding(store, 5.0)  # the account holds 1 BTC
    done = reconcile(executor, [MARKET])
    assert done.problems == ["BTC/USDT: the store holds 5.0 BTC, the exchange account only 1.0"]
    assert exchange.calls[ACCOUNT] == 1


def test_a_position_the_account_holds_is_no_problem(executor: VenueExecutor,
                                                    store: LiveStore) -> None:
    holding(store, 0.75)  # the account holds 1 BTC (what it held before counts too)
    assert reconcile(executor, [MARKET]).ok


def test_a_failed_reconciliation_halts_the_deployment(tmp_path_factory: pytest.TempPathFactory,
                                                      tmp_path: Path,
                                                      exchange: LoopbackExchange) -> None:
    """E040, the kill switch engaged (durable), the session halted, nothing sent; the next
    start refuses with E041 before it even looks at the exchange's orders."""
    root = promoted_project(tmp_path_factory, tmp_path)
    path = deployment(root).store_path
    path.parent.mkdir(parents=True)
    with LiveStore.open(path) as store:
        holding(store, 5.0)
    exchange.reset_counts()
    with pytest.raises(Refused) as refused:
        run_deployment(live_request(root), runner_settings(exchange.url), env=TESTNET_ENV)
    assert refused.value.codes == ["E040"]
    assert "the store holds 5.0 BTC, the exchange account only 1" in str(refused.value)
    assert exchange.calls["POST /api/v3/order"] == 0 and exchange.calls[ACCOUNT] == 1
    with LiveStore.open(path) as store:
        kill = store.kill_state()
        assert kill.engaged and kill.reason.startswith("reconciliation failed: BTC/USDT")
        assert [s.status for s in store.sessions()] == ["halted"]
    exchange.reset_counts()
    with pytest.raises(Refused) as again:
        run_deployment(live_request(root), runner_settings(exchange.url), env=TESTNET_ENV)
    assert again.value.codes == ["E041"]
    assert "reconciliation failed" in str(again.value)
    assert exchange.calls == Counter({"GET /api/v3/exchangeInfo": 1})  # markets only
