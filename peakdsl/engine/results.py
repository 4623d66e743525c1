"""The boundary types of the simulation stage: settings in, trades and equity out.

``SimSettings`` is everything the bar loop needs, already resolved to plain numbers (params
applied, percentages as fractions); ``SimResult`` is what both the fast simulator and the
slow reference simulator return, so a test can compare them field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .settings import Calendar, EndOfData, SimSettings, SizingMode

__all__ = ["EXIT_REASONS", "TRADE_COLUMNS", "Calendar", "Deferred", "EndOfData", "SimResult",
           "SimSettings", "SizingMode", "no_trades"]

Array = np.ndarray[Any, Any]
# "open" is the reason of the open-trade record of an `end_of_data mark` run (never closed)
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "end_of_data", "open",
                "max_hold")
TRADE_COLUMNS = ("entry_bar", "exit_bar", "side", "qty", "entry_price", "exit_price", "fees",
                 "pnl", "return", "exit_reason", "reduced", "slot")


def no_trades() -> dict[str, Array]:
    """An empty trade table (every column, length 0)."""
    return {c: np.zeros(0) for c in TRADE_COLUMNS}


class Deferred(Protocol):
    """An array a run can rebuild from what it kept, handed to ``SimResult`` in its place and
    built on the first read (picklable: a plain object holding the parts)."""

    def build(self) -> Array: ...


class _Deferrable:
    """A dataclass field given as an array or as a ``Deferred``, built on the first read.

    The specialised bar loop gives ``position`` this way: writing it bar by bar took a fifth
    of that loop's time (100k bars: 0.08 ms of 0.39), and a backtest reads it only for the
    reports (``fast_slot.TradePosition`` rebuilds it from the trades, the same doubles).
    A data descriptor installed on the class after the dataclass is made (the field has no
    default, and type checkers see a plain array); the frozen dataclass's ``__init__``
    stores through ``__set__``."""

    def __init__(self, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Array:
        if obj is None:
            raise AttributeError(self.slot[1:])  # an instance field: no value on the class
        value = obj.__dict__[self.slot]
        if not isinstance(value, np.ndarray) and hasattr(value, "build"):
            value = value.build()
            obj.__dict__[self.slot] = value
        return value  # type: ignore[no-any-return]

    def __set__(self, obj: Any, value: Array | Deferred) -> None:
        obj.__dict__[self.slot] = value


@dataclass(frozen=True)
class SimResult:
    """Per-bar equity (marked at the close) and position, plus one row per closed trade.

    ``trades`` maps each name in ``TRADE_COLUMNS`` to an array of equal length; ``side`` is
    +1 long / -1 short, ``exit_reason`` an index into ``EXIT_REASONS`` and ``reduced`` 1 for
    an entry cut down to what the account could pay or the risk limits allow, ``slot`` the
    account slot (0 in a single-strategy run). ``open_trades`` has the same columns and
    at most one row: the position an ``end_of_data mark`` run leaves open, valued at the last
    close (reason ``open``, no exit fee); metrics over trades count closed trades only.
    """

    equity: Array
    position: Array  # may be given as a ``Deferred`` (``_Deferrable``, installed below)
    trades: dict[str, Array]
    ambiguous_bars: int
    fees_paid: float
    open_trades: dict[str, Array] = field(default_factory=no_trades)
    risk: dict[str, int] = field(default_factory=dict)  # entries reduced / denied, by reason
    # entries not taken: a stop or size expression was not a positive number at the signal bar
    undefined_levels: int = 0
    # signals the trade rules held back, by rule (``state.HOLD_RULES``; only the non-zero)
    held_back: dict[str, int] = field(default_factory=dict)
    # bars with a non-zero position, when the loop counted them (None: count ``position``)
    exposed: int | None = None
    # the bar returns of ``equity`` and its drawdown state (``stats.MARKS``), when the loop
    # kept them while marking it (None: ``compute_metrics`` makes its own pass)
    bar_returns: Array | None = None
    marks: Array | None = None

    @property
    def exposed_bars(self) -> int:
        """Bars with a non-zero position (NaN counts): the loop's count when it gave one,
        else counted here (which builds a deferred ``position``)."""
        if self.exposed is not None:
            return self.exposed
        return int(np.count_nonzero(np.asarray(self.position, dtype=np.float64)))

    @property
    def trade_count(self) -> int:
        return len(self.trades["entry_bar"])

    @property
    def orders_reduced(self) -> int:
        """Entries executed with a reduced quantity, the open position's included."""
        return sum(int(np.count_nonzero(np.asarray(t.get("reduced", ())) != 0))
                   for t in (self.trades, self.open_trades))


setattr(SimResult, "position", _Deferrable("position"))  # noqa: B010  # after the dataclass
