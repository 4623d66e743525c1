"""Prometheus metrics of a live deployment (issue 12, item 5).

``LiveMetrics`` is a runner observer (``RunnerSettings(observers=(metrics.observe,))``): the
runner hands it a ``TickState`` after every tick and it sets its metrics from it. A scrape
then reads them from ``LiveMetrics.registry`` — a ``CollectorRegistry`` of its own, never
prometheus_client's global one, so that tests and several deployments in one process never
see each other's series (and a second ``LiveMetrics`` never fails on a duplicate name).

Every series carries the deployment's labels ``spec``, ``mode`` and ``account``, so that one
Prometheus can watch many deployments and tell them apart. The metrics (all ``peak_live_``):

============================================  =======  ==========================================
``equity``                                    gauge    the book's equity (quote currency)
``exposure``                                  gauge    gross notional of its positions at marks
``open_positions``                            gauge    slots holding a position
``orders{status}``                            gauge    the store's orders by status (every status)
``exchange_errors``                           gauge    consecutive exchange errors (0 after a
                                                       success: a level, not a count of events)
``kill_switch_engaged``                       gauge    1 while the kill switch is engaged
``last_bar_timestamp_seconds``                gauge    the last tick's bar time (epoch seconds)
``last_bar_age_seconds``                      gauge    now minus that, computed at scrape time
``ticks_total``                               counter  ticks observed by this process
``risk_denied_total{reason}``                 counter  entries the risk stage denied
``risk_reduced_total{reason}``                counter  entries it reduced
============================================  =======  ==========================================

Why the risk series are counters fed by differences: ``TickState.risk`` holds the book's
*cumulative* totals (restored with the book after a restart). A gauge set to a total and named
``_total`` would lie about its type — Prometheus' ``rate()`` and ``increase()`` treat a drop as
a counter reset only for counters, and a gauge's type tells Grafana not to use them. A counter
``inc()``-ed by the growth since the last tick is a true counter: it only rises, restarts from 0
with the process (which ``rate()`` handles as a reset) and its ``rate()`` is the denial rate.
When a total falls (a new session starts its book from zero) the new total is all new events,
so that is what is added. Every reason is exported from the start, at 0, so that ``rate()``
sees the first denial as an increase instead of a series appearing out of nowhere. The gauges,
on the contrary, appear with the first tick: before it there is nothing to tell, and a 0
equity would read as a wiped account.

Why the bar age is computed at scrape time: a stale feed is exactly the case where no tick
arrives, so an age set by the observer would freeze at its last, healthy value. The gauge's
function reads the clock when Prometheus scrapes; ``last_bar_timestamp_seconds`` serves the
same in PromQL (``time() - peak_live_last_bar_timestamp_seconds``).

``serve(port)`` starts the HTTP endpoint on 127.0.0.1 (prometheus_client's WSGI server with
this registry, in a daemon thread) and returns a handle that stops it; any other host is
refused unless ``allow_remote=True`` — the metrics tell whoever asks what the account holds.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from ..engine.state import RISK_REASONS
from ..lang.diagnostics import diag
from ..lang.project import UsageError
from .runner import Observer, TickState
from .store_rows import OrderStatus

PREFIX = "peak_live_"
DEPLOYMENT = ("spec", "mode", "account")
ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)
REASONS: tuple[str, ...] = RISK_REASONS[1:]  # "approved" is neither denied nor reduced
RISK_ACTIONS = ("denied", "reduced")

# name (without the prefix) → help: what the dashboard and the tests check names against
GAUGES = {
    "equity": "The book's equity, in the quote currency.",
    "exposure": "Gross notional of the book's positions at their marks.",
    "open_positions": "Slots holding a position.",
    "exchange_errors": "Consecutive exchange errors (0 after a success).",
    "kill_switch_engaged": "1 while the deployment's kill switch is engaged, else 0.",
    "last_bar_timestamp_seconds": "Time of the last tick's bar (Unix epoch seconds).",
    "last_bar_age_seconds": "Seconds since the last tick's bar, at scrape time.",
}
ORDERS_HELP = "The store's orders by status."
TICKS_HELP = "Ticks observed by this process."
RISK_HELP = {"denied": "Entries the risk stage denied, by reason.",
             "reduced": "Entries the risk stage reduced, by reason."}


def metric_names() -> frozenset[str]:
    """Every metric name a scrape shows (counters with their ``_total`` suffix)."""
    return frozenset({*(PREFIX + g for g in GAUGES), PREFIX + "orders",
                      PREFIX + "ticks_total",
                      *(f"{PREFIX}risk_{a}_total" for a in RISK_ACTIONS)})


class LiveMetrics:
    """The metrics of one deployment (module docstring); ``observe`` is the runner observer."""

    def __init__(self, spec: str, mode: str, account: str, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.labels = {"spec": spec, "mode": mode, "account": account}
        self._clock = clock
        self._lock = threading.Lock()  # observe (runner thread) vs the age read (scrape)
        self._last_bar: float | None = None
        self._seen: dict[tuple[str, str], int] = {}
        self._gauges = {name: Gauge(PREFIX + name, text, DEPLOYMENT, registry=self.registry)
                        for name, text in GAUGES.items()}
        self._orders = Gauge(PREFIX + "orders", ORDERS_HELP, (*DEPLOYMENT, "status"),
                             registry=self.registry)
        self._ticks = Counter(PREFIX + "ticks", TICKS_HELP, DEPLOYMENT, registry=self.registry)
        self._risk = {action: Counter(f"{PREFIX}risk_{action}", RISK_HELP[action],
                                      (*DEPLOYMENT, "reason"), registry=self.registry)
                      for action in RISK_ACTIONS}
        self._start()

    def _start(self) -> None:
        """The counters exist from the start, at 0 (``rate()`` then sees the first event as an
        increase); the gauges only from the first tick — before it there is no equity or bar
        age to tell, and a 0 would read as a wiped account to an alert rule."""
        self._ticks.labels(**self.labels)
        for counter in self._risk.values():
            for reason in REASONS:
                counter.labels(**self.labels, reason=reason)

    def _age(self) -> float:
        with self._lock:
            last = self._last_bar
        return math.nan if last is None else self._clock() - last  # None: never set

    def observe(self, state: TickState) -> None:
        """The runner's observer: set every metric from the tick's state."""
        gauge = {name: g.labels(**self.labels) for name, g in self._gauges.items()}
        gauge["equity"].set(state.equity)
        gauge["exposure"].set(state.exposure)
        gauge["open_positions"].set(state.open_positions)
        gauge["exchange_errors"].set(state.exchange_errors)
        gauge["kill_switch_engaged"].set(1 if state.kill_engaged else 0)
        gauge["last_bar_timestamp_seconds"].set(state.time)
        with self._lock:
            first, self._last_bar = self._last_bar is None, state.time
        if first:
            gauge["last_bar_age_seconds"].set_function(self._age)
        for status in {*ORDER_STATUSES, *state.orders}:
            self._orders.labels(**self.labels, status=status).set(state.orders.get(status, 0))
        self._count_risk(state.risk)
        self._ticks.labels(**self.labels).inc()

    def _count_risk(self, totals: dict[str, int]) -> None:
        """Add each reason's growth since the last tick (its whole total after a drop; the
        book lists only non-zero totals, so a missing one is 0)."""
        for action, counter in self._risk.items():
            for reason in REASONS:
                total = totals.get(f"{action}_{reason}", 0)
                before = self._seen.get((action, reason), 0)
                grown = total - before if total >= before else total
                self._seen[(action, reason)] = total
                if grown:
                    counter.labels(**self.labels, reason=reason).inc(grown)

    def serve(self, port: int, host: str = "127.0.0.1", *,
              allow_remote: bool = False) -> MetricsServer:
        """Serve ``/metrics`` on ``host:port`` (0: any free port) until the handle closes."""
        return serve(self.registry, port, host, allow_remote=allow_remote)


@dataclass
class MetricsServer:
    """A running endpoint: where it listens, and ``close()`` (also as a context manager)."""

    server: Any  # wsgiref's WSGIServer
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port (waits at most ``timeout`` for the thread)."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteBindRefused(ValueError):
    """A non-loopback host without ``allow_remote``."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(registry: CollectorRegistry, port: int, host: str = "127.0.0.1", *,
          allow_remote: bool = False) -> MetricsServer:
    """Start prometheus_client's WSGI server for ``registry``; loopback unless allowed."""
    if not is_loopback(host) and not allow_remote:
        raise RemoteBindRefused(f"metrics would be served on {host}, not on loopback; "
                                "pass allow_remote=True to mean it")
    if not 0 <= port <= 65_535:
        raise ValueError(f"port {port} is out of range")
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread, host)


@contextmanager
def watch(port: int | None, spec: str, mode: str, account: str) -> Iterator[tuple[Observer, ...]]:
    """``peak live run --metrics-port PORT``: the runner observers to pass, with the endpoint
    on 127.0.0.1:PORT for as long as the block runs (none without a port). The spec's name is
    its file's stem (a declaration's name always is). A port already taken is the operator's
    to change: a U005, not a traceback."""
    if port is None:
        yield ()
        return
    metrics = LiveMetrics(Path(spec).stem, mode, account)
    try:
        server = metrics.serve(port)
    except OSError as exc:
        raise UsageError(diag("U005", f"cannot serve metrics on 127.0.0.1:{port}: "
                              f"{exc.strerror or exc}", "--metrics-port",
                              help="choose a free port")) from None
    with server:
        yield (metrics.observe,)


__all__ = ["LiveMetrics", "MetricsServer", "RemoteBindRefused", "is_loopback", "metric_names",
           "serve", "watch"]
