"""What a portfolio run says about its parts: per-component figures, contributions,
correlation, exposure by market and how close the run came to each risk limit.

All of it is read from the clock's series (``SlotsResult``): equity is the capital plus
every component's profit so far (``pnl``), so contributions add up to the whole — the
components' contributions to return sum to the total return, their contributions to the
maximum drawdown (their profit change from the drawdown's peak to its trough, over the
equity at the peak) sum to the maximum drawdown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..engine.results import EXIT_REASONS
from ..engine.simulate import epoch_seconds
from ..engine.stats import Metric, bars_per_year, compute_metrics
from .run import ComponentRun, PortfolioResult, as_sim_result

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
MINUTE = 60.0
_SIGNAL = EXIT_REASONS.index("signal")


@dataclass(frozen=True)
class ComponentFigures:
    """One component's row of the portfolio tables."""

    label: str
    strategy: str
    market: str
    timeframe: str
    weight: float
    artifact_sha256: str
    params: dict[str, float]
    metrics: dict[str, Metric]  # the backtest catalogue on its own sleeve's path
    pnl: float
    contribution_return: float  # of the portfolio's capital
    contribution_drawdown: float  # share of the max drawdown, signed like it (<= 0 hurts)


def drawdown_window(equity: FloatArray) -> tuple[int, int]:
    """(peak, trough) points of the deepest drawdown (equal when there is none)."""
    peaks = np.maximum.accumulate(equity)
    depth = equity / peaks - 1.0
    trough = int(np.argmin(depth))
    peak = int(np.argmax(equity[: trough + 1])) if trough > 0 else 0
    return peak, trough


def component_figures(result: PortfolioResult) -> list[ComponentFigures]:
    sim, capital = result.sim, result.plan.capital
    peak, trough = drawdown_window(sim.equity)
    out = []
    for run in result.components:
        pnl = sim.pnl[run.slot]
        c = run.component
        out.append(ComponentFigures(
            label=run.label, strategy=c.config.name, market=c.config.market.symbol,
            timeframe=c.config.timeframe, weight=c.weight, artifact_sha256=c.artifact_sha256,
            params=dict(sorted(run.signals.params.items())),
            metrics=_own_metrics(result, run), pnl=float(pnl[-1]),
            contribution_return=float(pnl[-1] / capital),
            contribution_drawdown=float((pnl[trough] - pnl[peak]) / sim.equity[peak])))
    return out


def _own_metrics(result: PortfolioResult, run: ComponentRun) -> dict[str, Metric]:
    """The catalogue on the component alone: its weight of the capital plus its profit."""
    sim = result.sim
    start = result.plan.capital * run.component.weight
    fees = float(run.trades["fees"].sum() + run.open_trades["fees"].sum())
    series = as_sim_result(start + sim.pnl[run.slot], sim.values[run.slot], run.trades,
                           run.open_trades, fees)
    settings = run.settings.replace(capital=start,
                                    bars_per_year=bars_per_year(result.timeframe_seconds))
    return compute_metrics(series, settings, result.timeframe_seconds,
                           close=run.component.candles.frame["close"].to_numpy())


def correlation(result: PortfolioResult) -> pd.DataFrame:
    """Pearson correlation of the components' profit changes point by point (NaN where a
    component's profit never moves)."""
    labels = [r.label for r in result.components]
    steps = np.diff(result.sim.pnl, axis=1)
    out = np.full((len(labels), len(labels)), np.nan)
    moving = steps.std(axis=1) > 0
    if moving.sum() > 0:
        idx = np.flatnonzero(moving)
        out[np.ix_(idx, idx)] = np.atleast_2d(np.corrcoef(steps[idx]))
    return pd.DataFrame(out, index=labels, columns=labels)


def exposure_by_market(result: PortfolioResult) -> pd.DataFrame:
    """Gross exposure of each market as a fraction of equity at every point."""
    sim = result.sim
    columns: dict[str, Any] = {}
    for run in result.components:
        market = run.component.config.market.symbol
        columns[market] = columns.get(market, 0.0) + np.abs(sim.values[run.slot])
    equity = np.where(sim.equity > 0, sim.equity, np.nan)
    return pd.DataFrame({k: v / equity for k, v in sorted(columns.items())}, index=result.times)


def allocation(result: PortfolioResult) -> pd.DataFrame:
    """Each component's sleeve as a fraction of equity at every point."""
    equity = np.where(result.sim.equity > 0, result.sim.equity, np.nan)
    return pd.DataFrame({r.label: result.sim.sleeves[r.slot] / equity
                         for r in result.components}, index=result.times)


def utilisation(result: PortfolioResult) -> dict[str, float | None]:
    """The most each risk limit was used during the run, as a fraction of the limit (1.0 =
    at the limit); None for a limit the run did not set."""
    limits = result.limits
    used = {
        "max_order_notional": _largest_order(result),
        "max_symbol_exposure": float(np.nanmax(exposure_by_market(result).to_numpy(),
                                               initial=0.0)),
        "max_total_exposure": _largest_gross(result),
        "max_open_positions": float((result.sim.values != 0).sum(axis=0).max(initial=0)),
        "max_daily_loss": _worst_day(result),
        "max_orders_per_minute": float(_busiest_minute(result)),
    }
    out: dict[str, float | None] = {}
    for name, value in used.items():
        limit = float(getattr(limits, name))
        out[name] = value / limit if math.isfinite(limit) and limit > 0 else None
    return out


def _largest_order(result: PortfolioResult) -> float:
    notional = [np.abs(t["qty"] * t["entry_price"]) for r in result.components
                for t in (r.trades, r.open_trades)]
    return float(max((a.max(initial=0.0) for a in notional), default=0.0))


def _largest_gross(result: PortfolioResult) -> float:
    equity = np.where(result.sim.equity > 0, result.sim.equity, np.nan)
    return float(np.nanmax(np.abs(result.sim.values).sum(axis=0) / equity, initial=0.0))


def _worst_day(result: PortfolioResult) -> float:
    """The largest fall of equity below its level at a UTC day's first point, over that."""
    equity = pd.Series(result.sim.equity, index=result.times)
    day = equity.index.floor("D")
    first = equity.groupby(day).transform("first")
    loss = (first - equity) / first
    return float(max(loss.max(), 0.0)) if len(loss) else 0.0


def order_times(run: ComponentRun) -> FloatArray:
    """When each order the rate limit counts was placed — entries and signal exits (stops,
    targets and the end of data are not rate-limited) — at the bar's open (``next_open``)
    or close (``close``)."""
    opens = epoch_seconds(run.component.candles.frame.index)
    bar = float(run.component.candles.bar_seconds)
    close_fill = run.settings.fill == "close"
    shift = bar if close_fill else 0.0
    t = run.trades
    entries = opens[t["entry_bar"].astype(np.int64)] + shift
    signal_exits = t["exit_bar"][t["exit_reason"] == _SIGNAL].astype(np.int64)
    exits = opens[signal_exits] + shift
    held = run.open_trades
    late = opens[held["entry_bar"].astype(np.int64)] + shift
    return np.concatenate([entries, exits, late])


def _busiest_minute(result: PortfolioResult) -> int:
    """Most orders in any 60-second window (what ``max_orders_per_minute`` counts)."""
    times = np.sort(np.concatenate([order_times(r) for r in result.components]))
    if times.size == 0:
        return 0
    ends = np.searchsorted(times, times + MINUTE, side="left")
    return int((ends - np.arange(times.size)).max())
