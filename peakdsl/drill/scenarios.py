"""What each drill stages and what it checks: one ``Scenario`` row per incident.

A row is the incident's ``Setup`` (the deployment: mode, tightened limits, a data gap, a
worse-filling exchange, a resting order, a webhook that is down), its ``inject`` (what
happens mid-run, called after each tick with the tick's number), its ``follow_up`` (what the
operator does once the run ended: verify, reset, restart) and its ``checks`` (the reactions
the runbook promises, read from the rig and the store). The names, titles and alert codes
are ``catalog.CATALOG``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..live.runner import TickState
from .catalog import ENTRIES, Entry
from .checks import (
    alert_delivered,
    alert_logged,
    alerts,
    book_matches_store,
    kill_released,
    ran_through,
    state_kept,
)
from .model import DrillCheck, check
from .rig import Observed, Rig, Setup

Inject = Callable[[Rig, int, TickState], None]
FollowUp = Callable[[Rig], None]
Checks = Callable[[Rig, Observed], list[DrillCheck]]
ORDER = "POST /api/v3/order"
ALERT_DELAY_MAX_S = 0.050  # the trading loop's budget per alert (issue 12)
NOTIONAL = 1000.0


@dataclass(frozen=True)
class Scenario:
    entry: Entry
    setup: Setup
    checks: Checks
    inject: Inject | None = None
    follow_up: FollowUp | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def codes(self) -> tuple[str, ...]:
        return self.entry.codes


# ---------------------------------------------------------------- stale_feed


def stale_feed_checks(rig: Rig, obs: Observed) -> list[DrillCheck]:
    gap = rig.gap_ticks()
    entries = [f for f in obs.fills if f.side == "buy" and f.at / 1000 in gap]
    return [alert_logged(obs, "A007", len(gap)), alert_delivered(rig, "A007"),
            check("no entry on stale bars", "no entry on a bar whose candle never came",
                  f"{len(entries)} entries at the {len(gap)} missing bars", not entries),
            ran_through(rig, rig.setup.ticks), kill_released(obs), book_matches_store(obs),
            *state_kept(rig, obs)]


# ---------------------------------------------------------------- risk_violation


def risk_checks(rig: Rig, obs: Observed) -> list[DrillCheck]:
    from ..engine.simulate import risk_counts

    buys = [f.qty * f.price for f in obs.fills if f.side == "buy"]
    counts = risk_counts(obs.snapshot.arrays["account"]) if obs.snapshot else {}
    cut = sum(v for k, v in counts.items() if k.startswith(("reduced", "denied")))
    limit = float(rig.setup.limits["max_symbol_exposure"].rstrip("%")) / 100
    worst = max((s.exposure / s.equity for s in rig.states if s.equity > 0), default=0.0)
    return [*alerts(rig, obs, ["A001"]),
            check("entries cut", "the risk stage reduced or denied the oversized entries",
                  f"{cut} reduced or denied", cut >= 1),
            check("orders within the limit", f"no entry sent above {NOTIONAL:,.0f} USDT",
                  f"{len(buys)} entries, the largest {max(buys, default=0.0):,.2f} USDT",
                  bool(buys) and max(buys) <= NOTIONAL * (1 + 1e-9)),
            check("exposure within the limit", f"exposure never above {limit:.0%} of equity",
                  f"at most {worst:.2%}", worst <= limit + 1e-9),
            ran_through(rig, rig.setup.ticks), book_matches_store(obs), *state_kept(rig, obs)]


# ---------------------------------------------------------------- pnl_divergence


def verify_follow_up(rig: Rig) -> None:
    """The operator's daily check: ``peak live verify`` on the deployment."""
    from ..live.verify import Request, verify_and_alert
    from .project import RISK_NAME
    from .rig import ACCOUNT

    request = Request(str(rig.scratch.spec), rig.setup.mode, ACCOUNT, risk=RISK_NAME,
                      root=rig.scratch.root)
    rig.facts["verify"] = verify_and_alert(request, env=rig.env(), clock=rig.clock)


def divergence_checks(rig: Rig, obs: Observed) -> list[DrillCheck]:
    report = rig.facts.get("verify")
    if report is None:
        return [check("verified", "`peak live verify` compared the session", "it did not run",
                      False)]
    worst = report.worst_gap_bps
    return [check("session traded", "the session sent orders the exchange filled",
                  f"{report.fills_live} exchange fills, {report.fills_backtest} in the replay",
                  report.fills_live >= 2),
            check("divergence found", f"verify reports the PnL gap beyond "
                  f"{report.tolerance:.2%} of capital", f"gap {report.pnl_gap:+.2%}, worst "
                  f"fill {worst if worst is not None else float('nan'):+.0f} bps",
                  report.diverged and not report.problems),
            *alerts(rig, obs, ["A010"]), ran_through(rig, rig.setup.ticks),
            *state_kept(rig, obs)]


# ---------------------------------------------------------------- sink_down


def kill_at(tick: int, reason: str) -> Inject:
    """An operator kill requested right after ``tick`` (``peak live kill``'s request)."""
    def inject(rig: Rig, n: int, state: TickState) -> None:
        if n == tick:
            rig.facts["kill_orders"] = rig.exchange.calls[ORDER]
            rig.request_kill(reason)
    return inject


def sink_follow_up(rig: Rig) -> None:
    """The webhook comes back; the operator resets the switch and restarts: the critical
    alerts kept in the outbox are delivered by the restarted deployment."""
    from ..live.alerts import Outbox

    rig.facts["owed"] = [m.alert.code for m, sinks in Outbox(rig.outbox).pending()
                         if "webhook" in sinks]
    rig.facts["owed_ids"] = [m.id for m, _ in Outbox(rig.outbox).pending()]
    rig.webhook.up()
    _reset(rig)
    rig.run(ticks=2)
    rig.facts["still_owed"] = len(Outbox(rig.outbox).pending())


def _reset(rig: Rig) -> None:
    """What ``peak live reset`` does: release the switch, saying why and who."""
    from ..live.store import LiveStore

    with LiveStore.open(rig.deployment.store_path, create=False) as store:
        store.reset_kill("drill: rehearsal over", "peak drill", at=int(rig.now * 1000))


def sink_checks(rig: Rig, obs: Observed) -> list[DrillCheck]:
    delays = rig.delays
    slowest = max(delays, default=0.0)
    tried = rig.webhook.attempts
    owed, ids = rig.facts.get("owed", []), set(rig.facts.get("owed_ids", []))
    delivered = [b for b in rig.webhook.received if b.get("id") in ids]
    return [alert_logged(obs, "A011"), alert_logged(obs, "A004"),
            check("loop never waits", f"each alert returns to the trading loop within "
                  f"{ALERT_DELAY_MAX_S * 1000:.0f} ms", f"{len(delays)} alerts, the slowest "
                  f"{slowest * 1000:.1f} ms", bool(delays) and slowest <= ALERT_DELAY_MAX_S),
            check("sink failed every way", "the webhook refused, hung and answered 429",
                  ", ".join(f"{k} {v}" for k, v in sorted(tried.items())),
                  all(tried[k] >= 1 for k in ("refuse", "hang", "rate_limited"))),
            check("critical kept", "the kill's A004 stayed in the outbox while the sink was "
                  "down", f"owed: {', '.join(owed) or 'nothing'}", "A004" in owed),
            check("critical delivered", "the outbox was delivered once the sink came back",
                  f"{len(delivered)} of {len(ids)} delivered, "
                  f"{rig.facts.get('still_owed', '?')} still owed",
                  bool(ids) and len({b['id'] for b in delivered}) == len(ids)
                  and rig.facts.get("still_owed") == 0),
            kill_released(obs), *state_kept(rig, obs)]


# ---------------------------------------------------------------- exchange_outage

OUTAGE = (8, 11)  # the exchange fails from after tick 8 until after tick 11


def outage(rig: Rig, n: int, state: TickState) -> None:
    from ..live.loopback import Fault

    if n == OUTAGE[0]:
        rig.exchange.faults.add(Fault("*", "maintenance", times=1_000_000))
        rig.facts["outage"] = (state.time, rig.exchange.calls[ORDER])
    elif n == OUTAGE[1]:
        rig.exchange.faults.clear()
        rig.facts["outage_end"] = (state.time, rig.exchange.calls[ORDER])


def outage_checks(rig: Rig, obs: Observed) -> list[DrillCheck]:
    start, sent_before = rig.facts.get("outage", (0.0, 0))
    end, sent_during = rig.facts.get("outage_end", (0.0, -1))
    during = [o for o in obs.orders if start * 1000 < o.created_at <= end * 1000]
    return [*alerts(rig, obs, ["A008"]), alert_logged(obs, "A007", OUTAGE[1] - OUTAGE[0]),
            check("entries halted", "no order while the exchange was down",
                  f"{sent_during - sent_before} orders sent, {len(during)} recorded",
                  sent_during == sent_before and not during),
            ran_through(rig, rig.setup.ticks), kill_released(obs), *state_kept(rig, obs)]


# ---------------------------------------------------------------- kill_switch

KILL_TICK = 12


def kill_follow_up(rig: Rig) -> None:
    """The operator tries to restart (refused: E041), resets, restarts."""
    rig.facts["after_kill"] = rig.read()
    rig.facts["sent_after"] = rig.exchange.calls[ORDER]
    rig.facts["refused"] = rig.run(ticks=2).codes
    _reset(rig)
    rig.facts["restarted"] = rig.run(ticks=2).summary is not None


def kill_checks(rig: Rig, obs: Observed) -> list[DrillCheck]:
    killed: Observed | None = rig.facts.get("after_kill")
    resting = next((o.status for o in rig.exchange.orders()
                    if o.client_id == "drill-resting-0001"), "none")
    first = rig.runs[0].summary if rig.runs else None
    sent = (rig.facts.get("kill_orders"), rig.facts.get("sent_after"))
    return [*alerts(rig, obs, ["A004"]),
            check("switch engaged", "the kill switch engaged, the session halted",
                  f"engaged {killed.kill.engaged}, session "
                  f"{killed.sessions[-1].status}" if killed else "not read",
                  killed is not None and killed.kill.engaged
                  and killed.sessions[-1].status == "halted"),
            check("open orders cancelled", "the resting order is cancelled on the exchange",
                  f"it is {resting}", resting == "CANCELED"),
            check("no further orders", "nothing sent after the kill, the run stopped early",
                  f"orders sent {sent[0]} → {sent[1]}, {first.ticks if first else 0} of "
                  f"{rig.setup.ticks} ticks", sent[0] == sent[1] and first is not None
                  and first.ticks < rig.setup.ticks),
            check("reset needed", "a restart is refused (E041) until `peak live reset`",
                  f"restart refused with {', '.join(rig.facts.get('refused', ())) or 'nothing'};"
                  f" after the reset it {'ran' if rig.facts.get('restarted') else 'failed'}",
                  "E041" in rig.facts.get("refused", ()) and bool(rig.facts.get("restarted"))),
            kill_released(obs), *state_kept(rig, obs)]


# ---------------------------------------------------------------- the table

RISKY = {"max_order_notional": f"{NOTIONAL:.0f} USDT", "max_symbol_exposure": "15%",
         "max_total_exposure": "15%"}
SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario(ENTRIES["stale_feed"], Setup(ticks=24, gap=(10, 12)), stale_feed_checks),
    Scenario(ENTRIES["risk_violation"], Setup(ticks=24, limits=RISKY), risk_checks),
    Scenario(ENTRIES["pnl_divergence"], Setup("testnet", ticks=24, slippage=0.02),
             divergence_checks, follow_up=verify_follow_up),
    Scenario(ENTRIES["sink_down"], Setup(ticks=24, limits=RISKY, gap=(14, 16),
                                         webhook_down=True),
             sink_checks, inject=kill_at(20, "drill: operator kill while the webhook is "
                                             "down"), follow_up=sink_follow_up),
    Scenario(ENTRIES["exchange_outage"], Setup("testnet", ticks=20), outage_checks,
             inject=outage),
    Scenario(ENTRIES["kill_switch"], Setup("testnet", ticks=20, resting_order=True),
             kill_checks, inject=kill_at(KILL_TICK, "drill: operator kill"),
             follow_up=kill_follow_up),
)}

__all__ = ["SCENARIOS", "Scenario"]
