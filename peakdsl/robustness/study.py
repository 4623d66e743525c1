"""`peak robustness`: how a result holds up when luck, costs, prices and params change.

One study of a strategy or a portfolio (a strategy is studied as a portfolio of one, which
simulates exactly as ``peak backtest`` does), driven by the spec's `robustness {}` block with
command-line overrides (``Settings``):

1. the *base* run, as ``peak backtest`` runs it;
2. Monte-Carlo: its closed trades reshuffled, bootstrapped and thinned (``skip``), its bar
   returns block-bootstrapped (``montecarlo``; the chunks of each method may run on Dask and
   give the same bytes); the headline ``mc_*`` figures are the trade bootstrap's;
3. parameter jitter: every neighbour one step away from each param of each component (a
   param without a step has none; a neighbour that breaks a ``require`` is skipped);
4. stress: the spec's scenarios (``scenarios.SCENARIOS``), each a full re-run on changed
   prices, costs or timing.

Everything is seeded and deterministic. The result's ``metrics`` are named figures in the
metric catalogue (``mc_p05_return``, ``mc_prob_loss``, ``stress_worst_return``,
``jitter_worst_sharpe``, …) that promotion criteria read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..compile import models as m
from ..engine.evaluate import require_masks
from ..engine.stats import Metric, bars_per_year
from ..portfolio.plan import Component, PortfolioPlan
from ..portfolio.run import PortfolioResult, exit_order, run_portfolio
from . import montecarlo as mc
from .scenarios import SCENARIOS, window, worst_moment
from .summary import Distribution, all_metrics, finite_or_none

TRADE_METHODS = ("reshuffle", "bootstrap", "skip")
SHOWN = ("total_return", "max_drawdown", "sharpe", "trades")  # per variant run


@dataclass(frozen=True)
class Settings:
    """What a study does: the spec's `robustness {}` block with the command line's changes."""

    runs: int
    seed: int
    skip: float
    block_size: int | None
    ruin: float
    jitter: bool
    stress: tuple[str, ...]

    @classmethod
    def of(cls, block: m.Robustness, **changes: Any) -> Settings:
        base = cls(block.monte_carlo, block.seed, block.skip, block.block_size, block.ruin,
                   block.jitter, tuple(block.stress))
        return replace(base, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Variant:
    """One re-run: a stress scenario or a parameter neighbour, and what it gave."""

    kind: str  # "stress" | "jitter"
    name: str  # the scenario, or `component.param=value`
    doc: str
    metrics: dict[str, Metric]


@dataclass(frozen=True)
class StudyResult:
    plan: PortfolioPlan
    settings: Settings
    base: PortfolioResult
    distributions: dict[str, Distribution]
    variants: tuple[Variant, ...]
    metrics: dict[str, Metric]
    notes: tuple[str, ...] = ()
    timing: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- Monte-Carlo


def mc_jobs(base: PortfolioResult, settings: Settings) -> tuple[dict[str, mc.Job], list[str]]:
    """The Monte-Carlo jobs of a base run, and notes on what could not be resampled."""
    sim, notes = base.sim, []
    pnl = sim.trades["pnl"][exit_order(base)]
    span = float(sim.clock.times[-1] - sim.clock.times[0])
    jobs: dict[str, mc.Job] = {}
    if pnl.size >= 2:
        returns = mc.trade_returns(pnl, base.plan.capital)
        per_year = mc.per_year(int(pnl.size), span)
        for method in TRADE_METHODS:
            jobs[method] = mc.make_job(method, returns, runs=settings.runs, seed=settings.seed,
                                       periods_per_year=per_year,
                                       share=settings.skip if method == "skip" else 0.0)
    else:
        notes.append(f"{pnl.size} closed trade(s): nothing to resample over trades")
    equity = sim.equity
    bar_returns = equity[1:] / equity[:-1] - 1.0
    if bar_returns.size >= 2 and np.isfinite(bar_returns).all():
        jobs["block"] = mc.make_job("block", bar_returns, runs=settings.runs,
                                    seed=settings.seed,
                                    periods_per_year=bars_per_year(base.timeframe_seconds),
                                    block_size=settings.block_size)
    return jobs, notes


def run_chunks(jobs: Mapping[str, mc.Job], each: Callable[[], None] | None = None
               ) -> dict[str, Distribution]:
    """Every job's chunks in this process (``each`` after every chunk: a progress bar)."""
    out = {}
    for method, job in jobs.items():
        chunks = []
        for lo, hi in mc.chunk_bounds(job.runs):
            chunks.append(mc.compute_chunk(job, lo, hi))
            if each is not None:
                each()
        out[method] = mc.combine(job, chunks)
    return out


# ---------------------------------------------------------------- variants


def neighbours(c: Component) -> list[tuple[str, float]]:
    """(param, value) one step either side of each stepped param, in range and within the
    strategy's requires."""
    out = []
    for p in c.config.params:
        if p.step is None:
            continue
        for value in (c.params[p.name] - p.step, c.params[p.name] + p.step):
            if not p.low - 1e-12 <= value <= p.high + 1e-12:
                continue
            trial = dict(c.params) | {p.name: value}
            if all(bool(holds) for _, holds in require_masks(c.config, trial)):
                out.append((p.name, float(value)))
    return out


def _shown(result: PortfolioResult) -> dict[str, Metric]:
    return {k: result.metrics.get(k) for k in SHOWN}


def jitter_runs(plan: PortfolioPlan, fee_bps: float | None) -> list[Variant]:
    out = []
    for i, c in enumerate(plan.components):
        for name, value in neighbours(c):
            changed = replace(c, params=dict(c.params) | {name: value})
            parts = list(plan.components)
            parts[i] = changed
            result = run_portfolio(plan.with_components(parts), fee_bps)
            out.append(Variant("jitter", f"{c.label}.{name}={value:g}",
                               f"{name} {c.params[name]:g} → {value:g}", _shown(result)))
    return out


def stress_runs(plan: PortfolioPlan, base: PortfolioResult, names: Sequence[str],
                fee_bps: float | None) -> list[Variant]:
    start, end = window(base.times, worst_moment(base.times, base.sim.values))
    out = []
    for name in names:
        scenario = SCENARIOS[name]
        changed = plan
        if scenario.candles is not None:
            change = scenario.candles
            changed = plan.with_components(
                [replace(c, candles=change(c.candles, start, end)) for c in plan.components])
        result = run_portfolio(changed, fee_bps, scenario.adjust)
        out.append(Variant("stress", name, scenario.doc, _shown(result)))
    return out


# ---------------------------------------------------------------- summary


def _worst(values: Sequence[Metric]) -> Metric:
    defined = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return min(defined) if defined else None


def _median(values: Sequence[Metric]) -> Metric:
    defined = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.median(defined)) if defined else None


def summary_metrics(variants: Sequence[Variant]) -> dict[str, Metric]:
    stress = [v for v in variants if v.kind == "stress"]
    jitter = [v for v in variants if v.kind == "jitter"]
    return {
        "stress_worst_return": _worst([v.metrics["total_return"] for v in stress]),
        "stress_worst_max_drawdown": _worst([v.metrics["max_drawdown"] for v in stress]),
        "jitter_worst_sharpe": _worst([v.metrics["sharpe"] for v in jitter]),
        "jitter_median_sharpe": _median([v.metrics["sharpe"] for v in jitter]),
    }


class Steps:
    """Counts a study's steps for a progress callback ``(done, total)``: the base run, every
    Monte-Carlo chunk, the jitter runs and the stress runs."""

    def __init__(self, progress: Callable[[int, int], None] | None) -> None:
        self.progress = progress
        self.done, self.total = 0, 3

    def expect(self, jobs: Mapping[str, mc.Job]) -> None:
        self.total = 3 + sum(len(mc.chunk_bounds(job.runs)) for job in jobs.values())

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def study(plan: PortfolioPlan, settings: Settings, fee_bps: float | None = None,
          distribute: Callable[[Mapping[str, mc.Job], Callable[[], None]],
                               dict[str, Distribution]] | None = None,
          progress: Callable[[int, int], None] | None = None) -> StudyResult:
    """Run the whole study (module docstring). ``distribute(jobs, tick)`` computes the
    Monte-Carlo jobs elsewhere (Dask), calling ``tick`` per chunk; ``progress(done, total)``
    follows the steps."""
    steps = Steps(progress)
    clock = time.perf_counter()
    base = run_portfolio(plan, fee_bps)
    jobs, notes = mc_jobs(base, settings)
    steps.expect(jobs)
    steps.tick()
    distributions = (distribute(jobs, steps.tick) if distribute is not None
                     else run_chunks(jobs, steps.tick))
    t_mc = time.perf_counter()
    variants = jitter_runs(plan, fee_bps) if settings.jitter else []
    steps.tick()
    variants += stress_runs(plan, base, settings.stress, fee_bps)
    steps.tick()
    figures: dict[str, Metric] = {k: finite_or_none(float(v)) if v is not None else None
                                  for k, v in all_metrics(distributions, settings.ruin).items()}
    figures.update(summary_metrics(variants))
    done = time.perf_counter()
    return StudyResult(plan, settings, base, distributions, tuple(variants), figures,
                       tuple(notes), {"monte_carlo": t_mc - clock, "variants": done - t_mc,
                                      "total": done - clock})
