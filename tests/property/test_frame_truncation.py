"""The truncation property of frames (``x@4h``, ``x@ETH/USDT``; ``lang.frames``): a frame's
bar is seen only from the strategy bar that closes with it on, so cutting the data after
any bar changes no value at or before it.

For drawn specs that read frames (``specgen``, the differential property's generator), the
run on the first ``k`` bars — with the other market cut to that stretch, as
``data.frames.inputs_for`` cuts it for a walk-forward window — gives at every bar before
``k`` exactly the lets, rules and stop/size levels of the run on all bars: the compiled
evaluator and the reference interpreter alike. A frame value that leaked from the future
(a bucket seen while it forms, an index off by one) would differ there. One hand-made
example pins the alignment with literal numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from specgen import Case, cases
from test_differential import candle_set, check, overridden_params

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.compile.artifacts import build_artifact
from peakdsl.data.candles import CandleSet
from peakdsl.data.frames import inputs_for
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.reference import reference_evaluate

Array = np.ndarray[Any, Any]
NAN = float("nan")

settings.register_profile(
    "peak-truncation", max_examples=150, derandomize=True, database=None, deadline=None,
    print_blob=False, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.large_base_example,
                                             HealthCheck.filter_too_much])
CI = settings.get_profile("peak-truncation")


def compiled(cfg: m.StrategyConfig, candles: CandleSet, k: int,
             params: Mapping[str, float]) -> dict[str, Array]:
    """Lets, rules and levels of the compiled graph on the first ``k`` bars."""
    stretch = candles.frame.iloc[:k]
    signals = evaluate(cfg, inputs_for(cfg, candles, stretch), params)
    return {**signals.series, **signals.rules,
            **{f"level {slot}": v for slot, v in signals.levels.items()}}


def referenced(case: Case, candles: CandleSet, k: int, params: Mapping[str, float]
               ) -> dict[str, Array]:
    """The reference interpreter's values on the first ``k`` bars (other markets cut to
    their span, which the reference does itself)."""
    spec, _ = check(case.spec)
    return reference_evaluate(spec, candles.frame.iloc[:k], params,
                              {o.market: o.frame for o in candles.others})


def assert_prefix(name: str, short: Array, whole: Array, k: int) -> None:
    """``short`` (k bars) is ``whole``'s first k bars exactly: values, NaN positions."""
    want = whole[:k]
    assert short.shape == want.shape and short.dtype == want.dtype, (name, short, want)
    same = (short == want) | (np.isnan(short) & np.isnan(want)) \
        if short.dtype != np.bool_ else short == want
    bad = np.flatnonzero(~same)
    assert bad.size == 0, (f"{name}: the run on {k} bars differs at bars {bad.tolist()}: "
                           f"{short[bad].tolist()} vs {want[bad].tolist()} on all bars")


def run_truncation(case: Case, cut: float) -> Counter[str]:
    """Both evaluators on all bars and on a prefix; counts what was compared."""
    spec, diags = check(case.spec)
    if any(d.is_error for d in diags) or "@" not in case.spec:
        return Counter(skipped=1)
    artifact = build_artifact(spec, case.spec.encode(), "gen.peak", {})
    assert isinstance(artifact, m.StrategyArtifact)
    cfg = artifact.config
    params = overridden_params(cfg, spec, case.overrides)
    candles = candle_set(case.frame(), cfg.market.symbol, cfg.timeframe, case.markets())
    n = candles.bars
    k = max(1, min(n - 1, round(cut * n)))
    seen: Counter[str] = Counter(examples=1)
    for label, run in (("compiled", lambda j: compiled(cfg, candles, j, params)),
                       ("reference", lambda j: referenced(case, candles, j, params))):
        whole, short = run(n), run(k)
        assert set(whole) == set(short)
        for name in whole:
            assert_prefix(f"{label} {name}", short[name], whole[name], k)
            seen["values"] += k
            seen["defined"] += int((~np.isnan(whole[name][:k])).sum()
                                   if whole[name].dtype != np.bool_ else k)
    return seen


def test_a_run_on_fewer_bars_agrees_on_every_bar_it_has() -> None:
    seen: Counter[str] = Counter()

    @CI
    @given(case=cases().filter(lambda c: "@" in c.spec), cut=st.floats(0.1, 0.9))
    def prop(case: Case, cut: float) -> None:
        seen.update(run_truncation(case, cut))

    prop()
    assert seen["examples"] > 0.8 * CI.max_examples, seen  # few skipped
    assert seen["defined"] > 0.3 * seen["values"], seen  # not a comparison of NaNs


# ---------------------------------------------------------------- by hand

TINY = """\
strategy tiny {
    market BTC/USDT
    timeframe 1h
    let c4 = close@4h
    let up = close@4h > close@4h[1]
    entry long when close > c4
}
"""
# ten 1h bars from 02:00: the 00:00-04:00 bucket has only two (dropped: the data starts in
# it), 04:00-08:00 and 08:00-12:00 are complete; close = 1, 2, ..., 10
TIMES = pd.date_range("2024-01-01 02:00", periods=10, freq="1h", tz="UTC")
CLOSES = [float(i) for i in range(1, 11)]


def tiny_frame() -> pd.DataFrame:
    closes = np.array(CLOSES)
    return pd.DataFrame({"open": closes, "high": closes + 0.5, "low": closes - 0.5,
                         "close": closes, "volume": np.ones(10)}, index=TIMES)


def test_a_4h_close_appears_at_the_1h_bar_that_closes_its_bucket() -> None:
    """The 04:00 bucket's close (bar 07:00's, 6) from bar 07:00 on; the 08:00 bucket's (10)
    from bar 11:00; NaN before the first complete bucket closes."""
    artifact = api.compile_source(TINY, "tiny")
    assert isinstance(artifact, m.StrategyArtifact)
    frame = tiny_frame()
    candles = CandleSet.of(frame, "BTC/USDT", "1h", "hand-made")
    signals = evaluate(artifact.config, inputs_for(artifact.config, candles))
    spec, _ = check(TINY)
    reference = reference_evaluate(spec, frame)
    want = [np.nan] * 5 + [6.0] * 4 + [10.0]
    for got in (signals.series["c4"], reference["c4"]):
        np.testing.assert_array_equal(got, want)
    up = [False] * 9 + [True]  # 10 > 6 once the second 4h bar has closed
    assert signals.series["up"].tolist() == up
    assert reference["up"].tolist() == up


def test_the_first_bucket_stays_dropped_when_it_is_also_the_last() -> None:
    """1h bars from 01:00: the 00:00 2h bucket lacks its first bar, so the run on all bars
    has no 2h bar before 02:00-04:00 closes; the run on the first bar alone must not see
    one either (its only bucket is first as well as last and closed)."""
    text = TINY.replace("close@4h > close@4h[1]", "close@2h > 0").replace("@4h", "@2h")
    artifact = api.compile_source(text, "tiny")
    assert isinstance(artifact, m.StrategyArtifact)
    frame = tiny_frame().set_axis(TIMES - pd.Timedelta(hours=1))  # from 01:00
    candles = CandleSet.of(frame, "BTC/USDT", "1h", "hand-made")
    spec, _ = check(text)
    for k in (1, 3, 10):
        stretch = candles.frame.iloc[:k]
        got = evaluate(artifact.config, inputs_for(artifact.config, candles, stretch))
        want = ([NAN] * 2 + [3.0] * 2 + [5.0] * 2 + [7.0] * 2 + [9.0] * 2)[:k]
        np.testing.assert_array_equal(got.series["c4"], want, err_msg=f"compiled, {k} bars")
        np.testing.assert_array_equal(reference_evaluate(spec, stretch)["c4"], want,
                                      err_msg=f"reference, {k} bars")
