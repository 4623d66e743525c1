"""Markdown for hover and completion, written from the registries the checker uses.

A built-in's signature and doc come from ``lang/builtins.py``, a setting's from
``lang/schema.py``, a metric's from ``peakdsl.metrics``: the editor says what `peak check`
enforces, and a new entry in a table is described without touching this module.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import metrics as catalogue
from ..lang import ast
from ..lang.builtins import (
    BUILTINS,
    DERIVED_SOURCES,
    JOIN,
    LOOKAHEAD,
    POSITION_SOURCES,
    SAME,
    SOURCES,
    Builtin,
)
from ..lang.checker import bounds_text  # the checker's own wording
from ..lang.fmt import SPELLED
from ..lang.frames import derivable
from ..lang.project import display_path
from ..lang.schema import METRICS, NESTED_BLOCKS, TIMEFRAMES, SettingSpec, Value
from ..lang.types import PARAM_TYPES, Ty, Unit
from .locate import setting_table
from .specs import SpecEntry


def code(text: str) -> str:
    """A fenced peak snippet."""
    return f"```peak\n{text}\n```"


def result_text(builtin: Builtin) -> str:
    """What a built-in returns, in the words of the unit table."""
    values = [name for name, _ in builtin.args if name not in builtin.conditions]
    first = values[0] if values else "x"  # `valuewhen(cond, x, n)` has the unit of x
    if builtin.result == SAME:
        return f"the unit of `{first}`"
    if builtin.result == JOIN:
        return "the common unit of its arguments"
    if isinstance(builtin.result, Unit):
        return Ty(builtin.result, True).describe()
    return str(builtin.result)  # a rule this module does not know yet: its name


def builtin_md(builtin: Builtin) -> str:
    parts = [code(builtin.signature), builtin.doc, f"result: {result_text(builtin)}"]
    if builtin.implicit:
        parts.append("reads " + ", ".join(f"`{c}`" for c in builtin.implicit) + " itself")
    if builtin.mode is not None:
        parts.append("mode (optional last argument): " + builtin.mode.describe())
    if builtin.example:
        parts.append(f"example: `{builtin.example}`")
    return "\n\n".join(parts)


def lookahead_md(name: str) -> str:
    return f"`{name}` is not available: it {LOOKAHEAD[name]} (look-ahead, `L003`)"


POSITION_WHAT = {
    "position": "the side held: +1 long, -1 short, 0 flat",
    "bars_in_trade": "bars since the entry's fill bar (NaN when flat)",
    "entry_price": "the entry's fill price (NaN when flat)",
    "unrealized": "the return on the entry at this bar's close (NaN when flat)",
}


def source_md(name: str) -> str:
    if name in POSITION_SOURCES:
        ty = Ty(POSITION_SOURCES[name], True).describe()
        return f"`{name}` — {ty}: {POSITION_WHAT[name]}; entry and exit rules only"
    ty = Ty(SOURCES[name], True).describe()
    columns = DERIVED_SOURCES.get(name)
    what = (f"the mean of {', '.join(columns[:-1])} and {columns[-1]}" if columns
            else f"the bar's {name}")
    return f"source `{name}` — {ty}: {what}"


def mode_md(builtin: Builtin, word: str) -> str:
    assert builtin.mode is not None
    return (f"mode `{word}` of `{builtin.name}`\n\nchoices: {builtin.mode.describe()}"
            f"\n\n{builtin.doc}")


VALUE_WORDS: dict[Value, str] = {
    Value.STRING: "a string", Value.MARKET: "a market `BASE/QUOTE`",
    Value.TIMEFRAME: "a timeframe", Value.PERCENT: "a percentage", Value.BPS: "basis points",
    Value.INT: "a whole number", Value.NUMBER: "a number", Value.MONEY: "an amount `1000 EUR`",
    Value.DURATION: "a duration", Value.CHOICE: "one of", Value.CHOICES: "a list of",
    Value.BOOL: "`true` or `false`", Value.ENV_NAME: "the name of an environment variable",
}


def value_text(spec: SettingSpec) -> str:
    """``a percentage, above 0% and at most 100%, or a percent param``."""
    words = VALUE_WORDS.get(spec.value, spec.value.value)
    if spec.choices:
        words += " " + ", ".join(f"`{c}`" for c in spec.choices)
    bounds = bounds_text(spec) if spec.value in (Value.PERCENT, Value.BPS, Value.INT,
                                                 Value.NUMBER, Value.MONEY,
                                                 Value.DURATION) else ""
    tail = f", {bounds}" if bounds else ""
    return words + tail + (f", or a {spec.value.value} param" if spec.param_ok else "")


def setting_md(spec: SettingSpec) -> str:
    parts = [code(spec.example) if spec.example else f"`{SPELLED.get(spec.key, spec.key)}`",
             spec.doc, "value: " + value_text(spec)]
    if spec.required:
        parts.append("required")
    return "\n\n".join(parts)


def block_md(key: str, table: Mapping[str, SettingSpec], nested: Mapping[str, object]) -> str:
    rows = [f"- `{k}` — {s.doc}" for k, s in table.items()]
    rows += [f"- `{k} {{ … }}`" for k in nested]
    return f"block `{key} {{ … }}`\n\n" + "\n".join(rows)


def choice_md(word: str, spec: SettingSpec) -> str:
    return f"`{word}`: a value of `{spec.key}`\n\n{spec.doc}\n\nchoices: " + \
        ", ".join(f"`{c}`" for c in spec.choices)


def metric_md(name: str) -> str:
    info = catalogue.CATALOGUE[name]
    return (f"metric `{name}` — {info.label}\n\n{info.doc}\n\nrange: {info.range_text()}; "
            f"computed by: {', '.join(info.runs)}")


# tests/lsp/test_describe.py requires an entry for every size basis and param type
BASIS_DOCS = {"equity": "the account's equity when the order is placed: `size 25% of equity`"}

PARAM_TYPE_DOCS = {"int": "whole numbers: `14`", "float": "numbers: `2`, `1.5`",
                   "percent": "percentages: `3%`", "bps": "basis points: `10bps`"}


def basis_md(word: str) -> str:
    return f"`{word}`: {BASIS_DOCS.get(word, 'the basis of a fractional size')}"


def param_type_md(word: str) -> str:
    unit = PARAM_TYPES[word]
    return f"param type `{word}`: {PARAM_TYPE_DOCS.get(word, Ty(unit, False).describe())}"


def function_md(name: str) -> str | None:
    """A call's function name: a built-in, or a look-ahead construct peak refuses."""
    if name in BUILTINS:
        return builtin_md(BUILTINS[name])
    return lookahead_md(name) if name in LOOKAHEAD else None


def name_md(word: str, kind: str, call: ast.Call | None) -> str | None:
    """A name that is not a param or let: a source, a metric (in a promotion), the mode of
    the call it is an argument of, or a built-in named without calling it."""
    if word in SOURCES or word in POSITION_SOURCES:
        return source_md(word)
    if kind == "promotion" and word in METRICS:
        return metric_md(word)
    builtin = BUILTINS.get(call.func) if call is not None else None
    if builtin is not None and builtin.mode is not None and word in builtin.mode.choices:
        return mode_md(builtin, word)
    return function_md(word)


def block_for(kind: str, blocks: tuple[str, ...], key: str) -> str | None:
    """A block's settings (and, for ``alerts``, its sinks); None for an unknown block."""
    table = setting_table(kind, (*blocks, key))
    nested = NESTED_BLOCKS.get(key, {}) if not blocks else {}
    return block_md(key, table, nested) if table or nested else None


def spec_md(entry: SpecEntry) -> str:
    """Another spec, as a portfolio's reference to it shows it."""
    parts = [f"{entry.kind or 'spec'} `{entry.name}`"]
    if entry.description:
        parts.append(entry.description)
    parts.append(f"`{display_path(entry.path)}`")
    return "\n\n".join(parts)


FRAME_RULE = ("read at each bar of the strategy from the frame's last *closed* bar: the one "
              "whose close time is at or before the bar's close, so a bar is never seen while "
              "it forms")


def timeframe_frame_md(tf: str, own: str) -> str:
    """Hover of the ``4h`` in ``x@4h``: what a frame is, and what it means in this spec."""
    parts = [f"frame `@{tf}` — the expression before `@` computed on {tf} bars (its sources, "
             f"windows, lags and lets count {tf} bars), {FRAME_RULE}"]
    if tf not in TIMEFRAMES:
        parts.append(f"`{tf}` is not a timeframe (`T020`): " + " ".join(TIMEFRAMES))
    elif own in TIMEFRAMES and tf != own:
        r = TIMEFRAMES[tf] // TIMEFRAMES[own]
        parts.append(f"one {tf} bar is {r} bars of this strategy's {own}: a window of L {tf} "
                     f"bars needs L×{r} + {2 * r - 2} bars of warm-up" if derivable(own, tf)
                     else f"{tf} bars cannot be built from this strategy's {own} bars (`T020`)")
    return "\n\n".join(parts)


def market_frame_md(market: str, own: str) -> str:
    """Hover of the ``ETH/USDT`` in ``x@ETH/USDT``."""
    if market == own:
        return f"`@{market}` is this strategy's own market: `x@{market}` is `x`"
    return (f"frame `@{market}` — the expression before `@` computed on {market}'s candles "
            f"at the strategy's timeframe, {FRAME_RULE}\n\na run reads them from the "
            f"project's data cache (`peak data import` or `peak data fetch` put them there); "
            f"none there is `D023`")
