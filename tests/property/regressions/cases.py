"""Counterexamples of the differential property, shrunk by hand or by hypothesis, and the
examples of issue 7, kept as explicit regression tests.

Each case must check clean (or, ``rejected``, fail `peak check` with a coded error), run
through evaluate and simulate, match the reference interpreter and reference simulator
(``test_differential.run_case``), and — where ``expect`` says so — give these literal
values under the documented semantics (docs/language.md): comparisons with NaN are false and
``!=`` is ``not ==``; ``min``/``max``/``clip`` propagate NaN; division by zero and ``log`` of
``x <= 0`` are NaN, never ±inf; ``x[n]`` is NaN (False for booleans) on the first n bars.

A shrunk failure that hypothesis prints (``Case(spec=..., candles=..., overrides=...)``) can
be pasted here as the ``case`` of a new ``Regression``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specgen import Case

nan = float("nan")
F, T = False, True


@dataclass(frozen=True)
class Regression:
    """``case`` must check clean and run (or, ``rejected``, fail `peak check` with a code);
    ``expect`` holds literal values of lets and rules (rules with the warm-up masked)."""

    name: str
    note: str
    case: Case
    expect: dict[str, list[float] | list[bool]] = field(default_factory=dict)
    rejected: bool = False


def strategy(*lines: str, execution: str = "fill next_open fees 10bps slippage 5bps") -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return (f"strategy gen {{\n    market BTC/EUR\n    timeframe 1h\n{body}"
            f"    size 25% of equity\n    execution {{ {execution} }}\n}}\n")


def bars(close: list[float], open_: list[float] | None = None,
         volume: list[float] | None = None) -> dict[str, list[float]]:
    """Candles without wicks: high and low are the larger and smaller of open and close."""
    opens = open_ if open_ is not None else close
    return {"open": opens, "high": [max(o, c) for o, c in zip(opens, close, strict=True)],
            "low": [min(o, c) for o, c in zip(opens, close, strict=True)], "close": close,
            "volume": volume if volume is not None else [1.0] * len(close)}


# close > open on bars 1, 2 and 4
UP = bars([10.0, 11, 12, 11, 13, 12], [10.0, 10, 11, 12, 11, 13])
# flat, then rising: zscore is NaN on the flat window
STEPS = bars([10.0, 10, 10, 11, 12, 12])
# a volume 10⁹ times the rest, leaving a 3-bar window at bar 7
OUTLIER = bars([100.0] * 11, volume=[1.0, 2, 3, 2, 1e9, 2, 3, 2, 1, 2, 3])

# frames (``x@4h``): ten 1h bars from 02:00 with close 1..10 — the 00:00 4h bucket has two
# bars (dropped), the 04:00 one closes 6 and is read from bar 5 (07:00), the 08:00 one closes
# 10 and is read from bar 9 (11:00)
HOURS = tuple(1_704_067_200 + 7_200 + 3_600 * i for i in range(10))
TEN = bars([float(i) for i in range(1, 11)])

CASES: list[Regression] = [
    # ---------------------------------------------------------------- issue 7, as reported
    Regression(
        "issue_division_by_constant_zero",
        "`close / 0` checked clean, then crashed the backtest with ZeroDivisionError (I001)",
        Case(strategy("entry long when close / 0 > open"), UP), rejected=True),
    Regression(
        "issue_constant_and_series",
        "`(1 < 2) and close > open` checked clean, then numexpr raised TypeError (I001)",
        Case(strategy("entry long when (1 < 2) and close > open"), UP),
        {"entry_long": [F, T, T, F, T, F]}),
    Regression(
        "issue_not_of_a_constant_is_false",
        "`not (2 > 1)` evaluated to the integer -2, so `crossover(...) or never` fired on "
        "almost every bar",
        Case(strategy("let never = not (2 > 1)",
                      "entry long when crossover(close, open) or never"), UP),
        {"never": [F] * 6, "entry_long": [F, T, F, F, T, F]}),
    Regression(
        "issue_constant_condition_in_if",
        "`let b = not (2 > 1)` used in an `if` raised NotImplementedError (where_didd)",
        Case(strategy("let b = not (2 > 1)", "let x = if b then close else open",
                      "entry long when x > 10"), UP),
        {"x": [10.0, 10, 11, 12, 11, 13], "entry_long": [F, F, T, T, T, T]}),
    Regression(
        "issue_require_with_a_constant_and_set",
        "`require 1 < 2 and fast < 30` with `--set fast=15` ended in I001",
        Case(strategy("param fast: int = 20 in 5..50", "require 1 < 2 and fast < 30",
                      "entry long when close > sma(close, fast)"),
             bars([float(100 + i % 7) for i in range(40)]), ("fast=15",))),
    Regression(
        "issue_clip_propagates_nan",
        "`clip(x, lo, hi)` turned NaN into `lo`",
        Case(strategy("let z = zscore(close, 3)", "let c = clip(z, -1, 1)",
                      "entry long when c > 0"), STEPS),
        {"c": [nan, nan, nan, 1.0, 1.0, 0.7071067811865476]}),
    Regression(
        "issue_max_is_symmetric_in_nan",
        "`max(z, -3)` and `max(-3, z)` differed where z is NaN",
        Case(strategy("let z = zscore(close, 3)", "let a = max(z, -3)", "let b = max(-3, z)",
                      "let c = min(5, z)", "entry long when a > b or c > 0"), STEPS),
        {"a": [nan, nan, nan, 1.4142135623730951, 1.224744871391589, 0.7071067811865476],
         "b": [nan, nan, nan, 1.4142135623730951, 1.224744871391589, 0.7071067811865476],
         "c": [nan, nan, nan, 1.4142135623730951, 1.224744871391589, 0.7071067811865476]}),
    Regression(
        "issue_not_equal_is_not_equal",
        "`a != b` and `not (a == b)` disagreed where a is NaN",
        Case(strategy("let m = sma(close, 2)", "let ne = m != close",
                      "let not_eq = not (m == close)", "entry long when ne"), STEPS),
        {"ne": [T, F, F, T, T, F], "not_eq": [T, F, F, T, T, F]}),
    Regression(
        "issue_division_by_zero_volume_is_missing",
        "`volume / volume[1] > 5` fired after zero-volume bars (x / 0 was +inf)",
        Case(strategy("let ratio = volume / volume[1]", "entry long when ratio > 5"),
             bars([100.0] * 6, volume=[0.0, 10, 10, 0, 5, 40])),
        {"ratio": [nan, nan, 1.0, 0.0, nan, 8.0], "entry_long": [F, F, F, F, F, T]}),
    Regression(
        "log_and_sqrt_outside_their_domain_are_missing",
        "log(0) was -inf; log and sqrt of x < 0 are NaN, like every missing value",
        Case(strategy("let body = close - open", "let l = log(body)", "let r = sqrt(body)",
                      "entry long when l > 0 or r > 1"), UP),
        {"l": [nan, 0.0, 0.0, nan, 0.6931471805599453, nan],
         "r": [0.0, 1.0, 1.0, nan, 1.4142135623730951, nan]}),
    # ---------------------------------------------------------------- found by the property
    Regression(
        "lag_of_a_folded_boolean",
        "lowering folds `close > open or true` to the constant true and then drops the lag "
        "(a constant lagged is itself), so bar 0 is true instead of the False fill of x[1]",
        Case(strategy("let held = (close > open or true)[1]", "entry long when held"), UP),
        {"held": [F, T, T, T, T, T], "entry_long": [F, T, T, T, T, T]}),
    Regression(
        "lag_of_a_folded_number",
        "`if true then 0.5 else close` folds to 0.5 and the lag is dropped: bar 0 is 0.5, "
        "not NaN, and `close > half` fires on bar 0",
        Case(strategy("let half = (if true then 0.5 else close)[1]",
                      "entry long when close > half"), UP),
        {"half": [nan, 0.5, 0.5, 0.5, 0.5, 0.5], "entry_long": [F, T, T, T, T, T]}),
    Regression(
        "roc_divides_by_zero",
        "roc(x, n) = x / x[n] - 1 gave +inf (evaluator and reference) when x[n] is 0",
        Case(strategy("let r = roc(volume, 1)", "entry long when r > 50%"),
             bars([100.0] * 6, volume=[0.0, 1, 1, 2, 0, 3])),
        {"r": [nan, nan, 0.0, 1.0, -1.0, nan], "entry_long": [F, F, F, T, F, F]}),
    Regression(
        "rolling_deviation_after_an_outlier",
        "the rolling-moments kernel re-centres on a mean that includes an outlier; for n bars "
        "after the outlier leaves the window, stdev is garbage (0.0, 4.0, 6.93 for 0.47, 0.82)",
        Case(strategy("let sd = stdev(volume, 3)", "entry long when sd > 1"), OUTLIER),
        {"sd": [nan, nan, 0.816496580927726, 0.4714045207910317, 471404519.6125204,
                471404519.8482227, 471404519.6125204, 0.4714045207910317, 0.816496580927726,
                0.4714045207910317, 0.816496580927726]}),
    Regression(
        "rolling_mean_after_an_outlier",
        "the same running sums leave 1e-8 of the outlier in sma (2.3333333134651184 for 7/3)",
        Case(strategy("let m = sma(volume, 3)", "entry long when m > 2"), OUTLIER),
        {"m": [nan, nan, 2.0, 2.3333333333333335, 333333335.0, 333333334.6666667,
               333333335.0, 2.3333333333333335, 2.0, 1.6666666666666667, 2.0]}),
    Regression(
        "quantity_beyond_int64",
        "with qty_step, the fast simulator floors the step count to int64: 2.5e19 units "
        "overflow and it takes no trade; the reference simulator buys 2.5e19 units",
        Case(strategy("entry long when close >= open",
                      execution="fill next_open fees 0bps slippage 0bps qty_step 1"),
             bars([1e-16] * 4))),
    Regression(
        "mode_keywords_check_and_run",
        "a mode keyword (`plus_di(2, talib)`) crashed the checker with ValueError for a while",
        Case(strategy("let sd = stdev(close, 2, sample)", "let z = zscore(close, 2, population)",
                      "let h = macd_hist(close, 2, 3, 2, talib)", "let d = plus_di(2, talib)",
                      "let a = adx(2, peak)", "entry long when sd > 1 and d > a or h > z"), UP),
        {"sd": [nan, 0.7071067811865476, 0.7071067811865476, 0.7071067811865476,
                1.4142135623730951, 0.7071067811865476]}),
    Regression(
        "divisor_folded_to_zero_through_a_let",
        "`close / (if v then 0 else 1)` with `let v = true`: the checker cannot see the divisor "
        "as constant, lowering folds it to 0, and numexpr raised ZeroDivisionError on the "
        "literal `/ 0.0` (found by the differential test at 25,000 examples)",
        Case(strategy("let v = true", "let r = close / (if v then 0 else 1)",
                      "entry long when r > 1 or close > open"), UP),
        {"r": [nan] * 6, "entry_long": [F, T, T, F, T, F]}),
    Regression(
        "state_running_maximum",
        "a `state` reads its own past: the running maximum of the close, NaN-seeded with nz",
        Case(strategy("state top = max(nz(top[1], close), close)",
                      "entry long when close >= top and close > open"), UP),
        {"top": [10.0, 11.0, 12.0, 12.0, 13.0, 13.0], "entry_long": [F, T, T, F, T, F]}),
    # ---------------------------------------------------------------- frames
    Regression(
        "frame_decided_by_a_literal",
        "a literal boolean decides alone whatever the frames: `if true then close@4h else "
        "close` is `close@4h` (a window over it counts 4h bars), `if c then true else true` "
        "is `true` (found by the differential test: the 4h `if` was missing before its first "
        "bar in the reference, true in the compiled graph)",
        Case(strategy("let k = sma(if true then close@4h else close, 2)",
                      "let h = (if close > 3 then true else true)@4h",
                      "entry long when h and close > k"), TEN, times=HOURS),
        {"k": [nan] * 9 + [8.0], "h": [T] * 10}),
    Regression(
        "frame_condition_meets_a_literal_branch",
        "`if c@4h then a else true` is `not c or a` only where c is aligned first: before the "
        "first 4h bar c is missing (false), so the value is the else branch, true; the "
        "compiled graph applied `not` on the 4h bars and aligned after, giving false "
        "(found by the differential test)",
        Case(strategy("let w = if close@4h > 5 then close > 100 else true",
                      "let u = if close@4h > 5 then false else close > 0",
                      "entry long when w and u"), TEN, times=HOURS),
        {"w": [T] * 5 + [F] * 5, "u": [T] * 5 + [F] * 5}),
]
