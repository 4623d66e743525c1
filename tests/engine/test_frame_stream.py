"""Frames bar by bar (``engine.frame_stream``): a stream fed every bar from the first one
returns, at every bar, what the whole-array run on ``data.frames.inputs_for`` returns there —
bit for bit, as ``test_program.py`` asks of every stream — for own-market timeframes and
other markets, on synthetic candles and on real ones with gaps; a stream started from
``Program.history()`` bars has every let and rule defined at once; a bar without its time is
an ``EvaluationError``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_program import assert_identical as same_as_whole  # tests/engine is on sys.path

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.data.candles import CandleSet
from peakdsl.data.frames import inputs_for
from peakdsl.data.importer import import_file
from peakdsl.data.resample import resample
from peakdsl.engine.frame_stream import Bucketer, bar_time
from peakdsl.engine.kernels import KERNELS, STATES
from peakdsl.engine.program import EvaluationError, Program, Signals
from peakdsl.engine.stream import BarSignals, Stream
from peakdsl.lang.frames import Frame

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")
Array = np.ndarray[Any, Any]

MTF = """
strategy mtf {
  market BTC/USDT
  timeframe 1h
  param n: int = 20 in 5..50
  let daily = sma(close, 5)@1d
  let trend = close@4h > close@4h[1]
  let spread = close - close@ETH/USDT
  let eth4 = ema(close, 3)@ETH/USDT@4h
  entry long when close > daily and trend and atr(14)@1d > 0 and spread > sma(spread, n)
  exit long when close < daily or close@ETH/USDT < eth4
}
"""


def own_frames(timeframe: str, mid: str, slow: str) -> str:
    """A strategy of ``timeframe`` reading two coarser frames of its own market: windows,
    recursive kernels, booleans and volume on them, and a let computed on a frame."""
    return f"""
strategy own {{
  market BTC/USDT
  timeframe {timeframe}
  let up = close > open
  let vol = sma(volume, 3)@{mid}
  let level = sma(close, 4)@{slow}
  let filt = close@{slow} > sma(close, 4)@{slow}
  let width = atr(3)@{mid}
  let up_mid = up@{mid}
  entry long when filt and close > highest(high, 3)@{mid} and up_mid
  exit long when close < lowest(low, 2)@{mid} or rsi(close, 3)@{slow} > 70
  entry short when not filt and volume > vol
  exit short when width > 2 * atr(3)
}}
"""


def config(text: str) -> m.StrategyConfig:
    artifact = api.compile_source(text, "t")
    assert isinstance(artifact, m.StrategyArtifact), artifact
    return artifact.config


def candles(frame: pd.DataFrame, market: str, timeframe: str,
            others: tuple[CandleSet, ...] = ()) -> CandleSet:
    return CandleSet.of(frame, market, timeframe, "test", False).with_others(others)


def synthetic(n: int, seed: int, start: str, freq: str = "1h",
              drop: tuple[int, ...] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
    frame = pd.DataFrame({
        "open": open_, "high": np.maximum(open_, close) * 1.002,
        "low": np.minimum(open_, close) * 0.998, "close": close,
        "volume": rng.lognormal(3, 1, n)},
        index=pd.date_range(start, periods=n, freq=freq, tz="UTC"))
    return frame.drop(frame.index[list(drop)])


def pushed(stream: Stream, base: pd.DataFrame, others: dict[str, pd.DataFrame]
           ) -> list[BarSignals]:
    """Every bar of ``base`` with its time, each other market's bars opening after the
    previous base bar and at or before this one pushed with it."""
    at = dict.fromkeys(others, 0)
    out = []
    for t, row in zip(base.index, base.to_dict("records"), strict=True):
        batch = {}
        for market, frame in others.items():
            lo = at[market]
            hi = int(np.searchsorted(frame.index, t, side="right"))
            if hi > lo:
                batch[market] = [{**r, "time": s} for s, r in zip(
                    frame.index[lo:hi], frame.iloc[lo:hi].to_dict("records"), strict=True)]
            at[market] = hi
        out.append(stream.push({**row, "time": t}, batch or None))
    return out


def assert_identical(whole: Signals, bars: list[BarSignals], skip: int = 0) -> dict[str, int]:
    """``test_program.assert_identical`` (every let and rule equal bit for bit from bar
    ``skip`` on), and the defined values counted (so a test can check there was something to
    compare)."""
    same_as_whole(whole, bars, skip)
    return {name: int(np.sum(values[skip:]) if values.dtype == np.bool_
                      else np.sum(~np.isnan(values[skip:])))
            for name, values in {**whole.series, **whole.rules}.items()}


# ---------------------------------------------------------------- synthetic candles


def test_the_mtf_spec_streamed_with_another_market_equals_the_whole_array_run() -> None:
    """Both markets with gaps (ETH's first bars before BTC's, cut as the whole-array run
    cuts them; an ETH bar where BTC has none pushed with BTC's next bar)."""
    cfg = config(MTF)
    btc = synthetic(2400, 1, "2024-01-01 03:00", drop=(500, 501, 502, 1000, 1701))
    eth = synthetic(2460, 2, "2023-12-31 20:00", drop=(300, 801, 1200, 1203))
    run = candles(btc, "BTC/USDT", "1h", (candles(eth, "ETH/USDT", "1h"),))
    program = Program(cfg)
    whole = program.signals(inputs_for(cfg, run), {"n": 7})
    defined = assert_identical(whole, pushed(program.stream({"n": 7}), btc,
                                             {"ETH/USDT": eth}))
    assert defined["daily"] > 2000 and defined["eth4"] > 2000
    assert defined["entry_long"] > 0 and defined["exit_long"] > 0


@pytest.mark.parametrize(("timeframe", "mid", "slow", "freq"),
                         [("1h", "4h", "1d", "1h"), ("4h", "1d", "1w", "4h"),
                          ("15m", "1h", "4h", "15min")])
def test_own_market_frames_streamed_equal_the_whole_array_run(
        timeframe: str, mid: str, slow: str, freq: str) -> None:
    """Starting inside a bucket (the first one dropped), with gaps inside buckets, at a
    bucket's closing bar and across a whole bucket."""
    cfg = config(own_frames(timeframe, mid, slow))
    frame = synthetic(3000, 5, "2024-01-03 07:00", freq,
                      drop=(40, 41, 200, *range(700, 760), 1203, 2000))
    program = Program(cfg)
    whole = program.signals(inputs_for(cfg, candles(frame, "BTC/USDT", timeframe)))
    defined = assert_identical(whole, pushed(program.stream(), frame, {}))
    assert defined["filt"] > 1000 and defined["width"] > 2000
    assert min(defined[r] for r in ("entry_long", "exit_long", "entry_short",
                                    "exit_short")) > 0


def test_the_whole_array_run_on_a_time_indexed_frame_is_the_same() -> None:
    """``Program.signals`` on the DataFrame itself builds the own-market frames too."""
    cfg = config(own_frames("1h", "4h", "1d"))
    frame = synthetic(600, 9, "2024-02-01 05:00", drop=(100,))
    program = Program(cfg)
    assert_identical(program.signals(frame), pushed(program.stream(), frame, {}))


def test_a_stream_from_the_history_has_every_value_defined_at_its_first_bar() -> None:
    """``Program.history()`` bars (the align lookback scales the frame's warm-up by its bars
    and allows for the first, partial bucket), wherever the history starts in a bucket."""
    cfg = config(own_frames("1h", "4h", "1d"))
    program = Program(cfg)
    need = program.history()
    assert need == 118  # sma(close, 4)@1d, rsi(close, 3)@1d: 3 daily bars, 3 * 24 + 2 * 24 - 2
    for offset in range(0, 24, 5):
        frame = synthetic(need + 30, offset, "2024-03-01 00:00").iloc[offset:]
        stream = program.stream(history=frame.iloc[:need])
        assert stream.bars == need
        first = pushed(stream, frame.iloc[need:], {})[0]
        assert first.index == need
        assert not any(math.isnan(v) for v in first.series.values() if isinstance(v, float))
        assert first.series["level"] == first.series["level"]  # not NaN
    # the bound is tight when the history starts one bar into a day (that day is dropped)
    frame = synthetic(need + 30, 1, "2024-03-01 01:00")
    first = pushed(program.stream(history=frame.iloc[:need]), frame.iloc[need:], {})[0]
    late = pushed(program.stream(history=frame.iloc[:need - 1]), frame.iloc[need - 1:], {})[0]
    assert not math.isnan(first.series["level"]) and math.isnan(late.series["level"])


def test_a_history_with_other_markets_is_pushed_in_time_order() -> None:
    cfg = config(MTF)
    btc = synthetic(900, 3, "2024-01-01 00:00")
    eth = synthetic(900, 4, "2024-01-01 00:00", drop=(10, 11))
    program = Program(cfg)
    whole = program.signals(inputs_for(cfg, candles(btc, "BTC/USDT", "1h", (
        candles(eth, "ETH/USDT", "1h"),))))
    stream = program.stream(history=btc.iloc[:500], others={"ETH/USDT": eth})
    rest = pushed(stream, btc.iloc[500:], {"ETH/USDT": eth.loc[eth.index > btc.index[499]]})
    assert_identical(whole, rest, skip=500)


# ---------------------------------------------------------------- real candles with gaps


@pytest.fixture(scope="module")
def real_1m() -> CandleSet:
    if not SHARED.is_dir():
        pytest.skip(f"real candles not present ({SHARED})")
    result = import_file(SHARED / "binance_BTC_1m_with_gaps.csv", "BTC/USDT")
    assert result.candles is not None and result.gaps == 538
    return result.candles


@pytest.mark.realdata
@pytest.mark.parametrize(("timeframe", "mid", "slow"),
                         [("1m", "5m", "15m"), ("5m", "15m", "1h"), ("15m", "1h", "4h")])
def test_own_market_frames_on_real_candles_with_gaps(real_1m: CandleSet, timeframe: str,
                                                     mid: str, slow: str) -> None:
    base = real_1m if timeframe == "1m" else resample(real_1m, timeframe).candles
    cfg = config(own_frames(timeframe, mid, slow))
    program = Program(cfg)
    whole = program.signals(inputs_for(cfg, base))
    defined = assert_identical(whole, pushed(program.stream(), base.frame, {}))
    assert defined["filt"] > 100 and defined["entry_long"] + defined["entry_short"] > 0


@pytest.mark.realdata
def test_another_real_market_with_gaps() -> None:
    """ETH/BTC 5m reading LTC/BTC (5m and 1h) with bars dropped from both."""
    if not SHARED.is_dir():
        pytest.skip(f"real candles not present ({SHARED})")
    eth = import_file(SHARED / "binance_ETH_BTC_5m.csv", "ETH/BTC", "5m").candles
    ltc = import_file(SHARED / "binance_LTC_BTC_5m.csv", "LTC/BTC", "5m").candles
    assert eth is not None and ltc is not None
    cfg = config("""
strategy pair {
  market ETH/BTC
  timeframe 5m
  let ratio = close / close@LTC/BTC
  let slow = sma(close, 6)@LTC/BTC@1h
  entry long when ratio > sma(ratio, 24) and close@LTC/BTC > slow
  exit long when ratio < sma(ratio, 24)
}
""")
    a = eth.frame.drop(eth.frame.index[[5, 6, 900, 2000]])
    b = ltc.frame.drop(ltc.frame.index[[0, 7, 8, 9, 1500, *range(3000, 3030)]])
    program = Program(cfg)
    whole = program.signals(inputs_for(cfg, candles(a, "ETH/BTC", "5m", (
        candles(b, "LTC/BTC", "5m"),))))
    defined = assert_identical(whole, pushed(program.stream(), a, {"LTC/BTC": b}))
    assert defined["slow"] > 5000 and defined["entry_long"] > 0


# ---------------------------------------------------------------- the bars' times


def test_a_bar_without_its_time_is_an_evaluation_error() -> None:
    program = Program(config(own_frames("1h", "4h", "1d")))
    bar = {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    with pytest.raises(EvaluationError, match="needs its open `time`"):
        program.stream().push(bar)
    with pytest.raises(EvaluationError, match="not a time"):
        program.stream().push({**bar, "time": "yesterday"})
    with pytest.raises(EvaluationError, match="time-indexed DataFrame"):
        program.stream(history={**{k: [v] for k, v in bar.items()}})
    stream = program.stream()
    stream.push({**bar, "time": pd.Timestamp("2024-01-01", tz="UTC")})
    stream.push({**bar, "time": 1_704_070_800_000_000_000})  # 01:00 as ns
    assert stream.bars == 2


def test_other_markets_bars_are_checked() -> None:
    program = Program(config(MTF))
    bar = {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    t = pd.Timestamp("2024-01-01 05:00", tz="UTC")
    with pytest.raises(EvaluationError, match="does not read SOL/USDT"):
        program.stream().push({**bar, "time": t}, {"SOL/USDT": {**bar, "time": t}})
    with pytest.raises(EvaluationError, match="opening after the strategy's bar"):
        program.stream().push({**bar, "time": t},
                              {"ETH/USDT": {**bar, "time": t + pd.Timedelta("1h")}})
    with pytest.raises(EvaluationError, match="has no `time`"):
        program.stream().push({**bar, "time": t}, {"ETH/USDT": bar})
    plain = Program(config(own_frames("1h", "4h", "1d")))
    with pytest.raises(EvaluationError, match="does not read ETH/USDT"):
        plain.stream().push({**bar, "time": t}, {"ETH/USDT": {**bar, "time": t}})


def test_bar_time_reads_timestamps_datetimes_and_nanoseconds() -> None:
    t = pd.Timestamp("2024-01-01 04:00", tz="UTC")
    assert bar_time(t) == bar_time(t.to_pydatetime()) == bar_time(np.datetime64(
        "2024-01-01T04:00")) == bar_time(int(t.value)) == 1_704_081_600_000_000_000


def test_the_bucketer_closes_a_bucket_at_its_last_bar_or_a_later_one() -> None:
    """4h from 1h: the first bucket (from 02:00) dropped; 04:00–07:00 closed by 07:00;
    08:00–11:00 missing 11:00, closed by the clock at 11:00's close; 12:00 alone, closed by
    15:00 (one bar completing one bucket)."""
    b = Bucketer.of(Frame("", "4h"), 3600)
    hour = 3_600 * 10**9
    row = (1.0, 2.0, 0.5, 1.5, 3.0)
    done = [(h, [bar.open_ns // hour for bar in b.add(h * hour, row)]) for h in
            (2, 3, 4, 5, 6, 7, 8, 9, 10)]
    assert done == [(2, []), (3, []), (4, []), (5, []), (6, []), (7, [4]), (8, []), (9, []),
                    (10, [])]
    assert b.due(11 * hour) == [] and [x.open_ns // hour for x in b.due(12 * hour)] == [8]
    (closed,) = b.add(15 * hour, (2.0, 3.0, 1.0, 2.5, math.nan))
    assert closed.open_ns // hour == 12 and closed.row[:4] == (2.0, 3.0, 1.0, 2.5)
    assert math.isnan(closed.row[4])  # no volume in, no volume out


def test_the_align_state_is_the_align_kernel_bar_by_bar() -> None:
    """``STATES["align"]`` pushed the frame's latest value and index equals ``KERNELS``'s
    ``align`` over the frame's series: NaN (False for booleans) before the first bar."""
    series = np.array([1.5, 2.5, np.nan, 4.0])
    index = np.array([-1, -1, 0, 0, 1, 2, 2, 3])
    want = KERNELS["align"](series, index, "4h")
    state = STATES["align"]("4h")
    got = [state.push(series[max(i, 0)].item(), float(i)) for i in index]
    np.testing.assert_array_equal(np.array(got), want)
    assert np.isnan(want[:2]).all() and want[4] == 2.5  # NaN before the first bar
    flags = np.array([True, False])
    assert KERNELS["align"](flags, np.array([-1, 0, 1]), "1d").tolist() == [False, True, False]
    assert [state.push(bool(flags[0]), -1.0), state.push(bool(flags[1]), 0.0)] == [False, False]
