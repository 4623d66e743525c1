"""The trade-rule settings: `cooldown after stop` spelled in words, bounds, max above min,
the compiled ``Holding`` and the formatter's round trip."""

from __future__ import annotations

import pytest

from peakdsl.api import compile_source
from peakdsl.compile import models as m
from peakdsl.lang.checker import check_module
from peakdsl.lang.fmt import format_source
from peakdsl.lang.parser import parse_text


def strategy(*lines: str) -> str:
    body = "\n    ".join(["entry long when close > open", *lines])
    return f"strategy s {{\n    market BTC/EUR\n    timeframe 1h\n    {body}\n}}\n"


def codes(*lines: str) -> list[str]:
    parsed = parse_text(strategy(*lines), "s.peak")
    assert parsed.module is not None, parsed.diagnostics
    return [d.code for d in check_module(parsed.module)[1] if d.is_error]


def test_every_rule_compiles_into_holding() -> None:
    art = compile_source(strategy("min_hold 3", "max_hold 100", "cooldown after stop 5",
                                  "max_consecutive_losses 3", "reversal flat", "stop_loss 2%"))
    assert isinstance(art, m.StrategyArtifact)
    assert art.config.holding == m.Holding(min_hold=3, max_hold=100, cooldown_after_stop=5,
                                           max_consecutive_losses=3, reversal="flat")


def test_no_rule_is_the_default() -> None:
    art = compile_source(strategy())
    assert isinstance(art, m.StrategyArtifact) and art.config.holding == m.Holding()


@pytest.mark.parametrize(("lines", "expected"), [
    (("min_hold 5", "max_hold 5"), ["T009"]),  # max must be above min
    (("min_hold 5", "max_hold 3"), ["T009"]),
    (("min_hold 0",), ["T009"]),
    (("max_hold 2.5",), ["T001"]),
    (("cooldown after stop -1",), ["T009"]),
    (("reversal sideways",), ["N015"]),
    (("cooldown after target 5",), ["N003"]),  # only `after stop` exists
    (("min_hold 2", "max_hold 3", "reversal flip"), []),
])
def test_bad_values_are_refused(lines: tuple[str, ...], expected: list[str]) -> None:
    assert codes(*lines) == expected


def test_the_formatter_writes_cooldown_in_words() -> None:
    text = strategy("cooldown   after  stop 5")
    formatted = format_source(text, "s.peak").text
    assert formatted is not None and "    cooldown after stop 5\n" in formatted
