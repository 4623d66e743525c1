"""Position → node: what the word under the cursor is, and in which role.

``locate`` walks the AST down to the innermost node whose span holds the offset (spans are
inclusive at the end here, so a cursor just after a word still finds it). The role says how
to read the word: a setting ``key``, a ``name`` in an expression, a built-in ``function``, a
portfolio's ``reference`` to another spec, an ``override`` of a component's param, and so
on. Without an AST (the text does not parse) the word is read lexically: a name, a function
when a ``(`` follows, a reference after ``component``/``risk``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from ..lang import ast
from ..lang.schema import BLOCKS, NESTED_BLOCKS, SETTINGS, SettingSpec
from ..lang.source import Span
from .text import lex, word_at


@dataclass(frozen=True, slots=True)
class Found:
    """The word under the cursor (``start``..``end``) and how to read it."""

    role: str  # name symbol function key choice block reference override decl basis param_type
    #            frame (the `4h` or `ETH/USDT` after an `@`; owner: "timeframe" or "market")
    word: str
    start: int
    end: int
    blocks: tuple[str, ...] = ()  # keys of the enclosing blocks, outermost first
    call: ast.Call | None = None  # the call the word is a direct argument of (modes)
    owner: str = ""  # a choice's setting, a reference's statement, an override's component


def inside(span: Span, offset: int) -> bool:
    return span.start <= offset <= span.end


def _word(role: str, word: str, span: Span, blocks: tuple[str, ...] = (),
          call: ast.Call | None = None, owner: str = "") -> Found:
    """The word ``word`` where ``span`` starts (a span may be longer: an override's)."""
    return Found(role, word, span.start, span.start + len(word), blocks, call, owner)


def setting_table(kind: str, blocks: tuple[str, ...]) -> dict[str, SettingSpec]:
    """The settings allowed at a block path: the declaration's, a block's or a sink's."""
    if not blocks:
        return SETTINGS.get(kind, {})
    table = BLOCKS.get(kind, {}).get(blocks[0], {})
    for outer, inner in pairwise(blocks):
        table = NESTED_BLOCKS.get(outer, {}).get(inner, {})
    return table


def symbol_of_decl(item: ast.Item) -> tuple[str, str, Span] | None:
    """``("param" | "let", name, name span)`` for a statement that declares a name."""
    if isinstance(item, ast.Param):
        return "param", item.name, item.name_span
    if isinstance(item, ast.Let):
        return "let", item.name, item.name_span
    return None


def locate(module: ast.Module | None, text: str, offset: int) -> Found | None:
    """What sits at ``offset``: from the AST when there is one, else from the words."""
    if module is None:
        return locate_lexical(text, offset)
    decl = module.decl
    if inside(decl.name_span, offset):
        return _word("decl", decl.name, decl.name_span)
    return _in_items(decl.items, offset, ())


def _in_items(items: tuple[ast.Item, ...], offset: int, blocks: tuple[str, ...]
              ) -> Found | None:
    for item in items:
        if inside(item.span, offset):
            found = ITEMS.get(type(item), _in_other)(item, offset, blocks)
            if found is not None:
                return found
    return None


def _in_param(item: ast.Item, offset: int, blocks: tuple[str, ...]) -> Found | None:
    assert isinstance(item, ast.Param)
    if inside(item.name_span, offset):
        return _word("symbol", item.name, item.name_span)
    if inside(item.type_span, offset):
        return _word("param_type", item.type, item.type_span)
    exprs = (item.default, item.low, item.high, *((item.step,) if item.step else ()))
    return next((f for e in exprs if (f := in_expr(e, offset)) is not None), None)


def _in_setting(item: ast.Item, offset: int, blocks: tuple[str, ...]) -> Found | None:
    assert isinstance(item, ast.Setting)
    if inside(item.key_span, offset):
        return _word("key", item.key, item.key_span, blocks=blocks)
    found = in_expr(item.value, offset)
    spec = setting_table_for(item, blocks)
    if found is not None and found.role == "name" and spec is not None \
            and found.word in spec.choices:
        return Found("choice", found.word, found.start, found.end, blocks, owner=item.key)
    return found


def setting_table_for(item: ast.Setting, blocks: tuple[str, ...]) -> SettingSpec | None:
    """The setting's entry in any declaration's table at this block path."""
    for kind in SETTINGS:
        spec = setting_table(kind, blocks).get(item.key)
        if spec is not None:
            return spec
    return None


def _in_block(item: ast.Item, offset: int, blocks: tuple[str, ...]) -> Found | None:
    assert isinstance(item, ast.Block)
    if inside(item.key_span, offset):
        return _word("block", item.key, item.key_span, blocks=blocks)
    return _in_items(item.children, offset, (*blocks, item.key))


def _in_component(item: ast.Item, offset: int, blocks: tuple[str, ...]) -> Found | None:
    assert isinstance(item, ast.Component)
    if inside(item.name_span, offset):
        return _word("reference", item.strategy, item.name_span, owner="component")
    for override in item.overrides:
        if override.span.start <= offset <= override.span.start + len(override.name):
            return _word("override", override.name, override.span, owner=item.strategy)
        if inside(override.value.span, offset):
            return in_expr(override.value, offset)
    return in_expr(item.weight, offset)


def _in_risk_ref(item: ast.Item, offset: int, blocks: tuple[str, ...]) -> Found | None:
    assert isinstance(item, ast.RiskRef)
    if inside(item.name_span, offset):
        return _word("reference", item.name, item.name_span, owner="risk")
    return None


def _in_size(item: ast.Item, offset: int, blocks: tuple[str, ...]) -> Found | None:
    assert isinstance(item, ast.Size)
    if item.basis is not None and inside(item.basis_span, offset):
        return _word("basis", item.basis, item.basis_span)
    return in_expr(item.value, offset)


def _in_other(item: ast.Item, offset: int, blocks: tuple[str, ...]) -> Found | None:
    """Let, require, rule — and statements added later: a declared name, then whichever
    expression field holds the offset."""
    declared = symbol_of_decl(item)
    name_span = getattr(item, "name_span", None)
    if declared is not None and isinstance(name_span, Span) and inside(name_span, offset):
        return _word("symbol", declared[1], name_span)
    for attr in ("expr", "value", "weight"):
        expr = getattr(item, attr, None)
        if expr is not None and not isinstance(expr, str) and inside(expr.span, offset):
            return in_expr(expr, offset)
    return None


ITEMS: dict[type, Callable[[ast.Item, int, tuple[str, ...]], Found | None]] = {
    ast.Param: _in_param, ast.Setting: _in_setting, ast.Block: _in_block,
    ast.Component: _in_component, ast.RiskRef: _in_risk_ref, ast.Size: _in_size,
}


def in_expr(expr: ast.Expr, offset: int) -> Found | None:
    """The innermost name or called function at ``offset`` inside ``expr``."""
    if not inside(expr.span, offset):
        return None
    node, parent = expr, None
    while True:
        child = next((c for c in ast.children(node) if inside(c.span, offset)), None)
        if child is None:
            break
        parent, node = (node if isinstance(node, ast.Call) else None), child
    if isinstance(node, ast.Call) and inside(node.func_span, offset):
        return _word("function", node.func, node.func_span)
    if isinstance(node, ast.At):
        return _frame_ref(node, offset)
    if isinstance(node, ast.Name):
        return _word("name", node.id, node.span, call=parent)
    return None


def _frame_ref(at: ast.At, offset: int) -> Found | None:
    """The market or timeframe of ``x@ETH/USDT@4h`` under the cursor (``@`` included)."""
    refs = (("market", at.market, at.market.symbol if at.market else ""),
            ("timeframe", at.timeframe, at.timeframe.text if at.timeframe else ""))
    for owner, ref, word in refs:
        if ref is not None and ref.span.start - 1 <= offset <= ref.span.end:
            return Found("frame", word, ref.span.start, ref.span.end, owner=owner)
    return None


# ---------------------------------------------------------------- without an AST


FRAME_REF = re.compile(r"@\s*(?:(?P<market>[A-Z][A-Z0-9]*/[A-Z][A-Z0-9]*(?::[A-Z][A-Z0-9]*)?)"
                       r"|(?P<timeframe>[0-9]+[a-z]+))")


def locate_lexical(text: str, offset: int) -> Found | None:
    """The word at ``offset`` read from the text alone (it does not parse)."""
    for match in FRAME_REF.finditer(text, max(0, offset - 64), min(len(text), offset + 64)):
        owner = match.lastgroup or ""
        if match.start(owner) <= offset <= match.end(owner):
            return Found("frame", match.group(owner), match.start(owner), match.end(owner),
                         owner=owner)
    bounds = word_at(text, offset)
    if bounds is None or _in_comment_or_string(text, bounds[0]):
        return None
    start, end = bounds
    word = text[start:end]
    if text[end:].lstrip().startswith("("):
        return Found("function", word, start, end)
    before = text[:start].split()
    if before and before[-1] in ("component", "risk") and word[0].islower():
        return Found("reference", word, start, end, owner=before[-1])
    return Found("name", word, start, end)


def _in_comment_or_string(text: str, offset: int) -> bool:
    """Comments and strings end at the line's end, so lexing the line is enough."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line = text[line_start: line_end if line_end >= 0 else len(text)]
    here = offset - line_start
    return any(t.kind in ("comment", "string") and t.start <= here < t.end for t in lex(line))
