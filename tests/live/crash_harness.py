"""The machinery of tests/live/test_crash.py: faults placed on the k-th request, the fork
server of ``crash_child.py``, a case's plan (faults and crash points from its seed), and the
final state of a deployment read back from the exchange and the store, with its invariants.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from crash_child import Run
from loopback_setup import API_KEY, SECRET, new_exchange

from peakdsl.live.execute import CRASH_POINTS
from peakdsl.live.loopback import Fault, FaultKind, Faults, LoopbackExchange
from peakdsl.live.store import LiveStore

CHILD = Path(__file__).resolve().parent / "crash_child.py"
MARKET, BASE, START_BASE = "BTC/USDT", "BTC", Decimal(1)  # loopback_setup.new_exchange
QUOTE_FUNDS = "1000000"  # USDT: a buy sent twice would be filled twice, not refused
ORDER = "POST /api/v3/order"
TOLERANCE = 1e-9
# faults on create_order after which the runner cannot know whether the order exists (it is
# resolved by client id; only timeout_after_fill created it)
UNKNOWN_FAULTS: tuple[FaultKind, ...] = (
    "timeout", "disconnect", "timeout_after_fill", "server_error", "maintenance", "rate_limited",
    "duplicate_client_id")
HOLD_S = 1.5  # a held answer: longer than the child's client timeout (Run.timeout_ms)
TESTNET_ENV = {"PEAK_TESTNET_API_KEY": API_KEY, "PEAK_TESTNET_API_SECRET": SECRET}


# ---------------------------------------------------------------------- faults, later


class LaterFaults(Faults):
    """``Faults`` whose entries may wait: ``add(fault, skip=k)`` lets the next ``k``
    matching requests pass, so a fault lands on the (k+1)-th order rather than the first."""

    def __init__(self) -> None:
        super().__init__()
        self._later_lock = threading.Lock()
        self._entries: list[list[Any]] = []  # [fault, remaining, skip]

    def add(self, fault: Fault, skip: int = 0) -> None:
        with self._later_lock:
            self._entries.append([fault, fault.times, skip])

    def clear(self) -> None:
        with self._later_lock:
            self._entries.clear()

    def pending(self) -> int:
        with self._later_lock:
            return sum(int(e[1]) for e in self._entries)

    def take(self, endpoint: str) -> Fault | None:
        with self._later_lock:
            chosen = None
            for entry in [e for e in self._entries if e[0].endpoint in (endpoint, "*")]:
                if entry[2] > 0:
                    entry[2] -= 1
                elif chosen is None:
                    chosen = entry
            if chosen is None:
                return None
            chosen[1] -= 1
            if chosen[1] == 0:
                self._entries.remove(chosen)
            return chosen[0]  # type: ignore[no-any-return]


def crash_exchange(faults: Faults | None = None) -> LoopbackExchange:
    """``loopback_setup``'s exchange with the quote funds for every buy twice over: with
    only the usual 10,000 USDT a duplicated buy would be refused for funds and slip past
    the checks, and with these no order is ever refused."""
    exchange = new_exchange()
    exchange.set_balance("USDT", QUOTE_FUNDS)
    if faults is not None:
        exchange.faults = faults
    return exchange


# ---------------------------------------------------------------------- the fork server


def forks_with_testnet_keys(warm: Run, log: Path) -> ForkServer:
    """A fork server whose runs hold the loopback testnet's credentials in their environment
    (and no other ``PEAK_`` variable of the test's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEAK_")} | TESTNET_ENV
    return ForkServer(warm, env, log)


class ForkServer:
    """``crash_child.py serve``: runs each ``Run`` in a fork of one warmed process. It starts
    warming at once; the first ``run`` waits for it (at most ``start_timeout_s``)."""

    def __init__(self, warm: Run, env: Mapping[str, str], log: Path,
                 start_timeout_s: float = 180.0) -> None:
        self.log, self.start_timeout_s, self.ready = log.open("ab"), start_timeout_s, False
        self.log_path = log
        self.proc = subprocess.Popen([sys.executable, str(CHILD), "serve", str(self._write(
            warm, log))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env=dict(env))

    def _started(self) -> None:
        if not self.ready:
            line = self._line(self.start_timeout_s)
            if line != "ready":
                raise RuntimeError(f"the fork server did not start ({line!r}); see "
                                   f"{self.log_path}")
            self.ready = True

    @staticmethod
    def _write(config: Run, log: Path) -> Path:
        path = log.with_suffix(".warm.json")
        path.write_text(config.dumps())
        return path

    def _line(self, timeout_s: float) -> str:
        """The server's next answer line, waiting at most ``timeout_s``."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return "no answer"
        return self.proc.stdout.readline().decode().strip()

    def run(self, config: Run) -> int | str:
        """One run; its exit status (-9: killed by SIGKILL, ``"timeout"``)."""
        self._started()
        assert self.proc.stdin is not None
        self.proc.stdin.write((config.dumps() + "\n").encode())
        self.proc.stdin.flush()
        line = self._line(config.timeout_s + 30.0)
        if not line.startswith("{"):
            raise RuntimeError(f"the fork server stopped answering ({line!r})")
        status: int | str = json.loads(line)["rc"]
        return status

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


# ---------------------------------------------------------------------- a case's plan


@dataclass(frozen=True)
class Placed:
    """A fault on the (skip+1)-th request to its endpoint from the start of the case."""

    fault: Fault
    skip: int


@dataclass(frozen=True)
class CasePlan:
    """What one (point, seed) does: the faults, then one run per crash (each must die by
    SIGKILL), then a run to the end."""

    point: str
    seed: int
    faults: tuple[Placed, ...]
    crashes: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(f"{p.fault.kind}@{p.fault.endpoint}+{p.skip}" for p in self.faults)
        return f"{self.point} seed {self.seed}: crashes {list(self.crashes)}, faults [{shown}]"


def plan_case(point: str, seed: int, counts: Mapping[str, int], orders: int) -> CasePlan:
    """The case's faults and crashes, from its seed and the reference run's counts (how
    many times each point is reached, how many orders are sent): every planned crash is
    reached, so each crash run must end by SIGKILL."""
    rng = random.Random(f"{point}/{seed}")
    first = point
    if point == "reconciled":  # reached once per run: crash at another point first
        first = rng.choice([p for p in CRASH_POINTS if p not in ("reconciled", "resolved")])
    wanted = rng.randint(1, counts[first]) if first == "write_ahead" else None
    # the n-th write-ahead's order is first sent by the restarted run, as the n-th order
    # the exchange sees: a fault there would meet the resend budget (test_crash's xfail)
    faults = _faults(rng, point, orders, avoid={wanted - 1} if wanted else set())
    unknown = sum(p.fault.kind in UNKNOWN_FAULTS for p in faults if p.fault.endpoint == ORDER)
    if wanted is not None:
        crashes = [f"write_ahead:{wanted}"]
    elif point == "resolved":  # reached once per order whose submit had no answer
        crashes = [f"resolved:{rng.randint(1, unknown)}"]
    else:
        crashes = [_crash(rng, first, counts, unknown)]
    if point == "reconciled" or rng.random() < 0.5:  # die (again) while restarting
        crashes.append("reconciled:1")
    return CasePlan(point, seed, tuple(faults), tuple(crashes))


def _crash(rng: random.Random, point: str, counts: Mapping[str, int], unknown: int) -> str:
    """``point:n`` with n within what the first run surely reaches (a fault's order
    is adopted after a lookup instead of being accepted: one ``accepted`` fewer)."""
    reached = counts[point] - (unknown if point == "accepted" else 0)
    if reached < 1:
        raise ValueError(f"the reference run reaches {point} only {counts[point]} times")
    return f"{point}:{rng.randint(1, reached)}"


def _faults(rng: random.Random, point: str, orders: int, avoid: set[int]) -> list[Placed]:
    """Up to two create_order faults (at least one without an answer when the point is
    ``resolved``), and sometimes a rate-limited trade query (retried)."""
    kinds: list[FaultKind] = [*UNKNOWN_FAULTS, *(() if point == "resolved" else
                                                  ("partial_fill",))]
    how_many = rng.randint(1, 2) if point == "resolved" else rng.randint(0, 2)
    placed = [Placed(_fault(ORDER, rng.choice(kinds), rng), skip)
              for skip in _spots(rng, how_many, orders, avoid)]
    if rng.random() < 0.3:
        placed.append(Placed(_fault("GET /api/v3/myTrades", "rate_limited", rng),
                             rng.randrange(orders)))
    return placed


def _spots(rng: random.Random, how_many: int, orders: int, avoid: set[int]) -> list[int]:
    """Which orders (counted from 0) fail: among the first ``orders``, none in ``avoid``,
    two apart — an order sent again after a fault is not hit again (a second
    miss would use up the resend budget: the intent would be dropped, by design)."""
    free = [s for s in range(orders) if s not in avoid]
    rng.shuffle(free)
    chosen: list[int] = []
    for spot in free:
        if len(chosen) < how_many and all(abs(spot - c) >= 2 for c in chosen):
            chosen.append(spot)
    return sorted(chosen)


def _fault(endpoint: str, kind: FaultKind, rng: random.Random) -> Fault:
    """One answer withheld or wrong: an HTTP 5xx, a 429 to retry at once, two partial fills,
    an answer held past the client's timeout."""
    return Fault(endpoint, kind, status=rng.choice((500, 502, 503, 504)), retry_after=0,
                 parts=2, hold_s=HOLD_S)


# ---------------------------------------------------------------------- the final state


@dataclass
class Final:
    """A deployment's end state: per intent, what reached the exchange and what the store
    booked; the invariants' violations; the book's last snapshot."""

    exchange: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # (side, filled)
    booked: dict[str, float] = field(default_factory=dict)  # filled qty per the store
    problems: list[str] = field(default_factory=list)
    snapshot: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    orders: int = 0

    def differences(self, reference: Final) -> list[str]:
        """How this end state differs from the uninterrupted run's."""
        out = []
        if self.exchange != reference.exchange:
            out.append("exchange orders by intent differ: "
                       + _diff(self.exchange, reference.exchange))
        if self.booked != reference.booked:
            out.append("booked fills by intent differ: " + _diff(self.booked, reference.booked))
        if sorted(self.snapshot) != sorted(reference.snapshot) or any(
                not np.array_equal(self.snapshot[k], reference.snapshot[k], equal_nan=True)
                for k in reference.snapshot):
            out.append("the book's last snapshot differs from the reference run's")
        return out


def _diff(got: Mapping[str, Any], want: Mapping[str, Any]) -> str:
    keys = sorted(set(got) | set(want))
    return "; ".join(f"{k}: {got.get(k)} != {want.get(k)}" for k in keys
                     if got.get(k) != want.get(k))


def final_state(exchange: LoopbackExchange, store_path: Path) -> Final:
    """Read the exchange's own records and the store, check the invariants."""
    with LiveStore.open(store_path, readonly=True) as store:
        out = Final(snapshot=_snapshot(store), orders=len(store.orders()))
        _check_sent_once(exchange, out)
        _check_orders(exchange, store, out)
        _check_fills(exchange, store, out)
        _check_position(exchange, store, out)
        _check_session(store, out)
    return out


def _snapshot(store: LiveStore) -> dict[str, np.ndarray[Any, Any]]:
    snap = store.last_snapshot()
    return {} if snap is None else dict(snap.arrays)


def _check_sent_once(exchange: LoopbackExchange, out: Final) -> None:
    """No client order id reached create_order twice."""
    sent = Counter(r.param("newClientOrderId") for r in exchange.requests
                   if r.endpoint == ORDER)
    out.problems += [f"client order id {cid} was sent {n} times" for cid, n in sent.items()
                     if n > 1]


def _check_orders(exchange: LoopbackExchange, store: LiveStore, out: Final) -> None:
    """Every exchange order is ours and in the store (no orphan), one per intent, in the
    store's status; every store order is settled: on the exchange, or rejected."""
    ours = {o.client_order_id: o for o in store.orders()}
    per_intent: defaultdict[str, list[str]] = defaultdict(list)
    on_exchange = set()
    for order in exchange.orders():
        on_exchange.add(order.client_id)
        mine = ours.get(order.client_id)
        if mine is None or mine.intent_id is None:
            out.problems.append(f"exchange order {order.client_id} is not in the store")
            continue
        per_intent[mine.intent_id].append(order.client_id)
        side = "buy" if order.side == "BUY" else "sell"
        out.exchange[mine.intent_id] = (side, order.executed)
        wanted = {"FILLED": "filled", "PARTIALLY_FILLED": "partially_filled", "NEW": "open",
                  "CANCELED": "cancelled"}[order.status]
        if mine.status != wanted or abs(mine.filled_qty - float(order.executed)) > TOLERANCE:
            out.problems.append(f"order {order.client_id}: the store says {mine.status} "
                                f"{mine.filled_qty}, the exchange {order.status} "
                                f"{order.executed}")
    out.problems += [f"intent {i} has {len(c)} orders on the exchange: {c}"
                     for i, c in per_intent.items() if len(c) > 1]
    out.problems += [f"order {cid} is {o.status} in the store but not on the exchange"
                     for cid, o in ours.items() if cid not in on_exchange
                     and o.status != "rejected"]


def _check_fills(exchange: LoopbackExchange, store: LiveStore, out: Final) -> None:
    """Each exchange trade is booked once, and nothing else is."""
    booked = [f.trade_id for f in store.fills()]
    traded = [str(t.trade_id) for t in exchange.trades()]
    if sorted(booked) != sorted(traded):
        out.problems.append(f"trades {sorted(traded)} booked as {sorted(booked)}")
    orders = {o.client_order_id: o.intent_id for o in store.orders()}
    for fill in store.fills():
        intent = orders.get(fill.client_order_id) or "?"
        out.booked[intent] = round(out.booked.get(intent, 0.0) + fill.qty, 10)


def _check_position(exchange: LoopbackExchange, store: LiveStore, out: Final) -> None:
    """The store's position is the exchange's change of the base asset's balance."""
    free, locked = exchange.balance(BASE)
    held = free + locked - START_BASE
    position = store.position(MARKET).qty
    if abs(position - float(held)) > TOLERANCE:
        out.problems.append(f"the store holds {position} {BASE}, the exchange {held} more "
                            "than the account started with")


def _check_session(store: LiveStore, out: Final) -> None:
    kill = store.kill_state()
    if kill.engaged:
        out.problems.append(f"the kill switch is engaged: {kill.reason}")
    out.problems += [f"session {s.id} is {s.status}" for s in store.sessions()
                     if s.status != "stopped"]
