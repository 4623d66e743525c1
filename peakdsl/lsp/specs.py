"""The other specs of the project, as completion and go-to-definition see them.

A portfolio names strategies, portfolios and risk specs by their file stem (docs/language.md
§2); the editor lists them, describes them on hover and jumps to them. Each file is read
lexically (its first word is the kind, the word after it the name, ``description "…"`` its
line), so a half-written spec elsewhere in the project still shows up. Open documents
(``overlay``) win over the files on disk: the editor's text is the one being looked at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..lang.project import SPEC_SUFFIX, find_root, spec_index
from ..lang.schema import SETTINGS
from .text import lex

DECL_KINDS: tuple[str, ...] = tuple(SETTINGS)  # strategy portfolio risk promotion
_DESCRIPTION = re.compile(r'^\s*description\s+"([^"\n]*)"', re.M)
_MARKET = re.compile(r"^[ \t]*market[ \t]+([A-Z][A-Z0-9]*/[A-Z][A-Z0-9]*(?::[A-Z][A-Z0-9]*)?)",
                     re.M)
_TIMEFRAME = re.compile(r"^[ \t]*timeframe[ \t]+([0-9]+[smhdw])\b", re.M)
MAX_BYTES = 1 << 20  # the parser's limit: a larger file is not a spec


@dataclass(frozen=True, slots=True)
class SpecEntry:
    """One spec file: its name (the stem), kind ('' when unreadable), path and description."""

    name: str
    kind: str
    path: Path
    description: str
    name_start: int  # character offsets of the declared name in the file's text
    name_end: int
    market: str = ""  # a strategy's `market` line ('' when there is none)


def read_text(path: Path, overlay: Mapping[Path, str]) -> str:
    """The editor's text of ``path`` when it is open, else the file's ('' if unreadable)."""
    if path in overlay:
        return overlay[path]
    try:
        if path.stat().st_size > MAX_BYTES:
            return ""
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return ""


def entry_of(path: Path, text: str) -> SpecEntry:
    """What a spec file declares, read from its first two words."""
    words = [t for t in lex(text[:4096]) if t.kind not in ("comment", "string")][:2]
    kind = words[0].text if words and words[0].text in DECL_KINDS else ""
    name = words[1] if kind and len(words) > 1 and words[1].kind == "word" else None
    described = _DESCRIPTION.search(text)
    return SpecEntry(path.stem, kind, path, described.group(1) if described else "",
                     name.start if name else 0, name.end if name else 0,
                     market_of(text) if kind == "strategy" else "")


def market_of(text: str) -> str:
    """The ``market`` line of a spec's text, read lexically ('' when there is none)."""
    found = _MARKET.search(text)
    return found.group(1) if found else ""


def timeframe_of(text: str) -> str:
    """The ``timeframe`` line of a spec's text, read lexically ('' when there is none)."""
    found = _TIMEFRAME.search(text)
    return found.group(1) if found else ""


def project_specs(path: Path, overlay: Mapping[Path, str] | None = None
                  ) -> dict[str, SpecEntry]:
    """Every spec of the project ``path`` belongs to, by name (the first file wins a clash)."""
    overlay = overlay or {}
    root = project_root(path)
    if root is None:  # a file outside any project: its neighbours only, never a whole tree
        files = sorted(p.resolve() for p in path.parent.glob(f"*{SPEC_SUFFIX}") if p.is_file())
        return {p.stem: entry_of(p, read_text(p, overlay)) for p in files}
    extra = [p for p in (path, *overlay)
             if p.suffix == SPEC_SUFFIX and p.is_file() and p.is_relative_to(root)]
    return {name: entry_of(files[0], read_text(files[0], overlay))
            for name, files in spec_index(root, extra).items()}


def project_root(path: Path) -> Path | None:
    """The project folder (the nearest one above ``path`` with ``specs/``), or None: then
    there is no project to search, and the editor must not walk a home folder per keystroke."""
    root = find_root(path.parent)
    return root if (root / "specs").is_dir() else None
