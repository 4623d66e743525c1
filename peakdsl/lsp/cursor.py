"""Where the cursor is, read from the words before it: completion's context.

While a spec is being typed it rarely parses, so the context comes from the forgiving lexer:
the braces give the declaration's kind and the enclosing blocks (or a component's ``with``),
the brackets the call whose arguments hold the cursor, and the last words what may follow
(``entry`` → a side, ``param x:`` → a type, a setting key → its value, an operator → an
expression, the start of a line → a statement).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .locate import setting_table
from .specs import DECL_KINDS
from .text import Token, first_on_line, lex

# words and signs after which an expression is expected
EXPR_LEADS = frozenset({
    "when", "=", "require", "(", ",", "[", "and", "or", "not", "if", "then", "else", "+", "-",
    "*", "/", "<", "<=", ">", ">=", "==", "!=", "size", "weight", "in", "..", "step"})
RULE_KINDS = frozenset({"entry", "exit"})
SIDES = frozenset({"long", "short"})


@dataclass(frozen=True, slots=True)
class Cursor:
    """What may be typed at the cursor.

    ``where``: ``none`` (in a comment or a string, or past the declaration), ``top`` (before
    it), ``decl_name``, ``statement``, ``expression``, ``value`` (of the setting ``key``),
    ``param_type``, ``side``, ``when``, ``basis``, ``reference`` (after the statement
    ``key``: component or risk), ``override`` (a param of the component ``key``), ``frame``
    (after an ``@``: a timeframe or a market; ``key`` "market" after ``@BASE/QUOTE@``, where
    only a timeframe may follow), ``after`` (after an operand: an operator, or a new
    statement).
    """

    where: str
    kind: str = ""  # the declaration's kind
    blocks: tuple[str, ...] = ()  # enclosing block keys, outermost first
    key: str = ""
    call: str = ""  # the function whose argument list holds the cursor
    arg: int = 0  # which of its arguments, from 0
    given: frozenset[str] = frozenset()  # statement words already used in this block
    prefix: str = ""  # the part of a word already typed


@dataclass
class _Frame:
    role: str  # "decl" "block" "with" "call" "group"
    opener: str  # "{" "(" "["
    name: str = ""  # the kind, the block key, the component, the function, the key of a list
    commas: int = 0


@dataclass
class _Scan:
    """The state of the walk over the tokens before the cursor."""

    text: str
    frames: list[_Frame] = field(default_factory=list)
    given: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    recent: list[tuple[Token, bool]] = field(default_factory=list)  # (token, at a statement)
    first: str = ""  # the file's first word: the declaration's kind
    component: str = ""  # the last component named (the owner of a `with { … }`)

    def blocks(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.frames if f.role == "block")

    def kind(self) -> str:
        return next((f.name for f in self.frames if f.role == "decl"), "")

    def last(self, back: int = 1) -> str:
        return self.recent[-back][0].text if len(self.recent) >= back else ""


def cursor_at(text: str, offset: int) -> Cursor:
    """The completion context at ``offset`` (any text: it need not parse)."""
    tokens = lex(text)
    here = next((t for t in tokens if t.start < offset <= t.end), None)
    if here is not None and _in_text(here, offset):
        return Cursor("none")
    prefix = text[here.start:offset] if here is not None and (
        here.kind == "word" or _frame_number(text, here)) else ""
    scan = _Scan(text)
    for token in tokens:
        if token.end > offset - len(prefix):
            break
        if token.kind != "comment":
            _step(scan, token)
    return replace(_decide(scan, offset - len(prefix)), prefix=prefix)


def _frame_number(text: str, token: Token) -> bool:
    """A timeframe being typed after ``@`` (``close@4``): a prefix, like a word."""
    return token.kind == "number" and text[:token.start].rstrip().endswith("@")


def _in_text(token: Token, offset: int) -> bool:
    """Inside a comment, or a string not yet closed before the cursor."""
    if token.kind == "comment":
        return True
    closed = len(token.text) > 1 and token.text.endswith('"')
    return token.kind == "string" and (offset < token.end or not closed)


def _step(scan: _Scan, token: Token) -> None:
    text = token.text
    at_statement = token.kind == "word" and _at_statement(scan, token)
    if at_statement and scan.frames:
        scan.given.setdefault(scan.blocks(), set()).add(text)
    if not scan.first and token.kind == "word":
        scan.first = text
    if scan.last() == "component" and token.kind == "word":
        scan.component = text
    OPENERS.get(text, _no_frame)(scan, token)
    scan.recent = [*scan.recent[-3:], (token, at_statement)]


def _at_statement(scan: _Scan, token: Token) -> bool:
    """A word that starts a statement: after a brace, or first on its line when the line
    before ended an expression."""
    previous = scan.last()
    return previous in ("{", "}") or (
        first_on_line(scan.text, token.start) and previous not in EXPR_LEADS)


def _brace(scan: _Scan, token: Token) -> None:
    if not any(f.role == "decl" for f in scan.frames):
        scan.frames.append(_Frame("decl", "{", scan.first if scan.first in DECL_KINDS else ""))
    elif scan.last() == "with":
        scan.frames.append(_Frame("with", "{", scan.component))
    else:
        word = scan.recent[-1][0] if scan.recent else None
        scan.frames.append(_Frame("block", "{", word.text if word and word.kind == "word" else ""))


def _bracket(scan: _Scan, token: Token) -> None:
    word = scan.recent[-1][0] if scan.recent else None
    name = word.text if word is not None and word.kind == "word" else ""
    role = "call" if token.text == "(" and name else "group"
    scan.frames.append(_Frame(role, token.text, name))


def _close(scan: _Scan, token: Token) -> None:
    opener = {"}": "{", ")": "(", "]": "["}[token.text]
    while scan.frames:
        if scan.frames.pop().opener == opener:
            return


def _comma(scan: _Scan, token: Token) -> None:
    if scan.frames and scan.frames[-1].opener in "([":
        scan.frames[-1].commas += 1


def _no_frame(scan: _Scan, token: Token) -> None:
    return None


OPENERS = {"{": _brace, "(": _bracket, "[": _bracket, "}": _close, ")": _close, "]": _close,
           ",": _comma}


def _decide(scan: _Scan, start: int) -> Cursor:
    """The context from the innermost frame and the last words."""
    if not scan.frames:
        kind_only = len(scan.recent) == 1 and scan.last() in DECL_KINDS
        return Cursor("decl_name" if kind_only else "top" if not scan.recent else "none")
    top, kind, blocks = scan.frames[-1], scan.kind(), scan.blocks()
    given = frozenset(scan.given.get(blocks, ()))
    for rule in RULES:
        found = rule(scan, top)
        if found is not None:
            return replace(found, kind=kind, blocks=blocks, given=given)
    if scan.last() in ("{", "}") or first_on_line(scan.text, start) or top.role == "block":
        return Cursor("statement", kind, blocks, given=given)
    return Cursor("after", kind, blocks, given=given)


def _inner(scan: _Scan, top: _Frame) -> Cursor | None:
    """Inside a component's ``with { … }``, a call's arguments or a list."""
    if top.role == "with":
        return Cursor("override", key=top.name) if scan.last() in ("{", ",") else Cursor("none")
    if top.opener == "[" and top.name in setting_table(scan.kind(), scan.blocks()):
        return Cursor("value", key=top.name)
    if top.opener in "([":
        return Cursor("expression", call=top.name if top.role == "call" else "",
                      arg=top.commas)
    return None


def _after_word(scan: _Scan, top: _Frame) -> Cursor | None:
    """What the last one or two words call for."""
    last, before = scan.last(), scan.last(2)
    if last in EXPR_LEADS:
        return Cursor("expression")
    if last == "@":
        return Cursor("frame", key="market" if scan.last(3) in ("/", ":") else "")
    if last == ":" and scan.last(3) == "param":
        return Cursor("param_type")
    if last in RULE_KINDS:
        return Cursor("side")
    if last in SIDES and before in RULE_KINDS:
        return Cursor("when")
    if last == "of":
        return Cursor("basis")
    if last == "component" or (last == "risk" and top.role == "decl"
                               and scan.kind() == "portfolio"):
        return Cursor("reference", key=last)
    return None


def _setting_value(scan: _Scan, top: _Frame) -> Cursor | None:
    """After a setting key that starts its statement: the setting's value."""
    if scan.last() == "drift" and scan.last(2) == "rebalance":
        return Cursor("value", key="rebalance_drift")
    if scan.last() == "stop" and scan.last(2) == "after" and scan.last(3) == "cooldown":
        return Cursor("value", key="cooldown_after_stop")
    token, at_statement = scan.recent[-1] if scan.recent else (None, False)
    table = setting_table(scan.kind(), scan.blocks())
    if token is not None and at_statement and token.text in table:
        return Cursor("value", key=token.text)
    return None


RULES = (_inner, _after_word, _setting_value)
