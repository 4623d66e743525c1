"""The venue executor under every fault of the loopback exchange (issue 11, items 3, 5, 6).

For each fault kind: the exact exchange calls and the outcome in the store — order statuses,
fills, position, kill switch. The promises: ``create_order`` is sent once per client id; an
unknown outcome is resolved by client id (found → adopted, filled once; not found → rejected
and resent once under a NEW id); refused credentials and ``max_errors`` consecutive failures
engage the kill switch, after which nothing more is sent.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from deploy_setup import MARKET, SESSION, T0, entry, executor_on, exit_, report, slots

from peakdsl.api import compile_spec
from peakdsl.compile.models import RiskArtifact
from peakdsl.engine.risk import RiskLimits
from peakdsl.engine.settings import SimSettings
from peakdsl.live.clockbook import BookSlot, ClockBook, ClosedBar, Fill
from peakdsl.live.execute import ExecutorSettings, VenueExecutor
from peakdsl.live.loopback import Fault, LoopbackExchange
from peakdsl.live.store import LiveStore
from peakdsl.live.venue import Venue

ORDER = "POST /api/v3/order"
LOOKUP = "GET /api/v3/order"
TRADES = "GET /api/v3/myTrades"
BAR = T0 + 19 * 3600  # the fills' point: a bar open
POSITION = 0.00999  # 0.01 BTC bought less the 0.1 % fee paid in BTC


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LiveStore]:
    with LiveStore.open(tmp_path / "live.sqlite") as opened:
        yield opened


@pytest.fixture
def kills() -> list[str]:
    return []


@pytest.fixture
def executor(store: LiveStore, venue: Venue, exchange: LoopbackExchange,
             kills: list[str]) -> VenueExecutor:
    built = executor_on(store, venue, kills=kills)
    exchange.reset_counts()
    return built


def statuses(store: LiveStore) -> list[tuple[int, str]]:
    return [(o.attempt, o.status) for o in store.orders()]


def sent_ids(exchange: LoopbackExchange) -> list[str | None]:
    return [r.param("newClientOrderId") for r in exchange.requests if r.endpoint == ORDER]


@dataclass(frozen=True)
class Case:
    """One fault on ``POST /api/v3/order`` and everything it must lead to."""

    fault: Fault
    calls: dict[str, int]
    orders: list[tuple[int, str]]
    fills: int
    position: float
    errors: int = 0
    killed: bool = False
    slept: list[float] = field(default_factory=list)
    raised: str = ""  # the ccxt error class the first create_order ended with


def not_sent(fault: Fault, raised: str) -> Case:
    """No answer, nothing placed: three lookups say "does not exist" → rejected → attempt 2
    (the lookups' pauses, 1 s doubling, recorded instead of slept)."""
    return Case(fault, {ORDER: 2, LOOKUP: 3, TRADES: 1}, [(1, "rejected"), (2, "filled")], 1,
                POSITION, slept=[1.0, 2.0], raised=raised)


CASES = {
    "timeout": not_sent(Fault(ORDER, "timeout", hold_s=1.0), "RequestTimeout"),
    "disconnect": not_sent(Fault(ORDER, "disconnect"), "NetworkError"),
    "rate_limited": not_sent(Fault(ORDER, "rate_limited"), "DDoSProtection"),
    "server_error": not_sent(Fault(ORDER, "server_error"), "ExchangeNotAvailable"),
    "maintenance": not_sent(Fault(ORDER, "maintenance"), "OnMaintenance"),
    # Binance -2010 "Duplicate order sent." arrives as InvalidOrder: looked up, not rejected
    "duplicate_client_id": not_sent(Fault(ORDER, "duplicate_client_id"), "InvalidOrder"),
    # placed and filled, the answer lost: one lookup finds it, no second create_order
    "timeout_after_fill": Case(Fault(ORDER, "timeout_after_fill", hold_s=1.0),
                               {ORDER: 1, LOOKUP: 1, TRADES: 1}, [(1, "filled")], 1, POSITION,
                               errors=0, raised="RequestTimeout"),  # found: the count resets
    # accepted at once; the trades arrive with the fills sync
    "partial_fill": Case(Fault(ORDER, "partial_fill", parts=3), {ORDER: 1, TRADES: 1},
                         [(1, "partially_filled")], 2, 0.00666 - 0.00000666),
    "fill_later": Case(Fault(ORDER, "fill_later", after_requests=2), {ORDER: 1, TRADES: 1},
                       [(1, "open")], 0, 0.0),
    # refused: nothing placed, nothing resent
    "insufficient_funds": Case(Fault(ORDER, "insufficient_funds"), {ORDER: 1, TRADES: 1},
                               [(1, "rejected")], 0, 0.0, errors=1,
                               raised="InsufficientFunds"),
    # refused credentials: the kill switch, the order left for reconciliation to resolve
    "auth_error": Case(Fault(ORDER, "auth_error"), {ORDER: 1, TRADES: 1}, [(1, "unknown")], 0,
                       0.0, killed=True),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_one_entry_under_each_fault(kind: str, executor: VenueExecutor, store: LiveStore,
                                    exchange: LoopbackExchange, slept: list[float],
                                    kills: list[str]) -> None:
    case = CASES[kind]
    exchange.faults.add(case.fault)
    executor.execute(report(entry(BAR)), slots())
    assert exchange.faults.pending() == 0
    assert exchange.calls == Counter(case.calls)
    assert statuses(store) == case.orders
    assert len(store.fills()) == case.fills
    assert store.position(MARKET).qty == pytest.approx(case.position, abs=1e-12)
    assert executor.state.errors == case.errors
    assert store.kill_state().engaged is case.killed and bool(kills) is case.killed
    assert slept == case.slept
    if case.raised:
        assert case.raised in executor.state.notes[0]
    # every create_order carried its own client id: never the same one twice
    ids = sent_ids(exchange)
    assert len(ids) == len(set(ids)) == case.calls[ORDER]
    assert [o.client_order_id for o in store.orders()] == ids


def test_a_resend_uses_the_next_attempts_id(executor: VenueExecutor, store: LiveStore,
                                            exchange: LoopbackExchange) -> None:
    exchange.faults.add(Fault(ORDER, "timeout", hold_s=1.0))
    executor.execute(report(entry(BAR)), slots())
    intent = store.intents()[0]
    assert sent_ids(exchange) == [intent.client_order_id(1), intent.client_order_id(2)]
    assert intent.client_order_id(1) != intent.client_order_id(2)
    looked_up = {r.param("origClientOrderId") for r in exchange.requests if r.endpoint == LOOKUP}
    assert looked_up == {intent.client_order_id(1)}
    (placed,) = exchange.orders()
    assert placed.client_id == intent.client_order_id(2) and placed.status == "FILLED"


def test_a_resend_happens_once(executor: VenueExecutor, store: LiveStore,
                               exchange: LoopbackExchange) -> None:
    """Both attempts time out and are not found: two rejections, no third create_order."""
    exchange.faults.add(Fault(ORDER, "timeout", times=2, hold_s=1.0))
    executor.execute(report(entry(BAR)), slots())
    assert exchange.calls == Counter({ORDER: 2, LOOKUP: 6, TRADES: 1})
    assert statuses(store) == [(1, "rejected"), (2, "rejected")]
    assert exchange.orders() == [] and executor.state.errors == 2


def test_timeout_after_fill_is_adopted_and_filled_once(executor: VenueExecutor,
                                                       store: LiveStore,
                                                       exchange: LoopbackExchange) -> None:
    exchange.faults.add(Fault(ORDER, "timeout_after_fill", hold_s=1.0))
    executor.execute(report(entry(BAR)), slots())
    (order,) = store.orders()
    (placed,) = exchange.orders()
    assert order.exchange_order_id == str(placed.order_id) and order.filled_qty == 0.01
    executor.execute(report(entry(BAR)), slots())  # the same bar again (a restart's replay)
    assert executor.sync_fills(MARKET) == 0
    assert exchange.calls[ORDER] == 1 and len(store.fills()) == 1
    assert store.position(MARKET).qty == pytest.approx(POSITION, abs=1e-12)


def test_partial_fills_complete_on_later_syncs(executor: VenueExecutor, store: LiveStore,
                                               exchange: LoopbackExchange) -> None:
    exchange.faults.add(Fault(ORDER, "partial_fill", parts=3))
    executor.execute(report(entry(BAR)), slots())
    assert [f.qty for f in store.fills()] == [0.00333, 0.00333]
    assert executor.sync_fills(MARKET) == 1
    assert [f.qty for f in store.fills()] == [0.00333, 0.00333, 0.00334]
    (order,) = store.orders()
    assert order.status == "filled" and order.filled_qty == pytest.approx(0.01)
    assert executor.sync_fills(MARKET) == 0 and len(store.fills()) == 3


def test_a_late_fill_arrives_with_a_later_sync(executor: VenueExecutor, store: LiveStore,
                                               exchange: LoopbackExchange) -> None:
    exchange.faults.add(Fault(ORDER, "fill_later", after_requests=2))
    executor.execute(report(entry(BAR)), slots())
    assert statuses(store) == [(1, "open")]
    assert executor.sync_fills(MARKET) == 1
    assert statuses(store) == [(1, "filled")] and exchange.calls[ORDER] == 1
    assert store.position(MARKET).qty == pytest.approx(POSITION, abs=1e-12)


def test_a_real_duplicate_id_resolves_to_the_order_already_there(
        executor: VenueExecutor, store: LiveStore, exchange: LoopbackExchange) -> None:
    """The client id is already open on the exchange (a crash after sending, before the
    write of the answer): Binance says "Duplicate order sent", the lookup finds the order and
    the executor adopts it — one create_order, nothing placed twice."""
    intent_cid = executor.intent_for(entry(BAR), 0, slots()[0]).client_order_id(1)
    resting = exchange.place(MARKET, "BUY", "LIMIT", "0.01", "40000", client_id=intent_cid)
    exchange.reset_counts()
    executor.execute(report(entry(BAR)), slots())
    assert exchange.calls == Counter({ORDER: 1, LOOKUP: 1, TRADES: 1})
    (order,) = store.orders()
    assert (order.status, order.exchange_order_id) == ("open", str(resting.order_id))
    assert [o.order_id for o in exchange.orders()] == [resting.order_id]
    assert executor.state.errors == 0 and not executor.state.blocked  # found: reset


def test_an_unresolved_order_blocks_new_ones(executor: VenueExecutor, store: LiveStore,
                                             exchange: LoopbackExchange) -> None:
    """The create_order times out and every lookup fails: the order stays unknown and the
    next bar's entry is not sent (no guessing)."""
    exchange.faults.add(Fault(ORDER, "timeout", hold_s=1.0))
    exchange.faults.add(Fault(LOOKUP, "server_error", times=3))
    executor.execute(report(entry(BAR)), slots())
    assert statuses(store) == [(1, "unknown")] and executor.state.blocked
    executor.execute(report(entry(BAR + 3600)), slots())
    assert exchange.calls[ORDER] == 1 and len(store.intents()) == 2
    assert "still unresolved" in executor.state.notes[-1]
    assert executor.state.errors == 2 and not store.kill_state().engaged


def test_the_kill_switch_stops_every_later_order(executor: VenueExecutor, store: LiveStore,
                                                 exchange: LoopbackExchange,
                                                 kills: list[str]) -> None:
    exchange.faults.add(Fault(ORDER, "auth_error"))
    executor.execute(report(entry(BAR)), slots())
    assert len(kills) == 1 and "E031" not in kills[0]
    assert "refused the credentials" in kills[0]
    for hour in range(1, 4):
        executor.execute(report(entry(BAR + hour * 3600)), slots())
    assert exchange.calls[ORDER] == 1 and exchange.orders() == []
    assert sum("kill switch is engaged" in n for n in executor.state.notes) == 3
    assert len(store.intents()) == 1  # nothing even recorded as wanted-and-sent


@pytest.mark.parametrize("max_errors", [1, 3])
def test_max_errors_consecutive_failures_engage_the_kill_switch(
        store: LiveStore, venue: Venue, exchange: LoopbackExchange, max_errors: int) -> None:
    kills: list[str] = []
    executor = executor_on(store, venue, ExecutorSettings(max_errors=max_errors), kills)
    exchange.reset_counts()
    exchange.faults.add(Fault(ORDER, "insufficient_funds", times=10))
    for hour in range(max_errors + 2):
        executor.execute(report(entry(BAR + hour * 3600)), slots())
    assert exchange.calls[ORDER] == max_errors
    assert kills == [f"{max_errors} consecutive exchange errors, the last: order "
                     f"{store.orders()[-1].client_order_id} rejected: "
                     f"{kills[0].split('rejected: ', 1)[1]}"]
    assert "insufficient balance" in kills[0]
    assert store.kill_state().engaged and store.kill_state().by == "executor"
    assert exchange.faults.pending() == 10 - max_errors


def test_a_success_resets_the_error_count(store: LiveStore, venue: Venue,
                                          exchange: LoopbackExchange) -> None:
    """Errors must be consecutive: reject, fill, reject, reject stays under max_errors 3."""
    kills: list[str] = []
    executor = executor_on(store, venue, ExecutorSettings(max_errors=3), kills)
    exchange.faults.add(Fault(ORDER, "insufficient_funds"))
    executor.execute(report(entry(BAR)), slots())
    executor.execute(report(entry(BAR + 3600)), slots())  # accepted
    exchange.faults.add(Fault(ORDER, "insufficient_funds", times=2))
    executor.execute(report(entry(BAR + 7200, slot=1)), slots(2))
    executor.execute(report(entry(BAR + 10800, slot=1)), slots(2))
    assert executor.state.errors == 2 and kills == [] and not store.kill_state().engaged


def test_an_exit_sells_what_the_slot_holds(executor: VenueExecutor, store: LiveStore,
                                           exchange: LoopbackExchange) -> None:
    """The model says 0.01; the slot holds 0.01 less the fee paid in BTC, rounded down to
    the step: that is what is sold, and the position ends flat."""
    executor.execute(report(entry(BAR)), slots())
    executor.execute(report(exit_(BAR + 3600, qty=0.01)), slots())
    sells = [r.param("quantity") for r in exchange.requests
             if r.endpoint == ORDER and r.param("side") == "SELL"]
    assert sells == ["0.00999"]
    assert store.position(MARKET).qty == pytest.approx(0.0, abs=1e-12)
    assert [o.side for o in store.orders("filled")] == ["buy", "sell"]


def test_nothing_held_nothing_sold_and_no_short_entries(executor: VenueExecutor,
                                                        store: LiveStore,
                                                        exchange: LoopbackExchange) -> None:
    short = Fill(0, 0, BAR, -1, 0.01, 50_000.0, 0.5, "entry")
    executor.execute(report(exit_(BAR)), slots())
    executor.execute(report(short), slots())
    assert exchange.calls[ORDER] == 0 and store.orders() == []
    assert any("nothing held" in n for n in executor.state.notes)
    assert any("short entry is not possible" in n for n in executor.state.notes)


def test_an_entry_below_the_minimum_is_dropped_with_e036(executor: VenueExecutor,
                                                         store: LiveStore,
                                                         exchange: LoopbackExchange) -> None:
    executor.execute(report(entry(BAR, qty=0.00005)), slots())  # 2.5 USDT < 5 USDT notional
    assert exchange.calls[ORDER] == 0 and store.orders() == []
    assert "(E036)" in executor.state.notes[-1] and "minimum notional" in \
        executor.state.notes[-1]


def test_the_executor_logs_to_the_store(executor: VenueExecutor, store: LiveStore,
                                        exchange: LoopbackExchange) -> None:
    exchange.faults.add(Fault(ORDER, "insufficient_funds"))
    executor.execute(report(entry(BAR)), slots())
    logged = [e for e in store.log_since(0) if e.event == "executor"]
    assert [(e.level, e.session) for e in logged] == [("error", SESSION)]
    assert "rejected" in logged[0].message


# ------------------------------------------------------------------ the order rate

BURST_RISK = """risk burst_guard {
    description "Loose limits but ten orders a minute"
    max_order_notional 100000 USDT
    max_symbol_exposure 100%
    max_total_exposure 100%
    max_open_positions 1000
    max_daily_loss 50%
    max_orders_per_minute 10
}
"""


def burst_limits(root: Path) -> RiskLimits:
    """The limits of a risk spec compiled by the real compiler (ten orders a minute)."""
    path = root / "specs" / "risk" / "burst_guard.peak"
    path.parent.mkdir(parents=True)
    path.write_text(BURST_RISK)
    compiled = compile_spec(str(path), root)
    assert isinstance(compiled, RiskArtifact)
    return RiskLimits.from_config(compiled.config)


def test_a_1000_intent_burst_reaches_the_exchange_at_the_configured_rate(
        tmp_path: Path, store: LiveStore, venue: Venue, exchange: LoopbackExchange) -> None:
    """1,000 slots want to enter on the same one-second bar, and again on every later bar
    while flat (122 s of ticks 1 s apart): the shared risk stage lets ten entries a minute
    through, and exactly those reach the exchange — never more than ten create_order calls
    in any 60 s of the book's time."""
    limits = burst_limits(tmp_path)
    settings = SimSettings(capital=100_000.0, fees=0.001, slippage=0.0,
                           sizing_mode="notional", sizing_value=20.0)
    n = 1_000
    book = ClockBook([BookSlot(settings, 1)] * n, 100_000.0, limits=limits)
    executor = executor_on(store, venue)
    exchange.reset_counts()
    wanting = ClosedBar(50_000.0, 50_000.0, 50_000.0, (True, False, False, False))
    closing, opening = dict.fromkeys(range(n), wanting), dict.fromkeys(range(n), 50_000.0)
    specs = slots(n, timeframe_seconds=1)
    for second in range(122):
        executor.execute(book.point(T0 + second, closing if second else {}, opening), specs)
    # denied: 990 a bar in the first minute, 980 in the second, 970 on the last bar
    assert book.risk() == {"denied_order_rate": 60 * 990 + 60 * 980 + 970}
    assert exchange.calls[ORDER] == 30
    bar_of = {i.client_order_id(1): i.bar for i in store.intents()}
    sent = sorted(bar_of[cid] - int(T0) for cid in sent_ids(exchange) if cid is not None)
    assert sent == [1] * 10 + [61] * 10 + [121] * 10
    assert max(bisect_right(sent, t) - bisect_right(sent, t - 60) for t in sent) == 10
    assert [o.status for o in store.orders()] == ["filled"] * 30
    assert len({o.client_order_id for o in store.orders()}) == 30
