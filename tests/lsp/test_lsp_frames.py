"""The editor on frames (``close@4h``, ``x@ETH/USDT@4h``): locate, hover, completion after
``@``, go-to-definition through an ``@`` and the TextMate scopes."""

from __future__ import annotations

from pathlib import Path

import pytest

from peakdsl.lang.parser import parse_text
from peakdsl.lsp.analysis import ProjectView, definition, hover, read_document
from peakdsl.lsp.complete import complete
from peakdsl.lsp.cursor import cursor_at
from peakdsl.lsp.locate import Found, locate

MTF = """\
strategy mtf {
    market BTC/USDT
    timeframe 1h
    let trend = close > sma(close, 50)
    entry long when trend@1d and sma(close, 5)@4h > close@ETH/USDT@4h
    exit long when close < sma(close, 20)
}
"""
OTHER = "strategy sol {\n    market SOL/USDT\n    timeframe 1h\n}\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for rel, text in {"specs/strategies/mtf.peak": MTF,
                      "specs/strategies/sol.peak": OTHER}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, "utf-8")
    return tmp_path


def at(text: str, needle: str, skip: int = 0) -> int:
    return text.index(needle) + skip


@pytest.mark.parametrize(("needle", "skip", "found"), [
    ("1d and", 0, Found("frame", "1d", 117, 119, owner="timeframe")),
    ("@4h >", 2, Found("frame", "4h", 138, 140, owner="timeframe")),
    ("ETH", 4, Found("frame", "ETH/USDT", 149, 157, owner="market")),
    ("@4h\n", 1, Found("frame", "4h", 158, 160, owner="timeframe")),
    ("trend@", 2, Found("name", "trend", 111, 116)),
])
def test_the_parts_of_a_frame_are_found(needle: str, skip: int, found: Found) -> None:
    module = parse_text(MTF).module
    assert locate(module, MTF, at(MTF, needle, skip)) == found


def test_without_an_ast_a_frame_is_read_from_the_words() -> None:
    text = "strategy s {\n    let a = close@ETH/USDT@4h +\n"
    assert parse_text(text).module is None
    assert locate(None, text, at(text, "USDT@", 1)) == \
        Found("frame", "ETH/USDT", 31, 39, owner="market")
    assert locate(None, text, at(text, "4h")) == Found("frame", "4h", 40, 42, owner="timeframe")


def test_hover_on_a_timeframe_says_what_a_frame_is_here(root: Path) -> None:
    doc = read_document(MTF, root / "specs/strategies/mtf.peak")
    shown = hover(doc, at(MTF, "1d and"), ProjectView(doc))
    assert shown is not None
    assert shown.markdown.startswith("frame `@1d` — the expression before `@` computed on 1d "
                                     "bars")
    assert "last *closed* bar" in shown.markdown
    assert shown.markdown.endswith("one 1d bar is 24 bars of this strategy's 1h: a window of "
                                   "L 1d bars needs L×24 + 46 bars of warm-up")


def test_hover_on_a_timeframe_the_candles_cannot_give(tmp_path: Path) -> None:
    text = MTF.replace("timeframe 1h", "timeframe 3d").replace("trend@1d", "trend@1w")
    doc = read_document(text, tmp_path / "mtf.peak")
    shown = hover(doc, at(text, "1w"), ProjectView(doc))
    assert shown is not None
    assert shown.markdown.endswith("1w bars cannot be built from this strategy's 3d bars "
                                   "(`T020`)")


def test_hover_on_a_market_says_where_its_candles_come_from(root: Path) -> None:
    doc = read_document(MTF, root / "specs/strategies/mtf.peak")
    shown = hover(doc, at(MTF, "ETH"), ProjectView(doc))
    assert shown is not None
    assert shown.markdown.startswith("frame `@ETH/USDT` — the expression before `@` computed "
                                     "on ETH/USDT's candles at the strategy's timeframe")
    assert shown.markdown.endswith("none there is `D023`")


def test_a_let_read_on_a_frame_goes_to_its_declaration(root: Path) -> None:
    doc = read_document(MTF, root / "specs/strategies/mtf.peak")
    found = definition(doc, at(MTF, "trend@", 1), ProjectView(doc))
    assert found is not None
    assert (found.range.start.line, found.range.start.character) == (3, 8)
    assert definition(doc, at(MTF, "1d and"), ProjectView(doc)) is None


def complete_at(root: Path, text: str, marker: str = "|") -> list[tuple[str, str]]:
    offset = text.index(marker)
    doc = read_document(text.replace(marker, "", 1), root / "specs/strategies/mtf.peak")
    return [(c.label, c.detail) for c in complete(doc, offset, ProjectView(doc))]


def test_after_at_the_derivable_timeframes_then_the_markets(root: Path) -> None:
    text = MTF.replace("timeframe 1h", "timeframe 2h").replace(
        "    exit long", "    let x = close@|\n    exit long")
    assert complete_at(root, text) == [
        ("4h", "timeframe: 2 bars of 2h"), ("6h", "timeframe: 3 bars of 2h"),
        ("8h", "timeframe: 4 bars of 2h"), ("12h", "timeframe: 6 bars of 2h"),
        ("1d", "timeframe: 12 bars of 2h"), ("3d", "timeframe: 36 bars of 2h"),
        ("1w", "timeframe: 84 bars of 2h"),
        ("ETH/USDT", "another market"), ("SOL/USDT", "another market")]


def test_a_3d_strategy_is_not_offered_the_weekly_frame(root: Path) -> None:
    text = MTF.replace("timeframe 1h", "timeframe 3d").replace(
        "    exit long", "    let x = close@|\n    exit long")
    assert [label for label, _ in complete_at(root, text)] == ["ETH/USDT", "SOL/USDT"]


def test_after_a_market_only_timeframes_follow(root: Path) -> None:
    text = MTF.replace("timeframe 1h", "timeframe 8h").replace(
        "    exit long", "    let x = close@SOL/USDT@|\n    exit long")
    assert complete_at(root, text) == [("1d", "timeframe: 3 bars of 8h"),
                                       ("3d", "timeframe: 9 bars of 8h"),
                                       ("1w", "timeframe: 21 bars of 8h")]


def test_a_timeframe_being_typed_is_the_prefix() -> None:
    text = "strategy s {\n    let x = close@4"
    found = cursor_at(text, len(text))
    assert (found.where, found.prefix) == ("frame", "4")
