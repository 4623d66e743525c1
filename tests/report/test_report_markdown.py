"""The Markdown summary and ``write_report``."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from peakdsl.backtest import BacktestResult
from peakdsl.report import write_report
from peakdsl.report.markdown import md_cell, md_code, render_markdown, top_trade_indices

MakeResult = Callable[..., BacktestResult]


def table(text: str, header: str) -> list[list[str]]:
    """The body cells of the GFM table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    assert re.fullmatch(r"\|(\s*-+:?\s*\|)+", lines[start + 1].replace("---:", "---"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([c.strip() for c in cells])
    return rows


def pairs(rows: list[list[str]]) -> dict[str, str]:
    return {row[0]: row[1] for row in rows}


@pytest.fixture(scope="module")
def summary(result: BacktestResult) -> str:
    return render_markdown(result)


def test_header_and_hashes(result: BacktestResult, summary: str) -> None:
    assert summary.startswith("## Backtest: `ma_crossover` · BTC/USDT 1h\n")
    run = pairs(table(summary, "| run |"))
    assert run["artifact sha256"] == f"`{'ab' * 32}`"
    assert run["data fingerprint"] == f"`{result.candles.fingerprint}`"
    assert run["bars"] == "2,000 (warm-up 50)"
    assert run["period"] == "2023-01-01 00:00 → 2023-03-25 07:00 UTC"
    assert run["engine"] == "peak 0.3.0"
    assert "> [!WARNING]" in summary and "**Synthetic demo data**" in summary


def test_metrics_table(summary: str) -> None:
    metrics = pairs(table(summary, "| metric |"))
    assert metrics["volatility"] == "42.13%"
    assert metrics["sharpe"] == "1.23"
    assert metrics["calmar"] == "—"
    assert metrics["trades"] == "20"
    assert list(metrics)[:3] == ["total_return", "cagr", "volatility"]


def test_against_buy_and_hold_and_holding_times(summary: str) -> None:
    rows = table(summary, "| | strategy | buy & hold |")
    assert rows[0] == ["total return", "-0.25%", "-38.09%"]
    assert rows[-1] == ["strategy − buy & hold", "+37.83 pp", ""]
    assert "Time in a trade: mean 96.0 bars (4d), median 96.0 bars (4d), longest 96 bars " \
           "(4d)." in summary
    assert pairs(table(summary, "| metric |"))["buy_hold_return"] == "-38.09%"


def test_reproduce_line(result: BacktestResult, summary: str) -> None:
    assert "reproduce" not in pairs(table(summary, "| run |"))
    line = "peak backtest specs/strategies/ma_crossover.peak --set fast=10"
    run = pairs(table(render_markdown(result, reproduce=line), "| run |"))
    assert run["reproduce"] == f"`{line}`"


def test_settings_and_params(summary: str) -> None:
    settings = pairs(table(summary, "| setting |"))
    assert settings["fees"] == "10.00 bps" and settings["sizing_value"] == "25.00%"
    assert settings["stop_loss"] == "none"
    assert pairs(table(summary, "| param |")) == {"fast": "20", "slow": "50"}


def test_top_ten_trades(result: BacktestResult, summary: str) -> None:
    rows = table(summary, "| # |")
    assert len(rows) == 10
    pnl = result.sim.trades["pnl"]
    best = sorted(range(len(pnl)), key=lambda i: -pnl[i])[:10]
    assert [int(r[0]) for r in rows] == [i + 1 for i in best]
    assert top_trade_indices(result) == best
    assert "20 closed trades; the 10 with the highest pnl:" in summary


def test_no_trades_and_real_data(make_result: MakeResult) -> None:
    text = render_markdown(make_result(trades=0, synthetic=False))
    assert "No closed trades." in text
    assert "[!WARNING]" not in text and "synthetic" not in text.lower()


def test_cells_are_escaped(make_result: MakeResult) -> None:
    text = render_markdown(make_result(warnings=("a | b\nc",), source_path="x|y.peak"))
    assert "- a \\| b c" in text
    assert "x\\|y.peak" in text
    assert md_cell("a|b\\") == "a\\|b\\\\"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x") == "`` `x ``"


def test_deterministic(make_result: MakeResult, summary: str) -> None:
    assert render_markdown(make_result()) == summary


@pytest.mark.parametrize("name", ["r.html", "r.HTM", "sub/dir/r.md"])
def test_write_report_by_suffix(result: BacktestResult, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_report(result, path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".md":
        assert text.startswith("## Backtest:")
    else:
        assert text.startswith("<!DOCTYPE html>")
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


@pytest.mark.parametrize("name", ["r.txt", "report", "r.json", "r.html.bak"])
def test_write_report_rejects_other_suffixes(result: BacktestResult, tmp_path: Path,
                                             name: str) -> None:
    with pytest.raises(ValueError, match=r"use a \.html, \.htm or \.md file name"):
        write_report(result, tmp_path / name)
    assert not list(tmp_path.iterdir())
