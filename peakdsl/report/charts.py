"""The backtest report's charts, as plain plotly.js figure dicts (see ``plotting``).

Top to bottom: price and trades, one indicator pane per unit of the lets that are not on the
price scale (``indicators``), equity against buy & hold, drawdown, monthly returns. The time
charts share their dates: the page's script zooms them together and fits each y-axis to what
is in view.

Each time chart carries a ``peak`` entry the page script reads (plotly ignores it): ``zero``
(keep 0 in the y range: the drawdown), ``fixed`` (a fixed y range: the 0–100 oscillators),
``marks`` (values always in range: the levels a rule compares with), and on the price chart
``markers``, the indices of the trade-marker traces, with the density rule:

Trade markers are exact (never downsampled), but hundreds of them bury the candles. Up to
``MARKERS_IN_VIEW`` trades in view they are drawn; above that they are hidden (their legend
entries stay, greyed) until a zoom brings fewer trades into view, or the page's "all" button
shows them anyway. The whole run's count decides the first view.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.results import EXIT_REASONS
from ..metrics import fmt_number, fmt_percent
from .indicators import Pane, indicator_panes
from .plotting import (
    BENCH_COLOUR,
    EQUITY_COLOUR,
    LONG_COLOUR,
    OVERLAY_COLOURS,
    SHORT_COLOUR,
    _base_layout,
    _bucket_arg,
    _bucket_ends,
    _epoch_ms,
    _typed,
    bucket_size,
    drawdown,
    fmt_price,
    fmt_qty,
)

if TYPE_CHECKING:
    from ..backtest import BacktestResult
    from ..compile import models as m

Array = np.ndarray[Any, Any]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PRICE_ID, EQUITY_ID, DRAWDOWN_ID, MONTHLY_ID = CHART_IDS = (
    "chart-price", "chart-equity", "chart-drawdown", "chart-monthly")
MARKERS_IN_VIEW = 200  # trades in view above which the markers hide (see the docstring)
DENSE_MARKERS = 100  # trades above which the markers are drawn smaller
PANE_COLOURS = ("#7c3aed", "#0891b2", "#db2777", "#ca8a04", "#4b5563", "#059669")
LEVEL_COLOUR = "#6b7280"


def pane_id(pane: Pane) -> str:
    return f"chart-ind-{pane.unit}"


# --------------------------------------------------------------------------- price


def price_overlays(result: BacktestResult, units: dict[str, str] | None = None
                   ) -> list[tuple[str, Array]]:
    """Lets that live on the price scale (e.g. moving averages), at most four.

    A let qualifies when it is floating point, of the ``price`` unit when the compiled graph
    says (``units``; without it any let may), and at least 95% of its finite values fall
    within [0.5 × lowest low, 2 × highest high] (a MACD is a price difference, not a price).
    """
    frame = result.candles.frame
    if len(frame) == 0:
        return []
    low = float(np.nanmin(frame["low"].to_numpy(dtype=np.float64)))
    high = float(np.nanmax(frame["high"].to_numpy(dtype=np.float64)))
    chosen = []
    for name, series in result.signals.series.items():
        arr = np.asarray(series)
        if arr.dtype.kind != "f" or arr.shape != (len(frame),):
            continue
        finite = arr[np.isfinite(arr)]
        if len(finite) == 0 or (units is not None and units.get(name) != "price"):
            continue
        inside = np.mean((finite >= 0.5 * low) & (finite <= 2 * high))
        if inside >= 0.95:
            chosen.append((name, arr.astype(np.float64)))
        if len(chosen) == len(OVERLAY_COLOURS):
            break
    return chosen


def _marker_trace(name: str, x: Array, y: Array, text: list[str], symbol: str,
                  colour: str, filled: bool, size: int) -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "markers", "name": name, "x": _typed(x), "y": _typed(y),
        "text": text, "hovertemplate": "%{text}<extra></extra>",
        "marker": {"symbol": symbol if filled else f"{symbol}-open", "size": size,
                   "color": colour, "line": {"width": 1.5, "color": colour}},
    }


def price_figure(result: BacktestResult, overlays: list[tuple[str, Array]]) -> dict[str, Any]:
    frame = result.candles.frame
    n = len(frame)
    k = bucket_size(n)
    ms = _epoch_ms(result.times)
    o, h, low, c = (frame[col].to_numpy(dtype=np.float64) for col in ("open", "high", "low",
                                                                       "close"))
    starts, ends = _bucket_ends(n, k)
    if k == 1:
        candle = (ms, o, h, low, c)
    else:
        candle = (ms[starts], o[starts], np.fmax.reduceat(h, starts),
                  np.fmin.reduceat(low, starts), c[ends])
    label = f"{result.market} {result.timeframe}" + (f" ({k} bars per candle)" if k > 1 else "")
    data: list[dict[str, Any]] = [{
        "type": "candlestick", "name": label,
        "x": _typed(candle[0]), "open": _typed(candle[1]), "high": _typed(candle[2]),
        "low": _typed(candle[3]), "close": _typed(candle[4]),
        "increasing": {"line": {"color": "#16a34a", "width": 1}},
        "decreasing": {"line": {"color": "#dc2626", "width": 1}},
        "whiskerwidth": 0, "opacity": 0.85,
    }]
    for (name, values), colour in zip(overlays, OVERLAY_COLOURS, strict=False):
        xs, ys = (ms, values) if k == 1 else (ms[ends], values[ends])
        data.append({"type": "scatter", "mode": "lines", "name": name, "x": _typed(xs),
                     "y": _typed(ys), "line": {"color": colour, "width": 1.2}})
    first_marker = len(data)
    data.extend(_trade_markers(result, ms))
    layout = _time_layout("Price and trades", 560)
    layout["xaxis"]["rangeslider"] = {"visible": False}
    layout["yaxis"]["title"] = {"text": result.market}
    layout["hovermode"] = "closest"
    markers = list(range(first_marker, len(data)))
    entries = [i for i in markers if data[i]["name"].endswith("entry")]
    return {"data": data, "layout": layout,
            "peak": {"markers": markers, "entries": entries, "limit": MARKERS_IN_VIEW}}


def _trade_markers(result: BacktestResult, ms: Array) -> list[dict[str, Any]]:
    """Entries and exits by side, at their exact bar times and fill prices; hidden (legend
    only) when the run has more than ``MARKERS_IN_VIEW`` trades."""
    t = result.sim.trades
    count = len(t["entry_bar"])
    if count == 0 or len(ms) == 0:
        return []
    entry_bar = t["entry_bar"].astype(np.int64)
    exit_bar = t["exit_bar"].astype(np.int64)
    side = np.asarray(t["side"])
    size = 7 if count > DENSE_MARKERS else 10
    traces = []
    for side_name, is_side, colour, entry_symbol, exit_symbol in (
            ("long", side > 0, LONG_COLOUR, "triangle-up", "triangle-down"),
            ("short", side < 0, SHORT_COLOUR, "triangle-down", "triangle-up")):
        idx = np.flatnonzero(is_side)
        if len(idx) == 0:
            continue
        entry_text = [f"#{i + 1} {side_name} entry @ {fmt_price(float(t['entry_price'][i]))}"
                      f"<br>qty {fmt_qty(float(t['qty'][i]))}" for i in idx]
        exit_text = [f"#{i + 1} {side_name} exit @ {fmt_price(float(t['exit_price'][i]))}"
                     f"<br>{EXIT_REASONS[int(t['exit_reason'][i])]}, pnl "
                     f"{fmt_number(float(t['pnl'][i]))} ({fmt_percent(float(t['return'][i]))})"
                     for i in idx]
        traces.append(_marker_trace(f"{side_name} entry", ms[entry_bar[idx]],
                                    t["entry_price"][idx], entry_text, entry_symbol, colour,
                                    True, size))
        traces.append(_marker_trace(f"{side_name} exit", ms[exit_bar[idx]],
                                    t["exit_price"][idx], exit_text, exit_symbol, colour,
                                    False, size))
    if count > MARKERS_IN_VIEW:
        for trace in traces:
            trace["visible"] = "legendonly"
    return traces


# --------------------------------------------------------------------------- panes


def indicator_figure(result: BacktestResult, pane: Pane) -> dict[str, Any]:
    """One pane: its lets as lines (the value at each bucket's last bar when downsampled) and
    the levels the rules compare them with as dashed lines, labelled on the right."""
    n = len(result.times)
    k = bucket_size(n)
    ms = _epoch_ms(result.times)
    _, ends = _bucket_ends(n, k)
    pick = slice(None) if k == 1 else ends
    data = []
    fixed = pane.look.y_range
    for name, colour in zip(pane.lets, PANE_COLOURS * len(pane.lets), strict=False):
        values = np.asarray(result.signals.series[name], dtype=np.float64)
        fixed = fixed if fixed is not None and _within(values, fixed) else None
        data.append({"type": "scatter", "mode": "lines", "name": name, "x": _typed(ms[pick]),
                     "y": _typed(values[pick]), "line": {"color": colour, "width": 1.2}})
    layout = _time_layout(pane.look.title, 240)
    layout["showlegend"] = True  # name the let even when it is alone
    layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                         "y0": lv.value, "y1": lv.value, "layer": "below",
                         "line": {"color": LEVEL_COLOUR, "width": 1, "dash": "dash"}}
                        for lv in pane.levels]
    layout["annotations"] = [{"xref": "paper", "x": 1, "xanchor": "right", "yref": "y",
                              "y": lv.value, "yanchor": "bottom", "showarrow": False,
                              "text": f"{lv.text} ({_level_text(pane, lv.value)})",
                              "font": {"size": 10, "color": LEVEL_COLOUR}}
                             for lv in pane.levels]
    if pane.look.tickformat:
        layout["yaxis"]["tickformat"] = pane.look.tickformat
    if fixed is not None:
        layout["yaxis"]["range"] = list(fixed)
    return {"data": data, "layout": layout,
            "peak": {"fixed": fixed is not None, "marks": [lv.value for lv in pane.levels]}}


def _within(values: np.ndarray[Any, Any], bounds: tuple[float, float]) -> bool:
    """Whether a pane's fixed range shows every value (Williams %R, an oscillator on
    −100..0, does not fit 0..100: its pane is fitted to the data instead)."""
    finite = values[np.isfinite(values)]
    return finite.size == 0 or bool(bounds[0] <= finite.min() and finite.max() <= bounds[1])


def _level_text(pane: Pane, value: float) -> str:
    """A level as its pane's axis shows it: ``2%`` on a percent pane, ``30`` elsewhere."""
    return f"{value * 100:g}%" if pane.look.tickformat == ".1%" else f"{value:g}"


# --------------------------------------------------------------------------- equity


def equity_figure(result: BacktestResult) -> dict[str, Any]:
    """Strategy equity and buy & hold, both normalised to start at 1 (growth of 1 unit of
    capital), on a linear axis the page can switch to log."""
    equity = np.asarray(result.sim.equity, dtype=np.float64) / result.settings.capital
    n = len(equity)
    k = bucket_size(n)
    ms = _epoch_ms(result.times)
    close = result.candles.frame["close"].to_numpy(dtype=np.float64)
    bench = close / close[0] if n and close[0] else close * np.nan
    _, ends = _bucket_ends(n, k)
    pick = slice(None) if k == 1 else ends
    hover = "%{y:.4f}×<extra>%{fullData.name}</extra>"
    data = [
        {"type": "scatter", "mode": "lines", "name": "buy & hold", "x": _typed(ms[pick]),
         "y": _typed(bench[pick]), "line": {"color": BENCH_COLOUR, "width": 1, "dash": "dot"},
         "hovertemplate": hover},
        {"type": "scatter", "mode": "lines", "name": "strategy equity", "x": _typed(ms[pick]),
         "y": _typed(equity[pick]), "line": {"color": EQUITY_COLOUR, "width": 1.6},
         "hovertemplate": hover},
    ]
    layout = _time_layout("Equity against buy & hold (both start at 1)", 360)
    layout["yaxis"].update({"title": {"text": "growth of 1"}, "type": "linear"})
    return {"data": data, "layout": layout, "peak": {}}


def drawdown_figure(result: BacktestResult) -> dict[str, Any]:
    dd = drawdown(np.asarray(result.sim.equity, dtype=np.float64))
    n = len(dd)
    k = bucket_size(n)
    ms = _epoch_ms(result.times)
    if k > 1:
        deepest = _bucket_arg(dd, k, pick_min=True)
        ms, dd = ms[deepest], dd[deepest]
    data = [{"type": "scatter", "mode": "lines", "name": "drawdown", "x": _typed(ms),
             "y": _typed(dd), "fill": "tozeroy", "fillcolor": "rgba(220,38,38,0.25)",
             "line": {"color": SHORT_COLOUR, "width": 1},
             "hovertemplate": "%{y:.2%}<extra>drawdown</extra>"}]
    layout = _time_layout("Drawdown (underwater)", 260)
    layout["yaxis"].update({"tickformat": ".0%", "title": {"text": "from peak"}})
    layout["showlegend"] = False
    return {"data": data, "layout": layout, "peak": {"zero": True}}


def _time_layout(title: str, height: int) -> dict[str, Any]:
    """The common layout with drags zooming the dates only: the page fits the y-axis."""
    layout = _base_layout(title, height)
    layout["yaxis"]["fixedrange"] = True
    return layout


# --------------------------------------------------------------------------- monthly


def monthly_returns(result: BacktestResult) -> tuple[list[int], list[list[float | None]]]:
    """Years and a year × 12 grid of month returns from the month-end equity (None: no data).

    The first month is measured from the starting capital, every other month from the previous
    month's last equity.
    """
    equity = np.asarray(result.sim.equity, dtype=np.float64)
    times = result.times
    if len(equity) == 0:
        return [], []
    if times.tz is not None:
        times = times.tz_convert("UTC")
    key = np.asarray(times.year, dtype=np.int64) * 12 + np.asarray(times.month, dtype=np.int64) - 1
    last = np.flatnonzero(np.append(key[1:] != key[:-1], True))  # last bar of each month
    month_keys = key[last]
    month_end = equity[last]
    previous = np.concatenate([[result.settings.capital], month_end[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = month_end / previous - 1.0
    years = list(range(int(month_keys[0] // 12), int(month_keys[-1] // 12) + 1))
    grid: list[list[float | None]] = [[None] * 12 for _ in years]
    for mk, r in zip(month_keys, rets, strict=True):
        if math.isfinite(r):
            grid[int(mk // 12) - years[0]][int(mk % 12)] = float(r)
    return years, grid


def monthly_figure(result: BacktestResult) -> dict[str, Any]:
    years, grid = monthly_returns(result)
    text = [["" if v is None else fmt_percent(v, 1) for v in row] for row in grid]
    finite = [abs(v) for row in grid for v in row if v is not None]
    bound = max(finite) if finite else 0.01
    data = [{
        "type": "heatmap", "x": list(MONTHS), "y": [str(y) for y in years], "z": grid,
        "text": text, "texttemplate": "%{text}", "hovertemplate":
            "%{y} %{x}: %{z:.2%}<extra></extra>",
        "colorscale": [[0.0, "#b91c1c"], [0.5, "#f8fafc"], [1.0, "#15803d"]],
        "zmid": 0, "zmin": -bound, "zmax": bound, "xgap": 2, "ygap": 2,
        "showscale": False,
    }]
    layout = _base_layout("Monthly returns", 140 + 34 * max(len(years), 1))
    layout["xaxis"] = {"type": "category", "side": "top"}
    layout["yaxis"] = {"type": "category", "autorange": "reversed"}
    layout["hovermode"] = "closest"
    layout["margin"]["t"] = 96
    return {"data": data, "layout": layout}


# --------------------------------------------------------------------------- all


def let_units(graph: m.Graph | None) -> dict[str, str] | None:
    """Each let's unit in the compiled graph (None without a graph)."""
    if graph is None:
        return None
    return {name: graph.nodes[i].unit for name, i in graph.lets.items()}


def panes_of(result: BacktestResult, graph: m.Graph | None,
             on_price: Collection[str]) -> list[Pane]:
    """The indicator panes (none without the compiled graph: units are not guessed)."""
    if graph is None:
        return []
    return indicator_panes(graph, result.params, on_price)


def figures(result: BacktestResult, graph: m.Graph | None = None) -> dict[str, dict[str, Any]]:
    """Every chart keyed by its (fixed) element id, in page order: price, the indicator
    panes, equity, drawdown, monthly."""
    overlays = price_overlays(result, let_units(graph))
    out = {PRICE_ID: price_figure(result, overlays)}
    for pane in panes_of(result, graph, {name for name, _ in overlays}):
        out[pane_id(pane)] = indicator_figure(result, pane)
    out[EQUITY_ID] = equity_figure(result)
    out[DRAWDOWN_ID] = drawdown_figure(result)
    out[MONTHLY_ID] = monthly_figure(result)
    return out
