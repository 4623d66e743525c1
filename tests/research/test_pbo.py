"""The probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado, Zhu 2017).

The case computed by hand (``test_a_case_computed_by_hand``)
-------------------------------------------------------------
N = 3 combinations, T = 8 bars, S = 4 blocks of 2 bars. In block ``b`` combination ``j`` has
the two returns ``L[j][b] + 1`` and ``L[j][b] − 1`` (plain numbers: a Sharpe ratio does not
care about scale), with levels

    A = ( 4,  4, −2, −2)   good early, bad late
    B = ( 1,  1,  1,  1)   steady
    C = ( 0,  1,  1,  2)   improving

On two blocks with levels ``m1``, ``m2`` the four returns are ``m1 ± 1``, ``m2 ± 1``: mean
``μ = (m1 + m2) / 2``, sample variance ``((m1 − m2)² + 4) / 3``, so the Sharpe ratio is
``SR = μ · √3 / √((m1 − m2)² + 4)``:

    blocks   A                     B       C
    {0,1}    4·√3/2   =  3.4641    0.8660  0.5·√3/√5 = 0.3873
    {0,2}    1·√3/√40 =  0.2739    0.8660  0.5·√3/√5 = 0.3873
    {0,3}    0.2739                0.8660  1·√3/√8   = 0.6124
    {1,2}    0.2739                0.8660  1·√3/2    = 0.8660  (equal to B's, bit for bit)
    {1,3}    0.2739                0.8660  1.5·√3/√5 = 1.1619
    {2,3}    −2·√3/2  = −1.7321    0.8660  1.1619

The C(4, 2) = 6 splits (IS blocks | OOS blocks), the IS winner n*, its OOS rank r among the
three (1 = worst, ties averaged), ω = r / 4 and λ = ln(ω / (1 − ω)):

    IS     OOS    IS Sharpe A, B, C      n*    OOS Sharpe A, B, C       r    ω      λ
    {0,1}  {2,3}  3.4641 0.8660 0.3873   A     −1.7321 0.8660 1.1619    1    0.25   −1.0986
    {0,2}  {1,3}  0.2739 0.8660 0.3873   B      0.2739 0.8660 1.1619    2    0.50    0
    {0,3}  {1,2}  0.2739 0.8660 0.6124   B      0.2739 0.8660 0.8660    2.5  0.625  +0.5108
    {1,2}  {0,3}  0.2739 0.8660 0.8660   B*     0.2739 0.8660 0.6124    3    0.75   +1.0986
    {1,3}  {0,2}  0.2739 0.8660 1.1619   C      0.2739 0.8660 0.3873    2    0.50    0
    {2,3}  {0,1}  −1.7321 0.8660 1.1619  C      3.4641 0.8660 0.3873    1    0.25   −1.0986

(*: B and C tie in sample; the first row wins, as in the sweep's ranking.) λ ≤ 0 in splits
1, 2, 5 and 6: PBO = 4/6 = 0.6667. The winners' OOS Sharpe ratios are negative in one split
(prob_oos_loss = 1/6); λ has mean (−1.0986 + 0 + 0.5108 + 1.0986 + 0 − 1.0986) / 6 = −0.0980.
The degradation line through the six (IS, OOS) pairs of the winners: x̄ = 1.397661,
ȳ = 0.273437, Σ dx·dy = −5.143035, Σ dx² = 5.229257, slope = −0.983512.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.registry.store import Registry
from peakdsl.research import pbo
from peakdsl.research.store import SweepStore
from peakdsl.research.sweep import run_sweep

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/ma_crossover.peak"
SETS = ("fast=5..25:5", "slow=30..60:10")
LN3 = math.log(3.0)


def two_bar_blocks(levels: np.ndarray, spread: float = 1.0) -> np.ndarray:
    """The T × N return matrix whose block ``b`` of combination ``j`` is the two returns
    ``levels[j, b] ± spread``."""
    blocks = levels.shape[1]
    return np.repeat(levels.T, 2, axis=0) + np.tile([[spread], [-spread]], (blocks, 1))


HAND = two_bar_blocks(np.array([[4, 4, -2, -2], [1, 1, 1, 1], [0, 1, 1, 2]], dtype=float))


def test_a_case_computed_by_hand() -> None:
    moments = pbo.return_moments(HAND, 4)
    members, sampled = pbo.splits(4)
    assert not sampled
    assert members.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert pbo.complements(members, 4).tolist() == [[2, 3], [1, 3], [1, 2], [0, 3], [0, 2],
                                                     [0, 1]]
    split = pbo.evaluate_splits(moments, members)
    assert split.chosen.tolist() == [0, 1, 1, 1, 2, 2]
    assert split.rank.tolist() == [1.0, 2.0, 2.5, 3.0, 2.0, 1.0]
    assert split.omega.tolist() == [0.25, 0.5, 0.625, 0.75, 0.5, 0.25]
    np.testing.assert_allclose(split.logit, [-LN3, 0, math.log(5 / 3), LN3, 0, -LN3],
                               rtol=0, atol=1e-15)
    assert split.overfit.tolist() == [True, True, False, False, True, True]
    sr = math.sqrt(3)
    np.testing.assert_allclose(split.is_sharpe, [2 * sr, sr / 2, sr / 2, sr / 2,
                                                 1.5 * sr / math.sqrt(5), 1.5 * sr / math.sqrt(5)])
    np.testing.assert_allclose(split.oos_sharpe, [-sr, sr / 2, sr / 2, sr / 2,
                                                  0.5 * sr / math.sqrt(5), 0.5 * sr / math.sqrt(5)])
    result = pbo.probability_of_overfitting(moments)
    assert result is not None
    assert result.pbo == 4 / 6
    assert (result.combinations, result.blocks, result.splits, result.splits_total) == (3, 4, 6, 6)
    assert result.prob_oos_loss == 1 / 6
    assert result.logit["mean"] == pytest.approx(-0.0979644, abs=1e-7)
    assert result.logit["p50"] == 0.0
    assert result.degradation_slope == pytest.approx(-0.983512, abs=1e-6)
    assert result.degradation_intercept == pytest.approx(0.273437 + 0.983512 * 1.397661,
                                                         abs=1e-5)


def test_one_combination_dominating_everywhere_has_pbo_zero() -> None:
    returns = np.random.default_rng(5).normal(0.0, 0.01, (800, 20))
    returns[:, 7] += 0.01  # a per-bar Sharpe ratio near 1 against noise near 0
    result = pbo.probability_of_overfitting(pbo.return_moments(returns, 8))
    assert result is not None and result.pbo == 0.0
    assert result.splits == 70 and result.prob_oos_loss == 0.0
    # the winner is the best out of sample every time: r = N, λ = ln(N / 1)
    assert result.logit["p05"] == result.logit["p95"] == pytest.approx(math.log(20), abs=1e-12)


def test_selection_that_always_fails_out_of_sample_has_pbo_one() -> None:
    """Combination ``k`` is good exactly in the two blocks of the k-th split: it wins that
    split in sample and is the worst out of sample."""
    patterns = list(itertools.combinations(range(4), 2))
    levels = np.array([[1.0 if b in p else -1.0 for b in range(4)] for p in patterns])
    result = pbo.probability_of_overfitting(pbo.return_moments(two_bar_blocks(levels, 0.5), 4))
    assert result is not None and result.pbo == 1.0 and result.prob_oos_loss == 1.0
    assert result.logit["mean"] == pytest.approx(math.log(1 / 6), abs=1e-12)  # r = 1 of 6


def test_pure_noise_is_a_coin_toss() -> None:
    """50 seeded grids of 20 combinations of pure noise: the mean PBO is 1,920 overfit splits
    of 50 × 70. One grid's PBO swings widely (±0.19), the mean of 50 by about ±0.03 around
    0.5; a broken rank or selection (PBO 0 or 1, or a constant) falls outside the band."""
    values, logits = [], []
    for seed in range(50):
        returns = np.random.default_rng(seed).normal(0.0, 0.01, (800, 20))
        result = pbo.probability_of_overfitting(pbo.return_moments(returns, 8))
        assert result is not None
        values.append(result.pbo)
        logits.append(result.logit["mean"])
    mean = float(np.mean(values))
    assert mean == pytest.approx(1920 / 3500, abs=1e-12)
    assert 0.42 <= mean <= 0.62
    assert abs(float(np.mean(logits))) < 0.35
    assert len(set(values)) > 10  # it varies with the data


def test_block_count_and_bounds() -> None:
    assert [pbo.block_count(n) for n in (5000, 160, 159, 100, 59, 35, 20, 19, 0)] == [
        16, 16, 14, 10, 4, 2, 2, 0, 0]
    assert pbo.block_count(5000, wanted=9) == 8
    assert pbo.block_bounds(10, 4).tolist() == [0, 2, 5, 7, 10]
    assert pbo.block_bounds(10, 0).tolist() == [0]
    assert pbo.split_count(16) == 12_870


def test_block_moments_of_an_equity_curve() -> None:
    """The engine's per-block moments equal the matrix version on the same returns; after a
    ruin (equity 0, then 0 / 0) the non-finite returns are not counted."""
    equity = np.array([101.0, 99.0, 99.0, 102.0, 0.0, 0.0, 0.0, 5.0])
    out = np.full((4, 3), np.nan)
    pbo.block_moments(100.0, equity, pbo.block_bounds(8, 4), out)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = equity / np.concatenate([[100.0], equity[:-1]]) - 1.0
    assert np.isnan(returns[5:7]).all() and returns[7] == math.inf
    np.testing.assert_array_equal(out, pbo.return_moments(returns.reshape(8, 1), 4)[0])
    assert out[:, 0].tolist() == [2, 2, 1, 0]
    assert out[2].tolist() == [1.0, -1.0, 1.0]


def test_sampled_splits_are_seeded_and_distinct() -> None:
    members, sampled = pbo.splits(20, max_splits=500, seed=3)
    again, _ = pbo.splits(20, max_splits=500, seed=3)
    other, _ = pbo.splits(20, max_splits=500, seed=4)
    assert sampled and members.shape == (500, 10)
    np.testing.assert_array_equal(members, again)
    assert not np.array_equal(members, other)
    assert len({tuple(row) for row in members.tolist()}) == 500
    assert (np.diff(members, axis=1) > 0).all()
    returns = np.random.default_rng(1).normal(0.0, 0.01, (400, 6))
    result = pbo.probability_of_overfitting(pbo.return_moments(returns, 20), max_splits=500,
                                            seed=3)
    assert result is not None and result.sampled and result.seed == 3
    assert (result.splits, result.splits_total) == (500, 184_756)
    assert result.to_dict()["sampled"] is True


def test_undefined_and_bad_input() -> None:
    one = pbo.return_moments(np.ones((40, 1)), 4)
    assert pbo.probability_of_overfitting(one) is None  # nothing selected
    moments = pbo.return_moments(HAND, 4)
    moments[1, 2, 1] = math.nan  # a row never computed
    assert pbo.probability_of_overfitting(moments) is None
    assert pbo.probability_of_overfitting(np.zeros((3, 3, 3))) is None  # odd S
    with pytest.raises(ValueError, match="expected"):
        pbo.probability_of_overfitting(np.zeros((3, 4)))
    # flat combinations (no position) rank as Sharpe 0, above a losing one
    flat = two_bar_blocks(np.array([[-1.0, -1, -1, -1], [0, 0, 0, 0]]), 0.0)
    flat[:, 0] += np.tile([0.5, -0.5], 4)
    result = pbo.probability_of_overfitting(pbo.return_moments(flat, 4))
    assert result is not None and result.pbo == 0.0
    assert result.is_sharpe_mean == 0.0 and result.prob_oos_loss == 0.0


# --------------------------------------------------------------------------- the sweep


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pbo")
    shutil.copytree(REPO / "specs", root / "specs")
    return root


def test_sweep_engine_moments_equal_the_backtests(project: Path) -> None:
    """Each row's moments, kept by the sweep engine, are those of `run_backtest`'s equity."""
    from peakdsl.backtest import run_backtest
    from peakdsl.research.sweep import plan_sweep

    plan = plan_sweep(str(project / SPEC), root=project, sets=SETS, record=False)
    assert plan.pbo_blocks == 16
    result = run_sweep(str(project / SPEC), root=project, sets=SETS, record=False)
    loaded = SweepStore(project, result.key).load(plan.space.names, plan.space.combos, 16)
    assert loaded.done.all()
    for row in (0, 7, 19):
        run = run_backtest(plan.artifact, plan.candles, "", "", plan.space.params(row))
        want = np.zeros((16, 3))
        pbo.block_moments(plan.run.capital, np.asarray(run.sim.equity, dtype=np.float64),
                          pbo.block_bounds(plan.bars, 16), want)
        np.testing.assert_array_equal(loaded.moments[row], want)
    # a store read for another block count finds nothing usable: those rows run again
    store = SweepStore(project, result.key)
    assert not store.load(plan.space.names, plan.space.combos, 8).done.any()
    # and so does a block file without moments (written before the PBO existed)
    old = SweepStore(project, "before-pbo")
    block = {key: values[:2] for key, values in result.metrics.items()}
    old.write_block(0, 2, plan.space.names, plan.space.combos[:2], block)
    assert not old.load(plan.space.names, plan.space.combos, 16).done.any()
    assert old.load(plan.space.names, plan.space.combos, 0).done.sum() == 2


def test_cli_json_text_registry_and_resume(project: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    runner = CliRunner()
    args = ["sweep", SPEC, *(x for s in SETS for x in ("--set", s))]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    cscv = doc["cscv"]
    assert doc["pbo"] == cscv["pbo"] and 0.0 <= doc["pbo"] <= 1.0
    assert (cscv["statistic"], cscv["combinations"], cscv["blocks"]) == ("sharpe", 20, 16)
    assert (cscv["splits"], cscv["splits_total"], cscv["sampled"]) == (12_870, 12_870, False)
    assert set(cscv["logit"]) == {"mean", "std", "p05", "p25", "p50", "p75", "p95"}
    assert set(cscv["degradation"]) == {"slope", "intercept"}
    # stored with the sweep: results.parquet metadata and the registry's metrics
    meta = pq.read_schema(doc["parquet"]).metadata
    assert json.loads(meta[b"peak.pbo"]) == cscv
    with Registry(project) as registry:
        summary = registry.get_sweep(doc["sweep_id"]).summary
        assert summary is not None and summary["cscv"] == cscv
        assert registry.metric_rows(doc["sweep_id"])["pbo"] == doc["pbo"]
    # resumed from the block files: the same numbers, nothing computed
    text = runner.invoke(app, [*args, "--report", "sweep.html"])
    assert text.exit_code == 0, text.output
    html = (project / "sweep.html").read_text()
    assert f'probability of backtest overfitting</th><td class="num">{doc["pbo"]:.3f}<' in html
    assert "all 12,870 splits" in html
    assert f"probability of backtest overfitting: {doc['pbo']:.3f}  (CSCV: 16 blocks, " \
           "12,870 splits; 0.5 or more: overfit)" in text.output
    again = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert again["resumed"] == 20 and again["computed"] == 0
    assert again["cscv"] == cscv
