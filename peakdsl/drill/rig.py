"""A drill's deployment: the scratch project traded on the loopback exchange, on a simulated
clock, with a loopback alert webhook — the real runner, store, monitor and dispatcher.

The runner is ``peakdsl.live.runner.Runner`` itself, polling the loopback exchange's klines
(paper, or testnet where the scenario needs exchange fills). Time is simulated: ``clock``
reads ``Rig.now`` and ``sleep`` moves it, so a day of hourly bars takes a second and every
wait of the runner, the feed and the venue is bounded by construction. After each tick the
rig's observer records the ``TickState``, lets the scenario inject its incident (take the
exchange down, ask for a kill…) and moves the exchange's price to the next bar's open (made
worse by ``slippage`` in the direction of the next fill, for the divergence drill).

Alerts pass through ``TimedMonitor``, the runner's own monitor with a stopwatch on its
``dispatch`` — throttling, the outbox, the queue: what a slow sink could delay (the store's
log write before it costs a disk's fsync whatever the sinks do). ``MUTED_CODES`` is a test
seam: alerts of these codes are dropped before they reach the log or a sink, to prove that a
drill whose reaction does not happen fails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..live.alerts import Alert
from ..live.gate import Refused
from ..live.loopback import LoopbackExchange, MarketSpec
from ..live.monitor import AlertMonitor, SinkSetup
from ..live.run import LiveRequest, LiveSummary
from ..live.runner import Deployment, Runner, RunnerSettings, TickState
from ..live.store import LiveStore
from ..live.store_rows import Fill, KillState, LogEntry, Order, Position, Session, Snapshot
from ..live.store_schema import StoreError
from ..live.venue import VenueError
from .project import HOUR, MARKET, RISK_NAME, STRATEGY_NAME, WEBHOOK_ENV, Scratch
from .webhook import AlertWebhook

MUTED_CODES: frozenset[str] = frozenset()  # test seam (module docstring)
ACCOUNT = "drill"
API_KEY, API_SECRET = "drill-key-0001", "drill-secret-0001"
START = 1_761_955_201.0  # 2025-11-01T00:00:01Z: the first tick closes the 00:00 bar at 01:00


@dataclass(frozen=True)
class Setup:
    """How a scenario's deployment is built and fed."""

    mode: str = "paper"
    limits: dict[str, str] = field(default_factory=dict)  # the risk spec's, tightened
    ticks: int = 30
    gap: tuple[int, int] | None = None  # ticks whose closing candle is never published
    slippage: float = 0.0  # the exchange fills this much worse than the bar's open
    resting_order: bool = False  # a limit order on the exchange, adopted at start
    webhook_down: bool = False  # the webhook fails from the start (``AlertWebhook.script``)


@dataclass(frozen=True)
class RunResult:
    """One ``Runner.run``: its summary, or the codes it was refused with."""

    summary: LiveSummary | None
    codes: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class Observed:
    """The deployment's store after the drill, read back."""

    sessions: list[Session]
    log: list[LogEntry]
    kill: KillState
    orders: list[Order]
    fills: list[Fill]
    positions: list[Position]
    snapshot: Snapshot | None
    integrity: list[str]

    def alerts(self) -> Counter[str]:
        return Counter(str(e.data.get("code")) for e in self.log if e.event == "alert")


class TimedMonitor(AlertMonitor):
    """The runner's monitor, timing each alert and dropping ``MUTED_CODES``."""

    def __init__(self, base: AlertMonitor, delays: list[float]) -> None:
        super().__init__(base.dispatcher, base.store, base.session, clock=base.clock,
                         max_daily_loss=base.max_daily_loss,
                         daily_loss_warn=base.daily_loss_warn)
        self.delays = delays

    def raise_(self, code: str, key: str, message: str, **data: Any) -> None:
        if code in MUTED_CODES:
            return
        super().raise_(code, key, message, **data)

    def dispatch(self, alert: Alert) -> None:
        """Timed: the sinks' share of an alert's cost to the loop (the store's log write
        before it is a disk's fsync, the same with or without sinks)."""
        start = time.perf_counter()
        try:
            super().dispatch(alert)
        finally:
            self.delays.append(time.perf_counter() - start)


class DrillRunner(Runner):
    """``Runner`` with its monitor timed (``TimedMonitor``)."""

    delays: list[float]

    def _monitor(self, store: LiveStore, setup: SinkSetup) -> AlertMonitor:
        return TimedMonitor(super()._monitor(store, setup), self.delays)


class Rig:
    """The exchange, the webhook, the clock and the runs of one drill (module docstring)."""

    def __init__(self, scratch: Scratch, setup: Setup, candles: list[list[float]],
                 inject: Callable[[Rig, int, TickState], None] | None = None) -> None:
        self.scratch, self.setup, self.inject = scratch, setup, inject
        self.now = START
        self.opens = {int(row[0]): row[1] for row in candles}
        self.states: list[TickState] = []
        self.delays: list[float] = []
        self.runs: list[RunResult] = []
        self.facts: dict[str, Any] = {}  # what follow-ups note for the checks
        self.exchange = LoopbackExchange(
            markets=[MarketSpec("BTC", "USDT")], balances={"USDT": "100000"},
            prices={MARKET: str(self.next_open(START))}, api_key=API_KEY, secret=API_SECRET,
            clock=lambda: int(self.now * 1000))
        self.exchange.set_candles(MARKET, "1h", self._published(candles))
        self.webhook = AlertWebhook()
        if setup.webhook_down:
            self.webhook.down()

    # --- the simulated clock ----------------------------------------------------------
    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    # --- the exchange -----------------------------------------------------------------
    def _published(self, candles: list[list[float]]) -> list[list[float]]:
        if self.setup.gap is None:
            return candles
        first, last = self.setup.gap
        first_close = (START // HOUR + 1) * HOUR  # the close of the first tick
        hidden = {int((first_close + (k - 2) * HOUR) * 1000) for k in range(first, last + 1)}
        return [row for row in candles if int(row[0]) not in hidden]

    def gap_ticks(self) -> set[float]:
        """The tick times whose closing candle is never published."""
        if self.setup.gap is None:
            return set()
        first_close = (START // HOUR + 1) * HOUR
        return {first_close + (k - 1) * HOUR for k in range(self.setup.gap[0],
                                                             self.setup.gap[1] + 1)}

    def next_open(self, after: float) -> float:
        """The open of the first bar opening after ``after`` (the next tick's fill price)."""
        bar = (after // HOUR + 1) * HOUR
        return self.opens.get(int(bar * 1000), 0.0)

    def _price_next(self, state: TickState) -> None:
        """The exchange's price for the next tick's fills: the next bar's open, worse by
        ``slippage`` for the fill that comes next (a buy when flat, else a sell)."""
        price = self.next_open(state.time)
        if price > 0:
            worse = 1.0 + self.setup.slippage if state.open_positions == 0 else \
                1.0 - self.setup.slippage
            self.exchange.set_price(MARKET, f"{price * worse:.2f}")

    # --- the runs ---------------------------------------------------------------------
    @property
    def deployment(self) -> Deployment:
        return Deployment(self.scratch.root, self.setup.mode, ACCOUNT, STRATEGY_NAME)

    def env(self) -> dict[str, str]:
        from ..live.secrets import variable_names

        env = {WEBHOOK_ENV: self.webhook.url}
        if self.setup.mode != "paper":
            key, secret = variable_names(self.setup.mode, ACCOUNT)  # type: ignore[arg-type]
            env.update({key: API_KEY, secret: API_SECRET})
        return env

    def observe(self, state: TickState) -> None:
        self.states.append(state)
        if self.inject is not None:
            self.inject(self, len(self.states), state)
        self._price_next(state)

    def run(self, ticks: int | None = None) -> RunResult:
        """One run of the deployment (``ticks`` at most); a refusal is a result, not an
        exception — the scenario checks it."""
        request = LiveRequest(str(self.scratch.spec), self.setup.mode, replay=False,
                              risk=RISK_NAME, root=self.scratch.root)
        settings = RunnerSettings(
            account=ACCOUNT, endpoint=self.exchange.url, max_ticks=ticks or self.setup.ticks,
            unknown_orders="adopt" if self.setup.resting_order else "cancel",
            resolve_delay_s=0.0, timeout_ms=2_000, kill_poll_s=3600.0,
            observers=(self.observe,))
        runner = DrillRunner(request, settings, env=self.env(), clock=self.clock,
                             sleep=self.sleep)
        runner.delays = self.delays
        try:
            result = RunResult(runner.run())
        except (Refused, VenueError, StoreError) as exc:
            result = RunResult(None, tuple(d.code for d in exc.diagnostics), str(exc))
        except Exception as exc:  # a crash is what a drill must report, not raise
            result = RunResult(None, (), f"{type(exc).__name__}: {exc}")
        self.runs.append(result)
        return result

    def request_kill(self, reason: str) -> None:
        """What ``peak live kill`` does to a running deployment: a request file."""
        from ..live.runner import request_kill

        request_kill(self.deployment, reason, "peak drill", flatten=False)

    def read(self) -> Observed:
        """The store as it is now (read-only)."""
        with LiveStore.open(self.deployment.store_path, readonly=True) as store:
            return Observed(store.sessions(), store.log_since(0), store.kill_state(),
                            store.orders(), store.fills(), store.positions(),
                            store.last_snapshot(), store.integrity_problems())

    @property
    def outbox(self) -> Path:
        return self.deployment.store_path.with_suffix(".outbox.jsonl")

    # --- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> Rig:
        self.exchange.start()
        self.webhook.start()
        if self.setup.resting_order:
            below = self.next_open(START) * 0.5
            self.exchange.place(MARKET, "BUY", "LIMIT", "0.01", f"{below:.2f}",
                                client_id="drill-resting-0001")
        return self

    def __exit__(self, *exc: object) -> None:
        self.webhook.stop()
        self.exchange.stop()


__all__ = ["ACCOUNT", "MUTED_CODES", "START", "DrillRunner", "Observed", "Rig", "RunResult",
           "Setup", "TimedMonitor"]
