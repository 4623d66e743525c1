"""`peak backtest`'s text output: one row per catalogue backtest metric, labelled and formatted
by the catalogue, in its order."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peakdsl import api
from peakdsl.cli.backtest import print_summary
from peakdsl.metrics import BACKTEST_METRICS, CATALOGUE, format_metric

REPO = Path(__file__).resolve().parents[2]


def test_metrics_table_has_every_catalogue_row_in_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    run = api.backtest(str(tmp_path / "specs/strategies/ma_crossover.peak"), root=tmp_path,
                       record=False)
    print_summary(run.result, None, None, None)
    lines = capsys.readouterr().out.splitlines()
    rows = []
    for name in BACKTEST_METRICS:
        label = CATALOGUE[name].label
        row = next(i for i, line in enumerate(lines) if f"│ {label} " in line)
        assert format_metric(name, run.result.metrics[name]) in lines[row], name
        rows.append(row)
    assert rows == sorted(rows) and len(set(rows)) == len(rows)
    assert any("│ Trades " in line and f" {run.result.metrics['trades']:,} │" in line
               for line in lines)
