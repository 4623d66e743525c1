"""Importing CSV and Parquet candles: detection, normalisation and every row diagnostic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peakdsl.data.importer import CAP, import_file

HEADER = "timestamp,open,high,low,close,volume\n"


def rows(n: int, start: str = "2024-01-01T00:00:00Z", step: str = "1h") -> list[str]:
    times = pd.date_range(start, periods=n, freq=step)
    return [f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{100 + i},{102 + i},{99 + i},{101 + i},{i}"
            for i, t in enumerate(times)]


def write(tmp_path: Path, text: str, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def codes(result) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return [(d.code, d.span.line) for d in result.diagnostics]


def test_clean_csv_imports(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n".join(rows(24)) + "\n")
    result = import_file(path, "BTC/EUR", "1h")
    assert result.ok and result.diagnostics == ()
    c = result.candles
    assert c is not None
    assert c.bars == 24 and c.market == "BTC/EUR" and c.timeframe == "1h"
    assert list(c.frame.columns) == ["open", "high", "low", "close", "volume"]
    assert str(c.frame.index.tz) == "UTC" and c.frame.index.name == "time"
    assert all(c.frame.dtypes == np.float64)
    assert c.source == f"file: {path.as_posix()}" and not c.synthetic
    assert c.frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_timeframe_is_inferred(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n".join(rows(10, step="15min")) + "\n")
    result = import_file(path, "BTC/EUR")
    assert result.candles is not None and result.candles.timeframe == "15m"


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 1_000), ("us", 1_000_000)])
def test_epoch_timestamps_detected(tmp_path: Path, unit: str, scale: int) -> None:
    base = 1_704_067_200  # 2024-01-01T00:00Z
    lines = [f"{(base + 3600 * i) * scale},1,2,0.5,1.5,3" for i in range(5)]
    path = write(tmp_path, HEADER + "\n".join(lines) + "\n")
    result = import_file(path, "BTC/EUR", "1h")
    assert result.time_format == unit
    assert result.candles is not None
    assert result.candles.frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    explicit = import_file(path, "BTC/EUR", "1h", time_format=unit)
    assert explicit.candles == result.candles


def test_offsets_are_normalised_to_utc_and_naive_is_utc(tmp_path: Path) -> None:
    text = HEADER + ("2024-01-01T02:00:00+02:00,1,2,0.5,1.5,3\n"
                     "2024-01-01 01:00:00,1,2,0.5,1.5,3\n"
                     "2023-12-31T21:00:00-05:00,1,2,0.5,1.5,3\n")
    result = import_file(write(tmp_path, text), "BTC/EUR", "1h")
    assert result.candles is not None
    assert list(result.candles.frame.index) == [
        pd.Timestamp("2024-01-01T00:00Z"), pd.Timestamp("2024-01-01T01:00Z"),
        pd.Timestamp("2024-01-01T02:00Z")]


def test_unsorted_rows_are_sorted(tmp_path: Path) -> None:
    lines = rows(6)
    result = import_file(write(tmp_path, HEADER + "\n".join(reversed(lines)) + "\n"),
                         "BTC/EUR", "1h")
    assert result.candles is not None and result.candles.frame.index.is_monotonic_increasing


@pytest.mark.parametrize("header", [
    "Date,Open,High,Low,Close,Volume",
    "time,o,h,l,c,v",
    "Timestamp,OPEN,HIGH,LOW,CLOSE,Volume BTC",
    "open_time,open,high,low,close,volume",
    "datetime;open;high;low;close;volume",
])
def test_column_names_detected(tmp_path: Path, header: str) -> None:
    sep = ";" if ";" in header else ","
    body = "\n".join(r.replace(",", sep) for r in rows(4))
    result = import_file(write(tmp_path, header + "\n" + body + "\n"), "BTC/EUR", "1h")
    assert result.ok, result.diagnostics
    assert result.candles is not None and result.candles.bars == 4


def test_headerless_csv_uses_positions(tmp_path: Path) -> None:
    result = import_file(write(tmp_path, "\n".join(rows(4)) + "\n"), "BTC/EUR", "1h")
    assert result.ok and result.candles is not None and result.candles.bars == 4


def test_ambiguous_and_missing_columns_are_d002(tmp_path: Path) -> None:
    text = ("unix,date,open,high,low,close,Volume BTC,Volume USDT\n"
            "1704067200,2024-01-01,1,2,0.5,1.5,3,4\n")
    path = write(tmp_path, text)
    result = import_file(path, "BTC/EUR", "1h")
    assert [d.code for d in result.diagnostics] == ["D002"]
    assert "ambiguous volume column" in result.diagnostics[0].message
    assert "--column volume=NAME" in result.diagnostics[0].help
    fixed = import_file(path, "BTC/EUR", "1d", columns={"volume": "Volume BTC"})
    assert fixed.ok and fixed.columns["time"] == "date"  # the earlier alias wins
    missing = import_file(write(tmp_path, "time,open,high,low,volume\n", "m.csv"),
                          "BTC/EUR", "1h")
    assert [d.code for d in missing.diagnostics] == ["D002"]
    assert "no close column" in missing.diagnostics[0].message


def test_explicit_mapping_with_a_typo_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "when,open,high,low,close,volume\n" + "\n".join(rows(3)) + "\n")
    result = import_file(path, "BTC/EUR", "1h", columns={"time": "wehn"})
    assert [d.code for d in result.diagnostics] == ["D002"]
    assert "`when`" in result.diagnostics[0].help
    assert import_file(path, "BTC/EUR", "1h", columns={"time": "when"}).ok


def test_every_row_code_with_line_numbers(tmp_path: Path) -> None:
    good = rows(8)
    bad = [
        good[0],
        "not-a-date,1,2,0.5,1.5,3",              # line 3: D003
        good[2].replace(",101,", ",,"),          # line 4: D004 (low missing)
        good[3].replace(",103,", ",-103,", 1),   # line 5: D005 (open <= 0)
        "2024-01-01T04:00:00Z,10,11,9,12,1",     # line 6: D006 (high < close)
        "2024-01-01T05:00:00Z,10,11,9,10.5,-1",  # line 7: D007
        good[6],
    ]
    path = write(tmp_path, HEADER + "\n".join(bad) + "\n")
    result = import_file(path, "BTC/EUR", "1h")
    assert result.candles is None and not result.ok
    assert codes(result) == [("D003", 3), ("D004", 4), ("D005", 5), ("D006", 6), ("D007", 7)]
    by_code = {d.code: d for d in result.diagnostics}
    assert by_code["D004"].span.col == bad[2].index(",,") + 2  # points at the empty field
    assert "low" in by_code["D004"].message
    assert by_code["D005"].help and by_code["D007"].help
    assert all(d.path == path.as_posix() for d in result.diagnostics)


def test_non_numeric_and_infinite_values_are_d004(tmp_path: Path) -> None:
    text = HEADER + "2024-01-01T00:00:00Z,abc,2,1,1,1\n2024-01-01T01:00:00Z,1,inf,1,1,1\n"
    result = import_file(write(tmp_path, text), "BTC/EUR", "1h")
    assert codes(result) == [("D004", 2), ("D004", 3)]
    assert "`abc` is not a finite number" in result.diagnostics[0].message


def test_many_bad_rows_are_capped_with_a_summary(tmp_path: Path) -> None:
    lines = [r.replace(",", ",-", 1) for r in rows(CAP + 30)]  # every open negative
    result = import_file(write(tmp_path, HEADER + "\n".join(lines) + "\n"), "BTC/EUR", "1h")
    assert len(result.diagnostics) == CAP + 1
    last = result.diagnostics[-1]
    assert last.code == "D005" and "and 30 more" in last.message and last.span.line == CAP + 2


def test_nothing_is_written_on_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from peakdsl.cli import app

    path = write(tmp_path, HEADER + "2024-01-01T00:00:00Z,1,2,3,1,1\n")
    run = CliRunner().invoke(app, ["data", "import", str(path), "--market", "BTC/EUR",
                                   "--timeframe", "1h", "--root", str(tmp_path)])
    assert run.exit_code == 1
    assert not (tmp_path / ".peak").exists()


def test_duplicates_keep_last_with_d008(tmp_path: Path) -> None:
    lines = [*rows(3), "2024-01-01T01:00:00Z,7,8,6,7.5,9"]
    result = import_file(write(tmp_path, HEADER + "\n".join(lines) + "\n"), "BTC/EUR", "1h")
    assert result.ok and result.duplicates == 1
    assert codes(result) == [("D008", 3)]
    assert "keeping line 5" in result.diagnostics[0].message
    assert result.diagnostics[0].severity.value == "warning"
    assert result.candles is not None
    assert result.candles.frame.loc["2024-01-01T01:00Z", "open"] == 7


def test_gaps_are_reported_not_filled(tmp_path: Path) -> None:
    lines = rows(10)
    kept = lines[:3] + lines[6:]  # drop 3 bars
    result = import_file(write(tmp_path, HEADER + "\n".join(kept) + "\n"), "BTC/EUR", "1h")
    assert result.ok and result.gaps == 1
    assert codes(result) == [("D009", 5)]
    assert "3 missing bars" in result.diagnostics[0].message
    assert result.candles is not None and result.candles.bars == 7


def test_spacing_that_does_not_match_the_timeframe_is_d010(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n".join(rows(10)) + "\n")
    result = import_file(path, "BTC/EUR", "4h")
    assert [d.code for d in result.diagnostics] == ["D010"]
    assert "--timeframe 1h" in result.diagnostics[0].help
    stray = [*rows(5), "2024-01-01T05:30:00Z,1,2,0.5,1.5,3"]
    result = import_file(write(tmp_path, HEADER + "\n".join(stray) + "\n", "s.csv"),
                         "BTC/EUR", "1h")
    assert codes(result) == [("D010", 7)]


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    lines = rows(3)
    text = HEADER + lines[0] + "\n\n" + lines[1] + "\n" + "2024-01-01T02:00:00Z,-1,2,1,1,1\n"
    result = import_file(write(tmp_path, text), "BTC/EUR", "1h")
    assert codes(result) == [("D005", 5)]


def test_unreadable_files_are_d001(tmp_path: Path) -> None:
    assert [d.code for d in import_file(write(tmp_path, ""), "BTC/EUR").diagnostics] == ["D001"]
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    assert [d.code for d in import_file(junk, "BTC/EUR").diagnostics] == ["D001"]
    other = write(tmp_path, "x", "c.json")
    assert [d.code for d in import_file(other, "BTC/EUR").diagnostics] == ["D001"]
    only_header = write(tmp_path, HEADER, "h.csv")
    assert [d.code for d in import_file(only_header, "BTC/EUR").diagnostics] == ["D001"]


def test_parquet_with_datetime_index_and_row_numbers(tmp_path: Path) -> None:
    index = pd.date_range("2024-01-01", periods=5, freq="1h", tz="Europe/Berlin", name="Date")
    frame = pd.DataFrame({"Open": [1.0, 2, 3, 4, 5], "High": [2.0, 3, 4, 5, 6],
                          "Low": [0.5, 1, 2, 3, 4], "Close": [1.5, 2.5, 3.5, 4.5, 5.5],
                          "Volume": [1.0, 1, 1, 1, 1]}, index=index)
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    result = import_file(path, "BTC/EUR", "1h")
    assert result.ok and result.candles is not None
    assert result.candles.frame.index[0] == pd.Timestamp("2023-12-31T23:00Z")
    frame.iloc[3, 2] = 99.0  # low above everything in row index 3 → row 4
    frame.to_parquet(path)
    bad = import_file(path, "BTC/EUR", "1h")
    assert codes(bad) == [("D006", 4)]
    assert bad.diagnostics[0].message.startswith("row 4: ")


def test_parquet_epoch_ms_column(tmp_path: Path) -> None:
    ms = 1_704_067_200_000 + 3_600_000 * np.arange(4)
    frame = pd.DataFrame({"timestamp": ms, "open": 1.0, "high": 2.0, "low": 0.5,
                          "close": 1.5, "volume": 1.0})
    path = tmp_path / "c.parquet"
    frame.to_parquet(path)
    result = import_file(path, "BTC/EUR")
    assert result.time_format == "ms" and result.candles is not None
    assert result.candles.timeframe == "1h"


def test_strptime_format(tmp_path: Path) -> None:
    text = HEADER + "31/12/2023 23:00,1,2,0.5,1.5,3\n01/01/2024 00:00,1,2,0.5,1.5,3\n"
    path = write(tmp_path, text)
    assert [d.code for d in import_file(path, "BTC/EUR", "1h").diagnostics] == ["D003", "D003"]
    result = import_file(path, "BTC/EUR", "1h", time_format="%d/%m/%Y %H:%M")
    assert result.ok


def test_identical_data_identical_fingerprint(tmp_path: Path) -> None:
    csv = write(tmp_path, HEADER + "\n".join(rows(5)) + "\n")
    a = import_file(csv, "BTC/EUR", "1h").candles
    assert a is not None
    frame = a.frame.reset_index()
    frame["time"] = frame["time"].astype("int64") // 1_000_000
    pq_path = tmp_path / "c.parquet"
    frame.to_parquet(pq_path)
    b = import_file(pq_path, "BTC/EUR", "1h").candles
    assert b is not None and a.fingerprint == b.fingerprint
    c = import_file(csv, "ETH/EUR", "1h").candles
    assert c is not None and c.fingerprint != a.fingerprint


def test_one_bad_row_among_many_is_reported_at_its_line(tmp_path: Path) -> None:
    good = rows(5000, step="1min")
    good[3210] = good[3210].replace(f",{100 + 3210},", ",,", 1)  # open missing: line 3212
    result = import_file(write(tmp_path, HEADER + "\n".join(good) + "\n"), "BTC/EUR", "1m")
    assert codes(result) == [("D004", 3212)]
    assert "missing value in column `open`" in result.diagnostics[0].message


def test_one_bad_parquet_row_among_many_is_reported_at_its_row(tmp_path: Path) -> None:
    n = 5000
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="1min",
                                                     tz="UTC"),
                          "open": np.full(n, 10.0), "high": np.full(n, 11.0),
                          "low": np.full(n, 9.0), "close": np.full(n, 10.5),
                          "volume": np.ones(n)})
    frame.loc[4321, "volume"] = -2.0
    path = tmp_path / "c.parquet"
    frame.to_parquet(path, index=False)
    result = import_file(path, "BTC/EUR", "1m")
    assert codes(result) == [("D007", 4322)]
    assert result.diagnostics[0].message == "row 4322: volume is -2; volume must be >= 0"


def test_row_checks_return_only_the_failing_indices() -> None:
    from peakdsl.data.quality import failing_rows, row_problems

    n = 1000
    values = {"open": np.full(n, 10.0), "high": np.full(n, 11.0), "low": np.full(n, 9.0),
              "close": np.full(n, 10.5), "volume": np.ones(n)}
    values["close"][17] = np.nan
    values["low"][400] = 12.0
    values["volume"][999] = -1.0
    found = failing_rows(values)
    assert found.missing["close"].tolist() == [17]
    assert all(len(found.missing[c]) == 0 for c in ("open", "high", "low", "volume"))
    assert all(len(rows_) == 0 for rows_ in found.nonpositive.values())
    assert found.inconsistent.tolist() == [400]
    assert found.negative_volume.tolist() == [999]
    assert found.count == 3
    asked: list[tuple[str, list[int]]] = []

    def text(col: str, at: np.ndarray) -> list[str]:
        asked.append((col, at.tolist()))
        return [""] * len(at)

    problems = row_problems(values, text, found)
    assert [(p.row, p.code) for p in problems] == [(17, "D004"), (400, "D006"), (999, "D007")]
    assert asked == [("close", [17])]  # the text of valid cells is never built


def test_valid_rows_build_no_cell_text(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import peakdsl.data.importer as importer

    asked: list[list[int]] = []
    real = importer._texts_at

    def spy(column: pd.Series, at: np.ndarray) -> list[str]:
        asked.append(at.tolist())
        return real(column, at)

    monkeypatch.setattr(importer, "_texts_at", spy)
    good = rows(2000, step="1min")
    assert import_file(write(tmp_path, HEADER + "\n".join(good) + "\n"), "BTC/EUR", "1m").ok
    assert asked == []
    good[1500] = good[1500].replace(f",{100 + 1500},", ",x,", 1)
    good[10] = "nonsense" + good[10][20:]
    result = import_file(write(tmp_path, HEADER + "\n".join(good) + "\n"), "BTC/EUR", "1m")
    assert codes(result) == [("D003", 12), ("D004", 1502)]
    assert sorted(asked) == [[10], [1500]]


# ------------------------------------------------------------------ issue 14: quiet, precise

def test_one_bad_row_is_one_error(tmp_path: Path) -> None:
    """A row with five empty cells was five D004s; a bad time with empty cells two codes."""
    good = rows(4)
    text = HEADER + "\n".join([good[0], "2024-01-01T01:00:00Z,,,,,", "soon,,,,,", good[3]])
    result = import_file(write(tmp_path, text + "\n"), "BTC/EUR", "1h")
    assert [(d.code, d.span.line, d.message) for d in result.diagnostics] == [
        ("D004", 3, "missing values in columns `open`, `high`, `low`, `close`, `volume`"),
        ("D003", 4, "cannot read timestamp `soon` as an ISO-8601 date and time; missing "
                    "values in columns `open`, `high`, `low`, `close`, `volume`")]
    assert result.diagnostics[0].span.col == 1  # the whole row, not one cell


def test_rows_out_of_order_are_counted(tmp_path: Path) -> None:
    lines = rows(6)
    shuffled = [lines[0], lines[3], lines[1], lines[2], lines[5], lines[4]]
    result = import_file(write(tmp_path, HEADER + "\n".join(shuffled) + "\n"), "BTC/EUR", "1h")
    assert result.ok and result.resorted == 2  # 01:00 after 03:00, 04:00 after 05:00
    assert import_file(write(tmp_path, HEADER + "\n".join(lines) + "\n", "s.csv"),
                       "BTC/EUR", "1h").resorted == 0


def test_many_gaps_are_one_summary_with_each_gap_kept_for_verbose(tmp_path: Path) -> None:
    lines = rows(40)
    kept = [line for i, line in enumerate(lines) if i not in (5, 10, 11, 12, 20, 30)]
    result = import_file(write(tmp_path, HEADER + "\n".join(kept) + "\n"), "BTC/EUR", "1h")
    assert result.ok and result.gaps == 4
    (summary,) = result.diagnostics
    assert (summary.code, summary.span.line) == ("D009", 11)  # after the largest gap
    assert summary.message == ("4 gaps, 6 missing bars; the largest: 3 missing bars between "
                               "2024-01-01T09:00Z and 2024-01-01T13:00Z (4h apart)")
    assert summary.help.startswith("the first: 1 missing after 2024-01-01T04:00Z, 3 after "
                                   "2024-01-01T09:00Z, 1 after 2024-01-01T19:00Z, … ")
    assert [(d.code, d.span.line) for d in result.gap_details] == [
        ("D009", 7), ("D009", 11), ("D009", 18), ("D009", 27)]


def test_a_file_without_volume_keeps_it_unknown(tmp_path: Path) -> None:
    text = "time,open,high,low,close\n" + "\n".join(r.rsplit(",", 1)[0] for r in rows(4))
    result = import_file(write(tmp_path, text + "\n"), "BTC/EUR", "1h")
    assert result.ok and result.derived == ("volume",)
    assert [d.code for d in result.diagnostics] == ["D021"] and not result.diagnostics[0].is_error
    c = result.candles
    assert c is not None and not c.has_volume and np.isnan(c.frame["volume"]).all()
    assert c.frame["open"].tolist() == [100.0, 101.0, 102.0, 103.0]


def test_a_close_only_file_has_flat_bars(tmp_path: Path) -> None:
    text = "date,price\n2024-01-01T01:00:00Z,101.5\n2024-01-01T00:00:00Z,100\n"
    result = import_file(write(tmp_path, text), "BTC/EUR")
    assert result.ok and result.derived == ("open", "high", "low", "volume")
    assert result.resorted == 1 and result.candles is not None
    frame = result.candles.frame
    assert frame[["open", "high", "low", "close"]].to_numpy().tolist() == [[100.0] * 4,
                                                                            [101.5] * 4]
    assert "every bar is flat" in result.diagnostics[0].message
    headerless = import_file(write(tmp_path, "1704067200,5\n1704070800,6\n", "h.csv"),
                             "BTC/EUR")  # two columns without a header: time and close
    assert headerless.ok and headerless.candles is not None
    assert headerless.candles.frame["high"].tolist() == [5.0, 6.0]
    bad = import_file(write(tmp_path, "date,price\n2024-01-01T00:00:00Z,-1\n", "b.csv"),
                      "BTC/EUR", "1h")
    assert [(d.code, d.message) for d in bad.diagnostics] == [
        ("D005", "close is -1; prices must be > 0")]  # once, at the close: not 4 times


def test_some_but_not_all_of_the_range_is_still_d002(tmp_path: Path) -> None:
    text = "time,open,close,volume\n2024-01-01T00:00:00Z,1,1,1\n"
    result = import_file(write(tmp_path, text), "BTC/EUR", "1h")
    assert sorted(d.message for d in result.diagnostics) == [
        f"no high column in {tmp_path.as_posix()}/c.csv",
        f"no low column in {tmp_path.as_posix()}/c.csv"]


def test_symbol_column_and_finer_timeframes(tmp_path: Path) -> None:
    text = "time,open,high,low,close,volume,symbol\n" + "\n".join(
        f"{r},ETHUSDT" for r in rows(8))
    path = write(tmp_path, text + "\n")
    result = import_file(path, "BTC/EUR", "4h", finer=True)  # as a run's --data reads it
    assert result.ok and result.symbols == ("ETHUSDT",)
    assert result.candles is not None and result.candles.timeframe == "1h"
    strict = import_file(path, "BTC/EUR", "4h")  # as `peak data import --timeframe 4h` reads it
    assert [d.code for d in strict.diagnostics] == ["D010"]
    assert strict.diagnostics[0].help == ("pass --timeframe 1h (or leave it out): a 4h "
                                          "strategy resamples cached 1h bars itself")
