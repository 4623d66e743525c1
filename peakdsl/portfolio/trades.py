"""Every component's trades as one table, in exit order, with times and labels."""

from __future__ import annotations

import pandas as pd

from ..backtest import trade_table
from .run import ComponentRun, PortfolioResult


def _frame(run: ComponentRun) -> pd.DataFrame:
    table = trade_table(run.trades, run.open_trades, run.component.candles.frame.index)
    table.insert(0, "market", run.component.config.market.symbol)
    table.insert(0, "component", run.label)
    return table


def trades_frame(result: PortfolioResult) -> pd.DataFrame:
    """Closed trades of every component (and positions an ``end_of_data mark`` component
    left open, reason ``open``), sorted by exit time, then component."""
    frames = [_frame(r) for r in result.components]
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["exit_time", "component"], kind="stable").reset_index(drop=True)
