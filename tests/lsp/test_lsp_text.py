"""peakdsl.lsp.text: editor positions in each encoding, the forgiving lexer, words."""

from __future__ import annotations

import pytest

from peakdsl.lsp.text import Lines, Pos, first_on_line, lex, word_at

# 'é' is one UTF-16 unit and two UTF-8 bytes; '😀' is two UTF-16 units and four bytes
TEXT = "strategy x {\n    # é😀 note\n    let a = close\n}"


def test_ascii_lines_convert_both_ways() -> None:
    lines = Lines.of(TEXT)
    offset = TEXT.index("let")
    assert lines.pos(offset) == Pos(2, 4)
    assert lines.offset(Pos(2, 4)) == offset
    assert lines.pos(len(TEXT)) == Pos(3, 1)
    assert lines.whole().end == Pos(3, 1)


@pytest.mark.parametrize(("encoding", "column"), [("utf-16", 9), ("utf-8", 12), ("utf-32", 8)])
def test_a_character_after_non_ascii_counts_code_units(encoding: str, column: int) -> None:
    lines = Lines.of(TEXT, encoding)
    offset = TEXT.index(" note")
    assert lines.pos(offset) == Pos(1, column)
    assert lines.offset(Pos(1, column)) == offset


def test_positions_past_a_line_or_the_text_are_clamped() -> None:
    lines = Lines.of(TEXT)
    assert lines.offset(Pos(0, 99)) == TEXT.index("\n")
    assert lines.offset(Pos(99, 0)) == len(TEXT)
    assert lines.pos(-5) == Pos(0, 0)


def test_an_unknown_encoding_falls_back_to_utf16() -> None:
    assert Lines.of(TEXT, "latin-1").encoding == "utf-16"


def test_the_lexer_reads_any_text_and_keeps_units_on_numbers() -> None:
    tokens = lex('size 25% of equity  # c\nfees 10bps x[1] a <= b .. "open')
    kinds = [(t.kind, t.text) for t in tokens]
    assert ("number", "25%") in kinds and ("number", "10bps") in kinds
    assert ("comment", "# c") in kinds and ("punct", "<=") in kinds and ("punct", "..") in kinds
    assert kinds[-1] == ("string", '"open')  # unterminated: to the end of the line
    assert lex("\x00§ ünïcode") != []


def test_word_at_finds_the_word_the_cursor_is_in_or_after() -> None:
    text = "let fast_ma = sma(close, 20)"
    assert word_at(text, text.index("sma") + 1) == (14, 17)
    assert word_at(text, text.index("sma") + 3) == (14, 17)  # just after it
    assert word_at(text, text.index("20")) is None


def test_first_on_line() -> None:
    text = "a {\n    fill next_open"
    assert first_on_line(text, text.index("fill"))
    assert not first_on_line(text, text.index("next_open"))
