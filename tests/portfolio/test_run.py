"""A portfolio run: one component at 100 % is that strategy's backtest, bar for bar; the
parts add up to the whole; the risk spec acts on the shared account."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from peakdsl import api
from peakdsl.api import compile_spec
from peakdsl.compile import models as m
from peakdsl.portfolio import analysis
from peakdsl.portfolio.plan import resolve_portfolio
from peakdsl.portfolio.run import PortfolioResult, run_portfolio
from peakdsl.resolve import risk_config


def portfolio(project: Path, name: str, body: str, risk: str | None = None
              ) -> PortfolioResult:
    path = project / "specs" / "portfolios" / f"{name}.peak"
    path.write_text(f"portfolio {name} {{\n{body}\n}}\n")
    artifact = compile_spec(str(path), project)
    assert isinstance(artifact, m.PortfolioArtifact)
    limits = risk_config(risk, project, "USDT", name) if risk else None
    return run_portfolio(resolve_portfolio(str(path), artifact, project, risk=limits))


@pytest.mark.parametrize("rebalance", ["", "rebalance 7d\n    rebalance drift 5%"])
def test_one_component_is_its_strategys_backtest(project: Path, rebalance: str) -> None:
    alone = portfolio(project, "alone", "capital 10000 USDT\n    component ma_crossover weight "
                      f"100% with {{ fast = 15 }}\n    {rebalance}")
    solo = api.backtest(str(project / "specs/strategies/ma_crossover.peak"), root=project,
                        overrides=["fast=15"], record=False).result
    np.testing.assert_array_equal(alone.sim.equity[1:], solo.sim.equity)
    assert alone.sim.equity[0] == 10_000.0
    for column in solo.sim.trades:
        np.testing.assert_array_equal(alone.sim.trades[column], solo.sim.trades[column])
    assert alone.metrics == solo.metrics
    figures, = analysis.component_figures(alone)  # capital + its profit: equal to rounding
    assert figures.metrics == pytest.approx(solo.metrics, rel=1e-12)


def test_the_parts_add_up(project: Path) -> None:
    pair = portfolio(project, "pair", "capital 10000 USDT\n    component ma_crossover weight "
                     "50%\n    component vol_breakout weight 50%\n    rebalance 3d")
    figures = analysis.component_figures(pair)
    assert sum(f.contribution_return for f in figures) == pytest.approx(
        pair.metrics["total_return"], abs=1e-12)
    assert sum(f.contribution_drawdown for f in figures) == pytest.approx(
        pair.metrics["max_drawdown"], abs=1e-12)
    assert sum(f.metrics["trades"] for f in figures) == pair.metrics["trades"]  # type: ignore
    np.testing.assert_allclose(pair.sim.equity, 10_000.0 + pair.sim.pnl.sum(axis=0),
                               rtol=1e-12)
    alloc = analysis.allocation(pair)
    np.testing.assert_allclose(alloc.sum(axis=1), 1.0, rtol=1e-9)
    corr = analysis.correlation(pair)
    assert corr.shape == (2, 2) and corr.iloc[0, 0] == 1.0 and -1 < corr.iloc[0, 1] < 1
    assert pair.sim.rebalances == 69  # every 3 days over 208 days of 1h demo bars


def test_the_risk_spec_cuts_entries_on_the_shared_account(project: Path) -> None:
    (project / "specs" / "risk" / "one_at_a_time.peak").write_text(
        "risk one_at_a_time {\n    max_order_notional 100000 USDT\n"
        "    max_symbol_exposure 100%\n    max_total_exposure 100%\n"
        "    max_open_positions 1\n    max_daily_loss 50%\n    max_orders_per_minute 100\n}\n")
    body = ("capital 10000 USDT\n    component ma_crossover weight 50%\n"
            "    component vol_breakout weight 50%")
    free = portfolio(project, "pair", body)
    held = portfolio(project, "pair", body, risk="one_at_a_time")
    assert not free.sim.risk and held.sim.risk["denied_open_positions"] > 0
    open_at_once = (held.sim.values != 0).sum(axis=0)
    assert open_at_once.max() == 1 and (free.sim.values != 0).sum(axis=0).max() == 2
    assert analysis.utilisation(held)["max_open_positions"] == 1.0
    assert analysis.utilisation(free)["max_open_positions"] is None
