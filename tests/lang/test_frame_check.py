"""Reading other timeframes and markets (``lang.frames``): what checks clean, T020, T021."""

from __future__ import annotations

import pytest

from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text


def strategy(*lines: str, timeframe: str = "1h") -> str:
    body = "\n    ".join(lines)
    return f"strategy s {{\n    market BTC/USDT\n    timeframe {timeframe}\n    {body}\n}}\n"


def diagnostics(*lines: str, timeframe: str = "1h") -> list[tuple[str, str]]:
    parsed = parse_text(strategy(*lines, timeframe=timeframe), "s.peak")
    assert parsed.module is not None, parsed.diagnostics
    return [(d.code, d.message) for d in check_module(parsed.module)[1] if d.is_error]


@pytest.mark.parametrize("rule", [
    "entry long when close > close@4h",
    "entry long when close > sma(close, 50)@1d",
    "entry long when atr(14)@1d > atr(14)",
    "entry long when crossover(ema(close, 5), ema(close, 20))@4h",
    "entry long when close - close@ETH/USDT > 0",
    "entry long when close@ETH/USDT@4h > close@ETH/USDT@4h[1]",
    "entry long when (close@ETH/USDT)@1d > 0",  # the same frame written in two steps
    "entry long when close@1h > open",  # the strategy's own timeframe: just `close`
    "entry long when close@1w > open",  # 1w bars open on Mondays, on the 1h grid
])
def test_frames_the_data_can_give_check_clean(rule: str) -> None:
    assert diagnostics(rule) == []


def test_a_let_named_inside_a_frame_checks_clean() -> None:
    assert diagnostics("let fast = ema(close, 10)", "let slow = ema(close, 40)",
                       "entry long when (fast > slow)@4h and fast > slow") == []


@pytest.mark.parametrize(("rule", "timeframe", "words"), [
    ("entry long when close@30m > open", "1h", "finer than the strategy's timeframe"),
    ("entry long when close@1w > open", "3d", "1w bars cannot be built from 3d bars"),
    ("entry long when close@7h > open", "1h", "unknown timeframe `7h`"),
    ("entry long when close@ETH/USDT@30m > open", "1h", "finer"),
])
def test_a_timeframe_the_candles_cannot_give_is_t020(rule: str, timeframe: str,
                                                     words: str) -> None:
    found = diagnostics(rule, timeframe=timeframe)
    assert [code for code, _ in found] == ["T020"]
    assert words in found[0][1]


@pytest.mark.parametrize(("lines", "words"), [
    (["entry long when (close@4h)@1d > 0"], "a frame inside a frame"),
    (["let d = close@4h", "entry long when d@1d > 0"], "through `d`"),
    (["state s = nz(s[1], 0) + 1", "entry long when (close + s)@4h > 0"],
     "the state `s`"),
    (["entry long when close > open", "exit long when (bars_in_trade > 3)@4h"],
     "reads the position"),
    (["entry long when 5@4h > 0"], "this value is constant"),
])
def test_what_cannot_be_computed_on_a_frame_is_t021(lines: list[str], words: str) -> None:
    found = diagnostics(*lines)
    assert "T021" in [code for code, _ in found], found
    assert any(words in message for _, message in found), found
