"""The rolling mean of ``sma`` (and of every kernel built on it): running sums with a bound on
their rounding, instead of ``kernels._moments``' sums of squares.

The mean of the last ``n`` finite values is ``shift + s / n``: ``s`` is the sum of the
window's deviations from a ``shift`` (the mean found at the last exact re-summation,
``_resum``), updated in O(1) per bar by the deviation entering minus the one leaving. Each
update rounds three times at most — the entering deviation ``a``, the difference ``d`` with the
leaving one, the new sum — each by at most half a unit in the last place of ``|a|``, ``|d|``,
``|s|``; the leaving deviation is the one its value entered with (same shift, same double), so
its rounding leaves the sum with it. ``bound`` adds those three magnitudes up since the last
re-summation, so the mean's error from the updates is at most ``2**-53 · bound / n``.

The sums are re-summed exactly (``_resum``) when the first window of a run fills, after
``max(n, PERIOD)`` updates, and as soon as ``bound`` exceeds ``ULPS · (n·|value| + |n·mean|)``:
the updates' error then stays below ``ULPS · 2**-53 · (|value| + |mean|)``, under 1e-15 of
the window's largest value with ``ULPS = 4`` (``tests/engine/test_kernels_mean.py`` checks it
against ``math.fsum`` on real-shaped and hostile data). That one test covers every case that
loses precision: an outlier of 1e9 leaving small values (the sum it entered carries its rounding:
``|s|`` was large), the window drifting far from a shift that held an outlier (every
deviation is rounded to the shift's size: ``|a|`` is large), long trends (``|s|`` grows with
the drift); an overflow makes ``bound`` NaN or inf and re-sums too. On hourly prices moving
0.5 % a bar it re-sums every hundred bars or so, against every ``n`` bars before (and a
re-summation runs four chains of additions, ``_total``). A window of ``n`` equal values is
exactly that value; a non-finite value restarts the run (NaN until ``n`` finite values).

The whole-array loop (``rolling_mean``) takes the plain updates in a tight loop
(``_updates``: no run counters, no constant-window test, arrays read through slices) until
a bar needs ``_bar`` — its test fails, a value is missing, the period is over — and lets
``_bar`` decide that bar; constant windows are found after the loop (``_equal_pair``,
``_constant``). The tight loop's test is ``_bar``'s, so the result is the bar-by-bar rule's
to the bit (``_bar`` alone, driven from Python, gives the same doubles: tested).
``MeanState`` repeats ``_bar`` in Python and calls the same ``_resum``: the live stream gets
the same doubles as the whole-array run.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from ._jit import inline, jit

FloatArray = npt.NDArray[np.float64]

ULPS = 4.0  # the updates' error budget, in units of the window's size (see the docstring)
PERIOD = 1024  # updates between exact re-summations at most (a longer window: n)


@jit
def _total(x: FloatArray, start: int, stop: int, shift: float) -> float:
    """``sum(x[start:stop] - shift)`` in four interleaved chains: a re-summation costs a
    quarter of a serial chain's latency, so it can run often."""
    s0 = s1 = s2 = s3 = 0.0
    j = start
    while j + 4 <= stop:
        s0 += x[j] - shift
        s1 += x[j + 1] - shift
        s2 += x[j + 2] - shift
        s3 += x[j + 3] - shift
        j += 4
    while j < stop:
        s0 += x[j] - shift
        j += 1
    return (s0 + s1) + (s2 + s3)


@jit
def _resum(x: FloatArray, i: int, n: int) -> tuple[float, float]:
    """Exact re-summation of the window ending at ``i``: (shift, sum of deviations), the shift
    its plainly summed mean, so that ``shift + s / n`` corrects that mean's rounding."""
    shift = _total(x, i - n + 1, i + 1, 0.0) / n
    return shift, _total(x, i - n + 1, i + 1, shift)


@inline
def _limit(n: int, v: float, nshift: float, s: float) -> float:
    """The bound ``bound`` may reach at a bar with value ``v`` and mean ``(nshift + s) / n``."""
    return ULPS * (n * abs(v) + abs(nshift + s))


@jit
def _bar(x: FloatArray, i: int, n: int, run: int, same: int, since: int, shift: float,
         s: float, bound: float) -> tuple[float, int, int, int, float, float, float]:
    """The rule at bar ``i``: (mean, run, same, since, shift, s, bound) after it. ``run`` and
    ``same`` count the finite and the equal values ending here, ``since`` the updates since
    the last re-summation."""
    v = x[i]
    if not math.isfinite(v):
        return math.nan, 0, 0, since, shift, s, bound
    run += 1
    same = same + 1 if run > 1 and v == x[i - 1] else 1
    if run < n:
        return math.nan, run, same, since, shift, s, bound
    resum = run == n or since >= max(n, PERIOD)
    if not resum:
        a = v - shift
        d = a - (x[i - n] - shift)
        s += d
        since += 1
        bound = bound + (abs(a) + abs(d) + abs(s))
        resum = not bound <= _limit(n, v, n * shift, s)
    if resum:
        shift, s = _resum(x, i, n)
        since = 0
        bound = 0.0
    return (v if same >= n else shift + s / n), run, same, since, shift, s, bound


@jit
def _updates(x: FloatArray, i: int, stop: int, n: int, shift: float, s: float, bound: float,
             mean: FloatArray) -> tuple[int, float, float, bool]:
    """The bars from ``i`` (before ``stop``) that are plain updates under ``_bar``'s rule,
    their means written without its bookkeeping: (the first bar not taken, s, bound, equal),
    ``equal`` when two consecutive values were equal (a constant window may end there:
    ``_constant`` rewrites those bars). A bar is taken when ``bound`` stays below ``_bar``'s
    limit, strictly, which also refuses a non-finite value (``bound`` NaN or inf, like the
    limit); ``_bar`` decides every other bar. The arrays are read through slices indexed
    from 0, so numba drops its negative-index handling (a third of the loop's time)."""
    new, old, out = x[i:stop], x[i - n: stop - n], mean[i:stop]
    nshift = n * shift
    k = 0
    while k < stop - i:
        v = new[k]
        a = v - shift
        d = a - (old[k] - shift)
        t = s + d
        b = bound + (abs(a) + abs(d) + abs(t))
        if not b < _limit(n, v, nshift, t):
            break
        s = t
        bound = b
        out[k] = shift + s / n
        k += 1
    return i + k, s, bound, _equal_pair(x, i, i + k)


@jit
def _equal_pair(x: FloatArray, i: int, stop: int) -> bool:
    """Whether some value in ``[i, stop)`` equals the one before it (a loop of its own:
    it vectorises, inside ``_updates`` it cost a tenth of that loop)."""
    new, before = x[i:stop], x[i - 1: stop - 1]
    equal = False
    for k in range(stop - i):
        equal |= new[k] == before[k]
    return equal


@jit
def _constant(x: FloatArray, i: int, stop: int, n: int, same: int, mean: FloatArray) -> int:
    """``same`` carried over bars ``i`` to ``stop - 1`` (all finite, inside a run), each bar
    that ends ``n`` equal values set to that value; returns ``same`` at the last bar."""
    for j in range(i, stop):
        same = same + 1 if x[j] == x[j - 1] else 1
        if same >= n:
            mean[j] = x[j]
    return same


@jit
def rolling_mean(x: FloatArray, n: int, mean: FloatArray) -> None:
    """The mean of the last ``n`` finite values at every bar into ``mean`` (NaN until ``n``
    in a row): ``_bar``'s rule, a block of bars at a time where it can (module docstring)."""
    size = x.shape[0]
    period = max(n, PERIOD)
    run = same = since = 0
    shift = s = bound = 0.0
    i = 0
    while i < size:
        if run >= n > 1 and since < period:  # the next bars update the sums
            stop, s, bound, equal = _updates(x, i, min(i + period - since, size), n, shift,
                                             s, bound, mean)
            if stop > i:
                same = _constant(x, i, stop, n, same, mean) if equal else 1
                run += stop - i
                since += stop - i
                i = stop
                if i == size:
                    break
        mean[i], run, same, since, shift, s, bound = _bar(x, i, n, run, same, since, shift, s,
                                                          bound)
        i += 1


def sma(x: npt.ArrayLike, n: int) -> FloatArray:
    """``rolling_mean`` of a float64 copy (none if ``x`` is one) into a fresh array."""
    xs = np.ascontiguousarray(x, dtype=np.float64)
    mean = np.empty_like(xs)
    rolling_mean(xs, n, mean)
    return mean


class MeanState:
    """``_bar`` one value at a time: the last n + 1 values (the window and the one leaving
    it), the run counters and the sums, re-summed by the same ``_resum`` at the same bars."""

    __slots__ = ("bound", "n", "run", "s", "same", "shift", "since", "window")

    def __init__(self, n: int) -> None:
        self.n = n
        self.window: deque[float] = deque(maxlen=n + 1)
        self.run = self.same = self.since = 0
        self.shift = self.s = self.bound = 0.0

    def push(self, v: float) -> float:
        """The mean at this bar, NaN until n finite values in a row."""
        prev = self.window[-1] if self.window else math.nan
        self.window.append(v)
        if not math.isfinite(v):
            self.run = self.same = 0
            return math.nan
        self.run += 1
        self.same = self.same + 1 if self.run > 1 and v == prev else 1
        if self.run < self.n:
            return math.nan
        self._update(v)
        return v if self.same >= self.n else self.shift + self.s / self.n

    def _update(self, v: float) -> None:
        n = self.n
        resum = self.run == n or self.since >= max(n, PERIOD)
        if not resum:  # run > n: the window holds n + 1 values, window[0] is leaving
            a = v - self.shift
            d = a - (self.window[0] - self.shift)
            self.s += d
            self.since += 1
            self.bound = self.bound + (abs(a) + abs(d) + abs(self.s))
            resum = not self.bound <= ULPS * (n * abs(v) + abs(n * self.shift + self.s))
        if resum:
            last = np.array(self.window, dtype=np.float64)
            self.shift, self.s = _resum(last, last.shape[0] - 1, n)
            self.since = 0
            self.bound = 0.0
