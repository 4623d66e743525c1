"""Single-backtest speed and agreement: peak vs vectorbt vs backtesting.py, same session.

SMA(10, 30) crossover, long only, 0.1 % fees, on 100k and 1M synthetic bars and on the real
Binance BTC/USDT 1h candles (../shared/data, skipped when absent).

* speed: each tool end to end in its natural form — peak from the compiled artifact to the
  metrics dict (evaluate → simulate → compute_metrics); vectorbt `MA.run` + crossed
  signals + `Portfolio.from_signals` + `total_return`/`sharpe_ratio`; backtesting.py's
  `Backtest.run` (100k bars and the real candles only: it is slow).
* agreement: peak with `fill close`, no slippage, fixed quantity 1 against vectorbt's
  close fills with `size=1`, fed the same signal arrays and flat at the last bar, must end
  with the same equity to 1e-9 relative.

    pip install -e '.[bench]'
    python benchmarks/bench_backtest.py [--repeat 7] [--bars 100000 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from peakdsl.api import compile_source
from peakdsl.compile.models import StrategyArtifact
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.results import SimSettings
from peakdsl.engine.simulate import simulate
from peakdsl.engine.stats import compute_metrics

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "binance_BTCUSDT_1h.csv"
SPEC = """
strategy bench_sma {
    market BTC/USDT
    timeframe 1h
    param fast: int = 10 in 2..100 step 1
    param slow: int = 30 in 5..400 step 1
    require fast < slow
    let fast_ma = sma(close, fast)
    let slow_ma = sma(close, slow)
    entry long when crossover(fast_ma, slow_ma)
    exit long when crossunder(fast_ma, slow_ma)
    size 1 BTC
    execution {
        fill close
        fees 10bps
        slippage 0bps
    }
}
"""


def artifact() -> StrategyArtifact:
    art = compile_source(SPEC, "bench_sma")
    assert isinstance(art, StrategyArtifact)
    return art


def synthetic(n: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 20_000 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.004))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n)))
    index = pd.date_range("2000-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.lognormal(3, 1, n)}, index=index)


def real() -> pd.DataFrame | None:
    if not REAL.exists():
        return None
    frame = pd.read_csv(REAL, parse_dates=["timestamp"]).set_index("timestamp")
    return frame[["open", "high", "low", "close", "volume"]].astype(float)


def settings_for(cfg: Any, warmup: int) -> SimSettings:
    return SimSettings(capital=1e9, fill="close", fees=0.001, slippage=0.0,
                       sizing_mode="quantity", sizing_value=1.0, warmup=warmup,
                       bars_per_year=8760.0)


def run_peak(cfg: Any, frame: pd.DataFrame) -> tuple[dict[str, Any], Any]:
    signals = evaluate(cfg, frame)
    settings = settings_for(cfg, signals.warmup)
    sim = simulate(frame["open"].to_numpy(), frame["high"].to_numpy(), frame["low"].to_numpy(),
                   frame["close"].to_numpy(), signals.rules, settings)
    return compute_metrics(sim, settings, 3600), sim


def run_vectorbt(frame: pd.DataFrame) -> float:
    import vectorbt as vbt

    fast = vbt.MA.run(frame["close"], 10)
    slow = vbt.MA.run(frame["close"], 30)
    entries = fast.ma_crossed_above(slow)
    exits = fast.ma_crossed_below(slow)
    pf = vbt.Portfolio.from_signals(frame["close"], entries, exits, fees=0.001, size=1.0,
                                    init_cash=1e9, freq="1h")
    pf.sharpe_ratio()
    return float(pf.total_return())


def run_backtesting(frame: pd.DataFrame) -> float:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(values: Any, n: int) -> Any:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 30)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy(size=1)
            elif crossover(self.slow, self.fast):
                self.position.close()

    data = frame.rename(columns=str.capitalize)
    bt = Backtest(data, SmaCross, cash=1e9, commission=0.001, trade_on_close=True,
                  finalize_trades=True)
    return float(bt.run()["Return [%]"])


def simulators_only(cfg: Any, frame: pd.DataFrame, repeat: int) -> tuple[float, float]:
    """Median seconds of just the portfolio simulation on identical precomputed signals."""
    import vectorbt as vbt

    signals = evaluate(cfg, frame)
    settings = settings_for(cfg, signals.warmup)
    cols = [frame[c].to_numpy() for c in ("open", "high", "low", "close")]
    ours = median_time(lambda: simulate(*cols, signals.rules, settings), repeat)
    entries = pd.Series(signals.rules["entry_long"], index=frame.index)
    exits = pd.Series(signals.rules["exit_long"], index=frame.index)
    theirs = median_time(lambda: vbt.Portfolio.from_signals(
        frame["close"], entries, exits, fees=0.001, size=1.0, init_cash=1e9, freq="1h"), repeat)
    return ours, theirs


def agreement(cfg: Any, frame: pd.DataFrame) -> float:
    """Relative difference of final equity, peak vs vectorbt, on identical signals."""
    import vectorbt as vbt

    signals = evaluate(cfg, frame)
    entries = signals.rules["entry_long"].copy()
    exits = signals.rules["exit_long"].copy()
    entries[-1], exits[-1] = False, True  # both tools flat at the end
    settings = settings_for(cfg, signals.warmup)
    sim = simulate(frame["open"].to_numpy(), frame["high"].to_numpy(), frame["low"].to_numpy(),
                   frame["close"].to_numpy(), {"entry_long": entries, "exit_long": exits},
                   settings)
    pf = vbt.Portfolio.from_signals(frame["close"], entries, exits, fees=0.001, size=1.0,
                                    init_cash=1e9, freq="1h")
    theirs = float(pf.value().iloc[-1])
    ours = float(sim.equity[-1])
    return abs(ours - theirs) / abs(theirs)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--bars", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    cfg = artifact().config
    datasets = [(f"synthetic {n:,}", synthetic(n)) for n in args.bars]
    btc = real()
    if btc is not None:
        datasets.append((f"Binance BTC/USDT 1h ({len(btc):,})", btc))
    has_vbt, has_bt = available("vectorbt"), available("backtesting")
    print("| data | peak (ms) | vectorbt (ms) | vectorbt / peak | backtesting.py (ms) "
          "| backtesting.py / peak | simulator only: peak / vectorbt (ms) "
          "| final equity vs vectorbt (rel. diff) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, frame in datasets:
        peak_t = median_time(lambda f=frame: run_peak(cfg, f), args.repeat)
        vbt_t = median_time(lambda f=frame: run_vectorbt(f), args.repeat) if has_vbt else None
        slow_ok = has_bt and len(frame) <= 200_000
        bt_t = median_time(lambda f=frame: run_backtesting(f), 1) if slow_ok else None
        diff = agreement(cfg, frame) if has_vbt else None
        cells = [f"{peak_t * 1e3:.1f}"]
        for peer in (vbt_t, bt_t):
            cells += ["—", "—"] if peer is None else [f"{peer * 1e3:.1f}",
                                                     f"{peer / peak_t:.1f}x"]
        if has_vbt:
            ours, theirs = simulators_only(cfg, frame, args.repeat)
            cells.append(f"{ours * 1e3:.1f} / {theirs * 1e3:.1f}")
        else:
            cells.append("—")
        cells.append("—" if diff is None else f"{diff:.1e}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
