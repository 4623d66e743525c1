"""A self-contained, deterministic HTML report of one backtest.

One HTML document with everything inline: plotly.js (the copy bundled with the ``plotly``
package, read from its package data), the figure data as JSON, the CSS, the page script.
Nothing is fetched when the page opens, so it works offline and from a mail attachment.

The charts are ``charts`` (plain plotly.js dicts with typed arrays, times as epoch
milliseconds); the shared primitives are ``plotting`` (re-exported here for the other
reports). Every element id is fixed and nothing depends on the clock, so the same result
renders to byte-identical HTML.

Two inputs come from outside the result: the compiled graph (``graph``: which lets get an
indicator pane, and the levels the rules compare them with — ``indicators``) and the command
line that reproduces the run (``reproduce``: ``peakdsl.repro.command_line``). Without them
the page has no indicator panes and no reproduce line.

Large runs: above ``MAX_CHART_BARS`` bars the time charts are downsampled to about
``TARGET_CHART_POINTS`` points (see ``bucket_size``); trade markers, tables and the monthly
heatmap always use every bar.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..engine.results import EXIT_REASONS, SimSettings
from ..engine.trade_stats import buy_hold_return, holding_bars
from ..metrics import CATALOGUE, DASH, fmt_number, fmt_percent, format_metric
from .charts import (
    CHART_IDS,
    MARKERS_IN_VIEW,
    MONTHS,
    figures,
    monthly_returns,
    price_overlays,
)
from .plotting import (
    BENCH_COLOUR,
    EQUITY_COLOUR,
    LONG_COLOUR,
    MAX_CHART_BARS,
    OVERLAY_COLOURS,
    PLOTLY_CONFIG,
    SHORT_COLOUR,
    TARGET_CHART_POINTS,
    _base_layout,
    _bucket_arg,
    _bucket_ends,
    _epoch_ms,
    _typed,
    bucket_size,
    drawdown,
    fmt_price,
    fmt_qty,
    fmt_time,
    plotly_js,
    script_json,
)

if TYPE_CHECKING:
    from ..backtest import BacktestResult
    from ..compile import models as m

__all__ = [  # the primitives the other reports import from here
    "BENCH_COLOUR", "CHART_IDS", "EQUITY_COLOUR", "LONG_COLOUR", "MAX_CHART_BARS", "MONTHS",
    "OVERLAY_COLOURS", "PLOTLY_CONFIG", "SHORT_COLOUR", "TARGET_CHART_POINTS", "Row",
    "_base_layout", "_bucket_arg", "_bucket_ends", "_epoch_ms", "_typed", "bucket_size",
    "drawdown", "environment", "figures", "fmt_metric", "fmt_price", "fmt_qty", "fmt_time",
    "metric_rows", "monthly_returns", "plotly_js", "price_overlays", "render_html",
    "script_json",
]

Array = np.ndarray[Any, Any]

MAX_TABLE_TRADES = 500  # above this the trades table shows the first and last half

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


def _level_rows(graph: m.Graph | None) -> dict[str, Row]:
    """Stops and sizes written as expressions (``Graph.levels``), as the graph renders them:
    they replace the settings' numbers, which are unset (NaN) for them."""
    if graph is None:
        return {}
    from ..lang.levels import LEVEL_BASIS
    from ..review.logic import Renderer

    render = Renderer(graph)
    out = {}
    for slot, node in graph.levels.items():
        key = "sizing_value" if slot == "size" else slot.removesuffix("_distance")
        out[key] = Row(key, render(node), f"{LEVEL_BASIS[slot]}, read at the signal bar")
    return out


def setting_rows(settings: SimSettings, graph: m.Graph | None = None) -> list[Row]:
    """The resolved simulation settings, in readable units (a stop or size written as an
    expression shown as written in the graph)."""
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
        **{key: Row(key, "off" if getattr(s, key) == 0 else f"{getattr(s, key):,} bars")
           for key in ("min_hold", "max_hold", "cooldown_after_stop")},
        "max_consecutive_losses": Row("max_consecutive_losses",
                                      "off" if s.max_consecutive_losses == 0
                                      else f"{s.max_consecutive_losses:,} trades"),
        **_level_rows(graph),
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


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class VersusRow:
    """One figure of the strategy beside the same figure of buy & hold."""

    label: str
    strategy: str
    bench: str


def versus_rows(result: BacktestResult) -> list[VersusRow]:
    """Return, max drawdown and time in the market of the strategy and of buy & hold (the
    capital in the market at the first close, valued at every close, no costs)."""
    close = result.candles.frame["close"].to_numpy(dtype=np.float64)
    bench = buy_hold_return(close)
    bench_dd = float(np.nanmin(drawdown(close))) if len(close) else None
    m = result.metrics
    total = m.get("total_return")
    excess = None if total is None or bench is None else float(total) - bench
    return [
        VersusRow("total return", fmt_metric("total_return", total),
                  fmt_metric("buy_hold_return", bench)),
        VersusRow("max drawdown", fmt_metric("max_drawdown", m.get("max_drawdown")),
                  fmt_metric("max_drawdown", bench_dd)),
        VersusRow("time in the market", fmt_metric("exposure", m.get("exposure")),
                  fmt_percent(1.0 if len(close) else None)),
        VersusRow("strategy − buy & hold", DASH if excess is None
                  else f"{round(excess * 100, 2) + 0.0:+,.2f} pp", ""),
    ]


@dataclass(frozen=True)
class DurationRow:
    label: str
    bars: str
    time: str


def fmt_duration(seconds: float) -> str:
    """``1d 13h 30m``, ``4h``, ``45m``: days, hours and minutes, zero parts left out."""
    minutes = round(seconds / 60)
    parts = [(minutes // 1440, "d"), (minutes % 1440 // 60, "h"), (minutes % 60, "m")]
    text = " ".join(f"{value}{unit}" for value, unit in parts if value)
    return text or "0m"


def duration_rows(result: BacktestResult) -> list[DurationRow]:
    """Mean, median and longest holding time of the closed trades, in bars and in time."""
    held = holding_bars(result.sim.trades).astype(np.float64)
    if len(held) == 0:
        return []
    bar = float(result.candles.bar_seconds)
    figures_ = (("mean", float(np.mean(held))), ("median", float(np.median(held))),
                ("longest", float(held.max())))
    return [DurationRow(label, f"{value:,.1f}" if label != "longest" else f"{value:,.0f}",
                        fmt_duration(value * bar)) for label, value in figures_]


def report_metrics(result: BacktestResult) -> dict[str, float | int | None]:
    """The run's metrics, with buy & hold from the candles when the run left it undefined
    (a result computed without its closes): the report always has them."""
    metrics = dict(result.metrics)
    if metrics.get("buy_hold_return") is None and len(result.candles.frame):
        close = result.candles.frame["close"].to_numpy(dtype=np.float64)
        metrics["buy_hold_return"] = buy_hold_return(close)
    return metrics


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


def context(result: BacktestResult, reproduce: str | None = None) -> dict[str, Any]:
    """Everything the templates show, already formatted. ``reproduce``: the command line
    that reproduces the run (``peakdsl.repro.command_line``), shown when given."""
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
        "metrics": metric_rows(report_metrics(result)),
        "versus": versus_rows(result),
        "durations": duration_rows(result),
        "settings": setting_rows(result.settings, result.graph),
        "params": param_rows(result.params),
        "trade_count": result.sim.trade_count,
        "trade_count_text": f"{result.sim.trade_count:,}",
        "trades_head": trade_rows(result, head),
        "trades_tail": trade_rows(result, tail),
        "trades_omitted": f"{result.sim.trade_count - len(head) - len(tail):,}",
        "open_trade": open_trade_row(result),
        "reproduce": reproduce,
        "markers_limit": f"{MARKERS_IN_VIEW:,}",
        "markers_limit_n": MARKERS_IN_VIEW,
    }


def render_html(result: BacktestResult, *, graph: m.Graph | None = None,
                reproduce: str | None = None) -> str:
    """The report as one self-contained HTML document (same inputs → same bytes).

    ``graph``: the run's compiled graph (``artifact.config.graph``), for the indicator panes;
    ``reproduce``: the command line that reproduces the run."""
    ctx = context(result, reproduce)
    charts = figures(result, graph)
    ctx["chart_ids"] = list(charts)
    ctx["panes"] = [cid for cid in charts if cid.startswith("chart-ind-")]
    # Markup: inserted verbatim into <script> elements; both are made safe for that above
    # (plotly_js escapes "</script", script_json escapes "<", ">" and "&").
    ctx["plotly_js"] = Markup(plotly_js())
    ctx["figures_json"] = Markup(script_json(charts))
    ctx["config_json"] = Markup(script_json(PLOTLY_CONFIG))
    return environment().get_template("report.html.j2").render(ctx)
