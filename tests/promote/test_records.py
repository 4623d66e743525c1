"""Promotion records: sealed by their content, chained, and any edit, deletion or reorder
reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peakdsl.promote.records import (
    Approval,
    CriterionResult,
    PromotionRecord,
    folder,
    load_chain,
    sealed,
    write,
)


def record(sequence: int, previous: str | None, stage: str = "testnet") -> PromotionRecord:
    entry = sealed(PromotionRecord(
        record_version=1, entry="promotion", sequence=sequence, previous=previous, spec="s",
        kind="strategy", stage=stage, artifact_sha256="a" * 64, components={},
        data={"data": "d" * 64}, gate="g", gate_sha256="b" * 64, engine_version="0.1.0",
        evidence={"backtest": "r0123456789ab"},
        criteria=[CriterionResult(metric="sharpe", op=">=", threshold=1.0, value=1.2,
                                  passed=True, source="r0123456789ab")],
        lineage={"trials": 3}, author="alice", created_at="2026-11-30T00:00:00+00:00"))
    assert isinstance(entry, PromotionRecord)
    return entry


def chain_of_three(root: Path) -> list[Path]:
    first = record(1, None)
    second = record(2, first.sha256, "live")
    approval = sealed(Approval(record_version=1, entry="approval", sequence=3,
                               previous=second.sha256, spec="s", record=second.sha256,
                               reviewer="bob", created_at="2026-11-30T01:00:00+00:00"))
    return [write(root, e) for e in (first, second, approval)]


def test_a_sealed_entry_hashes_its_content() -> None:
    one, again = record(1, None), record(1, None)
    assert one.sha256 == again.sha256 and len(one.sha256) == 64
    assert record(1, "x" * 64).sha256 != one.sha256


def test_an_intact_chain(tmp_path: Path) -> None:
    paths = chain_of_three(tmp_path)
    assert [p.name.rsplit("-", 1)[0] for p in paths] == [
        "0001-testnet", "0002-live", "0003-approval"]
    assert all(p.parent == folder(tmp_path, "s") for p in paths)
    chain = load_chain(tmp_path, "s")
    assert chain.problems == ()
    live = chain.records()[1]
    assert [a.reviewer for a in chain.approvals_of(live)] == ["bob"]
    assert chain.head == chain.entries[-1].sha256


def test_an_edit_is_reported(tmp_path: Path) -> None:
    first, _, _ = chain_of_three(tmp_path)
    data = json.loads(first.read_text())
    data["author"] = "mallory"
    first.write_text(json.dumps(data))
    problems = load_chain(tmp_path, "s").problems
    assert len(problems) == 1 and "was edited" in problems[0]


@pytest.mark.parametrize("gone", [0, 1])
def test_a_deletion_breaks_the_next_link(tmp_path: Path, gone: int) -> None:
    paths = chain_of_three(tmp_path)
    removed = json.loads(paths[gone].read_text())["sha256"]
    paths[gone].unlink()
    problems = load_chain(tmp_path, "s").problems
    assert any("a gap" in p or "links to" in p for p in problems), problems
    known = load_chain(tmp_path, "s", known={removed}).problems
    assert any("its file is gone" in p for p in known)


def test_deleting_the_newest_entry_is_caught_by_the_registry(tmp_path: Path) -> None:
    paths = chain_of_three(tmp_path)
    newest = json.loads(paths[-1].read_text())["sha256"]
    paths[-1].unlink()
    assert load_chain(tmp_path, "s").problems == ()  # the files alone cannot tell
    assert load_chain(tmp_path, "s", known={newest}).problems
