"""Walk-forward windows on the sweep's machinery (docs/walkforward.md, "Parallel windows"): in
this process, on a local Dask cluster (``--workers 2``) and on an existing scheduler (a
LocalCluster on loopback) the result is the same bit for bit; the progress bar counts windows;
Ctrl-C exits 130 with nothing written and nothing recorded."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peakdsl import api
from peakdsl.compile.artifacts import dump_model, sha256
from peakdsl.compile.models import StrategyArtifact
from peakdsl.data.candles import CandleSet
from peakdsl.data.select import demo_market, load_for
from peakdsl.engine.results import TRADE_COLUMNS
from peakdsl.lang.project import UsageError
from peakdsl.registry.store import Registry
from peakdsl.research.space import build_space
from peakdsl.research.types import ParamSpace
from peakdsl.research.walkforward import (
    WalkForwardInterrupted,
    WalkForwardResult,
    parse_length,
    run_walkforward,
    walkforward,
    walkforward_doc,
)
from peakdsl.research.wf_record import walkforward_records

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
SETS = ("fast=10..30:10", "slow=50..150:50")  # 3 × 3 = 9 combinations, 8 windows


@pytest.fixture(scope="module")
def artifact() -> StrategyArtifact:
    art = api.compile_spec(str(ROOT / MA), ROOT)
    assert isinstance(art, StrategyArtifact)
    return art


@pytest.fixture(scope="module")
def candles(tmp_path_factory: pytest.TempPathFactory) -> CandleSet:
    """The demo as a project without cached candles gets it: with its D018 warning, which
    the run's warnings carry like any data warning."""
    found = load_for("BTC/USDT", "1h", root=tmp_path_factory.mktemp("empty"))
    assert found == demo_market("BTC/USDT", "1h") and found.warnings[0].code == "D018"
    return found


@pytest.fixture(scope="module")
def space(artifact: StrategyArtifact) -> ParamSpace:
    built, problems = build_space(artifact.config, SETS)
    assert built is not None and len(built) == 9, problems
    return built


def walk(artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace,
         **kwargs: object) -> WalkForwardResult:
    return run_walkforward(artifact, candles, space, parse_length("1000", "--train"),
                           parse_length("500", "--test"),
                           artifact_sha256=sha256(dump_model(artifact)),
                           **kwargs)  # type: ignore[arg-type]


def make_project(path: Path) -> Path:
    shutil.copytree(ROOT / "specs", path / "specs")
    return path


def results_doc(result: WalkForwardResult) -> dict[str, Any]:
    """The JSON document without its command lines: ``run_walkforward`` (no spec file, no
    options) has none, ``walkforward`` and the CLI have them (tests/research/
    test_walkforward_lines.py and tests/cli/test_runs_repro.py check those)."""
    doc = walkforward_doc(result)
    doc.pop("command")
    for window in doc["windows"]:
        window.pop("command")
    return doc


def assert_identical(a: WalkForwardResult, b: WalkForwardResult) -> None:
    """Every number bit for bit: the JSON document (every metric, the chosen params, the
    efficiency and the stability, floats written by repr) and the stitched arrays."""
    assert json.dumps(results_doc(a)) == json.dumps(results_doc(b))
    for name in ("equity", "position"):
        np.testing.assert_array_equal(getattr(a.oos_sim, name), getattr(b.oos_sim, name))
    for column in TRADE_COLUMNS:
        np.testing.assert_array_equal(a.oos_sim.trades[column], b.oos_sim.trades[column])
    assert a.oos_sim.fees_paid == b.oos_sim.fees_paid
    for x, y in zip(a.windows, b.windows, strict=True):
        assert (x.window, x.row, x.chosen, x.params) == (y.window, y.row, y.chosen, y.params)
        np.testing.assert_array_equal(x.oos_equity, y.oos_equity)


@pytest.fixture(scope="module")
def serial(artifact: StrategyArtifact, candles: CandleSet,
           space: ParamSpace) -> tuple[WalkForwardResult, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    result = walk(artifact, candles, space, progress=lambda done, total: calls.append(
        (done, total)))
    assert result.execution == "in-process" and len(result.windows) == 8
    assert len({tuple(w.chosen.values()) for w in result.windows}) > 1  # winners differ
    return result, calls


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR) as local:
        yield str(local.scheduler_address)


def test_serial_progress_counts_every_window(
        serial: tuple[WalkForwardResult, list[tuple[int, int]]]) -> None:
    assert serial[1] == [(done, 8) for done in range(9)]


def recorded(root: Path, run_id: str) -> list[tuple[object, ...]]:
    """What the registry holds of a walk-forward run and its windows (no ids, no clocks)."""
    with Registry(root) as registry:
        runs = [registry.get_run(run_id), *registry.child_runs(run_id)]
    return [(r.kind, r.spec, r.params, r.settings, r.metrics, r.trades, r.warnings, r.inputs,
             r.summary, r.data_start, r.data_end, r.data_bars, r.children) for r in runs]


def test_two_local_workers_record_the_serial_result(
        tmp_path: Path, serial: tuple[WalkForwardResult, list[tuple[int, int]]]) -> None:
    """`walkforward(workers=2)`, end to end: the same numbers, and the same registry rows as
    the serial result recorded by ``wf_record``."""
    project = make_project(tmp_path / "parallel")
    calls: list[tuple[int, int]] = []
    result = walkforward(str(project / MA), train="1000", test="500", sets=SETS, root=project,
                         workers=2, progress=lambda done, total: calls.append((done, total)))
    assert result.execution == "local dask cluster, 2 worker process(es)"
    assert_identical(result, serial[0])
    assert calls == [(done, 8) for done in range(9)]  # once per window, whichever finished
    assert result.run_id is not None
    with Registry(tmp_path) as registry:
        serial_id = registry.record(*walkforward_records(serial[0]))
    parallel = recorded(project, result.run_id)
    assert parallel == recorded(tmp_path, serial_id)
    assert parallel[0][0] == "walkforward" and len(parallel) == 9


def test_an_existing_scheduler_gives_the_serial_result(
        artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace, cluster: str,
        serial: tuple[WalkForwardResult, list[tuple[int, int]]]) -> None:
    assert cluster.startswith("tcp://127.0.0.1:")
    result = walk(artifact, candles, space, scheduler=cluster)
    assert result.execution == f"dask scheduler {cluster}"
    assert_identical(result, serial[0])


def test_placement_is_checked_before_anything_runs(tmp_path: Path) -> None:
    """Bad --workers / --scheduler values are U005 before the spec is even read."""
    missing = str(tmp_path / "nope.peak")
    for kwargs, needle in (({"workers": 0}, "need at least 1"),
                           ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "not both"),
                           ({"scheduler": "localhost"}, "not a scheduler address")):
        with pytest.raises(UsageError) as caught:
            walkforward(missing, train="1000", test="500", **kwargs)
        assert caught.value.diagnostic.code == "U005"
        assert needle in caught.value.diagnostic.message


# --------------------------------------------------------------------------- Ctrl-C


def ctrl_c_at(windows: int) -> Callable[[int, int], None]:
    """A progress callback that sends this process SIGINT once ``windows`` are done."""
    def progress(done: int, total: int) -> None:
        if done == windows:
            signal.raise_signal(signal.SIGINT)
    return progress


def test_ctrl_c_in_process_stops_at_once(artifact: StrategyArtifact, candles: CandleSet,
                                         space: ParamSpace) -> None:
    with pytest.raises(WalkForwardInterrupted) as caught:
        walk(artifact, candles, space, progress=ctrl_c_at(3))
    assert (caught.value.done, caught.value.total) == (3, 8)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_on_dask_cancels_the_pending_windows(
        artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace,
        cluster: str) -> None:
    with pytest.raises(WalkForwardInterrupted) as caught:
        walk(artifact, candles, space, scheduler=cluster, progress=ctrl_c_at(1))
    assert 1 <= caught.value.done < 8 and caught.value.total == 8
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupted_walkforward_writes_and_records_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    written: list[WalkForwardResult] = []

    def outputs(result: WalkForwardResult) -> dict[str, Path]:
        written.append(result)
        return {}

    with pytest.raises(WalkForwardInterrupted):
        walkforward(str(project / MA), train="1000", test="500", sets=SETS, root=project,
                    outputs=outputs, progress=ctrl_c_at(2))
    assert written == []
    with Registry(project) as registry:
        assert registry.list_runs(limit=None) == []


# --------------------------------------------------------------------------- the command


def peak(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "peakdsl.cli", "walkforward", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return run


def test_cli_workers_print_the_serial_document(
        tmp_path: Path, serial: tuple[WalkForwardResult, list[tuple[int, int]]]) -> None:
    run = peak(make_project(tmp_path), MA, "--train", "1000", "--test", "500", "--set", SETS[0],
               "--set", SETS[1], "--workers", "2", "--json", "--no-record")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["command"] == (f"peak walkforward {MA} --set {SETS[0]} --set {SETS[1]} "
                              "--train 1000 --test 500")  # --workers changes nothing: left out
    doc.pop("command")
    assert all(window.pop("command").startswith(f"peak walkforward {MA} --from ")
               for window in doc["windows"])
    expected = results_doc(serial[0])
    assert doc == json.loads(json.dumps({**expected, "artifact_sha256": doc["artifact_sha256"]}))
    assert "windows" not in run.stderr  # --json: no progress (tests/cli/test_runs_repro.py)


@pytest.mark.parametrize(("args", "needle"), [
    (("--workers", "0"), "--workers 0"),
    (("--workers", "2", "--scheduler", "tcp://127.0.0.1:1"), "not both"),
    (("--scheduler", "localhost"), "not a scheduler address"),
])
def test_cli_bad_placement_is_a_usage_error(tmp_path: Path, args: tuple[str, ...],
                                            needle: str) -> None:
    run = peak(make_project(tmp_path), MA, "--train", "1000", "--test", "500", *args)
    assert run.returncode == 2, run.stderr
    assert "U005" in run.stderr and needle in run.stderr


def test_cli_unreachable_scheduler_is_a_usage_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "peakdsl.cli", "walkforward", MA, "--train", "1000", "--test",
         "500", "--scheduler", "tcp://127.0.0.1:9", "--report", "out/wf.html"], cwd=project,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert run.returncode == 2, run.stderr
    assert "U005" in run.stderr and "cannot connect" in run.stderr
    assert "Traceback" not in run.stderr and not (project / "out").exists()
    with Registry(project) as registry:
        assert registry.list_runs(limit=None) == []


def interrupt_when_running(project: Path, *extra: str) -> tuple[int, str]:
    """Start a long walk-forward with a live bar on stderr (TTY_COMPATIBLE=1), send SIGINT
    once the bar shows two finished windows, return the exit code and stderr."""
    env = {**os.environ, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "NO_COLOR": "1",
           "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "peakdsl.cli", "walkforward", MA, "--train", "4000", "--test",
         "10", "--report", "out/wf.html", *extra],  # 100 windows of the whole grid
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    running, ended = threading.Event(), threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for chunk in iter(lambda: proc.stderr.read(1), ""):  # type: ignore[union-attr]
            seen.append(chunk)
            if chunk == "s" and RUNNING.search("".join(seen[-60:])):
                running.set()
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    while not (running.is_set() or ended.is_set()):
        running.wait(0.05)
    assert running.is_set(), "the walk-forward ended before it could be interrupted:\n" + \
        "".join(seen)
    os.kill(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    assert ended.wait(30)
    assert proc.stdout is not None
    assert proc.stdout.read() == ""
    return proc.returncode, "".join(seen)


RUNNING = re.compile(r"\b([2-9]|[1-9]\d)/100 windows")  # two or more windows done


@pytest.mark.parametrize("extra", [(), ("--workers", "2")], ids=["in-process", "workers"])
def test_cli_ctrl_c_exits_130_with_nothing_written(tmp_path: Path,
                                                   extra: tuple[str, ...]) -> None:
    project = make_project(tmp_path)
    started = time.monotonic()
    code, err = interrupt_when_running(project, *extra)
    assert code == 130, err
    assert re.search(r"interrupted: \d+ of 100 windows done; nothing written or recorded", err)
    assert "Traceback" not in err
    assert not (project / "out").exists()
    with Registry(project) as registry:
        assert registry.list_runs(limit=None) == []
    assert time.monotonic() - started < 300
