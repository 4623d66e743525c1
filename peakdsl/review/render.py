"""A ``DiffResult`` for people (text), for a pull-request comment (Markdown), for tools (JSON).

The three say the same thing in the same order: what was compared, how many changes at each
level, then each changed spec with its changes, most severe first, and, with ``--impact``, the
metric deltas and the trades added and removed. Text and Markdown list at most
``TRADES_SHOWN`` trades each way (the JSON lists all). Nothing here reads a clock or a path,
so the same result renders to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..metrics import format_metric
from .model import Change, DiffResult, ImpactDoc, MetricDelta, SideDoc, TradeDoc

TRADES_SHOWN = 10


def side_name(side: SideDoc) -> str:
    return f"{side.label} ({side.commit[:10]})" if side.commit else side.label


def summary(result: DiffResult) -> str:
    """``2 critical, 1 review, 0 info in 2 of 25 specs`` or ``no semantic change …``."""
    touched = [s for s in result.specs if s.status in ("changed", "added", "removed")]
    reformatted = [s.name for s in result.specs if s.status == "reformatted"]
    tail = f"; comments or formatting only: {', '.join(reformatted)}" if reformatted else ""
    if not result.changes:
        return f"no semantic change in {len(result.specs)} spec(s){tail}"
    c = result.counts
    return (f"{c.critical} critical, {c.review} review, {c.info} info in {len(touched)} of "
            f"{len(result.specs)} spec(s){tail}")


def by_spec(result: DiffResult) -> list[tuple[str, str, list[Change]]]:
    """(spec, kind, its changes) for every spec with changes (most severe first, as
    ``diff.compare`` orders them)."""
    out: list[tuple[str, str, list[Change]]] = []
    for spec in result.specs:
        mine = [c for c in result.changes if c.spec == spec.name]
        if mine:
            out.append((spec.name, spec.kind, mine))
    return out


def signed(name: str, value: float | None) -> str:
    if value is None:
        return "—"
    return ("+" if value > 0 else "") + format_metric(name, int(value) if name == "trades"
                                                      else value)


def metric(name: str, value: float | None) -> str:
    return format_metric(name, int(value) if name == "trades" and value is not None
                         else value)


# ----------------------------------------------------------------------------- text

def render_text(result: DiffResult) -> str:
    lines = [f"peak diff: {side_name(result.before)} → {side_name(result.after)}",
             summary(result)]
    for name, kind, changes in by_spec(result):
        lines += ["", f"{kind} {name}"]
        lines += [f"  {c.level:<8}  {c.kind:<19} {c.message}" for c in changes]
    for doc in result.impact or []:
        lines += ["", *impact_text(doc)]
    return "\n".join(lines) + "\n"


def impact_text(doc: ImpactDoc) -> list[str]:
    lines = [f"impact on {doc.kind} {doc.spec}: {doc.note}"]
    if not doc.ran:
        return lines
    lines += [f"  {m.name:<14} {metric(m.name, m.before):>12} → {metric(m.name, m.after):>12}"
              f"  ({signed(m.name, m.delta)})" for m in doc.metrics]
    lines.append(f"  trades {doc.trades_before} → {doc.trades_after}: "
                 f"{len(doc.trades_added)} added, {len(doc.trades_removed)} removed")
    for sign, trades in (("+", doc.trades_added), ("-", doc.trades_removed)):
        lines += [f"  {sign} {_trade(t)}" for t in trades[:TRADES_SHOWN]]
        lines += _more(trades, "  ")
    return lines


def _trade(t: TradeDoc) -> str:
    who = f"{t.component} " if t.component else ""
    return (f"{who}{t.side} {t.entry_time} → {t.exit_time} {t.exit_reason} "
            f"{format_metric('avg_trade', t.trade_return)}")


def _more(trades: list[TradeDoc], indent: str) -> list[str]:
    extra = len(trades) - TRADES_SHOWN
    return [f"{indent}… and {extra} more (--format json lists all)"] if extra > 0 else []


# ----------------------------------------------------------------------------- markdown

def cell(text: str | None) -> str:
    """A table cell: code-formatted, pipes escaped, ``—`` for nothing."""
    if text is None:
        return "—"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def render_markdown(result: DiffResult) -> str:
    lines = [f"### peak diff: `{side_name(result.before)}` → `{side_name(result.after)}`", "",
             f"**{summary(result)}**"]
    rows = [(name, kind, c) for name, kind, changes in by_spec(result) for c in changes]
    if rows:
        lines += ["", "| level | spec | change | before | after |", "|---|---|---|---|---|"]
        lines += [f"| {_level(c.level)} | `{name}` ({kind}) | {c.kind}: {c.subject} | "
                  f"{cell(c.before)} | {cell(c.after)} |" for name, kind, c in rows]
    for doc in result.impact or []:
        lines += ["", *impact_markdown(doc)]
    return "\n".join(lines) + "\n"


def _level(level: str) -> str:
    return f"**{level}**" if level == "critical" else level


def impact_markdown(doc: ImpactDoc) -> list[str]:
    lines = [f"#### Impact: `{doc.spec}` ({doc.kind})", "", doc.note]
    if not doc.ran:
        return lines
    lines += ["", "| metric | before | after | change |", "|---|---:|---:|---:|"]
    lines += [_metric_row(m) for m in doc.metrics]
    lines += ["", f"Trades {doc.trades_before} → {doc.trades_after}: "
              f"{len(doc.trades_added)} added, {len(doc.trades_removed)} removed."]
    for title, trades in (("added", doc.trades_added), ("removed", doc.trades_removed)):
        lines += _trade_table(title, trades)
    return lines


def _metric_row(m: MetricDelta) -> str:
    return (f"| {m.name} | {metric(m.name, m.before)} | {metric(m.name, m.after)} | "
            f"{signed(m.name, m.delta)} |")


def _trade_table(title: str, trades: list[TradeDoc]) -> list[str]:
    if not trades:
        return []
    lines = ["", f"<details><summary>Trades {title} ({len(trades)})</summary>", "",
             "| component | side | entry | exit | reason | return |", "|---|---|---|---|---|---:|"]
    lines += [f"| {t.component or '—'} | {t.side} | {t.entry_time} | {t.exit_time} | "
              f"{t.exit_reason} | {format_metric('avg_trade', t.trade_return)} |"
              for t in trades[:TRADES_SHOWN]]
    more = _more(trades, "")
    return [*lines, *(["", *more] if more else []), "", "</details>"]


# ----------------------------------------------------------------------------- json

def render_json(result: DiffResult) -> str:
    return json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False,
                      allow_nan=False) + "\n"


RENDERERS: dict[str, Callable[[DiffResult], str]] = {
    "text": render_text, "markdown": render_markdown, "json": render_json,
}
