"""The invalid-spec corpus: every case reports exactly the diagnostics its comments mark.

A case is a ``.peak`` file directly under ``tests/invalid/`` or a folder there (a small
multi-file project). Each offending line carries ``# expect: CODE [CODE ...]``; one run
must report exactly those (line, code) pairs, with multiplicity, and nothing else.
Each case is copied into its own temporary folder so that cases never see each other.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from peakdsl.api import check
from peakdsl.lang.diagnostics import CODES, Severity
from peakdsl.lang.parser import MAX_FILE_BYTES
from peakdsl.lang.render import render_json, render_text
from peakdsl.lang.source import SourceFile

CORPUS = Path(__file__).resolve().parents[1] / "invalid"
EXPECT = re.compile(r"#\s*expect:\s*([A-Z0-9 ]+?)\s*$")
CASES = sorted(p for p in CORPUS.iterdir() if p.suffix == ".peak" or p.is_dir())

# Codes no stored file triggers: generated below (P004, P006), or usage and internal
# errors (U, I), which come from the command line, not from a spec.
GENERATED = {"P004", "P006"}
# found later than `peak check`: W005 by `peak compile` (tests/compile/test_folding.py), W008
# by a run on data (tests/engine/test_stats.py)
COMPILE_ONLY = {"W005", "W008"}
# data (D), usage (U) and internal (I) codes never come from a spec file
NOT_FROM_SPECS = {code for code in CODES if code[0] in "DRUIE"}

Marks = Counter[tuple[str, int, str]]


def case_files(case: Path) -> list[Path]:
    return [case] if case.is_file() else sorted(case.rglob("*.peak"))


def expected_marks(case: Path) -> Marks:
    marks: Marks = Counter()
    for path in case_files(case):
        text = path.read_bytes().decode("utf-8", "replace")
        # split on "\n" only: str.splitlines also breaks at form feeds and the like
        for number, line in enumerate(text.split("\n"), start=1):
            found = EXPECT.search(line)
            if found:
                rel = path.relative_to(CORPUS).as_posix()
                for code in found.group(1).split():
                    marks[(rel, number, code)] += 1
    return marks


def run_case(case: Path, tmp_path: Path) -> tuple[Marks, list[str]]:
    """Check a copy of the case; the reported (file, line, code) triples and a readable log."""
    dest = tmp_path / case.name
    if case.is_dir():
        shutil.copytree(case, dest)
    else:
        shutil.copy(case, dest)
    result = check([str(dest)], root=tmp_path)
    got: Marks = Counter()
    log = []
    for d in result.diagnostics:
        rel = Path(d.path).resolve().relative_to(tmp_path.resolve()).as_posix()
        got[(rel, d.span.line, d.code)] += 1
        log.append(f"{rel}:{d.span.line}:{d.span.col} {d.code} {d.message}")
    return got, log


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_reports_exactly_what_it_marks(case: Path, tmp_path: Path) -> None:
    expected = expected_marks(case)
    assert expected, f"{case.name} marks no `# expect:` line"
    got, log = run_case(case, tmp_path)
    missing, extra = expected - got, got - expected
    assert not missing and not extra, (
        f"missing {dict(missing)}; unexpected {dict(extra)}\nreported:\n" + "\n".join(log))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_renders_as_text_and_json(case: Path, tmp_path: Path) -> None:
    dest = tmp_path / case.name
    (shutil.copytree if case.is_dir() else shutil.copy)(case, dest)
    result = check([str(dest)], root=tmp_path)

    def lookup(path: str) -> SourceFile | None:
        return SourceFile.of(path, Path(path).read_text("utf-8", errors="replace"))

    text = render_text(result.diagnostics, lookup)
    for d in result.diagnostics:
        assert f"{d.path}:{d.span.line}:{d.span.col}: {d.severity.value}[{d.code}]" in text
    doc = json.loads(render_json(result.diagnostics))
    assert [item["code"] for item in doc["diagnostics"]] == [d.code for d in result.diagnostics]


def test_a_file_with_syntax_errors_is_not_checked_further() -> None:
    """Recovery reports every broken statement, but a file that does not parse gets no
    name, type or lint diagnostics (they would describe a guess)."""
    for case in CASES:
        marks = expected_marks(case)
        if any(code.startswith("P") for _, _, code in marks):
            assert all(c.startswith("P") for _, _, c in marks), case.name


def test_corpus_covers_every_code_a_spec_can_trigger() -> None:
    covered = {code for case in CASES for (_, _, code) in expected_marks(case)}
    assert covered | GENERATED | NOT_FROM_SPECS | COMPILE_ONLY == set(CODES), sorted(
        set(CODES) - covered - GENERATED - NOT_FROM_SPECS - COMPILE_ONLY)
    assert not covered & (GENERATED | NOT_FROM_SPECS)


def test_corpus_files_are_named_after_their_declaration() -> None:
    """Apart from the N005 case, a file's stem is its declaration's name (no N005 noise)."""
    for case in CASES:
        for path in case_files(case):
            text = path.read_bytes().decode("utf-8", "replace")
            found = re.search(r"^(strategy|portfolio|risk|promotion)\s+(\w+)", text, re.M)
            if found and "N005" not in text:
                assert found.group(2) == path.stem, path


# ---------------------------------------------------------------- generated cases


def test_p004_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "huge.peak"
    body = "# padding\n" * (MAX_FILE_BYTES // 10 + 1)
    path.write_text("strategy huge {\n" + body + "}\n", encoding="utf-8")
    result = check([str(path)], root=tmp_path)
    assert [d.code for d in result.diagnostics] == ["P004"]
    assert result.diagnostics[0].severity is Severity.ERROR


def test_p006_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.peak"
    path.write_bytes(b'strategy latin {\n    description "caf\xe9"\n}\n')
    result = check([str(path)], root=tmp_path)
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("P006", 2)]
