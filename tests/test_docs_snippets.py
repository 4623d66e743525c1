"""Every CLI snippet in the README and docs/ runs, and every spec in the README checks.

Console blocks: each `$ peak …` line runs in a scratch copy of the project; it must exit 0
unless the line ends with `# exit N`. The commands run in-process (Typer's runner, in the
project folder), as `peak` would run them but without paying Python's start-up and peak's
imports 75 times; `tests/test_packaging.py` and the CLI tests run real `peak` processes.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl import api
from peakdsl.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(kind: str) -> list[tuple[str, str]]:
    return [(path.name, body) for path in DOCS
            for lang, body in FENCE.findall(path.read_text()) if lang == kind]


def commands() -> list[tuple[str, str, int]]:
    out = []
    for doc, body in blocks("console"):
        for line in body.splitlines():
            if line.startswith("$ "):
                command, _, tail = line[2:].partition("# exit ")
                out.append((doc, command.strip(), int(tail) if tail else 0))
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    for folder in ("specs", "compiled"):
        shutil.copytree(ROOT / folder, root / folder)
    return root


def test_readme_has_console_snippets() -> None:
    assert any(doc == "README.md" for doc, _, _ in commands())


@pytest.mark.parametrize(("doc", "command", "code"), commands(),
                         ids=[f"{d}:{c}" for d, c, _ in commands()])
def test_console_snippet_runs(project: Path, doc: str, command: str, code: int,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    argv = shlex.split(command)
    assert argv[0] == "peak", f"{doc}: only peak commands belong in console blocks"
    monkeypatch.chdir(project)
    run = CliRunner().invoke(app, argv[1:], prog_name="peak")
    crashed = run.exception is not None and not isinstance(run.exception, SystemExit)
    assert not crashed, f"{doc}: `{command}` raised {run.exception!r}"
    assert run.exit_code == code, f"{doc}: `{command}`\n{run.output}"
    assert "Traceback" not in run.output


def test_readme_specs_check_cleanly(tmp_path: Path) -> None:
    specs = [body for doc, body in blocks("peak") if doc == "README.md"]
    assert specs
    for body in specs:
        name = re.search(r"^\w+\s+(\w+)", body, re.M)
        assert name is not None
        path = tmp_path / f"{name.group(1)}.peak"
        path.write_text(body)
        result = api.check([str(path)])
        assert result.diagnostics == (), result.diagnostics
