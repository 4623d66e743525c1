"""The reference interpreter's frames (``engine.reference_frames`` and the frame rule in
``engine.reference``), with literal numbers on ten hand-made 1h bars — and the compiled
evaluator on the same bars, so a literal pins both sides of the differential property.

Ten bars from 02:00 with close 1..10: the 00:00 4h bucket (two bars) is dropped, the
04:00 bucket closes 6 and is read from bar 07:00 (index 5), the 08:00 bucket closes 10 and
is read from bar 11:00 (index 9). ETH is BTC doubled without its 05:00 bar.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.data.frames import frame_inputs, frame_keys
from peakdsl.engine.evaluate import columns_of, evaluate
from peakdsl.engine.reference import reference_evaluate
from peakdsl.engine.reference_frames import FrameData, resampled
from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text

NAN = float("nan")
TEXT = """\
strategy tiny {
    market BTC/USDT
    timeframe 1h
    let mom = close - close[1]
    let a = sma(close, 2)@4h
    let b = sma(close@4h, 2)
    let c = sma(close@4h + close, 2)
    let d = close@4h[1]
    let f = mom@4h
    let g = sma(5, 10)@4h
    let h = close@4h > 0 or true
    let k = if true then close@4h else close
    let x = close - close@ETH/USDT
    entry long when crossover(close, close@4h)
}
"""
EXPECTED: dict[str, list[Any]] = {
    # a window inside `@` counts 4h bars; so does one over a single frame's series
    "a": [NAN] * 9 + [8.0], "b": [NAN] * 9 + [8.0],
    # frames meeting the strategy's bars: the 4h close aligned first, then a 1h window
    "c": [NAN] * 6 + [12.5, 13.5, 14.5, 17.5],
    "d": [NAN] * 9 + [6.0],  # a lag of a frame's series: one 4h bar back
    "f": [NAN] * 9 + [4.0],  # a let named inside `@` is recomputed there: 10 - 6
    "g": [NAN] * 9 + [5.0],  # no series inside: a window of the strategy's own bars
    "h": [True] * 10,  # `or true` is true, whatever the frame of the other side
    "k": [NAN] * 5 + [6.0] * 4 + [10.0],  # `if true` is its branch
    # ETH has no 05:00 bar: BTC's 05:00 reads ETH's last closed, 04:00 (close 6)
    "x": [-1.0, -2.0, -3.0, -2.0, -5.0, -6.0, -7.0, -8.0, -9.0, -10.0],
    "entry_long": [False] * 6 + [True] + [False] * 3,  # 7 crosses the 4h close of 6
}
TIMES = pd.date_range("2024-01-01 02:00", periods=10, freq="1h", tz="UTC")


def btc() -> pd.DataFrame:
    close = np.arange(1.0, 11.0)
    return pd.DataFrame({"open": close, "high": close + 0.5, "low": close - 0.5,
                         "close": close, "volume": np.ones(10)}, index=TIMES)


def eth() -> pd.DataFrame:
    return (btc() * 2).drop(TIMES[[3]])


def test_the_reference_reads_frames_as_the_language_says() -> None:
    parsed = parse_text(TEXT, "tiny.peak")
    assert parsed.module is not None
    spec, diags = check_module(parsed.module)
    assert not [d for d in diags if d.is_error]
    out = reference_evaluate(spec, btc(), None, {"ETH/USDT": eth()})
    for name, want in EXPECTED.items():
        np.testing.assert_array_equal(out[name], np.array(want), err_msg=name)


def test_the_compiled_evaluator_gives_the_same_literals() -> None:
    artifact = api.compile_source(TEXT, "tiny")
    assert isinstance(artifact, m.StrategyArtifact)
    cfg = artifact.config
    inputs = columns_of(btc()) | frame_inputs(frame_keys(cfg), btc(), "1h",
                                              {"ETH/USDT": eth()})
    signals = evaluate(cfg, inputs)
    # the warm-up bounds the 4h value's first bar statically: 2 * 4 - 2 bars for the frame
    # bar that may lie behind, one more for the cross; rules are masked until then
    assert signals.warmup == 7
    values = {**signals.series, **signals.rules}
    for name, want in EXPECTED.items():
        expected = np.array(want)
        if name in signals.rules:
            expected[:signals.warmup] = False
        np.testing.assert_array_equal(values[name], expected, err_msg=name)


def test_resampling_keeps_interior_gaps_and_drops_incomplete_edges() -> None:
    """04:00-08:00 lacks 06:00 but is interior (kept, from three bars: volume 3); the
    00:00 bucket is an edge with two bars (dropped); 08:00-12:00 is complete (kept)."""
    frame = btc().drop(TIMES[[4]])  # no 06:00
    bars = resampled(frame, "1h", "4h")
    assert [str(t) for t in bars.index] == ["2024-01-01 04:00:00+00:00",
                                            "2024-01-01 08:00:00+00:00"]
    assert bars["close"].tolist() == [6.0, 10.0]
    assert bars["high"].tolist() == [6.5, 10.5]
    assert bars["volume"].tolist() == [3.0, 4.0]


def test_a_week_opens_on_monday() -> None:
    """Daily bars from Monday 2024-01-01 for 15 days: weeks of 01-01 and 01-08 complete,
    01-15 (one day) dropped."""
    days = pd.date_range("2024-01-01", periods=15, freq="1D", tz="UTC")
    close = np.arange(1.0, 16.0)
    frame = pd.DataFrame({"open": close, "high": close, "low": close, "close": close,
                          "volume": close}, index=days)
    bars = resampled(frame, "1d", "1w")
    assert bars["close"].tolist() == [7.0, 14.0]
    assert [t.day_name() for t in bars.index] == ["Monday", "Monday"]


def test_the_index_is_the_last_closed_frame_bar() -> None:
    frames = FrameData(btc(), "BTC/USDT", "1h", {"ETH/USDT": eth()})
    assert frames.index("4h").tolist() == [-1] * 5 + [0] * 4 + [1]
    assert frames.index("ETH/USDT").tolist() == [0, 1, 2, 2, 3, 4, 5, 6, 7, 8]


def test_frames_need_a_time_index() -> None:
    parsed = parse_text(TEXT, "tiny.peak")
    assert parsed.module is not None
    spec, _ = check_module(parsed.module)
    with pytest.raises(ValueError, match="DatetimeIndex"):
        reference_evaluate(spec, btc().reset_index(drop=True), None, {"ETH/USDT": eth()})
