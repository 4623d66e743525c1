"""The walk-forward report's windows table (``peakdsl.report.walkforward``): one row per
window, each period on two lines with its bar counts, the chosen params one a line, so the
table fits a page (checked in Chromium by test_report_screens.py); the reproduce line.
"""

from __future__ import annotations

import html
import re

from peakdsl.report.walkforward import render_walkforward_html, window_rows
from peakdsl.research.walkforward import WalkForwardResult


def windows_table(page: str) -> str:
    start = page.index('id="windows-table"')
    return page[start:page.index("</table>", start)]


def test_window_rows(walked: WalkForwardResult) -> None:
    first = window_rows(walked)[0]
    assert first.train == ("2025-06-06 16:00", "2025-07-18 07:00")
    assert first.test == ("2025-07-18 08:00", "2025-08-08 03:00")
    assert (first.train_bars, first.test_bars, first.warmup) == ("1,000", "500", "60")
    assert first.params == ["fast=10", "slow=60"]
    assert first.oos_return == "-1.45%" and not first.positive


def test_the_table_has_one_row_per_window(walked: WalkForwardResult) -> None:
    page = render_walkforward_html(walked)
    table = windows_table(page)
    heads = re.findall(r"<th>([^<]*)</th>", table)
    assert heads == ["#", "train", "test", "params", "IS sharpe", "IS return", "OOS return",
                     "OOS Sharpe", "OOS max dd", "trades"]
    rows = re.findall(r"<tr class=\"[^\"]*\">(.*?)</tr>", table)
    assert len(rows) == 8
    assert ('<td class="period">2025-06-06 16:00 →<br>2025-07-18 07:00<span class="sub">1,000 '
            'bars</span></td>') in rows[0]
    assert '<span class="sub">500 bars, warm-up 60</span>' in rows[0]
    assert '<td class="params"><code>fast=10</code><br><code>slow=60</code></td>' in rows[0]


def test_reproduce_line_and_determinism(walked: WalkForwardResult) -> None:
    page = render_walkforward_html(walked)
    assert walked.command.startswith("peak walkforward ")
    assert (f'<tr id="reproduce"><th>reproduce</th><td><code class="cmd">'
            f"{html.escape(walked.command)}</code></td></tr>") in page
    assert render_walkforward_html(walked) == page
