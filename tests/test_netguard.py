"""The suite's internet guard (``tests/netguard.py``): loopback works, anything else is
refused before a packet leaves — also for ccxt's own HTTP client."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_loopback_is_allowed() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=2) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert conn.recv(64).startswith(b"HTTP/1.0 200")
    thread.join(timeout=2)
    server.server_close()


@pytest.mark.parametrize("address", [("93.184.216.34", 443), ("8.8.8.8", 53),
                                     ("2606:4700::1111", 443)])
def test_other_addresses_are_refused(address: tuple[str, int]) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(OSError,
                                                                            match="loopback"):
        sock.connect(address)


def test_names_are_not_even_resolved() -> None:
    with pytest.raises(socket.gaierror, match="loopback"):
        socket.getaddrinfo("api.binance.com", 443)


def test_ccxt_cannot_reach_a_real_exchange() -> None:
    import ccxt

    client = ccxt.binance({"timeout": 2_000})
    with pytest.raises(ccxt.NetworkError):
        client.fetch_time()
