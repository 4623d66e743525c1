"""The TextMate grammar in ``editors/``, generated from the registries the checker uses.

Highlighting that lists built-ins by hand goes stale the day one is added; this module
writes every word from its source of truth: keywords from the lark grammar's literals,
built-ins and look-ahead names from ``lang/builtins.py``, settings, blocks, choices and
metrics from ``lang/schema.py``. ``editors/generate.py`` writes the JSON, and
tests/lsp/test_textmate.py fails when the committed files differ from ``grammar()`` or when
a registry word would not be highlighted as what it is.

Patterns are tried in order at each position (TextMate picks the earliest match, the first
pattern on a tie), so the narrow, context-bound ones (a declaration's header, a call, a
block's opening brace) come before the plain word lists.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..lang.builtins import BUILTINS, LOOKAHEAD, MODE_WORDS, POSITION_SOURCES, SOURCES
from ..lang.fmt import SPELLED
from ..lang.parser import grammar_text
from ..lang.schema import (
    BLOCKS,
    CALENDARS,
    METRICS,
    NESTED_BLOCKS,
    SETTINGS,
    SEVERITIES,
    SIZE_BASES,
    STRESS_SCENARIOS,
)
from ..lang.types import PARAM_TYPES
from .locate import setting_table

NAME = r"[a-z_][a-z0-9_]*"
CURRENCY = r"[A-Z][A-Z0-9]*"
LOGIC = ("and", "or", "not")
CONTROL = ("if", "then", "else", "when")
BOOLEANS = ("true", "false")

# scopes, by what a word is (tests/lsp/test_textmate.py checks each registry against these)
SCOPES = {
    "declaration": "storage.type.declaration.peak", "decl_name": "entity.name.type.peak",
    "reference": "entity.name.type.reference.peak", "keyword": "keyword.other.peak",
    "control": "keyword.control.peak", "logic": "keyword.operator.logical.peak",
    "boolean": "constant.language.boolean.peak", "param": "variable.parameter.peak",
    "param_type": "storage.type.peak", "let": "variable.other.definition.peak",
    "block": "entity.name.section.peak", "builtin": "support.function.builtin.peak",
    "lookahead": "invalid.illegal.lookahead.peak", "setting": "support.type.property-name.peak",
    "metric": "support.constant.metric.peak", "source": "variable.language.source.peak",
    "choice": "constant.language.peak", "market": "constant.other.market.peak",
    "currency": "constant.other.currency.peak", "percent": "constant.numeric.percent.peak",
    "bps": "constant.numeric.bps.peak", "duration": "constant.numeric.duration.peak",
    "number": "constant.numeric.peak", "operator": "keyword.operator.peak",
    "comment": "comment.line.number-sign.peak", "string": "string.quoted.double.peak",
    "frame": "keyword.operator.frame.peak",
}


def grammar_keywords() -> list[str]:
    """Every word the lark grammar spells out (``"param"``, ``"when"``, ``"drift"`` …)."""
    return sorted(set(re.findall(r'"([a-z_]+)"', grammar_text())))


def setting_keys() -> list[str]:
    """Every setting key a declaration, a block or a sink takes."""
    keys: set[str] = set()
    for kind, blocks in BLOCKS.items():
        keys |= set(SETTINGS[kind])
        for block in blocks:
            keys |= set(setting_table(kind, (block,)))
            for sink in NESTED_BLOCKS.get(block, {}):
                keys |= set(setting_table(kind, (block, sink)))
    return sorted({SPELLED.get(k, k).split()[0] for k in keys})


def block_names() -> list[str]:
    names = {b for blocks in BLOCKS.values() for b in blocks}
    return sorted(names | {s for sinks in NESTED_BLOCKS.values() for s in sinks})


def choice_words() -> list[str]:
    """Words that are values: setting choices, modes, the size basis (sources stay sources)."""
    words = {c for kind in SETTINGS for key, spec in _all_specs(kind) for c in spec.choices}
    words |= set(MODE_WORDS) | set(SIZE_BASES) | set(CALENDARS) | set(STRESS_SCENARIOS)
    return sorted((words | set(SEVERITIES)) - set(SOURCES))


def _all_specs(kind: str) -> list[tuple[str, Any]]:
    specs = list(SETTINGS[kind].items())
    for block in BLOCKS.get(kind, {}):
        specs += setting_table(kind, (block,)).items()
        for sink in NESTED_BLOCKS.get(block, {}):
            specs += setting_table(kind, (block, sink)).items()
    return specs


def words(names: list[str] | tuple[str, ...]) -> str:
    """``\\b(?:a|b|c)\\b`` over sorted names (never an empty alternation: it would match
    the empty string everywhere)."""
    if not names:
        return "(?!)"
    return r"\b(?:" + "|".join(sorted(names)) + r")\b"


def _match(scope: str, pattern: str) -> dict[str, Any]:
    return {"name": SCOPES[scope], "match": pattern}


def _captures(pattern: str, *scopes: str) -> dict[str, Any]:
    return {"match": pattern,
            "captures": {str(i): {"name": SCOPES[s]} for i, s in enumerate(scopes, 1)}}


def _keyword_patterns() -> list[dict[str, Any]]:
    special = set(LOGIC) | set(CONTROL) | set(BOOLEANS)
    plain = [w for w in grammar_keywords() if w not in special]
    return [_match("control", words(CONTROL)), _match("logic", words(LOGIC)),
            _match("boolean", words(BOOLEANS)), _match("keyword", words(plain))]


MARKET = rf"{CURRENCY}/{CURRENCY}(?::{CURRENCY})?"


def _literal_patterns() -> list[dict[str, Any]]:
    number = r"[0-9]+(?:\.[0-9]+)?"
    return [
        # `close@4h`, `x@ETH/USDT@4h`: the `@` and the frame it reads (before the plain
        # market and duration, which would otherwise leave the `@` unhighlighted)
        _captures(rf"(@)\s*(?:({MARKET})|([0-9]+[smhdw]))\b", "frame", "market", "duration"),
        _match("market", rf"\b{MARKET}\b"),
        _captures(rf"\b({number}(?:[eE][+-]?[0-9]+)?)\s+({CURRENCY})\b", "number", "currency"),
        _match("percent", rf"\b{number}%"),
        _match("bps", rf"\b{number}bps\b"),
        _match("duration", r"\b[0-9]+[smhdw]\b"),
        _match("number", rf"\b{number}(?:[eE][+-]?[0-9]+)?\b"),
        _match("currency", rf"\b{CURRENCY}\b"),
        _match("operator", r"\.\.|<=|>=|==|!=|[<>+\-*/=]"),
    ]


def grammar() -> dict[str, Any]:
    """The grammar as a JSON-ready dict (``source.peak``)."""
    kinds = list(SETTINGS)
    patterns = [
        _match("comment", r"#.*$"),
        _match("string", r'"[^"\n]*"?'),
        _captures(rf"\b({'|'.join(kinds)})\s+({NAME})(?=\s*\{{)", "declaration", "decl_name"),
        _captures(rf"\b(component|risk)\s+({NAME})", "keyword", "reference"),
        _captures(rf"\b(param)\s+({NAME})\s*(:)\s*({words(list(PARAM_TYPES))})",
                  "keyword", "param", "operator", "param_type"),
        _captures(rf"\b(let)\s+({NAME})", "keyword", "let"),
        _match("block", words(block_names()) + r"(?=\s*\{)"),
        _match("builtin", words(list(BUILTINS)) + r"(?=\s*\()"),
        _match("lookahead", words(list(LOOKAHEAD)) + r"(?=\s*\()"),
        *_keyword_patterns(),
        _match("setting", words(setting_keys())),
        _match("source", words([*SOURCES, *POSITION_SOURCES])),
        _match("metric", words(list(METRICS))),
        _match("choice", words(choice_words())),
        *_literal_patterns(),
    ]
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/"
                   "tmlanguage.json",
        "name": "peak", "scopeName": "source.peak", "fileTypes": ["peak"],
        "comment": "Generated by editors/generate.py from peakdsl/lsp/textmate.py; do not edit.",
        "patterns": patterns,
    }


def grammar_json() -> str:
    """The grammar file's exact text."""
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"
