"""The reactions every drill checks: alerts raised and delivered, state kept.

Each function returns ``DrillCheck`` rows (expected in the runbook's words, observed in the
drill's) from what the rig recorded and the store holds afterwards; the scenarios add their
own. "State kept" is the same promise everywhere: the store passes SQLite's integrity check,
its positions are exactly what its fills add up to, no order is left in doubt, and the book's
snapshot is the last tick's.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from ..live.alert_codes import ALERT_CODES
from ..live.alerts import RANK
from ..live.run import iso
from ..live.store_book import market_currencies
from ..live.store_rows import Fill, close_to
from .model import DrillCheck, check
from .rig import Observed, Rig

WEBHOOK_LEAST = "warning"  # the drills' webhook sink takes warnings and criticals
DOUBT = ("submitting", "unknown", "cancelling")


def _name(code: str) -> str:
    return f"{code} {ALERT_CODES[code].name}"


def alert_logged(obs: Observed, code: str, at_least: int = 1) -> DrillCheck:
    found = obs.alerts()[code]
    return check(f"{code} logged", f"{_name(code)} in the deployment's log (at least "
                 f"{at_least})", f"{found} in the log", found >= at_least)


def alert_delivered(rig: Rig, code: str) -> DrillCheck:
    found = Counter(rig.webhook.codes())[code]
    return check(f"{code} delivered", f"{_name(code)} at the webhook", f"{found} delivered",
                 found >= 1)


def alerts(rig: Rig, obs: Observed, codes: Iterable[str]) -> list[DrillCheck]:
    """Each code in the log, and at the webhook when its severity reaches the sink's."""
    rows = []
    for code in codes:
        rows.append(alert_logged(obs, code))
        if RANK[ALERT_CODES[code].severity] >= RANK[WEBHOOK_LEAST]:
            rows.append(alert_delivered(rig, code))
    return rows


def net_fills(fills: Iterable[Fill]) -> dict[str, float]:
    """What the fills add up to per market (fees paid in the base asset taken off)."""
    held: dict[str, float] = defaultdict(float)
    for f in fills:
        held[f.market] += f.signed_qty
        if f.fee_currency == market_currencies(f.market)[0]:
            held[f.market] -= f.fee
    return dict(held)


def state_kept(rig: Rig, obs: Observed, status: str = "stopped") -> list[DrillCheck]:
    """The store is sound and consistent after the incident (module docstring)."""
    held = net_fills(obs.fills)
    positions = {p.market: p.qty for p in obs.positions}
    mismatched = sorted(m for m in set(held) | set(positions)
                        if not close_to(held.get(m, 0.0), positions.get(m, 0.0))
                        and abs(held.get(m, 0.0) - positions.get(m, 0.0)) > 1e-12)
    doubt = [o.client_order_id for o in obs.orders if o.status in DOUBT]
    last = rig.states[-1].time if rig.states else math.nan
    saved = obs.snapshot.bar_time / 1000 if obs.snapshot is not None else math.nan
    shown = (iso(saved) if math.isfinite(saved) else "none",
             iso(last) if math.isfinite(last) else "none")
    session = obs.sessions[-1].status if obs.sessions else "none"
    return [
        check("store sound", "the store passes SQLite's integrity check",
              "ok" if not obs.integrity else "; ".join(obs.integrity[:3]), not obs.integrity),
        check("positions = fills", "each market's position is what its fills add up to",
              "consistent" if not mismatched else f"differ in {', '.join(mismatched)}",
              not mismatched),
        check("no order in doubt", "no order left submitting, unknown or cancelling",
              f"{len(doubt)} in doubt", not doubt),
        check("snapshot current", "the book's snapshot is the last tick's",
              f"snapshot at {shown[0]}, last tick {shown[1]}", saved == last),
        check("session ended", f"the session ended {status}", f"it ended {session}",
              session == status),
    ]


def book_matches_store(obs: Observed) -> DrillCheck:
    """Paper: the book's position (its snapshot) is the store's (the same fills)."""
    from ..engine.state import QTY, SIDE

    if obs.snapshot is None:
        return check("book = store", "the book's position equals the store's", "no snapshot",
                     False)
    positions = obs.snapshot.arrays["positions"]
    book = float(positions[0, SIDE] * positions[0, QTY])
    store = next((p.qty for p in obs.positions), 0.0)
    same = close_to(book, store) or abs(book - store) < 1e-12
    return check("book = store", "the book's position equals the store's (paper)",
                 f"book {book:.8f}, store {store:.8f}", same)


def kill_released(obs: Observed) -> DrillCheck:
    return check("kill switch released", "the kill switch is released at the end",
                 "engaged: " + obs.kill.reason if obs.kill.engaged else "released",
                 not obs.kill.engaged)


def ran_through(rig: Rig, ticks: int) -> DrillCheck:
    """The deployment did not crash or stop early: it ran every tick it was given."""
    result = rig.runs[0] if rig.runs else None
    done = result.summary.ticks if result is not None and result.summary is not None else 0
    why = result.error if result is not None and result.error else f"{done} ticks"
    return check("ran through", f"the deployment went on: {ticks} ticks, no crash", why,
                 done == ticks)


__all__ = ["alert_delivered", "alert_logged", "alerts", "book_matches_store", "kill_released",
           "net_fills", "ran_through", "state_kept"]
