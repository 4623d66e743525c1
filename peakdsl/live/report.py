"""Status reports of a deployment: ``peak report live`` as typed data, Markdown and HTML.

A report covers one UTC day or one ISO week (Monday to Sunday) of one deployment and is built
from its state alone — the store, opened read-only (the runner may be running: WAL lets a
reader in while it writes), and the operator notes beside it (``notes``):

* **equity and PnL** from the store's equity history (one row per saved bar, written with the
  snapshot): the equity at the close of the last bar before the period (else the capital, when
  the deployment's first bar is in the period), the last bar's in it, PnL, return and the
  deepest drawdown in between;
* **trades**: the store's fills whose time is in the period, with counts and notional;
* **risk**: each limit's use at the period's end (``ops.limit_usage`` on the last snapshot —
  the store keeps the book's arrays of the last bar only, so a period that ended before it has
  no usage to show) and the entries the risk stage reduced or denied during the period (the
  rise of the book's cumulative counts along the history; a fresh book restarts them);
* **alerts and incidents**: the log's alerts (event ``alert``, grouped by their code), kill
  switch engagements and releases, sessions that ended halted or crashed, and every other
  error, grouped with counts, each with its time and message;
* **notes** written in the period.

A bar, a fill, a log entry or a note belongs to the period its own time stamp falls in
(``[start, end)``, milliseconds UTC; a bar's time is its close). The report is a pure function
of the store, the notes and ``now_s``: the same inputs render to the same bytes (no clock, no
randomness, sorted everywhere). Secrets never reach the store; as a second guard every text
that came from the store passes ``secrets.REDACTOR`` (the values this process loaded).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from .notes import Note

if TYPE_CHECKING:
    from pathlib import Path

    from ..portfolio.plan import PortfolioPlan
    from .runner import Deployment
    from .store import EquityRow, LiveStore
    from .store_rows import LogEntry

Period = Literal["daily", "weekly"]
IncidentKind = Literal["alert", "kill switch", "session", "error"]
PERIODS: tuple[Period, ...] = ("daily", "weekly")
DAY_MS = 86_400_000
MAX_GROUP_ENTRIES = 20  # entries listed per incident group (all are counted)
LEVEL_RANK = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
KILL_EVENTS = ("kill_engaged", "kill_reset", "kill_switch")
BASES = {"before": "the close of the last bar before the period",  # where the start comes from
         "capital": "the capital (the deployment's first bar is in this period)",
         "first_bar": "the close of the period's first bar"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReportSession(_Frozen):
    id: str
    status: str
    started_at: str
    ended_at: str | None
    artifact: str  # the first 12 hex characters of its artifact sha256


class KillSwitch(_Frozen):
    engaged: bool
    reason: str
    by: str
    at: str | None


class EquityPoint(_Frozen):
    time: str
    t: int  # milliseconds since the epoch, for charts
    equity: float
    cash: float
    exposure: float
    session: str


class EquitySummary(_Frozen):
    """The period's equity; None where no bar tells it."""

    start: float | None
    end: float | None
    pnl: float | None
    total_return: float | None
    max_drawdown: float | None  # <= 0, a fraction of the running peak
    bars: int


class FillLine(_Frozen):
    time: str
    market: str
    side: str
    qty: float
    price: float
    fee: float
    fee_currency: str
    notional: float


class Trades(_Frozen):
    fills: list[FillLine]
    count: int
    buys: int
    sells: int
    notional: float  # quantity × price, summed over the period's fills
    fees: dict[str, float]  # by currency


class LimitLine(_Frozen):
    """One row of ``ops.limit_usage``."""

    limit: str
    value: float | None
    max: float | None
    used: float | None


class Risk(_Frozen):
    as_of: str | None  # the bar whose snapshot the usage was read from
    limits: list[LimitLine]  # only the limits the risk spec sets
    note: str | None  # why there is no usage to show
    in_period: dict[str, int]  # reductions and denials during the period, by reason
    total: dict[str, int]  # the book's cumulative counts at the period's last bar


class Incident(_Frozen):
    time: str
    level: str
    message: str


class IncidentGroup(_Frozen):
    code: str  # an alert's code (A0xx), or the event (kill_engaged, session_halted, …)
    kind: IncidentKind
    severity: str  # the most severe level among its entries
    count: int
    first: str
    last: str
    entries: list[Incident]  # the first MAX_GROUP_ENTRIES
    more: int  # entries not listed


class NoteLine(_Frozen):
    time: str
    by: str
    text: str


class LiveReport(_Frozen):
    """One deployment over one period (module docstring); every time is ISO 8601 UTC."""

    spec: str
    kind: str
    mode: str
    account: str
    period: Period
    label: str  # 2025-12-07, or 2025-W49
    start: str
    end: str  # exclusive
    start_ms: int
    end_ms: int
    generated_at: str
    artifact: str
    sessions: list[ReportSession]
    kill_switch: KillSwitch
    equity: EquitySummary
    start_basis: str | None  # where the start equity comes from, in words
    curve: list[EquityPoint]
    trades: Trades
    risk: Risk
    incidents: list[IncidentGroup]
    notes: list[NoteLine]
    remarks: list[str]  # what a reader must know to read the figures right


# ---------------------------------------------------------------- small helpers


def iso_ms(ms: int | float) -> str:
    """``2025-12-07T10:00:00Z`` (whole seconds)."""
    return datetime.fromtimestamp(int(ms) // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(text: str) -> str:
    """A text read from the store, with any secret this process loaded masked."""
    from .secrets import REDACTOR

    return REDACTOR.redact(text)


def period_bounds(period: Period, day: date) -> tuple[int, int, str]:
    """``(start_ms, end_ms, label)`` of the UTC day, or the ISO week, holding ``day``."""
    if period not in PERIODS:
        raise ValueError(f"a period is daily or weekly, not {period!r}")
    first = day if period == "daily" else day - timedelta(days=day.weekday())
    start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp() * 1000)
    if period == "daily":
        return start, start + DAY_MS, day.isoformat()
    year, week, _ = day.isocalendar()
    return start, start + 7 * DAY_MS, f"{year}-W{week:02d}"


def default_day(store: LiveStore, now_s: float) -> date:
    """The day of the last saved bar, or of ``now_s`` when there was none."""
    last = store.last_equity()
    bar = last.bar_time if last is not None else None
    if bar is None:
        snap = store.last_snapshot()  # a store that kept no history yet (version 1)
        bar = snap.bar_time if snap is not None else None
    moment = bar / 1000 if bar is not None else now_s
    return datetime.fromtimestamp(moment, UTC).date()


# ---------------------------------------------------------------- building


def build_live_report(store: LiveStore, plan: PortfolioPlan, *, mode: str, account: str,
                      period: Period, at: date | None, now_s: float,
                      notes: Sequence[Note] = (), skipped_notes: int = 0,
                      notes_error: str | None = None) -> LiveReport:
    """The report of ``store``'s deployment of ``plan`` over the period holding ``at``
    (default: the last saved bar's day, else ``now_s``'s). ``plan`` gives the spec's name,
    capital and risk limits; ``notes`` are the deployment's, ``skipped_notes`` and
    ``notes_error`` what ``notes.read_notes`` could not read (said in the remarks)."""
    from .notes import in_window

    start, end, label = period_bounds(period, at or default_day(store, now_s))
    before = store.last_equity(before=start)
    rows = store.equity_history(since=start, until=end)
    opening, basis = _start(store, before, rows, plan.capital)
    summary = _equity(opening, before, rows)
    remarks = [*_basis_remark(basis, rows, plan.capital), *_restarts(before, rows),
               *_artifact_remark(store, plan)]
    if skipped_notes:
        remarks.append(f"{skipped_notes} line(s) of the notes file could not be read and "
                       "were skipped")
    if notes_error:
        remarks.append(f"the notes file could not be read ({notes_error}): no note is shown")
    return LiveReport(
        spec=plan.config.name, kind="strategy" if plan.strategy else "portfolio",
        mode=mode, account=account, period=period, label=label, start=iso_ms(start),
        end=iso_ms(end), start_ms=start, end_ms=end, generated_at=iso_ms(now_s * 1000),
        artifact=plan.artifact_sha256[:12], sessions=_sessions(store, rows, start, end),
        kill_switch=_kill(store), equity=summary,
        start_basis=None if basis is None else BASES[basis],
        curve=[_point(r) for r in rows], trades=_trades(store, start, end),
        risk=_risk(store, plan, before, rows, end, now_s, basis == "capital"),
        incidents=_incidents(store.log_since(0), start, end),
        notes=[NoteLine(time=iso_ms(n.at), by=n.by, text=n.text)
               for n in in_window(notes, start, end)],
        remarks=remarks)


def report_deployment(deployment: Deployment, plan: PortfolioPlan, *, period: Period,
                      at: date | None, now_s: float) -> LiveReport:
    """``build_live_report`` on a deployment's store (read-only: ``StoreError`` E021–E023
    when it cannot be read) and its notes file."""
    from .notes import notes_path, read_notes
    from .store import LiveStore

    with LiveStore.open(deployment.store_path, readonly=True) as store:
        found = read_notes(notes_path(deployment.store_path))
        return build_live_report(store, plan, mode=deployment.mode,
                                 account=deployment.account, period=period, at=at,
                                 now_s=now_s, notes=found.notes, skipped_notes=found.skipped,
                                 notes_error=found.error)


def deployment_of(spec: str, mode: str, account: str,
                  risk: str | None = None) -> tuple[Deployment, PortfolioPlan]:
    """Where ``spec``'s deployment in ``mode`` on ``account`` keeps its state, and its plan
    (as ``peak live status`` finds them: under ``risk``, else the risk spec the deployment
    recorded when it started, ``live.deployed``). ``SpecError`` / ``UsageError`` for a bad
    spec."""
    from .deployed import deployed_plan

    where, deployed = deployed_plan(spec, mode, account, risk)
    return where, deployed.plan


def _equity(start: float | None, before: EquityRow | None,
            rows: Sequence[EquityRow]) -> EquitySummary:
    """Start (``_start``), end, PnL, return and the deepest drawdown from the running peak."""
    last = rows[-1].equity if rows else (before.equity if before is not None else None)
    if start is None or last is None:
        return EquitySummary(start=start, end=last, pnl=None, total_return=None,
                             max_drawdown=None, bars=len(rows))
    peak, deepest = start, 0.0
    for row in rows:
        peak = max(peak, row.equity)
        deepest = min(deepest, row.equity / peak - 1.0) if peak > 0 else deepest
    return EquitySummary(start=start, end=last, pnl=last - start,
                         total_return=last / start - 1.0 if start else None,
                         max_drawdown=deepest, bars=len(rows))


def _start(store: LiveStore, before: EquityRow | None, rows: Sequence[EquityRow],
           capital: float) -> tuple[float | None, str | None]:
    """(the period's start equity, its basis: a key of ``BASES``)."""
    if before is not None:
        return before.equity, "before"
    if not rows:
        return None, None
    if store.history_starts_after() is not None:
        return rows[0].equity, "first_bar"
    return capital, "capital"


def _basis_remark(basis: str | None, rows: Sequence[EquityRow], capital: float) -> list[str]:
    if basis == "first_bar":
        return [f"this store kept no equity history before {iso_ms(rows[0].bar_time)} (it "
                "was written by an older peak): the period's figures start at that bar's "
                "close"]
    if basis == "capital":
        return [f"the deployment's first bar is in this period: its PnL is measured from "
                f"the spec's capital, {capital:,.2f}"]
    return []


def _restarts(before: EquityRow | None, rows: Sequence[EquityRow]) -> list[str]:
    """A remark for each bar of another session than the bar before it: a fresh book (the
    runner resumes a book only within its own session)."""
    out, previous = [], before
    for row in rows:
        if previous is not None and row.session != previous.session:
            out.append(f"session {row.session} started a fresh book at {iso_ms(row.bar_time)}:"
                       " the period's PnL and drawdown span two books")
        previous = row
    return out


def _artifact_remark(store: LiveStore, plan: PortfolioPlan) -> list[str]:
    sessions = store.sessions()
    if not sessions or sessions[-1].artifact_sha256 == plan.artifact_sha256:
        return []
    return [f"the spec changed since the deployment's last session (artifact "
            f"{plan.artifact_sha256[:12]}, the session ran "
            f"{sessions[-1].artifact_sha256[:12]}): the risk limits shown are the spec's "
            "current ones"]


def _point(row: EquityRow) -> EquityPoint:
    return EquityPoint(time=iso_ms(row.bar_time), t=row.bar_time, equity=row.equity,
                       cash=row.cash, exposure=row.exposure, session=row.session)


def _sessions(store: LiveStore, rows: Sequence[EquityRow], start: int,
              end: int) -> list[ReportSession]:
    """The sessions that ran during the period, or saved a bar of it (a replay's bars are
    older than its session)."""
    barred = {r.session for r in rows}
    return [ReportSession(id=s.id, status=s.status, started_at=iso_ms(s.started_at),
                          ended_at=None if s.ended_at is None else iso_ms(s.ended_at),
                          artifact=s.artifact_sha256[:12])
            for s in store.sessions()
            if s.id in barred or (s.started_at < end and (s.ended_at is None
                                                          or s.ended_at >= start))]


def _kill(store: LiveStore) -> KillSwitch:
    kill = store.kill_state()
    return KillSwitch(engaged=kill.engaged, reason=_clean(kill.reason), by=kill.by,
                      at=None if kill.at is None else iso_ms(kill.at))


def _trades(store: LiveStore, start: int, end: int) -> Trades:
    fills = sorted((f for f in store.fills() if start <= f.at < end),
                   key=lambda f: (f.at, f.market, f.trade_id))
    fees: dict[str, float] = {}
    for f in fills:
        if f.fee:
            fees[f.fee_currency] = fees.get(f.fee_currency, 0.0) + f.fee
    lines = [FillLine(time=iso_ms(f.at), market=f.market, side=f.side, qty=f.qty,
                      price=f.price, fee=f.fee, fee_currency=f.fee_currency,
                      notional=f.qty * f.price) for f in fills]
    return Trades(fills=lines, count=len(lines), buys=sum(f.side == "buy" for f in lines),
                  sells=sum(f.side == "sell" for f in lines),
                  notional=sum(f.notional for f in lines), fees=dict(sorted(fees.items())))


# ---------------------------------------------------------------- risk


def _risk(store: LiveStore, plan: PortfolioPlan, before: EquityRow | None,
          rows: Sequence[EquityRow], end: int, now_s: float, fresh: bool) -> Risk:
    """Limit usage at the period's end and the risk stage's counts during it."""
    from ..portfolio.run import limits_of
    from .ops import limit_usage

    chain = [*([before] if before is not None else []), *rows]
    total = rows[-1].risk if rows else (before.risk if before is not None else {})
    in_period = _increase(chain, counted_first=fresh)
    snap = store.last_snapshot()
    if snap is None:
        return Risk(as_of=None, limits=[], note="no bar was saved yet", in_period=in_period,
                    total=total)
    if snap.bar_time >= end:
        return Risk(as_of=None, limits=[], in_period=in_period, total=total,
                    note=f"the store keeps the book of its last bar only "
                         f"({iso_ms(snap.bar_time)}), after this period")
    usage = limit_usage(snap.arrays, limits_of(plan), min(now_s, end / 1000))
    limits = [LimitLine(**row) for row in usage if row["max"] is not None]
    return Risk(as_of=iso_ms(snap.bar_time), limits=limits, in_period=in_period, total=total,
                note=None if limits else "no risk limit is enforced")


def _increase(chain: Sequence[EquityRow], counted_first: bool) -> dict[str, int]:
    """How much each cumulative count rose along ``chain`` (a counter's ``increase``): a row
    of another session is a fresh book, whose counts started from zero. The first row's own
    counts are included when the book started in the period (``counted_first``)."""
    out: dict[str, int] = dict(chain[0].risk) if chain and counted_first else {}
    for prev, row in pairwise(chain):
        for key, count in row.risk.items():
            base = prev.risk.get(key, 0) if prev.session == row.session else 0
            rise = count - base if count >= base else count
            if rise:
                out[key] = out.get(key, 0) + rise
    return {k: v for k, v in sorted(out.items()) if v}


# ---------------------------------------------------------------- incidents


def incident_key(entry: LogEntry) -> tuple[str, IncidentKind] | None:
    """(group code, kind) of a log entry that is an alert or an incident; None otherwise."""
    if entry.event == "alert":
        return str(entry.data.get("code") or "alert"), "alert"
    if entry.event in KILL_EVENTS:
        return entry.event, "kill switch"
    if entry.event == "session_ended" and entry.level not in ("debug", "info"):
        return "session_" + entry.message.rsplit(" ", 1)[-1], "session"
    if LEVEL_RANK.get(entry.level, 0) >= LEVEL_RANK["error"]:
        return entry.event, "error"
    return None


def _incidents(log: Sequence[LogEntry], start: int, end: int) -> list[IncidentGroup]:
    groups: dict[tuple[str, IncidentKind], list[LogEntry]] = {}
    for entry in log:
        key = incident_key(entry) if start <= entry.at < end else None
        if key is not None:
            groups.setdefault(key, []).append(entry)
    made = [_group(code, kind, entries) for (code, kind), entries in groups.items()]
    return sorted(made, key=lambda g: (-LEVEL_RANK.get(g.severity, 0), g.code))


def _group(code: str, kind: IncidentKind, entries: list[LogEntry]) -> IncidentGroup:
    ordered = sorted(entries, key=lambda e: (e.at, e.seq))
    severity = max((e.level for e in ordered), key=lambda level: LEVEL_RANK.get(level, 0))
    return IncidentGroup(
        code=code, kind=kind, severity=severity, count=len(ordered),
        first=iso_ms(ordered[0].at), last=iso_ms(ordered[-1].at),
        entries=[Incident(time=iso_ms(e.at), level=e.level, message=_clean(e.message))
                 for e in ordered[:MAX_GROUP_ENTRIES]],
        more=max(0, len(ordered) - MAX_GROUP_ENTRIES))


# ---------------------------------------------------------------- rendering


def render_markdown(report: LiveReport) -> str:
    """The report as GitHub-flavoured Markdown (``peak report live`` prints it)."""
    from .report_render import markdown

    return markdown(report)


def render_html(report: LiveReport) -> str:
    """The report as one self-contained HTML page: inline CSS and an inline SVG equity
    chart, no script, nothing fetched."""
    from .report_render import html

    return html(report)


def write_live_report(report: LiveReport, path: Path, fmt: Literal["md", "html"],
                      option: str = "--out") -> None:
    """Write the rendered report atomically (U006/U007 on ``option`` when the OS refuses)."""
    from ..outputs import write_output

    text = render_html(report) if fmt == "html" else render_markdown(report)
    write_output(path, text.encode("utf-8"), option)


__all__ = ["PERIODS", "EquitySummary", "IncidentGroup", "LiveReport", "Period", "Risk",
           "Trades", "build_live_report", "default_day", "deployment_of", "incident_key",
           "iso_ms", "period_bounds", "render_html", "render_markdown", "report_deployment",
           "write_live_report"]
