"""The reference interpreter on handwritten strategies, against literal arrays."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from peakdsl.engine.kernels import KERNELS
from peakdsl.engine.kernels_ta import KERNELS as PORTED
from peakdsl.engine.reference import reference_evaluate
from peakdsl.lang.builtins import BUILTINS
from peakdsl.lang.checker import CheckedSpec, check_module
from peakdsl.lang.diagnostics import Severity
from peakdsl.lang.parser import parse_text

nan = math.nan
F, T = False, True


def checked(text: str, name: str) -> CheckedSpec:
    parsed = parse_text(text, f"{name}.peak")
    assert parsed.module is not None, parsed.diagnostics
    spec, diagnostics = check_module(parsed.module)
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    assert not errors, errors
    return spec


STRATEGY = """\
strategy ref_test {
    market BTC/EUR
    timeframe 1h
    param n: int = 2 in 1..5
    param band: percent = 1% in 0%..50% step 1%

    let fast = sma(close, n)
    let prev = close[1]
    let up = close > prev
    let chg = roc(close, 1)
    let spread = high - low
    let mid = hl2
    let typical = hlc3
    let avg4 = ohlc4
    let picked = if up then high else low
    let clipped = clip(close, 10.5, 12)
    let top = max(fast, close)
    let bottom = min(fast, close)
    let dist = abs(close - 11)
    let lr = log(close / prev)
    let root = sqrt(close - 11)
    let scaled = close * (1 + 10bps) - 2 * n
    let up_before = up[n]
    let both = up and up_before
    let neg = -close

    entry long  when crossover(close, fast) and chg > band
    exit  long  when crossunder(close, fast)
    entry short when not up and close != prev

    size 25% of equity
}
"""

FRAME = pd.DataFrame({
    "open": [10.0, 10, 11, 12, 11, 13],
    "high": [11.0, 12, 13, 13, 14, 14],
    "low": [9.0, 9, 10, 10, 10, 11],
    "close": [10.0, 11, 12, 11, 13, 12],
    "volume": [1.0] * 6,
})


def same(got: np.ndarray, want: list[float] | list[bool]) -> None:
    expected = np.array(want)
    if expected.dtype == np.bool_:
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, expected)
    else:
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected.astype(float), rtol=1e-12, atol=1e-12)


def test_every_let_and_rule_with_defaults() -> None:
    out = reference_evaluate(checked(STRATEGY, "ref_test"), FRAME)
    same(out["fast"], [nan, 10.5, 11.5, 11.5, 12, 12.5])
    same(out["prev"], [nan, 10, 11, 12, 11, 13])
    same(out["up"], [F, T, T, F, T, F])
    same(out["chg"], [nan, 0.1, 1 / 11, -1 / 12, 2 / 11, -1 / 13])
    same(out["spread"], [2, 3, 3, 3, 4, 3])
    same(out["mid"], [10, 10.5, 11.5, 11.5, 12, 12.5])
    same(out["typical"], [10, 32 / 3, 35 / 3, 34 / 3, 37 / 3, 37 / 3])
    same(out["avg4"], [10, 10.5, 11.5, 11.5, 12, 12.5])
    same(out["picked"], [9, 12, 13, 10, 14, 11])
    same(out["clipped"], [10.5, 11, 12, 11, 12, 12])
    same(out["top"], [nan, 11, 12, 11.5, 13, 12.5])  # NaN fast → NaN (missing propagates)
    same(out["bottom"], [nan, 10.5, 11.5, 11, 12, 12])
    same(out["dist"], [1, 0, 1, 0, 2, 1])
    same(out["lr"], [nan, math.log(1.1), math.log(12 / 11), math.log(11 / 12),
                     math.log(13 / 11), math.log(12 / 13)])
    same(out["root"], [nan, 0, 1, 0, math.sqrt(2), 1])  # sqrt(-1) → NaN
    same(out["scaled"], [6.01, 7.011, 8.012, 7.011, 9.013, 8.012])
    same(out["up_before"], [F, F, F, T, T, F])
    same(out["both"], [F, F, F, F, T, F])
    same(out["neg"], [-10, -11, -12, -11, -13, -12])
    same(out["entry_long"], [F, F, F, F, T, F])
    same(out["exit_long"], [F, F, F, T, F, T])
    # close != prev is False on bar 0: a comparison with NaN is False, `!=` included
    same(out["entry_short"], [T, F, F, T, F, T])  # bar 0: close != NaN is True (`not ==`)
    assert "exit_short" not in out


def test_param_overrides() -> None:
    spec = checked(STRATEGY, "ref_test")
    out = reference_evaluate(spec, FRAME, {"n": 3.0})
    same(out["fast"], [nan, nan, 11, 34 / 3, 12, 12])
    same(out["scaled"], [4.01, 5.011, 6.012, 5.011, 7.013, 6.012])
    same(out["up_before"], [F, F, F, F, T, T])
    same(out["entry_long"], [F, F, F, F, T, F])
    same(out["exit_long"], [F, F, F, T, F, F])
    out = reference_evaluate(spec, FRAME, {"band": 0.5})
    same(out["entry_long"], [F] * 6)
    with pytest.raises(KeyError, match="nope"):
        reference_evaluate(spec, FRAME, {"nope": 1.0})


def test_outputs_are_copies() -> None:
    spec = checked(STRATEGY.replace("let neg = -close", "let neg = close"), "ref_test")
    frame = FRAME.copy()
    out = reference_evaluate(spec, frame)
    out["neg"][:] = 0
    assert frame["close"].tolist() == [10, 11, 12, 11, 13, 12]


KERNEL_STRATEGY = """\
strategy every_kernel {
    market BTC/EUR
    timeframe 1h
    param w: int = 4 in 1..30
    param width: float = 2 in 1..3 step 0.5

    let a_sma = sma(close, w)
    let a_ema = ema(close, 5)
    let a_wma = wma(hl2, 3)
    let a_rma = rma(close, w)
    let a_rsi = rsi(close, 6)
    let a_true_range = true_range()
    let a_atr = atr(w)
    let a_stdev = stdev(close, 7)
    let a_zscore = zscore(close, w)
    let a_roc = roc(close, 3)
    let a_highest = highest(high, w)
    let a_lowest = lowest(low, w)
    let a_bb_upper = bb_upper(close, 5, width)
    let a_bb_lower = bb_lower(close, 5, width * 1.5)
    let a_macd = macd(close, 3, 8)
    let a_macd_signal = macd_signal(close, 3, 8, w)
    let a_macd_hist = macd_hist(close, 3, 8, 4)
    let a_adx = adx(w)
    let a_plus_di = plus_di(5)
    let a_minus_di = minus_di(5)
    let a_percent_rank = percent_rank(volume, w)
    let a_rising = rising(close, 2)
    let a_falling = falling(sma(close, 2), w)

    entry long when a_rising and a_rsi < 70
    exit long when a_falling
    size 25% of equity
}
"""


def _kernel_args(name: str, frame: pd.DataFrame, w: int, width: float) -> list[object]:
    cols = {c: frame[c].to_numpy(dtype=float) for c in frame.columns}
    hl2 = (cols["high"] + cols["low"]) / 2
    hlc = [cols["high"], cols["low"], cols["close"]]
    c = cols["close"]
    table: dict[str, list[object]] = {
        "sma": [c, w], "ema": [c, 5], "wma": [hl2, 3], "rma": [c, w], "rsi": [c, 6],
        "true_range": hlc, "atr": [*hlc, w], "stdev": [c, 7], "zscore": [c, w],
        "roc": [c, 3], "highest": [cols["high"], w], "lowest": [cols["low"], w],
        "bb_upper": [c, 5, width], "bb_lower": [c, 5, width * 1.5], "macd": [c, 3, 8],
        "macd_signal": [c, 3, 8, w], "macd_hist": [c, 3, 8, 4], "adx": [*hlc, w],
        "plus_di": [*hlc, 5], "minus_di": [*hlc, 5], "percent_rank": [cols["volume"], w],
        "rising": [c, 2], "falling": [KERNELS["sma"](c, 2), w],
    }
    return table[name]


@pytest.mark.parametrize("params", [None, {"w": 1.0}, {"w": 9.0, "width": 3.0}])
def test_interpreter_plumbing_matches_the_kernels(params: dict[str, float] | None) -> None:
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 120)))
    opens = np.concatenate([[100.0], close[:-1]])
    frame = pd.DataFrame({
        "open": opens, "close": close,
        "high": np.maximum(opens, close) * (1 + rng.uniform(0, 0.01, 120)),
        "low": np.minimum(opens, close) * (1 - rng.uniform(0, 0.01, 120)),
        "volume": rng.uniform(1, 10, 120),
    })
    spec = checked(KERNEL_STRATEGY, "every_kernel")
    out = reference_evaluate(spec, frame, params)
    w = int((params or {}).get("w", 4))
    width = (params or {}).get("width", 2.0)
    # the ported kernels: test_reference_ta.py; the state scan: test_state_eval.py; frame
    # alignment: test_reference_frames.py
    names = [n for n in KERNELS if n not in ("lag", "state", "position_rule", "align")
             and n not in PORTED]
    assert {n for n in BUILTINS if f"a_{n}" in out} == set(names)
    for name in names:
        want = KERNELS[name](*_kernel_args(name, frame, w, width))
        got = out[f"a_{name}"]
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(np.isnan(got) if got.dtype != bool else got,
                                      np.isnan(want) if want.dtype != bool else want, name)
        if got.dtype != bool:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=name)
    assert out["entry_long"].dtype == np.bool_ and out["exit_long"].dtype == np.bool_
