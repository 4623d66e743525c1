"""The project stage (files → checked project, cross-file checks) and ``peak check`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from peakdsl.lang.project import (
    Project,
    UsageError,
    discover,
    display_path,
    find_root,
    load_project,
)

SpecWriter = Callable[[str, str], Path]
ValidText = Callable[[str, str], str]


def strategy(name: str, extra: str = "") -> str:
    return f"""strategy {name} {{
    market BTC/EUR
    timeframe 1h
    param fast: int = 20 in 5..50 step 5
    param slow: int = 60 in 40..200 step 10
    require fast < slow
    entry long when crossover(sma(close, fast), sma(close, slow))
    {extra}
}}
"""


def portfolio(name: str, *lines: str) -> str:
    return f"portfolio {name} {{\n    capital 10000 EUR\n" + "".join(
        f"    {line}\n" for line in lines) + "}\n"


def load(tmp_path: Path, *paths: str) -> Project:
    return load_project([str(tmp_path / p) for p in paths] or [str(tmp_path / "specs")],
                        root=tmp_path)


def triples(project: Project, tmp_path: Path) -> list[tuple[str, int, str]]:
    return [(Path(d.path).resolve().relative_to(tmp_path.resolve()).as_posix(), d.span.line,
             d.code) for d in project.diagnostics]


@pytest.fixture
def library(write_spec: SpecWriter, valid_text: ValidText, tmp_path: Path) -> Path:
    """A small valid project: two strategies, a risk spec, a promotion gate, a portfolio."""
    write_spec("specs/strategies/ma_btc.peak", strategy("ma_btc"))
    write_spec("specs/strategies/ma_eth.peak", strategy("ma_eth"))
    write_spec("specs/risk/live.peak", valid_text("risk", "live"))
    write_spec("specs/risk/gate.peak", valid_text("promotion", "gate"))
    write_spec("specs/portfolios/core.peak", portfolio(
        "core", "component ma_btc weight 40% with { fast = 10, slow = 50 }",
        "component ma_eth weight 60%", "risk live"))
    return tmp_path


# ---------------------------------------------------------------- loading and resolving


def test_valid_project(library: Path) -> None:
    project = load(library)
    assert project.ok and project.diagnostics == []
    assert sorted(project.specs) == ["core", "gate", "live", "ma_btc", "ma_eth"]
    assert [s.name for s in project.ordered()] == ["live", "gate", "ma_btc", "ma_eth", "core"]
    assert project.files["core"] == (library / "specs/portfolios/core.peak").resolve()


def test_references_are_resolved_lazily(library: Path, write_spec: SpecWriter) -> None:
    """Checking one portfolio loads what it references, not the rest of the library."""
    write_spec("specs/strategies/broken.peak", "strategy broken { entry long when clsoe }")
    project = load(library, "specs/portfolios/core.peak")
    assert project.ok
    assert project.requested == ["core"]
    assert sorted(project.specs) == ["core", "live", "ma_btc", "ma_eth"]


def test_nested_portfolios_are_fine(library: Path, write_spec: SpecWriter) -> None:
    write_spec("specs/portfolios/outer.peak", portfolio(
        "outer", "component core weight 50%", "component ma_eth weight 50%"))
    project = load(library, "specs/portfolios/outer.peak")
    assert project.ok
    names = [s.name for s in project.ordered()]
    assert names.index("core") < names.index("outer")


def test_unresolved_reference_suggests_a_name(library: Path, write_spec: SpecWriter) -> None:
    write_spec("specs/portfolios/typo.peak", portfolio(
        "typo", "component ma_btcc weight 100%", "risk liv"))
    project = load(library, "specs/portfolios/typo.peak")
    found = [(d.code, d.span.line, d.span.col, d.help) for d in project.diagnostics]
    assert found == [("N006", 3, 15, "did you mean `ma_btc` or `ma_eth`?"),
                     ("N006", 4, 10, "did you mean `live`?")]


def test_reference_to_the_wrong_kind(library: Path, write_spec: SpecWriter) -> None:
    write_spec("specs/portfolios/mixed.peak", portfolio(
        "mixed", "component live weight 100%", "risk ma_btc"))
    project = load(library, "specs/portfolios/mixed.peak")
    assert [d.code for d in project.diagnostics] == ["N007", "N007"]
    label = project.diagnostics[1].labels[0]
    assert label.message == "declared here" and label.path.endswith("ma_btc.peak")


def test_a_referenced_spec_with_errors_is_not_also_unresolved(
        library: Path, write_spec: SpecWriter) -> None:
    write_spec("specs/strategies/broken.peak", strategy("broken", "stop_loss 150%"))
    write_spec("specs/portfolios/holder.peak", portfolio("holder",
                                                         "component broken weight 100%"))
    project = load(library, "specs/portfolios/holder.peak")
    assert triples(project, library) == [("specs/strategies/broken.peak", 8, "T009")]


@pytest.mark.parametrize(("overrides", "expected"), [
    ("fast = 10, slow = 50", []),
    ("fst = 10", [("N014", "did you mean `fast`?")]),
    ("fast = 100", [("T010", "`fast` is declared in")]),
    ("fast = 7", [("T010", "`fast` is declared in")]),
    ("fast = 2.5", [("T010", "`fast` is declared in")]),
    ("fast = 10%", [("T010", "`fast` is declared in")]),
    ("fast = 50, slow = 40", [("T010", "")]),  # both in range; `require fast < slow` fails
])
def test_overrides(library: Path, write_spec: SpecWriter, overrides: str,
                   expected: list[tuple[str, str]]) -> None:
    write_spec("specs/portfolios/tuned.peak", portfolio(
        "tuned", f"component ma_btc weight 100% with {{ {overrides} }}"))
    project = load(library, "specs/portfolios/tuned.peak")
    got = [(d.code, d.help) for d in project.diagnostics]
    assert [c for c, _ in got] == [c for c, _ in expected]
    for (_, help_), (_, wanted) in zip(got, expected, strict=True):
        assert help_.startswith(wanted)


def test_override_violating_a_require_points_at_the_constraint(
        library: Path, write_spec: SpecWriter) -> None:
    write_spec("specs/portfolios/tuned.peak", portfolio(
        "tuned", "component ma_btc weight 100% with { fast = 50, slow = 40 }"))
    (d,) = load(library, "specs/portfolios/tuned.peak").diagnostics
    assert d.labels[0].message == "constraint" and d.labels[0].span.line == 6


# ---------------------------------------------------------------- cycles


def test_two_portfolio_cycle_is_reported_once(library: Path, write_spec: SpecWriter) -> None:
    write_spec("specs/portfolios/a.peak", portfolio("a", "component b weight 50%",
                                                     "component ma_btc weight 50%"))
    write_spec("specs/portfolios/b.peak", portfolio("b", "component a weight 50%",
                                                     "component ma_eth weight 50%"))
    project = load(library)
    cycles = [d for d in project.diagnostics if d.code == "N008"]
    assert len(cycles) == 1
    assert cycles[0].message == "reference cycle: a → b → a"
    assert project.diagnostics == cycles


def test_three_portfolio_cycle(library: Path, write_spec: SpecWriter) -> None:
    for name, target in (("a", "b"), ("b", "c"), ("c", "a")):
        write_spec(f"specs/portfolios/{name}.peak", portfolio(
            name, f"component {target} weight 100%"))
    project = load(library, "specs/portfolios/a.peak")
    assert [d.message for d in project.diagnostics] == ["reference cycle: a → b → c → a"]


def test_self_reference(write_spec: SpecWriter, tmp_path: Path) -> None:
    write_spec("specs/portfolios/me.peak", portfolio("me", "component me weight 100%"))
    project = load(tmp_path)
    assert [(d.code, d.message) for d in project.diagnostics] == [
        ("N008", "reference cycle: me → me")]


# ---------------------------------------------------------------- names and files


def test_duplicate_names_across_folders(write_spec: SpecWriter, tmp_path: Path) -> None:
    write_spec("specs/strategies/ma.peak", strategy("ma"))
    write_spec("specs/strategies/old/ma.peak", strategy("ma"))
    project = load(tmp_path)
    assert triples(project, tmp_path) == [("specs/strategies/ma.peak", 1, "N004"),
                                          ("specs/strategies/old/ma.peak", 1, "N004")]
    assert "specs/strategies/old/ma.peak" in project.diagnostics[0].help


def test_declaration_name_must_match_file(write_spec: SpecWriter, tmp_path: Path) -> None:
    write_spec("specs/strategies/ma.peak", strategy("ma_btc"))
    (d,) = load(tmp_path).diagnostics
    assert (d.code, d.span.line, d.span.col) == ("N005", 1, 10)
    assert d.help == "rename it `ma` or the file `ma_btc.peak`"


def test_output_is_sorted_by_file_and_position(write_spec: SpecWriter, tmp_path: Path) -> None:
    write_spec("specs/strategies/zz.peak", strategy("zz", "stop_loss 150%\n    fees 1bps"))
    write_spec("specs/strategies/aa.peak", strategy("aa", "take_profit 0%"))
    write_spec("specs/strategies/mm.peak", "strategy mm {\n  let = 1\n}")
    project = load(tmp_path)
    assert triples(project, tmp_path) == [
        ("specs/strategies/aa.peak", 8, "T009"),
        ("specs/strategies/mm.peak", 2, "P001"),
        ("specs/strategies/zz.peak", 8, "T009"),
        ("specs/strategies/zz.peak", 9, "N003"),
    ]
    keys = [d.sort_key for d in project.diagnostics]
    assert keys == sorted(keys)


def test_a_syntax_error_in_one_file_does_not_stop_the_others(
        write_spec: SpecWriter, tmp_path: Path) -> None:
    write_spec("specs/strategies/bad.peak", "strategy bad {")
    write_spec("specs/strategies/good.peak", strategy("good", "stop_loss 150%"))
    assert [d.code for d in load(tmp_path).diagnostics] == ["P003", "T009"]


# ---------------------------------------------------------------- discovery and paths


def test_discover_recurses_sorts_and_deduplicates(write_spec: SpecWriter,
                                                  tmp_path: Path) -> None:
    b = write_spec("specs/b.peak", "")
    a = write_spec("specs/sub/a.peak", "")
    write_spec("specs/notes.txt", "")
    found = discover([str(tmp_path / "specs"), str(b)])
    assert found == sorted([a.resolve(), b.resolve()])


def test_discover_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as missing:
        discover([str(tmp_path / "nope")])
    assert missing.value.diagnostic.code == "U001"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as empty:
        discover([str(tmp_path / "empty")])
    assert empty.value.diagnostic.code == "U002"


def test_find_root_is_the_nearest_folder_with_specs(tmp_path: Path) -> None:
    (tmp_path / "specs" / "strategies").mkdir(parents=True)
    assert find_root(tmp_path / "specs" / "strategies") == tmp_path.resolve()
    assert find_root(tmp_path) == tmp_path.resolve()


def test_display_path_is_relative_to_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "specs" / "x.peak"
    monkeypatch.chdir(tmp_path)
    assert display_path(target) == "specs/x.peak"
    monkeypatch.chdir(tmp_path.parent)
    assert display_path(target) == f"{tmp_path.name}/specs/x.peak"


# ---------------------------------------------------------------- the command line

JSON_KEYS = {"code", "title", "severity", "message", "path", "span", "help", "labels",
             "fix"}


def peak(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    run = subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr
    return run


@pytest.fixture
def cli_project(library: Path, write_spec: SpecWriter) -> Path:
    write_spec("broken/typo.peak", strategy("typo", "stop_los 5%"))
    write_spec("broken/lookahead.peak", strategy("lookahead", "exit long when close[-1] > 1"))
    write_spec("warn/unused.peak", strategy("unused", "let idle = sma(close, 5)"))
    write_spec("garbage/noise.peak", "")
    (library / "garbage" / "noise.peak").write_bytes(b"\x00\xff\xfe strategy { ((((")
    write_spec("garbage/escape.peak",
               "strategy escape {\n  description \"\x1b[2J\x1b]0;pwned\x07\"\n}")
    (library / "empty").mkdir()
    return library


def test_cli_ok_and_warnings_exit_0(cli_project: Path) -> None:
    ok = peak(cli_project, "check")
    assert ok.returncode == 0, ok.stderr
    assert "ok: no problems found" in ok.stderr
    warned = peak(cli_project, "check", "warn")
    assert warned.returncode == 0
    assert "warning[W002]" in warned.stderr and "found 1 warning" in warned.stderr


def test_cli_spec_errors_exit_1_with_snippets(cli_project: Path) -> None:
    run = peak(cli_project, "check", "broken")
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert "broken/lookahead.peak:8:26: error[L001] look-ahead: `[-1]` reads a future bar" \
        in lines
    assert "broken/typo.peak:8:5: error[N003] unknown setting `stop_los` in a strategy" in lines
    head = lines.index("broken/typo.peak:8:5: error[N003] unknown setting `stop_los` in a "
                       "strategy")
    assert lines[head + 2] == "8 |     stop_los 5%"
    assert lines[head + 3] == "  |     ^^^^^^^^"
    assert lines[head + 4] == "  = help: did you mean `stop_loss`?"
    assert lines[-1] == "found 2 errors"


def test_cli_json_output(cli_project: Path) -> None:
    run = peak(cli_project, "check", "broken", "--format", "json")
    assert run.returncode == 1
    doc = json.loads(run.stdout)
    assert set(doc) == {"diagnostics", "errors", "warnings"}
    assert (doc["errors"], doc["warnings"]) == (2, 0)
    for item in doc["diagnostics"]:
        assert set(item) == JSON_KEYS
        assert set(item["span"]) == {"line", "col", "end_line", "end_col"}
        assert item["severity"] == "error"
    assert [(i["code"], i["path"], i["span"]["line"]) for i in doc["diagnostics"]] == [
        ("L001", "broken/lookahead.peak", 8), ("N003", "broken/typo.peak", 8)]
    assert doc["diagnostics"][1]["title"] == "unknown setting"


def test_cli_json_when_clean(cli_project: Path) -> None:
    run = peak(cli_project, "check", "--format", "json")
    assert run.returncode == 0
    assert json.loads(run.stdout) == {"diagnostics": [], "errors": 0, "warnings": 0}


@pytest.mark.parametrize(("args", "code"), [
    (("check", "missing"), "U001"),
    (("check", "empty"), "U002"),
])
def test_cli_usage_errors_exit_2(cli_project: Path, args: tuple[str, ...], code: str) -> None:
    run = peak(cli_project, *args)
    assert run.returncode == 2
    assert f"error[{code}]" in run.stderr
    as_json = peak(cli_project, *args, "--format", "json")
    assert as_json.returncode == 2
    assert [d["code"] for d in json.loads(as_json.stdout)["diagnostics"]] == [code]


def test_cli_bad_option_exits_2(cli_project: Path) -> None:
    assert peak(cli_project, "check", "--format", "xml").returncode == 2


def test_cli_hostile_file_is_a_diagnostic(cli_project: Path) -> None:
    run = peak(cli_project, "check", "garbage")
    assert run.returncode == 1
    assert "garbage/escape.peak:2:16: error[P002] control character U+001B in source" \
        in run.stderr
    assert "garbage/noise.peak:1:2: error[P006]" in run.stderr
    # the snippet never echoes control characters to the terminal
    assert not any(ch in run.stderr for ch in "\x00\x1b\x07")


def test_rendered_snippets_never_echo_control_characters() -> None:
    from peakdsl.lang.diagnostics import diag
    from peakdsl.lang.render import render_text
    from peakdsl.lang.source import SourceFile

    src = SourceFile.of("x.peak", 'let a = "\x1b[2J\u202e" + zz\n')
    d = diag("N001", "unknown name `zz`", "x.peak", src.span_at(src.text.index("zz"), 2))
    text = render_text([d], lambda _: src)
    assert "\x1b" not in text and "\u202e" not in text
    snippet, carets = text.splitlines()[2:4]
    assert snippet.index("zz") == carets.index("^^")
