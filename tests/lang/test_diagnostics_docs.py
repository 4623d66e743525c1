"""docs/diagnostics.md mirrors the CODES registry, and its examples trigger their codes.

Every code has a section headed ``## CODE — title``; every ```peak example, saved as
``<declaration name>.peak``, reports that section's code and no other.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from peakdsl.api import check
from peakdsl.lang.diagnostics import CODES, WARNING_CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md"
HEADING = re.compile(r"^## ([A-Z]\d{3}) — (.+?)\s*$", re.M)
ANY_HEADING = re.compile(r"^#{1,2} ", re.M)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.M | re.S)
DECL = re.compile(r"^\s*(?:strategy|portfolio|risk|promotion)\s+([a-z_][a-z0-9_]*)", re.M)


def sections() -> dict[str, tuple[str, str]]:
    """code → (title, body) for every ``## CODE — title`` section."""
    text = DOC.read_text(encoding="utf-8")
    found: dict[str, tuple[str, str]] = {}
    for match in HEADING.finditer(text):
        nxt = ANY_HEADING.search(text, match.end())
        body = text[match.end() : nxt.start() if nxt else len(text)]
        assert match.group(1) not in found, f"{match.group(1)} is documented twice"
        found[match.group(1)] = (match.group(2), body)
    return found


SECTIONS = sections()
EXAMPLES = [(code, i, block.group(2)) for code, (_, body) in sorted(SECTIONS.items())
            for i, block in enumerate(FENCE.finditer(body)) if block.group(1) == "peak"]


def test_every_code_is_documented() -> None:
    missing = sorted(set(CODES) - set(SECTIONS))
    assert not missing, f"codes without a section in docs/diagnostics.md: {missing}"


def test_every_documented_code_exists() -> None:
    unknown = sorted(set(SECTIONS) - set(CODES))
    assert not unknown, f"docs/diagnostics.md documents unknown codes: {unknown}"


@pytest.mark.parametrize("code", sorted(CODES))
def test_titles_match_the_registry(code: str) -> None:
    if code in SECTIONS:
        assert SECTIONS[code][0] == CODES[code]


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_section_has_an_example_and_a_fix(code: str) -> None:
    if code not in SECTIONS:
        pytest.skip("reported by test_every_code_is_documented")
    body = SECTIONS[code][1]
    assert any(b.group(1) in ("peak", "text") for b in FENCE.finditer(body)), code
    assert "**Fix.**" in body and "**Why.**" in body and "**What it means.**" in body, code


def test_sections_are_grouped_by_stage_in_registry_order() -> None:
    documented = [m.group(1) for m in HEADING.finditer(DOC.read_text(encoding="utf-8"))]
    stages = list(dict.fromkeys(code[0] for code in CODES))
    assert sorted(documented, key=lambda c: (stages.index(c[0]), c)) == documented


@pytest.mark.parametrize(("code", "index", "source"), EXAMPLES,
                         ids=[f"{c}-{i}" for c, i, _ in EXAMPLES])
def test_example_triggers_its_code(code: str, index: int, source: str,
                                   tmp_path: Path) -> None:
    name = DECL.search(source)
    assert name, f"the {code} example has no declaration"
    path = tmp_path / f"{name.group(1)}.peak"
    path.write_text(source, encoding="utf-8")
    result = check([str(path)], root=tmp_path)
    codes = [d.code for d in result.diagnostics]
    assert codes, f"the {code} example reports nothing"
    assert set(codes) == {code}, f"the {code} example reports {codes}"
    if code not in WARNING_CODES:
        assert not result.ok


def test_every_code_a_single_file_can_trigger_has_a_peak_example() -> None:
    """Only cross-file, usage, internal and unprintable cases may use a text example."""
    text_only = {"P004", "P006", "N004", "N005", "N006", "N007", "N008", "N014", "T010",
                 "C001", "C002", "C003", "C004",
                 "W005", "W008"} | {c for c in CODES if c[0] in "DRUIE"}
    # W005: found by `peak compile`; W008: data at run time
    with_peak = {code for code, _, _ in EXAMPLES}
    assert set(CODES) - text_only <= with_peak, sorted(set(CODES) - text_only - with_peak)
