"""`peak diff --impact`: both versions of every changed strategy or portfolio, backtested on
the same candles, compared metric by metric and trade by trade.

The candles are the work tree's (its `.peak/data` cache, else the synthetic demo market),
whichever side a version comes from: an old revision unpacked in a temporary folder has no
cache, and running it on the demo market while the new one ran on real data would compare
data, not specs. A strategy whose market or timeframe changed runs each version on its own
market's candles, and the document says so. A portfolio runs through the same plan and
clock as `peak backtest PORTFOLIO` (``peakdsl.portfolio``), with its own risk spec.

Trades are matched by entry time and side (and component, in a portfolio): a trade of the
new version with no twin in the old is *added*, one of the old with none in the new
*removed*. Nothing is recorded in the registry and nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..compile import models as m
from .model import ImpactDataDoc, ImpactDoc, MetricDelta, SpecDoc, TradeDoc
from .snapshot import Entry, Snapshot

IMPACT_METRICS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown",
                  "profit_factor", "win_rate", "trades", "exposure", "fees_paid")
KEY = ["component", "entry_time", "side"]


class Run:
    """One version's backtest, reduced to what the comparison needs."""

    def __init__(self, metrics: Mapping[str, Any], trades: pd.DataFrame,
                 data: ImpactDataDoc) -> None:
        self.metrics = metrics
        self.trades = trades
        self.data = data


def impact(specs: list[SpecDoc], before: Snapshot, after: Snapshot, data_root: Path
           ) -> list[ImpactDoc]:
    """An ``ImpactDoc`` for each changed strategy and portfolio, in the specs' order."""
    return [compare_runs(spec, RUNNERS[spec.kind], data_root, (_entry(before, spec), before),
                         (_entry(after, spec), after))
            for spec in specs if spec.status == "changed" and spec.kind in RUNNERS]


def _entry(snap: Snapshot, spec: SpecDoc) -> Entry:
    """The spec's entry on one side (a renamed file pair: the side's only spec)."""
    if spec.name in snap.entries and snap.entries[spec.name].kind == spec.kind:
        return snap.entries[spec.name]
    return snap.entries[snap.names[0]]


def compare_runs(spec: SpecDoc, run: Runner, data_root: Path, old: tuple[Entry, Snapshot],
                 new: tuple[Entry, Snapshot]) -> ImpactDoc:
    """Run both versions; a version that cannot run (its data) is said, not raised."""
    from ..api import SpecError
    from ..data import DataError

    kind = "strategy" if spec.kind == "strategy" else "portfolio"
    try:
        a, b = run(*old, data_root), run(*new, data_root)
    except (SpecError, DataError) as exc:
        problems = "; ".join(f"{d.code} {d.message}" for d in exc.diagnostics if d.is_error)
        return ImpactDoc(spec=spec.name, kind=kind, ran=False, note=f"not run: {problems}",
                         data_before=None, data_after=None, metrics=[], trades_before=0,
                         trades_after=0, trades_added=[], trades_removed=[])
    added, removed = trade_changes(a.trades, b.trades)
    return ImpactDoc(spec=spec.name, kind=kind, ran=True, note=_data_note(a.data, b.data),
                     data_before=a.data, data_after=b.data,
                     metrics=[delta(k, a.metrics.get(k), b.metrics.get(k))
                              for k in IMPACT_METRICS],
                     trades_before=len(a.trades), trades_after=len(b.trades),
                     trades_added=added, trades_removed=removed)


def _data_note(a: ImpactDataDoc, b: ImpactDataDoc) -> str:
    if a == b:
        return f"both versions on the same candles: {a.source}, {a.bars} bars"
    return "the versions ran on different candles (their markets, timeframes or components " \
        f"differ): {a.source} ({a.bars} bars) and {b.source} ({b.bars} bars)"


def delta(name: str, before: Any, after: Any) -> MetricDelta:
    a, b = _finite(before), _finite(after)
    return MetricDelta(name=name, before=a, after=b,
                       delta=None if a is None or b is None else b - a)


def _finite(value: Any) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def trade_changes(old: pd.DataFrame, new: pd.DataFrame) -> tuple[list[TradeDoc],
                                                                 list[TradeDoc]]:
    """Trades of ``new`` with no twin in ``old`` (added) and of ``old`` with none in
    ``new`` (removed), matched by component, entry time and side."""
    old_keys = set(old[KEY].itertuples(index=False, name=None))
    new_keys = set(new[KEY].itertuples(index=False, name=None))
    return _docs(new, old_keys), _docs(old, new_keys)


def _docs(frame: pd.DataFrame, other: set[tuple[Any, ...]]) -> list[TradeDoc]:
    rows = frame[[k not in other for k in frame[KEY].itertuples(index=False, name=None)]]
    return [TradeDoc(component=r.component or None, entry_time=r.entry_time.isoformat(),
                     exit_time=r.exit_time.isoformat(), side=r.side, pnl=float(r.pnl),
                     trade_return=float(r.trade_return), exit_reason=r.exit_reason)
            for r in rows.itertuples(index=False)]


# ----------------------------------------------------------------------- the runners

def run_strategy(entry: Entry, snap: Snapshot, data_root: Path) -> Run:
    """One version of a strategy on the work tree's candles for its market."""
    from ..backtest import run_backtest
    from ..data.frames import load_run

    artifact = entry.artifact
    assert isinstance(artifact, m.StrategyArtifact)
    cfg = artifact.config
    candles = load_run(cfg, data_root)
    result = run_backtest(artifact, candles, "", entry.sha256)
    trades = result.trades_frame()
    trades.insert(0, "component", "")
    frame = candles.frame
    data = ImpactDataDoc(source=candles.source, synthetic=candles.synthetic,
                         bars=len(frame), start=_iso(frame.index[0]),
                         end=_iso(frame.index[-1]))
    return Run(result.metrics, _ordered(trades), data)


def run_portfolio(entry: Entry, snap: Snapshot, data_root: Path) -> Run:
    """One version of a portfolio: its plan compiled in its side's folder, its components'
    candles from the work tree, its own risk spec."""
    from ..portfolio.plan import resolve_portfolio
    from ..portfolio.run import run_portfolio as run
    from ..portfolio.trades import trades_frame

    artifact = entry.artifact
    assert isinstance(artifact, m.PortfolioArtifact)
    risk_name = artifact.config.risk
    risk = snap.entries[risk_name].artifact.config if risk_name else None
    assert risk is None or isinstance(risk, m.RiskConfig)
    plan = resolve_portfolio(str(entry.path), artifact, snap.source.root, risk=risk,
                             data_root=data_root)
    result = run(plan)
    sources = sorted({c.candles.source for c in plan.components})
    data = ImpactDataDoc(source="; ".join(sources),
                         synthetic=any(c.candles.synthetic for c in plan.components),
                         bars=sum(c.candles.bars for c in plan.components),
                         start=_iso(plan.start), end=_iso(plan.end))
    trades = trades_frame(result).drop(columns=["market"])
    return Run(result.metrics, _ordered(trades), data)


def _ordered(trades: pd.DataFrame) -> pd.DataFrame:
    """The columns the comparison reads, in entry order (deterministic output)."""
    frame = trades[["component", "entry_time", "exit_time", "side", "pnl", "return",
                    "exit_reason"]].rename(columns={"return": "trade_return"})
    return frame.sort_values(KEY, kind="stable").reset_index(drop=True)


def _iso(ts: pd.Timestamp) -> str:
    return str(ts.isoformat())


Runner = Callable[[Entry, Snapshot, Path], Run]
RUNNERS: dict[str, Runner] = {"strategy": run_strategy, "portfolio": run_portfolio}
