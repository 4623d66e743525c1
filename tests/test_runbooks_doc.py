"""docs/runbooks.md mirrors the alert codes, and each drill rehearses what the runbooks say.

Every code of ``ALERT_CODES`` has a section headed ``## CODE name`` (its name, its severity,
the six parts of a runbook) and every such section is a code; a drill's promised codes
(``peakdsl.drill.catalog``) are exactly the codes whose "Rehearsed by" names that drill; the
behaviour table ``peakdsl.drill.scenarios.SCENARIOS`` has a row per catalog entry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from peakdsl.drill.catalog import CATALOG, ENTRIES, NAMES
from peakdsl.live.alert_codes import ALERT_CODES

DOC = Path(__file__).resolve().parents[1] / "docs" / "runbooks.md"
HEADING = re.compile(r"^## (A\d{3}) (\S+)\s*$", re.M)
NEXT = re.compile(r"^## ", re.M)
PARTS = ("**What it means.**", "**What peak did.**", "**Confirm.**", "**Do.**",
         "**Resume.**", "**Rehearsed by.**")
REHEARSED = re.compile(r"\*\*Rehearsed by\.\*\*(.*?)(?:\n\n|\Z)", re.S)
DRILL = re.compile(r"`peak drill (\w+)`")


def sections() -> dict[str, tuple[str, str]]:
    """code → (name, body) of every ``## A0xx name`` section."""
    text = DOC.read_text("utf-8")
    found: dict[str, tuple[str, str]] = {}
    for match in HEADING.finditer(text):
        nxt = NEXT.search(text, match.end())
        assert match.group(1) not in found, f"{match.group(1)} has two sections"
        found[match.group(1)] = (match.group(2), text[match.end():nxt.start() if nxt else None])
    return found


SECTIONS = sections()


def rehearsals(body: str) -> set[str]:
    line = REHEARSED.search(body)
    assert line is not None
    return set(DRILL.findall(line.group(1)))


def test_every_code_has_a_runbook_and_every_runbook_a_code() -> None:
    assert sorted(SECTIONS) == sorted(ALERT_CODES)
    assert list(SECTIONS) == sorted(SECTIONS)  # in code order


@pytest.mark.parametrize("code", sorted(ALERT_CODES))
def test_a_runbook_names_its_code_and_has_every_part(code: str) -> None:
    name, body = SECTIONS[code]
    assert name == ALERT_CODES[code].name
    assert f"Severity: {ALERT_CODES[code].severity}." in body
    for part in PARTS:
        assert part in body, f"{code} lacks {part}"
    assert "```bash\npeak live " in body, f"{code} has no command to confirm it"


def test_each_drill_rehearses_the_codes_its_runbooks_name() -> None:
    named = {drill: {code for code, (_, body) in SECTIONS.items()
                     if drill in rehearsals(body)} for drill in NAMES}
    assert named == {e.name: set(e.codes) for e in CATALOG}
    assert set().union(*(rehearsals(body) for _, body in SECTIONS.values())) <= set(NAMES)


def test_the_drill_table_matches_the_catalog() -> None:
    from peakdsl.drill.scenarios import SCENARIOS

    assert list(SCENARIOS) == list(NAMES)
    assert all(s.entry is ENTRIES[n] for n, s in SCENARIOS.items())
    assert {e.mode for e in CATALOG} == {"paper", "testnet"}
    assert [c for e in CATALOG for c in e.codes if c not in ALERT_CODES] == []
