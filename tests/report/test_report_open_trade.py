"""An `end_of_data mark` run's open position and reduced orders appear in both reports."""

from __future__ import annotations

from conftest import candles  # tests/report is on sys.path

from peakdsl import api
from peakdsl.backtest import run_backtest
from peakdsl.compile import models as m
from peakdsl.report.html import render_html
from peakdsl.report.markdown import render_markdown

SPEC = """strategy marked {
    market BTC/USDT
    timeframe 1h
    entry long when close > open
    size 150% of equity
    execution {
        end_of_data mark
    }
}
"""


def test_open_position_and_reduced_orders_are_shown() -> None:
    artifact = api.compile_source(SPEC, "marked")
    assert isinstance(artifact, m.StrategyArtifact)
    result = run_backtest(artifact, candles(300), SPEC, "cd" * 32)
    assert result.sim.trade_count == 0 and len(result.sim.open_trades["entry_bar"]) == 1
    html, md = render_html(result), render_markdown(result)
    for text in (html, md):
        assert "Open at the end (" in text and "end_of_data mark" in text
        assert "(reduced to fit)" in text  # 150 % of equity does not fit a cash account
        assert "no exit fee" in text
