"""The state of a run, as plain float64 arrays with named columns (layouts only).

``account``: one row of ``ACCOUNT_SIZE`` floats — cash, the counters metrics read, the
daily-loss bookkeeping and the risk stage's counters by reason. ``positions``: one row of
``POSITION_SIZE`` floats per slot (a strategy on a market). ``rate_ring``: the times of the
last orders, for the order-rate limit. Numbers, not objects, so the jitted step reads and
writes them in place and a bar-by-bar driver keeps them between bars.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..lang.levels import LEVEL_SLOTS
from .results import TRADE_COLUMNS

# the limits of a risk spec, in reason-code order (code 0 is "approved")
RISK_LIMITS = ("max_order_notional", "max_symbol_exposure", "max_total_exposure",
               "max_open_positions", "max_daily_loss", "max_orders_per_minute")
RISK_REASONS = ("approved", "order_notional", "symbol_exposure", "total_exposure",
                "open_positions", "daily_loss", "order_rate")
N_REASONS = len(RISK_REASONS)

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

# account columns
(CASH, FEES, AMBIGUOUS, TRADES, EXPOSED, REDUCED, DAY, DAY_EQUITY, HALTED, LAST_EQUITY,
 RATE_HEAD, REBALANCES, NEXT_REBALANCE) = range(13)
REDUCED_BY = 13  # + reason: entries executed after the risk stage reduced them
DENIED_BY = REDUCED_BY + N_REASONS  # + reason: entries the risk stage denied
UNDEFINED_LEVEL = DENIED_BY + N_REASONS  # entries not taken: a stop or size series was not
# a positive number at the signal bar (``lang.levels``)
# + rule: signals a strategy's trade rules held back (``HOLD_RULES`` order)
HELD_BACK = UNDEFINED_LEVEL + 1
HOLD_RULES = ("min_hold", "cooldown_after_stop", "max_consecutive_losses")
ACCOUNT_SIZE = HELD_BACK + len(HOLD_RULES)

# position columns (one row per slot)
(SIDE, QTY, ENTRY_PRICE, ENTRY_BAR, ENTRY_FEE, EXTREME, ENTRY_REDUCED, MARK,
 MARKET, SLEEVE, FLOW) = range(11)
EXITS = 11  # + j: the position's exits, set at its entry, ``EXIT_LEVELS`` order (NaN: none)
EXIT_LEVELS = LEVEL_SLOTS[:6]  # the stop, target and trail slots, fraction then distance
SIZE_LEVEL = LEVEL_SLOTS.index("size")
STOP_BAR = EXITS + len(EXIT_LEVELS)  # the bar of the slot's last stop-loss or trailing exit
LOSS_STREAK = STOP_BAR + 1  # the slot's losing trades in a row, up to its last exit
POSITION_SIZE = LOSS_STREAK + 1
# SLEEVE: the slot's own cash in a portfolio (its allocation plus what its trades paid and
# received; the sleeves sum to the account's cash). NaN when the slot has no sleeve: a lone
# strategy sizes off the whole account. FLOW: the cash the slot's own trades paid and
# received so far (its profit, with its position's value: what a component contributed).
# EXITS: a stop and a target as a fraction of the entry or a price distance, and a trailing
# stop as a fraction of or a distance from the best price since entry — each from the
# settings or, written as an expression, its value at the signal bar; held for the trade.

N_COLUMNS = len(TRADE_COLUMNS)


def reset_account(account: FloatArray, capital: float) -> None:
    """Make ``account`` a fresh one holding ``capital`` in cash and nothing else (plain
    Python on numbers: the sweep's jitted loop compiles it too, see ``book``)."""
    for i in range(account.shape[0]):
        account[i] = 0.0
    account[CASH] = capital
    account[LAST_EQUITY] = capital
    account[DAY] = -1.0  # no UTC day seen yet
    account[DAY_EQUITY] = capital


def reset_positions(positions: FloatArray) -> None:
    """Flatten every slot (its market stays); no mark yet."""
    for s in range(positions.shape[0]):
        market = positions[s, MARKET]
        for c in range(positions.shape[1]):
            positions[s, c] = 0.0
        positions[s, MARKET] = market
        positions[s, MARK] = math.nan
        positions[s, SLEEVE] = math.nan
        for c in range(EXITS, EXITS + len(EXIT_LEVELS)):
            positions[s, c] = math.nan
        positions[s, STOP_BAR] = -math.inf  # no stop yet: no cooldown


def new_account(capital: float) -> FloatArray:
    account = np.empty(ACCOUNT_SIZE)
    reset_account(account, capital)
    return account


def new_positions(markets: Any) -> FloatArray:
    """Flat positions for slots trading ``markets`` (one market index per slot)."""
    markets = np.asarray(markets, dtype=np.float64).reshape(-1)
    positions = np.zeros((len(markets), POSITION_SIZE))
    positions[:, MARKET] = markets
    reset_positions(positions)
    return positions
