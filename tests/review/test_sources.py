"""The sides of a diff: git revisions read without touching the work tree, and bad arguments.

Each git test builds a repository in a tmp folder (init, commit, change) and checks, besides
the diff, that the work tree, the index and the refs are byte for byte what they were.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from peakdsl import api
from peakdsl.lang.project import UsageError
from peakdsl.review.sources import split_range

RISK = """\
# live limits
risk limits {{
    max_order_notional 1000 EUR
    max_symbol_exposure 30%
    max_total_exposure 80%
    max_open_positions 3
    max_daily_loss {loss}
    max_orders_per_minute 10
}}
"""
GATE = "promotion gate {\n    require sharpe >= 1.5\n}\n"


def git(repo: Path, *args: str) -> str:
    run = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                          "-c", "init.defaultBranch=main", *args], cwd=repo,
                         capture_output=True, text=True, check=True)
    return run.stdout


def state(repo: Path) -> dict[str, str]:
    """Every file under ``repo`` (``.git`` included: index, refs, HEAD) → sha256 and mtime."""
    return {p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            + f"@{p.stat().st_mtime_ns}" for p in sorted(repo.rglob("*")) if p.is_file()}


def write_risk(project: Path, loss: str) -> None:
    folder = project / "specs" / "risk"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "limits.peak").write_text(RISK.format(loss=loss))
    (folder / "gate.peak").write_text(GATE)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose first commit has `max_daily_loss 2%`."""
    git(tmp_path, "init", "-q")
    write_risk(tmp_path, "2%")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    return tmp_path


def test_revision_against_the_work_tree_leaves_it_untouched(repo: Path) -> None:
    write_risk(repo, "3%")
    before = state(repo)
    result = api.diff("HEAD", root=repo)
    assert state(repo) == before
    assert [(c.spec, c.kind, c.level, c.before, c.after) for c in result.changes] == [
        ("limits", "risk_limit", "critical", "2%", "3%")]
    assert (result.before.form, result.before.label) == ("revision", "HEAD")
    assert result.before.commit == git(repo, "rev-parse", "HEAD").strip()
    assert (result.after.form, result.after.commit) == ("worktree", None)


def test_a_range_of_two_commits(repo: Path) -> None:
    write_risk(repo, "1%")
    git(repo, "commit", "-qam", "two")
    before = state(repo)
    result = api.diff("HEAD~1..HEAD", root=repo)
    assert [(c.direction, c.level) for c in result.changes] == [("tightened", "review")]
    assert api.diff("HEAD~1", "HEAD", root=repo) == result
    assert api.diff("HEAD~1..", root=repo) == result.model_copy(update={
        "after": result.after.model_copy(update={"label": "HEAD"})})
    assert state(repo) == before


def test_nothing_changed_in_a_clean_work_tree(repo: Path) -> None:
    result = api.diff("main", root=repo)
    assert result.changes == [] and [s.status for s in result.specs] == ["unchanged"] * 2


def test_a_project_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    project = tmp_path / "desk" / "btc"
    write_risk(project, "2%")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    write_risk(project, "4%")
    result = api.diff("HEAD", root=project)
    assert [(c.spec, c.before, c.after) for c in result.changes] == [("limits", "2%", "4%")]


def test_a_revision_without_specs_adds_every_spec(repo: Path) -> None:
    (repo / "README").write_text("x")
    git(repo, "rm", "-rq", "specs")
    git(repo, "add", "README")
    git(repo, "commit", "-qm", "no specs")
    write_risk(repo, "2%")
    result = api.diff("HEAD", root=repo)
    assert [(c.spec, c.kind) for c in result.changes] == [
        ("limits", "spec_added"), ("gate", "spec_added")]


def test_a_spec_that_does_not_check_in_a_revision_is_named_by_the_revision(
        repo: Path) -> None:
    (repo / "specs" / "risk" / "gate.peak").write_text("promotion gate {\n  require shrape "
                                                       ">= 1\n}\n")
    git(repo, "commit", "-qam", "typo")
    write_risk(repo, "2%")
    (repo / "specs" / "risk" / "gate.peak").write_text(GATE)
    with pytest.raises(api.SpecError) as caught:
        api.diff("HEAD", root=repo)
    assert [(d.code, d.path) for d in caught.value.diagnostics] == [
        ("N010", "HEAD:specs/risk/gate.peak")]
    assert "shrape" in caught.value.texts["HEAD:specs/risk/gate.peak"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("rev", "message"), [
    ("mian", "unknown git revision `mian`"),
    ("-p", "unknown git revision `-p`"),
    ("HEAD~5", "unknown git revision `HEAD~5`"),
    ("main...HEAD", "a symmetric range"),
])
def test_unknown_revisions_are_U010(repo: Path, rev: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        api.diff(rev, root=repo)
    assert caught.value.diagnostic.code == "U010"
    assert message in caught.value.diagnostic.message


def test_a_misspelt_branch_gets_a_suggestion(repo: Path) -> None:
    with pytest.raises(UsageError) as caught:
        api.diff("mian", root=repo)
    assert caught.value.diagnostic.help == "did you mean `main`?"


def test_revisions_outside_a_repository_are_U011(tmp_path: Path) -> None:
    write_risk(tmp_path, "2%")
    with pytest.raises(UsageError) as caught:
        api.diff("main", root=tmp_path)
    assert caught.value.diagnostic.code == "U011"


def test_path_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_risk(tmp_path / "a", "2%")
    monkeypatch.chdir(tmp_path)
    cases = [(("a", "nope"), "U001"), (("a", "a/specs/risk/limits.peak"), "U007"),
             (("a/specs",), "U008")]
    for args, code in cases:
        with pytest.raises(UsageError) as caught:
            api.diff(*args)
        assert caught.value.diagnostic.code == code, args


def test_a_copy_of_a_spec_beside_the_project_is_compared_with_its_original(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_risk(tmp_path, "3%")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "limits.peak").write_text(RISK.format(loss="2%"))
    monkeypatch.chdir(tmp_path)
    result = api.diff("old/limits.peak", "specs/risk/limits.peak")
    assert [(c.kind, c.before, c.after) for c in result.changes] == [
        ("risk_limit", "2%", "3%")]
    assert (result.before.form, result.after.form) == ("file", "file")


def test_split_range() -> None:
    assert split_range("v1..v2") == ("v1", "v2")
    assert split_range("..v2") == ("HEAD", "v2")
    assert split_range("v1..") == ("v1", "HEAD")
