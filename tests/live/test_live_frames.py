"""Frames in live (``lang.frames``): a strategy reading coarser bars of its own market
(``specs/strategies/daily_trend_filter.peak``: ``@1d`` and ``@4h``) deploys — its session
pushes each candle with its open time, so its stream builds the days and 4h bars a backtest
builds — on paper and on the (loopback) testnet alike. Another market read is a feed of its
own: ``test_live_markets``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from deploy_setup import REPO, TESTNET_ENV, runner_settings

from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.run import LiveRequest, run_live
from peakdsl.live.runner import run_deployment

SPEC = "specs/strategies/daily_trend_filter.peak"
GATE = "promotion any_trade {\n    require sharpe >= -10\n    require trades >= 1\n}\n"
# on the demo candles with the derived history only: bought 2025-12-17T10:00, sold
# 2025-12-25T00:00 (the daily filter turned)
WINDOW = ("2025-12-15", "2025-12-26")


def request(root: Path, spec: str, mode: str) -> LiveRequest:
    return LiveRequest(spec=str(root / spec), mode=mode, replay=True,  # type: ignore[arg-type]
                       start=WINDOW[0], end=WINDOW[1], min_history=0)


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the spec library with daily_trend_filter promoted to testnet."""
    from peakdsl.promote.flow import promote

    base = tmp_path_factory.mktemp("frames")
    shutil.copytree(REPO / "specs", base / "specs")
    (base / "specs" / "risk" / "any_trade.peak").write_text(GATE)
    promote(str(base / SPEC), gate="any_trade", stage="testnet", root=base, run=True,
            author="alice")
    return base


def test_a_paper_session_trades_on_daily_and_4h_bars() -> None:
    summary = run_live(request(REPO, SPEC, "paper"))
    assert summary.history_bars == [502]  # 24 * 20 + 22: the daily SMA defined at once
    assert [(f.time, f.side, f.reason) for f in summary.fills] == [
        ("2025-12-17T10:00:00Z", "buy", "entry"), ("2025-12-25T00:00:00Z", "sell", "signal")]


def test_a_testnet_deployment_sends_what_the_paper_session_books(
        promoted: Path, exchange: LoopbackExchange) -> None:
    paper = run_live(request(promoted, SPEC, "paper"))
    summary = run_deployment(request(promoted, SPEC, "testnet"),
                             runner_settings(exchange.url), env=TESTNET_ENV)
    assert exchange.calls["POST /api/v3/order"] == 2
    assert [(f.time, f.side) for f in summary.fills] == [(f.time, f.side)
                                                         for f in paper.fills]
    assert [f.qty for f in summary.fills] == pytest.approx([f.qty for f in paper.fills],
                                                           rel=1e-3)
