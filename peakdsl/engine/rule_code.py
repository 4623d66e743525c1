"""Rules as code the bar loop runs: comparison and logic trees read per bar from series.

A sweep used to write every combination's rules as boolean rows with numpy on the main
thread (``program.eval_bool``) and hand the rows to the numba loop: half a sweep's CPU, all
of it serial, and ``(rows, bars)`` of buffers (docs/performance.md). Here a rule whose
expression is made only of comparisons and logic over materialised inputs (a
``program.BoolTree``: crossovers, thresholds, ``and`` / ``or`` / ``not``) becomes a few
instructions the jitted loop evaluates at the bars it needs, from the cached indicator
series, in its own thread.

The code of one run is an ``int64`` matrix, one instruction a row (``WIDTH`` columns):
``[op, a_kind, a_index, a_shift, b_kind, b_index, b_shift, target]``.

* ``GT GE LT LE EQ NE``: ``value = a <op> b`` with IEEE semantics (a comparison with NaN is
  False, ``!=`` True), exactly numpy's ufuncs on the same doubles;
* ``TRUTH``: ``value = a != 0`` (a bool operand, or numpy's truth of a number);
* ``NOT``; ``JUMP_FALSE`` / ``JUMP_TRUE``: skip to ``target`` when ``value`` is False / True
  (``and`` and ``or`` short-circuit; the value left is the expression's, as numpy's
  ``logical_and`` / ``logical_or`` would give).

Operands: ``SERIES`` (row ``index`` of a float64 matrix, read ``shift`` bars back, NaN before
the first bar: a lag by a constant window read as a view of its target, as ``lag`` fills),
``FLAGS`` (row of a bool matrix, read as 0.0 / 1.0, False before the first bar, as ``lag``
of a bool array fills) or ``CONST`` (``consts[index]``: a param, a constant, a scalar step).
A rule that is not such a tree (arithmetic inside, a bool kernel) is evaluated as before and
read as one ``TRUTH`` of its ``FLAGS`` row. Each rule slot owns a span ``[lo, hi)`` of the
rows; an empty span is a slot the strategy does not use (never fires).

``first_fire`` finds the first bar of a range at which a rule holds; ``form`` sorts a rule
into the shapes that have a loop of their own (one bool row; one or two comparisons, a
crossover) — the rest is interpreted an instruction at a time. ``write_rows`` materialises
rules as the rows the general bar loop reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._jit import inline, jit
from .state import FloatArray

(GT, GE, LT, LE, EQ, NE, TRUTH, NOT, JUMP_FALSE, JUMP_TRUE) = range(10)
SERIES, FLAGS, CONST = range(3)
# the form of a rule's code (``form``): one bool row; anything (interpreted); one or two
# comparisons joined by ``and`` (some operand a constant); the same, every operand a series
ROW, INTERPRETED, TERMS, SERIES_TERMS = range(4)
WIDTH = 8
(_OP, _A_KIND, _A_INDEX, _A_SHIFT, _B_KIND, _B_INDEX, _B_SHIFT, _TARGET) = range(WIDTH)
OPERAND_ROW = _A_INDEX  # the column holding a ``ROW`` rule's bool row
COMPARE_OPS = {"gt": GT, "ge": GE, "lt": LT, "le": LE, "eq": EQ, "ne": NE}
JUMPS = {"and": JUMP_FALSE, "or": JUMP_TRUE}
LEAVES = ("var", "lag", "const")

Leaf = tuple[Any, ...]  # a BoolTree leaf: ("var", node) | ("lag", node, target, w) | ("const", v)
Operand = tuple[int, int, int]  # (kind, index, shift)
IntArray = np.ndarray[Any, np.dtype[np.int64]]
BoolMatrix = np.ndarray[Any, np.dtype[np.bool_]]


class Unsupported(ValueError):
    """A tree the instruction set cannot express (a comparison of sub-expressions)."""


@dataclass(frozen=True)
class Template:
    """The code of one rule with its leaves unresolved: ``ops`` rows (operand columns zero)
    and, per operand to fill, ``(row, column of its kind, leaf)``. Jump targets are relative
    to the rule's first row."""

    ops: tuple[tuple[int, int], ...]  # (op, relative jump target or 0)
    holes: tuple[tuple[int, int, Leaf], ...]

    def __len__(self) -> int:
        return len(self.ops)


def _emit(tree: tuple[Any, ...], ops: list[list[int]], holes: list[tuple[int, int, Leaf]]
          ) -> None:
    """Append the code of ``tree`` (a ``program.BoolTree``) to ``ops``."""
    op = tree[0]
    if op in LEAVES:
        holes.append((len(ops), _A_KIND, tree))
        ops.append([TRUTH, 0])
    elif op in COMPARE_OPS:
        left, right = tree[1], tree[2]
        if left[0] not in LEAVES or right[0] not in LEAVES:
            raise Unsupported(f"`{op}` of a sub-expression")
        holes.append((len(ops), _A_KIND, left))
        holes.append((len(ops), _B_KIND, right))
        ops.append([COMPARE_OPS[op], 0])
    elif op == "not":
        _emit(tree[1], ops, holes)
        ops.append([NOT, 0])
    elif op in JUMPS:
        _emit(tree[1], ops, holes)
        jump = len(ops)
        ops.append([JUMPS[op], 0])
        _emit(tree[2], ops, holes)
        ops[jump][1] = len(ops)
    else:
        raise Unsupported(f"operator `{op}`")


def template(tree: tuple[Any, ...]) -> Template:
    """The code of a bool tree (raises ``Unsupported`` for what it cannot express)."""
    ops: list[list[int]] = []
    holes: list[tuple[int, int, Leaf]] = []
    _emit(tree, ops, holes)
    return Template(tuple((o, t) for o, t in ops), tuple(holes))


TRUTH_OF_ROW = template(("var", -1))  # a rule read from its own bool row (leaf node -1)


def layout(templates: list[Template | None]) -> tuple[IntArray, IntArray]:
    """The static part of a run's code: every slot's rows one after the other (absent slots
    get an empty span), jump targets made absolute. Returns ``(code, spans)``, ``spans`` of
    shape ``(slots, 2)``."""
    rows: list[list[int]] = []
    spans = np.zeros((len(templates), 2), dtype=np.int64)
    for s, tpl in enumerate(templates):
        lo = len(rows)
        for op, target in (tpl.ops if tpl is not None else ()):
            rows.append([op, 0, 0, 0, 0, 0, 0, lo + target if op in JUMPS.values() else 0])
        spans[s] = (lo, len(rows))
    code = np.array(rows, dtype=np.int64).reshape(-1, WIDTH)
    return code, spans


def fill(code: IntArray, spans: IntArray, templates: list[Template | None],
         operand: Callable[[Leaf], Operand]) -> None:
    """Write each leaf's operand (``operand(leaf)`` → kind, index, shift) into ``code``."""
    for s, tpl in enumerate(templates):
        if tpl is None:
            continue
        lo = int(spans[s, 0])
        for row, column, leaf in tpl.holes:
            code[lo + row, column:column + 3] = operand(leaf)


# ---------------------------------------------------------------- the jitted reader


@inline
def _compare(op: int, a: float, b: float) -> bool:
    if op == GT:
        return a > b
    if op == GE:
        return a >= b
    if op == LT:
        return a < b
    if op == LE:
        return a <= b
    if op == EQ:
        return a == b
    return a != b


@inline
def _plain(code: IntArray, pc: int) -> bool:
    """A comparison whose operands are series or constants (no bool rows)."""
    return bool(code[pc, _OP] <= NE and code[pc, _A_KIND] != FLAGS
                and code[pc, _B_KIND] != FLAGS)


@inline
def _terms(code: IntArray, lo: int, hi: int) -> int:
    """1 or 2 when rows ``[lo, hi)`` are one comparison of series and constants or two
    joined by ``and`` (a crossover, a threshold); 0 for anything else."""
    if hi - lo == 1 and _plain(code, lo):
        return 1
    if hi - lo == 3 and _plain(code, lo) and _plain(code, lo + 2) \
            and code[lo + 1, _OP] == JUMP_FALSE and code[lo + 1, _TARGET] == hi:
        return 2
    return 0


@inline
def _side(code: IntArray, pc: int, column: int, consts: FloatArray
          ) -> tuple[bool, float, int, int]:
    """An operand as ``(constant?, its value, series row, shift)``."""
    if code[pc, column] == CONST:
        return True, consts[code[pc, column + 1]], 0, 0
    return False, 0.0, code[pc, column + 1], code[pc, column + 2]


@inline
def scan_series(code: IntArray, lo: int, second: int, series: FloatArray, start: int,
                 stop: int) -> int:
    """``scan_terms`` when every operand is a series (form ``SERIES_TERMS``: a crossover): no
    constant to select per bar, which measured 3x slower."""
    op1, op2 = code[lo, _OP], code[second, _OP]
    ia1, ha1, ib1, hb1 = code[lo, _A_INDEX], code[lo, _A_SHIFT], code[lo, _B_INDEX], \
        code[lo, _B_SHIFT]
    ia2, ha2, ib2, hb2 = code[second, _A_INDEX], code[second, _A_SHIFT], \
        code[second, _B_INDEX], code[second, _B_SHIFT]
    one = second == lo
    for t in range(start, stop):
        if _compare(op1, series[ia1, t - ha1], series[ib1, t - hb1]) and (
                one or _compare(op2, series[ia2, t - ha2], series[ib2, t - hb2])):
            return t
    return stop


@inline
def scan_terms(code: IntArray, lo: int, terms: int, series: FloatArray, consts: FloatArray,
                start: int, stop: int) -> int:
    """``first_fire`` for one or two comparisons (``_terms``) from ``start >=`` their
    largest shift: a tight loop, the second comparison read only where the first holds.
    Series are read by row and bar (a row view per event costs reference counting)."""
    second = lo + 2 * (terms - 1)  # past the jump
    op1, op2 = code[lo, _OP], code[second, _OP]
    ka1, ca1, ia1, ha1 = _side(code, lo, _A_KIND, consts)
    kb1, cb1, ib1, hb1 = _side(code, lo, _B_KIND, consts)
    ka2, ca2, ia2, ha2 = _side(code, second, _A_KIND, consts)
    kb2, cb2, ib2, hb2 = _side(code, second, _B_KIND, consts)
    for t in range(start, stop):
        a = ca1 if ka1 else series[ia1, t - ha1]
        b = cb1 if kb1 else series[ib1, t - hb1]
        if _compare(op1, a, b):
            if terms == 1:
                return t
            a = ca2 if ka2 else series[ia2, t - ha2]
            b = cb2 if kb2 else series[ib2, t - hb2]
            if _compare(op2, a, b):
                return t
    return stop


@inline
def form(code: IntArray, lo: int, hi: int) -> tuple[int, int]:
    """The form of the rule in rows ``[lo, hi)`` (``ROW``, ``INTERPRETED``, ``TERMS``,
    ``SERIES_TERMS``) and, for comparisons, the largest shift they read (before that bar
    some operand has no value yet: interpreted). The bar loop asks once per run, not per
    event (measured: 36 ns an event)."""
    if hi - lo == 1 and code[lo, _OP] == TRUTH and code[lo, _A_KIND] == FLAGS \
            and code[lo, _A_SHIFT] == 0:
        return ROW, 0
    terms = _terms(code, lo, hi)
    if terms == 0:
        return INTERPRETED, 0
    head = max(code[lo, _A_SHIFT], code[lo, _B_SHIFT], code[hi - 1, _A_SHIFT],
               code[hi - 1, _B_SHIFT])
    series = code[lo, _A_KIND] == SERIES and code[lo, _B_KIND] == SERIES \
        and code[hi - 1, _A_KIND] == SERIES and code[hi - 1, _B_KIND] == SERIES
    return (SERIES_TERMS if series else TERMS), head


@inline
def scan_row(flags: BoolMatrix, index: int, start: int, stop: int) -> int:
    """``first_fire`` of a rule read from bool row ``index`` (form ``ROW``): eight bars at a
    time while none holds, then bar by bar — through a slice indexed from 0, so numba drops
    its negative-index handling (a rule holding every 26 bars or so: 2.5x faster than one
    bar at a time)."""
    row = flags[index, start:stop]
    m = stop - start
    k = 0
    while k + 8 <= m:
        if row[k] | row[k + 1] | row[k + 2] | row[k + 3] | row[k + 4] | row[k + 5] | \
                row[k + 6] | row[k + 7]:
            break
        k += 8
    while k < m:
        if row[k]:
            return start + k
        k += 1
    return stop


@jit
def interpret(code: IntArray, lo: int, hi: int, series: FloatArray, flags: BoolMatrix,
              consts: FloatArray, start: int, stop: int) -> int:
    """``first_fire`` for any code, one instruction at a time at every bar (a real call:
    the forms the bar loop meets most have loops of their own)."""
    for t in range(start, stop):
        value = False
        pc = lo
        while pc < hi:
            op = code[pc, _OP]
            following = pc + 1
            if op <= TRUTH:
                kind = code[pc, _A_KIND]
                u = t - code[pc, _A_SHIFT]
                if kind == SERIES:
                    a = series[code[pc, _A_INDEX], u] if u >= 0 else np.nan
                elif kind == CONST:
                    a = consts[code[pc, _A_INDEX]]
                else:
                    a = (1.0 if flags[code[pc, _A_INDEX], u] else 0.0) if u >= 0 else 0.0
                if op == TRUTH:
                    value = a != 0.0
                else:
                    kind = code[pc, _B_KIND]
                    u = t - code[pc, _B_SHIFT]
                    if kind == SERIES:
                        b = series[code[pc, _B_INDEX], u] if u >= 0 else np.nan
                    elif kind == CONST:
                        b = consts[code[pc, _B_INDEX]]
                    else:
                        b = (1.0 if flags[code[pc, _B_INDEX], u] else 0.0) if u >= 0 else 0.0
                    value = _compare(op, a, b)
            elif op == NOT:
                value = not value
            elif op == JUMP_FALSE:
                if not value:
                    following = code[pc, _TARGET]
            elif value:  # JUMP_TRUE
                following = code[pc, _TARGET]
            pc = following
        if value:
            return t
    return stop


@inline
def tight_start(shape: int, head: int, start: int, stop: int) -> int:
    """The first bar from which a comparison form's own loop may run (every operand has a
    value from ``head`` on); ``stop`` for a form only ``interpret`` reads."""
    return stop if shape == INTERPRETED else min(max(start, head), stop)


@jit
def first_fire(code: IntArray, lo: int, hi: int, shape: int, head: int, series: FloatArray,
               flags: BoolMatrix, consts: FloatArray, start: int, stop: int) -> int:
    """The first bar ``t`` in ``[start, stop)`` at which the rule in rows ``[lo, hi)`` of
    ``code`` holds, else ``stop`` (an empty span never holds); ``shape, head`` is its
    ``form``.

    A rule read from one bool row (what ``simulate`` passes) is a plain scan, one or two
    comparisons (a crossover, a threshold) a tight loop once every operand has a value;
    everything else goes to ``interpret``. The specialised bar loop writes this dispatch
    out in its own body (``fast_slot.run_fast_slot``): inlined there as a function, it cost
    numba reference counting at every event (20-60 ns an event, measured)."""
    if hi <= lo:
        return stop
    if shape == ROW:
        return scan_row(flags, code[lo, _A_INDEX], start, stop)
    tight = tight_start(shape, head, start, stop)
    hit = interpret(code, lo, hi, series, flags, consts, start, tight) if start < tight \
        else tight
    if hit < tight or tight == stop:
        return hit
    if shape == SERIES_TERMS:
        return scan_series(code, lo, hi - 1, series, tight, stop)
    return scan_terms(code, lo, 1 if hi - lo == 1 else 2, series, consts, tight, stop)


@jit
def write_rows(code: IntArray, spans: IntArray, series: FloatArray, flags: BoolMatrix,
               consts: FloatArray, out: BoolMatrix) -> None:
    """Every slot's rule at every bar into ``out[slot]`` (``(slots, bars)``): the rule rows
    the general bar loop (``step.run_slot``) reads, built event by event."""
    n = out.shape[1]
    for s in range(spans.shape[0]):
        row = out[s]
        lo, hi = spans[s, 0], spans[s, 1]
        shape, head = form(code, lo, hi)
        t = 0
        while t < n:
            hit = first_fire(code, lo, hi, shape, head, series, flags, consts, t, n)
            for i in range(t, hit):
                row[i] = False
            if hit < n:
                row[hit] = True
            t = hit + 1
