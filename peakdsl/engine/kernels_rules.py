"""Rule rows of comparisons: a rule tree that is one comparison of two float series, or
several joined by ``and`` (a crossover, a channel break), written into its bool row by one
jitted loop per comparison — ``program.eval_bool``'s fast path.

numpy evaluates such a tree one ufunc at a time into temporaries, a Python call per node
and per block of bars (0.11 ms for a crossover at 100k bars); these loops read both series
once and write or ``and`` into the row in place (0.05 ms). The result is the same: IEEE
comparisons of the same doubles (NaN compares False, ``!=`` True), ``a < b`` evaluated as
``b > a``, which is the same predicate. Operands are the series already aligned on the row's
bars (a lag read as a view of its target starting ``shift`` bars earlier, by the caller).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._jit import jit

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

GT, GE, EQ, NE = range(4)
# a comparison op of a rule tree → (loop, whether its operands are swapped)
OPS = {"gt": (GT, False), "ge": (GE, False), "lt": (GT, True), "le": (GE, True),
       "eq": (EQ, False), "ne": (NE, False)}


@jit
def compare_into(op: int, x: FloatArray, y: FloatArray, conj: bool, out: BoolArray) -> None:
    """``out = x <op> y`` (``conj``: ``out &= x <op> y``) element by element, ``op`` one of
    ``GT GE EQ NE``. One loop per case, so each runs without a branch (measured: a loop that
    selects the operator per element is twice as slow)."""
    m = out.shape[0]
    if op == GT:
        if conj:
            for k in range(m):
                out[k] &= x[k] > y[k]
        else:
            for k in range(m):
                out[k] = x[k] > y[k]
    elif op == GE:
        if conj:
            for k in range(m):
                out[k] &= x[k] >= y[k]
        else:
            for k in range(m):
                out[k] = x[k] >= y[k]
    elif op == EQ:
        if conj:
            for k in range(m):
                out[k] &= x[k] == y[k]
        else:
            for k in range(m):
                out[k] = x[k] == y[k]
    elif conj:
        for k in range(m):
            out[k] &= x[k] != y[k]
    else:
        for k in range(m):
            out[k] = x[k] != y[k]


@jit
def compare_head(op: int, x: FloatArray, hx: int, y: FloatArray, hy: int, conj: bool,
                 out: BoolArray) -> None:
    """``compare_into`` over the first bars, where an operand read ``h`` bars back has no
    value before bar ``h``: NaN there, as the ``lag`` kernel fills (so ``!=`` holds)."""
    for t in range(out.shape[0]):
        a = x[t - hx] if t >= hx else np.nan
        b = y[t - hy] if t >= hy else np.nan
        if op == GT:
            c = a > b
        elif op == GE:
            c = a >= b
        elif op == EQ:
            c = a == b
        else:
            c = a != b
        out[t] = (out[t] and c) if conj else c


BLOCK = 2048  # bars a pair of comparisons runs at a time: the second reads the first's cache


@jit
def compare_pair(op1: int, x1: FloatArray, y1: FloatArray, op2: int, x2: FloatArray,
                 y2: FloatArray, out: BoolArray) -> None:
    """``out = (x1 <op1> y1) & (x2 <op2> y2)``: a crossover's pair (``>`` then ``>=``, its
    ``<=`` swapped) in one loop, any other ``BLOCK`` bars at a time, so the second
    comparison reads the series the first just read (a bar back), still in the cache."""
    m = out.shape[0]
    if op1 == GT and op2 == GE:  # a crossover or crossunder: one loop, half the time
        for k in range(m):
            out[k] = (x1[k] > y1[k]) & (x2[k] >= y2[k])
        return
    for lo in range(0, m, BLOCK):
        hi = min(lo + BLOCK, m)
        compare_into(op1, x1[lo:hi], y1[lo:hi], False, out[lo:hi])
        compare_into(op2, x2[lo:hi], y2[lo:hi], True, out[lo:hi])


Term = tuple[int, FloatArray, int, FloatArray, int]  # (op, x, x shift, y, y shift)


def conjunction(tree: tuple[Any, ...]) -> list[tuple[Any, ...]] | None:
    """The comparisons of a tree made only of comparisons joined by ``and``, in evaluation
    order; None for any other tree."""
    if tree[0] == "and":
        left, right = conjunction(tree[1]), conjunction(tree[2])
        return None if left is None or right is None else left + right
    return [tree] if tree[0] in OPS else None


def write_terms(terms: list[Term], out: BoolArray) -> None:
    """The conjunction of ``terms`` at every bar into ``out``, each operand read ``shift``
    bars back: bar by bar until every operand has a value (``compare_head``), then in
    blocks of aligned views."""
    hi = out.shape[0]
    lo = min(max((max(hx, hy) for _, _, hx, _, hy in terms), default=0), hi)
    for i, term in enumerate(terms):
        compare_head(*term, i > 0, out[:lo])
    row = [(op, x[lo - hx: hi - hx], y[lo - hy: hi - hy]) for op, x, hx, y, hy in terms]
    if len(row) >= 2:
        compare_pair(*row[0], *row[1], out[lo:hi])
    for i in range(2 if len(row) >= 2 else 0, len(row)):
        compare_into(*row[i], i > 0, out[lo:hi])
