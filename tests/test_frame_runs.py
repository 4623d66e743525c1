"""Runs of a spec that reads other timeframes and markets (``lang.frames``): the other
market's candles come from the cache (D023 when they are missing beside real candles), and
every run kind computes the same numbers from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl import api
from peakdsl.api import SpecError
from peakdsl.cli import app
from peakdsl.data.select import demo_market

SPEC = """\
strategy pair {
    market BTC/USDT
    timeframe 1h
    param n: int = 24 in 12..48 step 12
    let spread = log(close) - log(close@ETH/USDT)
    let z = zscore(spread, n)
    entry long when z < -1 and close > sma(close, 10)@4h
    exit long when z > 0
    size 50% of equity
}
"""


def cached(root: Path, market: str, bars: int = 3_000) -> None:
    """``market``'s demo candles imported as a file would be: real, as far as a run knows."""
    frame = demo_market(market, "1h").frame.iloc[:bars]
    path = root / f"{market.replace('/', '-')}.csv"
    frame.reset_index().to_csv(path, index=False)
    result = CliRunner().invoke(app, ["data", "import", str(path), "--market", market,
                                      "--timeframe", "1h", "--root", str(root)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("frame_runs")
    (root / "specs" / "strategies").mkdir(parents=True)
    (root / "specs" / "strategies" / "pair.peak").write_text(SPEC)
    cached(root, "BTC/USDT")
    return root


def test_a_missing_other_market_beside_real_candles_is_d023(tmp_path: Path) -> None:
    (tmp_path / "specs" / "strategies").mkdir(parents=True)
    spec = tmp_path / "specs" / "strategies" / "pair.peak"
    spec.write_text(SPEC)
    cached(tmp_path, "BTC/USDT", bars=500)
    result = CliRunner().invoke(app, ["backtest", str(spec)])
    assert result.exit_code == 1, result.output
    assert "error[D023]" in result.output and "ETH/USDT" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(SpecError) as caught:
        api.backtest(str(spec), root=tmp_path, record=False)
    assert [d.code for d in caught.value.diagnostics] == ["D023"]


def test_the_other_market_comes_from_the_cache_and_counts_in_the_data_hash(
        project: Path) -> None:
    spec = str(project / "specs/strategies/pair.peak")
    cached(project, "ETH/USDT")
    run = api.backtest(spec, root=project, record=False)
    assert run.result.metrics["trades"] > 0
    again = api.backtest(spec, root=project, record=False)
    assert again.result.metrics == run.result.metrics  # deterministic
    alone = api.backtest(SPEC.replace("close@ETH/USDT", "open"), root=project, record=False)
    assert run.result.candles.fingerprint != alone.result.candles.fingerprint
    assert [o.market for o in run.result.candles.others] == ["ETH/USDT"]
    assert "; ETH/USDT: cache: " in run.result.candles.source  # where both came from


def test_the_sweeps_best_line_gives_the_sweeps_numbers(project: Path) -> None:
    spec = str(project / "specs/strategies/pair.peak")
    cached(project, "ETH/USDT")
    swept = api.sweep(spec, root=project, record=False, workers=1)
    assert swept.best_row is not None
    n = int(swept.best_params["n"])
    run = api.backtest(spec, root=project, overrides=[f"n={n}"], record=False)
    best = {k: float(v[swept.best_row]) for k, v in swept.metrics.items()}
    assert run.result.metrics["trades"] == best["trades"]
    assert run.result.metrics["sharpe"] == pytest.approx(best["sharpe"], rel=1e-12, abs=1e-12)


def test_a_walk_forward_runs_its_windows_on_both_markets(project: Path) -> None:
    spec = str(project / "specs/strategies/pair.peak")
    cached(project, "ETH/USDT")
    walked = api.walkforward(spec, train="1200", test="600", root=project, record=False,
                             workers=1)
    assert len(walked.windows) >= 2


def test_the_demo_market_stands_in_for_both_when_nothing_is_cached(tmp_path: Path) -> None:
    run = api.backtest(SPEC, root=tmp_path, record=False)
    assert run.result.metrics["trades"] > 0


def test_a_robustness_study_stresses_the_strategys_market_and_keeps_the_other(
        project: Path) -> None:
    cached(project, "ETH/USDT")
    result = CliRunner().invoke(app, ["robustness", str(project / "specs/strategies/pair.peak"),
                                      "--runs", "20", "--stress", "all", "--no-jitter"])
    assert result.exit_code == 0, result.output
    assert "data_gap" in result.output and "I001" not in result.output
