"""Source files and spans: the coordinates every diagnostic points at."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range with 1-based line/column of both ends."""

    start: int
    end: int
    line: int
    col: int
    end_line: int
    end_col: int

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.start, other.end, self.line, self.col, other.end_line, other.end_col)


NO_SPAN = Span(0, 0, 1, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A spec's text together with the path it is reported under."""

    path: str
    text: str
    line_starts: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @staticmethod
    def of(path: str, text: str) -> SourceFile:
        starts = [0]
        starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
        return SourceFile(path, text, tuple(starts))

    @property
    def stem(self) -> str:
        name = self.path.replace("\\", "/").rsplit("/", 1)[-1]
        return name[: -len(".peak")] if name.endswith(".peak") else name

    def line_text(self, line: int) -> str:
        """The text of 1-based ``line`` without its newline ('' when out of range)."""
        if not 1 <= line <= len(self.line_starts):
            return ""
        start = self.line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)]

    def span_at(self, offset: int, length: int = 1) -> Span:
        """A span for ``length`` characters from ``offset`` (clamped to the text)."""
        offset = max(0, min(offset, len(self.text)))
        end = max(offset, min(offset + length, len(self.text)))
        line, col = self.position(offset)
        end_line, end_col = self.position(end)
        return Span(offset, end, line, col, end_line, end_col)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        from bisect import bisect_right

        index = bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1
