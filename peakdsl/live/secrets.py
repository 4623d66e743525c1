"""Exchange credentials: from the environment only, held as secrets, redacted from every log.

Variable names bind a key to its mode and account, so testnet keys can never be loaded for
live nor the reverse:

==================  ==============================  ================================
account             testnet                         live
==================  ==============================  ================================
``default``         ``PEAK_TESTNET_API_KEY``        ``PEAK_LIVE_API_KEY``
                    ``PEAK_TESTNET_API_SECRET``     ``PEAK_LIVE_API_SECRET``
``main`` (named)    ``PEAK_MAIN_TESTNET_API_KEY``   ``PEAK_MAIN_LIVE_API_KEY``
                    ``PEAK_MAIN_TESTNET_API_SECRET``  ``PEAK_MAIN_LIVE_API_SECRET``
==================  ==============================  ================================

Values are held as ``pydantic.SecretStr``: ``repr``, ``str`` and JSON dumps show ``***``-style
masks, never the value. Every loaded value is registered with ``REDACTOR``, a logging filter
that replaces it by ``***`` in each record's message, arguments and traceback, installed on
the ``peakdsl`` logger, on every handler of the root logger and as the log record factory (so
handlers added later are covered too). Paper sessions never call the loader (the gate
guarantees it).

Refusals: E001 (account name), E008 (missing), E009 (malformed), E010 (the same key for testnet
and live: one of them is the wrong key).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from .gate import KeyedMode, keyed_mode, refuse

DEFAULT_ACCOUNT = "default"
ACCOUNT = re.compile(r"[a-z][a-z0-9_]{0,31}")
RESERVED_ACCOUNTS = frozenset({"paper", "testnet", "live"})  # would read like a mode
MIN_LENGTH = 8  # a shorter key is a typo (E009), and redacting it would blank half of every log
MASK = "***"
WHERE = "<env>"


@dataclass(frozen=True)
class Credentials:
    """One account's API key and secret for one mode; ``repr`` shows neither."""

    mode: KeyedMode
    account: str
    api_key: SecretStr
    api_secret: SecretStr

    def ccxt_config(self) -> dict[str, str]:
        """The values as a ccxt client takes them (``apiKey``, ``secret``): for the client's
        constructor only, never to be logged or stored."""
        return {"apiKey": self.api_key.get_secret_value(),
                "secret": self.api_secret.get_secret_value()}


def valid_account(account: str) -> str:
    """``account`` when it can name environment variables, else E001."""
    if account == DEFAULT_ACCOUNT or (ACCOUNT.fullmatch(account)
                                      and account not in RESERVED_ACCOUNTS):
        return account
    raise refuse("E001", f"--account {account!r}: an account is a lower-case name "
                 "(letters, digits, _; at most 32) other than paper, testnet and live",
                 "--account", help="for example --account main reads PEAK_MAIN_LIVE_API_KEY")


def variable_names(mode: KeyedMode, account: str = DEFAULT_ACCOUNT) -> tuple[str, str]:
    """The key's and the secret's environment variable for ``mode`` and ``account``."""
    infix = "" if valid_account(account) == DEFAULT_ACCOUNT else f"{account.upper()}_"
    prefix = f"PEAK_{infix}{keyed_mode(mode).upper()}_API_"
    return prefix + "KEY", prefix + "SECRET"


def load_credentials(mode: KeyedMode, account: str = DEFAULT_ACCOUNT,
                     env: Mapping[str, str] | None = None) -> Credentials:
    """The credentials of ``account`` for ``mode`` from ``env`` (default ``os.environ``),
    registered with ``REDACTOR`` (installed) before they are returned."""
    source = os.environ if env is None else env
    names = variable_names(mode, account)
    values = [source.get(name) or "" for name in names]
    REDACTOR.register(*values)  # even a lone or malformed value is a secret
    install_redaction()
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise refuse("E008", f"no {mode} credentials for account {account}: "
                     f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
                     WHERE, help=f"export {' and '.join(names)} (the {mode} API key and "
                     "secret of this account) in the environment that runs peak")
    _check_form(names, values)
    _check_distinct(mode, account, values[0], source)
    key, secret = (SecretStr(v) for v in values)
    return Credentials(keyed_mode(mode), account, key, secret)


def _check_form(names: tuple[str, str], values: list[str]) -> None:
    """E009 for a value with blanks or control characters, or one too short to be real."""
    bad = [n for n, v in zip(names, values, strict=True)
           if len(v) < MIN_LENGTH or not v.isprintable() or any(c.isspace() for c in v)]
    if bad:
        raise refuse("E009", f"{' and '.join(bad)}: not an API credential (shorter than "
                     f"{MIN_LENGTH} characters, or with blanks or control characters)", WHERE,
                     help="copy the value again from the exchange's API management page, "
                     "without quotes or surrounding spaces")


def _check_distinct(mode: KeyedMode, account: str, key: str,
                    source: Mapping[str, str]) -> None:
    """E010 when the other mode's key variable of this account holds the same key."""
    other: KeyedMode = "live" if mode == "testnet" else "testnet"
    other_name = variable_names(other, account)[0]
    if source.get(other_name) == key:
        mine = variable_names(mode, account)[0]
        raise refuse("E010", f"{mine} and {other_name} hold the same API key", WHERE,
                     help="testnet and live keys are issued separately (the testnet's own "
                     "site issues testnet keys); set each variable to its own key")


class RedactingFilter(logging.Filter):
    """Replaces every registered value by ``***`` in a record's message (with its arguments
    merged in), its traceback text and its stack text. Records without a registered value
    pass unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()  # longest first: a value inside another goes too

    def register(self, *values: str) -> None:
        """Redact ``values`` from now on (empty strings are ignored)."""
        with self._lock:
            known = set(self._values) | {v for v in values if v}
            self._values = tuple(sorted(known, key=lambda v: (-len(v), v)))

    def redact(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return text

    def leaks(self, text: str) -> bool:
        return any(value in text for value in self._values)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._values:
            self._message(record)
            self._texts(record)
        return True

    def _message(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed call: keep what there is, redacted
            text = f"{record.msg} {record.args!r}"
        if self.leaks(text):
            record.msg, record.args = self.redact(text), ()

    def _texts(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if self.leaks(text):
                record.exc_text = text  # a formatter uses this text instead of exc_info
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)


REDACTOR = RedactingFilter()


class _RedactingFactory:
    """A log record factory that redacts each record as it is made: it also covers handlers
    added after ``install_redaction`` and loggers outside ``peakdsl`` (ccxt's)."""

    def __init__(self, inner: Callable[..., logging.LogRecord],
                 redactor: RedactingFilter) -> None:
        self.inner, self.redactor = inner, redactor

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        self.redactor.filter(record)
        return record


def install_redaction(redactor: RedactingFilter = REDACTOR) -> RedactingFilter:
    """Put ``redactor`` on the ``peakdsl`` logger, its handlers, the root logger's handlers
    and the log record factory (idempotent). A logger's filter does not see records of its
    child loggers and a handler's filter only its own records; the factory sees every record
    made from now on, whichever handler later emits it."""
    package = logging.getLogger("peakdsl")
    for target in (package, *package.handlers, *logging.getLogger().handlers):
        if redactor not in target.filters:
            target.addFilter(redactor)
    factory = logging.getLogRecordFactory()
    if not (isinstance(factory, _RedactingFactory) and factory.redactor is redactor):
        logging.setLogRecordFactory(_RedactingFactory(factory, redactor))
    return redactor


__all__ = ["DEFAULT_ACCOUNT", "REDACTOR", "Credentials", "RedactingFilter",
           "install_redaction", "load_credentials", "valid_account", "variable_names"]
