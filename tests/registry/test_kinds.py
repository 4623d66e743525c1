"""The table of run kinds: consistent, and the single place a new product is added."""

from __future__ import annotations

import pytest

from peakdsl import metrics
from peakdsl.registry.kinds import KINDS, RUN_KINDS, SWEEP_PREFIX, run_kind


def test_the_kinds_of_today() -> None:
    assert list(RUN_KINDS) == ["backtest", "sweep", "sweep_trial", "walkforward",
                               "walkforward_window", "portfolio", "robustness", "promotion",
                               "live_session", "drill"]
    assert {k.name for k in KINDS if k.trial} == {"backtest", "sweep_trial"}
    assert {k.name: k.parent for k in KINDS if k.parent} == {
        "sweep_trial": "sweep", "walkforward_window": "walkforward"}
    assert [k.name for k in KINDS if k.prefix == SWEEP_PREFIX] == ["sweep"]
    assert {k.prefix for k in KINDS} == {"r", "s"}


def test_the_table_is_consistent() -> None:
    assert len(RUN_KINDS) == len(KINDS)
    for kind in KINDS:
        assert kind.description and kind.description == kind.description.strip()
        assert kind.parent is None or RUN_KINDS[kind.parent].parent is None  # one level
        assert len(kind.prefix) == 1


def test_every_kind_the_metric_catalogue_names_is_a_run_kind() -> None:
    assert set(metrics.RUN_KINDS) <= set(RUN_KINDS)


def test_run_kind() -> None:
    assert run_kind("walkforward").parent is None
    with pytest.raises(ValueError, match="unknown run kind 'walk'; known kinds: backtest"):
        run_kind("walk")
