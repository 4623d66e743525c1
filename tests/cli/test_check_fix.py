"""`peak check --fix` and `--diff`, and `peak explain`, through the CLI: exit codes, output,
what is written, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app

ROOT = Path(__file__).resolve().parents[2]
PORTED = """\
strategy ported {
    market BTC/EUR
    timeframe 4H
    fastMA = ta.ema(close, 12)
    entry long when 30 < rsi(close, 14) < 70 && close crosses above fastMA
}
"""
FIXED = """\
strategy ported {
    market BTC/EUR
    timeframe 4h
    let fast_ma = ema(close, 12)
    entry long when 30 < rsi(close, 14) and rsi(close, 14) < 70 and crossover(close, fast_ma)
}
"""


def peak(*argv: str) -> tuple[int, str, str]:
    run = CliRunner().invoke(app, list(argv), prog_name="peak")
    assert run.exception is None or isinstance(run.exception, SystemExit), run.exception
    assert "Traceback" not in run.stdout + run.stderr
    return run.exit_code, run.stdout, run.stderr


@pytest.fixture
def ported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ported.peak"
    path.write_text(PORTED, encoding="utf-8")
    return path


def test_check_reports_each_idiom_with_its_fix(ported: Path) -> None:
    code, _, err = peak("check", "ported.peak")
    assert code == 1
    for fragment in ("error[P015]", "error[P010]", "error[P011]", "error[P009]", "error[P002]",
                     "error[P012]", "= fix: timeframe 4h  (`peak check --fix` applies it)"):
        assert fragment in err


def test_diff_shows_the_fixes_and_writes_nothing(ported: Path) -> None:
    code, out, err = peak("check", "--diff", "ported.peak")
    assert code == 1
    assert out.startswith("--- a/ported.peak\n+++ b/ported.peak\n")
    assert "\n-    timeframe 4H\n" in out and "\n+    timeframe 4h\n" in out
    assert "fix(es) in 1 file(s) would be applied" in err
    assert ported.read_text("utf-8") == PORTED


def test_fix_rewrites_the_file_then_checks_it_again(ported: Path) -> None:
    code, _, err = peak("check", "--fix", "ported.peak")
    assert code == 0, err
    assert ported.read_text("utf-8") == FIXED
    assert err.splitlines()[0].startswith("fixed 8 problem(s) in ported.peak: ")
    assert err.endswith("ok: no problems found\n")
    assert peak("check", "--diff", "ported.peak") == (0, "", "nothing to fix\n")


def test_fix_json_says_what_it_fixed_and_what_is_left(ported: Path) -> None:
    ported.write_text(PORTED.replace("entry long", "let idle = 1 = 2\n    entry long"), "utf-8")
    code, out, _ = peak("check", "--fix", "--json", "ported.peak")
    doc = json.loads(out)
    assert code == 0  # `1 == 2` is left as a warning: `idle` is never used
    assert [d["code"] for d in doc["diagnostics"]] == ["W002"]
    assert doc["fixed"][0]["path"] == "ported.peak" and doc["fixed"][0]["fixes"] == 9


def test_diff_with_json_is_a_usage_error(ported: Path) -> None:
    code, out, _ = peak("check", "--diff", "--json", "ported.peak")
    assert code == 2
    assert json.loads(out)["diagnostics"][0]["code"] == "U005"


def test_fix_changes_no_library_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    before = {p: p.read_bytes() for p in (tmp_path / "specs").rglob("*.peak")}
    monkeypatch.chdir(tmp_path)
    assert peak("check", "--diff") == (0, "", "nothing to fix\n")
    code, _, err = peak("check", "--fix")
    assert (code, err) == (0, "ok: no problems found\n")
    assert {p: p.read_bytes() for p in before} == before


def test_explain_prints_the_docs_entry() -> None:
    code, out, _ = peak("explain", "P009")
    assert code == 0
    assert out.startswith("P009 — comparisons do not chain\n\n**What it means.**")
    assert "**Fix.**" in out
    assert peak("explain", "p9")[1] == out  # typed from memory


def test_explain_a_check_code() -> None:
    code, out, _ = peak("explain", "n18")
    assert code == 0 and out.startswith("N018 — a let refers to itself\n")
    assert "state trail = max(trail[1]" in out


@pytest.mark.parametrize("code_arg", ["Z999", "P0009", "hello"])
def test_explain_unknown_code_is_a_usage_error(code_arg: str) -> None:
    code, _, err = peak("explain", code_arg)
    assert code == 2
    assert f"error[U005] unknown diagnostic code `{code_arg}`" in err
