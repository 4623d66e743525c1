"""The unit mix-ups of issue 7 carry machine-applicable fixes (`peak check --fix`): a
percentage next to an oscillator becomes the plain number, a bare number next to a
percentage becomes the percentage it means."""

from __future__ import annotations

import pytest

from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text


def fixed(condition: str) -> str:
    text = ("strategy s {\n    market BTC/EUR\n    timeframe 1h\n"
            f"    entry long when {condition}\n}}\n")
    parsed = parse_text(text, "s.peak")
    assert parsed.module is not None
    found = [d for d in check_module(parsed.module)[1] if d.code == "T002"]
    assert len(found) == 1 and found[0].fix is not None, found
    line = found[0].fix.apply(text).splitlines()[3]
    return line.removeprefix("    entry long when ")


@pytest.mark.parametrize(("condition", "expected"), [
    ("rsi(close, 14) < 30%", "rsi(close, 14) < 30"),
    ("30% > rsi(close, 14)", "30 > rsi(close, 14)"),
    ("crossover(rsi(close, 14), 70%)", "crossover(rsi(close, 14), 70)"),
    ("percent_rank(close, 50) > 80.5%", "percent_rank(close, 50) > 80.5"),
    ("roc(close, 10) > 2", "roc(close, 10) > 2%"),
    ("roc(close, 10) > -3", "roc(close, 10) > -3%"),
])
def test_the_fix_writes_what_was_meant(condition: str, expected: str) -> None:
    assert fixed(condition) == expected
