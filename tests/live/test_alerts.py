"""The alert dispatcher and its sinks against loopback HTTP servers that fail in each way.

Time is a ``FakeClock`` the tests move: backoff and ``Retry-After`` are checked without
waiting them out. The only real waits are bounded polls for the worker thread (``until``) and
the HTTP client timeout of the "hang" server (0.2 s).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alert_setup import HANG_TIMEOUT_S, T0, TOKEN, FakeClock, Hook, Recorder, until

from peakdsl.live.alert_sinks import retry_after
from peakdsl.live.alerts import (
    Alert,
    AlertDispatcher,
    AlertMessage,
    LogSink,
    Outbox,
    SinkError,
    SlackSink,
    StderrSink,
    WebhookSink,
)


def retry_scheduled(d: AlertDispatcher) -> bool:
    """The worker has put its failed message back (so its retry time is read from the clock
    before the test moves it)."""
    return until(lambda: d.stats().queued == 1)


def alert(key: str = "feed_stale:BTC/USDT", severity: Any = "warning", at: float = T0,
          code: str = "A003", message: str = "feed stale", **data: Any) -> Alert:
    return Alert(code, severity, key, message, at, data)


@pytest.fixture
def dispatchers() -> Iterator[Callable[..., AlertDispatcher]]:
    made: list[AlertDispatcher] = []

    def make(sinks: Any, clock: Callable[[], float] | None = None, **kw: Any) -> AlertDispatcher:
        kw.setdefault("poll_s", 0.01)
        d = AlertDispatcher(sinks, clock or FakeClock(), **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.close(0.5)


# -- the caller is never held --------------------------------------------------------------

def test_raise_returns_fast_while_the_sink_hangs(hook: Hook, tmp_path: Path,
                                                 dispatchers: Callable[..., AlertDispatcher]
                                                 ) -> None:
    hook.mode = "hang"
    sink = WebhookSink(hook.url, timeout_s=HANG_TIMEOUT_S)
    d = dispatchers([sink], throttle_s=0, outbox=tmp_path / "outbox.jsonl")
    durations = []
    for i in range(100):
        severity = "critical" if i % 10 == 0 else "warning"
        start = time.perf_counter()
        d.raise_(alert(key=f"k{i}", severity=severity, at=T0 + i))
        durations.append(time.perf_counter() - start)
    assert max(durations) < 0.05, f"slowest raise_ took {max(durations) * 1000:.1f} ms"
    assert until(lambda: len(hook.bodies) >= 1)  # the worker is busy on the hanging server
    assert d.stats().raised == 100 and d.stats().dropped == 0
    start = time.perf_counter()
    d.close(0.3)
    assert time.perf_counter() - start < 1.0


# -- throttling and coalescing -------------------------------------------------------------

def test_three_alerts_in_five_minutes_make_one_message_then_a_count(
        dispatchers: Callable[..., AlertDispatcher]) -> None:
    rec = Recorder()
    d = dispatchers([rec])
    assert d.raise_(alert(at=T0)) is True
    assert d.raise_(alert(at=T0 + 60)) is False
    assert d.raise_(alert(at=T0 + 120)) is False
    assert d.raise_(alert(key="other", at=T0 + 130)) is True  # keys throttle separately
    assert d.wait_idle(2.0)
    assert [m.text for m in rec.got] == ["[WARNING] A003 feed stale"] * 2
    assert d.raise_(alert(at=T0 + 299)) is False  # still inside the window
    assert d.raise_(alert(at=T0 + 301)) is True
    assert d.wait_idle(2.0)
    assert rec.got[-1].text == "[WARNING] A003 feed stale (+3 more since 2023-11-14T22:13:20Z)"
    assert rec.got[-1].suppressed == 3
    assert d.stats().suppressed == 3 and d.stats().delivered == 3


def test_a_held_count_is_sent_when_its_window_ends(
        dispatchers: Callable[..., AlertDispatcher]) -> None:
    """Six alerts of one condition inside the window, then none: the worker's next look at
    the clock after the window sends the last one with the count of the other four."""
    rec, clock = Recorder(), FakeClock()
    d = dispatchers([rec], clock)
    for i in range(6):
        d.raise_(alert(at=T0 + 10 * i, message=f"feed stale #{i + 1}"))
    assert d.wait_idle(2.0)
    assert [m.text for m in rec.got] == ["[WARNING] A003 feed stale #1"]
    clock.now = T0 + 299
    d.wake()
    time.sleep(0.05)  # five of the worker's 0.01 s looks at the clock: nothing is due yet
    assert len(rec.got) == 1
    clock.now = T0 + 300
    d.wake()
    assert until(lambda: len(rec.got) == 2)
    assert rec.got[1].text == "[WARNING] A003 feed stale #6 (+4 more since " \
        "2023-11-14T22:13:20Z)"
    assert d.stats().suppressed == 4 and d.stats().delivered == 2
    d.raise_(alert(at=T0 + 310, message="feed stale #7"))  # a new window began at the flush
    assert d.stats().suppressed == 5


def test_close_sends_the_counts_still_held(dispatchers: Callable[..., AlertDispatcher]) -> None:
    rec = Recorder()
    d = dispatchers([rec])
    for i in range(3):
        d.raise_(alert(at=T0 + i, message=f"feed stale #{i + 1}"))
    d.raise_(alert(key="other", at=T0 + 5, message="lonely"))
    assert d.close(2.0)
    assert [m.text for m in rec.got] == [
        "[WARNING] A003 feed stale #1", "[WARNING] A003 lonely",
        "[WARNING] A003 feed stale #3 (+1 more since 2023-11-14T22:13:20Z)"]


def test_a_more_severe_alert_is_never_held_back(
        dispatchers: Callable[..., AlertDispatcher]) -> None:
    rec = Recorder()
    d = dispatchers([rec])
    d.raise_(alert(key="loss", severity="warning", at=T0))
    d.raise_(alert(key="loss", severity="warning", at=T0 + 10))
    assert d.raise_(alert(key="loss", severity="critical", at=T0 + 20, code="A010",
                          message="daily loss limit")) is True
    assert d.raise_(alert(key="loss", severity="critical", at=T0 + 30)) is False
    assert d.wait_idle(2.0)
    assert [m.text for m in rec.got] == [
        "[WARNING] A003 feed stale",
        "[CRITICAL] A010 daily loss limit (+1 more since 2023-11-14T22:13:20Z)"]


# -- the bounded queue ---------------------------------------------------------------------

def test_a_full_queue_drops_the_oldest_non_critical(
        dispatchers: Callable[..., AlertDispatcher]) -> None:
    rec = Recorder()
    rec.gate = threading.Event()
    d = dispatchers([rec], throttle_s=0, queue_size=3)
    d.raise_(alert(key="first"))
    assert rec.entered.wait(2.0)  # the worker holds "first"; the queue is empty
    for key, severity in (("c1", "critical"), ("n1", "info"), ("n2", "info"), ("n3", "info")):
        d.raise_(alert(key=key, severity=severity))
    assert d.stats().dropped == 1 and d.stats().queued == 3
    d.raise_(alert(key="c2", severity="critical"))  # drops n2; criticals are kept
    assert d.stats().dropped == 2
    rec.gate.set()
    assert d.wait_idle(2.0)
    assert [m.alert.key for m in rec.got] == ["first", "c1", "n3", "c2"]


def test_a_full_queue_of_criticals_drops_the_newcomer(
        dispatchers: Callable[..., AlertDispatcher]) -> None:
    rec = Recorder()
    rec.gate = threading.Event()
    d = dispatchers([rec], throttle_s=0, queue_size=1)
    d.raise_(alert(key="first"))
    assert rec.entered.wait(2.0)
    d.raise_(alert(key="c1", severity="critical"))
    assert d.raise_(alert(key="n1", severity="warning")) is False
    assert d.raise_(alert(key="c2", severity="critical")) is True  # over the bound, not lost
    assert d.stats().dropped == 2
    rec.gate.set()
    assert d.wait_idle(2.0)
    assert [m.alert.key for m in rec.got] == ["first", "c1", "c2"]


# -- retries, Retry-After, the outbox ------------------------------------------------------

def test_a_critical_alert_is_retried_until_the_server_recovers(
        hook: Hook, tmp_path: Path, dispatchers: Callable[..., AlertDispatcher]) -> None:
    hook.mode = "fail"
    clock = FakeClock()
    outbox = tmp_path / "outbox.jsonl"
    d = dispatchers([WebhookSink(hook.url)], clock, outbox=outbox, backoff_s=10, max_attempts=1)
    d.raise_(alert(key="kill", severity="critical", code="A001", message="kill switch"))
    assert until(lambda: len(hook.bodies) == 1) and retry_scheduled(d)
    [(owed, sinks)] = Outbox(outbox).pending()
    assert owed.alert.code == "A001" and sinks == {"webhook"}
    clock.now += 9.5
    d.wake()
    time.sleep(0.05)
    assert len(hook.bodies) == 1  # backoff not over yet
    clock.now += 0.5
    assert until(lambda: len(hook.bodies) == 2) and retry_scheduled(d)  # next in 20 s
    assert d.stats().outbox_pending == 1
    hook.mode = "ok"
    clock.now += 20
    assert until(lambda: len(hook.bodies) == 3)
    assert d.wait_idle(2.0)
    assert {b["id"] for b in hook.bodies} == {owed.id}
    assert Outbox(outbox).pending() == []
    assert d.stats().outbox_pending == 0 and d.stats().delivered == 1


def test_429_retry_after_is_honoured(hook: Hook,
                                     dispatchers: Callable[..., AlertDispatcher]) -> None:
    hook.mode, hook.retry_after = "429", "7"
    clock = FakeClock()
    d = dispatchers([SlackSink(hook.url)], clock, backoff_s=1)
    d.raise_(alert())
    assert until(lambda: len(hook.bodies) == 1) and retry_scheduled(d)
    clock.now += 6.5
    d.wake()
    time.sleep(0.05)
    assert len(hook.bodies) == 1  # backoff (1 s) is over, Retry-After (7 s) is not
    hook.mode = "ok"
    clock.now += 0.5
    assert until(lambda: len(hook.bodies) == 2)
    assert d.wait_idle(2.0) and d.stats().delivered == 1


def test_a_non_critical_alert_gives_up_after_max_attempts(
        hook: Hook, dispatchers: Callable[..., AlertDispatcher]) -> None:
    hook.mode = "fail"
    clock = FakeClock()
    d = dispatchers([WebhookSink(hook.url)], clock, backoff_s=1, max_attempts=2)
    d.raise_(alert())
    assert until(lambda: len(hook.bodies) == 1) and retry_scheduled(d)
    clock.now += 1
    assert until(lambda: d.stats().failed == 1)
    clock.now += 1000
    d.wake()
    assert d.wait_idle(1.0)
    assert len(hook.bodies) == 2 and d.stats().delivered == 0


def test_a_new_dispatcher_redelivers_what_was_never_acknowledged(
        hook: Hook, dead_url: str, tmp_path: Path,
        dispatchers: Callable[..., AlertDispatcher]) -> None:
    outbox = tmp_path / "outbox.jsonl"
    first_rec = Recorder()
    first = dispatchers([first_rec, WebhookSink(dead_url)], outbox=outbox)
    first.raise_(alert(key="halt", severity="critical", code="A002", message="halted"))
    first.raise_(alert(key="ok", severity="critical", code="A004", message="recon failed"))
    assert until(lambda: len(first_rec.got) == 2)
    assert first.close(1.0)
    assert len(Outbox(outbox).pending()) == 2
    with open(outbox, "ab") as f:
        f.write(b'{"op": "put", "id": "torn')  # a crash mid-append: ignored
    second_rec = Recorder()
    second = dispatchers([second_rec, WebhookSink(hook.url)], outbox=outbox)
    assert until(lambda: len(hook.bodies) == 2)
    assert second.wait_idle(2.0)
    assert [b["code"] for b in hook.bodies] == ["A002", "A004"]
    assert second_rec.got == []  # it had acknowledged them already
    assert Outbox(outbox).pending() == []
    third = dispatchers([Recorder(), WebhookSink(hook.url)], outbox=outbox)
    assert third.wait_idle(1.0) and len(hook.bodies) == 2


def test_a_broken_sink_does_not_stop_the_worker(
        dispatchers: Callable[..., AlertDispatcher]) -> None:
    class Broken:
        name = "broken"

        def send(self, message: AlertMessage) -> None:
            raise RuntimeError("bug")

    rec = Recorder()
    d = dispatchers([Broken(), rec], throttle_s=0, max_attempts=1)
    d.raise_(alert(key="a"))
    d.raise_(alert(key="b"))
    assert d.wait_idle(2.0)
    assert [m.alert.key for m in rec.got] == ["a", "b"]
    assert d.stats().failed == 2


# -- payloads ------------------------------------------------------------------------------

def test_webhook_json_shape(hook: Hook, dispatchers: Callable[..., AlertDispatcher]) -> None:
    d = dispatchers([WebhookSink(hook.url)])
    d.raise_(alert(key="recon", severity="critical", code="A004", message="position mismatch",
                   symbol="BTC/USDT", diff=0.25, qty=Decimal("0.10")))
    assert d.wait_idle(2.0)
    [body] = hook.bodies
    assert hook.requests == [("POST", f"/hooks/{TOKEN}", "application/json")]
    assert len(body.pop("id")) == 32
    assert body == {"code": "A004", "severity": "critical", "key": "recon",
                    "message": "position mismatch",
                    "data": {"symbol": "BTC/USDT", "diff": 0.25, "qty": "0.10"},
                    "at": T0, "at_utc": "2023-11-14T22:13:20Z", "suppressed": 0,
                    "since": None, "text": "[CRITICAL] A004 position mismatch"}


def test_slack_payload_shape(hook: Hook, dispatchers: Callable[..., AlertDispatcher]) -> None:
    d = dispatchers([SlackSink(hook.url)])
    d.raise_(alert(code="A003", message="feed stale for 3 bars", lag=3))
    assert d.wait_idle(2.0)
    assert hook.bodies == [{"text": "[WARNING] A003 feed stale for 3 bars"}]
    assert hook.requests[0][2] == "application/json"


# -- the HTTP sinks one failure at a time --------------------------------------------------

def message() -> AlertMessage:
    return AlertMessage("m1", alert())


@pytest.mark.parametrize(("mode", "reason", "wait"), [
    ("fail", "webhook: HTTP 500", None), ("429", "webhook: HTTP 429", 7.0),
    ("redirect", "webhook: HTTP 302", None), ("hang", "webhook: unreachable (TimeoutError)", None)])
def test_http_failures_raise_sink_error_without_the_url(
        hook: Hook, mode: str, reason: str, wait: float | None) -> None:
    hook.mode = mode
    sink = WebhookSink(hook.url, timeout_s=HANG_TIMEOUT_S)
    start = time.perf_counter()
    with pytest.raises(SinkError) as caught:
        sink.send(message())
    assert time.perf_counter() - start < 1.0
    assert str(caught.value) == reason and caught.value.retry_after_s == wait
    assert TOKEN not in repr(sink) and TOKEN not in str(caught.value)


def test_a_server_not_listening_is_a_sink_error(dead_url: str) -> None:
    with pytest.raises(SinkError, match=r"^slack: unreachable \(URLError\)$"):
        SlackSink(dead_url).send(message())


def test_a_sink_going_down_and_back_is_logged_once_each_without_the_url(
        hook: Hook, caplog: pytest.LogCaptureFixture,
        dispatchers: Callable[..., AlertDispatcher]) -> None:
    hook.mode = "fail"
    d = dispatchers([SlackSink(hook.url)], throttle_s=0, max_attempts=1)
    with caplog.at_level(logging.INFO, logger="peakdsl.live.alerts"):
        for key in ("a", "b", "c"):
            d.raise_(alert(key=key))
        assert until(lambda: d.stats().failed == 3)
        hook.mode = "ok"
        d.raise_(alert(key="d"))
        assert d.wait_idle(2.0)
    assert [r.getMessage() for r in caplog.records] == [
        "alert sink down: slack: HTTP 500", "alert sink slack delivering again"]
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), (" 1.5 ", 1.5), ("-1", None), ("soon", None), ("nan", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("86400", 3600.0), (None, None)])
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert retry_after(header) == seconds


def test_http_timeout_is_at_most_two_seconds() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        WebhookSink("http://127.0.0.1:1/", timeout_s=5)


# -- log and stderr sinks ------------------------------------------------------------------

def test_log_sink_uses_the_severity_as_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.alerts")
    with caplog.at_level(logging.INFO, logger="test.alerts"):
        for severity in ("info", "warning", "critical"):
            LogSink(logger).send(AlertMessage("x", alert(severity=severity)))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "[INFO] A003 feed stale"), ("WARNING", "[WARNING] A003 feed stale"),
        ("CRITICAL", "[CRITICAL] A003 feed stale")]


def test_the_log_sink_never_prints_by_itself(caplog: pytest.LogCaptureFixture) -> None:
    """Without logging set up (a fresh interpreter: pytest installs handlers of its own), a
    critical alert to the ``log`` sink prints nothing; a program's handler still gets it."""
    import subprocess
    import sys

    code = ("from peakdsl.live.alerts import Alert, AlertMessage, LogSink\n"
            "LogSink().send(AlertMessage('x', Alert('A004', 'critical', 'k', 'kill', 0.0)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert (done.stdout, done.stderr) == ("", "")
    with caplog.at_level(logging.INFO, logger="peakdsl.alerts"):
        LogSink().send(AlertMessage("x", alert(severity="critical")))
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("peakdsl.alerts", "[CRITICAL] A003 feed stale")]


def test_stderr_sink_writes_one_line_and_reports_a_closed_stream() -> None:
    stream = io.StringIO()
    StderrSink(stream).send(message())
    assert stream.getvalue() == "[WARNING] A003 feed stale\n"
    stream.close()
    with pytest.raises(SinkError, match="stream refused"):
        StderrSink(stream).send(message())


# -- bad configuration ---------------------------------------------------------------------

def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        AlertDispatcher([Recorder(), Recorder()], FakeClock())
    with pytest.raises(ValueError, match="severity"):
        alert(severity="fatal")
    with pytest.raises(ValueError, match="condition key"):
        alert(key="")
