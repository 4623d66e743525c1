"""docs/language.md stays true: its examples check cleanly and it covers every table entry.

Every ```peak block is a complete declaration; it is written to ``<name>.peak`` next to a copy
of the repository's ``specs/`` (so portfolio examples can reference the library) and checked
through the public API. The coverage tests fail as soon as a built-in, metric, setting, block,
choice or source exists in the code but is not mentioned in the document.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from peakdsl.api import check
from peakdsl.api import compile as compile_
from peakdsl.lang import schema
from peakdsl.lang.builtins import BUILTINS, LOOKAHEAD, SOURCES
from peakdsl.lang.types import PARAM_TYPES

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "language.md"
SPECS = ROOT / "specs"

FENCE = re.compile(r"^```(?P<lang>[a-z]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
DECL = re.compile(r"^\s*(strategy|portfolio|risk|promotion)\s+([a-z_][a-z0-9_]*)\s*\{", re.M)


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(_text()) if m["lang"] == lang]


def _name(block: str) -> str:
    found = DECL.search(block)
    assert found, f"a ```peak block without a declaration:\n{block}"
    return found[2]


def test_doc_has_peak_examples() -> None:
    blocks = _blocks("peak")
    assert len(blocks) >= 8
    kinds = {DECL.search(b)[1] for b in blocks}  # type: ignore[index]
    assert kinds == {"strategy", "portfolio", "risk", "promotion"}


def test_every_fence_is_marked() -> None:
    """Unmarked fences would dodge the check; fragments are ```text."""
    langs = {m["lang"] for m in FENCE.finditer(_text())}
    assert langs <= {"peak", "text"}, langs


def test_peak_blocks_are_single_declarations_with_unique_names() -> None:
    names = []
    for block in _blocks("peak"):
        assert len(DECL.findall(block)) == 1, f"one declaration per block:\n{block}"
        names.append(_name(block))
    assert len(names) == len(set(names)), "duplicate example names"
    library = {p.stem for p in SPECS.rglob("*.peak")}
    assert not set(names) & library, "example names must not shadow specs/ names"


def test_peak_examples_check_cleanly(tmp_path: Path) -> None:
    shutil.copytree(SPECS, tmp_path / "specs")
    docs_dir = tmp_path / "specs" / "docs"
    docs_dir.mkdir()
    files = []
    for block in _blocks("peak"):
        path = docs_dir / f"{_name(block)}.peak"
        path.write_text(block, encoding="utf-8")
        files.append(str(path))
    result = check(files, root=tmp_path)
    shown = [f"{d.path}:{d.span.line}:{d.span.col} {d.code} {d.message} ({d.help})"
             for d in result.diagnostics]
    assert not shown, "\n".join(shown)
    assert result.ok
    assert set(result.project.requested) == {Path(f).stem for f in files}
    compiled = compile_(root=tmp_path, out_dir=tmp_path / "compiled")  # CI compiles them too
    assert compiled.ok, compiled.diagnostics
    for name in result.project.requested:
        kind = result.project.specs[name].kind
        assert (tmp_path / "compiled" / kind / f"{name}.json").is_file()


def test_text_fragments_are_not_complete_declarations_in_disguise() -> None:
    """A full declaration belongs in a checked ```peak block, not an unchecked ```text one."""
    for block in _blocks("text"):
        assert DECL.search(block) is None, f"make this a ```peak block:\n{block}"


def _mentioned(word: str) -> bool:
    return f"`{word}`" in _text() or f"`{word} " in _text()


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_is_documented(name: str) -> None:
    signature = BUILTINS[name].signature
    assert f"`{signature}`" in _text(), f"{signature} missing from {DOC.name}"


@pytest.mark.parametrize("name", sorted(schema.METRICS))
def test_every_metric_is_documented(name: str) -> None:
    assert f"| `{name}` |" in _text(), f"metric {name} missing from the metrics table"


def _all_settings() -> set[str]:
    keys: set[str] = set()
    for table in schema.SETTINGS.values():
        keys.update(table)
    for blocks in schema.BLOCKS.values():
        for table in blocks.values():
            keys.update(table)
    return keys


@pytest.mark.parametrize("key", sorted(_all_settings()))
def test_every_setting_is_documented(key: str) -> None:
    assert f"| `{key}` |" in _text(), f"setting {key} missing from the settings tables"


def test_blocks_choices_sources_and_types_are_documented() -> None:
    blocks = {b for kind in schema.BLOCKS.values() for b in kind}
    choices = {c for kind in schema.BLOCKS.values() for table in kind.values()
               for spec in table.values() for c in spec.choices}
    words = blocks | choices | set(SOURCES) | set(PARAM_TYPES) | set(LOOKAHEAD) \
        | set(schema.SIZE_BASES)
    missing = sorted(w for w in words if not _mentioned(w))
    assert not missing, f"not mentioned in {DOC.name}: {missing}"


def test_timeframes_are_listed() -> None:
    listing = " ".join(schema.TIMEFRAMES)
    assert listing in _text()


def test_declaration_kinds_are_documented() -> None:
    for kind in schema.SETTINGS:
        assert re.search(rf"^{kind}\s+NAME \{{", _text(), re.M), f"`{kind}` not introduced"
