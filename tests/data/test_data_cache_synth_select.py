"""The Parquet cache, the synthetic market and how a run's data is chosen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peakdsl.data import DataError
from peakdsl.data.cache import (
    Meta,
    cache_path,
    list_cached,
    load_cached,
    merge,
    parquet_bytes,
    read_meta,
    store,
)
from peakdsl.data.candles import CandleSet
from peakdsl.data.select import demo_market, load_for
from peakdsl.data.synth import DEMO_BARS, DEMO_END, demo_seed, simulate, synth_market


def small(n: int = 48, market: str = "BTC/EUR", seed: int = 1) -> CandleSet:
    return synth_market(market, "1h", n, seed)


# ------------------------------------------------------------------------------ cache

def test_cache_round_trip(tmp_path: Path) -> None:
    candles = small()
    meta = Meta("BTC/EUR", "1h", "synth", True, "seed 1", None, 1)
    path = store(tmp_path, candles, meta)
    assert path == tmp_path / ".peak" / "data" / "BTC-EUR" / "1h.parquet"
    assert read_meta(path) == meta
    back = load_cached(tmp_path, "BTC/EUR", "1h")
    assert back is not None
    assert back.fingerprint == candles.fingerprint
    pd.testing.assert_frame_equal(back.frame, candles.frame)
    assert back.synthetic and back.source.startswith("cache: ")
    assert load_cached(tmp_path, "ETH/EUR", "1h") is None


def test_settle_suffix_in_the_path(tmp_path: Path) -> None:
    assert cache_path(tmp_path, "BTC/USDT:USDT", "4h").parent.name == "BTC-USDT-USDT"


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash while writing leaves the previous file intact and no temp files behind."""
    first = small(24)
    path = store(tmp_path, first, Meta("BTC/EUR", "1h", "import"))
    before = path.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store(tmp_path, small(48, seed=2), Meta("BTC/EUR", "1h", "import"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["1h.json", "1h.parquet"]


def test_a_file_peak_did_not_write_is_d013_and_quarantined(tmp_path: Path) -> None:
    path = cache_path(tmp_path, "BTC/EUR", "1h")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    with pytest.raises(DataError) as err:
        load_cached(tmp_path, "BTC/EUR", "1h")
    assert [d.code for d in err.value.diagnostics] == ["D013"]
    assert "has no manifest" in err.value.diagnostics[0].message
    assert not path.exists()
    assert [p.read_bytes() for p in (tmp_path / ".peak" / "quarantine").iterdir()] == [
        b"garbage"]


def test_merge_new_wins(tmp_path: Path) -> None:
    a = small(10)
    frame = a.frame.iloc[5:].copy()
    frame["close"] = frame[["open", "high"]].min(axis=1)
    b = CandleSet.of(frame, "BTC/EUR", "1h", "b")
    merged = merge(a, b, "m")
    assert merged.bars == 10 and merged.source == "m"
    assert (merged.frame["close"].iloc[5:] == frame["close"]).all()


def test_list_cached(tmp_path: Path) -> None:
    store(tmp_path, small(24, "ETH/EUR"), Meta("ETH/EUR", "1h", "synth", True, "", None, 1))
    store(tmp_path, small(12), Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    entries = list_cached(tmp_path)
    assert [(e.market, e.timeframe, e.bars) for e in entries] == [
        ("BTC/EUR", "1h", 12), ("ETH/EUR", "1h", 24)]
    assert entries[0].source == "imported from x.csv" and entries[1].synthetic
    assert entries[0].end == small(12).frame.index[-1]


# ------------------------------------------------------------------------------ synth

def test_synth_is_deterministic_to_the_byte() -> None:
    a, b = synth_market("BTC/EUR", "1h", 2000, 7), synth_market("BTC/EUR", "1h", 2000, 7)
    assert parquet_bytes(a) == parquet_bytes(b)
    assert a.fingerprint == b.fingerprint
    assert synth_market("BTC/EUR", "1h", 2000, 8).fingerprint != a.fingerprint


def test_synth_candles_are_valid_and_placed() -> None:
    c = synth_market("BTC/EUR", "15m", 3000, 3)
    f = c.frame
    assert c.synthetic and c.bars == 3000
    assert f.index[-1] + pd.Timedelta("15min") == DEMO_END
    assert (f.index.to_series().diff().dropna() == pd.Timedelta("15min")).all()
    assert (f[["open", "high", "low", "close"]] > 0).all().all()
    assert (f["low"] <= f[["open", "close"]].min(axis=1)).all()
    assert (f["high"] >= f[["open", "close"]].max(axis=1)).all()
    assert (f["volume"] > 0).all()
    assert 10_000 < f["close"].median() < 200_000  # BTC priced in EUR
    eth_btc = synth_market("ETH/BTC", "1h", 500, 3).frame["close"]
    assert 0.005 < eth_btc.median() < 0.5


def test_synth_statistics() -> None:
    path = simulate(20_000, 11, 3600, 100.0)
    r = np.diff(np.log(path.close))
    z = r - r.mean()
    kurtosis = float(np.mean(z**4) / np.mean(z**2) ** 2)
    assert kurtosis > 3  # fat tails
    a = np.abs(r)
    acf = float(np.corrcoef(a[1:], a[:-1])[0, 1])
    assert acf > 0.05  # volatility clustering
    assert 0.1 < path.trending.mean() < 0.9  # both regimes present
    v = path.volume[1:]
    assert float(np.corrcoef(v, a)[0, 1]) > 0.2  # volume follows |returns|


# ------------------------------------------------------------------------------ select

def test_fallback_is_the_labelled_synthetic_demo(tmp_path: Path) -> None:
    c = load_for("BTC/EUR", "1h", root=tmp_path)
    seed = demo_seed("BTC/EUR", "1h")
    assert c.synthetic and c.source == f"synthetic demo (seed {seed})"
    assert c.bars == DEMO_BARS and c.frame.index[-1] == DEMO_END - pd.Timedelta("1h")
    again = load_for("BTC/EUR", "1h", root=tmp_path / "elsewhere")
    assert again.fingerprint == c.fingerprint
    assert load_for("ETH/EUR", "1h", root=tmp_path).fingerprint != c.fingerprint
    assert load_for("BTC/EUR", "4h", root=tmp_path).fingerprint != c.fingerprint
    assert not (tmp_path / ".peak").exists()  # nothing written
    (notice,) = c.warnings  # never silently synthetic (issue 14): D018 names the commands
    assert (notice.code, notice.is_error) == ("D018", False)
    assert notice.message == ("no BTC/EUR candles in the cache: running on the synthetic demo "
                              f"market (seed {seed})")
    assert notice.help == (
        "fill the cache with `peak data import FILE --market BTC/EUR` (a file of 1h candles, "
        "or of a finer timeframe such as 30m, 15m) or `peak data fetch binance BTC/EUR 1h "
        "--since 2024-01-01` (any ccxt exchange id)")


def test_demo_seed_is_stable() -> None:
    # sha256-derived: the same on every machine and Python run (PYTHONHASHSEED irrelevant)
    assert demo_seed("BTC/EUR", "1h") == demo_seed("btc/eur", "1h") == 1962923912


def test_cache_beats_synthetic_and_data_beats_cache(tmp_path: Path) -> None:
    cached = small(100)
    store(tmp_path, cached, Meta("BTC/EUR", "1h", "import", False, "x"))
    c = load_for("BTC/EUR", "1h", root=tmp_path)
    assert not c.synthetic and c.fingerprint == cached.fingerprint
    assert c.source.startswith("cache: ") and c.source.endswith("BTC-EUR/1h.parquet")
    csv = tmp_path / "mine.csv"
    f = small(30, seed=9).frame.reset_index()
    f.to_csv(csv, index=False)
    d = load_for("BTC/EUR", "1h", root=tmp_path, data=csv)
    assert d.bars == 30 and d.source.startswith("file: ") and not d.synthetic


def test_data_file_with_the_wrong_spacing_is_d010(tmp_path: Path) -> None:
    """A finer file is resampled (tests/data/test_data_resample.py); a coarser one cannot be
    made finer: D010, whose help names no option that does not exist (issue 14)."""
    csv = tmp_path / "mine.csv"
    small(30).frame.reset_index().to_csv(csv, index=False)
    with pytest.raises(DataError) as err:
        load_for("BTC/EUR", "30m", root=tmp_path, data=csv)
    assert [d.code for d in err.value.diagnostics] == ["D010"]
    assert "--timeframe" not in err.value.diagnostics[0].help
    assert err.value.diagnostics[0].help == (
        "a 30m strategy needs 30m candles, or candles of a finer timeframe that divides 30m "
        "(15m, 5m, 3m, …), which it resamples")


def test_data_file_errors_raise(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("time,open,high,low,close,volume\n2024-01-01,1,2,3,1,1\n")
    with pytest.raises(DataError) as err:
        load_for("BTC/EUR", "1h", root=tmp_path, data=csv)
    assert [d.code for d in err.value.diagnostics] == ["D006"]
    with pytest.raises(DataError) as err:
        load_for("BTC/EUR", "1h", root=tmp_path, data=tmp_path / "none.csv")
    assert [d.code for d in err.value.diagnostics] == ["D001"]


def test_start_end_slice(tmp_path: Path) -> None:
    start, end = pd.Timestamp("2025-12-30T00:00Z"), pd.Timestamp("2025-12-31T00:00Z")
    c = load_for("BTC/EUR", "1h", root=tmp_path, start=start, end=end)
    assert c.bars == 24 and c.frame.index[0] == start and c.frame.index[-1] < end
    assert c.fingerprint != demo_market("BTC/EUR", "1h").fingerprint
    with pytest.raises(DataError) as after:
        load_for("BTC/EUR", "1h", root=tmp_path, start=pd.Timestamp("2030-01-01"))
    with pytest.raises(DataError) as before:
        load_for("BTC/EUR", "1h", root=tmp_path, end=pd.Timestamp("2000-01-01"))
    # an open end is "the end", an open start "the start" (a missing --to said "the start")
    assert [e.value.diagnostics[0].message.split(";")[0] for e in (after, before)] == [
        "no BTC/EUR 1h bars between 2030-01-01T00:00Z and the end",
        "no BTC/EUR 1h bars between the start and 2000-01-01T00:00Z"]


def test_data_file_warnings_travel_with_the_candles(tmp_path: Path) -> None:
    """--data keeps the import's D008/D009 warnings: the first three per code as the import
    words them, then one line that counts the rest (issue 7: they used to be dropped)."""
    frame = small(40).frame.reset_index()
    rows = frame.drop(index=[5, 10, 15, 20, 25]).reset_index(drop=True)  # five 1-bar gaps
    rows = pd.concat([rows, rows.iloc[[2]]], ignore_index=True)  # one duplicate row
    csv = tmp_path / "gappy.csv"
    rows.to_csv(csv, index=False)
    candles = load_for("BTC/EUR", "1h", root=tmp_path, data=csv)
    assert candles.bars == 35
    found = [(d.code, d.span.line, d.message) for d in candles.warnings]
    assert [(c, line) for c, line, _ in found] == [("D008", 4), ("D009", 7)]
    assert found[0][2] == ("duplicate timestamp 2025-12-30T10:00Z: line 4 is repeated by "
                           "line 37; keeping line 37 (the last)")
    assert found[1][2] == ("5 gaps, 5 missing bars; the largest: 1 missing bar between "
                           "2025-12-30T12:00Z and 2025-12-30T14:00Z (2h apart)")
    assert candles.warnings[1].help == (
        "the first: 1 missing after 2025-12-30T12:00Z, 1 after 2025-12-30T17:00Z, 1 after "
        "2025-12-30T22:00Z, … (`peak data import --verbose` lists each); gaps are kept, not "
        "filled")
    assert all(not d.is_error and d.path.endswith("gappy.csv") for d in candles.warnings)
    sliced = load_for("BTC/EUR", "1h", root=tmp_path, data=csv,
                      start=pd.Timestamp("2025-12-31T00:00Z"))
    assert sliced.warnings == candles.warnings
    assert [d.code for d in load_for("BTC/EUR", "1h", root=tmp_path).warnings] == ["D018"]
