"""`--impact`: both versions on the same candles, metric deltas, trades added and removed.

The impact of a changed default must be exactly the backtest of the old spec with the new
value as a `--set` override (same engine, same candles): the metrics are compared with
``api.backtest`` runs and the trades added/removed with the set difference of their trades.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from peakdsl import api
from peakdsl.cli import app
from peakdsl.review.impact import IMPACT_METRICS, delta, trade_changes
from peakdsl.review.model import DiffResult

REPO = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
USDT = "specs/portfolios/multi_style_usdt.peak"


def setup(tmp_path: Path) -> tuple[Path, Path]:
    """A project (the spec library, no cache) and a folder outside it for new versions."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "specs", project / "specs")
    return project, tmp_path / "new"


def changed_copy(project: Path, new: Path, rel: str, old: str, replacement: str) -> Path:
    """The project's specs copied to ``new`` with one edit in ``rel``."""
    shutil.copytree(project / "specs", new / "specs")
    target = new / rel
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, replacement))
    return target


def keys(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return {(t.isoformat(), s) for t, s in zip(frame["entry_time"], frame["side"],
                                                strict=True)}


def test_a_changed_param_default(tmp_path: Path) -> None:
    project, new = setup(tmp_path)
    target = changed_copy(project, new, MA, "param fast: int = 20", "param fast: int = 15")
    result = api.diff(str(project / MA), str(target), root=project, impact=True)
    assert [(c.kind, c.before, c.after) for c in result.changes] == [
        ("param_default", "20", "15")]
    assert result.impact is not None and len(result.impact) == 1
    doc = result.impact[0]
    old = api.backtest(str(project / MA), root=project, record=False).result
    moved = api.backtest(str(project / MA), root=project, overrides=["fast=15"],
                         record=False).result
    assert doc.ran and doc.note.startswith("both versions on the same candles")
    assert [m.name for m in doc.metrics] == list(IMPACT_METRICS)
    for m in doc.metrics:
        assert (m.before, m.after) == (old.metrics[m.name], moved.metrics[m.name]), m.name
        assert m.delta == m.after - m.before  # type: ignore[operator]
    old_trades, new_trades = old.trades_frame(), moved.trades_frame()
    assert (doc.trades_before, doc.trades_after) == (len(old_trades), len(new_trades))
    added = {(t.entry_time, t.side) for t in doc.trades_added}
    removed = {(t.entry_time, t.side) for t in doc.trades_removed}
    assert added == keys(new_trades) - keys(old_trades) and added
    assert removed == keys(old_trades) - keys(new_trades) and removed


def test_a_portfolio_with_a_reweighted_component(tmp_path: Path) -> None:
    project, new = setup(tmp_path)
    target = changed_copy(project, new, USDT, "component mean_reversion weight 25%\n"
                          "    component ma_crossover weight 25%",
                          "component mean_reversion weight 35%\n"
                          "    component ma_crossover weight 15%")
    result = api.diff(str(project / USDT), str(target), root=project, impact=True)
    assert [c.kind for c in result.changes] == ["component_weight", "component_weight"]
    assert result.impact is not None
    doc = result.impact[0]
    old = api.portfolio_backtest(str(project / USDT), root=project, record=False)
    moved = api.portfolio_backtest(str(target), root=new, record=False)
    assert doc.ran and doc.kind == "portfolio"
    for m in doc.metrics:
        assert (m.before, m.after) == (old.result.metrics[m.name],
                                       moved.result.metrics[m.name]), m.name
    assert doc.trades_before == int(old.result.metrics["trades"])  # type: ignore[arg-type]
    assert {t.component for t in doc.trades_added} <= {"mean_reversion", "ma_crossover",
                                                       "trend_following_eth_usdt"}


def test_a_version_that_cannot_run_is_said_not_raised(tmp_path: Path,
                                                      monkeypatch: object) -> None:
    """Real BTC/USDT candles in the cache, ETH/USDT on the demo: the portfolio cannot run
    (D017); the diff still reports the change and says why there is no impact."""
    project, new = setup(tmp_path)
    rows = ["time,open,high,low,close,volume"] + [
        f"2024-01-01T{h:02d}:00:00Z,100,101,99,100.5,12" for h in range(24)]
    (tmp_path / "btc.csv").write_text("\n".join(rows) + "\n")
    run = CliRunner().invoke(app, ["data", "import", str(tmp_path / "btc.csv"), "--market",
                                   "BTC/USDT", "--timeframe", "1h", "--root", str(project)])
    assert run.exit_code == 0, run.output
    target = changed_copy(project, new, USDT, "rebalance 7d", "rebalance 14d")
    result: DiffResult = api.diff(str(project / USDT), str(target), root=project, impact=True)
    assert result.impact is not None
    doc = result.impact[0]
    assert not doc.ran and "D017" in doc.note and doc.metrics == []


def test_trade_changes_match_by_component_entry_time_and_side() -> None:
    t = pd.Timestamp("2024-01-01T00:00:00Z")
    h = pd.Timedelta(hours=1)

    def frame(*trades: tuple[str, int, str]) -> pd.DataFrame:
        return pd.DataFrame({
            "component": [c for c, _, _ in trades],
            "entry_time": [t + k * h for _, k, _ in trades],
            "exit_time": [t + (k + 2) * h for _, k, _ in trades],
            "side": [s for _, _, s in trades], "pnl": [1.0] * len(trades),
            "trade_return": [0.01] * len(trades), "exit_reason": ["signal"] * len(trades)})

    old = frame(("", 1, "long"), ("", 5, "long"), ("", 9, "short"))
    new = frame(("", 1, "long"), ("", 5, "short"), ("", 12, "long"))
    added, removed = trade_changes(old, new)
    assert [(a.entry_time, a.side) for a in added] == [
        ("2024-01-01T05:00:00+00:00", "short"), ("2024-01-01T12:00:00+00:00", "long")]
    assert [(r.entry_time, r.side) for r in removed] == [
        ("2024-01-01T05:00:00+00:00", "long"), ("2024-01-01T09:00:00+00:00", "short")]
    assert added[0].component is None and added[0].exit_time == "2024-01-01T07:00:00+00:00"


def test_delta() -> None:
    assert delta("sharpe", 1.5, 1.25).delta == -0.25
    assert delta("trades", 40, 43).delta == 3.0
    assert delta("profit_factor", float("inf"), 2.0).before is None
    assert delta("profit_factor", None, 2.0).delta is None
