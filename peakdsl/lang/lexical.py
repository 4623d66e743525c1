"""A forgiving token scan of spec text, for what the LALR parser cannot tell by itself.

The parser stops at the first token it cannot use. Error recovery needs to know where the
next statement starts, the unclosed-block message which ``{`` lost its ``}``, and the
porting diagnostics (``porting.py``) the shape of text the grammar rejects (``&&``,
``ta.ema``, ``1H``). This scanner reads any text, never fails, and knows just enough of the
grammar for that: comments and strings, numbers with their units, words, operators,
brackets, and which line a token starts; ``Scan`` adds the extent of an operand or an
expression around a token (what ``a`` and ``b`` are in ``a crosses above b``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .source import SourceFile, Span

_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>"[^"\\\n]*")
  | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?:%|bps\b|[smhdw]\b)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|\.\.|[-+*/<>=!(){}\[\],:.?;&|@])
  | (?P<space>\s+)
  | (?P<other>.)
""", re.X | re.S)
NAME = re.compile(r"[a-z_][a-z0-9_]*")

# words that begin a statement of a declaration (`state`: the recursive series being added
# to the language), and the grammar's other keywords
STATEMENT_KEYWORDS = frozenset({"param", "require", "let", "state", "entry", "exit", "size",
                                "component", "risk"})
KEYWORDS = STATEMENT_KEYWORDS | {"when", "in", "step", "of", "with", "weight", "drift", "after",
                                 "if",
                                 "then", "else", "and", "or", "not", "long", "short",
                                 "strategy", "portfolio", "promotion"}
OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}


@dataclass(frozen=True, slots=True)
class Tok:
    """One token: ``kind`` is name, word (not lower_snake_case), number, string, op or other."""

    kind: str
    text: str
    start: int
    end: int
    first: bool  # the first token on its line

    @property
    def is_keyword(self) -> bool:
        return self.kind == "name" and self.text in KEYWORDS

    @property
    def ends_operand(self) -> bool:
        """Whether an expression can end with this token (so a new statement may follow)."""
        if self.kind == "name":
            return self.text not in KEYWORDS or self.text in ("long", "short")
        return self.kind in ("word", "number", "string") or self.text in (")", "]", "}")


def tokens(text: str) -> list[Tok]:
    """Every token of ``text`` but spaces and comments, in order."""
    out: list[Tok] = []
    line_start = True
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "space":
            line_start = line_start or "\n" in match.group()
            continue
        if kind == "comment":
            continue
        value = match.group()
        if kind == "word" and NAME.fullmatch(value):
            kind = "name"
        out.append(Tok(kind, value, match.start(), match.end(), line_start))
        line_start = False
    return out


def glued(a: Tok, b: Tok) -> bool:
    """Whether ``b`` follows ``a`` with no space between them."""
    return a.end == b.start


def statement_starts(toks: Sequence[Tok]) -> list[int]:
    """Indices of the tokens that start a statement of the declaration (or close it).

    A statement starts, inside the declaration's braces and outside any block, with a
    statement keyword, or with a name that opens a line after a complete expression (a
    setting or a block). The declaration's ``}`` counts too: recovery may resume there.
    """
    starts: list[int] = []
    braces = parens = 0
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else None
        if tok.text == "}":
            braces, parens = braces - 1, 0
            if braces == 0:
                starts.append(i)
            continue
        if braces == 1 and _starts_statement(tok, prev, parens):
            starts.append(i)
            parens = 0
        if tok.text == "{":
            braces, parens = braces + 1, 0
        elif tok.text in ("(", "["):
            parens += 1
        elif tok.text in (")", "]"):
            parens = max(0, parens - 1)
    return starts


def _starts_statement(tok: Tok, prev: Tok | None, parens: int) -> bool:
    after_complete = prev is not None and (prev.ends_operand or prev.text == "{")
    if tok.kind == "name" and tok.text in STATEMENT_KEYWORDS:
        return tok.first or after_complete
    return (tok.kind == "name" and not tok.is_keyword and tok.first and parens == 0
            and after_complete)


def unclosed_brace(text: str, toks: Sequence[Tok]) -> Tok | None:
    """The ``{`` that most likely lost its ``}``: by indentation, else the innermost open one.

    A ``}`` that starts a line closes the open ``{`` whose line is indented like it; an
    inner ``{`` it skips over is the one never closed (``execution {`` left open, then the
    declaration's ``}`` taken for its own).
    """
    stack: list[Tok] = []
    lost: Tok | None = None
    for tok in toks:
        if tok.text == "{":
            stack.append(tok)
        elif tok.text == "}" and stack:
            indent = _indent(text, tok.start) if tok.first else None
            while indent is not None and len(stack) > 1 and \
                    _indent(text, stack[-1].start) > indent >= 0 and \
                    any(_indent(text, t.start) == indent for t in stack[:-1]):
                lost = lost or stack[-1]
                stack.pop()
            stack.pop()
    return lost or (stack[-1] if stack else None)


def _indent(text: str, offset: int) -> int:
    """The indentation (in columns, a tab as four) of the line holding ``offset``."""
    start = text.rfind("\n", 0, offset) + 1
    line = text[start:offset]
    stripped = line.lstrip(" \t")
    return len(line[: len(line) - len(stripped)].expandtabs(4))


# ---------------------------------------------------------------- expression shapes

ARITH = frozenset({"+", "-", "*", "/"})
COMPARE = frozenset({"<", ">", "<=", ">=", "==", "!="})
BINARY_WORDS = frozenset({"and", "or", "then", "else"})


class Scan:
    """One file's text and tokens, with the expression-shape helpers the detectors share.

    Brackets are paired once, up front (each kind on its own, as far as they balance), so
    every helper runs in time proportional to the text it covers.
    """

    def __init__(self, src: SourceFile, toks: Sequence[Tok]) -> None:
        self.src = src
        self.toks = toks
        self.pairs: dict[int, int] = {}
        stacks: dict[str, list[int]] = {opener: [] for opener in OPENERS}
        for i, tok in enumerate(toks):
            if tok.text in OPENERS:
                stacks[tok.text].append(i)
            elif tok.text in CLOSERS and stacks[CLOSERS[tok.text]]:
                opener = stacks[CLOSERS[tok.text]].pop()
                self.pairs[opener], self.pairs[i] = i, opener

    def text(self, first: int, last: int) -> str:
        """The source text from token ``first`` to token ``last`` inclusive."""
        return self.src.text[self.toks[first].start : self.toks[last].end]

    def span(self, first: int, last: int) -> Span:
        start, end = self.toks[first].start, self.toks[last].end
        return self.src.span_at(start, end - start)

    def at(self, i: int) -> str:
        return self.toks[i].text if 0 <= i < len(self.toks) else ""

    def match(self, i: int) -> int | None:
        """Index of the bracket closing the one opened at ``i``."""
        return self.pairs.get(i)

    def match_back(self, j: int) -> int | None:
        """Index of the bracket opening the one closed at ``j``."""
        return self.pairs.get(j)

    # ------------------------------------------------------------ expression extents

    def atom_end(self, i: int) -> int | None:
        """Index just past the operand (atom, call, lag) starting at ``i``."""
        if i >= len(self.toks):
            return None
        tok = self.toks[i]
        if tok.text in ("(", "["):
            close = self.match(i)
            if close is None:
                return None
            i = close + 1
        elif tok.kind == "name" and not tok.is_keyword:
            i = self._dotted_end(i)
            if self.at(i) == "(":
                close = self.match(i)
                if close is None:
                    return None
                i = close + 1
        elif tok.kind == "number":
            i += 2 if self.at(i + 1) and self.toks[i + 1].kind == "word" else 1
        elif tok.kind in ("string", "word"):
            i += 1
        else:
            return None
        while self.at(i) == "[" and (close := self.match(i)) is not None:
            i = close + 1
        return i

    def _dotted_end(self, i: int) -> int:
        """Past ``ta.ema``-style dotted names (so a foreign call is still one operand)."""
        i += 1
        while self.at(i) == "." and glued(self.toks[i - 1], self.toks[i]) and \
                i + 1 < len(self.toks) and self.toks[i + 1].kind in ("name", "word"):
            i += 2
        return i

    def sum_end(self, i: int) -> int | None:
        """Index just past the arithmetic expression (``a + b * c[1]``) starting at ``i``."""
        end = self._unary_end(i)
        while end is not None and self.at(end) in ARITH:
            nxt = self._unary_end(end + 1)
            if nxt is None:
                break
            end = nxt
        return end

    def _unary_end(self, i: int) -> int | None:
        while self.at(i) == "-":
            i += 1
        return self.atom_end(i)

    def atom_start(self, j: int) -> int | None:
        """Index of the first token of the operand ending at ``j``."""
        while j >= 0 and self.toks[j].text == "]":
            opener = self.match_back(j)
            if opener is None:
                return None
            if not (opener > 0 and self.toks[opener - 1].ends_operand):
                return opener  # a list
            j = opener - 1  # a lag: its target comes before
        if j < 0:
            return None
        tok = self.toks[j]
        if tok.text == ")":
            opener = self.match_back(j)
            if opener is None:
                return None
            if opener > 0 and self.toks[opener - 1].kind in ("name", "word"):
                return self._dotted_start(opener - 1)
            return opener
        if tok.kind == "word" and j > 0 and self.toks[j - 1].kind == "number":
            return j - 1  # money: 1000 EUR
        if tok.kind in ("number", "string", "word") or (tok.kind == "name"
                                                       and not tok.is_keyword):
            return self._dotted_start(j)
        return None

    def _dotted_start(self, j: int) -> int:
        while j >= 2 and self.at(j - 1) == "." and glued(self.toks[j - 1], self.toks[j]) and \
                self.toks[j - 2].kind in ("name", "word"):
            j -= 2
        return j

    def sum_start(self, j: int) -> int | None:
        """Index of the first token of the arithmetic expression ending at ``j``."""
        start = self.atom_start(j)
        while start is not None:
            while self.at(start - 1) == "-" and not (start >= 2
                                                     and self.toks[start - 2].ends_operand):
                start -= 1  # a unary minus
            if self.at(start - 1) in ARITH and start >= 2 and self.toks[start - 2].ends_operand:
                start = self.atom_start(start - 2)
                continue
            return start
        return None

    def expr_end(self, i: int) -> int | None:
        """Index just past the whole expression (logic and ``if`` included) starting at ``i``."""
        want_operand, end = True, None
        while i < len(self.toks):
            tok = self.toks[i]
            if want_operand:
                if tok.text in ("-", "not", "if"):
                    i += 1
                    continue
                nxt = self.atom_end(i)
                if nxt is None:
                    break
                i = end = nxt
                want_operand = False
            elif tok.text in ARITH or tok.text in COMPARE or tok.text in BINARY_WORDS:
                i, want_operand = i + 1, True
            else:
                break
        return end
