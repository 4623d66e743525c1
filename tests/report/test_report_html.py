"""The HTML report: sections, self-containment, determinism, escaping, size rules."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib.resources import files
from typing import Any

import numpy as np
import pytest

from peakdsl.backtest import BacktestResult
from peakdsl.report import html as report_html
from peakdsl.report.html import (
    CHART_IDS,
    MAX_CHART_BARS,
    bucket_size,
    fmt_metric,
    monthly_returns,
    render_html,
)

MakeResult = Callable[..., BacktestResult]

SECTIONS = ("header", "metrics", "charts", "trades", "settings", "source")


class Page(HTMLParser):
    """Collects ids, external references and the text of script elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.script_text: dict[str, str] = {}
        self._in_script: str | None = None
        self.pre_text = ""
        self._in_pre = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "data", "poster") and value:
                self.refs.append((tag, name, value))
        if tag == "script":
            self.scripts.append(values)
            self._in_script = str(values.get("id") or f"script{len(self.scripts)}")
            self.script_text[self._in_script] = ""
        if tag == "pre":
            self._in_pre = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text[self._in_script] += data
        if self._in_pre:
            self.pre_text += data


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def page_text(result: BacktestResult) -> str:
    return render_html(result)


@pytest.fixture(scope="module")
def page(page_text: str) -> Page:
    return parse(page_text)


def figures_of(page: Page) -> dict[str, Any]:
    data = json.loads(page.script_text["peak-figures"])
    assert isinstance(data, dict)
    return data


def decode(spec: object) -> np.ndarray[Any, Any]:
    """A plotly typed-array spec (or a plain list) as a numpy array."""
    if isinstance(spec, dict):
        assert spec["dtype"] == "f8"
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype="<f8")
    return np.asarray(spec, dtype=np.float64)


def test_every_section_is_present(page: Page, page_text: str) -> None:
    assert set(SECTIONS) <= page.ids
    assert set(CHART_IDS) <= page.ids
    assert page_text.startswith("<!DOCTYPE html>")
    for needle in ("ab" * 32, "BTC/USDT", "1h", "peak 0.3.0", "Synthetic demo data",
                   "synthetic demo (seed 7)", "2023-01-01 00:00", "warm-up 50",
                   "Monthly returns"):
        assert needle in page_text, needle


def test_header_shows_the_data_fingerprint(result: BacktestResult, page_text: str) -> None:
    assert result.candles.fingerprint in page_text


def test_metrics_are_formatted(page_text: str) -> None:
    assert ">42.13%<" in page_text  # volatility: percent
    assert ">1.23<" in page_text  # sharpe: 2 decimals
    assert ">321<" in page_text  # max_drawdown_bars: integer
    row = re.search(r"<th[^>]*>calmar</th><td class=\"num\">([^<]*)</td>", page_text)
    assert row and row.group(1) == "—"  # None


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("total_return", 0.12345, "12.35%"), ("max_drawdown", -0.5, "-50.00%"),
    ("sharpe", 1.005, "1.00"), ("sharpe", None, "—"), ("sharpe", float("nan"), "—"),
    ("profit_factor", float("inf"), "∞"), ("trades", 1234, "1,234"),
    ("fees_paid", 1234.5, "1,234.50"), ("unknown_count", 7, "7"), ("unknown", 0.5, "0.50"),
])
def test_metric_format(name: str, value: float | int | None, shown: str) -> None:
    assert fmt_metric(name, value) == shown


def test_no_external_references(page: Page, page_text: str) -> None:
    for tag, attr, value in page.refs:
        assert not re.match(r"^\s*(https?:)?//", value, re.IGNORECASE), (tag, attr, value)
        assert tag == "a" and value.startswith("#"), (tag, attr, value)  # only in-page links
    assert "link" not in page.tags and "iframe" not in page.tags and "img" not in page.tags
    assert all("src" not in attrs for attrs in page.scripts)
    style = page_text[page_text.index("<style>"):page_text.index("</style>")]
    assert "url(" not in style and "@import" not in style


def test_plotly_is_inlined_once(page: Page, page_text: str) -> None:
    assert page_text.count("plotly.js v") == 1
    assert sum(len(text) for text in page.script_text.values()) > 1_000_000


def test_deterministic(make_result: MakeResult, page_text: str) -> None:
    again = render_html(make_result())
    assert again == page_text
    today = datetime.now(UTC)
    for stamp in (today.strftime("%Y-%m-%d"), today.strftime("%d %b %Y")):
        assert stamp not in page_text  # no generation time


def test_spec_source_is_escaped(make_result: MakeResult) -> None:
    hostile = "// </pre><script>alert(1)</script> & <b>bold</b>\nstrategy x {}\n"
    result = make_result(source_text=hostile, warnings=("<img src=x onerror=alert(2)>",))
    text = render_html(result)
    assert "<script>alert(1)</script>" not in text
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in text
    assert "<img src=x" not in text
    page = parse(text)
    assert page.pre_text == hostile
    assert "img" not in page.tags


def test_figure_json_cannot_close_the_script(make_result: MakeResult) -> None:
    result = make_result(market="X</script><script>alert(1)//")
    text = render_html(result)
    payload = text[text.index('id="peak-figures">'):]
    payload = payload[:payload.index("</script>")]
    assert "<" not in payload.removeprefix('id="peak-figures">')
    page = parse(text)
    figures = figures_of(page)
    assert figures["chart-price"]["data"][0]["name"].startswith("X</script>")


def test_charts_have_markers_by_side(result: BacktestResult, page: Page) -> None:
    figures = figures_of(page)
    assert list(figures) == list(CHART_IDS)
    price = figures["chart-price"]["data"]
    names = [trace["name"] for trace in price]
    assert names[0] == "BTC/USDT 1h"
    assert {"long entry", "long exit", "short entry", "short exit"} <= set(names)
    assert {"fast_ma", "slow_ma"} <= set(names)  # price-scale lets are overlaid
    t = result.sim.trades
    longs = np.flatnonzero(t["side"] > 0)
    entries = next(tr for tr in price if tr["name"] == "long entry")
    assert np.array_equal(decode(entries["y"]), t["entry_price"][longs])
    ms = result.times[t["entry_bar"][longs]].as_unit("ms").asi8
    assert np.array_equal(decode(entries["x"]), ms.astype(np.float64))


def test_equity_and_drawdown(result: BacktestResult, page: Page, page_text: str) -> None:
    """Equity and buy & hold both start at 1 (growth of 1), on a linear axis the page's
    "log" button switches."""
    figures = figures_of(page)
    bench, equity = figures["chart-equity"]["data"]
    assert np.array_equal(decode(equity["y"]), result.sim.equity / 10_000.0)
    close = result.candles.frame["close"].to_numpy()
    assert np.array_equal(decode(bench["y"]), close / close[0])
    assert decode(bench["y"])[0] == 1.0 == decode(equity["y"])[0]
    assert figures["chart-equity"]["layout"]["yaxis"]["type"] == "linear"
    assert 'data-scale="linear" aria-pressed="true">normalised<' in page_text
    assert 'data-scale="log" aria-pressed="false">log<' in page_text
    dd = decode(figures["chart-drawdown"]["data"][0]["y"])
    assert dd.max() <= 0
    assert dd.min() == pytest.approx(result.metrics["max_drawdown"])


def test_monthly_returns_chain_to_total(result: BacktestResult) -> None:
    years, grid = monthly_returns(result)
    assert years == [2023]
    values = [v for v in grid[0] if v is not None]
    assert len(values) == 3  # 2,000 hourly bars from 1 January: Jan, Feb, Mar
    total = np.prod([1 + v for v in values]) - 1
    assert total == pytest.approx(result.sim.equity[-1] / result.settings.capital - 1)
    assert grid[0][3:] == [None] * 9


def test_trades_table_lists_all_trades(page_text: str) -> None:
    assert page_text.count('<tr class="long') + page_text.count('<tr class="short') == 20
    assert 'id="trades-note"' not in page_text


def section(text: str, element_id: str) -> str:
    start = text.index(f'id="{element_id}"')
    return text[start:text.index("</table>", start)]


def test_summary_against_buy_and_hold(page_text: str) -> None:
    """The fixture's closes go from 30,000.22 to 18,573.86 (−38.09 %, deepest −44.88 %); the
    strategy lost 0.25 % (−6.15 % at worst), in the market 62 % of the time."""
    rows = re.findall(r"<tr><th>([^<]*)</th><td class=\"num\">([^<]*)</td>"
                      r"<td class=\"num\">([^<]*)</td></tr>", section(page_text, "versus"))
    assert rows == [("total return", "-0.25%", "-38.09%"),
                    ("max drawdown", "-6.15%", "-44.88%"),
                    ("time in the market", "62.00%", "100.00%"),
                    ("strategy − buy &amp; hold", "+37.83 pp", "")]
    # and the metrics table has buy & hold (filled from the candles: the fixture left it out)
    row = re.search(r"<th[^>]*>buy_hold_return</th><td class=\"num\">([^<]*)</td>", page_text)
    assert row and row.group(1) == "-38.09%"


def test_holding_times_in_bars_and_time(page_text: str) -> None:
    """Every fixture trade is held 96 one-hour bars: four days."""
    rows = re.findall(r"<tr><th>([^<]*)</th><td class=\"num\">([^<]*)</td>"
                      r"<td class=\"num\">([^<]*)</td></tr>", section(page_text, "durations"))
    assert rows == [("mean", "96.0", "4d"), ("median", "96.0", "4d"), ("longest", "96", "4d")]
    for name, shown in (("avg_bars_held", "96.00"), ("max_bars_held", "96"), ("sqn", "0.00")):
        assert re.search(rf">{name}</th><td class=\"num\">{shown}</td>", page_text), name


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0m"), (45 * 60, "45m"), (4 * 3600, "4h"), (96 * 3600, "4d"),
    (37.5 * 3600 + 0.4 * 60, "1d 13h 30m"), (15 * 60 * 24.68, "6h 10m"),
])
def test_fmt_duration(seconds: float, shown: str) -> None:
    assert report_html.fmt_duration(seconds) == shown


def test_reproduce_line_is_shown_when_given(make_result: MakeResult, page_text: str) -> None:
    assert 'id="reproduce"' not in page_text
    line = "peak backtest specs/strategies/ma_crossover.peak --from 2023-01-01 --set fast=10"
    text = render_html(make_result(), reproduce=line)
    assert f'<tr id="reproduce"><th>reproduce</th><td><code class="cmd">{line}</code>' in text


def test_markers_show_up_to_200_trades(page: Page, page_text: str) -> None:
    price = figures_of(page)["chart-price"]
    markers = [price["data"][i] for i in price["peak"]["markers"]]
    assert len(markers) == 4 and all("visible" not in trace for trace in markers)
    assert [price["data"][i]["name"] for i in price["peak"]["entries"]] == [
        "long entry", "short entry"]
    assert price["peak"]["limit"] == 200
    assert '<span class="note" id="marker-note"></span>' in page_text


def test_trades_table_is_cut_above_500(make_result: MakeResult) -> None:
    result = make_result(n=4000, trades=600)
    text = render_html(result)
    price = figures_of(parse(text))["chart-price"]
    markers = [price["data"][i] for i in price["peak"]["markers"]]  # dense: hidden at first
    assert len(markers) == 4 and all(trace["visible"] == "legendonly" for trace in markers)
    assert all(trace["marker"]["size"] == 7 for trace in markers)
    assert ("600 trades in view: markers show when at most 200 are — zoom in, or choose "
            "“all”</span>") in text
    rows = re.findall(r'<tr class="(?:long|short) (?:win|loss)"><td class="num">(\d+)</td>', text)
    assert len(rows) == 500
    assert rows[:2] == ["1", "2"] and rows[249] == "250" and rows[250] == "351"
    assert rows[-1] == "600"
    assert 'id="trades-note"' in text and "100 trades not shown" in text


def test_zero_trades_and_real_data(make_result: MakeResult) -> None:
    result = make_result(trades=0, synthetic=False)
    text = render_html(result)
    assert "No closed trades." in text
    assert "Synthetic demo data" not in text and "synthetic-banner" not in text
    price = figures_of(parse(text))["chart-price"]["data"]
    assert [trace["name"] for trace in price] == ["BTC/USDT 1h", "fast_ma", "slow_ma"]


def test_large_runs_are_downsampled(make_result: MakeResult) -> None:
    n = 45_001
    k = bucket_size(n)
    assert bucket_size(MAX_CHART_BARS) == 1 and k == 5
    result = make_result(n=n, trades=30)
    text = render_html(result)
    figures = figures_of(parse(text))
    candles = figures["chart-price"]["data"][0]
    frame = result.candles.frame
    highs = decode(candles["high"])
    assert len(highs) == 9_001
    assert highs[0] == frame["high"].iloc[:5].max()
    assert decode(candles["close"])[-1] == frame["close"].iloc[-1]
    assert decode(candles["low"]).min() == frame["low"].min()
    entries = next(tr for tr in figures["chart-price"]["data"]
                   if tr["name"] == "long entry")
    longs = np.flatnonzero(result.sim.trades["side"] > 0)
    assert np.array_equal(decode(entries["y"]), result.sim.trades["entry_price"][longs])
    dd = decode(figures["chart-drawdown"]["data"][0]["y"])
    assert len(dd) == 9_001
    assert dd.min() == pytest.approx(result.metrics["max_drawdown"])  # the trough is kept
    assert 'id="downsample-note"' in text
    assert len(text) - len(report_html.plotly_js()) < 2_500_000


def test_templates_are_package_data() -> None:
    names = {p.name for p in (files("peakdsl.report") / "templates").iterdir()}
    assert {"report.html.j2", "report.css.j2", "report.js.j2", "summary.md.j2",
            "trade_row.html.j2"} <= names
