"""`peak explain CODE`: a diagnostic code's entry in docs/diagnostics.md.

The page is the one place a code is explained (what it means, why, an example, the fix);
`peak explain` prints that entry rather than a second text that could drift from it. The
wheel ships the page as ``peakdsl/docs/diagnostics.md`` (pyproject.toml's force-include);
a source checkout reads ``docs/diagnostics.md`` itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .diagnostics import CODES

HEADING = re.compile(r"^## ([A-Z]\d{3}) — (.+?)\s*$", re.M)
NEXT_HEADING = re.compile(r"^#{1,2} ", re.M)
CODE = re.compile(r"[A-Z]\d{3}")


@dataclass(frozen=True, slots=True)
class Explanation:
    """One code's entry: its title and the section's Markdown text."""

    code: str
    title: str
    text: str


def diagnostics_page() -> str:
    """docs/diagnostics.md, from the installed package or the source checkout."""
    packaged = resources.files("peakdsl").joinpath("docs/diagnostics.md")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md").read_text("utf-8")


def sections(page: str) -> dict[str, Explanation]:
    """Every ``## CODE — title`` section of the page, by code."""
    found: dict[str, Explanation] = {}
    for match in HEADING.finditer(page):
        nxt = NEXT_HEADING.search(page, match.end())
        body = page[match.end() : nxt.start() if nxt else len(page)].strip()
        found[match.group(1)] = Explanation(match.group(1), match.group(2), body)
    return found


def normalise(code: str) -> str:
    """``p9`` / ``p009`` / `` P009 `` → ``P009`` (so a code typed from memory is found)."""
    text = code.strip().upper()
    if 2 <= len(text) <= 4 and text[0].isalpha() and text[1:].isdigit():
        return f"{text[0]}{text[1:]:0>3}"
    return text


def explain(code: str) -> Explanation | None:
    """The entry for ``code``, or ``None`` when no such code exists."""
    wanted = normalise(code)
    if wanted not in CODES:
        return None
    return sections(diagnostics_page()).get(wanted)
