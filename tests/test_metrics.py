"""The metric catalogue (``peakdsl.metrics``): its rows are consistent, its formatting is the
one people read, the docs print it, and every consumer derives from it rather than keeping a
copy (a metric added to the catalogue reaches each of them, or a test here fails)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from peakdsl import metrics
from peakdsl.metrics import (
    BACKTEST_METRICS,
    CATALOGUE,
    CORE_METRICS,
    HEADLINE,
    INT_METRICS,
    OBJECTIVES,
    RUN_KINDS,
    Direction,
    Unit,
    format_metric,
    objective_direction,
    objective_goal,
    produced_by,
)

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = ("regenerate: python -c \"from peakdsl.metrics import {fn}; "
              "print({fn}(), end='')\" and paste it over the table in {doc}")


# ----------------------------------------------------------------------------- the rows


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_every_row_is_complete_and_consistent(name: str) -> None:
    m = CATALOGUE[name]
    assert m.name == name and re.fullmatch(r"[a-z][a-z0-9_]*", name)
    assert m.label and m.short and m.doc
    assert m.runs and set(m.runs) <= set(RUN_KINDS)
    if m.low is not None and m.high is not None:
        assert m.low <= m.high
    if m.objective:  # a sweep ranks its rows by it: a per-row metric with a better direction
        assert "sweep" in m.runs and name in BACKTEST_METRICS
        assert m.direction is not Direction.NEITHER


def test_labels_are_unique() -> None:
    for field in ("label", "short"):
        values = [getattr(m, field) for m in CATALOGUE.values()]
        assert len(values) == len(set(values)), field


def test_backtest_metrics_keep_the_stats_core_order() -> None:
    assert CORE_METRICS == (
        "total_return", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown",
        "max_drawdown_bars", "profit_factor", "win_rate", "expectancy", "trades", "avg_trade",
        "best_trade", "worst_trade", "exposure", "fees_paid", "ambiguous_bars", "orders_reduced")
    # then what only a backtest computes (engine.trade_stats): trade bars and closes
    assert (
        *CORE_METRICS, "buy_hold_return", "exposure_adjusted_return", "sqn", "avg_bars_held",
        "median_bars_held", "max_bars_held") == BACKTEST_METRICS
    assert produced_by("sweep") == (*CORE_METRICS, "deflated_sharpe", "pbo")
    assert produced_by("walkforward") == ("oos_sharpe", "oos_total_return", "oos_max_drawdown",
                                          "wf_efficiency")
    mc = [f"mc_p{p:02d}_{w}" for w in ("return", "max_drawdown", "sharpe")
          for p in (5, 25, 50, 75, 95)]
    assert produced_by("robustness") == (
        *mc, "mc_prob_loss", "mc_risk_of_ruin", "stress_worst_return",
        "stress_worst_max_drawdown", "jitter_worst_sharpe", "jitter_median_sharpe")
    with pytest.raises(ValueError, match="unknown run kind 'live'"):
        produced_by("live")


def test_counts_directions_and_objectives() -> None:
    assert {"max_drawdown_bars", "trades", "ambiguous_bars", "orders_reduced",
            "max_bars_held"} == INT_METRICS
    assert all(CATALOGUE[n].unit is Unit.INT for n in INT_METRICS)
    assert CATALOGUE["fees_paid"].unit is Unit.MONEY
    # max_drawdown is <= 0: higher (closer to 0) is better; counts are neither
    assert [CATALOGUE[n].direction for n in ("max_drawdown", "volatility", "trades")] == [
        Direction.HIGHER, Direction.LOWER, Direction.NEITHER]
    # the five objectives of earlier versions keep working, maximised
    for name in ("sharpe", "sortino", "calmar", "total_return", "profit_factor"):
        assert name in OBJECTIVES and objective_direction(name) is Direction.HIGHER
    assert [n for n in OBJECTIVES if objective_direction(n) is Direction.LOWER] == [
        "volatility", "max_drawdown_bars"]
    assert (objective_goal("max_drawdown"), objective_goal("volatility")) == (
        "maximise", "minimise")
    for name in ("trades", "deflated_sharpe", "luck"):
        with pytest.raises(KeyError):
            objective_direction(name)
    assert set(HEADLINE) <= set(BACKTEST_METRICS) and len(set(HEADLINE)) == len(HEADLINE)


def test_range_text() -> None:
    assert [CATALOGUE[n].range_text() for n in (
        "total_return", "max_drawdown", "sharpe", "deflated_sharpe", "trades", "win_rate")] == [
        "≥ -100%", "-100% to 0%", "any", "0 to 1", "≥ 0", "0% to 100%"]
    assert metrics.MetricInfo("x", "X", "x", Unit.NUMBER, Direction.HIGHER, None, 5.0, "d",
                              ("backtest",)).range_text() == "≤ 5"


# ----------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("total_return", 0.12345, "12.35%"), ("max_drawdown", -0.5, "-50.00%"),
    ("max_drawdown", -0.00001, "0.00%"), ("win_rate", 1, "100.00%"),
    ("sharpe", 1.005, "1.00"), ("sharpe", -1234.5678, "-1,234.57"), ("sharpe", -0.001, "0.00"),
    ("sharpe", None, "—"), ("sharpe", float("nan"), "—"), ("profit_factor", math.inf, "∞"),
    ("cagr", -math.inf, "-∞%"), ("trades", 1234, "1,234"), ("orders_reduced", 3.0, "3"),
    ("trades", np.int64(7), "7"), ("fees_paid", 1234.5, "1,234.50"),
    ("oos_total_return", 0.1, "10.00%"), ("wf_efficiency", 0.5, "0.50"),
    ("unknown_count", 7, "7"), ("unknown", 0.5, "0.50"), ("flag", True, "True"),
    ("note", "inf", "inf"),
])
def test_format_metric(name: str, value: object, shown: str) -> None:
    assert format_metric(name, value) == shown


def test_every_view_formats_with_the_catalogue() -> None:
    from peakdsl.cli import backtest, runs, sweep, walkforward
    from peakdsl.report import html

    assert backtest.format_metric is format_metric
    assert html.fmt_metric is format_metric
    assert runs.fmt_metric is format_metric
    assert sweep.format_metric is format_metric
    assert walkforward.fmt is format_metric


# ----------------------------------------------------------------------------- docs


def test_metrics_page_prints_the_catalogue() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert metrics.markdown_table() in text, REGENERATE.format(fn="markdown_table",
                                                               doc="docs/metrics.md")
    assert text.count("| `") == len(CATALOGUE)  # no stale rows besides the generated ones


def test_language_page_metrics_table_is_the_catalogue() -> None:
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    assert metrics.criteria_table() in text, REGENERATE.format(fn="criteria_table",
                                                               doc="docs/language.md")


def test_backtest_page_defines_every_backtest_metric_in_order() -> None:
    text = (ROOT / "docs" / "backtest.md").read_text(encoding="utf-8")
    section = text[text.index("## 9. Metrics"):text.index("## 10.")]
    table = section[section.index("| metric | definition |"):]
    names = re.findall(r"`(\w+)`", "\n".join(
        line.split("|")[1] for line in table.splitlines()[2:] if line.startswith("| `")))
    assert tuple(names) == BACKTEST_METRICS


def test_objective_help_lists_every_choice() -> None:
    text = metrics.objective_choices()
    assert [part.split(" ")[0] for part in text.split(", ")] == list(OBJECTIVES)
    assert "volatility (lower is better)" in text and "sharpe (lower" not in text


# ----------------------------------------------------------------------------- consumers


def test_promotion_criteria_read_the_catalogue() -> None:
    from peakdsl.lang.schema import METRICS
    from peakdsl.lang.types import Unit as LangUnit

    assert list(METRICS) == list(CATALOGUE)
    for name, info in CATALOGUE.items():
        got = METRICS[name]
        assert (got.low, got.high, got.doc) == (info.low, info.high, info.doc)
        want = "number" if info.unit is Unit.MONEY else info.unit.value
        assert got.unit is LangUnit(want)


def test_registry_stores_the_catalogue_counts_as_ints() -> None:
    from peakdsl.registry import store

    assert store.INT_METRICS is INT_METRICS
    assert store._block_value("orders_reduced", 2.0) == 2
    assert isinstance(store._block_value("orders_reduced", 2.0), int)
    assert isinstance(store._block_value("sharpe", 2.0), float)


def test_registry_list_headers_are_the_catalogue_short_labels() -> None:
    from peakdsl.cli import runs as registry_cli

    assert [CATALOGUE[n].short for n in registry_cli.LIST_METRICS] == [
        "total return", "Sharpe", "max drawdown"]


def test_sweep_tables_show_headline_or_all_metrics() -> None:
    from peakdsl.report import sweep as report_sweep
    from peakdsl.research import sweep

    assert sweep.TABLE_METRICS == ("sharpe", "total_return", "max_drawdown", "trades")
    assert report_sweep.TABLE_METRICS == CORE_METRICS  # the report's table: every one
