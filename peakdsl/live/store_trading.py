"""Intents, orders, fills and positions: the trading half of the live state store.

An intent is recorded once per (session, slot, bar, leg); an order moves only along
``store_rows.TRANSITIONS``; a fill is applied once per (market, trade id), together with its
order's quantities and the market's position, in one transaction. The same record again
changes nothing; a different one under a known id is refused (E025).
"""

from __future__ import annotations

from dataclasses import astuple

from .store_base import (
    FILL_FIELDS,
    INTENT_FIELDS,
    ORDER_FIELDS,
    POSITION_FIELDS,
    StoreBase,
    columns,
    differences,
    insert_sql,
)
from .store_book import book_fill, fee_effect, order_after_fill
from .store_rows import (
    INSERT_STATUSES,
    ORDER_STATUSES,
    Fill,
    IllegalTransition,
    Intent,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    can_transition,
    same_payload,
)
from .store_schema import refusal


class TradingStore(StoreBase):
    """``LiveStore``'s intents, orders, fills and positions (see ``store.LiveStore``)."""

    # ------------------------------------------------------------------ intents

    def record_intent(self, intent: Intent) -> Intent:
        """Record an intent once; the same intent again returns the stored row (its
        ``created_at`` may differ: a replayed bar), a different one under its id is E025."""
        with self.atomic():
            stored = self.intent(intent.id)
            if stored is None:
                self._exec(insert_sql("intents", ("id", *INTENT_FIELDS)),
                           (intent.id, *astuple(intent)))
                return intent
        if not same_payload(stored, intent):
            raise refusal("E025", self.path, f"intent {intent.id} was recorded differently: "
                          f"{differences(stored, intent, INTENT_FIELDS[:-1])}")
        return stored

    def intent(self, intent_id: str) -> Intent | None:
        row = self._one(f"SELECT {columns(Intent)} FROM intents WHERE id = ?", (intent_id,))
        return None if row is None else Intent(**dict(row))

    def intents(self, session: str | None = None) -> list[Intent]:
        """Every intent (of one session), in bar, slot and leg order."""
        rows = self._rows(f"SELECT {columns(Intent)} FROM intents WHERE ?1 IS NULL OR "
                          "session = ?1 ORDER BY bar, slot, leg, session", (session,))
        return [Intent(**dict(r)) for r in rows]

    # ------------------------------------------------------------------ orders

    def add_order(self, request: OrderRequest, *, at: int, status: OrderStatus = "new",
                  exchange_order_id: str | None = None) -> Order:
        """Record an order as ``new`` or, write-ahead, ``submitting`` (the runner commits
        that BEFORE it calls the exchange); ``open``/``partially_filled`` adopt an exchange
        order found by reconciliation. The same request again returns the stored order."""
        if status not in INSERT_STATUSES:
            raise IllegalTransition(f"an order cannot be recorded as {status}")
        with self.atomic():
            stored = self.order(request.client_order_id)
            if stored is None:
                self._exec(insert_sql("orders", ORDER_FIELDS), (
                    *astuple(request), status, exchange_order_id, 0.0, 0.0, at, at))
                return self._order_or_fail(request.client_order_id)
        if stored.request != request:
            raise refusal("E025", self.path, f"order {request.client_order_id} was recorded "
                          f"differently: {differences(stored.request, request, ORDER_FIELDS[:8])}")
        return stored

    def set_order_status(self, client_order_id: str, status: OrderStatus, *, at: int,
                         exchange_order_id: str | None = None) -> Order:
        """Move an order along ``TRANSITIONS`` (the same status again changes nothing but may
        add the exchange's order id); an illegal move raises ``IllegalTransition``."""
        if status not in ORDER_STATUSES:
            raise ValueError(f"unknown order status {status!r}")
        with self.atomic():
            stored = self._order_or_fail(client_order_id)
            if not can_transition(stored.status, status):
                raise IllegalTransition(f"order {client_order_id}: {stored.status} → {status}")
            known = self._exchange_id(stored, exchange_order_id)
            if (status, known) != (stored.status, stored.exchange_order_id):
                self._exec("UPDATE orders SET status = ?, exchange_order_id = ?, "
                           "updated_at = ? WHERE client_order_id = ?",
                           (status, known, at, client_order_id))
        return self._order_or_fail(client_order_id)

    def _exchange_id(self, stored: Order, given: str | None) -> str | None:
        if given is None or stored.exchange_order_id in (None, given):
            return given or stored.exchange_order_id
        raise refusal("E025", self.path, f"order {stored.client_order_id} has exchange id "
                      f"{stored.exchange_order_id}, not {given}")

    def order(self, client_order_id: str) -> Order | None:
        row = self._one(f"SELECT {columns(Order)} FROM orders WHERE client_order_id = ?",
                        (client_order_id,))
        return None if row is None else Order(**dict(row))

    def _order_or_fail(self, client_order_id: str) -> Order:
        found = self.order(client_order_id)
        if found is None:
            raise KeyError(f"no order {client_order_id!r} in {self.path}")
        return found

    def orders(self, *statuses: OrderStatus, intent_id: str | None = None) -> list[Order]:
        """Orders (in these statuses, of this intent), oldest first."""
        wanted = statuses or ORDER_STATUSES
        marks = ", ".join("?" * len(wanted))
        rows = self._rows(f"SELECT {columns(Order)} FROM orders WHERE status IN ({marks}) "
                          "AND (? IS NULL OR intent_id = ?) ORDER BY created_at, attempt, "
                          "client_order_id", (*wanted, intent_id, intent_id))
        return [Order(**dict(r)) for r in rows]

    # ------------------------------------------------------------------ fills & positions

    def apply_fill(self, fill: Fill) -> bool:
        """Apply a trade once: the fill, its order's filled quantity, average and status, and
        the market's position, in one transaction. A trade id seen before returns False and
        changes nothing (E025 if the exchange now reports it differently). Refusals: E026
        (no such order, another market or side, more than the order's quantity, an order
        that cannot fill), E027 (a fee the store cannot value)."""
        with self.atomic():
            stored = self._fill(fill.market, fill.trade_id)
            if stored is not None:
                if stored != fill:
                    raise refusal("E025", self.path, f"trade {fill.trade_id} on {fill.market} "
                                  f"was recorded differently: "
                                  f"{differences(stored, fill, FILL_FIELDS)}")
                return False
            order = self._fill_order(fill)
            after = order_after_fill(order, fill)
            fee = fee_effect(fill)
            if after is None:
                raise refusal("E026", self.path, f"trade {fill.trade_id} of {fill.qty} does "
                              f"not fit order {order.client_order_id} ({order.status}, "
                              f"{order.filled_qty} of {order.qty} filled)")
            if fee is None:
                raise refusal("E027", self.path, f"trade {fill.trade_id} on {fill.market} "
                              f"paid its fee in {fill.fee_currency}")
            self._book(fill, order, after, fee)
        return True

    def _fill_order(self, fill: Fill) -> Order:
        order = self.order(fill.client_order_id)
        if order is None or (order.market, order.side) != (fill.market, fill.side):
            what = "no such order" if order is None else \
                f"the order is a {order.side} on {order.market}"
            raise refusal("E026", self.path, f"trade {fill.trade_id} ({fill.side} {fill.qty} "
                          f"{fill.market}) names order {fill.client_order_id}: {what}")
        return order

    def _book(self, fill: Fill, order: Order, after: tuple[float, float, OrderStatus],
              fee: tuple[float, float]) -> None:
        filled, average, status = after
        if not can_transition(order.status, status):  # FILL_STATUS lies inside TRANSITIONS
            raise IllegalTransition(f"order {order.client_order_id}: {order.status} → {status}")
        self._exec(insert_sql("fills", FILL_FIELDS), astuple(fill))
        self._exec("UPDATE orders SET filled_qty = ?, average_price = ?, status = ?, "
                   "updated_at = ? WHERE client_order_id = ?",
                   (filled, average, status, max(order.updated_at, fill.at),
                    order.client_order_id))
        pos = book_fill(self.position(fill.market), fill, *fee)
        self._exec(f"INSERT OR REPLACE INTO positions ({columns(Position)}) VALUES "
                   f"({', '.join('?' * len(POSITION_FIELDS))})", astuple(pos))

    def _fill(self, market: str, trade_id: str) -> Fill | None:
        row = self._one(f"SELECT {columns(Fill)} FROM fills WHERE market = ? AND "
                        "trade_id = ?", (market, trade_id))
        return None if row is None else Fill(**dict(row))

    def fills(self, client_order_id: str | None = None) -> list[Fill]:
        """Every fill (of one order), in time order."""
        rows = self._rows(f"SELECT {columns(Fill)} FROM fills WHERE ?1 IS NULL OR "
                          "client_order_id = ?1 ORDER BY at, market, trade_id",
                          (client_order_id,))
        return [Fill(**dict(r)) for r in rows]

    def position(self, market: str) -> Position:
        """The position in ``market`` (flat when it never traded)."""
        row = self._one(f"SELECT {columns(Position)} FROM positions WHERE market = ?",
                        (market,))
        return Position(market) if row is None else Position(**dict(row))

    def positions(self) -> list[Position]:
        rows = self._rows(f"SELECT {columns(Position)} FROM positions ORDER BY market")
        return [Position(**dict(r)) for r in rows]

