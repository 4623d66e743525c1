"""The typed rows of the live state store, its order state machine and its client order ids.

Everything here is pure: no database, no clock. ``store.LiveStore`` reads and writes these
rows; the runner builds the input rows (``Intent``, ``OrderRequest``, ``Fill``) and gets rows
back — never sqlite3 rows. Timestamps and bar times are integers, milliseconds since the Unix
epoch (UTC), always passed in by the caller, so the same calls give the same database.

Validation here guards against the *runner's* bugs (a NaN quantity, an unknown status): it
raises ``ValueError`` / ``TypeError``. Problems in the outside world (an exchange reporting a
fill for an order nobody sent) are the store's to refuse with coded diagnostics.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args

import numpy as np

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
OrderStatus = Literal["new", "submitting", "unknown", "open", "partially_filled", "cancelling",
                      "filled", "cancelled", "rejected", "expired"]
RiskDecision = Literal["approved", "reduced", "denied"]
SessionStatus = Literal["running", "stopped", "halted", "crashed"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]

SIDES: tuple[Side, ...] = get_args(Side)
ORDER_TYPES: tuple[OrderType, ...] = get_args(OrderType)
ORDER_STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)
RISK_DECISIONS: tuple[RiskDecision, ...] = get_args(RiskDecision)
SESSION_STATUSES: tuple[SessionStatus, ...] = get_args(SessionStatus)
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
INTENT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "max_hold", "flatten")

# The order state machine. ``submitting`` is committed BEFORE the exchange is called
# (write-ahead); a request whose answer was lost is ``unknown`` until it is resolved by its
# client order id. ``cancelling`` may still fill (the cancel raced a trade) or fall back to
# live when the exchange refused the cancel. Terminal states have no way out.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    "new": frozenset({"submitting", "cancelled"}),
    "submitting": frozenset({"open", "partially_filled", "filled", "rejected", "expired",
                             "unknown"}),
    "unknown": frozenset({"open", "partially_filled", "filled", "rejected", "cancelled",
                          "expired"}),
    "open": frozenset({"partially_filled", "filled", "cancelling", "cancelled", "expired"}),
    "partially_filled": frozenset({"filled", "cancelling", "cancelled", "expired"}),
    "cancelling": frozenset({"cancelled", "filled", "expired", "open", "partially_filled"}),
    "filled": frozenset(),
    "cancelled": frozenset(),
    "rejected": frozenset(),
    "expired": frozenset(),
}
TERMINAL: frozenset[OrderStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# the statuses an order may be recorded with: our own (before and while sending) and an
# exchange order adopted by reconciliation
INSERT_STATUSES: frozenset[OrderStatus] = frozenset(
    {"new", "submitting", "open", "partially_filled"})
# current status → (status after a fill that leaves some quantity open, after the last one).
# A fill may arrive after the order was seen filled / cancelled / expired (trades are fetched
# separately from order states); it then changes quantities, not the status. No entry: a fill
# is impossible (``new`` was never sent, ``rejected`` never existed) and refused.
FILL_STATUS: dict[OrderStatus, tuple[OrderStatus, OrderStatus]] = {
    "submitting": ("partially_filled", "filled"),
    "unknown": ("partially_filled", "filled"),
    "open": ("partially_filled", "filled"),
    "partially_filled": ("partially_filled", "filled"),
    "cancelling": ("cancelling", "filled"),
    "filled": ("filled", "filled"),
    "cancelled": ("cancelled", "cancelled"),
    "expired": ("expired", "expired"),
}
REL_TOL = 1e-9  # relative tolerance of quantity sums: far below any exchange's lot step
CLIENT_ID_PREFIX = "pk"
CLIENT_ID_CHARS = 32  # base32 characters of sha256 after the prefix: 160 bits
WORD = re.compile(r"^[a-z][a-z0-9_]*$")


class IllegalTransition(RuntimeError):
    """An order status change the state machine forbids: a bug in the caller, not bad input."""


def can_transition(old: OrderStatus, new: OrderStatus) -> bool:
    """Whether ``old → new`` is allowed; staying in the same status always is (a no-op)."""
    return old == new or new in TRANSITIONS[old]


def client_order_id(session: str, slot: int, bar: int, leg: int, attempt: int) -> str:
    """The exchange-side id of one attempt to send one leg: ``pk`` + 32 base32 characters.

    Deterministic, so a restarted runner finds its orders by id; 34 characters of
    ``[a-z2-7]`` fit Binance's rule (≤ 36 of ``[A-Za-z0-9_-]``). The inputs are encoded as a
    JSON list before hashing, so distinct inputs never share an encoding; 160 bits of sha256
    make a collision of distinct encodings practically impossible. A resend after a
    rejection uses ``attempt + 1`` and so a new id.
    """
    _text("session", session)
    for name, value in (("slot", slot), ("bar", bar), ("leg", leg)):
        _int(name, value)
    if _int("attempt", attempt) < 1:
        raise ValueError(f"attempt counts from 1, not {attempt}")
    key = json.dumps([session, slot, bar, leg, attempt], separators=(",", ":"),
                     ensure_ascii=False)
    digest = base64.b32encode(hashlib.sha256(key.encode("utf-8")).digest()).decode("ascii")
    return CLIENT_ID_PREFIX + digest[:CLIENT_ID_CHARS].lower()


def intent_id(session: str, slot: int, bar: int, leg: int) -> str:
    """``session:slot:bar:leg``: the same decision on the same bar always has the same id."""
    return f"{session}:{slot}:{bar}:{leg}"


# ------------------------------------------------------------------------ validation

def _int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, not {value!r}")
    return int(value)


def _ms(name: str, value: object) -> int:
    ms = _int(name, value)
    if ms < 0:
        raise ValueError(f"{name} is milliseconds since the epoch, not {value!r}")
    return ms


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
    return value


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, not {value!r}")
    return float(value)


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def _member(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def _market(value: object) -> None:
    """A spot market as ccxt names it: ``BASE/QUOTE``."""
    if not isinstance(value, str) or not re.fullmatch(r"[^\s/:]+/[^\s/:]+", value):
        raise ValueError(f"market must be a spot symbol BASE/QUOTE, not {value!r}")


def close_to(a: float, b: float) -> bool:
    """Quantities equal up to float summation noise (``REL_TOL``)."""
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


# ------------------------------------------------------------------------ rows

@dataclass(frozen=True, slots=True)
class Session:
    """One run of the live runner; a restart resumes the same id."""

    id: str
    spec: str
    artifact_sha256: str
    mode: str
    account: str
    exchange: str
    params: dict[str, Any]
    started_at: int
    ended_at: int | None
    status: SessionStatus


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the append-only session log (``session`` is None outside a session)."""

    seq: int
    session: str | None
    at: int
    level: LogLevel
    event: str
    message: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Intent:
    """What the strategy wanted on one bar, and what the risk stage made of it.

    ``qty`` is the quantity asked for, ``approved_qty`` what the risk stage let through (all of
    it when approved, less when reduced, nothing when denied); ``risk_reason`` is the word of
    the limit that cut it (``engine.state.RISK_REASONS``), ``approved`` when none did.
    """

    session: str
    slot: int
    bar: int
    leg: int
    market: str
    side: Side
    qty: float
    approved_qty: float
    decision: RiskDecision
    risk_reason: str
    reason: str
    created_at: int

    def __post_init__(self) -> None:
        _text("session", self.session)
        for name in ("slot", "bar", "leg"):
            _int(name, getattr(self, name))
        _market(self.market)
        _member("side", self.side, SIDES)
        _member("reason", self.reason, INTENT_REASONS)
        _member("decision", self.decision, RISK_DECISIONS)
        _positive("qty", self.qty)
        _non_negative("approved_qty", self.approved_qty)
        _check_decision(self)
        _ms("created_at", self.created_at)

    @property
    def id(self) -> str:
        return intent_id(self.session, self.slot, self.bar, self.leg)

    def client_order_id(self, attempt: int) -> str:
        """The client order id of this intent's ``attempt``-th order."""
        return client_order_id(self.session, self.slot, self.bar, self.leg, attempt)


def _check_decision(intent: Intent) -> None:
    """The approved quantity must agree with the decision word."""
    if not WORD.match(intent.risk_reason):
        raise ValueError(f"risk_reason must be a word, not {intent.risk_reason!r}")
    consistent = {
        "approved": close_to(intent.approved_qty, intent.qty),
        "reduced": 0 < intent.approved_qty < intent.qty,
        "denied": intent.approved_qty == 0,
    }[intent.decision]
    if not consistent:
        raise ValueError(f"a {intent.decision} intent cannot have approved_qty "
                         f"{intent.approved_qty} of {intent.qty}")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as the runner decides it (``intent_id`` None for an adopted exchange order)."""

    client_order_id: str
    intent_id: str | None
    market: str
    side: Side
    type: OrderType
    qty: float
    price: float | None
    attempt: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,36}", self.client_order_id):
            raise ValueError(f"not a client order id: {self.client_order_id!r}")
        if self.intent_id is not None:
            _text("intent_id", self.intent_id)
        _market(self.market)
        _member("side", self.side, SIDES)
        _member("type", self.type, ORDER_TYPES)
        _positive("qty", self.qty)
        if (self.price is None) != (self.type == "market"):
            raise ValueError("a limit order has a price, a market order none")
        if self.price is not None:
            _positive("price", self.price)
        if _int("attempt", self.attempt) < 1:
            raise ValueError(f"attempt counts from 1, not {self.attempt}")


@dataclass(frozen=True, slots=True)
class Order:
    """An order's stored state; quantities and average price move only with its fills."""

    client_order_id: str
    intent_id: str | None
    market: str
    side: Side
    type: OrderType
    qty: float
    price: float | None
    attempt: int
    status: OrderStatus
    exchange_order_id: str | None
    filled_qty: float
    average_price: float
    created_at: int
    updated_at: int

    @property
    def request(self) -> OrderRequest:
        return OrderRequest(**{f.name: getattr(self, f.name) for f in fields(OrderRequest)})

    @property
    def remaining(self) -> float:
        return max(self.qty - self.filled_qty, 0.0)


@dataclass(frozen=True, slots=True)
class Fill:
    """One exchange trade of one of our orders; ``trade_id`` is unique per market."""

    trade_id: str
    client_order_id: str
    market: str
    side: Side
    qty: float
    price: float
    fee: float
    fee_currency: str
    at: int

    def __post_init__(self) -> None:
        _text("trade_id", self.trade_id)
        _text("client_order_id", self.client_order_id)
        _market(self.market)
        _member("side", self.side, SIDES)
        _positive("qty", self.qty)
        _positive("price", self.price)
        _non_negative("fee", self.fee)
        if self.fee > 0:
            _text("fee_currency", self.fee_currency)
        _ms("at", self.at)

    @property
    def signed_qty(self) -> float:
        return self.qty if self.side == "buy" else -self.qty


@dataclass(frozen=True, slots=True)
class Position:
    """The net position in one market: signed quantity, average entry price (0 when flat),
    realized PnL before fees and the fees paid, both in the quote currency."""

    market: str
    qty: float = 0.0
    average_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class KillState:
    """The kill switch: engaged or not, and the last engagement's or reset's reason."""

    engaged: bool
    reason: str
    by: str
    at: int | None


@dataclass(frozen=True, slots=True)
class RiskSpecRecord:
    """The risk spec a deployment runs under, as its runner recorded it when it started:
    ``name`` and the sha256 of its artifact (both None: no risk spec), and whether it was
    ``given`` with ``peak live run --risk`` (else it is the spec's own: a portfolio's
    ``risk`` line). What status, health, reports and the dashboard read back, so they show
    the limits and alert sinks actually enforced."""

    name: str | None
    sha256: str | None
    given: bool

    def __post_init__(self) -> None:
        if (self.name is None) != (self.sha256 is None):
            raise ValueError("a risk spec record has both a name and a sha256, or neither")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The runner's in-memory book after the bar that closed at ``bar_time``."""

    session: str
    bar_time: int
    arrays: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)


def same_payload(stored: Any, given: Any, ignore: tuple[str, ...] = ("created_at",)) -> bool:
    """Equal apart from bookkeeping fields (when a replayed intent was made again)."""
    return bool(replace(stored, **{name: getattr(given, name) for name in ignore}) == given)
