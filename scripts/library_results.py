"""Backtest every strategy in specs/strategies on its demo market and on real candles.

Prints (or, with ``--write``, writes) the Markdown page docs/results.md: short prose, then one
table of demo runs and one of real-data runs. The output is deterministic: no timings, no
generation timestamps; the only date is the one given by ``--date`` (default: today).

    python scripts/library_results.py --write docs/results.md --date 2026-11-21

Demo runs go through ``peakdsl.api.backtest`` on a temporary copy of ``specs/`` (so no local
data cache or registry can interfere). Real runs read the CSV files in ``../shared/data``
(never copied into the project), resample them causally to the spec's timeframe and call
``peakdsl.backtest.run_backtest``; without that folder the real table is left out, saying so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from peakdsl import api
from peakdsl.backtest import BacktestResult, run_backtest
from peakdsl.compile.artifacts import dump_model, sha256
from peakdsl.compile.models import StrategyArtifact
from peakdsl.data.candles import CandleSet, parse_market, timeframe_seconds
from peakdsl.metrics import CATALOGUE, format_metric

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
STRATEGIES = ROOT / "specs" / "strategies"

METRICS = ("trades", "total_return", "sharpe", "max_drawdown", "profit_factor", "win_rate",
           "exposure")
HEADER = ("| spec | market | timeframe | data | "
          + " | ".join(CATALOGUE[k].short for k in METRICS) + " |")
ALIGN = "|---|---|---|---|" + "---:|" * len(METRICS)
DEMO_HEADING = "## Demo markets (synthetic)"
REAL_HEADING = "## Real candles (`../shared/data`)"
RESAMPLING = "left-closed, left-labelled, origin epoch, empty bins dropped"


@dataclass(frozen=True)
class RealFile:
    """One file in ../shared/data: its name, the market it really holds, its bar interval."""
    name: str
    market: str
    timeframe: str
    note: str = ""


BTC_1H = RealFile("binance_BTCUSDT_1h.csv", "BTC/USDT", "1h")
ETH_1H = RealFile("binance_ETHUSDT_1h.csv", "ETH/USDT", "1h")
# real BTC prices at minute resolution: FTX's BTC perpetual (a future, quoted in USD)
BTC_1M = RealFile("ftx_BTCPERP_1m.csv", "BTC-PERP", "1m", "perpetual future, quote USD")
ETH_5M = RealFile("binance_ETH_BTC_5m.csv", "ETH/BTC", "5m", "quote BTC")

# (base currency, coarse?) → file: 1h/4h specs use the long hourly files, 15m/30m the short
# minute files.
REAL_FILES = {("BTC", True): BTC_1H, ("BTC", False): BTC_1M,
              ("ETH", True): ETH_1H, ("ETH", False): ETH_5M}
HOURLY = 3600


# ------------------------------------------------------------------------------- specs

def strategy_names(folder: Path = STRATEGIES) -> list[str]:
    """Every strategy spec in the library, by file stem, sorted."""
    return sorted(p.stem for p in folder.glob("*.peak"))


@contextmanager
def specs_copy(source: Path = ROOT / "specs") -> Iterator[Path]:
    """A temporary project root holding a copy of ``specs/`` only (no cache, no registry)."""
    with tempfile.TemporaryDirectory(prefix="peak-results-") as tmp:
        root = Path(tmp)
        shutil.copytree(source, root / "specs")
        yield root


def spec_path(root: Path, name: str) -> Path:
    return root / "specs" / "strategies" / f"{name}.peak"


# ------------------------------------------------------------------------------- runs

def demo_result(name: str, root: Path) -> BacktestResult:
    """The spec's backtest on its synthetic demo market (``root`` has no data cache)."""
    result: BacktestResult = api.backtest(str(spec_path(root, name)), root=root,
                                          record=False).result
    return result


def real_file_for(market: str, timeframe: str) -> RealFile:
    """The shared file for a spec: same base currency; hourly data for 1h and coarser."""
    base = parse_market(market)[0]
    coarse = timeframe_seconds(timeframe) >= HOURLY
    if (base, coarse) not in REAL_FILES:
        raise ValueError(f"no real candles for {market} {timeframe}")
    return REAL_FILES[(base, coarse)]


@cache
def read_real(path: Path) -> pd.DataFrame:
    """A shared CSV as a UTC-indexed float64 OHLCV frame (as stored: gaps stay gaps)."""
    raw = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True), name="time")
    cols = ["open", "high", "low", "close", "volume"]
    return pd.DataFrame(raw[cols].to_numpy(dtype="float64"), index=index, columns=cols)


def resample(frame: pd.DataFrame, seconds: int) -> pd.DataFrame:
    """Causal OHLCV bars of ``seconds``: bar ``t`` aggregates source bars in ``[t, t+size)``.

    Left-closed, left-labelled, origin at the epoch; open first, high max, low min, close
    last, volume sum. Bins without a source bar are dropped: gaps stay gaps, never filled.
    """
    bins = frame.resample(f"{seconds}s", closed="left", label="left", origin="epoch")
    out = pd.DataFrame({"open": bins["open"].first(), "high": bins["high"].max(),
                        "low": bins["low"].min(), "close": bins["close"].last(),
                        "volume": bins["volume"].sum(min_count=1)})
    return out.dropna(subset=["open"])


def real_candles(market: str, timeframe: str, shared: Path = SHARED) -> CandleSet:
    """The real CandleSet for a spec's market and timeframe (resampled when coarser)."""
    real = real_file_for(market, timeframe)
    frame = read_real(shared / real.name)
    target, own = timeframe_seconds(timeframe), timeframe_seconds(real.timeframe)
    described = f"{real.name} ({real.market} {real.timeframe})"
    if target == own:
        source = f"{described}, as stored"
    else:
        frame = resample(frame, target)
        source = f"{described}, resampled to {timeframe} ({RESAMPLING})"
    return CandleSet.of(frame, real.market, timeframe, source, synthetic=False)


def real_result(name: str, root: Path, shared: Path = SHARED) -> BacktestResult:
    """The spec's backtest on its real candles, through ``run_backtest``."""
    path = spec_path(root, name)
    artifact = api.compile_spec(str(path), root)
    if not isinstance(artifact, StrategyArtifact):
        raise TypeError(f"{path} is not a strategy")
    cfg = artifact.config
    candles = real_candles(cfg.market.symbol, cfg.timeframe, shared)
    return run_backtest(artifact, candles, path.read_text(encoding="utf-8"),
                        sha256(dump_model(artifact)))


# ------------------------------------------------------------------------------- rows

def _span(result: BacktestResult) -> str:
    times = result.candles.frame.index
    if not len(times):
        return "0 bars"
    return f"{len(times):,} bars, {times[0]:%Y-%m-%d} → {times[-1]:%Y-%m-%d}"


def table_row(result: BacktestResult, data: str) -> str:
    """One Markdown row; metrics formatted exactly as ``peak backtest`` prints them."""
    cells = [result.spec, result.market, result.timeframe, data,
             *(format_metric(k, result.metrics.get(k)) for k in METRICS)]
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def demo_row(name: str, root: Path) -> str:
    result = demo_result(name, root)
    return table_row(result, f"{result.candles.source}, {_span(result)}")


def real_row(name: str, root: Path, shared: Path = SHARED) -> str:
    result = real_result(name, root, shared)
    real = real_file_for(result.market, result.timeframe)
    label = f"{real.name} ({real.market}" + (f"; {real.note}" if real.note else "") + ")"
    if result.timeframe != real.timeframe:
        label += f" → {result.timeframe}"
    return table_row(result, f"{label}, {_span(result)}")


# ------------------------------------------------------------------------------- page

PROSE = """\
# Spec library results ({date})

Every strategy in `specs/strategies` backtested with its default parameters, fees and
slippage, on 10,000 of starting capital: first on its demo market, then on real exchange
candles. The tables are produced by `scripts/library_results.py`;
`tests/test_library_results.py` recomputes every row and fails when the page is out of date
(the real-data rows only where `../shared/data` is present, under the `realdata` marker).

**These numbers are not evidence of edge.** They show that every spec compiles, runs and
trades end to end on synthetic and on real data. The parameters were not fitted, nothing is
out of sample, and one path of one market says little about any strategy.

- **Demo markets** are synthetic: the deterministic simulated candles (GARCH volatility,
  fat tails, trending and ranging regimes) that `peak backtest` falls back to when no data is
  cached; 5,000 bars ending 2026-01-01, seed from the market and timeframe. They are not
  market data. The runs use `peakdsl.api.backtest` on a temporary
  copy of `specs/`, so no local cache or registry is involved.
- **Real candles** come from `../shared/data` (see its `SOURCES.md`; the files are not part of
  the project and their licences differ). A spec gets the file whose base currency matches
  its market's: 1h and 4h specs the Binance hourly BTC/USDT or ETH/USDT files (2017-08 to
  2023-08); 15m and 30m specs the minute files, `ftx_BTCPERP_1m.csv` for BTC (FTX's BTC
  perpetual future, 2021-12-31 to 2022-02-01, quoted in USD) and `binance_ETH_BTC_5m.csv` for
  ETH (quoted in BTC). The quote currency of the data is not the spec's (USDT, USD or BTC
  instead of EUR), which changes nothing for returns-based metrics. The runs call
  `peakdsl.backtest.run_backtest` directly.
- **Resampling** to a coarser timeframe is causal: pandas `resample`, left-closed and
  left-labelled with origin at the epoch, so the bar labelled `t` aggregates exactly the source
  bars in `[t, t + timeframe)` (open first, high max, low min, close last, volume sum). Bins
  without source bars are dropped: gaps stay gaps and are never filled; a bin at the edge of a
  gap may hold fewer source bars than a full one.

Metrics are formatted as `peak backtest` prints them (`—`: undefined, e.g. the profit factor
of a run without a losing trade); their definitions are in
[backtest.md](backtest.md#9-metrics). The 15m and 30m real-data runs cover only 10 to 20
days, so their Sharpe ratios (annualised) are extreme and mean little. Reproduce with

    python scripts/library_results.py --write docs/results.md --date {date}
"""

NO_REAL = ("Real candles not present (no `{shared}` folder): the real-data table is left out; "
           "run where the folder exists to produce it.")


def render(date: str, demo_rows: Sequence[str], real_rows: Sequence[str] | None,
           shared: Path = SHARED) -> str:
    parts = [PROSE.format(date=date), DEMO_HEADING, "", HEADER, ALIGN, *demo_rows, "",
             REAL_HEADING, ""]
    if real_rows is None:
        shown = "../shared/data" if shared == SHARED else str(shared)
        parts.append(NO_REAL.format(shared=shown))
    else:
        parts += [HEADER, ALIGN, *real_rows]
    return "\n".join(parts) + "\n"


def section_rows(text: str, heading: str) -> list[str]:
    """The table rows (header and alignment excluded) under one ``##`` heading of a page."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    rows = []
    for line in lines[start:]:
        if line.startswith("## "):
            break
        if line.startswith("| ") and line not in (HEADER, ALIGN):
            rows.append(line)
    return rows


def build(date: str, shared: Path = SHARED) -> str:
    names = strategy_names()
    with specs_copy() as root:
        demo = [demo_row(n, root) for n in names]
        real = [real_row(n, root, shared) for n in names] if shared.is_dir() else None
    return render(date, demo, real, shared)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, metavar="FILE",
                        help="write the page to FILE (e.g. docs/results.md) instead of printing")
    parser.add_argument("--date", default=dt.date.today().isoformat(),
                        help="date for the page heading (default: today)")
    parser.add_argument("--shared", type=Path, default=SHARED,
                        help=f"folder of real candles (default: {SHARED})")
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        print(f"real candles not present ({args.shared}): real-data runs skipped",
              file=sys.stderr)
    page = build(args.date, args.shared)
    if args.write is None:
        sys.stdout.write(page)
    else:
        args.write.write_text(page, encoding="utf-8")
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
