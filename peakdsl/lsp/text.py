"""Positions and a forgiving lexer: what the editor features need from raw text.

Spans count characters from the start of the file; an editor counts ``(line, character)``,
characters in the code units the client and server agreed on (UTF-16 unless the client
offers another). ``Lines`` converts both ways, so a comment with an emoji does not shift every
range after it. The lexer never fails: a spec being typed rarely parses, and completion still
has to know which block the cursor is in and which words come before it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from ..lang.source import Span


@dataclass(frozen=True, slots=True)
class Pos:
    """An editor position: 0-based line and character (in the agreed code units)."""

    line: int
    character: int


@dataclass(frozen=True, slots=True)
class Range:
    start: Pos
    end: Pos


# code units of one character in each encoding LSP knows
UNITS: dict[str, Callable[[str], int]] = {
    "utf-16": lambda ch: 2 if ord(ch) > 0xFFFF else 1,
    "utf-8": lambda ch: len(ch.encode("utf-8", "surrogatepass")),
    "utf-32": lambda ch: 1,
}


@dataclass(frozen=True, slots=True)
class Lines:
    """A text's line starts, for converting offsets to editor positions and back."""

    text: str
    encoding: str = "utf-16"
    starts: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @staticmethod
    def of(text: str, encoding: str = "utf-16") -> Lines:
        starts = [0, *(m.end() for m in re.finditer("\n", text))]
        return Lines(text, encoding if encoding in UNITS else "utf-16", tuple(starts))

    def _line(self, index: int) -> str:
        start = self.starts[index]
        end = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else len(self.text)
        return self.text[start:end]

    def offset(self, pos: Pos) -> int:
        """The character offset of an editor position (clamped to its line and the text)."""
        if pos.line >= len(self.starts):
            return len(self.text)
        line, start = self._line(max(pos.line, 0)), self.starts[max(pos.line, 0)]
        if line.isascii():
            return start + min(max(pos.character, 0), len(line))
        units, count = UNITS[self.encoding], 0
        for index, ch in enumerate(line):
            if count >= pos.character:
                return start + index
            count += units(ch)
        return start + len(line)

    def pos(self, offset: int) -> Pos:
        """The editor position of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect_right(self.starts, offset) - 1
        before = self.text[self.starts[index]:offset]
        if before.isascii():
            return Pos(index, len(before))
        units = UNITS[self.encoding]
        return Pos(index, sum(units(ch) for ch in before))

    def range(self, start: int, end: int) -> Range:
        return Range(self.pos(start), self.pos(end))

    def span(self, span: Span) -> Range:
        return self.range(span.start, span.end)

    def whole(self) -> Range:
        """The range of the entire text (what a full-document edit replaces)."""
        return self.range(0, len(self.text))


# ---------------------------------------------------------------- the forgiving lexer


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "comment" | "string" | "word" | "number" | "punct"
    text: str
    start: int
    end: int


# An unterminated string runs to the end of its line; a number swallows a unit suffix (3%,
# 10bps, 4h) so that it reads as one operand.
_TOKEN = re.compile(
    r'(?P<comment>#[^\n]*)|(?P<string>"[^"\n]*"?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)'
    r"|(?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?:%|[a-z]+)?)"
    r"|(?P<space>\s+)|(?P<punct>\.\.|[<>=!]=|.)")


def lex(text: str) -> list[Token]:
    """Every token but whitespace, in order; any text lexes."""
    out = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "punct"
        if kind != "space":
            out.append(Token(kind, match.group(), match.start(), match.end()))
    return out


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def word_at(text: str, offset: int) -> tuple[int, int] | None:
    """The start and end of the word the cursor is in or just after, or None."""
    for match in _WORD.finditer(text, max(0, offset - 64), min(len(text), offset + 64)):
        if match.start() <= offset <= match.end():
            return match.start(), match.end()
    return None


def first_on_line(text: str, offset: int) -> bool:
    """Whether only whitespace precedes ``offset`` on its line."""
    start = text.rfind("\n", 0, offset) + 1
    return not text[start:offset].strip()
