"""Rules that read the position: ``exit long when bars_in_trade >= 10 or unrealized < -3%``.

``position`` (+1 long, -1 short, 0 flat), ``bars_in_trade`` (bars since the entry's fill
bar), ``entry_price`` (the entry's fill price) and ``unrealized`` (the return on it at the
bar's close) are not market data: they depend on what the strategy did, so they exist only
inside the bar loop, at the signal bar, and only ``entry`` and ``exit`` rules may read them
(N019) — a ``let``, a ``state``, a stop or size expression and a ``require`` are computed
before any trade. Inside a rule they meet only elementwise operations, as a ``state``'s past
does (T019): a window, a recursive indicator, a cross or a lag over them would need their
whole history, which is not a series the graph has. The compiler turns such a rule into a
small body over the market-data parts (``compile/position_lower.py``); the engine's decide
stage evaluates it at each fill point from the position it holds.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import ast
from .builtins import BUILTINS, POSITION_SOURCES

Problem = tuple[str, ast.Expr, str, str]


def reads_position(expr: ast.Expr) -> bool:
    """Whether ``expr`` names one of the position sources."""
    return any(isinstance(e, ast.Name) and e.id in POSITION_SOURCES for e in ast.walk(expr))


def outside_rules(item: ast.Item) -> Iterator[Problem]:
    """N019 for every position source in a statement that is not a rule."""
    for expr in ast.item_exprs(item):
        for e in ast.walk(expr):
            if isinstance(e, ast.Name) and e.id in POSITION_SOURCES:
                yield ("N019", e, f"`{e.id}` reads the position: only entry and exit rules "
                       "may", "use it in the rule itself, e.g. `exit long when "
                       f"{e.id} …`; lets, states, stops and requires are computed before "
                       "any trade")


def inside_rule(expr: ast.Expr, elementwise: bool = True) -> Iterator[Problem]:
    """T019 for a position source under a window, a recursive built-in, a cross or a lag."""
    if isinstance(expr, ast.Name) and expr.id in POSITION_SOURCES and not elementwise:
        yield ("T019", expr, f"`{expr.id}` is known only at the bar being decided: it cannot "
               "be lagged or fed to a window or indicator", "compare it at this bar "
               "(`bars_in_trade >= 10`, `close < entry_price - 2 * atr(14)`)")
    elif isinstance(expr, ast.Lag):
        yield from inside_rule(expr.target, False)
    elif isinstance(expr, ast.Call):
        builtin = BUILTINS.get(expr.func)
        inner = elementwise and builtin is not None and builtin.elementwise
        for arg in expr.args:
            yield from inside_rule(arg, inner)
    else:
        for child in ast.children(expr):
            yield from inside_rule(child, elementwise)
