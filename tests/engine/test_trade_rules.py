"""The trade rules of the decide stage (docs/backtest.md §2): min/max hold, cooldown after a
stop, a loss streak, flip or flat — literal cases, each also through the reference simulator,
the bar-by-bar driver and the clock."""

from __future__ import annotations

import numpy as np

from peakdsl.engine.reference_sim import reference_simulate
from peakdsl.engine.results import EXIT_REASONS, SimResult, SimSettings
from peakdsl.engine.simulate import BarByBar, simulate
from peakdsl.engine.timeline import Slot, simulate_slots

FREE = SimSettings(capital=1_000.0, fees=0.0, slippage=0.0)


def flat(n: int, price: float = 100.0) -> tuple[np.ndarray, ...]:
    c = np.full(n, price)
    return c, c.copy(), c.copy(), c.copy()


def signals(n: int, **at: list[int]) -> dict[str, np.ndarray]:
    """Rule slots firing on the given bars (``entry_long=[1, 5]``)."""
    out = {}
    for slot, bars in at.items():
        rule = np.zeros(n, dtype=bool)
        rule[bars] = True
        out[slot] = rule
    return out


def run(prices: tuple[np.ndarray, ...], rules: dict[str, np.ndarray], **changes: object
        ) -> SimResult:
    """``simulate``, after requiring every other driver and the reference to agree."""
    s = FREE.replace(**changes)
    fast = simulate(*prices, rules, s)
    stepper = BarByBar(*prices, rules, s)
    for _ in range(len(prices[3])):
        stepper.step()
    n = len(prices[3])
    clocked = simulate_slots([Slot(*prices, times=np.arange(n) * 3600.0,
                                   timeframe_seconds=3600, rules=rules, settings=s)],
                             s.capital)
    slow = reference_simulate(*prices, rules, s)
    for other in (stepper.result(), slow):
        np.testing.assert_allclose(other.equity, fast.equity, rtol=1e-12)
        assert other.held_back == fast.held_back
        for col in ("entry_bar", "exit_bar", "exit_reason"):
            np.testing.assert_array_equal(other.trades[col], fast.trades[col])
    np.testing.assert_allclose(clocked.equity[1:], fast.equity, rtol=1e-12)
    assert clocked.held_back == fast.held_back
    return fast


def trades(sim: SimResult) -> list[tuple[int, int, str]]:
    t = sim.trades
    return [(int(a), int(b), EXIT_REASONS[int(r)])
            for a, b, r in zip(t["entry_bar"], t["exit_bar"], t["exit_reason"], strict=True)]


def test_min_hold_holds_back_early_exit_signals_but_not_later_ones() -> None:
    """Entry filled on bar 2; the exit signal of bar 3 (age 1) is held back, that of bar 5
    (age 3) fills at the open of bar 6."""
    rules = signals(9, entry_long=[1], exit_long=[3, 5])
    assert trades(run(flat(9), rules)) == [(2, 4, "signal")]
    held = run(flat(9), rules, min_hold=3)
    assert trades(held) == [(2, 6, "signal")] and held.held_back == {"min_hold": 1}


def test_min_hold_also_holds_back_a_flip() -> None:
    rules = signals(8, entry_long=[1], entry_short=[2, 4])
    assert trades(run(flat(8), rules, min_hold=2, end_of_data="close")) == [
        (2, 5, "signal"), (5, 7, "end_of_data")]


def test_max_hold_closes_without_a_rule() -> None:
    """next_open: filled on bar 2, age 2 at the close of bar 4 → out at the open of bar 5;
    close fills: in on bar 1, out at the close of bar 3."""
    rules = signals(8, entry_long=[1])
    assert trades(run(flat(8), rules, max_hold=2)) == [(2, 5, "max_hold")]
    assert trades(run(flat(8), rules, max_hold=2, fill="close")) == [(1, 3, "max_hold")]


def test_cooldown_after_stop_ignores_entries_for_n_bars() -> None:
    """A 5% stop hit on bar 3; with a cooldown of 3 the entry signals of bars 3–5 are
    ignored and that of bar 6 fills on bar 7."""
    o, h, lo, c = flat(10)
    lo[3] = 90.0
    rules = signals(10, entry_long=[1, 3, 4, 5, 6])
    free = run((o, h, lo, c), rules, stop_loss=0.05)
    assert trades(free)[:2] == [(2, 3, "stop_loss"), (4, 9, "end_of_data")]
    cool = run((o, h, lo, c), rules, stop_loss=0.05, cooldown_after_stop=3)
    assert trades(cool) == [(2, 3, "stop_loss"), (7, 9, "end_of_data")]
    assert cool.held_back == {"cooldown_after_stop": 3}


def test_max_consecutive_losses_stops_entering() -> None:
    """Each trade buys at 100 and sells at 99: two losses in a row, then no more entries."""
    o, h, lo, c = flat(12)
    for bar in (3, 6, 9):
        o[bar] = h[bar] = lo[bar] = c[bar] = 99.0
    rules = signals(12, entry_long=[1, 4, 7], exit_long=[2, 5, 8])
    assert len(trades(run((o, h, lo, c), rules))) == 3
    halted = run((o, h, lo, c), rules, max_consecutive_losses=2)
    assert trades(halted) == [(2, 3, "signal"), (5, 6, "signal")]
    assert halted.held_back == {"max_consecutive_losses": 1}


def test_reversal_flat_closes_without_entering_the_other_side() -> None:
    rules = signals(8, entry_long=[1], entry_short=[3])
    flip = run(flat(8), rules)
    assert trades(flip) == [(2, 4, "signal"), (4, 7, "end_of_data")]
    assert trades(run(flat(8), rules, reversal="flat")) == [(2, 4, "signal")]
