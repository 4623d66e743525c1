"""The portfolio report in a real headless Chromium: it loads offline without a console
message, plotly draws all five charts, the screenshot is not blank, and zooming one time
chart zooms the others and fits every y-axis to the dates shown.

The zoom is driven by a script the test appends to a copy of the report (the report itself
logs nothing): it waits for the charts, zooms the equity chart the way a drag does
(``xaxis.range[0]``/``[1]``), resets the drawdown chart the way a double click does
(``xaxis.autorange``), and writes the axes' ranges after each step into the page, which
``--dump-dom`` returns.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_portfolio_report import decode, figures_of, run_pair, write_pair_project
from test_report_browser import (  # tests/report is on sys.path; same Chromium and marks
    CHROMIUM,
    CONSOLE,
    HEIGHT,
    WIDTH,
    distinct_colours,
    flags,
    pytestmark,
)

from peakdsl.report.portfolio import CHART_IDS, PALETTE, TIME_CHARTS, render_portfolio_html

__all__ = ["pytestmark"]

ZOOM_SCRIPT = """
<script>
(function () {
  "use strict";
  var times = %s, log = {};
  function ranges() {
    var out = {};
    times.forEach(function (id) {
      var layout = document.getElementById(id).layout;
      out[id] = {x: (layout.xaxis.range || []).slice(), xauto: !!layout.xaxis.autorange,
                 y: layout.yaxis.range.slice()};
    });
    return out;
  }
  function later(step) { return new Promise(function (ok) { setTimeout(ok, 400); }).then(step); }
  function drawn() {
    if (document.querySelectorAll(".js-plotly-plot").length < %d) { return later(drawn); }
    return null;
  }
  later(drawn).then(function () {
    log.initial = ranges();
    return Plotly.relayout("pf-chart-equity", {"xaxis.range[0]": "%s", "xaxis.range[1]": "%s"});
  }).then(function () {
    return later(function () {
      log.zoomed = ranges();
      return Plotly.relayout("pf-chart-drawdown", {"xaxis.autorange": true});
    });
  }).then(function () {
    return later(function () {
      log.reset = ranges();
      var pre = document.createElement("pre");
      pre.id = "zoom-log";
      pre.textContent = JSON.stringify(log);
      document.body.appendChild(pre);
    });
  });
})();
</script>
"""


def date_text(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def as_ms(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() * 1000


def expected_y(fig: dict[str, Any], x0: float, x1: float) -> list[float]:
    """What the page should fit the y-axis to: the marks, zero (for the whole run, or when
    the figure keeps it), the lines and the top of the stacked areas from the point before
    x0 to the point after x1, with 5% of room (none below a zero in view)."""
    x = decode(fig["x"])
    i0 = max(int(np.searchsorted(x, x0, side="left")) - 1, 0)
    i1 = min(int(np.searchsorted(x, x1, side="right")), len(x) - 1)
    lines = [decode(t["y"]) for t in fig["data"] if "stackgroup" not in t]
    stacked = [decode(t["y"]) for t in fig["data"] if "stackgroup" in t]
    seen = np.vstack([*lines, *([sum(stacked)] if stacked else [])])[:, i0:i1 + 1]
    fixed = [*fig["marks"], *([0.0] if fig["zero"] or np.isinf(x0) else [])]
    lo = min([*fixed, float(np.nanmin(seen))])
    hi = max([*fixed, float(np.nanmax(seen))])
    room = (hi - lo) * 0.05 or abs(hi) * 0.01 or 0.01
    return [0.0 if lo == 0 and 0.0 in fixed else lo - room, hi + room]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report of the test portfolio and its zoom window (10% to 30% of the run)."""
    run = run_pair(write_pair_project(tmp_path_factory.mktemp("portfolio-browser")))
    page = render_portfolio_html(run.result, run.doc)
    x = decode(figures_of(page)["pf-chart-equity"]["x"])
    window = (date_text(x[len(x) // 10]), date_text(x[3 * len(x) // 10]))
    return {"page": page, "figures": figures_of(page), "window": window}


@pytest.fixture(scope="module")
def browsed(case: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, object]:
    """A screenshot of the report and the DOM of the report driven by the zoom script, taken
    by two Chromium processes in parallel."""
    assert CHROMIUM is not None
    tmp = tmp_path_factory.mktemp("portfolio-chromium")
    report = tmp / "report.html"
    report.write_text(case["page"], encoding="utf-8")
    driven = tmp / "driven.html"
    script = ZOOM_SCRIPT % (json.dumps(list(TIME_CHARTS)), len(CHART_IDS), *case["window"])
    driven.write_text(case["page"].replace("</body>", script + "</body>"), encoding="utf-8")
    shot = tmp / "shot.png"
    screenshot = subprocess.Popen(
        [CHROMIUM, *flags(tmp / "profile-shot"), f"--screenshot={shot}",
         report.resolve().as_uri()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dump = subprocess.Popen(
        [CHROMIUM, *flags(tmp / "profile-dom"), "--virtual-time-budget=20000", "--dump-dom",
         driven.resolve().as_uri()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, shot_err = screenshot.communicate(timeout=90)
    dom, dom_err = dump.communicate(timeout=90)
    assert screenshot.returncode == 0, shot_err[-2000:]
    assert dump.returncode == 0, dom_err[-2000:]
    found = re.search(r'<pre id="zoom-log">(.*?)</pre>', dom, re.S)
    assert found is not None, "the zoom script did not finish: " + dom_err[-2000:]
    return {"shot": shot, "stderr": shot_err + dom_err, "dom": dom,
            "zoom": json.loads(html.unescape(found.group(1)))}


def test_no_console_messages(browsed: dict[str, object]) -> None:
    stderr = str(browsed["stderr"])
    assert [line for line in stderr.splitlines() if CONSOLE.search(line)] == []


def test_plotly_rendered_every_chart(browsed: dict[str, object]) -> None:
    dom = str(browsed["dom"])
    for chart in CHART_IDS:
        start = dom.index(f'id="{chart}"')
        inside = dom[start:dom.index("</section>", start)]
        assert "js-plotly-plot" in dom[start:start + 200], chart
        assert 'class="main-svg"' in inside, chart
    heatmap = dom[dom.index(f'id="{CHART_IDS[-1]}"'):]
    assert 'class="hm"' in heatmap  # the correlation cells were drawn


def half_on_white(colour: str) -> np.ndarray:
    """How plotly fills a stacked area by default: its line colour at 50% over white."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    return (rgb + 255) / 2


def test_screenshot_shows_the_stacked_components(browsed: dict[str, object]) -> None:
    from PIL import Image

    with Image.open(Path(str(browsed["shot"]))) as shot:
        pixels = np.asarray(shot.convert("RGB")).astype(float)
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert distinct_colours(pixels.astype(np.uint8)) > 50
    for colour in PALETTE[:2]:  # each component's band covers a good part of the page
        near = np.abs(pixels - half_on_white(colour)).max(axis=2) <= 8
        assert near.mean() > 0.02, colour


def test_the_first_view_fits_the_whole_run(browsed: dict[str, Any], case: dict[str, Any]
                                           ) -> None:
    for chart in TIME_CHARTS:
        shown = browsed["zoom"]["initial"][chart]
        assert shown["xauto"] is True
        assert shown["y"] == pytest.approx(
            expected_y(case["figures"][chart], -np.inf, np.inf), rel=1e-9), chart


def test_zoom_moves_every_chart_and_fits_the_y_axes(browsed: dict[str, Any],
                                                     case: dict[str, Any]) -> None:
    start, end = case["window"]
    x0, x1 = as_ms(start), as_ms(end)
    zoomed = browsed["zoom"]["zoomed"]
    for chart in TIME_CHARTS:
        shown = zoomed[chart]
        assert [as_ms(v) for v in shown["x"]] == [x0, x1], chart
        assert shown["y"] == pytest.approx(expected_y(case["figures"][chart], x0, x1),
                                           rel=1e-9), chart
    initial = browsed["zoom"]["initial"]
    # early in the run the drawdown is shallower than at its deepest: the axis follows it
    assert zoomed["pf-chart-drawdown"]["y"][0] > initial["pf-chart-drawdown"]["y"][0]
    # the whole run's equity is shown from zero, a zoomed one fills the chart
    assert initial["pf-chart-equity"]["y"][0] == 0 < zoomed["pf-chart-equity"]["y"][0]


def test_a_reset_shows_the_whole_run_again(browsed: dict[str, Any]) -> None:
    log = browsed["zoom"]
    for chart in TIME_CHARTS:
        assert log["reset"][chart]["xauto"] is True, chart
        assert log["reset"][chart]["y"] == pytest.approx(log["initial"][chart]["y"]), chart
