"""The root of `peak`: exit codes, error rendering, guarded commands, JSON for early errors."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.cli.root import (
    EXIT_SPEC,
    EXIT_USAGE,
    Format,
    emit,
    exit_code,
    guarded,
    json_document,
    spec_source,
)
from peakdsl.lang.diagnostics import diag
from peakdsl.lang.project import UsageError
from peakdsl.lang.render import render_json


def test_exit_code_is_2_only_when_every_error_is_a_usage_error() -> None:
    usage, spec = diag("U005", "bad", "--x"), diag("N001", "unknown", "a.peak")
    warning = diag("W001", "unused", "a.peak")
    assert exit_code([usage]) == EXIT_USAGE == 2
    assert exit_code([usage, warning]) == EXIT_USAGE
    assert exit_code([usage, spec]) == EXIT_SPEC == 1
    assert exit_code([warning]) == EXIT_SPEC  # no error at all: callers exit before this


def test_json_document_without_fields_is_render_json() -> None:
    diags = [diag("N001", "unknown name `clsoe`", "a.peak")]
    assert json_document(diags) == render_json(diags)
    doc = json.loads(json_document(diags, files=2, changed=["a.peak"]))
    assert list(doc) == ["diagnostics", "errors", "warnings", "files", "changed"]
    assert (doc["errors"], doc["warnings"], doc["files"]) == (1, 0, 2)


def test_json_document_refuses_nan() -> None:
    with pytest.raises(ValueError):
        json_document([], value=float("nan"))


def test_emit_text_and_json() -> None:
    diags = [diag("U005", "--top -1: give a non-negative number of rows", "--top")]
    text, as_json = io.StringIO(), io.StringIO()
    emit(diags, Format.text, text)
    emit(diags, Format.json, as_json)
    assert text.getvalue() == ("--top: error[U005] --top -1: give a non-negative number of "
                               "rows\n\nfound 1 error\n")
    assert json.loads(as_json.getvalue())["diagnostics"][0]["code"] == "U005"


def test_snippets_only_from_text_files(tmp_path: Path) -> None:
    spec = tmp_path / "a.peak"
    spec.write_text("strategy a {\n}\n")
    found = spec_source(str(spec))
    assert found is not None and found.line_text(1) == "strategy a {"
    for name in ("registry.sqlite", "c.parquet"):
        (tmp_path / name).write_text("looks like text\n")
        assert spec_source(str(tmp_path / name)) is None
    assert spec_source(str(tmp_path)) is None
    assert spec_source(str(tmp_path / "missing.peak")) is None


def _raising(exc: Exception) -> typer.Typer:
    """A one-command app whose command raises ``exc`` under ``guarded``."""
    one = typer.Typer()

    @one.command()
    @guarded
    def boom(as_json: bool = False) -> None:
        raise exc

    return one


@pytest.mark.parametrize(("exc", "code"), [
    (UsageError(diag("U004", "no run matches `r1`", "<peak>")), "U004"),
    (OSError(errno.ENOSPC, "No space left on device", "out.csv"), "U006"),
    (OSError(errno.EISDIR, "Is a directory", "out.csv"), "U007"),
    (RuntimeError("a bug"), "I001"),
])
def test_guarded_turns_exceptions_into_one_diagnostic(exc: Exception, code: str) -> None:
    result = CliRunner().invoke(_raising(exc), [])
    assert result.exit_code == EXIT_USAGE
    assert f"error[{code}]" in result.stderr and "Traceback" not in result.output
    as_json = CliRunner().invoke(_raising(exc), ["--as-json"])
    assert [d["code"] for d in json.loads(as_json.stdout)["diagnostics"]] == [code]


@pytest.mark.parametrize("argv", [
    ["runs", "list", "--limit", "0", "--json"],
    ["runs", "list", "--json", "--limit", "0"],
    ["runs", "list", "--json", "--limit", "many"],
    ["data", "list", "--format", "json", "--root", "nope"],
    ["check", "nope.peak", "--json"],
])
def test_an_option_error_is_json_when_json_was_asked_for(argv: list[str],
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Options are checked while the command line is parsed, before the command runs; with
    --json (wherever it stands) their diagnostic is still one JSON document on stdout."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == EXIT_USAGE, result.output
    doc = json.loads(result.stdout)
    assert doc["errors"] == 1 and doc["diagnostics"][0]["code"] in ("U001", "U005")
    assert result.stderr == ""


def test_an_option_error_is_text_without_json(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["runs", "list", "--limit", "0"])
    assert result.exit_code == EXIT_USAGE and result.stdout == ""
    assert "--limit: error[U005] --limit 0: give a positive number of runs" in result.stderr
    # the wish for JSON does not leak from one run into the next
    CliRunner().invoke(app, ["runs", "list", "--limit", "0", "--json"])
    again = CliRunner().invoke(app, ["runs", "list", "--limit", "0"])
    assert again.stdout == "" and "error[U005]" in again.stderr


def test_an_unknown_option_is_u008_even_when_it_is_format() -> None:
    """`peak backtest` never had --format: it stays an unknown option, reported as text."""
    result = CliRunner().invoke(app, ["backtest", "x.peak", "--format", "json"])
    assert result.exit_code == EXIT_USAGE and "error[U008]" in result.stderr


def test_version() -> None:
    from peakdsl import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"peak {__version__}\n"


def test_progress_bar_prints_its_last_state_off_a_terminal() -> None:
    """Piped stderr (CI logs, tests): no redraws, one final line with done/total and units."""
    from rich.console import Console

    from peakdsl.cli.root import ProgressBar

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    with ProgressBar(console, "sweep", total=9, rate="combos/s") as update:
        update(4, 9)
        update(9, 9)
    assert out.getvalue().count("\n") == 1
    line = out.getvalue()
    assert line.startswith("sweep ") and " 9/9 " in line and "combos/s" in line
    out = io.StringIO()
    with ProgressBar(Console(file=out, force_terminal=False, width=120), "walk-forward",
                     noun="windows") as update:
        update(3, 8)
    assert " 3/8 windows " in out.getvalue() and "/s" not in out.getvalue()
