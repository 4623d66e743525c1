"""No test touches the internet: outside 127.0.0.1 / ::1 / localhost, every connection and
name lookup is refused, whatever library tries it (installed by ``conftest.py``).

Refused with ``OSError`` (what a network failure looks like to callers), so code under test
takes its error path instead of hanging on a real exchange; ``tests/test_netguard.py`` proves
the guard holds.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", ""})


class InternetRefused(OSError):
    """A test tried to reach a host that is not this machine."""


def is_local(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%")[0].lower()
    if name in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback or name == "0.0.0.0"
    except ValueError:
        return False


def _check(address: Any) -> None:
    if isinstance(address, tuple) and address and not is_local(address[0]):
        raise InternetRefused(f"tests may not reach {address[0]!r}: loopback only")


def install() -> None:
    """Wrap ``socket.socket.connect``/``connect_ex`` and ``socket.getaddrinfo``."""
    connect, connect_ex, getaddrinfo = (socket.socket.connect, socket.socket.connect_ex,
                                        socket.getaddrinfo)

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _check(address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _check(address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_local(host):
            raise socket.gaierror(socket.EAI_NONAME,
                                  f"tests may not resolve {host!r}: loopback only")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo
