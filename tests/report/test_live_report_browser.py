"""The live status report (peakdsl/live/report.py, ``render_html``) in a real headless
Chromium: it loads offline without a console message — although a note holds a script tag,
which must arrive as text —, the inline SVG equity chart is in the page with its line, and
the screenshot is not blank: the chart's blue line crosses most of its width."""

from __future__ import annotations

import math
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

from peakdsl.engine.state import CASH, LAST_EQUITY, MARK, QTY, SIDE, new_account, new_positions
from peakdsl.live.notes import Note
from peakdsl.live.report import build_live_report, render_html
from peakdsl.live.store import LiveStore
from peakdsl.robustness.subject import subject_plan

__all__ = ["pytestmark"]

REPO = Path(__file__).resolve().parents[2]
T0 = 1_764_547_200_000  # 2025-12-01T00:00Z
H = 3_600_000
LINE = np.array([37, 99, 235])  # the equity line's #2563eb


def book(equity: float) -> dict[str, np.ndarray]:
    account = new_account(10_000.0)
    account[LAST_EQUITY], account[CASH] = equity, equity - 2_000.0
    positions = new_positions([0])
    positions[0, [SIDE, QTY, MARK]] = 1.0, 0.1, 20_000.0
    return {"account": account, "positions": positions, "ring": np.full(4, -np.inf)}


@pytest.fixture(scope="module")
def browsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("live-browser")
    plan, _ = subject_plan(str(REPO / "specs/strategies/ma_crossover.peak"), root=REPO)
    with LiveStore.open(tmp / "ma_crossover.sqlite") as store:
        store.start_session("s1", spec="ma_crossover", artifact_sha256=plan.artifact_sha256,
                            mode="paper", account="default", exchange="binance", params={},
                            at=T0)
        for k in range(24):
            store.save_bar(T0 + k * H, book(10_000 + 150 * math.sin(k / 4)), session="s1")
        store.log("alert", "A001 the risk stage denied 1 entry", at=T0 + 5 * H,
                  level="warning", session="s1", data={"code": "A001", "key": "risk"})
        notes = [Note(at=T0 + 6 * H, by="alice",
                      text="<script>console.log('injected')</script> checked the feed")]
        report = build_live_report(store, plan, mode="paper", account="default",
                                   period="daily", at=None, now_s=T0 / 1000 + 86_400,
                                   notes=notes)
    page = tmp / "live.html"
    page.write_text(render_html(report), encoding="utf-8")
    return browse(page, tmp)


def test_no_console_messages(browsed: dict[str, object]) -> None:
    console = [line for line in str(browsed["stderr"]).splitlines() if CONSOLE.search(line)]
    assert console == []


def test_the_svg_chart_and_the_escaped_note_are_in_the_page(
        browsed: dict[str, object]) -> None:
    dom = str(browsed["dom"])
    start = dom.index('<svg id="equity-chart"')
    chart = dom[start:dom.index("</svg>", start)]
    line = chart[chart.index('id="equity-line"'):]
    assert line.count(" L") == 24  # the start equity and 24 bars
    assert "&lt;script&gt;console.log('injected')&lt;/script&gt; checked the feed" in dom
    assert dom.count("<script") == 0


def test_screenshot_is_not_blank(browsed: dict[str, object]) -> None:
    from PIL import Image

    with Image.open(Path(str(browsed["shot"]))) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    assert distinct_colours(rgb.astype(np.uint8)) > 50
    blue = np.abs(rgb - LINE).sum(axis=2) < 60
    columns = np.flatnonzero(blue.any(axis=0))
    # the line spans ~650 px of the 760 px chart; the blue nav links alone cover ~450
    assert columns.size > 600, columns.size
