"""A deployment: one spec, one mode, one account, with state that survives anything.

``run_deployment`` is ``peak live run`` for every session that keeps state (all but a paper
replay): the gate (``gate.authorize``: promotion record, arming, credentials, endpoint), the
store (``.peak/live/<mode>/<account>/<spec>.sqlite``, one writer), the kill switch (refuses
to start while engaged), reconciliation with the exchange (``reconcile``; a failure halts),
the book restored from the last snapshot, the streams warmed up again from history, and
then, per tick: the step, the executor's orders, and the snapshot of the book with the
tick's cursors in one transaction. A crash anywhere replays at most the tick in flight, and
the write-ahead orders and deterministic client ids make that replay send nothing twice.

The kill switch is durable state in the store. ``peak live kill`` asks a running deployment
through a request file next to the store (the runner holds the store's lock); the runner
looks for it between ticks and while it waits, at least every ``KILL_POLL`` seconds, then
engages the switch, cancels its open orders and, when asked, sells what each slot holds.
Automatic triggers: a fatal or the ``max_errors``-th consecutive exchange error, a failed
reconciliation, the daily-loss limit, any exception inside a step (risk evaluation
included).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.state import DAY_EQUITY, HALTED, MARK, QTY, SIDE
from ..lang.diagnostics import diag
from ..portfolio.run import limits_of, rebalance_of
from .alerts import Sink
from .execute import ExecutorSettings, VenueExecutor, crashpoint
from .feed import CandleSource, PollingSource
from .gate import GateRequest, Refused, authorize
from .monitor import AlertMonitor, SinkSetup, alert_sinks_for, dispatcher_for
from .paper import PaperRecorder
from .reconcile import UnknownPolicy, reconcile
from .run import (
    LiveRequest,
    LiveSummary,
    fill_row,
    iso,
    replay_source,
    resolve_plan_and_risk,
    summarize,
)
from .session import Session, refuse_unlisted, slot_specs
from .store import LiveStore
from .store_rows import RiskSpecRecord, SessionStatus

KILL_POLL = 0.2  # seconds between looks for a kill request while waiting
WHERE = "<live>"


@dataclass(frozen=True)
class TickState:
    """What a deployment looks like after a tick: what monitoring (metrics, alerts, the
    status commands) reads, built once per tick by the runner."""

    time: float  # the tick's moment (epoch seconds)
    wall: float  # the runner's clock when it was built
    equity: float
    exposure: float  # gross notional of the book's positions at their marks
    open_positions: int
    orders: dict[str, int]  # the store's orders by status
    risk: dict[str, int]  # the risk stage's reductions and denials, by reason
    exchange_errors: int  # consecutive, as the executor counts them
    kill_engaged: bool
    exchange_failures: int = 0  # every exchange failure of the run so far
    day_loss: float | None = None  # the day's loss, of the day's starting equity

    @property
    def bar_age(self) -> float:
        """Seconds since the tick's bar closed (what a stale feed raises)."""
        return self.wall - self.time


Observer = Callable[[TickState], None]


class KillRequested(Exception):
    """A kill request arrived while the runner waited."""


@dataclass(frozen=True)
class Deployment:
    """Where a deployment's state lives."""

    root: Path
    mode: str
    account: str
    spec_name: str

    @property
    def store_path(self) -> Path:
        return self.root / ".peak" / "live" / self.mode / self.account / \
            f"{self.spec_name}.sqlite"

    @property
    def kill_path(self) -> Path:
        return self.store_path.with_suffix(".kill")


@dataclass(frozen=True)
class RunnerSettings:
    """How a deployment runs (the CLI's options; tests shorten the waits)."""

    account: str = "default"
    exchange: str = "binance"
    endpoint: str | None = None
    arm_token: str | None = field(default=None, repr=False)
    unknown_orders: UnknownPolicy = "cancel"
    max_ticks: int | None = None
    flatten_on_kill: bool = False
    executor: ExecutorSettings = ExecutorSettings()
    resolve_delay_s: float = 1.0
    timeout_ms: int = 10_000
    kill_poll_s: float = KILL_POLL  # tests with a simulated clock look less often
    observers: tuple[Observer, ...] = ()  # called with each tick's ``TickState``
    extra_sinks: tuple[Sink, ...] = ()  # alert sinks besides the risk spec's (tests, drills)


def request_kill(deployment: Deployment, reason: str, by: str, flatten: bool) -> None:
    """Ask a running deployment to engage its kill switch (atomic write of the request)."""
    from ..atomic import write_atomic

    deployment.kill_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(deployment.kill_path, json.dumps(
        {"reason": reason, "by": by, "flatten": flatten}, sort_keys=True).encode("utf-8"))


def _kill_request(deployment: Deployment) -> dict[str, Any] | None:
    try:
        text = deployment.kill_path.read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        found: dict[str, Any] = json.loads(text)
    except ValueError:
        found = {"reason": "an unreadable kill request", "by": "unknown"}
    return found


def refusal(code: str, message: str, help: str) -> Refused:
    return Refused([diag(code, message, WHERE, help=help)])


class Runner:
    """One run of a deployment (module docstring)."""

    def __init__(self, request: LiveRequest, settings: RunnerSettings, *,
                 env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.request, self.settings, self.env = request, settings, env
        self.clock, self._sleep = clock, sleep
        self.plan, self.risk_sha256 = resolve_plan_and_risk(request)
        self.deployment = Deployment(self.plan.root, request.mode, settings.account,
                                     self._spec_name())
        self.session_id = f"{self._spec_name()}-{self.plan.artifact_sha256[:12]}"
        self.notes: list[str] = []
        # what a kill must reach, set as the run gets them (the switch works from the start)
        self.store: LiveStore | None = None
        self.executor: VenueExecutor | None = None
        self.session: Session | None = None
        self.alerts: AlertMonitor | None = None

    def _spec_name(self) -> str:
        plan = self.plan
        return plan.config.name  # a lone strategy's plan bears its name

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ the run

    def run(self, on_fill: Callable[[Any], None] | None = None) -> LiveSummary:
        auth = authorize(GateRequest(
            self.request.spec, self.request.mode,  # type: ignore[arg-type]
            datetime.fromtimestamp(self.clock(), UTC), self.plan.root, self.settings.account,
            self.settings.exchange, self.settings.endpoint, self.settings.arm_token, self.env))
        self._spot_only()
        if self.request.replay and self.request.mode != "paper" and \
                auth.endpoint.kind != "loopback":
            hosts = ", ".join(sorted(auth.endpoint.hosts())) or "the exchange"
            raise refusal("E043", f"--replay sends orders only to a loopback exchange, not to "
                          f"{hosts}", "run the replay in paper mode, or point --endpoint at a "
                          "loopback exchange")
        setup = self._alert_sinks()
        venue = self._venue(auth) if self.request.mode != "paper" or not self.request.replay \
            else None
        if venue is not None and not self.request.replay:
            refuse_unlisted(self.plan, venue)  # E045 before the store: no token spent
        with LiveStore.open(self.deployment.store_path) as store:
            self.store = store
            try:
                self._start(store, auth.token_digest)
            except Refused:  # e.g. E041: deliver what an earlier run could not, then refuse
                self._monitor(store, setup).close()
                raise
            self.alerts = self._monitor(store, setup)
            try:
                return self._run_session(store, venue, on_fill)
            finally:
                self.alerts.close()

    def _run_session(self, store: LiveStore, venue: Any,
                     on_fill: Callable[[Any], None] | None) -> LiveSummary:
        executor = VenueExecutor(store, venue, self.session_id, now_ms=self.now_ms,
                                 kill=lambda why: self._kill(store, why),
                                 settings=self.settings.executor) \
            if venue is not None and self.request.mode != "paper" else None
        self.executor = executor
        if executor is not None:
            self._reconcile(store, executor)
        return self._loop(store, venue, executor, on_fill)

    # ------------------------------------------------------------------ alerts

    def _alert_sinks(self) -> SinkSetup:
        """The risk spec's sinks; one that cannot be made refuses a testnet or live start
        (E044) and is left out of a paper one, with a note."""
        import os

        risk = self.plan.risk
        setup = alert_sinks_for(risk.alerts if risk is not None else None,
                                self.env if self.env is not None else os.environ)
        if setup.problems and self.request.mode != "paper":
            raise Refused(list(setup.problems))
        self.notes.extend(f"{p.message} (E044): the paper session runs without this sink"
                          for p in setup.problems)
        return setup

    def _monitor(self, store: LiveStore, setup: SinkSetup) -> AlertMonitor:
        """The deployment's alerts; its dispatcher redelivers at once the critical alerts an
        earlier run left undelivered in the outbox (``close`` gives them two seconds)."""
        risk = self.plan.risk
        outbox = self.deployment.store_path.with_suffix(".outbox.jsonl")
        dispatcher = dispatcher_for(risk.alerts if risk is not None else None, setup,
                                    self.settings.extra_sinks, outbox, self.clock)
        return AlertMonitor(dispatcher, store, self.session_id, clock=self.clock,
                            max_daily_loss=risk.max_daily_loss if risk else math.inf,
                            daily_loss_warn=risk.daily_loss_warn if risk else 0.8)

    def alert(self, code: str, key: str, message: str, **data: Any) -> None:
        if self.alerts is not None:
            self.alerts.raise_(code, key, message, **data)

    def _spot_only(self) -> None:
        if self.request.mode == "paper":
            return
        shorts = [c.label for c in self.plan.components
                  if {"entry_short"} & set(c.config.graph.rules)]
        if shorts:
            raise refusal("E042", f"{', '.join(shorts)} can sell short; a spot account "
                          "cannot", "remove the short rules for spot trading, or run it in "
                          "paper mode")

    def _venue(self, auth: Any) -> Any:
        from .venue import Venue, client_for

        creds = auth.credentials
        client = client_for(auth.endpoint, creds.api_key if creds else None,
                            creds.api_secret if creds else None, self.settings.timeout_ms)
        venue = Venue(client, resolve_attempts=self.settings.executor.resolve_attempts,
                      resolve_delay_s=self.settings.resolve_delay_s, sleep=self._sleep)
        venue.load()
        return venue

    def _start(self, store: LiveStore, token_digest: str | None) -> None:
        at = self.now_ms()
        if token_digest is not None and not store.consume_token(token_digest, at):
            from .arming import already_used

            raise Refused([already_used(token_digest)])
        kill = store.kill_state()
        if kill.engaged:
            raise refusal("E041", f"the kill switch of this deployment is engaged: "
                          f"{kill.reason} (by {kill.by})", "find out why, then `peak live "
                          "reset SPEC --mode MODE --reason …` releases it")
        self.deployment.kill_path.unlink(missing_ok=True)  # a request for a stopped run
        plan = self.plan
        store.start_session(self.session_id, spec=self._spec_name(),
                            artifact_sha256=plan.artifact_sha256, mode=self.request.mode,
                            account=self.settings.account, exchange=self.settings.exchange,
                            params={c.label: c.params for c in plan.components}, at=at)
        store.record_risk_spec(self.risk_record(), at=at, session=self.session_id)

    def risk_record(self) -> RiskSpecRecord:
        """The risk spec this run enforces, as the store remembers it for the readers."""
        risk = self.plan.risk
        if risk is None or self.risk_sha256 is None:
            return RiskSpecRecord(None, None, self.request.risk is not None)
        return RiskSpecRecord(risk.name, self.risk_sha256, self.request.risk is not None)

    def _reconcile(self, store: LiveStore, executor: VenueExecutor) -> None:
        markets = sorted({c.config.market.symbol for c in self.plan.components})
        done = reconcile(executor, markets, self.settings.unknown_orders)
        changes = done.resolved + done.adopted + done.cancelled
        for line in changes:
            store.log("reconciled", line, at=self.now_ms(), session=self.session_id)
        crashpoint("reconciled")
        if changes:
            self.alert("A006", "reconciliation", f"reconciliation changed {len(changes)} "
                       "order(s): " + "; ".join(changes[:5]), changes=len(changes))
        if not done.ok:
            self.alert("A005", "reconciliation", "reconciliation failed: "
                       + "; ".join(done.problems))
            self._kill(store, "reconciliation failed: " + "; ".join(done.problems))
            store.end_session(self.session_id, "halted", at=self.now_ms())
            raise refusal("E040", "reconciliation with the exchange failed: "
                          + "; ".join(done.problems), "the kill switch is engaged; settle "
                          "the account by hand, then `peak live reset`")

    def _session(self, store: LiveStore, adapter: Any) -> tuple[Session, float | None]:
        plan = self.plan
        session = Session(slot_specs(plan, self.request.fee_bps), plan.capital, adapter,
                          limits=limits_of(plan), rebalance=rebalance_of(plan),
                          min_history=self.request.min_history)
        snap = store.last_snapshot()
        resumed = snap.bar_time / 1000 if snap is not None and \
            snap.session == self.session_id else None
        return session, resumed

    def _source(self, session: Session, venue: Any, resumed: float | None) -> CandleSource:
        if self.request.replay:
            return replay_source(self.plan, self.request, sleep=self.wait, after=resumed)
        return PollingSource(session.feeds, venue.fetch_ohlcv, clock=self.clock,
                             sleep=self.wait,
                             max_ticks=self.settings.max_ticks, on_error=self.feed_error)

    def _loop(self, store: LiveStore, venue: Any, executor: VenueExecutor | None,
              on_fill: Callable[[Any], None] | None) -> LiveSummary:
        adapter = executor if executor is not None else \
            PaperRecorder(store, self.session_id, self.now_ms)
        session, resumed = self._session(store, adapter)
        self.session = session
        source = self._source(session, venue, resumed)
        history = session.warm_up(source)
        snap = store.last_snapshot() if resumed is not None else None
        if snap is not None:
            session.book.restore(snap.arrays)
        status: SessionStatus = "stopped"
        try:
            status = self._ticks(store, session, source, executor, on_fill)
        except KillRequested:
            status = "halted"
            last = session.log.equity[-1][0] if session.log.equity else self.clock()
            self._observe(store, session, executor, last)  # the switch, as monitoring sees it
        except Exception:  # a failed step (its kill is engaged) or a store/exchange failure
            status = "halted"
            raise
        finally:
            current = store.session(self.session_id)
            if current is not None and current.status == "running":
                store.end_session(self.session_id, status, at=self.now_ms())
        notes = [*self.notes, *session.log.notes,
                 *(executor.state.notes if executor is not None else [])]
        session.log.notes[:] = notes
        return summarize(self.request, self.plan, session, history,
                         "replay" if self.request.replay else "exchange")

    def _ticks(self, store: LiveStore, session: Session, source: CandleSource,
               executor: VenueExecutor | None, on_fill: Callable[[Any], None] | None
               ) -> SessionStatus:
        for given, tick in enumerate(source.ticks(), start=1):
            self._check_kill()
            before = (len(session.log.signals), [n > 0 for n in session.book.bars])
            try:
                report = session.step(tick)
            except KillRequested:
                raise
            except Exception as exc:  # inside decide / risk / fill / book: stop everything
                self.alert("A009", "step", f"the step failed on the tick of {tick.time:.0f}: "
                           f"{type(exc).__name__}: {exc}")
                self._kill(store, f"an exception inside the step: {type(exc).__name__}: "
                           f"{exc}")
                raise
            crashpoint("stepped")
            if on_fill is not None:
                for fill in report.fills:
                    on_fill(fill_row(fill, session.slots))
            store.save_bar(int(tick.time * 1000), session.book.state(),
                           session=self.session_id)
            crashpoint("saved")
            self._feed_alerts(session, tick, *before)
            halted = self._daily_loss(session)
            if halted:
                self.alert("A003", "daily_loss", "the daily-loss limit was reached: entries "
                           "halted")
                self._kill(store, "the daily-loss limit was reached")
            self._observe(store, session, executor, tick.time)  # after any kill: it shows
            if halted or store.kill_state().engaged:
                return "halted"
            if self.settings.max_ticks is not None and given >= self.settings.max_ticks:
                break
        return "stopped"

    def _feed_alerts(self, session: Session, tick: Any, signals: int,
                     open_before: list[bool]) -> None:
        """A007 for each feed whose bar closed at this tick without its candle (a gap, an
        exchange that did not publish it) and each slot that acted on a stale bar (its own
        candle late, or another market's feed behind: no entry was allowed)."""
        for record in session.log.signals[signals:]:
            if record.stale:
                label = session.slots[record.slot].label
                self.alert("A007", f"feed:{label}", f"{label}: {record.why}: no entry on "
                           f"the bar of {iso(record.time)}", slot=label)
        for f, feed in enumerate(session.feeds):
            readers = [s for s, _ in session.others.readers.get(f, [])] or [f]
            due = tick.time % feed.timeframe_seconds == 0 and any(open_before[s]
                                                                   for s in readers)
            if due and f not in tick.closed:
                label = session.slots[f].label if f < len(session.slots) else \
                    f"{feed.market} (read by " + ", ".join(
                        session.slots[s].label for s in readers) + ")"
                self.alert("A007", f"feed:{label}", f"{label}: no closed candle for the bar "
                           f"ending {iso(tick.time)}", slot=label)

    def feed_error(self, market: str, exc: Exception) -> None:
        """The polling source could not fetch candles (it retries within its patience)."""
        self.alert("A008", f"exchange:market_data:{market}", f"{market}: fetching candles "
                   f"failed ({type(exc).__name__})", market=market)

    def tick_state(self, store: LiveStore, session: Session,
                   executor: VenueExecutor | None, time_s: float) -> TickState:
        book = session.book
        held = book.positions[:, SIDE] != 0.0
        exposure = float(np.abs(book.positions[held, QTY] * book.positions[held, MARK]).sum())
        orders: dict[str, int] = {}
        for order in store.orders():
            orders[order.status] = orders.get(order.status, 0) + 1
        day_equity = float(book.account[DAY_EQUITY])
        day_loss = max(0.0, 1.0 - book.equity / day_equity) if day_equity > 0 else None
        return TickState(time_s, self.clock(), book.equity, exposure, int(held.sum()), orders,
                         book.risk(), executor.state.errors if executor else 0,
                         store.kill_state().engaged,
                         executor.state.failures if executor else 0, day_loss)

    def _observe(self, store: LiveStore, session: Session, executor: VenueExecutor | None,
                 time_s: float) -> None:
        observers = [*self.settings.observers,
                     *([self.alerts.observe] if self.alerts is not None else [])]
        if not observers:
            return
        state = self.tick_state(store, session, executor, time_s)
        for observe in observers:
            try:
                observe(state)
            except Exception as exc:  # monitoring must never stop trading
                store.log("observer", f"an observer failed: {type(exc).__name__}",
                          at=self.now_ms(), session=self.session_id, level="error")

    def _daily_loss(self, session: Session) -> bool:
        return bool(session.book.account[HALTED] != 0.0) and \
            math.isfinite(limits_of(self.plan).max_daily_loss)

    # ------------------------------------------------------------------ the kill switch

    def wait(self, seconds: float) -> None:
        """Sleep, looking for a kill request at least every ``kill_poll_s`` seconds."""
        end = self.clock() + seconds
        while True:
            self._check_kill()
            left = end - self.clock()
            if left <= 0:
                return
            self._sleep(min(left, self.settings.kill_poll_s))

    def _check_kill(self) -> None:
        """A kill request (``peak live kill``): engage, clean up, stop (``KillRequested``)."""
        asked = _kill_request(self.deployment)
        if asked is None or self.store is None:
            return
        self._kill(self.store, f"{asked.get('reason', 'requested')} (requested by "
                   f"{asked.get('by', 'unknown')})",
                   bool(asked.get("flatten", False)) or self.settings.flatten_on_kill)
        raise KillRequested

    def _kill(self, store: LiveStore, why: str, flatten: bool | None = None) -> None:
        """Engage the switch (durable), cancel our open orders, optionally sell holdings —
        whatever triggered it (a request, the executor, reconciliation, a step's exception,
        the daily-loss limit)."""
        store.engage_kill(why, "peak live", at=self.now_ms(), session=self.session_id)
        self.notes.append(f"kill switch engaged: {why}")
        self.alert("A004", "kill_switch", f"kill switch engaged: {why}")
        self.deployment.kill_path.unlink(missing_ok=True)
        executor, session = self.executor, self.session
        if executor is None:
            return
        try:
            cancelled = executor.cancel_open()
            store.log("kill", f"{cancelled} open orders cancelled", at=self.now_ms(),
                      session=self.session_id, level="critical")
            wanted = flatten if flatten is not None else self.settings.flatten_on_kill
            if wanted and session is not None:
                executor.flatten(session.slots)
        except Exception as exc:  # the switch is engaged either way
            store.log("kill", f"cleaning up after the kill failed: {type(exc).__name__}",
                      at=self.now_ms(), session=self.session_id, level="critical")


def run_deployment(request: LiveRequest, settings: RunnerSettings, *,
                   env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time,
                   sleep: Callable[[float], None] = time.sleep,
                   on_fill: Callable[[Any], None] | None = None) -> LiveSummary:
    return Runner(request, settings, env=env, clock=clock, sleep=sleep).run(on_fill)


__all__ = ["Deployment", "KillRequested", "Runner", "RunnerSettings", "request_kill",
           "run_deployment"]
