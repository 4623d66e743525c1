"""Indicator panes (``peakdsl.report.indicators``, drawn by ``charts.indicator_figure``): which
lets get a pane, decided by the unit the compiled graph gives each let, and the levels the
rules compare them with, evaluated with the run's params — on the library's strategies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, build_result
from test_report_html import decode, figures_of, parse

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.engine.evaluate import resolve_params
from peakdsl.report.charts import CHART_IDS, pane_id
from peakdsl.report.html import render_html
from peakdsl.report.indicators import indicator_panes


def compiled(name: str) -> m.StrategyArtifact:
    art = api.compile_spec(str(Path(REPO) / "specs" / "strategies" / f"{name}.peak"), REPO)
    assert isinstance(art, m.StrategyArtifact)
    return art


def panes(name: str, on_price: tuple[str, ...] = (), **params: float) -> list[Any]:
    art = compiled(name)
    values = {**resolve_params(art.config, None), **params}
    return [(p.unit, p.lets, [(lv.let, lv.value, lv.text) for lv in p.levels])
            for p in indicator_panes(art.config.graph, values, on_price)]


def test_an_rsi_gets_the_oscillator_pane_with_its_bands() -> None:
    """``r < oversold``, ``crossover(r, 50)`` (lowered to ``r > 50`` and a lag ``<= 50``) and
    ``r > overbought``: three levels, each once."""
    assert panes("rsi_reversion") == [("oscillator", ("r",), [
        ("r", 30.0, "r < oversold"), ("r", 50.0, "r > 50"), ("r", 70.0, "r > overbought")])]
    assert panes("rsi_reversion", oversold=25, overbought=80)[0][2][0::2] == [
        ("r", 25.0, "r < oversold"), ("r", 80.0, "r > overbought")]


def test_adx_and_di_share_a_pane_and_price_lets_stay_on_the_candles() -> None:
    """``up > down`` compares two series: no level. ``trend`` (an SMA) is a price let: on
    the candles when the report put it there, else in the pane of price-unit lets."""
    osc = ("oscillator", ("down", "strength", "up"),
           [("strength", 25.0, "strength > adx_entry"), ("strength", 20.0, "strength < adx_exit")])
    assert panes("trend_following", on_price=("trend",)) == [osc]
    assert panes("trend_following") == [osc, ("price", ("trend",), [])]


@pytest.mark.parametrize(("name", "want"), [
    ("mean_reversion", [("number", ("z",), [("z", -2.0, "z < -entry_z"),
                                            ("z", 0.0, "z > exit_z")])]),
    ("momentum", [("percent", ("m",), [("m", 0.02, "m > entry_roc"),
                                       ("m", -0.01, "m < -exit_roc")])]),
    ("macd", [("price", ("line", "trigger"), [])]),
])
def test_other_units_get_their_own_pane(name: str, want: list[Any]) -> None:
    assert panes(name) == want


def test_rsi_pane_on_the_page() -> None:
    """Between the price and the equity chart, on a fixed 0–100 axis, the bands dashed and
    labelled; without the graph there is no pane (units are not guessed from values)."""
    rsi = compiled("rsi_reversion")
    result = build_result(rsi, n=600, trades=5)
    figures = figures_of(parse(render_html(result, graph=rsi.config.graph)))
    pane = figures[pane_id(indicator_panes(rsi.config.graph, result.params)[0])]
    assert list(figures) == ["chart-price", "chart-ind-oscillator", *CHART_IDS[1:]]
    assert pane["layout"]["yaxis"]["range"] == [0.0, 100.0]
    assert pane["peak"] == {"fixed": True, "marks": [30.0, 50.0, 70.0]}
    assert [s["y0"] for s in pane["layout"]["shapes"]] == [30.0, 50.0, 70.0]
    assert [a["text"] for a in pane["layout"]["annotations"]] == [
        "r < oversold (30)", "r > 50 (50)", "r > overbought (70)"]
    (line,) = pane["data"]
    assert np.array_equal(decode(line["y"]), result.signals.series["r"], equal_nan=True)
    assert list(figures_of(parse(render_html(result)))) == list(CHART_IDS)


def test_percent_levels_are_labelled_as_percentages() -> None:
    mom = compiled("momentum")
    result = build_result(mom, n=600, trades=5)
    figures = figures_of(parse(render_html(result, graph=mom.config.graph)))
    pane = figures["chart-ind-percent"]
    assert pane["layout"]["yaxis"]["tickformat"] == ".1%"
    assert [a["text"] for a in pane["layout"]["annotations"]] == [
        "m > entry_roc (2%)", "m < -exit_roc (-1%)"]
    assert pane["peak"] == {"fixed": False, "marks": [0.02, -0.01]}


def test_an_oscillator_outside_0_100_gets_a_fitted_axis() -> None:
    """Williams %R is an oscillator on −100..0: a fixed 0–100 axis would hide it, so a pane
    whose values leave its fixed range is fitted to them instead."""
    rsi = compiled("rsi_reversion")
    result = build_result(rsi, n=600, trades=5)
    result.signals.series["r"] = result.signals.series["r"] - 100.0  # −100..0, like willr
    figures = figures_of(parse(render_html(result, graph=rsi.config.graph)))
    pane = figures[pane_id(indicator_panes(rsi.config.graph, result.params)[0])]
    assert "range" not in pane["layout"]["yaxis"]
    assert pane["peak"]["fixed"] is False
