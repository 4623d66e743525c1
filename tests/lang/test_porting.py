"""Porting diagnostics (lang/porting.py): each idiom of another tool, its code, its fix.

Every fix is checked against literal text; the corpus cases in tests/invalid/ must check
clean once fixed; no library spec or documented example has an idiom to fix.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakdsl.lang import lexical
from peakdsl.lang.fixes import check_text, fix_text
from peakdsl.lang.parser import parse_text
from peakdsl.lang.porting import MAX_IDIOMS, find_idioms
from peakdsl.lang.source import SourceFile

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "invalid"


def spec(body: str, name: str = "s") -> str:
    return f"strategy {name} {{\n    market BTC/EUR\n    timeframe 1h\n{body}\n}}\n"


def idioms(text: str) -> list[tuple[str, str]]:
    """(code, the text the fix writes) for each idiom found."""
    found = find_idioms(SourceFile.of("s.peak", text), lexical.tokens(text))
    return [(d.code, d.fix.replacement if d.fix else "") for d in found]


def fixed(body: str) -> str:
    """The body's statement line after every fix (rounds included)."""
    result = fix_text(spec(body))
    return result.after.splitlines()[3].strip()


@pytest.mark.parametrize(("body", "after"), [
    ("    entry long when 30 < rsi(close, 14) < 70",
     "entry long when 30 < rsi(close, 14) and rsi(close, 14) < 70"),
    ("    entry long when not 20 < close[1] <= 80",
     "entry long when not (20 < close[1] and close[1] <= 80)"),
    ("    entry long when 1 < close < 2 < 3 and open > 0",
     "entry long when 1 < close and close < 2 and 2 < 3 and open > 0"),
    ("    entry long when close = open", "entry long when close == open"),
    ("    fast = ema(close, 12)\n    entry long when close > fast", "let fast = ema(close, 12)"),
    ("    entry long when rsi(close, timeperiod = 14) > 50",
     "entry long when rsi(close, 14) > 50"),
    ("    entry long when close > ta.ema(close, 20)", "entry long when close > ema(close, 20)"),
    ("    entry long when close > talib.MAX(high, 20)[1]",
     "entry long when close > highest(high, 20)[1]"),
    ("    entry long when qtpylib.crossed_below(close, open)",
     "entry long when crossunder(close, open)"),
    ("    entry long when ta.percentrank(close, 50) > 80",
     "entry long when percent_rank(close, 50) > 80"),
    ("    entry long when close crosses above sma(close, 20)[1] + 1",
     "entry long when crossover(close, sma(close, 20)[1] + 1)"),
    ("    entry long when -close crossed under -open",
     "entry long when crossunder(-close, -open)"),
    ("    entry long when close crosses open",
     "entry long when crossover(close, open) or crossunder(close, open)"),
    ("    entry long when high > low and close crosses open",
     "entry long when high > low and (crossover(close, open) or crossunder(close, open))"),
    ("    entry long when close > 1 + if open > 1 then open else high",
     "entry long when close > 1 + (if open > 1 then open else high)"),
    ("    entry long when close > open&&open > 1", "entry long when close > open and open > 1"),
    ("    entry long when (close > open) & (open > 1) | high > low",
     "entry long when (close > open) and (open > 1) or high > low"),
    ("    entry long when !(close > open)", "entry long when not (close > open)"),
    ("    entry long when close > open and !rising(close, 3)",
     "entry long when close > open and not rising(close, 3)"),
    ("    entry long when close > open and True", "entry long when close > open and true"),
    ("    let fastMA = sma(close, 5)\n    entry long when close > fastMA",
     "let fast_ma = sma(close, 5)"),
])
def test_each_idiom_is_fixed_to_this_text(body: str, after: str) -> None:
    assert fixed(body) == after


@pytest.mark.parametrize(("written", "after"), [
    ("1H", "1h"), ("4H", "4h"), ("1D", "1d"), ("1W", "1w"), ("15min", "15m"), ("4hr", "4h"),
    ('"60"', "1h"), ('"240"', "4h"), ('"D"', "1d"), ('"1D"', "1d"), ('"15"', "15m"),
    ('"5m"', "5m"), ('"W"', "1w"),
])
def test_timeframes_in_other_notations(written: str, after: str) -> None:
    text = spec("    entry long when close > open").replace("timeframe 1h",
                                                          f"timeframe {written}")
    assert idioms(text) == [("P015", after)]
    assert f"timeframe {after}\n" in fix_text(text).after


def test_month_has_no_fix_and_a_multiple_drops_its_x() -> None:
    assert idioms(spec("    let x = 15M")) == [("P015", "")]
    assert idioms(spec("    execution { leverage 2.5x }")) == [("P001", "2.5")]


def test_unknown_foreign_function_gets_help_but_no_fix() -> None:
    text = spec("    entry long when ta.vwma(close, 20) > 0")
    [d] = find_idioms(SourceFile.of("s.peak", text), lexical.tokens(text))
    assert (d.code, d.fix) == ("P011", None)
    assert "`vwma`" in d.message


@pytest.mark.parametrize("body", [
    "    market TRUE/USDT",            # a currency called TRUE
    "    size 100 TRUE",               # an amount of it
    "    param n: int = 20 in 5..50",  # `=` in a param, `..` in its range
    "    let x = 1",
    '    description "a && b, ta.ema(1) = 2, True, 1H"  # and in a comment: && True 1H',
])
def test_valid_text_has_no_idiom(body: str) -> None:
    assert idioms(spec(body)) == []


def test_overrides_keep_their_equals() -> None:
    text = "portfolio p {\n    component a weight 100% with { fast = 10, slow = 40 }\n}\n"
    assert idioms(text) == []


def test_an_idiom_replaces_the_syntax_error_it_causes() -> None:
    diags = check_text(spec("    entry long when 20 < close < 80\n    exit long when close > > 1"))
    assert [(d.code, d.span.line) for d in diags] == [("P009", 4), ("P001", 5)]


def test_fixes_are_rendered_as_the_fixed_line() -> None:
    from peakdsl.lang.render import render_json, render_text

    text = spec("    entry long when close = open")
    diags = check_text(text, "s.peak")
    out = render_text(diags, lambda p: SourceFile.of(p, text))
    assert "= fix: entry long when close == open  (`peak check --fix` applies it)" in out
    assert '"replacement": "=="' in render_json(diags)


# ---------------------------------------------------------------- the corpus and the library

PORTING_CASES = sorted(p for p in CORPUS.glob("*.peak")
                       if re.match(r"p0(09|1[0-5])_|p002_logic|p001_camel", p.name))


@pytest.mark.parametrize("case", PORTING_CASES, ids=[p.name for p in PORTING_CASES])
def test_corpus_case_checks_clean_once_fixed(case: Path) -> None:
    result = fix_text(case.read_text("utf-8"), case.name)
    assert result.fixed, "a porting case must carry a fix"
    assert check_text(result.after, case.name) == []


def test_every_porting_code_has_a_corpus_case() -> None:
    codes = {m.group(1).upper() for p in PORTING_CASES
             if (m := re.match(r"(p\d{3})_", p.name))}
    assert {f"P{n:03d}" for n in range(9, 16)} <= codes


LIBRARY = sorted((ROOT / "specs").rglob("*.peak"))


@pytest.mark.parametrize("path", LIBRARY, ids=[p.name for p in LIBRARY])
def test_fix_never_changes_a_library_spec(path: Path) -> None:
    text = path.read_text("utf-8")
    assert idioms(text) == []
    assert fix_text(text, path.name).after == text


TOKENS = ["close", "open", "1", "20", "<", "=", "==", "and", "&&", "!", "(", ")", "if", "then",
          "else", "crosses", "above", "ta.ema(", ",", "True", "1H", "\n", " ", "+", "*", "not"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_fixing_any_text_never_raises(words: list[str]) -> None:
    text = spec("    entry long when " + " ".join(words))
    result = fix_text(text)
    assert isinstance(result.after, str)
    if not any(d.is_error for d in check_text(text)):
        assert result.after == text  # a clean spec is never changed


@pytest.mark.parametrize("body", [
    "let x = " + "1 + if " * 3000 + "1",          # idioms: at most MAX_IDIOMS reported
    "let x = a" + "[1]" * 6000 + " < b < c",      # a long lag chain: no recursion
    "let x = " + "a crosses " * 3000 + "1",
])
def test_hostile_text_is_bounded(body: str) -> None:
    result = parse_text(spec("    " + body))
    assert result.module is None and 1 <= len(result.diagnostics) <= MAX_IDIOMS
