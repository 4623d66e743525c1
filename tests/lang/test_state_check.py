"""Checking ``state`` lets (``lang.state``): what keeps them causal and what their unit is."""

from __future__ import annotations

import pytest

from peakdsl.lang import ast
from peakdsl.lang.checker import CheckedSpec, check_module
from peakdsl.lang.diagnostics import Diagnostic
from peakdsl.lang.fmt import format_source
from peakdsl.lang.parser import parse_text
from peakdsl.lang.types import Ty, Unit


def run(text: str) -> tuple[CheckedSpec, list[Diagnostic]]:
    parsed = parse_text(text, "spec.peak")
    assert parsed.module is not None, [d.message for d in parsed.diagnostics]
    return check_module(parsed.module)


def strategy(*lines: str) -> str:
    body = "\n    ".join(lines)
    return f"strategy s {{\n    market BTC/EUR\n    timeframe 1h\n    {body}\n}}\n"


def codes(*lines: str) -> list[str]:
    return [d.code for d in run(strategy(*lines))[1]]


def state_type(*lines: str, name: str = "s") -> Ty:
    spec, diags = run(strategy(*lines))
    assert not [d for d in diags if d.is_error], [(d.code, d.message) for d in diags]
    let = next(i for i in spec.decl.items if isinstance(i, ast.Let) and i.name == name)
    return spec.types[id(let.expr)]


CANDLE_UP = "close > open"
ENTRY = f"entry long when {CANDLE_UP}"


@pytest.mark.parametrize(("line", "unit"), [
    ("state s = max(nz(s[1], close), close)", Unit.PRICE),
    ("state s = nz(s[1], 0) + volume", Unit.VOLUME),
    ("state s = nz(s[1], 0) + 1", Unit.NUMBER),
    ("state s = if close > open then true else s[1]", Unit.BOOL),
    ("state s = not s[1]", Unit.BOOL),
    ("state s = nz(s[1], 0%) + roc(close, 1)", Unit.PERCENT),  # a sum of percentages
    ("state s = nz(s[1], 0) + roc(close, 1)", Unit.NUMBER),  # 0 + 1% is a number, as in a let
    ("state s = clip(nz(s[1], 50) + rsi(close, 14) - 50, 0, 100)", Unit.OSCILLATOR),
])
def test_the_unit_is_inferred_from_what_the_past_meets(line: str, unit: Unit) -> None:
    assert state_type(line, f"entry long when s != s[1] and {CANDLE_UP}") == Ty(unit, True)


@pytest.mark.parametrize(("line", "expected"), [
    ("state s = nz(s, 0) + 1", ["L004"]),
    ("state s = nz(s[0], 0) + 1", ["T017"]),
    ("state s = nz(s[1001], 0) + 1", ["T017"]),
    ("state s = nz(s[1.5], 0) + 1", ["T017", "L002"]),
    ("state s = nz(sma(s[1], 3), 0) + 1", ["T018"]),
    ("state s = nz(highest(s[2], 3), 0) + close", ["T018"]),
    ("state s = nz((s * 2)[1], 0) + 1", ["T018"]),
    ("state s = nz(s[1], 0) + close + volume", ["T002"]),  # price + volume, as in a let
    ("state s = if s[1] then 1 else 0", ["T001"]),  # the past read as a number is no condition
])
def test_what_a_state_may_not_do(line: str, expected: list[str]) -> None:
    found = codes(line, f"entry long when s > 0 and {CANDLE_UP}")
    assert [c for c in found if c[0] != "W"] == expected


def test_a_state_used_only_by_itself_is_unused() -> None:
    assert codes("state s = nz(s[1], 0) + 1", ENTRY) == ["W002"]


def test_a_state_is_a_name_like_a_let() -> None:
    assert codes("let s = close", "state s = nz(s[1], 0) + 1", ENTRY) == ["N009"]
    assert "N016" in codes("let early = s[1]", "state s = nz(s[1], 0) + 1",
                           "entry long when early > 0 and close > open")


def test_other_lets_and_states_read_a_state_whole() -> None:
    """Outside its own definition a state is an ordinary series: windows, crosses, lags."""
    assert codes("state s = max(nz(s[1], close), close)", "let smooth = sma(s, 5)",
                 "state t = nz(t[1], 0) + s - s[3]",
                 "entry long when crossover(close, smooth) and t > 0") == []


def test_a_let_reading_itself_points_at_state() -> None:
    diags = run(strategy("let s = nz(s[1], 0) + 1", ENTRY))[1]
    assert [d.code for d in diags] == ["N018"]
    assert "state s = EXPR" in diags[0].help


def test_fmt_keeps_state() -> None:
    text = strategy("state   s=nz(s[1],0)+1", "entry long when s > 1 and close > open")
    formatted = format_source(text, "spec.peak").text
    assert formatted is not None and "    state s = nz(s[1], 0) + 1\n" in formatted
