"""`peak init` through the CLI: `check`, `compile` and `backtest` work in the new project at
once; a second `init` refuses (U014, exit 2) and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.project_init import EXAMPLE, EXAMPLE_PATH


def peak(*argv: str) -> tuple[int, str, str]:
    run = CliRunner().invoke(app, list(argv), prog_name="peak")
    assert run.exception is None or isinstance(run.exception, SystemExit), run.exception
    return run.exit_code, run.stdout, run.stderr


def test_a_fresh_project_checks_compiles_and_backtests(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = peak("init", "lab")
    assert code == 0
    assert out.splitlines()[0] == "created a peak project in lab/"
    assert out.splitlines()[-4:] == ["  cd lab", "  peak check", "  peak compile",
                                     f"  peak backtest {EXAMPLE_PATH}"]
    monkeypatch.chdir(tmp_path / "lab")
    assert peak("check") == (0, "", "ok: no problems found\n")
    code, _, err = peak("compile")
    assert code == 0, err
    artifact = json.loads((tmp_path / "lab/compiled/strategy" / f"{EXAMPLE}.json").read_text())
    assert artifact["name"] == EXAMPLE
    assert peak("compile", "--check")[0] == 0
    code, out, err = peak("backtest", EXAMPLE_PATH, "--json", "--no-record")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["data"]["synthetic"] is True and doc["metrics"]["trades"] > 0


def test_init_here_says_no_cd_and_json_lists_the_files(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = peak("init")
    assert code == 0 and "  cd " not in out and out.startswith("created a peak project in ./")
    code, out, _ = peak("init", "other", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["errors"] == 0 and doc["written"][0] == EXAMPLE_PATH
    assert Path(doc["root"]) == tmp_path / "other"


def test_a_second_init_refuses_with_u014_and_exit_2(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert peak("init", "lab")[0] == 0
    spec = tmp_path / "lab" / EXAMPLE_PATH
    spec.write_text(spec.read_text().replace("fast: int = 20", "fast: int = 25"))
    code, out, err = peak("init", "lab")
    assert code == 2 and out == ""
    assert err.count("error[U014]") == 5 and "Traceback" not in err
    assert "fast: int = 25" in spec.read_text()  # the user's edit survived
    code, out, _ = peak("init", "lab", "--json")
    assert code == 2 and [d["code"] for d in json.loads(out)["diagnostics"]] == ["U014"] * 5
