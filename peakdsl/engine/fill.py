"""fill: an approved order → a fill price and quantity under the fill model.

Slippage (always adverse), sizing (fraction of equity, notional, quantity, volatility
target), the account's cash cap (``leverage`` × equity, notional and fee included), the
exchange's precision (quantity step, minimum notional) and the intrabar stop-loss /
take-profit / trailing-stop decision with its gap and ambiguity rules. Pure functions of
numbers: the book applies what they return.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import inline, jit
from .results import EXIT_REASONS
from .state import ENTRY_PRICE, EXITS, EXTREME, SIDE, FloatArray

QTY_STEP_TOLERANCE = 1e-9  # qty / step within this of the next integer counts as that integer
SIGNAL = EXIT_REASONS.index("signal")
STOP = EXIT_REASONS.index("stop_loss")
TARGET = EXIT_REASONS.index("take_profit")
TRAIL = EXIT_REASONS.index("trailing_stop")
END = EXIT_REASONS.index("end_of_data")
MAX_HOLD = EXIT_REASONS.index("max_hold")


@inline
def slipped(price: float, buying: bool, slippage: float) -> float:
    """The fill price of a buy or a sell at ``price``: slippage is always adverse."""
    return price * (1.0 + slippage) if buying else price * (1.0 - slippage)


@inline
def realised_vol(close: FloatArray, signal_bar: int, vol_lookback: int,
                 bars_per_year: float) -> float:
    """Annualised sample stdev of the last ``vol_lookback`` log returns up to ``signal_bar``
    (NaN when fewer exist)."""
    first = signal_bar - vol_lookback + 1  # first return: log(close[first] / close[first-1])
    if vol_lookback < 2 or first < 1:
        return math.nan
    mean = 0.0
    for k in range(first, signal_bar + 1):
        mean += math.log(close[k] / close[k - 1])
    mean /= vol_lookback
    ss = 0.0
    for k in range(first, signal_bar + 1):
        d = math.log(close[k] / close[k - 1]) - mean
        ss += d * d
    return math.sqrt(ss / (vol_lookback - 1)) * math.sqrt(bars_per_year)


@inline
def sized(equity: float, fill: float, close: FloatArray, signal_bar: int, mode: int,
          value: float, fees: float, bars_per_year: float, vol_lookback: int) -> float:
    """The sizing rule's quantity before risk, precision and the cash check: a budget
    (fraction of equity, notional, vol-targeted fraction) buys ``budget / (fill · (1 +
    fees))``, so the budget pays the fee too; a fixed quantity is itself."""
    if mode == 2:
        return value
    if mode == 0:
        budget = equity * value
    elif mode == 1:
        budget = value
    else:
        vol = realised_vol(close, signal_bar, vol_lookback, bars_per_year)
        if not vol > 0.0:
            return 0.0
        budget = equity * min(1.0, value / vol)
    return budget / (fill * (1.0 + fees))


@inline
def fit_to_account(qty: float, price: float, fill: float, buying_power: float, fees: float,
                   qty_step: float, min_notional: float) -> tuple[float, bool]:
    """The quantity the account can pay (notional + fee within ``buying_power``), on the
    exchange's quantity step, and whether the cash cut it; 0 means no fill (nothing left,
    or below the minimum notional at raw price ``price``)."""
    cap = buying_power / (fill * (1.0 + fees))
    reduced = qty > cap
    if reduced:
        qty = cap
    if qty_step > 0.0:
        stepped = np.floor(qty / qty_step + QTY_STEP_TOLERANCE) * qty_step  # float: no int64
        if stepped > cap:  # the rounding tolerance must not lift it over the cap
            stepped -= qty_step
            reduced = True
        qty = stepped
    if not qty > 0.0 or not math.isfinite(qty):
        return 0.0, False
    if min_notional > 0.0 and qty * price < min_notional:
        return 0.0, False
    return qty, reduced


@inline
def _level(entry: float, fraction: float, distance: float, sign: float) -> float:
    """A level ``sign`` × (a fraction of ``entry``, or a price distance) away from ``entry``;
    NaN when neither is set (a position holds at most one of the two)."""
    if not math.isnan(fraction):
        return entry * (1.0 + sign * fraction)
    return entry + sign * distance


@jit
def exit_check(positions: FloatArray, s: int, open_: float, high: float,
               low: float) -> tuple[int, float, int, float]:
    """Intrabar stop / target / trailing decision on one bar for slot ``s``'s position.

    Its exits are its own (``state.EXIT_LEVELS``: stop, target and trail, each a fraction
    or a price distance, NaN when unset, set at its entry). Returns ``(action, price, reason,
    extreme)``: action 0 = stay in (``extreme`` is the updated trailing extreme), 1 = close
    at ``price`` for ``reason``, 2 = the same for an ambiguous bar (stop and target both
    inside it; the stop wins). A gap through a level fills at the open.
    """
    side, entry, extreme = positions[s, SIDE], positions[s, ENTRY_PRICE], positions[s, EXTREME]
    sl, sd = positions[s, EXITS], positions[s, EXITS + 1]
    tp, td = positions[s, EXITS + 2], positions[s, EXITS + 3]
    tr, trd = positions[s, EXITS + 4], positions[s, EXITS + 5]
    reason = STOP
    if side > 0:
        stop = _level(entry, sl, sd, -1.0)
        if math.isnan(stop):
            stop = -math.inf
        trail = _level(extreme, tr, trd, -1.0)
        if trail > stop:
            stop = trail
            reason = TRAIL
        target = _level(entry, tp, td, 1.0)
        if math.isnan(target):
            target = math.inf
        if open_ <= stop:
            return 1, open_, reason, extreme
        if open_ >= target:
            return 1, open_, TARGET, extreme
        if low <= stop and high >= target:
            return 2, stop, reason, extreme
        if low <= stop:
            return 1, stop, reason, extreme
        if high >= target:
            return 1, target, TARGET, extreme
        return 0, 0.0, 0, max(extreme, high)
    stop = _level(entry, sl, sd, 1.0)
    if math.isnan(stop):
        stop = math.inf
    trail = _level(extreme, tr, trd, 1.0)
    if trail < stop:
        stop = trail
        reason = TRAIL
    target = _level(entry, tp, td, -1.0)
    if math.isnan(target):
        target = -math.inf
    if open_ >= stop:
        return 1, open_, reason, extreme
    if open_ <= target:
        return 1, open_, TARGET, extreme
    if high >= stop and low <= target:
        return 2, stop, reason, extreme
    if high >= stop:
        return 1, stop, reason, extreme
    if low <= target:
        return 1, target, TARGET, extreme
    return 0, 0.0, 0, min(extreme, low)
