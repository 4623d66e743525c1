"""The ccxt execution adapter: one exchange account, spot only, failing closed.

The one rule that matters: ``create_order`` is sent **exactly once** per client order id. A
timeout or a network error after sending says nothing about whether the exchange took the
order, so the submit is ``UNKNOWN`` and ``resolve`` asks the exchange by client order id:
found → the caller adopts the order; "does not exist" on every one of N queries → it never
arrived, the caller marks it rejected and a resend gets a *new* client id (``resend_id``);
anything in between stays unresolved — no guessing. Retrying ``create_order`` itself is how
bots double their position after a slow answer.

Read-only calls (markets, balances, orders, trades, candles) are retried on transient errors
with tenacity: bounded attempts, exponential backoff, and a 429's ``Retry-After`` honoured.
What each ccxt error means is a table (``ERROR_OUTCOMES``), not an if-chain; the runner
counts consecutive errors and trips the kill switch on ``Outcome.FATAL``. Everything the
operator must see is a coded diagnostic (E030–E036).

Credentials arrive as ``pydantic.SecretStr`` and are unwrapped only when the ccxt client is
built (ccxt keeps them as plain strings inside; nothing here prints or logs them, and the
client's request logger, which would log the API-key header at DEBUG, is silenced).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from ..lang.diagnostics import Diagnostic, diag, did_you_mean

if TYPE_CHECKING:
    from .endpoints import Endpoint

T = TypeVar("T")
Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")  # Binance's rule, kept portable
RESEND = re.compile(r"^(?P<root>.*)_r(?P<n>\d+)$")
QUERY = re.compile(r"\?\S*")  # signed query strings (timestamp, signature) are not shown
COMMON_OPTIONS: dict[str, Any] = {"defaultType": "spot"}
SPOT_OPTIONS: dict[str, dict[str, Any]] = {  # exchange id → options that keep ccxt on spot
    "binance": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                "fetchMargins": False, "warnOnFetchOpenOrdersWithoutSymbol": False},
}
URL_KEYS = ("api", "test", "demo", "apiBackup")  # every URL table a client may switch to


class Outcome(str, Enum):
    """What an exchange error means for the caller."""

    TRANSIENT = "transient"  # retry reads; a submit is UNKNOWN
    BACKOFF = "backoff"      # rate limited: wait (Retry-After) then as TRANSIENT
    REJECTED = "rejected"    # the exchange refused this request; nothing happened
    RESOLVE = "resolve"      # duplicate client id: look the order up by client id
    NOT_FOUND = "not_found"  # the order does not exist (fetch, cancel)
    FATAL = "fatal"          # stop: kill switch


ERROR_OUTCOMES: dict[str, Outcome] = {  # ccxt error class → outcome; nearest class wins
    "RequestTimeout": Outcome.TRANSIENT,
    "NetworkError": Outcome.TRANSIENT,
    "ExchangeNotAvailable": Outcome.TRANSIENT,
    "OnMaintenance": Outcome.TRANSIENT,
    "InvalidNonce": Outcome.TRANSIENT,
    "BadResponse": Outcome.TRANSIENT,
    "CancelPending": Outcome.TRANSIENT,
    "OperationFailed": Outcome.TRANSIENT,
    "DDoSProtection": Outcome.BACKOFF,
    "RateLimitExceeded": Outcome.BACKOFF,
    "AuthenticationError": Outcome.FATAL,
    "PermissionDenied": Outcome.FATAL,
    "AccountSuspended": Outcome.FATAL,
    "AccountNotEnabled": Outcome.FATAL,
    "ManualInteractionNeeded": Outcome.FATAL,  # every later order would fail the same way
    "RestrictedLocation": Outcome.FATAL,
    "InsufficientFunds": Outcome.REJECTED,
    "InvalidOrder": Outcome.REJECTED,
    "BadRequest": Outcome.REJECTED,
    "BadSymbol": Outcome.REJECTED,
    "OperationRejected": Outcome.REJECTED,
    "DuplicateOrderId": Outcome.RESOLVE,
    "OrderNotFound": Outcome.NOT_FOUND,
}
BINANCE_BAD_KEY = "Invalid API-key, IP, or permissions for action"
MESSAGE_OUTCOMES: tuple[tuple[str, Outcome], ...] = (  # checked first: ccxt cannot tell these
    # Binance -2010 "Duplicate order sent." arrives as InvalidOrder
    ("Duplicate order sent", Outcome.RESOLVE),
    # Binance -2015 after one successful signed call arrives as DDoSProtection (ccxt reads it
    # as a temporary ban); a revoked key looks the same — fail closed
    (BINANCE_BAD_KEY, Outcome.FATAL),
)
AUTH_CLASSES = frozenset({"AuthenticationError", "PermissionDenied", "AccountSuspended",
                          "AccountNotEnabled"})

HELP = {
    "E031": "check the API key and secret in the environment, the key's permissions (spot "
            "trading on, withdrawals off) and its IP allow-list; a live session stops "
            "sending orders (kill switch)",
    "E032": "the exchange or the network is down, or the exchange is rate-limiting this "
            "account; nothing more is sent until it answers again",
    "E033": "the order was not placed; check the balance and the quantity and price against "
            "the market's rules",
    "E034": "the order never reached the exchange: it counts as rejected, and a resend uses "
            "a new client order id",
    "E035": "peak cannot tell whether it is safe to go on, so a live session stops sending "
            "orders (kill switch); check the exchange's status page and the session log",
}


class VenueError(Exception):
    """A venue call failed for good; ``diagnostics`` says why, ``outcome`` what it means."""

    def __init__(self, diagnostics: Iterable[Diagnostic],
                 outcome: Outcome = Outcome.FATAL) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.outcome = outcome
        super().__init__("; ".join(f"{d.code} {d.message}" for d in self.diagnostics)
                         or "venue error")


def classify(exc: BaseException) -> Outcome:
    """The outcome of an exception: message rules, then the nearest ccxt class in the table;
    anything unknown (including non-ccxt exceptions) is FATAL."""
    text = str(exc)
    for needle, outcome in MESSAGE_OUTCOMES:
        if needle in text:
            return outcome
    for cls in type(exc).__mro__:
        if cls.__name__ in ERROR_OUTCOMES and cls.__module__.startswith("ccxt"):
            return ERROR_OUTCOMES[cls.__name__]
    return Outcome.FATAL


def is_auth_error(exc: BaseException) -> bool:
    """Refused credentials (a class of the AuthenticationError family, or Binance -2015)."""
    named = any(cls.__name__ in AUTH_CLASSES for cls in type(exc).__mro__)
    return named or BINANCE_BAD_KEY in str(exc)


def _shown(exc: BaseException) -> str:
    """The exception for a diagnostic: its class and message, query strings cut, ≤ 200 chars."""
    return f"{type(exc).__name__}: {QUERY.sub('?…', str(exc))[:200]}"


# --- the client --------------------------------------------------------------------------
def make_client(exchange_id: str, *, base_url: str | None = None, sandbox: bool = False,
                api_key: SecretStr | None = None, secret: SecretStr | None = None,
                timeout_ms: int = 10_000) -> Any:
    """A ccxt client for spot trading on ``exchange_id``: its testnet (``sandbox``) or live
    URLs, or — with ``base_url`` — every REST URL on that host (the loopback exchange in tests
    and drills). The URL set comes from ``endpoints.resolve_endpoint`` for mode testnet or
    live, so its refusals apply here too: E002 unknown exchange, E003 malformed URL, E004
    unknown host, E005 a testnet URL for a live client or the reverse, E006 no testnet.
    A session builds its client with ``client_for(authorization.endpoint, …)`` instead: the
    URL set the gate approved for the session's mode.
    """
    from .endpoints import resolve_endpoint

    endpoint = resolve_endpoint(exchange_id, "testnet" if sandbox else "live", base_url)
    return client_for(endpoint, api_key, secret, timeout_ms)


def client_for(endpoint: Endpoint, api_key: SecretStr | None = None,
               secret: SecretStr | None = None, timeout_ms: int = 10_000) -> Any:
    """A ccxt client on exactly the URL set of ``endpoint`` (what the gate authorized).

    The set replaces every URL table of the client (live, testnet, demo and their backups),
    so no later mode switch can reach another host. A loopback client ignores proxy settings
    from the environment and does no client-side throttling (the loopback does not need it,
    and ccxt's throttle sleeps on the wall clock).
    """
    import ccxt  # type: ignore[import-untyped]

    loopback = endpoint.kind == "loopback"
    client = getattr(ccxt, endpoint.exchange)(
        _config(endpoint.exchange, not loopback, api_key, secret, timeout_ms))
    client.logger = _quiet_logger()
    if endpoint.mode == "testnet":
        client.set_sandbox_mode(True)  # ccxt's own testnet behaviour; URLs replaced below
    for key in URL_KEYS:
        client.urls[key] = endpoint.api_urls()
    if loopback:
        client.session.trust_env = False  # HTTP(S)_PROXY must not reroute the loopback
    return client


def _config(exchange_id: str, throttle: bool, api_key: SecretStr | None,
            secret: SecretStr | None, timeout_ms: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "enableRateLimit": throttle, "timeout": int(timeout_ms),
        "options": {**COMMON_OPTIONS, **SPOT_OPTIONS.get(exchange_id, {})}}
    if api_key is not None:
        config["apiKey"] = api_key.get_secret_value()
    if secret is not None:
        config["secret"] = secret.get_secret_value()
    return config


def _quiet_logger() -> logging.Logger:
    """ccxt logs request headers (the API key) at DEBUG: its logger here never does."""
    logger = logging.getLogger("peakdsl.live.venue.ccxt")
    logger.setLevel(logging.INFO)
    return logger


def client_urls(client: Any) -> list[str]:
    """Every REST URL the client may call (for the never-leave-loopback check)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and "://" in value:
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for key in URL_KEYS:
        walk(client.urls.get(key))
    return found


# --- records -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MarketRules:
    """The exchange's precision and minimums for one market (None: the exchange sets none)."""

    symbol: str
    qty_step: Decimal | None
    price_tick: Decimal | None
    min_qty: Decimal | None
    min_notional: Decimal | None


@dataclass(frozen=True, slots=True)
class Rounded:
    """A quantity rounded down to the market's step; 0 with the reason when too small."""

    qty: Decimal
    reason: str = ""
    diagnostic: Diagnostic | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    qty: Decimal
    client_id: str
    type: OrderType = "market"
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    """An order as the exchange reports it (ccxt's unified statuses: open, closed, …)."""

    order_id: str
    client_id: str | None
    symbol: str
    side: str
    type: str
    status: str
    amount: Decimal | None
    filled: Decimal
    average: Decimal | None
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    order_id: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str | None
    timestamp: int


@dataclass(frozen=True, slots=True)
class Balance:
    free: Decimal
    used: Decimal
    total: Decimal


class SubmitStatus(str, Enum):
    ACCEPTED = "accepted"  # the exchange answered with the order
    REJECTED = "rejected"  # the exchange (or the pre-check) refused it: nothing was placed
    UNKNOWN = "unknown"    # no answer, or a duplicate id: resolve(client_id) decides
    FATAL = "fatal"        # stop: kill switch


class ResolveState(str, Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"    # "does not exist" on every query
    UNRESOLVED = "unresolved"  # errors kept the answer away: still unknown
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class SubmitResult:
    status: SubmitStatus
    client_id: str
    order: ExchangeOrder | None = None
    outcome: Outcome | None = None
    error: str = ""
    diagnostic: Diagnostic | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    state: ResolveState
    client_id: str
    queries: int
    order: ExchangeOrder | None = None
    diagnostic: Diagnostic | None = None


SUBMIT_STATUS: dict[Outcome, SubmitStatus] = {  # after create_order raised
    Outcome.TRANSIENT: SubmitStatus.UNKNOWN,
    Outcome.BACKOFF: SubmitStatus.UNKNOWN,    # fail closed: 429 "should" mean not taken
    Outcome.RESOLVE: SubmitStatus.UNKNOWN,
    Outcome.NOT_FOUND: SubmitStatus.UNKNOWN,
    Outcome.REJECTED: SubmitStatus.REJECTED,
    Outcome.FATAL: SubmitStatus.FATAL,
}
RETRIED = frozenset({Outcome.TRANSIENT, Outcome.BACKOFF})


def resend_id(client_id: str) -> str:
    """The client id for a resend after NOT_FOUND: ``X`` → ``X_r1`` → ``X_r2`` …"""
    match = RESEND.match(client_id)
    new = f"{match['root']}_r{int(match['n']) + 1}" if match else f"{client_id}_r1"
    if not CLIENT_ID.match(new):
        raise ValueError(f"client order id {new!r} is longer than 36 characters; keep "
                         "generated ids to 32 so that resends fit")
    return new


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _order(raw: Mapping[str, Any]) -> ExchangeOrder:
    info = raw.get("info") or {}
    client_id = info.get("origClientOrderId") or raw.get("clientOrderId")  # a cancel's own id
    return ExchangeOrder(str(raw.get("id")), client_id, str(raw.get("symbol")),
                         str(raw.get("side")), str(raw.get("type")), str(raw.get("status")),
                         _dec(raw.get("amount")), _dec(raw.get("filled")) or Decimal(0),
                         _dec(raw.get("average")), _dec(raw.get("price")))


def _fill(raw: Mapping[str, Any]) -> Fill:
    fee = raw.get("fee") or {}
    return Fill(str(raw.get("id")), str(raw.get("order")), str(raw.get("symbol")),
                str(raw.get("side")), _dec(raw.get("price")) or Decimal(0),
                _dec(raw.get("amount")) or Decimal(0), _dec(fee.get("cost")) or Decimal(0),
                fee.get("currency"), int(raw.get("timestamp") or 0))


def _step(precision: Any, mode: int) -> Decimal | None:
    """A precision as a step: TICK_SIZE is one already, DECIMAL_PLACES n is 10**-n."""
    from ccxt.base.decimal_to_precision import (  # type: ignore[import-untyped]
        DECIMAL_PLACES,
        TICK_SIZE,
    )

    if precision is None:
        return None
    table = {TICK_SIZE: lambda p: Decimal(str(p)),
             DECIMAL_PLACES: lambda p: Decimal(1).scaleb(-int(p))}
    if mode not in table:
        raise ValueError("precision in significant digits")
    return table[mode](precision)


# --- the venue ---------------------------------------------------------------------------
class Venue:
    """One exchange account through a ccxt client (see the module docstring)."""

    def __init__(self, client: Any, *, read_attempts: int = 4, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, resolve_attempts: int = 3,
                 resolve_delay_s: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if min(read_attempts, resolve_attempts) < 1:
            raise ValueError("read_attempts and resolve_attempts must be at least 1")
        self.client = client
        self.exchange_id: str = str(client.id)
        self.where = f"<{self.exchange_id}>"
        self.read_attempts, self.backoff_s = read_attempts, backoff_s
        self.max_backoff_s = max_backoff_s
        self.resolve_attempts, self.resolve_delay_s = resolve_attempts, resolve_delay_s
        self.sleep = sleep

    # --- markets ----------------------------------------------------------------------
    def load(self) -> None:
        """Load the exchange's markets (retried); E031/E032/E035 when it cannot."""
        self._read("load markets", self.client.load_markets)

    def lists(self, symbol: str) -> bool:
        """Whether the exchange has a market ``symbol`` (candles to read, not necessarily
        an account to trade it in)."""
        if not getattr(self.client, "markets", None):
            self.load()
        return symbol in self.client.markets

    def _market(self, symbol: str) -> Mapping[str, Any]:
        if not getattr(self.client, "markets", None):
            self.load()
        market: Mapping[str, Any] | None = self.client.markets.get(symbol)
        if market is None or not market.get("spot", False):
            spot = [s for s, m in self.client.markets.items() if m.get("spot")]
            raise VenueError([diag("E030", f"{self.exchange_id} has no spot market {symbol}",
                                   self.where, help=did_you_mean(symbol, spot)
                                   or "check the symbol on the exchange (BASE/QUOTE)")],
                             Outcome.REJECTED)
        return market

    def market_rules(self, symbol: str) -> MarketRules:
        """Step, tick and minimums from ccxt's market data; E030 for an unknown market."""
        market = self._market(symbol)
        precision, limits = market.get("precision") or {}, market.get("limits") or {}
        mode = int(self.client.precisionMode)
        try:
            qty_step = _step(precision.get("amount"), mode)
            tick = _step(precision.get("price"), mode)
        except ValueError as exc:
            raise VenueError([diag("E035", f"{self.exchange_id} states {symbol}'s precision "
                                   f"as {exc}, which peak cannot round to", self.where,
                                   help=HELP["E035"])]) from None
        return MarketRules(symbol, qty_step, tick,
                           _dec((limits.get("amount") or {}).get("min")),
                           _dec((limits.get("cost") or {}).get("min")))

    def round_qty_down(self, symbol: str, qty: Decimal | float | str,
                       price: Decimal | float | str) -> Rounded:
        """``qty`` rounded DOWN to the step (never up); 0 with E036 when the result is below
        the minimum quantity or, at ``price``, below the minimum notional."""
        rules = self.market_rules(symbol)
        wanted, at = Decimal(str(qty)), Decimal(str(price))
        rounded = (wanted // rules.qty_step) * rules.qty_step if rules.qty_step else wanted
        rounded = max(rounded, Decimal(0))
        checks = (
            (rounded <= 0, "nothing is left to trade"),
            (rules.min_qty is not None and rounded < rules.min_qty,
             f"below the minimum quantity {rules.min_qty}"),
            (rules.min_notional is not None and rounded * at < rules.min_notional,
             f"its notional {rounded * at:f} at {at:f} is below the minimum notional "
             f"{rules.min_notional}"),
        )
        reason = next((why for wrong, why in checks if wrong), None)
        if reason is None:
            return Rounded(rounded)
        text = f"{symbol}: quantity {wanted:f} rounds down to {rounded:f}: {reason}"
        return Rounded(Decimal(0), reason, diag(
            "E036", text, self.where, help="the order is skipped; size positions larger, or "
            "trade a market with a smaller minimum"))

    # --- orders -----------------------------------------------------------------------
    def submit(self, order: OrderRequest) -> SubmitResult:
        """Send ``create_order`` exactly once (never retried); see the module docstring."""
        refused = self._precheck(order)
        if refused is not None:
            return refused
        price = float(order.price) if order.price is not None else None
        try:
            raw = self.client.create_order(order.symbol, order.type, order.side,
                                           float(order.qty), price,
                                           {"clientOrderId": order.client_id})
        except Exception as exc:
            return self._failed_submit(order, exc)
        return SubmitResult(SubmitStatus.ACCEPTED, order.client_id, _order(raw))

    def _precheck(self, order: OrderRequest) -> SubmitResult | None:
        """Refuse locally what must never be sent: a bad client id, an unknown market."""
        if not CLIENT_ID.match(order.client_id):
            return SubmitResult(SubmitStatus.REJECTED, order.client_id,
                                outcome=Outcome.REJECTED, error="client id", diagnostic=diag(
                                    "E033", f"order {order.client_id!r} not sent: a client "
                                    "order id is 1 to 36 letters, digits, _ or -",
                                    self.where, help=HELP["E033"]))
        try:
            self._market(order.symbol)
        except VenueError as exc:
            fatal = exc.outcome is Outcome.FATAL  # else nothing was sent: a rejection
            return SubmitResult(SubmitStatus.FATAL if fatal else SubmitStatus.REJECTED,
                                order.client_id, outcome=exc.outcome,
                                error="market", diagnostic=exc.diagnostics[0])
        return None

    def _failed_submit(self, order: OrderRequest, exc: Exception) -> SubmitResult:
        outcome = classify(exc)
        status = SUBMIT_STATUS[outcome]
        shown = _shown(exc)
        diagnostic = None
        if status is SubmitStatus.REJECTED:
            diagnostic = diag("E033", f"{self.exchange_id} rejected order {order.client_id}: "
                              f"{shown}", self.where, help=HELP["E033"])
        elif status is SubmitStatus.FATAL:
            diagnostic = self._fatal(f"order {order.client_id}", exc)
        return SubmitResult(status, order.client_id, outcome=outcome,
                            error=type(exc).__name__, diagnostic=diagnostic)

    def resolve(self, symbol: str, client_id: str, attempts: int | None = None) -> Resolution:
        """Ask the exchange for the order by client id, up to ``attempts`` times."""
        tries = self.resolve_attempts if attempts is None else attempts
        if tries < 1:  # zero queries must never read as "not found"
            raise ValueError("resolve needs at least one query")
        not_found, last = 0, None
        for query in range(1, tries + 1):
            try:
                raw = self.client.fetch_order(None, symbol, {"clientOrderId": client_id})
                return Resolution(ResolveState.FOUND, client_id, query, _order(raw))
            except Exception as exc:
                outcome, last = classify(exc), exc
                if outcome is Outcome.FATAL:
                    return Resolution(ResolveState.FATAL, client_id, query,
                                      diagnostic=self._fatal(f"looking up {client_id}", exc))
                not_found += outcome is Outcome.NOT_FOUND
                if query < tries:
                    self.sleep(self._pause(outcome, query, self.resolve_delay_s))
        return self._unfound(client_id, tries, not_found, last)

    def _unfound(self, client_id: str, tries: int, not_found: int,
                 last: Exception | None) -> Resolution:
        if not_found == tries:
            return Resolution(ResolveState.NOT_FOUND, client_id, tries, diagnostic=diag(
                "E034", f"order {client_id} not found on {self.exchange_id} after {tries} "
                f"quer{'ies' if tries != 1 else 'y'}", self.where, help=HELP["E034"]))
        return Resolution(ResolveState.UNRESOLVED, client_id, tries, diagnostic=diag(
            "E032", f"{self.exchange_id} unreachable: looking up order {client_id} failed "
            f"{tries - not_found} of {tries} times, last with "
            f"{_shown(last) if last else 'no answer'}", self.where, help=HELP["E032"]))

    def cancel(self, symbol: str, client_id: str) -> ExchangeOrder | None:
        """Cancel by client id (retried: cancelling twice is harmless); None when the order
        is not open (filled, cancelled or unknown) — ``resolve`` tells which."""
        def call() -> ExchangeOrder | None:
            try:
                return _order(self.client.cancel_order(None, symbol,
                                                       {"clientOrderId": client_id}))
            except Exception as exc:
                if classify(exc) is Outcome.NOT_FOUND:
                    return None
                raise
        return self._read(f"cancel {client_id}", call)

    # --- reads ------------------------------------------------------------------------
    def open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        rows = self._read("fetch open orders", lambda: self.client.fetch_open_orders(symbol))
        return [_order(r) for r in rows]

    def balances(self) -> dict[str, Balance]:
        raw = self._read("fetch balances", self.client.fetch_balance)
        totals: Mapping[str, Any] = raw.get("total") or {}
        return {asset: Balance(_dec(raw["free"].get(asset)) or Decimal(0),
                               _dec(raw["used"].get(asset)) or Decimal(0),
                               _dec(total) or Decimal(0))
                for asset, total in sorted(totals.items())}

    def trades_since(self, symbol: str, since_ms: int | None = None,
                     from_id: str | None = None, page: int = 1000,
                     max_pages: int = 20) -> list[Fill]:
        """Own trades from ``from_id`` (inclusive) or ``since_ms``, oldest first, at most
        ``page * max_pages`` of them: call again from the last id for more. Prefer ``from_id``
        (the last trade id seen + 1): Binance limits time-window queries to 24 hours."""
        fills: list[Fill] = []
        params = {"fromId": from_id} if from_id is not None else {}
        since = None if from_id is not None else since_ms
        for _ in range(max_pages):
            rows = self._read("fetch trades", partial(self.client.fetch_my_trades, symbol,
                                                      since, page, dict(params)))
            fills += [_fill(r) for r in rows]
            if len(rows) < page:
                break
            params, since = {"fromId": str(int(rows[-1]["id"]) + 1)}, None
        return fills

    def fetch_ohlcv(self, symbol: str, timeframe: str, since_ms: int | None = None,
                    limit: int | None = None) -> list[list[float]]:
        rows: list[list[float]] = self._read("fetch candles", lambda: self.client.fetch_ohlcv(
            symbol, timeframe, since_ms, limit))
        return rows

    # --- retries and errors -----------------------------------------------------------
    def _read(self, what: str, call: Callable[[], T]) -> T:
        """``call`` retried on TRANSIENT and BACKOFF errors; VenueError when it gives up."""
        retrying = Retrying(stop=stop_after_attempt(self.read_attempts), wait=self._wait,
                            retry=retry_if_exception(lambda e: classify(e) in RETRIED),
                            sleep=self.sleep, reraise=True)
        try:
            return retrying(call)
        except VenueError:
            raise
        except Exception as exc:
            raise self._gave_up(what, exc) from None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        outcome = classify(exc) if exc is not None else Outcome.TRANSIENT
        return self._pause(outcome, state.attempt_number, self.backoff_s)

    def _pause(self, outcome: Outcome, attempt: int, base: float) -> float:
        """Retry-After for a rate limit when the exchange sent one, else exponential."""
        after = self._retry_after() if outcome is Outcome.BACKOFF else None
        if after is not None:
            return min(after, self.max_backoff_s)
        factor = 2.0 if outcome is Outcome.BACKOFF else 1.0
        return float(min(self.max_backoff_s, factor * base * 2 ** (attempt - 1)))

    def _retry_after(self) -> float | None:
        headers = getattr(self.client, "last_response_headers", None) or {}
        value = next((v for k, v in dict(headers).items() if k.lower() == "retry-after"), None)
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:  # an HTTP date: fall back to exponential backoff
            return None

    def _gave_up(self, what: str, exc: Exception) -> VenueError:
        outcome = classify(exc)
        if outcome in RETRIED:
            return VenueError([diag(
                "E032", f"{self.exchange_id} unreachable: {what} failed after "
                f"{self.read_attempts} attempts: {_shown(exc)}", self.where,
                help=HELP["E032"])], outcome)
        return VenueError([self._fatal(what, exc)], Outcome.FATAL)

    def _fatal(self, what: str, exc: Exception) -> Diagnostic:
        if is_auth_error(exc):
            return diag("E031", f"{self.exchange_id} refused the credentials ({what}): "
                        f"{_shown(exc)}", self.where, help=HELP["E031"])
        return diag("E035", f"{self.exchange_id}: {what} failed: {_shown(exc)}", self.where,
                    help=HELP["E035"])
