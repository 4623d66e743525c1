"""Prometheus metrics of a live deployment (``peakdsl.live.metrics``, issue 12 item 5; named
not to collide with tests/test_metrics.py, the metric catalogue's tests).

Every value is read the way Prometheus reads it: an HTTP scrape of the endpoint over
127.0.0.1 (urllib, 5 s timeout) parsed by prometheus_client's text parser. The deployment
tests run a testnet replay of ma_crossover against the loopback exchange (as
tests/live/test_runner.py does): 73 ticks, 3 fills, a few seconds.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_setup import MA, TESTNET_ENV, live_request, promoted_project, runner_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner, Result

from peakdsl.cli import app
from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.metrics import LiveMetrics, RemoteBindRefused, metric_names, serve
from peakdsl.live.runner import TickState, run_deployment
from peakdsl.live.store import LiveStore

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docs" / "grafana" / "peak-live.json"
DEPLOYMENT = {"spec": "ma_crossover", "mode": "testnet", "account": "default"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of the endpoint: (name, sorted labels) → value."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode("utf-8")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, labels: dict[str, str] | None = None, **extra: str
          ) -> float:
    return samples[(name, tuple(sorted({**(labels or DEPLOYMENT), **extra}.items())))]


def state(time: float = 1_000.0, equity: float = 10_000.0, **changes: object) -> TickState:
    fields: dict[str, object] = {"time": time, "wall": time + 5.0, "equity": equity,
                                 "exposure": 0.0, "open_positions": 0, "orders": {},
                                 "risk": {}, "exchange_errors": 0, "kill_engaged": False,
                                 **changes}
    return TickState(**fields)  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(1_100.0)


@pytest.fixture
def metrics(clock: Clock) -> LiveMetrics:
    return LiveMetrics("ma_crossover", "testnet", "default", clock=clock)


@pytest.fixture
def url(metrics: LiveMetrics) -> Iterator[str]:
    with metrics.serve(0) as server:
        yield server.url


# ------------------------------------------------------------------ values and labels


def test_a_scrape_shows_the_last_tick_with_the_deployment_labels(
        metrics: LiveMetrics, url: str) -> None:
    metrics.observe(state(1_000.0, 10_000.0))
    metrics.observe(state(1_060.0, 10_250.5, exposure=6_501.5, open_positions=1,
                          orders={"filled": 3, "open": 1}, exchange_errors=2,
                          kill_engaged=True))
    got = scrape(url)
    assert value(got, "peak_live_equity") == 10_250.5
    assert value(got, "peak_live_exposure") == 6_501.5
    assert value(got, "peak_live_open_positions") == 1.0
    assert value(got, "peak_live_exchange_errors") == 2.0
    assert value(got, "peak_live_kill_switch_engaged") == 1.0
    assert value(got, "peak_live_last_bar_timestamp_seconds") == 1_060.0
    assert value(got, "peak_live_last_bar_age_seconds") == 40.0  # clock 1,100 − bar 1,060
    assert value(got, "peak_live_ticks_total") == 2.0
    orders = {dict(k[1])["status"]: v for k, v in got.items() if k[0] == "peak_live_orders"}
    assert orders == {"new": 0, "submitting": 0, "unknown": 0, "open": 1,
                      "partially_filled": 0, "cancelling": 0, "filled": 3, "cancelled": 0,
                      "rejected": 0, "expired": 0}


def test_every_series_carries_the_deployment_labels(metrics: LiveMetrics, url: str) -> None:
    metrics.observe(state())
    names = {name for name, _ in scrape(url)}
    assert {n for n in names if not n.endswith("_created")} == metric_names()
    for name, labels in scrape(url):
        assert dict(labels).items() >= DEPLOYMENT.items(), name


def test_an_order_status_that_empties_goes_back_to_zero(metrics: LiveMetrics,
                                                        url: str) -> None:
    metrics.observe(state(orders={"open": 2}))
    metrics.observe(state(1_060.0, orders={"filled": 2}))
    got = scrape(url)
    assert value(got, "peak_live_orders", status="open") == 0.0
    assert value(got, "peak_live_orders", status="filled") == 2.0


def test_the_bar_age_grows_between_ticks_as_a_stale_feed_does(
        metrics: LiveMetrics, url: str, clock: Clock) -> None:
    """No tick arrives while the feed is stale: the age must still grow at each scrape."""
    metrics.observe(state(1_000.0))
    assert value(scrape(url), "peak_live_last_bar_age_seconds") == 100.0
    clock.now = 1_700.0
    assert value(scrape(url), "peak_live_last_bar_age_seconds") == 700.0


# ------------------------------------------------------------------ risk counters


def test_before_the_first_tick_only_the_counters_show_at_zero(url: str) -> None:
    """No gauge before a tick (a 0 equity would read as a wiped account); the counters are
    there at 0, so that ``rate()`` sees their first event."""
    got = scrape(url)
    assert {name for name, _ in got if not name.endswith("_created")} == {
        "peak_live_ticks_total", "peak_live_risk_denied_total", "peak_live_risk_reduced_total"}
    assert {v for (name, _), v in got.items() if not name.endswith("_created")} == {0.0}


def test_risk_totals_become_counters_that_rise_by_the_difference(
        metrics: LiveMetrics, url: str) -> None:
    before = scrape(url)
    for reason in ("order_notional", "symbol_exposure", "total_exposure", "open_positions",
                   "daily_loss", "order_rate"):  # every reason exists from the start, at 0
        assert value(before, "peak_live_risk_denied_total", reason=reason) == 0.0
        assert value(before, "peak_live_risk_reduced_total", reason=reason) == 0.0
    metrics.observe(state(risk={"denied_order_notional": 2}))
    metrics.observe(state(1_060.0, risk={"denied_order_notional": 5,
                                         "reduced_total_exposure": 1}))
    metrics.observe(state(1_120.0, risk={"denied_order_notional": 5,
                                         "reduced_total_exposure": 1}))
    got = scrape(url)
    assert value(got, "peak_live_risk_denied_total", reason="order_notional") == 5.0
    assert value(got, "peak_live_risk_reduced_total", reason="total_exposure") == 1.0
    assert value(got, "peak_live_risk_denied_total", reason="daily_loss") == 0.0


def test_a_total_that_falls_is_a_new_book_and_its_total_is_added(
        metrics: LiveMetrics, url: str) -> None:
    """A new session starts its book at zero: a counter never falls, it adds the new
    events (the 2 of the new book, then its next 1)."""
    metrics.observe(state(risk={"denied_order_rate": 7}))
    metrics.observe(state(1_060.0, risk={}))
    metrics.observe(state(1_120.0, risk={"denied_order_rate": 2}))
    metrics.observe(state(1_180.0, risk={"denied_order_rate": 3}))
    assert value(scrape(url), "peak_live_risk_denied_total", reason="order_rate") == 10.0


# ------------------------------------------------------------------ isolation and serving


def test_two_deployments_in_one_process_do_not_collide(clock: Clock) -> None:
    first = LiveMetrics("ma_crossover", "testnet", "default", clock=clock)
    second = LiveMetrics("ma_crossover", "live", "main", clock=clock)
    first.observe(state(equity=1_000.0))
    second.observe(state(equity=2_000.0, kill_engaged=True))
    with first.serve(0) as a, second.serve(0) as b:
        assert a.port != b.port
        got_a, got_b = scrape(a.url), scrape(b.url)
    assert value(got_a, "peak_live_equity") == 1_000.0
    assert value(got_a, "peak_live_kill_switch_engaged") == 0.0
    live = {"spec": "ma_crossover", "mode": "live", "account": "main"}
    assert value(got_b, "peak_live_equity", live) == 2_000.0
    assert value(got_b, "peak_live_kill_switch_engaged", live) == 1.0
    assert not any(dict(k[1]).get("mode") == "live" for k in got_a)
    assert not any(f.name.startswith("peak_live_") for f in REGISTRY.collect())


def test_serving_refuses_a_non_loopback_host_unless_allowed(metrics: LiveMetrics) -> None:
    for host in ("0.0.0.0", "192.0.2.1", "example.com"):
        with pytest.raises(RemoteBindRefused, match="not on loopback"):
            metrics.serve(0, host)
    with pytest.raises(ValueError, match="out of range"):
        serve(metrics.registry, 70_000)


def test_closing_the_endpoint_stops_it_and_frees_the_port(metrics: LiveMetrics) -> None:
    server = metrics.serve(0)
    assert server.url.startswith("http://127.0.0.1:")
    scrape(server.url)
    server.close()
    assert not server.thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        scrape(server.url)
    with socket.socket() as free:  # nothing listens on it any more (as a server binds it)
        free.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        free.bind(("127.0.0.1", server.port))
        free.listen()


# ------------------------------------------------------------------ a real deployment


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return promoted_project(tmp_path_factory, tmp_path)


def test_a_deployment_serves_its_metrics_and_a_failing_observer_stops_nothing(
        root: Path, exchange: LoopbackExchange) -> None:
    """A testnet replay on the loopback exchange with three observers: one that always
    fails, the metrics, and one scraping the endpoint mid-run. The run completes as without
    observers (73 ticks, 3 fills), the failures are logged, the mid-run scrape shows that
    tick's state and the final scrape the summary's."""
    metrics = LiveMetrics("ma_crossover", "testnet", "default")
    seen: list[tuple[TickState, Samples]] = []

    def broken(state: TickState) -> None:
        raise RuntimeError("monitoring is down")

    with metrics.serve(0) as server:
        def scraper(state: TickState) -> None:
            if len(seen) < 1 and state.open_positions:
                seen.append((state, scrape(server.url)))

        summary = run_deployment(live_request(root), runner_settings(
            exchange.url, observers=(broken, metrics.observe, scraper)), env=TESTNET_ENV)
        final = scrape(server.url)
    assert summary.ticks == 73 and len(summary.fills) == 3
    during, got = seen[0]
    assert value(got, "peak_live_equity") == during.equity
    assert value(got, "peak_live_open_positions") == 1.0
    assert value(got, "peak_live_exposure") == during.exposure > 0
    assert value(final, "peak_live_equity") == summary.equity
    assert value(final, "peak_live_open_positions") == len(summary.open_positions) == 1
    assert value(final, "peak_live_ticks_total") == 73.0
    assert value(final, "peak_live_orders", status="filled") == 3.0
    assert value(final, "peak_live_kill_switch_engaged") == 0.0
    assert value(final, "peak_live_exchange_errors") == 0.0
    with LiveStore.open(root / ".peak/live/testnet/default/ma_crossover.sqlite") as store:
        failed = [e for e in store.log_since(0) if e.event == "observer"]
    assert len(failed) == 73
    assert {(e.level, e.message) for e in failed} == {
        ("error", "an observer failed: RuntimeError")}


def test_a_requested_kill_shows_in_the_metrics(root: Path,
                                               exchange: LoopbackExchange) -> None:
    """`peak live kill` while the deployment runs (asked from an observer at the 10th tick):
    the runner stops at the next tick, and monitoring's last look shows the switch engaged."""
    from deploy_setup import deployment

    from peakdsl.live.runner import request_kill

    metrics = LiveMetrics("ma_crossover", "testnet", "default")
    ticks: list[TickState] = []

    def ask(state: TickState) -> None:
        ticks.append(state)
        if len(ticks) == 10:
            request_kill(deployment(root), "drill", "ops", flatten=False)

    with metrics.serve(0) as server:
        summary = run_deployment(live_request(root), runner_settings(
            exchange.url, observers=(ask, metrics.observe)), env=TESTNET_ENV)
        final = scrape(server.url)
    assert summary.ticks == 10 and ticks[-1].kill_engaged and not ticks[-2].kill_engaged
    assert value(final, "peak_live_kill_switch_engaged") == 1.0


# ------------------------------------------------------------------ the command line


def peak(*argv: str) -> Result:
    return CliRunner().invoke(app, ["live", "run", str(REPO / MA), *argv])


@pytest.mark.parametrize("port", ["80", "1023", "65536"])
def test_cli_metrics_port_out_of_range_is_u005(port: str) -> None:
    result = peak("--mode", "testnet", "--metrics-port", port, "--json")
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert [(d["code"], d["message"]) for d in out["diagnostics"]] == [
        ("U005", f"--metrics-port {port} is out of range")]


def test_cli_metrics_port_on_a_paper_replay_is_u005() -> None:
    result = peak("--replay", "--metrics-port", "9500")
    assert result.exit_code == 2
    assert "U005" in result.output and "not a deployment" in result.output


def test_cli_metrics_port_taken_is_u005_before_anything_runs(
        exchange: LoopbackExchange) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = peak("--mode", "testnet", "--endpoint", exchange.url, "--metrics-port",
                      str(port))
    assert result.exit_code == 2, result.output
    assert "U005" in result.output
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.output
    assert sum(exchange.calls.values()) == 0


# ------------------------------------------------------------------ the Grafana dashboard


def test_the_grafana_dashboard_uses_only_exported_metrics() -> None:
    board = json.loads(DASHBOARD.read_text("utf-8"))
    assert isinstance(board["schemaVersion"], int) and board["title"]
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 7
    used = {name for e in exprs for name in re.findall(r"\bpeak_live_\w+", e)}
    assert used <= metric_names(), used - metric_names()
    for wanted in ("equity", "exposure", "orders", "risk_denied_total", "exchange_errors",
                   "last_bar_age_seconds", "kill_switch_engaged"):
        assert f"peak_live_{wanted}" in used
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
