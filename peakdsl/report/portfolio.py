"""The report of one portfolio backtest: a self-contained HTML page and a Markdown summary.

Built like the backtest report (``peakdsl.report.html``, whose pieces it reuses): plotly.js
inlined from the ``plotly`` package, figures as plain dicts with typed arrays in a JSON
``<script>``, fixed element ids, the same stylesheet, nothing depending on the clock — the same
run renders to the same bytes and the page fetches nothing.

The numbers in the tables come from the ``--json`` document (``PortfolioDoc``), so the report
and ``--json`` never disagree; the charts read the run's full series (``PortfolioResult``):

* equity with the components stacked: each component's ``capital × weight + its profit so
  far`` (``sim.pnl``), areas that add up to the portfolio's equity, drawn on top as a line;
* the drawdown of the portfolio's equity;
* allocation: each component's sleeve as a share of equity (``analysis.allocation``), the
  drift between rebalances visible when zoomed;
* exposure by market as a share of equity (``analysis.exposure_by_market``), with the risk
  spec's exposure limits as dashed lines;
* the correlation of the components' profit changes as a heatmap.

Long runs are sampled for the charts to at most ``CHART_POINTS`` points (the last point of
each bucket of consecutive points; the drawdown keeps each bucket's deepest point), so a
100,000-point portfolio adds well under a megabyte to plotly.js. Zooming a time chart zooms
the others to the same dates and fits every y-axis to what is visible (portfolio.js.j2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from ..data.candles import format_duration
from ..engine.state import RISK_LIMITS, RISK_REASONS
from ..metrics import (
    BACKTEST_METRICS,
    CATALOGUE,
    DASH,
    HEADLINE,
    fmt_count,
    fmt_number,
    fmt_percent,
    format_metric,
)
from ..outputs import write_output
from ..portfolio.analysis import allocation, exposure_by_market
from . import markdown
from .html import (
    EQUITY_COLOUR,
    LONG_COLOUR,
    OVERLAY_COLOURS,
    PLOTLY_CONFIG,
    SHORT_COLOUR,
    Row,
    _base_layout,
    _bucket_arg,
    _bucket_ends,
    _epoch_ms,
    _typed,
    drawdown,
    environment,
    fmt_time,
    plotly_js,
    script_json,
)

if TYPE_CHECKING:
    from ..portfolio.doc import ComponentDoc, PortfolioDoc
    from ..portfolio.run import PortfolioResult

Array = np.ndarray[Any, Any]

CHART_POINTS = 4_000  # at most this many points per time chart (plus the first)
TIME_CHARTS = ("pf-chart-equity", "pf-chart-drawdown", "pf-chart-allocation",
               "pf-chart-exposure")
CORRELATION_ID = "pf-chart-correlation"
CHART_IDS = (*TIME_CHARTS, CORRELATION_ID)
PALETTE = (EQUITY_COLOUR, *OVERLAY_COLOURS, LONG_COLOUR, SHORT_COLOUR, "#84cc16", "#64748b",
           "#a16207")
TOTAL_COLOUR = "#111827"
LIMIT_COLOUR = "#b91c1c"
COMPONENT_METRICS = HEADLINE  # the components table's metric columns
LIMIT_OF = dict(zip(RISK_REASONS[1:], RISK_LIMITS, strict=True))  # reason → its limit


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class ComponentRow:
    """One component in the components table (every value formatted)."""

    label: str
    market: str
    weight: str
    pnl: str
    contribution_return: str
    contribution_drawdown: str
    metrics: list[str]  # COMPONENT_METRICS, in order


@dataclass(frozen=True)
class SourceRow:
    """What one component ran: its artifact, its data and its params."""

    label: str
    strategy: str
    artifact_sha256: str
    data_source: str
    data_fingerprint: str
    bars: str
    params: str


@dataclass(frozen=True)
class LimitRow:
    """One risk limit: its value, how much of it the run used, the entries it cut."""

    name: str
    reason: str
    value: str
    used: str
    reduced: int
    denied: int


def metric_table(metrics: Mapping[str, Any]) -> list[Row]:
    """The backtest catalogue's metrics, labelled and formatted as the terminal shows them."""
    return [Row(CATALOGUE[name].label, format_metric(name, metrics.get(name)),
                CATALOGUE[name].doc) for name in BACKTEST_METRICS]


def component_rows(doc: PortfolioDoc) -> list[ComponentRow]:
    rows = []
    for c in doc.components:
        metrics = c.metrics.model_dump()  # type: ignore[attr-defined]
        rows.append(ComponentRow(
            label=c.label, market=f"{c.market} {c.timeframe}", weight=fmt_percent(c.weight),
            pnl=fmt_number(c.pnl), contribution_return=fmt_percent(c.contribution_return),
            contribution_drawdown=fmt_percent(c.contribution_drawdown),
            metrics=[format_metric(name, metrics.get(name)) for name in COMPONENT_METRICS]))
    return rows


def source_rows(doc: PortfolioDoc) -> list[SourceRow]:
    return [SourceRow(label=c.label, strategy=c.strategy, artifact_sha256=c.artifact_sha256,
                      data_source=c.data_source, data_fingerprint=c.data_fingerprint,
                      bars=f"{c.bars:,}", params=_params(c))
            for c in doc.components]


def _params(c: ComponentDoc) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in c.params.items()) or "(none)"


def _limit_formats(currency: str) -> dict[str, Callable[[float], str]]:
    """How each limit's value reads: money, a share of equity, or a count."""
    return {"max_order_notional": lambda v: f"{fmt_number(v)} {currency}",
            "max_symbol_exposure": fmt_percent, "max_total_exposure": fmt_percent,
            "max_open_positions": fmt_count, "max_daily_loss": fmt_percent,
            "max_orders_per_minute": fmt_count}


def limit_rows(doc: PortfolioDoc) -> list[LimitRow]:
    """Every limit of the risk spec, in reason-code order (none without a risk spec)."""
    risk = doc.risk
    if risk.spec is None:
        return []
    shown = _limit_formats(doc.currency)
    rows = []
    for reason, name in LIMIT_OF.items():
        value, used = risk.limits.get(name), risk.utilisation.get(name)
        rows.append(LimitRow(name=name, reason=reason,
                             value="none" if value is None else shown[name](value),
                             used=DASH if used is None else fmt_percent(used),
                             reduced=risk.reduced.get(reason, 0),
                             denied=risk.denied.get(reason, 0)))
    return rows


def correlation_rows(doc: PortfolioDoc) -> list[tuple[str, list[str]]]:
    """Each component's correlations with every component, two decimals (— undefined)."""
    return [(a, [fmt_number(v) for v in row.values()]) for a, row in doc.correlation.items()]


def rebalancing(doc: PortfolioDoc) -> str:
    """``every 1w and on 5.00% drift (7 times)``, or ``never``."""
    parts = []
    if doc.rebalance_seconds:
        parts.append(f"every {format_duration(doc.rebalance_seconds)}")
    if doc.rebalance_drift:
        parts.append(f"on {fmt_percent(doc.rebalance_drift)} drift")
    if not parts:
        return "never"
    return f"{' and '.join(parts)} ({doc.rebalances:,} times)"


def data_sources(doc: PortfolioDoc) -> list[str]:
    """The distinct data sources of the components, in component order."""
    return list(dict.fromkeys(c.data_source for c in doc.components))


def period(doc: PortfolioDoc) -> str:
    return f"{fmt_time(pd.Timestamp(doc.start))} → {fmt_time(pd.Timestamp(doc.end))} UTC"


def context(result: PortfolioResult, doc: PortfolioDoc) -> dict[str, Any]:
    """Everything the templates show, already formatted."""
    limits = limit_rows(doc)
    metrics = doc.metrics.model_dump()  # type: ignore[attr-defined]
    return {
        "d": doc,
        "synthetic": any(r.component.candles.synthetic for r in result.components),
        "sources": data_sources(doc),
        "period": period(doc),
        "points": f"{doc.points:,}",
        "capital": f"{fmt_number(doc.capital)} {doc.currency}",
        "final_equity": f"{fmt_number(doc.final_equity)} {doc.currency}",
        "rebalancing": rebalancing(doc),
        "metrics": metric_table(metrics),
        "total_return": format_metric("total_return", metrics["total_return"]),
        "max_drawdown": format_metric("max_drawdown", metrics["max_drawdown"]),
        "metric_names": [CATALOGUE[name].short for name in COMPONENT_METRICS],
        "components": component_rows(doc),
        "provenance": source_rows(doc),
        "limits": limits,
        "reduced_total": sum(r.reduced for r in limits),
        "denied_total": sum(r.denied for r in limits),
        "correlation": correlation_rows(doc),
        "labels": [c.label for c in doc.components],
        "chart_points": f"{CHART_POINTS:,}",
        "sampled": len(result.times) > CHART_POINTS,
    }


# --------------------------------------------------------------------------- charts


def chart_points(n: int) -> Array:
    """The points a time chart draws: all up to ``CHART_POINTS``, else the first point and
    the last of each bucket of ``ceil(n / CHART_POINTS)`` points."""
    if n <= CHART_POINTS:
        return np.arange(n)
    _, ends = _bucket_ends(n, math.ceil(n / CHART_POINTS))
    return np.concatenate([[0], ends])


def deepest_points(dd: Array) -> Array:
    """The drawdown's points: all, or each bucket's deepest (the maximum drawdown stays)
    and the first and the last (the chart spans the same dates as the others)."""
    n = len(dd)
    if n <= CHART_POINTS:
        return np.arange(n)
    deepest = _bucket_arg(dd, math.ceil(n / CHART_POINTS), pick_min=True)
    return np.unique(np.concatenate([[0], deepest, [n - 1]]))


def _line(name: str, y: Array, colour: str, hover: str, width: float = 1.4
          ) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "name": name, "y": _typed(y),
            "line": {"color": colour, "width": width},
            "hovertemplate": f"%{{y:{hover}}}<extra>{name}</extra>"}


def _band(name: str, y: Array, colour: str) -> dict[str, Any]:
    """A component's band of the stacked equity (hover shows its own value)."""
    return {**_line(name, y, colour, ",.2f", 0.8), "stackgroup": "components"}


def _time_figure(title: str, height: int, ms: Array, traces: list[dict[str, Any]],
                 y: Mapping[str, Any], zero: bool = True) -> dict[str, Any]:
    """A time chart: ``x`` is shared by its traces (the page's script hands it to each and
    fits the y-axis to the visible dates itself, so plotly's own y zoom is off); ``marks``
    are levels the y-axis always shows, ``zero`` keeps zero in view when zoomed."""
    layout = _base_layout(title, height)
    layout["yaxis"].update({"fixedrange": True, **y})
    return {"x": _typed(ms), "data": traces, "layout": layout, "marks": [], "zero": zero}


def equity_figure(result: PortfolioResult, ms: Array, pick: Array, currency: str
                  ) -> dict[str, Any]:
    """Each component's capital × weight + its profit, stacked; the equity on top."""
    capital = result.plan.capital
    traces = [_band(run.label, capital * run.component.weight + result.sim.pnl[run.slot][pick],
                    PALETTE[i % len(PALETTE)]) for i, run in enumerate(result.components)]
    traces.append(_line("portfolio equity", result.sim.equity[pick], TOTAL_COLOUR, ",.2f",
                        1.6))
    return _time_figure("Equity, components stacked", 400, ms[pick], traces,
                        {"title": {"text": currency}}, zero=False)


def drawdown_figure(result: PortfolioResult, ms: Array) -> dict[str, Any]:
    dd = drawdown(np.asarray(result.sim.equity, dtype=np.float64))
    pick = deepest_points(dd)
    trace = _line("drawdown", dd[pick], SHORT_COLOUR, ".2%", 1.0)
    trace.update({"fill": "tozeroy", "fillcolor": "rgba(220,38,38,0.25)"})
    figure = _time_figure("Drawdown (underwater)", 260, ms[pick], [trace],
                          {"tickformat": ".1%", "title": {"text": "from peak"}})
    figure["layout"]["showlegend"] = False
    return figure


def allocation_figure(result: PortfolioResult, ms: Array, pick: Array) -> dict[str, Any]:
    """Each sleeve's share of equity: lines, so a zoom shows the drift between rebalances."""
    shares = allocation(result)
    traces = [_line(label, shares[label].to_numpy()[pick], PALETTE[i % len(PALETTE)], ".2%")
              for i, label in enumerate(shares.columns)]
    return _time_figure("Allocation (each sleeve, of equity)", 300, ms[pick], traces,
                        {"tickformat": ".1%", "title": {"text": "of equity"}}, zero=False)


def exposure_figure(result: PortfolioResult, ms: Array, pick: Array) -> dict[str, Any]:
    """Gross exposure per market and in all, with the risk spec's exposure limits."""
    shares = exposure_by_market(result)
    traces = [_line(market, shares[market].to_numpy()[pick], PALETTE[i % len(PALETTE)], ".1%")
              for i, market in enumerate(shares.columns)]
    if len(shares.columns) > 1:
        traces.append(_line("all markets", shares.sum(axis=1, min_count=1).to_numpy()[pick],
                            TOTAL_COLOUR, ".1%", 1.0))
    figure = _time_figure("Exposure by market (gross, of equity)", 300, ms[pick], traces,
                          {"tickformat": ".1%", "title": {"text": "of equity"}})
    lines = exposure_limits(result)
    figure["layout"]["shapes"] = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": value,
         "y1": value, "line": {"color": LIMIT_COLOUR, "width": 1, "dash": dash}}
        for value, dash in lines]
    figure["marks"] = [value for value, _ in lines]  # the y-axis always shows them
    return figure


def exposure_limits(result: PortfolioResult) -> list[tuple[float, str]]:
    """The exposure limits the run enforced and their line styles (none without them)."""
    limits = result.limits
    shown = [(float(getattr(limits, name)), dash) for name, dash in
             (("max_symbol_exposure", "dash"), ("max_total_exposure", "dot"))]
    return [(value, dash) for value, dash in shown if math.isfinite(value)]


def correlation_figure(doc: PortfolioDoc) -> dict[str, Any]:
    labels = list(doc.correlation)
    z = [list(row.values()) for row in doc.correlation.values()]
    layout = _base_layout("Correlation of the components' profit changes", 200 + 60 * len(labels))
    layout.update({"hovermode": "closest",
                   "xaxis": {"type": "category", "side": "top", "automargin": True},
                   "yaxis": {"type": "category", "autorange": "reversed", "automargin": True}})
    layout["margin"]["t"] = 110
    data = [{"type": "heatmap", "x": labels, "y": labels, "z": z,
             "text": [[fmt_number(v) for v in row] for row in z], "texttemplate": "%{text}",
             "hovertemplate": "%{y} × %{x}: %{z:.3f}<extra></extra>",
             "colorscale": [[0.0, "#b91c1c"], [0.5, "#f8fafc"], [1.0, "#1d4ed8"]],
             "zmin": -1, "zmax": 1, "xgap": 2, "ygap": 2, "hoverongaps": False}]
    return {"data": data, "layout": layout}


def figures(result: PortfolioResult, doc: PortfolioDoc) -> dict[str, dict[str, Any]]:
    """The five charts, keyed by their (fixed) element ids."""
    ms = _epoch_ms(result.times)
    pick = chart_points(len(ms))
    built = (equity_figure(result, ms, pick, doc.currency), drawdown_figure(result, ms),
             allocation_figure(result, ms, pick), exposure_figure(result, ms, pick),
             correlation_figure(doc))
    return dict(zip(CHART_IDS, built, strict=True))


# --------------------------------------------------------------------------- outputs


def render_portfolio_html(result: PortfolioResult, doc: PortfolioDoc) -> str:
    """The report as one self-contained HTML document (same run → same bytes)."""
    ctx = context(result, doc)
    # Markup: inserted verbatim into <script> elements, made safe for that by plotly_js and
    # script_json (see peakdsl.report.html).
    ctx["plotly_js"] = Markup(plotly_js())
    ctx["figures_json"] = Markup(script_json(figures(result, doc)))
    ctx["config_json"] = Markup(script_json(PLOTLY_CONFIG))
    ctx["chart_ids"] = CHART_IDS
    return environment().get_template("portfolio.html.j2").render(ctx)


def render_portfolio_markdown(result: PortfolioResult, doc: PortfolioDoc) -> str:
    """The summary as GitHub-flavoured Markdown, sized for a pull-request comment."""
    return markdown.environment().get_template("portfolio.md.j2").render(context(result, doc))


RENDERERS: dict[str, Callable[[PortfolioResult, PortfolioDoc], str]] = {
    ".html": render_portfolio_html, ".htm": render_portfolio_html,
    ".md": render_portfolio_markdown}


def write_portfolio_report(result: PortfolioResult, doc: PortfolioDoc, path: Path) -> None:
    """Write the HTML report (``.html``/``.htm``) or the Markdown summary (``.md``)
    atomically; an OS refusal is U006/U007 on ``--report``."""
    path = Path(path)
    render = RENDERERS.get(path.suffix.lower())
    if render is None:
        raise ValueError(f"cannot tell the report format of {str(path)!r}: use a "
                         f"{', '.join(RENDERERS)} file name")
    write_output(path, render(result, doc).encode("utf-8"), "--report")


__all__ = ("CHART_IDS", "render_portfolio_html", "render_portfolio_markdown",
                          "write_portfolio_report")
