"""Boundary types of the research stage, shared by the space builder, the sweep engine, the
orchestrator (local or Dask) and walk-forward.

The unit of work is a *block* of parameter combinations: ``evaluate_block`` (fast, in
``engine.py``) and ``reference_block`` (here: one ``run_backtest`` per combination, slow and
obvious) take the same inputs and must return the same metrics to 1e-12.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.stats import METRIC_KEYS

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class ParamSpace:
    """Combinations to run: one row per combination, one column per param (``names``).

    Rows are in canonical order (grid: lexicographic by ``names``; random: draw order), after
    the spec's ``require`` constraints removed the combinations that break them.
    """

    names: tuple[str, ...]
    combos: Array  # float64, shape (K, len(names))
    mode: str  # "grid" | "random"
    seed: int | None = None
    candidates: int = 0  # combinations before `require` filtering
    axes: Mapping[str, Array] = field(default_factory=dict)  # the values of each param axis

    def __len__(self) -> int:
        return int(self.combos.shape[0])

    def params(self, row: int) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.combos[row], strict=True)}


@dataclass(frozen=True)
class RunConfig:
    """What every combination shares: capital and the optional fee override."""

    capital: float = 10_000.0
    fee_bps: float | None = None


def empty_metrics(k: int) -> dict[str, Array]:
    """One float64 array per metric, NaN where a metric is undefined (None)."""
    return {key: np.full(k, np.nan) for key in METRIC_KEYS}


def reference_block(artifact: Any, candles: Any, names: tuple[str, ...], combos: Array,
                    run: RunConfig = RunConfig()) -> dict[str, Array]:
    """Metrics of each combination via ``run_backtest`` (the definition the fast engine meets)."""
    from ..backtest import run_backtest

    out = empty_metrics(len(combos))
    for row, values in enumerate(combos):
        params = {n: float(v) for n, v in zip(names, values, strict=True)}
        result = run_backtest(artifact, candles, "", "", params, capital=run.capital,
                              fee_bps=run.fee_bps)
        for key in METRIC_KEYS:
            value = result.metrics.get(key)
            out[key][row] = np.nan if value is None else float(value)
    return out
