"""editors/: the TextMate grammar is current and highlights every registry word as what it
is; the VS Code extension wires the grammar and `peak lsp`.

A small matcher stands in for an editor's TextMate engine: at each position the pattern
matching earliest wins, the first listed on a tie (the grammar has top-level patterns only).
Python's ``re`` compiling every pattern is the validity check (the patterns use the common
subset of Python and Oniguruma syntax).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from peakdsl.lang.builtins import BUILTINS, LOOKAHEAD, MODE_WORDS, SOURCES
from peakdsl.lang.schema import METRICS, NESTED_BLOCKS
from peakdsl.lang.types import PARAM_TYPES
from peakdsl.lsp.textmate import (
    SCOPES,
    block_names,
    choice_words,
    grammar_json,
    grammar_keywords,
    setting_keys,
)

EDITORS = Path(__file__).resolve().parents[2] / "editors"
GRAMMARS = [EDITORS / "textmate" / "peak.tmLanguage.json",
            EDITORS / "vscode" / "syntaxes" / "peak.tmLanguage.json"]
GRAMMAR: dict[str, Any] = json.loads(GRAMMARS[0].read_text("utf-8"))
COMPILED = [(re.compile(p["match"]), p) for p in GRAMMAR["patterns"]]


def tokens(line: str) -> list[tuple[str, str]]:
    """(text, scope) of each highlighted piece of ``line``."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line):
        hits = [(m.start(), i, m, p) for i, (rx, p) in enumerate(COMPILED)
                if (m := rx.search(line, pos)) is not None]
        if not hits:
            break
        _, _, match, pattern = min(hits, key=lambda h: (h[0], h[1]))
        if "name" in pattern:
            out.append((match.group(), pattern["name"]))
        for group, capture in pattern.get("captures", {}).items():
            if match.group(int(group)) is not None:
                out.append((match.group(int(group)), capture["name"]))
        pos = max(match.end(), pos + 1)
    return out


def scope_of(line: str, word: str) -> str:
    return next((scope for text, scope in tokens(line) if text == word), "(plain)")


@pytest.mark.parametrize("path", GRAMMARS, ids=["textmate", "vscode"])
def test_the_committed_grammar_is_current(path: Path) -> None:
    assert path.read_text("utf-8") == grammar_json(), \
        f"{path} is stale: run `python editors/generate.py`"


def test_the_grammar_is_valid() -> None:
    assert GRAMMAR["scopeName"] == "source.peak" and GRAMMAR["fileTypes"] == ["peak"]
    for pattern in GRAMMAR["patterns"]:
        rx = re.compile(pattern["match"])
        assert rx.search("") is None or rx.search("").end() > 0, pattern  # never empty
        scopes = [pattern.get("name")] + [c["name"] for c in pattern.get("captures", {}).values()]
        assert all(s is None or s.endswith(".peak") for s in scopes)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_is_highlighted_as_one(name: str) -> None:
    assert scope_of(f"    let a = {name}(close, 14)", name) == SCOPES["builtin"]


@pytest.mark.parametrize("name", sorted(LOOKAHEAD))
def test_lookahead_calls_are_marked_illegal(name: str) -> None:
    assert scope_of(f"    let a = {name}(close)", name) == SCOPES["lookahead"]


@pytest.mark.parametrize("word", grammar_keywords())
def test_every_keyword_of_the_lark_grammar_is_highlighted(word: str) -> None:
    scope = scope_of(f"    {word} ", word)
    assert scope.split(".")[0] in ("keyword", "storage", "constant"), scope


@pytest.mark.parametrize("key", setting_keys())
def test_every_setting_key_is_highlighted(key: str) -> None:
    assert scope_of(f"    {key} 1", key) == SCOPES["setting"]


@pytest.mark.parametrize("name", block_names())
def test_every_block_and_sink_is_highlighted(name: str) -> None:
    assert scope_of(f"    {name} {{", name) == SCOPES["block"]


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_source_is_highlighted(name: str) -> None:
    assert scope_of(f"    let a = {name} + 1", name) == SCOPES["source"]


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_is_highlighted(name: str) -> None:
    assert scope_of(f"    require {name} >= 1", name) == SCOPES["metric"]


@pytest.mark.parametrize("word", [*choice_words(), *sorted(MODE_WORDS)])
def test_every_choice_and_mode_is_highlighted(word: str) -> None:
    assert scope_of(f"    fill {word}", word) == SCOPES["choice"]


def test_a_choice_that_is_a_source_stays_a_source() -> None:
    assert scope_of("    fill close", "close") == SCOPES["source"]
    assert "close" not in choice_words()


@pytest.mark.parametrize("name", sorted(PARAM_TYPES))
def test_param_declarations(name: str) -> None:
    found = tokens(f"    param fast: {name} = 1 in 1..5")
    assert found[:4] == [("param", SCOPES["keyword"]), ("fast", SCOPES["param"]),
                         (":", SCOPES["operator"]), (name, SCOPES["param_type"])]


@pytest.mark.parametrize(("line", "expected"), [
    ("strategy my_trend {", [("strategy", "declaration"), ("my_trend", "decl_name")]),
    ("    component trend weight 25%", [("component", "keyword"), ("trend", "reference"),
                                        ("weight", "keyword"), ("25%", "percent")]),
    ("    risk live_moderate", [("risk", "keyword"), ("live_moderate", "reference")]),
    ("    let ma = close", [("let", "keyword"), ("ma", "let"), ("=", "operator"),
                            ("close", "source")]),
    ("    market BTC/USDT:USDT  # perp", [("market", "setting"), ("BTC/USDT:USDT", "market"),
                                          ("# perp", "comment")]),
    ("    capital 10000 EUR", [("capital", "setting"), ("10000", "number"),
                               ("EUR", "currency")]),
    ('    description "a #1 pick"', [("description", "setting"), ('"a #1 pick"', "string")]),
    ("    fees 10bps rebalance 7d x 1.5e3", [("fees", "setting"), ("10bps", "bps"),
                                            ("rebalance", "setting"), ("7d", "duration"),
                                            ("1.5e3", "number")]),
    ("    entry long when not a and b or c", [
        ("entry", "keyword"), ("long", "keyword"), ("when", "control"), ("not", "logic"),
        ("and", "logic"), ("or", "logic")]),
])
def test_lines_are_highlighted_piece_by_piece(line: str, expected: list[tuple[str, str]]
                                              ) -> None:
    assert tokens(line) == [(text, SCOPES[scope]) for text, scope in expected]


def test_sinks_are_blocks_of_the_nested_table() -> None:
    assert {s for sinks in NESTED_BLOCKS.values() for s in sinks} <= set(block_names())


# ---------------------------------------------------------------- the VS Code extension


def test_the_vscode_extension_wires_the_grammar_and_the_server() -> None:
    root = EDITORS / "vscode"
    manifest = json.loads((root / "package.json").read_text("utf-8"))
    contributes = manifest["contributes"]
    [language] = contributes["languages"]
    assert (language["id"], language["extensions"]) == ("peak", [".peak"])
    config = json.loads((root / language["configuration"]).read_text("utf-8"))
    assert config["comments"] == {"lineComment": "#"}
    [grammar] = contributes["grammars"]
    assert (grammar["language"], grammar["scopeName"]) == ("peak", GRAMMAR["scopeName"])
    assert (root / grammar["path"]).resolve() == GRAMMARS[1]
    assert manifest["activationEvents"] == ["onLanguage:peak"]
    command = contributes["configuration"]["properties"]["peak.server.command"]["default"]
    assert command == ["peak", "lsp"]
    script = (root / manifest["main"]).read_text("utf-8")
    assert '["peak", "lsp"]' in script and "vscode-languageclient/node" in script
    assert "vscode-languageclient" in manifest["dependencies"]


def test_the_grammar_highlights_frames() -> None:
    assert tokens("close@ETH/USDT@4h") == [
        ("close", SCOPES["source"]), ("@", SCOPES["frame"]), ("ETH/USDT", SCOPES["market"]),
        ("@", SCOPES["frame"]), ("4h", SCOPES["duration"])]
    assert tokens("sma(close, 50)@1d") == [
        ("sma", SCOPES["builtin"]), ("close", SCOPES["source"]), ("50", SCOPES["number"]),
        ("@", SCOPES["frame"]), ("1d", SCOPES["duration"])]
