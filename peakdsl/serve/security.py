"""The dashboard's guard: read-only methods, a token when asked for, security headers.

``Guard`` is plain ASGI middleware in front of every route:

1. **Read-only.** Only ``GET`` and ``HEAD`` reach the app; any other method on any path is
   ``405`` with ``Allow: GET, HEAD`` — there is no route that changes state to reach.
2. **Loopback without a token.** With no token the app answers only requests addressed to
   a loopback name (``Host`` 127.0.0.1, ::1 or localhost), so a web page that rebinds its
   own domain to 127.0.0.1 (DNS rebinding) cannot read the dashboard through the browser.
3. **The token.** With a token every request needs ``Authorization: Bearer <token>``, or the
   session cookie that ``?token=<token>`` sets once (``HttpOnly``, ``SameSite=Strict``): that
   request is redirected to the same address without the token, so it leaves the address
   bar and the history. The cookie holds an HMAC of the token, never the token; every
   comparison is ``hmac.compare_digest``; no response ever contains the token.
4. **Headers.** A Content-Security-Policy without inline scripts or ``eval``
   (``frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff``,
   ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` and ``Cache-Control:
   no-store`` on every response; a response that brings its own policy (a served report,
   sandboxed) keeps it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ_METHODS = frozenset({"GET", "HEAD"})
COOKIE = "peak_serve"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
MIN_TOKEN = 16


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot guard a dashboard (None: it can)."""
    if len(token) < MIN_TOKEN:
        return f"it is shorter than {MIN_TOKEN} characters"
    if any(c.isspace() or not c.isprintable() for c in token) or not token.isascii():
        return "it holds blanks, control or non-ASCII characters"
    return None


def session_value(token: str) -> str:
    """The cookie's value: an HMAC of the token (the cookie never carries the token)."""
    return hmac.new(token.encode(), b"peak serve session v1", hashlib.sha256).hexdigest()


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def host_name(scope: Scope) -> str:
    """The ``Host`` header without its port (``[::1]:80`` → ``::1``)."""
    host = _header(scope, b"host")
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def with_headers(send: Send) -> Send:
    """``send`` adding the security headers to the response's start."""
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {bytes(k).lower() for k, _ in headers}
            headers += [(k, v) for k, v in HEADERS if k not in present]
            if b"content-security-policy" not in present:
                headers.append((b"content-security-policy", CSP.encode()))
            message["headers"] = headers
        await send(message)
    return wrapped


async def respond(scope: Scope, send: Send, status: int, body: bytes, content_type: str,
                  extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """A whole response (no body for HEAD, as HTTP wants)."""
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
        *extra]})
    await send({"type": "http.response.body",
                "body": b"" if scope.get("method") == "HEAD" else body})


def _refusal(scope: Scope, status: int, title: str, text: str
             ) -> tuple[bytes, str]:
    """A short refusal as JSON for ``/api`` paths, as a page for the others."""
    if str(scope.get("path", "")).startswith("/api"):
        return json.dumps({"error": {"status": status, "message": text}}).encode(), \
            "application/json"
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}"
            f"</title></head><body><h1>{title}</h1><p>{text}</p></body></html>")
    return page.encode(), "text/html; charset=utf-8"


class Guard:
    """The ASGI middleware of the module docstring."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token
        self.session = session_value(token) if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_headers(send)
        if scope["method"] not in READ_METHODS:
            body, kind = _refusal(scope, 405, "405 Method Not Allowed",
                                  "the dashboard is read-only: GET and HEAD only")
            await respond(scope, send, 405, body, kind, ((b"allow", b"GET, HEAD"),))
            return
        if self.token is None and not is_loopback(host_name(scope)):
            body, kind = _refusal(scope, 400, "400 Bad Request", "this dashboard answers "
                                  "requests to 127.0.0.1, ::1 or localhost only")
            await respond(scope, send, 400, body, kind)
            return
        if self.token is not None and not await self._authorized(scope, send):
            return
        await self.app(scope, receive, send)

    async def _authorized(self, scope: Scope, send: Send) -> bool:
        """True when the request may proceed; otherwise the answer (401, or the redirect
        that sets the cookie) has been sent."""
        assert self.token is not None and self.session is not None
        bearer = _header(scope, b"authorization")
        if bearer.startswith("Bearer ") and _same(bearer[7:], self.token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(_header(scope, b"cookie"))
        except Exception:  # a malformed Cookie header is no session
            cookie = SimpleCookie()
        if COOKIE in cookie and _same(cookie[COOKIE].value, self.session):
            return True
        query = parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1"),
                          keep_blank_values=True)
        given = [v for k, v in query if k == "token"]
        if given and _same(given[-1], self.token):
            await self._redirect(scope, send, [(k, v) for k, v in query if k != "token"])
            return False
        body, kind = _refusal(scope, 401, "401 Unauthorized", "this dashboard needs its "
                              "token: send Authorization: Bearer &lt;token&gt;, or open it "
                              "once with ?token=&lt;token&gt;")
        await respond(scope, send, 401, body, kind, ((b"www-authenticate", b"Bearer"),))
        return False

    async def _redirect(self, scope: Scope, send: Send, query: list[tuple[str, str]]) -> None:
        path = "/" + quote(str(scope.get("path", "/")), safe="/:@!$&'()*+,;=-._~").lstrip("/")
        target = path + ("?" + urlencode(query) if query else "")
        cookie = f"{COOKIE}={self.session}; Path=/; HttpOnly; SameSite=Strict"
        await respond(scope, send, 303, b"", "text/plain; charset=utf-8",
                      ((b"location", target.encode("latin-1")),
                       (b"set-cookie", cookie.encode())))


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


__all__ = ["COOKIE", "CSP", "MIN_TOKEN", "Guard", "is_loopback", "session_value",
           "token_problem"]
