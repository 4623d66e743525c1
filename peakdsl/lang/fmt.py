"""The canonical formatter behind ``peak fmt``.

Layout rules: one statement per line, four-space indentation, the author's statement
order, at most one blank line where the source had any, minimal parentheses from the
grammar's precedence ladder, literals as written, lines within ``WIDTH`` columns where the
layout allows it:

* a block of settings written on one line stays on one line when it fits
  (``execution { fill next_open fees 10bps }``); a block written over several lines, one
  holding blocks or comments, or one too long for the line, gets one setting per line;
* a statement too long for the line breaks its expression at the loosest operators —
  each ``or`` (then ``and``, comparison, ``+``/``-``, ``*``/``/``) starts a continuation
  line one level deeper, an operand that is still too long breaks the same way one level
  deeper again, and ``if … then … else …`` puts ``then`` and ``else`` on their own lines.
  The decision depends on the expression and the width only, so formatting is idempotent.

Comments are never dropped: own-line comments stay before the statement that follows them,
a comment at the end of a statement's line stays there, and comments from inside a statement
that spanned several lines move to just before it.

Every result is re-parsed and compared with the input before it is returned, so a
formatter bug surfaces as an internal diagnostic rather than a silently changed spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import atomic
from . import ast
from .diagnostics import Diagnostic, diag
from .parser import parse_bytes, parse_source, parse_text
from .project import discover, display_path
from .source import SourceFile

INDENT = "    "
TRAILING_GAP = "  "
WIDTH = 100  # the line length ruff holds the Python to; a spec reads in the same window

# ---------------------------------------------------------------- expressions

# Binding strength, loosest first; mirrors the grammar's expression rules.
IF, OR, AND, NOT, COMPARE, SUM, PRODUCT, UNARY, POSTFIX, ATOM = range(10)

BINARY_PREC: dict[str, int] = {
    "or": OR, "and": AND, **dict.fromkeys(ast.COMPARE_OPS, COMPARE),
    "+": SUM, "-": SUM, "*": PRODUCT, "/": PRODUCT,
}


# settings written as several words in the source (the grammar's `NAME "drift" expr` and
# `NAME "after" NAME expr`)
SPELLED = {"rebalance_drift": "rebalance drift", "cooldown_after_stop": "cooldown after stop"}


def precedence(expr: ast.Expr) -> int:
    """How tightly ``expr``'s outermost construct binds."""
    match expr:
        case ast.IfElse():
            return IF
        case ast.Binary(op=op):
            return BINARY_PREC[op]
        case ast.Not():
            return NOT
        case ast.Neg():
            return UNARY
        case ast.Lag() | ast.Call() | ast.At():
            return POSTFIX
    return ATOM


def format_expr(expr: ast.Expr, min_prec: int = IF) -> str:
    """``expr`` as text, parenthesised when it binds looser than its context allows."""
    text = _expr_text(expr)
    return f"({text})" if precedence(expr) < min_prec else text


def _operand_levels(op: str) -> tuple[int, int]:
    """Minimum precedence of a binary operator's left and right operands."""
    prec = BINARY_PREC[op]
    if prec == COMPARE:  # non-associative: `a < b < c` does not parse
        return prec + 1, prec + 1
    return prec, prec + 1  # left-associative


def _expr_text(expr: ast.Expr) -> str:
    match expr:
        case ast.Binary(op=op, left=left, right=right):
            lo, hi = _operand_levels(op)
            return f"{format_expr(left, lo)} {op} {format_expr(right, hi)}"
        case ast.IfElse(cond=c, then=t, orelse=e):
            return f"if {format_expr(c)} then {format_expr(t)} else {format_expr(e)}"
        case ast.Not(operand=o):
            return f"not {format_expr(o, NOT)}"
        case ast.Neg(operand=o):
            # `-(-x)` rather than `--x`, which reads like a decrement
            return "-" + format_expr(o, POSTFIX if isinstance(o, ast.Neg) else UNARY)
        case ast.Lag(target=target, lag=lag):
            return f"{format_expr(target, POSTFIX)}[{format_expr(lag)}]"
        case ast.Call(func=func, args=args):
            return f"{func}({_comma(args)})"
        case ast.At(target=target):
            return format_expr(target, POSTFIX) + frame_suffix(expr)
        case ast.List(items=items):
            return f"[{_comma(items)}]"
        case ast.Name(id=name):
            return name
    return format_literal(expr)


def frame_suffix(at: ast.At) -> str:
    """``@ETH/USDT@4h``, ``@4h`` or ``@ETH/USDT``: the frame as written after its target
    (``@`` binds like a lag, so ``(close - open)@1d`` keeps its parentheses)."""
    parts = [at.market.symbol if at.market else "", at.timeframe.text if at.timeframe else ""]
    return "".join("@" + p for p in parts if p)


def _comma(exprs: Sequence[ast.Expr]) -> str:
    return ", ".join(format_expr(e) for e in exprs)


def format_literal(lit: ast.Expr) -> str:
    """A literal as the author wrote it (numbers keep their original text)."""
    match lit:
        case ast.Number(value=v, is_int=is_int, text=text):
            return text or (str(int(v)) if is_int else repr(v))
        case ast.Percent(value=v, text=text):
            return text or f"{v * 100:.12g}%"
        case ast.Bps(value=v, text=text):
            return text or f"{v * 10000:.12g}bps"
        case ast.Duration(text=text):
            return text
        case ast.Money(amount=v, currency=cur, text=text):
            return f"{text or f'{v:.12g}'} {cur}"
        case ast.Market():
            return lit.symbol
        case ast.String(value=v):
            return f'"{v}"'
        case ast.Bool(value=v):
            return "true" if v else "false"
    raise TypeError(f"not an expression: {lit!r}")


# ---------------------------------------------------------------- breaking long expressions


def expr_lines(expr: ast.Expr, head: str, pad: str, cont: str, min_prec: int = IF
               ) -> list[str]:
    """``pad + head + expr`` as lines within ``WIDTH`` where it can be broken: its loosest
    operators start continuation lines at ``cont`` (see the module docstring)."""
    one = head + format_expr(expr, min_prec)
    if len(pad) + len(one) <= WIDTH or precedence(expr) < min_prec:
        return [pad + one]
    if isinstance(expr, ast.IfElse):
        return _if_lines(expr, head, pad, cont)
    parts = _operands(expr)
    if parts is None:
        return [pad + one]
    (first, first_prec), rest = parts
    lines = expr_lines(first, head, pad, cont + INDENT, first_prec)
    for op, operand, prec in rest:
        lines.extend(expr_lines(operand, f"{op} ", cont, cont + INDENT, prec))
    return lines


def _if_lines(expr: ast.IfElse, head: str, pad: str, cont: str) -> list[str]:
    """``if C`` on the head line, ``then A`` and ``else B`` on continuation lines."""
    deeper = cont + INDENT
    return [*expr_lines(expr.cond, head + "if ", pad, deeper),
            *expr_lines(expr.then, "then ", cont, deeper),
            *expr_lines(expr.orelse, "else ", cont, deeper)]


Operands = tuple[tuple[ast.Expr, int], list[tuple[str, ast.Expr, int]]]


def _operands(expr: ast.Expr) -> Operands | None:
    """A binary chain of one precedence level as its first operand and the (operator,
    operand) pairs after it, each with the precedence it must keep: ``a + b - c`` → a,
    [+ b, - c]."""
    if not isinstance(expr, ast.Binary):
        return None
    level = BINARY_PREC[expr.op]
    lo, hi = _operand_levels(expr.op)
    chain: list[tuple[str, ast.Expr, int]] = []
    node: ast.Expr = expr
    while isinstance(node, ast.Binary) and BINARY_PREC[node.op] == level and \
            (not chain or level != COMPARE):
        chain.append((node.op, node.right, hi))
        node = node.left
    chain.reverse()
    return (node, lo), chain


# ---------------------------------------------------------------- statements

Leaf = (ast.Param | ast.Require | ast.Let | ast.Rule | ast.Size | ast.Component
        | ast.RiskRef | ast.Setting)
Node = ast.Decl | ast.Item


def format_statement(item: Leaf) -> str:
    """One non-block statement on one line, without indentation."""
    match item:
        case ast.Param():
            step = f" step {format_expr(item.step)}" if item.step is not None else ""
            return (f"param {item.name}: {item.type} = {format_expr(item.default)} "
                    f"in {format_expr(item.low)}..{format_expr(item.high)}{step}")
        case ast.Require(expr=e):
            return f"require {format_expr(e)}"
        case ast.Let(name=name, expr=e):
            return f"{_let_keyword(item)} {name} = {format_expr(e)}"
        case ast.Rule(kind=kind, side=side, expr=e):
            return f"{kind} {side} when {format_expr(e)}"
        case ast.Size(value=v, basis=basis):
            return f"size {format_expr(v)}" + (f" of {basis}" if basis else "")
        case ast.Component():
            return _component(item)
        case ast.RiskRef(name=name):
            return f"risk {name}"
        case ast.Setting(key=key, value=v):
            return f"{SPELLED.get(key, key)} {format_expr(v)}"
    raise TypeError(f"not a one-line statement: {item!r}")


def _component(comp: ast.Component) -> str:
    text = f"component {comp.strategy} weight {format_expr(comp.weight)}"
    if not comp.overrides:
        return text
    pairs = ", ".join(f"{o.name} = {format_expr(o.value)}" for o in comp.overrides)
    return f"{text} with {{ {pairs} }}"


# ---------------------------------------------------------------- comments and layout


@dataclass
class _Slots:
    """Where each comment of one container (file, declaration or block) is printed."""

    header: ast.Comment | None = None
    leading: dict[int, list[tuple[ast.Comment, int]]] = field(default_factory=dict)
    inside: dict[int, list[ast.Comment]] = field(default_factory=dict)
    trailing: dict[int, ast.Comment] = field(default_factory=dict)
    closing: list[ast.Comment] = field(default_factory=list)

    def lead(self, index: int, comment: ast.Comment, line: int) -> None:
        self.leading.setdefault(index, []).append((comment, line))


@dataclass(frozen=True, slots=True)
class _Unit:
    """Printed lines plus the source lines they came from (for blank-line decisions)."""

    lines: list[str]
    first: int
    last: int


def _assign(header_line: int | None, children: Sequence[Node],
            comments: Sequence[ast.Comment]) -> _Slots:
    """Attach every comment to a slot; each comment lands in exactly one."""
    slots = _Slots()
    i = 0
    for c in sorted(comments, key=lambda c: c.span.start):
        while i < len(children) and children[i].span.end <= c.span.start:
            i += 1
        child = children[i] if i < len(children) else None
        if child is not None and child.span.start <= c.span.start:
            if isinstance(child, ast.Decl | ast.Block):
                slots.inside.setdefault(i, []).append(c)
            else:  # inside a one-line statement: move it just before
                slots.lead(i, c, child.span.line)
        elif i > 0 and c.span.line == children[i - 1].span.end_line \
                and i - 1 not in slots.trailing:
            slots.trailing[i - 1] = c
        elif i == 0 and c.span.line == header_line and slots.header is None:
            slots.header = c
        elif child is not None:
            slots.lead(i, c, c.span.line)
        else:
            slots.closing.append(c)
    return slots


def _comment(c: ast.Comment) -> str:
    return c.text.rstrip()


def _join(units: Sequence[_Unit]) -> list[str]:
    """Units in order, one blank line where the source had one or more."""
    out: list[str] = []
    for k, unit in enumerate(units):
        if k and unit.first > units[k - 1].last + 1:
            out.append("")
        out.extend(unit.lines)
    return out


def _body(children: Sequence[Node], slots: _Slots, depth: int) -> list[_Unit]:
    pad = INDENT * depth
    units: list[_Unit] = []
    for i, child in enumerate(children):
        units.extend(_Unit([pad + _comment(c)], line, line) for c, line in slots.leading.get(i, []))
        lines = _node_lines(child, slots.inside.get(i, []), depth)
        if i in slots.trailing:
            lines[-1] += TRAILING_GAP + _comment(slots.trailing[i])
        units.append(_Unit(lines, child.span.line, child.span.end_line))
    units.extend(_Unit([pad + _comment(c)], c.span.line, c.span.line) for c in slots.closing)
    return units


def _node_lines(node: Node, comments: Sequence[ast.Comment], depth: int) -> list[str]:
    match node:
        case ast.Decl():
            return _container(f"{node.kind} {node.name}", node.span.line, node.items, comments,
                              depth)
        case ast.Block():
            one = _one_line_block(node, comments, depth)
            return [one] if one else _container(node.key, node.span.line, node.children,
                                                 comments, depth)
    return statement_lines(node, depth)


def _one_line_block(block: ast.Block, comments: Sequence[ast.Comment], depth: int) -> str:
    """``key { setting setting }`` for a block of settings the author wrote on one line,
    when it fits the width; '' otherwise."""
    if comments or block.blocks or not block.settings or block.span.line != block.span.end_line:
        return ""
    inner = " ".join(format_statement(s) for s in block.settings)
    line = f"{INDENT * depth}{block.key} {{ {inner} }}"
    return line if len(line) <= WIDTH else ""


def statement_lines(item: Leaf, depth: int) -> list[str]:
    """A statement on one line, or, when too long, with its expression broken."""
    pad = INDENT * depth
    line = pad + format_statement(item)
    split = _expression_of(item)
    if len(line) <= WIDTH or split is None:
        return [line]
    head, expr, tail = split
    lines = expr_lines(expr, head, pad, pad + INDENT)
    lines[-1] += tail
    return lines


def _expression_of(item: Leaf) -> tuple[str, ast.Expr, str] | None:
    """A statement as the text before its expression, the expression and the text after
    (``size 25% of equity`` → ``size ``, 25%, `` of equity``); None where nothing breaks."""
    match item:
        case ast.Let(name=name, expr=e):
            return f"{_let_keyword(item)} {name} = ", e, ""
        case ast.Rule(kind=kind, side=side, expr=e):
            return f"{kind} {side} when ", e, ""
        case ast.Require(expr=e):
            return "require ", e, ""
        case ast.Size(value=v, basis=basis):
            return "size ", v, f" of {basis}" if basis else ""
        case ast.Setting(key=key, value=v):
            return f"{SPELLED.get(key, key)} ", v, ""
    return None


def _container(header: str, header_line: int, children: Sequence[Node],
               comments: Sequence[ast.Comment], depth: int) -> list[str]:
    """``header {`` / indented children / ``}``; ``header {}`` when there is nothing inside."""
    pad = INDENT * depth
    slots = _assign(header_line, children, comments)
    body = _join(_body(children, slots, depth + 1))
    if not body and slots.header is None:
        return [f"{pad}{header} {{}}"]
    head = f"{pad}{header} {{"
    if slots.header is not None:
        head += TRAILING_GAP + _comment(slots.header)
    return [head, *body, pad + "}"]


def format_module(module: ast.Module) -> str:
    """The canonical text of a parsed file, comments included, ending in a newline."""
    slots = _assign(None, [module.decl], module.comments)
    return "\n".join(_join(_body([module.decl], slots, 0))) + "\n"


# ---------------------------------------------------------------- source and files


@dataclass(frozen=True, slots=True)
class FormatResult:
    """The formatted text (``None`` when the input does not parse) and whether it changed."""

    text: str | None
    diagnostics: tuple[Diagnostic, ...]
    changed: bool


@dataclass(frozen=True, slots=True)
class FileFormat:
    """The outcome for one file: rewritten (or would be, under ``--check``) or diagnostics."""

    path: str
    changed: bool
    diagnostics: tuple[Diagnostic, ...] = ()


def format_source(text: str, path: str) -> FormatResult:
    """Parse ``text`` and format it; on syntax errors return their diagnostics and no text."""
    result = parse_source(SourceFile.of(path, text))
    if result.module is None:
        return FormatResult(None, result.diagnostics, False)
    return _finish(result.module, text)


def _finish(module: ast.Module, original: str) -> FormatResult:
    formatted = format_module(module)
    problem = _verify(module, formatted)
    if problem is not None:
        return FormatResult(None, (problem,), False)
    return FormatResult(formatted, (), formatted != original)


def _verify(module: ast.Module, formatted: str) -> Diagnostic | None:
    """An internal error when the formatted text means something else or lost a comment."""
    again = parse_text(formatted, module.path).module
    if again is not None and again == module and \
            [_comment(c) for c in again.comments] == [_comment(c) for c in module.comments]:
        return None
    return diag("I001", "the formatter would change this file's meaning or comments; "
                "left unchanged", module.path, help="please report this as a bug in `peak fmt`")


def format_paths(paths: list[str], check: bool) -> list[FileFormat]:
    """Format every ``.peak`` file under ``paths``; rewrite changed ones unless ``check``.

    Raises ``project.UsageError`` for a missing path or when no spec file is found.
    """
    return [_format_file(path, check) for path in discover(paths)]


def _format_file(path: Path, check: bool) -> FileFormat:
    shown = display_path(path)
    data = path.read_bytes()
    parsed = parse_bytes(shown, data)
    if parsed.module is None:
        return FileFormat(shown, False, parsed.diagnostics)
    result = _finish(parsed.module, data.decode("utf-8"))
    if result.text is None:
        return FileFormat(shown, False, result.diagnostics)
    if result.changed and not check:
        atomic.write_atomic(path, result.text.encode("utf-8"))
    return FileFormat(shown, result.changed)


def _let_keyword(item: ast.Let) -> str:
    return "state" if item.state else "let"
