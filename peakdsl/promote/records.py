"""Promotion records: canonical JSON, content-hashed, chained per lineage, kept as files.

A record binds a decision to exactly what was decided on: the artifact sha256 (a portfolio's
and every component's), the gate spec's sha256, each data fingerprint, the engine version,
the evidence run ids, every criterion's value and verdict, the stage, the author and the time.
An *approval* (four eyes for live) binds a reviewer to one record's sha256. Both are *entries*
of their spec's chain: entry ``n`` carries the sha256 of entry ``n − 1`` (``previous``), and
its own ``sha256`` is that of its canonical JSON without the ``sha256`` field — so editing an
entry breaks its hash, deleting or reordering one breaks the next one's link, and both are
reported (``verify_chain``). Files live under ``promotions/<spec>/`` (committed, so reviewers
see them): ``0003-live-1a2b3c4d5e6f.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..atomic import write_atomic

RECORD_VERSION = 1
PROMOTIONS_DIR = "promotions"
STAGES = ("testnet", "live")
Stage = Literal["testnet", "live"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CriterionResult(_Frozen):
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    source: str | None  # the evidence run's id


class PromotionRecord(_Frozen):
    """A passed gate for one exact artifact at one stage."""

    record_version: int
    entry: Literal["promotion"]
    sequence: int
    previous: str | None
    spec: str
    kind: str
    stage: Stage
    artifact_sha256: str
    components: dict[str, str]
    data: dict[str, str]
    gate: str
    gate_sha256: str
    engine_version: str
    evidence: dict[str, str]  # run kind → run id
    criteria: list[CriterionResult]
    lineage: dict[str, float | int | str | None]
    author: str
    created_at: str
    sha256: str = ""


class Approval(_Frozen):
    """A reviewer's approval of one live record (never its author)."""

    record_version: int
    entry: Literal["approval"]
    sequence: int
    previous: str | None
    spec: str
    record: str  # the approved record's sha256
    reviewer: str
    created_at: str
    sha256: str = ""


Entry = PromotionRecord | Approval


def canonical(entry: Entry) -> bytes:
    data = entry.model_dump(mode="json")
    data.pop("sha256")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sealed(entry: Entry) -> Entry:
    """The entry with its own sha256 filled in."""
    return entry.model_copy(update={"sha256": hashlib.sha256(canonical(entry)).hexdigest()})


def folder(root: Path, spec: str) -> Path:
    return root / PROMOTIONS_DIR / spec


def file_name(entry: Entry) -> str:
    label = entry.stage if isinstance(entry, PromotionRecord) else "approval"
    return f"{entry.sequence:04d}-{label}-{entry.sha256[:12]}.json"


def write(root: Path, entry: Entry) -> Path:
    """The entry as a file (atomic: a temp file renamed), pretty canonical JSON."""
    path = folder(root, entry.spec) / file_name(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(entry.model_dump(mode="json"), sort_keys=True, indent=2,
                      ensure_ascii=False, allow_nan=False) + "\n"
    write_atomic(path, data.encode("utf-8"))
    return path


@dataclass(frozen=True)
class Chain:
    """A spec's entries in sequence order and what is wrong with them (empty: intact)."""

    entries: tuple[Entry, ...]
    problems: tuple[str, ...]

    @property
    def head(self) -> str | None:
        return self.entries[-1].sha256 if self.entries else None

    def records(self) -> list[PromotionRecord]:
        return [e for e in self.entries if isinstance(e, PromotionRecord)]

    def approvals_of(self, record: PromotionRecord) -> list[Approval]:
        return [e for e in self.entries if isinstance(e, Approval) and e.record == record.sha256]


def _parse(path: Path) -> Entry | str:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        model = Approval if isinstance(data, dict) and data.get("entry") == "approval" \
            else PromotionRecord
        return model.model_validate(data)
    except (OSError, ValueError) as exc:
        return f"{path.name}: unreadable ({type(exc).__name__})"


def load_chain(root: Path, spec: str, known: set[str] | None = None) -> Chain:
    """Every entry of ``spec``'s chain, verified: hashes, links, sequence, and (``known``:
    the shas the local registry recorded) entries deleted from the folder."""
    problems: list[str] = []
    entries: list[Entry] = []
    base = folder(root, spec)
    for path in sorted(base.glob("*.json")) if base.is_dir() else []:
        parsed = _parse(path)
        if isinstance(parsed, str):
            problems.append(parsed)
            continue
        expected = hashlib.sha256(canonical(parsed)).hexdigest()
        if parsed.sha256 != expected:
            problems.append(f"{path.name} was edited: its content hashes to {expected[:12]}, "
                            f"not the {parsed.sha256[:12]} it records")
        entries.append(parsed)
    entries.sort(key=lambda e: e.sequence)
    problems.extend(_links(entries))
    if known:
        missing = known - {e.sha256 for e in entries}
        problems.extend(f"entry {sha[:12]} is recorded in the registry but its file is gone"
                        for sha in sorted(missing))
    return Chain(tuple(entries), tuple(problems))


def _links(entries: list[Entry]) -> list[str]:
    problems, previous = [], None
    for number, entry in enumerate(entries, start=1):
        if entry.sequence != number:
            problems.append(f"entry {entry.sequence} follows entry {number - 1}: "
                            f"{'a gap' if entry.sequence > number else 'a repeat'} in the chain")
        if entry.previous != previous:
            problems.append(f"entry {entry.sequence} links to {str(entry.previous)[:12]}, but "
                            f"the entry before it is {str(previous)[:12]}")
        previous = entry.sha256
    return problems
