"""Source text → ``ast.Module``. With ``syntax.py`` (its errors), the only module that
touches lark.

The LALR parser is built once per process from ``grammar/peak.lark`` (shipped inside
the wheel as ``peakdsl/grammar/peak.lark``). Hostile input is bounded before and
after parsing: size, encoding, identifier length, number range and nesting depth.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from . import ast, lexical, porting
from .diagnostics import Diagnostic, diag
from .source import SourceFile, Span
from .syntax import Recovery, tok_span

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_TOKENS = 20_000  # a rich spec has a few hundred; this bounds parse time on hostile input
MAX_IDENT = 64
MAX_MAGNITUDE = 1e15
DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def unit_value(text: str, exponent: int = 0) -> float:
    """The double nearest the decimal ``text × 10^exponent``: ``0.7%`` is exactly the double
    of 0.007 (0.7 × 0.01 and 0.7 / 100 both miss it by one ulp)."""
    from decimal import Decimal, InvalidOperation

    try:
        return float(Decimal(text).scaleb(exponent))
    except InvalidOperation:
        return math.nan


@dataclass(frozen=True, slots=True)
class ParseResult:
    module: ast.Module | None
    diagnostics: tuple[Diagnostic, ...]


def grammar_text() -> str:
    """The grammar, from the installed package or, in a source checkout, ``grammar/``."""
    packaged = resources.files("peakdsl").joinpath("grammar/peak.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammar" / "peak.lark").read_text("utf-8")


@lru_cache(maxsize=1)
def build_parser() -> Lark:
    """The LALR parser; comments reach ``_COMMENTS`` through a lexer callback (one pass)."""
    return Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True,
                lexer_callbacks={"COMMENT": _COMMENTS.append}, cache=True)


_COMMENTS: list[Token] = []  # filled during one parse; parsing is single-threaded per process


def parse_bytes(path: str, data: bytes) -> ParseResult:
    """Decode and parse a file's bytes; oversized or non-UTF-8 input is a diagnostic."""
    if len(data) > MAX_FILE_BYTES:
        return _fail(diag("P004", f"file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}",
                          path, help="a spec is a small declarative file; split it"))
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is harmless; drop it
    except UnicodeDecodeError as exc:
        src = SourceFile.of(path, data[: exc.start].decode("utf-8", "replace"))
        return _fail(diag("P006", f"invalid UTF-8 byte at offset {exc.start}", path,
                          src.span_at(len(src.text)), help="save the file as UTF-8"))
    return parse_source(SourceFile.of(path, text))


def parse_source(src: SourceFile) -> ParseResult:
    """Parse one source file into a module, or return its diagnostics."""
    if len(src.text.encode("utf-8")) > MAX_FILE_BYTES:
        return _fail(diag("P004", f"file is over {MAX_FILE_BYTES:,} bytes", src.path,
                          help="a spec is a small declarative file; split it"))
    bad = _first_control_char(src.text)
    if bad is not None:
        return _fail(diag("P002", f"control character U+{ord(src.text[bad]):04X} in source",
                          src.path, src.span_at(bad), help="remove it; specs are plain text "
                          "(invisible and bidirectional controls could hide code from reviewers)"))
    tokens = _token_estimate(src.text)
    if tokens > MAX_TOKENS:
        return _fail(diag("P004", f"file has about {tokens:,} tokens; the limit is "
                          f"{MAX_TOKENS:,}", src.path, help="a spec is a small declarative "
                          "file; split it"))
    nest = _bracket_overflow(src.text)
    if nest is not None:
        return _fail(diag("P005", f"brackets nest deeper than {MAX_DEPTH} levels", src.path,
                          src.span_at(nest), help="split the expression with `let` bindings"))
    comments: list[Token] = []
    toks = lexical.tokens(src.text)
    tree, errors = _parse(src, toks, comments)
    problems = porting.explain(src, toks, errors)
    if problems:
        return ParseResult(None, tuple(problems))
    assert tree is not None
    deep = _too_deep(tree)
    if deep is not None:
        return _fail(diag("P005", f"nesting deeper than {MAX_DEPTH} levels", src.path,
                          _meta_span(deep, src), help="split the expression with `let` bindings"))
    builder = _Builder(src)
    root = tree.children[0]
    assert isinstance(root, Tree)
    decl = builder.decl(root)
    if builder.diagnostics:
        return ParseResult(None, tuple(builder.diagnostics))
    module = ast.Module(src.path, decl, tuple(ast.Comment(t.value, tok_span(t)) for t in comments))
    return ParseResult(module, ())


def _parse(src: SourceFile, toks: list[lexical.Tok], comments: list[Token]
           ) -> tuple[Tree[Token] | None, list[Diagnostic]]:
    """The tree (``None`` after a syntax error) and every syntax error, one per statement."""
    parser = build_parser()
    recovery = Recovery(src, toks, parser)
    _COMMENTS.clear()
    try:
        tree = parser.parse(src.text, on_error=recovery)
    except UnexpectedInput:  # recovery gave up; its errors are recorded
        tree = None
    finally:
        comments.extend(_COMMENTS)
        _COMMENTS.clear()
    return (None if recovery.errors else tree), recovery.errors


def _fail(d: Diagnostic) -> ParseResult:
    return ParseResult(None, (d,))


# C0 (but tab and newline), DEL, C1, and the bidirectional and invisible direction marks
# that let a file show a reviewer something other than what the compiler reads.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f"
                        "\u202a-\u202e\u2066-\u2069]|\r(?!\n)")


def _first_control_char(text: str) -> int | None:
    """Offset of the first forbidden character (a lone CR counts: it hides a line)."""
    match = _FORBIDDEN.search(text)
    return match.start() if match else None


def _bracket_overflow(text: str) -> int | None:
    """Offset where ``(``/``[``/``{`` nesting passes the limit, found before parsing (fast)."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        if token in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif token in ")]}":
            depth -= 1
    return None


def _token_estimate(text: str) -> int:
    """An upper-bound-ish token count, cheap enough to run before the parser."""
    if len(text) < 32_768:
        return 0
    return sum(1 for _ in _TOKENS.finditer(text))


_TOKENS = re.compile(r"#[^\n]*|\"[^\"\n]*\"|[\w.%]+|[^\s\w]")
_BRACKETS = re.compile(r'"[^"\n]*"|#[^\n]*|[()\[\]{}]')


def _too_deep(tree: Tree[Token]) -> Tree[Token] | None:
    """The first subtree nested deeper than ``MAX_DEPTH`` expression levels, iteratively."""
    stack: list[tuple[Tree[Token], int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return node
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))
    return None


def _meta_span(tree: Tree[Token], src: SourceFile) -> Span:
    meta = tree.meta
    if getattr(meta, "empty", True):
        return src.span_at(0)
    return Span(meta.start_pos, meta.end_pos, meta.line, meta.column, meta.end_line,
                meta.end_column)


# ---------------------------------------------------------------- tree → AST


class _Builder:
    """Converts lark trees to AST nodes, collecting lexical diagnostics as it goes."""

    def __init__(self, src: SourceFile) -> None:
        self.src = src
        self.diagnostics: list[Diagnostic] = []
        self.items: dict[str, Callable[[Tree[Token]], ast.Item]] = {
            "param": self.param, "require": self.require, "let": self.let, "state": self.state,
            "rule": self.rule, "size": self.size, "component": self.component,
            "risk_ref": self.risk_ref, "block": self.block, "setting": self.setting,
            "drift_setting": self.setting,
            "after_setting": self.setting,
        }
        self.exprs: dict[str, Callable[[Tree[Token], Span], ast.Expr]] = {
            "number": self.number, "percent": self.percent, "bps": self.bps,
            "duration": self.duration, "money": self.money, "market": self.market,
            "string": self.string, "true": lambda t, s: ast.Bool(True, s),
            "false": lambda t, s: ast.Bool(False, s), "name": self.name_expr,
            "paren": lambda t, s: self.expr(t.children[0]), "list": self.list_expr,
            "call": self.call, "lag": self.lag, "at": self.at, "neg": self.neg, "not_": self.not_,
            "and_": self.logic("and"), "or_": self.logic("or"), "binop": self.binop,
            "compare": self.binop, "ifelse": self.ifelse,
        }

    def span(self, node: Tree[Token] | Token) -> Span:
        return tok_span(node) if isinstance(node, Token) else _meta_span(node, self.src)

    def ident(self, tok: Token) -> str:
        if len(tok.value) > MAX_IDENT:
            self.diagnostics.append(diag(
                "P007", f"identifier is {len(tok.value)} characters; the limit is {MAX_IDENT}",
                self.src.path, tok_span(tok), help="use a shorter name"))
        return str(tok.value)

    def decl(self, tree: Tree[Token]) -> ast.Decl:
        kind_tree, name, *items = tree.children
        assert isinstance(kind_tree, Tree) and isinstance(name, Token)
        kind = str(kind_tree.children[0])
        built = tuple(self.items[t.data](t) for t in items if isinstance(t, Tree))
        return ast.Decl(kind, self.ident(name), built, self.span(tree), tok_span(name))

    # statements ---------------------------------------------------------
    def param(self, t: Tree[Token]) -> ast.Param:
        name, type_, default, low, high, step = t.children
        assert isinstance(name, Token) and isinstance(type_, Token)
        return ast.Param(self.ident(name), str(type_), self.expr(default), self.expr(low),
                         self.expr(high), None if step is None else self.expr(step),
                         self.span(t), tok_span(name), tok_span(type_))

    def require(self, t: Tree[Token]) -> ast.Require:
        return ast.Require(self.expr(t.children[0]), self.span(t))

    def let(self, t: Tree[Token], state: bool = False) -> ast.Let:
        name, value = t.children
        assert isinstance(name, Token)
        return ast.Let(self.ident(name), self.expr(value), self.span(t), tok_span(name),
                       state=state)

    def state(self, t: Tree[Token]) -> ast.Let:
        """``state NAME = EXPR``: a let that reads its own past (``lang.state``)."""
        return self.let(t, state=True)

    def rule(self, t: Tree[Token]) -> ast.Rule:
        kind, side, cond = t.children
        assert isinstance(kind, Tree) and isinstance(side, Tree)
        return ast.Rule(str(kind.children[0]), str(side.children[0]), self.expr(cond),
                        self.span(t))

    def size(self, t: Tree[Token]) -> ast.Size:
        value, basis = t.children
        assert basis is None or isinstance(basis, Token)
        return ast.Size(self.expr(value), None if basis is None else self.ident(basis),
                        self.span(t), self.span(basis) if basis is not None else self.span(t))

    def component(self, t: Tree[Token]) -> ast.Component:
        name, weight, *rest = t.children
        assert isinstance(name, Token)
        overrides = tuple(self.override(o) for o in rest if isinstance(o, Tree))
        return ast.Component(self.ident(name), self.expr(weight), overrides, self.span(t),
                             tok_span(name))

    def override(self, t: Tree[Token]) -> ast.Override:
        name, value = t.children
        assert isinstance(name, Token)
        return ast.Override(self.ident(name), self.expr(value), self.span(t))

    def risk_ref(self, t: Tree[Token]) -> ast.RiskRef:
        name = t.children[0]
        assert isinstance(name, Token)
        return ast.RiskRef(self.ident(name), self.span(t), tok_span(name))

    def block(self, t: Tree[Token]) -> ast.Block:
        key, *settings = t.children
        assert isinstance(key, Token)
        trees = [s for s in settings if isinstance(s, Tree)]
        built = tuple(self.setting(s) for s in trees if s.data != "block")
        nested = tuple(self.block(s) for s in trees if s.data == "block")
        return ast.Block(self.ident(key), built, self.span(t), tok_span(key), nested)

    def setting(self, t: Tree[Token]) -> ast.Setting:
        if t.data == "drift_setting":  # `rebalance drift 5%` is the setting `rebalance_drift`
            key, value = t.children
            assert isinstance(key, Token)
            return ast.Setting(f"{self.ident(key)}_drift", self.expr(value), self.span(t),
                               tok_span(key))
        if t.data == "after_setting":  # `cooldown after stop 5` is `cooldown_after_stop`
            key, event, value = t.children
            assert isinstance(key, Token) and isinstance(event, Token)
            return ast.Setting(f"{self.ident(key)}_after_{self.ident(event)}", self.expr(value),
                               self.span(t), tok_span(key))
        key, value = t.children
        assert isinstance(key, Token)
        return ast.Setting(self.ident(key), self.expr(value), self.span(t), tok_span(key))

    # expressions --------------------------------------------------------
    def expr(self, node: Any) -> ast.Expr:
        if isinstance(node, Token):  # bare literal tokens never reach here; keep mypy honest
            return ast.Name(self.ident(node), tok_span(node))
        return self.exprs[node.data](node, self.span(node))

    def _number(self, tok: Token, exponent: int = 0, strip: int = 0) -> float:
        """The literal's value; a unit shifts the decimal point (see ``unit_value``)."""
        text = str(tok.value[: len(tok.value) - strip] if strip else tok.value)
        if not math.isfinite(float(text)) or abs(float(text)) > MAX_MAGNITUDE:
            self.diagnostics.append(diag(
                "P008", f"number `{tok.value[:40]}` is out of range", self.src.path,
                tok_span(tok), help=f"numbers must be finite and at most {MAX_MAGNITUDE:g}"))
            return 0.0
        return unit_value(text, exponent)

    def number(self, t: Tree[Token], s: Span) -> ast.Expr:
        tok = t.children[0]
        assert isinstance(tok, Token)
        text = str(tok.value)
        is_int = not any(c in text for c in ".eE")
        return ast.Number(self._number(tok), is_int, text, s)

    def percent(self, t: Tree[Token], s: Span) -> ast.Expr:
        tok = t.children[0]
        assert isinstance(tok, Token)
        return ast.Percent(self._number(tok, -2, 1), str(tok.value), s)

    def bps(self, t: Tree[Token], s: Span) -> ast.Expr:
        tok = t.children[0]
        assert isinstance(tok, Token)
        return ast.Bps(self._number(tok, -4, 3), str(tok.value), s)

    def duration(self, t: Tree[Token], s: Span) -> ast.Expr:
        tok = t.children[0]
        assert isinstance(tok, Token)
        count = self._number(tok, 0, 1)
        return ast.Duration(int(count) * DURATION_SECONDS[tok.value[-1]], str(tok.value), s)

    def money(self, t: Tree[Token], s: Span) -> ast.Expr:
        amount, currency = t.children
        assert isinstance(amount, Token) and isinstance(currency, Token)
        return ast.Money(self._number(amount), self.currency(currency), str(amount.value), s)

    def currency(self, tok: Token) -> str:
        if len(tok.value) > 12:
            self.diagnostics.append(diag("P007", "currency code longer than 12 characters",
                                         self.src.path, tok_span(tok)))
        return str(tok.value)

    def market(self, t: Tree[Token], s: Span) -> ast.Expr:
        base, quote, settle = t.children
        assert isinstance(base, Token) and isinstance(quote, Token)
        assert settle is None or isinstance(settle, Token)
        return ast.Market(self.currency(base), self.currency(quote),
                          None if settle is None else self.currency(settle), s)

    def string(self, t: Tree[Token], s: Span) -> ast.Expr:
        tok = t.children[0]
        assert isinstance(tok, Token)
        return ast.String(str(tok.value)[1:-1], s)

    def name_expr(self, t: Tree[Token], s: Span) -> ast.Expr:
        tok = t.children[0]
        assert isinstance(tok, Token)
        return ast.Name(self.ident(tok), s)

    def list_expr(self, t: Tree[Token], s: Span) -> ast.Expr:
        return ast.List(tuple(self.expr(c) for c in t.children if c is not None), s)

    def call(self, t: Tree[Token], s: Span) -> ast.Expr:
        func, *args = t.children
        assert isinstance(func, Token)
        return ast.Call(self.ident(func), tuple(self.expr(a) for a in args if a is not None), s,
                        tok_span(func))

    def lag(self, t: Tree[Token], s: Span) -> ast.Expr:
        target, n = t.children
        return ast.Lag(self.expr(target), self.expr(n), s)

    def at(self, t: Tree[Token], s: Span) -> ast.Expr:
        target, ref = (self.expr(c) for c in t.children)
        if isinstance(target, ast.At) and target.timeframe is None and \
                isinstance(ref, ast.Duration):  # `close@ETH/USDT@4h`: one frame
            return ast.At(target.target, target.market, ref, s)
        if isinstance(ref, ast.Market):
            return ast.At(target, ref, None, s)
        assert isinstance(ref, ast.Duration)
        return ast.At(target, None, ref, s)

    def neg(self, t: Tree[Token], s: Span) -> ast.Expr:
        return ast.Neg(self.expr(t.children[0]), s)

    def not_(self, t: Tree[Token], s: Span) -> ast.Expr:
        return ast.Not(self.expr(t.children[0]), s)

    def logic(self, op: str) -> Callable[[Tree[Token], Span], ast.Expr]:
        def build(t: Tree[Token], s: Span) -> ast.Expr:
            left, right = t.children
            return ast.Binary(op, self.expr(left), self.expr(right), s, s)
        return build

    def binop(self, t: Tree[Token], s: Span) -> ast.Expr:
        left, op, right = t.children
        assert isinstance(op, Token)
        return ast.Binary(str(op.value), self.expr(left), self.expr(right), s, tok_span(op))

    def ifelse(self, t: Tree[Token], s: Span) -> ast.Expr:
        c, a, b = t.children
        return ast.IfElse(self.expr(c), self.expr(a), self.expr(b), s)


def parse_text(text: str, path: str = "<input>.peak") -> ParseResult:
    """Convenience for tests and the API: parse a string."""
    return parse_source(SourceFile.of(path, text))
