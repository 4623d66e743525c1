"""Windows and lags written as int arithmetic on params: what the checker accepts, and the
code, span and counterexample of what it refuses (``typecheck.window``, ``_lag_ok``)."""

from __future__ import annotations

import pytest

from peakdsl.lang.checker import check_module
from peakdsl.lang.diagnostics import Diagnostic
from peakdsl.lang.parser import parse_text

PARAMS = ("param n: int = 10 in 1..20", "param m: int = 4 in 2..10 step 2",
          "param k: float = 1.5 in 1.0..3.0")


def strategy(condition: str, *params: str) -> str:
    lines = "\n    ".join([*(params or PARAMS), f"entry long when {condition}"])
    return f"strategy s {{\n    market BTC/EUR\n    timeframe 1h\n    {lines}\n}}\n"


def diagnostics(text: str) -> list[Diagnostic]:
    parsed = parse_text(text, "s.peak")
    assert parsed.module is not None, [d.message for d in parsed.diagnostics]
    return [d for d in check_module(parsed.module)[1] if d.code != "W001"]


def only(text: str) -> Diagnostic:
    found = diagnostics(text)
    assert len(found) == 1, [(d.code, d.message) for d in found]
    return found[0]


@pytest.mark.parametrize("window", [
    "2 * n", "n + 1", "n * m", "(n + 1) * 2", "max(n - 5, 1)", "min(n, m)", "-(-n)", "1 - (1 - n)",
    "3 * 4", "m - 1", "n - n + 1", "20 - n + 1",
])
def test_window_arithmetic_that_stays_positive_is_accepted(window: str) -> None:
    assert diagnostics(strategy(f"close > highest(high, {window})[1]")) == []


def test_only_values_on_the_step_count() -> None:
    """`n in 1..10 step 4` takes 1, 5 and 9: `10 - n` is never below 1."""
    assert diagnostics(strategy("close > sma(close, 10 - n)",
                                "param n: int = 1 in 1..10 step 4")) == []
    d = only(strategy("close > sma(close, 9 - n)", "param n: int = 1 in 1..10 step 4"))
    assert d.code == "T004" and "found 0 at n = 9" in d.message


@pytest.mark.parametrize(("window", "span", "words"), [
    ("n - 1", "n - 1", "window `n` = `n - 1` must be at least 1 for every param value, "
                       "found 0 at n = 1"),
    ("m - n", "m - n", "found -18 at m = 2, n = 20"),
    ("n * 10000", "n * 10000", "must be at most 100,000 for every param value, found "
                               "200000 at n = 20"),
    ("2 - 3", "2 - 3", "window `n` must be at least 1, found -1"),
    ("2 * k", "k", "must be an int literal, an int param or arithmetic on them (`2 * n`, "
                   "`n + 1`), found the float param `k`"),
    ("n / 2", "n / 2", "found a division (`/`): there is no integer division"),
    ("n + 0.5", "0.5", "found `0.5`, not a whole number"),
    ("n + close", "close", "found a price series"),
])
def test_window_refusals_point_at_the_expression(window: str, span: str, words: str) -> None:
    text = strategy(f"close > sma(close, {window})")
    d = only(text)
    assert d.code == "T004", d.message
    assert text[d.span.start:d.span.end] == span
    assert words in d.message, d.message
    assert "`2 * n`, `n + 1`" in d.help


def test_a_mode_window_is_proven_against_its_own_least_window() -> None:
    assert diagnostics(strategy("stdev(close, n + 1, sample) > 0")) == []
    d = only(strategy("stdev(close, n - 1, sample) > 0", "param n: int = 5 in 2..20"))
    assert d.code == "T004"
    assert "must be at least 2, found 1 at n = 2" in d.message


def test_a_param_used_only_in_window_arithmetic_is_used() -> None:
    parsed = parse_text(strategy("close > sma(close, 2 * n)", "param n: int = 5 in 1..9"))
    assert parsed.module is not None
    assert check_module(parsed.module)[1] == []


def test_errors_inside_a_window_do_not_cascade() -> None:
    assert [d.code for d in diagnostics(strategy("close > sma(close, 2 * foo)"))] == ["N001"]
    assert [d.code for d in diagnostics(strategy("close > sma(close, n / 0)"))] == ["T004"]


def test_a_window_too_wide_to_search_is_refused_with_the_bound() -> None:
    d = only(strategy("close > sma(close, n - n + 1)", "param n: int = 5 in 1..20000"))
    assert d.code == "T004"
    assert "found possibly -19998 (interval bound; write each param once" in d.message


# ---------------------------------------------------------------- lags


@pytest.mark.parametrize("lag", ["n + 1", "2 * n", "n - 1", "m * n - 2", "1 - 1", "n - n",
                                 "max(n - 5, 0)", "-(1 - n)"])
def test_lag_arithmetic_that_stays_non_negative_is_accepted(lag: str) -> None:
    assert diagnostics(strategy(f"close > close[{lag}]")) == []


@pytest.mark.parametrize(("lag", "code", "span", "words"), [
    ("n - 2", "L001", "n - 2", "look-ahead: lag `n - 2` may be negative, found -1 at n = 1"),
    ("m - n", "L001", "m - n", "found -18 at m = 2, n = 20"),
    ("1 - 2", "L001", "1 - 2", "look-ahead: `[1 - 2]` reads a future bar"),
    ("-1", "L001", "-1", "look-ahead: `[-1]` reads a future bar"),
    ("2 * k", "L002", "k", "a lag must be a whole number of bars: an int literal, an int "
                           "param or int arithmetic on them, found the float param `k`"),
    ("n / 2", "L002", "n / 2", "there is no integer division"),
])
def test_lag_refusals_point_at_the_expression(lag: str, code: str, span: str, words: str) -> None:
    text = strategy(f"close > close[{lag}]")
    d = only(text)
    assert d.code == code, d.message
    assert text[d.span.start:d.span.end] == span
    assert words in d.message, d.message


def test_a_lag_param_keeps_its_message() -> None:
    d = only(strategy("close[j] > close", "param j: int = 1 in -1..3"))
    assert d.code == "L001" and d.message == "look-ahead: param `j` may be negative (range -1..3)"
