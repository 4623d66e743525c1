"""Where alerts go: a ``Sink`` protocol and the four built-in sinks (log, stderr, webhook, Slack).

A sink delivers one ``AlertMessage`` or raises ``SinkError``; it never retries itself — the
dispatcher's worker owns retries, backoff and ``Retry-After`` so that every sink behaves the
same and none can hold the trading loop (sinks only ever run on the worker thread). Another
service (apprise, PagerDuty…) is added by writing a class with a unique ``name`` and a ``send``
that raises ``SinkError`` on failure; nothing else in the dispatcher changes.

HTTP sinks POST JSON with the standard library (``urllib``), time out after at most 2 s,
treat every non-2xx answer (redirects included: a webhook that moved is a misconfiguration,
not something to follow with a POST) as a failure, and read ``Retry-After`` (delta seconds)
from a 429. The URL is held as a ``SecretStr`` — Slack webhook URLs *are* credentials — and
appears in no error, log line or ``repr``; payloads carry the alert's own fields only.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr

if TYPE_CHECKING:
    from .alerts import AlertMessage

ALERT_LOGGER = "peakdsl.alerts"
# The ``log`` sink's logger writes where the application's logging sends it, and nowhere by
# itself: without the null handler, Python's last-resort handler would print every warning
# and critical alert on stderr — twice beside a ``stderr`` sink, and once even without one.
# Records still propagate, so a program that configures logging receives them.
logging.getLogger(ALERT_LOGGER).addHandler(logging.NullHandler())
HTTP_TIMEOUT_MAX_S = 2.0
RETRY_AFTER_MAX_S = 3600.0
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}


class SinkError(Exception):
    """A sink did not accept a message; ``retry_after_s`` is the server's wish, if it said one."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Sink(Protocol):
    """One destination. ``name`` is unique per dispatcher (acknowledgements are kept by it)."""

    @property
    def name(self) -> str: ...

    def send(self, message: AlertMessage) -> None:
        """Deliver ``message`` or raise ``SinkError``."""


class LogSink:
    """Alerts as records of a ``logging`` logger, at the level matching their severity."""

    def __init__(self, logger: logging.Logger | None = None, name: str = "log") -> None:
        self.name = name
        self._logger = logger or logging.getLogger(ALERT_LOGGER)

    def send(self, message: AlertMessage) -> None:
        self._logger.log(LEVELS[message.alert.severity], "%s", message.text)


class StderrSink:
    """One line per alert on a text stream (``sys.stderr`` as it is when the alert is sent)."""

    def __init__(self, stream: IO[str] | None = None, name: str = "stderr") -> None:
        self.name = name
        self._stream = stream

    def send(self, message: AlertMessage) -> None:
        stream = self._stream or sys.stderr
        try:
            stream.write(message.text + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken stream
            reason = f"{self.name}: stream refused the write ({type(exc).__name__})"
            raise SinkError(reason) from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a 3xx becomes an ``HTTPError`` like any other non-2xx answer."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as delta seconds, capped at an hour; the HTTP-date form (which would need
    a clock read here) and garbage give ``None`` so the dispatcher's backoff applies."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_MAX_S)


def post_json(sink: str, url: SecretStr, body: dict[str, Any], timeout_s: float) -> None:
    """POST ``body`` as JSON; return on 2xx, raise ``SinkError`` (without the URL) otherwise."""
    data = json.dumps(body, default=str, sort_keys=True).encode("utf-8")
    request = urllib.request.Request(url.get_secret_value(), data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        wait = retry_after(exc.headers.get("Retry-After")) if exc.code == 429 else None
        exc.close()
        raise SinkError(f"{sink}: HTTP {exc.code}", retry_after_s=wait) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, timeout, bad URL
        raise SinkError(f"{sink}: unreachable ({type(exc).__name__})") from None
    if not 200 <= status < 300:
        raise SinkError(f"{sink}: HTTP {status}")


class _HttpSink:
    """Shared HTTP handling: a JSON POST of what ``body`` makes of each message."""

    def __init__(self, url: str | SecretStr, name: str, timeout_s: float,
                 body: Callable[[AlertMessage], dict[str, Any]]) -> None:
        if not 0 < timeout_s <= HTTP_TIMEOUT_MAX_S:
            raise ValueError(f"{name}: timeout_s must be in (0, {HTTP_TIMEOUT_MAX_S}]")
        self.name = name
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        self._timeout_s = timeout_s
        self._body = body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url=***)"

    def send(self, message: AlertMessage) -> None:
        post_json(self.name, self._url, self._body(message), self._timeout_s)


class WebhookSink(_HttpSink):
    """The message's full JSON payload (``AlertMessage.payload``) POSTed to a URL."""

    def __init__(self, url: str | SecretStr, name: str = "webhook",
                 timeout_s: float = HTTP_TIMEOUT_MAX_S) -> None:
        super().__init__(url, name, timeout_s, lambda message: message.payload())


class SlackSink(_HttpSink):
    """A Slack incoming webhook: ``{"text": ...}`` with the rendered line."""

    def __init__(self, url: str | SecretStr, name: str = "slack",
                 timeout_s: float = HTTP_TIMEOUT_MAX_S) -> None:
        super().__init__(url, name, timeout_s, lambda message: {"text": message.text})


class AppriseSink:
    """Any service apprise knows (Telegram, e-mail, PagerDuty, Teams, …): its URLs, separated
    by spaces or commas, held as a secret. apprise is imported when the sink is made (it is
    only needed by deployments that declare one) and its own logger is kept at WARNING so a
    debug configuration cannot print the URLs."""

    def __init__(self, urls: str | SecretStr, name: str = "apprise") -> None:
        import apprise

        self.name = name
        logging.getLogger("apprise").setLevel(logging.WARNING)
        secret = urls if isinstance(urls, SecretStr) else SecretStr(urls)
        self._apprise = apprise.Apprise()
        self._types = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
                       "critical": apprise.NotifyType.FAILURE}
        if not self._apprise.add(secret.get_secret_value()):
            raise ValueError(f"{name}: apprise does not understand one of the URLs")

    def __repr__(self) -> str:
        return f"AppriseSink(name={self.name!r}, urls=***)"

    def send(self, message: AlertMessage) -> None:
        alert = message.alert
        try:
            ok = self._apprise.notify(body=message.text, title=f"peak {alert.code}",
                                      notify_type=self._types[alert.severity])
        except Exception as exc:  # a plugin's failure must not stop the worker
            raise SinkError(f"{self.name}: {type(exc).__name__}") from None
        if not ok:
            raise SinkError(f"{self.name}: a service refused or could not be reached")
