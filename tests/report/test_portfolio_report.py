"""The portfolio report: HTML structure and numbers, the Markdown summary against literal
values, determinism, chart sampling, writing, and `peak backtest PORTFOLIO --report`.

The case is a small portfolio of its own (written into a scratch project, so edits to the
spec library do not move its numbers): an SMA trend component on BTC/EUR 1h (60%, one param
overridden) and an RSI reversion component on ETH/EUR 15m (40%), rebalanced every 3 days,
under a tight risk spec that reduces and denies entries. It runs on the synthetic demo data
(deterministic: fixed seeds, ending 2026-01-01).
"""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peakdsl import api
from peakdsl.lang.project import UsageError
from peakdsl.report import portfolio as report
from peakdsl.report.html import drawdown, plotly_js
from peakdsl.report.portfolio import (
    CHART_IDS,
    TIME_CHARTS,
    chart_points,
    render_portfolio_html,
    render_portfolio_markdown,
    write_portfolio_report,
)

SPECS = {
    "strategies/pf_sma_btc.peak": """\
strategy pf_sma_btc {
    market BTC/EUR
    timeframe 1h
    param fast: int = 20 in 5..50 step 5
    let trend = sma(close, 60)
    entry long when crossover(sma(close, fast), trend)
    exit long when crossunder(sma(close, fast), trend)
    size 15% of equity
    stop_loss 5%
    take_profit 15%
    execution {
        fill next_open
        fees 10bps
        slippage 5bps
    }
}
""",
    "strategies/pf_rsi_eth.peak": """\
strategy pf_rsi_eth {
    market ETH/EUR
    timeframe 15m
    param length: int = 14 in 5..35 step 1
    let r = rsi(close, length)
    entry long when r < 30
    exit long when crossover(r, 50)
    entry short when r > 70
    exit short when crossunder(r, 50)
    size 15% of equity
    stop_loss 4%
    take_profit 8%
    execution {
        fill next_open
        fees 10bps
        slippage 5bps
    }
}
""",
    "risk/pf_tight.peak": """\
risk pf_tight {
    max_order_notional   1500 EUR
    max_symbol_exposure  20%
    max_total_exposure   30%
    max_open_positions   1
    max_daily_loss       3%
    max_orders_per_minute 10
}
""",
    "portfolios/pf_pair.peak": """\
portfolio pf_pair {
    capital 20000 EUR
    component pf_sma_btc weight 60% with { fast = 10 }
    component pf_rsi_eth weight 40%
    rebalance 3d
    risk pf_tight
}
""",
}
PORTFOLIO = "specs/portfolios/pf_pair.peak"


def write_pair_project(root: Path) -> Path:
    """The scratch project of the case (module docstring); returns ``root``."""
    for relative, text in SPECS.items():
        path = root / "specs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def run_pair(root: Path) -> api.PortfolioRun:
    return api.portfolio_backtest(str(root / PORTFOLIO), root=root, record=False)


def peak(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def decode(spec: dict[str, str]) -> np.ndarray:
    assert spec["dtype"] == "f8"
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype="<f8")


def figures_of(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="peak-figures">(.*?)</script>',
                      page, re.S)
    assert found is not None
    return json.loads(found.group(1))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pair_project(tmp_path_factory.mktemp("portfolio"))


@pytest.fixture(scope="module")
def run(project: Path) -> api.PortfolioRun:
    return run_pair(project)


@pytest.fixture(scope="module")
def page(run: api.PortfolioRun) -> str:
    return render_portfolio_html(run.result, run.doc)


@pytest.fixture(scope="module")
def summary(run: api.PortfolioRun) -> str:
    return render_portfolio_markdown(run.result, run.doc)


# --------------------------------------------------------------------------- Markdown


def test_markdown_header_and_metrics(summary: str) -> None:
    lines = summary.splitlines()
    assert lines[0] == "## Portfolio backtest: `pf_pair` · 2 components"
    for expected in (
        "| period | 2025-11-09 22:00 → 2026-01-01 00:00 UTC (5,001 points) |",
        "| capital | 20,000.00 EUR → final equity 19,738.17 EUR |",
        "| rebalancing | every 3d (17 times) |",
        "| risk spec | `pf_tight` |",
        "| Total return | -1.31% |",
        "| Sharpe | -3.00 |",
        "| Max drawdown | -1.72% |",
        "| Max drawdown duration (bars) | 4,301 |",
        "| Win rate | 52.38% |",
        "| Trades | 63 |",
        "| Fees paid | 156.80 |",
        "| Orders reduced (cash or risk limits) | 11 |",
        "- data source: synthetic demo candles for every component",
    ):
        assert expected in lines, expected
    assert "> **Synthetic demo data**: every component runs on generated candles" in summary
    assert len(summary) < 8_000  # a pull-request comment, not a report


def test_markdown_components_and_risk(summary: str, run: api.PortfolioRun) -> None:
    lines = summary.splitlines()
    for expected in (
        "| `pf_sma_btc` | BTC/EUR 1h | 60.00% | -0.88% | -0.91% | -2.43 | -1.47% | -1.78% "
        "| 11 | 0.20 | 27.27% | 25.34% |",
        "| `pf_rsi_eth` | ETH/EUR 15m | 40.00% | -0.43% | -0.81% | -1.75 | -1.07% | -3.03% "
        "| 52 | 0.78 | 57.69% | 20.96% |",
        "Risk spec `pf_tight`: 11 entries reduced, 83 denied.",
        "| `max_order_notional` | 1,500.00 EUR | 100.00% | 11 | 0 |",
        "| `max_symbol_exposure` | 20.00% | 40.39% | 0 | 0 |",
        "| `max_total_exposure` | 30.00% | 26.93% | 0 | 0 |",
        "| `max_open_positions` | 1 | 100.00% | 0 | 83 |",
        "| `max_daily_loss` | 3.00% | 19.38% | 0 | 0 |",
        "| `max_orders_per_minute` | 10 | 20.00% | 0 | 0 |",
        "| `pf_sma_btc` | 1.00 | 0.00 |",
    ):
        assert expected in lines, expected
    for c in run.doc.components:  # every artifact and data fingerprint, in full
        assert f"`{c.artifact_sha256}`" in summary and f"`{c.data_fingerprint}`" in summary
    assert "`fast=10`" in summary  # the override is what ran
    assert f"`{run.doc.artifact_sha256}`" in summary


def test_markdown_cells_are_escaped(run: api.PortfolioRun) -> None:
    doc = run.doc.model_copy(update={"warnings": ["a | b", "line\nbreak"]})
    text = render_portfolio_markdown(run.result, doc)
    assert "- a \\| b" in text and "- line break" in text


def test_contributions_add_up(run: api.PortfolioRun) -> None:
    """What the components table shows sums to the portfolio's figures."""
    doc = run.doc
    metrics = doc.metrics.model_dump()  # type: ignore[attr-defined]
    assert sum(c.contribution_return for c in doc.components) == pytest.approx(
        metrics["total_return"], abs=1e-12)
    assert sum(c.contribution_drawdown for c in doc.components) == pytest.approx(
        metrics["max_drawdown"], abs=1e-12)


# --------------------------------------------------------------------------- HTML


def test_html_has_every_section(page: str) -> None:
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    assert {"header", "synthetic-banner", "warnings", "metrics", "components",
            "components-table", "charts", "sample-note", "correlation", "risk", "denials",
            "provenance", "peak-figures", "peak-plotly-config", *CHART_IDS} <= ids
    assert page.count('class="chart"') == len(CHART_IDS)
    # self-contained: outside the inlined plotly.js the only links are in-page anchors
    refs = re.findall(r'\b(?:src|href)="([^"]*)"', page.replace(plotly_js(), ""))
    assert refs and all(ref.startswith("#") for ref in refs)


def test_html_shows_the_documents_numbers(page: str, run: api.PortfolioRun) -> None:
    doc = run.doc
    text = html.unescape(page)
    assert doc.artifact_sha256 in text
    for c in doc.components:
        assert c.artifact_sha256 in text and c.data_fingerprint in text and c.data_source in text
    assert ('<tr><th title="total return over the run">Total return</th>'
            '<td class="num">-1.31%</td>') in page
    assert ('<tr><td><code>pf_rsi_eth</code></td><td>ETH/EUR 15m</td><td class="num">40.00%'
            '</td><td class="num">-85.59</td><td class="num">-0.43%</td>'
            '<td class="num">-0.81%</td>') in page
    assert ('<tr><td><code>max_open_positions</code></td><td class="num">1</td>'
            '<td class="num">100.00%</td><td><code>open_positions</code></td>'
            '<td class="num">0</td><td class="num">83</td></tr>') in page
    assert "20,000.00 EUR → final equity 19,738.17 EUR" in text
    assert "every 3d (17 times)" in text
    for warning in doc.warnings:
        assert html.escape(warning, quote=False) in page


def test_html_escapes_what_the_run_says(run: api.PortfolioRun) -> None:
    doc = run.doc.model_copy(update={"warnings": ["<script>alert(1)</script>"]})
    page = render_portfolio_html(run.result, doc)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_stacked_components_sum_to_the_equity(page: str, run: api.PortfolioRun) -> None:
    fig = figures_of(page)["pf-chart-equity"]
    x = decode(fig["x"])
    *areas, total = fig["data"]
    assert [a["name"] for a in areas] == ["pf_sma_btc", "pf_rsi_eth"]
    assert all(a["stackgroup"] == "components" for a in areas) and "stackgroup" not in total
    stacked = sum(decode(a["y"]) for a in areas)
    equity = decode(total["y"])
    assert len(x) == len(equity) == len(stacked) <= report.CHART_POINTS + 1
    np.testing.assert_allclose(stacked, equity, rtol=1e-12)
    assert equity[0] == 20_000.0 and equity[-1] == pytest.approx(run.doc.final_equity)
    assert x[0] == run.result.times[0].value / 1e6
    assert x[-1] == run.result.times[-1].value / 1e6


def test_allocation_exposure_and_correlation_charts(page: str, run: api.PortfolioRun
                                                    ) -> None:
    figs = figures_of(page)
    allocation = figs["pf-chart-allocation"]["data"]
    assert [t["name"] for t in allocation] == ["pf_sma_btc", "pf_rsi_eth"]
    np.testing.assert_allclose(sum(decode(t["y"]) for t in allocation), 1.0, rtol=1e-9)
    assert decode(allocation[0]["y"])[0] == pytest.approx(0.6)  # the weight at the start
    exposure = figs["pf-chart-exposure"]
    assert [t["name"] for t in exposure["data"]] == ["BTC/EUR", "ETH/EUR", "all markets"]
    assert exposure["marks"] == [0.2, 0.3]
    assert [s["y0"] for s in exposure["layout"]["shapes"]] == [0.2, 0.3]
    heat = figs["pf-chart-correlation"]["data"][0]
    assert heat["x"] == heat["y"] == ["pf_sma_btc", "pf_rsi_eth"]
    assert heat["z"] == [list(row.values()) for row in run.doc.correlation.values()]
    assert heat["text"][0] == ["1.00", "0.00"]  # -3.2e-05 is shown without a sign
    assert heat["z"][0][1] == pytest.approx(-3.1561745e-05)
    for chart in TIME_CHARTS:
        assert figs[chart]["layout"]["yaxis"]["fixedrange"] is True
    zero = {chart: figs[chart]["zero"] for chart in TIME_CHARTS}
    assert zero == {"pf-chart-equity": False, "pf-chart-drawdown": True,
                    "pf-chart-allocation": False, "pf-chart-exposure": True}


def test_drawdown_chart_keeps_the_deepest_point(page: str, run: api.PortfolioRun) -> None:
    fig = figures_of(page)["pf-chart-drawdown"]
    dd = decode(fig["data"][0]["y"])
    full = drawdown(run.result.sim.equity)
    assert len(full) > report.CHART_POINTS  # the case is sampled
    assert dd.min() == full.min()
    assert dd.min() == pytest.approx(run.doc.metrics.max_drawdown)  # type: ignore[attr-defined]
    x = decode(fig["x"])
    assert x[0] == run.result.times[0].value / 1e6
    assert x[-1] == run.result.times[-1].value / 1e6


def test_chart_points() -> None:
    assert chart_points(10).tolist() == list(range(10))
    n = 100_000
    picked = chart_points(n)
    assert picked[0] == 0 and picked[-1] == n - 1
    assert len(picked) <= report.CHART_POINTS + 1
    assert np.all(np.diff(picked) > 0)


def test_same_run_same_bytes(project: Path, page: str, summary: str) -> None:
    again = run_pair(project)
    assert render_portfolio_html(again.result, again.doc) == page
    assert render_portfolio_markdown(again.result, again.doc) == summary


def test_data_is_small_beside_plotly(page: str) -> None:
    """The charts add little to plotly.js: 5,001 points, sampled to 4,001."""
    assert len(page.encode()) - len(plotly_js().encode()) < 600_000


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize("name", ["r.html", "r.HTM", "r.md"])
def test_write_picks_the_format(run: api.PortfolioRun, tmp_path: Path, name: str) -> None:
    path = tmp_path / "out" / name
    write_portfolio_report(run.result, run.doc, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("## Portfolio backtest") if name.endswith(".md") \
        else text.startswith("<!DOCTYPE html>")


def test_write_refuses_an_unknown_suffix(run: api.PortfolioRun, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"use a \.html, \.htm, \.md file name"):
        write_portfolio_report(run.result, run.doc, tmp_path / "r.pdf")
    assert list(tmp_path.iterdir()) == []


def test_write_failure_is_a_coded_usage_error(run: api.PortfolioRun, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError) as caught:
        write_portfolio_report(run.result, run.doc, blocker / "r.html")
    assert caught.value.diagnostic.code == "U007"
    assert caught.value.diagnostic.path == "--report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# --------------------------------------------------------------------------- CLI


def test_cli_writes_html_and_markdown(tmp_path: Path) -> None:
    root = write_pair_project(tmp_path)
    shown = peak("backtest", PORTFOLIO, "--report", "out.html", "--no-record", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert "report: out.html" in shown.stdout
    page = (root / "out.html").read_text(encoding="utf-8")
    assert all(f'id="{chart}"' in page for chart in CHART_IDS)
    as_json = peak("backtest", PORTFOLIO, "--json", "--report", "reports/out.md", cwd=root)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    text = (root / "reports" / "out.md").read_text(encoding="utf-8")
    assert f"`{doc['artifact_sha256']}`" in text
    assert "| Total return | -1.31% |" in text
    assert doc["run_id"]  # recorded, with the report written first
    assert "Traceback" not in shown.stderr + as_json.stderr
