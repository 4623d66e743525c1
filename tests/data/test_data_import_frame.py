"""A pandas DataFrame is validated as a file import is (``import_frame``): the same candles,
fingerprint and diagnostics, rows named by position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peakdsl.data.importer import FRAME, import_file, import_frame


def frame(n: int = 24, start: str = "2024-01-01", step: str = "1h") -> pd.DataFrame:
    """``n`` valid candles on a naive DatetimeIndex (naive times are UTC)."""
    i = np.arange(n, dtype=np.float64)
    return pd.DataFrame({"open": 100 + i, "high": 102 + i, "low": 99 + i, "close": 101 + i,
                         "volume": i}, index=pd.date_range(start, periods=n, freq=step))


def problems(result) -> list[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    return [(d.code, d.span.line, d.message) for d in result.diagnostics]


def test_a_frame_gives_the_candles_and_fingerprint_of_the_same_csv(tmp_path: Path) -> None:
    df = frame()
    csv = tmp_path / "c.csv"
    df.rename_axis("timestamp").to_csv(csv)
    from_file = import_file(csv, "BTC/EUR", "1h").candles
    from_frame = import_frame(df, "BTC/EUR", "1h").candles
    assert from_file is not None and from_frame is not None
    assert from_frame.fingerprint == from_file.fingerprint
    assert from_frame.source == FRAME == "DataFrame" and not from_frame.synthetic
    assert from_frame.frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


@pytest.mark.parametrize("shape", ["index", "named index", "index of any name", "column",
                                   "epoch ms column"])
def test_time_comes_from_an_index_or_a_column(shape: str) -> None:
    df = frame(5)
    table = {"index": df, "named index": df.rename_axis("Date"),
             "index of any name": df.rename_axis("when"),
             "column": df.rename_axis("timestamp").reset_index(),
             "epoch ms column": df.assign(ts=df.index.asi8 // 1_000_000).reset_index(drop=True),
             }[shape]
    result = import_frame(table, "BTC/EUR")
    assert result.ok and result.candles is not None, problems(result)
    assert result.candles.timeframe == "1h"  # inferred, as for a file
    assert result.candles.fingerprint == import_frame(df, "BTC/EUR", "1h").candles.fingerprint


def test_zone_aware_times_are_converted_to_utc() -> None:
    berlin = frame(3).tz_localize("Europe/Berlin")
    candles = import_frame(berlin, "BTC/EUR", "1h").candles
    assert candles is not None
    assert candles.frame.index[0] == pd.Timestamp("2023-12-31T23:00", tz="UTC")


def test_the_callers_frame_is_left_as_it_was() -> None:
    df = frame(6).iloc[::-1]
    before = df.copy()
    assert import_frame(df, "BTC/EUR", "1h").ok
    pd.testing.assert_frame_equal(df, before)


def test_row_errors_name_the_position_like_parquet_rows() -> None:
    df = frame(6)
    df.iloc[1, df.columns.get_loc("close")] = np.nan  # row 2
    df.iloc[4, df.columns.get_loc("low")] = 500.0  # row 5: low above high
    result = import_frame(df, "BTC/EUR", "1h")
    assert result.candles is None
    assert [(c, line) for c, line, _ in problems(result)] == [("D004", 2), ("D006", 5)]
    assert problems(result)[0][2].startswith("row 2: ")
    assert all(d.path == "DataFrame" for d in result.diagnostics)


def test_missing_columns_and_empty_frames() -> None:
    missing = import_frame(frame(3).drop(columns="close"), "BTC/EUR", "1h")
    assert [c for c, _, _ in problems(missing)] == ["D002"]
    assert "no close column in DataFrame" in problems(missing)[0][2]
    empty = import_frame(frame(0), "BTC/EUR", "1h")
    assert [(c, m) for c, _, m in problems(empty)] == [("D001", "DataFrame has no rows of data")]


def test_column_problems_say_what_to_do_with_a_dataframe() -> None:
    """A DataFrame has no --column option: D002's help names the pandas step instead."""
    no_time = import_frame(frame(3).rename_axis("when").reset_index(), "BTC/EUR", "1h")
    assert [d.help for d in no_time.diagnostics] == [
        "the columns are: when, open, high, low, close, volume; give the DataFrame a "
        "DatetimeIndex (`df.set_index(\"NAME\")`) or name its time column `time`"]
    no_close = import_frame(frame(3).rename(columns={"close": "px"}), "BTC/EUR", "1h")
    assert no_close.diagnostics[0].help == (
        "the columns are: time, open, high, low, px, volume; rename it to `close` "
        "(`df.rename(columns={\"NAME\": \"close\"})`)")
    two = import_frame(frame(3).assign(Close=1.0), "BTC/EUR", "1h")
    assert [(d.code, d.help) for d in two.diagnostics] == [
        ("D002", "keep one of them: drop the others (`df.drop(columns=[...])`) before "
                 "passing it")]
    assert all("--column" not in d.help for r in (no_time, no_close, two)
               for d in r.diagnostics)


def test_duplicates_gaps_and_spacing_as_for_a_file() -> None:
    df = frame(6)
    doubled = pd.concat([df.iloc[:3], df.iloc[2:3], df.iloc[3:]])
    dup = import_frame(doubled, "BTC/EUR", "1h")
    assert dup.ok and dup.duplicates == 1 and [c for c, _, _ in problems(dup)] == ["D008"]
    gap = import_frame(df.drop(df.index[2]), "BTC/EUR", "1h")
    assert gap.ok and gap.gaps == 1 and [c for c, _, _ in problems(gap)] == ["D009"]
    wrong = import_frame(df, "BTC/EUR", "4h")
    assert wrong.candles is None and [c for c, _, _ in problems(wrong)] == ["D010"]


def test_a_parquet_file_with_an_unnamed_datetime_index_imports(tmp_path: Path) -> None:
    """The same rule for files: pandas writes an unnamed index, peak reads it as the time."""
    path = tmp_path / "c.parquet"
    frame(4).to_parquet(path)
    result = import_file(path, "BTC/EUR", "1h")
    assert result.ok and result.candles is not None and result.candles.bars == 4
