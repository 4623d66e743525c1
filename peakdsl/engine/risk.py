"""risk: an order intent → approved, reduced or denied, with the reason, against a risk spec.

Between the decision and the broker, as Nautilus puts its RiskEngine between strategy and
venue. Backtests, sweeps, portfolios and the live executor call the same ``assess_entry``
(jitted; callable from Python too, see ``RiskEngine``), so a limit means the same in all of
them. Limits (a ``risk`` spec; any may be absent = infinite):

* ``max_order_notional`` (quote currency): an entry larger than it is reduced to it;
* ``max_symbol_exposure`` / ``max_total_exposure`` (fractions of equity): an entry is
  reduced so the gross notional in its market / in all markets, at the fill point's marks,
  stays within the limit;
* ``max_open_positions``: an entry while that many positions are open is denied;
* ``max_daily_loss`` (fraction): once equity is that far below the equity at the start of
  the UTC day, entries are denied until the next UTC day (exits always pass);
* ``max_orders_per_minute``: an entry that would be the (limit + 1)-th order (entries and
  exits count) in the last 60 seconds is denied.

Exits are never denied: the risk stage only ever stops risk from growing. An entry reduced
to nothing is denied with the reason that reduced it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..compile import models as m
from ._jit import inline
from .state import (
    DAY,
    DAY_EQUITY,
    HALTED,
    LAST_EQUITY,
    RATE_HEAD,
    RISK_LIMITS,
    RISK_REASONS,
    FloatArray,
)

APPROVED = 0
(ORDER_NOTIONAL, SYMBOL_EXPOSURE, TOTAL_EXPOSURE, OPEN_POSITIONS, DAILY_LOSS,
 ORDER_RATE) = range(1, len(RISK_REASONS))
(L_ORDER_NOTIONAL, L_SYMBOL_EXPOSURE, L_TOTAL_EXPOSURE, L_OPEN_POSITIONS, L_DAILY_LOSS,
 L_ORDER_RATE) = range(len(RISK_LIMITS))  # positions in the limits vector
DAY_SECONDS = 86_400
RATE_WINDOW_SECONDS = 60


class RiskLimits(BaseModel):
    """The limits of one risk spec as numbers (fractions, quote currency); ∞ = no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_notional: float = Field(default=math.inf, gt=0)
    max_symbol_exposure: float = Field(default=math.inf, gt=0)
    max_total_exposure: float = Field(default=math.inf, gt=0)
    max_open_positions: float = Field(default=math.inf, ge=1)
    max_daily_loss: float = Field(default=math.inf, gt=0)
    max_orders_per_minute: float = Field(default=math.inf, ge=1)

    @classmethod
    def from_config(cls, cfg: m.RiskConfig) -> RiskLimits:
        return cls(max_order_notional=cfg.max_order_notional.amount,
                   max_symbol_exposure=cfg.max_symbol_exposure,
                   max_total_exposure=cfg.max_total_exposure,
                   max_open_positions=cfg.max_open_positions,
                   max_daily_loss=cfg.max_daily_loss,
                   max_orders_per_minute=cfg.max_orders_per_minute)

    @property
    def active(self) -> bool:
        return any(math.isfinite(getattr(self, name)) for name in RISK_LIMITS)

    def vector(self) -> FloatArray:
        """The limits as a read-only float64 vector in ``RISK_LIMITS`` order (what the
        jitted step reads; see ``settings.as_matrix`` for why not a record)."""
        out = np.array([getattr(self, name) for name in RISK_LIMITS], dtype=np.float64)
        out.flags.writeable = False
        return out

    def rate_ring(self) -> FloatArray:
        """The ring of recent order times the order-rate limit needs (-∞ = no order yet)."""
        size = int(self.max_orders_per_minute) if math.isfinite(self.max_orders_per_minute) else 1
        return np.full(size, -math.inf)


NO_LIMITS = RiskLimits()
assert tuple(RiskLimits.model_fields) == RISK_LIMITS, "the vector order is the field order"


@inline
def limits_active(limits: FloatArray) -> bool:
    return bool(limits[L_ORDER_NOTIONAL] < math.inf or limits[L_SYMBOL_EXPOSURE] < math.inf
                or limits[L_TOTAL_EXPOSURE] < math.inf
                or limits[L_OPEN_POSITIONS] < math.inf
                or limits[L_DAILY_LOSS] < math.inf or limits[L_ORDER_RATE] < math.inf)


@inline
def new_day(limits: FloatArray, account: FloatArray, time_s: float) -> None:
    """At the first bar of a UTC day, the day's loss is measured from the last mark and a
    daily-loss halt ends."""
    if limits[L_DAILY_LOSS] < math.inf:
        day = math.floor(time_s / DAY_SECONDS)
        if day != account[DAY]:
            account[DAY] = day
            account[DAY_EQUITY] = account[LAST_EQUITY]
            account[HALTED] = 0.0


@inline
def update_halt(limits: FloatArray, account: FloatArray, equity_now: float) -> None:
    """Halt entries for the rest of the UTC day once the day's loss reaches the limit."""
    if limits[L_DAILY_LOSS] < math.inf \
            and equity_now <= account[DAY_EQUITY] * (1.0 - limits[L_DAILY_LOSS]):
        account[HALTED] = 1.0


@inline
def rate_allows(limits: FloatArray, account: FloatArray, ring: FloatArray, time_s: float) -> bool:
    """Whether one more order fits in the last minute (the ring holds the last ``limit``
    order times; the oldest must have left the window)."""
    if limits[L_ORDER_RATE] == math.inf:
        return True
    return bool(ring[int(account[RATE_HEAD])] <= time_s - RATE_WINDOW_SECONDS)


@inline
def record_order(limits: FloatArray, account: FloatArray, ring: FloatArray, time_s: float) -> None:
    if limits[L_ORDER_RATE] < math.inf:
        head = int(account[RATE_HEAD])
        ring[head] = time_s
        account[RATE_HEAD] = (head + 1) % ring.shape[0]


@inline
def _cap(qty: float, fill: float, room: float, reason: int, current: int
         ) -> tuple[float, int]:
    """Reduce ``qty`` so its notional at ``fill`` fits ``room`` (a negative room is 0)."""
    if qty * fill > room:
        return max(room, 0.0) / fill, reason
    return qty, current


@inline
def assess_entry(limits: FloatArray, account: FloatArray, open_positions: int, equity_now: float,
                 same_market: float, all_markets: float, qty: float, fill: float,
                 time_s: float, ring: FloatArray) -> tuple[float, int, bool]:
    """An entry of ``qty`` at ``fill`` → (quantity allowed, reason code, denied).

    ``same_market`` / ``all_markets``: the gross notional already held (other slots) in the
    entry's market / everywhere, at the fill point's marks. Reason 0 with ``denied`` False
    is an approval of the full quantity.
    """
    if not limits_active(limits):
        return qty, APPROVED, False
    update_halt(limits, account, equity_now)
    if account[HALTED] != 0.0:
        return 0.0, DAILY_LOSS, True
    if open_positions >= limits[L_OPEN_POSITIONS]:
        return 0.0, OPEN_POSITIONS, True
    if not rate_allows(limits, account, ring, time_s):
        return 0.0, ORDER_RATE, True
    reason = APPROVED
    qty, reason = _cap(qty, fill, limits[L_ORDER_NOTIONAL], ORDER_NOTIONAL, reason)
    qty, reason = _cap(qty, fill, limits[L_SYMBOL_EXPOSURE] * equity_now - same_market,
                       SYMBOL_EXPOSURE, reason)
    qty, reason = _cap(qty, fill, limits[L_TOTAL_EXPOSURE] * equity_now - all_markets,
                       TOTAL_EXPOSURE, reason)
    if not qty > 0.0:
        return 0.0, reason, True
    return qty, reason, False


@dataclass(frozen=True)
class Decision:
    """What the risk stage made of one entry intent."""

    qty: float
    reason: str  # a RISK_REASONS word ("approved" when nothing was cut)
    denied: bool

    @property
    def reduced(self) -> bool:
        return not self.denied and self.reason != "approved"


class RiskEngine:
    """The risk stage from Python (the live executor's entry point): the same jitted
    ``assess_entry`` over an account the caller keeps."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self._vector = limits.vector()
        self.ring = limits.rate_ring()

    def assess(self, account: FloatArray, *, open_positions: int, equity: float,
               same_market: float, all_markets: float, qty: float, fill: float,
               time_s: float) -> Decision:
        qty_out, code, denied = assess_entry(
            self._vector, account, open_positions, equity, same_market, all_markets,
            qty, fill, time_s, self.ring)
        return Decision(float(qty_out), RISK_REASONS[code], bool(denied))

    def new_bar(self, account: FloatArray, time_s: float) -> None:
        new_day(self._vector, account, time_s)

    def order_sent(self, account: FloatArray, time_s: float) -> None:
        record_order(self._vector, account, self.ring, time_s)
