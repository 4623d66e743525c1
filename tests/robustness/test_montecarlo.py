"""The Monte-Carlo entry points: hand cases per method, chunking invariance, seeds, the fan
chart's bounds, trade returns from pnl and every refused argument."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from peakdsl.robustness import bootstrap as bs
from peakdsl.robustness import montecarlo as mc
from peakdsl.robustness import paths
from peakdsl.robustness.summary import Distribution

TRADES = np.array([-0.1, -0.2, 0.5])  # every order ends at 1.08 (tests/robustness/test_paths)
SHARPE = 0.3049971406652093  # per trade, 3 trades a year (worked in test_paths.py)
RANDOM = np.random.default_rng(5).normal(0.001, 0.02, 300)


def same(a: Distribution, b: Distribution) -> bool:
    """Byte-identical runs and fan."""
    fields = ("total_return", "max_drawdown", "sharpe")
    return all(getattr(a, f).tobytes() == getattr(b, f).tobytes() for f in fields) \
        and a.fan.equity.tobytes() == b.fan.equity.tobytes() \
        and a.fan.steps.tobytes() == b.fan.steps.tobytes()


def test_reshuffle_moves_only_the_drawdown() -> None:
    d = mc.reshuffle(TRADES, runs=300, seed=1, trades_per_year=3)
    assert d.runs == 300 and d.method == "reshuffle"
    assert d.total_return == pytest.approx(np.full(300, 0.08), abs=1e-12)
    assert d.sharpe == pytest.approx(np.full(300, SHARPE), abs=1e-12)
    # an order's drawdown is -0.28 or -0.2 (test_paths): both show up among 300 runs
    assert sorted(set(np.round(d.max_drawdown, 12).tolist())) == [-0.28, -0.2]
    assert d.prob_loss() == 0.0 and d.risk_of_ruin(0.5) == 0.0


def test_every_reshuffled_run_is_the_order_it_drew() -> None:
    drawdown_of = {(0, 1, 2): -0.28, (0, 2, 1): -0.2, (1, 0, 2): -0.28, (1, 2, 0): -0.2,
                   (2, 0, 1): -0.28, (2, 1, 0): -0.28}
    d = mc.reshuffle(TRADES, runs=40, seed=9, trades_per_year=3)
    for run in range(40):
        order = tuple(bs.draw("reshuffle", 9, run, 3).tolist())
        assert d.max_drawdown[run] == pytest.approx(drawdown_of[order], abs=1e-12)


def test_skip_with_share_zero_is_the_original_in_every_run() -> None:
    d = mc.skip(TRADES, runs=50, seed=3, trades_per_year=3, share=0.0)
    assert d.total_return == pytest.approx(np.full(50, 0.08), abs=1e-12)
    assert d.max_drawdown == pytest.approx(np.full(50, -0.28), abs=1e-12)
    assert d.sharpe == pytest.approx(np.full(50, SHARPE), abs=1e-12)
    assert mc.observed(TRADES, 3) == pytest.approx((0.08, -0.28, SHARPE), abs=1e-12)


def test_skip_drops_about_its_share() -> None:
    d = mc.skip(np.full(200, 0.01), runs=200, seed=3, trades_per_year=200, share=0.25)
    kept = np.log1p(d.total_return) / np.log(1.01)  # each run's number of kept trades
    assert kept.mean() == pytest.approx(150, abs=2)  # 200 · 0.75 kept on average


def test_bootstrap_of_a_constant_series() -> None:
    d = mc.bootstrap([0.01] * 5, runs=100, seed=4, trades_per_year=5)
    assert d.total_return == pytest.approx(np.full(100, 0.0510100501), abs=1e-12)  # 1.01⁵ - 1
    assert d.max_drawdown.tolist() == [0.0] * 100
    assert np.isnan(d.sharpe).all()
    figures = d.metrics()
    assert figures["mc_bootstrap_p05_return"] == pytest.approx(0.0510100501, abs=1e-12)
    assert figures["mc_bootstrap_p50_sharpe"] is None
    assert figures["mc_bootstrap_prob_loss"] == 0.0


def test_block_bootstrap_of_the_whole_series_gives_its_rotations() -> None:
    # returns +100 %, -50 %, -50 %, +100 %: every rotation ends at 1 (total 0); drawdowns by
    # hand: start 0: 2, 1, 0.5, 1 → -0.75; start 1: 0.5, 0.25, 0.5, 1 → -0.75;
    # start 2: 0.5, 1, 2, 1 → -0.5; start 3: 2, 4, 2, 1 → -0.75
    series = [1.0, -0.5, -0.5, 1.0]
    drawdown_of = {0: -0.75, 1: -0.75, 2: -0.5, 3: -0.75}
    d = mc.block_bootstrap(series, runs=60, seed=2, bars_per_year=4, block_size=4)
    assert d.total_return == pytest.approx(np.zeros(60), abs=1e-12)
    for run in range(60):
        start = int(bs.draw("block", 2, run, 4, block=4)[0])
        assert d.max_drawdown[run] == pytest.approx(drawdown_of[start], abs=1e-12)
    assert set(np.round(d.max_drawdown, 12).tolist()) == {-0.75, -0.5}


def test_block_size_defaults_to_the_cube_root_rule() -> None:
    assert mc.make_job("block", RANDOM, runs=1, seed=0, periods_per_year=1).block_size == 7
    explicit = mc.block_bootstrap(RANDOM, runs=20, seed=1, bars_per_year=8760, block_size=7)
    default = mc.block_bootstrap(RANDOM, runs=20, seed=1, bars_per_year=8760)
    assert same(explicit, default)


@pytest.mark.parametrize("method", bs.METHODS)
def test_any_split_into_chunks_gives_the_same_bytes(method: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mc, "FAN_RUNS", 11)  # the sampled runs end inside a chunk
    monkeypatch.setattr(mc, "BATCH_INDICES", 3 * RANDOM.shape[0])  # batches of 3 runs
    job = mc.make_job(method, RANDOM, runs=37, seed=8, periods_per_year=250, share=0.2)
    whole = mc.combine(job, [mc.compute_chunk(job, 0, 37)])
    splits = [[(0, 5), (5, 6), (6, 30), (30, 37)], [(lo, lo + 1) for lo in range(37)],
              mc.chunk_bounds(37, 10)]
    for bounds in splits:
        chunks = [mc.compute_chunk(job, lo, hi) for lo, hi in reversed(bounds)]
        assert same(mc.combine(job, chunks), whole)
    assert same(mc.run(job), whole)
    assert whole.fan.runs == 11


def test_a_job_sent_to_a_worker_computes_the_same_bytes() -> None:
    job = mc.make_job("block", RANDOM, runs=12, seed=4, periods_per_year=8760)
    local = mc.run(job)
    compiled = len(paths.run_paths.signatures)
    remote = pickle.loads(pickle.dumps(job))  # its returns come back writable
    chunks = [pickle.loads(pickle.dumps(mc.compute_chunk(remote, lo, hi)))
              for lo, hi in mc.chunk_bounds(12, 5)]
    assert same(mc.combine(job, chunks), local)
    assert len(paths.run_paths.signatures) == compiled  # no second compiled kernel


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first = mc.bootstrap(RANDOM, runs=30, seed=21, trades_per_year=100)
    assert same(first, mc.bootstrap(RANDOM, runs=30, seed=21, trades_per_year=100))
    assert not same(first, mc.bootstrap(RANDOM, runs=30, seed=22, trades_per_year=100))


def test_more_runs_extend_fewer_runs() -> None:
    few = mc.bootstrap(RANDOM, runs=10, seed=6, trades_per_year=100)
    many = mc.bootstrap(RANDOM, runs=25, seed=6, trades_per_year=100)
    assert many.total_return[:10].tobytes() == few.total_return.tobytes()


def test_the_fan_chart_is_bounded() -> None:
    series = np.random.default_rng(1).normal(0.0005, 0.01, 1_000)
    d = mc.bootstrap(series, runs=2_500, seed=1, trades_per_year=250)
    assert d.fan.runs == mc.FAN_RUNS == 2_000
    assert d.fan.steps.tolist() == list(range(0, 1_001, 5))
    assert d.fan.equity.shape == (5, 201)
    assert d.fan.equity[:, 0].tolist() == [1.0] * 5
    assert (np.diff(d.fan.equity, axis=0) >= 0).all()  # bands ordered p05 ≤ … ≤ p95
    assert d.fan.equity[:, -1] == pytest.approx(
        np.percentile(1 + d.total_return[:2_000], [5, 25, 50, 75, 95]), rel=1e-12)


def test_chunk_bounds() -> None:
    assert mc.chunk_bounds(2_500) == [(0, 1_000), (1_000, 2_000), (2_000, 2_500)]
    assert mc.chunk_bounds(3, 1) == [(0, 1), (1, 2), (2, 3)]
    assert mc.chunk_bounds(1) == [(0, 1)]


def test_trade_returns_are_pnl_over_the_equity_before() -> None:
    # capital 1000: equity before each trade 1000, 1100, 990
    returns = mc.trade_returns([100.0, -110.0, 49.5], 1_000)
    assert returns == pytest.approx([0.1, -0.1, 0.05], abs=1e-15)
    assert mc.observed(returns, 1)[0] == pytest.approx(0.0395, abs=1e-12)  # 1039.5 / 1000 - 1
    assert mc.trade_returns([], 1_000).shape == (0,)


def test_per_year_counts_over_365_day_years() -> None:
    assert mc.per_year(100, 2 * 365 * 86_400) == 50.0
    assert mc.per_year(3, 365 * 86_400 / 2) == 6.0


def test_year_matches_the_engine() -> None:
    from peakdsl.engine.stats import YEAR_SECONDS

    assert mc.YEAR_SECONDS == YEAR_SECONDS


BAD_JOBS = [
    ({"runs": 0}, "runs must be a whole number of at least 1, got 0"),
    ({"runs": -3}, "runs must be a whole number of at least 1, got -3"),
    ({"runs": 2.5}, "runs must be a whole number of at least 1, got 2.5"),
    ({"seed": -1}, "seed must be a whole number of at least 0, got -1"),
    ({"share": -0.1}, r"the skipped share must be in \[0, 1\), got -0.1"),
    ({"share": 1.0}, r"the skipped share must be in \[0, 1\), got 1.0"),
    ({"block_size": 0}, "block_size must be a whole number of at least 1 step, got 0"),
    ({"block_size": 2.5}, "block_size must be a whole number of at least 1 step, got 2.5"),
    ({"seed": True}, "seed must be a whole number of at least 0, got True"),
    ({"periods_per_year": 0.0}, "periods per year must be positive, got 0.0"),
    ({"periods_per_year": float("inf")}, "periods per year must be positive, got inf"),
    ({"method": "jackknife"}, "unknown Monte-Carlo method 'jackknife'; one of reshuffle, "
                              "bootstrap, skip, block"),
    ({"returns": []}, "returns must be a non-empty one-dimensional series"),
    ({"returns": [[0.1, 0.2]]}, "returns must be a non-empty one-dimensional series"),
    ({"returns": [0.1, float("nan")]}, r"returns must be finite \(no NaN or infinity\)"),
]


@pytest.mark.parametrize(("change", "message"), BAD_JOBS)
def test_bad_arguments_are_refused(change: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"method": "skip", "returns": TRADES, "runs": 10, "seed": 1,
                               "periods_per_year": 3.0, "share": 0.1, "block_size": 2}
    args.update(change)
    with pytest.raises(ValueError, match=f"^{message}$"):
        mc.make_job(**args)


def test_the_method_functions_refuse_bad_arguments_too() -> None:
    with pytest.raises(ValueError, match="runs must be"):
        mc.bootstrap(TRADES, runs=0, seed=1, trades_per_year=3)
    with pytest.raises(ValueError, match="skipped share"):
        mc.skip(TRADES, runs=5, seed=1, trades_per_year=3, share=1.5)
    with pytest.raises(ValueError, match="block_size"):
        mc.block_bootstrap(TRADES, runs=5, seed=1, bars_per_year=3, block_size=0)


def test_chunks_that_do_not_tile_the_runs_are_refused() -> None:
    job = mc.make_job("bootstrap", TRADES, runs=10, seed=1, periods_per_year=3)
    other = mc.make_job("skip", TRADES, runs=10, seed=1, periods_per_year=3)
    reseeded = mc.make_job("bootstrap", TRADES, runs=10, seed=2, periods_per_year=3)
    a, b = mc.compute_chunk(job, 0, 5), mc.compute_chunk(job, 5, 10)
    overlap = mc.compute_chunk(job, 4, 10)
    for chunks in ([a], [a, overlap], [], [a, b, b], [mc.compute_chunk(other, 0, 5), b],
                   [a, mc.compute_chunk(reseeded, 5, 10)]):
        with pytest.raises(ValueError, match=r"do not cover the 10 runs of bootstrap \(seed 1\) "
                                             "exactly once"):
            mc.combine(job, chunks)
    for lo, hi in ((0, 11), (5, 5), (-1, 3)):
        with pytest.raises(ValueError, match=r"a chunk must lie in 0\.\.10"):
            mc.compute_chunk(job, lo, hi)
    with pytest.raises(ValueError, match="runs and chunk size must be at least 1"):
        mc.chunk_bounds(0)


def test_trade_returns_refuse_a_ruined_account_and_bad_capital() -> None:
    with pytest.raises(ValueError, match="the equity before trade 2 is -10: the account was"):
        mc.trade_returns([-500.0, -510.0, 5.0], 1_000)
    with pytest.raises(ValueError, match="capital must be positive, got 0"):
        mc.trade_returns([1.0], 0)
    with pytest.raises(ValueError, match="trade pnl must be finite"):
        mc.trade_returns([float("nan")], 100)
    with pytest.raises(ValueError, match="the run's span must be positive"):
        mc.per_year(5, 0)
