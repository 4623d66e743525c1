"""Completion lists: what may be typed at the cursor, drawn from the registries.

The context comes from ``cursor.cursor_at`` (the text need not parse); the items from the
tables the checker enforces: statements and settings from ``lang/schema.py`` (a setting
already given in the block is left out: a second one is N012), built-ins with their
signature as a snippet from ``lang/builtins.py``, the document's params and lets, metrics in
a promotion, and the project's other specs after ``component`` and ``risk``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..lang import ast
from ..lang.builtins import BUILTINS, POSITION_SOURCES, SOURCES, Builtin
from ..lang.fmt import SPELLED
from ..lang.frames import derivable
from ..lang.project import REFERENCE_KINDS
from ..lang.schema import (
    BLOCKS,
    METRICS,
    NESTED_BLOCKS,
    SIZE_BASES,
    STATEMENTS,
    TIMEFRAMES,
    SettingSpec,
    Value,
)
from ..lang.types import PARAM_TYPES, Unit
from . import describe
from .analysis import Document, ProjectView
from .cursor import Cursor, cursor_at
from .locate import FRAME_REF, setting_table
from .specs import DECL_KINDS, market_of, timeframe_of


@dataclass(frozen=True, slots=True)
class Completion:
    """One item; ``insert`` is a snippet (``$1``, ``${1:x}``, ``$0``) or '' for the label."""

    label: str
    kind: str  # function variable constant keyword property module reference value type
    detail: str = ""
    doc: str = ""
    insert: str = ""


def complete(doc: Document, offset: int, project: ProjectView) -> list[Completion]:
    """The items that fit at ``offset``, most specific first."""
    cursor = cursor_at(doc.text, offset)
    return LISTS[cursor.where](doc, cursor, project, offset)


Lister = Callable[[Document, Cursor, ProjectView, int], list[Completion]]


def _none(doc: Document, cursor: Cursor, project: ProjectView, offset: int) -> list[Completion]:
    return []


def _top(doc: Document, cursor: Cursor, project: ProjectView, offset: int) -> list[Completion]:
    stem = doc.path.stem
    return [Completion(kind, "keyword", f"{kind} {stem} {{ … }}",
                       insert=f"{kind} ${{1:{stem}}} {{\n\t$0\n}}") for kind in DECL_KINDS]


def _decl_name(doc: Document, cursor: Cursor, project: ProjectView, offset: int
               ) -> list[Completion]:
    return [Completion(doc.path.stem, "value", "the file's name: a declaration's name "
                       "equals its file stem")]


# the statements each kind of declaration allows, as snippets: (label, detail, snippet)
STATEMENT_SNIPPETS: dict[type, tuple[tuple[str, str, str], ...]] = {
    ast.Param: (("param", "param NAME: TYPE = DEFAULT in LOW..HIGH [step STEP]",
                 "param ${1:name}: ${2|" + ",".join(PARAM_TYPES) + "|} = ${3:default} in "
                 "${4:low}..${5:high}"),),
    ast.Require: (("require", "require EXPR", "require $0"),),
    ast.Let: (("let", "let NAME = EXPR", "let ${1:name} = $0"),
              ("state", "state NAME = EXPR reading NAME[1], its previous value",
               "state ${1:name} = nz(${1:name}[1], ${2:0}) + $0")),
    ast.Rule: (("entry", "entry long|short when EXPR", "entry ${1|long,short|} when $0"),
               ("exit", "exit long|short when EXPR", "exit ${1|long,short|} when $0")),
    ast.Size: (("size", "size 25% of equity | 1000 EUR | 0.01 BTC", "size ${1:25%} of equity"),),
    ast.Component: (("component", "component NAME weight W [with { param = value }]",
                     "component ${1:name} weight ${2:25%}"),),
    ast.RiskRef: (("risk", "risk NAME", "risk ${1:name}"),),
}


def _statement(doc: Document, cursor: Cursor, project: ProjectView, offset: int
               ) -> list[Completion]:
    """Statements of the kind (at the top of a declaration), its settings and blocks."""
    items = [Completion(label, "keyword", detail, insert=snippet)
             for kind in (STATEMENTS.get(cursor.kind, ()) if not cursor.blocks else ())
             for label, detail, snippet in STATEMENT_SNIPPETS.get(kind, ())]
    table = setting_table(cursor.kind, cursor.blocks)
    items += [_setting(spec) for key, spec in table.items() if key not in cursor.given
              and SPELLED.get(key, key).split()[0] not in cursor.given]
    return items + [_block(key, cursor) for key in _blocks_at(cursor) if key not in cursor.given]


def _setting(spec: SettingSpec) -> Completion:
    label = SPELLED.get(spec.key, spec.key)
    value = spec.example[len(label):].strip() if spec.example.startswith(label) else ""
    insert = f"{label} ${{1:{value}}}" if value else f"{label} $0"
    return Completion(label, "property", describe.value_text(spec), describe.setting_md(spec),
                      insert)


def _blocks_at(cursor: Cursor) -> list[str]:
    if not cursor.blocks:
        return list(BLOCKS.get(cursor.kind, {}))
    return list(NESTED_BLOCKS.get(cursor.blocks[-1], {})) if len(cursor.blocks) == 1 else []


def _block(key: str, cursor: Cursor) -> Completion:
    return Completion(key, "module", f"{key} {{ … }}",
                      describe.block_for(cursor.kind, cursor.blocks, key) or "",
                      f"{key} {{\n\t$0\n}}")


def _expression(doc: Document, cursor: Cursor, project: ProjectView, offset: int
                ) -> list[Completion]:
    """A mode in a built-in's mode slot; metrics in a promotion; else what an expression
    may name: the document's params and lets declared above, sources, built-ins."""
    builtin = BUILTINS.get(cursor.call)
    if builtin is not None and builtin.mode is not None and cursor.arg == len(builtin.args):
        return [Completion(word, "value", f"mode of {builtin.name}",
                           describe.mode_md(builtin, word)) for word in builtin.mode.choices]
    if cursor.kind == "promotion":
        return [Completion(name, "constant", f"metric: {m.doc}", describe.metric_md(name))
                for name, m in METRICS.items()]
    return [*_symbols(doc, offset), *_sources(), *map(_builtin, BUILTINS.values()),
            *(Completion(w, "keyword") for w in ("not", "if", "true", "false"))]


def _symbols(doc: Document, offset: int) -> list[Completion]:
    """Every param, and the lets declared on a line above the cursor (a let sees only the
    lets above it, N016, and never itself)."""
    return [Completion(s.name, "variable", s.type or s.kind, describe.code(s.text))
            for s in doc.symbols.values() if s.kind == "param"
            or (s.end <= offset and "\n" in doc.text[s.end:offset])]


def _sources() -> list[Completion]:
    return [Completion(name, "constant", "source", describe.source_md(name))
            for name in [*SOURCES, *POSITION_SOURCES]]


def _builtin(builtin: Builtin) -> Completion:
    args = ", ".join(f"${{{i}:{name}}}" for i, (name, _) in enumerate(builtin.args, 1))
    return Completion(builtin.name, "function", builtin.signature,
                      describe.builtin_md(builtin), f"{builtin.name}({args})")


VALUE_UNITS = {Value.PERCENT: Unit.PERCENT, Value.BPS: Unit.BPS}


def _value(doc: Document, cursor: Cursor, project: ProjectView, offset: int
           ) -> list[Completion]:
    """A setting's choices (or timeframes, booleans), params of its type, its example."""
    spec = setting_table(cursor.kind, cursor.blocks).get(cursor.key)
    if spec is None:
        return []
    words = {Value.TIMEFRAME: tuple(TIMEFRAMES), Value.BOOL: ("true", "false")}.get(
        spec.value, spec.choices)
    items = [Completion(w, "value", f"{spec.key} {w}") for w in words]
    unit = VALUE_UNITS.get(spec.value)
    items += [Completion(s.name, "variable", s.text) for s in doc.symbols.values()
              if spec.param_ok and s.kind == "param" and PARAM_TYPES.get(s.type) is unit]
    label = SPELLED.get(spec.key, spec.key)
    example = spec.example[len(label):].strip() if spec.example.startswith(label) else ""
    if example and not words:
        items.append(Completion(example, "value", "example", describe.setting_md(spec)))
    return items


def _frame(doc: Document, cursor: Cursor, project: ProjectView, offset: int
           ) -> list[Completion]:
    """After ``@``: the timeframes this spec's candles can give (``lang.frames.derivable``:
    coarser, a whole number of its bars, on its grid), then the markets the project's
    strategies trade other than this one's (none after ``@BASE/QUOTE@``)."""
    own = timeframe_of(doc.text)
    items = [Completion(tf, "value", _bars(tf, own), describe.timeframe_frame_md(tf, own))
             for tf in TIMEFRAMES if own not in TIMEFRAMES or derivable(own, tf)]
    if cursor.key == "market":
        return items
    mine = market_of(doc.text)
    written = {m.group("market") for m in FRAME_REF.finditer(doc.text) if m.group("market")}
    traded = {e.market for e in project.specs.values() if e.market}
    markets = sorted((written | traded) - {mine, ""})
    return items + [Completion(mk, "constant", "another market",
                               describe.market_frame_md(mk, mine)) for mk in markets]


def _bars(tf: str, own: str) -> str:
    if own not in TIMEFRAMES:
        return "timeframe"
    return f"timeframe: {TIMEFRAMES[tf] // TIMEFRAMES[own]} bars of {own}"


def _words(words: tuple[str, ...], kind: str, detail: str) -> Lister:
    def lister(doc: Document, cursor: Cursor, project: ProjectView, offset: int
               ) -> list[Completion]:
        return [Completion(w, kind, detail) for w in words]
    return lister


def _reference(doc: Document, cursor: Cursor, project: ProjectView, offset: int
               ) -> list[Completion]:
    """Specs of the kinds the statement takes: components name strategies or portfolios."""
    kinds = REFERENCE_KINDS.get(cursor.key, ())
    own = doc.module.decl.name if doc.module else doc.path.stem
    return [Completion(e.name, "reference", f"{e.kind}: {e.description}".rstrip(": "),
                       describe.spec_md(e)) for e in sorted(project.specs.values(),
                                                             key=lambda e: e.name)
            if e.kind in kinds and e.name != own]


def _override(doc: Document, cursor: Cursor, project: ProjectView, offset: int
              ) -> list[Completion]:
    target = project.document(cursor.key)
    if target is None:
        return []
    return [Completion(s.name, "variable", s.text, describe.code(s.text), f"{s.name} = $0")
            for s in target.symbols.values() if s.kind == "param"]


def _after(doc: Document, cursor: Cursor, project: ProjectView, offset: int
           ) -> list[Completion]:
    """After an operand: the word operators, or a new statement (layout is free)."""
    ops = [Completion(w, "keyword") for w in ("and", "or", "then", "else")]
    return ops + _statement(doc, cursor, project, offset)


LISTS: dict[str, Lister] = {
    "none": _none, "top": _top, "decl_name": _decl_name, "statement": _statement,
    "expression": _expression, "value": _value, "reference": _reference,
    "override": _override, "after": _after, "frame": _frame,
    "param_type": _words(tuple(PARAM_TYPES), "type", "param type"),
    "side": _words(("long", "short"), "keyword", "side"),
    "when": _words(("when",), "keyword", "the rule's condition follows"),
    "basis": _words(SIZE_BASES, "keyword", "size basis"),
}
