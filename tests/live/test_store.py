"""The live session's SQLite state: peakdsl/live/store.py, store_rows.py, store_schema.py."""

from __future__ import annotations

import importlib.util
import math
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peakdsl.live.store import LiveStore
from peakdsl.live.store_rows import (
    INSERT_STATUSES,
    ORDER_STATUSES,
    TRANSITIONS,
    Fill,
    IllegalTransition,
    Intent,
    OrderRequest,
    OrderStatus,
)
from peakdsl.live.store_schema import HELP, SCHEMA_VERSION, StoreError, lock_path

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock and SIGKILL are POSIX")

CHILD = Path(__file__).with_name("store_crash_child.py")
SESSION = "s1"
DEADLINE_S = 20.0  # no wait on a child lasts longer


def load_child() -> Any:
    """The child script as a module (its plan), registered so its dataclass resolves."""
    if "store_crash_child" not in sys.modules:
        spec = importlib.util.spec_from_file_location("store_crash_child", CHILD)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["store_crash_child"]


def open_store(path: Path, session: str = SESSION) -> LiveStore:
    store = LiveStore.open(path)
    store.start_session(session, spec="sma_cross", artifact_sha256="a" * 64, mode="testnet",
                        account="main", exchange="binance", params={"fast": 10}, at=1_000)
    return store


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with open_store(tmp_path / "live" / "state.sqlite") as opened:
        yield opened


def intent(bar: int = 1, *, leg: int = 0, side: str = "buy", qty: float = 1e6,
           market: str = "BTC/USDT", created_at: int = 5_000) -> Intent:
    return Intent(SESSION, 0, bar, leg, market, side, qty, qty, "approved",  # type: ignore[arg-type]
                  "approved", "signal", created_at)


def add_order(store: LiveStore, bar: int = 1, *, side: str = "buy", qty: float = 1e6,
              market: str = "BTC/USDT", status: OrderStatus = "submitting") -> str:
    """A recorded intent and its first order; returns the client order id."""
    recorded = store.record_intent(intent(bar, side=side, qty=qty, market=market))
    cid = recorded.client_order_id(1)
    store.add_order(OrderRequest(cid, recorded.id, market, side, "market", qty, None, 1),  # type: ignore[arg-type]
                    at=6_000, status=status)
    return cid


def fill(cid: str, trade_id: str, qty: float, price: float, *, side: str = "buy",
         fee: float = 0.0, currency: str = "USDT", market: str = "BTC/USDT",
         at: int = 7_000) -> Fill:
    return Fill(trade_id, cid, market, side, qty, price, fee, currency, at)  # type: ignore[arg-type]


def code_of(excinfo: pytest.ExceptionInfo[StoreError]) -> str:
    return excinfo.value.diagnostic.code


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


# ------------------------------------------------------------------ the order state machine

def path_to(status: OrderStatus) -> list[OrderStatus]:
    """The shortest list of transitions from an insertable status to ``status``."""
    queue: deque[list[OrderStatus]] = deque([[s] for s in sorted(INSERT_STATUSES)])
    while queue:
        route = queue.popleft()
        if route[-1] == status:
            return route
        queue.extend([*route, n] for n in sorted(TRANSITIONS[route[-1]]) if n not in route)
    raise AssertionError(f"{status} is unreachable")


def order_in(store: LiveStore, status: OrderStatus, bar: int) -> str:
    route = path_to(status)
    cid = add_order(store, bar, status=route[0])
    for step in route[1:]:
        store.set_order_status(cid, step, at=6_000 + bar)
    return cid


def test_every_allowed_transition_is_stored(store: LiveStore) -> None:
    bar = 0
    for old, targets in TRANSITIONS.items():
        for new in sorted(targets):
            bar += 1
            cid = order_in(store, old, bar)
            assert store.set_order_status(cid, new, at=9_000).status == new
            assert store.order(cid).status == new  # type: ignore[union-attr]


def test_every_other_transition_raises_and_changes_nothing(store: LiveStore) -> None:
    illegal = [(old, new) for old in ORDER_STATUSES for new in ORDER_STATUSES
               if new != old and new not in TRANSITIONS[old]]
    assert ("filled", "open") in illegal and ("rejected", "open") in illegal
    assert ("new", "filled") in illegal and ("unknown", "submitting") in illegal
    assert len(illegal) == 90 - 28
    for bar, (old, new) in enumerate(illegal, start=1):
        cid = order_in(store, old, bar)
        before = store.order(cid)
        with pytest.raises(IllegalTransition, match=f"{old} → {new}"):
            store.set_order_status(cid, new, at=9_000)
        assert store.order(cid) == before


def test_the_same_status_again_is_a_no_op(store: LiveStore) -> None:
    cid = add_order(store)
    before = store.set_order_status(cid, "open", at=6_100, exchange_order_id="X1")
    assert store.set_order_status(cid, "open", at=6_200) == before
    assert store.set_order_status(cid, "open", at=6_300, exchange_order_id="X1") == before
    with pytest.raises(StoreError) as excinfo:
        store.set_order_status(cid, "open", at=6_400, exchange_order_id="X2")
    assert code_of(excinfo) == "E025"


def test_an_order_is_recorded_only_in_an_insertable_status(store: LiveStore) -> None:
    assert {"new", "submitting", "open", "partially_filled"} == INSERT_STATUSES
    with pytest.raises(IllegalTransition):
        add_order(store, status="filled")


def test_a_write_ahead_order_is_found_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with open_store(path) as store:
        cid = add_order(store, status="new")
        store.set_order_status(cid, "submitting", at=6_500)
    with LiveStore.open(path) as store:
        assert [o.client_order_id for o in store.orders("submitting", "unknown")] == [cid]
        resolved = store.set_order_status(cid, "unknown", at=8_000)
        assert (resolved.status, resolved.updated_at) == ("unknown", 8_000)


# ------------------------------------------------------------------ intents

def test_recording_an_intent_twice_is_a_no_op(store: LiveStore) -> None:
    first = store.record_intent(intent(3, created_at=5_000))
    again = store.record_intent(intent(3, created_at=9_999))  # a replayed bar
    assert again == first and again.created_at == 5_000
    assert store.intents() == [first]
    assert first.id == f"{SESSION}:0:3:0"


def test_a_different_intent_under_the_same_id_is_refused(store: LiveStore) -> None:
    store.record_intent(intent(3, qty=2.0))
    with pytest.raises(StoreError) as excinfo:
        store.record_intent(intent(3, qty=3.0))
    assert code_of(excinfo) == "E025"
    assert "qty 2.0 (stored) ≠ 3.0" in excinfo.value.diagnostic.message
    assert [i.qty for i in store.intents()] == [2.0]


def test_orders_are_idempotent_and_conflicts_refused(store: LiveStore) -> None:
    cid = add_order(store)
    stored = store.order(cid)
    assert stored is not None
    assert store.add_order(stored.request, at=99_999, status="submitting") == stored
    changed = OrderRequest(cid, stored.intent_id, "BTC/USDT", "buy", "market", 7.0, None, 1)
    with pytest.raises(StoreError) as excinfo:
        store.add_order(changed, at=99_999)
    assert code_of(excinfo) == "E025"


# ------------------------------------------------------------------ fills and positions

def test_position_average_and_realized_pnl_on_literal_numbers(store: LiveStore) -> None:
    buy, sell = add_order(store, 1), add_order(store, 2, side="sell")
    store.apply_fill(fill(buy, "t1", 1.0, 100.0, fee=0.1))
    store.apply_fill(fill(buy, "t2", 1.0, 110.0, fee=0.11))
    pos = store.position("BTC/USDT")
    assert (pos.qty, pos.average_price, pos.realized_pnl) == (2.0, 105.0, 0.0)
    store.apply_fill(fill(sell, "t3", 1.5, 120.0, side="sell", fee=0.18))
    pos = store.position("BTC/USDT")
    assert (pos.qty, pos.average_price, pos.realized_pnl) == (0.5, 105.0, 22.5)
    assert pos.fees == pytest.approx(0.39, abs=1e-12)
    store.apply_fill(fill(sell, "t4", 1.0, 100.0, side="sell", at=7_500))  # through zero
    pos = store.position("BTC/USDT")
    assert (pos.qty, pos.average_price, pos.realized_pnl) == (-0.5, 100.0, 20.0)
    assert pos.updated_at == 7_500


def test_a_fee_in_the_base_currency_comes_out_of_the_position(store: LiveStore) -> None:
    buy = add_order(store)
    store.apply_fill(fill(buy, "t1", 1.0, 100.0, fee=0.001, currency="BTC"))
    pos = store.position("BTC/USDT")
    assert (pos.qty, pos.average_price, pos.realized_pnl, pos.fees) == (0.999, 100.0, 0.0, 0.1)


def test_a_fill_updates_its_order(store: LiveStore) -> None:
    cid = add_order(store, qty=1.0)
    store.set_order_status(cid, "open", at=6_100, exchange_order_id="X1")
    store.apply_fill(fill(cid, "t1", 0.4, 100.0, at=7_000))
    order = store.order(cid)
    assert order is not None
    assert (order.status, order.filled_qty, order.average_price) == ("partially_filled", 0.4,
                                                                    100.0)
    store.apply_fill(fill(cid, "t2", 0.6, 110.0, at=7_100))
    order = store.order(cid)
    assert order is not None
    assert (order.status, order.filled_qty, order.updated_at) == ("filled", 1.0, 7_100)
    assert order.average_price == pytest.approx(106.0, rel=1e-15)


def test_a_late_fill_of_a_cancelled_order_keeps_its_status(store: LiveStore) -> None:
    cid = add_order(store, qty=1.0)
    store.set_order_status(cid, "open", at=6_100)
    store.set_order_status(cid, "cancelling", at=6_200)
    assert store.apply_fill(fill(cid, "t1", 0.3, 100.0))
    assert store.order(cid).status == "cancelling"  # type: ignore[union-attr]
    store.set_order_status(cid, "cancelled", at=6_300)
    assert store.apply_fill(fill(cid, "t2", 0.2, 100.0))
    order = store.order(cid)
    assert order is not None and (order.status, order.filled_qty) == ("cancelled", 0.5)


def test_a_fill_is_applied_once(store: LiveStore) -> None:
    cid = add_order(store)
    assert store.apply_fill(fill(cid, "t1", 1.0, 100.0, fee=0.1)) is True
    before = (store.position("BTC/USDT"), store.order(cid), store.fills(), dump(store.path))
    assert store.apply_fill(fill(cid, "t1", 1.0, 100.0, fee=0.1)) is False
    assert (store.position("BTC/USDT"), store.order(cid), store.fills(),
            dump(store.path)) == before


def test_a_trade_reported_differently_is_refused(store: LiveStore) -> None:
    cid = add_order(store)
    store.apply_fill(fill(cid, "t1", 1.0, 100.0))
    with pytest.raises(StoreError) as excinfo:
        store.apply_fill(fill(cid, "t1", 2.0, 100.0))
    assert code_of(excinfo) == "E025"
    assert store.position("BTC/USDT").qty == 1.0


def refused_fills(store: LiveStore) -> list[tuple[Fill, str]]:
    buy = add_order(store, 1, qty=1.0)
    new = add_order(store, 2, status="new")
    rejected = add_order(store, 3)
    store.set_order_status(rejected, "rejected", at=6_100)
    return [
        (fill("pkunknown", "t1", 1.0, 100.0), "E026"),
        (fill(buy, "t2", 1.0, 100.0, side="sell"), "E026"),
        (fill(buy, "t3", 1.0, 100.0, market="ETH/USDT"), "E026"),
        (fill(buy, "t4", 1.5, 100.0), "E026"),
        (fill(new, "t5", 1.0, 100.0), "E026"),
        (fill(rejected, "t6", 1.0, 100.0), "E026"),
        (fill(buy, "t7", 1.0, 100.0, fee=0.01, currency="BNB"), "E027"),
    ]


def test_fills_that_fit_no_order_are_refused_and_change_nothing(store: LiveStore) -> None:
    cases = refused_fills(store)
    before = dump(store.path)
    for bad, code in cases:
        with pytest.raises(StoreError) as excinfo:
            store.apply_fill(bad)
        assert code_of(excinfo) == code, bad
        assert excinfo.value.diagnostic.help == HELP[code]
    assert dump(store.path) == before


FILLS = st.lists(st.tuples(st.integers(0, 11), st.sampled_from(["buy", "sell"]),
                           st.integers(1, 40), st.integers(50, 150)), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(FILLS)
def test_any_sequence_of_fills_with_repeats_counts_each_trade_once(
        store: LiveStore, trades: list[tuple[int, str, int, int]]) -> None:
    """Each example trades its own market; the position is the sum over distinct trades."""
    n = len(store.orders())
    market = f"M{n}/USDT"
    orders = {side: add_order(store, n + k, side=side, market=market)
              for k, side in enumerate(("buy", "sell"))}
    distinct: dict[int, Fill] = {}
    for number, side, lots, price in trades:
        made = distinct.get(number) or fill(orders[side], f"t{number}", lots / 8, float(price),
                                            side=side, fee=lots / 800, market=market)
        assert store.apply_fill(made) is (number not in distinct)
        distinct.setdefault(number, made)
    pos = store.position(market)
    ordered = list(distinct.values())
    assert pos.qty == pytest.approx(sum(f.signed_qty for f in ordered), abs=1e-9)
    assert pos.fees == pytest.approx(sum(f.fee for f in ordered), abs=1e-9)
    cash = sum(-f.signed_qty * f.price for f in ordered)
    assert pos.realized_pnl == pytest.approx(cash + pos.qty * pos.average_price, abs=1e-6)
    assert len([f for f in store.fills() if f.market == market]) == len(distinct)


# ------------------------------------------------------------------ kill switch, log, cursors

def test_the_kill_switch_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with open_store(path) as store:
        assert not store.kill_state().engaged
        store.engage_kill("daily loss", "risk", at=10_000, session=SESSION)
        store.engage_kill("operator", "alice", at=10_500)
    with LiveStore.open(path) as store:
        state = store.kill_state()
        assert (state.engaged, state.reason, state.by, state.at) == (True, "daily loss", "risk",
                                                                     10_000)
        store.reset_kill("recovered", "bob", at=11_000)
    with LiveStore.open(path, readonly=True) as store:
        assert store.kill_state().engaged is False
        kills = [(e.event, e.data["changed"], e.session) for e in store.log_since(0)
                 if e.event.startswith("kill")]
        assert kills == [("kill_engaged", True, SESSION), ("kill_engaged", False, None),
                         ("kill_reset", True, None)]


def test_the_session_log_is_append_only(store: LiveStore) -> None:
    start = store.log_since(0)[-1].seq
    first = store.log("bar", "bar 1 done", at=2_000, session=SESSION, data={"bar": 1})
    store.log("bar", "bar 2 done", at=3_000, level="warning")
    entries = store.log_since(start)
    assert [(e.seq, e.message, e.data) for e in entries] == [
        (first.seq, "bar 1 done", {"bar": 1}), (first.seq + 1, "bar 2 done", {})]
    assert store.log_since(first.seq, limit=1)[0].message == "bar 2 done"
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE log SET message = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM log")
    conn.close()


def test_a_secret_cannot_reach_the_log(store: LiveStore) -> None:
    from pydantic import SecretStr

    before = store.log_since(0)
    with pytest.raises(TypeError):
        store.log("auth", "key loaded", at=1, data={"key": SecretStr("canary-7f3e")})
    assert store.log_since(0) == before
    assert b"canary-7f3e" not in store.path.read_bytes()


def test_cursors_and_tokens(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with open_store(path) as store:
        assert store.get_cursor("bar:0") is None
        store.set_cursor("bar:0", "1700000000000")
        store.set_cursor("bar:0", "1700000060000")
        store.set_cursor("trade:BTC/USDT", "123")
        assert store.consume_token("d" * 64, 5) is True
        assert store.consume_token("d" * 64, 6) is False
    with LiveStore.open(path) as store:
        assert store.cursors() == {"bar:0": "1700000060000", "trade:BTC/USDT": "123"}
        assert store.consume_token("d" * 64, 7) is False
        assert store.consume_token("e" * 64, 7) is True


# ------------------------------------------------------------------ sessions

def test_a_session_resumes_and_ends(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    open_store(path).close()
    with open_store(path) as store:
        assert [s.status for s in store.sessions()] == ["running"]
        ended = store.end_session(SESSION, "halted", at=50_000)
        assert (ended.status, ended.ended_at) == ("halted", 50_000)
        with pytest.raises(RuntimeError, match="not running"):
            store.end_session(SESSION, "stopped", at=50_001)
    with open_store(path) as store:
        assert store.session(SESSION).status == "running"  # type: ignore[union-attr]
        assert [e.event for e in store.log_since(0)] == [
            "session_started", "session_resumed", "session_ended", "session_resumed"]


@pytest.mark.parametrize(("field", "value"), [("params", {"fast": 11}), ("spec", "other"),
                                              ("artifact_sha256", "b" * 64)])
def test_a_resumed_session_must_be_the_same(tmp_path: Path, field: str, value: Any) -> None:
    path = tmp_path / "state.sqlite"
    open_store(path).close()
    settings_ = {"spec": "sma_cross", "artifact_sha256": "a" * 64, "mode": "testnet",
                 "account": "main", "exchange": "binance", "params": {"fast": 10}}
    with LiveStore.open(path) as store, pytest.raises(StoreError) as excinfo:
        store.start_session(SESSION, **{**settings_, field: value}, at=2_000)
    assert code_of(excinfo) == "E025"


@pytest.mark.parametrize(("field", "value"), [("mode", "live"), ("account", "other"),
                                              ("exchange", "kraken")])
def test_a_store_belongs_to_one_mode_account_and_exchange(tmp_path: Path, field: str,
                                                          value: str) -> None:
    path = tmp_path / "state.sqlite"
    open_store(path).close()
    binding = {"mode": "testnet", "account": "main", "exchange": "binance", field: value}
    with LiveStore.open(path) as store:
        with pytest.raises(StoreError) as excinfo:
            store.start_session("s2", spec="x", artifact_sha256="c" * 64, params={},
                                at=3_000, **binding)
        assert code_of(excinfo) == "E025"
        assert [s.id for s in store.sessions()] == [SESSION]


# ------------------------------------------------------------------ snapshots and atomicity

def test_a_bar_is_saved_with_its_intents_and_cursors(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    arrays = {"account": np.array([10_000.0, -3.5, np.nan]),
              "positions": np.arange(6, dtype=np.float64).reshape(2, 3),
              "ring": np.array([1, 2, 3], dtype=np.int64)}
    with open_store(path) as store:
        stored = store.save_bar(60_000, arrays, [intent(1), intent(1, leg=1)],
                                session=SESSION, cursors={"bar:0": "60000"})
        assert [i.id for i in stored] == [f"{SESSION}:0:1:0", f"{SESSION}:0:1:1"]
    with LiveStore.open(path) as store:
        snap = store.last_snapshot()
        assert snap is not None and (snap.session, snap.bar_time) == (SESSION, 60_000)
        assert sorted(snap.arrays) == sorted(arrays)
        for name, array in arrays.items():
            assert snap.arrays[name].dtype == array.dtype
            assert snap.arrays[name].shape == array.shape
            assert snap.arrays[name].tobytes() == array.tobytes()
        snap.arrays["account"][0] = 1.0  # the copy is the caller's
        assert store.get_cursor("bar:0") == "60000"
        assert len(store.intents()) == 2


def test_a_bar_is_all_or_nothing(store: LiveStore) -> None:
    store.save_bar(60_000, {"a": np.zeros(2)}, [intent(1, qty=1.0)], session=SESSION)
    before = dump(store.path)
    with pytest.raises(StoreError):  # the second intent conflicts with the first bar's
        store.save_bar(120_000, {"a": np.ones(2)}, [intent(2), intent(1, qty=2.0)],
                       session=SESSION, cursors={"bar:0": "120000"})
    assert dump(store.path) == before
    with pytest.raises(ValueError, match="not after"):
        store.save_bar(60_000, {"a": np.ones(2)}, [], session=SESSION)
    with pytest.raises(ValueError, match="numeric array"):
        store.save_bar(180_000, {"a": np.array([{}], dtype=object)}, [], session=SESSION)
    assert dump(store.path) == before
    assert store.last_snapshot().bar_time == 60_000  # type: ignore[union-attr]


def test_atomic_groups_writes_and_nests_as_savepoints(store: LiveStore) -> None:
    with pytest.raises(KeyError), store.atomic():
        store.set_cursor("a", "1")
        store.set_cursor("b", "1")
        raise KeyError("boom")
    assert store.cursors() == {}
    with store.atomic():
        store.set_cursor("a", "2")
        with pytest.raises(KeyError), store.atomic():
            store.set_cursor("b", "2")
            raise KeyError("inner")
        store.set_cursor("c", "2")
    assert store.cursors() == {"a": "2", "c": "2"}


def test_the_same_calls_give_the_same_database(tmp_path: Path) -> None:
    def session(path: Path) -> list[str]:
        with open_store(path) as store:
            cid = add_order(store, qty=2.0)
            store.set_order_status(cid, "open", at=6_100, exchange_order_id="X1")
            store.apply_fill(fill(cid, "t1", 1.0, 100.0, fee=0.1))
            store.save_bar(60_000, {"a": np.arange(3.0)}, [intent(2)], session=SESSION)
            store.engage_kill("test", "ci", at=9_000)
            store.consume_token("f" * 64, 9_100)
        return dump(path)

    assert session(tmp_path / "one.sqlite") == session(tmp_path / "two.sqlite")


# ------------------------------------------------------------------ opening and refusals

def test_a_new_store_uses_wal_full_sync_and_foreign_keys(store: LiveStore) -> None:
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("foreign_keys") == 1
    assert store.pragma("busy_timeout") == 5_000
    assert store.integrity_problems() == []
    assert store.path.parent.name == "live"


def set_meta(path: Path, key: str, value: str) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("version", [str(SCHEMA_VERSION + 1), "0", "x"])
@pytest.mark.parametrize("readonly", [False, True])
def test_an_unknown_schema_version_is_refused(tmp_path: Path, version: str,
                                              readonly: bool) -> None:
    path = tmp_path / "state.sqlite"
    open_store(path).close()
    content = set_meta(path, "schema_version", version)
    with pytest.raises(StoreError) as excinfo:
        LiveStore.open(path, readonly=readonly)
    assert code_of(excinfo) == "E022"
    assert f"schema version {version}" in excinfo.value.diagnostic.message
    assert path.read_bytes() == content


def test_a_sqlite_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (id TEXT)")
    conn.commit()
    conn.close()
    content = path.read_bytes()
    with pytest.raises(StoreError) as excinfo:
        LiveStore.open(path)
    assert code_of(excinfo) == "E021" and "not a peak live store" in str(excinfo.value)
    assert path.read_bytes() == content


def damage(path: Path) -> bytes:
    """Garbage over every page after the first (a torn or overwritten file)."""
    content = bytearray(path.read_bytes())
    content[4096:] = bytes((i * 7 + 3) % 251 for i in range(len(content) - 4096))
    path.write_bytes(bytes(content))
    return bytes(content)


@pytest.mark.parametrize("kind", ["garbage", "damaged pages", "folder"])
@pytest.mark.parametrize("readonly", [False, True])
def test_a_corrupt_or_unreadable_file_is_refused_and_left_alone(
        tmp_path: Path, kind: str, readonly: bool) -> None:
    path = tmp_path / "state.sqlite"
    if kind == "garbage":
        path.write_bytes(b"not a database at all\n" * 100)
    elif kind == "folder":
        path.mkdir()
    else:
        with open_store(path) as store:
            for bar in range(1, 40):
                store.log("bar", "x" * 400, at=bar)
        assert path.stat().st_size > 8192
    content = None if kind == "folder" else damage(path) if kind != "garbage" else \
        path.read_bytes()
    with pytest.raises(StoreError) as excinfo:
        LiveStore.open(path, readonly=readonly)
    assert code_of(excinfo) == "E021"
    assert excinfo.value.diagnostic.path == str(path)
    if content is not None:
        assert path.read_bytes() == content


def test_a_missing_store_is_not_created_when_asked_not_to(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.sqlite"
    for kwargs in ({"create": False}, {"readonly": True}):
        with pytest.raises(StoreError) as excinfo:
            LiveStore.open(path, **kwargs)  # type: ignore[arg-type]
        assert code_of(excinfo) == "E023"
    assert not (tmp_path / "deep").exists()
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    for kwargs in ({"create": False}, {"readonly": True}):
        with pytest.raises(StoreError) as excinfo:
            LiveStore.open(empty, **kwargs)  # type: ignore[arg-type]
        assert code_of(excinfo) == "E023"
    assert empty.read_bytes() == b""


def test_a_store_under_a_file_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError) as excinfo:
        LiveStore.open(tmp_path / "file" / "state.sqlite")
    assert code_of(excinfo) == "E024"


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"")
    with LiveStore.open(path) as store:
        assert store.kill_state().engaged is False


# ------------------------------------------------------------------ one writer at a time

def test_a_second_writer_is_refused_and_a_reader_is_not(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with open_store(path) as store:
        store.set_cursor("k", "v")
        with pytest.raises(StoreError) as excinfo:
            LiveStore.open(path)
        assert code_of(excinfo) == "E020"
        assert f"pid {os.getpid()}" in excinfo.value.diagnostic.message
        with LiveStore.open(path, readonly=True) as reader:
            assert reader.get_cursor("k") == "v"
            with pytest.raises(RuntimeError, match="read-only"):
                reader.set_cursor("k", "w")
    with LiveStore.open(path) as again:
        assert again.get_cursor("k") == "v"
    assert lock_path(path).exists()


def spawn(path: Path, *args: str) -> subprocess.Popen[bytes]:
    """Unbuffered binary pipes: ``readline`` then reads no further than the line, so
    ``communicate`` later gets every byte after it."""
    return subprocess.Popen([sys.executable, str(CHILD), str(path), *args], bufsize=0,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_lines(proc: subprocess.Popen[bytes], enough: int, prefix: str) -> list[str]:
    """The child's lines until ``enough`` of them start with ``prefix`` (bounded in time)."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    while sum(line.startswith(prefix) for line in lines) < enough:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        line = proc.stdout.readline() if ready else b""
        if not line:
            proc.kill()
            _, err = proc.communicate(timeout=DEADLINE_S)
            raise AssertionError(f"the child stopped before {enough} {prefix!r} lines: "
                                 f"{lines[-3:]} {err.decode()[-2000:]}")
        lines.append(line.decode().strip())
    return lines


def kill9(proc: subprocess.Popen[bytes]) -> list[str]:
    """SIGKILL the child and return the lines it printed (all of them: it flushed each)."""
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode in (-signal.SIGKILL, 0), err.decode()
    return out.decode().splitlines()


def test_the_lock_is_freed_when_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    holder = spawn(path, "hold")
    try:
        read_lines(holder, 1, "ready")
        with pytest.raises(StoreError) as excinfo:
            LiveStore.open(path)
        assert code_of(excinfo) == "E020"
        assert f"pid {holder.pid}" in excinfo.value.diagnostic.message
    finally:
        kill9(holder)
    assert holder.returncode == -signal.SIGKILL
    with LiveStore.open(path) as store:
        assert [s.id for s in store.sessions()] == ["crash"]


# ------------------------------------------------------------------ kill -9 while applying fills

def check_after_crash(path: Path, printed: list[str], seed: int) -> None:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    child = load_child()
    committed = {tuple(line.split()[1:]) for line in printed if line.startswith("applied")}
    with LiveStore.open(path) as store:
        stored = store.fills()
        assert committed <= {(f.market, f.trade_id) for f in stored}
        for order in store.orders():
            mine = store.fills(order.client_order_id)
            assert order.filled_qty == pytest.approx(sum(f.qty for f in mine), abs=1e-12)
            assert (order.status == "filled") == math.isclose(order.filled_qty, order.qty)
        for pos in store.positions():
            ours = [f for f in stored if f.market == pos.market]
            assert pos.qty == pytest.approx(sum(f.signed_qty for f in ours), abs=1e-9)
            assert pos.fees == pytest.approx(sum(f.fee for f in ours), abs=1e-9)
        child.run_plan(store, seed)  # the restarted runner does everything again
        everything = [f for step in child.plan(seed) for f in step.fills]
        assert len(store.fills()) == len(everything)
        for market in child.MARKETS:
            expected = sum(f.signed_qty for f in everything if f.market == market)
            assert store.position(market).qty == pytest.approx(expected, abs=1e-9)
        assert all(o.status == "filled" for o in store.orders())
        assert store.integrity_problems() == []


@pytest.mark.parametrize("seed", range(8))
def test_kill_9_while_applying_fills_loses_and_doubles_nothing(tmp_path: Path,
                                                               seed: int) -> None:
    """SIGKILL after a random number of committed fills: the child is then anywhere in the
    order lifecycle (snapshot, write-ahead order, status, the next fill)."""
    path = tmp_path / "state.sqlite"
    total = sum(len(step.fills) for step in load_child().plan(seed))
    proc = spawn(path, "fills", str(seed))
    try:
        printed = read_lines(proc, random.Random(seed).randint(1, total - 1), "applied")
    finally:
        printed_after = kill9(proc)
    assert proc.returncode == -signal.SIGKILL
    check_after_crash(path, printed + printed_after, seed)
