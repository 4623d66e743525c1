"""The report of one robustness study: a self-contained HTML page and a Markdown summary.

Built like the other reports (``peakdsl.report.html``, whose pieces it reuses): plotly.js
inlined from the ``plotly`` package, figures as plain dicts with typed arrays in a JSON
``<script>``, fixed element ids, the same stylesheet and chart script, nothing depending on
the clock — the same study renders to the same bytes and the page fetches nothing.

Every number in the tables, and the fan bands and histograms, come from the ``--json``
document (``RobustnessDoc``), so the report and ``--json`` never disagree. One thing the
document does not carry is read from the study itself: *the base run measured as the
resampled runs are* (``measured``). The trade methods see the equity once per closed trade
and annualise the Sharpe by trades per year, so their figures are not the backtest's bar
figures (a drawdown inside a trade is not seen; the Sharpe differs); comparing the
distribution with the backtest's own Sharpe would mislead. The fan charts therefore draw
the base run's own path and the histograms mark its value on the same measure, and the
percentile tables print it beside the percentiles. Its total return is the backtest's (the
trade returns telescope to the final equity).

Parameter neighbours whose Sharpe falls *far below* the base run's are highlighted:
a fall of more than ``SHARPE_FALL_SHARE`` of the base Sharpe's size, and at least
``SHARPE_FALL_MIN`` (``far_below``) — a cliff next to the chosen params is a sign of a
lucky pick, a gentle slope is not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from ..metrics import CATALOGUE, DASH, Unit, fmt_percent, format_metric
from ..outputs import write_output
from ..robustness.paths import one_path
from ..robustness.study import SHOWN, mc_jobs
from ..robustness.summary import HEADLINE_METHOD, STATISTICS, finite_or_none
from . import markdown
from .html import (
    EQUITY_COLOUR,
    PLOTLY_CONFIG,
    SHORT_COLOUR,
    Row,
    _base_layout,
    _typed,
    environment,
    fmt_time,
    plotly_js,
    script_json,
)

if TYPE_CHECKING:
    from ..robustness.doc import FanDoc, HistogramDoc, MethodDoc, RobustnessDoc, VariantDoc
    from ..robustness.study import StudyResult

Array = np.ndarray[Any, Any]

# The base run's figures beside the study's, and the study's headline figures (catalogue
# names: their labels and meanings come from ``peakdsl.metrics``).
BASE_SHOWN = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades",
              "win_rate", "profit_factor", "exposure")
STUDY_SHOWN = ("mc_p05_return", "mc_p50_return", "mc_p95_return", "mc_p05_max_drawdown",
               "mc_p50_max_drawdown", "mc_p05_sharpe", "mc_p50_sharpe", "mc_prob_loss",
               "mc_risk_of_ruin", "stress_worst_return", "stress_worst_max_drawdown",
               "jitter_worst_sharpe", "jitter_median_sharpe")
VARIANT_SHOWN = SHOWN  # a stress or jitter run's figures: return, drawdown, Sharpe, trades
SHARPE_FALL_SHARE = 0.5  # a neighbour is far below when its Sharpe falls by more than this
SHARPE_FALL_MIN = 0.5  # … share of the base Sharpe's size, and by at least this much
WORST_NEIGHBOURS = 5  # the Markdown summary lists this many neighbours, lowest Sharpe first
FAN_HEIGHT, SMALL_FAN_HEIGHT, HISTOGRAM_HEIGHT = 420, 300, 280
PANEL_DOMAINS = ((0.0, 0.29), (0.355, 0.645), (0.71, 1.0))  # the histograms' three panels
SINGLE_BAR = 0.05  # the drawn width of a one-bin histogram, of its value (bar_geometry)
BANDS = ("rgba(37,99,235,0.14)", "rgba(37,99,235,0.32)")  # outer, inner percentile band

# method -> (title, what a run is; {skip} and {block} are filled in), and its step noun
METHODS: dict[str, tuple[str, str]] = {
    "bootstrap": ("Trade bootstrap", "as many trades as the run closed, drawn with "
                  "replacement: both the order and the mix of trades change"),
    "reshuffle": ("Trade reshuffle", "the closed trades in a random order: the total return "
                  "and the Sharpe cannot move, only the path and its drawdown"),
    "skip": ("Trade skip", "the trades in their order, each one missed with probability "
             "{skip}"),
    "block": ("Block bootstrap of bar returns", "the run's bar returns resampled in circular "
              "blocks of {block} bars, which keeps volatility clusters together"),
}
STEP_NOUNS = {"bootstrap": "trades", "reshuffle": "trades", "skip": "trades", "block": "bars"}


# --------------------------------------------------------------------------- the base run


@dataclass(frozen=True)
class Measured:
    """The base run measured as one method's runs are: its figures (statistic → value,
    None: undefined) and its equity at the fan's steps (1 = the starting capital)."""

    figures: dict[str, float | None]
    path: Array
    block_size: int


def measured(result: StudyResult) -> dict[str, Measured]:
    """The unresampled base run through each method's own kernel (module docstring)."""
    jobs, _ = mc_jobs(result.base, result.settings)
    out = {}
    for method, dist in result.distributions.items():
        job = jobs[method]
        path = np.empty(dist.fan.steps.shape[0])
        figures = one_path(job.returns, np.arange(job.steps, dtype=np.int64),
                           job.periods_per_year, dist.fan.steps.astype(np.int64), path,
                           np.empty(job.steps))
        out[method] = Measured({name: finite_or_none(float(value))
                                for name, value in zip(STATISTICS, figures, strict=True)},
                               path, job.block_size)
    return out


def method_order(doc: RobustnessDoc) -> list[str]:
    """The methods that ran, the headline one first, the others as the study ran them."""
    return sorted(doc.monte_carlo, key=lambda m: m != HEADLINE_METHOD)


# --------------------------------------------------------------------------- tables


def metric_rows(names: Sequence[str], values: Mapping[str, Any]) -> list[Row]:
    """Catalogue metrics, labelled, formatted as the terminal prints them, meaning as note."""
    return [Row(CATALOGUE[name].label, format_metric(name, values.get(name)),
                CATALOGUE[name].doc) for name in names]


def _signed(unit: Unit, delta: float) -> str:
    """A change: percentage points for percent metrics, whole numbers for counts."""
    if unit is Unit.PERCENT:
        return f"{round(delta * 100, 2) + 0.0:+,.2f} pp"
    if unit is Unit.INT:
        return f"{round(delta):+,}"
    return f"{round(delta, 2) + 0.0:+,.2f}"


def fmt_change(name: str, value: float | None, base: float | None) -> str:
    """``value - base`` of a catalogue metric (``—`` when either is undefined)."""
    if value is None or base is None:
        return DASH
    return _signed(CATALOGUE[name].unit, value - base)


def far_below(sharpe: float | None, base: float | None) -> bool:
    """Whether a neighbour's Sharpe fell far below the base run's (module docstring)."""
    if sharpe is None or base is None:
        return False
    return sharpe < base - max(SHARPE_FALL_MIN, SHARPE_FALL_SHARE * abs(base))


@dataclass(frozen=True)
class VariantRow:
    """A stress scenario or a parameter neighbour: its figures and their change against
    the base run (``VARIANT_SHOWN``, formatted); ``flagged`` rows are highlighted."""

    name: str
    doc: str
    values: list[str]
    changes: list[str]
    flagged: bool


def variant_row(v: VariantDoc, base: Mapping[str, Any], flagged: bool) -> VariantRow:
    got = {name: getattr(v, name) for name in VARIANT_SHOWN}
    return VariantRow(v.name, v.doc, [format_metric(k, got[k]) for k in VARIANT_SHOWN],
                      [fmt_change(k, got[k], base.get(k)) for k in VARIANT_SHOWN], flagged)


def stress_rows(doc: RobustnessDoc, base: Mapping[str, Any]) -> list[VariantRow]:
    """The scenarios in the order they ran; the one with the lowest return is flagged."""
    returns = [v.total_return for v in doc.stress if v.total_return is not None]
    worst = min(returns) if returns else None
    return [variant_row(v, base, v.total_return is not None and v.total_return == worst)
            for v in doc.stress]


def jitter_rows(doc: RobustnessDoc, base: Mapping[str, Any]) -> list[VariantRow]:
    """Every neighbour in the order it ran, flagged when its Sharpe is far below."""
    return [variant_row(v, base, far_below(v.sharpe, base.get("sharpe"))) for v in doc.jitter]


def worst_neighbours(doc: RobustnessDoc, base: Mapping[str, Any]) -> list[VariantRow]:
    """The ``WORST_NEIGHBOURS`` neighbours of lowest Sharpe (undefined last, ties in order)."""
    ranked = sorted(doc.jitter, key=lambda v: (v.sharpe is None, v.sharpe or 0.0))
    return [variant_row(v, base, far_below(v.sharpe, base.get("sharpe")))
            for v in ranked[:WORST_NEIGHBOURS]]


@dataclass(frozen=True)
class PercentileRow:
    """One statistic of one method: the base run on the runs' measure, then p05 … p95."""

    label: str
    base: str
    values: list[str]


@dataclass(frozen=True)
class MethodView:
    """One Monte-Carlo method as the page shows it."""

    name: str
    title: str
    about: str
    runs: str
    fan_runs: str
    steps: str
    noun: str
    levels: list[str]
    rows: list[PercentileRow]
    prob_loss: str
    risk_of_ruin: str


def percentile_rows(m: MethodDoc, base: Measured) -> list[PercentileRow]:
    return [PercentileRow(CATALOGUE[s].short, format_metric(s, base.figures[s]),
                          [format_metric(s, v) for v in m.percentiles[s].values()])
            for s in STATISTICS]


def method_view(name: str, m: MethodDoc, base: Measured, doc: RobustnessDoc) -> MethodView:
    title, about = METHODS[name]
    return MethodView(
        name=name, title=title,
        about=about.format(skip=fmt_percent(doc.settings.skip), block=f"{base.block_size:,}"),
        runs=f"{m.runs:,}", fan_runs=f"{m.fan.runs:,}", steps=f"{m.fan.steps[-1]:,}",
        noun=STEP_NOUNS[name], levels=list(next(iter(m.percentiles.values()))),
        rows=percentile_rows(m, base), prob_loss=fmt_percent(m.prob_loss),
        risk_of_ruin=fmt_percent(m.risk_of_ruin))


def setting_rows(doc: RobustnessDoc, blocks: Mapping[str, Measured]) -> list[Row]:
    """The study's settings, in readable units."""
    s = doc.settings
    block = blocks.get("block")
    size = f"{s.block_size:,} bars" if s.block_size is not None else (
        f"automatic: {block.block_size:,} bars (the cube root of the bars)" if block
        else "automatic (the cube root of the bars)")
    return [Row("runs", f"{s.runs:,} per method"), Row("seed", str(s.seed)),
            Row("skip", fmt_percent(s.skip), "the share of trades a skip run misses"),
            Row("block size", size, "bars per block of the block bootstrap"),
            Row("ruin", f"a drawdown of {fmt_percent(s.ruin)}", "counted by risk of ruin"),
            Row("jitter", "every param one step either side" if s.jitter else "off"),
            Row("stress", ", ".join(s.stress) or "none")]


@dataclass(frozen=True)
class DataRow:
    label: str
    market: str
    source: str
    bars: str
    fingerprint: str


def context(result: StudyResult, doc: RobustnessDoc, runs: Mapping[str, Measured]
            ) -> dict[str, Any]:
    """Everything the templates show, already formatted (``runs``: ``measured(result)``)."""
    base = doc.base.model_dump()  # type: ignore[attr-defined]
    methods = [method_view(name, doc.monte_carlo[name], runs[name], doc)
               for name in method_order(doc)]
    jitter = jitter_rows(doc, base)
    return {
        "d": doc, "synthetic": any(c.candles.synthetic for c in result.plan.components),
        "period": f"{fmt_time(pd.Timestamp(doc.start))} → {fmt_time(pd.Timestamp(doc.end))} "
                  "UTC",
        "data": [DataRow(d.label, f"{d.market} {d.timeframe}", d.source, f"{d.bars:,}",
                         d.fingerprint) for d in doc.data],
        "settings": setting_rows(doc, runs), "base": metric_rows(BASE_SHOWN, base),
        "base_short": metric_rows(VARIANT_SHOWN, base),
        "study": metric_rows(STUDY_SHOWN, doc.metrics.model_dump()),  # type: ignore[attr-defined]
        "methods": methods, "headline": methods[0] if methods else None,
        "ruin": fmt_percent(doc.settings.ruin),
        "columns": [CATALOGUE[k].short for k in VARIANT_SHOWN],
        "stress": stress_rows(doc, base), "jitter": jitter,
        "far_below": sum(row.flagged for row in jitter),
        "worst": worst_neighbours(doc, base),
        "fall": f"{SHARPE_FALL_SHARE:.0%} of the base Sharpe's size, and at least "
                f"{SHARPE_FALL_MIN:g}",
    }


# --------------------------------------------------------------------------- charts


def fan_id(method: str) -> str:
    return f"rb-fan-{method}"


def histogram_id(method: str) -> str:
    return f"rb-hist-{method}"


def _band_pair(steps: Array, low: Array, high: Array, name: str, colour: str
               ) -> list[dict[str, Any]]:
    """Two lines with the area between them filled (the lower one carries no legend)."""
    edge = {"type": "scatter", "mode": "lines", "x": _typed(steps),
            "line": {"width": 0, "color": colour}, "hovertemplate": "%{y:.2%}"}
    return [{**edge, "y": _typed(low), "name": f"{name} (low)", "showlegend": False},
            {**edge, "y": _typed(high), "name": name, "fill": "tonexty", "fillcolor": colour}]


def fan_figure(method: str, fan: FanDoc, base: Measured, height: int) -> dict[str, Any]:
    """The percentile bands of the runs' return since the start, the median, the base run."""
    steps = np.asarray(fan.steps, dtype=np.float64)
    bands = {level: np.asarray(row) - 1.0 for level, row in
             zip(fan.levels, fan.equity, strict=True)}
    levels, mid = fan.levels, fan.levels[len(fan.levels) // 2]
    data = [*_band_pair(steps, bands[levels[0]], bands[levels[-1]],
                        f"p{levels[0]:02d}–p{levels[-1]:02d}", BANDS[0]),
            *_band_pair(steps, bands[levels[1]], bands[levels[-2]],
                        f"p{levels[1]:02d}–p{levels[-2]:02d}", BANDS[1]),
            {"type": "scatter", "mode": "lines", "name": f"median (p{mid:02d})",
             "x": _typed(steps), "y": _typed(bands[mid]), "hovertemplate": "%{y:.2%}",
             "line": {"color": EQUITY_COLOUR, "width": 1.8}},
            {"type": "scatter", "mode": "lines", "name": "base run", "x": _typed(steps),
             "y": _typed(base.path - 1.0), "hovertemplate": "%{y:.2%}",
             "line": {"color": "#111827", "width": 1.4, "dash": "dash"}}]
    title = METHODS[method][0] + (": return since the start" if height == FAN_HEIGHT else "")
    layout = _base_layout(title, height)
    layout["legend"]["traceorder"] = "normal"
    layout["xaxis"] = {"title": {"text": f"{STEP_NOUNS[method]} into the run"},
                       "gridcolor": "#e5e7eb", "zeroline": False}
    layout["yaxis"].update({"tickformat": ".0%", "title": {"text": "return"}})
    return {"data": data, "layout": layout}


def bar_geometry(edges: Array) -> tuple[Array, Array]:
    """Bin centres and widths. A single bin holds runs that agree up to rounding (a
    reshuffle's return): its width says nothing (a rounding error, or numpy's 1 around a
    single value), so it is drawn ``SINGLE_BAR`` of its value's size wide (at least
    ``SINGLE_BAR`` of 1 %)."""
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    if len(widths) == 1:
        widths = np.array([SINGLE_BAR * max(abs(float(centres[0])), 0.01)])
    return centres, widths


def _bars(axis: str, statistic: str, h: HistogramDoc) -> list[dict[str, Any]]:
    """The histogram's bars (none when no run defines the statistic)."""
    if not h.counts:
        return []
    centres, widths = bar_geometry(np.asarray(h.edges, dtype=np.float64))
    shown = ".2%" if CATALOGUE[statistic].unit is Unit.PERCENT else ".2f"
    return [{"type": "bar", "name": CATALOGUE[statistic].short, "showlegend": False,
             "x": _typed(centres), "y": _typed(np.asarray(h.counts, dtype=np.float64)),
             "width": _typed(widths), "xaxis": f"x{axis}", "yaxis": f"y{axis}",
             "marker": {"color": EQUITY_COLOUR, "opacity": 0.75},
             "hovertemplate": f"%{{x:{shown}}}: %{{y}} runs<extra></extra>"}]


def _panel_axes(i: int, axis: str, statistic: str) -> dict[str, Any]:
    percent = CATALOGUE[statistic].unit is Unit.PERCENT
    return {f"xaxis{axis}": {"domain": list(PANEL_DOMAINS[i - 1]), "anchor": f"y{axis}",
                             "title": {"text": CATALOGUE[statistic].short},
                             "tickformat": ".0%" if percent else "", "gridcolor": "#e5e7eb"},
            f"yaxis{axis}": {"anchor": f"x{axis}", "gridcolor": "#e5e7eb",
                             "rangemode": "tozero", "title": {"text": "runs" if i == 1 else ""}}}


def _marks(i: int, axis: str, h: HistogramDoc, base: float | None
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The base run's value as a dashed red line, and a word where a panel has no bars."""
    lines = [] if base is None else [
        {"type": "line", "xref": f"x{axis}", "yref": "paper", "x0": base, "x1": base,
         "y0": 0, "y1": 1, "line": {"color": SHORT_COLOUR, "width": 2, "dash": "dash"}}]
    words = [] if h.counts else [
        {"text": "undefined in every run", "showarrow": False, "xref": "paper",
         "yref": "paper", "x": sum(PANEL_DOMAINS[i - 1]) / 2, "y": 0.5}]
    return lines, words


def histogram_figure(method: str, m: MethodDoc, base: Measured) -> dict[str, Any]:
    """Three panels: total return, max drawdown and Sharpe of the runs, the base marked."""
    layout = _base_layout(f"{METHODS[method][0]}: distribution over {m.runs:,} runs "
                          "(red: the base run)", HISTOGRAM_HEIGHT)
    layout.update({"hovermode": "closest", "bargap": 0.05, "showlegend": False,
                   "shapes": [], "annotations": []})
    data: list[dict[str, Any]] = []
    for i, statistic in enumerate(STATISTICS, start=1):
        axis, h = ("" if i == 1 else str(i)), m.histogram[statistic]
        data += _bars(axis, statistic, h)
        layout.update(_panel_axes(i, axis, statistic))
        lines, words = _marks(i, axis, h, base.figures[statistic])
        layout["shapes"] += lines
        layout["annotations"] += words
    return {"data": data, "layout": layout}


def figures(doc: RobustnessDoc, runs: Mapping[str, Measured]) -> dict[str, dict[str, Any]]:
    """Each method's fan chart and histograms, keyed by their (fixed) element ids."""
    out: dict[str, dict[str, Any]] = {}
    for i, method in enumerate(method_order(doc)):
        m = doc.monte_carlo[method]
        out[fan_id(method)] = fan_figure(method, m.fan, runs[method],
                                         FAN_HEIGHT if i == 0 else SMALL_FAN_HEIGHT)
        out[histogram_id(method)] = histogram_figure(method, m, runs[method])
    return out


def chart_ids(doc: RobustnessDoc) -> list[str]:
    """Every chart's element id, in page order: the fans, then the histograms."""
    order = method_order(doc)
    return [*map(fan_id, order), *map(histogram_id, order)]


# --------------------------------------------------------------------------- outputs


def render_robustness_html(result: StudyResult, doc: RobustnessDoc) -> str:
    """The report as one self-contained HTML document (same study → same bytes)."""
    runs = measured(result)
    ctx = context(result, doc, runs)
    # Markup: inserted verbatim into <script> elements, made safe for that by plotly_js and
    # script_json (see peakdsl.report.html).
    ctx["plotly_js"] = Markup(plotly_js())
    ctx["figures_json"] = Markup(script_json(figures(doc, runs)))
    ctx["config_json"] = Markup(script_json(PLOTLY_CONFIG))
    ctx["fan_id"], ctx["histogram_id"] = fan_id, histogram_id
    return environment().get_template("robustness.html.j2").render(ctx)


def render_robustness_markdown(result: StudyResult, doc: RobustnessDoc) -> str:
    """The summary as GitHub-flavoured Markdown, sized for a pull-request comment."""
    ctx = context(result, doc, measured(result))
    return markdown.environment().get_template("robustness.md.j2").render(ctx)


FORMATS: dict[str, Callable[[StudyResult, RobustnessDoc], str]] = {
    ".html": render_robustness_html, ".htm": render_robustness_html,
    ".md": render_robustness_markdown}


def write_robustness_report(result: StudyResult, doc: RobustnessDoc, path: Path) -> None:
    """The HTML report (``.html``/``.htm``) or the Markdown summary (``.md``), written
    atomically by ``write_output`` (an OS refusal is U006/U007 on ``--report``)."""
    render = FORMATS.get(Path(path).suffix.lower())
    if render is None:
        raise ValueError(f"cannot tell the report format of {str(path)!r}: use a "
                         f"{', '.join(FORMATS)} file name")
    write_output(Path(path), render(result, doc).encode("utf-8"), "--report")


__all__ = ("chart_ids", "render_robustness_html", "render_robustness_markdown",
           "write_robustness_report")
