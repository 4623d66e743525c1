"""A self-contained, deterministic HTML report of one backtest.

One HTML document with everything inline: plotly.js (the copy bundled with the ``plotly``
package, read from its package data), the figure data as JSON, the CSS. Nothing is fetched
when the page opens, so it works offline and from a mail attachment.

Figures are plain plotly.js dicts built here (no plotly Python objects): numeric arrays are
sent as plotly's typed-array spec (``{"dtype": "f8", "bdata": base64}``), which keeps large
runs compact, and times as epoch milliseconds on ``date`` axes. Every element id is fixed and
nothing depends on the clock, so the same result renders to byte-identical HTML.

Large runs: above ``MAX_CHART_BARS`` bars the time charts are downsampled to about
``TARGET_CHART_POINTS`` points (see ``bucket_size``); trade markers, tables and the monthly
heatmap always use every bar.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..engine.results import EXIT_REASONS, SimSettings
from ..metrics import CATALOGUE, DASH, fmt_number, fmt_percent, format_metric

if TYPE_CHECKING:
    import pandas as pd

    from ..backtest import BacktestResult

Array = np.ndarray[Any, Any]

MAX_CHART_BARS = 20_000  # above this the time charts are downsampled
TARGET_CHART_POINTS = 10_000  # roughly how many points a downsampled chart keeps
MAX_TABLE_TRADES = 500  # above this the trades table shows the first and last half
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CHART_IDS = ("chart-price", "chart-equity", "chart-drawdown", "chart-monthly")
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

# Colours (also used by the CSS in the template).
LONG_COLOUR = "#16a34a"
SHORT_COLOUR = "#dc2626"
EQUITY_COLOUR = "#2563eb"
BENCH_COLOUR = "#94a3b8"
OVERLAY_COLOURS = ("#f59e0b", "#8b5cf6", "#06b6d4", "#ec4899")


# --------------------------------------------------------------------------- formatting


def fmt_price(value: float | None) -> str:
    """Enough decimals for BTC (60,123.45) and for sub-cent altcoins (0.00001234)."""
    if value is None or not math.isfinite(value):
        return DASH
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.2f}"
    if magnitude >= 1:
        return f"{value:,.4f}"
    return f"{value:.6g}"


def fmt_qty(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:.6g}"


def fmt_time(ts: pd.Timestamp) -> str:
    return str(ts.strftime("%Y-%m-%d %H:%M"))


fmt_metric = format_metric  # the catalogue's: the same text as the terminal prints


@dataclass(frozen=True)
class Row:
    """One labelled value in a key/value table; ``note`` is a tooltip / description."""

    label: str
    value: str
    note: str = ""


def metric_rows(metrics: Mapping[str, float | int | None]) -> list[Row]:
    """Known metrics in the catalogue's order (its meaning as the note), then any others in
    the order given."""
    known = [name for name in CATALOGUE if name in metrics]
    extra = [name for name in metrics if name not in CATALOGUE]
    return [Row(name, fmt_metric(name, metrics[name]),
                CATALOGUE[name].doc if name in CATALOGUE else "") for name in known + extra]


def _frac_or_none(value: float) -> str:
    return "none" if math.isnan(value) else fmt_percent(value)


def setting_rows(settings: SimSettings) -> list[Row]:
    """The resolved simulation settings, in readable units."""
    s = settings
    fraction_sizing = s.sizing_mode in ("equity_fraction", "vol_target")
    known: dict[str, Row] = {
        "capital": Row("capital", fmt_number(s.capital), "starting equity, quote currency"),
        "fill": Row("fill", s.fill, "next_open: at the next bar's open; close: at this close"),
        "fees": Row("fees", f"{s.fees * 1e4:.2f} bps", "per fill, of notional"),
        "slippage": Row("slippage", f"{s.slippage * 1e4:.2f} bps", "adverse, per fill"),
        "sizing_mode": Row("sizing_mode", s.sizing_mode),
        "sizing_value": Row("sizing_value", fmt_percent(s.sizing_value) if fraction_sizing
                            else f"{s.sizing_value:g}"),
        "stop_loss": Row("stop_loss", _frac_or_none(s.stop_loss)),
        "take_profit": Row("take_profit", _frac_or_none(s.take_profit)),
        "trailing_stop": Row("trailing_stop", _frac_or_none(s.trailing_stop)),
        "qty_step": Row("qty_step", "none" if s.qty_step == 0 else f"{s.qty_step:g}"),
        "min_notional": Row("min_notional", "none" if s.min_notional == 0
                            else fmt_number(s.min_notional)),
        "warmup": Row("warmup", f"{s.warmup:,} bars", "bars that never signal"),
        "bars_per_year": Row("bars_per_year", f"{s.bars_per_year:,.2f}",
                             "for annualising"),
        "vol_lookback": Row("vol_lookback", f"{s.vol_lookback:,} bars",
                            "for vol-target sizing"),
    }
    rows = []
    for name in type(s).model_fields:
        rows.append(known.get(name) or Row(name, str(getattr(s, name))))
    return rows


def param_rows(params: Mapping[str, float]) -> list[Row]:
    return [Row(name, f"{value:g}") for name, value in params.items()]


@dataclass(frozen=True)
class TradeRow:
    number: int
    entry_time: str
    exit_time: str
    side: str
    bars: str
    qty: str
    entry_price: str
    exit_price: str
    fees: str
    pnl: str
    ret: str
    exit_reason: str
    win: bool


def trade_rows(result: BacktestResult, indices: Iterable[int],
               table: Mapping[str, Array] | None = None) -> list[TradeRow]:
    """Formatted rows for the given trade indices (0-based; shown 1-based) of the closed
    trades, or of ``table`` (the open trade of an ``end_of_data mark`` run)."""
    t = result.sim.trades if table is None else table
    times = result.times
    rows = []
    for i in indices:
        entry, exit_ = int(t["entry_bar"][i]), int(t["exit_bar"][i])
        pnl = float(t["pnl"][i])
        reason = int(t["exit_reason"][i])
        reduced = "reduced" in t and bool(t["reduced"][i])
        rows.append(TradeRow(
            number=i + 1, entry_time=fmt_time(times[entry]), exit_time=fmt_time(times[exit_]),
            side="long" if t["side"][i] > 0 else "short", bars=f"{exit_ - entry:,}",
            qty=fmt_qty(float(t["qty"][i])) + (" (reduced to fit)" if reduced else ""),
            entry_price=fmt_price(float(t["entry_price"][i])),
            exit_price=fmt_price(float(t["exit_price"][i])), fees=fmt_number(float(t["fees"][i])),
            pnl=fmt_number(pnl), ret=fmt_percent(float(t["return"][i])),
            exit_reason=EXIT_REASONS[reason] if 0 <= reason < len(EXIT_REASONS) else str(reason),
            win=pnl > 0,
        ))
    return rows


def open_trade_row(result: BacktestResult) -> TradeRow | None:
    """The position an ``end_of_data mark`` run leaves open, valued at the last close."""
    table = result.sim.open_trades
    if not len(table["entry_bar"]):
        return None
    return trade_rows(result, [0], table)[0]


def run_period(result: BacktestResult) -> str:
    times = result.times
    if len(times) == 0:
        return DASH
    return f"{fmt_time(times[0])} → {fmt_time(times[-1])} UTC"


# --------------------------------------------------------------------------- chart data


def bucket_size(n: int) -> int:
    """Bars per chart point: 1 up to ``MAX_CHART_BARS`` bars, else ceil(n / TARGET)."""
    return 1 if n <= MAX_CHART_BARS else math.ceil(n / TARGET_CHART_POINTS)


def _typed(values: Array) -> dict[str, str]:
    """plotly.js typed-array spec: little-endian float64, base64 — compact and exact."""
    data = np.ascontiguousarray(values, dtype="<f8").tobytes()
    return {"dtype": "f8", "bdata": base64.b64encode(data).decode("ascii")}


def _epoch_ms(times: pd.DatetimeIndex) -> Array:
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return times.as_unit("ms").asi8.astype(np.float64)  # type: ignore[no-any-return]


def _bucket_ends(n: int, k: int) -> tuple[Array, Array]:
    starts = np.arange(0, n, k)
    ends = np.minimum(starts + k, n) - 1
    return starts, ends


def _bucket_arg(values: Array, k: int, pick_min: bool) -> Array:
    """Index of the min (or max) bar within each bucket of ``k`` bars (NaN-safe)."""
    n = len(values)
    pad = (-n) % k
    fill = np.inf if pick_min else -np.inf
    v = np.where(np.isnan(values), fill, values)
    v = np.concatenate([v, np.full(pad, fill)]).reshape(-1, k)
    arg = v.argmin(axis=1) if pick_min else v.argmax(axis=1)
    picked: Array = np.minimum(np.arange(len(arg)) * k + arg, n - 1)
    return picked


def drawdown(equity: Array) -> Array:
    """Underwater curve: equity / running peak - 1 (≤ 0)."""
    if len(equity) == 0:
        return equity.astype(np.float64)
    peak = np.fmax.accumulate(equity.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        dd: Array = np.where(peak > 0, equity / peak - 1.0, np.nan)
    return dd


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


def price_overlays(result: BacktestResult) -> list[tuple[str, Array]]:
    """Lets that live on the price scale (e.g. moving averages), at most four.

    A let qualifies when it is floating point and at least 95% of its finite values fall
    within [0.5 × lowest low, 2 × highest high].
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
        if len(finite) == 0:
            continue
        inside = np.mean((finite >= 0.5 * low) & (finite <= 2 * high))
        if inside >= 0.95:
            chosen.append((name, arr.astype(np.float64)))
        if len(chosen) == len(OVERLAY_COLOURS):
            break
    return chosen


def _base_layout(title: str, height: int) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "y": 0.985, "yanchor": "top",
                  "font": {"size": 15}},
        "height": height,
        "margin": {"l": 64, "r": 24, "t": 72, "b": 40},
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
                 "size": 12, "color": "#1f2937"},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0,
                   "xanchor": "left"},
        "xaxis": {"type": "date", "gridcolor": "#e5e7eb", "showspikes": True},
        "yaxis": {"gridcolor": "#e5e7eb", "zerolinecolor": "#9ca3af"},
    }


def _marker_trace(name: str, x: Array, y: Array, text: list[str], symbol: str,
                  colour: str, filled: bool) -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "markers", "name": name, "x": _typed(x), "y": _typed(y),
        "text": text, "hovertemplate": "%{text}<extra></extra>",
        "marker": {"symbol": symbol if filled else f"{symbol}-open", "size": 10,
                   "color": colour, "line": {"width": 1.5, "color": colour}},
    }


def price_figure(result: BacktestResult) -> dict[str, Any]:
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
    for (name, values), colour in zip(price_overlays(result), OVERLAY_COLOURS, strict=False):
        xs, ys = (ms, values) if k == 1 else (ms[ends], values[ends])
        data.append({"type": "scatter", "mode": "lines", "name": name, "x": _typed(xs),
                     "y": _typed(ys), "line": {"color": colour, "width": 1.2}})
    data.extend(_trade_markers(result, ms))
    layout = _base_layout("Price and trades", 560)
    layout["xaxis"]["rangeslider"] = {"visible": False}
    layout["yaxis"]["title"] = {"text": result.market}
    layout["hovermode"] = "closest"
    return {"data": data, "layout": layout}


def _trade_markers(result: BacktestResult, ms: Array) -> list[dict[str, Any]]:
    """Entries and exits by side, at their exact bar times and fill prices."""
    t = result.sim.trades
    if len(t["entry_bar"]) == 0 or len(ms) == 0:
        return []
    entry_bar = t["entry_bar"].astype(np.int64)
    exit_bar = t["exit_bar"].astype(np.int64)
    side = np.asarray(t["side"])
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
                                    filled=True))
        traces.append(_marker_trace(f"{side_name} exit", ms[exit_bar[idx]],
                                    t["exit_price"][idx], exit_text, exit_symbol, colour,
                                    filled=False))
    return traces


def equity_figure(result: BacktestResult) -> dict[str, Any]:
    equity = np.asarray(result.sim.equity, dtype=np.float64)
    n = len(equity)
    k = bucket_size(n)
    ms = _epoch_ms(result.times)
    close = result.candles.frame["close"].to_numpy(dtype=np.float64)
    bench = close / close[0] * result.settings.capital if n and close[0] else close * np.nan
    _, ends = _bucket_ends(n, k)
    pick = slice(None) if k == 1 else ends
    data = [
        {"type": "scatter", "mode": "lines", "name": "buy & hold", "x": _typed(ms[pick]),
         "y": _typed(bench[pick]), "line": {"color": BENCH_COLOUR, "width": 1, "dash": "dot"}},
        {"type": "scatter", "mode": "lines", "name": "strategy equity", "x": _typed(ms[pick]),
         "y": _typed(equity[pick]), "line": {"color": EQUITY_COLOUR, "width": 1.6}},
    ]
    layout = _base_layout("Equity", 340)
    layout["yaxis"]["title"] = {"text": "equity"}
    return {"data": data, "layout": layout}


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
    layout = _base_layout("Drawdown (underwater)", 260)
    layout["yaxis"].update({"tickformat": ".0%", "title": {"text": "from peak"},
                            "rangemode": "tozero"})
    layout["showlegend"] = False
    return {"data": data, "layout": layout}


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


def figures(result: BacktestResult) -> dict[str, dict[str, Any]]:
    """The four charts, keyed by their (fixed) element ids."""
    built = (price_figure(result), equity_figure(result), drawdown_figure(result),
             monthly_figure(result))
    return dict(zip(CHART_IDS, built, strict=True))


def script_json(value: Any) -> str:
    """JSON safe to place inside a <script> element (no ``<``, ``>``, ``&`` or NaN)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


@cache
def plotly_js() -> str:
    """The plotly.js bundled with the ``plotly`` package, safe to inline in a <script>."""
    text = (files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


# --------------------------------------------------------------------------- page


@cache
def environment() -> Environment:
    return Environment(loader=PackageLoader("peakdsl.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       keep_trailing_newline=True)


def shown_trades(count: int) -> tuple[Sequence[int], Sequence[int]]:
    """All trade indices, or the first and last ``MAX_TABLE_TRADES / 2`` when there are more."""
    if count <= MAX_TABLE_TRADES:
        return range(count), range(0)
    half = MAX_TABLE_TRADES // 2
    return range(half), range(count - half, count)


def context(result: BacktestResult) -> dict[str, Any]:
    """Everything the templates show, already formatted."""
    candles = result.candles
    n = len(candles.frame)
    head, tail = shown_trades(result.sim.trade_count)
    k = bucket_size(n)
    return {
        "r": result,
        "synthetic": bool(candles.synthetic),
        "source": str(candles.source),
        "fingerprint": str(candles.fingerprint),
        "period": run_period(result),
        "bars": f"{n:,}",
        "warmup": f"{result.signals.warmup:,}",
        "bucket": k,
        "max_chart_bars": f"{MAX_CHART_BARS:,}",
        "metrics": metric_rows(result.metrics),
        "settings": setting_rows(result.settings),
        "params": param_rows(result.params),
        "trade_count": result.sim.trade_count,
        "trade_count_text": f"{result.sim.trade_count:,}",
        "trades_head": trade_rows(result, head),
        "trades_tail": trade_rows(result, tail),
        "trades_omitted": f"{result.sim.trade_count - len(head) - len(tail):,}",
        "open_trade": open_trade_row(result),
        "chart_ids": CHART_IDS,
    }


def render_html(result: BacktestResult) -> str:
    """The report as one self-contained HTML document (same result → same bytes)."""
    ctx = context(result)
    # Markup: inserted verbatim into <script> elements; both are made safe for that above
    # (plotly_js escapes "</script", script_json escapes "<", ">" and "&").
    ctx["plotly_js"] = Markup(plotly_js())
    ctx["figures_json"] = Markup(script_json(figures(result)))
    ctx["config_json"] = Markup(script_json(PLOTLY_CONFIG))
    return environment().get_template("report.html.j2").render(ctx)
