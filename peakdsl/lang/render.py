"""Render diagnostics for people (ruff-style snippet with caret) or machines (JSON).

The only place diagnostics become text; the CLI calls it once at the edge.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Sequence

from .diagnostics import CODES, Diagnostic, Fix, Severity
from .source import SourceFile

SourceLookup = Callable[[str], SourceFile | None]


def render_text(diags: Sequence[Diagnostic], sources: SourceLookup, color: bool = False) -> str:
    blocks = [_render_one(d, sources, color) for d in diags]
    return "\n".join(blocks) + ("\n" if blocks else "") + summary(diags)


def summary(diags: Sequence[Diagnostic]) -> str:
    errors = sum(d.severity is Severity.ERROR for d in diags)
    warnings = len(diags) - errors
    if not diags:
        return "ok: no problems found\n"
    parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else []
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return "found " + ", ".join(parts) + "\n"


def _style(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _render_one(d: Diagnostic, sources: SourceLookup, color: bool) -> str:
    level = _style(d.severity.value, "1;31" if d.severity is Severity.ERROR else "1;33", color)
    where = d.path if d.path.startswith("--") or d.path == "<peak>" else \
        f"{d.path}:{d.span.line}:{d.span.col}"  # options and pseudo-files have no position
    head = f"{where}: {level}[{d.code}] {_printable(d.message)}"
    lines = [head]
    src = sources(d.path)
    if src is not None and src.text:
        lines.extend(_snippet(src, d, color))
    for label in d.labels:
        lines.append(f"  = note: {label.path}:{label.span.line}:{label.span.col}: "
                     f"{label.message}")
    if d.help:
        lines.append(f"  = help: {_printable(d.help)}")
    if d.fix is not None:
        lines.append(f"  = fix: {_printable(fixed_line(d.fix, src))}  (`peak check --fix` "
                     "applies it)")
    return "\n".join(lines) + "\n"


def fixed_line(fix: Fix, src: SourceFile | None) -> str:
    """The fix as the porter will read it: the whole line after the fix when it stays on
    one line of the source, else the replacement text."""
    if src is None or fix.span.line != fix.span.end_line or not src.text:
        return f"`{fix.replacement}`" if fix.replacement else "delete it"
    line = src.line_text(fix.span.line)
    start = fix.span.col - 1
    end = start + (fix.span.end - fix.span.start)
    return (line[:start] + fix.replacement + line[end:]).strip()


def _printable(text: str) -> str:
    """Control and format characters (ESC, NUL, C1, bidi overrides) shown as U+FFFD.

    Echoing them raw would let a hostile spec drive the terminal or reorder what the
    reviewer sees; one replacement per character keeps the caret aligned.
    """
    return "".join("\ufffd" if ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf")
                   else ch for ch in text)


def _snippet(src: SourceFile, d: Diagnostic, color: bool) -> list[str]:
    text = _printable(src.line_text(d.span.line))
    if len(text) > 200:  # hostile or minified input: show a window around the caret
        start = max(0, d.span.col - 80)
        text, col = text[start : start + 160], d.span.col - start
    else:
        col = d.span.col
    width = len(str(d.span.line))
    end = d.span.end_col if d.span.end_line == d.span.line else len(text) + 1
    carets = "^" * max(1, min(end, len(text) + 1) - col)
    gutter = " " * width
    return [f"{gutter} |", f"{d.span.line} | {text.expandtabs(1)}",
            f"{gutter} | {' ' * (col - 1)}{_style(carets, '1;31', color)}"]


def _fix_json(fix: Fix | None) -> dict[str, object] | None:
    """A fix as an edit a tool applies: the span to replace (offsets and positions) and
    the replacement text."""
    if fix is None:
        return None
    span = fix.span
    return {"span": {"start": span.start, "end": span.end, "line": span.line, "col": span.col,
                     "end_line": span.end_line, "end_col": span.end_col},
            "replacement": fix.replacement}


def render_json(diags: Sequence[Diagnostic]) -> str:
    """A stable JSON document: a list of diagnostics plus counts."""
    items = [{
        "code": d.code, "title": CODES[d.code], "severity": d.severity.value,
        "message": d.message, "path": d.path,
        "span": {"line": d.span.line, "col": d.span.col, "end_line": d.span.end_line,
                 "end_col": d.span.end_col},
        "help": d.help,
        "labels": [{"path": lb.path, "line": lb.span.line, "col": lb.span.col,
                    "message": lb.message} for lb in d.labels],
        "fix": _fix_json(d.fix),
    } for d in diags]
    errors = sum(d.severity is Severity.ERROR for d in diags)
    doc = {"diagnostics": items, "errors": errors, "warnings": len(diags) - errors}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
