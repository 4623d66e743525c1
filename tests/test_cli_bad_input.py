"""Every bad command-line input is a coded diagnostic (issue 7, deliverable 7).

One table of bad invocations across every command. Each row runs the CLI in-process in a
fresh scratch project and asserts: the exit code (2 usage, 1 spec/data), the diagnostic code
in the output, no traceback, no internal error (I001), and no leftover file — no partial
report or trades file, no temp file, no registry row, nothing created in the project at all.
A second test forces the output write itself to fail after the run and checks that the run
was not recorded.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app

MA = "specs/strategies/ma_crossover.peak"
PORTFOLIO = "specs/portfolios/multi_style_moderate.peak"
WIDE = "extra/wide.peak"  # a grid of 100,001² combinations: far above the sweep's bound
CANDLES = ("time,open,high,low,close,volume\n"
           "2024-01-01T00:00:00Z,100,101,99,100.5,12\n"
           "2024-01-01T01:00:00Z,100.5,102,100,101,10\n"
           "2024-01-01T02:00:00Z,101,103,100.5,102,11\n")
WIDE_SPEC = """\
strategy wide {
    market BTC/EUR
    timeframe 1h
    param x: float = 1 in 0..100 step 0.001
    param y: float = 1 in 0..100 step 0.001
    entry long when close > sma(close, 20) * x
    exit long when close < sma(close, 20) * y
}
"""

Setup = Callable[[Path], None]


def dot_peak_is_a_file(root: Path) -> None:
    """A project whose `.peak` is a file: nothing can be recorded or cached there."""
    (root / ".peak").write_text("not a folder\n")


def registry_cannot_be_opened(root: Path) -> None:
    """A registry path SQLite cannot open for writing (a folder in its place)."""
    (root / ".peak" / "registry.sqlite").mkdir(parents=True)
    (root / ".peak" / ".gitignore").write_text("*\n")


def sweeps_is_a_file(root: Path) -> None:
    """The sweep store's folder is a file: the sweep cannot keep its results."""
    (root / ".peak").mkdir()
    (root / ".peak" / "sweeps").write_text("not a folder\n")


def damaged_registry(root: Path) -> None:
    """A registry that is not an SQLite database (next to the .gitignore peak writes with it)."""
    (root / ".peak").mkdir()
    (root / ".peak" / ".gitignore").write_text("*\n")
    (root / ".peak" / "registry.sqlite").write_bytes(b"this is not a database\n" * 64)


def read_only_project(root: Path) -> None:
    """chmod -w on the project; root ignores permission bits, so that row cannot run as root."""
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop root's writes; the rows with an "
                    "unopenable registry and an output under /proc cover the same failure")
    root.chmod(0o555)


def compiled_is_a_file(root: Path) -> None:
    (root / "compiled").write_text("not a folder\n")


def empty_folder(root: Path) -> None:
    (root / "empty").mkdir()


def html_folder(root: Path) -> None:
    (root / "out.html").mkdir()


def needs_proc(_root: Path) -> None:
    if not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")


def needs_devices(_root: Path) -> None:
    if not (Path("/dev/zero").exists() and Path("/dev/null").exists()):
        pytest.skip("no /dev/zero or /dev/null on this system")


# (id, argv, exit code, diagnostic code, setup)
ROWS: list[tuple[str, list[str], int, str, Setup | None]] = [
    # --- peak check / fmt
    ("check-missing-path", ["check", "nope.peak"], 2, "U001", None),
    ("check-empty-folder", ["check", "empty"], 2, "U002", empty_folder),
    ("check-device", ["check", "/dev/zero"], 2, "U007", needs_devices),
    ("check-format-enum", ["check", "--format", "xml"], 2, "U005", None),
    ("check-unknown-option", ["check", "--frobnicate"], 2, "U008", None),
    ("fmt-format-enum", ["fmt", "--format", "yaml"], 2, "U005", None),
    ("fmt-missing-path", ["fmt", "nope"], 2, "U001", None),
    ("unknown-command", ["frobnicate"], 2, "U008", None),
    # --- peak compile / graph
    ("compile-root-missing", ["compile", "--root", "nope"], 2, "U001", None),
    ("compile-root-is-file", ["compile", "--root", "c.csv"], 2, "U007", None),
    ("compile-out-is-file", ["compile"], 2, "U007", compiled_is_a_file),
    ("graph-folder", ["graph", "specs"], 2, "U007", None),
    ("graph-format-enum", ["graph", MA, "--format", "png"], 2, "U005", None),
    ("graph-missing-arg", ["graph"], 2, "U008", None),
    ("graph-portfolio", ["graph", PORTFOLIO], 2, "U003", None),
    # --- peak backtest: outputs
    ("bt-report-proc", ["backtest", MA, "--report", "/proc/x.html"], 2, "U006", needs_proc),
    ("bt-trades-folder", ["backtest", MA, "--trades", "specs"], 2, "U007", None),
    ("bt-trades-device", ["backtest", MA, "--trades", "/dev/null"], 2, "U007",
     needs_devices),
    ("bt-report-under-file", ["backtest", MA, "--report", f"{MA}/r.md"], 2, "U007", None),
    ("bt-report-suffix", ["backtest", MA, "--report", "r.pdf"], 2, "U005", None),
    ("bt-trades-over-spec", ["backtest", MA, "--trades", MA], 2, "U005", None),
    ("bt-same-output-twice", ["backtest", MA, "--trades", "r.md", "--report", "r.md"], 2,
     "U005", None),
    ("bt-read-only-project", ["backtest", MA], 2, "U006", read_only_project),
    ("bt-registry-unopenable", ["backtest", MA, "--trades", "t.csv"], 2, "U006",
     registry_cannot_be_opened),
    ("bt-damaged-registry", ["backtest", MA, "--report", "r.html"], 2, "U009",
     damaged_registry),
    # --- peak backtest: numbers, dates, paths
    ("bt-capital-nan", ["backtest", MA, "--capital", "nan"], 2, "U005", None),
    ("bt-capital-negative", ["backtest", MA, "--capital", "-100"], 2, "U005", None),
    ("bt-capital-zero", ["backtest", MA, "--capital", "0"], 2, "U005", None),
    ("bt-capital-inf", ["backtest", MA, "--capital", "inf"], 2, "U005", None),
    ("bt-capital-text", ["backtest", MA, "--capital", "lots"], 2, "U005", None),
    ("bt-fee-nan", ["backtest", MA, "--fee-bps", "nan"], 2, "U005", None),
    ("bt-fee-negative", ["backtest", MA, "--fee-bps", "-1"], 2, "U005", None),
    ("bt-spec-folder", ["backtest", "specs/"], 2, "U007", None),
    ("bt-spec-missing", ["backtest", "nope.peak"], 2, "U001", None),
    ("bt-from-after-data", ["backtest", MA, "--from", "2100-01-01"], 2, "U005", None),
    ("bt-to-before-data", ["backtest", MA, "--to", "1990-01-01"], 2, "U005", None),
    ("bt-from-year-1000", ["backtest", MA, "--from", "1000-01-01"], 2, "U005", None),
    ("bt-from-nan", ["backtest", MA, "--from", "nan"], 2, "U005", None),
    ("bt-from-not-a-date", ["backtest", MA, "--from", "yesterday-ish"], 2, "U005", None),
    ("bt-empty-period", ["backtest", MA, "--from", "2025-09-01", "--to", "2025-08-01"], 2,
     "U005", None),
    ("bt-data-folder", ["backtest", MA, "--data", "specs"], 2, "U007", None),
    ("bt-data-missing", ["backtest", MA, "--data", "nope.csv"], 2, "U001", None),
    ("bt-data-device", ["backtest", MA, "--data", "/dev/zero"], 2, "U007", needs_devices),
    ("bt-spec-device", ["backtest", "/dev/zero"], 2, "U007", needs_devices),
    ("bt-set-unknown-param", ["backtest", MA, "--set", "fats=10"], 1, "N014", None),
    ("bt-unknown-option", ["backtest", MA, "--format", "json"], 2, "U008", None),
    ("bt-missing-spec", ["backtest"], 2, "U008", None),
    ("bt-extra-argument", ["backtest", MA, "again"], 2, "U008", None),
    ("bt-portfolio-set", ["backtest", PORTFOLIO, "--set", "fast=10"], 2, "U005", None),
    ("bt-portfolio-data", ["backtest", PORTFOLIO, "--data", "c.csv"], 2, "U005", None),
    ("bt-risk-spec", ["backtest", "specs/risk/live_moderate.peak"], 2, "U003", None),
    # --- peak robustness
    ("rb-spec-device", ["robustness", "/dev/zero"], 2, "U007", needs_devices),
    ("rb-runs-zero", ["robustness", MA, "--runs", "0"], 2, "U005", None),
    ("rb-stress-unknown", ["robustness", MA, "--stress", "meteor"], 2, "U005", None),
    ("rb-risk-spec", ["robustness", "specs/risk/live_moderate.peak"], 2, "U003", None),
    ("rb-portfolio-data", ["robustness", PORTFOLIO, "--data", "c.csv"], 2, "U005", None),
    # --- peak promote
    ("promote-spec-device", ["promote", "/dev/zero"], 2, "U007", needs_devices),
    ("promote-stage-enum", ["promote", MA, "--stage", "prod"], 2, "U005", None),
    ("promote-gate-unknown", ["promote", MA, "--gate", "nope"], 2, "U001", None),
    ("promote-gate-kind", ["promote", MA, "--gate", "live_moderate"], 2, "U003", None),
    ("promote-approve-unknown", ["promote", "approve", "abcdef", "--reviewer", "x"], 2, "U013",
     None),
    # --- peak diff
    ("diff-not-a-repository", ["diff", "HEAD"], 2, "U011", None),
    # --- peak sweep
    ("sweep-random-zero", ["sweep", MA, "--random", "0", "--seed", "1"], 2, "U005", None),
    ("sweep-seed-negative", ["sweep", MA, "--random", "3", "--seed", "-1"], 2, "U005", None),
    ("sweep-oversized-grid", ["sweep", WIDE], 2, "U005", None),
    ("sweep-capital-nan", ["sweep", MA, "--capital", "nan"], 2, "U005", None),
    ("sweep-fee-inf", ["sweep", MA, "--fee-bps", "inf"], 2, "U005", None),
    ("sweep-objective-enum", ["sweep", MA, "--objective", "luck"], 2, "U005", None),
    ("sweep-max-memory-zero", ["sweep", MA, "--max-memory", "0"], 2, "U005", None),
    ("sweep-report-proc", ["sweep", MA, "--report", "/proc/s.html"], 2, "U006", needs_proc),
    ("sweep-report-folder", ["sweep", MA, "--report", "out.html"], 2, "U007", html_folder),
    ("sweep-from-after-data", ["sweep", MA, "--from", "2100-01-01"], 2, "U005", None),
    ("sweep-spec-folder", ["sweep", "specs"], 2, "U007", None),
    ("sweep-store-is-file", ["sweep", MA, "--set", "fast=10", "--set", "slow=60",
                             "--no-record"], 2, "U007", sweeps_is_a_file),
    ("sweep-registry-unopenable", ["sweep", MA, "--set", "fast=10", "--set", "slow=60"], 2,
     "U006", registry_cannot_be_opened),
    ("sweep-workers-zero", ["sweep", MA, "--workers", "0"], 2, "U005", None),
    ("sweep-workers-too-many", ["sweep", MA, "--workers", "100000"], 2, "U005", None),
    ("sweep-top-negative", ["sweep", MA, "--top", "-1"], 2, "U005", None),
    ("sweep-heatmap-one-param", ["sweep", MA, "--heatmap", "fast"], 2, "U005", None),
    ("sweep-heatmap-unknown-param", ["sweep", MA, "--set", "fast=10", "--set", "slow=60",
                                     "--heatmap", "fast,slwo"], 2, "U005", None),
    # --- peak walkforward
    ("wf-too-few-bars", ["walkforward", MA, "--train", "4000", "--test", "3000"], 2, "U005",
     None),
    ("wf-train-zero", ["walkforward", MA, "--train", "0", "--test", "100"], 2, "U005", None),
    ("wf-missing-test", ["walkforward", MA, "--train", "100"], 2, "U008", None),
    ("wf-capital-negative", ["walkforward", MA, "--train", "1000", "--test", "500",
                             "--capital", "-1"], 2, "U005", None),
    ("wf-report-proc", ["walkforward", MA, "--train", "1000", "--test", "500", "--report",
                        "/proc/w.html"], 2, "U006", needs_proc),
    ("wf-spec-folder", ["walkforward", "specs", "--train", "1000", "--test", "500"], 2,
     "U007", None),
    ("wf-report-suffix", ["walkforward", MA, "--train", "1000", "--test", "500", "--report",
                          "w.md"], 2, "U005", None),
    ("wf-to-not-a-date", ["walkforward", MA, "--train", "1000", "--test", "500", "--to",
                          "2024-13-45"], 2, "U005", None),
    # --- peak runs
    ("runs-limit-zero", ["runs", "list", "--limit", "0"], 2, "U005", None),
    ("runs-status-enum", ["runs", "list", "--status", "incomplet"], 2, "U005", None),
    ("runs-root-is-file", ["runs", "list", "--root", MA], 2, "U007", None),
    ("runs-root-missing", ["runs", "list", "--root", "nope"], 2, "U001", None),
    ("runs-show-unknown", ["runs", "show", "r1234"], 2, "U004", None),
    ("runs-compare-one-id", ["runs", "compare", "r1234"], 2, "U008", None),
    ("runs-damaged-registry", ["runs", "list"], 2, "U009", damaged_registry),
    # --- peak data (the data commands are another engineer's; see the issue)
    ("data-import-time-format", ["data", "import", "c.csv", "--market", "BTC/EUR",
                                 "--time-format", "%Q"], 2, "U005", None),
    ("data-import-folder", ["data", "import", "specs", "--market", "BTC/EUR"], 2, "U007",
     None),
    ("data-import-missing", ["data", "import", "nope.csv", "--market", "BTC/EUR"], 2, "U001",
     None),
    ("data-import-no-market", ["data", "import", "c.csv"], 2, "U008", None),
    ("data-synth-end-year-1000", ["data", "synth", "BTC/EUR", "1h", "--end", "1000-01-01"],
     2, "U005", None),
    ("data-synth-bars-zero", ["data", "synth", "BTC/EUR", "1h", "--bars", "0"], 2, "U005",
     None),
    ("data-synth-bars-negative", ["data", "synth", "BTC/EUR", "1h", "--bars", "-5"], 2,
     "U005", None),
    ("data-synth-bars-text", ["data", "synth", "BTC/EUR", "1h", "--bars", "many"], 2, "U005",
     None),
    ("data-synth-timeframe-enum", ["data", "synth", "BTC/EUR", "7q"], 2, "U005", None),
    ("data-synth-dot-peak-is-file", ["data", "synth", "BTC/EUR", "1h"], 2, "U007",
     dot_peak_is_a_file),
    ("data-fetch-since-not-a-date", ["data", "fetch", "binance", "BTC/USDT", "1h", "--since",
                                     "garbage"], 2, "U005", None),
    ("data-fetch-until-before-since", ["data", "fetch", "binance", "BTC/USDT", "1h",
                                       "--since", "2024-02-01", "--until", "2024-01-01"], 2,
     "U005", None),
    ("data-fetch-year-1000", ["data", "fetch", "binance", "BTC/USDT", "1h", "--since",
                              "1000-01-01", "--until", "1000-02-01"], 2, "U005", None),
    ("data-list-root-is-file", ["data", "list", "--root", "c.csv"], 2, "U007", None),
    ("data-check-root-missing", ["data", "check", "--root", "nope"], 2, "U001", None),
    ("data-check-nothing-cached", ["data", "check", "ETH/USDT", "1h"], 2, "U005", None),
]


@pytest.fixture
def scratch(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The spec library plus a small candles file and an oversized-grid spec; cwd inside."""
    (project / "c.csv").write_text(CANDLES)
    (project / "extra").mkdir()
    (project / WIDE).write_text(WIDE_SPEC)
    monkeypatch.chdir(project)
    return project


def tree(root: Path) -> dict[str, int]:
    """Every file and folder under ``root`` with its size: what a failed command must not
    change (a partial output, a temp file, a registry row all show up here)."""
    return {p.relative_to(root).as_posix(): p.stat().st_size if p.is_file() else -1
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("argv", "exit_code", "code", "setup"),
                         [pytest.param(*row[1:], id=row[0]) for row in ROWS])
def test_bad_invocation_is_a_coded_diagnostic(scratch: Path, argv: list[str], exit_code: int,
                                              code: str, setup: Setup | None) -> None:
    if setup is not None:
        setup(scratch)
    before = tree(scratch)
    try:
        result = CliRunner().invoke(app, argv)
    finally:
        scratch.chmod(0o755)
    out = result.output
    assert result.exit_code == exit_code, out
    assert f"[{code}]" in out, out
    assert "Traceback" not in out and "I001" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    assert tree(scratch) == before, "a failed command left files behind"


def test_the_table_is_broad() -> None:
    commands = {row[1][0] if row[1][0] not in ("runs", "data") else " ".join(row[1][:2])
                for row in ROWS}
    assert len(ROWS) >= 40
    assert commands >= {"check", "fmt", "compile", "graph", "backtest", "sweep", "walkforward",
                        "robustness", "promote", "diff",
                        "runs list", "runs show", "runs compare", "data import", "data fetch",
                        "data synth", "data list", "data check"}


def _runs(root: Path) -> int:
    with sqlite3.connect(root / ".peak" / "registry.sqlite") as conn:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])


def test_a_run_whose_output_fails_is_not_recorded(scratch: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The output check passes, the write itself fails (a full disk): exit 2 with U006, the
    trades file is not there, and the registry holds no row for the run."""
    import peakdsl.atomic

    write = peakdsl.atomic.write_atomic

    def full_disk(path: Path, data: bytes) -> None:
        if path.name != "t.csv":
            return write(path, data)  # the registry's own files
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(peakdsl.atomic, "write_atomic", full_disk)
    result = CliRunner().invoke(app, ["backtest", MA, "--trades", "t.csv"])
    assert result.exit_code == 2, result.output
    assert "[U006]" in result.output and "t.csv" in result.output, result.output
    assert "no space left" in result.output
    assert not (scratch / "t.csv").exists()
    assert _runs(scratch) == 0


def test_a_run_whose_outputs_are_written_is_recorded(scratch: Path) -> None:
    """The same run with a writable output: the file is there and the run is recorded once."""
    result = CliRunner().invoke(app, ["backtest", MA, "--trades", "out/t.csv"])
    assert result.exit_code == 0, result.output
    assert (scratch / "out" / "t.csv").read_text().startswith("entry_time,")
    assert _runs(scratch) == 1
