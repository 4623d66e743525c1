"""book: fills → an account with one shared cash balance and a position per slot.

A *slot* is one strategy on one market (a backtest has one; a portfolio one per component;
two slots may trade the same market). The account and the positions are plain float64
arrays with named columns, so the jitted step can keep them in registers and the bar-by-bar
driver can keep them between calls: the whole state of a run is ``(account, positions,
rate_ring)`` plus the trade rows written so far.

Equity is cash plus every open position marked at its slot's last known price (the bar's
open during the fill points, its close at the mark). Counters that metrics need (fees, trades,
exposed bars, reduced entries, ambiguous bars) and the risk stage's counters live in the
account too.
"""

from __future__ import annotations

import numpy as np

from ._jit import inline
from .results import EXIT_REASONS, TRADE_COLUMNS
from .state import (
    CASH,
    ENTRY_BAR,
    ENTRY_FEE,
    ENTRY_PRICE,
    ENTRY_REDUCED,
    EXTREME,
    FEES,
    FLOW,
    LOSS_STREAK,
    MARK,
    MARKET,
    N_COLUMNS,
    QTY,
    REDUCED,
    SIDE,
    SLEEVE,
    STOP_BAR,
    TRADES,
    FloatArray,
)
from .state import reset_account as _reset_account
from .state import reset_positions as _reset_positions

__all__ = ["book_entry", "book_exit", "equity", "gross_exposure", "open_count", "open_trade_rows",
           "reset_account", "reset_positions"]

_SLOT = TRADE_COLUMNS.index("slot")
_STOP = EXIT_REASONS.index("stop_loss")
_TRAIL = EXIT_REASONS.index("trailing_stop")
reset_account = inline(_reset_account)  # the state layout's own reset, for jitted callers
reset_positions = inline(_reset_positions)

@inline
def equity(account: FloatArray, positions: FloatArray) -> float:
    """Cash plus every open position at its slot's mark (exactly the cash when flat)."""
    value = float(account[CASH])
    for s in range(positions.shape[0]):
        if positions[s, SIDE] != 0.0:
            value += positions[s, SIDE] * positions[s, QTY] * positions[s, MARK]
    return value


@inline
def open_count(positions: FloatArray) -> int:
    count = 0
    for s in range(positions.shape[0]):
        if positions[s, SIDE] != 0.0:
            count += 1
    return count


@inline
def gross_exposure(positions: FloatArray, skip: int, market: float) -> tuple[float, float]:
    """The absolute notional of every open slot but ``skip`` at its mark: in ``market``, and
    in total."""
    same = 0.0
    total = 0.0
    for s in range(positions.shape[0]):
        if s != skip and positions[s, SIDE] != 0.0:
            value = abs(positions[s, QTY] * positions[s, MARK])
            total += value
            if positions[s, MARKET] == market:
                same += value
    return same, total


@inline
def book_entry(account: FloatArray, positions: FloatArray, slot: int, bar: int, side: int,
               fill: float, qty: float, fees: float, reduced: bool) -> None:
    """Open ``slot``'s position: pay notional (long) or receive it (short), and the fee."""
    fee = fees * qty * fill
    account[CASH] -= side * qty * fill + fee
    account[FEES] += fee
    pos = positions[slot]
    pos[SLEEVE] -= side * qty * fill + fee  # NaN (no sleeve) stays NaN
    pos[FLOW] -= side * qty * fill + fee
    pos[SIDE] = side
    pos[QTY] = qty
    pos[ENTRY_PRICE] = fill
    pos[ENTRY_BAR] = bar
    pos[ENTRY_FEE] = fee
    pos[EXTREME] = fill
    pos[ENTRY_REDUCED] = 1.0 if reduced else 0.0
    if reduced:
        account[REDUCED] += 1.0


@inline
def book_exit(account: FloatArray, positions: FloatArray, trades: FloatArray, slot: int,
              bar: int, fill: float, reason: int, fees: float) -> None:
    """Close ``slot``'s position at fill price ``fill`` and write its trade row."""
    pos = positions[slot]
    side = pos[SIDE]
    qty = pos[QTY]
    entry = pos[ENTRY_PRICE]
    fee = fees * qty * fill
    account[CASH] += side * qty * fill - fee
    account[FEES] += fee
    pos[SLEEVE] += side * qty * fill - fee
    pos[FLOW] += side * qty * fill - fee
    total_fees = pos[ENTRY_FEE] + fee
    pnl = side * qty * (fill - entry) - total_fees
    k = int(account[TRADES])
    row = trades[k]
    row[0] = pos[ENTRY_BAR]
    row[1] = bar
    row[2] = side
    row[3] = qty
    row[4] = entry
    row[5] = fill
    row[6] = total_fees
    row[7] = pnl
    row[8] = pnl / (qty * entry)
    row[9] = reason
    row[10] = pos[ENTRY_REDUCED]
    row[_SLOT] = slot
    account[TRADES] = k + 1
    pos[SIDE] = 0.0
    pos[QTY] = 0.0
    pos[LOSS_STREAK] = pos[LOSS_STREAK] + 1.0 if pnl < 0.0 else 0.0
    if reason in (_STOP, _TRAIL):
        pos[STOP_BAR] = bar


def open_trade_rows(positions: FloatArray, last_bar: int) -> FloatArray:
    """Every position still open after the last bar as a trade row marked at its slot's last
    price: exit price that mark, fees the entry fee only (no exit happened), reason ``open``."""
    rows = []
    for slot, pos in enumerate(positions):
        if pos[SIDE] == 0.0:
            continue
        pnl = pos[SIDE] * pos[QTY] * (pos[MARK] - pos[ENTRY_PRICE]) - pos[ENTRY_FEE]
        rows.append([pos[ENTRY_BAR], last_bar, pos[SIDE], pos[QTY], pos[ENTRY_PRICE],
                     pos[MARK], pos[ENTRY_FEE], pnl, pnl / (pos[QTY] * pos[ENTRY_PRICE]),
                     EXIT_REASONS.index("open"), pos[ENTRY_REDUCED], slot])
    return np.array(rows, dtype=np.float64).reshape(-1, N_COLUMNS)
