"""The robustness report: the Markdown summary against literal values, the HTML sections and
the document's numbers in them, the charts' data, determinism, writing, and
`peak robustness SPEC --report`.

The case is the spec library's ``ma_crossover`` (copied into a scratch project, as the other
tests of it do) on the synthetic demo data, studied with 200 runs per method and the
``crash`` and ``fee_x2`` scenarios; a second spec never trades, so every trade method is
left out and the block bootstrap's Sharpe is undefined in every run.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_portfolio_report import decode, figures_of, peak  # tests/report is on sys.path

from peakdsl.lang.project import UsageError
from peakdsl.report.html import plotly_js
from peakdsl.report.robustness import (
    bar_geometry,
    chart_ids,
    far_below,
    fmt_change,
    render_robustness_html,
    render_robustness_markdown,
    write_robustness_report,
)
from peakdsl.robustness.run import StudyRun, run_study

NEVER_SPEC = """\
strategy never {
    market BTC/USDT
    timeframe 1h
    param length: int = 20 in 5..50 step 5
    let ma = sma(close, length)
    entry long when ma < 0
    exit long when ma > 0
    size 25% of equity
}
"""
REPO = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
NEVER = "specs/strategies/never.peak"
SETTINGS: dict[str, Any] = {"runs": 200, "stress": ("crash", "fee_x2")}
METHODS = ["bootstrap", "reshuffle", "skip", "block"]


def write_project(root: Path) -> Path:
    """A scratch project: the library's ``ma_crossover`` and the ``never`` spec."""
    folder = root / "specs" / "strategies"
    folder.mkdir(parents=True)
    shutil.copyfile(REPO / MA, root / MA)
    (root / NEVER).write_text(NEVER_SPEC, encoding="utf-8")
    return root


def study(root: Path, spec: str = MA, settings: dict[str, Any] | None = None) -> StudyRun:
    return run_study(str(root / spec), SETTINGS if settings is None else settings, root=root,
                     record=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("robustness-report"))


@pytest.fixture(scope="module")
def run(project: Path) -> StudyRun:
    return study(project)


@pytest.fixture(scope="module")
def page(run: StudyRun) -> str:
    return render_robustness_html(run.result, run.doc)


@pytest.fixture(scope="module")
def summary(run: StudyRun) -> str:
    return render_robustness_markdown(run.result, run.doc)


# --------------------------------------------------------------------------- helpers


def test_changes_against_the_base() -> None:
    assert fmt_change("total_return", -0.15439889889512903, -0.11294526839319985) == "-4.15 pp"
    assert fmt_change("max_drawdown", -0.1, -0.1) == "+0.00 pp"
    assert fmt_change("sharpe", -2.4345909221359427, -2.211816204977784) == "-0.22"
    assert fmt_change("sharpe", -1e-9, 0.0) == "+0.00"  # never "-0.00"
    assert fmt_change("trades", 68, 51) == "+17"
    assert fmt_change("sharpe", None, 1.0) == fmt_change("sharpe", 1.0, None) == "—"


def test_far_below_is_half_the_base_sharpe_and_at_least_half_a_point() -> None:
    assert far_below(1.4, 3.0)  # 3.0 - max(0.5, 1.5) = 1.5
    assert not far_below(1.5, 3.0)
    assert far_below(-1.6, -1.0)  # -1.0 - max(0.5, 0.5) = -1.5
    assert not far_below(-1.5, -1.0)
    assert far_below(-0.51, 0.0) and not far_below(-0.5, 0.0)  # at least 0.5
    assert not far_below(None, 1.0) and not far_below(-9.0, None)


def test_a_single_bin_is_drawn_wide_enough_to_see() -> None:
    centres, widths = bar_geometry(np.array([0.0, 0.5, 1.0]))
    assert centres.tolist() == [0.25, 0.75] and widths.tolist() == [0.5, 0.5]
    # numpy's histogram of one value: edges 0.5 either side; drawn 5% of the value wide
    centres, widths = bar_geometry(np.array([-0.6, 0.4]))
    assert centres.tolist() == pytest.approx([-0.1]) and widths.tolist() == pytest.approx([0.005])
    _, widths = bar_geometry(np.array([-1e-4, 1e-4]))
    assert widths.tolist() == pytest.approx([0.0005])  # at least 5% of 1%


# --------------------------------------------------------------------------- Markdown


def test_markdown_header_and_headline(summary: str, run: StudyRun) -> None:
    lines = summary.splitlines()
    assert lines[0] == "## Robustness: `ma_crossover` · strategy"
    for expected in (
        "| period | 2025-06-06 16:00 → 2026-01-01 00:00 UTC |",
        "| runs | 200 per method |",
        "| seed | 0 |",
        "| skip | 10.00% |",
        "| block size | automatic: 17 bars (the cube root of the bars) |",
        "| ruin | a drawdown of 50.00% |",
        "| stress | crash, fee_x2 |",
        "Base run: Total return -11.29%, Max drawdown -12.57%, Sharpe -2.21, Trades 51.",
        "| Monte-Carlo 5th percentile total return | -17.25% |",
        "| Monte-Carlo 50th percentile total return | -11.35% |",
        "| Monte-Carlo 95th percentile total return | -5.96% |",
        "| Monte-Carlo 5th percentile max drawdown | -17.54% |",
        "| Monte-Carlo 5th percentile Sharpe | -6.21 |",
        "| Monte-Carlo probability of loss | 99.50% |",
        "| Monte-Carlo risk of ruin | 0.00% |",
        "| Worst stress-scenario return | -15.44% |",
        "| Worst parameter-neighbour Sharpe | -2.58 |",
        "| Median parameter-neighbour Sharpe | -2.22 |",
        "Trade bootstrap, 200 runs: 99.50% end below the starting capital; in 0.00% the "
        "drawdown reaches 50.00%.",
    ):
        assert expected in lines, expected
    assert f"`{run.doc.artifact_sha256}`" in summary
    assert f"`{run.doc.data[0].fingerprint}`" in summary
    assert "> **Synthetic demo data**: the study ran on generated candles" in summary
    assert len(summary) < 8_000  # a pull-request comment, not a report


def test_markdown_stress_and_neighbours(summary: str) -> None:
    lines = summary.splitlines()
    for expected in (
        "| base run | | -11.29% | -12.57% | -2.21 | 51 | | | |",
        "| `crash` **(worst)** | a −20 % gap at the worst moment | -15.44% | -16.66% | -2.43 "
        "| 51 | -4.15 pp | -4.09 pp | -0.22 |",
        "| `fee_x2` | fees × 2 | -13.51% | -14.54% | -2.68 | 51 | -2.22 pp | -1.97 pp | -0.47 |",
        "4 neighbours one step away, 0 with a Sharpe far below the base run's (a fall of more "
        "than 50% of the base Sharpe's size, and at least 0.5). Lowest Sharpe first:",
        "| `ma_crossover.fast=25` | fast 20 → 25 | -12.88% | -13.82% | -2.58 | 53 | -0.37 |  |",
        "| `ma_crossover.fast=15` | fast 20 → 15 | -9.58% | -10.66% | -1.83 | 54 | +0.38 |  |",
    ):
        assert expected in lines, expected
    neighbours = [line.split(" | ")[0] for line in lines if line.startswith("| `ma_crossover.")]
    assert neighbours == ["| `ma_crossover.fast=25`", "| `ma_crossover.slow=40`",
                          "| `ma_crossover.slow=60`", "| `ma_crossover.fast=15`"]


def test_markdown_percentiles_by_method(summary: str) -> None:
    lines = summary.splitlines()
    for expected in (
        "| bootstrap | total return | -11.29% | -17.25% | -13.67% | -11.35% | -8.87% | -5.96% |",
        # the trade methods measure the base run per trade: its Sharpe is not the bar one
        "| bootstrap | Sharpe | -3.22 | -6.21 | -4.61 | -3.43 | -2.39 | -1.33 |",
        "| reshuffle | total return | -11.29% | -11.29% | -11.29% | -11.29% | -11.29% | -11.29% |",
        "| block | max drawdown | -12.57% | -23.31% | -17.48% | -14.24% | -11.09% | -7.51% |",
        "| block | Sharpe | -2.21 | -4.60 | -3.14 | -2.25 | -1.45 | -0.48 |",
        "Probability of loss / risk of ruin: bootstrap 99.50% / 0.00%; reshuffle 100.00% / "
        "0.00%; skip 100.00% / 0.00%; block 98.50% / 0.00%.",
    ):
        assert expected in lines, expected


def test_markdown_flags_and_escapes(run: StudyRun) -> None:
    far = run.doc.jitter[0].model_copy(update={"sharpe": -4.0})
    doc = run.doc.model_copy(update={"jitter": [far, *run.doc.jitter[1:]],
                                     "notes": ["a | b", "line\nbreak"]})
    text = render_robustness_markdown(run.result, doc)
    assert "4 neighbours one step away, 1 with a Sharpe far below" in text
    assert "| `ma_crossover.fast=15` | fast 20 → 15 | -9.58% | -10.66% | -4.00 | 54 | -1.79 | " \
           "**far below** |" in text.splitlines()
    assert "- a \\| b" in text and "- line break" in text


# --------------------------------------------------------------------------- HTML


def test_html_has_every_section(page: str, run: StudyRun) -> None:
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    assert {"header", "synthetic-banner", "data-sources", "summary", "base-metrics",
            "study-metrics", "loss-and-ruin", "fan", "distributions", "stress",
            "stress-table", "jitter", "jitter-table", "notes", "peak-figures",
            "peak-plotly-config", *chart_ids(run.doc)} <= ids
    assert {f"percentiles-{m}" for m in METHODS} <= ids
    assert chart_ids(run.doc) == [*(f"rb-fan-{m}" for m in METHODS),
                                  *(f"rb-hist-{m}" for m in METHODS)]
    assert page.count('class="chart"') == 8
    # self-contained: outside the inlined plotly.js the only links are in-page anchors
    refs = re.findall(r'\b(?:src|href)="([^"]*)"', page.replace(plotly_js(), ""))
    assert refs and all(ref.startswith("#") for ref in refs)
    assert len(page.encode()) - len(plotly_js().encode()) < 200_000  # small beside plotly.js


def test_html_shows_the_documents_numbers(page: str, run: StudyRun) -> None:
    doc = run.doc
    text = html.unescape(page)
    assert doc.artifact_sha256 in text and doc.data[0].fingerprint in text
    assert doc.data[0].source in text
    assert ('<tr><th title="share of trade-bootstrap runs that end below the starting '
            'capital">Monte-Carlo probability of loss</th><td class="num">99.50%</td></tr>'
            ) in page
    assert ('<tr><th title="total return over the run">Total return</th>'
            '<td class="num">-11.29%</td></tr>') in page
    assert ('<tr><td>total return</td><td class="num">-11.29%</td><td class="num">-17.25%</td>'
            '<td class="num">-13.67%</td><td class="num">-11.35%</td><td class="num">-8.87%'
            '</td><td class="num">-5.96%</td></tr>') in page
    assert ('<tr class="flagged"><td><code>crash</code></td><td>a −20 % gap at the worst '
            'moment</td><td class="num">-15.44%</td><td class="num">-16.66%</td>'
            '<td class="num">-2.43</td><td class="num">51</td><td class="num change">-4.15 pp'
            '</td><td class="num change">-4.09 pp</td><td class="num change">-0.22</td>'
            '<td class="num change">+0</td></tr>') in page
    assert ('<tr><td><code>ma_crossover.slow=40</code></td><td>slow 50 → 40</td>'
            '<td class="num">-14.05%</td><td class="num">-14.30%</td><td class="num">-2.26</td>'
            '<td class="num">68</td><td class="num change">-2.75 pp</td>') in page
    assert "200 runs over 5,000 bars" in page and "200 runs over 51 trades" in page
    assert "<strong>99.50%</strong> of them end below the starting capital" in page


def test_html_highlights_neighbours_far_below(run: StudyRun) -> None:
    far = run.doc.jitter[2].model_copy(update={"sharpe": -3.5})
    doc = run.doc.model_copy(update={"jitter": [*run.doc.jitter[:2], far, run.doc.jitter[3]]})
    page = render_robustness_html(run.result, doc)
    flagged = re.findall(r'<tr class="flagged"><td><code>([^<]+)</code>', page)
    assert flagged == ["crash", "ma_crossover.slow=40"]  # the worst scenario, the neighbour
    assert "<strong>1</strong> with a Sharpe far below" in page
    assert '<td class="flag">far below</td>' in page


def test_html_escapes_what_the_study_says(run: StudyRun) -> None:
    doc = run.doc.model_copy(update={"notes": ["<script>alert(1)</script>"]})
    page = render_robustness_html(run.result, doc)
    assert "<script>alert(1)" not in page
    assert "<li>&lt;script&gt;alert(1)&lt;/script&gt;</li>" in page


def test_fan_charts_are_the_documents_bands_and_the_base_path(page: str, run: StudyRun
                                                              ) -> None:
    figs = figures_of(page)
    base_return = run.doc.base.total_return  # type: ignore[attr-defined]
    for method in METHODS:
        fan = run.doc.monte_carlo[method].fan
        traces = figs[f"rb-fan-{method}"]["data"]
        assert [t["name"] for t in traces] == ["p05–p95 (low)", "p05–p95", "p25–p75 (low)",
                                               "p25–p75", "median (p50)", "base run"]
        for trace in traces:
            assert decode(trace["x"]).tolist() == fan.steps
        bands = [decode(t["y"]) for t in traces[:5]]
        for shown, level in zip(bands, (0, 4, 1, 3, 2), strict=True):
            np.testing.assert_array_equal(shown, np.asarray(fan.equity[level]) - 1.0)
        path = decode(traces[5]["y"])
        assert path[0] == 0.0  # every path starts at the starting capital
        assert path[-1] == pytest.approx(base_return, rel=1e-9)  # and ends where the run did
    assert figs["rb-fan-bootstrap"]["layout"]["height"] == 420  # the headline, larger
    assert figs["rb-fan-block"]["layout"]["xaxis"]["title"]["text"] == "bars into the run"


def test_histograms_are_the_documents_with_the_base_marked(page: str, run: StudyRun) -> None:
    figs = figures_of(page)
    base = run.doc.base.model_dump()  # type: ignore[attr-defined]
    for method in METHODS:
        fig = figs[f"rb-hist-{method}"]
        hist = run.doc.monte_carlo[method].histogram
        for trace, statistic in zip(fig["data"], ("total_return", "max_drawdown", "sharpe"),
                                    strict=True):
            assert decode(trace["y"]).tolist() == hist[statistic].counts
        marks = [shape["x0"] for shape in fig["layout"]["shapes"]]
        assert marks[0] == pytest.approx(base["total_return"], rel=1e-9)
    # the block bootstrap reads the bar returns: its base run is the backtest's own figures
    block = [s["x0"] for s in figs["rb-hist-block"]["layout"]["shapes"]]
    assert block == pytest.approx([base["total_return"], base["max_drawdown"],
                                   base["sharpe"]], rel=1e-9)
    # the trade methods see the equity once per trade: the base run on their measure
    trade = [s["x0"] for s in figs["rb-hist-bootstrap"]["layout"]["shapes"]]
    assert trade[1:] == pytest.approx([-0.1162947039102793, -3.2204337240214778], rel=1e-9)


def test_a_study_without_trades_variants_or_sharpe(project: Path) -> None:
    run = study(project, NEVER, {"runs": 50, "stress": (), "jitter": False})
    assert list(run.doc.monte_carlo) == ["block"]
    page = render_robustness_html(run.result, run.doc)
    assert "No stress scenario ran" in page and "Parameter jitter was off" in page
    assert "<li>0 closed trade(s): nothing to resample over trades</li>" in page
    assert "Block bootstrap of bar returns, 50 runs:" in page
    sharpe = figures_of(page)["rb-hist-block"]
    assert len(sharpe["data"]) == 2  # no bars for the Sharpe: undefined in every run
    assert [a["text"] for a in sharpe["layout"]["annotations"]] == ["undefined in every run"]
    text = render_robustness_markdown(run.result, run.doc)
    assert "No stress scenario ran." in text and "No parameter neighbour ran (jitter off)." in text
    assert "| Monte-Carlo probability of loss | — |" in text  # no trade bootstrap


def test_same_study_same_bytes(project: Path, page: str, summary: str) -> None:
    again = study(project)
    assert render_robustness_html(again.result, again.doc) == page
    assert render_robustness_markdown(again.result, again.doc) == summary


# --------------------------------------------------------------------------- writing


def test_write_picks_the_format_by_suffix(run: StudyRun, tmp_path: Path) -> None:
    starts = {"r.html": "<!DOCTYPE html>", "r.HTM": "<!DOCTYPE html>", "r.md": "## Robustness"}
    for name, start in starts.items():
        write_robustness_report(run.result, run.doc, tmp_path / "out" / name)
        assert (tmp_path / "out" / name).read_text(encoding="utf-8").startswith(start), name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(starts)


def test_write_refusals_leave_nothing_behind(run: StudyRun, tmp_path: Path) -> None:
    """An unknown suffix is a ValueError (the CLI refuses it first, U005); a path the OS
    refuses is U007 on ``--report``."""
    with pytest.raises(ValueError, match=r"use a \.html, \.htm, \.md file name"):
        write_robustness_report(run.result, run.doc, tmp_path / "r.pdf")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError) as caught:
        write_robustness_report(run.result, run.doc, tmp_path / "file" / "r.html")
    assert (caught.value.diagnostic.code, caught.value.diagnostic.path) == ("U007", "--report")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


# --------------------------------------------------------------------------- CLI


def test_cli_writes_html_and_markdown(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    args = ("robustness", MA, "--runs", "200", "--stress", "crash,fee_x2")
    shown = peak(*args, "--report", "out.html", "--no-record", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert "report: out.html" in shown.stdout
    page = (root / "out.html").read_text(encoding="utf-8")
    assert all(f'id="rb-fan-{m}"' in page for m in METHODS)
    as_json = peak(*args, "--json", "--report", "reports/out.md", cwd=root)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    text = (root / "reports" / "out.md").read_text(encoding="utf-8")
    assert f"`{doc['artifact_sha256']}`" in text
    assert "| Monte-Carlo 5th percentile total return | -17.25% |" in text
    assert doc["run_id"]  # recorded, with the report written first
    assert "Traceback" not in shown.stderr + as_json.stderr
