"""The metrics' first pass kept by the bar loop is the pass itself, bit for bit.

``fast_slot.run_fast_slot`` marks the equity and, as it goes, keeps each bar's return and
the drawdown state (``stats.mark_bar``; a flat stretch at once, ``stats.mark_flat``), so
``stats.metrics_marked`` skips ``metrics_core``'s pass over the equity. Here: (1) marking any
curve — NaN, ±inf, zeros, signed zeros, flat runs, any capital — point by point or a flat
run at once gives ``_returns_and_drawdown``'s returns and ``metrics_core``'s metrics to the
bit; (2) the loop's own marks, position (rebuilt from the trades: ``TradePosition``) and
exposure equal the general loop's on random one-sided runs under every setting, and so do
``compute_metrics``' figures; (3) the sweep's kernel, which takes the same path, agrees with
``run_backtest``.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_evaluate import market  # tests/engine is on sys.path
from test_fast_slot import NO_TRADE_RULES
from test_simulate import random_settings

from peakdsl.engine.results import SimResult, SimSettings
from peakdsl.engine.risk import NO_LIMITS
from peakdsl.engine.simulate import _fast, simulate
from peakdsl.engine.stats import (
    M_DRAWDOWN,
    M_FINITE,
    M_LONGEST,
    M_LOW,
    M_PEAK,
    M_PREVIOUS,
    MARKS,
    N_METRICS,
    _returns_and_drawdown,
    compute_metrics,
    drawdown_of,
    mark_bar,
    mark_flat,
    metrics_core,
    metrics_marked,
    reset_marks,
    scratch_size,
)

nan = math.nan


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal arrays to the bit, any NaN matching any NaN (signed zeros must match)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    keep = ~np.isnan(a)
    return bool(np.array_equal(a[keep].view(np.int64), b[keep].view(np.int64)))


def marked(capital: float, equity: np.ndarray, flat_runs: np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """The marks and bar returns of ``equity`` kept as the loop keeps them: each run of
    equal points at once (``mark_flat``) where ``flat_runs`` says so, else point by point."""
    marks = np.empty(MARKS)
    reset_marks(capital, marks)
    previous, peak, drawdown, low = (marks[i] for i in (M_PREVIOUS, M_PEAK, M_DRAWDOWN, M_LOW))
    run, longest, finite = 0, 0, True
    returns = np.empty(len(equity))
    t = 0
    while t < len(equity):
        v = equity[t]
        end = t + 1
        while end < len(equity) and equity[end] == v:
            end += 1
        if flat_runs[t]:
            first, later, peak, drawdown, low, run, longest = mark_flat(
                v, end - t, previous, peak, drawdown, low, run, longest)
            returns[t], returns[t + 1:end] = first, later
            finite &= math.isfinite(first) and (end == t + 1 or math.isfinite(later))
            previous, t = v, end
            continue
        r, peak, drawdown, low, run, longest = mark_bar(v, previous, peak, drawdown, low, run,
                                                        longest)
        returns[t] = r
        finite &= math.isfinite(r)
        previous, t = v, t + 1
    marks[:] = (previous, peak, drawdown, low, run, longest, 1.0 if finite else 0.0)
    return marks, returns


def curve(rng: np.random.Generator, n: int, special: str) -> np.ndarray:
    """A random equity curve with flat stretches (a flat account) and one special point."""
    equity = 1000.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    flat = rng.random(n) < 0.5
    for t in range(1, n):  # runs of a repeated value, like cash between trades
        if flat[t]:
            equity[t] = equity[t - 1]
    if special == "flat":
        equity[:] = 1000.0
    elif n:
        at = int(rng.integers(0, n))
        stretch = slice(at, min(n, at + int(rng.integers(1, 5))))
        equity[stretch] = {"none": equity[at], "nan": nan, "inf": math.inf, "-inf": -math.inf,
                           "zero": 0.0, "-zero": -0.0, "negative": -equity[at]}[special]
    return equity


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 300), trades=st.integers(0, 40),
       special=st.sampled_from(["none", "nan", "inf", "-inf", "zero", "-zero", "negative",
                                "flat"]),
       capital=st.sampled_from([1000.0, 1e-3, 0.0, -5.0, nan, math.inf]))
def test_marking_as_the_loop_does_is_the_metrics_pass(seed: int, n: int, trades: int,
                                                      special: str, capital: float) -> None:
    rng = np.random.default_rng(seed)
    equity = curve(rng, n, special)
    marks, returns = marked(capital, equity, rng.random(n) < 0.5)
    scratch = np.empty(scratch_size(n, trades))
    if n:
        finite, drawdown, longest = _returns_and_drawdown(capital, equity, scratch)
        assert same_bits(returns, scratch[:n])
        assert (marks[M_FINITE] != 0.0) == finite
        if finite:
            assert int(marks[M_LONGEST]) == longest
            assert same_bits(np.array([drawdown_of(marks[M_PEAK], marks[M_DRAWDOWN],
                                                   marks[M_LOW])]), np.array([drawdown]))
    pnl = rng.normal(0, 10, trades) * (rng.random(trades) < 0.9)
    trade_returns = rng.normal(0, 0.01, trades)
    want, got = np.empty(N_METRICS), np.empty(N_METRICS)
    metrics_core(capital, equity, 3.0, pnl, trade_returns, 0.5, 2.0, 1.0, 8760.0, scratch, want)
    bar_returns = np.empty(scratch_size(n, trades))
    bar_returns[:n] = returns
    # the sweep hands its scratch as the bar returns: read before the trades overwrite it
    metrics_marked(capital, equity, marks, bar_returns[:n], 3.0, pnl, trade_returns, 0.5, 2.0,
                   1.0, 8760.0, bar_returns, got)
    assert same_bits(got, want), (got, want)


def test_a_flat_stretch_marks_like_its_points() -> None:
    """``mark_flat`` over k equal points is k ``mark_bar`` steps: above the peak, below it,
    at it, from zero and NaN."""
    for v, previous, peak, low in ((5.0, 4.0, 4.5, math.inf), (3.0, 4.0, 6.0, 3.5),
                                   (6.0, 6.0, 6.0, math.inf), (0.0, 2.0, 2.0, math.inf),
                                   (nan, 2.0, 2.0, 1.0), (2.0, 0.0, 2.0, math.inf)):
        for k in (1, 2, 7):
            state = (peak, -0.1, low, 2, 3)
            first, later, *at_once = mark_flat(v, k, previous, *state)
            stepped, last = list(state), previous
            rs = []
            for _ in range(k):
                r, *stepped = mark_bar(v, last, *stepped)
                rs.append(r)
                last = v
            assert same_bits(np.array([first, *[later] * (k - 1)]), np.array(rs))
            assert same_bits(np.array(at_once, dtype=float), np.array(stepped, dtype=float))


def bits_of(metrics: dict[str, float | int | None]) -> list[object]:
    return [None if v is None else (type(v), np.float64(v).view(np.int64).item())
            for v in metrics.values()]


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 160), density=st.floats(0.02, 0.6),
       warmup=st.integers(0, 12), short=st.booleans(), hostile=st.booleans(), data=st.data())
def test_the_loop_keeps_the_general_runs_figures(seed: int, n: int, density: float,
                                                 warmup: int, short: bool, hostile: bool,
                                                 data: st.DataObject) -> None:
    rng = np.random.default_rng(seed)
    frame = market(seed, n)
    if hostile:  # missing prices: NaN equity and returns (a zero price the sizing refuses)
        for col in ("open", "close"):
            frame.loc[int(rng.integers(0, n)), col] = nan
    side = "short" if short else "long"
    rules = {f"entry_{side}": rng.random(n) < density, f"exit_{side}": rng.random(n) < density}
    s = data.draw(random_settings(SimSettings(warmup=warmup))).replace(
        stop_loss=nan, take_profit=nan, trailing_stop=nan, **NO_TRADE_RULES)
    ohlc = tuple(frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    fast = _fast(*ohlc, rules, s, None, NO_LIMITS)
    assert fast is not None and fast.marks is not None and fast.bar_returns is not None
    general = simulate(*ohlc, rules, s, general=True)
    assert same_bits(fast.equity, general.equity)
    assert same_bits(fast.position, general.position)  # rebuilt from the trades
    assert fast.exposed == np.count_nonzero(general.position) == general.exposed_bars
    scratch = np.empty(n + 1)
    _returns_and_drawdown(s.capital, general.equity, scratch)
    assert same_bits(fast.bar_returns, scratch[:n])
    want = compute_metrics(general, s, 3600, close=ohlc[3])
    assert bits_of(compute_metrics(fast, s, 3600, close=ohlc[3])) == bits_of(want)
    plain = SimResult(equity=fast.equity, position=fast.position, trades=fast.trades,
                      ambiguous_bars=fast.ambiguous_bars, fees_paid=fast.fees_paid,
                      open_trades=fast.open_trades)  # no marks: metrics_core's own pass
    assert bits_of(compute_metrics(plain, s, 3600, close=ohlc[3])) == bits_of(want)


def test_the_position_is_built_once_and_pickles() -> None:
    import pickle

    n = 40
    c = 100 + np.sin(np.arange(n) / 3)
    rules = {"entry_long": np.arange(n) % 9 == 0, "exit_long": np.arange(n) % 9 == 4}
    for end in ("close", "mark"):
        s = SimSettings(capital=1000.0, end_of_data=end)  # mark: the open trade to the end
        sim = simulate(c, c, c, c, rules, s)
        copy = pickle.loads(pickle.dumps(sim))
        general = simulate(c, c, c, c, rules, s, general=True)
        assert sim.position is sim.position
        assert same_bits(copy.position, general.position)
        assert same_bits(sim.position, general.position)
