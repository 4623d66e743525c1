"""The ported indicators (``engine/kernels_ta.py``): literal values on hand-computable series,
and agreement with independent pandas/numpy implementations written here from each
indicator's published definition. The generic contract (first valid index, leading NaNs,
state forms bit for bit, the reference) is ``test_kernels.py``'s, which covers every
``KERNELS`` entry; the cases below are the ones it cannot express."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from peakdsl.engine.kernels import KERNELS, STATES
from peakdsl.engine.kernels_ta import KERNELS as TA

nan = math.nan
F, T = False, True

HIGH = np.array([10.0, 12, 11, 15])
LOW = np.array([8.0, 9, 9.5, 14])
CLOSE = np.array([9.0, 11, 10, 14.5])
HLC = (HIGH, LOW, CLOSE)


def close(got: np.ndarray, want: list[float]) -> None:
    np.testing.assert_allclose(got, np.array(want, dtype=float), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- literal values


def test_the_ported_kernels_are_in_the_tables() -> None:
    assert set(TA) <= set(KERNELS) and set(TA) <= set(STATES)


def test_stochastic() -> None:
    # n = 2: bar 1 range 8..12, close 11 → 75; bar 2 9..12, 10 → 100/3; bar 3 9.5..15 → 5/5.5
    close(KERNELS["stoch_k"](*HLC, 2), [nan, 75, 100 / 3, 1000 / 11])
    close(KERNELS["stoch_d"](*HLC, 2, 2), [nan, nan, (75 + 100 / 3) / 2, (100 / 3 + 1000 / 11) / 2])
    flat = np.full(3, 5.0)
    close(KERNELS["stoch_k"](flat, flat, flat, 2), [nan, nan, nan])  # no range: missing


def test_williams_r_is_minus_the_distance_from_the_high() -> None:
    close(KERNELS["willr"](*HLC, 2), [nan, -25, -200 / 3, -100 / 11])


def test_cci() -> None:
    # window 1, 2, 3: mean 2, mean deviation 2/3 → (3 - 2) / (0.015 · 2/3) = 100
    close(KERNELS["cci"]([1.0, 2, 3, 4, 1], 3), [nan, nan, 100, 100, -100])
    close(KERNELS["cci"]([3.0, 3, 3], 3), [nan, nan, 0])  # no deviation: 0, as TA-Lib


def test_money_flow() -> None:
    tp = np.array([10.0, 11, 10, 12])  # high = low = close: the typical price itself
    volume = np.array([1.0, 2, 3, 4])
    # flows: bar 1 +22, bar 2 -30, bar 3 +48; n = 2 → 100·22/52, 100·48/78
    close(KERNELS["mfi"](tp, tp, tp, volume, 2), [nan, nan, 2200 / 52, 4800 / 78])
    close(KERNELS["mfi"](tp, tp, tp, volume, 1), [nan, 100, 0, 100])
    flat = np.full(3, 7.0)
    close(KERNELS["mfi"](flat, flat, flat, volume[:3], 1), [nan, 50, 50])  # nothing moved


def test_on_balance_volume() -> None:
    c = np.array([10.0, 11, 11, 10, 12])
    close(KERNELS["obv"](c, np.array([5.0, 1, 2, 3, 4])), [nan, 1, 1, -2, 2])
    # a missing close: that bar and the next (no previous close) add nothing
    c[2] = nan
    close(KERNELS["obv"](c, np.array([5.0, 1, 2, 3, 4])), [nan, 1, nan, nan, 5])


def test_rolling_vwap() -> None:
    tp = np.array([10.0, 11, 10, 12])
    volume = np.array([1.0, 2, 3, 4])
    close(KERNELS["vwap"](tp, tp, tp, volume, 2), [nan, 32 / 3, 52 / 5, 78 / 7])
    close(KERNELS["vwap"](tp, tp, tp, np.zeros(4), 2), [nan, nan, nan, nan])


def test_keltner_uses_an_ema_of_the_true_range() -> None:
    c = np.array([2.0, 4, 6, 8, 12, 10])
    h, lo = c + 1, c - 1  # true range |Δclose| + 1: 3, 3, 3, 5, 3
    # ema(close, 3): 4, 6, 9, 9.5 from bar 2; ema(tr, 3): 3 at bar 3, then 4, 3.5
    close(KERNELS["kc_middle"](c, 3), [nan, nan, 4, 6, 9, 9.5])
    close(KERNELS["kc_upper"](h, lo, c, 3, 2.0), [nan, nan, nan, 12, 17, 16.5])
    close(KERNELS["kc_lower"](h, lo, c, 3, 2.0), [nan, nan, nan, 0, 1, 2.5])


def test_donchian_and_ichimoku() -> None:
    close(KERNELS["donchian_upper"](HIGH, 2), [nan, 12, 12, 15])
    close(KERNELS["donchian_lower"](LOW, 2), [nan, 8, 9, 9.5])
    close(KERNELS["donchian_middle"](HIGH, LOW, 2), [nan, 10, 10.5, 12.25])
    close(KERNELS["ichimoku_kijun"](HIGH, LOW, 2), [nan, 10, 10.5, 12.25])
    close(KERNELS["ichimoku_tenkan"](HIGH, LOW, 1), [9, 10.5, 10.25, 14.5])
    # the spans as seen at each bar: the lines of d = 1 bar before
    close(KERNELS["ichimoku_senkou_b"](HIGH, LOW, 2, 1), [nan, nan, 10, 10.5])
    close(KERNELS["ichimoku_senkou_a"](HIGH, LOW, 1, 2, 1), [nan, nan, 10.25, 10.375])


def test_heikin_ashi() -> None:
    o, h, lo, c = (np.array(v) for v in ([10.0, 11, 12], [12.0, 13, 14], [9.0, 10, 11],
                                           [11.0, 12, 11.5]))
    # bar 0: close 42/4, open (10 + 11)/2; bar 1: close 46/4, open (10.5 + 10.5)/2;
    # bar 2: close 48.5/4, open (10.5 + 11.5)/2
    close(KERNELS["ha_close"](o, h, lo, c), [10.5, 11.5, 12.125])
    close(KERNELS["ha_open"](o, h, lo, c), [10.5, 10.5, 11])
    close(KERNELS["ha_high"](o, h, lo, c), [12, 13, 14])
    close(KERNELS["ha_low"](o, h, lo, c), [9, 10, 11])
    o[1] = nan  # an incomplete bar is skipped: bar 2 continues from bar 0's candle
    close(KERNELS["ha_open"](o, h, lo, c), [10.5, nan, 10.5])


def test_supertrend() -> None:
    # n = 1, k = 1: atr = true range 3, 1.5, 5 from bar 1
    # bar 1: bands 7.5 / 13.5, first bar: down, line = upper 13.5
    # bar 2: 8.75 / 11.75 (both tighten); close 10 stays below 11.75: down, 11.75
    # bar 3: 9.5 / 19.5, upper held at 11.75 (close[1] 10 <= 11.75); close 14.5 > 11.75:
    #        up, line = lower 9.5
    close(KERNELS["supertrend"](*HLC, 1.0, 1), [nan, 13.5, 11.75, 9.5])
    close(KERNELS["supertrend_dir"](*HLC, 1.0, 1), [nan, -1, -1, 1])


def test_running_aggregates() -> None:
    close(KERNELS["sum"]([1.0, 2, 3, 4], 2), [nan, 3, 5, 7])
    close(KERNELS["sum"]([1.0, nan, 3, 4], 2), [nan, nan, nan, 7])
    close(KERNELS["cumsum"]([1.0, nan, 2, 3]), [1, nan, 3, 6])
    cond = np.array([F, T, F, F, T])
    close(KERNELS["barssince"](cond), [nan, 0, 1, 2, 0])
    hits = np.array([T, F, T, F, T])
    x = np.array([1.0, 2, 3, 4, 5])
    close(KERNELS["valuewhen"](hits, x, 0), [1, 1, 3, 3, 5])
    close(KERNELS["valuewhen"](hits, x, 1), [nan, nan, 1, 1, 3])
    close(KERNELS["valuewhen"](hits, x, 2), [nan, nan, nan, nan, 1])


def test_a_sum_of_equal_values_is_exact() -> None:
    assert KERNELS["sum"](np.full(5, 0.1), 3)[2:].tolist() == [0.1 * 3] * 3


def test_occurrence_zero_is_valid_and_negative_is_not() -> None:
    with pytest.raises(ValueError, match="window"):
        KERNELS["valuewhen"](np.ones(3, bool), np.ones(3), -1)
    with pytest.raises(ValueError, match="window"):
        STATES["valuewhen"](-1)
    with pytest.raises(ValueError, match="window"):
        KERNELS["sum"](np.ones(3), 0)


def test_conditions_pushed_as_booleans() -> None:
    """The live stream pushes Python and numpy booleans alike."""
    state = STATES["barssince"]()
    got = [state.push(v) for v in (False, True, False, np.bool_(True))]
    assert math.isnan(got[0]) and got[1:] == [0.0, 1.0, 0.0]
    state = STATES["valuewhen"](0)
    assert math.isnan(state.push(np.bool_(False), 1.0)) and state.push(True, 2.0) == 2.0


# ---------------------------------------------------------------- independent implementations


def market(seed: int = 3, size: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, size)))
    o = np.concatenate([[c[0]], c[:-1]])
    return pd.DataFrame({
        "open": o, "close": c,
        "high": np.maximum(o, c) * (1 + rng.uniform(0, 0.01, size)),
        "low": np.minimum(o, c) * (1 - rng.uniform(0, 0.01, size)),
        "volume": rng.uniform(1, 50, size),
    })


DATA = market()
H, L, C, V = (DATA[k] for k in ("high", "low", "close", "volume"))
COLS = {k: DATA[k].to_numpy() for k in DATA}


def same(got: np.ndarray, want: pd.Series | np.ndarray, rtol: float = 1e-10) -> None:
    expected = np.asarray(want, dtype=float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-9)


def sma_seeded_ewm(x: pd.Series, n: int, alpha: float) -> pd.Series:
    """The exponential average seeded with the mean of the first n values (TA-Lib's EMA and
    Wilder's average): pandas' ``ewm(adjust=False)`` recursion started from that mean."""
    valid = x.dropna()
    seed = valid.iloc[:n].mean()
    start = valid.index[n - 1]
    tail = pd.concat([pd.Series([seed], index=[start]), valid.loc[start:].iloc[1:]])
    return tail.ewm(alpha=alpha, adjust=False).mean().reindex(x.index)


def true_range() -> pd.Series:
    prev = C.shift(1)
    return pd.concat([H - L, (H - prev).abs(), (L - prev).abs()], axis=1).max(axis=1,
                                                                              skipna=False)


@pytest.mark.parametrize("n", [5, 14])
def test_stochastic_as_lane_defined_it(n: int) -> None:
    # George Lane: %K = 100 · (C - lowest low n) / (highest high n - lowest low n); %D = SMA3
    k = 100 * (C - L.rolling(n).min()) / (H.rolling(n).max() - L.rolling(n).min())
    same(KERNELS["stoch_k"](H, L, C, n), k)
    same(KERNELS["stoch_d"](H, L, C, n, 3), k.rolling(3).mean())


@pytest.mark.parametrize("n", [5, 14])
def test_williams_r_as_defined(n: int) -> None:
    # Larry Williams: %R = (highest high - close) / (highest high - lowest low) · -100
    hh, ll = H.rolling(n).max(), L.rolling(n).min()
    same(KERNELS["willr"](H, L, C, n), (hh - C) / (hh - ll) * -100)


@pytest.mark.parametrize("n", [5, 20])
def test_cci_as_lambert_defined_it(n: int) -> None:
    # Donald Lambert (1980): CCI = (TP - SMA(TP)) / (0.015 · mean deviation of TP)
    tp = (H + L + C) / 3
    mean_dev = tp.rolling(n).apply(lambda w: np.mean(np.abs(w - w.mean())), raw=True)
    same(KERNELS["cci"](tp, n), (tp - tp.rolling(n).mean()) / (0.015 * mean_dev), rtol=1e-8)


@pytest.mark.parametrize("n", [3, 14])
def test_mfi_as_defined(n: int) -> None:
    # Quong & Soudack (1989): money flow = TP · volume, positive when TP rose, negative when
    # it fell; MFI = 100 - 100 / (1 + Σ positive / Σ negative) over n bars
    tp = (H + L + C) / 3
    flow = tp * V
    pos = flow.where(tp.diff() > 0, 0.0).where(tp.diff().notna())
    neg = flow.where(tp.diff() < 0, 0.0).where(tp.diff().notna())
    ratio = pos.rolling(n).sum() / neg.rolling(n).sum()
    same(KERNELS["mfi"](H, L, C, V, n), 100 - 100 / (1 + ratio))


def test_obv_as_granville_defined_it() -> None:
    # Joe Granville (1963): add the volume on up closes, subtract it on down closes
    signed = (np.sign(C.diff()) * V).iloc[1:]
    same(KERNELS["obv"](C, V), pd.concat([pd.Series([nan]), signed.cumsum()]).to_numpy())


@pytest.mark.parametrize("n", [1, 20])
def test_rolling_vwap_as_defined(n: int) -> None:
    # Σ(typical price · volume) / Σ volume over the last n bars
    tp = (H + L + C) / 3
    same(KERNELS["vwap"](H, L, C, V, n), (tp * V).rolling(n).sum() / V.rolling(n).sum())


@pytest.mark.parametrize(("n", "k"), [(20, 2.0), (10, 1.5)])
def test_keltner_as_tradingview_defines_it(n: int, k: float) -> None:
    # TradingView ta.kc(close, n, k) with true range: ema(close) ± k · ema(true range)
    mid = sma_seeded_ewm(C, n, 2 / (n + 1))
    width = sma_seeded_ewm(true_range(), n, 2 / (n + 1))
    same(KERNELS["kc_middle"](C, n), mid)
    same(KERNELS["kc_upper"](H, L, C, n, k), mid + k * width)
    same(KERNELS["kc_lower"](H, L, C, n, k), mid - k * width)


def test_donchian_and_ichimoku_as_defined() -> None:
    # Donchian channel: n-bar highest high, lowest low, their mean. Hosoda's Ichimoku:
    # tenkan = mid(9), kijun = mid(26), senkou A = (tenkan + kijun)/2 and senkou B = mid(52),
    # both plotted 26 bars ahead — at bar t they are the values of bar t - 26
    def mid(n: int) -> pd.Series:
        return (H.rolling(n).max() + L.rolling(n).min()) / 2
    same(KERNELS["donchian_upper"](H, 20), H.rolling(20).max())
    same(KERNELS["donchian_lower"](L, 20), L.rolling(20).min())
    same(KERNELS["donchian_middle"](H, L, 20), mid(20))
    same(KERNELS["ichimoku_tenkan"](H, L, 9), mid(9))
    same(KERNELS["ichimoku_kijun"](H, L, 26), mid(26))
    same(KERNELS["ichimoku_senkou_a"](H, L, 9, 26, 26), ((mid(9) + mid(26)) / 2).shift(26))
    same(KERNELS["ichimoku_senkou_b"](H, L, 52, 26), mid(52).shift(26))


def test_heikin_ashi_as_defined() -> None:
    # HA close = (O + H + L + C)/4; HA open = (previous HA open + previous HA close)/2,
    # starting from (O + C)/2; HA high/low = max/min of H/L and the HA open and close
    ha_close = (DATA["open"] + H + L + C) / 4
    ha_open = [(DATA["open"][0] + C[0]) / 2]
    for i in range(1, len(C)):
        ha_open.append((ha_open[-1] + ha_close[i - 1]) / 2)
    opens = pd.Series(ha_open)
    frame = pd.concat([opens, ha_close], axis=1)
    ohlc = (DATA["open"], H, L, C)
    same(KERNELS["ha_close"](*ohlc), ha_close)
    same(KERNELS["ha_open"](*ohlc), opens)
    same(KERNELS["ha_high"](*ohlc), pd.concat([H, frame], axis=1).max(axis=1))
    same(KERNELS["ha_low"](*ohlc), pd.concat([L, frame], axis=1).min(axis=1))


def tradingview_supertrend(factor: float, n: int) -> tuple[list[float], list[float]]:
    """``pine_supertrend`` from TradingView's ``ta.supertrend`` reference, transcribed line
    for line; ``ta.atr`` is Wilder's average of the true range seeded with the mean of its
    first n values (TA-Lib's ATR, whose first value is at bar n)."""
    atr = sma_seeded_ewm(true_range(), n, 1 / n).to_numpy()
    src = ((H + L) / 2).to_numpy()
    c = C.to_numpy()
    upper_band = src + factor * atr
    lower_band = src - factor * atr
    line, direction = [nan] * len(c), [nan] * len(c)
    for i in range(len(c)):
        if math.isnan(atr[i]):
            continue
        prev_lower = 0.0 if math.isnan(atr[i - 1]) else lower_band[i - 1]  # nz()
        prev_upper = 0.0 if math.isnan(atr[i - 1]) else upper_band[i - 1]
        if not (lower_band[i] > prev_lower or c[i - 1] < prev_lower):
            lower_band[i] = prev_lower
        if not (upper_band[i] < prev_upper or c[i - 1] > prev_upper):
            upper_band[i] = prev_upper
        if math.isnan(atr[i - 1]):
            d = 1
        elif line[i - 1] == prev_upper:
            d = -1 if c[i] > upper_band[i] else 1
        else:
            d = 1 if c[i] < lower_band[i] else -1
        line[i] = lower_band[i] if d == -1 else upper_band[i]
        direction[i] = -d  # TradingView: -1 is up; peak: 1 is up
    return line, direction


@pytest.mark.parametrize(("factor", "n"), [(3.0, 10), (1.0, 3), (2.5, 14)])
def test_supertrend_line_equals_tradingview_bar_for_bar(factor: float, n: int) -> None:
    line, direction = tradingview_supertrend(factor, n)
    same(KERNELS["supertrend"](H, L, C, factor, n), np.array(line), rtol=1e-12)
    np.testing.assert_array_equal(KERNELS["supertrend_dir"](H, L, C, factor, n), direction)
    assert {1.0, -1.0} <= set(direction)  # both trends occur: the test sees both branches


def test_sums_as_pandas_computes_them() -> None:
    same(KERNELS["sum"](V, 24), V.rolling(24).sum())
    same(KERNELS["cumsum"](V), V.cumsum())


def test_barssince_and_valuewhen_as_tradingview_defines_them() -> None:
    # ta.barssince: bars since the condition was last true; ta.valuewhen(cond, x, n): x at
    # the n-th most recent true bar
    cond = C.rolling(10).mean() < C
    last = pd.Series(np.where(cond, np.arange(len(C)), nan)).ffill()
    same(KERNELS["barssince"](cond.to_numpy()), np.arange(len(C)) - last)
    for n in (0, 1, 3):
        picked = L.where(cond).dropna().shift(n).reindex(C.index).ffill()  # NaN until n + 1
        same(KERNELS["valuewhen"](cond.to_numpy(), L, n), picked)


def test_session_vwap_restarts_each_utc_day() -> None:
    # 22:00, 23:00 on one day, 00:00, 01:00 on the next: the sums restart at 00:00
    t = np.array([22, 23, 24, 25], dtype=float) * 3600
    tp = np.array([10.0, 20, 30, 40])
    volume = np.array([1.0, 3, 2, 2])
    close(KERNELS["session_vwap"](tp, tp, tp, volume, t), [10, 70 / 4, 30, 35])
    close(KERNELS["session_vwap"](tp, tp, tp, np.zeros(4), t), [nan, nan, nan, nan])
    # a missing bar is NaN and adds nothing; the week starts on Monday 00:00 UTC
    gap = np.array([1.0, nan, 2, 2])
    close(KERNELS["session_vwap"](tp, tp, tp, gap, t), [10, nan, 30, 35])
    monday = 4 * 86_400.0  # 1970-01-05, a Monday
    week = np.array([monday - 3600, monday, monday + 86_400, monday + 7 * 86_400])
    close(KERNELS["session_vwap"](tp, tp, tp, volume, week, "week"), [10, 20, 24, 40])


@pytest.mark.parametrize(("session", "freq"), [("day", "D"), ("week", "W-MON")])
def test_session_vwap_as_defined(session: str, freq: str) -> None:
    # Σ(typical price · volume) / Σ volume since the session's first bar (pandas groups)
    index = pd.date_range("2024-03-01 05:00", periods=len(C), freq="3h", tz="UTC")
    seconds = (index.as_unit("ns").asi8 // 10**9).astype(float)
    starts = index.floor("D") if session == "day" else \
        (index - pd.to_timedelta(index.day_of_week, unit="D")).floor("D")
    tp = ((H + L + C) / 3).to_numpy()
    pv = pd.Series(tp * V.to_numpy()).groupby(starts).cumsum()
    vol = pd.Series(V.to_numpy()).groupby(starts).cumsum()
    assert freq  # named for the reader: pandas' own spelling of the session
    same(KERNELS["session_vwap"](H, L, C, V, seconds, session), (pv / vol).to_numpy())
    state = STATES["session_vwap"](session)
    streamed = [state.push(h, lo, c, v, t) for h, lo, c, v, t in
                zip(H, L, C, V, seconds, strict=True)]
    np.testing.assert_array_equal(streamed, KERNELS["session_vwap"](H, L, C, V, seconds,
                                                                    session))


def test_a_session_vwap_needs_the_bars_times_and_says_so() -> None:
    from peakdsl.api import compile_source
    from peakdsl.engine.program import EvaluationError, Program

    cfg = compile_source("strategy s {\n market BTC/USDT\n timeframe 1h\n"
                         " entry long when close > session_vwap()\n}\n").config
    program = Program(cfg)
    timed = DATA.set_axis(pd.date_range("2024-03-01 22:00", periods=len(DATA), freq="h",
                                        tz="UTC"))
    whole = program.signals(timed).rules["entry_long"]
    assert whole.any() and not whole.all()
    with pytest.raises(EvaluationError, match="time-indexed"):
        program.signals(COLS)  # columns without their times
    stream = program.stream()
    with pytest.raises(EvaluationError, match="open `time`"):
        stream.push({k: float(v[0]) for k, v in COLS.items()})
    pushed = [program.stream().push({**{k: float(timed[k].iloc[0]) for k in COLS},
                                      "time": timed.index[0]})]
    assert pushed[0].rules["entry_long"] == bool(whole[0])
