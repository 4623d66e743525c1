"""`peak live`: run a strategy or a portfolio bar by bar — paper, testnet, live — and operate it.

* ``run SPEC``: a paper replay of the cached candles (``--replay``, offline, no state), or a
  deployment (``peakdsl.live.runner``): paper on live prices, testnet or live, gated
  (promotion record, ``--arm`` token for live, credentials from the environment), with its
  state in ``.peak/live/<mode>/<account>/<spec>.sqlite``;
* ``arm SPEC``: a short-lived token for ``run --mode live --arm TOKEN``;
* ``kill SPEC``: engage the kill switch (a running deployment stops within a second);
* ``reset SPEC --reason …``: release it (confirmed, logged);
* ``status SPEC``: the deployment's state from its store (read-only).

Exit codes: 0 ok, 1 spec / data errors or a refusal, 2 usage, 130 interrupted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from .options import (
    DataOpt,
    FeeOpt,
    FromOpt,
    JsonOpt,
    SpecCapitalOpt,
    ToOpt,
    check_period,
    one_of,
    usage,
)
from .root import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Format,
    emit,
    exit_code,
    guarded,
    write_json,
)

if TYPE_CHECKING:
    from ..live.deployed import DeployedPlan
    from ..live.run import FillRow, LiveSummary
    from ..live.runner import Deployment

T = TypeVar("T")
live_app = typer.Typer(no_args_is_help=True,
                       help="Run a spec bar by bar (paper, testnet, live) and operate it.")

MODES = ("paper", "testnet", "live")
ModeOpt = Annotated[str, typer.Option(
    "--mode", help="paper (no orders), testnet or live",
    callback=one_of("--mode", MODES, "a mode"))]
DeployedModeOpt = Annotated[str, typer.Option(
    "--mode", help="the deployment's mode: paper, testnet or live (required: a kill aimed at "
    "the wrong deployment would stop nothing)", callback=one_of("--mode", MODES, "a mode"))]
ReplayOpt = Annotated[bool, typer.Option(
    "--replay", help="replay the cached candles (offline; --from is the first live bar)")]
SpeedOpt = Annotated[float, typer.Option(
    "--speed", help="replay speed: market time per real time, 0 = as fast as possible",
    metavar="X")]
HistoryOpt = Annotated[int | None, typer.Option(
    "--history", help="bars of history before the first live bar [default: the derived "
    "warm-up, at least 1,000]", metavar="BARS")]
SpecOrPortfolioArg = Annotated[str, typer.Argument(help="a strategy or portfolio spec file")]
RiskOpt = Annotated[str | None, typer.Option(
    "--risk", metavar="NAME", help="enforce a risk spec's limits (a portfolio: instead of its "
    "own)")]
AccountOpt = Annotated[str, typer.Option(
    "--account", help="the exchange account (credentials: PEAK_[ACCOUNT_]MODE_API_KEY/SECRET)")]
ExchangeOpt = Annotated[str, typer.Option("--exchange", help="a ccxt exchange id")]
EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint", help="REST base URL instead of the exchange's own (a loopback exchange)",
    metavar="URL")]
ArmOpt = Annotated[str | None, typer.Option(
    "--arm", help="the token of `peak live arm` (live mode)", metavar="TOKEN")]
TicksOpt = Annotated[int | None, typer.Option(
    "--max-ticks", help="stop after this many ticks [default: run until stopped]",
    metavar="N")]
UnknownOpt = Annotated[str, typer.Option(
    "--unknown-orders", help="exchange orders this deployment did not place: cancel or adopt",
    callback=one_of("--unknown-orders", ("cancel", "adopt"), "a policy"))]
FlattenOpt = Annotated[bool, typer.Option(
    "--flatten", help="on a kill, also sell what each slot holds")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why (logged)")]
YesOpt = Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")]
TtlOpt = Annotated[int, typer.Option("--ttl", help="validity of the token, minutes (1-60)",
                                     metavar="MINUTES")]
ReadRiskOpt = Annotated[str | None, typer.Option(
    "--risk", metavar="NAME", help="read the limits and alert sinks of this risk spec "
    "[default: the one the deployment recorded when it started, else the spec's own]")]
MetricsPortOpt = Annotated[int | None, typer.Option(
    "--metrics-port", help="serve Prometheus metrics on 127.0.0.1:PORT while the deployment "
    "runs (1024-65535)", metavar="PORT")]


def _attempt(action: Callable[[], T], as_json: bool) -> T:
    """``action()``, its refusals rendered as diagnostics and turned into the exit code."""
    from ..api import SpecError
    from ..live.gate import Refused
    from ..live.store_schema import StoreError
    from ..live.venue import VenueError

    fmt = Format.json if as_json else Format.text
    try:
        return action()
    except Refused as exc:
        emit(exc.diagnostics, fmt)
        raise typer.Exit(exc.exit_code) from None
    except (SpecError, StoreError, VenueError) as exc:
        emit(exc.diagnostics, fmt)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _check(speed: float, history: int | None, ticks: int | None) -> None:
    if not (math.isfinite(speed) and 0 <= speed <= 1e9):
        raise usage("--speed", f"--speed {speed:g} is out of range", "0 (no waiting) to 1e9")
    if history is not None and not 0 <= history <= 100_000:
        raise usage("--history", f"--history {history} is out of range", "0..100,000 bars")
    if ticks is not None and ticks < 1:
        raise usage("--max-ticks", f"--max-ticks {ticks} is out of range", "at least 1")


@live_app.command("run")
@guarded
def run_cmd(spec: SpecOrPortfolioArg, mode: ModeOpt = "paper", replay: ReplayOpt = False,
            start: FromOpt = None, end: ToOpt = None, speed: SpeedOpt = 0.0,
            history: HistoryOpt = None, capital: SpecCapitalOpt = None,
            fee_bps: FeeOpt = None, risk: RiskOpt = None, account: AccountOpt = "default",
            exchange: ExchangeOpt = "binance", endpoint: EndpointOpt = None,
            arm: ArmOpt = None, max_ticks: TicksOpt = None,
            unknown_orders: UnknownOpt = "cancel", flatten: FlattenOpt = False,
            data: DataOpt = None, metrics_port: MetricsPortOpt = None,
            as_json: JsonOpt = False) -> None:
    """Run SPEC one closed bar at a time and print every fill."""
    from ..live.metrics import watch
    from ..live.run import LiveRequest, run_live
    from ..live.runner import RunnerSettings, run_deployment

    _check(speed, history, max_ticks)
    if metrics_port is not None and not 1024 <= metrics_port <= 65_535:
        raise usage("--metrics-port", f"--metrics-port {metrics_port} is out of range",
                    "1024 to 65535")
    if metrics_port is not None and mode == "paper" and replay:
        raise usage("--metrics-port", "a paper replay is not a deployment: nothing to watch",
                    "drop --metrics-port, or run a deployment (no --replay, or --mode testnet)")
    check_period(start, end)
    if data is not None and not replay:
        raise usage("--data", "--data is a recorded candles file to replay",
                    "add --replay (a session on live prices reads the exchange)")
    request = LiveRequest(spec, mode, replay, start, end, speed, capital, fee_bps, risk,
                          history, data=data)
    on_fill = None if as_json else _print_fill
    if mode == "paper" and replay:
        summary = _attempt(lambda: run_live(request, on_fill=on_fill), as_json)
    else:
        with watch(metrics_port, spec, mode, account) as observers:
            settings = RunnerSettings(account, exchange, endpoint, arm, unknown_orders,  # type: ignore[arg-type]
                                      max_ticks, flatten, observers=observers)
            summary = _attempt(lambda: run_deployment(request, settings, on_fill=on_fill),
                               as_json)
    if as_json:
        write_json(summary.model_dump(mode="json"))
    else:
        _print_summary(summary)
    raise typer.Exit(EXIT_OK)


def _print_fill(fill: FillRow) -> None:
    typer.echo(f"{fill.time[:16]}  {fill.side:<4} {fill.qty:.8g} {fill.market} @ "
               f"{fill.price:,.2f}  fee {fill.fee:.4f}  {fill.reason}  [{fill.slot}]")


def _print_summary(s: LiveSummary) -> None:
    span = f"{(s.first_tick or '—')[:16]} → {(s.last_tick or '—')[:16]}"
    typer.echo(f"{s.spec} ({s.kind}) {s.mode}, {s.source}: {s.ticks:,} ticks {span}, "
               f"history {', '.join(str(h) for h in s.history_bars)} bars")
    for label, source in s.data.items():
        typer.echo(f"data: {label} — {source}")
    typer.echo(f"fills {len(s.fills)}, closed trades {s.closed_trades}, open positions "
               f"{len(s.open_positions)}; equity {s.equity:,.2f} "
               f"({100 * s.total_return:+.2f}% on {s.capital:,.2f})")
    denied = {k: v for k, v in s.risk.items() if v}
    if denied:
        typer.echo("risk: " + ", ".join(f"{k} {v}" for k, v in sorted(denied.items())))
    for note in s.notes[:10]:
        typer.echo(f"note: {note}")
    typer.echo(f"artifact {s.artifact_sha256[:12]}  engine {s.engine_version}")


# ------------------------------------------------------------------ arm


@live_app.command("arm")
@guarded
def arm_cmd(spec: SpecOrPortfolioArg, account: AccountOpt = "default",
            mode: Annotated[str, typer.Option("--mode", help="the mode to arm (live)")] = "live",
            ttl: TtlOpt = 10, as_json: JsonOpt = False) -> None:
    """Print a short-lived token that lets `peak live run --mode live --arm TOKEN` start."""
    from ..live.arming import expires_at
    from ..live.gate import arm_spec

    if not 1 <= ttl <= 60:
        raise usage("--ttl", f"--ttl {ttl} is out of range", "1 to 60 minutes")
    now = datetime.now(UTC)
    token = _attempt(lambda: arm_spec(spec, mode, account, now=now,
                                      ttl=timedelta(minutes=ttl)), as_json)
    until = expires_at(token).isoformat().replace("+00:00", "Z")
    if as_json:
        write_json({"token": token, "mode": mode, "account": account, "expires": until})
    else:
        typer.echo(token)
        typer.echo(f"valid until {until} for {mode} on account {account}", err=True)
    raise typer.Exit(EXIT_OK)


# ------------------------------------------------------------------ kill, reset, status


def _deployment(spec: str, mode: str, account: str) -> Deployment:
    """Where ``spec``'s deployment in ``mode`` on ``account`` keeps its state."""
    from ..lang.project import find_root
    from ..live.runner import Deployment
    from ..robustness.subject import subject_plan

    root = find_root(Path(spec).resolve().parent)
    plan, _ = subject_plan(spec, root=root)
    return Deployment(root, mode, account, plan.config.name)  # a strategy's plan: its name


def _deployment_plan(spec: str, mode: str, account: str, risk: str | None = None
                     ) -> tuple[Deployment, DeployedPlan]:
    """Where the deployment keeps its state, and its plan under the risk spec it runs with
    (``--risk``, else the one it recorded when it started: ``live.deployed``)."""
    from ..live.deployed import deployed_plan

    return deployed_plan(spec, mode, account, risk)


@live_app.command("kill")
@guarded
def kill_cmd(spec: SpecOrPortfolioArg, mode: DeployedModeOpt,
             account: AccountOpt = "default", reason: ReasonOpt = "operator kill",
             flatten: FlattenOpt = False, exchange: ExchangeOpt = "binance",
             endpoint: EndpointOpt = None, as_json: JsonOpt = False) -> None:
    """Engage the kill switch: no new orders; a running deployment cancels its open orders
    (and sells, with --flatten) within a second; a stopped one's open orders are cancelled
    here (testnet, live: credentials from the environment)."""
    from ..live.ops import cancel_when_stopped
    from ..live.runner import request_kill
    from ..live.store import LiveStore
    from ..live.store_schema import StoreError

    where, deployed = _attempt(lambda: _deployment_plan(spec, mode, account), as_json)
    by, cancelled, alerted = _who(), 0, None
    try:
        with LiveStore.open(where.store_path) as store:  # no runner: engage it here
            was_engaged = store.kill_state().engaged
            state = store.engage_kill(reason, by, at=int(time.time() * 1000))
            if not was_engaged:  # the runner raises A004 itself; here nobody else would
                alerted = _alert_kill(store, where, deployed.plan, reason, by)
            cancelled = _attempt(lambda: cancel_when_stopped(store, mode, account, exchange,
                                                             endpoint), as_json)
        running = False
    except StoreError as exc:
        if exc.diagnostic.code != "E020":
            emit(exc.diagnostics, Format.json if as_json else Format.text)
            raise typer.Exit(exit_code(exc.diagnostics)) from None
        request_kill(where, reason, by, flatten)  # a runner holds the store: ask it
        running, state = True, None
    if as_json:
        write_json({"engaged": True, "running": running, "reason": reason, "by": by,
                    "cancelled": cancelled, "alert": alerted})
    else:
        typer.echo("kill requested from the running deployment" if running else
                   f"kill switch engaged: {state.reason if state else reason}"
                   + (f"; {cancelled} open order(s) cancelled" if cancelled else ""))
        if alerted is not None:
            typer.echo(f"A004 raised to {', '.join(alerted['sinks']) or 'no sink'}"
                       + "".join(f"; not to {p}" for p in alerted["problems"]))
    raise typer.Exit(EXIT_OK)


def _alert_kill(store: Any, where: Deployment, plan: Any, reason: str,
                by: str) -> dict[str, Any]:
    """A004 through the deployment's alert sinks (``monitor.alert_kill_when_stopped``):
    which sinks it went to, and the ones that could not be made (E044, never a refusal:
    the switch is engaged either way)."""
    from ..live.monitor import alert_kill_when_stopped

    config = plan.risk.alerts if plan.risk is not None else None
    setup = alert_kill_when_stopped(store, where.store_path.with_suffix(".outbox.jsonl"),
                                    config, reason, by)
    return {"code": "A004", "sinks": [s.name for s in setup.sinks],
            "problems": [p.message for p in setup.problems]}


def _who() -> str:
    from ..promote.flow import author_name

    return author_name(None)


@live_app.command("reset")
@guarded
def reset_cmd(spec: SpecOrPortfolioArg, reason: ReasonOpt, mode: DeployedModeOpt,
              account: AccountOpt = "default", yes: YesOpt = False,
              as_json: JsonOpt = False) -> None:
    """Release the kill switch (asks for confirmation; logged with the reason)."""
    from ..live.store import LiveStore

    if not reason.strip():
        raise usage("--reason", "--reason is empty", "say why the switch may be released")
    where = _attempt(lambda: _deployment(spec, mode, account), as_json)
    if not yes and not typer.confirm(f"release the kill switch of {where.spec_name} "
                                     f"({mode}, {account})?", default=False):
        typer.echo("not reset", err=True)
        raise typer.Exit(1)
    with _attempt(lambda: LiveStore.open(where.store_path, create=False), as_json) as store:
        state = store.reset_kill(reason, _who(), at=int(time.time() * 1000))
    if as_json:
        write_json({"engaged": state.engaged, "reason": state.reason, "by": state.by})
    else:
        typer.echo(f"kill switch released: {reason}")
    raise typer.Exit(EXIT_OK)


@live_app.command("status")
@guarded
def status_cmd(spec: SpecOrPortfolioArg, mode: DeployedModeOpt,
               account: AccountOpt = "default", risk: ReadRiskOpt = None,
               as_json: JsonOpt = False) -> None:
    """The deployment's state: kill switch, sessions, the risk spec it runs under, equity and
    PnL, each risk limit's use, denials, positions, open orders, recent problems."""
    from .. import api

    doc = _attempt(lambda: api.live_status(spec, mode=mode, account=account, risk=risk),
                   as_json)
    if as_json:
        write_json(doc)
    else:
        _print_status(doc)
    raise typer.Exit(EXIT_OK)


SHARE_LIMITS = frozenset({"max_symbol_exposure", "max_total_exposure", "max_daily_loss"})


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _print_status(doc: dict[str, Any]) -> None:
    from ..live.run import iso

    kill = doc["kill_switch"]
    typer.echo("kill switch: " + (f"ENGAGED — {kill['reason']} (by {kill['by']})"
                                  if kill["engaged"] else "released"))
    _print_risk_spec(doc.get("risk_spec"))
    for s in doc["sessions"][-3:]:
        typer.echo(f"session {s['id']} ({s['mode']}): {s['status']}")
    book = doc["book"]
    if book is not None:
        typer.echo(f"last tick {iso(book['last_tick'] / 1000)[:16]}: equity "
                   f"{book['equity']:,.2f}, PnL {book['pnl']:+,.2f} ({_pct(book['return'])})")
        for row in book["limits"]:
            if row["max"] is not None:
                limit = _pct(row["max"]) if row["limit"] in SHARE_LIMITS else f"{row['max']:g}"
                typer.echo(f"  {row['limit']:<22} {_pct(row['used'])} of {limit}")
        if book["risk"]:
            typer.echo("  risk: " + ", ".join(f"{k} {v}" for k, v in book["risk"].items()))
    for d in doc["denials"][-5:]:
        typer.echo(f"  {iso(d['at'] / 1000)[:16]}  {d['decision']} {d['count']} "
                   f"entr{'y' if d['count'] == 1 else 'ies'} on {d['limit'].replace('_', ' ')}")
    for p in doc["positions"]:
        typer.echo(f"position {p['market']}: {p['qty']:.8g} @ {p['average_price']:,.2f}, "
                   f"realized {p['realized_pnl']:,.2f}, fees {p['fees']:,.4f}")
    typer.echo(f"open orders: {len(doc['open_orders'])}")
    for a in doc["alerts"][-5:]:
        typer.echo(f"  alert {a['severity']:<8} {a['message']}")
    for e in doc["problems"][-5:]:
        typer.echo(f"  {e['level']:<8} {e['event']}: {e['message']}")
    for e in doc["log"][-5:]:
        typer.echo(f"  {e['level']:<8} {e['event']}: {e['message']}")


def _print_risk_spec(risk: dict[str, Any] | None) -> None:
    if risk is None:
        return
    typer.echo(f"risk spec: {risk['label']}")
    for note in risk["notes"]:
        typer.echo(f"  note: {note}")


# ------------------------------------------------------------------ operations


AllOpt = Annotated[bool, typer.Option("--all", help="every order, not only the open ones")]


@live_app.command("health")
@guarded
def health_cmd(spec: SpecOrPortfolioArg, mode: ModeOpt = "paper",
               account: AccountOpt = "default", exchange: ExchangeOpt = "binance",
               endpoint: EndpointOpt = None, risk: ReadRiskOpt = None,
               as_json: JsonOpt = False) -> None:
    """Check a deployment before the day: config, credentials (named, never shown),
    exchange, clock skew, data freshness, risk limits, alert sinks, kill switch. The risk
    spec is the one the deployment recorded when it started (or --risk: the one a start
    with --risk will enforce). Exit 1 if any fails."""
    from .. import api

    report = api.live_health(spec, mode=mode, account=account, exchange=exchange,
                             endpoint=endpoint, risk=risk)
    if as_json:
        write_json({**report.model_dump(mode="json"), "ok": report.ok})
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for c in report.checks:
            code = f" [{c.code}]" if c.code else ""
            typer.echo(f"{marks[c.status]}  {c.name:<15} {c.detail}{code}")
            if c.fix and c.status != "ok":
                typer.echo(f"      {'':<15} fix: {c.fix}")
    raise typer.Exit(EXIT_OK if report.ok else 1)


@live_app.command("orders")
@guarded
def orders_cmd(spec: SpecOrPortfolioArg, mode: DeployedModeOpt,
               account: AccountOpt = "default", every: AllOpt = False,
               as_json: JsonOpt = False) -> None:
    """The deployment's orders from its store (open ones unless --all)."""
    from ..live.store import LiveStore

    where = _attempt(lambda: _deployment(spec, mode, account), as_json)
    statuses = () if every else ("submitting", "unknown", "open", "partially_filled",
                                 "cancelling")
    with _attempt(lambda: LiveStore.open(where.store_path, readonly=True), as_json) as store:
        rows = [{"client_order_id": o.client_order_id, "intent": o.intent_id,
                 "market": o.market, "side": o.side, "qty": o.qty, "status": o.status,
                 "filled": o.filled_qty, "average_price": o.average_price,
                 "exchange_order_id": o.exchange_order_id, "created_at": o.created_at}
                for o in store.orders(*statuses)]
    if as_json:
        write_json({"orders": rows})
    else:
        typer.echo(f"{len(rows)} order(s)")
        for r in rows:
            typer.echo(f"{r['client_order_id']}  {r['side']:<4} {r['qty']:.8g} {r['market']} "
                       f"{r['status']}  filled {r['filled']:.8g} @ {r['average_price']:,.2f}")
    raise typer.Exit(EXIT_OK)


@live_app.command("portfolio")
@guarded
def portfolio_cmd(spec: SpecOrPortfolioArg, mode: DeployedModeOpt,
                  account: AccountOpt = "default", as_json: JsonOpt = False) -> None:
    """What the deployment holds: the book's equity and each slot's position (its last
    snapshot), and the positions its fills built on the exchange."""
    from ..live.store import LiveStore

    where, deployed = _attempt(lambda: _deployment_plan(spec, mode, account), as_json)
    labels = [c.label for c in deployed.plan.components]
    with _attempt(lambda: LiveStore.open(where.store_path, readonly=True), as_json) as store:
        doc = _portfolio_doc(store, labels)
    if as_json:
        write_json(doc)
    else:
        book = doc["book"]
        if book is not None:
            typer.echo(f"book at {book['bar_time']}: equity {book['equity']:,.2f}, cash "
                       f"{book['cash']:,.2f}")
            for s in book["slots"]:
                mark = "—" if s["mark"] is None else f"{s['mark']:,.2f}"
                typer.echo(f"  {s['slot']:<32} {s['qty']:+.8g} @ {s['entry_price']:,.2f} "
                           f"(mark {mark})")
        for p in doc["positions"]:
            typer.echo(f"exchange {p['market']}: {p['qty']:.8g} @ {p['average_price']:,.2f}, "
                       f"realized {p['realized_pnl']:,.2f}, fees {p['fees']:,.4f}")
    raise typer.Exit(EXIT_OK)


def _portfolio_doc(store: Any, labels: list[str]) -> dict[str, Any]:
    from ..engine.state import CASH, ENTRY_PRICE, LAST_EQUITY, MARK, QTY, SIDE
    from ..live.run import iso

    snap = store.last_snapshot()
    book = None
    if snap is not None and snap.arrays["positions"].shape[0] == len(labels):
        account, positions = snap.arrays["account"], snap.arrays["positions"]
        book = {"bar_time": iso(snap.bar_time / 1000), "equity": float(account[LAST_EQUITY]),
                "cash": float(account[CASH]),
                "slots": [{"slot": label, "qty": float(pos[SIDE] * pos[QTY]),
                           "entry_price": float(pos[ENTRY_PRICE]) if pos[SIDE] else 0.0,
                           "mark": float(pos[MARK]) if math.isfinite(pos[MARK]) else None}
                          for label, pos in zip(labels, positions, strict=True)]}
    return {"book": book, "positions": [
        {"market": p.market, "qty": p.qty, "average_price": p.average_price,
         "realized_pnl": p.realized_pnl, "fees": p.fees} for p in store.positions()]}


# ------------------------------------------------------------------ verify


ToleranceOpt = Annotated[float, typer.Option(
    "--tolerance", help="largest PnL or equity gap allowed, a fraction of the capital "
    "(0.005 = 0.5%)", metavar="X")]


@live_app.command("verify")
@guarded
def verify_cmd(spec: SpecOrPortfolioArg, mode: DeployedModeOpt,
               account: AccountOpt = "default", tolerance: ToleranceOpt = 0.005,
               risk: RiskOpt = None, capital: SpecCapitalOpt = None, fee_bps: FeeOpt = None,
               history: HistoryOpt = None, as_json: JsonOpt = False) -> None:
    """Compare the deployment's last session with a backtest replay of the same candles:
    fills, PnL, equity. On a divergence, raise A010 to its alert sinks and exit 1."""
    from ..live.verify import Request, verify_and_alert

    if not (math.isfinite(tolerance) and 0 <= tolerance <= 1):
        raise usage("--tolerance", f"--tolerance {tolerance:g} is out of range",
                    "a fraction of the capital from 0 to 1, e.g. 0.005 for 0.5%")
    _check(0.0, history, None)
    request = Request(spec, mode, account, tolerance, risk, capital, fee_bps, history)
    report = _attempt(lambda: verify_and_alert(request), as_json)
    if as_json:
        write_json({**report.model_dump(mode="json"), "ok": report.ok})
    else:
        _print_verify(report)
    raise typer.Exit(EXIT_OK if report.ok else 1)


def _print_verify(r: Any) -> None:
    typer.echo(f"{r.spec} ({r.mode}, account {r.account}): session {r.session or '—'}, "
               f"{(r.start or '—')[:16]} → {(r.end or '—')[:16]}, {r.bars} bars")
    for problem in r.problems:
        typer.echo(f"cannot compare: {problem}")
    if r.problems:
        return
    worst = "—" if r.worst_gap_bps is None else f"{r.worst_gap_bps:+.1f} bps"
    typer.echo(f"fills: {r.fills_live} on the exchange, {r.fills_backtest} in the replay, "
               f"{r.unmatched} unmatched; worst price gap {worst}")
    typer.echo(f"PnL: live {r.pnl_live:+,.2f}, replay {r.pnl_backtest:+,.2f}: gap "
               f"{r.pnl_gap:+.2%} of capital (tolerance {r.tolerance:.2%}); book gap "
               f"{r.book_gap:.2%}")
    typer.echo("DIVERGED — A010 raised" + ("" if r.alerted else " (no sink took it)")
               if r.diverged else "consistent with the backtest")
