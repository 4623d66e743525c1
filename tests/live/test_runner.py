"""A deployment's kill switch (issue 11, item 5), through ``run_deployment`` on the loopback
exchange and ``peak live kill|reset|status`` on the command line.

The promises: a running deployment stops submitting within one second of ``peak live kill``,
engages the switch, cancels its open orders and, with ``--flatten``, sells what it holds; the
switch is durable (a restart refuses with E041) until ``peak live reset --reason …`` releases
it, which asks for confirmation and is logged.

Every wait here is bounded: threads are joined with a timeout, polls give up after seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deploy_setup import (
    MA,
    TESTNET_ENV,
    deployment,
    live_request,
    promoted_project,
    runner_settings,
    wait_until,
)
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.live.gate import Refused
from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.run import LiveSummary
from peakdsl.live.runner import request_kill, run_deployment
from peakdsl.live.store import LiveStore, StoreError

ORDER = "POST /api/v3/order"
RESTING = "resting-0001"  # a LIMIT buy far below the price: an open order until cancelled


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return promoted_project(tmp_path_factory, tmp_path)


def peak(root: Path, *argv: str, input: str | None = None, code: int = 0) -> Any:
    result = CliRunner(env={"PEAK_AUTHOR": "carol"}).invoke(
        app, ["live", argv[0], str(root / MA), "--mode", "testnet", *argv[1:]], input=input)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def readonly(root: Path) -> LiveStore | None:
    try:
        return LiveStore.open(deployment(root).store_path, readonly=True)
    except StoreError:
        return None


def engaged(root: Path) -> bool:
    store = readonly(root)
    if store is None:
        return False
    with store:
        return store.kill_state().engaged


def saved_a_bar(root: Path) -> bool:
    store = readonly(root)
    if store is None:
        return False
    with store:
        return store.last_snapshot() is not None


def order_status(exchange: LoopbackExchange, client_id: str) -> str | None:
    return next((o.status for o in exchange.orders() if o.client_id == client_id), None)


class Background:
    """``run_deployment`` in a thread: its summary or its exception, joined with a bound."""

    def __init__(self, call: Callable[[], LiveSummary]) -> None:
        self.summary: LiveSummary | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], LiveSummary]) -> None:
        try:
            self.summary = call()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def join(self, timeout: float) -> LiveSummary:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the runner did not stop within {timeout} s"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


@pytest.fixture
def waiting_deployment(root: Path, exchange: LoopbackExchange) -> Iterator[Background]:
    """A deployment replaying a quarter of a second per hourly bar (its waits poll for kill
    requests), with one resting order it adopted; stopped by itself after 40 ticks."""
    exchange.place("BTC/USDT", "BUY", "LIMIT", "0.01", "40000", client_id=RESTING)
    running = Background(lambda: run_deployment(
        live_request(root, ("2025-12-01", "2025-12-10"), speed=14_400.0),
        runner_settings(exchange.url, unknown_orders="adopt", max_ticks=40), env=TESTNET_ENV))
    assert wait_until(lambda: saved_a_bar(root), timeout=30) is not None
    yield running
    running.thread.join(15)


def test_a_kill_request_while_waiting_engages_cancels_and_stops_within_a_second(
        root: Path, exchange: LoopbackExchange, waiting_deployment: Background) -> None:
    """The request lands while the runner sleeps between bars: within one second the switch
    is engaged and the adopted resting order cancelled; the runner then ends halted, having
    sent nothing more, and the switch stays engaged in the store."""
    assert order_status(exchange, RESTING) == "NEW"  # adopted, still open
    sent_before = exchange.calls[ORDER]
    start = time.monotonic()
    request_kill(deployment(root), "drill", "test", flatten=False)
    done = wait_until(lambda: engaged(root) or not waiting_deployment.thread.is_alive(), 1.5)
    assert engaged(root) and done is not None and done < 1.0, f"engaged after {done} s"
    assert wait_until(lambda: order_status(exchange, RESTING) == "CANCELED", 1.0) is not None
    assert time.monotonic() - start < 1.0
    summary = waiting_deployment.join(5)
    assert summary.ticks < 40 and exchange.calls[ORDER] == sent_before
    assert summary.notes[0] == "kill switch engaged: drill (requested by test)"
    assert not deployment(root).kill_path.exists()
    with LiveStore.open(deployment(root).store_path) as store:  # durable
        assert store.kill_state().engaged and store.kill_state().reason.startswith("drill")
        assert [s.status for s in store.sessions()] == ["halted"]


def test_peak_live_kill_flatten_cancels_and_sells_and_stays_engaged(
        root: Path, exchange: LoopbackExchange) -> None:
    """The kill arrives while the runner books its first buy; at the next tick it engages
    the switch, cancels the adopted resting order and sells what the slot holds (its buy
    less the fee paid in BTC, rounded down to the step). The switch outlives the run: a
    restart refuses (E041) and ``peak live status`` shows it."""
    exchange.place("BTC/USDT", "BUY", "LIMIT", "0.01", "40000", client_id=RESTING)
    bought, asked = threading.Event(), threading.Event()

    def on_fill(fill: Any) -> None:
        if fill.side == "buy" and not bought.is_set():
            bought.set()
            assert asked.wait(30), "the test did not send the kill"

    running = Background(lambda: run_deployment(
        live_request(root), runner_settings(exchange.url, unknown_orders="adopt"),
        env=TESTNET_ENV, on_fill=on_fill))
    assert bought.wait(30), "no buy within 30 s"
    out = peak(root, "kill", "--flatten", "--reason", "drill")
    asked.set()
    summary = running.join(30)
    assert "kill requested from the running deployment" in out.output
    assert [(o.client_id == RESTING, o.side, o.qty, o.status) for o in exchange.orders()] == [
        (True, "BUY", Decimal("0.01"), "CANCELED"), (False, "BUY", Decimal("0.13003"), "FILLED"),
        (False, "SELL", Decimal("0.12989"), "FILLED")]
    assert exchange.calls[ORDER] == 2
    assert summary.notes[0] == "kill switch engaged: drill (requested by carol)"
    assert [f.side for f in summary.fills] == ["buy"]
    with LiveStore.open(deployment(root).store_path) as store:
        assert store.kill_state().engaged and store.kill_state().by == "peak live"
        assert [s.status for s in store.sessions()] == ["halted"]
        assert store.position("BTC/USDT").qty == pytest.approx(0.00000997, abs=1e-12)
        assert [(i.leg, i.reason) for i in store.intents()] == [(1, "signal"), (9, "flatten")]
        assert any(e.event == "kill" and e.message == "1 open orders cancelled"
                   for e in store.log_since(0))
    assert not deployment(root).kill_path.exists()
    with pytest.raises(Refused) as refused:
        run_deployment(live_request(root), runner_settings(exchange.url), env=TESTNET_ENV)
    assert refused.value.codes == ["E041"] and "drill (requested by carol)" in \
        str(refused.value)
    status = json.loads(peak(root, "status", "--json").stdout)
    assert status["kill_switch"]["engaged"] is True
    assert status["kill_switch"]["reason"] == "drill (requested by carol)"


def test_peak_live_kill_without_a_runner_engages_the_store(root: Path) -> None:
    out = peak(root, "kill", "--reason", "maintenance window")
    assert out.output.strip() == "kill switch engaged: maintenance window\nA004 raised to log"
    with LiveStore.open(deployment(root).store_path) as store:
        kill = store.kill_state()
    assert (kill.engaged, kill.reason, kill.by) == (True, "maintenance window", "carol")


def test_an_engaged_switch_refuses_a_start_with_e041(root: Path,
                                                     exchange: LoopbackExchange) -> None:
    peak(root, "kill", "--reason", "hands off")
    exchange.reset_counts()
    with pytest.raises(Refused) as refused:
        run_deployment(live_request(root), runner_settings(exchange.url), env=TESTNET_ENV)
    assert refused.value.codes == ["E041"]
    assert "hands off (by carol)" in str(refused.value)
    assert exchange.calls[ORDER] == 0 and exchange.calls["GET /api/v3/openOrders"] == 0


def test_peak_live_reset_asks_then_releases_and_logs(root: Path,
                                                     exchange: LoopbackExchange) -> None:
    peak(root, "kill", "--reason", "hands off")
    declined = peak(root, "reset", "--reason", "checked the account", input="n\n", code=1)
    assert "release the kill switch of ma_crossover (testnet, default)?" in declined.output
    assert "not reset" in declined.output
    assert engaged(root)
    released = peak(root, "reset", "--reason", "checked the account", "--yes")
    assert released.output.strip() == "kill switch released: checked the account"
    with LiveStore.open(deployment(root).store_path) as store:
        assert not store.kill_state().engaged
        resets = [e for e in store.log_since(0) if e.event == "kill_reset"]
    assert [(e.level, e.message) for e in resets] == [
        ("warning", "kill reset by carol: checked the account")]
    summary = run_deployment(live_request(root), runner_settings(exchange.url),
                             env=TESTNET_ENV)
    assert summary.ticks == 73 and len(summary.fills) == 3  # it may run again


def test_peak_live_reset_confirmed_interactively(root: Path) -> None:
    peak(root, "kill", "--reason", "hands off")
    peak(root, "reset", "--reason", "all clear", input="y\n")
    assert not engaged(root)


def test_reset_needs_a_reason(root: Path) -> None:
    out = peak(root, "reset", "--reason", "  ", "--yes", code=2)
    assert "error[U005] --reason is empty" in out.output
    assert not deployment(root).store_path.exists()  # asked nothing, opened nothing
