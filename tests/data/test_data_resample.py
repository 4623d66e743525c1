"""Timeframes from the cache (issue 14): a spec's timeframe built from a finer cached or
``--data`` timeframe — OHLCV rules, bar-open stamps on the UTC grid (Mondays for weeks), edge
buckets dropped unless complete, interior buckets over gaps kept and counted (D019) — and the
demo market only with a D018 notice that names the commands that fill the cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peakdsl.data import DataError
from peakdsl.data.cache import Meta, store
from peakdsl.data.candles import CandleSet
from peakdsl.data.resample import bases_for, derivable, resample
from peakdsl.data.select import load_for
from peakdsl.resolve import resolve

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
BTC = SHARED / "binance_BTCUSDT_1h.csv"


def hours(start: str, n: int, drop: tuple[int, ...] = ()) -> CandleSet:
    """``n`` hourly bars from ``start``: open 100+i, high 110+i, low 90+i, close 101+i,
    volume i+1 (bar i), without the bars in ``drop``."""
    i = np.arange(n, dtype=np.float64)
    frame = pd.DataFrame({"open": 100 + i, "high": 110 + i, "low": 90 + i, "close": 101 + i,
                          "volume": i + 1},
                         index=pd.date_range(start, periods=n, freq="h", tz="UTC"))
    return CandleSet.of(frame.drop(frame.index[list(drop)]), "BTC/EUR", "1h", "test")


def rows(candles: CandleSet) -> list[tuple[str, float, float, float, float, float]]:
    f = candles.frame
    return [(t.strftime("%m-%d %H:%M"), *(float(f.at[t, c]) for c in f.columns))
            for t in f.index]


def test_4h_bars_from_1h_by_the_ohlcv_rules_with_edges_dropped() -> None:
    """02:00…13:00: the 00:00 bucket lacks 00:00 and 01:00, the 12:00 one 14:00 and 15:00 —
    both dropped; 04:00 and 08:00 are whole. Bar i: open 100+i … volume i+1."""
    done = resample(hours("2024-01-01T02:00", 12), "4h")
    assert rows(done.candles) == [
        ("01-01 04:00", 102.0, 115.0, 92.0, 106.0, 3 + 4 + 5 + 6.0),
        ("01-01 08:00", 106.0, 119.0, 96.0, 110.0, 7 + 8 + 9 + 10.0)]
    assert done.edges_dropped == 2 and done.incomplete == () and done.per_bar == 4
    assert done.candles.timeframe == "4h" and done.candles.resampled_from == "1h"
    assert done.candles.source == "test, resampled from 1h"
    assert done.warnings("x.csv") == ()


def test_an_interior_gap_keeps_its_bucket_and_says_so() -> None:
    """Bar 5 (09:00) missing: the 08:00 bar is built from 08, 10 and 11 (as an exchange builds
    its bar over an outage), and D019 names it."""
    done = resample(hours("2024-01-01T04:00", 12, drop=(5,)), "4h")
    assert rows(done.candles) == [
        ("01-01 04:00", 100.0, 113.0, 90.0, 104.0, 1 + 2 + 3 + 4.0),
        ("01-01 08:00", 104.0, 117.0, 94.0, 108.0, 5 + 7 + 8.0),
        ("01-01 12:00", 108.0, 121.0, 98.0, 112.0, 9 + 10 + 11 + 12.0)]
    (warning,) = done.warnings("x.csv")
    assert (warning.code, warning.is_error) == ("D019", False)
    assert warning.message == ("1 of 3 BTC/EUR 4h bars resampled from 1h lack some 1h bars "
                               "(gaps in the base): 2024-01-01T08:00Z (3 of 4)")


def test_days_open_at_midnight_and_weeks_on_monday() -> None:
    """1d at 00:00 UTC; 1w at Monday 00:00 UTC like Binance (2024-01-01 was a Monday)."""
    days = resample(hours("2023-12-31T23:00", 40), "1d").candles  # Jan 2 has 15 of 24
    assert rows(days) == [("01-01 00:00", 101.0, 134.0, 91.0, 125.0, sum(range(2, 26)))]
    week = hours("2023-12-31T00:00", 24 * 9)  # a Sunday, Jan 1-7, the Monday Jan 8
    weeks = resample(week, "1w").candles
    assert [t.isoformat() for t in weeks.frame.index] == ["2024-01-01T00:00:00+00:00"]
    assert weeks.frame.index[0].day_name() == "Monday" and weeks.frame["open"].iloc[0] == 124
    assert float(weeks.frame["volume"].iloc[0]) == sum(range(25, 25 + 168))


def test_which_timeframes_can_be_built_from_which() -> None:
    assert derivable("1h", "4h") and derivable("1d", "1w") and derivable("4h", "1w")
    assert not derivable("4h", "1h") and not derivable("1h", "1h")
    assert not derivable("3d", "1w") and derivable("2h", "3d")
    assert bases_for("4h") == ["2h", "1h", "30m", "15m", "5m", "3m", "1m"]
    assert bases_for("1m") == []


def test_off_grid_or_coarser_bases_are_d010() -> None:
    shifted = CandleSet.of(hours("2024-01-01", 8).frame.shift(30, freq="min"), "BTC/EUR",
                           "1h", "test")
    with pytest.raises(DataError) as err:
        resample(shifted, "4h")
    assert [d.code for d in err.value.diagnostics] == ["D010"]
    assert "the first at 2024-01-01T00:30Z" in err.value.diagnostics[0].message
    with pytest.raises(DataError) as err:
        resample(hours("2024-01-01", 8), "30m")
    assert "cannot make 30m bars" in err.value.diagnostics[0].message


def test_no_volume_stays_unknown() -> None:
    c = hours("2024-01-01", 8)
    frame = c.frame.assign(volume=np.nan)
    done = resample(CandleSet.of(frame, "BTC/EUR", "1h", "test"), "4h").candles
    assert done.bars == 2 and np.isnan(done.frame["volume"]).all() and not done.has_volume


def test_the_cache_fills_a_coarser_timeframe_and_says_so(tmp_path: Path) -> None:
    base = hours("2024-01-01", 48)
    store(tmp_path, base, Meta("BTC/EUR", "1h", "import", detail="x.csv"))
    four = load_for("BTC/EUR", "4h", root=tmp_path)
    assert four.bars == 12 and four.resampled_from == "1h" and not four.synthetic
    assert four.source.startswith("cache: ")
    assert four.source.endswith(".peak/data/BTC-EUR/1h.parquet, resampled from 1h")
    assert four.fingerprint == resample(base, "4h").candles.fingerprint
    sliced = load_for("BTC/EUR", "4h", root=tmp_path, start=pd.Timestamp("2024-01-02T00:00Z"))
    assert sliced.bars == 6 and sliced.resampled_from == "1h"
    finer = load_for("BTC/EUR", "15m", root=tmp_path)  # 1h cannot make 15m: the demo, loudly
    assert finer.synthetic and [d.code for d in finer.warnings] == ["D018"]
    assert finer.warnings[0].message.startswith(
        "BTC/EUR is cached only as 1h, which cannot make 15m bars")


def test_a_finer_data_file_is_resampled(tmp_path: Path) -> None:
    csv = tmp_path / "btc_eur_1h.csv"
    hours("2024-01-01", 48).frame.rename_axis("time").to_csv(csv)
    four = load_for("BTC/EUR", "4h", root=tmp_path, data=csv)
    assert four.bars == 12 and four.resampled_from == "1h" and four.warnings == ()
    assert four.source.endswith("btc_eur_1h.csv, resampled from 1h")
    other = tmp_path / "binance_ETHEUR_1h.csv"
    shutil.copy(csv, other)
    (mismatch,) = load_for("BTC/EUR", "4h", root=tmp_path, data=other).warnings
    assert (mismatch.code, mismatch.is_error) == ("D020", False)
    assert "looks like ETH/EUR data (its name says so), but it is used as BTC/EUR" in \
        mismatch.message


def test_d019_counts_the_bars_of_the_period_a_run_uses(tmp_path: Path) -> None:
    """Missing 1h bars on day 1 and day 3: over the whole cache 2 of 18 4h bars lack some; a
    run on day 3 only is told about its own 1 of 6, not the dataset's."""
    base = hours("2024-01-01", 72, drop=(5, 53))
    store(tmp_path, base, Meta("BTC/EUR", "1h", "import", detail="x.csv"))
    (whole,) = load_for("BTC/EUR", "4h", root=tmp_path).warnings
    assert whole.message.startswith("2 of 18 BTC/EUR 4h bars resampled from 1h lack some")
    day3 = load_for("BTC/EUR", "4h", root=tmp_path, start=pd.Timestamp("2024-01-03T00:00Z"))
    (warning,) = day3.warnings
    assert day3.bars == 6
    assert warning.message == ("1 of 6 BTC/EUR 4h bars resampled from 1h lack some 1h bars "
                               "(gaps in the base): 2024-01-03T04:00Z (3 of 4)")
    assert warning.help.endswith("`peak data check` lists the gaps")
    day2 = load_for("BTC/EUR", "4h", root=tmp_path, start=pd.Timestamp("2024-01-02T00:00Z"),
                    end=pd.Timestamp("2024-01-03T00:00Z"))
    assert day2.bars == 6 and day2.warnings == ()


def test_d019_for_a_data_file_points_at_the_file_not_the_cache(tmp_path: Path) -> None:
    """A --data file is not in the cache, so `peak data check` cannot list its gaps."""
    csv = tmp_path / "btc_eur_1h.csv"
    hours("2024-01-01", 48, drop=(5,)).frame.rename_axis("time").to_csv(csv)
    found = load_for("BTC/EUR", "4h", root=tmp_path, data=csv)
    assert [d.code for d in found.warnings] == ["D009", "D019"]
    assert found.warnings[1].help == (
        "they are built from the 1h bars that are there, as an exchange builds its bars over "
        f"an outage; the gaps are in {csv.as_posix()}'s own 1h bars (its D009 warning counts "
        "them)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    return tmp_path


def test_provenance_carries_the_base(project: Path) -> None:
    store(project, hours("2024-01-01", 24 * 30).with_source("x"),
          Meta("BTC/EUR", "1h", "import", detail="x.csv"))
    run = resolve("backtest", str(project / "specs/strategies/ma_trend_btc_conservative.peak"),
                  root=project)
    assert run.config.timeframe == "4h" and run.data.resampled_from == "1h"
    assert run.data.source.endswith("resampled from 1h") and run.data.bars == 180


def test_a_strategy_reading_volume_refuses_data_without_volume_d022(project: Path) -> None:
    spec = project / "specs" / "strategies" / "volume_spike.peak"
    spec.write_text((project / "specs/strategies/ma_crossover.peak").read_text()
                    .replace("ma_crossover", "volume_spike")
                    .replace("crossover(fast_ma, slow_ma)",
                             "crossover(fast_ma, slow_ma) and volume > sma(volume, 20)"))
    frame = hours("2024-01-01", 24 * 10).frame.assign(volume=np.nan)
    store(project, CandleSet.of(frame, "BTC/USDT", "1h", "x"),
          Meta("BTC/USDT", "1h", "import", detail="x.csv"))
    from peakdsl.api import SpecError

    with pytest.raises(SpecError) as err:
        resolve("backtest", str(spec), root=project)
    assert [d.code for d in err.value.diagnostics] == ["D022"]
    assert "`volume_spike` reads `volume`, but the BTC/USDT 1h candles" in \
        err.value.diagnostics[0].message
    assert resolve("backtest", str(project / "specs/strategies/ma_crossover.peak"),
                   root=project).candles.bars == 240  # a price-only strategy runs


@pytest.mark.realdata
@pytest.mark.skipif(not BTC.is_file(), reason=f"the validation candles are not in {SHARED}")
def test_a_4h_library_strategy_on_imported_1h_equals_pandas_resampling(project: Path) -> None:
    """`macd` (BTC/USDT 4h) on the imported Binance 1h candles equals a backtest on the same
    candles resampled by pandas on its own — the same bars, fingerprint, trades, metrics."""
    from peakdsl.backtest import BacktestResult, run_backtest
    from peakdsl.data.datasets import import_into_cache
    from peakdsl.resolve import ResolvedRun

    import_into_cache(project, BTC, "BTC/USDT", None, columns={}, time_format="auto",
                      replace=False)
    spec = str(project / "specs/strategies/macd.peak")
    cached = resolve("backtest", spec, root=project)
    hourly = pd.read_csv(BTC, index_col="timestamp", parse_dates=True)
    groups = hourly.resample("4h", origin="epoch")
    bars = groups.agg({"open": "first", "high": "max", "low": "min", "close": "last",
                       "volume": "sum"})
    count = groups["close"].count()
    bars, count = bars[count > 0], count[count > 0]  # empty buckets are gaps
    edges = np.ones(len(bars), dtype=bool)
    edges[[0, -1]] = count.iloc[[0, -1]].to_numpy() == 4  # partial first/last: dropped
    bars = bars[edges]
    independent = project / "btc_usdt_4h.parquet"
    bars.rename_axis("time").to_parquet(independent)
    direct = resolve("backtest", spec, root=project, data=independent)
    assert cached.data.resampled_from == "1h" and direct.data.resampled_from is None
    assert cached.candles.bars == direct.candles.bars == 13_042
    assert cached.candles.fingerprint == direct.candles.fingerprint

    def backtest(run: ResolvedRun) -> BacktestResult:
        return run_backtest(run.artifact, run.candles, run.source_text, run.artifact_sha256)

    a, b = backtest(cached), backtest(direct)
    assert a.metrics == b.metrics and a.sim.trade_count == b.sim.trade_count > 100
    pd.testing.assert_frame_equal(a.trades_frame(), b.trades_frame())
