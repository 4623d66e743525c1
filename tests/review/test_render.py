"""Text, Markdown and JSON of one diff: same facts, deterministic bytes, JSON per its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from peakdsl import api
from peakdsl.review.model import DiffResult
from peakdsl.review.render import render_json, render_markdown, render_text

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "schemas" / "diff.schema.json"
RISK = ROOT / "specs" / "risk"


def moderate_to_aggressive() -> DiffResult:
    return api.diff(str(RISK / "live_moderate.peak"), str(RISK / "live_aggressive.peak"))


def test_committed_schema_matches_the_model() -> None:
    assert json.loads(SCHEMA.read_text()) == DiffResult.model_json_schema(), (
        "regenerate: python -c 'import json; from peakdsl.review.model import DiffResult; "
        "print(json.dumps(DiffResult.model_json_schema(), indent=2, sort_keys=True))' "
        "> docs/schemas/diff.schema.json")


def test_json_validates_round_trips_and_is_deterministic() -> None:
    result = moderate_to_aggressive()
    text = render_json(result)
    doc = json.loads(text)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    assert DiffResult.model_validate(doc) == result
    assert render_json(moderate_to_aggressive()) == text
    assert doc["counts"] == {"critical": 6, "review": 1, "info": 1}
    assert doc["highest"] == "critical" and doc["impact"] is None
    first = doc["changes"][0]
    assert {k: first[k] for k in ("spec", "kind", "level", "subject", "before", "after",
                                  "direction")} == {
        "spec": "live_aggressive", "kind": "risk_limit", "level": "critical",
        "subject": "max_order_notional", "before": "1000 EUR", "after": "2500 EUR",
        "direction": "loosened"}


def test_markdown_is_a_pull_request_table() -> None:
    text = render_markdown(moderate_to_aggressive())
    lines = text.splitlines()
    assert lines[0].startswith("### peak diff: `")
    assert "**6 critical, 1 review, 1 info in 1 of 1 spec(s)**" in lines
    header = lines.index("| level | spec | change | before | after |")
    assert lines[header + 2] == ("| **critical** | `live_aggressive` (risk) | risk_limit: "
                                 "max_order_notional | `1000 EUR` | `2500 EUR` |")
    table = lines[header:header + 10]
    assert all(row.count("|") == 6 for row in table)  # no pipe from a value breaks a row


def test_text_lists_changes_most_severe_first() -> None:
    text = render_text(moderate_to_aggressive())
    assert text.splitlines()[:3] == [
        "peak diff: " + str(RISK / "live_moderate.peak") + " → "
        + str(RISK / "live_aggressive.peak"),
        "6 critical, 1 review, 1 info in 1 of 1 spec(s)", ""]
    levels = [line.split()[0] for line in text.splitlines()[4:] if line.startswith("  ")]
    assert levels == ["critical"] * 6 + ["review", "info"]


def test_no_semantic_change() -> None:
    same = api.diff(str(RISK / "live_gate.peak"), str(RISK / "live_gate.peak"))
    assert render_text(same).splitlines()[1] == "no semantic change in 1 spec(s)"
    assert not same.semantic and not same.fails("info")
