"""The classification table: every change kind has a level, directions decide where given,
and docs/diff.md shows exactly this table."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from peakdsl.review.levels import KINDS, level, markdown_table
from peakdsl.review.model import ChangeKind

DOC = Path(__file__).resolve().parents[2] / "docs" / "diff.md"


def test_every_change_kind_is_in_the_table() -> None:
    assert list(KINDS) == list(get_args(ChangeKind))


def test_directed_levels() -> None:
    assert level("risk_limit", "loosened") == "critical"
    assert level("risk_limit", "tightened") == "review"
    assert level("criterion", "weakened") == "critical"
    assert level("criterion", "strengthened") == "review"
    assert level("risk_spec", "removed") == "critical"
    assert level("leverage", "loosened") == "critical"


def test_an_unknown_direction_of_a_directed_kind_is_its_most_severe_level() -> None:
    assert level("risk_limit", "changed") == "critical"
    assert level("criterion", "changed") == "critical"
    assert level("risk_spec", "changed") == "critical"


def test_undirected_kinds() -> None:
    assert level("description", "changed") == "info"
    assert level("logic", "changed") == "review"
    assert level("exits", "added") == "review"


def test_docs_show_the_table() -> None:
    assert markdown_table() in DOC.read_text(encoding="utf-8"), (
        "regenerate the table in docs/diff.md: python -c 'from peakdsl.review.levels import "
        "markdown_table; print(markdown_table())'")
