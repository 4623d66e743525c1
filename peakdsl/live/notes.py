"""Operator notes of a deployment: what a person wants the next status report to say.

``peak live note SPEC --mode M --text "…"`` appends one note — when, who, what — and
``peak report live`` shows the notes of its period. A running deployment holds its store's
one write lock (E020), and a note must never wait for it or compete with the trading loop, so
notes live outside the store, in a JSON-lines file beside it
(``.peak/live/<mode>/<account>/<spec>.notes.jsonl``): each note is ONE ``os.write`` of one
line to a file opened with ``O_APPEND`` (the kernel places every append at the end, so two
operators writing at once never overwrite each other), then ``fsync``. A crash can leave a
torn last line; readers ignore it. A line in the middle that does not read as a note (a hand
edit gone wrong) is skipped and counted, never fatal: a report still shows the rest.

Notes are text a person typed: the renderers escape them (HTML) or quote them (Markdown).
Control characters other than newlines and tabs are refused, so a note cannot rewrite the
terminal that prints a report.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_NOTE_CHARS = 2_000
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
SUFFIX = ".notes.jsonl"


class Note(BaseModel):
    """One operator note: ``at`` in milliseconds since the epoch (UTC), ``by`` who wrote it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: int
    by: str
    text: str


@dataclass(frozen=True)
class NoteFile:
    """The notes read from a file, oldest first, and how many damaged lines were skipped (a
    torn last line is not counted: a crash mid-append leaves one by design)."""

    notes: tuple[Note, ...]
    skipped: int = 0
    error: str | None = None  # why the file could not be read at all (then no notes)


def notes_path(store_path: Path) -> Path:
    """``<spec>.notes.jsonl`` beside the deployment's ``<spec>.sqlite``."""
    return store_path.with_name(store_path.stem + SUFFIX)


def check_text(text: str) -> str:
    """The note's text, stripped; ``ValueError`` saying why when it cannot be a note."""
    text = text.strip()
    if not text:
        raise ValueError("the note is empty")
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"the note has {len(text):,} characters; at most "
                         f"{MAX_NOTE_CHARS:,} fit a report")
    if CONTROL.search(text):
        raise ValueError("the note holds control characters (only newlines and tabs may "
                         "appear in text)")
    return text


def append_note(path: Path, note: Note) -> None:
    """Append ``note`` as one line: one ``write`` with ``O_APPEND``, then ``fsync``. Needs no
    lock (module docstring); ``OSError`` when the file cannot be written."""
    line = (json.dumps(note.model_dump(), ensure_ascii=False, sort_keys=True) + "\n")
    data = line.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):  # a regular file writes all of it or fails, unless full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_notes(path: Path) -> NoteFile:
    """Every note in ``path`` (none when it does not exist), oldest first as appended; a
    file that cannot be read gives no notes and its ``error``, never an exception."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return NoteFile(())
    except OSError as exc:  # a folder in its place, no permission: the report says so
        return NoteFile((), error=exc.strerror or type(exc).__name__)
    lines = content.split(b"\n")
    complete = lines[:-1]  # what follows the last newline is torn (or empty)
    notes = [_note(line) for line in complete if line.strip()]
    return NoteFile(tuple(n for n in notes if n is not None),
                    sum(1 for n in notes if n is None))


def _note(line: bytes) -> Note | None:
    try:
        return Note.model_validate(json.loads(line))
    except (ValueError, ValidationError):  # UnicodeDecodeError and JSON errors included
        return None


def in_window(notes: Sequence[Note], start_ms: int, end_ms: int) -> list[Note]:
    """The notes written in ``[start_ms, end_ms)``, oldest first."""
    return sorted((n for n in notes if start_ms <= n.at < end_ms), key=lambda n: n.at)


__all__ = ["MAX_NOTE_CHARS", "Note", "NoteFile", "append_note", "check_text", "in_window",
           "notes_path", "read_notes"]
