"""Syntax errors: lark's exceptions as P-diagnostics, and recovery after them.

``syntax_diagnostic`` says what the parser expected at an error, in words (``expected `}`,
a statement``) rather than terminal names. ``Recovery`` is the parser's ``on_error`` hook:
it reports the error, drops the statement it is in and resumes at the next one, so a file
shows every broken statement in one run. With ``parser.py`` the only module that touches
lark; no lark object leaves the two.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.parsers.lalr_analysis import Shift

from . import lexical
from .diagnostics import Diagnostic, Label, diag
from .source import SourceFile, Span

MAX_SYNTAX_ERRORS = 20  # per file: more would be noise, not help


@lru_cache(maxsize=2)
def _statement_states(parser: Lark) -> frozenset[int]:
    """The parser states between two statements of a declaration (those that shift `let`)."""
    table = parser.parser.parser.parser.parse_table
    return frozenset(s for s, actions in table.states.items()
                     if actions.get("LET", (None,))[0] is Shift)


class Recovery:
    """lark's ``on_error`` hook: record the error, drop the statement it is in, resume.

    The parser's stacks are cut back to the last point between two statements and the
    lexer moves to where the next statement starts (``lexical.statement_starts``): each
    broken statement is reported once and the ones after it are still read, without the
    cascade of follow-on errors that skipping token by token would produce.
    """

    def __init__(self, src: SourceFile, toks: list[lexical.Tok], parser: Lark) -> None:
        self.src = src
        self.parser = parser
        self.toks = toks
        self.starts = [toks[i].start for i in lexical.statement_starts(toks)]
        self.errors: list[Diagnostic] = []

    def __call__(self, exc: UnexpectedInput) -> bool:
        parser = exc.interactive_parser
        offset = (exc.token.start_pos if isinstance(exc, UnexpectedToken)
                  else exc.pos_in_stream) or 0
        error, stop = self.diagnose(exc, offset, _statement_begin(parser.parser_state, self.parser))
        self.errors.append(error)
        if stop or len(self.errors) >= MAX_SYNTAX_ERRORS or _at_end(exc):
            return False
        if not _unwind(parser.parser_state, self.parser):
            return False  # the declaration's header is broken: nothing to resume
        resume = next((s for s in self.starts if s >= offset), len(self.src.text))
        _seek(parser.lexer_thread.state, self.src, resume)
        return True

    def diagnose(self, exc: UnexpectedInput, offset: int, begun: int | None
                 ) -> tuple[Diagnostic, bool]:
        """The error to report, and whether to stop: a statement keyword inside a block
        whose ``}`` is missing is that block's fault (P003 at its ``{``), and everything
        after it is inside the block."""
        here = max((s for s in self.starts if s <= offset), default=None)
        if here is not None and here < offset and begun != here and self.runs_on(here):
            return self.incomplete(here), False
        if isinstance(exc, UnexpectedToken) and exc.token.type in STATEMENT_TOKENS:
            opener = lexical.unclosed_brace(self.src.text, self.toks)
            if opener is not None and (begun or 0) < opener.start < offset:
                return _end_of_file(self.src, ""), True
        return syntax_diagnostic(self.src, exc, self.parser), False

    def runs_on(self, offset: int) -> bool:
        """Whether the statement before the one at ``offset`` ends where no expression can."""
        last = self.token_before(offset)
        return last is not None and not last.ends_operand and last.text not in "{}"

    def token_before(self, offset: int) -> lexical.Tok | None:
        toks = [t for t in self.toks if t.end <= offset]
        return toks[-1] if toks else None

    def incomplete(self, offset: int) -> Diagnostic:
        """The statement before ``offset`` ran on into this one (``let a = x +`` then
        ``let b = …``): the parser read this statement's first word as an operand."""
        word = next(t for t in self.toks if t.start == offset)
        last = self.token_before(offset)
        assert last is not None
        return diag("P001", f"unexpected `{word.text}`", self.src.path,
                    self.src.span_at(offset, len(word.text)),
                    help=f"the statement before it is incomplete: it ends with `{last.text}`",
                    labels=[Label(self.src.path, self.src.span_at(last.start,
                                                                  len(last.text)),
                                  "the statement before ends here")])


STATEMENT_TOKENS = frozenset(w.upper() for w in lexical.STATEMENT_KEYWORDS)


def _statement_begin(state: Any, parser: Lark) -> int | None:
    """Where the statement the parser is in began (``None`` between statements)."""
    depth = _statement_depth(state, parser)
    if depth is None:
        return None
    starts = [v.start_pos if isinstance(v, Token) else getattr(v.meta, "start_pos", None)
              for v in state.value_stack[depth:] if isinstance(v, Token) or hasattr(v, "meta")]
    found = [s for s in starts if isinstance(s, int)]
    return min(found) if found else None


def _at_end(exc: UnexpectedInput) -> bool:
    return isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END")


def _statement_depth(state: Any, parser: Lark) -> int | None:
    """How deep in the parser's stack the last state between two statements is."""
    between = _statement_states(parser)
    return max((i for i, s in enumerate(state.state_stack) if s in between), default=None)


def _unwind(state: Any, parser: Lark) -> bool:
    """Cut the parser's stacks back to the last state between two statements."""
    depth = _statement_depth(state, parser)
    if depth is None:
        return False
    del state.state_stack[depth + 1 :]
    del state.value_stack[depth:]
    return True


def _seek(lexer_state: Any, src: SourceFile, offset: int) -> None:
    """Move the lexer to ``offset`` (the next token is lexed in the unwound parser state)."""
    line, col = src.position(offset)
    counter = lexer_state.line_ctr
    counter.char_pos, counter.line, counter.column = offset, line, col
    counter.line_start_pos = offset - col + 1



TERMINAL_NAMES = {
    "NAME": "a name", "NUMBER": "a number", "PERCENT": "a percentage", "BPS": "basis points",
    "DURATION": "a duration", "CURRENCY": "a currency", "STRING": "a string",
    "COMP_OP": "a comparison", "ADD_OP": "`+` or `-`", "MUL_OP": "`*` or `/`",
    "$END": "end of file",
}
STATEMENT_WORDS = {"`param`", "`require`", "`let`", "`entry`", "`exit`", "`size`",
                   "`component`", "`risk`"}
EXPRESSION_START = {"`(`", "`-`", "`[`", "`false`", "`if`", "`not`", "`true`", "a currency",
                    "a duration", "a name", "a number", "a percentage", "basis points", "a string"}
OPERATORS = {"`*` or `/`", "`+` or `-`", "`and`", "`or`", "a comparison", "`[`"}
WORD_GROUPS = (("a statement", STATEMENT_WORDS | {"a name"}), ("an expression", EXPRESSION_START),
               ("an operator", OPERATORS))
HINTS: dict[str, str] = {
    "&": "use `and`", "|": "use `or`", "!": "use `not` (or `!=` for inequality)",
    "=": "use `==` to compare", "'": "strings use double quotes",
    "?": "`c ? a : b` is written `if c then a else b`", ";": "statements need no `;`",
}


def _expected_words(parser: Lark, names: set[str]) -> list[str]:
    words: set[str] = set()
    for name in names:
        if name in TERMINAL_NAMES:
            words.add(TERMINAL_NAMES[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            continue
        words.add(f"`{pattern.value}`" if pattern.type == "str" else name.lower())
    for group, members in WORD_GROUPS:
        if len(members & words) >= 3:
            words = (words - members) | {group}
    return sorted(words)


def syntax_diagnostic(src: SourceFile, exc: UnexpectedInput, parser: Lark) -> Diagnostic:
    """Turn a lark exception into a P-diagnostic that says what was expected."""
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = src.text[pos] if pos < len(src.text) else ""
        help_ = HINTS.get(ch, "") or _expected_help(parser, set(exc.allowed or ()))
        return diag("P002", f"unexpected character `{ch}`", src.path,
                    src.span_at(pos), help=help_)
    if _at_end(exc):
        expected = (_acceptable(exc) if isinstance(exc, UnexpectedToken)
                    else set(getattr(exc, "expected", ()) or ()))
        return _end_of_file(src, _expected_help(parser, expected))
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    span = tok_span(tok)
    help_ = _expected_help(parser, _acceptable(exc))
    if tok.type == "CURRENCY" and "NAME" in exc.expected:
        help_ = "names are lower_snake_case; upper-case words are currencies and markets"
    return diag("P001", f"unexpected {_describe(tok)}", src.path, span, help=help_)


def _end_of_file(src: SourceFile, expected: str) -> Diagnostic:
    """P003, pointing at the ``{`` that was never closed when there is one."""
    end = src.span_at(len(src.text), 0)
    opener = lexical.unclosed_brace(src.text, lexical.tokens(src.text))
    if opener is None:
        return diag("P003", "unexpected end of file", src.path, end, help=expected)
    where = src.span_at(opener.start)
    return diag("P003", "unexpected end of file: this block is never closed", src.path, where,
                help=f"close it with `}}` after its last statement ({expected})"
                if expected else "close it with `}` after its last statement",
                labels=[Label(src.path, end, "the file ends here")])


def _acceptable(exc: UnexpectedToken) -> set[str]:
    """The tokens the parser would really accept here (LALR's expected set over-approximates)."""
    try:
        return set(exc.interactive_parser.accepts())  # type: ignore[no-untyped-call]
    except Exception:
        return set(exc.expected)


def _expected_help(parser: Lark, names: set[str]) -> str:
    words = _expected_words(parser, names)
    if not words:
        return ""
    if len(words) > 8:
        words = [*words[:8], "…"]
    return "expected " + ", ".join(words)


def _describe(tok: Token) -> str:
    if tok.type in TERMINAL_NAMES and tok.type not in ("COMP_OP", "ADD_OP", "MUL_OP"):
        kind = TERMINAL_NAMES[tok.type].removeprefix("a ").removeprefix("an ")
        return f"{kind} `{tok.value[:40]}`"
    return f"`{tok.value[:40]}`"


def tok_span(tok: Token) -> Span:
    """A token's place in the source."""
    return Span(tok.start_pos or 0, tok.end_pos or 0, tok.line or 1, tok.column or 1,
                tok.end_line or 1, tok.end_column or 1)
