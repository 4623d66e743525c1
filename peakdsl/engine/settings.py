"""Settings as one typed record: a pydantic model in Python, a numpy record in the bar loop.

The jitted core used to take every execution setting as its own positional argument (19 to
26 of them, in an order each caller had to repeat). Now each model is written once, as a
frozen pydantic model, and ``record_dtype`` derives a numpy structured dtype from its fields:
floats stay ``float64``, ints ``int64``, booleans ``bool``, and a ``Literal`` of words becomes
the ``int64`` index of the word in the literal (``fill``: 0 = ``next_open``, 1 = ``close``).
numba reads a record by field name (``s.fees``), so adding a setting is adding a field, and a
sweep passes one record per combination as one structured array.
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Sequence
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

SizingMode = Literal["equity_fraction", "notional", "quantity", "vol_target"]
FillMode = Literal["next_open", "close"]
Reversal = Literal["flip", "flat"]
EndOfData = Literal["close", "mark"]
Calendar = Literal["always", "weekdays"]


class SimSettings(BaseModel):
    """Resolved execution settings of one strategy in one run (see docs/backtest.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    capital: float = 10_000.0
    fill: FillMode = "next_open"
    fees: float = 0.001  # fraction of notional per fill
    slippage: float = 0.0005  # adverse price fraction per fill
    sizing_mode: SizingMode = "equity_fraction"
    sizing_value: float = 1.0  # fraction, quote notional, base quantity or annual vol target
    stop_loss: float = math.nan  # fraction; NaN = none
    take_profit: float = math.nan
    trailing_stop: float = math.nan
    qty_step: float = 0.0  # 0 = no rounding
    min_notional: float = 0.0  # 0 = no minimum
    warmup: int = 0
    bars_per_year: float = 8760.0
    vol_lookback: int = 20  # bars of returns for vol-target sizing
    end_of_data: EndOfData = "close"  # close a position open at the end, or mark it there
    leverage: float = Field(default=1.0, gt=0)  # entry notional + fee within this × equity
    calendar: Calendar = "always"  # trading days behind the annualisation (metrics)
    # trade rules (docs/backtest.md §3): 0 = off
    min_hold: int = 0  # bars before a signal exit is taken
    max_hold: int = 0  # bars after which the position exits (reason max_hold)
    cooldown_after_stop: int = 0  # bars without entries after a stop-loss or trailing exit
    max_consecutive_losses: int = 0  # losing trades in a row after which entries stop
    reversal: Reversal = "flip"  # an opposite entry: close and enter (flip), or close (flat)

    def replace(self, **changes: Any) -> SimSettings:
        """A copy with ``changes`` applied and validated (``model_copy`` would not check)."""
        return type(self).model_validate({**self.model_dump(), **changes})


def _field_type(annotation: Any) -> tuple[str, tuple[str, ...]]:
    """The numpy type of one model field, and the words of a ``Literal`` (else empty)."""
    if get_origin(annotation) is Literal:
        return "i8", tuple(str(a) for a in get_args(annotation))
    if get_origin(annotation) in (Union, types.UnionType):
        raise TypeError(f"optional fields have no record form: {annotation!r}")
    table = {float: "f8", int: "i8", bool: "?"}
    if annotation not in table:
        raise TypeError(f"no record form for a field of type {annotation!r}")
    return table[annotation], ()


@functools.cache
def record_dtype(model: type[BaseModel]) -> np.dtype[Any]:
    """The structured dtype of ``model``: one field per model field, in declaration order."""
    fields = [(name, _field_type(info.annotation)[0])
              for name, info in model.model_fields.items()]
    return np.dtype(fields, align=True)


@functools.cache
def choices(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """The word fields of ``model`` and their words, in code order."""
    out = {}
    for name, info in model.model_fields.items():
        words = _field_type(info.annotation)[1]
        if words:
            out[name] = words
    return out


def record_values(item: BaseModel) -> tuple[Any, ...]:
    """One model's values in record order (words as their codes): assignable to one element
    of a structured array in one go."""
    words = choices(type(item))
    return tuple(words[name].index(getattr(item, name)) if name in words
                 else getattr(item, name) for name in type(item).model_fields)


def to_records(items: Sequence[BaseModel]) -> np.ndarray[Any, Any]:
    """Models of one class as a read-only structured array."""
    if not items:
        raise ValueError("no settings to convert")
    out = np.zeros(len(items), dtype=record_dtype(type(items[0])))
    for i, item in enumerate(items):
        out[i] = record_values(item)
    out.flags.writeable = False
    return out


def as_matrix(records: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Records as a read-only float64 matrix, one row per record, one column per field in
    record order (``SETTING_COLUMNS``): the form the jitted step reads.

    Why not the records themselves: numba reads a record's fields fine, but a loop that
    keeps records in variables and hands them to helpers measured 20-50x slower than the
    same loop over a float matrix (the bar loop of a 100k-bar backtest: 0.6 ms → 40 ms).
    The record stays the typed boundary; this is its numeric view, made once per run.
    """
    from numpy.lib import recfunctions

    out = np.ascontiguousarray(
        recfunctions.structured_to_unstructured(records, dtype=np.float64))
    out.flags.writeable = False
    return out


SETTINGS_DTYPE = record_dtype(SimSettings)
SETTING_COLUMNS = {name: i for i, name in enumerate(SETTINGS_DTYPE.names or ())}
SETTINGS_CHOICES = choices(SimSettings)
FILL_CLOSE = SETTINGS_CHOICES["fill"].index("close")
MARK_END = SETTINGS_CHOICES["end_of_data"].index("mark")
SIZING_CODES = {word: i for i, word in enumerate(SETTINGS_CHOICES["sizing_mode"])}
REVERSAL_FLAT = SETTINGS_CHOICES["reversal"].index("flat")
