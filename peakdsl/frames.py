"""Results as pandas DataFrames, for notebooks: the tables ``peakdsl.api``'s results offer.

The CLI prints tables and writes JSON; a notebook wants frames to plot, filter and join. Each
function here is a view of a finished result — nothing is computed again — so a frame holds
the numbers the CLI prints and the registry records, and the same run gives the same frame.

Conventions, the same in every table (docs/notebook.md):

* times are a UTC ``DatetimeIndex`` (``time``), or UTC timestamp columns;
* metrics are float64, NaN where a metric is undefined (no trades, zero variance) — counts
  such as ``trades`` too, so one dtype holds every metric and a table sorts and plots as is;
* param values are the engine's (``3%`` is ``0.03``, ``10bps`` is ``0.001``).

``SweepRun`` and ``WalkForwardRun`` are the research results with these views added: they are
still a ``SweepResult`` and a ``WalkForwardResult``, so code written for those keeps working.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from .backtest import BacktestResult, trade_table
from .engine.stats import METRIC_KEYS
from .research.sweep import SweepResult
from .research.walkforward import WalkForwardResult, WindowResult

R = TypeVar("R")


def metrics_series(metrics: Mapping[str, float | int | None], name: str) -> pd.Series:
    """Metrics as a float64 Series indexed by metric name (NaN: undefined), named ``name``.

    A Series rather than a one-row frame: it reads top to bottom in a notebook, and runs
    line up side by side with ``pd.DataFrame({"a": one.metrics, "b": other.metrics})``."""
    values = [math.nan if v is None else float(v) for v in metrics.values()]
    index = pd.Index(list(metrics), name="metric")
    return pd.Series(values, index=index, dtype="float64", name=name)


def equity_frame(times: pd.DatetimeIndex, equity: npt.ArrayLike,
                 position: npt.ArrayLike) -> pd.DataFrame:
    """Per bar: ``equity`` (marked at the close), ``drawdown`` from its running peak (≤ 0)
    and ``position`` (the quantity held, negative when short)."""
    values = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(values) if len(values) else values
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = values / peak - 1.0
    index = pd.DatetimeIndex(times, name="time")
    return pd.DataFrame({"equity": values, "drawdown": drawdown,
                         "position": np.asarray(position, dtype=np.float64)}, index=index)


def backtest_equity(result: BacktestResult) -> pd.DataFrame:
    """A backtest's equity frame, one row per bar of its data."""
    return equity_frame(result.times, result.sim.equity, result.sim.position)


def sweep_table(result: SweepResult) -> pd.DataFrame:
    """Every combination, best first: index ``rank`` (1 = best by the objective, undefined
    objectives last), one column per swept param, then every metric once. The objective is
    ``table.attrs["objective"]``."""
    order = np.asarray(result.ranking, dtype=np.int64)
    combos = np.asarray(result.space.combos, dtype=np.float64)
    columns: dict[str, Any] = {name: combos[order, i]
                               for i, name in enumerate(result.space.names)}
    for key in METRIC_KEYS:
        columns[key] = np.asarray(result.metrics[key], dtype=np.float64)[order]
    index = pd.RangeIndex(1, len(order) + 1, name="rank")
    table = pd.DataFrame(columns, index=index)
    table.attrs["objective"] = result.objective
    return table


def walkforward_table(result: WalkForwardResult) -> pd.DataFrame:
    """One row per window (index ``window``, from 1): its train and test spans (first and last
    bar), test bars, whether the last test window was cut short, the params chosen in sample,
    the in-sample objective (``is_`` + its name) and every out-of-sample metric (``oos_`` +
    metric)."""
    rows = [_window_row(w, result.objective) for w in result.windows]
    index = pd.Index([w.window.number for w in result.windows], name="window")
    table = pd.DataFrame(rows, index=index)
    table.attrs["objective"] = result.objective
    return table


def _window_row(w: WindowResult, objective: str) -> dict[str, Any]:
    win = w.window
    row: dict[str, Any] = {
        "train_first": win.train_first, "train_last": win.train_last,
        "test_first": win.test_first, "test_last": win.test_last,
        "test_bars": win.test_bars, "partial": win.partial, **w.chosen,
        f"is_{objective}": math.nan if w.objective is None else float(w.objective)}
    row.update({f"oos_{k}": math.nan if v is None else float(v)
                for k, v in w.oos_metrics.items()})
    return row


def _upgrade(cls: type[R], result: Any) -> R:
    """``result`` as its subclass ``cls`` (same fields, nothing copied deeply)."""
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.init}
    return cls(**fields)


@dataclass(frozen=True)
class SweepRun(SweepResult):
    """A ``SweepResult`` with its ranked table as a DataFrame (``api.sweep``)."""

    @classmethod
    def of(cls, result: SweepResult) -> SweepRun:
        return _upgrade(cls, result)

    @property
    def table(self) -> pd.DataFrame:
        """Every combination ranked, best first (``sweep_table``)."""
        return sweep_table(self)


@dataclass(frozen=True)
class WalkForwardRun(WalkForwardResult):
    """A ``WalkForwardResult`` with its windows, stitched out-of-sample equity, trades and
    metrics as pandas objects (``api.walkforward``)."""

    @classmethod
    def of(cls, result: WalkForwardResult) -> WalkForwardRun:
        return _upgrade(cls, result)

    @property
    def table(self) -> pd.DataFrame:
        """One row per window (``walkforward_table``)."""
        return walkforward_table(self)

    @property
    def equity(self) -> pd.DataFrame:
        """The stitched out-of-sample equity, one row per test bar."""
        return equity_frame(self.oos_times, self.oos_sim.equity, self.oos_sim.position)

    @property
    def trades(self) -> pd.DataFrame:
        """The out-of-sample trades of every window, in time order."""
        sim = self.oos_sim
        return trade_table(sim.trades, sim.open_trades, self.candles.frame.index)

    @property
    def metrics(self) -> pd.Series:
        """The stitched out-of-sample metrics (``metrics_series``)."""
        return metrics_series(self.oos_metrics, self.spec)
