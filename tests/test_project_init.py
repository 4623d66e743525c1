"""`peakdsl.project_init`: the files of a new project, and refusals that write nothing."""

from __future__ import annotations

from pathlib import Path

from peakdsl import api
from peakdsl.lang.fmt import format_paths
from peakdsl.project_init import EXAMPLE_PATH, init_project, templates

FILES = [EXAMPLE_PATH, "specs/portfolios/.gitkeep", "specs/risk/.gitkeep", "README.md",
         ".gitignore"]


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_new_folder_gets_the_whole_tree(tmp_path: Path) -> None:
    result = init_project(tmp_path / "lab")
    assert result.ok and result.diagnostics == ()
    assert list(result.written) == FILES
    assert tree(tmp_path / "lab") == sorted(FILES)
    assert (tmp_path / "lab/README.md").read_text().startswith("# lab\n")
    assert (tmp_path / "lab" / EXAMPLE_PATH).read_text() == templates("lab")[EXAMPLE_PATH]


def test_the_gitignore_ignores_the_cache_and_registry_but_not_compiled(tmp_path: Path) -> None:
    init_project(tmp_path)
    rules = [line for line in (tmp_path / ".gitignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules == [".peak/"]


def test_the_example_checks_without_a_diagnostic_and_is_formatted(tmp_path: Path) -> None:
    init_project(tmp_path)
    spec = str(tmp_path / EXAMPLE_PATH)
    assert api.check([spec]).diagnostics == ()
    assert [r.changed for r in format_paths([spec], True)] == [False]


def test_an_existing_file_is_u014_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine\n")
    (tmp_path / "specs/risk").mkdir(parents=True)
    (tmp_path / "specs/risk/.gitkeep").write_text("")
    result = init_project(tmp_path)
    assert not result.ok and result.written == ()
    assert [(d.code, Path(d.path).name) for d in result.diagnostics] == [
        ("U014", ".gitkeep"), ("U014", "README.md")]
    assert tree(tmp_path) == ["README.md", "specs/risk/.gitkeep"]
    assert (tmp_path / "README.md").read_text() == "mine\n"


def test_a_file_where_a_folder_goes_is_u007_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs/risk").write_text("not a folder")
    result = init_project(tmp_path)
    assert [(d.code, d.message.endswith("specs/risk is a file, not a folder"))
            for d in result.diagnostics] == [("U007", True)]
    assert tree(tmp_path) == ["specs/risk"]
    target = tmp_path / "taken"
    target.write_text("")
    assert [d.code for d in init_project(target).diagnostics] == ["U007"]
