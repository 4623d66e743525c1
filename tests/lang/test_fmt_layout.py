"""`peak fmt` layout: short one-line blocks, long expressions broken within the width."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakdsl.lang.fmt import WIDTH, format_source
from peakdsl.lang.parser import parse_text


def fmt(text: str) -> str:
    result = format_source(text, "t.peak")
    assert result.diagnostics == () and result.text is not None, result.diagnostics
    again = format_source(result.text, "t.peak")
    assert again.text == result.text and not again.changed  # idempotent
    assert parse_text(result.text).module == parse_text(text).module  # same meaning
    return result.text


def test_a_block_written_on_one_line_stays_on_one_line() -> None:
    text = "strategy s {\n    execution {fill next_open   fees 10bps}\n}\n"
    assert fmt(text) == "strategy s {\n    execution { fill next_open fees 10bps }\n}\n"


def test_a_block_written_over_lines_stays_over_lines() -> None:
    text = "strategy s {\n    execution { fill next_open\n        fees 10bps }\n}\n"
    assert fmt(text) == ("strategy s {\n    execution {\n        fill next_open\n"
                         "        fees 10bps\n    }\n}\n")


@pytest.mark.parametrize("inner", [
    "fill next_open  # why\n",                          # a comment: spans two lines
    "log {} throttle 5m",                              # a block inside
    "fill next_open " + " ".join(f"k{i} {i}" for i in range(20)),  # too long for the line
])
def test_a_one_line_block_is_expanded_when_it_cannot_stay(inner: str) -> None:
    out = fmt(f"strategy s {{\n    execution {{ {inner} }}\n}}\n")
    assert "    execution {\n" in out
    assert all(len(line) <= WIDTH for line in out.splitlines())


LONG_RULE = ("strategy s {\n    entry long when crossover(fast, slow) and rsi(close, 14) < 70 "
             "and volume > sma(volume, 20) * 1.5 and close > highest(high, 20)[1]  # why\n}\n")


def test_a_long_rule_breaks_at_and_with_an_indented_continuation() -> None:
    assert fmt(LONG_RULE) == """\
strategy s {
    entry long when crossover(fast, slow)
        and rsi(close, 14) < 70
        and volume > sma(volume, 20) * 1.5
        and close > highest(high, 20)[1]  # why
}
"""


def test_or_breaks_first_and_a_long_operand_breaks_one_level_deeper() -> None:
    long_and = " and ".join(f"close > sma(close, {n})" for n in (10, 20, 50, 100))
    text = f"strategy s {{\n    exit long when {long_and} or close < open - 3 * atr(14)\n}}\n"
    assert fmt(text) == """\
strategy s {
    exit long when close > sma(close, 10)
            and close > sma(close, 20)
            and close > sma(close, 50)
            and close > sma(close, 100)
        or close < open - 3 * atr(14)
}
"""


def test_if_puts_then_and_else_on_their_own_lines() -> None:
    text = ("strategy s {\n    let band = if close > sma(close, 200) then highest(high, 20) - "
            "lowest(low, 20) else sma(high - low, 20) * 2 + stdev(close, 20)\n}\n")
    assert fmt(text) == """\
strategy s {
    let band = if close > sma(close, 200)
        then highest(high, 20) - lowest(low, 20)
        else sma(high - low, 20) * 2 + stdev(close, 20)
}
"""


def test_a_short_statement_written_over_lines_is_joined() -> None:
    text = "strategy s {\n    entry long when close > open\n        and open > 1\n}\n"
    assert fmt(text) == "strategy s {\n    entry long when close > open and open > 1\n}\n"


def test_an_unbreakable_long_statement_is_left_long() -> None:
    args = ", ".join(f"x{i}" for i in range(40))
    out = fmt(f"strategy s {{\n    let v = f({args})\n}}\n")
    assert out == f"strategy s {{\n    let v = f({args})\n}}\n"


NAMES = st.sampled_from(["close", "open", "high", "sma(close, 20)", "rsi(close, 14)",
                         "volume[1]", "atr(14)", "(high - low)"])
OPS = st.sampled_from(["and", "or"])
CMP = st.sampled_from(["<", ">", "<=", "=="])


@st.composite
def conditions(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 12))
    parts = [f"{draw(NAMES)} {draw(CMP)} {draw(NAMES)} * {draw(st.integers(1, 999))}"
             for _ in range(n)]
    text = parts[0]
    for part in parts[1:]:
        text += f" {draw(OPS)} {part}"
    return text


@settings(max_examples=80, deadline=None)
@given(conditions())
def test_broken_lines_fit_keep_the_meaning_and_are_stable(cond: str) -> None:
    out = fmt(f"strategy s {{\n    entry long when {cond}\n}}\n")
    # each operand here is far shorter than the width, so every line fits
    assert all(len(line) <= WIDTH for line in out.splitlines()), out
