"""A self-contained, deterministic HTML report of one walk-forward run.

Same conventions as ``peakdsl.report.html`` (whose helpers it reuses): plotly.js inlined from
the ``plotly`` package, figures as plain dicts with typed arrays, fixed element ids, nothing
depending on the clock, so the same result renders to the same bytes and nothing is fetched
when the page opens.

Charts: the stitched out-of-sample equity (with buy & hold chained over the same test
windows), the test windows shaded under it and a lane above it that draws every window's train
(blue) and test (green) span; and the winning value of every swept param per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from ..metrics import CATALOGUE, DASH, fmt_number, fmt_percent, objective_goal, produced_by
from .html import (
    BENCH_COLOUR,
    EQUITY_COLOUR,
    OVERLAY_COLOURS,
    PLOTLY_CONFIG,
    Row,
    _base_layout,
    _epoch_ms,
    _typed,
    environment,
    fmt_metric,
    fmt_time,
    metric_rows,
    plotly_js,
    script_json,
)

if TYPE_CHECKING:
    from ..research.walkforward import WalkForwardResult

Array = np.ndarray[Any, Any]
CHART_IDS = ("wf-chart-equity", "wf-chart-params")
TRAIN_COLOUR = "rgba(37,99,235,0.55)"
TEST_COLOUR = "rgba(22,163,74,0.65)"
TEST_SHADE = ("rgba(22,163,74,0.08)", "rgba(22,163,74,0.16)")
EQUITY_PIXELS = 320  # plot height of the equity panel
LANE_PIXELS = 18  # per window in the lane above it


@dataclass(frozen=True)
class WindowRow:
    number: int
    train: tuple[str, str]  # first and last bar
    test: tuple[str, str]
    train_bars: str
    test_bars: str
    params: list[str]  # name=value of each swept param
    objective: str
    is_return: str
    oos_return: str
    oos_sharpe: str
    oos_drawdown: str
    trades: str
    warmup: str
    partial: bool
    positive: bool


@dataclass(frozen=True)
class StabilityRow:
    name: str
    values: str
    mean: str
    cv: str
    mode: str
    share: str
    changes: str


def _ms(ts: Any) -> float:
    return float(ts.value // 1_000_000)


def window_rows(result: WalkForwardResult) -> list[WindowRow]:
    rows = []
    for w in result.windows:
        win = w.window
        ret = w.oos_metrics.get("total_return")
        rows.append(WindowRow(
            number=win.number, train=(fmt_time(win.train_first), fmt_time(win.train_last)),
            test=(fmt_time(win.test_first), fmt_time(win.test_last)),
            train_bars=f"{win.train_bars:,}", test_bars=f"{win.test_bars:,}",
            params=[f"{k}={v:g}" for k, v in w.chosen.items()] or ["(defaults)"],
            objective=fmt_metric(result.objective, w.objective),
            is_return=fmt_metric("total_return", w.is_metrics.get("total_return")),
            oos_return=fmt_metric("total_return", ret),
            oos_sharpe=fmt_metric("sharpe", w.oos_metrics.get("sharpe")),
            oos_drawdown=fmt_metric("max_drawdown", w.oos_metrics.get("max_drawdown")),
            trades=fmt_metric("trades", w.oos_metrics.get("trades")),
            warmup=f"{w.lead:,}", partial=win.partial,
            positive=ret is not None and float(ret) > 0))
    return rows


def stability_rows(result: WalkForwardResult) -> list[StabilityRow]:
    return [StabilityRow(
        name=s.name, values=" ".join(f"{v:g}" for v in s.values), mean=f"{s.mean:g}",
        cv=DASH if s.cv is None else fmt_number(s.cv), mode=f"{s.mode:g}",
        share=fmt_percent(s.mode_share, 0), changes=f"{s.changes:,}")
        for s in result.stability.values()]


def summary_rows(result: WalkForwardResult) -> list[Row]:
    """The walk-forward metrics promotion criteria read (the catalogue's), then the two
    annualised returns behind ``wf_efficiency``."""
    pm = result.promotion_metrics
    return [
        *(Row(name, fmt_metric(name, pm[name]), CATALOGUE[name].doc)
          for name in produced_by("walkforward")),
        Row("oos annualised", fmt_metric("cagr", result.oos_annual_return),
            "CAGR of the stitched out-of-sample curve"),
        Row("in-sample annualised", fmt_metric("cagr", result.is_annual_return),
            "the winners' train returns chained and annualised over the train bars"),
    ]


def bench_curve(result: WalkForwardResult) -> Array:
    """Buy & hold over the test windows, chained like the strategy (from the capital)."""
    close = result.candles.frame["close"].to_numpy(dtype=np.float64)
    parts = []
    level = result.capital
    for w in result.windows:
        seg = close[w.window.test_start:w.window.test_end]
        rel = seg / seg[0] if len(seg) and seg[0] else np.full(len(seg), np.nan)
        parts.append(level * rel)
        if len(seg) and np.isfinite(rel[-1]):
            level = float(level * rel[-1])
    return np.concatenate(parts) if parts else np.zeros(0)


def equity_figure(result: WalkForwardResult) -> dict[str, Any]:
    times = result.candles.frame.index
    ms = _epoch_ms(times[result.oos_bars]) if len(result.oos_bars) else np.zeros(0)
    equity = np.asarray(result.oos_equity, dtype=np.float64)
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "buy & hold (test windows, chained)",
         "x": _typed(ms), "y": _typed(bench_curve(result)),
         "line": {"color": BENCH_COLOUR, "width": 1, "dash": "dot"}},
        {"type": "scatter", "mode": "lines", "name": "stitched OOS equity", "x": _typed(ms),
         "y": _typed(equity), "line": {"color": EQUITY_COLOUR, "width": 1.6}},
    ]
    n = len(result.windows)
    lane = min(LANE_PIXELS * n + 24, 480)
    height = 72 + 40 + EQUITY_PIXELS + 24 + lane
    split = EQUITY_PIXELS / (EQUITY_PIXELS + 24 + lane)
    equity_domain, lane_domain = (0.0, split), (split + 24 / (EQUITY_PIXELS + 24 + lane), 1.0)
    shapes: list[dict[str, Any]] = []
    lane_x: list[float] = []
    lane_y: list[float] = []
    lane_text: list[str] = []
    for i, w in enumerate(result.windows):
        win = w.window
        train0, train1 = _ms(win.train_first), _ms(win.test_first)
        test0 = train1
        test1 = _ms(win.test_last) + result.candles.bar_seconds * 1000.0
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": test0, "x1": test1,
                       "y0": equity_domain[0], "y1": equity_domain[1], "layer": "below",
                       "line": {"width": 0}, "fillcolor": TEST_SHADE[i % 2]})
        for x0, x1, colour in ((train0, train1, TRAIN_COLOUR), (test0, test1, TEST_COLOUR)):
            shapes.append({"type": "rect", "xref": "x", "yref": "y2", "x0": x0, "x1": x1,
                           "y0": win.number - 0.38, "y1": win.number + 0.38, "layer": "above",
                           "line": {"width": 0}, "fillcolor": colour})
        params = ", ".join(f"{k}={v:g}" for k, v in w.chosen.items()) or "defaults"
        lane_x.append((test0 + test1) / 2)
        lane_y.append(float(win.number))
        lane_text.append(f"window {win.number}: train {fmt_time(win.train_first)} → "
                         f"{fmt_time(win.train_last)}<br>test {fmt_time(win.test_first)} → "
                         f"{fmt_time(win.test_last)}<br>{params}<br>OOS return "
                         f"{fmt_metric('total_return', w.oos_metrics.get('total_return'))}")
    data.append({"type": "scatter", "mode": "markers", "name": "windows", "xaxis": "x",
                 "yaxis": "y2", "x": _typed(np.asarray(lane_x)), "y": _typed(np.asarray(lane_y)),
                 "text": lane_text, "hovertemplate": "%{text}<extra></extra>",
                 "marker": {"size": 4, "color": "#14532d"}, "showlegend": False})
    layout = _base_layout("Stitched out-of-sample equity and the windows "
                          "(blue: train, green: test)", height)
    layout["hovermode"] = "closest"
    layout["yaxis"].update({"title": {"text": "equity"}, "domain": list(equity_domain)})
    layout["yaxis2"] = {"domain": list(lane_domain), "range": [n + 0.6, 0.4],
                        "title": {"text": "window"}, "showgrid": False, "zeroline": False,
                        "tickmode": "linear" if n <= 20 else "auto", "dtick": 1}
    layout["shapes"] = shapes
    return {"data": data, "layout": layout}


def params_figure(result: WalkForwardResult) -> dict[str, Any]:
    names = list(result.param_names)
    numbers = np.asarray([float(w.window.number) for w in result.windows])
    data: list[dict[str, Any]] = []
    layout = _base_layout("Chosen params per window", 120 + 150 * max(len(names), 1))
    layout["hovermode"] = "x unified"
    layout["xaxis"] = {"title": {"text": "window"}, "dtick": 1 if len(numbers) <= 30 else None,
                       "gridcolor": "#e5e7eb"}
    layout["yaxis"] = {"gridcolor": "#e5e7eb"}
    count = max(len(names), 1)
    gap = 0.06
    height = (1.0 - gap * (count - 1)) / count
    for j, name in enumerate(names):
        axis = "y" if j == 0 else f"y{j + 1}"
        key = "yaxis" if j == 0 else f"yaxis{j + 1}"
        values = np.asarray([w.chosen.get(name, np.nan) for w in result.windows],
                            dtype=np.float64)
        data.append({"type": "scatter", "mode": "lines+markers", "name": name,
                     "x": _typed(numbers), "y": _typed(values), "yaxis": axis,
                     "line": {"shape": "hv", "color": OVERLAY_COLOURS[j % len(OVERLAY_COLOURS)]},
                     "marker": {"size": 7}})
        top = 1.0 - j * (height + gap)
        layout[key] = {"domain": [max(0.0, top - height), top], "title": {"text": name},
                       "gridcolor": "#e5e7eb"}
        if j > 0:
            layout[key]["anchor"] = "x"
    if count > 1:
        layout["xaxis"]["anchor"] = f"y{count}"
    if layout["xaxis"]["dtick"] is None:
        del layout["xaxis"]["dtick"]
    return {"data": data, "layout": layout}


def figures(result: WalkForwardResult) -> dict[str, dict[str, Any]]:
    built = [equity_figure(result)]
    if result.param_names:
        built.append(params_figure(result))
    return dict(zip(CHART_IDS, built, strict=False))


def context(result: WalkForwardResult) -> dict[str, Any]:
    candles = result.candles
    times = candles.frame.index
    period = (f"{fmt_time(times[0])} → {fmt_time(times[-1])} UTC" if len(times) else DASH)
    charts = figures(result)
    return {
        "r": result,
        "synthetic": bool(candles.synthetic),
        "source": str(candles.source),
        "fingerprint": str(candles.fingerprint),
        "period": period,
        "bars": f"{len(times):,}",
        "kind": "anchored" if result.anchored else "rolling",
        "goal": objective_goal(result.objective),
        "summary": summary_rows(result),
        "metrics": metric_rows(result.oos_metrics),
        "windows": window_rows(result),
        "stability": stability_rows(result),
        "chart_ids": list(charts),
        "oos_bars": f"{len(result.oos_bars):,}",
        "combinations": f"{result.combinations:,}",
        "figures": charts,
        "reproduce": result.command,
    }


def render_walkforward_html(result: WalkForwardResult) -> str:
    """The report as one self-contained HTML document (same result → same bytes)."""
    ctx = context(result)
    ctx["plotly_js"] = Markup(plotly_js())
    ctx["figures_json"] = Markup(script_json(ctx.pop("figures")))
    ctx["config_json"] = Markup(script_json(PLOTLY_CONFIG))
    return environment().get_template("walkforward.html.j2").render(ctx)
