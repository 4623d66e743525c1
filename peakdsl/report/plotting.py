"""Plotting primitives shared by every HTML report (backtest, sweep, walk-forward, portfolio,
robustness): the colours, plotly's typed-array spec, epoch-millisecond time axes, bucketed
downsampling of long runs, the common layout, JSON safe inside ``<script>``, and the
plotly.js bundled with the ``plotly`` package (inlined once per page: nothing is fetched when
a report opens, so it works offline).

Figures are plain plotly.js dicts (no plotly Python objects): numeric arrays go as
``{"dtype": "f8", "bdata": base64}``, which keeps large runs compact and exact.
"""

from __future__ import annotations

import base64
import json
import math
import re
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import numpy as np

from ..metrics import DASH

if TYPE_CHECKING:
    import pandas as pd

Array = np.ndarray[Any, Any]

MAX_CHART_BARS = 20_000  # above this the time charts are downsampled
TARGET_CHART_POINTS = 10_000  # roughly how many points a downsampled chart keeps
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
