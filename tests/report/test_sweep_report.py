"""The sweep report (``peakdsl.report.sweep``) on a real 27-combination sweep of rsi_reversion:
the full ranked table with every metric once, a heatmap for every pair of params with the
third at the best value, the best combination's equity, reproducible bytes.

Browser behaviour (sorting, the heatmap selector) is in test_report_screens.py.
"""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np
import pytest
from conftest import SweptRsi
from test_report_html import decode

from peakdsl.engine.stats import METRIC_KEYS
from peakdsl.report import sweep as report_sweep
from peakdsl.report.sweep import (
    BEST_ID,
    HEATMAP_ID,
    heatmap_choices,
    heatmap_slice,
    render_sweep_html,
)


@pytest.fixture(scope="module")
def page(swept_rsi: SweptRsi) -> str:
    return render_sweep_html(swept_rsi.result, best=swept_rsi.best)


def script(page: str, element_id: str) -> Any:
    import json

    found = re.search(rf'id="{element_id}">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))


def header_cells(page: str) -> list[str]:
    head = page[page.index('<table class="grid ranking"'):]
    head = head[:head.index("</thead>")]
    return [html.unescape(h) for h in re.findall(r"<th [^>]*>([^<]*)</th>", head)]


def body_rows(page: str) -> list[list[tuple[str, str]]]:
    body = page[page.index('<table class="grid ranking"'):]
    body = body[body.index("<tbody>"):body.index("</tbody>")]
    return [re.findall(r'<td class="[^"]*" data-v="([^"]*)">([^<]*)</td>', row)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)]


def test_every_row_every_metric_once(swept_rsi: SweptRsi, page: str) -> None:
    r = swept_rsi.result
    assert header_cells(page) == ["#", "length", "oversold", "overbought", "sharpe",
                                  *(m for m in METRIC_KEYS if m != "sharpe")]
    rows = body_rows(page)
    assert len(rows) == 27 and "all 27 by sharpe" in page
    assert [int(row[0][1]) for row in rows] == list(range(1, 28))
    for row, index in zip(rows, r.ranking.tolist(), strict=True):
        assert [float(v) for v, _ in row[1:4]] == r.space.combos[index].tolist()
        assert float(row[4][0]) == r.metrics["sharpe"][index]  # exact: the sort value
    best = rows[0]
    assert [text for _, text in best[1:4]] == ["14", "25", "65"]
    assert best[4] == ("-3.3725779854102553", "-3.37")
    assert '<tr class="best">' in page and page.count('class="best"') == 1


def test_undefined_values_sort_last_and_infinite_ones_sort(swept_rsi: SweptRsi) -> None:
    assert report_sweep._sort_value(float("nan")) == ""
    assert report_sweep._sort_value(float("inf")) == "Infinity"
    assert report_sweep._sort_value(-2.5) == "-2.5"
    cell = report_sweep._metric_cell("trades", 89.0)
    assert (cell.text, cell.value) == ("89", "89.0")


def test_the_table_stops_at_its_cap(swept_rsi: SweptRsi, monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    monkeypatch.setattr(report_sweep, "MAX_TABLE_ROWS", 5)
    page = render_sweep_html(swept_rsi.result)
    assert len(body_rows(page)) == 5
    assert "the best 5 of 27 by sharpe" in page
    assert f"Every row is in <code>{swept_rsi.result.parquet}</code>" in page


def test_a_heatmap_for_every_pair(swept_rsi: SweptRsi, page: str) -> None:
    """Each pair's cells are the objective of the rows with the third param at its best
    value (overbought 65, oversold 25, length 14)."""
    r = swept_rsi.result
    heatmaps = script(page, "peak-heatmaps")
    assert list(heatmaps) == ["length,oversold", "length,overbought", "oversold,overbought"]
    combos, sharpe = r.space.combos, r.metrics["sharpe"]
    for key, (fixed_col, fixed_value) in zip(heatmaps, ((2, 65.0), (1, 25.0), (0, 14.0)),
                                             strict=True):
        fig = heatmaps[key]["figure"]
        x_col, y_col = (r.space.names.index(n) for n in key.split(","))
        for i, y in enumerate(fig["data"][0]["y"]):
            for j, x in enumerate(fig["data"][0]["x"]):
                rows = np.flatnonzero((combos[:, x_col] == float(x))
                                      & (combos[:, y_col] == float(y))
                                      & (combos[:, fixed_col] == fixed_value))
                assert fig["data"][0]["z"][i][j] == sharpe[rows[0]]
    assert heatmaps["oversold,overbought"]["note"] == (
        "other params at the best combination's values: length=14")
    assert script(page, "peak-figures")[HEATMAP_ID] == heatmaps["length,oversold"]["figure"]
    assert '<option value="length,overbought">length × overbought</option>' in page


def test_heatmap_axes_given_come_first(swept_rsi: SweptRsi) -> None:
    r = swept_rsi.result
    keys = [c.key for c in heatmap_choices(r, ("overbought", "length"))]
    assert keys == ["overbought,length", "length,oversold", "oversold,overbought"]
    cut = heatmap_slice(r, ("overbought", "length"))
    assert cut is not None and cut.fixed == {"oversold": 25.0}


def test_best_combination_equity(swept_rsi: SweptRsi, page: str) -> None:
    """The backtest of the best params gives the very numbers the sweep ranked, and its
    equity and buy & hold start at 1."""
    r, best = swept_rsi.result, swept_rsi.best
    assert best.params == {"length": 14.0, "oversold": 25.0, "overbought": 65.0}
    for key in METRIC_KEYS:
        got, want = best.metrics[key], r.metrics[key][r.best_row]
        assert (got is None and np.isnan(want)) or got == want, key
    fig = script(page, "peak-figures")[BEST_ID]
    bench, equity = (decode(trace["y"]) for trace in fig["data"])
    assert np.array_equal(equity, best.sim.equity / 10_000.0)
    assert bench[0] == 1.0
    cells = re.findall(r'<td class="num">([^<]*)</td>',
                       page[page.index('id="best-metrics"'):page.index("</table>",
                                                                      page.index("best-metrics"))])
    assert cells[0] == "-5.08%" and cells[2] == "-3.37" and cells[4] == "89"


def test_reproduce_lines_and_determinism(swept_rsi: SweptRsi, page: str) -> None:
    r = swept_rsi.result
    assert r.command.startswith("peak sweep ") and r.best_command.startswith("peak backtest ")
    assert f'<code class="cmd">{html.escape(r.command)}</code>' in page
    assert f'<pre class="source" id="best-line">{html.escape(r.best_command)}</pre>' in page
    assert render_sweep_html(r, best=swept_rsi.best) == page
