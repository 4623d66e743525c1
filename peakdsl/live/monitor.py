"""A deployment's alerts: the sinks its risk spec declares, and what raises each code.

``alert_sinks_for`` turns the risk spec's ``alerts { … }`` block into sinks, reading each
URL from the environment variable the spec names (a URL is a credential: it is held as a
``SecretStr`` and appears in no message). Without the block a deployment alerts to its
``log`` only. A sink that cannot be made is a *problem* (E044): a testnet or live deployment
refuses to start with one, a paper deployment starts without that sink and says so.

``AlertMonitor`` is what the runner raises alerts through. Each alert is written to the
store's log (event ``alert``, level = severity, data = code, key, severity — what ``peak live
status``, reports, the dashboard and drills read) and handed to the dispatcher, which throttles
and delivers it off the trading loop. Events the runner sees happen are raised by the runner
(kill switch, reconciliation, a failed step, a stale candle, a feed error); what only shows as
a change between ticks is found by ``observe`` (the runner's observer): new risk denials, the
day's loss passing the warning share, new exchange failures, a sink going down.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from ..compile import models as m
from ..lang.diagnostics import Diagnostic, diag
from .alert_codes import severity_of
from .alert_sinks import AppriseSink, LogSink, SlackSink, StderrSink, WebhookSink
from .alerts import Alert, AlertDispatcher, Severity, Sink

if TYPE_CHECKING:
    from .runner import TickState
    from .store import LiveStore

_log = logging.getLogger("peakdsl.live.monitor")
DEFAULT_SINKS = (m.AlertSink(kind="log", severity="info"),)
HTTP_SINKS: dict[str, Callable[[SecretStr], Sink]] = {
    "webhook": WebhookSink, "slack": SlackSink}


@dataclass(frozen=True)
class SinkSetup:
    """The sinks that could be made, each one's least severity, and why others could not."""

    sinks: tuple[Sink, ...]
    levels: dict[str, Severity]
    problems: tuple[Diagnostic, ...] = ()


def sink_problem(sink: m.AlertSink, env: Mapping[str, str]) -> str | None:
    """Why ``sink`` cannot be used with ``env`` (never showing the value), or None."""
    if sink.url_env is None:
        return None
    value = env.get(sink.url_env, "").strip()
    if not value:
        return f"the variable {sink.url_env} is not set"
    if sink.kind in HTTP_SINKS:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"the variable {sink.url_env} does not hold an http(s) URL"
    return None


def unreachable(config: m.Alerts | None, env: Mapping[str, str],
                timeout_s: float = 2.0) -> list[str]:
    """The HTTP sinks whose host does not accept a TCP connection (nothing is sent), each
    named by its kind and variable, never its URL."""
    import socket

    out = []
    for sink in config.sinks if config is not None else []:
        if sink.kind not in HTTP_SINKS or sink_problem(sink, env) is not None:
            continue
        assert sink.url_env is not None
        parts = urlsplit(env[sink.url_env].strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "", port), timeout_s).close()
        except OSError as exc:
            out.append(f"{sink.kind}: the host in ${sink.url_env} is unreachable "
                       f"({type(exc).__name__})")
    return out


def _make(sink: m.AlertSink, env: Mapping[str, str]) -> Sink:
    if sink.kind == "log":
        return LogSink()
    if sink.kind == "stderr":
        return StderrSink()
    assert sink.url_env is not None
    url = SecretStr(env[sink.url_env].strip())
    if sink.kind == "apprise":
        return AppriseSink(url)
    return HTTP_SINKS[sink.kind](url)


def alert_sinks_for(config: m.Alerts | None, env: Mapping[str, str]) -> SinkSetup:
    declared = config.sinks if config is not None else list(DEFAULT_SINKS)
    sinks: list[Sink] = []
    levels: dict[str, Severity] = {}
    problems: list[Diagnostic] = []
    for sink in declared:
        why = sink_problem(sink, env)
        if why is None:
            try:
                sinks.append(_make(sink, env))
            except ValueError as exc:  # apprise could not read the URLs (the text has none)
                why = str(exc).split(": ", 1)[-1]
        if why is not None:
            problems.append(diag("E044", f"alerts.{sink.kind}: {why}", "<live>", help=(
                f"export {sink.url_env} with the sink's URL where the deployment runs, or "
                "remove the sink from the risk spec")))
            continue
        levels[sink.kind] = sink.severity
    return SinkSetup(tuple(sinks), levels, tuple(problems))


def dispatcher_for(config: m.Alerts | None, setup: SinkSetup, extra: Sequence[Sink],
                   outbox: os.PathLike[str] | str, clock: Callable[[], float]
                   ) -> AlertDispatcher:
    """The dispatcher of a deployment: its sinks (plus ``extra``: tests, drills), its
    throttle and queue, its outbox next to the store."""
    throttle = config.throttle_seconds if config is not None else 300
    queue = config.queue if config is not None else 1000
    return AlertDispatcher([*setup.sinks, *extra], clock, throttle_s=throttle,
                           queue_size=queue, outbox=outbox, levels=setup.levels)


@dataclass
class _Seen:
    """What ``observe`` compared the last tick with."""

    risk: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    loss_warned_day: float | None = None
    down: frozenset[str] = frozenset()


class AlertMonitor:
    """Raise a deployment's alerts (module docstring)."""

    def __init__(self, dispatcher: AlertDispatcher, store: LiveStore, session: str | None, *,
                 clock: Callable[[], float] = time.time, max_daily_loss: float = math.inf,
                 daily_loss_warn: float = 0.8) -> None:
        self.dispatcher, self.store, self.session = dispatcher, store, session
        self.clock = clock
        self.max_daily_loss, self.daily_loss_warn = max_daily_loss, daily_loss_warn
        self.seen = _Seen()

    def raise_(self, code: str, key: str, message: str, **data: Any) -> None:
        """Log the alert in the store and queue it for the sinks; never raises (an alert
        must not stop what raised it)."""
        severity = severity_of(code)
        at = self.clock()
        try:
            self.store.log("alert", f"{code} {message}", at=int(at * 1000),
                           level=severity, session=self.session,
                           data={"code": code, "key": key, "severity": severity, **data})
        except Exception as exc:  # a store failure is the runner's to see, not the alert's
            _log.error("could not log alert %s: %s", code, type(exc).__name__)
        self.dispatch(Alert(code, severity, key, message, at, data))

    def dispatch(self, alert: Alert) -> None:
        """Hand ``alert`` to the sinks' queue: what a sink that is down, slow or refusing
        could delay (the dispatcher never waits on one; a drill times this)."""
        self.dispatcher.raise_(alert)

    def observe(self, state: TickState) -> None:
        """The runner's observer: alerts that show only as a change between ticks."""
        self._denials(state.risk)
        self._daily_loss(state)
        if state.exchange_failures > self.seen.failures:
            new = state.exchange_failures - self.seen.failures
            self.raise_("A008", "exchange:orders", f"{new} exchange request(s) failed "
                        f"({state.exchange_errors} in a row)", failures=new)
        self.seen.failures = state.exchange_failures
        down = frozenset(self.dispatcher.stats().down)
        for sink in sorted(down - self.seen.down):
            self.raise_("A011", f"sink:{sink}", f"alert sink {sink} is not accepting "
                        "messages; retrying", sink=sink)
        self.seen.down = down

    def _denials(self, risk: Mapping[str, int]) -> None:
        for reason, count in sorted(risk.items()):
            before = self.seen.risk.get(reason, 0)
            if count > before:
                label, _, limit = reason.partition("_")  # "denied_order_notional"
                new = count - before
                self.raise_("A001", f"risk:{reason}", f"the risk stage {label} {new} "
                            f"entr{'y' if new == 1 else 'ies'} on {limit.replace('_', ' ')} "
                            f"({count} so far)", reason=reason, count=count)
        self.seen.risk = dict(risk)

    def _daily_loss(self, state: TickState) -> None:
        if not math.isfinite(self.max_daily_loss) or state.day_loss is None:
            return
        day = math.floor(state.time / 86400)
        threshold = self.daily_loss_warn * self.max_daily_loss
        if state.day_loss >= threshold and self.seen.loss_warned_day != day:
            self.seen.loss_warned_day = day
            self.raise_("A002", "daily_loss", f"the day's loss is {state.day_loss:.2%}, "
                        f"past {self.daily_loss_warn:.0%} of the {self.max_daily_loss:.2%} "
                        "limit", loss=state.day_loss)

    def close(self, timeout: float = 2.0) -> None:
        self.dispatcher.close(timeout)


def alert_kill_when_stopped(store: LiveStore, outbox: os.PathLike[str] | str,
                            config: m.Alerts | None, reason: str, by: str, *,
                            env: Mapping[str, str] | None = None,
                            clock: Callable[[], float] = time.time,
                            extra: Sequence[Sink] = ()) -> SinkSetup:
    """A004 for a kill switch engaged by ``peak live kill`` while no runner holds the store
    (a running deployment raises its own): logged in the store and handed to the
    deployment's sinks — the risk spec's ``config`` — through a dispatcher on its outbox,
    so a sink that does not take it within ``close``'s two seconds gets it when the
    deployment next starts (even a start the engaged switch refuses). Sinks that cannot be
    made are left out (the setup's ``problems`` say which): a kill never waits on them."""
    setup = alert_sinks_for(config, env if env is not None else os.environ)
    dispatcher = dispatcher_for(config, setup, extra, outbox, clock)
    sessions = store.sessions()
    monitor = AlertMonitor(dispatcher, store, sessions[-1].id if sessions else None,
                           clock=clock)
    try:
        monitor.raise_("A004", "kill_switch", f"kill switch engaged: {reason} (by {by}; the "
                       "deployment was not running)")
    finally:
        monitor.close()
    return setup
