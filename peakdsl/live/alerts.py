"""Alerts for a live deployment: throttled, queued, delivered off the trading loop.

The trading loop calls ``AlertDispatcher.raise_``; that call only throttles, writes a critical
alert to the outbox and appends to an in-memory queue, so a sink that is down, slow or
answering 429 can never delay the loop (sinks run on the dispatcher's one worker thread).

* **Throttling and coalescing** — at most one message per condition key per ``throttle_s``
  (measured on the alerts' own ``at``); the ones in between are counted and the next message
  for the key says ``(+N more since <time of the last message>)``. An alert more severe than
  the last one sent for its key is never held back (a warning must not mute the halt). A
  count still held when the key's window ends is flushed on the worker's next look at the
  clock (at most ``poll_s`` later), or at ``close``: the last held alert is sent with
  ``(+N more …)`` for the others, so no occurrence goes uncounted when a condition stops.
* **Bounded queue** — ``queue_size`` messages; when full the oldest non-critical one is
  dropped (or the new one, if it is not critical and nothing else can go) and counted.
* **Retries** — a failed sink is retried with exponential backoff, or after the server's
  ``Retry-After``; only the sinks that failed are retried. Non-critical messages give up after
  ``max_attempts`` (counted as failed); critical ones never give up.
* **Outbox** — a critical message is appended (one ``write`` of one JSON line, then ``fsync``)
  to a JSON-lines file before ``raise_`` returns, and each sink's acceptance is appended as an
  ``ack``; a new dispatcher on the same file redelivers every message some sink never
  acknowledged (the file is compacted to those on opening). A torn last line from a crash is
  ignored. Without an outbox path critical messages are still retried, in memory only.

Time is injected (``clock``, epoch seconds): alerts carry their own ``at``, and retry
schedules are read from ``clock`` — tests drive both without sleeping. Payloads hold the
alert's own fields only; sink URLs live in the sinks (see ``alert_sinks``), never here.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .alert_sinks import LogSink, Sink, SinkError, SlackSink, StderrSink, WebhookSink

__all__ = ["Alert", "AlertDispatcher", "AlertMessage", "DispatcherStats", "LogSink", "Outbox",
           "Severity", "Sink", "SinkError", "SlackSink", "StderrSink", "WebhookSink"]

Severity = Literal["info", "warning", "critical"]
RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
_log = logging.getLogger("peakdsl.live.alerts")


def utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


@dataclass(frozen=True)
class Alert:
    """One occurrence of a condition. ``key`` is what throttling groups by (e.g.
    ``"feed_stale:BTC/USDT"``); ``code`` names the runbook entry (e.g. ``"A001"``)."""

    code: str
    severity: Severity
    key: str
    message: str
    at: float
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.severity not in RANK:
            raise ValueError(f"severity must be one of {sorted(RANK)}, not {self.severity!r}")
        if not self.code or not self.key:
            raise ValueError("an alert needs a code and a condition key")


@dataclass(frozen=True)
class AlertMessage:
    """What sinks receive: an alert plus how many like it were coalesced into it."""

    id: str
    alert: Alert
    suppressed: int = 0
    since: float | None = None

    @property
    def critical(self) -> bool:
        return self.alert.severity == "critical"

    @property
    def text(self) -> str:
        a = self.alert
        more = (f" (+{self.suppressed} more since {utc(self.since)})"
                if self.suppressed and self.since is not None else "")
        return f"[{a.severity.upper()}] {a.code} {a.message}{more}"

    def payload(self) -> dict[str, Any]:
        """The JSON body of a webhook and the outbox record (JSON-safe: odd values as str)."""
        a = self.alert
        body = {"id": self.id, "code": a.code, "severity": a.severity, "key": a.key,
                "message": a.message, "data": dict(a.data), "at": a.at, "at_utc": utc(a.at),
                "suppressed": self.suppressed, "since": self.since, "text": self.text}
        loaded: dict[str, Any] = json.loads(json.dumps(body, default=str))
        return loaded

    @classmethod
    def from_payload(cls, body: Mapping[str, Any]) -> AlertMessage:
        alert = Alert(code=body["code"], severity=body["severity"], key=body["key"],
                      message=body["message"], at=float(body["at"]), data=body.get("data", {}))
        since = body.get("since")
        return cls(id=body["id"], alert=alert, suppressed=int(body.get("suppressed", 0)),
                   since=None if since is None else float(since))


class Outbox:
    """The durable record of critical messages and which sinks accepted them (JSON lines)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def put(self, message: AlertMessage, sinks: Iterable[str]) -> None:
        self._append({"op": "put", "id": message.id, "sinks": sorted(sinks),
                      "message": message.payload()})

    def ack(self, message_id: str, sink: str) -> None:
        self._append({"op": "ack", "id": message_id, "sink": sink})

    def _append(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending(self) -> list[tuple[AlertMessage, set[str]]]:
        """Every message still owed to some sink, with those sinks, oldest first."""
        puts: dict[str, tuple[AlertMessage, set[str]]] = {}
        for record in self._records():
            if record.get("op") == "put":
                puts[record["id"]] = (AlertMessage.from_payload(record["message"]),
                                      set(record["sinks"]))
            elif record.get("op") == "ack" and record.get("id") in puts:
                puts[record["id"]][1].discard(record["sink"])
        return [(m, owed) for m, owed in puts.values() if owed]

    def _records(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # empty, or torn by a crash mid-append
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def compact(self) -> list[tuple[AlertMessage, set[str]]]:
        """Rewrite the file with only what is still owed (atomically); return that."""
        owed = self.pending()
        if not self.path.exists():
            return owed
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            for message, sinks in owed:
                out.write(json.dumps({"op": "put", "id": message.id, "sinks": sorted(sinks),
                                      "message": message.payload()}, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        return owed


@dataclass
class _KeyState:
    last_at: float
    last_rank: int
    suppressed: int = 0
    held: Alert | None = None  # the last alert suppressed since the last message


@dataclass
class _Pending:
    message: AlertMessage
    owed: set[str]
    due: float = 0.0
    attempts: int = 0


@dataclass(frozen=True)
class DispatcherStats:
    raised: int
    suppressed: int
    queued: int
    dropped: int
    delivered: int
    failed: int
    outbox_pending: int
    down: tuple[str, ...] = ()  # sinks whose last attempt failed


class AlertDispatcher:
    """Throttle, queue and deliver alerts to ``sinks`` on one background worker thread."""

    def __init__(self, sinks: Sequence[Sink], clock: Callable[[], float] = time.time, *,
                 throttle_s: float = 300.0, queue_size: int = 1000,
                 outbox: str | os.PathLike[str] | None = None, max_attempts: int = 3,
                 backoff_s: float = 1.0, backoff_max_s: float = 300.0,
                 poll_s: float = 0.5, levels: Mapping[str, Severity] | None = None) -> None:
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique: {names}")
        if queue_size < 1 or max_attempts < 1 or throttle_s < 0 or backoff_s <= 0:
            raise ValueError("queue_size and max_attempts >= 1, throttle_s >= 0, backoff_s > 0")
        self._sinks = list(sinks)
        self._levels = {name: RANK[level] for name, level in (levels or {}).items()}
        self._clock = clock
        self._throttle_s, self._queue_size = throttle_s, queue_size
        self._max_attempts = max_attempts
        self._backoff_s, self._backoff_max_s, self._poll_s = backoff_s, backoff_max_s, poll_s
        self._outbox = Outbox(outbox) if outbox is not None else None
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._keys: dict[str, _KeyState] = {}
        self._inflight: _Pending | None = None
        self._critical_ids: set[str] = set()
        self._down: set[str] = set()  # sinks whose last send failed
        self._counts = dict.fromkeys(("raised", "suppressed", "dropped", "delivered", "failed"), 0)
        self._closing = False
        self._close_by = 0.0
        self._restore()
        self._worker = threading.Thread(target=self._run, name="peak-alerts", daemon=True)
        self._worker.start()

    # -- the caller's side: never waits on a sink ------------------------------------------

    def raise_(self, alert: Alert) -> bool:
        """Throttle ``alert`` and queue its message; ``True`` if a message was queued."""
        with self._cond:
            self._counts["raised"] += 1
            message = self._coalesce(alert)
            if message is None:
                self._counts["suppressed"] += 1
                return False
        return self._submit(message)

    def _submit(self, message: AlertMessage) -> bool:
        """Queue ``message`` for the sinks its severity reaches (a critical one: to the
        outbox first); ``True`` if queued."""
        rank = RANK[message.alert.severity]
        item = _Pending(message, {s.name for s in self._sinks
                                  if rank >= self._levels.get(s.name, 0)})
        if not item.owed:
            return False
        if message.critical and self._outbox is not None:
            self._outbox.put(message, item.owed)
        return self._enqueue(item)

    def alert(self, code: str, severity: Severity, key: str, message: str,
              **data: Any) -> bool:
        """``raise_`` an alert stamped with the dispatcher's clock."""
        return self.raise_(Alert(code, severity, key, message, self._clock(), data))

    def _coalesce(self, alert: Alert) -> AlertMessage | None:
        state = self._keys.get(alert.key)
        rank = RANK[alert.severity]
        if state is not None and alert.at - state.last_at < self._throttle_s \
                and rank <= state.last_rank:
            state.suppressed += 1
            state.held = alert
            return None
        message = AlertMessage(uuid.uuid4().hex, alert,
                               suppressed=state.suppressed if state else 0,
                               since=state.last_at if state else None)
        self._keys[alert.key] = _KeyState(max(alert.at, state.last_at) if state else alert.at,
                                          rank)
        return message

    def _held_over(self, now: float, every: bool = False) -> list[AlertMessage]:
        """The counts whose key's window has ended at ``now`` (``every``: all of them), as
        messages of their last held alert, ``(+N more …)`` for the others; their keys start
        a new window at ``now``. Called under the lock."""
        out = []
        for key, state in list(self._keys.items()):
            if state.held is None or \
                    (not every and now - state.last_at < self._throttle_s):
                continue
            out.append(AlertMessage(uuid.uuid4().hex, state.held,
                                    suppressed=state.suppressed - 1, since=state.last_at))
            self._counts["suppressed"] -= 1  # the held alert itself goes out after all
            self._keys[key] = _KeyState(max(now, state.held.at), RANK[state.held.severity])
        return out

    def _flush_due(self, now: float) -> float | None:
        """Seconds until the next held count is due (0: now); None when none is held."""
        waits = [state.last_at + self._throttle_s - now for state in self._keys.values()
                 if state.held is not None]
        return max(0.0, min(waits)) if waits else None

    def _enqueue(self, item: _Pending) -> bool:
        with self._cond:
            if item.message.critical:
                self._critical_ids.add(item.message.id)
            if len(self._queue) >= self._queue_size and not self._make_room(item):
                return False
            self._queue.append(item)
            self._cond.notify_all()
            return True

    def _make_room(self, item: _Pending) -> bool:
        """Drop the oldest non-critical queued message; else drop ``item`` unless critical."""
        victim = next((p for p in self._queue if not p.message.critical), None)
        self._counts["dropped"] += 1
        if victim is not None:
            self._queue.remove(victim)
            return True
        return item.message.critical  # criticals are never dropped (and are in the outbox)

    # -- the worker's side -----------------------------------------------------------------

    def _restore(self) -> None:
        if self._outbox is None:
            return
        current = {s.name for s in self._sinks}
        for message, owed in self._outbox.compact():
            if owed & current:
                self._critical_ids.add(message.id)
                self._queue.append(_Pending(message, owed & current))

    def _run(self) -> None:
        while (item := self._next()) is not None:
            if isinstance(item, _Pending):
                self._deliver(item)
                continue
            for message in item:  # held counts whose window ended (outside the lock)
                self._submit(message)

    def _next(self) -> _Pending | list[AlertMessage] | None:
        """The oldest message due now, or the held counts due (``None``: stop); waits on the
        condition, never sleeps."""
        with self._cond:
            while True:
                if self._closing and time.monotonic() >= self._close_by:
                    return None
                now = self._clock()
                held = self._held_over(now) if not self._closing else []
                if held:
                    return held
                item = next((p for p in self._queue if p.due <= now), None)
                if item is not None:
                    self._queue.remove(item)
                    self._inflight = item
                    return item
                if self._closing:
                    return None
                flush = self._flush_due(now)
                soonest = min([p.due - now for p in self._queue]
                              + ([flush] if flush is not None else []), default=self._poll_s)
                self._cond.wait(max(0.0, min(soonest, self._poll_s)))

    def _deliver(self, item: _Pending) -> None:
        waits: list[float] = []
        for sink in self._sinks:
            if sink.name not in item.owed:
                continue
            if self._send(sink, item.message, waits):
                item.owed.discard(sink.name)
                if item.message.critical and self._outbox is not None:
                    self._outbox.ack(item.message.id, sink.name)
        with self._cond:
            self._inflight = None
            self._settle(item, waits)
            self._cond.notify_all()

    def _send(self, sink: Sink, message: AlertMessage, waits: list[float]) -> bool:
        try:
            sink.send(message)
        except Exception as exc:  # SinkError, or a broken sink: neither may stop the worker
            # a foreign exception's text may hold a URL or a token: only its type is logged
            reason = (str(exc) if isinstance(exc, SinkError)
                      else f"{sink.name}: {type(exc).__name__}")
            if isinstance(exc, SinkError) and exc.retry_after_s is not None:
                waits.append(exc.retry_after_s)
            self._mark(sink.name, reason)
            return False
        self._mark(sink.name, None)
        return True

    def _mark(self, sink: str, failure: str | None) -> None:
        """Log a sink going down and coming back once each, not every failed retry."""
        with self._cond:  # ``stats`` reads the set from the caller's thread
            was_down = sink in self._down
            if failure is not None:
                self._down.add(sink)
            else:
                self._down.discard(sink)
        if failure is not None and not was_down:
            _log.warning("alert sink down: %s", failure)
        elif failure is None and was_down:
            _log.info("alert sink %s delivering again", sink)

    def _settle(self, item: _Pending, waits: list[float]) -> None:
        """Count a delivered or abandoned message, or schedule its retry (under the lock)."""
        if not item.owed:
            self._counts["delivered"] += 1
            self._critical_ids.discard(item.message.id)
            return
        item.attempts += 1
        if not item.message.critical and item.attempts >= self._max_attempts:
            self._counts["failed"] += 1
            return
        backoff = min(self._backoff_s * 2 ** (item.attempts - 1), self._backoff_max_s)
        item.due = self._clock() + max([backoff, *waits])
        self._queue.appendleft(item)

    # -- control ---------------------------------------------------------------------------

    def wait_idle(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until nothing is queued or in flight."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._inflight is None,
                                       timeout)

    def wake(self) -> None:
        """Make the worker look at the clock again now (after a test moved it)."""
        with self._cond:
            self._cond.notify_all()

    def stats(self) -> DispatcherStats:
        with self._cond:
            return DispatcherStats(queued=len(self._queue),
                                   outbox_pending=len(self._critical_ids),
                                   down=tuple(sorted(self._down)), **self._counts)

    def close(self, timeout: float = 2.0) -> bool:
        """Deliver what is due within ``timeout`` s, then stop the worker; ``True`` if it
        stopped. Undelivered critical messages stay in the outbox for the next dispatcher; so
        does a critical alert raised after ``close`` (a non-critical one then goes nowhere)."""
        with self._cond:
            held = [] if self._closing else self._held_over(self._clock(), every=True)
        for message in held:  # the counts no later alert will carry: sent now
            self._submit(message)
        with self._cond:
            self._closing = True
            self._close_by = time.monotonic() + timeout
            self._cond.notify_all()
        self._worker.join(timeout)
        return not self._worker.is_alive()
