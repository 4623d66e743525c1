"""Paper deployments: the book's fills recorded in the store as if an exchange had filled them.

A paper session on live prices (``peak live run SPEC`` without ``--replay``) sends no orders:
the backtest's fill model on the session's prices *is* the fill. Recording each one as an
intent, a filled market order and its trade (trade id ``paper-<client order id>``) in the
deployment's store gives paper the same state as testnet and live — positions, realized PnL,
fees, the session log — so ``peak live status`` and restarts read it the same way, and a
replayed tick after a crash records nothing twice (intents and client ids are deterministic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .clockbook import Fill, PointReport
from .session import SlotSpec
from .store import LiveStore
from .store_rows import Fill as StoreFill
from .store_rows import Intent, OrderRequest


def leg_of(fill: Fill) -> int:
    """0 for an exit, 1 for an entry: a flip's two orders on one bar are two intents."""
    return 1 if fill.reason == "entry" else 0


def intent_of(session_id: str, fill: Fill, spec: SlotSpec, at: int) -> Intent:
    """The intent of a book fill: (session, slot, absolute bar, leg 0 exit / 1 entry) — the
    same on every replay of the same tick."""
    return Intent(session_id, fill.slot, int(fill.time // spec.timeframe_seconds),
                  leg_of(fill), spec.market,
                  "buy" if fill.side > 0 else "sell", fill.qty, fill.qty, "approved",
                  "approved", "signal" if fill.reason == "entry" else fill.reason, at)


class PaperRecorder:
    """The ``Adapter`` of paper deployments (module docstring)."""

    def __init__(self, store: LiveStore, session_id: str, now_ms: Callable[[], int]) -> None:
        self.store, self.session_id, self.now_ms = store, session_id, now_ms

    def execute(self, report: PointReport, slots: Sequence[SlotSpec]) -> None:
        for fill in report.fills:
            self.record(fill, slots[fill.slot])

    def record(self, fill: Fill, spec: SlotSpec) -> None:
        at = self.now_ms()
        quote = spec.market.split("/")[1]
        with self.store.atomic():
            intent = self.store.record_intent(intent_of(self.session_id, fill, spec, at))
            if self.store.orders(intent_id=intent.id):
                return  # a replayed tick: recorded already
            cid = intent.client_order_id(1)
            self.store.add_order(OrderRequest(cid, intent.id, spec.market, intent.side,
                                              "market", fill.qty, None, 1), at=at,
                                 status="submitting")
            self.store.set_order_status(cid, "open", at=at, exchange_order_id=f"paper-{cid}")
            self.store.apply_fill(StoreFill(f"paper-{cid}", cid, spec.market, intent.side,
                                            fill.qty, fill.price, fill.fee, quote,
                                            int(fill.time * 1000)))
