"""The notebook API (docs/notebook.md): ``api.backtest/sweep/walkforward`` on a spec's text or
file and on candles given as a DataFrame; results as DataFrames (``peakdsl.frames``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peakdsl import api
from peakdsl.data.select import demo_market
from peakdsl.engine.stats import METRIC_KEYS
from peakdsl.frames import SweepRun, WalkForwardRun
from peakdsl.lang.project import UsageError
from peakdsl.registry.store import Registry
from peakdsl.research.sweep import SweepResult
from peakdsl.research.walkforward import WalkForwardResult

ROOT = Path(__file__).resolve().parents[1]
MA = "specs/strategies/ma_crossover.peak"

STEPS = """\
strategy steps {
    market BTC/EUR
    timeframe 1h
    entry long when close > close[1]
    exit long when close < close[1]
    size 100% of equity
    execution {
        fees 0bps
        slippage 0bps
    }
}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("frames")
    shutil.copytree(ROOT / "specs", root / "specs")
    return root


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    """The BTC/USDT 1h demo candles as a user's DataFrame: a plain ``timestamp`` column."""
    return demo_market("BTC/USDT", "1h").frame.rename_axis("timestamp").reset_index()


def six_bars() -> pd.DataFrame:
    close = [100.0, 110.0, 121.0, 99.0, 99.0, 99.0]
    opens = [100.0, 100.0, 110.0, 121.0, 99.0, 99.0]
    return pd.DataFrame({"open": opens, "high": np.maximum(opens, close),
                         "low": np.minimum(opens, close), "close": close, "volume": 1.0},
                        index=pd.date_range("2024-01-01", periods=6, freq="h"))


def test_a_text_spec_on_a_frame_gives_the_trades_equity_and_metrics_worked_by_hand() -> None:
    """Up on bar 1 → buy bar 2's open (110) with all 10,000; down on bar 3 → sell at 99."""
    run = api.backtest(STEPS, data=six_bars(), record=False)
    trade = run.trades.iloc[0]
    assert len(run.trades) == 1 and trade["side"] == "long"
    assert (trade["entry_price"], trade["exit_price"]) == (110.0, 99.0)
    assert trade["pnl"] == pytest.approx(-1000.0) and trade["return"] == pytest.approx(-0.1)
    assert trade["entry_time"] == pd.Timestamp("2024-01-01T02:00", tz="UTC")
    equity = run.equity
    assert list(equity.columns) == ["equity", "drawdown", "position"]
    assert equity.index.name == "time" and str(equity.index.tz) == "UTC"
    assert equity["equity"].tolist() == pytest.approx([1e4, 1e4, 11e3, 9e3, 9e3, 9e3])
    assert equity["drawdown"].min() == pytest.approx(-2 / 11)
    assert equity["position"].tolist() == pytest.approx([0, 0, 1e4 / 110, 1e4 / 110, 0, 0])
    metrics = run.metrics
    assert metrics.name == "steps" and metrics.dtype == np.float64
    assert list(metrics.index) == list(run.result.metrics)  # every metric, in its order
    assert set(METRIC_KEYS) <= set(metrics.index)
    assert (metrics["trades"], metrics["total_return"]) == (1.0, pytest.approx(-0.1))
    assert metrics["max_drawdown"] == pytest.approx(-2 / 11)
    assert run.result.candles.source == "DataFrame" and run.result.source_path == "steps.peak"


def test_a_frame_runs_exactly_as_the_same_candles_in_a_file(project: Path,
                                                             candles: pd.DataFrame) -> None:
    csv = project / "candles.csv"
    candles.to_csv(csv, index=False)
    spec = str(project / MA)
    by_frame = api.backtest(spec, data=candles, record=False)
    by_file = api.backtest(spec, data=str(csv), record=False)
    assert by_frame.result.candles.fingerprint == by_file.result.candles.fingerprint
    pd.testing.assert_series_equal(by_frame.metrics, by_file.metrics)
    pd.testing.assert_frame_equal(by_frame.trades, by_file.trades)
    pd.testing.assert_frame_equal(by_frame.equity, by_file.equity)
    again = api.backtest((project / MA).read_text(), root=project, data=candles, record=False)
    pd.testing.assert_series_equal(again.metrics, by_frame.metrics)  # text = file


def test_a_recorded_frame_run_says_where_its_data_came_from(project: Path) -> None:
    run = api.backtest(STEPS, root=project, data=six_bars())
    assert run.run_id is not None
    with Registry(project) as registry:
        record = registry.get_run(run.run_id)
    assert record.data_source == "DataFrame"
    assert record.data_fingerprint == run.result.candles.fingerprint


def test_the_sweep_table_is_every_combination_ranked_best_first(project: Path,
                                                                 candles: pd.DataFrame) -> None:
    swept = api.sweep(str(project / MA), data=candles, sets=["fast=10..20", "slow=50..60"],
                      objective="calmar", record=False)
    assert isinstance(swept, SweepRun) and isinstance(swept, SweepResult)
    table = swept.table
    assert list(table.columns) == ["fast", "slow", *METRIC_KEYS]  # the objective once
    assert table.index.name == "rank" and list(table.index) == list(range(1, 7))
    assert table.attrs["objective"] == "calmar"
    assert table["calmar"].is_monotonic_decreasing
    assert table.iloc[0][["fast", "slow"]].to_dict() == swept.best_params
    best = swept.row(int(swept.ranking[0]))["metrics"]
    assert table.iloc[0]["sharpe"] == best["sharpe"]
    assert swept.data_source == "DataFrame"


def test_the_walkforward_table_has_a_row_per_window(project: Path,
                                                    candles: pd.DataFrame) -> None:
    wf = api.walkforward(str(project / MA), data=candles, train="1500", test="500",
                         sets=["fast=10..20", "slow=50..60"], record=False)
    assert isinstance(wf, WalkForwardRun) and isinstance(wf, WalkForwardResult)
    table = wf.table
    assert list(table.index) == [w.window.number for w in wf.windows] == [1, 2, 3, 4, 5, 6, 7]
    first = wf.windows[0]
    assert table.loc[1, "test_first"] == first.window.test_first
    assert table.loc[1, ["fast", "slow"]].to_dict() == first.chosen
    assert table.loc[1, "is_sharpe"] == first.objective
    assert table.loc[1, "oos_trades"] == first.oos_metrics["trades"]
    assert len(wf.equity) == len(wf.oos_bars) == table["test_bars"].sum()
    total = wf.equity["equity"].iloc[-1] / wf.capital - 1
    assert total == pytest.approx(wf.metrics["total_return"])
    assert len(wf.trades) == wf.metrics["trades"]
    assert wf.trades["entry_time"].min() >= table["test_first"].min()


def test_bad_candles_raise_the_import_diagnostics(candles: pd.DataFrame) -> None:
    broken = candles.copy()
    broken.loc[10, "close"] = np.nan
    with pytest.raises(api.SpecError) as caught:
        api.backtest(STEPS, data=broken, record=False)
    assert [d.code for d in caught.value.diagnostics] == ["D004"]
    assert "DataFrame:11:1: error[D004] row 11: " in str(caught.value)
    with pytest.raises(api.SpecError) as spaced:  # 1h candles for a 15m spec
        api.backtest(STEPS.replace("timeframe 1h", "timeframe 15m"), data=six_bars(),
                     record=False)
    assert [d.code for d in spaced.value.diagnostics] == ["D010"]


def test_data_that_is_neither_a_path_nor_a_frame_is_u005() -> None:
    with pytest.raises(UsageError) as caught:
        api.backtest(STEPS, data=[1, 2, 3], record=False)  # type: ignore[arg-type]
    assert caught.value.diagnostic.code == "U005"
    assert "DataFrame" in caught.value.diagnostic.help


def test_a_spec_text_that_does_not_check_names_the_file_it_would_be() -> None:
    with pytest.raises(api.SpecError) as caught:
        api.backtest(STEPS.replace("close[1]", "clsoe[1]", 1), data=six_bars(), record=False)
    assert {d.path for d in caught.value.diagnostics} == {"steps.peak"}
    assert "clsoe" in str(caught.value)


def test_a_frame_of_a_finer_timeframe_is_resampled_to_the_specs(candles: pd.DataFrame) -> None:
    four_hours = STEPS.replace("timeframe 1h", "timeframe 4h")
    run = api.backtest(four_hours, data=candles, record=False)
    assert (run.result.timeframe, run.result.candles.bars) == ("4h", 5_000 // 4)
    assert run.result.candles.source.startswith("DataFrame")
    assert "resampled from 1h" in run.result.candles.source
