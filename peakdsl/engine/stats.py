"""Run statistics: one pure function from a ``SimResult`` to the metric table.

Definitions (docs/backtest.md, "Metrics"): the equity curve is the starting capital followed
by the per-bar equity, so a run of ``n`` bars has ``n`` bar returns
``r[t] = E[t] / E[t-1] - 1``; annualisation uses ``bars_per_year = 365 * 86400 /
timeframe_seconds`` (crypto trades every day). Every value is a finite float, an int or
``None`` (undefined: e.g. a Sharpe ratio of a flat curve), so the result is JSON-safe.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from .results import SimResult, SimSettings

YEAR_SECONDS = 365 * 86_400
METRIC_KEYS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar",
               "max_drawdown", "max_drawdown_bars", "profit_factor", "win_rate", "expectancy",
               "trades", "avg_trade", "best_trade", "worst_trade", "exposure", "fees_paid",
               "ambiguous_bars")

Metric = float | int | None


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _longest_drawdown(curve: npt.NDArray[np.float64]) -> int:
    """The longest run of consecutive points strictly below the running peak."""
    peak = -math.inf
    run = longest = 0
    for v in curve.tolist():
        if v >= peak:
            peak = v
            run = 0
        else:
            run += 1
            longest = max(longest, run)
    return longest


def compute_metrics(sim: SimResult, settings: SimSettings,
                    timeframe_seconds: int) -> dict[str, Metric]:
    """All run metrics (keys: ``METRIC_KEYS``); ``None`` where a metric is undefined."""
    if timeframe_seconds <= 0:
        raise ValueError("timeframe_seconds must be positive")
    bpy = YEAR_SECONDS / timeframe_seconds
    equity = np.asarray(sim.equity, dtype=np.float64)
    curve = np.concatenate([[float(settings.capital)], equity])
    n = len(equity)
    out: dict[str, Metric] = dict.fromkeys(METRIC_KEYS)

    initial, final = curve[0], curve[-1]
    if initial > 0:
        out["total_return"] = _finite(final / initial - 1.0)
        if n > 0:
            if final <= 0:
                out["cagr"] = -1.0
            else:  # exp(log) form: a huge annualised growth is None (inf), not an overflow
                log_growth = bpy / n * math.log(final / initial)
                out["cagr"] = _finite(math.expm1(log_growth)) if log_growth < 700 else None
    if n > 0 and initial > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = curve[1:] / curve[:-1] - 1.0
        if n >= 2 and np.isfinite(r).all():
            mean = float(np.mean(r))
            std = float(np.std(r, ddof=1))
            downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
            out["volatility"] = _finite(std * math.sqrt(bpy))
            if std > 0:
                out["sharpe"] = _finite(mean / std * math.sqrt(bpy))
            if downside > 0:
                out["sortino"] = _finite(mean / downside * math.sqrt(bpy))
        peaks = np.maximum.accumulate(curve)
        drawdown = float(np.min(curve / peaks - 1.0))
        out["max_drawdown"] = _finite(drawdown)
        out["max_drawdown_bars"] = _longest_drawdown(curve)
        cagr = out["cagr"]
        if drawdown < 0 and cagr is not None:
            out["calmar"] = _finite(float(cagr) / abs(drawdown))
        out["exposure"] = _finite(np.count_nonzero(np.asarray(sim.position) != 0) / n)

    pnl = np.asarray(sim.trades["pnl"], dtype=np.float64)
    returns = np.asarray(sim.trades["return"], dtype=np.float64)
    count = len(pnl)
    out["trades"] = count
    if count:
        gross_profit = float(pnl[pnl > 0].sum())
        gross_loss = float(-pnl[pnl < 0].sum())
        if gross_loss > 0:
            out["profit_factor"] = _finite(gross_profit / gross_loss)
        out["win_rate"] = _finite(np.count_nonzero(pnl > 0) / count)
        out["expectancy"] = out["avg_trade"] = _finite(np.mean(returns))
        out["best_trade"] = _finite(np.max(returns))
        out["worst_trade"] = _finite(np.min(returns))
    out["fees_paid"] = _finite(sim.fees_paid)
    out["ambiguous_bars"] = int(sim.ambiguous_bars)
    return out
