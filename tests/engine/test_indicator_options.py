"""Indicator modes users port from pandas and TA-Lib: the sample deviation and TA-Lib's
seeding of +DI/-DI/ADX and MACD, against literal numbers computed once by those tools; how
the checker, lowering, the evaluator, the reference interpreter and the sweep engine carry
a mode."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from peakdsl.api import compile_source
from peakdsl.compile.models import StrategyArtifact
from peakdsl.data.candles import CandleSet
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.kernels import KERNELS
from peakdsl.engine.reference import REFERENCE, reference_evaluate
from peakdsl.lang.builtins import BUILTINS, MODE_WORDS
from peakdsl.lang.checker import CheckedSpec, check_module
from peakdsl.lang.diagnostics import Severity
from peakdsl.lang.parser import parse_text
from peakdsl.research.engine import evaluate_block
from peakdsl.research.types import reference_block

nan = math.nan
_ = None  # no value (TA-Lib's / pandas' leading NaNs)

# ---------------------------------------------------------------- literal data

# 32 bars of a rounded random walk (fixed here as literals, so no RNG is involved).
HIGH = [100.64, 100.35, 99.35, 101.05, 100.96, 103.56, 104.02, 103.68, 104.9, 104.67, 100.11,
        102.36, 102.01, 99.77, 98.72, 99.77, 100.2, 97.79, 99.49, 99.81, 100.95, 99.98, 98.66,
        95.5, 95.4, 94.1, 97.08, 98.35, 98.66, 95.86, 95.53, 93.18]
LOW = [98.57, 97.76, 93.17, 93.13, 98.74, 99.25, 101.62, 101.74, 100.65, 97.9, 99.12, 99.26,
       98.47, 96.81, 95.97, 96.98, 96.6, 93.77, 94.22, 97.62, 99.11, 95.99, 95.4, 93.84, 92.43,
       91.02, 90.89, 96.11, 93.84, 93.62, 91.6, 89.41]
CLOSE = [99.83, 98.98, 93.45, 99.72, 100.01, 102.67, 103.39, 101.91, 103.59, 99.29, 99.88,
         101.01, 99.05, 97.09, 98.2, 99.38, 97.13, 94.37, 98.41, 99.42, 99.48, 97.18, 95.47,
         94.41, 93.36, 92.3, 96.18, 97.29, 94.57, 95.46, 91.81, 90.24]

# Computed once with TA-Lib (Python package TA-Lib 0.8.2, binary wheel with its C core
# "0.8.1"; default compatibility, unstable period 0) in a scratch virtualenv, not a project
# dependency:  h, l, c = map(np.array, (HIGH, LOW, CLOSE))
#   talib.PLUS_DI(h, l, c, 4); talib.MINUS_DI(h, l, c, 4); talib.ADX(h, l, c, 4)
#   talib.MACD(c, 3, 6, 4)  -> (macd, signal, hist)
# printed with repr() and pasted; None is TA-Lib's NaN.
TALIB_PLUS_DI_4 = [
    _, _, _, _, 8.65139949109417, 23.147959806354578, 22.461645511374513, 18.942307388957424,
    22.00777855292366, 13.203230713097842, 12.247851016478679, 26.245907452586685,
    19.39457696354554, 15.022539581005068, 11.74329832808895, 17.645660483357343,
    16.03954496152444, 11.29989723668008, 18.438049788496517, 17.830625141989923,
    24.49325086471933, 17.0499115915526, 12.809287336356004, 10.958749803214394,
    8.149977962331514, 6.017427484245227, 23.379908142287935, 28.90650756844505,
    19.585384985916555, 16.323769467410486, 11.747365132042914, 8.646768327739105]
TALIB_MINUS_DI_4 = [
    _, _, _, _, 27.48091603053433, 19.77136812985637, 16.363085417999386, 13.79928258873782,
    9.466719668369006, 21.9302187784802, 20.343358242703015, 15.623413131296171,
    17.370571490995218, 26.09691779610727, 27.067980321515332, 20.897328658526646,
    15.010247079049458, 31.377200437540953, 20.690424233034022, 17.405716934913652,
    14.777605410475692, 34.04988674542324, 30.082400986510905, 39.31299451073541,
    41.40488476365778, 42.54948814840498, 25.01193866136482, 20.862916972651167,
    29.321791569799238, 26.074335029234792, 33.174297708854375, 39.750591349188774]
TALIB_ADX_4 = [
    _, _, _, _, _, _, _, 22.84895677362539, 27.09800337767662, 26.533388120690557,
    26.10992667795101, 25.92509290264686, 20.820126830384073, 22.348147381684324,
    26.632391853596644, 22.083411687988995, 17.39130657300601, 24.804649441633302,
    20.042576197822093, 15.333402293982783, 17.685074391090534, 21.580851900704126,
    26.253506573993953, 33.79061773655169, 42.11977640005432, 50.39484605697791,
    38.63926754285366, 33.019878424770965, 29.741891374906547, 28.05582978292338,
    32.966482437168665, 40.79176259946837]
TALIB_MACD_3_6 = [
    _, _, _, _, _, _, _, _, 1.2109147230320758, 0.1135998021657656, -0.16809835559588748,
    -0.0025479325684898413, -0.3630587911203378, -0.8599471275859543, -0.6767005152399719,
    -0.26172665151068486, -0.5582750356772834, -1.1758601677828864, -0.36273197670875845,
    0.19591837391897116, 0.3803051600118863, -0.10102886781378118, -0.6249297537781331,
    -0.9499043910828107, -1.155266134251221, -1.2907144519183333, -0.3232725008111146,
    0.30628141041448487, -0.09548953706416796, -0.03462351301166677, -0.7900822882769631,
    -1.2834486668321574]
TALIB_SIGNAL_3_6_4 = [
    _, _, _, _, _, _, _, _, 1.4705220481049643, 0.9277531497292848, 0.4894125475992159,
    0.29262835553213357, 0.030353496871144987, -0.3257667529116947, -0.4661402578430056,
    -0.38437481531007733, -0.45393490345695975, -0.7427050091873304, -0.5907157961959016,
    -0.2760621281499525, -0.013515212885216996, -0.048520674856642666, -0.27908430642523885,
    -0.5474123402882676, -0.7905538578734489, -0.9906180954914027, -0.7236798576192874,
    -0.31169535040577856, -0.22521302506913432, -0.1489772202461473, -0.4054192474584737,
    -0.7566310152079472]
TALIB_HIST_3_6_4 = [
    _, _, _, _, _, _, _, _, -0.25960732507288853, -0.8141533475635192, -0.6575109031951034,
    -0.2951762881006234, -0.39341228799148276, -0.5341803746742595, -0.21056025739696627,
    0.12264816379939247, -0.10434013222032368, -0.433155158595556, 0.2279838194871432,
    0.47198050206892367, 0.3938203728971033, -0.05250819295713851, -0.34584544735289424,
    -0.4024920507945431, -0.36471227637777204, -0.30009635642693067, 0.40040735680817285,
    0.6179767608202634, 0.12972348800496636, 0.11435370723448052, -0.38466304081848945,
    -0.5268176516242102]

# Computed once with pandas 3.1.1 on CLOSE[:12]:  c = pd.Series(CLOSE[:12])
#   sd = c.rolling(5).std()   (ddof=1, pandas' default);  (c - c.rolling(5).mean()) / sd
#   c.rolling(5).mean() + 2 * sd
PANDAS_STD_5 = [
    _, _, _, _, 2.7936660501928268, 3.383951831808479, 3.920665759791301, 1.61938259839971,
    1.4477845143527928, 1.7404597093870815, 1.9719330617441906, 1.7045761936621844]
PANDAS_Z_5 = [
    _, _, _, _, 0.5770195760830985, 1.0945782280891603, 0.9034179950571823,
    0.2284821390359684, 0.881346628141291, -1.6547352314258474, -0.8783259602473683,
    -0.0739186669792019]
PANDAS_UPPER_5_2 = [
    _, _, _, _, 103.98533210038565, 105.73390366361697, 107.6893315195826, 104.77876519679943,
    105.20956902870557, 105.65091941877417, 105.55586612348837, 104.54515238732436]
# TA-Lib's BBANDS (and STDDEV) use the population deviation, peak's default:
#   talib.BBANDS(np.array(CLOSE[:12]), 5, 2, 2)[0]
TALIB_UPPER_5_2 = [
    _, _, _, _, 103.3954617557316, 105.01939706280697, 106.86150012475939, 104.43683965728171,
    104.90387567269165, 105.28342897783136, 105.13950109851153, 104.18523859348528]

H, L, C = (np.array(v) for v in (HIGH, LOW, CLOSE))
IMPLEMENTATIONS = {"kernels": KERNELS, "reference": REFERENCE}


def literal(values: list[float | None]) -> np.ndarray:
    return np.array([nan if v is None else v for v in values])


def same(got: Any, want: list[float | None], rtol: float = 1e-12) -> None:
    expected = literal(want)
    got = np.asarray(got, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------- TA-Lib seeding


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_directional_talib_seeding_equals_talib(impl: str) -> None:
    fns = IMPLEMENTATIONS[impl]
    same(fns["plus_di"](H, L, C, 4, "talib"), TALIB_PLUS_DI_4)
    same(fns["minus_di"](H, L, C, 4, "talib"), TALIB_MINUS_DI_4)
    same(fns["adx"](H, L, C, 4, "talib"), TALIB_ADX_4)


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_macd_talib_seeding_equals_talib(impl: str) -> None:
    fns = IMPLEMENTATIONS[impl]
    # values are differences of ~100-priced EMAs: compare to rounding of the prices
    line = fns["macd"](C, 3, 6, "talib")
    # TA-Lib hides the line until the signal has warmed up (index 6 + 4 - 2 = 8); peak's
    # macd has no signal window, so it starts where both EMAs exist: index 6 - 1 = 5
    assert np.isnan(line[:5]).all() and np.isfinite(line[5:]).all()
    np.testing.assert_allclose(line[8:], literal(TALIB_MACD_3_6)[8:], rtol=0, atol=1e-12)
    signal = fns["macd_signal"](C, 3, 6, 4, "talib")
    hist = fns["macd_hist"](C, 3, 6, 4, "talib")
    for got, want in ((signal, TALIB_SIGNAL_3_6_4), (hist, TALIB_HIST_3_6_4)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(literal(want)))
        np.testing.assert_allclose(got, literal(want), rtol=0, atol=1e-12)


def test_peak_seeding_differs_from_talib_at_the_start() -> None:
    """The default is peak's own seeding (unchanged): the same warm-up, other first values.
    Bars 1-4: TR 2.59, 6.18, 7.92, 2.22; +DM 0, 0, 1.7, 0."""
    plus = KERNELS["plus_di"](H, L, C, 4)
    assert np.array_equal(np.isnan(plus), np.isnan(literal(TALIB_PLUS_DI_4)))
    # peak: the means of the first four bars
    assert plus[4] == pytest.approx(100 * 1.7 / (2.59 + 6.18 + 7.92 + 2.22), rel=1e-12)
    # TA-Lib: the sums of the first three, then one step s - s/4 + x
    talib = 100 * (1.7 * 0.75) / ((2.59 + 6.18 + 7.92) * 0.75 + 2.22)
    assert TALIB_PLUS_DI_4[4] == pytest.approx(talib, rel=1e-12)
    assert abs(plus[4] - talib) > 0.3
    line = KERNELS["macd"](C, 3, 6)
    assert abs(line[8] - TALIB_MACD_3_6[8]) > 0.01  # type: ignore[operator]


def test_the_two_seedings_converge() -> None:
    """Only the seed differs: after a few hundred bars the difference is rounding."""
    steps = np.sin(np.arange(600) * 0.37) + np.cos(np.arange(600) * 0.11)
    close = 100 + np.cumsum(steps)
    high, low = close + 1 + 0.5 * np.abs(np.sin(np.arange(600))), close - 1
    for name in ("plus_di", "minus_di", "adx"):
        peak, talib = (KERNELS[name](high, low, close, 14, m) for m in ("peak", "talib"))
        assert abs(peak[30] - talib[30]) > 1e-3, name
        np.testing.assert_allclose(peak[400:], talib[400:], rtol=1e-8, err_msg=name)
    peak, talib = (KERNELS["macd"](close, 12, 26, m) for m in ("peak", "talib"))
    assert abs(peak[30] - talib[30]) > 1e-3
    np.testing.assert_allclose(peak[400:], talib[400:], rtol=0, atol=1e-8)


def test_talib_adx_holds_on_a_bar_without_direction() -> None:
    """TA-Lib leaves the ADX unchanged on a bar whose smoothed DMs are both 0; peak counts a
    DX of 0 there. With n = 1 the smoothing has no memory, so one bar without directional
    movement (bar 2: same high, same low) shows the difference."""
    high = np.array([10.0, 11, 11, 12])
    low = np.array([9.0, 10, 10, 11])
    close = np.array([9.5, 10.5, 10.5, 11.5])
    for impl in IMPLEMENTATIONS.values():
        same(impl["adx"](high, low, close, 1, "talib"), [_, 100, 100, 100])
        same(impl["adx"](high, low, close, 1), [_, 100, 0, 100])
        same(impl["plus_di"](high, low, close, 1, "talib"), [_, 100 / 1.5, 0, 100 / 1.5])
    # flat from the start: no DX anywhere, both seedings report 0
    flat = np.full(6, 5.0)
    for impl in IMPLEMENTATIONS.values():
        for mode in ("peak", "talib"):
            same(impl["adx"](flat, flat, flat, 2, mode), [_, _, _, 0, 0, 0])


# ---------------------------------------------------------------- sample deviation


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_sample_deviation_equals_pandas(impl: str) -> None:
    fns = IMPLEMENTATIONS[impl]
    c = C[:12]
    same(fns["stdev"](c, 5, "sample"), PANDAS_STD_5)
    same(fns["zscore"](c, 5, "sample"), PANDAS_Z_5)
    same(fns["bb_upper"](c, 5, 2.0, "sample"), PANDAS_UPPER_5_2)
    lower = [None if u is None else 2 * m - u for u, m in
             zip(PANDAS_UPPER_5_2, pd.Series(c).rolling(5).mean(), strict=True)]
    same(fns["bb_lower"](c, 5, 2.0, "sample"), lower)


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_population_is_the_default_and_equals_talib(impl: str) -> None:
    fns = IMPLEMENTATIONS[impl]
    c = C[:12]
    same(fns["bb_upper"](c, 5, 2.0), TALIB_UPPER_5_2)
    same(fns["bb_upper"](c, 5, 2.0, "population"), TALIB_UPPER_5_2)


def test_sample_deviation_by_hand() -> None:
    x = [2.0, 4, 4, 4, 5, 5, 7, 9]  # mean 5, squares sum to 32
    same(KERNELS["stdev"](x, 8, "sample"), [_] * 7 + [math.sqrt(32 / 7)])
    same(KERNELS["stdev"](x, 8), [_] * 7 + [2.0])
    same(KERNELS["zscore"]([1.0, 2, 3], 3, "sample"), [_, _, 1.0])  # (3 - 2) / 1
    assert KERNELS["stdev"]([0.1] * 4, 3, "sample")[3] == 0.0  # exactly
    # one value has no sample deviation (pandas: NaN too); the checker rejects n = 1
    same(KERNELS["stdev"]([1.0, 2.0], 1, "sample"), [_, _])
    same(REFERENCE["stdev"]([1.0, 2.0], 1, "sample"), [_, _])


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_unknown_modes_are_refused(impl: str) -> None:
    fns = IMPLEMENTATIONS[impl]
    with pytest.raises(ValueError, match="mode"):
        fns["stdev"](C, 5, "talib")
    with pytest.raises(ValueError, match="mode"):
        fns["adx"](H, L, C, 4, "sample")


# ---------------------------------------------------------------- the checker


def diagnostics(expr: str) -> list[tuple[str, str, str]]:
    text = f"""strategy modes {{
    market BTC/USDT
    timeframe 1h
    param w: int = 5 in 1..10
    param k: int = 5 in 2..10
    entry long when {expr} and w > 0 and k > 0
    size 10% of equity
}}
"""
    parsed = parse_text(text, "modes.peak")
    assert parsed.module is not None
    _spec, found = check_module(parsed.module)
    return [(d.code, d.message, d.help) for d in found if d.severity is Severity.ERROR]


@pytest.mark.parametrize("expr", [
    "stdev(close, 20, sample) > 0", "stdev(close, 20, population) > 0",
    "zscore(close, k, sample) < -2", "close > bb_upper(close, 20, 2, sample)",
    "close < bb_lower(close, k, 2, sample)", "adx(14, talib) > 25",
    "plus_di(w, talib) > minus_di(w, talib)", "macd(close, 12, 26, talib) > 0",
    "macd_signal(close, 12, 26, 9, talib) > 0", "macd_hist(close, w, 26, 9, peak) > 0",
])
def test_modes_check_clean(expr: str) -> None:
    assert diagnostics(expr) == []


@pytest.mark.parametrize(("expr", "code", "message", "help"), [
    ("stdev(close, 20, sampel) > 0", "N015", "unknown mode `sampel` for `stdev`",
     "did you mean `sample`?"),
    ("adx(14, sample) > 25", "N015", "unknown mode `sample` for `adx`", "`talib`"),
    ("stdev(close, sample) > 0", "T016", "`sample` is a mode keyword, not a value for `n`",
     "a mode goes last"),
    ("sma(talib, 5) > 0", "T016", "not a value for `x`", "adx"),
    ("macd(close, 12, 26, 9) > 0", "T016", "last argument of `macd` must be a mode keyword",
     "macd(x, fast, slow[, mode])"),
    ("stdev(close, 20, w) > 0", "T016", "must be a mode keyword", "stdev(x, n[, mode])"),
    ("stdev(close, 1, sample) > 0", "T004", "must be at least 2, found 1", "`sample`"),
    ("zscore(close, w, sample) > 0", "T004", "must be at least 2, found 1", "`sample`"),
    ("stdev(close, 20, sample, sample) > 0", "T003", "takes 2 or 3 argument(s), got 4",
     "`population` (default) or `sample`"),
    ("ema(close, 12, talib) > 0", "T003", "takes 2 argument(s), got 3", "ema(x, n)"),
])
def test_mode_mistakes_are_coded(expr: str, code: str, message: str, help: str) -> None:
    found = diagnostics(expr)
    assert len(found) == 1, found
    assert found[0][0] == code and message in found[0][1] and help in found[0][2], found


def test_a_param_named_like_a_mode_is_a_value_outside_the_mode_position() -> None:
    text = """strategy named_sample {
    market BTC/USDT
    timeframe 1h
    param sample: int = 5 in 2..10
    entry long when stdev(close, sample, sample) > sma(close, sample)
    size 10% of equity
}
"""
    parsed = parse_text(text, "named_sample.peak")
    assert parsed.module is not None
    _spec, found = check_module(parsed.module)
    assert [d.code for d in found if d.severity is Severity.ERROR] == []
    art = compile_source(text, "named_sample")
    assert isinstance(art, StrategyArtifact)
    stdev_node = next(n for n in art.config.graph.nodes if n.op == "stdev")
    assert stdev_node.value == "sample"
    assert art.config.graph.nodes[stdev_node.inputs[1]].op == "param"


def test_mode_words_are_the_choices() -> None:
    choices = {c for b in BUILTINS.values() if b.mode for c in b.mode.choices}
    assert choices == MODE_WORDS == {"population", "sample", "peak", "talib", "day", "week"}
    assert BUILTINS["session_vwap"].signature == "session_vwap([mode])"
    assert BUILTINS["stdev"].signature == "stdev(x, n[, mode])"
    assert BUILTINS["sma"].signature == "sma(x, n)"


# ---------------------------------------------------------------- lowering and evaluation

SPEC = """strategy mode_mix {
    market BTC/USDT
    timeframe 1h
    param w: int = 20 in 2..40
    let pop = stdev(close, w)
    let pop_named = stdev(close, w, population)
    let smp = stdev(close, w, sample)
    let z = zscore(close, w, sample)
    let band = bb_lower(close, 20, 2, sample)
    let line = macd(close, 12, 26, talib)
    let sig = macd_signal(close, 12, 26, 9, talib)
    let hist = macd_hist(close, 12, 26, 9, talib)
    let trend = adx(14, talib)
    let up = plus_di(14, talib)
    let down = minus_di(14, talib)
    let trend_peak = adx(14)
    entry long when smp > pop and line > sig and trend > 20 and up > down and z < 2
        and close > band and hist > 0
    exit long when crossunder(close, sma(close, w)) or trend_peak < 10 or pop_named < 0
    size 50% of equity
}
"""
KERNEL_CALLS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "pop": ("stdev", (20,)), "pop_named": ("stdev", (20, "population")),
    "smp": ("stdev", (20, "sample")), "z": ("zscore", (20, "sample")),
    "band": ("bb_lower", (20, 2.0, "sample")), "line": ("macd", (12, 26, "talib")),
    "sig": ("macd_signal", (12, 26, 9, "talib")), "hist": ("macd_hist", (12, 26, 9, "talib")),
}
DMI_CALLS = {"trend": ("adx", "talib"), "up": ("plus_di", "talib"),
             "down": ("minus_di", "talib"), "trend_peak": ("adx", "peak")}


def candles(n: int = 400) -> CandleSet:
    t = np.arange(n)
    close = 100 + np.cumsum(np.sin(t * 0.21) + 0.6 * np.cos(t * 0.05))
    open_ = np.concatenate([[close[0]], close[:-1]])
    frame = pd.DataFrame({
        "open": open_, "close": close,
        "high": np.maximum(open_, close) + 0.3 + 0.2 * np.abs(np.sin(t)),
        "low": np.minimum(open_, close) - 0.3 - 0.2 * np.abs(np.cos(t)),
        "volume": np.full(n, 10.0),
    }, index=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
    return CandleSet.of(frame, "BTC/USDT", "1h", "test", synthetic=True)


def mix() -> StrategyArtifact:
    art = compile_source(SPEC, "mode_mix")
    assert isinstance(art, StrategyArtifact)
    return art


def test_a_mode_is_a_node_value_and_the_default_merges() -> None:
    graph = mix().config.graph
    lets = graph.lets
    assert lets["pop"] == lets["pop_named"]  # spelling the default out changes nothing
    assert lets["pop"] != lets["smp"]
    nodes = graph.nodes
    assert nodes[lets["pop"]].value is None and nodes[lets["smp"]].value == "sample"
    assert nodes[lets["trend"]].value == "talib" and nodes[lets["trend_peak"]].value is None
    assert nodes[lets["trend"]].inputs == nodes[lets["trend_peak"]].inputs
    # the modes leave the warm-up alone: macd_signal(12, 26, 9) needs 26 + 9 - 2 bars
    assert mix().config.warmup.evaluate({"w": 20}) == 33


def test_evaluator_and_reference_honour_the_modes() -> None:
    data = candles()
    cols = {c: data.frame[c].to_numpy() for c in ("high", "low", "close")}
    signals = evaluate(mix().config, data.frame)
    parsed = parse_text(SPEC, "mode_mix.peak")
    assert parsed.module is not None
    spec, _diags = check_module(parsed.module)
    assert isinstance(spec, CheckedSpec)
    ref = reference_evaluate(spec, data.frame)
    for name, (fn, args) in KERNEL_CALLS.items():
        want = KERNELS[fn](cols["close"], *args)
        np.testing.assert_array_equal(signals.series[name], want, err_msg=name)
        np.testing.assert_allclose(ref[name], want, rtol=1e-9, atol=1e-9, err_msg=name)
    for name, (fn, mode) in DMI_CALLS.items():
        want = KERNELS[fn](cols["high"], cols["low"], cols["close"], 14, mode)
        np.testing.assert_array_equal(signals.series[name], want, err_msg=name)
        np.testing.assert_allclose(ref[name], want, rtol=1e-9, atol=1e-9, err_msg=name)
    assert not np.allclose(signals.series["smp"][40:], signals.series["pop"][40:])
    for slot, signal in signals.rules.items():
        np.testing.assert_array_equal(signal[signals.warmup:],
                                      ref[slot][signals.warmup:], err_msg=slot)


def test_sweep_engine_keeps_modes_apart() -> None:
    """``smp > pop`` is true on every bar with any movement; were the two calls cached as
    one, the entry would never fire and the block would show no trades."""
    art, data = mix(), candles()
    combos = np.array([[10.0], [20.0], [31.0]])
    got = evaluate_block(art, data, ("w",), combos)
    want = reference_block(art, data, ("w",), combos)
    assert (want["trades"] > 0).all()
    for key, values in want.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-12, atol=1e-12, err_msg=key)


# ---------------------------------------------------------------- documentation

LANGUAGE = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text("utf-8")


def _section(title: str, end: str) -> str:
    return LANGUAGE[LANGUAGE.index(title):LANGUAGE.index(end)]


def test_every_mode_is_documented() -> None:
    modes = _section("### Modes: conventions of other tools", "### Seeding of recursive")
    for builtin in BUILTINS.values():
        if builtin.mode is not None:
            assert f"`{builtin.name}`" in modes, builtin.name
            assert all(f"`{c}`" in modes for c in builtin.mode.choices), builtin.name


def test_every_recursive_indicator_documents_its_seed() -> None:
    seeding = _section("### Seeding of recursive indicators", "### Every built-in at once")
    for name in ("ema", "rma", "rsi", "atr", "macd", "macd_signal", "macd_hist", "plus_di",
                 "minus_di", "adx"):
        assert f"| `{name}(" in seeding or f", `{name}(" in seeding, name
