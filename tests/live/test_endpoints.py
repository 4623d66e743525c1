"""Endpoints: classified from ccxt's own URL sets (no network), refused when the mode and the
class disagree."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from peakdsl.live.endpoints import classify, resolve_endpoint, url_sets
from peakdsl.live.gate import Refused


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Constructing ccxt clients is allowed; any connection is a failure."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def codes(exc: pytest.ExceptionInfo[Refused]) -> list[str]:
    return exc.value.codes


@pytest.mark.parametrize(("exchange", "url", "kind"), [
    ("binance", "https://api.binance.com", "live"),
    ("binance", "https://API.Binance.com./", "live"),
    ("binance", "https://fapi.binance.com", "live"),
    ("binance", "https://testnet.binance.vision", "testnet"),
    ("binance", "https://testnet.binancefuture.com", "testnet"),
    ("binance", "https://demo-api.binance.com", "unknown"),  # ccxt's "demo" set: neither
    ("binance", "https://api.binance.com.evil.example", "unknown"),
    ("binance", "https://api.example.com", "unknown"),
    ("binance", "http://127.0.0.1:8765", "loopback"),
    ("binance", "http://[::1]:8765", "loopback"),
    ("binance", "http://localhost:8765", "loopback"),
    ("binance", "http://127.0.0.2:8765", "unknown"),
    ("binance", "http://0.0.0.0:8765", "unknown"),
    ("bybit", "https://api.bybit.com", "live"),  # ccxt writes https://api.{hostname}
    ("bybit", "https://api-testnet.bybit.com", "testnet"),
    ("bybit", "https://testnet.binance.vision", "unknown"),  # another exchange's testnet
    ("okx", "https://www.okx.com", "unknown"),  # testnet and live share this host
    ("binance", "http://[::1", "unknown"),  # unparsable: no host
    ("binance", "api.binance.com", "unknown"),  # no scheme: no host
])
def test_classify(exchange: str, url: str, kind: str) -> None:
    assert classify(exchange, url) == kind


def test_url_sets_are_ccxts_own() -> None:
    sets = url_sets("binance")
    assert sets["api"]["public"] == "https://api.binance.com/api/v3"
    assert sets["test"]["public"] == "https://testnet.binance.vision/api/v3"
    sets["api"]["public"] = "https://changed.example"  # a copy: the cache is unharmed
    assert url_sets("binance")["api"]["public"] == "https://api.binance.com/api/v3"


@pytest.mark.parametrize(("mode", "public"), [
    ("paper", "https://api.binance.com/api/v3"),
    ("testnet", "https://testnet.binance.vision/api/v3"),
    ("live", "https://api.binance.com/api/v3"),
])
def test_defaults(mode: str, public: str) -> None:
    endpoint = resolve_endpoint("binance", mode)  # type: ignore[arg-type]
    assert endpoint.override is None and endpoint.api_urls()["public"] == public
    expected = {"paper": "live", "testnet": "testnet", "live": "live"}[mode]
    assert endpoint.kind == expected
    assert {classify("binance", f"https://{h}") for h in endpoint.hosts()} == {expected}


@pytest.mark.parametrize(("mode", "url", "code"), [
    ("testnet", "https://api.binance.com", "E005"),  # testnet keys against a live URL
    ("testnet", "https://fapi.binance.com", "E005"),
    ("live", "https://testnet.binance.vision", "E005"),  # live keys against a testnet URL
    ("live", "https://testnet.binancefuture.com", "E005"),
    ("live", "https://api.example.com", "E004"),
    ("testnet", "https://demo-api.binance.com", "E004"),
    ("paper", "https://api.example.com", "E004"),  # unknown is refused in every mode
    ("live", "http://api.binance.com", "E003"),  # plain http: loopback only
    ("live", "https://user:pw@api.binance.com", "E003"),
    ("live", "https://api.binance.com/api/v3", "E003"),
    ("live", "https://api.binance.com?x=1", "E003"),
    ("live", "ftp://127.0.0.1", "E003"),
    ("live", "http://127.0.0.1:99999", "E003"),
    ("live", "not a url", "E003"),
    ("live", "", "E003"),
    ("live", "http://[::1", "E003"),
])
def test_refusals(mode: str, url: str, code: str) -> None:
    with pytest.raises(Refused) as refused:
        resolve_endpoint("binance", mode, url)  # type: ignore[arg-type]
    assert codes(refused) == [code] and refused.value.exit_code == 1
    assert refused.value.diagnostics[0].help


@pytest.mark.parametrize(("mode", "url", "kind"), [
    ("paper", "https://testnet.binance.vision", "testnet"),
    ("paper", "https://api.binance.com", "live"),
    ("testnet", "https://testnet.binance.vision/", "testnet"),
    ("testnet", " https://testnet.binance.vision\n", "testnet"),
    ("live", "https://api.binance.com", "live"),
])
def test_a_real_host_selects_ccxts_own_set(mode: str, url: str, kind: str) -> None:
    endpoint = resolve_endpoint("binance", mode, url)  # type: ignore[arg-type]
    key = "test" if kind == "testnet" else "api"
    assert endpoint.kind == kind and endpoint.api_urls() == url_sets("binance")[key]


@pytest.mark.parametrize(("mode", "base", "public", "first"), [
    ("live", "http://127.0.0.1:8765", "http://127.0.0.1:8765/api/v3", "sapi"),
    ("testnet", "http://[::1]:9000", "http://[::1]:9000/api/v3", "fapiPublic"),
    ("paper", "http://localhost:1", "http://localhost:1/api/v3", "v1"),
])
def test_loopback_keeps_paths_and_replaces_the_host(mode: str, base: str, public: str,
                                                    first: str) -> None:
    endpoint = resolve_endpoint("binance", mode, base)  # type: ignore[arg-type]
    urls = endpoint.api_urls()
    assert endpoint.kind == "loopback" and urls["public"] == public
    assert urls[first].startswith(base + "/")
    assert {h.strip("[]") for h in endpoint.hosts()} <= {"127.0.0.1", "::1", "localhost"}
    urls["public"] = "https://api.binance.com"  # a copy: the endpoint is unharmed
    assert endpoint.api_urls()["public"] == public


def test_an_exchange_without_a_sandbox_refuses_testnet() -> None:
    with pytest.raises(Refused) as none:
        resolve_endpoint("kraken", "testnet")
    assert codes(none) == ["E006"]
    with pytest.raises(Refused) as loop:
        resolve_endpoint("kraken", "testnet", "http://127.0.0.1:8765")
    assert codes(loop) == ["E006"]
    assert resolve_endpoint("kraken", "live").kind == "live"


@pytest.mark.parametrize("mode", ["testnet", "live"])
def test_a_host_shared_by_testnet_and_live_is_refused(mode: str) -> None:
    with pytest.raises(Refused) as shared:
        resolve_endpoint("okx", mode)  # type: ignore[arg-type]
    assert codes(shared) == ["E004"] and "cannot tell" in str(shared.value)
    assert resolve_endpoint("okx", "paper").kind == "live"  # public market data only


@pytest.mark.parametrize("exchange", ["nope", "Exchange", "__class__", "BINANCE", ""])
def test_unknown_exchange_is_e002(exchange: str) -> None:
    with pytest.raises(Refused) as unknown:
        resolve_endpoint(exchange, "paper")
    assert codes(unknown) == ["E002"]


def test_a_bad_mode_is_e001() -> None:
    with pytest.raises(Refused) as bad:
        resolve_endpoint("binance", "prod")  # type: ignore[arg-type]
    assert codes(bad) == ["E001"] and bad.value.exit_code == 2
