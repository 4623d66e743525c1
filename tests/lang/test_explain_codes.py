"""`peak explain` reads docs/diagnostics.md: from the checkout, or from the installed wheel."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from peakdsl.lang import explain as explain_mod
from peakdsl.lang.diagnostics import CODES
from peakdsl.lang.explain import diagnostics_page, explain, normalise, sections

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "diagnostics.md"


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_has_an_entry(code: str) -> None:
    entry = explain(code)
    assert entry is not None and entry.title == CODES[code]
    assert entry.text.startswith("**What it means.**")


@pytest.mark.parametrize(("typed", "code"), [("p9", "P009"), (" n018 ", "N018"),
                                             ("T1", "T001"), ("P0009", "P0009")])
def test_codes_typed_from_memory(typed: str, code: str) -> None:
    assert normalise(typed) == code


def test_an_entry_ends_where_the_next_heading_starts() -> None:
    entries = sections("# P\n\n## P001 — a\n\ntext a\n\n## P002 — b\n\ntext b\n\n# N\n\nx\n")
    assert {c: (e.title, e.text) for c, e in entries.items()} == {
        "P001": ("a", "text a"), "P002": ("b", "text b")}


def test_the_packaged_page_wins_over_the_checkout(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "diagnostics.md").write_text("## P001 — packaged\n\nhere\n", "utf-8")
    monkeypatch.setattr(explain_mod.resources, "files", lambda _package: tmp_path)
    assert diagnostics_page().startswith("## P001 — packaged")
    monkeypatch.undo()
    assert diagnostics_page() == PAGE.read_text("utf-8")


@pytest.mark.slow
def test_the_wheel_ships_the_page_and_explain_runs_from_it(tmp_path: Path) -> None:
    """Build the wheel, install it outside the source tree, run `peak explain` there."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("peakdsl-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("peakdsl/docs/diagnostics.md") == PAGE.read_bytes()
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True)
    deps = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{site}:{deps}", "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = subprocess.run([sys.executable, "-I", "-c",
                          f"import sys; sys.path[:0] = [{str(site)!r}, {deps!r}]; "
                          "import peakdsl.cli; print(peakdsl.cli.__file__, file=sys.stderr); "
                          "peakdsl.cli.main(['explain', 'P009'])"],
                         cwd=work, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith(str(site)), run.stderr  # the installed copy, not the checkout
    assert run.stdout.startswith("P009 — comparisons do not chain\n")
