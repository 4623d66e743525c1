"""A deployment's alerts: sinks from the risk spec's ``alerts`` block, what each code is
raised by, and the runner raising them on a loopback exchange into loopback webhooks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alert_setup import T0, FakeClock, Hook, Recorder, until
from deploy_setup import (
    MA,
    TESTNET_ENV,
    deployment,
    live_request,
    promoted_project,
    runner_settings,
)
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.compile import models as m
from peakdsl.live.alert_sinks import AppriseSink, LogSink, SlackSink, WebhookSink
from peakdsl.live.alerts import AlertDispatcher
from peakdsl.live.feed import PolledSlot, PollingSource
from peakdsl.live.gate import Refused
from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.monitor import AlertMonitor, alert_sinks_for
from peakdsl.live.runner import TickState, request_kill, run_deployment
from peakdsl.live.store import LiveStore

SLACK = m.AlertSink(kind="slack", severity="warning", url_env="PEAK_SLACK_WEBHOOK_URL")
HOOK = m.AlertSink(kind="webhook", severity="critical", url_env="PEAK_ALERT_WEBHOOK_URL")
SECRET_URL = "https://hooks.example.invalid/services/T0KEN-s3cr3t"


# ------------------------------------------------------------------ sinks from the spec


def test_without_an_alerts_block_a_deployment_alerts_to_its_log() -> None:
    setup = alert_sinks_for(None, {})
    assert [type(s) for s in setup.sinks] == [LogSink] and setup.levels == {"log": "info"}
    assert setup.problems == ()


def test_declared_sinks_read_their_url_from_the_environment() -> None:
    config = m.Alerts(sinks=[m.AlertSink(kind="log", severity="info"), SLACK, HOOK])
    setup = alert_sinks_for(config, {"PEAK_SLACK_WEBHOOK_URL": SECRET_URL,
                                     "PEAK_ALERT_WEBHOOK_URL": SECRET_URL})
    assert [type(s) for s in setup.sinks] == [LogSink, SlackSink, WebhookSink]
    assert setup.levels == {"log": "info", "slack": "warning", "webhook": "critical"}
    assert "T0KEN" not in repr(setup.sinks)


@pytest.mark.parametrize(("env", "why"), [
    ({}, "alerts.slack: the variable PEAK_SLACK_WEBHOOK_URL is not set"),
    ({"PEAK_SLACK_WEBHOOK_URL": "  "}, "alerts.slack: the variable PEAK_SLACK_WEBHOOK_URL "
     "is not set"),
    ({"PEAK_SLACK_WEBHOOK_URL": "ftp://T0KEN@host/x"}, "alerts.slack: the variable "
     "PEAK_SLACK_WEBHOOK_URL does not hold an http(s) URL"),
])
def test_an_unusable_sink_is_e044_without_its_value(env: dict[str, str], why: str) -> None:
    setup = alert_sinks_for(m.Alerts(sinks=[SLACK]), env)
    assert setup.sinks == () and [(d.code, d.message) for d in setup.problems] == [("E044", why)]
    assert "T0KEN" not in str(setup.problems)


def test_apprise_urls_it_cannot_read_are_e044() -> None:
    sink = m.AlertSink(kind="apprise", severity="critical", url_env="PEAK_APPRISE_URLS")
    bad = alert_sinks_for(m.Alerts(sinks=[sink]), {"PEAK_APPRISE_URLS": "no-such://T0KEN"})
    assert [d.code for d in bad.problems] == ["E044"] and "T0KEN" not in str(bad.problems)
    good = alert_sinks_for(m.Alerts(sinks=[sink]),
                           {"PEAK_APPRISE_URLS": "json://127.0.0.1:9/T0KEN"})
    assert [type(s) for s in good.sinks] == [AppriseSink] and "T0KEN" not in repr(good.sinks)


def test_apprise_delivers_json_to_a_loopback_server(hook: Hook) -> None:
    dispatcher = AlertDispatcher([AppriseSink(hook.url.replace("http://", "json://"))],
                                 FakeClock())
    dispatcher.alert("A004", "critical", "kill_switch", "kill switch engaged: drill")
    assert until(lambda: len(hook.bodies) == 1)
    dispatcher.close()
    body = hook.bodies[0]
    assert (body["title"], body["type"]) == ("peak A004", "failure")
    assert body["message"] == "[CRITICAL] A004 kill switch engaged: drill"


def test_apprise_reports_a_refusal_as_a_sink_error(hook: Hook) -> None:
    hook.mode = "fail"
    dispatcher = AlertDispatcher([AppriseSink(hook.url.replace("http://", "json://"))],
                                 FakeClock(), max_attempts=1)
    dispatcher.alert("A007", "warning", "feed:x", "x: no closed candle")
    assert until(lambda: dispatcher.stats().failed == 1)
    assert dispatcher.stats().down == ("apprise",)
    dispatcher.close()


# ------------------------------------------------------------------ what raises each code


@pytest.fixture
def monitor(tmp_path: Path) -> Any:
    clock = FakeClock()
    rec = Recorder()
    dispatcher = AlertDispatcher([rec], clock, throttle_s=300.0)
    store = LiveStore.open(tmp_path / "s.sqlite")
    store.start_session("s1", spec="x", artifact_sha256="0" * 64, mode="paper",
                        account="default", exchange="binance", params={}, at=int(T0 * 1000))
    mon = AlertMonitor(dispatcher, store, "s1", clock=clock, max_daily_loss=0.02,
                       daily_loss_warn=0.8)
    yield mon, rec, clock, store
    dispatcher.close()
    store.close()


def state(clock: FakeClock, **changes: Any) -> TickState:
    base = TickState(clock.now, clock.now, 10_000.0, 0.0, 0, {}, {}, 0, False, 0, 0.0)
    return replace(base, **changes)


def alerts_in(store: LiveStore) -> list[tuple[str, str, str]]:
    return [(e.data["code"], e.level, e.data["key"]) for e in store.log_since()
            if e.event == "alert"]


def test_new_risk_denials_raise_a001_once_per_increase(monitor: Any) -> None:
    mon, rec, clock, store = monitor
    mon.observe(state(clock, risk={"denied_order_notional": 2}))
    mon.observe(state(clock, risk={"denied_order_notional": 2}))  # no new denial
    clock.now += 600
    mon.observe(state(clock, risk={"denied_order_notional": 3, "reduced_total_exposure": 1}))
    assert alerts_in(store) == [("A001", "warning", "risk:denied_order_notional"),
                                ("A001", "warning", "risk:denied_order_notional"),
                                ("A001", "warning", "risk:reduced_total_exposure")]
    assert until(lambda: len(rec.got) == 3)
    assert rec.got[0].alert.message == "the risk stage denied 2 entries on order notional " \
        "(2 so far)"
    assert rec.got[2].alert.message == "the risk stage reduced 1 entry on total exposure " \
        "(1 so far)"


def test_the_daily_loss_warning_fires_once_a_day(monitor: Any) -> None:
    mon, rec, clock, store = monitor
    mon.observe(state(clock, day_loss=0.0159))  # under 80% of 2%
    mon.observe(state(clock, day_loss=0.0161))
    mon.observe(state(clock, day_loss=0.017))
    clock.now += 86_400
    mon.observe(state(clock, day_loss=0.0165))
    assert [a[0] for a in alerts_in(store)] == ["A002", "A002"]
    assert until(lambda: len(rec.got) == 2)
    assert rec.got[0].alert.message == "the day's loss is 1.61%, past 80% of the 2.00% limit"


def test_new_exchange_failures_raise_a008(monitor: Any) -> None:
    mon, _, clock, store = monitor
    mon.observe(state(clock, exchange_failures=0))
    mon.observe(state(clock, exchange_failures=2, exchange_errors=2))
    mon.observe(state(clock, exchange_failures=2, exchange_errors=0))
    assert alerts_in(store) == [("A008", "warning", "exchange:orders")]


def test_a_sink_going_down_raises_a011_once(tmp_path: Path) -> None:
    clock = FakeClock()
    good, bad = Recorder("good"), Recorder("bad")
    bad.fail = True
    dispatcher = AlertDispatcher([good, bad], clock, max_attempts=1)
    with LiveStore.open(tmp_path / "s.sqlite") as store:
        store.start_session("s1", spec="x", artifact_sha256="0" * 64, mode="paper",
                            account="default", exchange="binance", params={}, at=1)
        mon = AlertMonitor(dispatcher, store, "s1", clock=clock)
        mon.raise_("A007", "feed:x", "x: no closed candle")
        assert until(lambda: dispatcher.stats().down == ("bad",))
        mon.observe(state(clock))
        mon.observe(state(clock))
        assert [a[:1] + a[2:] for a in alerts_in(store)] == [("A007", "feed:x"),
                                                           ("A011", "sink:bad")]
        assert until(lambda: [g.alert.code for g in good.got] == ["A007", "A011"])
    dispatcher.close()


def test_severity_levels_route_alerts_per_sink(tmp_path: Path) -> None:
    clock = FakeClock()
    chat, pager = Recorder("chat"), Recorder("pager")
    dispatcher = AlertDispatcher([chat, pager], clock,
                                 levels={"chat": "warning", "pager": "critical"})
    for code, severity in (("X1", "info"), ("X2", "warning"), ("X3", "critical")):
        dispatcher.alert(code, severity, code, "m")  # type: ignore[arg-type]
    assert until(lambda: len(chat.got) == 2 and len(pager.got) == 1)
    assert dispatcher.wait_idle(2.0)
    assert [g.alert.code for g in chat.got] == ["X2", "X3"]
    assert [g.alert.code for g in pager.got] == ["X3"]
    dispatcher.close()


# ------------------------------------------------------------------ the feed


def test_a_failing_kline_request_is_reported_and_the_tick_goes_on() -> None:
    now = [T0 + 3600 + 1]
    errors: list[tuple[str, str]] = []

    def fetch(*args: Any) -> list[list[float]]:
        raise ConnectionError("exchange down")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    source = PollingSource([PolledSlot("BTC/USDT", "1h", 3600)], fetch, clock=lambda: now[0],
                           sleep=sleep, settle=0.0, retry=10.0, patience=30.0, max_ticks=1,
                           on_error=lambda market, exc: errors.append((market, str(exc))))
    ticks = list(source.ticks())
    assert len(ticks) == 1 and ticks[0].closed == {} and ticks[0].opened == {}
    assert errors == [("BTC/USDT", "exchange down")] * 4  # at 0, 10, 20 and 30 s of patience


def test_without_on_error_a_failing_request_ends_the_source() -> None:
    def fetch(*args: Any) -> list[list[float]]:
        raise ConnectionError("exchange down")

    source = PollingSource([PolledSlot("BTC/USDT", "1h", 3600)], fetch,
                           clock=lambda: T0 + 3601, sleep=lambda s: None, max_ticks=1)
    with pytest.raises(ConnectionError):
        list(source.ticks())


# ------------------------------------------------------------------ the runner


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return promoted_project(tmp_path_factory, tmp_path)


def test_a_testnet_deployment_refuses_to_start_without_its_alert_sinks(
        root: Path, exchange: LoopbackExchange) -> None:
    with pytest.raises(Refused) as refused:
        run_deployment(live_request(root, risk="live_moderate_usdt"),
                       runner_settings(exchange.url), env=TESTNET_ENV)
    assert [d.code for d in refused.value.diagnostics] == ["E044", "E044"]
    assert not deployment(root).store_path.exists()  # refused before anything was written


def test_a_paper_deployment_starts_without_them_and_says_so(root: Path) -> None:
    summary = run_deployment(live_request(root, mode="paper", risk="live_moderate_usdt"),
                             runner_settings(None), env={})
    assert "alerts.slack: the variable PEAK_SLACK_WEBHOOK_URL is not set (E044): the paper " \
        "session runs without this sink" in summary.notes


def test_a_kill_reaches_slack_and_the_pager_and_the_store(
        root: Path, exchange: LoopbackExchange, hook: Hook, caplog: Any) -> None:
    env = {**TESTNET_ENV, "PEAK_SLACK_WEBHOOK_URL": hook.url + "/slack",
           "PEAK_ALERT_WEBHOOK_URL": hook.url + "/pager"}
    where = deployment(root)

    def kill_after_first_tick(state: TickState) -> None:
        request_kill(where, "drill", "carol", flatten=False)

    with caplog.at_level(logging.DEBUG):
        run_deployment(live_request(root, risk="live_moderate_usdt"),
                       runner_settings(exchange.url, observers=(kill_after_first_tick,)),
                       env=env)
    assert until(lambda: len(hook.bodies) >= 2)
    pager = [b for b, r in zip(hook.bodies, hook.requests, strict=True) if r[1].endswith("pager")]
    slack = [b for b, r in zip(hook.bodies, hook.requests, strict=True) if r[1].endswith("slack")]
    assert [b["code"] for b in pager] == ["A004"] and pager[0]["severity"] == "critical"
    assert slack[0]["text"].startswith("[CRITICAL] A004 kill switch engaged: drill")
    with LiveStore.open(where.store_path, readonly=True) as store:
        assert ("A004", "critical", "kill_switch") in alerts_in(store)
    assert "T0KEN" not in caplog.text  # the URLs never reach a log
    status = CliRunner().invoke(app, ["live", "status", str(root / MA), "--mode", "testnet",
                                      "--json"])
    assert status.exit_code == 0, status.output
    alerts = json.loads(status.stdout)["alerts"]
    assert [(a["code"], a["severity"]) for a in alerts][-1] == ("A004", "critical")
    assert alerts[-1]["message"] == "A004 kill switch engaged: drill (requested by carol)"
    text = CliRunner().invoke(app, ["live", "status", str(root / MA), "--mode", "testnet"])
    assert "alert critical A004 kill switch engaged: drill" in text.stdout


def test_a_kill_alert_a_sink_missed_is_delivered_when_the_next_start_is_refused(
        root: Path, exchange: LoopbackExchange, hook: Hook) -> None:
    env = {**TESTNET_ENV, "PEAK_SLACK_WEBHOOK_URL": hook.url + "/slack",
           "PEAK_ALERT_WEBHOOK_URL": hook.url + "/pager"}
    where = deployment(root)
    hook.mode = "fail"  # the pager is down while the kill happens

    def kill_after_first_tick(state: TickState) -> None:
        request_kill(where, "drill", "carol", flatten=False)

    request = live_request(root, risk="live_moderate_usdt")
    run_deployment(request, runner_settings(exchange.url, observers=(kill_after_first_tick,)),
                   env=env)
    outbox = where.store_path.with_suffix(".outbox.jsonl")
    assert "A004" in outbox.read_text()
    hook.mode = "ok"
    hook.bodies.clear()
    with pytest.raises(Refused) as refused:
        run_deployment(request, runner_settings(exchange.url), env=env)
    assert [d.code for d in refused.value.diagnostics] == ["E041"]
    assert until(lambda: any(b.get("code") == "A004" for b in hook.bodies))


def test_a_failed_step_halts_with_a009_and_the_kill_switch(
        root: Path, exchange: LoopbackExchange, monkeypatch: pytest.MonkeyPatch) -> None:
    from peakdsl.live.session import Session

    real = Session.step
    calls = [0]

    def step(self: Session, tick: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:
            raise FloatingPointError("a broken indicator")
        return real(self, tick)

    monkeypatch.setattr(Session, "step", step)
    with pytest.raises(FloatingPointError):
        run_deployment(live_request(root), runner_settings(exchange.url), env=TESTNET_ENV)
    with LiveStore.open(deployment(root).store_path, readonly=True) as store:
        assert store.sessions()[-1].status == "halted"
        assert store.kill_state().engaged
        codes = [a[0] for a in alerts_in(store)]
    assert codes == ["A009", "A004"]


def test_docs_list_every_alert_code_as_the_table_says() -> None:
    from peakdsl.live.alert_codes import ALERT_CODES

    text = (Path(__file__).resolve().parents[2] / "docs" / "live.md").read_text("utf-8")
    for a in ALERT_CODES.values():
        row = f"| `{a.code}` | `{a.name}` | {a.severity} | {a.summary} | {a.reaction} |"
        assert row in text, f"docs/live.md §15 lacks or misstates {a.code}"
