"""The slow, obvious reference simulator: plain Python, one bar at a time.

Written from the execution semantics in ``docs/backtest.md`` (not from ``simulate.py``) so
that the property test comparing the two checks the fast loop against the text. Clarity
over speed: small dataclasses, one function per step of a bar, no numpy in the loop.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .results import EXIT_REASONS, TRADE_COLUMNS, SimResult, SimSettings

LONG, SHORT = 1, -1


@dataclass
class Position:
    side: int  # +1 long, -1 short
    qty: float  # > 0
    entry_price: float  # slipped fill price
    entry_bar: int  # the fill bar
    entry_fee: float
    best: float  # highest high (long) / lowest low (short) since the fill bar, and the entry
    reduced: bool  # the order was cut down to what the account could pay
    exits: Exits  # its stop, target and trail, fixed at the entry


@dataclass(frozen=True)
class Exits:
    """A position's exits: each a fraction (of the entry, of the best price for the trail)
    or a price distance from it, or None."""

    stop: tuple[str, float] | None = None  # ("fraction" | "distance", value)
    target: tuple[str, float] | None = None
    trail: tuple[str, float] | None = None


def level_price(base: float, exit_: tuple[str, float] | None, away: int) -> float | None:
    """The price ``away`` (+1 up, -1 down) from ``base`` by ``exit_``, or None."""
    if exit_ is None:
        return None
    kind, value = exit_
    return base * (1 + away * value) if kind == "fraction" else base + away * value


@dataclass
class Trade:
    entry_bar: int
    exit_bar: int
    side: int
    qty: float
    entry_price: float
    exit_price: float
    fees: float
    pnl: float
    ret: float
    exit_reason: str
    reduced: bool


@dataclass
class Bar:
    open: float
    high: float
    low: float
    close: float


@dataclass
class Signal:
    entry_long: bool
    exit_long: bool
    entry_short: bool
    exit_short: bool


class Book:
    """Cash, the open position and the closed trades, with the fill arithmetic."""

    def __init__(self, settings: SimSettings) -> None:
        self.s = settings
        self.cash = settings.capital
        self.position: Position | None = None
        self.trades: list[Trade] = []
        self.fees_paid = 0.0
        self.ambiguous = 0
        self.undefined_levels = 0  # entries not taken: a stop or size expression undefined
        self.held_back: dict[str, int] = {}  # signals the trade rules held back, by rule
        self.loss_streak = 0  # losing trades in a row
        self.last_stop_bar = -math.inf  # the bar of the last stop-loss or trailing exit

    def fill_price(self, price: float, buying: bool) -> float:
        return price * (1 + self.s.slippage) if buying else price * (1 - self.s.slippage)

    def enter(self, side: int, qty: float, price: float, bar: int, reduced: bool,
              exits: Exits) -> None:
        fill = self.fill_price(price, buying=side == LONG)
        fee = self.s.fees * qty * fill
        if side == LONG:
            self.cash -= qty * fill  # buy
        else:
            self.cash += qty * fill  # sell short
        self.cash -= fee
        self.fees_paid += fee
        self.position = Position(side, qty, fill, bar, fee, fill, reduced, exits)

    def exit(self, price: float, bar: int, reason: str) -> None:
        pos = self.position
        assert pos is not None
        fill = self.fill_price(price, buying=pos.side == SHORT)
        fee = self.s.fees * pos.qty * fill
        if pos.side == LONG:
            self.cash += pos.qty * fill  # sell
        else:
            self.cash -= pos.qty * fill  # buy back
        self.cash -= fee
        self.fees_paid += fee
        fees = pos.entry_fee + fee
        if pos.side == LONG:
            gross = pos.qty * (fill - pos.entry_price)
        else:
            gross = pos.qty * (pos.entry_price - fill)
        pnl = gross - fees
        self.trades.append(Trade(pos.entry_bar, bar, pos.side, pos.qty, pos.entry_price, fill,
                                 fees, pnl, pnl / (pos.qty * pos.entry_price), reason,
                                 pos.reduced))
        self.position = None
        self.loss_streak = self.loss_streak + 1 if pnl < 0 else 0
        if reason in ("stop_loss", "trailing_stop"):
            self.last_stop_bar = bar

    def hold_back(self, rule: str) -> None:
        self.held_back[rule] = self.held_back.get(rule, 0) + 1

    def open_trade(self, bar: int, close: float) -> Trade:
        """The position still held, valued at ``close`` without selling it (no exit fee)."""
        pos = self.position
        assert pos is not None
        if pos.side == LONG:
            gross = pos.qty * (close - pos.entry_price)
        else:
            gross = pos.qty * (pos.entry_price - close)
        pnl = gross - pos.entry_fee
        return Trade(pos.entry_bar, bar, pos.side, pos.qty, pos.entry_price, close,
                     pos.entry_fee, pnl, pnl / (pos.qty * pos.entry_price), "open", pos.reduced)

    def signed_qty(self) -> float:
        if self.position is None:
            return 0.0
        return self.position.qty if self.position.side == LONG else -self.position.qty


def realised_vol(closes: list[float], signal_bar: int, lookback: int,
                 bars_per_year: float) -> float | None:
    """Annualised stdev of the last ``lookback`` log returns up to ``signal_bar``, or None."""
    if lookback < 2 or signal_bar - lookback < 0:
        return None
    returns = [math.log(closes[k] / closes[k - 1])
               for k in range(signal_bar - lookback + 1, signal_bar + 1)]
    vol = statistics.stdev(returns) * math.sqrt(bars_per_year)
    if math.isnan(vol) or vol <= 0:
        return None
    return vol


def budget(s: SimSettings, equity: float, closes: list[float], signal_bar: int,
           size: float | None = None) -> float | None:
    """What the sizing mode wants to spend, fee included (None: no entry); ``size`` is the
    fraction of equity a size expression gave at the signal bar."""
    if s.sizing_mode == "equity_fraction":
        return equity * (s.sizing_value if size is None else size)
    if s.sizing_mode == "notional":
        return s.sizing_value
    if s.sizing_mode == "vol_target":
        vol = realised_vol(closes, signal_bar, s.vol_lookback, s.bars_per_year)
        if vol is None:
            return None
        return equity * min(1.0, s.sizing_value / vol)
    raise ValueError(f"unknown sizing mode {s.sizing_mode!r}")


def order_qty(s: SimSettings, equity: float, price: float, fill: float, closes: list[float],
              signal_bar: int, size: float | None = None) -> tuple[float, bool] | None:
    """The sized, capped, rounded entry quantity and whether the cap cut it, or None."""
    if s.sizing_mode == "quantity":
        qty = s.sizing_value
    else:
        spend = budget(s, equity, closes, signal_bar, size)
        if spend is None:
            return None
        qty = spend / (fill * (1 + s.fees))  # the budget pays the fee too
    # a cash account (leverage 1) never pays more than its equity, fee included
    most = s.leverage * equity / (fill * (1 + s.fees))
    reduced = False
    if qty > most:
        qty, reduced = most, True
    if s.qty_step > 0:
        steps = math.floor(qty / s.qty_step + 1e-9)
        rounded = steps * s.qty_step
        if rounded > most:
            rounded = (steps - 1) * s.qty_step
            reduced = True
        qty = rounded
    if math.isnan(qty) or math.isinf(qty) or qty <= 0:
        return None
    if s.min_notional > 0 and qty * price < s.min_notional:
        return None
    return qty, reduced


def exits_at(s: SimSettings, levels: Mapping[str, list[float]], bar: int) -> Exits:
    """The exits of an entry on the signals of ``bar``: each setting as written — a
    fraction, or an expression's value at ``bar`` (a percentage: a fraction; a price: a
    distance)."""
    def one(key: str) -> tuple[str, float] | None:
        if key in levels:
            return "fraction", levels[key][bar]
        if f"{key}_distance" in levels:
            return "distance", levels[f"{key}_distance"][bar]
        value = getattr(s, key)
        return None if is_off(value) else ("fraction", value)

    return Exits(one("stop_loss"), one("take_profit"), one("trailing_stop"))


def levels_defined(levels: Mapping[str, list[float]], bar: int) -> bool:
    """Every stop and size expression a positive number at ``bar`` (else no entry)."""
    return all(0 < series[bar] < math.inf for series in levels.values())


PositionRuleAt = Callable[[int, Sequence[float]], bool]


def position_values(book: Book, bar: int, closes: list[float]) -> tuple[float, ...]:
    """What the position holds at the close of ``bar``: side, bars since its fill bar, its
    fill price, its return there (NaN while flat)."""
    pos = book.position
    if pos is None:
        return (0.0, math.nan, math.nan, math.nan)
    return (float(pos.side), float(bar - pos.entry_bar), pos.entry_price,
            pos.side * (closes[bar] / pos.entry_price - 1))


def asked(sig: Signal, rules: Mapping[str, PositionRuleAt], bar: int,
          values: Sequence[float]) -> Signal:
    """The bar's signals with each rule that reads the position evaluated on it."""
    fields = {slot: getattr(sig, slot) for slot in ("entry_long", "exit_long", "entry_short",
                                                     "exit_short")}
    for slot, rule in rules.items():
        fields[slot] = fields[slot] and rule(bar, values)
    return Signal(**fields)


def act_on_signal(book: Book, sig: Signal, signal_bar: int, fill_bar: int, price: float,
                  closes: list[float], entries_allowed: bool,
                  levels: Mapping[str, list[float]],
                  position_rules: Mapping[str, PositionRuleAt]) -> None:
    """One fill point: the pending exit (or reversal's exit), then the pending entry."""
    if signal_bar < book.s.warmup:
        return
    if position_rules:
        sig = asked(sig, position_rules, signal_bar, position_values(book, signal_bar, closes))
    entry_long, entry_short = sig.entry_long, sig.entry_short
    if entry_long and entry_short:
        entry_long = entry_short = False  # ambiguous: neither entry acts
    held = book.position.side if book.position is not None else 0
    s = book.s
    wants_exit = (held == LONG and (sig.exit_long or entry_short)) or \
        (held == SHORT and (sig.exit_short or entry_long))
    reason = "signal"
    if held != 0:
        assert book.position is not None
        age = signal_bar - book.position.entry_bar
        if wants_exit and age < s.min_hold:  # too young to leave on a signal (nor flip)
            book.hold_back("min_hold")
            return
        if not wants_exit and s.max_hold > 0 and age >= s.max_hold:
            wants_exit, reason = True, "max_hold"
    if wants_exit:
        book.exit(price, fill_bar, reason)
    if book.position is not None or not entries_allowed:
        return
    if held != 0 and s.reversal == "flat":  # an opposite entry only closed the position
        return
    wanted = 0
    if entry_long and held != LONG:
        wanted = LONG
    if entry_short and held != SHORT:
        wanted = SHORT
    if wanted == 0:
        return
    if signal_bar - book.last_stop_bar < s.cooldown_after_stop:
        book.hold_back("cooldown_after_stop")
        return
    if 0 < s.max_consecutive_losses <= book.loss_streak:
        book.hold_back("max_consecutive_losses")
        return
    if not levels_defined(levels, signal_bar):
        book.undefined_levels += 1
        return
    fill = book.fill_price(price, buying=wanted == LONG)
    size = levels["size"][signal_bar] if "size" in levels else None
    order = order_qty(book.s, book.cash, price, fill, closes, signal_bar, size)
    if order is not None:
        book.enter(wanted, order[0], price, fill_bar, order[1],
                   exits_at(book.s, levels, signal_bar))


def is_off(x: float) -> bool:
    return math.isnan(x)


def check_stops(book: Book, bar: Bar, t: int) -> None:
    """Intrabar stop-loss / take-profit / trailing stop for a position filled before bar t."""
    pos = book.position
    assert pos is not None
    ex = pos.exits
    if pos.side == LONG:
        fixed = level_price(pos.entry_price, ex.stop, -1)
        trail = level_price(pos.best, ex.trail, -1)
        target = level_price(pos.entry_price, ex.target, +1)
        stop, stop_reason = None, "stop_loss"
        if fixed is not None:
            stop = fixed
        if trail is not None and (stop is None or trail > stop):
            stop, stop_reason = trail, "trailing_stop"
        stop_hit_at_open = stop is not None and bar.open <= stop
        target_hit_at_open = target is not None and bar.open >= target
        stop_touched = stop is not None and bar.low <= stop
        target_touched = target is not None and bar.high >= target
    else:
        fixed = level_price(pos.entry_price, ex.stop, +1)
        trail = level_price(pos.best, ex.trail, +1)
        target = level_price(pos.entry_price, ex.target, -1)
        stop, stop_reason = None, "stop_loss"
        if fixed is not None:
            stop = fixed
        if trail is not None and (stop is None or trail < stop):
            stop, stop_reason = trail, "trailing_stop"
        stop_hit_at_open = stop is not None and bar.open >= stop
        target_hit_at_open = target is not None and bar.open <= target
        stop_touched = stop is not None and bar.high >= stop
        target_touched = target is not None and bar.low <= target

    if stop_hit_at_open:
        book.exit(bar.open, t, stop_reason)  # gap through the stop: the open
    elif target_hit_at_open:
        book.exit(bar.open, t, "take_profit")  # gap through the target: the open
    elif stop_touched and target_touched:
        book.ambiguous += 1  # both inside the bar: assume the stop came first
        assert stop is not None
        book.exit(stop, t, stop_reason)
    elif stop_touched:
        assert stop is not None
        book.exit(stop, t, stop_reason)
    elif target_touched:
        assert target is not None
        book.exit(target, t, "take_profit")
    elif pos.side == LONG:
        pos.best = max(pos.best, bar.high)
    else:
        pos.best = min(pos.best, bar.low)


def reference_simulate(open_: Any, high: Any, low: Any, close: Any,
                       rules: Mapping[str, Any], settings: SimSettings,
                       levels: Mapping[str, Any] | None = None,
                       position_rules: Mapping[str, PositionRuleAt] | None = None
                       ) -> SimResult:
    """Same contract as ``simulate.simulate``, one bar at a time in plain Python; the rules
    that read the position are functions of the bar and the position's values there
    (``reference.reference_position_rules``)."""
    n = len(close)
    bars = [Bar(float(open_[t]), float(high[t]), float(low[t]), float(close[t]))
            for t in range(n)]
    closes = [b.close for b in bars]

    def slot(name: str) -> list[bool]:
        if name not in rules:
            return [False] * n
        return [bool(v) for v in rules[name]]

    el, xl, es, xs = (slot(k) for k in ("entry_long", "exit_long", "entry_short", "exit_short"))
    signals = [Signal(el[t], xl[t], es[t], xs[t]) for t in range(n)]
    given = {k: [float(v) for v in series] for k, series in (levels or {}).items()}

    book = Book(settings)
    equity: list[float] = []
    position: list[float] = []
    for t, bar in enumerate(bars):
        final_bar = t == n - 1
        # 1. next_open: yesterday's signals fill at today's open
        if settings.fill == "next_open" and t > 0:
            act_on_signal(book, signals[t - 1], t - 1, t, bar.open, closes, True, given,
                          position_rules or {})
        # 2. stops and targets, from the bar after the fill bar
        if book.position is not None and book.position.entry_bar < t:
            check_stops(book, bar, t)
        # 3. close: today's signals fill at today's close (no new entries on the last bar)
        if settings.fill == "close":
            act_on_signal(book, signals[t], t, t, bar.close, closes, not final_bar, given,
                          position_rules or {})
        # 4. end of data: close the position, or (mark) leave it open
        if final_bar and book.position is not None and settings.end_of_data == "close":
            book.exit(bar.close, t, "end_of_data")
        # 5. mark to the close
        equity.append(book.cash + book.signed_qty() * bar.close)
        position.append(book.signed_qty())

    still_open = [book.open_trade(n - 1, closes[-1])] if book.position is not None else []
    return SimResult(
        equity=np.array(equity, dtype=np.float64),
        position=np.array(position, dtype=np.float64),
        trades=trade_table(book.trades), ambiguous_bars=book.ambiguous,
        fees_paid=book.fees_paid, open_trades=trade_table(still_open),
        undefined_levels=book.undefined_levels, held_back=dict(sorted(book.held_back.items())))


def trade_table(trades: list[Trade]) -> dict[str, np.ndarray[Any, Any]]:
    """Trades as the column arrays of ``TRADE_COLUMNS``."""
    columns: dict[str, list[float]] = {c: [] for c in TRADE_COLUMNS}
    for tr in trades:
        values = (tr.entry_bar, tr.exit_bar, tr.side, tr.qty, tr.entry_price, tr.exit_price,
                  tr.fees, tr.pnl, tr.ret, EXIT_REASONS.index(tr.exit_reason), tr.reduced, 0)
        for c, v in zip(TRADE_COLUMNS, values, strict=True):
            columns[c].append(float(v))
    return {c: np.array(v, dtype=np.float64) for c, v in columns.items()}
