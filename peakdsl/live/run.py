"""`peak live run`: resolve the spec, pick the source and the adapter, run the session.

``run_live`` is the library entry point the CLI calls (and tests, and drills): it resolves a
strategy or a portfolio exactly as ``peak backtest`` does (same artifact, params, settings and
risk spec), feeds a ``Session`` from a replay of cached candles or from the exchange's klines,
and returns a typed ``LiveSummary``. Fills are reported as they happen through ``on_fill``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from .. import __version__
from ..portfolio.plan import PortfolioPlan
from ..portfolio.run import limits_of, rebalance_of
from .clockbook import Fill, PointReport
from .feed import CandleSource, ReplaySource
from .session import (
    PaperAdapter,
    Session,
    SlotSpec,
    replay_slots,
    slot_specs,
)

SourceKind = Literal["replay", "exchange"]


class FillRow(BaseModel):
    """One fill of the session, as reported and written."""

    model_config = ConfigDict(frozen=True)

    time: str
    slot: str
    market: str
    side: Literal["buy", "sell"]
    qty: float
    price: float
    fee: float
    reason: str


class LiveSummary(BaseModel):
    """What a session did: its identity, its span, its fills and where the account stands."""

    model_config = ConfigDict(frozen=True)

    spec: str
    kind: Literal["strategy", "portfolio"]
    mode: str
    source: SourceKind
    artifact_sha256: str
    engine_version: str = __version__
    first_tick: str | None
    last_tick: str | None
    ticks: int
    history_bars: list[int]
    fills: list[FillRow]
    closed_trades: int
    open_positions: dict[str, float]
    capital: float
    equity: float
    total_return: float
    risk: dict[str, int]
    notes: list[str]
    data: dict[str, str] = {}  # a replay: each slot's candles, as the backtest names them


@dataclass(frozen=True)
class LiveRequest:
    """What to run and how (the CLI's options, checked)."""

    spec: str
    mode: str = "paper"
    replay: bool = True
    start: str | None = None  # replay: the first live bar (earlier bars are history)
    end: str | None = None
    speed: float = 0.0
    capital: float | None = None
    fee_bps: float | None = None
    risk: str | None = None
    min_history: int | None = None
    root: Path | None = None
    data: Path | None = None  # a recorded candles file to replay (a strategy)


def iso(seconds: float) -> str:
    text: str = pd.Timestamp(int(seconds), unit="s", tz="UTC").isoformat()
    return text.replace("+00:00", "Z")


def fill_row(fill: Fill, slots: tuple[SlotSpec, ...]) -> FillRow:
    slot = slots[fill.slot]
    return FillRow(time=iso(fill.time), slot=slot.label, market=slot.market,
                   side="buy" if fill.side > 0 else "sell", qty=fill.qty, price=fill.price,
                   fee=fill.fee, reason=fill.reason)


def resolve_plan(request: LiveRequest) -> PortfolioPlan:
    """The plan of ``peak backtest`` for the spec, over every cached bar up to ``end`` (the
    bars before ``start`` are the session's history)."""
    return resolve_plan_and_risk(request)[0]


def resolve_plan_and_risk(request: LiveRequest) -> tuple[PortfolioPlan, str | None]:
    """``resolve_plan`` and the sha256 of the risk spec the plan enforces (None: none) — what
    a deployment records, so that the commands reading its store know its limits."""
    from ..robustness.subject import subject_plan

    return subject_plan(request.spec, root=request.root, data=request.data,
                        end=request.end, capital=request.capital, risk=request.risk)


def replay_source(plan: PortfolioPlan, request: LiveRequest,
                  sleep: Callable[[float], None] = time.sleep,
                  after: float | None = None) -> ReplaySource:
    """The cached candles of every component from ``--from`` (earlier bars: history), or —
    resuming a deployment — the ticks after its last saved one."""
    from ..resolve import timestamp

    slots = replay_slots(plan)
    start = timestamp(request.start, "--from") if request.start else None
    first = after if after is not None else \
        float(start.timestamp()) if start is not None else None
    return ReplaySource(slots, start_time=first, speed=request.speed, sleep=sleep,
                        after=after)


def run_live(request: LiveRequest, *, on_fill: Callable[[FillRow], None] | None = None,
             source: CandleSource | None = None) -> LiveSummary:
    """Run a paper session (see module docstring) to the source's end."""
    plan = resolve_plan(request)
    feed = source if source is not None else replay_source(plan, request)
    slots = slot_specs(plan, request.fee_bps)

    def report(point: PointReport) -> None:
        if on_fill is not None:
            for fill in point.fills:
                on_fill(fill_row(fill, session.slots))

    session = Session(slots, plan.capital, PaperAdapter(), limits=limits_of(plan),
                      rebalance=rebalance_of(plan), on_point=report,
                      min_history=request.min_history)
    history = session.warm_up(feed)
    session.run(feed.ticks())
    return summarize(request, plan, session, history,
                     "replay" if isinstance(feed, ReplaySource) else "exchange")


def summarize(request: LiveRequest, plan: PortfolioPlan, session: Session,
              history: list[int], source: SourceKind) -> LiveSummary:
    from ..engine.state import QTY, SIDE

    times = [t for t, _ in session.log.equity]
    book = session.book
    held = {session.slots[s].label: float(book.positions[s, SIDE] * book.positions[s, QTY])
            for s in range(len(session.slots)) if book.positions[s, SIDE] != 0.0}
    equity = book.equity if times else plan.capital
    return LiveSummary(
        spec=plan.config.name,
        kind="strategy" if plan.strategy else "portfolio", mode=request.mode, source=source,
        artifact_sha256=plan.artifact_sha256,
        first_tick=iso(times[0]) if times else None,
        last_tick=iso(times[-1]) if times else None, ticks=len(times),
        history_bars=history,
        fills=[fill_row(f, session.slots) for f in session.log.fills],
        closed_trades=len(book.closed_trades()["qty"]),
        open_positions=held, capital=plan.capital, equity=equity,
        total_return=equity / plan.capital - 1.0 if math.isfinite(equity) else math.nan,
        risk=book.risk(), notes=list(session.log.notes),
        data={c.label: c.candles.source for c in plan.components} if source == "replay"
        else {})
