"""Rules that read the position (``lang.position``), as the bar loop evaluates them.

The compiler made each such rule a scan body over market-data inputs and the four position
values (``compile/position_lower.py``). Over whole arrays the rule is only a "may fire" row;
at a fill point the decide stage evaluates the body at the signal bar with the position the
slot holds then (``position_values``): its side (+1, -1, 0), the bars since its fill bar,
its fill price and its return at the signal bar's close — NaN while flat.

``pack`` turns the rules of each slot into the five arrays the jitted step takes: the bodies'
instructions (inputs and constants renumbered into shared tables), the constants, the input
series, each slot's map from an input number to a series row, and each slot's span of
instructions per rule slot (empty: a plain rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..lang.ast import RULE_SLOTS
from ._jit import jit
from .scan import CONST, INPUT, WIDTH, body_value, parse_body
from .state import ENTRY_BAR, ENTRY_PRICE, SIDE

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
N_VALUES = 4  # side, bars in trade, entry price, unrealized (compile.position_lower order)


@dataclass(frozen=True)
class PositionRule:
    """One rule's body: its text (the graph node's value) and its inputs over the bars."""

    text: str
    inputs: FloatArray  # (inputs, bars)


@dataclass(frozen=True)
class Packed:
    """The step's view of every slot's position rules (module docstring)."""

    code: IntArray  # (rows, scan.WIDTH)
    consts: FloatArray
    series: FloatArray  # (series, bars)
    in_rows: IntArray  # (slots, inputs): series row of each input number (-1: another slot's)
    spans: IntArray  # (slots, 4, 2): [start, end) of each rule slot's instructions

    @property
    def any(self) -> bool:
        return bool(self.code.shape[0])


def _renumbered(code: IntArray, inputs: int, consts: int) -> IntArray:
    """A body's instructions with its input and constant numbers moved by the offsets."""
    out = code.copy()
    for k in range(3):
        kind, index = out[:, 1 + 2 * k], out[:, 2 + 2 * k]
        index[kind == INPUT] += inputs
        index[kind == CONST] += consts
    return out


@dataclass(frozen=True)
class Code:
    """The instructions part of ``Packed``, which depends on the bodies only (a sweep's
    combinations share it): and which slot each input number belongs to."""

    code: IntArray
    consts: FloatArray
    spans: IntArray
    owners: tuple[int, ...]  # slot of each input number


def code_of(per_slot: Sequence[Mapping[str, str]]) -> Code:
    """The bodies (texts by rule slot, per slot) with inputs and constants numbered across
    all of them, in slot then ``RULE_SLOTS`` order."""
    code: list[IntArray] = []
    consts: list[FloatArray] = []
    spans = np.zeros((len(per_slot), len(RULE_SLOTS), 2), dtype=np.int64)
    owners: list[int] = []
    rows = n_consts = 0
    for s, texts in enumerate(per_slot):
        for j, slot in enumerate(RULE_SLOTS):
            if slot not in texts:
                continue
            body = parse_body(texts[slot])
            code.append(_renumbered(body.code, len(owners), n_consts))
            spans[s, j] = (rows, rows + body.code.shape[0])
            rows += body.code.shape[0]
            consts.append(body.consts)
            n_consts += body.consts.shape[0]
            owners.extend([s] * body.inputs)
    spans.flags.writeable = False
    return Code(_stack(code, (0, WIDTH), np.int64), _stack(consts, (0,), np.float64), spans,
                tuple(owners))


def pack(per_slot: Sequence[Mapping[str, PositionRule]], width: int) -> Packed:
    """Every slot's position rules (``Signals.position_rules``) as the step's arrays; each
    input series is padded with NaN to ``width`` bars."""
    static = code_of([{slot: rule.text for slot, rule in rules.items()}
                      for rules in per_slot])
    series: list[FloatArray] = []
    for rules in per_slot:
        for slot in RULE_SLOTS:
            if slot in rules:
                for values in np.asarray(rules[slot].inputs, dtype=np.float64):
                    padded = np.full(width, np.nan)
                    padded[: values.shape[0]] = values
                    series.append(padded)
    in_rows = np.full((len(per_slot), len(series)), -1, dtype=np.int64)
    for k, s in enumerate(static.owners):
        in_rows[s, k] = k
    in_rows.flags.writeable = False
    rows = np.array(series, dtype=np.float64).reshape(len(series), width)
    rows.flags.writeable = False
    return Packed(static.code, static.consts, rows, in_rows, static.spans)


def _stack(parts: list[Any], empty: tuple[int, ...], dtype: Any) -> Any:
    out = np.concatenate(parts) if parts else np.zeros(empty, dtype=dtype)
    out = np.ascontiguousarray(out, dtype=dtype)
    out.flags.writeable = False
    return out


def none(slots: int = 1, width: int = 0) -> Packed:
    """No position rule in any of ``slots`` slots."""
    return pack([{}] * slots, width)


@jit
def position_values(s: int, bar: int, close: FloatArray, positions: FloatArray,
                    out: FloatArray) -> None:
    """Slot ``s``'s position at the close of ``bar`` into ``out`` (the ``pos`` operands)."""
    side = positions[s, SIDE]
    out[0] = side
    if side == 0.0:
        out[1] = out[2] = out[3] = math.nan
        return
    entry = positions[s, ENTRY_PRICE]
    out[1] = bar - positions[s, ENTRY_BAR]
    out[2] = entry
    out[3] = side * (close[bar] / entry - 1.0)


@jit
def position_rule(s: int, j: int, bar: int, close: FloatArray, positions: FloatArray,
                  code: IntArray, consts: FloatArray, series: FloatArray, in_rows: IntArray,
                  spans: IntArray) -> bool:
    """Slot ``s``'s rule ``j`` (``RULE_SLOTS``) at signal ``bar``, with the position it holds."""
    x = np.empty(in_rows.shape[1])
    for k in range(in_rows.shape[1]):
        r = in_rows[s, k]
        x[k] = series[r, bar] if r >= 0 else math.nan
    pos = np.empty(N_VALUES)
    position_values(s, bar, close, positions, pos)
    return bool(body_value(code[spans[s, j, 0]:spans[s, j, 1]], consts, x, pos) != 0.0)
