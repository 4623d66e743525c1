"""Bookkeeping of the live state store: what a fill does to a position and to its order.

Pure functions on ``store_rows`` rows, no database. A position is kept at its average entry
price: adding averages it, reducing realizes PnL on the closed part, going through zero opens
the rest at the fill's price. Realized PnL is before fees; fees are counted in the quote
currency, and a fee charged in the base currency also takes that much out of the position
(what the exchange does). ``LiveStore.apply_fill`` writes all of it in one transaction.
"""

from __future__ import annotations

from .store_rows import (
    FILL_STATUS,
    REL_TOL,
    Fill,
    Order,
    OrderStatus,
    Position,
    close_to,
)


def market_currencies(market: str) -> tuple[str, str]:
    """(base, quote) of ``BASE/QUOTE``."""
    base, _, quote = market.partition("/")
    return base, quote


def trade(qty: float, avg: float, delta: float, price: float) -> tuple[float, float, float]:
    """(quantity, average price, realized PnL) after trading ``delta`` (signed) at ``price``.

    Adding to a position (or opening one) averages its price; reducing realizes PnL on the
    closed part at the average; going through zero opens the rest at ``price``. A result
    within float noise of zero is flat (and has average 0).
    """
    new = qty + delta
    if abs(new) <= REL_TOL * max(abs(qty), abs(delta)):
        new = 0.0
    if qty == 0:
        return new, price, 0.0
    if (qty > 0) == (delta > 0):
        return new, (abs(qty) * avg + abs(delta) * price) / abs(new), 0.0
    closed = min(abs(delta), abs(qty))
    realized = closed * (price - avg) * (1.0 if qty > 0 else -1.0)
    if new == 0:
        return 0.0, 0.0, realized
    return new, (avg if abs(delta) < abs(qty) else price), realized


def book_fill(pos: Position, fill: Fill, fee_quote: float, fee_base: float) -> Position:
    """``pos`` after ``fill``; the fee costs ``fee_quote`` (quote currency) and, when charged
    in the base currency, takes ``fee_base`` out of the position at its average (no PnL)."""
    qty, avg, realized = trade(pos.qty, pos.average_price, fill.signed_qty, fill.price)
    if fee_base:
        qty, avg, extra = trade(qty, avg, -fee_base, avg if qty else fill.price)
        realized += extra
    return Position(pos.market, qty, avg, pos.realized_pnl + realized, pos.fees + fee_quote,
                    fill.at)


def fee_effect(fill: Fill) -> tuple[float, float] | None:
    """(fee in quote currency, base quantity taken) of a fill; None when the fee's currency
    is neither the market's base nor its quote (the store cannot value it)."""
    if fill.fee == 0:
        return 0.0, 0.0
    base, quote = market_currencies(fill.market)
    if fill.fee_currency == quote:
        return fill.fee, 0.0
    if fill.fee_currency == base:
        return fill.fee * fill.price, fill.fee
    return None


def order_after_fill(order: Order, fill: Fill) -> tuple[float, float, OrderStatus] | None:
    """(filled quantity, average price, status) of ``order`` after ``fill``; None when the
    order cannot take it (a status without fills, or more than its quantity)."""
    statuses = FILL_STATUS.get(order.status)
    filled = order.filled_qty + fill.qty
    if statuses is None or (filled > order.qty and not close_to(filled, order.qty)):
        return None
    average = (order.filled_qty * order.average_price + fill.qty * fill.price) / filled
    done = close_to(filled, order.qty)
    return filled, average, statuses[1] if done else statuses[0]
