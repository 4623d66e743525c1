"""The peak AST: frozen, slotted dataclasses with spans.

Spans are excluded from equality so that ``parse(fmt(x)) == parse(x)`` compares
structure, not layout. lark's ``Tree`` never appears here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .source import NO_SPAN, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    is_int: bool
    text: str = field(compare=False)
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Percent:
    """``2.5%``; ``value`` is the fraction (0.025)."""

    value: float
    text: str = field(compare=False)
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Bps:
    """``10bps``; ``value`` is the fraction (0.001)."""

    value: float
    text: str = field(compare=False)
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Duration:
    seconds: int
    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Money:
    amount: float
    currency: str
    text: str = field(compare=False)
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Market:
    base: str
    quote: str
    settle: str | None = None
    span: Span = _span()

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}" + (f":{self.settle}" if self.settle else "")


@dataclass(frozen=True, slots=True)
class String:
    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span = _span()
    func_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Lag:
    """``target[lag]``: the value ``lag`` bars ago."""

    target: Expr
    lag: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic (``+ - * /``), comparison (``< <= > >= == !=``) or logic (``and or``)."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()
    op_span: Span = _span()


@dataclass(frozen=True, slots=True)
class IfElse:
    cond: Expr
    then: Expr
    orelse: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class List:
    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class At:
    """``target@4h``, ``target@ETH/USDT``, ``target@ETH/USDT@4h``: ``target`` computed on the
    bars of another timeframe or market (a *frame*, ``lang.frames``) and read at each bar of
    the strategy's own from the frame's last closed bar. ``(x@M)@T`` is parsed as one frame."""

    target: Expr
    market: Market | None
    timeframe: Duration | None
    span: Span = _span()


Literal = Number | Percent | Bps | Duration | Money | Market | String | Bool
Expr = Literal | Name | Call | Lag | Neg | Not | Binary | IfElse | List | At

ARITH_OPS = ("+", "-", "*", "/")
COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")
LOGIC_OPS = ("and", "or")

# ---------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str
    default: Expr
    low: Expr
    high: Expr
    step: Expr | None
    span: Span = _span()
    name_span: Span = _span()
    type_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Require:
    expr: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Let:
    """``let NAME = EXPR``, or with ``state`` a series that reads its own past."""

    name: str
    expr: Expr
    span: Span = _span()
    name_span: Span = _span()
    state: bool = False


# the four rule slots (``Rule.slot``), in the order every stage keeps them
RULE_SLOTS = ("entry_long", "exit_long", "entry_short", "exit_short")


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # "entry" | "exit"
    side: str  # "long" | "short"
    expr: Expr
    span: Span = _span()

    @property
    def slot(self) -> str:
        return f"{self.kind}_{self.side}"


@dataclass(frozen=True, slots=True)
class Size:
    value: Expr
    basis: str | None
    span: Span = _span()
    basis_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Override:
    name: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Component:
    strategy: str
    weight: Expr
    overrides: tuple[Override, ...]
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class RiskRef:
    name: str
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    value: Expr
    span: Span = _span()
    key_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Block:
    key: str
    settings: tuple[Setting, ...]
    span: Span = _span()
    key_span: Span = _span()
    blocks: tuple[Block, ...] = ()  # nested blocks (the sinks of `alerts`), in source order

    @property
    def children(self) -> tuple[Setting | Block, ...]:
        """Settings and nested blocks in source order (what the formatter prints)."""
        return tuple(sorted((*self.settings, *self.blocks), key=lambda n: n.span.start))


Item = Param | Require | Let | Rule | Size | Component | RiskRef | Setting | Block


@dataclass(frozen=True, slots=True)
class Decl:
    kind: str  # "strategy" | "portfolio" | "risk" | "promotion"
    name: str
    items: tuple[Item, ...]
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed file: its declaration and its comments (kept for ``peak fmt``)."""

    path: str
    decl: Decl
    comments: tuple[Comment, ...] = field(default=(), compare=False)


def children(expr: Expr) -> tuple[Expr, ...]:
    """Direct sub-expressions, in source order."""
    match expr:
        case Call(args=args) | List(items=args):
            return args
        case Lag(target=t, lag=n):
            return (t, n)
        case Neg(operand=o) | Not(operand=o):
            return (o,)
        case Binary(left=a, right=b):
            return (a, b)
        case IfElse(cond=c, then=t, orelse=e):
            return (c, t, e)
        case At(target=t):
            return (t,)
    return ()


def item_exprs(item: Item) -> list[Expr]:
    """The expressions a statement holds: a let's, a rule's, a require's, a size's, a
    setting's value, a block's settings' values."""
    if isinstance(item, Let | Require | Rule):
        return [item.expr]
    if isinstance(item, Size):
        return [item.value]
    if isinstance(item, Setting):
        return [item.value]
    if isinstance(item, Block):
        return [s.value for s in item.settings]
    return []


def walk(expr: Expr) -> list[Expr]:
    """All nodes of an expression, pre-order, iteratively (no recursion limit)."""
    out: list[Expr] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(children(node)))
    return out
