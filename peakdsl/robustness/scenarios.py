"""Stress scenarios: deterministic changes to a run's prices, costs or timing.

Each scenario is a row of ``SCENARIOS``: what it changes (every component's candles, each
component's settings, or its signals) and how. Price scenarios strike at *the worst moment*
of the base run — the clock point where the account held the most net long value (a crash
hurts longs; when the run was never long, the point of its largest absolute exposure, and the
middle of the run when it never held anything) — and last a *window* of ``WINDOW_SHARE`` of
the run's span from there:

- ``crash``: a −20 % gap: every price from that moment on is 0.8 times what it was;
- ``vol_spike``: every bar return in the window doubled (each bar's open, high, low and close
  scaled by the same factor, so bars stay consistent), prices after it shifted to continue;
- ``flat_market``: prices frozen at the last close before the window (open = high = low =
  close), then continuing from there;
- ``data_gap``: the window's bars removed (a feed outage: positions are held, unmarked, and
  indicators see no bars there);
- ``fill_delay``: every signal acted on one bar late;
- ``fee_x2``, ``slippage_x3``: the fees doubled, the slippage tripled.

Scenarios transform inputs only; the same engine then runs them, so a scenario result is
exactly what ``peak backtest`` would say of the changed data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..data.candles import CandleSet
from ..engine.evaluate import Signals
from ..engine.results import SimSettings

WINDOW_SHARE = 0.05  # a window scenario lasts this share of the run's span
CRASH = 0.8  # prices after the crash, of what they were
SPIKE = 2.0  # bar returns in the window, times

CandleChange = Callable[[CandleSet, pd.Timestamp, pd.Timestamp], CandleSet]


@dataclass(frozen=True)
class Scenario:
    """One stress scenario: its name, what it does, and the change it makes."""

    name: str
    doc: str
    candles: CandleChange | None = None
    settings: Callable[[SimSettings], SimSettings] | None = None
    signals: Callable[[Signals], Signals] | None = None

    def adjust(self, signals: Signals, settings: SimSettings) -> tuple[Signals, SimSettings]:
        return (self.signals(signals) if self.signals else signals,
                self.settings(settings) if self.settings else settings)


def _rebuilt(candles: CandleSet, factor: np.ndarray[Any, Any],
             frame: pd.DataFrame | None = None) -> CandleSet:
    """The candles with each bar's prices times its factor (volume as it was)."""
    out = (candles.frame if frame is None else frame).copy()
    for column in ("open", "high", "low", "close"):
        out[column] = out[column].to_numpy() * factor
    return candles.rebuilt(out)


def _in(candles: CandleSet, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray[Any, Any]:
    index = candles.frame.index
    return np.asarray((index >= start) & (index < end))


def crash(candles: CandleSet, start: pd.Timestamp, end: pd.Timestamp) -> CandleSet:
    factor = np.where(np.asarray(candles.frame.index >= start), CRASH, 1.0)
    return _rebuilt(candles, factor)


def _continued(candles: CandleSet, inside: np.ndarray[Any, Any],
               new_close: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Per-bar factors: ``new_close / close`` inside the window, then the last of them."""
    close = candles.frame["close"].to_numpy()
    factor = np.ones(len(close))
    factor[inside] = new_close / close[inside]
    after = np.flatnonzero(inside)
    if after.size:
        factor[after[-1] + 1:] = factor[after[-1]]
    return factor


def vol_spike(candles: CandleSet, start: pd.Timestamp, end: pd.Timestamp) -> CandleSet:
    inside = _in(candles, start, end)
    close = candles.frame["close"].to_numpy()
    idx = np.flatnonzero(inside)
    if idx.size == 0 or idx[0] == 0:
        return candles
    ratio = close[idx] / close[idx - 1]
    new_close = close[idx[0] - 1] * np.cumprod(ratio ** SPIKE)
    return _rebuilt(candles, _continued(candles, inside, new_close))


def flat_market(candles: CandleSet, start: pd.Timestamp, end: pd.Timestamp) -> CandleSet:
    inside = _in(candles, start, end)
    idx = np.flatnonzero(inside)
    if idx.size == 0 or idx[0] == 0:
        return candles
    level = candles.frame["close"].to_numpy()[idx[0] - 1]
    frame = candles.frame.copy()
    frame.loc[inside, ["open", "high", "low", "close"]] = level
    factor = _continued(candles, inside, np.full(idx.size, level))
    factor[inside] = 1.0  # the window itself is already the level
    return _rebuilt(candles, factor, frame)


def data_gap(candles: CandleSet, start: pd.Timestamp, end: pd.Timestamp) -> CandleSet:
    kept = candles.frame[~_in(candles, start, end)]
    return candles.rebuilt(kept)


def delayed(signals: Signals) -> Signals:
    """Every rule one bar later (the first bar's signal is lost)."""
    rules = {k: np.concatenate(([False], np.asarray(v, dtype=bool)[:-1]))
             for k, v in signals.rules.items()}
    return replace(signals, rules=rules)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("crash", "a −20 % gap at the worst moment", candles=crash),
    Scenario("vol_spike", "bar returns × 2 for a window from the worst moment",
             candles=vol_spike),
    Scenario("flat_market", "prices frozen for a window from the worst moment",
             candles=flat_market),
    Scenario("data_gap", "the bars of a window from the worst moment missing",
             candles=data_gap),
    Scenario("fill_delay", "every order filled one bar late", signals=delayed),
    Scenario("fee_x2", "fees × 2", settings=lambda s: s.replace(fees=2 * s.fees)),
    Scenario("slippage_x3", "slippage × 3",
             settings=lambda s: s.replace(slippage=3 * s.slippage)),
)}


def worst_moment(times: pd.DatetimeIndex, values: np.ndarray[Any, Any]) -> pd.Timestamp:
    """The clock point of the largest net long value (see the module docstring)."""
    net = values.sum(axis=0)
    if net.size and net.max() > 0:
        return times[int(np.argmax(net))]
    gross = np.abs(values).sum(axis=0)
    if gross.size and gross.max() > 0:
        return times[int(np.argmax(gross))]
    return times[len(times) // 2]


def window(times: pd.DatetimeIndex, at: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """From ``at`` for ``WINDOW_SHARE`` of the run's span."""
    return at, at + (times[-1] - times[0]) * WINDOW_SHARE
