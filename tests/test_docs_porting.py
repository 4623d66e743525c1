"""docs/porting.md stays true: every ```peak example checks cleanly through the public API, and
every peak built-in it names in backticks exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from peakdsl.api import check
from peakdsl.lang.builtins import BUILTINS

DOC = Path(__file__).resolve().parents[1] / "docs" / "porting.md"
FENCE = re.compile(r"^```peak\n(?P<body>.*?)^```$", re.M | re.S)
NAME = re.compile(r"^\s*strategy\s+([a-z_][a-z0-9_]*)", re.M)
CALL = re.compile(r"`([a-z_][a-z0-9_]*)\(")


def examples() -> list[str]:
    return [m["body"] for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def test_there_are_examples() -> None:
    assert len(examples()) >= 3


@pytest.mark.parametrize("body", examples(), ids=lambda b: NAME.search(b)[1])  # type: ignore[index]
def test_example_checks_cleanly(body: str, tmp_path: Path) -> None:
    found = NAME.search(body)
    assert found, body
    path = tmp_path / f"{found[1]}.peak"
    path.write_text(body, encoding="utf-8")
    diags = check([str(path)]).diagnostics
    assert not diags, [(d.code, d.message) for d in diags]


def test_peak_calls_named_in_the_tables_exist() -> None:
    """The right-hand column of every table names peak's built-ins: each must exist (the
    Pine and Python columns use dotted or upper-case names, which this pattern skips)."""
    text = DOC.read_text(encoding="utf-8")
    rows = [line.rsplit("|", 2)[-2] for line in text.splitlines()
            if line.startswith("|") and line.count("|") >= 4]
    named = {m for row in rows for m in CALL.findall(row)}
    assert {"supertrend", "stoch_k", "nz", "valuewhen"} <= named  # the pattern reads the tables
    assert not named - set(BUILTINS), sorted(named - set(BUILTINS))
