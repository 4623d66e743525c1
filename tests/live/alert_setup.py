"""Loopback HTTP sinks and recording sinks shared by the alert, monitor and runner tests.

A module of its own (not conftest) so that test files can import these names.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from peakdsl.live.alerts import AlertMessage, SinkError

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
TOKEN = "T0KEN-s3cr3t-xyz"
HANG_TIMEOUT_S = 0.2


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Hook:
    """A loopback webhook server; ``mode`` is "ok" | "fail" | "429" | "hang" | "redirect"."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.retry_after = "7"
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, str]] = []  # method, path, content type
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.requests.append(("POST", self.path, self.headers.get("Content-Type", "")))
                hook.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self.mode == "hang":
            self.release.wait(2.0)  # well past the client's timeout, but bounded
            return
        status = {"ok": 200, "fail": 500, "429": 429, "redirect": 302}[self.mode]
        handler.send_response(status)
        if self.mode == "429":
            handler.send_header("Retry-After", self.retry_after)
        if self.mode == "redirect":
            handler.send_header("Location", "http://127.0.0.1:1/elsewhere")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(2.0)


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/{TOKEN}"


class Recorder:
    """A sink that keeps what it got; ``fail`` makes it refuse, ``gate`` makes it wait."""

    def __init__(self, name: str = "rec") -> None:
        self.name = name
        self.got: list[AlertMessage] = []
        self.fail = False
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def send(self, message: AlertMessage) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5.0)
        if self.fail:
            raise SinkError(f"{self.name}: refused")
        self.got.append(message)


def until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()
