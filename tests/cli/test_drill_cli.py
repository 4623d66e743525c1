"""`peak drill`: the list, one drill end to end through the command line, and bad input.

The drill (risk_violation, a paper one: a few seconds) runs in a scratch project of its own;
the project it is run from only gets the log — ``drills/LOG.md`` or ``--log`` — and a
registry run of kind ``drill``. About 5 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.drill.catalog import NAMES


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "specs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def peak(*argv: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(argv))
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_list_names_every_drill_and_its_codes() -> None:
    code, out, _ = peak("drill", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(NAMES)
    assert "sink_down        A011, A004  paper" in out
    code, out, _ = peak("drill", "list", "--json")
    doc = json.loads(out)
    assert code == 0 and [d["name"] for d in doc["drills"]] == list(NAMES)
    assert doc["drills"][0] == {"name": "stale_feed", "codes": ["A007"], "mode": "paper",
                                "title": "the exchange stops publishing candles for three "
                                         "bars (a data gap)"}


def test_a_drill_runs_logs_and_records(project: Path) -> None:
    code, out, _ = peak("drill", "risk_violation", "--log", "ops/drills.md")
    assert code == 0, out
    assert out.startswith("drill risk_violation — passed in ")
    assert "  ok    A001 logged" in out and "registry run r" in out
    assert out.rstrip().endswith("drill log: ops/drills.md")
    assert "risk_violation — passed" in (project / "ops" / "drills.md").read_text()
    assert not (project / "drills").exists() and not (project / ".peak" / "live").exists()
    code, out, _ = peak("runs", "list", "--kind", "drill", "--json")
    [run] = json.loads(out)["runs"]
    assert (run["spec"], run["metrics"]["passed"]) == ("risk_violation", 1)
    assert run["artifacts"] == {"log": "ops/drills.md"}


def test_bad_input(project: Path) -> None:
    code, _, err = peak("drill", "fire_drill")
    assert code == 2 and "U008" in err and "No such command 'fire_drill'" in err
    code, _, err = peak("drill", "stale_feed", "--log", "drills/LOG.txt")
    assert code == 2 and "U005" in err and not (project / "drills").exists()
    code, out, _ = peak("drill", "stale_feed", "--root", "missing", "--json")
    assert code == 2 and json.loads(out)["diagnostics"][0]["code"] == "U001"
