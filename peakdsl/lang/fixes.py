"""Machine-applicable fixes: apply the ``Fix`` diagnostics carry, the way `peak check --fix` does.

A fix is applied to the text it was found in, and the text is checked again: fixing
``20 < rsi < 80`` may uncover the next problem in the same statement (error recovery
reports one per statement), which may carry its own fix. Rounds repeat until nothing
fixable is left (at most ``MAX_ROUNDS``). Only diagnostics with a ``Fix`` change the text,
and only errors carry one, so a spec that checks clean is never touched.

``check_text`` is the single-file check an editor needs (parse and the declaration's own
checks, no cross-file references), returning diagnostics as data.
"""

from __future__ import annotations

import codecs
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from .checker import check_module
from .diagnostics import Diagnostic, Fix, sort_diagnostics
from .parser import parse_source
from .project import discover, display_path
from .source import SourceFile

MAX_ROUNDS = 10


def check_text(text: str, path: str = "<input>.peak") -> list[Diagnostic]:
    """Parse and check one spec's text on its own (references to other files unresolved)."""
    parsed = parse_source(SourceFile.of(path, text))
    if parsed.module is None:
        return sort_diagnostics(parsed.diagnostics)
    _, diags = check_module(parsed.module)
    return sort_diagnostics(diags)


def apply_fixes(text: str, diags: Sequence[Diagnostic]) -> tuple[str, list[Diagnostic]]:
    """``text`` with every fix that does not overlap an earlier one applied, and the
    diagnostics whose fixes were applied."""
    chosen: list[Diagnostic] = []
    end = -1
    for d in sorted((d for d in diags if d.fix is not None), key=lambda d: _order(d.fix)):
        assert d.fix is not None
        if d.fix.span.start >= end:
            chosen.append(d)
            end = d.fix.span.end
    for d in reversed(chosen):
        assert d.fix is not None
        text = d.fix.apply(text)
    return text, chosen


def _order(fix: Fix | None) -> tuple[int, int]:
    assert fix is not None
    return fix.span.start, fix.span.end


@dataclass(frozen=True, slots=True)
class FixResult:
    """One text before and after its fixes, and the diagnostics that were fixed (in order)."""

    path: str
    before: str
    after: str
    fixed: tuple[Diagnostic, ...]

    @property
    def changed(self) -> bool:
        return self.after != self.before

    def diff(self) -> str:
        """A unified diff of the change (``--- a/PATH`` / ``+++ b/PATH``)."""
        return "".join(difflib.unified_diff(
            self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
            f"a/{self.path}", f"b/{self.path}"))


def fix_text(text: str, path: str = "<input>.peak") -> FixResult:
    """Apply fixes, re-check, repeat until no fix applies."""
    current, fixed = text, []
    for _ in range(MAX_ROUNDS):
        current, applied = apply_fixes(current, check_text(current, path))
        if not applied:
            break
        fixed.extend(applied)
    return FixResult(path, text, current, tuple(fixed))


def fix_paths(paths: Sequence[str], write: bool) -> list[FixResult]:
    """Fix every ``.peak`` file under ``paths``; rewrite the changed ones (atomically)
    unless ``write`` is false. Raises ``project.UsageError`` for a missing path."""
    results = []
    for file in discover(paths):
        result, data = _fix_file(file)
        if result.changed and write:
            atomic.write_atomic(file, data)
        results.append(result)
    return results


def _fix_file(file: Path) -> tuple[FixResult, bytes]:
    """A file's fixes and its new bytes (a byte-order mark kept); a file that is not UTF-8
    text is left as it is (`peak check` reports it)."""
    shown, data = display_path(file), file.read_bytes()
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    try:
        text = data[len(bom):].decode("utf-8")
    except UnicodeDecodeError:
        return FixResult(shown, "", "", ()), data
    result = fix_text(text, shown)
    return result, bom + result.after.encode("utf-8")
