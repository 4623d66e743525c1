"""`peak live health`: every check against the loopback exchange, each failure with its code
and fix, credentials named but never shown."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from loopback_setup import API_KEY, SECRET, START_MS, new_exchange

from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.ops import CHECKS, Health, HealthContext, health
from peakdsl.live.runner import Deployment
from peakdsl.live.store import LiveStore

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/ma_crossover.peak"
H_MS = 3_600_000
NOW = START_MS / 1000 + 0.25  # the exchange clock's, as a synchronised machine has it


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    return tmp_path


@pytest.fixture
def exchange() -> LoopbackExchange:
    with new_exchange() as ex:
        ex.set_candles("BTC/USDT", "1h", [[START_MS + k * H_MS, 100, 101, 99, 100, 5]
                                         for k in range(-5, 1)])
        yield ex


def run(project: Path, exchange_url: str | None, mode: str = "paper",
        env: dict[str, str] | None = None, now: float = NOW) -> Health:
    ctx = HealthContext(str(project / SPEC), mode, "default", "binance", exchange_url,
                        env or {}, clock=lambda: now)
    return health(ctx)


def statuses(report: Health) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_a_healthy_paper_deployment(project: Path, exchange: LoopbackExchange) -> None:
    report = run(project, exchange.url)
    assert [c.name for c in report.checks] == [name for name, _ in CHECKS]
    assert set(statuses(report).values()) == {"ok"} and report.ok
    detail = {c.name: c.detail for c in report.checks}
    assert detail["credentials"] == "paper needs none (not read)"
    assert "last closed bar 0 s ago" in detail["data freshness"]
    assert detail["kill switch"] == "no deployment state yet"


def test_credentials_are_named_never_shown(project: Path, exchange: LoopbackExchange) -> None:
    missing = run(project, exchange.url, "testnet")
    check = next(c for c in missing.checks if c.name == "credentials")
    assert (check.status, check.code) == ("fail", "E008") and not missing.ok
    env = {"PEAK_TESTNET_API_KEY": API_KEY, "PEAK_TESTNET_API_SECRET": SECRET}
    present = run(project, exchange.url, "testnet", env)
    assert statuses(present)["credentials"] == "ok"
    text = present.model_dump_json()
    assert "PEAK_TESTNET_API_KEY" in text and API_KEY not in text and SECRET not in text


def test_an_unreachable_exchange_fails_with_a_code(project: Path) -> None:
    report = run(project, "http://127.0.0.1:9")  # nothing listens on the discard port
    exchange = next(c for c in report.checks if c.name == "exchange")
    assert (exchange.status, exchange.code) == ("fail", "E032") and exchange.fix
    assert statuses(report)["clock skew"] == "warn"
    assert statuses(report)["data freshness"] == "warn"


@pytest.mark.parametrize(("offset", "status"), [(0.5, "ok"), (3.0, "warn"), (-9.0, "fail")])
def test_clock_skew(project: Path, exchange: LoopbackExchange, offset: float,
                    status: str) -> None:
    report = run(project, exchange.url, now=START_MS / 1000 + offset)
    assert statuses(report)["clock skew"] == status


def test_a_stale_feed_fails(project: Path, exchange: LoopbackExchange) -> None:
    report = run(project, exchange.url, now=NOW + 3 * 3600)  # newest closed bar 3 h old
    fresh = next(c for c in report.checks if c.name == "data freshness")
    assert fresh.status == "fail" and fresh.fix
    assert statuses(report)["clock skew"] == "fail"  # the exchange's clock says otherwise


def test_an_engaged_kill_switch_fails(project: Path, exchange: LoopbackExchange) -> None:
    path = Deployment(project, "paper", "default", "ma_crossover").store_path
    with LiveStore.open(path) as store:
        store.engage_kill("drill", "ops", at=1)
    report = run(project, exchange.url)
    kill = next(c for c in report.checks if c.name == "kill switch")
    assert (kill.status, kill.code) == ("fail", "E041") and "drill" in kill.detail
    assert not report.ok


def test_a_spec_that_does_not_compile_fails_config_only(project: Path,
                                                        exchange: LoopbackExchange) -> None:
    spec = project / SPEC
    spec.write_text(spec.read_text().replace("sma(close, fast)", "sma(clsoe, fast)"))
    report = run(project, exchange.url)
    config = report.checks[0]
    assert (config.status, config.code) == ("fail", "N001")
    assert statuses(report)["exchange"] == "ok"  # the others still ran


def test_a_missing_spec_fails_config_with_its_code_and_reads_nothing_after(
        project: Path) -> None:
    ctx = HealthContext(str(project / "nope.peak"), "paper", "default", "binance",
                        "http://127.0.0.1:9", {}, clock=lambda: NOW)
    rows = {c.name: c for c in health(ctx).checks}
    config = rows["config"]
    assert (config.status, config.code, config.fix) == (
        "fail", "U001", "give a .peak file or a folder of them")
    assert config.detail == f"no such file or folder: {project / 'nope.peak'}"
    for name in ("risk limits", "alert sinks", "kill switch"):
        assert (rows[name].status, rows[name].detail) == ("warn", "not read: no spec"), name


def test_an_exchange_without_candles_fails_freshness_with_a_code(project: Path) -> None:
    with new_exchange() as empty:  # BTC/USDT listed, no candle published
        report = run(project, empty.url)
    fresh = next(c for c in report.checks if c.name == "data freshness")
    assert (fresh.status, fresh.code) == ("fail", "A007")
    assert fresh.detail == "the exchange returned no closed candle for BTC/USDT 1h"
    assert fresh.fix is not None and "runbook A007" in fresh.fix


def test_freshness_covers_the_other_markets_a_strategy_reads(
        project: Path, exchange: LoopbackExchange) -> None:
    """A strategy reading ETH/USDT (``@``) needs that feed fresh too: here the exchange has
    BTC's candles and none of ETH's."""
    pair = project / "specs/strategies/pair.peak"
    pair.write_text("strategy pair {\n    market BTC/USDT\n    timeframe 1h\n"
                    "    let spread = close - close@ETH/USDT\n"
                    "    entry long when spread > spread[1]\n"
                    "    exit long when spread < spread[1]\n}\n")
    ctx = HealthContext(str(pair), "paper", "default", "binance", exchange.url, {},
                        clock=lambda: NOW)
    fresh = next(c for c in health(ctx).checks if c.name == "data freshness")
    assert (fresh.status, fresh.code) == ("fail", "A007")
    assert fresh.detail == "the exchange returned no closed candle for ETH/USDT 1h"
    exchange.set_candles("ETH/USDT", "1h", [[START_MS + k * H_MS, 10, 11, 9, 10, 5]
                                            for k in range(-5, -3)])
    fresh = next(c for c in health(ctx).checks if c.name == "data freshness")
    assert (fresh.status, fresh.code) == ("fail", "A007")  # three bars old: stale
    assert fresh.detail.startswith("the stalest feed, ETH/USDT 1h: last closed bar")


def test_the_commands_read_a_deployment(project: Path, exchange: LoopbackExchange,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`peak live health | orders | portfolio` on a paper deployment polled from the loopback
    exchange: exit codes for cron, JSON documents, the book's snapshot and the store's fills."""
    import json

    from typer.testing import CliRunner

    from peakdsl.cli import app
    from peakdsl.live.run import LiveRequest
    from peakdsl.live.runner import RunnerSettings, run_deployment

    exchange.set_candles("BTC/USDT", "1h", [[START_MS + k * H_MS, 100 + k, 101 + k, 99 + k,
                                             100 + k, 5] for k in range(-1_100, 30)])
    clock = [START_MS / 1000 + 1.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    run_deployment(LiveRequest(str(project / SPEC), "paper", replay=False, min_history=60),
                   RunnerSettings(endpoint=exchange.url, max_ticks=20, kill_poll_s=3600),
                   clock=lambda: clock[0], sleep=sleep)
    monkeypatch.chdir(project)
    cli = CliRunner()
    ok = cli.invoke(app, ["live", "health", SPEC, "--endpoint", exchange.url, "--json"])
    doc = json.loads(ok.stdout)
    assert [c["name"] for c in doc["checks"]][:3] == ["config", "credentials", "exchange"]
    assert "Traceback" not in ok.output
    assert ok.exit_code == (0 if doc["ok"] else 1)
    down = cli.invoke(app, ["live", "health", SPEC, "--endpoint", "http://127.0.0.1:9"])
    assert down.exit_code == 1 and "[E032]" in down.stdout
    orders = json.loads(cli.invoke(app, ["live", "orders", SPEC, "--mode", "paper", "--all",
                                         "--json"]).stdout)["orders"]
    folio = cli.invoke(app, ["live", "portfolio", SPEC, "--mode", "paper", "--json"])
    assert folio.exit_code == 0, folio.output
    book = json.loads(folio.stdout)["book"]
    assert book is not None and book["slots"][0]["slot"] == "ma_crossover"
    held = sum(o["filled"] if o["side"] == "buy" else -o["filled"] for o in orders)
    assert book["slots"][0]["qty"] == pytest.approx(held, abs=1e-12)
    missing = cli.invoke(app, ["live", "orders", SPEC, "--mode", "testnet"])
    assert missing.exit_code == 1 and "[E023]" in missing.output


def test_a_kill_of_a_stopped_deployment_cancels_its_open_orders(
        project: Path, exchange: LoopbackExchange, monkeypatch: pytest.MonkeyPatch) -> None:
    """No runner holds the store: `peak live kill` engages the switch there and cancels, on
    the exchange, the orders the store has open (credentials from the environment)."""
    from typer.testing import CliRunner

    from peakdsl.cli import app
    from peakdsl.live.store_rows import OrderRequest

    resting = exchange.place("BTC/USDT", "BUY", "LIMIT", "0.01", "40000", "pk-resting-1")
    path = Deployment(project, "testnet", "default", "ma_crossover").store_path
    with LiveStore.open(path) as store:
        store.add_order(OrderRequest("pk-resting-1", None, "BTC/USDT", "buy", "limit", 0.01,
                                     40000.0, 1), at=1, status="open",
                        exchange_order_id=str(resting.order_id))
    monkeypatch.chdir(project)
    env = {"PEAK_TESTNET_API_KEY": API_KEY, "PEAK_TESTNET_API_SECRET": SECRET}
    out = CliRunner().invoke(app, ["live", "kill", SPEC, "--mode", "testnet", "--endpoint",
                                   exchange.url, "--reason", "drill"], env=env)
    assert out.exit_code == 0, out.output
    assert "1 open order(s) cancelled" in out.stdout
    (order,) = exchange.orders()
    assert order.status == "CANCELED"
    with LiveStore.open(path, readonly=True) as store:
        assert store.kill_state().engaged and store.order("pk-resting-1").status == "cancelled"
    blank = {"PEAK_TESTNET_API_KEY": "", "PEAK_TESTNET_API_SECRET": ""}
    no_keys = CliRunner().invoke(app, ["live", "kill", SPEC, "--mode", "testnet",
                                       "--endpoint", exchange.url], env=blank)
    assert no_keys.exit_code == 0  # nothing is open any more: no exchange call is needed


def test_risk_limit_usage_on_literal_numbers() -> None:
    """Equity 10,000 (the day began at 10,500); BTC 0.1 @ 20,000 and ETH 1 @ 1,000 held; one
    order in the last minute, one 70 s ago."""
    import math

    import numpy as np

    from peakdsl.engine.risk import RiskLimits
    from peakdsl.engine.state import (
        DAY_EQUITY,
        LAST_EQUITY,
        MARK,
        QTY,
        SIDE,
        new_account,
        new_positions,
    )
    from peakdsl.live.ops import limit_usage

    account = new_account(10_000.0)
    account[LAST_EQUITY], account[DAY_EQUITY] = 10_000.0, 10_500.0
    positions = new_positions([0, 1, 1])
    positions[0, [SIDE, QTY, MARK]] = 1.0, 0.1, 20_000.0
    positions[1, [SIDE, QTY, MARK]] = 1.0, 1.0, 1_000.0
    ring = np.array([1_000.0 - 10, 1_000.0 - 70, -math.inf, -math.inf])
    limits = RiskLimits(max_order_notional=1_000.0, max_symbol_exposure=0.5,
                        max_total_exposure=0.8, max_open_positions=3, max_daily_loss=0.1,
                        max_orders_per_minute=4)
    rows = {r["limit"]: r for r in limit_usage({"account": account, "positions": positions,
                                                "ring": ring}, limits, 1_000.0)}
    assert rows["max_order_notional"] == {"limit": "max_order_notional", "value": None,
                                          "max": 1_000.0, "used": None}
    assert rows["max_symbol_exposure"]["used"] == pytest.approx(0.2 / 0.5)
    assert rows["max_total_exposure"]["used"] == pytest.approx(0.3 / 0.8)
    assert rows["max_open_positions"]["used"] == pytest.approx(2 / 3)
    assert rows["max_daily_loss"]["used"] == pytest.approx((1 - 10_000 / 10_500) / 0.1)
    assert rows["max_orders_per_minute"]["used"] == pytest.approx(1 / 4)
    no_limits = limit_usage({"account": account, "positions": positions, "ring": ring},
                            RiskLimits(), 1_000.0)
    assert all(r["max"] is None and r["used"] is None for r in no_limits)


# ------------------------------------------------------------------ alert sinks


def sinks_ctx(tmp_path: Path, mode: str, env: dict[str, str], alerts: object) -> HealthContext:
    """A context whose plan carries only what ``check_alerts`` reads."""
    from types import SimpleNamespace

    from peakdsl.compile import models as m

    risk = None if alerts is None else SimpleNamespace(alerts=alerts)
    ctx = HealthContext("x.peak", mode, "default", "binance", None, env)
    ctx.plan = SimpleNamespace(risk=risk, root=tmp_path, config=SimpleNamespace(name="x"))
    assert alerts is None or isinstance(alerts, m.Alerts)
    return ctx


def declared() -> object:
    from peakdsl.compile import models as m

    return m.Alerts(sinks=[m.AlertSink(kind="log", severity="info"),
                           m.AlertSink(kind="slack", severity="warning",
                                       url_env="PEAK_SLACK_WEBHOOK_URL")])


def test_alert_sinks_without_a_block_are_the_log(tmp_path: Path) -> None:
    from peakdsl.live.ops import check_alerts

    check = check_alerts(sinks_ctx(tmp_path, "paper", {}, None))
    assert (check.status, check.detail) == ("ok", "log (info)")


@pytest.mark.parametrize(("mode", "status"), [("paper", "warn"), ("testnet", "fail")])
def test_a_sink_without_its_variable_is_e044(tmp_path: Path, mode: str, status: str) -> None:
    from peakdsl.live.ops import check_alerts

    check = check_alerts(sinks_ctx(tmp_path, mode, {}, declared()))
    assert (check.status, check.code) == (status, "E044")
    assert check.detail == "alerts.slack: the variable PEAK_SLACK_WEBHOOK_URL is not set"
    assert check.fix is not None and "export PEAK_SLACK_WEBHOOK_URL" in check.fix


def test_a_reachable_sink_is_ok_and_an_unreachable_one_warns_without_its_url(
        tmp_path: Path, hook: object, dead_url: str) -> None:
    from peakdsl.live.ops import check_alerts

    url = hook.url  # type: ignore[attr-defined]
    ok = check_alerts(sinks_ctx(tmp_path, "live", {"PEAK_SLACK_WEBHOOK_URL": url}, declared()))
    assert (ok.status, ok.detail) == ("ok", "log (info), slack (warning)")
    assert hook.bodies == []  # type: ignore[attr-defined]  # nothing was sent to probe it
    down = check_alerts(sinks_ctx(tmp_path, "live", {"PEAK_SLACK_WEBHOOK_URL": dead_url},
                                  declared()))
    assert (down.status, down.code) == ("warn", "A011")
    assert "T0KEN" not in down.model_dump_json()
    assert down.detail == "slack: the host in $PEAK_SLACK_WEBHOOK_URL is unreachable " \
        "(ConnectionRefusedError)"


def test_undelivered_critical_alerts_in_the_outbox_warn(tmp_path: Path) -> None:
    from peakdsl.live.alerts import Alert, AlertMessage, Outbox
    from peakdsl.live.ops import check_alerts

    ctx = sinks_ctx(tmp_path, "paper", {}, None)
    path = Deployment(tmp_path, "paper", "default", "x").store_path.with_suffix(".outbox.jsonl")
    path.parent.mkdir(parents=True)
    alert = Alert("A004", "critical", "kill_switch", "kill switch engaged: x", 1.0)
    Outbox(path).put(AlertMessage("m1", alert), ["slack"])
    check = check_alerts(ctx)
    assert check.status == "warn"
    assert check.detail == "1 critical alert(s) not yet delivered (outbox)"
