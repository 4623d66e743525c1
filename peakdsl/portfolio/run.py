"""Run a resolved portfolio: every component's signals, one account, one clock.

Each component's compiled Program is evaluated on its own candles with its own params (the
same ``evaluate`` a backtest uses) and becomes a slot of ``engine.timeline.simulate_slots``:
a sleeve of its weight of the capital, its own settings, its market for the symbol-exposure
limit; the portfolio's risk spec judges every entry on the whole account, and the sleeves are
restored to their weights on the calendar (``rebalance 7d``) and on drift (``rebalance drift
5%``). ``analysis`` turns the result into what reports and ``--json`` show.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..backtest import risk_note, sim_settings
from ..data.frames import inputs_for
from ..engine.evaluate import Signals, evaluate
from ..engine.results import SimResult, SimSettings
from ..engine.risk import NO_LIMITS, RiskLimits
from ..engine.simulate import epoch_seconds
from ..engine.stats import Metric, bars_per_year, compute_metrics
from ..engine.timeline import Rebalance, Slot, SlotsResult, simulate_slots
from .plan import Component, PortfolioPlan


@dataclass(frozen=True)
class ComponentRun:
    """One component's part of a portfolio run."""

    component: Component
    slot: int
    signals: Signals
    settings: SimSettings
    trades: dict[str, np.ndarray[Any, Any]]  # its closed trades (engine columns)
    open_trades: dict[str, np.ndarray[Any, Any]]

    @property
    def label(self) -> str:
        return self.component.label


@dataclass(frozen=True)
class PortfolioResult:
    """Everything reports, the registry and ``--json`` need about one portfolio run."""

    plan: PortfolioPlan
    sim: SlotsResult
    times: pd.DatetimeIndex  # the clock's points (UTC); equity[0] is the capital
    components: tuple[ComponentRun, ...]
    metrics: dict[str, Metric]
    limits: RiskLimits = NO_LIMITS
    warnings: tuple[str, ...] = ()
    timing: dict[str, float] = field(default_factory=dict)
    engine_version: str = __version__

    @property
    def equity(self) -> pd.Series:
        return pd.Series(self.sim.equity, index=self.times, name="equity")

    @property
    def timeframe_seconds(self) -> int:
        """The finest component timeframe: the clock's step, what metrics annualise by."""
        return min(c.component.candles.bar_seconds for c in self.components)


def _slot(component: Component, signals: Signals, settings: SimSettings, market: int
          ) -> Slot:
    frame = component.candles.frame
    return Slot(frame["open"].to_numpy(), frame["high"].to_numpy(), frame["low"].to_numpy(),
                frame["close"].to_numpy(), epoch_seconds(frame.index),
                component.candles.bar_seconds, signals.rules, settings, market,
                component.weight, signals.levels, signals.position_rules)


def limits_of(plan: PortfolioPlan) -> RiskLimits:
    """The limits the plan's risk spec sets (none without one)."""
    return RiskLimits.from_config(plan.risk) if plan.risk is not None else NO_LIMITS


def rebalance_of(plan: PortfolioPlan) -> Rebalance | None:
    """The plan's rebalancing; None for a lone strategy (it sizes off the whole account)."""
    if plan.strategy:
        return None
    cfg = plan.config
    return Rebalance(float(cfg.rebalance_seconds or 0), float(cfg.rebalance_drift or 0.0))


# A change to each component's signals and settings before the simulation (a stress
# scenario: orders one bar late, fees doubled); identity by default.
Adjust = Callable[[Signals, SimSettings], tuple[Signals, SimSettings]]


def run_portfolio(plan: PortfolioPlan, fee_bps: float | None = None,
                  adjust: Adjust | None = None) -> PortfolioResult:
    """Evaluate every component, simulate them on one account and measure the whole."""
    clock = time.perf_counter()
    markets = sorted({c.config.market.symbol for c in plan.components})
    evaluated = []
    for c in plan.components:
        signals = evaluate(c.config, inputs_for(c.config, c.candles), c.params)
        settings = sim_settings(c.config, signals.params, signals.warmup,
                                plan.capital * c.weight, fee_bps)
        if adjust is not None:
            signals, settings = adjust(signals, settings)
        evaluated.append((c, signals, settings))
    t_signals = time.perf_counter()
    limits = limits_of(plan)
    slots = [_slot(c, sig, st, markets.index(c.config.market.symbol))
             for c, sig, st in evaluated]
    sim = simulate_slots(slots, plan.capital, limits=limits, rebalance=rebalance_of(plan))
    t_sim = time.perf_counter()
    runs = tuple(ComponentRun(c, s, sig, st, _of_slot(sim.trades, s),
                              _of_slot(sim.open_trades, s))
                 for s, (c, sig, st) in enumerate(evaluated))
    times = pd.DatetimeIndex(pd.to_datetime(sim.clock.times.astype(np.int64), unit="s",
                                            utc=True), name="time")
    result = PortfolioResult(plan, sim, times, runs, {}, limits)
    metrics = portfolio_metrics(result)
    done = time.perf_counter()
    return PortfolioResult(
        plan, sim, times, runs, metrics, limits, _warnings(plan, sim),
        {"signals": t_signals - clock, "simulate": t_sim - t_signals,
         "metrics": done - t_sim, "total": done - clock})


def _of_slot(trades: dict[str, np.ndarray[Any, Any]], slot: int
             ) -> dict[str, np.ndarray[Any, Any]]:
    mine = trades["slot"] == slot
    return {k: v[mine] for k, v in trades.items()}


def _warnings(plan: PortfolioPlan, sim: SlotsResult) -> tuple[str, ...]:
    out = [f"{d.code}: {d.message}" for d in plan.warnings]
    synthetic = {c.candles.source for c in plan.components if c.candles.synthetic}
    if synthetic:
        out.append("data source: synthetic demo candles for every component")
    if sim.risk and plan.risk is not None:
        out.append(risk_note(plan.risk.name, sim.risk))
    return tuple(out)


def as_sim_result(equity: np.ndarray[Any, Any], position: np.ndarray[Any, Any],
                  trades: dict[str, np.ndarray[Any, Any]],
                  open_trades: dict[str, np.ndarray[Any, Any]], fees: float,
                  ambiguous: int = 0) -> SimResult:
    """A clock's series in the shape the metrics core reads (the point after each close)."""
    return SimResult(equity=equity[1:], position=position[1:], trades=trades,
                     ambiguous_bars=ambiguous, fees_paid=fees, open_trades=open_trades)


def portfolio_metrics(result: PortfolioResult) -> dict[str, Metric]:
    """The backtest catalogue on the portfolio's equity and all its components' trades
    (ordered by exit time), annualised by the finest component timeframe."""
    sim = result.sim
    order = exit_order(result)
    trades = {k: v[order] for k, v in sim.trades.items()}
    gross = np.abs(sim.values).sum(axis=0)
    settings = SimSettings(capital=result.plan.capital,
                           bars_per_year=bars_per_year(result.timeframe_seconds))
    run = as_sim_result(sim.equity, gross, trades, sim.open_trades, sim.fees_paid,
                        sim.ambiguous_bars)
    markets = [c.component.candles.frame["close"].to_numpy() for c in result.components]
    close = markets[0] if len(markets) == 1 else None  # buy & hold: of one market only
    return compute_metrics(run, settings, result.timeframe_seconds, close=close)


def exit_order(result: PortfolioResult) -> np.ndarray[Any, Any]:
    """Trades by the time their exit bar opened, then by slot (a stable order)."""
    trades = result.sim.trades
    when = np.empty(len(trades["slot"]))
    for run in result.components:
        mine = trades["slot"] == run.slot
        opens = epoch_seconds(run.component.candles.frame.index)
        when[mine] = opens[trades["exit_bar"][mine].astype(np.int64)]
    return np.lexsort((trades["slot"], when))
