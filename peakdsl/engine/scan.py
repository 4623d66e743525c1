"""Recursive series (``state`` lets) as a scan: one small program run bar after bar.

A ``state`` let reads its own past (``state trail = max(nz(trail[1], line), line)``), so it
cannot be a whole-array expression: bar t needs the value at t - 1 first. The compiler
lowers the part of its expression that depends on its own past into a *body*: a list of
instructions over three kinds of operand — an input series at bar t (everything that does
not depend on the state: ``line``, ``close[1]``, an ``atr``, a param — computed by the
ordinary graph before the scan), the state's own value ``j`` bars ago (``SELF``), and a
constant — plus the results of earlier instructions (``REG``). The body's text is the graph
node's value (canonical JSON), so a node key, the artifact hash and the kernel cache see
it like any other argument.

Every operator means what ``compile.ops`` says, operation for operation (NaN semantics
included: ``a / 0`` is NaN, ``min``/``max`` are NaN when either side is, ``nz(a, b)`` is b
where a is NaN); booleans are 0.0 / 1.0 inside the body. A state's past before its first
bar is NaN, or False for a boolean state (as ``lag`` fills).

The whole-array kernel (``scan``) and the bar-by-bar form (``ScanState``, for
``Program.stream``) call the same jitted ``_bar``, so they give the same doubles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import numba
import numpy as np
import numpy.typing as npt

from ..compile.scan_body import body_source, body_text

__all__ = ["Body", "ScanState", "body_source", "body_text", "parse_body", "scan"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Operand kinds: an input series at this bar, the state ``index`` bars ago, a constant,
# an earlier instruction's result, and — in a rule that reads the position
# (``compile/position_lower.py``) — the position's value ``index`` at the bar.
INPUT, SELF, CONST, REG, POS = range(5)
KINDS = {"input": INPUT, "self": SELF, "const": CONST, "reg": REG, "pos": POS}
NO_POSITION = np.empty(0)  # a state's body reads no position
# The operators, by ``compile.ops`` name; their arity is the number of operands given.
# Grouped: arithmetic, then comparisons and logic, then ``where``, then the unary ones.
OPCODES = {name: code for code, name in enumerate((
    "add", "sub", "mul", "div", "min", "max", "nz", "lt", "le", "gt", "ge", "eq", "ne", "and",
    "or", "where", "neg", "not", "abs", "log", "sqrt"))}
(_ADD, _SUB, _MUL, _DIV, _MIN, _MAX, _NZ, _LT, _LE, _GT, _GE, _EQ, _NE, _AND, _OR, _WHERE,
 _NEG, _NOT, _ABS, _LOG, _SQRT) = range(len(OPCODES))
OPERANDS = 3
WIDTH = 1 + 2 * OPERANDS  # op, then (kind, index) for up to three operands


def _njit(fn: Any) -> Any:
    """numba with numpy's error model: a float division by zero is inf/NaN, as in numpy,
    not an exception."""
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)


@dataclass(frozen=True)
class Body:
    """A parsed body: the instruction matrix, the constants, how far back it reads its own
    past (``depth``), how many inputs it takes and whether the state is boolean."""

    code: IntArray
    consts: FloatArray
    depth: int
    inputs: int
    boolean: bool


@lru_cache(maxsize=256)
def parse_body(text: str) -> Body:
    """The body a node's text describes (cached: a sweep runs one body many times)."""
    data = json.loads(text)
    rows = np.zeros((len(data["code"]), WIDTH), dtype=np.int64)
    depth = 0
    for r, (op, operands) in enumerate(data["code"]):
        rows[r, 0] = OPCODES[op]
        for k, (kind, index) in enumerate(operands):
            rows[r, 1 + 2 * k] = KINDS[kind]
            rows[r, 2 + 2 * k] = index
            if kind == "self":
                depth = max(depth, int(index))
    consts = np.asarray(data["consts"], dtype=np.float64).reshape(-1)
    rows.flags.writeable = False
    consts.flags.writeable = False
    return Body(rows, consts, depth, int(data["inputs"]), bool(data["bool"]))


@_njit
def _operand(row: IntArray, k: int, regs: FloatArray, x: FloatArray, past: FloatArray,
             at: int, consts: FloatArray, pos: FloatArray) -> float:
    kind = row[1 + 2 * k]
    index = row[2 + 2 * k]
    if kind == INPUT:
        return float(x[index])
    if kind == SELF:
        return float(past[at - index])
    if kind == CONST:
        return float(consts[index])
    if kind == POS:
        return float(pos[index])
    return float(regs[index])


@_njit
def _arith(op: int, a: float, b: float) -> float:
    if op == _ADD:
        return a + b
    if op == _SUB:
        return a - b
    if op == _MUL:
        return a * b
    if op == _DIV:
        return (a / b) * (b / b)
    if op == _MIN:
        return a if (a < b) or np.isnan(a) else b
    if op == _MAX:
        return a if (a > b) or np.isnan(a) else b
    return b if np.isnan(a) else a  # _NZ


@_njit
def _compare(op: int, a: float, b: float) -> float:
    if op == _LT:
        out = a < b
    elif op == _LE:
        out = a <= b
    elif op == _GT:
        out = a > b
    elif op == _GE:
        out = a >= b
    elif op == _EQ:
        out = a == b
    elif op == _NE:
        out = a != b
    elif op == _AND:
        out = a != 0.0 and b != 0.0
    else:  # _OR
        out = a != 0.0 or b != 0.0
    return 1.0 if out else 0.0


@_njit
def _unary(op: int, a: float) -> float:
    if op == _NEG:
        return -a
    if op == _NOT:
        return 1.0 if a == 0.0 else 0.0
    if op == _ABS:
        return abs(a)
    if op == _LOG:
        return float(np.log(a) * (a / a))
    return float(np.sqrt(a))  # _SQRT


@_njit
def _bar(code: IntArray, consts: FloatArray, x: FloatArray, past: FloatArray, at: int,
         regs: FloatArray, pos: FloatArray) -> float:
    """The body at one bar: ``x`` the inputs' values at this bar, ``past[at - j]`` the
    state ``j`` bars ago, ``pos`` the position's values. Returns the last instruction's
    result."""
    for r in range(code.shape[0]):
        row = code[r]
        op = row[0]
        a = _operand(row, 0, regs, x, past, at, consts, pos)
        if op >= _NEG:
            regs[r] = _unary(op, a)
            continue
        b = _operand(row, 1, regs, x, past, at, consts, pos)
        if op == _WHERE:
            c = _operand(row, 2, regs, x, past, at, consts, pos)
            regs[r] = b if a != 0.0 else c
        elif _LT <= op <= _OR:
            regs[r] = _compare(op, a, b)
        else:
            regs[r] = _arith(op, a, b)
    return float(regs[code.shape[0] - 1])


@_njit
def _scan(code: IntArray, consts: FloatArray, inputs: FloatArray, depth: int, fill: float,
          out: FloatArray) -> None:
    """``_bar`` at every bar, the state's past read from ``out`` itself (``fill`` before the
    first bar: a padded copy keeps the read branch-free)."""
    n = out.shape[0]
    past = np.full(n + depth, fill)
    x = np.empty(inputs.shape[0])
    regs = np.empty(max(code.shape[0], 1))
    for t in range(n):
        for k in range(inputs.shape[0]):
            x[k] = inputs[k, t]
        value = _bar(code, consts, x, past, t + depth, regs, NO_POSITION)
        past[t + depth] = value
        out[t] = value


def _input_matrix(series: tuple[Any, ...], n: int) -> FloatArray:
    matrix = np.empty((len(series), n))
    for k, s in enumerate(series):
        matrix[k] = np.asarray(s, dtype=np.float64)
    return matrix


def scan(*args: Any) -> Any:
    """``KERNELS["state"](*inputs, text)``: the state's series over the inputs' bars (a
    bool array for a boolean state)."""
    body = parse_body(cast(str, args[-1]))
    series = args[:-1]
    n = len(series[0]) if series else 0
    out = np.empty(n)
    fill = 0.0 if body.boolean else np.nan
    _scan(body.code, body.consts, _input_matrix(series, n), body.depth, fill, out)
    return out != 0.0 if body.boolean else out


class ScanState:
    """``scan`` one bar at a time (``STATES["state"](text)``): the last ``depth`` values in a
    buffer laid out as ``_scan``'s padded past."""

    __slots__ = ("body", "past", "regs", "x")

    def __init__(self, text: str) -> None:
        self.body = parse_body(text)
        self.past = np.full(self.body.depth + 1, 0.0 if self.body.boolean else np.nan)
        self.x = np.empty(self.body.inputs)
        self.regs = np.empty(max(self.body.code.shape[0], 1))

    def push(self, *values: Any) -> Any:
        for k, v in enumerate(values):
            self.x[k] = float(v)
        depth = self.body.depth
        value = float(_bar(self.body.code, self.body.consts, self.x, self.past, depth,
                           self.regs, NO_POSITION))
        self.past[depth] = value
        self.past[:depth] = self.past[1:]  # past[depth - 1] is now this bar's value
        return value != 0.0 if self.body.boolean else value


@_njit
def body_value(code: IntArray, consts: FloatArray, x: FloatArray,
               pos: FloatArray) -> float:  # pragma: no cover - compiled
    """A body with no past at one bar: ``x`` its inputs there, ``pos`` the position's
    values (a rule that reads the position, ``engine.position``)."""
    regs = np.empty(max(code.shape[0], 1))
    return float(_bar(code, consts, x, NO_POSITION, 0, regs, pos))


def may_fire(*args: Any) -> Any:
    """``KERNELS["position_rule"](*inputs, text)``: over whole arrays a rule that reads the
    position may fire on any bar (the bar loop asks its body, ``engine.position``)."""
    n = len(args[0]) if len(args) > 1 else 0
    return np.ones(n, dtype=np.bool_)


class MayFire:
    """``may_fire`` one bar at a time (``STATES["position_rule"]``)."""

    __slots__ = ()

    def __init__(self, text: str) -> None:
        parse_body(text)  # a malformed body fails here, as the whole-array kernel would

    def push(self, *values: Any) -> bool:
        return True
