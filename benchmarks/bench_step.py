"""The step-shaped core: what each way of driving the step costs, side by side in one run.

Random sparse signals (1 % of bars per rule) on a random-walk market, long only, 0.1 % fees:

* ``run_slot``: ``simulate`` as a backtest uses it (one slot, settings held in locals);
* ``run_clock``: the clock (any number of slots, each on its own bars) with one slot;
* risk limits on: ``simulate`` with a daily-loss, order-rate and exposure limit;
* stops on: the same with a stop-loss, take-profit and trailing stop;
* bar by bar: ``BarByBar``, one jitted call per bar (the live runner's shape), per bar.

Each: median of ``--repeat`` warm runs, results checked equal where they must be.

    python benchmarks/bench_step.py [--bars 100000 1000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from peakdsl.engine.results import SimSettings
from peakdsl.engine.risk import RiskLimits
from peakdsl.engine.simulate import BarByBar, epoch_seconds, simulate
from peakdsl.engine.timeline import Slot, simulate_slots

try:
    from machine_info import cpu_name
except ImportError:  # run from elsewhere
    def cpu_name() -> str:
        return "unknown CPU"

SETTINGS = SimSettings(fees=0.001, slippage=0.0)
LIMITS = RiskLimits(max_daily_loss=0.05, max_orders_per_minute=10, max_total_exposure=0.9)


def market(n: int) -> tuple[list[np.ndarray], dict[str, np.ndarray], pd.DatetimeIndex]:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    cols = [open_, np.maximum(open_, close) * 1.002, np.minimum(open_, close) * 0.998, close]
    rules = {"entry_long": rng.random(n) < 0.01, "exit_long": rng.random(n) < 0.01}
    return cols, rules, pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC")


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def general_loop(cols: list[np.ndarray], rules: dict[str, np.ndarray],
                 times: pd.DatetimeIndex) -> np.ndarray:
    stamps = epoch_seconds(times)
    slot = Slot(*cols, times=stamps, timeframe_seconds=3600, rules=rules, settings=SETTINGS)
    return simulate_slots([slot], SETTINGS.capital).equity[1:]


def bar_by_bar(cols: list[np.ndarray], rules: dict[str, np.ndarray]) -> np.ndarray:
    driver = BarByBar(*cols, rules, SETTINGS)
    for _ in range(driver.bars):
        driver.step()
    return driver.result().equity


def row(label: str, ms: float, per_bar: float) -> str:
    return f"| {label} | {ms:,.2f} | {per_bar:,.1f} |"


def measure(n: int, repeat: int) -> list[str]:
    cols, rules, times = market(n)
    whole = simulate(*cols, rules, SETTINGS)
    assert np.array_equal(general_loop(cols, rules, times), whole.equity)
    stops = SETTINGS.replace(stop_loss=0.02, take_profit=0.04, trailing_stop=0.03)
    cases = [
        ("`run_slot` (simulate)", lambda: simulate(*cols, rules, SETTINGS)),
        ("`run_clock`, one slot (`simulate_slots`)", lambda: general_loop(cols, rules, times)),
        ("risk limits on", lambda: simulate(*cols, rules, SETTINGS, times=times,
                                            limits=LIMITS)),
        ("stops on", lambda: simulate(*cols, rules, stops)),
    ]
    out = [f"\n{n:,} bars, {whole.trade_count} trades\n", "| driver | ms | ns / bar |",
           "|---|---:|---:|"]
    for label, fn in cases:
        ms = median_ms(fn, repeat)
        out.append(row(label, ms, ms * 1e6 / n))
    if n <= 100_000:
        assert np.array_equal(bar_by_bar(cols, rules), whole.equity)
        ms = median_ms(lambda: bar_by_bar(cols, rules), max(1, repeat // 3))
        out.append(row("bar by bar (`BarByBar`)", ms, ms * 1e6 / n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
    for n in args.bars:
        print("\n".join(measure(n, args.repeat)))
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
