"""Sweep throughput and memory: peak vs vectorbt vs backtesting.py, one tool per subprocess.

The grid of the issue: SMA crossover, fast in 5..50 step 1 × slow in 20..200 step 5 with
fast < slow (1,590 combinations), 0.1 % fees, on 100k synthetic hourly bars (the generator
of bench_backtest.py). Each tool runs in a fresh subprocess so its peak memory
(`ru_maxrss`, the whole process) is its own:

* peak — `evaluate_block` over the whole grid (the engine `peak sweep` runs, kernel cache
  cold), after one warm-up call on 4 combinations (numba cache loading);
* vectorbt — `MA.run` over the window product, `ma_crossed_above/below`, and
  `Portfolio.from_signals` over all 1,590 columns, then `total_return` and `sharpe_ratio`
  for every column;
* backtesting.py — `Backtest.optimize` on a sub-grid (`--bt-combos`, default 12), its
  rate extrapolated to the full grid.

    pip install -e '.[bench]'
    python benchmarks/bench_sweep_peers.py [--bars 100000] [--bt-combos 12]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {here!r})
import numpy as np
tool, bars, bt_combos = {tool!r}, {bars}, {bt_combos}
from bench_backtest import synthetic
frame = synthetic(bars)
fast = np.arange(5, 51)
slow = np.arange(20, 201, 5)
pairs = [(f, s) for f in fast for s in slow if f < s]
start = time.perf_counter()
if tool == "peak":
    from bench_sweep_engine import artifact
    from peakdsl.data.candles import CandleSet
    from peakdsl.research.engine import KernelCache, evaluate_block
    art = artifact()
    candles = CandleSet.of(frame, "BTC/USDT", "1h", "bench")
    combos = np.array(pairs, dtype=float)
    evaluate_block(art, candles, ("fast", "slow"), combos[:4], cache=KernelCache())
    start = time.perf_counter()
    out = evaluate_block(art, candles, ("fast", "slow"), combos, cache=KernelCache())
    done = len(pairs)
    best = float(np.nanmax(out["sharpe"]))
elif tool == "vectorbt":
    import vectorbt as vbt
    fw = [f for f, _ in pairs]
    sw = [s for _, s in pairs]
    f_ma = vbt.MA.run(frame["close"], fw, short_name="fast")
    s_ma = vbt.MA.run(frame["close"], sw, short_name="slow")
    entries = f_ma.ma_crossed_above(s_ma)
    exits = f_ma.ma_crossed_below(s_ma)
    pf = vbt.Portfolio.from_signals(frame["close"], entries, exits, fees=0.001, freq="1h",
                                    init_cash=10_000)
    sharpe = pf.sharpe_ratio()
    pf.total_return()
    done = len(pairs)
    best = float(np.nanmax(np.asarray(sharpe)))
else:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    import pandas as pd
    def sma(values, n):
        return pd.Series(values).rolling(n).mean().to_numpy()
    class SmaCross(Strategy):
        n1 = 10
        n2 = 30
        def init(self):
            self.fast = self.I(sma, self.data.Close, self.n1)
            self.slow = self.I(sma, self.data.Close, self.n2)
        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
    bt = Backtest(frame.rename(columns=str.capitalize), SmaCross, cash=10_000_000,
                  commission=0.001, finalize_trades=True)
    sub = pairs[:: max(1, len(pairs) // bt_combos)][:bt_combos]
    start = time.perf_counter()
    for f, s in sub:
        bt.run(n1=int(f), n2=int(s))
    done = len(sub)
    best = float("nan")
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"tool": tool, "combos": done, "seconds": seconds, "rss_mib": rss,
                  "best_sharpe": best}}))
"""


def run(tool: str, bars: int, bt_combos: int) -> dict[str, float]:
    code = CHILD.format(here=str(HERE), tool=tool, bars=bars, bt_combos=bt_combos)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--bt-combos", type=int, default=12)
    parser.add_argument("--tools", nargs="+", default=["peak", "vectorbt", "backtesting"])
    args = parser.parse_args()
    rows = [run(tool, args.bars, args.bt_combos) for tool in args.tools]
    peak_rate = next((r["combos"] / r["seconds"] for r in rows if r["tool"] == "peak"), None)
    print(f"grid 1,590 combinations, {args.bars:,} bars\n")
    print("| tool | combos run | seconds | combos/s | full grid (s) | peak RSS (MiB) "
          "| peak / tool |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rate = r["combos"] / r["seconds"]
        ratio = f"{peak_rate / rate:,.0f}x" if peak_rate else "—"
        note = "" if r["combos"] == 1590 else " (extrapolated)"
        print(f"| {r['tool']} | {int(r['combos']):,} | {r['seconds']:.2f} | {rate:,.1f} | "
              f"{1590 / rate:,.1f}{note} | {r['rss_mib']:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
