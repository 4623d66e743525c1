"""Rows, the order state machine and client order ids: peakdsl/live/store_rows.py."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakdsl.engine.results import EXIT_REASONS
from peakdsl.live.store_rows import (
    FILL_STATUS,
    ORDER_STATUSES,
    TRANSITIONS,
    Fill,
    Intent,
    OrderRequest,
    can_transition,
    client_order_id,
    intent_id,
)

SESSION = "s1"


def test_the_transition_table() -> None:
    assert {
        "new": {"submitting", "cancelled"},
        "submitting": {"open", "partially_filled", "filled", "rejected", "expired", "unknown"},
        "unknown": {"open", "partially_filled", "filled", "rejected", "cancelled", "expired"},
        "open": {"partially_filled", "filled", "cancelling", "cancelled", "expired"},
        "partially_filled": {"filled", "cancelling", "cancelled", "expired"},
        "cancelling": {"cancelled", "filled", "expired", "open", "partially_filled"},
        "filled": set(), "cancelled": set(), "rejected": set(), "expired": set(),
    } == TRANSITIONS
    assert set(TRANSITIONS) == set(ORDER_STATUSES)


def test_fills_move_orders_only_along_the_table() -> None:
    for old, (partial, complete) in FILL_STATUS.items():
        assert can_transition(old, partial) and can_transition(old, complete), old
    assert set(ORDER_STATUSES) - set(FILL_STATUS) == {"new", "rejected"}


IDS = st.tuples(st.text(min_size=1, max_size=40), st.integers(0, 10**6),
                st.integers(-10**13, 10**13), st.integers(0, 9), st.integers(1, 100))


def test_client_order_ids_are_pinned() -> None:
    """The encoding must never change: a restarted runner finds its orders by these ids."""
    assert client_order_id("s1", 0, 1, 0, 1) == client_order_id("s1", 0, 1, 0, 1)
    assert client_order_id("s1", 0, 1, 0, 1) == "pkl2x72iupfhyq33k32eg47hhusirnnjhf"
    assert client_order_id("s1", 0, 1, 0, 2) == "pkc23dbxdnrip7griqk4r2eqiwi5y3ihzv"


@settings(max_examples=300, deadline=None)
@given(IDS, IDS)
def test_client_order_ids_fit_binance_and_differ_for_different_inputs(
        a: tuple[str, int, int, int, int], b: tuple[str, int, int, int, int]) -> None:
    first, second = client_order_id(*a), client_order_id(*b)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,36}", first)
    assert (first == second) == (a == b)
    assert client_order_id(*a[:4], a[4] + 1) != first  # a resend gets a new id


@pytest.mark.parametrize("args", [("", 0, 0, 0, 1), ("s", 0, 0, 0, 0), ("s", True, 0, 0, 1),
                                  ("s", 0, 1.0, 0, 1)])
def test_client_order_id_rejects_bad_parts(args: tuple[Any, ...]) -> None:
    with pytest.raises((ValueError, TypeError)):
        client_order_id(*args)


@pytest.mark.parametrize(("decision", "approved"), [("approved", 0.5), ("reduced", 1.0),
                                                    ("reduced", 0.0), ("denied", 0.5)])
def test_an_intent_agrees_with_its_risk_decision(decision: str, approved: float) -> None:
    with pytest.raises(ValueError, match="cannot have approved_qty"):
        Intent(SESSION, 0, 1, 0, "BTC/USDT", "buy", 1.0, approved, decision,  # type: ignore[arg-type]
               "order_notional", "signal", 0)


def test_an_intent_knows_its_id_and_its_orders_ids() -> None:
    made = Intent(SESSION, 2, 1_700_000_000_000, 1, "BTC/USDT", "sell", 0.5, 0.25, "reduced",
                  "symbol_exposure", "take_profit", 0)
    assert made.id == intent_id(SESSION, 2, 1_700_000_000_000, 1) == "s1:2:1700000000000:1"
    assert made.client_order_id(3) == client_order_id(SESSION, 2, 1_700_000_000_000, 1, 3)


EXIT_REASONS_BOOKED = [r for r in EXIT_REASONS if r not in ("end_of_data", "open")]


@pytest.mark.parametrize("reason", EXIT_REASONS_BOOKED)
def test_every_exit_the_book_makes_is_an_intent_reason(reason: str) -> None:
    """A live exit carries the engine's reason: `max_hold` (a trade rule) included."""
    made = Intent(SESSION, 0, 1, 0, "BTC/USDT", "sell", 1.0, 1.0, "approved", "approved",
                  reason, 0)
    assert made.reason == reason



@pytest.mark.parametrize("change", [
    {"qty": math.nan}, {"qty": 0.0}, {"qty": -1.0}, {"side": "long"}, {"market": "BTCUSDT"},
    {"market": "BTC/USDT:USDT"}, {"reason": "hunch"}, {"created_at": -1}, {"slot": 1.0},
    {"risk_reason": "Not A Word"}])
def test_a_bad_intent_is_a_bug_in_the_caller(change: dict[str, Any]) -> None:
    fields_ = {"session": SESSION, "slot": 0, "bar": 1, "leg": 0, "market": "BTC/USDT",
               "side": "buy", "qty": 1.0, "approved_qty": 1.0, "decision": "approved",
               "risk_reason": "approved", "reason": "signal", "created_at": 0}
    with pytest.raises((ValueError, TypeError)):
        Intent(**{**fields_, "approved_qty": change.get("qty", 1.0), **change})


@pytest.mark.parametrize("args", [
    ("pk 1", None, "BTC/USDT", "buy", "market", 1.0, None, 1),    # not Binance's alphabet
    ("p" * 37, None, "BTC/USDT", "buy", "market", 1.0, None, 1),  # longer than 36
    ("pk1", None, "BTC/USDT", "buy", "limit", 1.0, None, 1),      # a limit without price
    ("pk1", None, "BTC/USDT", "buy", "market", 1.0, 100.0, 1),    # a market with a price
    ("pk1", None, "BTC/USDT", "buy", "market", math.inf, None, 1),
    ("pk1", None, "BTC/USDT", "buy", "market", 1.0, None, 0)])
def test_a_bad_order_request_is_a_bug_in_the_caller(args: tuple[Any, ...]) -> None:
    with pytest.raises((ValueError, TypeError)):
        OrderRequest(*args)


@pytest.mark.parametrize(("fee", "currency"), [(-0.1, "USDT"), (math.nan, "USDT"),
                                               (0.1, "")])
def test_a_bad_fill_is_a_bug_in_the_caller(fee: float, currency: str) -> None:
    with pytest.raises(ValueError):
        Fill("t1", "pk1", "BTC/USDT", "buy", 1.0, 100.0, fee, currency, 0)
    assert Fill("t1", "pk1", "BTC/USDT", "buy", 1.0, 100.0, 0.0, "", 0).signed_qty == 1.0
