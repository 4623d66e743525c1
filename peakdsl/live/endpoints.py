"""Which REST endpoint a session talks to, and whether its mode may talk to it.

A base URL is classified for one exchange from ccxt's own URL sets, read from a client that
is constructed but never connects: a host found only in ``urls["api"]`` is ``live``, only in
``urls["test"]`` (the sandbox) ``testnet``; ``127.0.0.1``, ``::1`` and ``localhost`` are
``loopback``; anything else — including a host ccxt lists in both sets (okx's sandbox is a
header on the live host, so the URL cannot tell) — is ``unknown``.

``resolve_endpoint`` gives the URL set the venue installs as the client's ``urls["api"]``:

=======  ======================  =================================================
mode     without an override     an override may be
=======  ======================  =================================================
paper    ccxt's live set         live, testnet or loopback (market data only)
testnet  ccxt's sandbox set      testnet or loopback
live     ccxt's live set         live or loopback
=======  ======================  =================================================

An override on a real host selects ccxt's own set of that host's class, unchanged; a loopback
override keeps every path of the mode's set and replaces scheme, host and port (the fake
exchange of the tests). Without an override, every URL of a testnet or live set must itself
classify as that mode. Refusals: E002 unknown exchange, E003 malformed or insecure URL, E004
unknown host, E005 a class the mode may not use, E006 no sandbox for testnet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

from .gate import Mode, Refused, refuse, valid_mode

EndpointClass = Literal["live", "testnet", "loopback", "unknown"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
ALLOWED: dict[Mode, frozenset[EndpointClass]] = {
    "paper": frozenset({"live", "testnet", "loopback"}),
    "testnet": frozenset({"testnet", "loopback"}),
    "live": frozenset({"live", "loopback"}),
}
URL_SET: dict[EndpointClass, str] = {"live": "api", "testnet": "test"}  # key in ccxt's urls
DEFAULT_CLASS: dict[Mode, EndpointClass] = {"paper": "live", "testnet": "testnet",
                                            "live": "live"}
WHERE = "--endpoint"


@dataclass(frozen=True)
class Endpoint:
    """The URL set a session uses, and what it is."""

    exchange: str
    mode: Mode
    kind: EndpointClass
    override: str | None  # the base URL given, None for ccxt's own set
    urls_json: str = field(repr=False)  # the set as canonical JSON; ``api_urls`` copies it

    def api_urls(self) -> dict[str, Any]:
        """A fresh copy of the set, to assign to the client's ``urls["api"]``."""
        urls: dict[str, Any] = json.loads(self.urls_json)
        return urls

    def hosts(self) -> frozenset[str]:
        return frozenset(_host(u) for u in _strings(self.api_urls()))


@lru_cache(maxsize=32)
def _urls(exchange_id: str) -> str:
    """ccxt's ``api`` and ``test`` sets of ``exchange_id`` with ``{hostname}`` filled in, as
    JSON (cached: they are class constants; a client is built but never connects)."""
    import ccxt  # type: ignore[import-untyped]

    if exchange_id not in ccxt.exchanges:
        raise refuse("E002", f"--exchange {exchange_id}: ccxt has no such exchange",
                     "--exchange", help="give a ccxt exchange id such as binance")
    client = getattr(ccxt, exchange_id)()
    sets = {key: client.urls.get(key) or {} for key in URL_SET.values()}
    text = json.dumps(sets, sort_keys=True)
    return text.replace("{hostname}", str(client.hostname or ""))


def url_sets(exchange_id: str) -> dict[str, Any]:
    """``{"api": …, "test": …}`` as ccxt defines them for ``exchange_id`` (E002 unknown)."""
    sets: dict[str, Any] = json.loads(_urls(exchange_id))
    return sets


def _strings(tree: Any) -> Iterator[str]:
    """Every URL string in one of ccxt's nested URL sets."""
    if isinstance(tree, str):
        yield tree
    elif isinstance(tree, dict | list):
        for value in tree.values() if isinstance(tree, dict) else tree:
            yield from _strings(value)


def _host(url: str) -> str:
    """The host of ``url``, lower case, without a trailing dot ("" when there is none)."""
    try:
        return (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:  # an unparsable URL has no host, so it classifies as unknown
        return ""


def classify(exchange_id: str, url: str) -> EndpointClass:
    """The class of ``url``'s host for ``exchange_id`` (module docstring)."""
    host = _host(url)
    if host in LOOPBACK_HOSTS:
        return "loopback"
    sets = url_sets(exchange_id)
    found = [kind for kind, key in URL_SET.items()
             if host and host in {_host(u) for u in _strings(sets[key])}]
    return found[0] if len(found) == 1 else "unknown"


def _parsed(url: str) -> SplitResult:
    """``url`` as a base URL (scheme, host, optional port and ``/``), else E003."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = urlsplit(""), False
    host = (parts.hostname or "").rstrip(".").lower()
    problem = next((why for bad, why in (
        (parts.scheme not in ("http", "https") or not host or not port_ok,
         "not an http(s) URL with a host"),
        (parts.username is not None or parts.password is not None,
         "it carries a user name or password"),
        (parts.path not in ("", "/") or parts.query or parts.fragment,
         "give the base URL only (scheme://host[:port]), without a path or query"),
        (parts.scheme == "http" and host not in LOOPBACK_HOSTS,
         "plain http is allowed for loopback only"),
    ) if bad), None)
    if problem:
        raise refuse("E003", f"{WHERE} {url}: {problem}", WHERE,
                     help="for example https://testnet.binance.vision, or "
                     "http://127.0.0.1:PORT for a local fake exchange")
    return parts


def resolve_endpoint(exchange_id: str, mode: Mode,
                     override_url: str | None = None) -> Endpoint:
    """The URL set ``mode`` uses on ``exchange_id`` (module docstring), or a refusal."""
    mode = valid_mode(mode)
    sets = url_sets(exchange_id)
    if mode == "testnet" and not list(_strings(sets["test"])):
        raise refuse("E006", f"{exchange_id} has no testnet (sandbox) in ccxt", "--mode",
                     help="use paper mode, or an exchange with a sandbox such as binance")
    if override_url is None:
        return _default(exchange_id, mode, sets)
    override_url = override_url.strip()
    parts = _parsed(override_url)
    kind = classify(exchange_id, override_url)
    _allowed(exchange_id, mode, kind, override_url)
    chosen = sets[URL_SET[DEFAULT_CLASS[mode]] if kind == "loopback" else URL_SET[kind]]
    if kind == "loopback":
        chosen = _rebased(chosen, parts)
    return Endpoint(exchange_id, mode, kind, override_url, json.dumps(chosen, sort_keys=True))


def _default(exchange_id: str, mode: Mode, sets: dict[str, Any]) -> Endpoint:
    """ccxt's own set for ``mode``; for testnet and live every URL in it must classify as the
    mode (a host the sandbox shares with live is refused)."""
    kind = DEFAULT_CLASS[mode]
    chosen = sets[URL_SET[kind]]
    if mode != "paper":  # paper sends no credentials: ccxt's public URLs serve
        for url in _strings(chosen):
            _allowed(exchange_id, mode, classify(exchange_id, url), url)
    return Endpoint(exchange_id, mode, kind, None, json.dumps(chosen, sort_keys=True))


def _allowed(exchange_id: str, mode: Mode, kind: EndpointClass, url: str) -> None:
    if kind == "unknown":
        raise _unknown(exchange_id, mode, url)
    if kind not in ALLOWED[mode]:
        raise refuse("E005", f"{mode} mode may not use {url}: it is {exchange_id}'s {kind} "
                     "endpoint", WHERE,
                     help=f"{mode} mode trades on {mode} endpoints only: leave out "
                     f"{WHERE} to use {exchange_id}'s own {DEFAULT_CLASS[mode]} URLs")


def _unknown(exchange_id: str, mode: Mode, url: str) -> Refused:
    """E004, saying whether the host is foreign or one ccxt gives for both modes."""
    sets = url_sets(exchange_id)
    if all(_host(url) in {_host(u) for u in _strings(sets[k])} for k in URL_SET.values()):
        return refuse("E004", f"{url}: {exchange_id} serves testnet and live on this host, "
                      "so the URL cannot tell which one a session would trade on", WHERE,
                      help=f"peak trades on {exchange_id} in paper mode only; use another "
                      "exchange for testnet and live")
    return refuse("E004", f"{url} is not one of {exchange_id}'s endpoints in ccxt", WHERE,
                  help=f"leave out {WHERE} to use ccxt's own URLs, or give one of "
                  f"{exchange_id}'s {DEFAULT_CLASS[mode]} URLs or a loopback URL")


def _rebased(tree: Any, base: SplitResult) -> Any:
    """``tree`` with every URL's scheme, host and port replaced by ``base``'s."""
    if isinstance(tree, str):
        parts = urlsplit(tree)
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
    if isinstance(tree, dict):
        return {k: _rebased(v, base) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_rebased(v, base) for v in tree]
    return tree


__all__ = ["ALLOWED", "LOOPBACK_HOSTS", "Endpoint", "EndpointClass", "classify",
           "resolve_endpoint", "url_sets"]
