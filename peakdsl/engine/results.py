"""The boundary types of the simulation stage: settings in, trades and equity out.

``SimSettings`` is everything the bar loop needs, already resolved to plain numbers (params
applied, percentages as fractions); ``SimResult`` is what both the fast simulator and the
slow reference simulator return, so a test can compare them field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Array = np.ndarray[Any, Any]
SizingMode = Literal["equity_fraction", "notional", "quantity", "vol_target"]
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "end_of_data")
TRADE_COLUMNS = ("entry_bar", "exit_bar", "side", "qty", "entry_price", "exit_price", "fees",
                 "pnl", "return", "exit_reason")


@dataclass(frozen=True, slots=True)
class SimSettings:
    """Resolved execution settings for one run (see docs/backtest.md for the semantics)."""

    capital: float = 10_000.0
    fill: Literal["next_open", "close"] = "next_open"
    fees: float = 0.001  # fraction of notional per fill
    slippage: float = 0.0005  # adverse price fraction per fill
    sizing_mode: SizingMode = "equity_fraction"
    sizing_value: float = 1.0  # fraction, quote notional, base quantity or annual vol target
    stop_loss: float = float("nan")  # fraction; NaN = none
    take_profit: float = float("nan")
    trailing_stop: float = float("nan")
    qty_step: float = 0.0  # 0 = no rounding
    min_notional: float = 0.0  # 0 = no minimum
    warmup: int = 0
    bars_per_year: float = 8760.0
    vol_lookback: int = 20  # bars of returns for vol-target sizing


@dataclass(frozen=True)
class SimResult:
    """Per-bar equity (marked at the close) and position, plus one row per closed trade.

    ``trades`` maps each name in ``TRADE_COLUMNS`` to an array of equal length; ``side`` is
    +1 long / -1 short and ``exit_reason`` an index into ``EXIT_REASONS``.
    """

    equity: Array
    position: Array
    trades: dict[str, Array]
    ambiguous_bars: int
    fees_paid: float

    @property
    def trade_count(self) -> int:
        return len(self.trades["entry_bar"])
