"""The boundary types of the simulation stage: settings in, trades and equity out.

``SimSettings`` is everything the bar loop needs, already resolved to plain numbers (params
applied, percentages as fractions); ``SimResult`` is what both the fast simulator and the
slow reference simulator return, so a test can compare them field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Array = np.ndarray[Any, Any]
SizingMode = Literal["equity_fraction", "notional", "quantity", "vol_target"]
EndOfData = Literal["close", "mark"]
Calendar = Literal["always", "weekdays"]
# "open" is the reason of the open-trade record of an `end_of_data mark` run (never closed)
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "end_of_data", "open")
TRADE_COLUMNS = ("entry_bar", "exit_bar", "side", "qty", "entry_price", "exit_price", "fees",
                 "pnl", "return", "exit_reason", "reduced")


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
    end_of_data: EndOfData = "close"  # close a position open at the end, or mark it there
    leverage: float = 1.0  # an entry's notional plus fee may use this multiple of equity
    calendar: Calendar = "always"  # trading days behind the annualisation (metrics)


def no_trades() -> dict[str, Array]:
    """An empty trade table (every column, length 0)."""
    return {c: np.zeros(0) for c in TRADE_COLUMNS}


@dataclass(frozen=True)
class SimResult:
    """Per-bar equity (marked at the close) and position, plus one row per closed trade.

    ``trades`` maps each name in ``TRADE_COLUMNS`` to an array of equal length; ``side`` is
    +1 long / -1 short, ``exit_reason`` an index into ``EXIT_REASONS`` and ``reduced`` 1 for
    an entry cut down to what the account could pay. ``open_trades`` has the same columns and
    at most one row: the position an ``end_of_data mark`` run leaves open, valued at the last
    close (reason ``open``, no exit fee); metrics over trades count closed trades only.
    """

    equity: Array
    position: Array
    trades: dict[str, Array]
    ambiguous_bars: int
    fees_paid: float
    open_trades: dict[str, Array] = field(default_factory=no_trades)

    @property
    def trade_count(self) -> int:
        return len(self.trades["entry_bar"])

    @property
    def orders_reduced(self) -> int:
        """Entries executed with a reduced quantity, the open position's included."""
        return sum(int(np.count_nonzero(np.asarray(t.get("reduced", ())) != 0))
                   for t in (self.trades, self.open_trades))
