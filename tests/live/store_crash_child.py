"""A child process for tests/live/test_store.py's kill -9 tests (run as a script).

``python store_crash_child.py STORE hold``: open the store for writing, print ``ready``, sleep
(the test kills it while it holds the writer lock).

``python store_crash_child.py STORE fills SEED``: walk ``plan(SEED)`` — intents, write-ahead
orders, fills and bar snapshots — printing ``applied MARKET TRADE`` after each fill's
transaction committed, until the plan ends (then ``done``) or the test SIGKILLs it.
``plan`` is imported by the test too, to re-apply the whole plan after the kill.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from peakdsl.live.store import LiveStore
from peakdsl.live.store_rows import Fill, Intent, OrderRequest

SESSION = "crash"
MARKETS = ("BTC/USDT", "ETH/USDT")
ORDERS = 20
MAX_FILLS_PER_ORDER = 4
HOLD_SECONDS = 60.0


@dataclass(frozen=True)
class Step:
    """One order of the plan: its intent, the order, and the trades that fill it."""

    intent: Intent
    order: OrderRequest
    fills: tuple[Fill, ...]


def plan(seed: int) -> list[Step]:
    """A deterministic sequence of orders and their fills (quantities in whole lots)."""
    rng = random.Random(seed)
    steps = []
    for bar in range(ORDERS):
        market, side = rng.choice(MARKETS), rng.choice(("buy", "sell"))
        lots = [rng.randint(1, 5) for _ in range(rng.randint(1, MAX_FILLS_PER_ORDER))]
        qty = sum(lots) * 0.25
        intent = Intent(SESSION, 0, bar, 0, market, side, qty, qty, "approved", "approved",
                        "signal", 1_000 * bar)
        cid = intent.client_order_id(1)
        order = OrderRequest(cid, intent.id, market, side, "market", qty, None, 1)
        fills = tuple(Fill(f"{seed}-{bar}-{k}", cid, market, side, lot * 0.25,
                           100.0 + rng.randint(-20, 20), 0.01 * lot, "USDT", 1_000 * bar + k)
                      for k, lot in enumerate(lots))
        steps.append(Step(intent, order, fills))
    return steps


def open_session(path: Path) -> LiveStore:
    store = LiveStore.open(path)
    store.start_session(SESSION, spec="crash", artifact_sha256="0" * 64, mode="paper",
                        account="test", exchange="binance", params={}, at=0)
    return store


def run_plan(store: LiveStore, seed: int) -> None:
    """Every write the runner would make, in its order, reporting each committed fill."""
    for step in plan(seed):
        bar, cid, at = step.intent.bar, step.order.client_order_id, step.intent.created_at
        snapshot = store.last_snapshot()
        if snapshot is None or snapshot.bar_time <= bar:
            store.save_bar(bar + 1, {"book": np.full(3, float(bar))}, [step.intent],
                           session=SESSION)
        store.add_order(step.order, at=at, status="submitting")  # write-ahead; idempotent
        if store.order(cid).status == "submitting":  # type: ignore[union-attr]
            store.set_order_status(cid, "open", at=at, exchange_order_id=f"x{bar}")
        for fill in step.fills:
            if store.apply_fill(fill):
                print("applied", fill.market, fill.trade_id, flush=True)


def main(argv: list[str]) -> int:
    path, mode = Path(argv[1]), argv[2]
    store = open_session(path)
    print("ready", flush=True)
    if mode == "hold":
        time.sleep(HOLD_SECONDS)
    else:
        run_plan(store, int(argv[3]))
        print("done", flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
