"""Secrets never leave the process (issue 11, item 8): canary credentials in the environment,
a testnet deployment that really uses them (the loopback exchange accepts only them), logging
at DEBUG captured, then every log line, the store's raw bytes (WAL included, read while the
runner writes), the registry, the summary JSON, the CLI's output and every file of the
project searched for the canaries: 0 hits.

The search is shown to work first (a planted canary is found), so a 0 is a real 0.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_setup import MA, deployment, live_request, promoted_project, runner_settings
from loopback_setup import MARKETS, Clock
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.runner import run_deployment

KEY = "canaryKEY-7c1e5a9b3f2d4068"
SECRET = "canarySECRET-e4b80d26a9c3f175"
ENV = {"PEAK_TESTNET_API_KEY": KEY, "PEAK_TESTNET_API_SECRET": SECRET}
CANARIES = (KEY, SECRET)
ORDER = "POST /api/v3/order"


def hits(blobs: Iterable[tuple[str, bytes]]) -> list[str]:
    """Where a canary occurs: ``name: canary`` for each blob holding one (as text in UTF-8
    or UTF-16, which SQLite may use, or hex-encoded)."""
    found = []
    for name, data in blobs:
        for canary in CANARIES:
            forms = (canary.encode(), canary.encode("utf-16-le"), canary.encode().hex().encode())
            if any(form in data for form in forms):
                found.append(f"{name}: {canary}")
    return found


def files_under(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield str(path.relative_to(root)), path.read_bytes()


def log_texts(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[str, bytes]]:
    yield "caplog", caplog.text.encode()
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text} {record.stack_info}"
        yield f"record {record.name}", text.encode()


@pytest.fixture
def canary_exchange() -> Iterator[LoopbackExchange]:
    """The loopback exchange that accepts only the canary credentials."""
    with LoopbackExchange(markets=MARKETS, balances={"USDT": "10000", "BTC": "1"},
                          prices={"BTC/USDT": "50000", "ETH/USDT": "2500"}, api_key=KEY,
                          secret=SECRET, clock=Clock()) as exchange:
        yield exchange


@pytest.fixture
def debug_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Path]:
    """Everything logged at DEBUG, to caplog and to a file."""
    path = tmp_path / "debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()


def test_the_search_finds_a_planted_canary(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(f"x{KEY}y")
    (tmp_path / "b.bin").write_bytes(SECRET.encode("utf-16-le"))
    (tmp_path / "c.txt").write_text(SECRET.encode().hex())
    (tmp_path / "d.txt").write_text("nothing here")
    assert hits(files_under(tmp_path)) == [f"a.txt: {KEY}", f"b.bin: {SECRET}",
                                           f"c.txt: {SECRET}"]


def test_a_testnet_deployment_leaks_no_credential(tmp_path_factory: pytest.TempPathFactory,
                                                  tmp_path: Path,
                                                  canary_exchange: LoopbackExchange,
                                                  debug_log: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    root = promoted_project(tmp_path_factory, tmp_path)
    live = deployment(root).store_path.parent
    during: list[tuple[str, bytes]] = []

    def on_fill(fill: Any) -> None:  # the store's files while the runner holds them open
        during.extend((f"during/{name}", data) for name, data in files_under(live))

    summary = run_deployment(live_request(root), runner_settings(canary_exchange.url),
                             env=ENV, on_fill=on_fill)
    assert canary_exchange.calls[ORDER] == 3 and len(summary.fills) == 3  # keys were used
    assert any(name.endswith(".sqlite-wal") for name, _ in during)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG was on
    assert debug_log.stat().st_size > 0
    blobs = [*during, *files_under(root), *log_texts(caplog),
             ("debug.log", debug_log.read_bytes()),
             ("summary", summary.model_dump_json().encode()),
             ("summary repr", repr(summary).encode())]
    assert (root / ".peak" / "registry.sqlite").is_file()
    assert hits(blobs) == []


def test_peak_live_run_on_the_command_line_leaks_no_credential(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
        canary_exchange: LoopbackExchange, debug_log: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    root = promoted_project(tmp_path_factory, tmp_path)
    argv = ["live", "run", str(root / MA), "--mode", "testnet", "--replay", "--from",
            "2025-12-05", "--to", "2025-12-08", "--history", "0", "--endpoint",
            canary_exchange.url]
    runs = [CliRunner(env=ENV).invoke(app, [*argv, *extra]) for extra in ([], ["--json"])]
    for result in runs:
        assert result.exit_code == 0, result.output
    assert "fills 3" in runs[0].output  # the text run traded with the canary keys
    assert json.loads(runs[1].stdout)["ticks"] == 0  # the second resumed after the first
    assert canary_exchange.calls[ORDER] == 3
    blobs = [*files_under(root), *log_texts(caplog), ("debug.log", debug_log.read_bytes()),
             *((f"cli output {i}", r.output.encode()) for i, r in enumerate(runs)),
             *((f"cli stderr {i}", r.stderr.encode()) for i, r in enumerate(runs))]
    assert hits(blobs) == []
