"""`peak diff` on the command line: exit codes, --fail-on, formats, bad input.

In-process (CliRunner keeps stdout and stderr apart); the git cases run in a tmp repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from peakdsl.cli import app

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "diff.schema.json").read_text())
LIMITS = "specs/risk/live_moderate.peak"


def peak(cwd: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, code: int) -> Any:
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(app, ["diff", *argv])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The spec library and a second copy, `new/`, to edit."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(ROOT / "specs", tmp_path / "new" / "specs")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_comments_and_formatting_only_exit_0(scratch: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    edit(scratch / "new" / LIMITS, "max_open_positions 3", "max_open_positions   3  # same")
    edit(scratch / "new" / LIMITS, "# Live limits", "# Live limits, reworded")
    out = peak(scratch, monkeypatch, "specs", "new/specs", code=0).stdout
    count = len(list((scratch / "specs").rglob("*.peak")))
    assert out.splitlines()[1] == (f"no semantic change in {count} spec(s); comments or "
                                   "formatting only: live_moderate, multi_style_moderate")


def test_a_loosened_limit_is_critical_and_fails_every_level(
        scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(scratch / "new" / LIMITS, "max_daily_loss 2%", "max_daily_loss 3%")
    for extra in ([], ["--fail-on", "critical"], ["--fail-on", "review"],
                  ["--fail-on", "info"]):
        peak(scratch, monkeypatch, "specs", "new/specs", *extra, code=1)


def test_a_tightened_limit_passes_fail_on_critical_only(
        scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(scratch / "new" / LIMITS, "max_daily_loss 2%", "max_daily_loss 1%")
    peak(scratch, monkeypatch, "specs", "new/specs", "--fail-on", "critical", code=0)
    peak(scratch, monkeypatch, "specs", "new/specs", "--fail-on", "review", code=1)
    peak(scratch, monkeypatch, "specs", "new/specs", code=1)


def test_json_and_markdown(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(scratch / "new" / LIMITS, "max_daily_loss 2%", "max_daily_loss 3%")
    out = peak(scratch, monkeypatch, "specs", "new/specs", "--format", "json", code=1).stdout
    doc = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert [(c["spec"], c["level"]) for c in doc["changes"]] == [
        ("live_moderate", "critical"), ("multi_style_moderate", "critical")]
    assert peak(scratch, monkeypatch, "specs", "new/specs", "--json", code=1).stdout == out
    markdown = peak(scratch, monkeypatch, "specs", "new/specs", "--format", "markdown",
                    code=1).stdout
    assert "| **critical** | `live_moderate` (risk) | risk_limit: max_daily_loss | `2%` | " \
           "`3%` |" in markdown.splitlines()


def test_specs_that_do_not_check_exit_1_with_diagnostics(
        scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(scratch / "new" / LIMITS, "max_daily_loss 2%", "max_daily_loss 2")
    result = peak(scratch, monkeypatch, "specs", "new/specs", code=1)
    assert result.stdout == "" and "error[T002]" in result.stderr
    doc = json.loads(peak(scratch, monkeypatch, "specs", "new/specs", "--json",
                          code=1).stdout)
    assert [d["code"] for d in doc["diagnostics"]] == ["T002"]


@pytest.mark.parametrize(("argv", "code"), [
    (["specs", "nope"], "U001"),
    (["specs", LIMITS], "U007"),
    (["specs"], "U008"),
    (["main"], "U011"),
    (["specs", "new/specs", "--fail-on", "sometimes"], "U005"),
    (["specs", "new/specs", "--format", "html"], "U005"),
])
def test_bad_input_is_a_usage_error_and_writes_nothing(
        scratch: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], code: str) -> None:
    before = sorted(p.as_posix() for p in scratch.rglob("*"))
    result = peak(scratch, monkeypatch, *argv, code=2)
    assert f"error[{code}]" in result.stderr and result.stdout == ""
    doc = json.loads(peak(scratch, monkeypatch, "--json", *argv, code=2).stdout)
    assert [d["code"] for d in doc["diagnostics"]] == [code]
    assert sorted(p.as_posix() for p in scratch.rglob("*")) == before


def test_revisions_in_a_repository(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       cwd=scratch, check=True, capture_output=True)

    shutil.rmtree(scratch / "new")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    peak(scratch, monkeypatch, "HEAD", code=0)
    edit(scratch / LIMITS, "max_daily_loss 2%", "max_daily_loss 3%")
    text = peak(scratch, monkeypatch, "HEAD", "--fail-on", "critical", code=1).stdout
    assert "critical  risk_limit          max_daily_loss loosened: 2% → 3%" in text
    git("commit", "-qam", "two")
    peak(scratch, monkeypatch, "HEAD~1..HEAD", "--fail-on", "critical", code=1)
    peak(scratch, monkeypatch, "HEAD", code=0)
    result = peak(scratch, monkeypatch, "HEAD~7", code=2)
    assert "error[U010] unknown git revision `HEAD~7`" in result.stderr
