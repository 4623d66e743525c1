"""A loopback alert webhook that can be down in each way a real one is.

The drills point a deployment's webhook sink (``url_env`` in its risk spec) at this server
on 127.0.0.1 and read back what it accepted. While ``down``, it answers each delivery
attempt with the next failure of its ``script``, in turn:

* ``refuse`` — the connection is dropped unanswered (what a dead proxy or a refused
  connection looks like to the sender: no HTTP answer at all);
* ``hang`` — the request is held ``hold_s`` seconds, longer than any sink waits (2 s), then
  dropped: the sender times out;
* ``rate_limited`` — ``429 Too Many Requests`` with ``Retry-After: 1``.

``up()`` makes it accept (200) and record every JSON body; ``attempts`` counts what it
answered, by mode. Stdlib only, bound to 127.0.0.1, every wait bounded: ``stop()`` releases
held requests at once.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from ..live.loopback_http import LoopbackService

Mode = Literal["up", "refuse", "hang", "rate_limited"]
FAILURES: tuple[Mode, ...] = ("refuse", "rate_limited", "hang")


class AlertWebhook(LoopbackService):
    """``with AlertWebhook() as hook:`` serves on ``hook.url`` (module docstring)."""

    def __init__(self, script: Sequence[Mode] = FAILURES, hold_s: float = 3.0) -> None:
        if not script or "up" in script:
            raise ValueError("a down script is a non-empty sequence of failures")
        self.script, self.hold_s = tuple(script), hold_s
        self._lock = threading.Lock()
        self._down = False
        self._turn = 0
        self._received: list[dict[str, Any]] = []
        self._attempts: Counter[str] = Counter()
        super().__init__("drill webhook", lambda address, stopping: _Server(
            address, _Handler, self, stopping))

    @property
    def url(self) -> str:
        return self.origin + "/alerts"

    # --- control and read-back --------------------------------------------------------
    def down(self) -> None:
        with self._lock:
            self._down = True

    def up(self) -> None:
        with self._lock:
            self._down = False

    @property
    def received(self) -> list[dict[str, Any]]:
        """The JSON bodies accepted, in order."""
        with self._lock:
            return list(self._received)

    @property
    def attempts(self) -> Counter[str]:
        """Requests answered, by mode (``up`` counts the accepted ones)."""
        with self._lock:
            return Counter(self._attempts)

    def codes(self) -> list[str]:
        return [str(body.get("code")) for body in self.received]

    def answer(self, body: bytes) -> Mode:
        """How to answer this request (recording it when accepted)."""
        with self._lock:
            mode: Mode = "up"
            if self._down:
                mode = self.script[self._turn % len(self.script)]
                self._turn += 1
            self._attempts[mode] += 1
            if mode == "up":
                try:
                    self._received.append(json.loads(body))
                except ValueError:
                    self._received.append({"unreadable": body.decode("utf-8", "replace")})
            return mode

    def hold(self) -> None:
        self._stopping.wait(self.hold_s)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 hook: AlertWebhook, stopping: threading.Event) -> None:
        self.hook, self.stopping = hook, stopping
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        mode = self.server.hook.answer(body)
        if mode == "hang":
            self.server.hook.hold()
        if mode in ("refuse", "hang"):
            self.close_connection = True
            return
        status = 200 if mode == "up" else 429
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"no")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: ``received`` and ``attempts`` are the log."""


__all__ = ["FAILURES", "AlertWebhook", "Mode"]
