"""`peak runs list|show|compare` in a fresh interpreter: exit codes, output, JSON, no traceback;
kinds of run and child runs (`--kind`, `--parent`, `--all`, showing a sweep or a walk-forward)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from peakdsl.registry.store import Registry


def peak(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, env=env)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A project with three runs: done, done with other params and data, failed."""
    root = tmp_path_factory.mktemp("runs")
    (root / "specs").mkdir()
    with Registry(root) as reg:
        ids = []
        for fast, fingerprint, sharpe in ((20, "f" * 64, 1.25), (10, "e" * 64, 0.5)):
            run_id = reg.start_run(
                "backtest", "ma_crossover", "a" * 64, fingerprint, "synthetic:gbm",
                {"fast": fast, "slow": 60}, None, "0.3.0",
                {"fees": 0.001, "stop_loss": math.nan}, market="BTC/EUR", timeframe="1h")
            reg.finish_run(run_id, {"sharpe": sharpe, "total_return": 0.1, "trades": 9,
                                    "max_drawdown": -0.05, "profit_factor": math.inf},
                           {"total": 0.02}, 9, ["data source: synthetic:gbm"])
            ids.append(run_id)
        failed = reg.start_run("backtest", "rsi_reversion", "b" * 64, "f" * 64, "cache",
                               {}, 1, "0.3.0", {})
        reg.fail_run(failed, "DataError: [bold]no data[/]")
        ids.append(failed)
    return root, ids


def test_list_text(project: tuple[Path, list[str]]) -> None:
    root, ids = project
    proc = peak(root, "runs", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "created", "(UTC)"]
    order = [line.split()[0] for line in lines[2:]]
    assert order == ids[::-1]
    assert "1.25" in proc.stdout and "10.00%" in proc.stdout and "failed" in proc.stdout


def test_list_filters_and_json(project: tuple[Path, list[str]]) -> None:
    root, ids = project
    proc = peak(root, "runs", "list", "--spec", "ma_crossover", "--limit", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["id"] for r in doc["runs"]] == [ids[1]]
    run = doc["runs"][0]
    assert run["metrics"]["profit_factor"] == "inf" and run["settings"]["stop_loss"] is None
    assert run["params"] == {"fast": 10, "slow": 60}
    failed = json.loads(peak(root, "runs", "list", "--status", "failed", "--json").stdout)
    assert [r["id"] for r in failed["runs"]] == [ids[2]]
    none = peak(root, "runs", "list", "--spec", "nope")
    assert none.returncode == 0 and none.stdout == "" and "no matching runs" in none.stderr


def test_show(project: tuple[Path, list[str]]) -> None:
    root, ids = project
    proc = peak(root, "runs", "show", ids[0])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in (ids[0], "done", "ma_crossover", "a" * 64, "f" * 64, "fast=20, slow=60",
                 "fees=0.001", "sharpe", "1.25", "∞", "warning: data source"):
        assert text in out, text
    failed = peak(root, "runs", "show", ids[2])
    assert "error: DataError: [bold]no data[/]" in failed.stdout  # shown, not interpreted
    # a unique prefix of ids[0]: ids made in one millisecond can share all but the last char
    prefix = next((ids[0][:n] for n in range(5, len(ids[0]))
                   if not any(other.startswith(ids[0][:n]) for other in ids[1:])), ids[0])
    doc = json.loads(peak(root, "runs", "show", prefix, "--json").stdout)
    assert doc["id"] == ids[0] and doc["metrics"]["sharpe"] == 1.25


def test_compare(project: tuple[Path, list[str]]) -> None:
    root, ids = project
    proc = peak(root, "runs", "compare", ids[0], ids[1])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "params that differ" in out and "settings: identical" in out
    data_line = next(line for line in out.splitlines() if line.startswith("data"))
    assert data_line.split()[-1] == "differs"
    artifact_line = next(line for line in out.splitlines() if line.startswith("artifact"))
    assert artifact_line.split()[-1] == "same"
    sharpe = next(line for line in out.splitlines() if line.startswith("sharpe"))
    assert sharpe.split() == ["sharpe", "1.25", "0.50", "-0.75"]
    doc = json.loads(peak(root, "runs", "compare", ids[0], ids[1], "--json").stdout)
    assert doc["same"] == {"spec": True, "artifact": True, "data": False, "engine": True,
                           "seed": True}
    assert doc["params"] == [{"name": "fast", "a": 20, "b": 10}]
    assert {m["name"]: m["delta"] for m in doc["metrics"]}["sharpe"] == -0.75


@pytest.mark.parametrize(("args", "code", "needle"), [
    (("runs", "show", "r000000000000"), "U004", "no run matches"),
    (("runs", "show", "r0"), "U004", "too short"),
    (("runs", "show", "hello"), "U004", "not a run id"),
    (("runs", "compare", "r000000000000", "r000000000001"), "U004", "no run matches"),
    (("runs", "list", "--limit", "0"), "U005", "--limit 0"),
    (("runs", "list", "--status", "don"), "U005", "did you mean `done`"),
    (("runs", "list", "--root", "missing-folder"), "U001", "no such folder"),
])
def test_usage_errors(project: tuple[Path, list[str]], args: tuple[str, ...], code: str,
                      needle: str) -> None:
    root, _ = project
    proc = peak(root, *args)
    assert proc.returncode == 2
    assert f"error[{code}]" in proc.stderr and needle in proc.stderr
    as_json = peak(root, *args, "--json")
    assert as_json.returncode == 2
    doc = json.loads(as_json.stdout)
    assert [d["code"] for d in doc["diagnostics"]] == [code]


def test_ambiguous_prefix_lists_candidates(project: tuple[Path, list[str]]) -> None:
    root, ids = project
    common = os.path.commonprefix(ids)  # noqa: RUF071 (strings)
    if len(common) < 4:
        pytest.skip("ids made in the same run share their time digits")
    proc = peak(root, "runs", "show", common)
    assert proc.returncode == 2 and "error[U004]" in proc.stderr
    assert all(run_id in proc.stderr for run_id in ids)


def test_empty_and_missing_registry(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    proc = peak(tmp_path, "runs", "list")
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no runs recorded" in proc.stderr
    assert not (tmp_path / ".peak").exists()  # reading never creates the registry
    assert json.loads(peak(tmp_path, "runs", "list", "--json").stdout) == {"runs": []}
    show = peak(tmp_path, "runs", "show", "r0123")
    assert show.returncode == 2 and "no runs recorded yet" in show.stderr


def test_root_is_found_from_a_subfolder_and_overridable(project: tuple[Path, list[str]],
                                                        tmp_path: Path) -> None:
    root, ids = project
    sub = root / "specs"
    assert json.loads(peak(sub, "runs", "list", "--json").stdout)["runs"]
    elsewhere = peak(tmp_path, "runs", "show", ids[0], "--root", str(root), "--json")
    assert elsewhere.returncode == 0 and json.loads(elsewhere.stdout)["id"] == ids[0]


def test_a_broken_registry_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / ".peak").mkdir()
    (tmp_path / ".peak" / "registry.sqlite").write_bytes(b"not a database" * 100)
    proc = peak(tmp_path, "runs", "list")
    assert proc.returncode == 2 and "error[U009]" in proc.stderr
    assert "run registry" in proc.stderr and "I001" not in proc.stderr


def test_runs_is_mounted_and_light(project: tuple[Path, list[str]]) -> None:
    root, _ = project
    proc = peak(root, "runs", "--help")
    assert proc.returncode == 0 and "compare" in proc.stdout
    code = ("import sys; import peakdsl.cli; "
            "print(sorted(m for m in ('pandas', 'numpy', 'rich', 'sqlite3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ kinds and child runs

@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A backtest, a sweep of 25 trials and a walk-forward of 2 windows."""
    import numpy as np

    from peakdsl.registry.store import DataRange, RunOutcome, RunStart

    root = tmp_path_factory.mktemp("family")
    (root / "specs").mkdir()
    inputs = {"artifact": "a" * 64, "data": "f" * 64}
    with Registry(root) as reg:
        backtest = reg.record(RunStart("backtest", "ma", inputs, "0.3.0"),
                              RunOutcome({"sharpe": 1.0}, trades=3))
        sweep = reg.start_sweep("ma", {"artifact_sha256": "a" * 64})
        trials = reg.record_sweep_block(
            sweep, "ma", "a" * 64, "f" * 64, "cache", "0.3.0", {}, ("fast",),
            np.arange(25.0).reshape(25, 1), {"sharpe": np.linspace(0, 1, 25)}, 0.01)
        reg.finish_sweep(sweep, {"deflated_sharpe": 0.5, "trials": 25})
        windows = [(RunStart("walkforward_window", "ma", inputs, "0.3.0", params={"fast": n},
                             data=DataRange("cache", "BTC/EUR", "1h")),
                    RunOutcome({"sharpe": n / 10, "total_return": 0.01 * n}, trades=n))
                   for n in (1, 2)]
        wf = reg.record(RunStart("walkforward", "ma", inputs | {"risk": "b" * 64}, "0.3.0",
                                 settings={"train": "1000 bars"}),
                        RunOutcome({"sharpe": 0.4, "wf_efficiency": 0.8},
                                   artifacts={"report": root / "wf.html"},
                                   summary={"windows": 2}), windows)
        kids = [r.id for r in reg.child_runs(wf)]
    return root, {"backtest": backtest, "sweep": sweep, "trials": trials, "wf": wf,
                  "windows": kids}


def listed(root: Path, *args: str) -> list[str]:
    proc = peak(root, "runs", "list", "--json", "--limit", "100", *args)
    assert proc.returncode == 0, proc.stderr
    return [r["id"] for r in json.loads(proc.stdout)["runs"]]


def unique_prefix(run_id: str, ids: dict[str, Any]) -> str:
    """The shortest prefix of ``run_id`` no other id starts with: ids made in the same
    instant differ only in their last characters, so a fixed cut may be ambiguous (U004
    "give more characters") — as it was once, under parallel tests. Ids drawn one after
    the other in one millisecond are consecutive numbers and may differ in the last
    character alone: then the whole id is that prefix."""
    others = {i for v in ids.values() for i in ([v] if isinstance(v, str) else v)} - {run_id}
    for n in range(2, len(run_id) + 1):
        if not any(o.startswith(run_id[:n]) for o in others):
            return run_id[:n]
    pytest.fail(f"no prefix of {run_id} is unambiguous")


def test_list_hides_child_runs_unless_asked(family: tuple[Path, dict[str, Any]]) -> None:
    root, ids = family
    top = [ids["wf"], ids["sweep"], ids["backtest"]]
    assert listed(root) == top
    assert set(listed(root, "--all")) == {*top, *ids["trials"], *ids["windows"]}
    assert listed(root, "--kind", "sweep_trial") == ids["trials"][::-1][:100]
    assert listed(root, "--kind", "walkforward") == [ids["wf"]]
    assert listed(root, "--parent", unique_prefix(ids["wf"], ids)) == ids["windows"][::-1]
    assert listed(root, "--parent", ids["sweep"], "--limit", "3") == ids["trials"][::-1][:3]
    text = peak(root, "runs", "list").stdout.splitlines()
    assert text[0].split()[:4] == ["id", "created", "(UTC)", "kind"]
    assert [line.split()[3] for line in text[2:]] == ["walkforward", "sweep", "backtest"]


@pytest.mark.parametrize(("args", "code", "needle"), [
    (("runs", "list", "--kind", "walkforwrd"), "U005", "did you mean `walkforward`"),
    (("runs", "list", "--kind", "zzz"), "U005", "use one of backtest"),
    (("runs", "list", "--parent", "r000000000000"), "U004", "no run matches"),
    (("runs", "list", "--parent", "x"), "U004", "too short"),
])
def test_list_usage_errors(family: tuple[Path, dict[str, Any]], args: tuple[str, ...],
                           code: str, needle: str) -> None:
    proc = peak(family[0], *args)
    assert proc.returncode == 2 and f"error[{code}]" in proc.stderr and needle in proc.stderr


def test_show_a_walkforward_and_its_windows(family: tuple[Path, dict[str, Any]]) -> None:
    root, ids = family
    proc = peak(root, "runs", "show", ids["wf"])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"run {ids['wf']}  done  walkforward of ma" in out
    for text in ("input risk        sha256 " + "b" * 64, "wrote report      wf.html",
                 "summary windows   2", "2 child runs", "fast=1", "fast=2", "wf_efficiency"):
        assert text in out, text
    assert all(window in out for window in ids["windows"])
    doc = json.loads(peak(root, "runs", "show", ids["wf"], "--json").stdout)
    assert (doc["kind"], doc["children"], doc["parent_id"]) == ("walkforward", 2, None)
    assert doc["inputs"]["risk"] == "b" * 64 and doc["artifacts"] == {"report": "wf.html"}
    window = json.loads(peak(root, "runs", "show", ids["windows"][0], "--json").stdout)
    assert (window["parent_id"], window["params"], window["trades"]) == (ids["wf"],
                                                                        {"fast": 1}, 1)
    assert f"parent {ids['wf']}" in peak(root, "runs", "show", ids["windows"][0]).stdout


def test_show_a_sweep_by_its_id(family: tuple[Path, dict[str, Any]]) -> None:
    root, ids = family
    proc = peak(root, "runs", "show", ids["sweep"][:10])
    assert proc.returncode == 0, proc.stderr
    assert f"run {ids['sweep']}  done  sweep of ma" in proc.stdout
    assert "deflated_sharpe" in proc.stdout and "trials" in proc.stdout
    assert f"25 child runs: peak runs list --parent {ids['sweep']}" in proc.stdout
    doc = json.loads(peak(root, "runs", "show", ids["sweep"], "--json").stdout)
    assert doc["metrics"] == {"deflated_sharpe": 0.5, "trials": 25} and doc["children"] == 25
    trial = json.loads(peak(root, "runs", "show", ids["trials"][0], "--json").stdout)
    assert trial["sweep_id"] == trial["parent_id"] == ids["sweep"]
