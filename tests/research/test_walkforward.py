"""Walk-forward (docs/walkforward.md): window arithmetic, no look-ahead, the out-of-sample
evaluation against an explicit ``run_backtest``, stitching, efficiency and stability, the CLI
and the HTML report. Runs on the 5,000-bar synthetic demo market with a 4-combination grid."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peakdsl import api
from peakdsl.backtest import run_backtest
from peakdsl.compile.models import StrategyArtifact
from peakdsl.data.candles import CandleSet
from peakdsl.data.select import demo_market
from peakdsl.engine.stats import METRIC_KEYS, compute_metrics
from peakdsl.lang.project import UsageError
from peakdsl.metrics import Direction, produced_by
from peakdsl.report.walkforward import render_walkforward_html
from peakdsl.research.space import build_space
from peakdsl.research.types import ParamSpace, RunConfig
from peakdsl.research.walkforward import (
    Length,
    WalkForwardResult,
    WindowError,
    bar_slice,
    check_lengths,
    param_stability,
    parse_length,
    pick_best,
    plan_windows,
    pooled_annual_return,
    run_walkforward,
    run_window,
    walkforward_doc,
    wf_efficiency,
)

ROOT = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
SETS = ("fast=10..20:10", "slow=50..100:50")
HOUR = 3600


def hours(*ranges: range) -> pd.DatetimeIndex:
    """Hourly bar times from 2025-01-01 at the given hour offsets (missing hours = gaps)."""
    offsets = [h for r in ranges for h in r]
    return pd.DatetimeIndex(pd.Timestamp("2025-01-01", tz="UTC")
                            + pd.to_timedelta(offsets, unit="h"))


def spans(times: pd.DatetimeIndex, train: str, test: str, step: str | None = None,
          anchored: bool = False) -> list[tuple[int, int, int]]:
    plan = plan_windows(times, HOUR, parse_length(train, "--train"),
                        parse_length(test, "--test"),
                        parse_length(step, "--step") if step else None, anchored)
    for w in plan.windows:
        assert w.train_end == w.test_start
    return [(w.train_start, w.test_start, w.test_end) for w in plan.windows]


# --------------------------------------------------------------------------- lengths


@pytest.mark.parametrize(("text", "bars", "seconds"), [
    ("500", 500, None), ("500bars", 500, None), ("1 bar", 1, None), ("180d", None, 180 * 86400),
    ("12h", None, 12 * 3600), ("4w", None, 4 * 604800), ("90m", None, 90 * 60),
    ("30D", None, 30 * 86400),
])
def test_parse_length(text: str, bars: int | None, seconds: int | None) -> None:
    length = parse_length(text, "--train")
    assert (length.bars, length.seconds) == (bars, seconds)


@pytest.mark.parametrize("text", ["0", "0d", "abc", "1.5d", "-5", "10y", "", "d"])
def test_parse_length_rejects(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_length(text, "--test")
    assert info.value.diagnostic.code == "U005"
    assert "--test" in info.value.diagnostic.message


def test_lengths_must_be_one_kind_and_tests_must_not_overlap() -> None:
    with pytest.raises(UsageError, match="mix bar counts and durations"):
        check_lengths(parse_length("500", "--train"), parse_length("30d", "--test"), None)
    with pytest.raises(UsageError, match="test windows would overlap"):
        check_lengths(parse_length("500", "--train"), parse_length("100", "--test"),
                      parse_length("50", "--step"))
    step = check_lengths(parse_length("30d", "--train"), parse_length("7d", "--test"), None)
    assert step == Length("7d", seconds=7 * 86400)


# --------------------------------------------------------------------------- windows


def test_rolling_windows_in_bars() -> None:
    assert spans(hours(range(100)), "40", "20") == [(0, 40, 60), (20, 60, 80), (40, 80, 100)]


def test_anchored_windows_grow_from_the_first_bar() -> None:
    assert spans(hours(range(100)), "40", "20", anchored=True) == [
        (0, 40, 60), (0, 60, 80), (0, 80, 100)]


def test_step_longer_than_test_leaves_unused_bars_between_tests() -> None:
    assert spans(hours(range(100)), "40", "20", "30") == [(0, 40, 60), (30, 70, 90)]


def test_durations_on_regular_bars_equal_bar_counts() -> None:
    times = hours(range(100))
    assert spans(times, "40h", "20h") == spans(times, "40", "20")
    assert spans(times, "1d", "12h", anchored=True) == [(0, 24, 36), (0, 36, 48), (0, 48, 60),
                                                          (0, 60, 72), (0, 72, 84),
                                                          (0, 84, 96)]


def test_last_partial_test_window_kept_when_at_least_half() -> None:
    plan = plan_windows(hours(range(110)), HOUR, Length("40", bars=40), Length("20", bars=20))
    assert [(w.test_start, w.test_end, w.partial) for w in plan.windows] == [
        (40, 60, False), (60, 80, False), (80, 100, False), (100, 110, True)]
    assert plan.notes == ("the last test window is partial (10 of 20 bars) and kept (at least "
                          "half the test length)",)


def test_last_partial_test_window_dropped_when_shorter_than_half() -> None:
    plan = plan_windows(hours(range(109)), HOUR, Length("40", bars=40), Length("20", bars=20))
    assert [w.test_end for w in plan.windows] == [60, 80, 100]
    assert plan.notes == ("the last test window would have 9 of 20 bars (less than half the "
                          "test length) and is dropped",)


def test_duration_windows_respect_gaps_without_shifting() -> None:
    # hours 50..59 are missing: 90 bars; boundaries stay on the clock (0h, 20h, 40h, …)
    times = hours(range(50), range(60, 100))
    assert spans(times, "40h", "20h") == [(0, 40, 50), (20, 50, 70), (40, 70, 90)]
    # the bar-count windows just count the bars that exist
    assert spans(times, "40", "20") == [(0, 40, 60), (20, 60, 80), (40, 80, 90)]  # partial


def test_test_window_inside_a_gap_is_skipped() -> None:
    times = hours(range(40), range(60, 100))  # hours 40..59 missing: window 1 has no test bars
    plan = plan_windows(times, HOUR, parse_length("40h", "--train"),
                        parse_length("20h", "--test"))
    assert [(w.number, w.train_start, w.test_start, w.test_end) for w in plan.windows] == [
        (1, 20, 40, 60), (2, 40, 60, 80)]
    assert plan.notes == ("window at bars 0..40 skipped: no test bars (gap in the data)",)
    first = plan.windows[0]
    assert first.test_first == pd.Timestamp("2025-01-03T12:00Z")  # hour 60
    assert first.train_first == pd.Timestamp("2025-01-01T20:00Z")


def test_window_timestamps_are_first_and_last_bars() -> None:
    plan = plan_windows(hours(range(100)), HOUR, Length("40", bars=40), Length("20", bars=20))
    w = plan.windows[1]
    assert (w.train_first, w.train_last, w.test_first, w.test_last) == (
        pd.Timestamp("2025-01-01T20:00Z"), pd.Timestamp("2025-01-03T11:00Z"),
        pd.Timestamp("2025-01-03T12:00Z"), pd.Timestamp("2025-01-04T07:00Z"))
    assert (w.train_bars, w.test_bars) == (40, 20)


def test_too_few_bars_is_u005_with_the_numbers() -> None:
    with pytest.raises(WindowError) as info:
        plan_windows(hours(range(49)), HOUR, Length("40", bars=40), Length("20", bars=20))
    d = info.value.diagnostic
    assert d.code == "U005"
    assert "need 50 bars (train 40 + at least half of test 20)" in d.message
    assert "the data has 49 bars" in d.message
    with pytest.raises(WindowError, match=r"need 2d 2h .*train 2d.*data has 1d 12h \(36 bars\)"):
        plan_windows(hours(range(36)), HOUR, parse_length("2d", "--train"),
                     parse_length("4h", "--test"))
    # exactly enough: train + half a test window
    plan = plan_windows(hours(range(50)), HOUR, Length("40", bars=40), Length("20", bars=20))
    assert [(w.test_start, w.test_end, w.partial) for w in plan.windows] == [(40, 50, True)]


# --------------------------------------------------------------------------- optimisation


def test_pick_best_nan_last_ties_first() -> None:
    assert pick_best(np.array([np.nan, 1.0, 3.0, 3.0, 2.0])) == 2
    assert pick_best(np.array([np.nan, np.nan])) == 0
    assert pick_best(np.array([-1.0, np.nan, -0.5])) == 2


def test_pick_best_minimises_where_lower_is_better() -> None:
    assert pick_best(np.array([np.nan, 3.0, 1.0, 1.0, 2.0]), Direction.LOWER) == 2
    assert pick_best(np.array([0.2, np.nan, 0.1]), Direction.LOWER) == 2


def test_a_lower_is_better_objective_picks_the_minimum_on_the_train_slice(
        artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace) -> None:
    """`--objective volatility` keeps the calmest combination of each train window."""
    result = walk(artifact, candles, space, objective="volatility")
    w = result.windows[2]
    train = bar_slice(candles, w.window.train_start, w.window.train_end)
    scores = [run_backtest(artifact, train, "", "", space.params(row)).metrics["volatility"]
              for row in range(len(space))]
    assert w.row == int(np.nanargmin(np.array(scores, dtype=np.float64)))
    assert w.objective == pytest.approx(min(s for s in scores if s is not None), rel=1e-12)
    assert "minimise volatility over a grid" in render_walkforward_html(result)


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def artifact() -> StrategyArtifact:
    art = api.compile_spec(str(ROOT / MA), ROOT)
    assert isinstance(art, StrategyArtifact)
    return art


@pytest.fixture(scope="module")
def candles() -> CandleSet:
    return demo_market("BTC/USDT", "1h")


@pytest.fixture(scope="module")
def space(artifact: StrategyArtifact) -> ParamSpace:
    built, problems = build_space(artifact.config, SETS)
    assert built is not None, problems
    assert len(built) == 4
    return built


def walk(artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace,
         **kwargs: object) -> WalkForwardResult:
    train = kwargs.pop("train", "1000")
    test = kwargs.pop("test", "500")
    return run_walkforward(artifact, candles, space, parse_length(str(train), "--train"),
                           parse_length(str(test), "--test"), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result(artifact: StrategyArtifact, candles: CandleSet,
           space: ParamSpace) -> WalkForwardResult:
    return walk(artifact, candles, space)


def test_demo_run_shape(result: WalkForwardResult) -> None:
    assert [(w.window.train_start, w.window.test_start, w.window.test_end)
            for w in result.windows] == [(s, s + 1000, s + 1500) for s in range(0, 3501, 500)]
    assert result.notes == ()
    assert len(result.oos_bars) == 4000
    assert result.oos_bars.tolist() == list(range(1000, 5000))
    assert result.param_names == ("fast", "slow")
    for w in result.windows:
        assert set(w.chosen) == {"fast", "slow"}
        assert w.params["fast"] == w.chosen["fast"]
        assert w.warm and w.lead == w.warmup == w.chosen["slow"]
    assert any("synthetic demo" in x for x in result.warnings)


def test_winner_is_the_argmax_of_the_objective_on_the_train_slice(
        artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace,
        result: WalkForwardResult) -> None:
    w = result.windows[2]
    train = bar_slice(candles, w.window.train_start, w.window.train_end)
    scores = []
    for row in range(len(space)):
        bt = run_backtest(artifact, train, "", "", space.params(row))
        value = bt.metrics["sharpe"]
        scores.append(math.nan if value is None else float(value))
    assert w.row == pick_best(np.array(scores))
    best = run_backtest(artifact, train, "", "", w.chosen)
    core = {key: best.metrics[key] for key in METRIC_KEYS}  # the sweep's: the core's metrics
    assert w.is_metrics == pytest.approx(core, rel=1e-12, abs=1e-12)
    assert w.objective == pytest.approx(best.metrics["sharpe"], rel=1e-12)


def test_no_look_ahead(artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace,
                       result: WalkForwardResult) -> None:
    """Window i's choice and OOS result use nothing after its test window."""
    for i in (0, 3):
        w = result.windows[i]
        truncated = bar_slice(candles, 0, w.window.test_end)
        again = walk(artifact, truncated, space)
        assert len(again.windows) == i + 1
        mine = again.windows[i]
        assert mine.window.test_start == w.window.test_start
        assert mine.chosen == w.chosen
        assert mine.is_metrics == w.is_metrics
        assert mine.oos_metrics == w.oos_metrics
        assert np.array_equal(mine.oos_equity, w.oos_equity)


def test_a_window_alone_equals_the_same_window_in_the_run(
        artifact: StrategyArtifact, candles: CandleSet, space: ParamSpace,
        result: WalkForwardResult) -> None:
    """``run_window`` needs nothing but its arguments (what lets windows run on any worker):
    window 5 run by itself, with no window before it, gives exactly the run's window 5."""
    w = result.windows[4]
    alone = run_window(artifact, candles, space, w.window, "sharpe")
    assert (alone.number, alone.row) == (5, w.row)
    assert alone.is_metrics == w.is_metrics
    assert alone.oos.metrics == w.oos_metrics and alone.oos.lead == w.lead
    assert np.array_equal(alone.oos.sim.equity, w.oos_equity)
    assert all(np.array_equal(alone.oos.sim.trades[k], w.oos_trades[k]) for k in w.oos_trades)
    assert min(alone.seconds) >= 0.0


def test_oos_equals_run_backtest_on_the_extended_slice(
        artifact: StrategyArtifact, candles: CandleSet, result: WalkForwardResult) -> None:
    """The test window's evaluation: a plain backtest that starts ``warmup`` bars early (so its
    own warm-up ends exactly at the test window's first bar), restricted to the test bars."""
    for w in result.windows[1:3]:
        win = w.window
        warmup = artifact.config.warmup.evaluate(dict(w.params))
        assert warmup == w.lead
        extended = bar_slice(candles, win.test_start - warmup, win.test_end)
        bt = run_backtest(artifact, extended, "", "", w.params)
        assert bt.signals.warmup == warmup
        equity = np.asarray(bt.sim.equity)
        assert np.all(equity[:warmup] == 10_000.0)  # nothing happens before the window
        assert np.array_equal(equity[warmup:], w.oos_equity)
        assert np.all(bt.sim.trades["entry_bar"] >= warmup)
        assert np.array_equal(bt.sim.trades["pnl"], w.oos_trades["pnl"])
        assert np.array_equal(bt.sim.trades["entry_bar"] - warmup, w.oos_trades["entry_bar"])
        from peakdsl.engine.results import SimResult

        restricted = SimResult(equity=equity[warmup:],
                               position=np.asarray(bt.sim.position)[warmup:],
                               trades=bt.sim.trades, ambiguous_bars=bt.sim.ambiguous_bars,
                               fees_paid=bt.sim.fees_paid)
        assert w.oos_metrics == compute_metrics(restricted, bt.settings,
                                                artifact.config.timeframe_seconds)


def test_stitched_equity_chains_the_windows(result: WalkForwardResult) -> None:
    stitched = result.oos_equity
    capital = result.capital
    pos = 0
    level = capital
    for w in result.windows:
        n = w.window.test_bars
        part = stitched[pos:pos + n]
        np.testing.assert_allclose(part, w.oos_equity * level / capital, rtol=1e-12)
        level = float(part[-1])
        pos += n
    assert pos == len(stitched)
    growth = math.prod(1.0 + float(w.oos_metrics["total_return"] or 0.0)
                       for w in result.windows)
    assert result.oos_metrics["total_return"] == pytest.approx(growth - 1.0, rel=1e-9)
    assert result.oos_metrics["trades"] == sum(int(w.oos_metrics["trades"] or 0)
                                               for w in result.windows)
    trades = result.oos_sim.trades
    assert np.all(np.diff(trades["entry_bar"]) > 0)  # global bars, in order
    assert result.promotion_metrics["oos_sharpe"] == result.oos_metrics["sharpe"]
    assert result.promotion_metrics["oos_max_drawdown"] == result.oos_metrics["max_drawdown"]


def test_efficiency_and_stability_of_the_run(result: WalkForwardResult) -> None:
    bpy = 8760.0
    growth = math.prod(1.0 + float(w.is_metrics["total_return"] or 0.0) for w in result.windows)
    is_annual = growth ** (bpy / sum(w.window.train_bars for w in result.windows)) - 1.0
    assert result.is_annual_return == pytest.approx(is_annual, rel=1e-9)
    oos_annual = (1.0 + float(result.oos_metrics["total_return"] or 0.0)) ** (bpy / 4000) - 1.0
    assert result.oos_annual_return == pytest.approx(oos_annual, rel=1e-9)
    expected = oos_annual / is_annual if is_annual > 0 else None
    assert result.wf_efficiency == (pytest.approx(expected, rel=1e-9) if expected else None)
    fast = [w.chosen["fast"] for w in result.windows]
    assert result.stability["fast"].values == tuple(fast)
    assert result.stability["fast"].mode_share == max(fast.count(v) for v in fast) / len(fast)


def test_wf_efficiency_hand_computed() -> None:
    # two train windows of 100 hourly bars returning +10% and -5%
    pooled = pooled_annual_return([0.10, -0.05], [100, 100], 8760.0)
    assert pooled == pytest.approx(1.045 ** 43.8 - 1.0, rel=1e-12)
    assert wf_efficiency(0.2, 0.4) == 0.5
    assert wf_efficiency(-0.1, 0.5) == pytest.approx(-0.2)
    assert wf_efficiency(0.2, 0.0) is None
    assert wf_efficiency(0.2, -0.1) is None
    assert wf_efficiency(None, 0.3) is None
    assert pooled_annual_return([0.1, None], [10, 10], 8760.0) is None
    assert pooled_annual_return([-1.0, 0.5], [10, 10], 8760.0) == -1.0


def test_param_stability_hand_computed() -> None:
    chosen = [{"a": 10, "b": 1}, {"a": 20, "b": 1}, {"a": 10, "b": 2}, {"a": 30, "b": 2}]
    s = param_stability(("a", "b"), chosen)
    a, b = s["a"], s["b"]
    assert a.mean == 17.5
    assert a.std == pytest.approx(math.sqrt(68.75))
    assert a.cv == pytest.approx(math.sqrt(68.75) / 17.5)
    assert (a.mode, a.mode_share, a.changes) == (10.0, 0.5, 3)
    assert (b.mean, b.std) == (1.5, 0.5)
    assert b.cv == pytest.approx(1 / 3)
    assert (b.mode, b.mode_share, b.changes) == (1.0, 0.5, 1)  # tie → the smaller value
    zero = param_stability(("z",), [{"z": 0.0}, {"z": 0.0}])["z"]
    assert (zero.cv, zero.mode_share) == (None, 1.0)


def test_anchored_durations_and_json(artifact: StrategyArtifact, candles: CandleSet,
                                     space: ParamSpace) -> None:
    r = walk(artifact, candles, space, train="60d", test="30d", anchored=True)
    assert [(w.window.train_start, w.window.test_start, w.window.test_end, w.window.partial)
            for w in r.windows] == [(0, 1440, 2160, False), (0, 2160, 2880, False),
                                    (0, 2880, 3600, False), (0, 3600, 4320, False),
                                    (0, 4320, 5000, True)]
    doc = walkforward_doc(r)
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text)["config"]["anchored"] is True
    assert doc["windows"][4]["test"]["partial"] is True
    assert set(doc["promotion_metrics"]) == {"oos_sharpe", "oos_total_return",
                                             "oos_max_drawdown", "wf_efficiency"}
    assert tuple(doc["promotion_metrics"]) == produced_by("walkforward")
    for part in ("in_sample", "out_of_sample"):  # counts are ints, as the catalogue says
        counts = {k for k, v in doc["windows"][0][part].items() if isinstance(v, int)}
        # out of sample, a backtest of the window: its trades' longest holding time too
        extra = {"max_bars_held"} if part == "out_of_sample" else set()
        assert counts == {"trades", "max_drawdown_bars", "ambiguous_bars", "orders_reduced",
                          *extra}


def test_no_params_runs_the_defaults(artifact: StrategyArtifact, candles: CandleSet) -> None:
    r = run_walkforward(artifact, candles, None, Length("2000", bars=2000),
                        Length("1500", bars=1500), run=RunConfig(capital=5_000.0))
    assert len(r.windows) == 2
    assert r.windows[0].chosen == {} and r.windows[0].params == {"fast": 20.0, "slow": 50.0}
    assert r.stability == {}
    assert r.oos_equity[0] == pytest.approx(5_000.0, rel=0.01)


def test_html_report_is_self_contained_and_deterministic(result: WalkForwardResult) -> None:
    html = render_walkforward_html(result)
    assert html == render_walkforward_html(result)
    assert not re.search(r"<script[^>]+src=", html)
    assert 'id="wf-chart-equity"' in html and 'id="wf-chart-params"' in html
    assert "Synthetic demo data" in html
    figures = json.loads(re.search(r'id="peak-figures">(.*?)</script>', html, re.S)
                         .group(1))  # type: ignore[union-attr]
    shapes = figures["wf-chart-equity"]["layout"]["shapes"]
    assert len(shapes) == 3 * len(result.windows)  # shade + train + test per window


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wf")
    shutil.copytree(ROOT / "specs", root / "specs")
    return root


def peak(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "peakdsl.cli", "walkforward", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return run


def test_cli_json_and_report(project: Path) -> None:
    report = project / "out" / "wf.html"
    run = peak(project, MA, "--train", "1000", "--test", "500", "--set", SETS[0], "--set",
               SETS[1], "--json", "--report", str(report))
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert len(doc["windows"]) == 8
    assert doc["data"]["synthetic"] is True
    assert doc["config"]["combinations"] == 4
    assert doc["promotion_metrics"]["oos_sharpe"] == doc["out_of_sample"]["metrics"]["sharpe"]
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]+src=[\"']?https?:", html)


def test_cli_text(project: Path) -> None:
    run = peak(project, MA, "--train", "60d", "--test", "30d", "--anchored", "--random", "2",
               "--seed", "1", "--objective", "total_return")
    assert run.returncode == 0, run.stderr
    assert "synthetic demo" in run.stdout
    assert "walk-forward efficiency" in run.stdout
    assert "partial" in run.stdout


@pytest.mark.parametrize(("args", "code", "needle"), [
    (("--train", "abc", "--test", "500"), 2, "U005"),
    (("--train", "500", "--test", "30d"), 2, "mix bar counts and durations"),
    (("--train", "4900", "--test", "500"), 2, "need 5,150 bars"),
    (("--train", "1000", "--test", "500", "--set", "fats=10"), 1, "N014"),
    (("--train", "1000", "--test", "500", "--objective", "luck"), 2, "U005"),
    (("--train", "1000", "--test", "500", "--report", "x.pdf"), 2, "U005"),
])
def test_cli_errors(project: Path, args: tuple[str, ...], code: int, needle: str) -> None:
    run = peak(project, MA, *args)
    assert run.returncode == code, run.stdout + run.stderr
    assert needle in run.stderr


def test_cli_missing_spec(project: Path) -> None:
    run = peak(project, "specs/strategies/nope.peak", "--train", "10", "--test", "5")
    assert run.returncode in (1, 2)
    assert run.stderr.strip()
