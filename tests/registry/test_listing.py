"""peakdsl/registry/listing.py and the commands over it: `peak runs list` (sweeps and
walk-forwards as rows with their children folded, params and key metrics as columns,
`--since`) and `peak runs export` (one row per run for notebooks, deterministic)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from peakdsl.cli import app
from peakdsl.registry.listing import FIXED, export_frame, run_row, since_time
from peakdsl.registry.records import DataRange, RunOutcome, RunStart
from peakdsl.registry.store import Registry

INPUTS = {"artifact": "a" * 64, "data": "f" * 64}


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A backtest, a sweep of 3 trials (its best: fast=2) and a walk-forward of 2 windows."""
    root = tmp_path_factory.mktemp("listing")
    (root / "specs").mkdir()
    with Registry(root) as reg:
        backtest = reg.record(
            RunStart("backtest", "ma", INPUTS, "0.3.0", {"fast": 10, "slow": 60},
                     data=DataRange("cache", "BTC/USDT", "1h"), command="peak backtest x"),
            RunOutcome({"sharpe": 1.25, "total_return": 0.1, "trades": 9,
                        "max_drawdown": -0.05}, trades=9))
        sweep = reg.start_sweep("ma", {"artifact_sha256": "a" * 64}, command="peak sweep x")
        trials = reg.record_sweep_block(
            sweep, "ma", "a" * 64, "f" * 64, "cache", "0.3.0", {}, ("fast",),
            np.array([[1.0], [2.0], [3.0]]), {"sharpe": np.array([0.1, 0.9, 0.5]),
                                              "trades": np.array([4.0, 5.0, 6.0])}, 0.01,
            commands=[f"peak backtest x --set fast={n}" for n in (1, 2, 3)])
        best = {"params": {"fast": 2.0}, "metrics": {"sharpe": 0.9, "trades": 5,
                                                     "total_return": 0.2}}
        reg.finish_sweep(sweep, {"deflated_sharpe": 0.5, "trials": 3, "best": best})
        windows = [(RunStart("walkforward_window", "ma", INPUTS, "0.3.0", params={"fast": n}),
                    RunOutcome({"sharpe": n / 10}, trades=n)) for n in (1, 2)]
        wf = reg.record(RunStart("walkforward", "ma", INPUTS, "0.3.0"),
                        RunOutcome({"sharpe": 0.4, "total_return": 0.03, "trades": 3}), windows)
    return root, {"backtest": backtest, "sweep": sweep, "trials": trials, "wf": wf}


def peak(root: Path, *args: str) -> Result:
    result = CliRunner().invoke(app, [*args, "--root", str(root)], prog_name="peak")
    assert "Traceback" not in result.output
    return result


def test_rows_fold_children_and_show_a_sweeps_best(family: tuple[Path, dict[str, Any]]) -> None:
    root, ids = family
    with Registry(root) as reg:
        sweep = run_row(reg.get_run(ids["sweep"]))
        wf = run_row(reg.get_run(ids["wf"]))
        trial = run_row(reg.get_run(ids["trials"][0]))
    assert sweep.params == {"fast": 2.0} and sweep.folded == "3 trials" and sweep.trades == 5
    assert sweep.metrics == {"sharpe": 0.9, "trades": 5, "total_return": 0.2,
                             "deflated_sharpe": 0.5, "trials": 3}
    assert (wf.folded, wf.params, wf.metrics["sharpe"]) == ("2 windows", {}, 0.4)
    assert (trial.folded, trial.params, trial.record.command) == (
        "", {"fast": 1.0}, "peak backtest x --set fast=1")


def test_list_shows_params_children_and_key_metrics(family: tuple[Path, dict[str, Any]]) -> None:
    root, ids = family
    out = peak(root, "runs", "list").stdout.splitlines()
    assert out[0].split() == ["id", "created", "(UTC)", "kind", "spec", "market", "tf",
                              "state", "params", "runs", "trades", "total", "return", "Sharpe",
                              "max", "drawdown"]
    rows = {line.split()[0]: line for line in out[2:]}
    assert list(rows) == [ids["wf"], ids["sweep"], ids["backtest"]]  # trials stay folded
    assert "best: fast=2" in rows[ids["sweep"]] and "3 trials" in rows[ids["sweep"]]
    assert rows[ids["sweep"]].split()[-4:] == ["5", "20.00%", "0.90", "—"]
    assert "2 windows" in rows[ids["wf"]] and "fast=10, slow=60" in rows[ids["backtest"]]


def test_since(family: tuple[Path, dict[str, Any]]) -> None:
    root = family[0]
    now = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    assert since_time("7d", now) == "2025-12-25T00:00:00.000Z"
    assert since_time("90m", now) == "2025-12-31T22:30:00.000Z"
    assert since_time("2026-11-30", now) == "2026-11-30T00:00:00.000Z"
    assert since_time("2026-11-30T14:00+02:00", now) == "2026-11-30T12:00:00.000Z"
    with pytest.raises(ValueError, match="neither a date nor a duration"):
        since_time("last tuesday", now)
    everything = json.loads(peak(root, "runs", "list", "--since", "2000-01-01", "--json").stdout)
    assert len(everything["runs"]) == 3
    assert json.loads(peak(root, "runs", "list", "--since", "1h", "--json").stdout)["runs"]
    later = peak(root, "runs", "list", "--since", "2999-01-01")
    assert later.exit_code == 0 and later.stdout == "" and "no matching runs" in later.stderr
    bad = peak(root, "runs", "list", "--since", "soon")
    assert bad.exit_code == 2 and "error[U005]" in bad.stderr and "7d" in bad.stderr


def test_export_is_one_row_per_run_in_a_fixed_column_order(
        family: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, ids = family
    out = tmp_path / "runs.csv"
    done = peak(root, "runs", "export", "--out", str(out))
    assert done.exit_code == 0 and "wrote 3 runs" in done.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == [*FIXED, "param_fast", "param_slow", "deflated_sharpe",
                                   "max_drawdown", "sharpe", "total_return", "trades", "trials"]
    assert list(frame["id"]) == [ids["backtest"], ids["sweep"], ids["wf"]]  # oldest first
    assert list(frame["children"]) == [0, 3, 2]
    assert list(frame["param_fast"].fillna(-1)) == [10.0, 2.0, -1]
    assert list(frame["command"].fillna("")) == ["peak backtest x", "peak sweep x", ""]
    again = tmp_path / "again.csv"
    assert peak(root, "runs", "export", "--out", str(again)).exit_code == 0
    assert again.read_bytes() == out.read_bytes()


def test_export_parquet_and_selections(family: tuple[Path, dict[str, Any]],
                                       tmp_path: Path) -> None:
    root, ids = family
    one, two = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for path in (one, two):
        assert peak(root, "runs", "export", "--all", "--out", str(path)).exit_code == 0
    assert one.read_bytes() == two.read_bytes()
    frame = pd.read_parquet(one)
    assert len(frame) == 3 + 3 + 2 and frame["sharpe"].dtype == "float64"
    with Registry(root) as reg:
        expected = export_frame(reg.list_runs(limit=None))
    pd.testing.assert_frame_equal(frame, expected)
    trials = tmp_path / "trials.csv"
    assert peak(root, "runs", "export", "--kind", "sweep_trial", "--out",
                str(trials)).exit_code == 0
    assert list(pd.read_csv(trials)["id"]) == ids["trials"]
    bad = peak(root, "runs", "export", "--out", str(tmp_path / "runs.xlsx"))
    assert bad.exit_code == 2 and "error[U005]" in bad.stderr and ".parquet or .csv" in bad.stderr


def test_export_of_an_empty_project_writes_the_header(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    out = tmp_path / "runs.csv"
    done = peak(tmp_path, "runs", "export", "--out", str(out))
    assert done.exit_code == 0 and out.read_text().split("\n")[0] == ",".join(FIXED)
    assert not (tmp_path / ".peak").exists()  # reading never creates the registry


def test_show_and_compare_take_any_id(family: tuple[Path, dict[str, Any]]) -> None:
    root, ids = family
    compared = json.loads(peak(root, "runs", "compare", ids["sweep"], ids["wf"], "--json").stdout)
    assert (compared["a"]["kind"], compared["b"]["kind"]) == ("sweep", "walkforward")
    shown = peak(root, "runs", "show", ids["trials"][1])
    assert "command           peak backtest x --set fast=2" in shown.stdout
