"""benchmarks/bench_portfolio.py runs on a small case; where vectorbt is importable (not in
the project venv) its agreement check holds, and it catches a mismatch."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_portfolio  # noqa: E402

from peakdsl.portfolio.run import run_portfolio  # noqa: E402

BARS = 2_000
needs_vectorbt = pytest.mark.skipif(importlib.util.find_spec("vectorbt") is None,
                                    reason="vectorbt is not installed (benchmark-only)")


def test_a_small_measurement_times_both_plans() -> None:
    measured = bench_portfolio.measure(BARS, repeat=1, vectorbt=False)
    labels = [s.label for s in measured.speeds]
    assert labels == ["3 components", "3 components, risk `live_moderate_usdt`"]
    assert all(s.bars == BARS and set(s.stages) == {"signals", "simulate", "metrics"}
               for s in measured.speeds)
    assert measured.compared == []
    assert measured.speeds[0].row().startswith("| 3 components | 2,000 | ")


def test_opens_are_gapped_inside_the_bar() -> None:
    with bench_portfolio.scratch_project(BARS) as root:
        plan = bench_portfolio.resolved(root)
    frame = plan.components[0].candles.frame
    opens, close = frame["open"].to_numpy(), frame["close"].to_numpy()
    assert np.all(opens[1:] != close[:-1])
    assert np.all(frame["low"] <= frame["open"]) and np.all(frame["open"] <= frame["high"])
    btc, eth = plan.components[0].candles, plan.components[2].candles
    assert btc.frame.index.equals(eth.frame.index) and btc.market != eth.market


def test_vectorbt_inputs_lay_out_the_signals_per_fill() -> None:
    with bench_portfolio.scratch_project(BARS) as root:
        plan = replace(bench_portfolio.resolved(root), capital=bench_portfolio.CAPITAL)
        close = bench_portfolio.vectorbt_inputs(
            run_portfolio(plan, adjust=bench_portfolio.matched("close")))
        result = run_portfolio(plan, adjust=bench_portfolio.matched("next_open"))
    nxt = bench_portfolio.vectorbt_inputs(result)
    assert close.entries.shape == (BARS + 1, 3)
    np.testing.assert_array_equal(nxt.entries[1:BARS], close.entries[: BARS - 1])
    frame = result.components[0].component.candles.frame
    np.testing.assert_array_equal(nxt.price[:BARS, 0], frame["open"].to_numpy())
    np.testing.assert_array_equal(close.price[:BARS, 0], frame["close"].to_numpy())
    assert close.exits[BARS].all() and close.short_exits[BARS].all()
    assert not close.entries[BARS - 1:].any() and not close.short_entries[BARS - 1:].any()
    assert result.sim.trades["reduced"].sum() == 0
    np.testing.assert_allclose(close.value, 1_000.0 / 1.001)


@needs_vectorbt
@pytest.mark.parametrize("fill", bench_portfolio.FILLS)
def test_peak_and_vectorbt_agree_on_the_matched_run(fill: str) -> None:
    with bench_portfolio.scratch_project(BARS) as root:
        row, agreed = bench_portfolio.compare(bench_portfolio.resolved(root), fill, repeat=1)
    assert agreed.holds and agreed.final <= bench_portfolio.TOLERANCE
    assert agreed.trades[0] == agreed.trades[1] > 0
    assert row.startswith(f"| `{fill}` | 2,000 | ")


@needs_vectorbt
def test_the_agreement_check_catches_a_shifted_fill() -> None:
    with bench_portfolio.scratch_project(BARS) as root:
        plan = replace(bench_portfolio.resolved(root), capital=bench_portfolio.CAPITAL)
        at_open = run_portfolio(plan, adjust=bench_portfolio.matched("next_open"))
        at_close = run_portfolio(plan, adjust=bench_portfolio.matched("close"))
    wrong = bench_portfolio.vectorbt_inputs(at_close)  # vectorbt trading at the closes
    agreed = bench_portfolio.agreement(at_open, wrong, bench_portfolio.run_vectorbt(wrong))
    assert not agreed.holds and agreed.final > 1e-7
