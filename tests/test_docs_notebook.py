"""docs/notebook.md runs: its ```python blocks, in order, in one interpreter, in a scratch copy
of the project, and each prints exactly the ```text block that follows it (when one does).

The blocks are written into one script, a marker line printed before each, and run by a fresh
Python (so the page's imports, working directory and registry are a notebook's own, not the
test session's); its output is cut at the markers and compared block by block, ignoring
trailing spaces (pandas pads some lines). Any exception, and any warning on stderr, fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "notebook.md"
CELL = re.compile(r"```python\n(.*?)```(?:\s*```text\n(.*?)```)?", re.S)
MARK = "@@notebook-cell@@"


def cells() -> list[tuple[str, str | None]]:
    """(code, the output shown under it or None), in page order."""
    return [(code, shown if shown else None) for code, shown in CELL.findall(DOC.read_text())]


def script(blocks: list[tuple[str, str | None]]) -> str:
    return "".join(f"print({MARK!r})\n{code}" for code, _ in blocks)


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_the_page_has_cells_with_outputs() -> None:
    found = cells()
    assert len(found) >= 6 and sum(shown is not None for _, shown in found) >= 6


def test_the_notebook_page_runs_and_prints_what_it_shows(tmp_path: Path) -> None:
    for folder in ("specs", "compiled"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    found = cells()
    (tmp_path / "notebook.py").write_text(script(found), encoding="utf-8")
    proc = subprocess.run([sys.executable, "notebook.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    printed = proc.stdout.split(MARK + "\n")[1:]
    assert len(printed) == len(found)
    for (code, shown), got in zip(found, printed, strict=True):
        if shown is not None:
            assert lines(got) == lines(shown), f"the block\n{code}\nprinted\n{got}"
