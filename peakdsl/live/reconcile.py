"""Reconciliation: before the strategy may act, the store and the exchange must agree.

On every start of a testnet or live deployment, in this order:

1. every order the store left ``submitting`` or ``unknown`` (a crash between the write-ahead
   and the answer) is resolved by its client id: found → adopted with the exchange's state,
   "does not exist" on every query → rejected (it never arrived), unresolved → a problem;
2. the exchange's open orders in the deployment's markets: ours are brought up to date, an
   unknown one is cancelled or adopted as the declared policy says (``--unknown-orders``);
3. the trades since the last one seen are applied, once each;
4. the store's position in each market must be held on the exchange (the base asset's
   balance, allowing what the account held before), else a problem.

Any problem halts: the runner engages the kill switch and stops (E040) — a deployment that
does not know what it holds must not trade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from .execute import VenueExecutor, base_of
from .store_rows import OrderRequest
from .venue import ExchangeOrder, ResolveState

UnknownPolicy = Literal["cancel", "adopt"]
TOLERANCE = Decimal("1e-9")


@dataclass
class Reconciliation:
    """What reconciliation did and what it could not settle."""

    resolved: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    fills: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def reconcile(executor: VenueExecutor, markets: Sequence[str],
              policy: UnknownPolicy = "cancel") -> Reconciliation:
    """Steps 1–4 of the module docstring; problems are reported, never raised."""
    out = Reconciliation()
    for market in markets:
        executor.trade_cursor(market)
    _pending(executor, out)
    for market in markets:
        _open_orders(executor, market, policy, out)
        out.fills += executor.sync_fills(market)
        _holdings(executor, market, out)
    return out


def _pending(executor: VenueExecutor, out: Reconciliation) -> None:
    store, venue = executor.store, executor.venue
    for order in store.orders("submitting", "unknown"):
        found = venue.resolve(order.market, order.client_order_id,
                              executor.settings.resolve_attempts)
        if found.state is ResolveState.FOUND and found.order is not None:
            executor.adopt(order.client_order_id, found.order)
            out.resolved.append(f"{order.client_order_id}: on the exchange ({found.order.status})")
        elif found.state is ResolveState.NOT_FOUND:
            store.set_order_status(order.client_order_id, "rejected", at=executor.now_ms())
            out.resolved.append(f"{order.client_order_id}: never arrived")
        else:
            why = found.diagnostic.message if found.diagnostic else found.state.value
            out.problems.append(f"order {order.client_order_id} is unresolved: {why}")


def _open_orders(executor: VenueExecutor, market: str, policy: UnknownPolicy,
                 out: Reconciliation) -> None:
    store = executor.store
    for found in executor.venue.open_orders(market):
        ours = store.order(found.client_id) if found.client_id else None
        if ours is not None:
            executor.adopt(ours.client_order_id, found)
        elif policy == "adopt":
            _adopt_unknown(executor, found)
            out.adopted.append(f"{found.client_id or found.order_id} ({found.side} "
                               f"{found.amount} {market})")
        else:
            executor.venue.cancel(market, found.client_id or found.order_id)
            out.cancelled.append(f"{found.client_id or found.order_id} ({found.side} "
                                 f"{found.amount} {market})")


def _adopt_unknown(executor: VenueExecutor, found: ExchangeOrder) -> None:
    cid = found.client_id or f"adopted-{found.order_id}"[:36]
    amount = float(found.amount or found.filled or 0)
    if amount <= 0:
        return
    request = OrderRequest(cid, None, found.symbol, "buy" if found.side == "buy" else "sell",
                           "limit" if found.price is not None else "market", amount,
                           float(found.price) if found.price is not None else None, 1)
    executor.store.add_order(request, at=executor.now_ms(), status="open",
                             exchange_order_id=found.order_id)


def _holdings(executor: VenueExecutor, market: str, out: Reconciliation) -> None:
    expected = Decimal(str(executor.store.position(market).qty))
    if expected <= 0:
        return
    balances = executor.venue.balances()
    held = balances[base_of(market)].total if base_of(market) in balances else Decimal(0)
    if held + TOLERANCE < expected:
        out.problems.append(f"{market}: the store holds {expected} {base_of(market)}, the "
                            f"exchange account only {held}")
