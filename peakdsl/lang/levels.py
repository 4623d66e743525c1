"""Series-driven exits and sizes: ``stop_loss 2 * atr(close, 14)``, ``size 20% / vol of equity``.

``stop_loss``, ``take_profit`` and ``trailing_stop`` take a percentage of the entry (``3%``,
or a percent param) — or, since the porting work, an *expression*: a price distance
(``2 * atr(close, 14)``: the stop sits that far below a long entry) or a percentage series
(``2 * stdev(roc(close, 1), 20)``: that fraction of the entry). ``size … of equity`` takes a
percentage or a param — or an expression giving the fraction of equity to commit (volatility
targeting written out: ``size min(20% / vol, 100%) of equity``).

Every such expression is read at the *signal bar*, the bar whose rule opened the trade — a
value known before the order goes out, so it is causal like every rule — and held for the
trade (turtle's 2N stop, Pine's ``strategy.exit(stop=…)`` computed at entry). A value that is
not a positive number there (NaN in a warm-up, a negative distance) takes no entry: an order
without the stop it was written with would not be the strategy that was checked.

This module says which settings are expressions (``is_level``), checks their units after the
lets are known (``check_levels``) and names the engine's slot of each (``level_slot``): the
compiler lowers each to a graph node under that name (``Graph.levels``), the engine reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from . import ast
from .source import Span
from .types import Ty, Unit

STOP_KEYS = ("stop_loss", "take_profit", "trailing_stop")
SIZE_KEY = "size"
# the engine's level slots, in the order its rows are read: a stop as a fraction of the entry
# or as a price distance, and the fraction of equity a series size commits
LEVEL_SLOTS = ("stop_loss", "stop_loss_distance", "take_profit", "take_profit_distance",
               "trailing_stop", "trailing_stop_distance", "size")
# what each slot's value measures, as reports and `peak diff` say it
LEVEL_BASIS = {"stop_loss": "of the entry", "stop_loss_distance": "price distance",
               "take_profit": "of the entry", "take_profit_distance": "price distance",
               "trailing_stop": "of the best price", "trailing_stop_distance": "price distance",
               "size": "of equity"}
_LITERALS = (ast.Number, ast.Percent, ast.Bps, ast.Money, ast.Duration, ast.Market, ast.String,
             ast.Bool, ast.List)
_WHAT = {
    "stop_loss": "how far against the entry the stop sits",
    "take_profit": "how far in favour the target sits",
    "trailing_stop": "how far from the best price since entry the stop trails",
}


def is_level(value: ast.Expr, params: Mapping[str, object]) -> bool:
    """Whether a stop or size value is an expression (checked here) rather than a literal
    or a param (checked as a setting value, as before)."""
    if isinstance(value, _LITERALS):
        return False
    if isinstance(value, ast.Neg) and isinstance(value.operand, _LITERALS):
        return False
    return not (isinstance(value, ast.Name) and value.id in params)


def level_slot(key: str, unit: Unit) -> str:
    """The engine slot of a checked level: ``stop_loss`` with a price unit is a distance."""
    if key in STOP_KEYS and unit is Unit.PRICE:
        return f"{key}_distance"
    return key


def stop_unit_problem(key: str, ty: Ty) -> tuple[str, str, str] | None:
    """(code, message, help) when a stop expression's unit is not a price or a percentage."""
    if ty.unit in (Unit.PRICE, Unit.PERCENT):
        return None
    code = "T001" if ty.unit is Unit.BOOL else "T002"
    hint = ("a ratio of prices is a plain number: keep the price (`2 * atr(close, 14)`, a "
            "distance) or write a percentage (`3%`, `2 * stdev(roc(close, 1), 20)`)"
            if ty.unit in (Unit.NUMBER, Unit.INT) else
            "e.g. `2 * atr(close, 14)` (a price distance) or `3%` (of the entry)")
    return (code, f"`{key}` is {_WHAT[key]}: a price distance or a percentage of the entry, "
            f"found {ty.describe()}", hint)


def size_unit_problem(ty: Ty) -> tuple[str, str, str] | None:
    """(code, message, help) when a size expression is not a fraction of equity."""
    if ty.unit in (Unit.PERCENT, Unit.NUMBER, Unit.INT):
        return None
    code = "T001" if ty.unit is Unit.BOOL else "T002"
    return (code, f"`size … of equity` takes the fraction of equity to commit, found "
            f"{ty.describe()}", "e.g. `size min(20% / vol, 100%) of equity` with `vol` a "
            "percentage (0.5 is half the equity)")


Report = Callable[[str, str, Span, str], None]


def levels_of(settings: Mapping[str, ast.Setting], sizes: Sequence[ast.Item],
              params: Mapping[str, object]) -> Iterator[tuple[str, ast.Expr]]:
    """The (setting key, expression) of every level a strategy declares (``sizes``: its
    ``size`` statements; a second one is N012 already)."""
    size = sizes[0] if sizes else None
    assert size is None or isinstance(size, ast.Size)
    for key in STOP_KEYS:
        setting = settings.get(key)
        if setting is not None and is_level(setting.value, params):
            yield key, setting.value
    if size is not None and not isinstance(size.value, ast.Money) and \
            is_level(size.value, params):
        yield SIZE_KEY, size.value


def check_level(key: str, ty: Ty | None, span: Span, report: Report) -> None:
    """The unit of one level expression (``ty`` None: its own errors were reported)."""
    if ty is None:
        return
    problem = size_unit_problem(ty) if key == SIZE_KEY else stop_unit_problem(key, ty)
    if problem is not None:
        code, message, help = problem
        report(code, message, span, help)
