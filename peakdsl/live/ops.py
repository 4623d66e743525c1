"""The operator's checks: ``peak live health``, ``orders`` and ``portfolio`` as typed data.

``health`` is what an operator (or cron) runs before the day: each check is a row — name,
status (``ok`` / ``warn`` / ``fail``), what was found, a diagnostic code and a fix when it is
not ok — in a fixed order (a table of check functions, each independent: one failing never
hides the next). Credentials are reported present or missing by their variable *names*;
their values are never read into the report. The exit code is 1 when any check fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["ok", "warn", "fail"]
SKEW_WARN_S, SKEW_FAIL_S = 1.0, 5.0  # Binance refuses signed requests 5 s off by default
STALE_BARS = 2


class Check(BaseModel):
    """One row of ``peak live health``."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: Status
    detail: str
    code: str | None = None
    fix: str | None = None


class Health(BaseModel):
    model_config = ConfigDict(frozen=True)

    spec: str
    mode: str
    account: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


@dataclass
class HealthContext:
    """What the checks share; filled in as they go (a later check may need an earlier's)."""

    spec: str
    mode: str
    account: str
    exchange: str
    endpoint: str | None
    env: Mapping[str, str] | None
    clock: Callable[[], float] = time.time
    risk: str | None = None  # --risk: the risk spec to check instead of the recorded one
    plan: Any = None
    deployed: Any = None  # ``live.deployed.DeployedPlan``: the plan and its risk's source
    venue: Any = None
    found: dict[str, Any] = field(default_factory=dict)


def _failed(name: str, exc: Exception) -> Check:
    single = getattr(exc, "diagnostic", None)  # a UsageError carries one
    diags = getattr(exc, "diagnostics", None) or ([single] if single is not None else None)
    if diags:
        first = diags[0]
        return Check(name=name, status="fail", detail=first.message, code=first.code,
                     fix=first.help or None)
    return Check(name=name, status="fail", detail=f"{type(exc).__name__}: {exc}")


def check_config(ctx: HealthContext) -> Check:
    """The spec compiles, with the risk spec the deployment runs under (``--risk``, else the
    one its store recorded: ``live.deployed``)."""
    from .deployed import deployed_plan

    _, ctx.deployed = deployed_plan(ctx.spec, ctx.mode, ctx.account, ctx.risk)
    ctx.plan = ctx.deployed.plan
    kind = "strategy" if ctx.plan.strategy else "portfolio"
    return Check(name="config", status="ok",
                 detail=f"{kind} compiles, artifact {ctx.plan.artifact_sha256[:12]}")


def check_credentials(ctx: HealthContext) -> Check:
    from .secrets import load_credentials, variable_names

    if ctx.mode == "paper":
        return Check(name="credentials", status="ok", detail="paper needs none (not read)")
    names = " and ".join(variable_names(ctx.mode, ctx.account))  # type: ignore[arg-type]
    load_credentials(ctx.mode, ctx.account, ctx.env)  # type: ignore[arg-type]
    return Check(name="credentials", status="ok", detail=f"{names} are set (not shown)")


def check_endpoint(ctx: HealthContext) -> Check:
    from .endpoints import resolve_endpoint
    from .venue import Venue, client_for

    endpoint = resolve_endpoint(ctx.exchange, ctx.mode, ctx.endpoint)  # type: ignore[arg-type]
    venue = Venue(client_for(endpoint, timeout_ms=5_000), read_attempts=2, backoff_s=0.2)
    venue.load()
    ctx.venue = venue  # only a reachable exchange is measured further
    hosts = ", ".join(sorted(endpoint.hosts()))
    return Check(name="exchange", status="ok",
                 detail=f"{ctx.exchange} reachable at {hosts} ({endpoint.kind})")


def check_clock(ctx: HealthContext) -> Check:
    if ctx.venue is None:
        return Check(name="clock skew", status="warn", detail="not measured: no exchange")
    before = ctx.clock()
    server = ctx.venue.client.fetch_time() / 1000
    skew = server - (before + ctx.clock()) / 2
    status: Status = "fail" if abs(skew) > SKEW_FAIL_S else \
        "warn" if abs(skew) > SKEW_WARN_S else "ok"
    return Check(name="clock skew", status=status, detail=f"{skew:+.3f} s against the exchange",
                 fix=None if status == "ok" else "synchronise this machine's clock (NTP)")


def check_data(ctx: HealthContext) -> Check:
    if ctx.venue is None or ctx.plan is None:
        return Check(name="data freshness", status="warn", detail="not measured")
    from ..data.frames import markets_read

    now, worst, empty = ctx.clock(), [], []
    feeds = sorted({(m, c.config.timeframe, c.config.timeframe_seconds)
                    for c in ctx.plan.components
                    for m in (c.config.market.symbol, *markets_read(c.config))})
    for market, timeframe, seconds in feeds:  # its own market and each other one it reads
        rows = ctx.venue.fetch_ohlcv(market, timeframe, None, 3)
        closed = [r[0] / 1000 + seconds for r in rows if r[0] / 1000 + seconds <= now]
        if not closed:
            empty.append(f"{market} {timeframe}")
            continue
        age = now - max(closed)
        worst.append((age / seconds, market, timeframe, age))
    if empty:
        return Check(name="data freshness", status="fail", code="A007",
                     detail=f"the exchange returned no closed candle for "
                            f"{', '.join(sorted(set(empty)))}",
                     fix="check the market and timeframe exist on this exchange (and "
                     "--endpoint), and the exchange's status page, before trading (runbook "
                     "A007)")
    bars, market, timeframe, age = max(worst)
    status: Status = "fail" if bars > STALE_BARS else "ok"
    return Check(name="data freshness", status=status,
                 detail=f"the stalest feed, {market} {timeframe}: last closed bar "
                        f"{age:,.0f} s ago", code=None if status == "ok" else "A007",
                 fix=None if status == "ok" else "the exchange publishes no new candles: "
                 "check its status page before trading (runbook A007)")


def check_risk(ctx: HealthContext) -> Check:
    """The risk spec the deployment enforces (``check_config`` found it), and whether the
    store's record of it still holds (a changed or vanished risk spec warns)."""
    from .deployed import SOURCES

    if ctx.plan is None or ctx.deployed is None:
        return Check(name="risk limits", status="warn", detail="not read: no spec")
    deployed, risk = ctx.deployed, ctx.plan.risk
    notes = "; ".join(deployed.notes)
    if risk is None:
        status: Status = "warn" if ctx.mode == "live" or notes else "ok"
        what = "no risk spec enforced" + (f" ({SOURCES['recorded']})"
                                          if deployed.source == "recorded" else "")
        return Check(name="risk limits", status=status,
                     detail="; ".join([what, *deployed.notes]),
                     fix=None if status == "ok" else "give the portfolio a risk spec, or "
                     "start the deployment with `peak live run SPEC --risk NAME` (`peak live "
                     "health SPEC --risk NAME` checks it before)")
    detail = f"risk spec {risk.name} ({(deployed.risk_sha256 or '')[:12]}) enforced, " \
        f"{SOURCES[deployed.source]}"
    if notes:
        return Check(name="risk limits", status="warn", detail=f"{detail}; {notes}",
                     fix="restart the deployment to enforce the current risk spec, or give "
                     "--risk the one it runs under")
    return Check(name="risk limits", status="ok", detail=detail)


def check_kill(ctx: HealthContext) -> Check:
    from .runner import Deployment
    from .store import LiveStore

    if ctx.plan is None:
        return Check(name="kill switch", status="warn", detail="not read: no spec")
    name = ctx.plan.config.name
    path = Deployment(ctx.plan.root, ctx.mode, ctx.account, name).store_path
    if not path.exists():
        return Check(name="kill switch", status="ok", detail="no deployment state yet")
    with LiveStore.open(path, readonly=True) as store:
        kill = store.kill_state()
    if kill.engaged:
        return Check(name="kill switch", status="fail", detail=f"engaged: {kill.reason} "
                     f"(by {kill.by})", code="E041", fix="`peak live reset SPEC --mode "
                     f"{ctx.mode} --reason …` once the cause is understood")
    return Check(name="kill switch", status="ok", detail="released")


def check_alerts(ctx: HealthContext) -> Check:
    """The risk spec's alert sinks: each can be made from the environment (E044 otherwise:
    a failure where a deployment would refuse to start, a warning in paper), each HTTP one's
    host answers a TCP connection (no message is sent), and the outbox holds no critical
    alert still undelivered. URLs are never shown: only the variables' names."""
    import os

    from .monitor import alert_sinks_for, unreachable

    if ctx.plan is None:
        return Check(name="alert sinks", status="warn", detail="not read: no spec")
    risk = ctx.plan.risk
    config = risk.alerts if risk is not None else None
    env = ctx.env if ctx.env is not None else os.environ
    setup = alert_sinks_for(config, env)
    if setup.problems:
        first = setup.problems[0]
        return Check(name="alert sinks", status="warn" if ctx.mode == "paper" else "fail",
                     detail="; ".join(p.message for p in setup.problems), code=first.code,
                     fix=first.help or None)
    down = unreachable(config, env)
    pending = _undelivered(ctx)
    names = ", ".join(f"{kind} ({level})" for kind, level in setup.levels.items())
    if down or pending:
        return Check(name="alert sinks", status="warn", detail="; ".join(
            [*down, *([f"{pending} critical alert(s) not yet delivered (outbox)"]
                      if pending else [])]),
            code="A011", fix="check the sink's service and this machine's network (runbook "
            "A011); the outbox is redelivered when the deployment next starts")
    return Check(name="alert sinks", status="ok", detail=names or "none declared")


def _undelivered(ctx: HealthContext) -> int:
    from .alerts import Outbox
    from .runner import Deployment

    if ctx.plan is None:
        return 0
    path = Deployment(ctx.plan.root, ctx.mode, ctx.account, ctx.plan.config.name).store_path
    outbox = path.with_suffix(".outbox.jsonl")
    return len(Outbox(outbox).pending()) if outbox.exists() else 0


CHECKS: tuple[tuple[str, Callable[[HealthContext], Check]], ...] = (
    ("config", check_config), ("credentials", check_credentials),
    ("exchange", check_endpoint), ("clock skew", check_clock),
    ("data freshness", check_data), ("risk limits", check_risk),
    ("alert sinks", check_alerts), ("kill switch", check_kill))


def health(ctx: HealthContext) -> Health:
    """Every check of ``CHECKS`` in order; an exception is that check's failure."""
    rows = []
    for name, run in CHECKS:
        try:
            rows.append(run(ctx))
        except Exception as exc:  # a check that breaks reports, never stops the others
            rows.append(_failed(name, exc))
    return Health(spec=ctx.spec, mode=ctx.mode, account=ctx.account, checks=rows)


__all__ = ["CHECKS", "Check", "Health", "HealthContext", "health"]


def cancel_when_stopped(store: Any, mode: str, account: str, exchange: str,
                        endpoint: str | None, env: Mapping[str, str] | None = None) -> int:
    """A kill of a deployment that is not running: cancel on the exchange the orders its
    store has open (testnet and live; credentials from the environment). The count
    cancelled; ``Refused`` / ``VenueError`` when the exchange cannot be reached."""
    from .endpoints import resolve_endpoint
    from .execute import VenueExecutor
    from .secrets import load_credentials
    from .venue import Venue, client_for

    if mode == "paper" or not store.orders("open", "partially_filled"):
        return 0
    creds = load_credentials(mode, account, env)  # type: ignore[arg-type]
    where = resolve_endpoint(exchange, mode, endpoint)  # type: ignore[arg-type]
    venue = Venue(client_for(where, creds.api_key, creds.api_secret, 5_000))
    executor = VenueExecutor(store, venue, "operator", now_ms=lambda: int(time.time() * 1000),
                             kill=lambda why: None)
    return executor.cancel_open()


# ---------------------------------------------------------------- status


def limit_usage(arrays: Mapping[str, Any], limits: Any, now_s: float) -> list[dict[str, Any]]:
    """How much of each risk limit the book uses at its last snapshot: gross exposure per
    market and in total (of equity), open positions, the day's loss, orders in the last
    minute. ``max_order_notional`` is per order: reported with its limit, no usage."""
    import math

    import numpy as np

    from ..engine.risk import RATE_WINDOW_SECONDS
    from ..engine.state import DAY_EQUITY, LAST_EQUITY, MARK, MARKET, QTY, SIDE

    account, positions, ring = arrays["account"], arrays["positions"], arrays["ring"]
    equity = float(account[LAST_EQUITY])
    held = positions[:, SIDE] != 0.0
    gross = np.where(held, np.abs(positions[:, QTY] * positions[:, MARK]), 0.0)  # flat: NaN mark
    per_market = [float(gross[positions[:, MARKET] == m].sum())
                  for m in np.unique(positions[:, MARKET])]
    day_loss = max(0.0, 1.0 - equity / float(account[DAY_EQUITY])) \
        if account[DAY_EQUITY] > 0 else 0.0
    used = {"max_order_notional": None,
            "max_symbol_exposure": max(per_market, default=0.0) / equity if equity else None,
            "max_total_exposure": float(gross.sum()) / equity if equity else None,
            "max_open_positions": float(held.sum()),
            "max_daily_loss": day_loss,
            "max_orders_per_minute": float((ring > now_s - RATE_WINDOW_SECONDS).sum())}
    rows = []
    for name, value in used.items():
        limit = float(getattr(limits, name))
        share = value / limit if value is not None and math.isfinite(limit) else None
        rows.append({"limit": name, "value": value,
                     "max": limit if math.isfinite(limit) else None, "used": share})
    return rows


def risk_events(rows: Sequence[Any], recent: int = 20) -> list[dict[str, Any]]:
    """The risk stage's reductions and denials bar by bar, read from the equity history's
    cumulative counts (``EquityRow.risk``): each saved bar where a count rose is one row per
    reason — when, ``reduced`` or ``denied``, the limit, how many entries, the total so far.
    The counts are the book's own (every mode, every intent the risk stage saw, denied ones
    included, which never reach the store as orders); a row of another session is a fresh
    book, whose counts start from zero. The last ``recent`` rows, oldest first."""
    out: list[dict[str, Any]] = []
    before: Any = None
    for row in rows:
        base = before.risk if before is not None and before.session == row.session else {}
        for key, count in sorted(row.risk.items()):
            was = base.get(key, 0)
            rise = count - was if count >= was else count
            if rise > 0:
                decision, _, limit = key.partition("_")
                out.append({"at": row.bar_time, "session": row.session,
                            "decision": decision, "limit": limit, "count": rise,
                            "total": count})
        before = row
    return out[-recent:]


def status_doc(store: Any, plan: Any, now_s: float,
               risk: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``peak live status``: the switch, sessions, the risk spec (``risk``:
    ``DeployedPlan.doc()``; ``plan`` must carry it), the book (equity, PnL, the last bar),
    each risk limit's use, the risk stage's denials and reductions (in all, and bar by bar:
    ``risk_events``), positions, open orders, the recent alerts, and the log's recent
    warnings and errors."""
    from ..engine.simulate import risk_counts
    from ..engine.state import LAST_EQUITY
    from ..portfolio.run import limits_of

    kill = store.kill_state()
    snap = store.last_snapshot()
    entries = store.log_since(0)
    book = None
    if snap is not None:
        equity = float(snap.arrays["account"][LAST_EQUITY])
        book = {"last_tick": snap.bar_time, "equity": equity, "capital": plan.capital,
                "pnl": equity - plan.capital, "return": equity / plan.capital - 1.0,
                "risk": risk_counts(snap.arrays["account"]),
                "limits": limit_usage(snap.arrays, limits_of(plan), now_s)}
    return {
        "kill_switch": {"engaged": kill.engaged, "reason": kill.reason, "by": kill.by,
                        "at": kill.at},
        "sessions": [{"id": s.id, "mode": s.mode, "status": s.status,
                      "started_at": s.started_at, "ended_at": s.ended_at,
                      "artifact_sha256": s.artifact_sha256} for s in store.sessions()],
        "risk_spec": dict(risk) if risk is not None else None,
        "book": book,
        "positions": [{"market": p.market, "qty": p.qty, "average_price": p.average_price,
                       "realized_pnl": p.realized_pnl, "fees": p.fees}
                      for p in store.positions()],
        "open_orders": [{"client_order_id": o.client_order_id, "market": o.market,
                         "side": o.side, "qty": o.qty, "status": o.status}
                        for o in store.orders("submitting", "unknown", "open",
                                              "partially_filled", "cancelling")],
        "problems": [{"at": e.at, "level": e.level, "event": e.event, "message": e.message}
                     for e in entries if e.level in ("warning", "error", "critical")
                     and e.event != "alert"][-20:],
        "denials": risk_events(store.equity_history()),
        "alerts": [{"at": e.at, "code": e.data.get("code"), "severity": e.level,
                    "key": e.data.get("key"), "message": e.message}
                   for e in entries if e.event == "alert"][-20:],
        "log": [{"at": e.at, "level": e.level, "event": e.event, "message": e.message}
                for e in entries[-20:]]}
