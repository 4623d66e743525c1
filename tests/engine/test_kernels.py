"""Indicator kernels: literal values, the warm-up contract, gaps, and agreement with the
slow reference implementations on random data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakdsl.engine.kernels import KERNELS, STATES
from peakdsl.engine.reference import REFERENCE
from peakdsl.lang.builtins import BUILTINS, Arg
from peakdsl.lang.lookback import Lookback

nan = math.nan
# bodies: test_scan.py; align (a frame read at the strategy's bars): test_frame_stream.py
KERNEL_NAMES = sorted(set(KERNELS) - {"state", "position_rule", "align"})
BOOL_KERNELS = {"rising", "falling"}
# every kernel with its default, plus each other mode of the built-ins that have modes
CASES = [(name, None) for name in KERNEL_NAMES] + [
    (name, choice) for name in KERNEL_NAMES if name in BUILTINS and BUILTINS[name].mode
    for choice in BUILTINS[name].mode.choices[1:]]  # type: ignore[union-attr]
CASE_IDS = [f"{n}-{m}" if m else n for n, m in CASES]


def close(got: Any, want: list[float], rtol: float = 1e-12) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.array(want, dtype=float),
                               rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------- the table


def test_table_covers_every_non_elementwise_builtin_plus_lag() -> None:
    expected = {name for name, b in BUILTINS.items()
                if not b.elementwise and name not in ("crossover", "crossunder")}
    assert set(KERNELS) == expected | {"lag", "state", "position_rule", "align"}


def test_reference_covers_every_builtin_plus_lag() -> None:
    assert set(REFERENCE) == set(BUILTINS) | {"lag"}


# ---------------------------------------------------------------- literal values


def test_sma() -> None:
    close(KERNELS["sma"](np.arange(1.0, 11.0), 3), [nan, nan, 2, 3, 4, 5, 6, 7, 8, 9])
    close(KERNELS["sma"]([4.0, 8.0], 1), [4, 8])


def test_ema_seeded_with_the_sma_of_the_first_n() -> None:
    # alpha = 2/(3+1) = 0.5; seed (2+4+6)/3 = 4 at index 2
    close(KERNELS["ema"]([2.0, 4, 6, 8, 12, 10], 3), [nan, nan, 4, 6, 9, 9.5])


def test_rma_wilder() -> None:
    # alpha = 1/3: 4, (2·4 + 8)/3, (2·16/3 + 12)/3, (2·68/9 + 10)/3
    close(KERNELS["rma"]([2.0, 4, 6, 8, 12, 10], 3), [nan, nan, 4, 16 / 3, 68 / 9, 226 / 27])


def test_wma_newest_weighs_most() -> None:
    close(KERNELS["wma"]([1.0, 2, 3, 4, 10], 3), [nan, nan, 14 / 6, 20 / 6, 41 / 6])


def test_rsi() -> None:
    # changes +1 -0.5 +1.5 -1 +2; seed g = 2.5/3, l = 0.5/3 → rs 5 → 83.33
    # then g 5/9, l 4/9 → 55.56; then g 28/27, l 8/27 → 77.78
    close(KERNELS["rsi"]([10.0, 11, 10.5, 12, 11, 13], 3),
          [nan, nan, nan, 250 / 3, 500 / 9, 700 / 9])


def test_rsi_extremes() -> None:
    close(KERNELS["rsi"]([1.0, 2, 3, 4], 2), [nan, nan, 100, 100])
    close(KERNELS["rsi"]([4.0, 3, 2, 1], 2), [nan, nan, 0, 0])
    close(KERNELS["rsi"]([5.0, 5, 5, 5], 2), [nan, nan, 50, 50])


HIGH = np.array([10.0, 12, 11, 15])
LOW = np.array([8.0, 9, 9.5, 14])
CLOSE = np.array([9.0, 11, 10, 14.5])


def test_true_range_and_atr() -> None:
    # 1: max(3, |12-9|, |9-9|) = 3; 2: max(1.5, |11-11|, |9.5-11|) = 1.5;
    # 3 (gap up): max(1, |15-10|, |14-10|) = 5
    close(KERNELS["true_range"](HIGH, LOW, CLOSE), [nan, 3, 1.5, 5])
    # rma(tr, 2): seed (3 + 1.5)/2 at index 2, then (2.25 + 5)/2
    close(KERNELS["atr"](HIGH, LOW, CLOSE, 2), [nan, nan, 2.25, 3.625])


def test_stdev_is_population() -> None:
    close(KERNELS["stdev"]([2.0, 4, 4, 4, 5, 5, 7, 9], 8), [nan] * 7 + [2])
    close(KERNELS["stdev"]([1.0, 2, 3, 4], 3), [nan, nan, math.sqrt(2 / 3), math.sqrt(2 / 3)])
    close(KERNELS["stdev"]([0.1, 0.1, 0.1], 3), [nan, nan, 0])
    assert KERNELS["stdev"]([0.1, 0.1, 0.1], 3)[2] == 0.0  # exactly


def test_zscore() -> None:
    z = 1 / math.sqrt(2 / 3)  # (3 - 2) / stdev(1, 2, 3)
    close(KERNELS["zscore"]([1.0, 2, 3, 1], 3), [nan, nan, z, -z])
    # a constant window has no deviation: NaN; then (2 - 4/3) / sqrt(2/9)
    close(KERNELS["zscore"]([1.0, 1, 1, 2], 3), [nan, nan, nan, (2 / 3) / math.sqrt(2 / 9)])


def test_roc() -> None:
    close(KERNELS["roc"]([100.0, 110, 121, 99], 1), [nan, 0.1, 0.1, 99 / 121 - 1])
    close(KERNELS["roc"]([100.0, 110, 121, 99], 2), [nan, nan, 0.21, -0.1])
    close(KERNELS["roc"]([100.0, 110], 5), [nan, nan])


def test_highest_lowest() -> None:
    x = [3.0, 1, 4, 1, 5, 9, 2, 6]
    close(KERNELS["highest"](x, 3), [nan, nan, 4, 4, 5, 9, 9, 9])
    close(KERNELS["lowest"](x, 3), [nan, nan, 1, 1, 1, 1, 2, 2])
    close(KERNELS["highest"](x, 1), x)


def test_bollinger() -> None:
    sd = math.sqrt(2 / 3)
    close(KERNELS["bb_upper"]([1.0, 2, 3], 3, 2.0), [nan, nan, 2 + 2 * sd])
    close(KERNELS["bb_lower"]([1.0, 2, 3], 3, 1.5), [nan, nan, 2 - 1.5 * sd])


def test_macd_family() -> None:
    x = [2.0, 4, 6, 8, 12, 10]
    # ema2 (alpha 2/3): 3, 5, 7, 31/3, 91/9; ema3: 4, 6, 9, 9.5
    close(KERNELS["macd"](x, 2, 3), [nan, nan, 1, 1, 4 / 3, 11 / 18])
    # ema(macd, 2): seed (1 + 1)/2 at index 3, then 2/3·4/3 + 1/3·1, 2/3·11/18 + 1/3·11/9
    close(KERNELS["macd_signal"](x, 2, 3, 2), [nan, nan, nan, 1, 11 / 9, 22 / 27])
    close(KERNELS["macd_hist"](x, 2, 3, 2), [nan, nan, nan, 0, 1 / 9, -11 / 54])


def test_directional_movement() -> None:
    h = np.array([10.0, 11, 12, 11, 13])
    lo = np.array([9.0, 10, 10, 9, 11])
    c = np.array([9.5, 10.5, 11, 10, 12])
    # bar: TR, +DM, -DM = 1: 1.5, 1, 0; 2: 2, 1, 0; 3: 2, 0, 1; 4: 3, 2, 0
    # rma(2): TR 1.75, 1.875, 2.4375; +DM 1, .5, 1.25; -DM 0, .5, .25
    close(KERNELS["plus_di"](h, lo, c, 2), [nan, nan, 400 / 7, 80 / 3, 2000 / 39])
    close(KERNELS["minus_di"](h, lo, c, 2), [nan, nan, 0, 80 / 3, 400 / 39])
    # dx: 100, 0, 200/3 → adx seed (100 + 0)/2 at 2n-1 = 3, then (50 + 200/3)/2
    close(KERNELS["adx"](h, lo, c, 2), [nan, nan, nan, 50, 175 / 3])


def test_directional_flat_bars_are_zero() -> None:
    flat = np.full(6, 5.0)
    close(KERNELS["plus_di"](flat, flat, flat, 2), [nan, nan, 0, 0, 0, 0])
    close(KERNELS["adx"](flat, flat, flat, 2), [nan, nan, nan, 0, 0, 0])


def test_percent_rank() -> None:
    close(KERNELS["percent_rank"]([1.0, 3, 2, 4, 0], 2), [nan, nan, 50, 100, 0])
    close(KERNELS["percent_rank"]([1.0, 1, 1], 2), [nan, nan, 100])  # ties count


def test_rising_falling_strict() -> None:
    x = [1.0, 2, 3, 3, 4, 5]
    assert KERNELS["rising"](x, 2).tolist() == [False, False, True, False, False, True]
    assert KERNELS["falling"]([5.0, 4, 3, 3, 2, 1], 2).tolist() == [
        False, False, True, False, False, True]
    assert KERNELS["rising"](x, 1).tolist() == [False, True, True, False, True, True]
    assert KERNELS["rising"]([1.0, nan, 3, 4], 1).tolist() == [False, False, False, True]


def test_lag() -> None:
    close(KERNELS["lag"](np.array([1.0, 2, 3]), 1), [nan, 1, 2])
    close(KERNELS["lag"](np.array([1.0, 2, 3]), 0), [1, 2, 3])
    close(KERNELS["lag"](np.array([1.0, 2, 3]), 5), [nan, nan, nan])
    out = KERNELS["lag"](np.array([True, True, False]), 1)
    assert out.dtype == np.bool_ and out.tolist() == [False, True, True]


# ---------------------------------------------------------------- gaps


def test_recursive_kernels_skip_gaps() -> None:
    out = KERNELS["ema"]([2.0, 4, 6, nan, 12, 10], 3)
    # seed 4; the NaN bar is skipped, state carried: 0.5·12 + 0.5·4 = 8, then 9
    close(out, [nan, nan, 4, nan, 8, 9])
    close(KERNELS["ema"]([2.0, nan, 4, 6, 8], 3), [nan, nan, nan, 4, 6])  # seed spans the gap


def test_window_kernels_need_full_windows() -> None:
    close(KERNELS["sma"]([1.0, 2, 3, nan, 5, 6, 7], 2), [nan, 1.5, 2.5, nan, nan, 5.5, 6.5])
    close(KERNELS["highest"]([1.0, 2, nan, 5, 6, 7], 2), [nan, 2, nan, nan, 6, 7])
    close(KERNELS["sma"]([1.0, np.inf, 3, 4], 2), [nan, nan, nan, 3.5])


# ---------------------------------------------------------------- calling and warm-up


def market(seed: int, size: int, flats: bool = False) -> dict[str, np.ndarray]:
    """A positive random walk with consistent OHLC (optionally with flat stretches) and a
    positive volume."""
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, size)))
    if flats and size > 2:
        for _ in range(max(1, size // 10)):
            start = int(rng.integers(0, size - 1))
            c[start : start + int(rng.integers(2, 6))] = c[start]
    o = np.concatenate([[c[0]], c[:-1]]) if size else c.copy()
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, size))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, size))
    if flats and size:
        same = rng.uniform(size=size) < 0.1
        h[same] = lo[same] = o[same] = c[same]
    volume = rng.uniform(1, 100, size)  # drawn last: the price columns stay as they were
    # hourly open times from 2023-11-14 22:00 UTC: sessions (session_vwap) start at bar 2
    time = 1_699_999_200.0 + 3600.0 * np.arange(size)
    return {"open": o, "high": h, "low": lo, "close": c, "volume": volume, "time": time}


def arguments(name: str, data: dict[str, np.ndarray], windows: list[int],
              k: float = 2.0, x: np.ndarray | None = None, mode: str | None = None
              ) -> list[Any]:
    """The calling convention: implicit columns first, then declared args in order, then
    the mode (when not the default)."""
    if name == "lag":
        return [data["close"] if x is None else x, windows[0] - 1]
    builtin = BUILTINS[name]
    args: list[Any] = [data[c] for c in builtin.implicit]
    ws = iter(windows)
    for _, kind in builtin.args:
        if kind is Arg.WINDOW:
            args.append(next(ws))
        elif kind is Arg.SCALAR:
            args.append(k)
        else:
            args.append(data["close"] if x is None else x)
    return args + ([mode] if mode else [])


def lookback(name: str, windows: list[int]) -> int:
    if name == "lag":
        return windows[0] - 1
    builtin = BUILTINS[name]
    values = [Lookback.const(0) for _, kind in builtin.args if kind is not Arg.WINDOW]
    n_windows = sum(1 for _, kind in builtin.args if kind is Arg.WINDOW)
    ws = [Lookback.const(w) for w in windows[:n_windows]]
    return builtin.lookback(values, ws).evaluate({})


WINDOW_SETS = [[1, 1, 1], [2, 3, 2], [3, 2, 4], [5, 12, 3], [14, 5, 9], [7, 7, 7]]


@pytest.mark.parametrize(("name", "mode"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("windows", WINDOW_SETS, ids=str)
def test_first_valid_index_is_the_lookback(name: str, mode: str | None,
                                           windows: list[int]) -> None:
    """A mode never moves the first valid value: the lookback rule holds for every mode."""
    data = market(7, 60)
    lb = lookback(name, windows)
    if mode == "sample" and windows[0] == 1:
        assert np.isnan(KERNELS[name](*arguments(name, data, windows, mode=mode))).all()
        return  # the checker rejects a one-bar sample deviation (T004)
    if name in BOOL_KERNELS:
        ramp = np.linspace(1.0, 2.0, 60)
        x = ramp if name == "rising" else ramp[::-1].copy()
        out = KERNELS[name](*arguments(name, data, windows, x=x))
        assert out.dtype == np.bool_
        assert not out[:lb].any() and out[lb:].all()
        return
    out = KERNELS[name](*arguments(name, data, windows, mode=mode))
    assert out.dtype == np.float64 and out.shape == (60,)
    assert np.isnan(out[:lb]).all()
    if name == "zscore" and windows[0] == 1:
        assert np.isnan(out).all()  # a one-bar deviation is 0: never defined
    else:
        assert np.isfinite(out[lb:]).all()


@pytest.mark.parametrize(("name", "mode"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("lead", [1, 4])
def test_leading_nans_delay_the_start(name: str, mode: str | None, lead: int) -> None:
    windows = [3, 5, 2]
    data = market(11, 40)
    padded = {k: np.concatenate([np.full(lead, nan), v]) for k, v in data.items()}
    plain = KERNELS[name](*arguments(name, data, windows, mode=mode))
    shifted = KERNELS[name](*arguments(name, padded, windows, mode=mode))
    if name in BOOL_KERNELS:
        assert not shifted[:lead].any()
    else:
        assert np.isnan(shifted[: lead + lookback(name, windows)]).all()
    np.testing.assert_array_equal(shifted[lead:], plain)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_inputs_are_not_modified_and_empty_input_works(name: str) -> None:
    data = market(3, 30)
    before = {k: v.copy() for k, v in data.items()}
    KERNELS[name](*arguments(name, data, [3, 4, 2]))
    for key, value in data.items():
        np.testing.assert_array_equal(value, before[key])
    empty = {k: np.array([], dtype=float) for k in data}
    assert KERNELS[name](*arguments(name, empty, [3, 4, 2])).shape == (0,)


def test_windows_are_validated() -> None:
    with pytest.raises(ValueError, match="window"):
        KERNELS["sma"](np.ones(3), 0)
    with pytest.raises(ValueError, match="window"):
        KERNELS["lag"](np.ones(3), -1)


def test_large_offset_keeps_precision() -> None:
    rng = np.random.default_rng(0)
    x = 1e6 + rng.normal(0, 1, 5000)
    got = KERNELS["stdev"](x, 50)
    want = np.array([np.std(x[i - 49 : i + 1]) for i in range(49, 5000)])
    np.testing.assert_allclose(got[49:], want, rtol=1e-9)
    np.testing.assert_allclose(KERNELS["sma"](x, 50)[49:],
                               [np.mean(x[i - 49 : i + 1]) for i in range(49, 5000)], rtol=1e-13)


# ---------------------------------------------------------------- agreement with reference


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    if got.dtype == np.bool_:
        np.testing.assert_array_equal(got, want)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("name", "mode"), CASES, ids=CASE_IDS)
@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 80),
       windows=st.lists(st.integers(1, 12), min_size=3, max_size=3),
       lead=st.integers(0, 8), gaps=st.integers(0, 3), flats=st.booleans(),
       k=st.floats(0, 3))
def test_kernels_agree_with_reference(name: str, mode: str | None, seed: int, size: int,
                                      windows: list[int], lead: int, gaps: int, flats: bool,
                                      k: float) -> None:
    data = market(seed, size, flats)
    rng = np.random.default_rng(seed + 1)
    for key, column in data.items():
        column[:lead] = nan
        if size:
            column[rng.integers(0, size, gaps)] = nan  # interior gaps, per column
        data[key] = column
    args = arguments(name, data, windows, k, mode=mode)
    assert_same(KERNELS[name](*args), REFERENCE[name](*args))


# ---------------------------------------------------------------- incremental forms


def test_every_kernel_has_a_state_form() -> None:
    assert set(STATES) == set(KERNELS)


def pushed(name: str, args: list[Any]) -> np.ndarray:
    """``STATES[name]`` built from the static arguments and pushed the arrays bar by bar."""
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    state = STATES[name](*(a for a in args if not isinstance(a, np.ndarray)))
    size = len(arrays[0])
    out = [state.push(*(a[i].item() for a in arrays)) for i in range(size)]
    return np.array(out, dtype=KERNELS[name](*args).dtype).reshape(size)


def assert_identical(got: np.ndarray, want: np.ndarray) -> None:
    """The same doubles (or booleans) at every bar, NaN at the same bars."""
    assert got.dtype == want.dtype and got.shape == want.shape
    same = (got == want) | (np.isnan(got) & np.isnan(want)) if got.dtype != np.bool_ \
        else got == want
    bad = np.flatnonzero(~same)
    assert bad.size == 0, f"bars {bad[:5].tolist()}: {got[bad[:5]]} != {want[bad[:5]]}"


@pytest.mark.parametrize(("name", "mode"), CASES, ids=CASE_IDS)
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 80),
       windows=st.lists(st.integers(1, 12), min_size=3, max_size=3),
       lead=st.integers(0, 8), gaps=st.integers(0, 3), flats=st.booleans(),
       k=st.floats(0, 3))
def test_state_forms_equal_the_kernels_bar_for_bar(name: str, mode: str | None, seed: int,
                                                   size: int, windows: list[int], lead: int,
                                                   gaps: int, flats: bool, k: float) -> None:
    """Exactly, not to a tolerance: each state repeats its numba loop's arithmetic."""
    data = market(seed, size, flats)
    rng = np.random.default_rng(seed + 1)
    for column in data.values():
        column[:lead] = nan
        if size:
            column[rng.integers(0, size, gaps)] = nan
    args = arguments(name, data, windows, k, mode=mode)
    assert_identical(pushed(name, args), KERNELS[name](*args))


@pytest.mark.parametrize("name", ["sma", "stdev", "zscore", "bb_upper", "bb_lower"])
@pytest.mark.parametrize("seed", range(6))
def test_rolling_sum_states_follow_the_re_summation_schedule(name: str, seed: int) -> None:
    """Prices far from 0 and outliers of 1e9 leaving the window make ``_moments`` re-sum
    early; the state form re-sums at the same bars, so the sums stay bit-identical."""
    rng = np.random.default_rng(seed)
    x = 1e6 + rng.normal(0, 1, 600)
    x[rng.integers(0, 600, 4)] = rng.choice([1e9, -1e9, 1e15, 0.0], 4)
    x[rng.integers(0, 600, 2)] = nan
    args = [x, int(rng.integers(2, 40))] + ([1.5] if name.startswith("bb") else [])
    assert_identical(pushed(name, args), KERNELS[name](*args))


def test_lag_state_keeps_booleans_boolean() -> None:
    flags = np.array([True, False, True, True, False])
    for n in range(4):
        state = STATES["lag"](n)
        got = np.array([state.push(bool(f)) for f in flags])
        assert got.dtype == np.bool_ and got.tolist() == KERNELS["lag"](flags, n).tolist()
    assert math.isnan(STATES["lag"](2).push(1.0))  # a number: NaN until two bars


def test_state_forms_validate_like_the_kernels() -> None:
    with pytest.raises(ValueError, match="window"):
        STATES["sma"](0)
    with pytest.raises(ValueError, match="window"):
        STATES["lag"](-1)
    with pytest.raises(ValueError, match="mode"):
        STATES["stdev"](5, "bogus")
    with pytest.raises(ValueError, match="mode"):
        STATES["adx"](5, "bogus")
