"""The dashboard in a real headless Chromium, served by uvicorn on 127.0.0.1: every kind of
page loads without a console message and shows the registry's data (a served report's
plotly charts draw under its sandboxed policy), and a deployment's page updates itself
without a reload when its store changes.

The console check is tests/report/test_report_browser.py's: Chromium logs page console
output on stderr as ``…:CONSOLE:…`` lines (every level), and uncaught errors as ``Uncaught``;
the dashboard logs nothing, so any such line fails. A control shows the check sees errors.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser_setup import BROWSER_MARKS, CHROMIUM, CONSOLE, chromium_flags
from serve_setup import Made, engage_kill, log_alert, project_copy

from peakdsl.metrics import format_metric
from peakdsl.promote.records import load_chain
from peakdsl.registry.store import Registry
from peakdsl.serve import create_app

LIVE = "/live/paper/default/ma_crossover"
SECOND_ALERT = "second alert <i>from the browser test</i>"
pytestmark = BROWSER_MARKS


def flags(profile: Path, budget_ms: int) -> list[str]:
    return chromium_flags(profile, budget_ms=budget_ms, width=1280, height=1600,
                          allow_loopback=True)


class ChangeOnce:
    """ASGI wrapper: the first request of ``path`` with ``?changed=1`` is rendered, then —
    before its last byte leaves — ``change()`` runs. The page the browser gets shows the
    old state; every later read of the store the new one."""

    def __init__(self, app: Any, path: str, change: Callable[[], None]) -> None:
        self.app, self.path, self.change = app, path, change
        self.served = b""
        self.done = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.done or scope["path"] != self.path \
                or b"changed=1" not in scope["query_string"]:
            await self.app(scope, receive, send)
            return

        async def send_then_change(message: Any) -> None:
            if message["type"] == "http.response.body":
                self.served += message.get("body", b"")
                if not message.get("more_body") and not self.done:
                    self.change()
                    self.done = True
            await send(message)

        await self.app(scope, receive, send_then_change)


@dataclass
class Served:
    url: str
    root: Path
    made: Made
    changer: ChangeOnce


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    import uvicorn

    root, made = project_copy(tmp_path_factory, tmp_path_factory.mktemp("browser"))

    def change() -> None:
        engage_kill(root, "browser drill")
        log_alert(root, SECOND_ALERT, code="A002", severity="critical")

    changer = ChangeOnce(create_app(root, token=None, refresh_s=1), LIVE, change)
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(changer, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start within 20 s"
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", root, made, changer)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def browse(urls: list[str], tmp: Path, budget_ms: int = 3000, timeout: float = 90
           ) -> list[tuple[str, str]]:
    """(DOM, stderr) of each URL, two Chromium processes at a time."""
    assert CHROMIUM is not None
    out: list[tuple[str, str]] = []
    for start in range(0, len(urls), 2):
        procs = [subprocess.Popen(
            [CHROMIUM, *flags(tmp / f"profile-{start + i}", budget_ms), "--dump-dom", url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i, url in enumerate(urls[start:start + 2])]
        for proc in procs:
            try:
                dom, err = proc.communicate(timeout=timeout)
            finally:
                proc.kill()
            assert proc.returncode == 0, err[-2000:]
            out.append((dom, err))
    return out


def console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


def test_every_kind_of_page_loads_and_shows_the_data(served: Served, tmp_path: Path) -> None:
    made, root = served.made, served.root
    (record,) = load_chain(root, "ma_crossover").records()
    with Registry(root) as reg:
        backtest = reg.get_run(made.backtest)
    expect = {
        "/": [made.robustness, made.walkforward, "passed `easy_gate` for testnet"],
        f"/runs/{made.backtest}": [
            'data-metric="trades">17<', "2,208",
            f'data-metric="sharpe">{format_metric("sharpe", backtest.metrics["sharpe"])}<'],
        "/promotions/ma_crossover": [record.sha256, "alice &lt;script&gt;"],
        "/live": ["released", "ma_crossover"],
        LIVE + "/report?period=weekly": ["2024-W01", "<svg"],
        f"/runs/{made.portfolio}/files/report": ['class="main-svg"'],
    }
    pages = browse([served.url + path for path in expect], tmp_path)
    for (path, needles), (dom, stderr) in zip(expect.items(), pages, strict=True):
        assert console(stderr) == [], (path, console(stderr))
        for needle in needles:
            assert needle in dom, (path, needle)


def test_the_live_page_updates_without_a_reload(served: Served, tmp_path: Path) -> None:
    """The page is served showing the switch released; the store then changes (a kill, a
    second alert); within 4 s of the page's (virtual) time, its script has fetched the JSON
    twin and shows both — no reload."""
    ((dom, stderr),) = browse([served.url + LIVE + "?changed=1"], tmp_path, budget_ms=4000)
    assert served.changer.done
    first = served.changer.served.decode()
    assert 'data-state="off">released<' in first and "browser drill" not in first
    assert console(stderr) == []
    assert 'data-format="kill" data-state="on">ENGAGED<' in dom
    assert "browser drill" in dom
    alerts = dom[dom.index('id="table-alerts"'):]
    alerts = alerts[:alerts.index("</table>")]
    assert alerts.count("<tr>") == 3  # the header and both alerts, newest first
    assert alerts.index("second alert &lt;i&gt;from the browser test&lt;/i&gt;") < \
        alerts.index("feed stale")
    assert "<i>from" not in dom  # written as text, never as HTML


def test_the_console_check_sees_errors(tmp_path: Path) -> None:
    """Control: a page that logs an error and throws is caught by the same check."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>console.error('bad');"
                    "throw new Error('boom');</script>", encoding="utf-8")
    ((_, stderr),) = browse([page.resolve().as_uri()], tmp_path)
    found = console(stderr)
    assert len(found) == 2 and "Uncaught Error: boom" in found[1], stderr[-2000:]
