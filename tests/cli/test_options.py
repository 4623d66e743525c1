"""Shared options validate themselves: each callback against literal good and bad values.

The end-to-end rows (exit code, no traceback, nothing written) are in
tests/test_cli_bad_input.py; here each check is called directly, so a boundary that moves
(1000 bps, 4 workers per CPU, a non-negative --top) fails with the value that crossed it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from peakdsl.cli import options
from peakdsl.cli.root import JSON_WANTED, Format
from peakdsl.lang.project import UsageError


def code_of(call: object, *args: object) -> tuple[str, str, str]:
    """(code, where, message) of the UsageError ``call(*args)`` raises."""
    with pytest.raises(UsageError) as caught:
        call(*args)  # type: ignore[operator]
    d = caught.value.diagnostic
    return d.code, d.path, d.message


@pytest.mark.parametrize("value", [0.0, -100.0, math.nan, math.inf, -math.inf])
def test_capital_must_be_positive_and_finite(value: float) -> None:
    assert code_of(options.capital, value)[:2] == ("U005", "--capital")


def test_capital_passes_a_real_amount() -> None:
    assert options.capital(0.01) == 0.01
    assert options.capital(10_000.0) == 10_000.0


@pytest.mark.parametrize(("value", "ok"), [(None, True), (0.0, True), (1000.0, True),
                                           (1000.01, False), (-0.01, False), (math.nan, False),
                                           (math.inf, False)])
def test_fee_bps_lies_within_0_and_1000(value: float | None, ok: bool) -> None:
    if ok:
        assert options.fee_bps(value) == value
    else:
        assert code_of(options.fee_bps, value) [:2] == ("U005", "--fee-bps")


def test_workers_lie_within_one_and_four_per_cpu() -> None:
    cpus = os.cpu_count() or 1
    assert options.max_workers() == 4 * cpus
    assert options.workers(None) is None
    assert options.workers(1) == 1
    assert options.workers(4 * cpus) == 4 * cpus
    for bad in (0, -1, 4 * cpus + 1, 10**9):
        code, where, message = code_of(options.workers, bad)
        assert (code, where) == ("U005", "--workers")
        assert f"1..{4 * cpus}" in message


def test_random_and_seed() -> None:
    assert options.random_count(1) == 1 and options.random_count(None) is None
    assert code_of(options.random_count, 0)[:2] == ("U005", "--random")
    assert options.seed(0) == 0
    assert code_of(options.seed, -1)[:2] == ("U005", "--seed")


def test_at_least_names_the_option_and_the_bound() -> None:
    top = options.at_least("--top", 0, "a non-negative number of rows")
    assert top(0) == 0
    assert code_of(top, -1) == ("U005", "--top",
                                "--top -1: give a non-negative number of rows")


def test_one_of_suggests_the_nearest_value() -> None:
    status = options.one_of("--status", ("running", "done"), "a run state")
    assert status(None) is None and status("done") == "done"
    with pytest.raises(UsageError) as caught:
        status("don")
    assert caught.value.diagnostic.message == "--status don: not a run state"
    assert caught.value.diagnostic.help == "did you mean `done`?"


@pytest.mark.parametrize("value", ["0", "lots", "-5MB", "nanGB"])
def test_max_memory_refuses_what_is_not_a_size(value: str) -> None:
    assert code_of(options.max_memory, value)[:2] == ("U005", "--max-memory")


def test_max_memory_passes_sizes() -> None:
    assert options.max_memory("512MB") == "512MB"
    assert options.max_memory("1.5GiB") == "1.5GiB"


@pytest.mark.parametrize("value", ["fast", "fast,fast", "fast,", "a,b,c"])
def test_heatmap_needs_two_different_params(value: str) -> None:
    assert code_of(options.heatmap, value)[:2] == ("U005", "--heatmap")


def test_heatmap_passes_two_names() -> None:
    assert options.heatmap("fast, slow") == "fast, slow"
    assert options.heatmap(None) is None


@pytest.mark.parametrize(("value", "code"), [("2024-13-45", "U005"), ("1969-12-31", "U005"),
                                             ("2200-01-02", "U005"), ("nan", "U005")])
def test_dates_peak_cannot_place(value: str, code: str) -> None:
    assert code_of(options.from_date, value)[:2] == (code, "--from")
    assert code_of(options.to_date, value)[:2] == (code, "--to")


def test_period_must_not_be_empty() -> None:
    options.check_period("2024-01-01", "2024-01-02")
    options.check_period(None, "2024-01-02")
    assert code_of(options.check_period, "2024-01-02", "2024-01-02")[:2] == ("U005", "--to")


def test_data_file(tmp_path: Path) -> None:
    file = tmp_path / "c.csv"
    file.write_text("time,open\n")
    assert options.data_file(file) == file and options.data_file(None) is None
    assert code_of(options.data_file, tmp_path)[:2] == ("U007", "--data")
    assert code_of(options.data_file, tmp_path / "nope.csv")[:2] == ("U001", "--data")


def test_project_root(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    assert options.project_root(tmp_path) == tmp_path
    assert code_of(options.project_root, tmp_path / "f")[:2] == ("U007", "--root")
    assert code_of(options.project_root, tmp_path / "nope")[:2] == ("U001", "--root")


def test_output_files_are_probed_and_their_suffix_checked(tmp_path: Path) -> None:
    report = options.output_file("--report", options.REPORTS)
    html = options.output_file("--report", options.HTML_REPORTS)
    assert report(tmp_path / "new" / "r.md") == tmp_path / "new" / "r.md"
    assert not (tmp_path / "new").exists()  # probing writes nothing
    assert code_of(report, tmp_path / "r.pdf") == (
        "U005", "--report", f"--report {tmp_path / 'r.pdf'}: use a .html or .md file")
    assert code_of(html, tmp_path / "r.md")[2].endswith("use a .html file")
    (tmp_path / "d.html").mkdir()
    assert code_of(html, tmp_path / "d.html")[:2] == ("U007", "--report")
    trades = options.output_file("--trades")
    assert trades(None) is None
    assert code_of(trades, tmp_path)[:2] == ("U007", "--trades")


def test_outputs_must_not_overwrite_inputs(tmp_path: Path) -> None:
    spec = tmp_path / "s.peak"
    options.check_outputs([("--trades", tmp_path / "t.csv"), ("--report", None)], str(spec))
    assert code_of(options.check_outputs, [("--trades", spec)], str(spec))[:2] == (
        "U005", "--trades")
    data = tmp_path / "c.csv"
    assert code_of(options.check_outputs, [("--report", data)], str(spec), data)[:2] == (
        "U005", "--report")


def test_json_and_format_json_note_the_wish_for_json() -> None:
    token = JSON_WANTED.set(False)
    try:
        assert options.json_flag(False) is False and JSON_WANTED.get() is False
        assert options.format_choice(Format.text) is Format.text and not JSON_WANTED.get()
        assert options.format_choice(Format.json) is Format.json and JSON_WANTED.get()
    finally:
        JSON_WANTED.reset(token)
    assert options.output_format(Format.text, True) is Format.json
    assert options.output_format(Format.json, False) is Format.json
    assert options.output_format(Format.text, False) is Format.text
