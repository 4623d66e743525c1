"""The fast bar-loop simulator: signals + OHLC + settings → trades, equity and position.

One ``numba.njit(cache=True)`` loop over plain float64 / bool arrays implements the execution
semantics of ``docs/backtest.md`` (the contract); ``reference_sim.reference_simulate`` is the
slow, obvious implementation of the same text, and a property test requires both to agree.

Per bar ``t`` the loop does, in order:

1. ``fill next_open``: the fill point at ``open[t]`` for the signals of bar ``t - 1``;
2. the intrabar stop-loss / take-profit / trailing-stop check (positions filled before ``t``);
3. ``fill close``: the fill point at ``close[t]`` for the signals of bar ``t``;
4. on the last bar, the ``end_of_data`` close of a position still open (``end_of_data
   close``; with ``mark`` it stays open and ``simulate`` reports it as the open trade);
5. the mark: ``equity[t] = cash + qty * close[t]``, ``position[t] = qty`` (signed).

Settings and signals are converted to arrays and scalars here, outside the jitted code. Every
setting is a runtime argument (never a compile-time constant) and ``simulate`` hands the
jitted code read-only contiguous arrays whatever it was given, so one compiled signature
serves every fill mode, sizing mode, end-of-data choice and caller: the on-disk numba cache a
first backtest writes is hit by all later ones (a writable array where the cached code was
compiled for a read-only one, as pandas' copy-on-write columns are, would compile the whole
loop again).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from .results import EXIT_REASONS, TRADE_COLUMNS, SimResult, SimSettings

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_F = TypeVar("_F", bound=Callable[..., Any])
_A = TypeVar("_A", bound=np.ndarray[Any, Any])

RULE_SLOTS = ("entry_long", "exit_long", "entry_short", "exit_short")
SIZING_CODES = {"equity_fraction": 0, "notional": 1, "quantity": 2, "vol_target": 3}
# the string settings and their values (``check_settings``)
CHOICES: dict[str, tuple[str, ...]] = {
    "sizing_mode": tuple(SIZING_CODES), "fill": ("next_open", "close"),
    "end_of_data": ("close", "mark"), "calendar": ("always", "weekdays")}
QTY_STEP_TOLERANCE = 1e-9  # qty / step within this of the next integer counts as that integer

# exit reasons (indices into EXIT_REASONS) and trade columns, as numba compile-time constants
_SIGNAL = EXIT_REASONS.index("signal")
_STOP = EXIT_REASONS.index("stop_loss")
_TARGET = EXIT_REASONS.index("take_profit")
_TRAIL = EXIT_REASONS.index("trailing_stop")
_END = EXIT_REASONS.index("end_of_data")
_NCOL = len(TRADE_COLUMNS)

# slots of the mutable state vector shared by the jitted helpers
(_CASH, _SIDE, _QTY, _ENTRY_PRICE, _ENTRY_BAR, _ENTRY_FEE, _EXTREME, _FEES, _AMBIG, _NTRADES,
 _EXPOSED, _ENTRY_REDUCED, _REDUCED) = range(13)
_NSTATE = 13
# public names for callers of ``loop`` (the sweep engine)
NSTATE = _NSTATE
STATE_FEES, STATE_AMBIGUOUS, STATE_TRADES, STATE_EXPOSED = _FEES, _AMBIG, _NTRADES, _EXPOSED
STATE_REDUCED = _REDUCED


def _jit(fn: _F) -> _F:
    """``numba.njit(cache=True)`` keeping the Python signature for the type checker."""
    return cast(_F, numba.njit(cache=True, nogil=True)(fn))


def _inline(fn: _F) -> _F:
    """A fill helper, inlined into the bar loop at numba IR level (fewer refcounted calls)."""
    return cast(_F, numba.njit(cache=True, nogil=True, inline="always")(fn))


@_inline
def _slipped(price: float, buying: bool, slippage: float) -> float:
    """The fill price of a buy or a sell at ``price``: slippage is always adverse."""
    return price * (1.0 + slippage) if buying else price * (1.0 - slippage)


@_inline
def _open(state: FloatArray, bar: int, side: int, fill: float, qty: float, fees: float,
          reduced: bool) -> None:
    fee = fees * qty * fill
    state[_CASH] -= side * qty * fill + fee
    state[_SIDE] = side
    state[_QTY] = qty
    state[_ENTRY_PRICE] = fill
    state[_ENTRY_BAR] = bar
    state[_ENTRY_FEE] = fee
    state[_EXTREME] = fill
    state[_FEES] += fee
    state[_ENTRY_REDUCED] = 1.0 if reduced else 0.0
    if reduced:
        state[_REDUCED] += 1.0


@_inline
def _close(state: FloatArray, trades: FloatArray, bar: int, price: float, reason: int,
           fees: float, slippage: float) -> None:
    side = state[_SIDE]
    qty = state[_QTY]
    entry = state[_ENTRY_PRICE]
    fill = _slipped(price, side < 0, slippage)
    fee = fees * qty * fill
    state[_CASH] += side * qty * fill - fee
    state[_FEES] += fee
    total_fees = state[_ENTRY_FEE] + fee
    pnl = side * qty * (fill - entry) - total_fees
    k = int(state[_NTRADES])
    row = trades[k]
    row[0] = state[_ENTRY_BAR]
    row[1] = bar
    row[2] = side
    row[3] = qty
    row[4] = entry
    row[5] = fill
    row[6] = total_fees
    row[7] = pnl
    row[8] = pnl / (qty * entry)
    row[9] = reason
    row[10] = state[_ENTRY_REDUCED]
    state[_NTRADES] = k + 1
    state[_SIDE] = 0.0
    state[_QTY] = 0.0


@_inline
def _realised_vol(close: FloatArray, signal_bar: int, vol_lookback: int,
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


@_inline
def _sized(equity: float, fill: float, close: FloatArray, signal_bar: int, mode: int,
           value: float, fees: float, bars_per_year: float, vol_lookback: int) -> float:
    """The sizing mode's quantity before precision and the cash check: a budget (fraction
    of equity, notional, vol-targeted fraction) buys ``budget / (fill · (1 + fees))``, so the
    budget pays the fee too; a fixed quantity is itself."""
    if mode == 2:
        return value
    if mode == 0:
        budget = equity * value
    elif mode == 1:
        budget = value
    else:
        vol = _realised_vol(close, signal_bar, vol_lookback, bars_per_year)
        if not vol > 0.0:
            return 0.0
        budget = equity * min(1.0, value / vol)
    return budget / (fill * (1.0 + fees))


@_inline
def _quantity(equity: float, price: float, fill: float, close: FloatArray, signal_bar: int,
              mode: int, value: float, fees: float, leverage: float, qty_step: float,
              min_notional: float, bars_per_year: float, vol_lookback: int
              ) -> tuple[float, bool]:
    """Entry quantity at raw price ``price`` / fill price ``fill`` and whether it was
    reduced to fit ``leverage · equity``; a quantity of 0 means no entry."""
    qty = _sized(equity, fill, close, signal_bar, mode, value, fees, bars_per_year,
                 vol_lookback)
    cap = leverage * equity / (fill * (1.0 + fees))  # notional + fee <= leverage · equity
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


@_inline
def _fill_point(state: FloatArray, trades: FloatArray, signal_bar: int, bar: int, price: float,
                allow_entry: bool, go_long: bool, exit_long: bool, go_short: bool,
                exit_short: bool, close: FloatArray, fees: float, slippage: float, mode: int,
                value: float, leverage: float, qty_step: float, min_notional: float,
                bars_per_year: float, vol_lookback: int) -> None:
    """Act on the signals of ``signal_bar`` (a bar at or after the warm-up; the four rule
    values passed in) at ``price`` on ``bar``: exit, then enter."""
    if go_long and go_short:  # ambiguous: both entries cancel
        go_long = False
        go_short = False
    held = int(state[_SIDE])
    if (held > 0 and (exit_long or go_short)) or (held < 0 and (exit_short or go_long)):
        _close(state, trades, bar, price, _SIGNAL, fees, slippage)
    if not allow_entry or state[_SIDE] != 0.0:
        return
    side = 0
    if go_long and held <= 0:
        side = 1
    elif go_short and held >= 0:
        side = -1
    if side == 0:
        return
    fill = _slipped(price, side > 0, slippage)
    qty, reduced = _quantity(state[_CASH], price, fill, close, signal_bar, mode, value, fees,
                             leverage, qty_step, min_notional, bars_per_year, vol_lookback)
    if qty > 0.0:
        _open(state, bar, side, fill, qty, fees, reduced)


@_jit
def _exit_check(side: float, entry: float, extreme: float, open_: float, high: float,
                low: float, stop_loss: float, take_profit: float,
                trailing_stop: float) -> tuple[int, float, int, float]:
    """Intrabar stop / target / trailing decision on one bar, from scalars only.

    Returns ``(action, price, reason, extreme)``: action 0 = stay in (``extreme`` is the
    updated trailing extreme), 1 = close at ``price`` for ``reason``, 2 = the same for an
    ambiguous bar (stop and target both inside it; the stop wins).
    """
    reason = _STOP
    if side > 0:
        stop = -math.inf
        if not math.isnan(stop_loss):
            stop = entry * (1.0 - stop_loss)
        if not math.isnan(trailing_stop):
            trail = extreme * (1.0 - trailing_stop)
            if trail > stop:
                stop = trail
                reason = _TRAIL
        target = math.inf if math.isnan(take_profit) else entry * (1.0 + take_profit)
        if open_ <= stop:
            return 1, open_, reason, extreme
        if open_ >= target:
            return 1, open_, _TARGET, extreme
        if low <= stop and high >= target:
            return 2, stop, reason, extreme
        if low <= stop:
            return 1, stop, reason, extreme
        if high >= target:
            return 1, target, _TARGET, extreme
        return 0, 0.0, 0, max(extreme, high)
    stop = math.inf
    if not math.isnan(stop_loss):
        stop = entry * (1.0 + stop_loss)
    if not math.isnan(trailing_stop):
        trail = extreme * (1.0 + trailing_stop)
        if trail < stop:
            stop = trail
            reason = _TRAIL
    target = -math.inf if math.isnan(take_profit) else entry * (1.0 - take_profit)
    if open_ >= stop:
        return 1, open_, reason, extreme
    if open_ <= target:
        return 1, open_, _TARGET, extreme
    if high >= stop and low <= target:
        return 2, stop, reason, extreme
    if high >= stop:
        return 1, stop, reason, extreme
    if low <= target:
        return 1, target, _TARGET, extreme
    return 0, 0.0, 0, min(extreme, low)


@_jit
def loop(open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray,
         entry_long: BoolArray, exit_long: BoolArray, entry_short: BoolArray,
         exit_short: BoolArray, capital: float, fill_close: bool, fees: float, slippage: float,
         mode: int, value: float, stop_loss: float, take_profit: float, trailing_stop: float,
         qty_step: float, min_notional: float, warmup: int, bars_per_year: float,
         vol_lookback: int, mark_end: bool, leverage: float, equity: FloatArray,
         position: FloatArray, trades: FloatArray, state: FloatArray) -> None:
    """The bar loop into caller-owned buffers (reused across runs by the sweep engine).

    ``equity`` has ``len(close)`` floats, ``trades`` ``len(close)`` rows; ``position`` is
    either that long or empty (not recorded). ``state`` (``_NSTATE`` floats) is reset here
    and ends with the cash, fees, ambiguous bars, trade count, exposed bars and reduced
    entries, and (``mark_end``) the position left open.
    """
    n = len(close)
    keep_position = position.shape[0] == n
    for i in range(state.shape[0]):
        state[i] = 0.0
    state[_CASH] = capital
    stops = not (math.isnan(stop_loss) and math.isnan(take_profit) and math.isnan(trailing_stop))
    for t in range(n):
        last = t == n - 1
        # fill points act on the signals of bars >= warmup; with no signal one is a no-op
        if not fill_close and t >= 1 and t - 1 >= warmup:
            el = entry_long[t - 1]
            xl = exit_long[t - 1]
            es = entry_short[t - 1]
            xs = exit_short[t - 1]
            if el or xl or es or xs:
                _fill_point(state, trades, t - 1, t, open_[t], True, el, xl, es, xs, close,
                            fees, slippage, mode, value, leverage, qty_step, min_notional,
                            bars_per_year, vol_lookback)
        if stops and state[_SIDE] != 0.0 and state[_ENTRY_BAR] < t:
            action, price, reason, extreme = _exit_check(
                state[_SIDE], state[_ENTRY_PRICE], state[_EXTREME], open_[t], high[t], low[t],
                stop_loss, take_profit, trailing_stop)
            if action == 0:
                state[_EXTREME] = extreme
            else:
                if action == 2:
                    state[_AMBIG] += 1.0
                _close(state, trades, t, price, reason, fees, slippage)
        if fill_close and t >= warmup:
            el = entry_long[t]
            xl = exit_long[t]
            es = entry_short[t]
            xs = exit_short[t]
            if el or xl or es or xs:
                _fill_point(state, trades, t, t, close[t], not last, el, xl, es, xs, close,
                            fees, slippage, mode, value, leverage, qty_step, min_notional,
                            bars_per_year, vol_lookback)
        if last and state[_SIDE] != 0.0 and not mark_end:
            _close(state, trades, t, close[t], _END, fees, slippage)
        qty = state[_SIDE] * state[_QTY]
        equity[t] = state[_CASH] + qty * close[t]
        if keep_position:
            position[t] = qty
        if qty != 0.0:
            state[_EXPOSED] += 1.0


@_jit
def _run(open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray,
         entry_long: BoolArray, exit_long: BoolArray, entry_short: BoolArray,
         exit_short: BoolArray, capital: float, fill_close: bool, fees: float, slippage: float,
         mode: int, value: float, stop_loss: float, take_profit: float, trailing_stop: float,
         qty_step: float, min_notional: float, warmup: int, bars_per_year: float,
         vol_lookback: int, mark_end: bool, leverage: float
         ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    n = len(close)
    equity = np.empty(n)
    position = np.empty(n)
    trades = np.empty((n, _NCOL))
    state = np.zeros(_NSTATE)
    loop(open_, high, low, close, entry_long, exit_long, entry_short, exit_short, capital,
         fill_close, fees, slippage, mode, value, stop_loss, take_profit, trailing_stop,
         qty_step, min_notional, warmup, bars_per_year, vol_lookback, mark_end, leverage,
         equity, position, trades, state)
    return equity, position, trades[: int(state[_NTRADES])], state


def _frozen(arr: _A) -> _A:
    """A read-only view (no copy): the one array flavour the compiled loop is cached for."""
    view = arr.view()
    view.flags.writeable = False
    return view


def _column(values: Any, n: int, name: str) -> FloatArray:
    out = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if out.shape != (n,):
        raise ValueError(f"`{name}` has shape {out.shape}, expected ({n},)")
    return _frozen(out)


def prepare_rules(rules: Mapping[str, Any], n: int) -> tuple[BoolArray, ...]:
    """The four rule slots as contiguous bool arrays of length ``n`` (missing: all False)."""
    out: list[BoolArray] = []
    for slot in RULE_SLOTS:
        if slot in rules:
            arr = np.ascontiguousarray(np.asarray(rules[slot], dtype=np.bool_))
            if arr.shape != (n,):
                raise ValueError(f"rule `{slot}` has shape {arr.shape}, expected ({n},)")
        else:
            arr = np.zeros(n, dtype=np.bool_)
        out.append(arr)
    return tuple(out)


def trades_dict(rows: FloatArray) -> dict[str, FloatArray]:
    """Trade rows (one per closed trade, columns in ``TRADE_COLUMNS`` order) as named arrays."""
    rows = rows.reshape(-1, _NCOL)
    return {name: np.ascontiguousarray(rows[:, i]) for i, name in enumerate(TRADE_COLUMNS)}


def open_trade_row(state: FloatArray, last_bar: int, last_close: float) -> FloatArray:
    """The position ``state`` holds after the last bar as a trade row marked at the last
    close: exit price the raw close, fees the entry fee only (no exit happened)."""
    side = state[_SIDE]
    qty = state[_QTY]
    entry = state[_ENTRY_PRICE]
    pnl = side * qty * (last_close - entry) - state[_ENTRY_FEE]
    return np.array([state[_ENTRY_BAR], last_bar, side, qty, entry, last_close,
                     state[_ENTRY_FEE], pnl, pnl / (qty * entry), EXIT_REASONS.index("open"),
                     state[_ENTRY_REDUCED]], dtype=np.float64)


def _nan_or(x: float) -> float:
    """A stop setting: NaN (off) stays NaN; anything else as float."""
    return math.nan if math.isnan(x) else float(x)


def check_settings(settings: SimSettings) -> None:
    """Reject what the bar loop cannot act on (the checker keeps specs from getting here)."""
    for key, allowed in CHOICES.items():
        if getattr(settings, key) not in allowed:
            raise ValueError(f"unknown {key} {getattr(settings, key)!r}")
    if not settings.leverage > 0:
        raise ValueError(f"leverage must be positive, got {settings.leverage!r}")


def simulate(open_: Any, high: Any, low: Any, close: Any, rules: Mapping[str, Any],
             settings: SimSettings) -> SimResult:
    """Simulate one strategy's signals on OHLC arrays (see docs/backtest.md)."""
    n = len(close)
    o = _column(open_, n, "open")
    h = _column(high, n, "high")
    lo = _column(low, n, "low")
    c = _column(close, n, "close")
    el, xl, es, xs = (_frozen(r) for r in prepare_rules(rules, n))
    check_settings(settings)
    equity, position, rows, state = _run(
        o, h, lo, c, el, xl, es, xs, float(settings.capital), settings.fill == "close",
        float(settings.fees), float(settings.slippage), SIZING_CODES[settings.sizing_mode],
        float(settings.sizing_value), _nan_or(settings.stop_loss),
        _nan_or(settings.take_profit), _nan_or(settings.trailing_stop),
        float(settings.qty_step), float(settings.min_notional), int(settings.warmup),
        float(settings.bars_per_year), int(settings.vol_lookback),
        settings.end_of_data == "mark", float(settings.leverage))
    still_open = n > 0 and state[_SIDE] != 0.0
    open_rows = open_trade_row(state, n - 1, float(c[-1])) if still_open else np.zeros(0)
    return SimResult(equity=equity, position=position, trades=trades_dict(rows),
                     ambiguous_bars=int(state[_AMBIG]), fees_paid=float(state[_FEES]),
                     open_trades=trades_dict(open_rows))
