"""The life of a test server on 127.0.0.1: a ``ThreadingHTTPServer`` served by one daemon
thread, started and stopped once, shared by the loopback exchange and the drills' alert
webhook.

The host is not a parameter: these servers exist for tests, drills and replays, and must
never be reachable from another machine. ``stop`` sets ``stopping`` first, so handlers
holding an answer (a simulated hang) let go, then shuts the server down and joins its
thread — bounded, at most five seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"


class LoopbackService:
    """Start, stop and address one server; ``make`` builds it on ``(HOST, 0)`` (a free
    port) given the ``stopping`` event its handlers may wait on."""

    def __init__(self, name: str,
                 make: Callable[[tuple[str, int], threading.Event], ThreadingHTTPServer]
                 ) -> None:
        self._name, self._make = name, make
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = self._make((HOST, 0), self._stopping)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release held answers, stop serving and close the socket (bounded: ≤ 5 s)."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        self._stopping.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError(f"the {self._name} is not running")
        return f"http://{HOST}:{self._server.server_address[1]}"
