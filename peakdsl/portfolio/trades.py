"""Every component's trades as one table, in exit order, with times and labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine.results import EXIT_REASONS
from .run import ComponentRun, PortfolioResult


def _frame(run: ComponentRun) -> pd.DataFrame:
    t = {k: np.concatenate([run.trades[k], run.open_trades[k]]) for k in run.trades}
    times = run.component.candles.frame.index
    return pd.DataFrame({
        "component": run.label, "market": run.component.config.market.symbol,
        "entry_time": times[t["entry_bar"].astype(int)],
        "exit_time": times[t["exit_bar"].astype(int)],
        "side": np.where(t["side"] > 0, "long", "short"),
        "qty": t["qty"], "entry_price": t["entry_price"], "exit_price": t["exit_price"],
        "fees": t["fees"], "pnl": t["pnl"], "return": t["return"],
        "exit_reason": [EXIT_REASONS[int(i)] for i in t["exit_reason"]],
        "reduced": t["reduced"] != 0,
    })


def trades_frame(result: PortfolioResult) -> pd.DataFrame:
    """Closed trades of every component (and positions an ``end_of_data mark`` component
    left open, reason ``open``), sorted by exit time, then component."""
    frames = [_frame(r) for r in result.components]
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["exit_time", "component"], kind="stable").reset_index(drop=True)
