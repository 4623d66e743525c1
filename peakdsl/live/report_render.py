"""Rendering a ``LiveReport``: Markdown and a self-contained HTML page (``report.py``).

Both go through jinja2 templates beside the backtest reports' (``peakdsl/report/templates``:
``live.md.j2``, ``live.html.j2``), with every number formatted here. The HTML page has its
CSS inline and its one chart — the period's equity — as an inline SVG drawn from numbers
computed here: no script, no font, nothing fetched, so it opens offline and from a mail
attachment. HTML escapes everything (autoescape); Markdown quotes free text (``md_text``):
notes and log messages are what people and exchanges wrote. The same report renders to the
same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from ..metrics import DASH, fmt_number, fmt_percent

if TYPE_CHECKING:
    from .report import EquityPoint, LiveReport

MAX_TABLE_FILLS = 500  # fills listed (the first ones); all are counted
MAX_CHART_POINTS = 600  # bars drawn; more are sampled evenly (the last always kept)
WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 86, 16, 14, 28
MD_SPECIAL = re.compile(r"([\\`*\[\]<>|])")


# ---------------------------------------------------------------- formatting


def money(value: float | None) -> str:
    return fmt_number(value, 2)


def signed(value: float | None) -> str:
    text = fmt_number(value, 2)
    return text if value is None or text.startswith("-") or text == DASH else f"+{text}"


def percent(value: float | None) -> str:
    return fmt_percent(value, 2)


def price(value: float) -> str:
    from ..report.html import fmt_price

    return fmt_price(value)


def qty(value: float) -> str:
    return f"{value:.8g}"


def md_text(value: object) -> str:
    """Free text inside a Markdown table cell or line: one line, Markdown's own characters
    backslash-escaped (so a note cannot open a link, a tag or a table cell)."""
    return MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


SHARE_LIMITS = ("max_symbol_exposure", "max_total_exposure", "max_daily_loss")


def limit_cells(row: Any) -> tuple[str, str, str]:
    """(now, limit, share used) of one ``ops.limit_usage`` row: shares of equity as
    percentages, counts as counts; ``max_order_notional`` applies per order (no use now)."""
    if row.limit in SHARE_LIMITS:
        return percent(row.value), percent(row.max), percent(row.used)
    if row.value is None:
        return DASH, f"{fmt_number(row.max, 2)} per order", DASH
    return f"{row.value:g}", f"{row.max:g}", percent(row.used)


# ---------------------------------------------------------------- the chart


@dataclass(frozen=True)
class Chart:
    """The SVG equity chart's geometry, in the SVG's own units."""

    width: int
    height: int
    path: str
    baseline: float | None  # y of the start equity
    top: str  # the value at the top of the plot area
    bottom: str
    left: str  # the period's start
    right: str  # its end
    points: int


def _sample(points: list[EquityPoint]) -> list[EquityPoint]:
    if len(points) <= MAX_CHART_POINTS:
        return points
    step = (len(points) - 1) / (MAX_CHART_POINTS - 1)
    return [points[round(i * step)] for i in range(MAX_CHART_POINTS)]


def chart(report: LiveReport) -> Chart | None:
    """The equity over the period (from the start equity at its first moment), or None when
    no bar was saved in it."""
    if not report.curve:
        return None
    start = report.equity.start
    pairs = [(float(report.start_ms), start)] if start is not None else []
    pairs += [(float(p.t), p.equity) for p in _sample(list(report.curve))]
    values = [v for _, v in pairs]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(1.0, abs(hi) * 0.001)
    lo, hi = lo - pad, hi + pad
    span = float(report.end_ms - report.start_ms)

    def x(t: float) -> float:
        return LEFT + (t - report.start_ms) / span * (WIDTH - LEFT - RIGHT)

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * (HEIGHT - TOP - BOTTOM)

    path = "M" + " L".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pairs)
    return Chart(WIDTH, HEIGHT, path, None if start is None else round(y(start), 1),
                 money(hi), money(lo), report.start[:16].replace("T", " "),
                 report.end[:16].replace("T", " "), len(pairs))


# ---------------------------------------------------------------- rendering


def _environment(autoescape: bool) -> Environment:
    env = Environment(loader=PackageLoader("peakdsl.report", "templates"),
                      autoescape=autoescape, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(money=money, signed=signed, percent=percent, price=price, qty=qty,
                       md=md_text, limit=limit_cells)
    return env


@cache
def environments() -> tuple[Environment, Environment]:
    """(Markdown, HTML) template environments."""
    return _environment(False), _environment(True)


def _context(report: LiveReport) -> dict[str, Any]:
    shown = report.trades.fills[:MAX_TABLE_FILLS]
    return {"r": report, "fills": shown, "hidden_fills": report.trades.count - len(shown),
            "chart": chart(report), "dash": DASH,
            "fees": ", ".join(f"{fmt_number(v, 4)} {k}" for k, v in
                              report.trades.fees.items()) or "0",
            "period_words": _period_words(report)}


def _period_words(report: LiveReport) -> str:
    if report.period == "daily":
        return f"the UTC day {report.label}"
    last = report.end_ms - 86_400_000
    from .report import iso_ms

    return (f"the ISO week {report.label}, Monday {report.start[:10]} to Sunday "
            f"{iso_ms(last)[:10]} (UTC)")


def markdown(report: LiveReport) -> str:
    md, _ = environments()
    return md.get_template("live.md.j2").render(_context(report))


def html(report: LiveReport) -> str:
    _, page = environments()
    return page.get_template("live.html.j2").render(_context(report))


__all__ = ["Chart", "chart", "html", "markdown", "md_text"]
