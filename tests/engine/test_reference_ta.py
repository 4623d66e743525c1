"""The reference implementations of the ported indicators (``engine/reference_ta.py``):
literal values worked out by hand, the missing-value rules, and the interpreter calling
them (implicit columns, conditions, an occurrence of 0) as the compiled program calls the
kernels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from peakdsl.engine.kernels import KERNELS
from peakdsl.engine.kernels_ta import KERNELS as TA_KERNELS
from peakdsl.engine.reference import REFERENCE, reference_evaluate
from peakdsl.engine.reference_ta import REFERENCE_TA
from peakdsl.lang.builtins import BUILTINS
from peakdsl.lang.checker import CheckedSpec, check_module
from peakdsl.lang.diagnostics import Severity
from peakdsl.lang.parser import parse_text

nan = math.nan
F, T = False, True
HLC = (np.array([10.0, 12, 11, 15]), np.array([8.0, 9, 9.5, 14]), np.array([9.0, 11, 10, 14.5]))
TP = np.array([10.0, 11, 10, 12])  # high = low = close: the typical price itself
VOL = np.array([1.0, 2, 3, 4])
STEPS = np.array([2.0, 4, 6, 8, 12, 10])  # true range with high/low ±1: |Δ| + 1
OHLC = tuple(np.array(v) for v in ([10.0, 11, 12], [12.0, 13, 14], [9.0, 10, 11],
                                     [11.0, 12, 11.5]))

# name, arguments, expected: each worked out in test_kernels_ta.py's comments
LITERAL: list[tuple[str, tuple[Any, ...], list[float]]] = [
    ("stoch_k", (*HLC, 2), [nan, 75, 100 / 3, 1000 / 11]),
    ("stoch_d", (*HLC, 2, 2), [nan, nan, (75 + 100 / 3) / 2, (100 / 3 + 1000 / 11) / 2]),
    ("willr", (*HLC, 2), [nan, -25, -200 / 3, -100 / 11]),
    ("cci", (np.array([1.0, 2, 3, 4, 1]), 3), [nan, nan, 100, 100, -100]),
    ("cci", (np.full(3, 3.0), 3), [nan, nan, 0]),
    ("mfi", (TP, TP, TP, VOL, 2), [nan, nan, 2200 / 52, 4800 / 78]),
    ("obv", (np.array([10.0, 11, 11, 10, 12]), np.array([5.0, 1, 2, 3, 4])), [nan, 1, 1, -2, 2]),
    ("vwap", (TP, TP, TP, VOL, 2), [nan, 32 / 3, 52 / 5, 78 / 7]),
    ("kc_middle", (STEPS, 3), [nan, nan, 4, 6, 9, 9.5]),
    ("kc_upper", (STEPS + 1, STEPS - 1, STEPS, 3, 2.0), [nan, nan, nan, 12, 17, 16.5]),
    ("kc_lower", (STEPS + 1, STEPS - 1, STEPS, 3, 2.0), [nan, nan, nan, 0, 1, 2.5]),
    ("donchian_upper", (HLC[0], 2), [nan, 12, 12, 15]),
    ("donchian_lower", (HLC[1], 2), [nan, 8, 9, 9.5]),
    ("donchian_middle", (*HLC[:2], 2), [nan, 10, 10.5, 12.25]),
    ("ichimoku_tenkan", (*HLC[:2], 1), [9, 10.5, 10.25, 14.5]),
    ("ichimoku_senkou_a", (*HLC[:2], 1, 2, 1), [nan, nan, 10.25, 10.375]),
    ("ichimoku_senkou_b", (*HLC[:2], 2, 1), [nan, nan, 10, 10.5]),
    ("ha_open", OHLC, [10.5, 10.5, 11]),
    ("ha_high", OHLC, [12, 13, 14]),
    ("ha_low", OHLC, [9, 10, 11]),
    ("ha_close", OHLC, [10.5, 11.5, 12.125]),
    ("supertrend", (*HLC, 1.0, 1), [nan, 13.5, 11.75, 9.5]),
    ("supertrend_dir", (*HLC, 1.0, 1), [nan, -1, -1, 1]),
    ("sum", (np.array([1.0, nan, 3, 4]), 2), [nan, nan, nan, 7]),
    ("cumsum", (np.array([1.0, nan, 2, 3]),), [1, nan, 3, 6]),
    ("barssince", (np.array([F, T, F, F, T]),), [nan, 0, 1, 2, 0]),
    ("valuewhen", (np.array([T, F, T, F, T]), np.arange(1.0, 6), 1), [nan, nan, 1, 1, 3]),
    ("valuewhen", (np.array([T, F, T, F, T]), np.arange(1.0, 6), 0), [1, 1, 3, 3, 5]),
]


@pytest.mark.parametrize(("name", "args", "want"), LITERAL,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(LITERAL)])
def test_literal_values(name: str, args: tuple[Any, ...], want: list[float]) -> None:
    got = REFERENCE_TA[name](*args)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.array(want, dtype=float), rtol=1e-12, atol=1e-12)


def test_the_table_is_merged_and_matches_the_kernels() -> None:
    assert all(REFERENCE[name] is ref for name, ref in REFERENCE_TA.items())
    assert set(REFERENCE_TA) == set(TA_KERNELS) <= set(BUILTINS)


def test_missing_values() -> None:
    """Windows need every value; Heikin-Ashi continues from the last complete candle; the
    Supertrend starts at the first bar with an ATR and a close."""
    ref = REFERENCE_TA
    np.testing.assert_array_equal(np.isnan(ref["cci"](np.array([1.0, nan, 3, 4, 5]), 2)),
                                  [T, T, T, F, F])
    opens = OHLC[0].copy()
    opens[1] = nan
    np.testing.assert_allclose(ref["ha_open"](opens, *OHLC[1:]), [10.5, nan, 10.5])
    gap = [v.copy() for v in HLC]
    gap[2][1] = nan  # no close at bar 1: no true range at bar 2, no Supertrend at 1 or 2;
    # bar 3 is the first that counts: a downtrend on its upper band 14.5 + 5
    np.testing.assert_allclose(ref["supertrend"](*gap, 1.0, 1), [nan, nan, nan, 19.5])


def test_numbers_as_conditions_are_true_where_finite_and_not_zero() -> None:
    np.testing.assert_allclose(REFERENCE_TA["barssince"](np.array([0.0, 2.0, nan, 0.0])),
                               [nan, 0, 1, 2])


# ---------------------------------------------------------------- through the interpreter

STRATEGY = """\
strategy every_ported {
    market BTC/EUR
    timeframe 1h
    param w: int = 4 in 1..30
    param back: int = 0 in 0..3
    param width: float = 2 in 1..3 step 0.5

    let up = close > open
    let a_stoch_k = stoch_k(w)
    let a_stoch_d = stoch_d(w, 3)
    let a_willr = willr(5)
    let a_cci = cci(hlc3, w)
    let a_mfi = mfi(w)
    let a_obv = obv()
    let a_vwap = vwap(w)
    let a_session_vwap = session_vwap()
    let a_kc_upper = kc_upper(w, width)
    let a_kc_middle = kc_middle(5)
    let a_kc_lower = kc_lower(6, 1.5)
    let a_donchian_upper = donchian_upper(w)
    let a_donchian_lower = donchian_lower(3)
    let a_donchian_middle = donchian_middle(w)
    let a_ichimoku_tenkan = ichimoku_tenkan(3)
    let a_ichimoku_kijun = ichimoku_kijun(w)
    let a_ichimoku_senkou_a = ichimoku_senkou_a(3, w, 5)
    let a_ichimoku_senkou_b = ichimoku_senkou_b(w, 2)
    let a_ha_open = ha_open()
    let a_ha_high = ha_high()
    let a_ha_low = ha_low()
    let a_ha_close = ha_close()
    let a_supertrend = supertrend(width, w)
    let a_supertrend_dir = supertrend_dir(2, 3)
    let a_sum = sum(volume, w)
    let a_cumsum = cumsum(close - open)
    let a_barssince = barssince(up)
    let a_valuewhen = valuewhen(up and volume > 2, low, back)

    entry long when a_barssince > 2 and close > a_valuewhen
    size 25% of equity
}
"""


def checked(text: str, name: str) -> CheckedSpec:
    parsed = parse_text(text, f"{name}.peak")
    assert parsed.module is not None, parsed.diagnostics
    spec, diagnostics = check_module(parsed.module)
    assert not [d for d in diagnostics if d.severity is Severity.ERROR], diagnostics
    return spec


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 150)))
    o = np.concatenate([[100.0], c[:-1]])
    return pd.DataFrame({
        "open": o, "close": c,
        "high": np.maximum(o, c) * (1 + rng.uniform(0, 0.01, 150)),
        "low": np.minimum(o, c) * (1 - rng.uniform(0, 0.01, 150)),
        "volume": rng.uniform(1, 4, 150),
    }, index=pd.date_range("2024-05-01 17:00", periods=150, freq="h", tz="UTC"))


def kernel_args(name: str, cols: dict[str, np.ndarray], p: dict[str, float]) -> list[Any]:
    """What the compiled program passes ``KERNELS[name]`` for the let ``a_<name>`` above."""
    w, back, width = int(p["w"]), int(p["back"]), p["width"]
    h, lo, c, v, o = (cols[k] for k in ("high", "low", "close", "volume", "open"))
    up = c > o
    table: dict[str, list[Any]] = {
        "stoch_k": [h, lo, c, w], "stoch_d": [h, lo, c, w, 3], "willr": [h, lo, c, 5],
        "cci": [(h + lo + c) / 3, w], "mfi": [h, lo, c, v, w], "obv": [c, v],
        "vwap": [h, lo, c, v, w], "session_vwap": [h, lo, c, v, cols["time"]],
        "kc_upper": [h, lo, c, w, width], "kc_middle": [c, 5],
        "kc_lower": [h, lo, c, 6, 1.5], "donchian_upper": [h, w], "donchian_lower": [lo, 3],
        "donchian_middle": [h, lo, w], "ichimoku_tenkan": [h, lo, 3],
        "ichimoku_kijun": [h, lo, w], "ichimoku_senkou_a": [h, lo, 3, w, 5],
        "ichimoku_senkou_b": [h, lo, w, 2], "ha_open": [o, h, lo, c], "ha_high": [o, h, lo, c],
        "ha_low": [o, h, lo, c], "ha_close": [o, h, lo, c], "supertrend": [h, lo, c, width, w],
        "supertrend_dir": [h, lo, c, 2.0, 3], "sum": [v, w], "cumsum": [c - o],
        "barssince": [up], "valuewhen": [up & (v > 2), lo, back],
    }
    return table[name]


@pytest.mark.parametrize("params", [None, {"w": 1.0, "back": 3.0}, {"w": 9.0, "width": 3.0}])
def test_interpreter_calls_them_as_the_program_calls_the_kernels(
        params: dict[str, float] | None) -> None:
    data = frame()
    out = reference_evaluate(checked(STRATEGY, "every_ported"), data, params)
    values = {"w": 4.0, "back": 0.0, "width": 2.0} | (params or {})
    cols = {k: data[k].to_numpy() for k in data}
    cols["time"] = (data.index.as_unit("ns").asi8 // 10**9).astype(float)
    assert {n for n in REFERENCE_TA if f"a_{n}" in out} == set(REFERENCE_TA)
    for name in REFERENCE_TA:
        want = KERNELS[name](*kernel_args(name, cols, values))
        got = out[f"a_{name}"]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), name)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=name)
