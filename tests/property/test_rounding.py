"""The rounding judge: it must doubt exactly the bars where two correct evaluators may
disagree, or the differential property would either cry wolf or compare nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rounding import BUILTIN_RULES, TOL, Judged, judge_reference
from test_differential import check

from peakdsl.lang.builtins import BUILTINS

F, T = False, True


def judged(lets: str, frame: pd.DataFrame) -> dict[str, Judged]:
    lines = "".join(f"    {line}\n" for line in lets.strip().splitlines())
    text = (f"strategy gen {{\n    market BTC/EUR\n    timeframe 1h\n{lines}"
            "    entry long when close > open\n}\n")
    spec, diags = check(text)
    assert not [d for d in diags if d.is_error], diags
    return judge_reference(spec, frame, {})


def flat(n: int, volume: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({c: [100.0] * n for c in ("open", "high", "low", "close")}
                        | {"volume": [volume] * n})


RISING = pd.DataFrame({"open": [10.0, 10, 11, 12], "high": [11.0, 12, 13, 13],
                       "low": [9.0, 9, 10, 11], "close": [10.0, 11, 12, 12],
                       "volume": [1.0, 0.0, 2.0, 2.0]})


def test_every_builtin_has_a_rule() -> None:
    assert set(BUILTIN_RULES) == set(BUILTINS)


def test_decisions_on_exact_inputs_are_never_doubted() -> None:
    """Both evaluators read the same doubles: ties of sources and literals are exact."""
    out = judged("let same = close == open\nlet body = close - open\n"
                 "let per = close / body\nlet v = volume / volume[1]", flat(4))
    for name in ("same", "body", "per", "v"):
        assert not out[name].doubt.any(), name


def test_a_tie_between_computed_values_is_doubted() -> None:
    """rma(0.001, 3) is 0.001 give or take an ulp, so `!=` may go either way from bar 2;
    bars 0 and 1 are NaN (warm-up), which is exact."""
    out = judged("let ne = rma(0.001, 3) != 0.001\nlet gap = sma(close, 2) - close",
                 flat(5))
    assert out["ne"].doubt.tolist() == [F, F, T, T, T]
    # a difference of two prices of 100 may be off by rounding of 100, not of its own 0
    assert out["gap"].err[1:].min() >= 100


def test_a_divisor_within_rounding_of_zero_is_doubted() -> None:
    """sma(close, 2) - close is 0 or an ulp: NaN or a huge number, either is right."""
    out = judged("let q = close / (sma(close, 2) - close)", flat(4))
    assert out["q"].doubt.tolist() == [F, T, T, T]


def test_doubt_follows_lags_windows_and_recursions() -> None:
    out = judged("let tie = sma(0.001, 2) == 0.001\nlet later = tie[2]\n"
                 "let x = if tie then close else open\nlet wide = sma(x, 3)\n"
                 "let long = ema(x, 2)", flat(8))
    tie = [F, T, T, T, T, T, T, T]
    assert out["tie"].doubt.tolist() == tie
    assert out["later"].doubt.tolist() == [F, F, F, T, T, T, T, T]
    assert out["x"].doubt.tolist() == tie
    assert out["wide"].doubt.tolist() == tie
    assert out["long"].doubt.tolist() == tie


def test_and_or_doubt_only_where_the_other_side_does_not_decide() -> None:
    out = judged("let tie = sma(0.001, 2) == 0.001\nlet a = tie and close > open\n"
                 "let o = tie or close > open", RISING)
    assert out["tie"].doubt.tolist() == [F, T, T, T]
    assert out["a"].doubt.tolist() == [F, T, T, F]  # close > open is False on bar 3
    assert out["o"].doubt.tolist() == [F, F, F, T]  # … and True on bars 1 and 2


@pytest.mark.parametrize(("expr", "scale", "bars"), [("macd(0.001, 2, 3)", 1e-3, [2, 3]),
                                                     ("stdev(volume, 2)", 1.0, [1, 2, 3]),
                                                     ("zscore(close, 2)", 10.0, [1, 2])])
def test_error_scales_follow_the_inputs(expr: str, scale: float, bars: list[int]) -> None:
    """A value near 0 computed from inputs of size s may be off by rounding of s."""
    err = judged(f"let x = {expr}", RISING)["x"].err
    assert err[bars].min() >= scale and np.isfinite(err).all()
    assert TOL * err.max() < 1e-6  # … and no more than that: the comparison keeps its teeth
