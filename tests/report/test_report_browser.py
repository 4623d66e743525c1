"""The HTML report in a real headless Chromium: loads offline without console messages,
plotly draws every chart, and the screenshot is not blank. The report logs nothing itself,
so any console line (``browser_setup.CONSOLE``) fails the test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from browser_setup import BROWSER_MARKS, CHROMIUM, CONSOLE, chromium_flags

from peakdsl.backtest import BacktestResult
from peakdsl.report import write_report
from peakdsl.report.html import CHART_IDS

MakeResult = Callable[..., BacktestResult]

WIDTH, HEIGHT = 1280, 2000
pytestmark = BROWSER_MARKS


def flags(profile: Path) -> list[str]:
    return chromium_flags(profile, budget_ms=5000, width=WIDTH, height=HEIGHT)


@pytest.fixture(scope="module")
def browsed(make_result: MakeResult, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, object]:
    """Screenshot and DOM dump of one report, taken by two Chromium processes in parallel."""
    assert CHROMIUM is not None
    tmp = tmp_path_factory.mktemp("browser")
    report = tmp / "report.html"
    write_report(make_result(n=3000, trades=30), report)
    return browse(report, tmp)


def browse(report: Path, tmp: Path, timeout: float = 60) -> dict[str, object]:
    """A screenshot (``shot``, in ``tmp``) and the DOM (``dom``) of a report, taken by two
    Chromium processes in parallel, and what both wrote to stderr (``stderr``)."""
    assert CHROMIUM is not None
    shot = tmp / "shot.png"
    url = report.resolve().as_uri()
    screenshot = subprocess.Popen(
        [CHROMIUM, *flags(tmp / "profile-shot"), f"--screenshot={shot}", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dump = subprocess.Popen(
        [CHROMIUM, *flags(tmp / "profile-dom"), "--dump-dom", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, shot_err = screenshot.communicate(timeout=timeout)
    dom, dom_err = dump.communicate(timeout=timeout)
    assert screenshot.returncode == 0, shot_err[-2000:]
    assert dump.returncode == 0, dom_err[-2000:]
    return {"shot": shot, "stderr": shot_err + dom_err, "dom": dom}


def test_no_console_messages(browsed: dict[str, object]) -> None:
    stderr = str(browsed["stderr"])
    console = [line for line in stderr.splitlines() if CONSOLE.search(line)]
    assert console == []


def test_plotly_rendered_every_chart(browsed: dict[str, object]) -> None:
    dom = str(browsed["dom"])
    starts = [dom.index(f'id="{chart}"') for chart in CHART_IDS]
    ends = [*starts[1:], dom.index("</section>", starts[-1])]
    for chart, start, end in zip(CHART_IDS, starts, ends, strict=True):
        inside = dom[start:end]
        assert 'class="main-svg"' in inside, chart
        assert "js-plotly-plot" in dom[start:start + 200], chart
    price = dom[starts[0]:ends[0]]
    assert price.count('class="point"') >= 30  # trade markers were drawn


def distinct_colours(rgb: np.ndarray) -> int:
    packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) \
        | rgb[..., 2].astype(np.int32)
    return len(np.unique(packed))


def test_screenshot_is_not_blank(browsed: dict[str, object]) -> None:
    from PIL import Image

    with Image.open(Path(str(browsed["shot"]))) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    assert distinct_colours(rgb) > 50
    # The lower half of the first screen is the price chart: candles, lines and markers.
    chart = rgb[HEIGHT // 2:, 100:WIDTH - 100]
    assert distinct_colours(chart) > 50
    assert chart.std() > 10
    # Some pixels are the candle greens/reds, not just greys.
    saturation = chart.max(axis=2).astype(int) - chart.min(axis=2).astype(int)
    assert (saturation > 80).mean() > 0.001


def test_the_console_check_sees_errors(tmp_path: Path) -> None:
    """Control: a page that logs an error and throws is caught by the same check."""
    assert CHROMIUM is not None
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>console.error('bad');"
                    "throw new Error('boom');</script>", encoding="utf-8")
    done = subprocess.run([CHROMIUM, *flags(tmp_path / "profile"), "--dump-dom",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=60)
    console = [line for line in done.stderr.splitlines() if CONSOLE.search(line)]
    assert len(console) == 2, done.stderr[-2000:]
    assert '"bad"' in console[0] and "Uncaught Error: boom" in console[1]
