"""`peak live verify`: does a deployment's session trade as a backtest of the same candles?

The book of a live session is the backtest's model run on candles as they close, so on the
same candles it must decide the same fills; what can differ is the world around it — the
exchange filling at other prices or quantities, fees in another currency, orders lost or
refused, candles that differ from the cached ones. ``verify`` replays the deployment's last
session over the project's cached candles, from the session's first saved bar to its last
(the store's equity history says which), and compares:

* **fills**, matched by intent (slot, bar, leg): each fill of the replay must have a fill of
  the same side on the exchange, and the reverse; the worst price gap is reported in bps,
  positive when the exchange filled worse for us;
* **PnL**: the fills of each side valued the same way — cash flows, fees (in the quote
  currency, or taken from the quantity when paid in the base asset) and what is held, marked
  at the replay's last closes — so a paper session (whose fills *are* the model's) shows no
  gap at all and a testnet session shows what slippage and fees cost against the model;
* **the book**: the live book's equity at every saved bar against the replay's (a gap there
  means the candles differ: the exchange's are not the cache's).

The session diverges when a fill is unmatched or a gap passes ``tolerance`` (a fraction of
the capital); then ``alert_divergence`` raises A010 through the deployment's own alert
config (the risk spec's ``alerts`` block): logged in its store and sent to its sinks. Bars
a polled deployment missed while it was down are bars the replay trades: a restart that
skipped a signal shows as a divergence, as it should. A session that cannot be compared (no
saved bar, cached candles that end before the session, another artifact, a store without
the whole session's equity history) is reported with the reason and never passes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from ..portfolio.plan import PortfolioPlan
    from .clockbook import Fill
    from .session import Session as BookSession
    from .session import SlotSpec
    from .store import LiveStore
    from .store_rows import Fill as StoreFill
    from .store_rows import Session

DEFAULT_TOLERANCE = 0.005  # of the capital: 50 on 10,000
ALERT_CODE = "A010"
Key = tuple[int, int, int]  # (slot, absolute bar, leg): an intent's identity within a session


class FillGap(BaseModel):
    """One intent's fill on the exchange against the replay's (None: that side has none)."""

    model_config = ConfigDict(frozen=True)

    slot: str
    time: str
    side: str
    live_qty: float | None
    live_price: float | None
    backtest_qty: float | None
    backtest_price: float | None
    gap_bps: float | None  # positive: the exchange filled worse for us


class VerifyReport(BaseModel):
    """What ``peak live verify`` found (module docstring)."""

    model_config = ConfigDict(frozen=True)

    spec: str
    mode: str
    account: str
    session: str | None
    start: str | None
    end: str | None
    bars: int
    capital: float
    tolerance: float
    fills_live: int
    fills_backtest: int
    unmatched: int
    worst_gap_bps: float | None
    pnl_live: float
    pnl_backtest: float
    pnl_gap: float  # (live − backtest) / capital
    book_gap: float  # the largest |live book − replay| equity difference / capital
    fills: list[FillGap]
    problems: list[str]  # why the session could not be compared
    diverged: bool
    alerted: bool = False

    @property
    def ok(self) -> bool:
        return not self.diverged and not self.problems


@dataclass(frozen=True)
class Trade:
    """A fill reduced to what PnL needs: fees split by the currency they were paid in."""

    market: str
    side: int  # +1 buy, −1 sell
    qty: float
    price: float
    fee_quote: float
    fee_base: float = 0.0


@dataclass
class LiveSide:
    """The deployment's last session as its store has it."""

    session: Session | None = None
    bars: dict[int, float] = field(default_factory=dict)  # bar time (ms) → book equity
    fills: dict[Key, list[StoreFill]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class Replay:
    """The backtest of the same window: the model's fills, equity per bar and last marks."""

    fills: dict[Key, Fill] = field(default_factory=dict)
    equity: dict[int, float] = field(default_factory=dict)  # bar time (ms) → equity
    marks: dict[str, float] = field(default_factory=dict)
    last: float | None = None  # the replay's last tick (s)


# ---------------------------------------------------------------- reading the deployment


def read_live(store: LiveStore) -> LiveSide:
    """The last session: its saved bars' equity and its fills grouped by intent."""
    found = LiveSide()
    sessions = store.sessions()
    if not sessions:
        found.problems.append("the store holds no session yet")
        return found
    found.session = sessions[-1]
    sid = found.session.id
    found.bars = {r.bar_time: r.equity for r in store.equity_history() if r.session == sid}
    if not found.bars:
        found.problems.append(f"session {sid} saved no bar yet: nothing to compare")
    after = store.history_starts_after()
    if after is not None and found.session.started_at <= after:
        found.problems.append(f"session {sid} began before this store kept an equity history "
                              "(it was written by an older peak): it cannot be replayed whole")
    for intent in store.intents(sid):
        fills = [f for order in store.orders(intent_id=intent.id)
                 for f in store.fills(order.client_order_id)]
        if fills:
            found.fills[(intent.slot, intent.bar, intent.leg)] = fills
    return found


# ---------------------------------------------------------------- the replay


def replay_window(plan: PortfolioPlan, start_s: float, end_s: float,
                  fee_bps: float | None = None, history: int | None = None) -> Replay:
    """The session of ``plan`` over the cached candles, its first tick at ``start_s`` (as a
    deployment's first saved bar), up to and including the tick at ``end_s``."""
    from ..portfolio.run import limits_of, rebalance_of
    from .feed import ReplaySource
    from .session import PaperAdapter, Session, replay_slots, slot_specs

    source = ReplaySource(replay_slots(plan), start_time=start_s)
    book = Session(slot_specs(plan, fee_bps), plan.capital, PaperAdapter(),
                   limits=limits_of(plan), rebalance=rebalance_of(plan), min_history=history)
    book.warm_up(source)
    done = Replay()
    closes: dict[str, float] = {}
    for tick in source.ticks():
        if tick.time > end_s:
            break
        book.step(tick)
        closes.update({book.slots[s].market: c.close for s, c in tick.closed.items()
                       if s < len(book.slots)})  # not the feeds of other markets read
        done.last = tick.time
    done.fills = {_key(f, book): f for f in book.log.fills}
    done.equity = {int(t * 1000): e for t, e in book.log.equity}
    done.marks = closes
    return done


def _key(fill: Fill, book: BookSession) -> Key:
    from .paper import leg_of

    tf = book.slots[fill.slot].timeframe_seconds
    return fill.slot, int(fill.time // tf), leg_of(fill)


# ---------------------------------------------------------------- comparing


def pnl(trades: Iterable[Trade], marks: Mapping[str, float]) -> float:
    """Cash flows less fees, plus what is held at ``marks``: the same rule for both sides."""
    cash, held = 0.0, dict.fromkeys(marks, 0.0)
    for t in trades:
        cash -= t.side * t.qty * t.price + t.fee_quote
        held[t.market] = held.get(t.market, 0.0) + t.side * t.qty - t.fee_base
    return cash + sum(qty * marks.get(market, math.nan) for market, qty in held.items()
                      if qty != 0.0)


def live_trades(fills: Sequence[StoreFill]) -> list[Trade]:
    from .store_book import market_currencies

    trades = []
    for f in fills:
        base, _ = market_currencies(f.market)
        in_base = f.fee_currency == base
        trades.append(Trade(f.market, 1 if f.side == "buy" else -1, f.qty, f.price,
                            0.0 if in_base else f.fee, f.fee if in_base else 0.0))
    return trades


def model_trade(fill: Fill, slots: Sequence[SlotSpec]) -> Trade:
    return Trade(slots[fill.slot].market, fill.side, fill.qty, fill.price, fill.fee)


def fill_gap(key: Key, live: Sequence[StoreFill] | None, model: Fill | None,
             slots: Sequence[SlotSpec]) -> FillGap:
    """One intent's two sides; the gap is side-adjusted (paying more to buy is worse)."""
    from .run import iso

    spec = slots[key[0]]
    qty = sum(f.qty for f in live) if live else None
    price = (live[0].price if len(live) == 1 else sum(f.qty * f.price for f in live) / qty) \
        if live and qty else None
    side = model.side if model is not None else (1 if live and live[0].side == "buy" else -1)
    gap = side * (price / model.price - 1.0) * 1e4 \
        if price is not None and model is not None and model.price > 0 else None
    return FillGap(slot=spec.label, time=iso(key[1] * spec.timeframe_seconds),
                   side="buy" if side > 0 else "sell", live_qty=qty, live_price=price,
                   backtest_qty=model.qty if model else None,
                   backtest_price=model.price if model else None, gap_bps=gap)


def _book_gap(live: Mapping[int, float], replay: Mapping[int, float], capital: float) -> float:
    common = [abs(live[t] - replay[t]) for t in live if t in replay]
    return max(common, default=0.0) / capital


@dataclass(frozen=True)
class Request:
    """What to verify: the deployment, how its run was resolved, and the tolerance."""

    spec: str
    mode: str
    account: str = "default"
    tolerance: float = DEFAULT_TOLERANCE
    risk: str | None = None
    capital: float | None = None
    fee_bps: float | None = None
    history: int | None = None
    root: Path | None = None


def compare(request: Request, plan: PortfolioPlan, live: LiveSide) -> VerifyReport:
    """The report of ``live`` against a replay of its window (module docstring)."""
    from .run import iso
    from .session import slot_specs

    problems = list(live.problems)
    session = live.session
    if session is not None and session.artifact_sha256 != plan.artifact_sha256:
        problems.append(f"session {session.id} ran artifact {session.artifact_sha256[:12]}, "
                        f"the spec is now {plan.artifact_sha256[:12]}: give the run's --risk "
                        "and --capital, or the spec as it was")
    start = min(live.bars) / 1000 if live.bars else None
    end = max(live.bars) / 1000 if live.bars else None
    replay = replay_window(plan, start, end, request.fee_bps, request.history) \
        if start is not None and end is not None and not problems else Replay()
    if end is not None and not problems and (replay.last is None or replay.last < end):
        problems.append(f"the cached candles end before the session's last bar {iso(end)}: "
                        "update the cache (`peak data fetch`) first")
    slots = slot_specs(plan, request.fee_bps)
    keys = sorted(set(live.fills) | set(replay.fills))
    gaps = [fill_gap(k, live.fills.get(k), replay.fills.get(k), slots) for k in keys]
    return _report(request, plan, slots, live, replay, gaps, problems,
                   (iso(start) if start else None, iso(end) if end else None))


def _report(request: Request, plan: PortfolioPlan, slots: Sequence[SlotSpec], live: LiveSide,
            replay: Replay, gaps: list[FillGap], problems: list[str],
            window: tuple[str | None, str | None]) -> VerifyReport:
    ours = pnl((t for fills in live.fills.values() for t in live_trades(fills)), replay.marks)
    model = pnl((model_trade(f, slots) for f in replay.fills.values()), replay.marks)
    capital = plan.capital
    unmatched = sum(1 for g in gaps if g.live_qty is None or g.backtest_qty is None)
    worst = max((g.gap_bps for g in gaps if g.gap_bps is not None), default=None)
    pnl_gap = (ours - model) / capital if not problems else 0.0
    book_gap = _book_gap(live.bars, replay.equity, capital) if not problems else 0.0
    diverged = not problems and (unmatched > 0 or abs(pnl_gap) > request.tolerance
                                 or book_gap > request.tolerance)
    return VerifyReport(
        spec=plan.config.name, mode=request.mode, account=request.account,
        session=live.session.id if live.session else None, start=window[0], end=window[1],
        bars=len(live.bars), capital=capital, tolerance=request.tolerance,
        fills_live=sum(len(f) for f in live.fills.values()), fills_backtest=len(replay.fills),
        unmatched=unmatched, worst_gap_bps=worst, pnl_live=ours if not problems else 0.0,
        pnl_backtest=model if not problems else 0.0, pnl_gap=pnl_gap, book_gap=book_gap,
        fills=gaps, problems=problems, diverged=diverged)


# ---------------------------------------------------------------- the entry points


def plan_of(request: Request) -> PortfolioPlan:
    """The replay's plan: under ``--risk``, else the risk spec the deployment recorded when
    it started (a replay under other limits would diverge for that alone)."""
    from .deployed import recorded_risk
    from .run import LiveRequest, resolve_plan

    def plan(risk: str | None) -> PortfolioPlan:
        return resolve_plan(LiveRequest(request.spec, request.mode, capital=request.capital,
                                        fee_bps=request.fee_bps, risk=risk,
                                        root=request.root))

    own = plan(request.risk)
    if request.risk is not None:
        return own
    recorded = recorded_risk(store_path(request, own))
    if recorded is None or not recorded.given or recorded.name is None:
        return own
    return plan(recorded.name)


def store_path(request: Request, plan: PortfolioPlan) -> Path:
    from .runner import Deployment

    return Deployment(plan.root, request.mode, request.account, plan.config.name).store_path


def verify(request: Request) -> VerifyReport:
    """Compare the deployment's last session with a replay (read-only; E023 without a
    store)."""
    return _verified(request)[0]


def _verified(request: Request) -> tuple[VerifyReport, PortfolioPlan, Path]:
    from .store import LiveStore

    if not (math.isfinite(request.tolerance) and request.tolerance >= 0):
        raise ValueError(f"tolerance must be a fraction >= 0, not {request.tolerance}")
    plan = plan_of(request)
    path = store_path(request, plan)
    with LiveStore.open(path, readonly=True) as store:
        live = read_live(store)
    return compare(request, plan, live), plan, path


def verify_and_alert(request: Request, env: Mapping[str, str] | None = None,
                     clock: Callable[[], float] = time.time) -> VerifyReport:
    """``verify``, then A010 through the deployment's alert config when it diverged."""
    report, plan, path = _verified(request)
    if not report.diverged:
        return report
    alerted = alert_divergence(report, plan, path, os.environ if env is None else env, clock)
    return report.model_copy(update={"alerted": alerted})


def divergence_text(report: VerifyReport) -> str:
    worst = f", worst fill {report.worst_gap_bps:+.1f} bps" \
        if report.worst_gap_bps is not None else ""
    return (f"session {report.session} diverges from its backtest replay: PnL "
            f"{report.pnl_live:,.2f} against {report.pnl_backtest:,.2f} "
            f"({report.pnl_gap:+.2%} of capital), {report.unmatched} unmatched fill(s)"
            f"{worst} ({report.start} → {report.end})")


def alert_divergence(report: VerifyReport, plan: PortfolioPlan, path: Path,
                     env: Mapping[str, str], clock: Callable[[], float],
                     timeout_s: float = 3.0) -> bool:
    """Raise A010: in the store's log (unless a runner holds it: then its sinks only) and
    to the risk spec's sinks, waiting at most ``timeout_s`` for delivery. No outbox: A010 is
    a warning, and the running deployment's outbox is its runner's alone."""
    from .alert_codes import severity_of
    from .alerts import Alert, AlertDispatcher
    from .monitor import alert_sinks_for

    config = plan.risk.alerts if plan.risk is not None else None
    setup = alert_sinks_for(config, env)
    text = divergence_text(report)
    data: dict[str, Any] = {"session": report.session, "pnl_gap": report.pnl_gap,
                            "unmatched": report.unmatched}
    logged = _log_alert(path, report, text, data, clock)
    dispatcher = AlertDispatcher(list(setup.sinks), clock, levels=setup.levels)
    try:
        dispatcher.raise_(Alert(ALERT_CODE, severity_of(ALERT_CODE), "pnl_divergence", text,
                                clock(), data))
        dispatcher.wait_idle(timeout_s)
    finally:
        dispatcher.close(0.5)
    return logged or bool(setup.sinks)


def _log_alert(path: Path, report: VerifyReport, text: str, data: Mapping[str, Any],
               clock: Callable[[], float]) -> bool:
    """The alert's entry in the store's log, as the runner's monitor writes one; False when
    the store is held by a running runner (E020)."""
    from .alert_codes import severity_of
    from .store import LiveStore
    from .store_schema import StoreError

    severity = severity_of(ALERT_CODE)
    try:
        with LiveStore.open(path, create=False) as store:
            store.log("alert", f"{ALERT_CODE} {text}", at=int(clock() * 1000),
                      level=severity, session=report.session,
                      data={"code": ALERT_CODE, "key": "pnl_divergence",
                            "severity": severity, **data})
    except StoreError as exc:
        if exc.diagnostic.code != "E020":
            raise
        return False
    return True


__all__ = ["DEFAULT_TOLERANCE", "FillGap", "Request", "VerifyReport", "alert_divergence",
           "compare", "pnl", "read_live", "replay_window", "verify", "verify_and_alert"]
