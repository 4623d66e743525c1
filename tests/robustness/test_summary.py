"""Percentiles, prob_loss, risk of ruin and metric names against numbers worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from peakdsl.robustness import summary
from peakdsl.robustness.summary import Distribution, Fan

EMPTY_FAN = Fan(np.zeros(1, dtype=np.int64), summary.PERCENTILES, np.ones((5, 1)), 0)


def dist(total: list[float], drawdown: list[float], sharpe: list[float],
         method: str = "bootstrap") -> Distribution:
    return Distribution(method, 0, np.array(total), np.array(drawdown), np.array(sharpe),
                        EMPTY_FAN)


# Five runs. Linear percentiles of five sorted values sit at positions q/100 · 4:
# p05 at 0.2, p25 at 1, p50 at 2, p75 at 3, p95 at 3.8.
FIVE = dist(total=[0.3, -0.1, 0.2, 0.0, 0.1],
            drawdown=[-0.1, -0.6, 0.0, -0.5, -0.49],
            sharpe=[1.0, float("nan"), -1.0, 2.0, 0.5])


def test_percentiles_of_the_total_return_by_hand() -> None:
    # sorted -0.1, 0.0, 0.1, 0.2, 0.3: p05 = -0.1 + 0.2 · 0.1 = -0.08, p95 = 0.2 + 0.8 · 0.1
    found = FIVE.percentiles("total_return")
    assert list(found) == [5, 25, 50, 75, 95]
    assert list(found.values()) == pytest.approx([-0.08, 0.0, 0.1, 0.2, 0.28], abs=1e-12)


def test_percentiles_of_the_drawdown_keep_its_sign() -> None:
    # sorted -0.6, -0.5, -0.49, -0.1, 0.0: p05 = -0.6 + 0.2 · 0.1 = -0.58 (the bad tail)
    found = FIVE.percentiles("max_drawdown")
    assert list(found.values()) == pytest.approx([-0.58, -0.5, -0.49, -0.1, -0.02], abs=1e-12)


def test_sharpe_percentiles_skip_undefined_runs() -> None:
    # defined: -1, 0.5, 1, 2 at positions q/100 · 3: 0.15 → -1 + 0.15 · 1.5 = -0.775;
    # 0.75 → -1 + 0.75 · 1.5 = 0.125; 1.5 → 0.75; 2.25 → 1.25; 2.85 → 1.85
    found = FIVE.percentiles("sharpe")
    assert list(found.values()) == pytest.approx([-0.775, 0.125, 0.75, 1.25, 1.85], abs=1e-12)


def test_no_defined_sharpe_gives_no_percentiles() -> None:
    flat = dist([0.0, 0.0], [0.0, 0.0], [float("nan"), float("nan")])
    assert flat.percentiles("sharpe") == dict.fromkeys(summary.PERCENTILES)


def test_prob_loss_counts_strict_losses_only() -> None:
    assert FIVE.prob_loss() == 0.2  # -0.1 only; 0.0 ended flat


def test_risk_of_ruin_counts_drawdowns_that_reach_the_threshold() -> None:
    assert FIVE.risk_of_ruin(0.5) == 0.4  # -0.6 and -0.5; -0.49 does not reach it
    assert FIVE.risk_of_ruin(0.1) == 0.8
    assert FIVE.risk_of_ruin(1.0) == 0.0


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.5, float("nan")])
def test_a_ruin_threshold_outside_0_1_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match=r"ruin threshold must be a drawdown in \(0, 1\]"):
        FIVE.risk_of_ruin(threshold)


def test_metric_names_and_values() -> None:
    figures = FIVE.metrics()
    assert tuple(figures) == summary.metric_names("bootstrap")
    assert figures["mc_bootstrap_p05_return"] == pytest.approx(-0.08, abs=1e-12)
    assert figures["mc_bootstrap_p95_max_drawdown"] == pytest.approx(-0.02, abs=1e-12)
    assert figures["mc_bootstrap_p50_sharpe"] == pytest.approx(0.75, abs=1e-12)
    assert figures["mc_bootstrap_prob_loss"] == 0.2
    assert figures["mc_bootstrap_risk_of_ruin"] == 0.4
    assert FIVE.metrics(threshold=0.1)["mc_bootstrap_risk_of_ruin"] == 0.8


def test_metric_names_list() -> None:
    assert summary.metric_names(None) == (
        "mc_p05_return", "mc_p25_return", "mc_p50_return", "mc_p75_return", "mc_p95_return",
        "mc_p05_max_drawdown", "mc_p25_max_drawdown", "mc_p50_max_drawdown",
        "mc_p75_max_drawdown", "mc_p95_max_drawdown",
        "mc_p05_sharpe", "mc_p25_sharpe", "mc_p50_sharpe", "mc_p75_sharpe", "mc_p95_sharpe",
        "mc_prob_loss", "mc_risk_of_ruin")


def test_the_headline_figures_are_the_bootstrap_ones() -> None:
    skip = dist([-0.5, -0.4], [-0.7, -0.6], [-1.0, -2.0], method="skip")
    figures = summary.all_metrics({"skip": skip, "bootstrap": FIVE})
    assert list(figures) == [*summary.metric_names("skip"), *summary.metric_names("bootstrap"),
                             *summary.metric_names(None)]
    assert figures["mc_p05_return"] == figures["mc_bootstrap_p05_return"]
    assert figures["mc_prob_loss"] == 0.2
    assert figures["mc_skip_prob_loss"] == 1.0


def test_no_headline_without_a_bootstrap() -> None:
    skip = dist([-0.5, -0.4], [-0.7, -0.6], [-1.0, -2.0], method="skip")
    assert "mc_p05_return" not in summary.all_metrics({"skip": skip})


def test_fan_steps_take_every_step_when_they_fit_else_spread_ones() -> None:
    assert summary.fan_steps(3, 201).tolist() == [0, 1, 2, 3]
    assert summary.fan_steps(10, 4).tolist() == [0, 3, 7, 10]  # 0, 3.33, 6.67, 10 rounded
    assert summary.fan_steps(1_000, 201).tolist() == list(range(0, 1_001, 5))


def test_fan_bands_are_percentiles_across_runs_at_each_step() -> None:
    runs = np.array([[1.0, 0.5], [1.0, 1.5], [1.0, 1.0], [1.0, 2.0], [1.0, 0.0]])
    bands = summary.fan(np.array([0, 7], dtype=np.int64), runs)
    # step 7 sorted 0, 0.5, 1, 1.5, 2: p05 0.1, p25 0.5, p50 1, p75 1.5, p95 1.9
    assert bands.equity[:, 1] == pytest.approx([0.1, 0.5, 1.0, 1.5, 1.9], abs=1e-12)
    assert bands.equity[:, 0].tolist() == [1.0] * 5
    assert bands.runs == 5 and bands.levels == (5, 25, 50, 75, 95)
