"""Golden snapshots per spec and per stage: AST → signal graph → artifact JSON.

Update deliberately with `pytest tests/compile/test_snapshots.py --snapshot-update` and
review the diff like any other code change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from peakdsl import api
from peakdsl.compile.artifacts import dump_model
from peakdsl.compile.models import StrategyArtifact
from peakdsl.compile.render_graph import render_text
from peakdsl.lang.parser import parse_text

ROOT = Path(__file__).resolve().parents[2]
# the library's specs; the ported examples are checked, compiled and backtested by
# tests/test_examples.py (their artifacts would double this file for no new coverage)
SPECS = sorted(p for p in (ROOT / "specs").rglob("*.peak") if p.parent.name != "examples")
IDS = [p.relative_to(ROOT / "specs").as_posix() for p in SPECS]


@pytest.mark.parametrize("path", SPECS, ids=IDS)
def test_ast_snapshot(path: Path, snapshot: SnapshotAssertion) -> None:
    result = parse_text(path.read_text(), path.name)
    assert result.module is not None
    assert repr(result.module.decl) == snapshot


@pytest.mark.parametrize("path", SPECS, ids=IDS)
def test_graph_and_artifact_snapshot(path: Path, snapshot: SnapshotAssertion) -> None:
    artifact = api.compile_spec(str(path), ROOT)
    if isinstance(artifact, StrategyArtifact):
        assert render_text(artifact.config) == snapshot(name="graph")
    assert dump_model(artifact).decode() == snapshot(name="artifact")  # type: ignore[arg-type]
