"""`peak sweep`: every row equals `peak backtest --set …`, ranking, registry, outputs, errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from peakdsl import api
from peakdsl.cli import app
from peakdsl.compile.models import Param
from peakdsl.engine.stats import METRIC_KEYS
from peakdsl.metrics import Direction
from peakdsl.overrides import resolve_overrides
from peakdsl.registry.store import Registry
from peakdsl.research.space import on_edge
from peakdsl.research.store import missing_blocks, parse_size
from peakdsl.research.sweep import SweepResult, format_value, ranking, run_sweep

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/ma_crossover.peak"
SETS = ("fast=5..25:5", "slow=30..60:10")  # 5 × 4 = 20 combinations, all with fast < slow


def make_project(path: Path) -> Path:
    shutil.copytree(REPO / "specs", path / "specs")
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def swept(project: Path) -> SweepResult:
    return run_sweep(str(project / SPEC), root=project, sets=SETS)


class Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.figures = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in = dict(attrs).get("id") if tag == "script" else None
        self.refs += [(tag, k, v) for k, v in attrs if k in ("src", "href") and v]

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "peak-figures":
            self.figures += data


def assert_self_contained(html: str) -> None:
    page = Refs()
    page.feed(html)
    assert all(tag == "a" and value.startswith("#") for tag, _, value in page.refs), page.refs
    assert "link" not in page.tags and "iframe" not in page.tags
    figures = json.loads(page.figures)
    assert figures["chart-heatmap"]["data"][0]["type"] == "heatmap"


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return (a is None or math.isnan(a)) and (b is None or math.isnan(b))
    return a == b or abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def test_space_and_outputs(swept: SweepResult) -> None:
    assert len(swept.space) == 20
    assert swept.space.names == ("fast", "slow")
    assert swept.computed == 20 and swept.resumed == 0
    assert swept.data_synthetic and swept.data_bars == 5000
    table = pq.read_table(swept.parquet)
    assert table.column_names == ["fast", "slow", *METRIC_KEYS, "rank"]
    assert table.num_rows == 20
    assert sorted(table.column("rank").to_pylist()) == list(range(1, 21))
    np.testing.assert_array_equal(table.column("sharpe").to_numpy(), swept.metrics["sharpe"])


def test_rows_equal_backtest_api(project: Path, swept: SweepResult) -> None:
    rng = np.random.default_rng(7)
    for row in rng.choice(len(swept.space), size=6, replace=False):
        params = swept.space.params(int(row))
        overrides = [f"{k}={v:g}" for k, v in params.items()]
        run = api.backtest(str(project / SPEC), root=project, overrides=overrides, record=False)
        assert run.result.params == params | {k: v for k, v in run.result.params.items()
                                              if k not in params}
        for key in METRIC_KEYS:
            assert same(swept.metrics[key][row], run.result.metrics[key]), (row, key)


def test_rows_equal_backtest_cli(project: Path, swept: SweepResult) -> None:
    for row in (int(swept.ranking[0]), 13):
        line = swept.best_set if row == swept.best_row else " ".join(
            f"--set {k}={v:g}" for k, v in swept.space.params(row).items())
        out = subprocess.run([sys.executable, "-m", "peakdsl.cli", "backtest", SPEC,
                              *line.split(), "--json", "--no-record"], cwd=project,
                             capture_output=True, text=True, timeout=60, check=True)
        metrics = json.loads(out.stdout)["metrics"]
        for key in METRIC_KEYS:
            assert same(swept.metrics[key][row], metrics[key]), (row, key)


def test_ranking_is_best_first_and_deterministic(swept: SweepResult) -> None:
    objective = swept.metrics["sharpe"]
    ordered = objective[swept.ranking]
    finite = ordered[~np.isnan(ordered)]
    assert np.all(np.diff(finite) <= 0)
    assert swept.best_row == int(swept.ranking[0])
    assert swept.top(3)[0]["rank"] == 1
    np.testing.assert_array_equal(ranking(np.array([1.0, np.nan, 2.0, 1.0, np.inf, np.nan])),
                                  [4, 2, 0, 3, 1, 5])


def test_ranking_follows_the_objective_direction() -> None:
    values = np.array([1.0, np.nan, 2.0, 1.0, -np.inf, np.nan])
    np.testing.assert_array_equal(ranking(values, Direction.LOWER), [4, 0, 3, 2, 1, 5])
    with pytest.raises(ValueError, match="cannot rank"):
        ranking(values, Direction.NEITHER)


@pytest.mark.parametrize(("objective", "order"), [
    ("volatility", 1),  # lower is better: ascending
    ("max_drawdown", -1),  # <= 0, higher is better: the shallowest drawdown first
    ("max_drawdown_bars", 1),
])
def test_sweep_ranks_by_the_objective_direction(project: Path, swept: SweepResult,
                                                objective: str, order: int) -> None:
    """Another objective re-ranks the stored rows (nothing is computed again)."""
    again = run_sweep(str(project / SPEC), root=project, sets=SETS, objective=objective,
                      record=False)
    assert again.computed == 0 and again.resumed == len(swept.space)
    ranked = again.metrics[objective][again.ranking]
    assert not np.isnan(ranked).any()
    assert np.all(order * np.diff(ranked) >= 0)
    assert ranked[0] == (ranked.min() if order > 0 else ranked.max())
    assert again.best_row == int(again.ranking[0])
    best = again.row(int(again.best_row))
    assert {k for k, v in best["metrics"].items() if isinstance(v, int)} == {
        "trades", "max_drawdown_bars", "ambiguous_bars", "orders_reduced"}


def test_registry_has_every_combination_under_one_sweep(project: Path,
                                                        swept: SweepResult) -> None:
    assert swept.sweep_id is not None
    with Registry(project) as registry:
        runs = registry.sweep_runs(swept.sweep_id)
        assert len(runs) == 20
        assert {tuple(r.params[n] for n in ("fast", "slow")) for r in runs} == {
            tuple(c) for c in swept.space.combos.tolist()}
        sweep = registry.get_sweep(swept.sweep_id)
        assert sweep.status == "done"
        before = registry.trial_count("ma_crossover")
    assert swept.trials_total == before
    other = run_sweep(str(project / SPEC), root=project, sets=("fast=10", "slow=30..50:10"))
    assert other.sweep_id != swept.sweep_id
    assert other.trials_total == before + 3
    again = run_sweep(str(project / SPEC), root=project, sets=SETS)  # all resumed
    assert again.sweep_id == swept.sweep_id and again.computed == 0 and again.resumed == 20
    assert again.trials_total == before + 3
    np.testing.assert_array_equal(again.ranking, swept.ranking)


def test_set_line_round_trips(project: Path, swept: SweepResult) -> None:
    assert swept.best_set == " ".join(f"--set {k}={v:g}" for k, v in swept.best_params.items())
    artifact = api.compile_spec(str(project / SPEC), project)
    items = [part for part in swept.best_set.split() if part != "--set"]
    params, problems = resolve_overrides(artifact.config, items)  # type: ignore[attr-defined]
    assert problems == [] and params == swept.best_params
    stop = Param(name="stop", type="percent", default=0.03, low=0.001, high=0.2, step=0.001)
    fee = Param(name="fee", type="bps", default=0.001, low=0.0, high=0.01, step=None)
    for param, value in ((stop, 0.035), (stop, 0.007), (stop, 0.1), (fee, 0.0015)):
        text = format_value(param, value)
        assert text.endswith("%" if param.type == "percent" else "bps")
        number = float(text.rstrip("%bps"))
        parsed = number * (0.01 if param.type == "percent" else 0.0001)
        assert parsed == value or abs(parsed - value) <= 2 * np.spacing(value)  # 0.007: 0.7%


def test_honesty(swept: SweepResult) -> None:
    assert swept.deflated_sharpe is None or 0.0 <= swept.deflated_sharpe <= 1.0
    assert swept.best_row is not None
    edge = on_edge(swept.space, swept.best_row)
    assert len(swept.warnings) == len(edge)
    for name, warning in zip(edge, swept.warnings, strict=True):
        assert warning.startswith(f"best {name}=") and "edge of the grid" in warning


def test_parse_size_and_blocks() -> None:
    assert parse_size("512MB") == 512 * 10**6
    assert parse_size("2GB") == 2 * 10**9
    assert parse_size("1.5GiB") == 3 * 2**29
    assert parse_size("4096") == 4096
    for bad in ("lots", "2XB", "0", "-1GB"):
        with pytest.raises(ValueError):
            parse_size(bad)
    done = np.array([True, False, False, True, False, False, False])
    assert missing_blocks(done, 3) == [(1, 3), (4, 6), (6, 7)]


def test_cli_text_json_and_report(project: Path, monkeypatch: pytest.MonkeyPatch,
                                  swept: SweepResult) -> None:
    monkeypatch.chdir(project)
    runner = CliRunner()
    args = ["sweep", SPEC, *(x for s in SETS for x in ("--set", s))]
    text = runner.invoke(app, [*args, "--top", "3", "--report", "sweep.html"])
    assert text.exit_code == 0, text.output
    assert "20 combinations" in text.output
    assert f"peak backtest {SPEC} {swept.best_set}" in text.output
    assert "deflated Sharpe ratio" in text.output and "synthetic demo" in text.output
    html = (project / "sweep.html").read_text()
    assert 'id="chart-heatmap"' in html and "Plotly.newPlot" in html
    assert_self_contained(html)
    assert html == (project / "sweep.html").read_text()
    again = runner.invoke(app, [*args, "--report", "sweep2.html", "--top", "3"])
    assert again.exit_code == 0
    assert (project / "sweep2.html").read_text() == html
    doc_run = runner.invoke(app, [*args, "--json", "--top", "2", "--objective", "sortino"])
    assert doc_run.exit_code == 0, doc_run.output
    doc = json.loads(doc_run.stdout)
    assert doc["objective"] == "sortino" and len(doc["top"]) == 2
    assert doc["sweep_id"] == swept.sweep_id and doc["resumed"] == 20
    assert doc["data"]["synthetic"] is True and doc["trials"] >= 20
    assert set(doc) >= {"space", "best", "best_set", "deflated_sharpe", "warnings", "parquet"}


@pytest.mark.parametrize(("extra", "code", "needle"), [
    (["--max-memory", "lots"], 2, "U005"),
    (["--set", "fast=7..9"], 1, "T010"),
    (["--set", "fats=5..10"], 1, "N014"),
    (["--objective", "luck"], 2, "U005"),
    (["--grid", "--random", "5", "--seed", "1"], 2, "U005"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], 2, "U005"),
    (["--heatmap", "fast,nope"], 2, "U005"),
])
def test_cli_errors(project: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str],
                    code: int, needle: str) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["sweep", SPEC, "--no-record", *extra])
    assert result.exit_code == code, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


def test_portfolio_is_a_usage_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    portfolios = sorted((project / "specs" / "portfolios").glob("*.peak"))
    if not portfolios:
        pytest.skip("no portfolio specs")
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["sweep", str(portfolios[0].relative_to(project))])
    assert result.exit_code == 2 and "U003" in result.output


def test_block_size_does_not_change_results(tmp_path: Path, swept: SweepResult) -> None:
    small = run_sweep(str(make_project(tmp_path) / SPEC), root=tmp_path, sets=SETS,
                      max_memory=1000, record=False)  # one combination per block
    assert small.block_size == 1 and swept.block_size > 1 and small.key == swept.key
    for key in METRIC_KEYS:
        np.testing.assert_array_equal(small.metrics[key], swept.metrics[key], err_msg=key)
    np.testing.assert_array_equal(small.ranking, swept.ranking)
    # (swept's results.parquet may have been re-ranked by another objective meanwhile)
    a, b = pq.read_table(small.parquet), pq.read_table(swept.parquet)
    assert a.drop(["rank"]).equals(b.drop(["rank"]))
