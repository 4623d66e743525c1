"""The backtest, sweep and walk-forward reports in a real headless Chromium, at 1400 and 800 px.

For each report and width: the page loads offline without a console message, nothing is
wider than the window (the sweep's ranking scrolls inside its own box), and a screenshot
matches its committed reference (``screenshots/<report>-<width>.png``: downscaled 4×, grey,
compared by the mean absolute pixel difference, under ``SCREEN_TOLERANCE`` out of 255), so a
layout regression shows. After an intended change to a page, regenerate the references with

    PEAK_UPDATE_SCREENSHOTS=1 pytest -p no:xdist tests/report/test_report_screens.py

and look at them before committing (they are small PNGs). ``screenshots/CHROMIUM`` records
the Chromium major version that made them; under another version the pixel comparison is
skipped (text renders differently), the layout checks still run.

At 1400 px a script appended to a copy of each page drives it, as a person would, and writes
what it saw into the page, which ``--dump-dom`` returns: on the backtest report a zoom (every
time chart follows, each y-axis fitted to what is in view — the same arithmetic is redone
here — the trade markers appear once at most 200 trades are in view), the marker and
equity-scale buttons, and a reset; on the sweep report a column sort and the heatmap selector.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser_setup import BROWSER_MARKS, CHROMIUM, CONSOLE, chromium_flags
from conftest import SweptRsi, build_result
from test_report_html import decode, figures_of, parse

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.report.html import render_html
from peakdsl.report.sweep import render_sweep_html
from peakdsl.report.walkforward import render_walkforward_html
from peakdsl.research.walkforward import WalkForwardResult

pytestmark = BROWSER_MARKS

REFERENCES = Path(__file__).parent / "screenshots"
UPDATE = os.environ.get("PEAK_UPDATE_SCREENSHOTS") == "1"
WIDTHS = (1400, 800)
HEIGHT = 3000
SCALE = 4  # references are downsampled this much
# mean |difference| of grey levels (0–255) a screenshot may differ by: 0 on one machine; room
# for another's fonts, while a 60 px shift of the page measures 9 to 17
SCREEN_TOLERANCE = 4.0
TIME_CHARTS = ("chart-price", "chart-ind-oscillator", "chart-equity", "chart-drawdown")
ZOOM = (300, 600)  # the bars the driven backtest zooms to: 300 hours, about 33 trades
KEYS = [(kind, width) for kind in ("backtest", "sweep", "walkforward") for width in WIDTHS]

PROBE = """
<script>
(function () {
  "use strict";
  // Written by the test: what the page looks like, then (when DRIVE) what it does.
  var log = {}, charts = %(charts)s, drive = %(drive)s;
  function later(step) { return new Promise(function (ok) { setTimeout(ok, 400); }).then(step); }
  function drawn() {
    if (document.querySelectorAll(".main-svg").length < charts.length) { return later(drawn); }
    return null;
  }
  function fits() {
    var out = {page: [document.documentElement.scrollWidth, window.innerWidth]};
    document.querySelectorAll("table[id]").forEach(function (t) {
      out[t.id] = [t.scrollWidth, t.parentElement.clientWidth];
    });
    return out;
  }
  function state() {
    var out = {};
    charts.forEach(function (id) {
      var div = document.getElementById(id), l = div.layout;
      out[id] = {x: (l.xaxis.range || []).slice(), xauto: !!l.xaxis.autorange,
                 y: (l.yaxis.range || []).slice(), type: l.yaxis.type || "linear",
                 visible: div.data.map(function (t) {
                   return t.visible === undefined ? true : t.visible;
                 })};
    });
    var note = document.getElementById("marker-note");
    out.note = note ? note.textContent : null;
    return out;
  }
  function click(selector) { document.querySelector(selector).click(); }
  function header(name) {
    return Array.prototype.find.call(document.querySelectorAll("th[data-col]"),
                                     function (th) { return th.textContent.trim() === name; });
  }
  function column(name) {
    var col = Number(header(name).getAttribute("data-col"));
    var rows = document.getElementById("ranking-table").tBodies[0].rows;
    return Array.prototype.map.call(rows, function (row) {
      return row.cells[col].getAttribute("data-v");
    });
  }
  var steps = {
    backtest: [
      function () { log.initial = state();
                    return Plotly.relayout("chart-price", {"xaxis.range[0]": "%(start)s",
                                                           "xaxis.range[1]": "%(end)s"}); },
      function () { log.zoomed = state(); click('[data-markers="none"]'); },
      function () { log.none = state(); click('[data-scale="log"]'); },
      function () { log.log = state(); click('[data-markers="auto"]');
                    return Plotly.relayout("chart-equity", {"xaxis.autorange": true}); },
      function () { log.reset = state(); click('[data-scale="linear"]'); }
    ],
    sweep: [
      function () { header("trades").click(); log.ascending = column("trades"); },
      function () { header("trades").click(); log.descending = column("trades"); },
      function () {
        var select = document.getElementById("heatmap-pair");
        select.value = "oversold,overbought";
        select.dispatchEvent(new Event("change"));
      },
      function () {
        log.heatmap = {title: document.getElementById("chart-heatmap").layout.title.text,
                       note: document.getElementById("heatmap-note").textContent};
        var select = document.getElementById("heatmap-pair");  // back as it was
        select.value = select.options[0].value;
        select.dispatchEvent(new Event("change"));
        header("#").click();
      }
    ]
  };
  var chain = later(drawn).then(function () { log.fits = fits(); });
  (steps[drive] || []).forEach(function (step) {
    chain = chain.then(function () { return later(step); });
  });
  chain.then(function () {
    var pre = document.createElement("pre");
    pre.id = "probe-log";
    pre.style.display = "none";  // out of the screenshot
    pre.textContent = JSON.stringify(log);
    document.body.appendChild(pre);
  });
})();
</script>
"""


def date_text(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def as_ms(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() * 1000


# --------------------------------------------------------------------------- pages


@pytest.fixture(scope="module")
def rsi_artifact() -> m.StrategyArtifact:
    art = api.compile_spec(str(Path(__file__).parents[2] / "specs/strategies/rsi_reversion.peak"),
                           Path(__file__).parents[2])
    assert isinstance(art, m.StrategyArtifact)
    return art


@pytest.fixture(scope="module")
def pages(rsi_artifact: m.StrategyArtifact, swept_rsi: SweptRsi, walked: WalkForwardResult,
          research_project: Path) -> dict[str, str]:
    """The three reports: a 3,000-bar RSI backtest with 300 trades (markers start hidden),
    the 27-combination sweep with its best equity, the 8-window walk-forward. The research
    runs' temporary folder is written as one fixed path, so lines wrap the same every run."""
    result = build_result(rsi_artifact, n=3000, trades=300)
    fixed = {str(research_project): "/home/quant/project"}

    def same_paths(text: str) -> str:
        for old, new in fixed.items():
            text = text.replace(old, new)
        return text

    return {
        "backtest": render_html(result, graph=rsi_artifact.config.graph,
                                reproduce="peak backtest specs/strategies/rsi_reversion.peak"),
        "sweep": same_paths(render_sweep_html(swept_rsi.result, best=swept_rsi.best)),
        "walkforward": same_paths(render_walkforward_html(walked)),
    }


def probe(page: str, kind: str, drive: bool) -> str:
    charts = {"backtest": list(TIME_CHARTS), "sweep": ["chart-heatmap", "chart-best-equity"],
              "walkforward": ["wf-chart-equity", "wf-chart-params"]}[kind]
    figures = figures_of(parse(page))
    start = end = ""
    if kind == "backtest":
        x = decode(figures["chart-price"]["data"][0]["x"])
        start, end = date_text(x[ZOOM[0]]), date_text(x[ZOOM[1]])
    script = PROBE % {"charts": json.dumps(charts if kind == "backtest" else charts[:1]),
                      "drive": json.dumps(kind if drive else ""), "start": start, "end": end}
    return page.replace("</body>", script + "</body>")


def run_chromium(jobs: list[tuple[list[str], Path]]) -> list[tuple[str, str]]:
    """Chromium runs (flags, page), three at a time: each one's stdout and stderr."""
    assert CHROMIUM is not None
    out: list[tuple[str, str]] = []
    for first in range(0, len(jobs), 3):
        running = [subprocess.Popen([CHROMIUM, *flags, page.resolve().as_uri()],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for flags, page in jobs[first:first + 3]]
        for proc in running:
            stdout, stderr = proc.communicate(timeout=180)
            assert proc.returncode == 0, stderr[-2000:]
            out.append((stdout, stderr))
    return out


@pytest.fixture(scope="module")
def browsed(pages: dict[str, str], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[tuple[str, int], dict[str, Any]]:
    """For every report and width, one Chromium run: the probe's log (driven at 1400 px, the
    page put back as it was at the end), what Chromium wrote to stderr, and a screenshot
    taken when the run ends."""
    tmp = tmp_path_factory.mktemp("screens")
    jobs: list[tuple[list[str], Path]] = []
    for kind, width in KEYS:
        page = tmp / f"{kind}-{width}.html"
        page.write_text(probe(pages[kind], kind, width == 1400), encoding="utf-8")
        jobs.append(([*chromium_flags(tmp / f"profile-{kind}-{width}", budget_ms=30000,
                                      width=width, height=HEIGHT),
                      f"--screenshot={tmp / f'{kind}-{width}.png'}", "--dump-dom"], page))
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for key, (dom, stderr) in zip(KEYS, run_chromium(jobs), strict=True):
        logged = re.search(r'<pre id="probe-log"[^>]*>(.*?)</pre>', dom, re.S)
        assert logged is not None, f"{key}: the probe did not finish: {stderr[-2000:]}"
        found[key] = {"shot": tmp / f"{key[0]}-{key[1]}.png", "stderr": stderr,
                      "log": json.loads(html.unescape(logged.group(1)))}
    return found


# --------------------------------------------------------------------------- every page


@pytest.mark.parametrize("key", KEYS, ids=[f"{k}-{w}" for k, w in KEYS])
def test_no_console_messages(browsed: dict[tuple[str, int], dict[str, Any]],
                             key: tuple[str, int]) -> None:
    stderr = browsed[key]["stderr"]
    assert [line for line in stderr.splitlines() if CONSOLE.search(line)] == []


@pytest.mark.parametrize("key", KEYS, ids=[f"{k}-{w}" for k, w in KEYS])
def test_nothing_is_wider_than_the_window(browsed: dict[tuple[str, int], dict[str, Any]],
                                          key: tuple[str, int]) -> None:
    """The page never scrolls sideways; every table fits its box, but the sweep's ranking,
    which scrolls inside its own (its header and rows stay together)."""
    fits = browsed[key]["log"]["fits"]
    page_width, window = fits.pop("page")
    assert page_width <= window, key
    wide = {name for name, (width, box) in fits.items() if width > box}
    assert wide <= {"ranking-table"}, (key, fits)
    if key[0] == "walkforward":
        assert "windows-table" in fits and "windows-table" not in wide


VERSION_FILE = REFERENCES / "CHROMIUM"  # the major version the references were made with


def chromium_major() -> str:
    """The running Chromium's major version ("156"), or "" when it does not say."""
    assert CHROMIUM is not None
    found = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True,
                           timeout=30).stdout
    match = re.search(r"Chromium (\d+)\.", found)
    return match.group(1) if match else ""


def grey(path: Path) -> np.ndarray[Any, Any]:
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("L").resize((image.width // SCALE, image.height // SCALE),
                                          Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float64)


@pytest.mark.parametrize("key", KEYS, ids=[f"{k}-{w}" for k, w in KEYS])
def test_screenshot_matches_its_reference(browsed: dict[tuple[str, int], dict[str, Any]],
                                          key: tuple[str, int]) -> None:
    from PIL import Image

    reference = REFERENCES / f"{key[0]}-{key[1]}.png"
    shot = grey(browsed[key]["shot"])
    major = chromium_major()
    if UPDATE:
        REFERENCES.mkdir(exist_ok=True)
        Image.fromarray(shot.astype(np.uint8)).save(reference, optimize=True)
        VERSION_FILE.write_text(major + "\n")
    made_with = VERSION_FILE.read_text().strip()
    if major != made_with:  # another renderer draws text differently: not a layout change
        pytest.skip(f"the references were made with Chromium {made_with}, this is "
                    f"{major or 'unknown'}: regenerate them (module docstring) to compare")
    assert reference.exists(), f"no reference {reference.name}: see the module docstring"
    want = np.asarray(Image.open(reference), dtype=np.float64)
    assert shot.shape == want.shape == (HEIGHT // SCALE, key[1] // SCALE)
    assert shot.std() > 10  # not a blank page
    diff = float(np.abs(shot - want).mean())
    assert diff < SCREEN_TOLERANCE, f"{reference.name}: mean difference {diff:.2f}; see the " \
        "module docstring to regenerate the references after an intended change"


def test_the_screenshot_check_sees_a_layout_change(
        browsed: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Control: the backtest report shifted down by 60 px (a taller header, say) fails the
    comparison; the sweep report's reference fails the backtest report's screenshot."""
    from PIL import Image

    shot = grey(browsed[("backtest", 1400)]["shot"])
    shifted = np.vstack([np.full((60 // SCALE, shot.shape[1]), 255.0), shot[:-(60 // SCALE)]])
    assert float(np.abs(shifted - shot).mean()) > SCREEN_TOLERANCE
    other = np.asarray(Image.open(REFERENCES / "sweep-1400.png"), dtype=np.float64)
    assert float(np.abs(other - shot).mean()) > SCREEN_TOLERANCE


# --------------------------------------------------------------------------- the backtest


def expected_y(fig: dict[str, Any], shown: list[Any], view: tuple[float, float] | None,
               log: bool = False) -> list[float] | None:
    """The page's y fit redone (report.js.j2 ``yRange``): the marks and zero, then every shown
    trace's values in view widened by one point each side — candles by high and low — with
    5% of room; log10 units on a log axis (positive values only)."""
    meta = fig["peak"]
    values = [] if log else [*meta.get("marks", []), *([0.0] if meta.get("zero") else [])]
    for trace, visible in zip(fig["data"], shown, strict=True):
        if visible is not True:
            continue
        x = decode(trace["x"])
        ys = [decode(trace["high"]), decode(trace["low"])] if trace["type"] == "candlestick" \
            else [decode(trace["y"])]
        i0, i1 = 0, len(x) - 1
        if view is not None:
            i0 = max(int(np.searchsorted(x, view[0], side="left")) - 1, 0)
            i1 = min(int(np.searchsorted(x, view[1], side="right")), len(x) - 1)
        for y in ys:
            seen = y[i0:i1 + 1]
            values += [float(v) for v in seen if v == v and (not log or v > 0)]
    if not values:
        return None
    lo, hi = min(values), max(values)
    if log:
        lo, hi = float(np.log10(lo)), float(np.log10(hi))
    room = (hi - lo) * 0.05 or abs(hi) * 0.01 or 0.01
    return [lo - room, hi + room]


@pytest.fixture(scope="module")
def driven(browsed: dict[tuple[str, int], dict[str, Any]], pages: dict[str, str]
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    return browsed[("backtest", 1400)]["log"], figures_of(parse(pages["backtest"]))


def test_first_view_fits_the_whole_run_markers_hidden(
        driven: tuple[dict[str, Any], dict[str, Any]]) -> None:
    log, figures = driven
    first = log["initial"]
    markers = figures["chart-price"]["peak"]["markers"]
    assert [first["chart-price"]["visible"][i] for i in markers] == ["legendonly"] * 4
    assert first["note"] == ("300 trades in view: markers show when at most 200 are — zoom in, "
                             "or choose “all”")
    for chart in TIME_CHARTS:
        assert first[chart]["xauto"] is True, chart
        if chart == "chart-ind-oscillator":
            assert first[chart]["y"] == [0, 100]
            continue
        want = expected_y(figures[chart], first[chart]["visible"], None)
        assert first[chart]["y"] == pytest.approx(want, rel=1e-9), chart


def test_zoom_moves_every_chart_fits_y_and_shows_markers(
        driven: tuple[dict[str, Any], dict[str, Any]]) -> None:
    log, figures = driven
    zoomed = log["zoomed"]
    x = decode(figures["chart-price"]["data"][0]["x"])
    view = (float(x[ZOOM[0]]), float(x[ZOOM[1]]))
    markers = figures["chart-price"]["peak"]["markers"]
    assert [zoomed["chart-price"]["visible"][i] for i in markers] == [True] * 4
    assert zoomed["note"] == ""
    for chart in TIME_CHARTS:
        assert [as_ms(v) for v in zoomed[chart]["x"]] == list(view), chart
        if chart == "chart-ind-oscillator":
            assert zoomed[chart]["y"] == [0, 100]
            continue
        want = expected_y(figures[chart], zoomed[chart]["visible"], view)
        assert zoomed[chart]["y"] == pytest.approx(want, rel=1e-9), chart
    # a zoomed price chart is narrower than the whole run's
    initial = log["initial"]["chart-price"]["y"]
    assert zoomed["chart-price"]["y"][1] - zoomed["chart-price"]["y"][0] < initial[1] - initial[0]


def test_marker_and_scale_buttons(driven: tuple[dict[str, Any], dict[str, Any]]) -> None:
    log, figures = driven
    x = decode(figures["chart-price"]["data"][0]["x"])
    view = (float(x[ZOOM[0]]), float(x[ZOOM[1]]))
    markers = figures["chart-price"]["peak"]["markers"]
    none = log["none"]
    assert [none["chart-price"]["visible"][i] for i in markers] == ["legendonly"] * 4
    assert none["note"] == "trade markers hidden"
    assert none["chart-price"]["y"] == pytest.approx(
        expected_y(figures["chart-price"], none["chart-price"]["visible"], view), rel=1e-9)
    as_log = log["log"]["chart-equity"]
    assert as_log["type"] == "log"
    assert as_log["y"] == pytest.approx(
        expected_y(figures["chart-equity"], as_log["visible"], view, log=True), rel=1e-9)


def test_a_reset_shows_the_whole_run_again(driven: tuple[dict[str, Any], dict[str, Any]]
                                           ) -> None:
    log, figures = driven
    reset = log["reset"]
    for chart in TIME_CHARTS:
        assert reset[chart]["xauto"] is True, chart
    assert reset["chart-drawdown"]["y"] == log["initial"]["chart-drawdown"]["y"]
    assert reset["chart-equity"]["type"] == "log"  # the scale stays as chosen
    assert reset["chart-equity"]["y"] == pytest.approx(
        expected_y(figures["chart-equity"], reset["chart-equity"]["visible"], None, log=True))
    assert reset["note"].startswith("300 trades in view")  # "auto" again, whole run


# --------------------------------------------------------------------------- the sweep


def test_sweep_table_sorts_and_heatmap_switches(
        browsed: dict[tuple[str, int], dict[str, Any]], swept_rsi: SweptRsi) -> None:
    log = browsed[("sweep", 1400)]["log"]
    trades = sorted(float(v) for v in swept_rsi.result.metrics["trades"])
    assert [float(v) for v in log["ascending"]] == trades
    assert [float(v) for v in log["descending"]] == trades[::-1]
    assert log["heatmap"] == {"title": "sharpe over oversold × overbought",
                              "note": "other params at the best combination's values: "
                                      "length=14."}
