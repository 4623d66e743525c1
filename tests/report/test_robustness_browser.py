"""The robustness report in a real headless Chromium: it loads offline without a console
message, plotly draws every fan chart and histogram, and the screenshot shows the headline
fan chart's percentile bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_report_browser import (  # tests/report is on sys.path; same Chromium and marks
    CONSOLE,
    HEIGHT,
    WIDTH,
    browse,
    distinct_colours,
    pytestmark,
)
from test_robustness_report import study, write_project

from peakdsl.report.robustness import BANDS, chart_ids, render_robustness_html

__all__ = ["pytestmark"]


@pytest.fixture(scope="module")
def browsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A screenshot and the DOM of the report, and its charts' ids."""
    tmp = tmp_path_factory.mktemp("robustness-chromium")
    run = study(write_project(tmp / "project"))
    report = tmp / "report.html"
    report.write_text(render_robustness_html(run.result, run.doc), encoding="utf-8")
    return {**browse(report, tmp, timeout=90), "charts": chart_ids(run.doc)}


def test_no_console_messages(browsed: dict[str, object]) -> None:
    stderr = str(browsed["stderr"])
    assert [line for line in stderr.splitlines() if CONSOLE.search(line)] == []


def chart_markup(dom: str, ids: list[str]) -> dict[str, str]:
    """Each chart's element, from its id to the next chart's (the last: to ``</main>``)."""
    starts = [dom.index(f'id="{chart}"') for chart in ids]
    ends = [*starts[1:], dom.index("</main>")]
    return {chart: dom[start:end] for chart, start, end in zip(ids, starts, ends, strict=True)}


def test_plotly_rendered_every_chart(browsed: dict[str, object]) -> None:
    charts = browsed["charts"]
    assert isinstance(charts, list)
    drawn = chart_markup(str(browsed["dom"]), charts)
    assert len(drawn) == 8
    for chart, inside in drawn.items():
        assert "js-plotly-plot" in inside[:200], chart
        assert 'class="main-svg"' in inside, chart
        if chart.startswith("rb-fan-"):
            assert inside.count('class="js-fill"') >= 2, chart  # both bands filled
        else:
            assert inside.count('class="point"') >= 3, chart  # bars in each panel


def composite(colour: str, under: np.ndarray) -> np.ndarray:
    """An ``rgba(r,g,b,a)`` colour painted over ``under`` (RGB)."""
    *rgb, alpha = (float(v) for v in colour[5:-1].split(","))
    return under * (1 - alpha) + np.array(rgb) * alpha


def test_screenshot_shows_the_fan_bands(browsed: dict[str, object]) -> None:
    from PIL import Image

    with Image.open(Path(str(browsed["shot"]))) as shot:
        pixels = np.asarray(shot.convert("RGB")).astype(float)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert distinct_colours(pixels.astype(np.uint8)) > 50
    outer = composite(BANDS[0], np.full(3, 255.0))
    inner = composite(BANDS[1], outer)
    for colour in (outer, inner):  # each band covers a good part of the first screen
        near = np.abs(pixels - colour).max(axis=2) <= 6
        assert near.mean() > 0.01, colour
