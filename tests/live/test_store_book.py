"""Positions and orders after fills: peakdsl/live/store_book.py."""

from __future__ import annotations

import pytest

from peakdsl.live.store_book import book_fill, fee_effect, order_after_fill, trade
from peakdsl.live.store_rows import Fill, Order, OrderStatus, Position


@pytest.mark.parametrize(("qty", "avg", "delta", "price", "after"), [
    (0.0, 0.0, 1.0, 100.0, (1.0, 100.0, 0.0)),        # open long
    (1.0, 100.0, 1.0, 110.0, (2.0, 105.0, 0.0)),      # add: average
    (2.0, 105.0, -1.5, 120.0, (0.5, 105.0, 22.5)),    # reduce: realize on the closed part
    (0.5, 105.0, -1.0, 100.0, (-0.5, 100.0, -2.5)),   # through zero: the rest opens at price
    (-0.5, 100.0, -0.5, 90.0, (-1.0, 95.0, 0.0)),     # add to a short
    (-1.0, 95.0, 0.25, 85.0, (-0.75, 95.0, 2.5)),     # cover part of a short at a profit
    (-0.75, 95.0, 0.75, 100.0, (0.0, 0.0, -3.75)),    # close a short at a loss: flat
])
def test_a_trade_on_literal_numbers(qty: float, avg: float, delta: float, price: float,
                                    after: tuple[float, float, float]) -> None:
    assert trade(qty, avg, delta, price) == after


def test_closing_exactly_leaves_a_flat_position_without_dust() -> None:
    qty, avg = 0.0, 0.0
    for _ in range(3):
        qty, avg, _ = trade(qty, avg, 0.1, 100.0)
    assert qty == 0.30000000000000004
    assert trade(qty, avg, -0.3, 110.0) == (0.0, 0.0, pytest.approx(3.0))



def fill(qty: float, price: float, fee: float = 0.0, currency: str = "",
         side: str = "buy") -> Fill:
    return Fill("t1", "pk1", "BTC/USDT", side, qty, price, fee, currency, 7)  # type: ignore[arg-type]


@pytest.mark.parametrize(("made", "effect"), [
    (fill(1.0, 100.0), (0.0, 0.0)),
    (fill(1.0, 100.0, 0.1, "USDT"), (0.1, 0.0)),
    (fill(1.0, 100.0, 0.001, "BTC"), (0.1, 0.001)),
    (fill(1.0, 100.0, 0.0002, "BNB"), None),
])
def test_the_fee_in_quote_currency(made: Fill, effect: tuple[float, float] | None) -> None:
    assert fee_effect(made) == effect


def test_a_base_fee_leaves_the_average_and_the_pnl_alone() -> None:
    pos = book_fill(Position("BTC/USDT"), fill(1.0, 100.0, 0.001, "BTC"), 0.1, 0.001)
    assert pos == Position("BTC/USDT", 0.999, 100.0, 0.0, 0.1, 7)
    pos = book_fill(pos, fill(0.999, 120.0, 0.11988, "USDT", side="sell"), 0.11988, 0.0)
    assert (pos.qty, pos.average_price) == (0.0, 0.0)
    assert pos.fees == pytest.approx(0.21988, abs=1e-15)
    assert pos.realized_pnl == pytest.approx(19.98, abs=1e-12)


def order(status: OrderStatus, filled: float = 0.0, average: float = 0.0) -> Order:
    return Order("pk1", None, "BTC/USDT", "buy", "market", 1.0, None, 1, status, None, filled,
                 average, 0, 0)


@pytest.mark.parametrize(("status", "filled", "qty", "after"), [
    ("open", 0.0, 0.4, (0.4, 100.0, "partially_filled")),
    ("open", 0.0, 1.0, (1.0, 100.0, "filled")),
    ("partially_filled", 0.5, 0.5, (1.0, 100.0, "filled")),
    ("cancelling", 0.0, 0.4, (0.4, 100.0, "cancelling")),
    ("cancelled", 0.25, 0.5, (0.75, 100.0, "cancelled")),  # a late fill keeps the status
    ("filled", 0.6, 0.4, (1.0, 100.0, "filled")),       # trades fetched after the status
    ("open", 0.0, 1.0 + 1e-12, (1.0 + 1e-12, 100.0, "filled")),  # float noise, not overfill
    ("open", 0.5, 0.6, None),                           # more than the order
    ("new", 0.0, 0.4, None), ("rejected", 0.0, 0.4, None),
])
def test_an_order_after_a_fill(status: OrderStatus, filled: float, qty: float,
                               after: tuple[float, float, str] | None) -> None:
    assert order_after_fill(order(status, filled, 100.0 if filled else 0.0),
                            fill(qty, 100.0)) == after


def test_the_order_average_is_weighted_by_quantity() -> None:
    assert order_after_fill(order("partially_filled", 0.4, 100.0), fill(0.6, 110.0)) == \
        (1.0, pytest.approx(106.0, rel=1e-15), "filled")
