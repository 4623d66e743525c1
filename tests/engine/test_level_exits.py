"""Stops and sizes written as expressions (``lang.levels``) in the engine: read at the signal
bar, held for the trade, no entry where undefined — the same in every driver and in the
reference simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakdsl.engine.reference_sim import reference_simulate
from peakdsl.engine.results import EXIT_REASONS, SimResult, SimSettings
from peakdsl.engine.simulate import BarByBar, simulate
from peakdsl.engine.timeline import Slot, simulate_slots

FREE = SimSettings(capital=1_000.0, fees=0.0, slippage=0.0)
NAN = math.nan


def bars(*rows: tuple[float, float, float, float]) -> tuple[np.ndarray, ...]:
    """(open, high, low, close) columns from rows."""
    cols = np.array(rows, dtype=np.float64).T
    return cols[0], cols[1], cols[2], cols[3]


def entry_at(n: int, bar: int, side: str = "long") -> dict[str, np.ndarray]:
    rule = np.zeros(n, dtype=bool)
    rule[bar] = True
    return {f"entry_{side}": rule}


def series(n: int, at: dict[int, float], default: float = 1.0) -> np.ndarray:
    out = np.full(n, default)
    for k, v in at.items():
        out[k] = v
    return out


FLAT = (100.0, 100.0, 100.0, 100.0)


def run(prices: tuple[np.ndarray, ...], rules: dict[str, np.ndarray],
        levels: dict[str, np.ndarray], s: SimSettings = FREE) -> SimResult:
    """``simulate``, after requiring the bar-by-bar driver to agree exactly and the reference
    to rounding (it adds cash in another order)."""
    fast = simulate(*prices, rules, s, levels=levels)
    slow = reference_simulate(*prices, rules, s, levels)
    stepper = BarByBar(*prices, rules, s, levels=levels)
    for _ in range(len(prices[3])):
        stepper.step()
    stepped = stepper.result()
    for other in (slow, stepped):
        assert other.trade_count == fast.trade_count
        np.testing.assert_allclose(other.equity, fast.equity, rtol=1e-12, atol=1e-9)
        assert other.undefined_levels == fast.undefined_levels
    np.testing.assert_array_equal(stepped.equity, fast.equity)
    return fast


def reason(sim: SimResult, k: int = 0) -> str:
    return EXIT_REASONS[int(sim.trades["exit_reason"][k])]


def test_a_distance_stop_is_read_at_the_signal_bar_and_held() -> None:
    """Signal on bar 1, fill at 100 on bar 2: the stop sits 5 below (the distance of bar 1);
    the distance of later bars (50) does not move it; bar 4 trades through 95."""
    prices = bars(FLAT, FLAT, FLAT, (100.0, 101.0, 96.0, 97.0), (97.0, 98.0, 94.0, 95.0),
                  FLAT)
    sim = run(prices, entry_at(6, 1), {"stop_loss_distance": series(6, {1: 5.0}, 50.0)})
    assert sim.trades["exit_bar"][0] == 4 and sim.trades["exit_price"][0] == 95.0
    assert reason(sim) == "stop_loss"
    assert sim.trades["pnl"][0] == pytest.approx(10 * (95.0 - 100.0))


def test_a_distance_target_and_a_distance_trail() -> None:
    prices = bars(FLAT, FLAT, FLAT, (100.0, 104.0, 101.0, 103.0), (103.0, 103.0, 98.0, 99.0))
    trail = run(prices, entry_at(5, 1), {"trailing_stop_distance": series(5, {}, 5.0)})
    assert reason(trail) == "trailing_stop" and trail.trades["exit_price"][0] == 99.0
    target = run(prices, entry_at(5, 1), {"take_profit_distance": series(5, {}, 3.0)})
    assert reason(target) == "take_profit" and target.trades["exit_price"][0] == 103.0


def test_a_short_stop_sits_above_the_entry() -> None:
    prices = bars(FLAT, FLAT, FLAT, (100.0, 106.0, 99.0, 105.0))
    sim = run(prices, entry_at(4, 1, "short"), {"stop_loss_distance": series(4, {}, 4.0)})
    assert reason(sim) == "stop_loss" and sim.trades["exit_price"][0] == 104.0


def test_a_series_size_commits_its_fraction_of_equity() -> None:
    prices = bars(FLAT, FLAT, FLAT, FLAT)
    sim = run(prices, entry_at(4, 1), {"size": series(4, {1: 0.25}, 0.9)})
    assert sim.open_trades["qty"].tolist() == [] and sim.trades["qty"][0] == 2.5  # 250 / 100


@pytest.mark.parametrize("value", [NAN, -1.0, 0.0, math.inf])
def test_no_entry_where_a_level_is_not_a_positive_number(value: float) -> None:
    prices = bars(FLAT, FLAT, FLAT, FLAT)
    for slot in ("stop_loss_distance", "size", "take_profit"):
        sim = run(prices, entry_at(4, 1), {slot: series(4, {1: value})})
        assert sim.trade_count == 0 and sim.undefined_levels == 1
        assert np.all(sim.position == 0.0)


def test_a_constant_percentage_series_is_the_setting_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    prices = (close, close * 1.01, close * 0.99, close)
    rules = {"entry_long": rng.random(300) < 0.1, "exit_long": rng.random(300) < 0.05}
    setting = simulate(*prices, rules, FREE.replace(stop_loss=0.03, trailing_stop=0.02))
    written = simulate(*prices, rules, FREE, levels={"stop_loss": np.full(300, 0.03),
                                                     "trailing_stop": np.full(300, 0.02)})
    np.testing.assert_array_equal(setting.equity, written.equity)
    assert setting.trade_count == written.trade_count > 5


LEVELS = ("stop_loss", "stop_loss_distance", "take_profit", "take_profit_distance",
          "trailing_stop", "trailing_stop_distance", "size")


@st.composite
def cases(draw: st.DrawFn) -> tuple[tuple[np.ndarray, ...], dict[str, np.ndarray],
                                    dict[str, np.ndarray], SimSettings]:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(2, 120))
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.02, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.02, n)))
    rules = {slot: rng.random(n) < 0.15 for slot in
             ("entry_long", "exit_long", "entry_short", "exit_short")
             if draw(st.booleans())}
    levels = {}
    for slot in draw(st.lists(st.sampled_from(LEVELS), unique=True, max_size=3)):
        scale = {"size": 0.8}.get(slot, 0.03 if "distance" not in slot else 3.0)
        values = rng.uniform(-0.2, 1.5, n) * scale
        values[rng.random(n) < 0.1] = np.nan
        levels[slot] = values
    fill = draw(st.sampled_from(("next_open", "close")))
    s = SimSettings(capital=10_000.0, fill=fill, fees=0.001, slippage=0.0005,
                    leverage=draw(st.sampled_from((1.0, 2.0))))
    return (open_, high, low, close), rules, levels, s


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_every_driver_and_the_reference_agree(case: tuple) -> None:  # type: ignore[type-arg]
    prices, rules, levels, s = case
    fast = run(prices, rules, levels, s)
    n = len(prices[3])
    slot = Slot(*prices, times=np.arange(n, dtype=np.float64) * 3600.0,
                timeframe_seconds=3600, rules=rules, settings=s, levels=levels)
    clocked = simulate_slots([slot], s.capital)
    assert clocked.undefined_levels == fast.undefined_levels
    np.testing.assert_allclose(clocked.equity[1:], fast.equity, rtol=0, atol=1e-9)
