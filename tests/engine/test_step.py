"""The step driven bar by bar equals the whole-array run, and the stages keep their roles.

Every library strategy, on its demo market, with its own settings and with stops, close
fills, marking at the end and risk limits layered on: ``BarByBar`` (one jitted ``step`` call
per bar, state kept in Python between calls — what the live runner does) must give the
same trades, equity, positions and counters as ``simulate`` (one ``run_slot`` call, or the
specialised one-sided loop ``fast_slot.run_fast_slot`` where it applies), to the bit; the
specialised loop must equal ``run_slot`` on every library strategy made one-sided; and the
clock (``simulate_slots``, many slots on their own bars) with one slot must agree with
``run_slot``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peakdsl.api import compile_spec
from peakdsl.backtest import sim_settings
from peakdsl.compile import models as m
from peakdsl.data.synth import synth_market
from peakdsl.engine.decide import LONG, SHORT, decide
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.results import SimResult, SimSettings
from peakdsl.engine.risk import NO_LIMITS, RiskLimits
from peakdsl.engine.simulate import BarByBar, _fast, epoch_seconds, simulate
from peakdsl.engine.timeline import Rebalance, Slot, simulate_slots

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "specs" / "strategies").glob("*.peak"))
BARS = 1500

VARIANTS: dict[str, dict[str, object]] = {
    "as written": {},
    "stops, close fills, marked end": {"fill": "close", "stop_loss": 0.02,
                                       "take_profit": 0.05, "trailing_stop": 0.03,
                                       "end_of_data": "mark"},
}
LIMITS = RiskLimits(max_order_notional=4000.0, max_daily_loss=0.01, max_orders_per_minute=1,
                    max_symbol_exposure=0.5)


def _same(a: SimResult, b: SimResult) -> None:
    np.testing.assert_array_equal(a.equity, b.equity)
    np.testing.assert_array_equal(a.position, b.position)
    for col in a.trades:
        np.testing.assert_array_equal(a.trades[col], b.trades[col], err_msg=col)
        np.testing.assert_array_equal(a.open_trades[col], b.open_trades[col], err_msg=col)
    assert (a.ambiguous_bars, a.fees_paid, a.risk) == (b.ambiguous_bars, b.fees_paid, b.risk)


def _bar_by_bar(cols: list[np.ndarray], rules: dict[str, np.ndarray], settings: SimSettings,
                **kwargs: object) -> SimResult:
    driver = BarByBar(*cols, rules, settings, **kwargs)  # type: ignore[arg-type]
    for _ in range(len(cols[0])):
        driver.step()
    return driver.result()


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_every_library_strategy_bar_by_bar_equals_the_whole_array_run(path: Path) -> None:
    artifact = compile_spec(str(path), ROOT)
    assert isinstance(artifact, m.StrategyArtifact)
    cfg = artifact.config
    candles = synth_market(cfg.market.symbol, cfg.timeframe, bars=BARS)
    signals = evaluate(cfg, candles.frame)
    cols = [candles.frame[c].to_numpy() for c in ("open", "high", "low", "close")]
    base = sim_settings(cfg, signals.params, signals.warmup)
    # stops and sizes written as expressions (atr_vol_target), rules reading the position
    # (position_exits)
    more = {"levels": signals.levels, "position_rules": signals.position_rules}
    for label, changes in VARIANTS.items():
        settings = base.replace(**changes)
        whole = simulate(*cols, signals.rules, settings, **more)  # type: ignore[arg-type]
        assert whole.trade_count > 0, f"{label}: no trades, nothing compared"
        _same(whole, _bar_by_bar(cols, signals.rules, settings, **more))
        limited = simulate(*cols, signals.rules, settings,  # type: ignore[arg-type]
                           times=candles.frame.index, limits=LIMITS, **more)
        _same(limited, _bar_by_bar(cols, signals.rules, settings, times=candles.frame.index,
                                   limits=LIMITS, **more))
        _general_loop(cols, signals.rules, settings, candles.frame.index, limited, more)


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_the_specialised_loop_equals_run_slot_on_every_library_strategy(path: Path) -> None:
    """Each library strategy long-only (its short rules dropped) and without stops — what
    the specialised loop runs — with next-open and close fills, closing or marking at the
    end: the specialised loop, ``run_slot`` and the bar-by-bar step agree to the bit."""
    artifact = compile_spec(str(path), ROOT)
    assert isinstance(artifact, m.StrategyArtifact)
    cfg = artifact.config
    candles = synth_market(cfg.market.symbol, cfg.timeframe, bars=BARS)
    signals = evaluate(cfg, candles.frame)
    cols = [candles.frame[c].to_numpy() for c in ("open", "high", "low", "close")]
    rules = {slot: rule for slot, rule in signals.rules.items() if slot.endswith("_long")}
    base = sim_settings(cfg, signals.params, signals.warmup).replace(
        stop_loss=float("nan"), take_profit=float("nan"), trailing_stop=float("nan"),
        min_hold=0, max_hold=0, cooldown_after_stop=0, max_consecutive_losses=0)
    if np.isnan(base.sizing_value):  # sized by an expression (a level): a fixed fraction
        base = base.replace(sizing_value=0.5)
    for changes in ({}, {"fill": "close", "end_of_data": "mark"}):
        settings = base.replace(**changes)
        assert _fast(*cols, rules, settings, None, NO_LIMITS) is not None
        specialised = simulate(*cols, rules, settings)
        # something traded (breakout has no exit rule: one trade, held to the end)
        assert specialised.trade_count + len(specialised.open_trades["entry_bar"]) > 0
        _same(specialised, simulate(*cols, rules, settings, general=True))
        _same(specialised, _bar_by_bar(cols, rules, settings))


def _general_loop(cols: list[np.ndarray], rules: dict[str, np.ndarray], settings: SimSettings,
                  times: object, whole: SimResult, more: dict[str, Any] | None = None) -> None:
    """The same run through the clock (any number of slots, each on its own bars) with one
    slot, with and without a sleeve of weight 1 rebalanced daily: identical to ``whole``."""
    stamps = epoch_seconds(times)
    slot = Slot(*cols, times=stamps, timeframe_seconds=int(stamps[1] - stamps[0]), rules=rules,
                settings=settings, **(more or {}))
    for rebalance in (None, Rebalance(seconds=86_400.0, drift=0.01)):
        run = simulate_slots([slot], settings.capital, limits=LIMITS, rebalance=rebalance)
        assert run.equity[0] == settings.capital
        np.testing.assert_array_equal(run.equity[1:], whole.equity)
        np.testing.assert_array_equal(run.values[0, 1:], whole.position * cols[3])
        for col in whole.trades:
            np.testing.assert_array_equal(run.trades[col], whole.trades[col], err_msg=col)
            np.testing.assert_array_equal(run.open_trades[col], whole.open_trades[col],
                                          err_msg=col)
        assert (run.ambiguous_bars, run.fees_paid, run.risk, run.undefined_levels) == (
            whole.ambiguous_bars, whole.fees_paid, whole.risk, whole.undefined_levels)


def test_bar_by_bar_refuses_to_step_past_the_end_or_report_early() -> None:
    c = np.linspace(100, 101, 3)
    driver = BarByBar(c, c, c, c, {}, SimSettings())
    driver.step()
    with pytest.raises(ValueError, match="2 bars are still to be stepped"):
        driver.result()
    driver.step()
    driver.step()
    with pytest.raises(IndexError):
        driver.step()
    assert driver.result().equity.tolist() == [10_000.0] * 3


def test_bar_by_bar_grows_its_trade_buffer() -> None:
    """A trade every other bar: the buffer starts at two rows and must grow many times."""
    n = 400
    c = 100 + np.sin(np.arange(n))
    rules = {"entry_long": np.arange(n) % 2 == 0, "exit_long": np.arange(n) % 2 == 1}
    cols = [c, c + 1, c - 1, c]
    whole = simulate(*cols, rules, SimSettings())
    assert whole.trade_count == 200  # the last one closed by end_of_data
    _same(whole, _bar_by_bar(cols, rules, SimSettings()))


@pytest.mark.parametrize(("held", "signals", "expected"), [
    (0, (True, False, False, False), (False, LONG)),
    (0, (True, False, True, False), (False, 0)),  # both entries cancel
    (1, (True, False, False, False), (False, 0)),  # already long
    (1, (False, True, False, False), (True, 0)),
    (1, (False, False, True, False), (True, SHORT)),  # flip
    (1, (True, True, False, False), (True, 0)),  # exit wins, no re-entry on the same bar
    (-1, (True, False, False, False), (True, LONG)),  # flip
    (-1, (False, False, False, True), (True, 0)),
    (-1, (False, True, False, False), (False, 0)),  # exit_long does not touch a short
])
def test_decide_turns_signals_and_the_position_into_intents(
        held: int, signals: tuple[bool, bool, bool, bool], expected: tuple[bool, int]) -> None:
    assert decide(held, *signals) == expected
