"""The venue executor: the book's fills become orders on an exchange, each sent exactly once.

The book (``ClockBook``) is the strategy's model of the account: it decides, the shared risk
stage approves, and its fills are what the strategy *wants* done. In testnet and live mode
this adapter turns each of them into an order:

1. an ``Intent`` (session, slot, absolute bar, leg: 0 exit, 1 entry) and its order are
   written to the store as ``submitting`` in one transaction **before** the exchange is
   called (write-ahead) — the client order id is derived from the intent and the attempt,
   so a restart that replays the bar finds the same order instead of sending a second one;
2. ``Venue.submit`` sends ``create_order`` once; an unknown outcome is resolved by client
   id (found → adopted; not found after N queries → rejected and, while the bar is still
   current, resent once under the next attempt's id; unresolved → no new order until it is);
3. the exchange's trades are applied to the store once each (by trade id), which moves the
   order's status and the market's position.

Entries are rounded *down* to the market's step and dropped below its minimums (E036);
exits sell what the slot actually holds on the exchange (its filled buys less base-asset
fees), never the model's figure. Sells of more than is held and short entries never reach
the exchange: spot has no shorts. A fatal venue error (credentials refused, an exchange fault
peak cannot classify) or ``max_errors`` consecutive failures trip the kill switch; once it
is engaged nothing more is sent.

``crashpoint`` names the moments of the order lifecycle a ``kill -9`` test stops the process
at (``PEAK_LIVE_CRASH_AT=name[:n]``, a test-only hook that does nothing unless set).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .clockbook import Fill, PointReport
from .paper import intent_of
from .session import SlotSpec
from .store import LiveStore
from .store_rows import Fill as StoreFill
from .store_rows import Intent, Order, OrderRequest
from .venue import ExchangeOrder, ResolveState, SubmitResult, SubmitStatus, Venue
from .venue import OrderRequest as VenueOrder

LIVE_ORDER = ("submitting", "unknown", "open", "partially_filled", "cancelling")
PLACED = ("open", "partially_filled", "cancelling", "filled")
EXCHANGE_STATUS = {"open": "open", "closed": "filled", "canceled": "cancelled",
                   "cancelled": "cancelled", "expired": "expired", "rejected": "rejected"}
CRASH_ENV = "PEAK_LIVE_CRASH_AT"
# the order lifecycle's crash points, in the order a bar reaches them
CRASH_POINTS = ("reconciled", "intent_recorded", "write_ahead", "submitted", "accepted",
                "resolved", "fill_applied", "stepped", "saved")
_crash_counts: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """``kill -9`` this process at ``name`` when the test hook asks for it (``name`` or
    ``name:n``, the n-th time it is reached); nothing otherwise."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class ExecutorSettings:
    max_errors: int = 5  # consecutive exchange failures before the kill switch trips
    resolve_attempts: int = 3
    resends: int = 1  # a NOT_FOUND order is sent again this many times, under new ids


@dataclass
class ExecutorState:
    errors: int = 0  # consecutive exchange failures (reset by a success)
    failures: int = 0  # every exchange failure of the run (alerts count new ones)
    blocked: bool = False  # an order is unresolved: nothing new until it is
    notes: list[str] = field(default_factory=list)
    resent: dict[str, int] = field(default_factory=dict)  # resends made, by intent id


def base_of(market: str) -> str:
    return market.split("/", maxsplit=1)[0]


class VenueExecutor:
    """The ``Adapter`` of testnet and live sessions (module docstring)."""

    def __init__(self, store: LiveStore, venue: Venue, session_id: str, *,
                 now_ms: Callable[[], int], kill: Callable[[str], None],
                 settings: ExecutorSettings = ExecutorSettings()) -> None:
        self.store, self.venue, self.session_id = store, venue, session_id
        self.now_ms, self.kill, self.settings = now_ms, kill, settings
        self.state = ExecutorState()

    # ------------------------------------------------------------------ the adapter

    def execute(self, report: PointReport, slots: Sequence[SlotSpec]) -> None:
        markets = sorted({slots[f.slot].market for f in report.fills}
                         | {o.market for o in self.store.orders("open", "partially_filled",
                                                                  "cancelling")})
        for fill in report.fills:
            if self._stopped():
                self._note(f"{slots[fill.slot].label}: {fill.reason} on bar "
                           f"{report.time:.0f} not sent: the kill switch is engaged")
                continue
            self._place(fill, fill.slot, slots[fill.slot])
        for market in markets:
            self.sync_fills(market)

    def _stopped(self) -> bool:
        return self.store.kill_state().engaged

    def _note(self, text: str, level: str = "warning") -> None:
        self.state.notes.append(text)
        self.store.log("executor", text, at=self.now_ms(), level=level,  # type: ignore[arg-type]
                       session=self.session_id)

    # ------------------------------------------------------------------ one intent

    def intent_for(self, fill: Fill, slot: int, spec: SlotSpec) -> Intent:
        """The fill's intent, as paper deployments record it (``paper.intent_of``)."""
        return intent_of(self.session_id, replace(fill, slot=slot), spec, self.now_ms())

    def _place(self, fill: Fill, slot: int, spec: SlotSpec) -> None:
        if fill.side < 0 and fill.reason == "entry":
            self._note(f"{spec.label}: a short entry is not possible on a spot venue: "
                       "not sent")
            return
        intent = self.store.record_intent(self.intent_for(fill, slot, spec))
        crashpoint("intent_recorded")
        orders = self.store.orders(intent_id=intent.id)
        if any(o.status in PLACED for o in orders):
            return  # a replayed bar: this intent's order is on the exchange already
        pending = [o for o in orders if o.status in ("submitting", "unknown")]
        if pending:
            self._settle(pending[-1])
            return
        if self.state.blocked:
            self._note(f"{spec.label}: {fill.reason} not sent: an earlier order is still "
                       "unresolved")
            return
        qty = self._quantity(fill, slot, spec)
        if qty > 0:
            self._submit(intent, qty, len(orders) + 1)

    def _quantity(self, fill: Fill, slot: int, spec: SlotSpec) -> Decimal:
        """Entries: the model's quantity rounded down; exits: what the slot holds."""
        wanted = Decimal(str(fill.qty)) if fill.reason == "entry" else self.held(slot, spec)
        if wanted <= 0:
            self._note(f"{spec.label}: {fill.reason}: nothing held on the exchange to sell")
            return Decimal(0)
        rounded = self.venue.round_qty_down(spec.market, wanted, fill.price)
        if rounded.diagnostic is not None:
            self._note(f"{spec.label}: {rounded.diagnostic.message} (E036)")
        return rounded.qty

    def held(self, slot: int, spec: SlotSpec) -> Decimal:
        """The slot's position on the exchange: its filled buys less its sells and the fees
        paid in the base asset."""
        prefix = f"{self.session_id}:{slot}:"
        total = Decimal(0)
        for order in self.store.orders():
            if order.intent_id is None or not order.intent_id.startswith(prefix):
                continue
            for f in self.store.fills(order.client_order_id):
                qty = Decimal(str(f.qty))
                total += qty if f.side == "buy" else -qty
                if f.fee_currency == base_of(spec.market):
                    total -= Decimal(str(f.fee))
        return max(total, Decimal(0))

    def _submit(self, intent: Intent, qty: Decimal, attempt: int) -> None:
        request = OrderRequest(intent.client_order_id(attempt), intent.id, intent.market,
                               intent.side, "market", float(qty), None, attempt)
        self.store.add_order(request, at=self.now_ms(), status="submitting")
        crashpoint("write_ahead")
        result = self.venue.submit(VenueOrder(intent.market, intent.side, qty,
                                              request.client_order_id))
        crashpoint("submitted")
        self._handle(intent, request, result)

    def _handle(self, intent: Intent, request: OrderRequest, result: SubmitResult) -> None:
        cid = request.client_order_id
        if result.status is SubmitStatus.ACCEPTED and result.order is not None:
            self.adopt(cid, result.order)
            crashpoint("accepted")
            self.state.errors = 0
        elif result.status is SubmitStatus.REJECTED:
            self.store.set_order_status(cid, "rejected", at=self.now_ms())
            self._failure(f"order {cid} rejected: {self._why(result)}")
        elif result.status is SubmitStatus.FATAL:
            self.store.set_order_status(cid, "unknown", at=self.now_ms())
            self.kill(f"order {cid}: {self._why(result)}")
        else:
            self.store.set_order_status(cid, "unknown", at=self.now_ms())
            self._failure(f"order {cid}: no answer ({result.error}); resolving by client id")
            order = self.store.order(cid)
            if order is not None:
                self._settle(order, intent)

    @staticmethod
    def _why(result: SubmitResult) -> str:
        return result.diagnostic.message if result.diagnostic is not None else result.error

    def _failure(self, text: str) -> None:
        self.state.errors += 1
        self.state.failures += 1
        self._note(text, "error")
        if self.state.errors >= self.settings.max_errors:
            self.kill(f"{self.state.errors} consecutive exchange errors, the last: {text}")

    # ------------------------------------------------------------------ unknown orders

    def _settle(self, order: Order, intent: Intent | None = None) -> None:
        """Resolve a ``submitting``/``unknown`` order by its client id (module docstring)."""
        found = self.venue.resolve(order.market, order.client_order_id,
                                   self.settings.resolve_attempts)
        crashpoint("resolved")
        if found.state is ResolveState.FOUND and found.order is not None:
            self.adopt(order.client_order_id, found.order)
            self.state.blocked = False
            self.state.errors = 0
        elif found.state is ResolveState.NOT_FOUND:
            self._not_sent(order, intent)
        elif found.state is ResolveState.FATAL:
            self.kill(f"looking up order {order.client_order_id}: "
                      f"{found.diagnostic.message if found.diagnostic else 'fatal'}")
        else:
            self.state.blocked = True
            self._failure(f"order {order.client_order_id} is still unresolved")

    def _not_sent(self, order: Order, intent: Intent | None) -> None:
        self.store.set_order_status(order.client_order_id, "rejected", at=self.now_ms())
        self.state.blocked = False
        self._note(f"order {order.client_order_id} never reached the exchange")
        if intent is None:
            return
        done = self.state.resent.get(intent.id, 0)
        if done < self.settings.resends:  # counted per run: a crash's unsent write-ahead
            self.state.resent[intent.id] = done + 1  # order does not use the allowance up
            self._submit(intent, Decimal(str(order.qty)), order.attempt + 1)

    def adopt(self, cid: str, found: ExchangeOrder) -> None:
        """Take the exchange's word for an order's state (fills come with its trades)."""
        order = self.store.order(cid)
        if order is None:
            return
        if order.status in ("submitting", "unknown"):
            self.store.set_order_status(cid, "open", at=self.now_ms(),
                                        exchange_order_id=found.order_id)
        elif order.exchange_order_id is None:
            self.store.set_order_status(cid, order.status, at=self.now_ms(),
                                        exchange_order_id=found.order_id)
        status = EXCHANGE_STATUS.get(found.status)
        if status in ("cancelled", "expired", "rejected") and found.filled == 0:
            current = self.store.order(cid)
            if current is not None and current.status in ("open", "partially_filled"):
                self.store.set_order_status(cid, "cancelled" if status == "rejected"
                                            else status, at=self.now_ms())  # type: ignore[arg-type]

    # ------------------------------------------------------------------ fills

    def sync_fills(self, market: str) -> int:
        """Apply the exchange's new trades in ``market`` once each; the count applied.

        A trade of an order the store cannot name while one of our orders there is still
        ``submitting``/``unknown`` may be that order's: the pending orders are resolved first,
        and if the trade is still unnamed the cursor stays on it, to be read again — a fill is
        never skipped because its order's answer was lost."""
        cursor = self.trade_cursor(market)
        trades = self.venue.trades_since(market, from_id=cursor)
        names = self._exchange_ids()
        applied, next_id = 0, None
        for trade in trades:
            order = names.get(trade.order_id)
            if order is None and self._pending(market):
                self._resolve_pending(market)
                names = self._exchange_ids()
                order = names.get(trade.order_id)
                if order is None and self._pending(market):
                    self._note(f"{market}: trade {trade.trade_id} waits until our pending "
                               "orders are resolved")
                    break
            if order is None:
                self._note(f"{market}: trade {trade.trade_id} of order {trade.order_id} "
                           "was not placed by this deployment: not booked")
            else:
                applied += self.store.apply_fill(self._store_fill(trade, order))
                crashpoint("fill_applied")
            next_id = str(int(trade.trade_id) + 1)
        if next_id is not None:
            self.store.set_cursor(f"trades:{market}", next_id)
        return applied

    def _exchange_ids(self) -> dict[str, Order]:
        return {o.exchange_order_id: o for o in self.store.orders()
                if o.exchange_order_id is not None}

    def _pending(self, market: str) -> list[Order]:
        return [o for o in self.store.orders("submitting", "unknown") if o.market == market]

    def _resolve_pending(self, market: str) -> None:
        for order in self._pending(market):
            found = self.venue.resolve(market, order.client_order_id,
                                       self.settings.resolve_attempts)
            if found.state is ResolveState.FOUND and found.order is not None:
                self.adopt(order.client_order_id, found.order)

    def trade_cursor(self, market: str) -> str:
        """The first trade id not yet seen in ``market``; a new deployment starts after the
        account's latest trade (what came before is not ours)."""
        key = f"trades:{market}"
        cursor = self.store.get_cursor(key)
        if cursor is None:
            latest = self.venue.trades_since(market, page=1, max_pages=1)
            cursor = str(int(latest[-1].trade_id) + 1) if latest else "0"
            self.store.set_cursor(key, cursor)
        return cursor

    @staticmethod
    def _store_fill(trade: Any, order: Order) -> StoreFill:
        quote = order.market.split("/")[1]
        return StoreFill(trade.trade_id, order.client_order_id, order.market,
                         order.side, float(trade.qty), float(trade.price), float(trade.fee),
                         trade.fee_asset or quote, int(trade.timestamp))

    # ------------------------------------------------------------------ the kill switch

    def cancel_open(self) -> int:
        """Cancel every order of ours still open on the exchange; the count cancelled (an
        order that filled meanwhile keeps its fills: they arrive with the trades)."""
        done = 0
        for order in self.store.orders("open", "partially_filled"):
            cid = order.client_order_id
            self.store.set_order_status(cid, "cancelling", at=self.now_ms())
            if self.venue.cancel(order.market, cid) is not None:
                self.store.set_order_status(cid, "cancelled", at=self.now_ms())
                done += 1
            self.sync_fills(order.market)
        return done

    def flatten(self, slots: Sequence[SlotSpec]) -> None:
        """Sell what each slot holds (the kill switch's optional last act; sent even though
        the switch is engaged — it only ever reduces risk)."""
        now = self.now_ms()
        for slot, spec in enumerate(slots):
            qty = self.held(slot, spec)
            if qty <= 0:
                continue
            intent = Intent(self.session_id, slot, now, 9, spec.market, "sell", float(qty),
                            float(qty), "approved", "approved", "flatten", now)
            self.store.record_intent(intent)
            price = self.store.position(spec.market).average_price or 1.0
            rounded = self.venue.round_qty_down(spec.market, qty, price)
            if rounded.qty > 0:
                self._submit(intent, rounded.qty, 1)
                self.sync_fills(spec.market)
