"""``kill -9`` of a deployment whose strategy reads another market (``close@ETH/USDT``).

The runner (``crash_child.py``, a testnet replay against the loopback exchange) is killed
between ticks and inside the order lifecycle; the restart warms its stream up again from
both markets' history and resumes after the last saved tick. The end state must be the
uninterrupted run's — the same intents filled for the same quantities, the same book — with
no order sent twice and nothing lost (``crash_harness.final_state``'s invariants).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from crash_child import Run
from crash_harness import Final, ForkServer, crash_exchange, final_state, forks_with_testnet_keys

from peakdsl.live.runner import Deployment
from peakdsl.promote.flow import promote

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/pair_flip.peak"
PAIR = """strategy pair_flip {
    market BTC/USDT
    timeframe 1h
    let spread = log(close) - log(close@ETH/USDT)
    entry long when spread > sma(spread, 4)
    exit long when spread < sma(spread, 4) or close@ETH/USDT < sma(close@ETH/USDT, 6)
    size 20% of equity
}
"""
EASY = "promotion easy_gate {\n    require sharpe >= -100\n    require trades >= 5\n}\n"
START, END = "2025-12-01", "2025-12-05"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pair_crash") / "project"
    shutil.copytree(REPO / "specs", root / "specs")
    (root / SPEC).write_text(PAIR)
    (root / "specs" / "risk" / "easy_gate.peak").write_text(EASY)
    return root


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[ForkServer]:
    forks = forks_with_testnet_keys(Run(spec=str(project / SPEC), start=START, end=END, url=""),
                          project.parent / "fork-server.log")
    yield forks
    forks.close()


@pytest.fixture(scope="module")
def promoted(server: ForkServer, project: Path) -> Path:
    promote(str(project / SPEC), gate="easy_gate", stage="testnet", root=project, run=True,
            author="alice")
    return project


def deployment(project: Path, name: str) -> Path:
    root = project.parent / name
    shutil.copytree(project, root)
    return root


def deploy(server: ForkServer, project: Path, name: str, crashes: tuple[str, ...] = ()
           ) -> tuple[Final, dict[str, int]]:
    """Runs crashing at each of ``crashes`` (each must die by SIGKILL), then one to the end;
    the end state and the crash points the last run reached."""
    root = deployment(project, name)
    out, log = root / "summary.json", root / "run.log"
    with crash_exchange() as exchange:
        config = Run(spec=str(root / SPEC), start=START, end=END, url=exchange.url,
                     count=True, out=str(out), log=str(log))
        for crash in crashes:
            assert server.run(replace(config, crash=crash)) == -9, log.read_text()
        assert server.run(config) == 0, log.read_text()
        final = final_state(exchange, Deployment(root, "testnet", "default",
                                                 "pair_flip").store_path)
    counts: dict[str, int] = json.loads(out.read_text())["counts"]
    return final, counts


@pytest.fixture(scope="module")
def reference(server: ForkServer, promoted: Path) -> Final:
    final, counts = deploy(server, promoted, "reference")
    assert final.problems == []
    assert counts["saved"] == 97 and final.orders >= 6  # 96 bars; trades every few
    return final


@pytest.mark.parametrize("crashes", [("saved:40",), ("submitted:3",),
                                     ("write_ahead:2", "reconciled:1"), ("fill_applied:4",)],
                         ids="+".join)
def test_kill_9_resumes_both_feeds_and_ends_as_the_uninterrupted_run(
        crashes: tuple[str, ...], server: ForkServer, promoted: Path,
        reference: Final) -> None:
    final, _ = deploy(server, promoted, "-".join(c.replace(":", "") for c in crashes),
                      crashes)
    assert final.problems == []
    assert final.differences(reference) == []
