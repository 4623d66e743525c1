"""Types and units of the peak language, and the unit algebra as tables.

A type is a unit (what a value measures) and a shape (series or scalar). NUMBER is a
dimensionless quantity that adapts to the other side (``close > 100`` compares prices);
PERCENT and BPS are fractions that never stand in for a price or a volume. OSCILLATOR is a
plain number on a 0–100 scale (rsi, percent_rank, adx, ±DI): it meets plain numbers and
other oscillators, never a percentage (``rsi < 30%`` would compare with 0.3) nor a price.
NOTIONAL is a traded value, price × volume: divided by a volume it is a price again (vwap),
but it is never compared with a price.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Unit(str, Enum):
    BOOL = "bool"
    INT = "int"
    NUMBER = "number"
    PRICE = "price"
    VOLUME = "volume"
    OSCILLATOR = "oscillator"
    NOTIONAL = "notional"
    PERCENT = "percent"
    BPS = "bps"
    DURATION = "duration"
    MONEY = "money"
    MARKET = "market"
    STRING = "string"
    LIST = "list"


NUMERIC = frozenset({Unit.INT, Unit.NUMBER, Unit.PRICE, Unit.VOLUME, Unit.PERCENT, Unit.BPS,
                     Unit.OSCILLATOR, Unit.NOTIONAL})
DIMENSIONED = frozenset({Unit.PRICE, Unit.VOLUME, Unit.NOTIONAL})
FRACTIONS = frozenset({Unit.PERCENT, Unit.BPS})
PLAIN = frozenset({Unit.INT, Unit.NUMBER})

DESCRIBE = {
    Unit.BOOL: "a boolean", Unit.INT: "an integer", Unit.NUMBER: "a number",
    Unit.PRICE: "a price", Unit.VOLUME: "a volume", Unit.OSCILLATOR: "a 0–100 oscillator",
    Unit.NOTIONAL: "a traded value (price × volume)", Unit.PERCENT: "a percentage",
    Unit.BPS: "basis points", Unit.DURATION: "a duration", Unit.MONEY: "an amount of money",
    Unit.MARKET: "a market", Unit.STRING: "a string", Unit.LIST: "a list",
}


@dataclass(frozen=True, slots=True)
class Ty:
    unit: Unit
    series: bool

    def describe(self) -> str:
        shape = " series" if self.series else ""
        return DESCRIBE[self.unit] + shape

    @property
    def numeric(self) -> bool:
        return self.unit in NUMERIC


PARAM_TYPES: dict[str, Unit] = {
    "int": Unit.INT, "float": Unit.NUMBER, "percent": Unit.PERCENT, "bps": Unit.BPS,
}


class UnitError(Exception):
    """Raised by the algebra below; the checker turns it into a T002 diagnostic."""


def _plain_join(a: Unit, b: Unit) -> Unit:
    return Unit.INT if a is Unit.INT and b is Unit.INT else Unit.NUMBER


def add_units(a: Unit, b: Unit) -> Unit:
    """``a + b`` / ``a - b``: like units add; plain numbers adapt; fractions never meet prices."""
    if a is b:
        return a
    if a in PLAIN and b in PLAIN:
        return _plain_join(a, b)
    if Unit.OSCILLATOR in (a, b):
        other = b if a is Unit.OSCILLATOR else a
        if other in PLAIN:
            return Unit.OSCILLATOR
        raise UnitError(f"cannot combine a 0–100 oscillator with {DESCRIBE[other]}")
    if a in PLAIN or b in PLAIN:
        other = b if a in PLAIN else a
        return Unit.NUMBER if other in FRACTIONS else other
    if a in FRACTIONS and b in FRACTIONS:
        return Unit.NUMBER
    raise UnitError(f"cannot combine {DESCRIBE[a]} with {DESCRIBE[b]}")


def mul_units(a: Unit, b: Unit) -> Unit:
    """``a * b``: scaling a price by a number or a percentage keeps it a price."""
    if a in PLAIN and b in PLAIN:
        return _plain_join(a, b)
    if {a, b} == {Unit.PRICE, Unit.VOLUME}:
        return Unit.NOTIONAL
    if a in DIMENSIONED and b in DIMENSIONED:
        return Unit.NUMBER
    if Unit.OSCILLATOR in (a, b) and (a in PLAIN or b in PLAIN):
        return Unit.OSCILLATOR
    if a in DIMENSIONED or b in DIMENSIONED:
        return a if a in DIMENSIONED else b
    return _scaled_fraction(a, b) or Unit.NUMBER


def _scaled_fraction(a: Unit, b: Unit) -> Unit | None:
    """A percentage (or bps) scaled by a plain number stays one: ``2 * stdev(roc(…))`` is
    twice a percentage, not a bare number; a fraction of a fraction is a plain number."""
    if a in FRACTIONS and b in PLAIN:
        return a
    if b in FRACTIONS and a in PLAIN:
        return b
    return None


def div_units(a: Unit, b: Unit) -> Unit:
    """``a / b``: a ratio of like dimensions is a plain number."""
    if a is Unit.NOTIONAL and b in (Unit.PRICE, Unit.VOLUME):
        return Unit.VOLUME if b is Unit.PRICE else Unit.PRICE
    if a in DIMENSIONED and b in DIMENSIONED:
        if a is not b:
            raise UnitError(f"cannot divide {DESCRIBE[a]} by {DESCRIBE[b]}")
        return Unit.NUMBER
    if a is Unit.OSCILLATOR and b in PLAIN:
        return Unit.OSCILLATOR
    if a in DIMENSIONED:
        return a
    if a in FRACTIONS and b in PLAIN:
        return a  # a percentage divided by a number is still a percentage
    return Unit.NUMBER


def compare_units(a: Unit, b: Unit) -> None:
    """Comparisons need units that ``add_units`` could combine."""
    add_units(a, b)


ARITH = {"+": add_units, "-": add_units, "*": mul_units, "/": div_units}
