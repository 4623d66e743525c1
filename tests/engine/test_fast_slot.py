"""The specialised one-sided loop (engine/fast_slot.py) is the general step, bit for bit.

``simulate`` takes it for a slot entering on one side without stops or risk limits; here
random one-sided signals under every other setting (fill modes, each sizing mode, fees,
slippage, precision, leverage, end of data, warm-up) must give exactly what
``step.run_slot`` gives (``general=True``) and what the reference simulator gives.
(``tests/engine/test_step.py`` runs the library strategies through it too.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_evaluate import market  # tests/engine is on sys.path
from test_simulate import assert_same_result, random_settings

from peakdsl.engine.decide import FLAT, LONG, SHORT
from peakdsl.engine.fast_slot import specialised_side
from peakdsl.engine.reference_sim import reference_simulate
from peakdsl.engine.results import SimSettings
from peakdsl.engine.risk import NO_LIMITS, RiskLimits
from peakdsl.engine.simulate import _fast, settings_row, simulate

nan = math.nan


@pytest.mark.parametrize(("changes", "limits", "long", "short", "side"), [
    ({}, False, True, False, LONG),
    ({}, False, False, True, SHORT),
    ({}, False, False, False, LONG),  # nothing ever enters: either loop, nothing happens
    ({}, False, True, True, FLAT),  # both sides: flips and cancelling entries
    ({"stop_loss": 0.02}, False, True, False, FLAT),
    ({"take_profit": 0.05}, False, True, False, FLAT),
    ({"trailing_stop": 0.03}, False, False, True, FLAT),
    ({}, True, True, False, FLAT),  # risk limits need the general loop's risk stage
])
def test_when_the_specialised_loop_applies(changes: dict[str, float], limits: bool,
                                           long: bool, short: bool, side: int) -> None:
    row = settings_row(SimSettings().replace(**changes))[0]
    assert specialised_side(row, limits, long, short) == side


NO_TRADE_RULES = {"min_hold": 0, "max_hold": 0, "cooldown_after_stop": 0,
                  "max_consecutive_losses": 0}


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 160), density=st.floats(0.02, 0.6),
       warmup=st.integers(0, 12), short=st.booleans(), data=st.data())
def test_the_specialised_loop_is_the_general_one(seed: int, n: int, density: float,
                                                 warmup: int, short: bool,
                                                 data: st.DataObject) -> None:
    rng = np.random.default_rng(seed)
    frame = market(seed, n)
    side = "short" if short else "long"
    rules = {f"entry_{side}": rng.random(n) < density, f"exit_{side}": rng.random(n) < density}
    if rng.random() < 0.3:  # the other side present but never true: still one-sided
        other = "long" if short else "short"
        rules[f"entry_{other}"] = np.zeros(n, dtype=bool)
    s = data.draw(random_settings(SimSettings(warmup=warmup))).replace(
        stop_loss=nan, take_profit=nan, trailing_stop=nan, **NO_TRADE_RULES)
    ohlc = tuple(frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    fast = _fast(*ohlc, rules, s, None, NO_LIMITS)
    assert fast is not None
    general = simulate(*ohlc, rules, s, general=True)
    for name in ("equity", "position"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name))
    for col in general.trades:
        np.testing.assert_array_equal(fast.trades[col], general.trades[col], err_msg=col)
        np.testing.assert_array_equal(fast.open_trades[col], general.open_trades[col])
    assert (fast.fees_paid, fast.ambiguous_bars, fast.risk) == (
        general.fees_paid, general.ambiguous_bars, general.risk)
    assert_same_result(fast, reference_simulate(*ohlc, rules, s))


def test_simulate_takes_it_only_when_it_applies() -> None:
    """Same inputs, three runs: one-sided and stop-free goes the specialised way; a stop or
    a risk limit sends the same signals through the general loop, with the same trades
    where the stop and the limit never bind."""
    n = 60
    c = 100 + np.sin(np.arange(n) / 3)
    rules = {"entry_long": np.arange(n) % 9 == 0, "exit_long": np.arange(n) % 9 == 4}
    s = SimSettings(capital=1000.0)
    assert _fast(c, c, c, c, rules, s, None, NO_LIMITS) is not None
    assert _fast(c, c, c, c, rules, s.replace(stop_loss=0.5), None, NO_LIMITS) is None
    wide = RiskLimits(max_order_notional=1e9)
    assert _fast(c, c, c, c, rules, s, None, wide) is None
    base = simulate(c, c, c, c, rules, s)
    far_stop = simulate(c, c, c, c, rules, s.replace(stop_loss=0.5))
    assert base.trade_count == 7
    np.testing.assert_array_equal(base.equity, far_stop.equity)
    with pytest.raises(ValueError, match="`times` has 3 entries"):
        simulate(c, c, c, c, rules, s, times=np.arange(3))
    with pytest.raises(ValueError, match="rule `exit_short` has shape"):
        simulate(c, c, c, c, {**rules, "exit_short": np.zeros(3, dtype=bool)}, s)


@pytest.mark.parametrize("changes", [
    {}, {"fill": "close", "sizing_mode": "vol_target", "end_of_data": "mark",
         "calendar": "weekdays", "warmup": 7, "stop_loss": 0.1, "leverage": 2.5}])
def test_the_settings_row_is_the_records_matrix(changes: dict[str, object]) -> None:
    """``simulate`` builds the settings row without a structured array: same numbers."""
    from peakdsl.engine.settings import as_matrix, to_records

    s = SimSettings().replace(**changes)
    np.testing.assert_array_equal(settings_row(s), as_matrix(to_records([s])))
