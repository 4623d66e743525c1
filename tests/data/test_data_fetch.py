"""Fetching through real ccxt (binance) from a loopback server: pages, retries, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from peak_loopback import EPOCH_MS, HOUR_MS, FakeBinance, binance_at, serve

from peakdsl.data import DataError
from peakdsl.data.cache import load_cached, read_meta
from peakdsl.data.fetch import fetch_ohlcv

NOW = pd.Timestamp("2025-01-01", tz="UTC")


def at(hours: int) -> pd.Timestamp:
    return pd.Timestamp((EPOCH_MS + hours * HOUR_MS) * 1_000_000, tz="UTC")


def expected_frame(state: FakeBinance, start_h: int, end_h: int) -> pd.DataFrame:
    rows = state.expected(EPOCH_MS + start_h * HOUR_MS, EPOCH_MS + end_h * HOUR_MS)
    index = pd.DatetimeIndex(np.array([r[0] for r in rows], dtype="datetime64[ms]")
                             .astype("datetime64[ns]"), name="time").tz_localize("UTC")
    return pd.DataFrame({c: [float(r[i]) for r in rows] for i, c in
                         enumerate(["open", "high", "low", "close", "volume"], start=1)},
                        index=index)


def starts(state: FakeBinance) -> list[int]:
    return [int(q["startTime"]) for q in state.log]


def test_fetch_paginates_retries_and_resumes(tmp_path: Path) -> None:
    gap = EPOCH_MS + 1500 * HOUR_MS
    state = FakeBinance(last_ms=EPOCH_MS + 5999 * HOUR_MS, missing={gap},
                        faults={2: "429", 4: "drop"})
    sleeps: list[float] = []
    with serve(state) as url:
        exchange = binance_at(url)
        report = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(2500), root=tmp_path,
                             exchange=exchange, sleep=sleeps.append, now=NOW)
        assert report.complete and not [d for d in report.diagnostics if d.is_error]
        assert report.retries == 2 and len(sleeps) == 2  # one 429, one dropped connection
        assert all(q["symbol"] == "BTCUSDT" and q["interval"] == "1h" for q in state.log)
        # pages of 1000 bars; a failed request is repeated at the same cursor; the second
        # page spans the missing bar, so it ends an hour later
        assert starts(state) == [EPOCH_MS, EPOCH_MS + 1000 * HOUR_MS,
                                 EPOCH_MS + 1000 * HOUR_MS, EPOCH_MS + 2001 * HOUR_MS,
                                 EPOCH_MS + 2001 * HOUR_MS]
        cached = load_cached(tmp_path, "BTC/USDT", "1h")
        assert cached is not None and not cached.synthetic
        pd.testing.assert_frame_equal(cached.frame, expected_frame(state, 0, 2500))
        assert report.gaps == 1 and [d.code for d in report.diagnostics] == ["D009"]

        # second run, a longer range: only the missing tail is requested
        state.log.clear()
        state.faults.clear()
        again = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(3200), root=tmp_path,
                            exchange=exchange, sleep=sleeps.append, now=NOW)
        assert again.missing == [(EPOCH_MS + 2500 * HOUR_MS, EPOCH_MS + 3200 * HOUR_MS)]
        assert starts(state) == [EPOCH_MS + 2500 * HOUR_MS]
        assert again.new_bars == 700
        cached = load_cached(tmp_path, "BTC/USDT", "1h")
        assert cached is not None
        pd.testing.assert_frame_equal(cached.frame, expected_frame(state, 0, 3200))

        # third run, same range: nothing requested (the known gap is not asked about again)
        state.log.clear()
        third = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(3200), root=tmp_path,
                            exchange=exchange, sleep=sleeps.append, now=NOW)
        assert third.missing == [] and state.log == [] and third.new_bars == 0


def test_interrupted_fetch_keeps_progress_and_resumes(tmp_path: Path) -> None:
    state = FakeBinance(last_ms=EPOCH_MS + 9999 * HOUR_MS,
                        faults=dict.fromkeys(range(3, 20), "429"))  # the exchange goes away
    sleeps: list[float] = []
    with serve(state) as url:
        exchange = binance_at(url)
        report = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(4000), root=tmp_path,
                             exchange=exchange, sleep=sleeps.append, now=NOW, max_retries=3)
        assert not report.complete
        assert [d.code for d in report.diagnostics if d.is_error] == ["D011"]
        assert "resumes" in report.diagnostics[0].help
        assert sleeps == [2.0, 4.0, 8.0]  # exponential backoff (doubled for rate limits)
        kept = load_cached(tmp_path, "BTC/USDT", "1h")
        assert kept is not None and kept.bars == 2000  # two pages made it
        meta = read_meta(tmp_path / ".peak/data/BTC-USDT/1h.parquet")
        assert meta is not None and meta.ranges == ((EPOCH_MS, EPOCH_MS + 2000 * HOUR_MS),)

        state.log.clear()
        state.faults.clear()
        resumed = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(4000), root=tmp_path,
                              exchange=exchange, sleep=sleeps.append, now=NOW)
        assert resumed.complete
        assert starts(state) == [EPOCH_MS + 2000 * HOUR_MS, EPOCH_MS + 3000 * HOUR_MS]
        cached = load_cached(tmp_path, "BTC/USDT", "1h")
        assert cached is not None
        pd.testing.assert_frame_equal(cached.frame, expected_frame(state, 0, 4000))


def test_small_pages_and_flushes(tmp_path: Path) -> None:
    state = FakeBinance(last_ms=EPOCH_MS + 999 * HOUR_MS)
    with serve(state) as url:
        report = fetch_ohlcv("binance", "BTC/USDT", "1h", at(10), at(260), root=tmp_path,
                             exchange=binance_at(url), sleep=lambda s: None, now=NOW,
                             limit=100, flush_pages=1)
    assert report.complete and report.new_bars == 250 and len(state.log) == 3
    assert all(q["limit"] == "100" for q in state.log)


def test_until_defaults_to_the_last_closed_bar(tmp_path: Path) -> None:
    state = FakeBinance(last_ms=EPOCH_MS + 99 * HOUR_MS)
    with serve(state) as url:
        report = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), None, root=tmp_path,
                             exchange=binance_at(url), sleep=lambda s: None,
                             now=at(50) + pd.Timedelta("30min"))
    assert report.until == at(50) and report.bars == 50


def test_unknown_exchange_market_and_timeframe_are_d012(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        fetch_ohlcv("binanse", "BTC/USDT", "1h", at(0), at(10), root=tmp_path)
    assert [d.code for d in err.value.diagnostics] == ["D012"]
    assert "binance" in err.value.diagnostics[0].help
    state = FakeBinance(last_ms=EPOCH_MS)
    with serve(state) as url:
        exchange = binance_at(url)
        with pytest.raises(DataError) as err:
            fetch_ohlcv("binance", "BTC/USDC", "1h", at(0), at(10), root=tmp_path,
                        exchange=exchange, now=NOW)
        assert [d.code for d in err.value.diagnostics] == ["D012"]
        assert "BTC/USDT" in err.value.diagnostics[0].help
        exchange.timeframes = {"1h": "1h", "1d": "1d"}
        with pytest.raises(DataError) as err:
            fetch_ohlcv("binance", "BTC/USDT", "4h", at(0), at(100), root=tmp_path,
                        exchange=exchange, now=NOW)
        assert [d.code for d in err.value.diagnostics] == ["D012"]
    assert state.log == []


def test_fetch_over_a_damaged_cache_quarantines_it_then_starts_afresh(tmp_path: Path) -> None:
    """A damaged cache is D013 (quarantined, nothing merged into it); the same fetch run
    again re-fetches the whole range — the tombstone does not stop a writer — and clears it."""
    from peakdsl.data.cache import cache_path
    from peakdsl.data.integrity import tombstone_path

    state = FakeBinance(last_ms=EPOCH_MS + 999 * HOUR_MS)
    with serve(state) as url:
        exchange = binance_at(url)
        fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(500), root=tmp_path,
                    exchange=exchange, sleep=lambda s: None, now=NOW)
        path = cache_path(tmp_path, "BTC/USDT", "1h")
        path.write_bytes(path.read_bytes()[:-1])
        with pytest.raises(DataError) as err:
            fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(500), root=tmp_path,
                        exchange=exchange, sleep=lambda s: None, now=NOW)
        assert [d.code for d in err.value.diagnostics] == ["D013"]
        assert "`peak data fetch binance BTC/USDT 1h --since " in err.value.diagnostics[0].help
        assert tombstone_path(path).exists() and not path.exists()
        state.log.clear()
        again = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(500), root=tmp_path,
                            exchange=exchange, sleep=lambda s: None, now=NOW)
        assert again.complete and again.new_bars == 500 and starts(state) == [EPOCH_MS]
        assert not tombstone_path(path).exists()
        cached = load_cached(tmp_path, "BTC/USDT", "1h")
        assert cached is not None and cached.bars == 500


def test_fetch_replace_recreates_an_unverified_dataset(tmp_path: Path) -> None:
    """A dataset cached before checksums (D014) blocks a merging fetch; `--replace` (the fix
    D014 names) fetches the range afresh and seals the result."""
    import json

    from peakdsl.data.cache import cache_path, read_manifest, sidecar_path

    state = FakeBinance(last_ms=EPOCH_MS + 999 * HOUR_MS)
    with serve(state) as url:
        exchange = binance_at(url)
        fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(300), root=tmp_path,
                    exchange=exchange, sleep=lambda s: None, now=NOW)
        side = sidecar_path(cache_path(tmp_path, "BTC/USDT", "1h"))
        doc = json.loads(side.read_text())
        del doc["content"]
        side.write_text(json.dumps(doc))
        with pytest.raises(DataError) as err:
            fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(400), root=tmp_path,
                        exchange=exchange, sleep=lambda s: None, now=NOW)
        assert [d.code for d in err.value.diagnostics] == ["D014"]
        assert ("`peak data fetch binance BTC/USDT 1h --since 2024-01-01T00:00Z --replace`"
                in err.value.diagnostics[0].help)
        report = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(400), root=tmp_path,
                             exchange=exchange, sleep=lambda s: None, now=NOW, replace=True)
        assert report.complete and report.new_bars == 400
        assert read_manifest(cache_path(tmp_path, "BTC/USDT", "1h")).state == "sealed"


def test_fetch_does_not_merge_into_a_dataset_without_volume(tmp_path: Path) -> None:
    """Imported without volume (D021), merged with the exchange's bars the volume would be
    known on some bars only: D002 before any request; --replace fetches afresh."""
    from peakdsl.data.cache import Meta, store
    from peakdsl.data.candles import CandleSet

    frame = expected_frame(FakeBinance(last_ms=EPOCH_MS + 99 * HOUR_MS), 0, 10)
    store(tmp_path, CandleSet.of(frame.assign(volume=np.nan), "BTC/USDT", "1h", "x"),
          Meta("BTC/USDT", "1h", "import", detail="x.csv"))
    state = FakeBinance(last_ms=EPOCH_MS + 99 * HOUR_MS)
    with serve(state) as url:
        exchange = binance_at(url)
        state.log.clear()
        with pytest.raises(DataError) as err:
            fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(50), root=tmp_path,
                        exchange=exchange, sleep=lambda s: None, now=NOW)
        assert [d.code for d in err.value.diagnostics] == ["D002"]
        assert "has no volume column" in err.value.diagnostics[0].message
        assert starts(state) == []
        report = fetch_ohlcv("binance", "BTC/USDT", "1h", at(0), at(50), root=tmp_path,
                             exchange=exchange, sleep=lambda s: None, now=NOW, replace=True)
        assert report.complete and report.new_bars == 50
