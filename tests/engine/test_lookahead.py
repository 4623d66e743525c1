"""No look-ahead, checked dynamically: the past does not change when the future is cut off.

For a random library strategy, random market, random settings and a random cut point ``t``,
evaluate + simulate on ``frame[:t+1]`` and on the whole frame, then compare:

* signals and named series: equal on bars ``0..t``;
* trades: the truncated run's trades other than its final ``end_of_data`` close are exactly
  the full run's trades with ``exit_bar <= t``. (Exits on bar ``t`` itself are decided by
  data up to ``t``: a stop on bar ``t``, a ``next_open`` exit at ``open[t]`` for bar
  ``t-1``'s signal, or a ``fill close`` exit at ``close[t]``; both runs execute them.)
* equity and position: equal on bars ``0..t-1``. Bar ``t`` differs legitimately: the
  truncated run closes any open position at ``close[t]`` (``end_of_data``, with slippage
  and fees) and a ``fill close`` run opens no new position on its last bar, while the full
  run keeps going.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_evaluate import market, random_params, timed  # tests/engine is on sys.path
from test_simulate import random_settings

from peakdsl import api
from peakdsl.backtest import sim_settings
from peakdsl.compile import models as m
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.results import EXIT_REASONS, TRADE_COLUMNS, SimResult
from peakdsl.engine.simulate import simulate

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = sorted((ROOT / "specs" / "strategies").glob("*.peak"))
END = EXIT_REASONS.index("end_of_data")


class Library(dict):  # type: ignore[type-arg]
    def __repr__(self) -> str:
        return f"<library of {len(self)} strategies>"


@pytest.fixture(scope="module")
def library() -> dict[str, m.StrategyConfig]:
    out = Library()
    for path in STRATEGIES:
        artifact = api.compile_spec(str(path), ROOT)
        assert isinstance(artifact, m.StrategyArtifact)
        out[path.stem] = artifact.config
    return out


def trade_rows(sim: SimResult, keep: np.ndarray) -> np.ndarray:
    rows = np.column_stack([sim.trades[c][keep] for c in TRADE_COLUMNS])
    return rows.reshape(-1, len(TRADE_COLUMNS))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([p.stem for p in STRATEGIES]), seed=st.integers(0, 2**32 - 1),
       n=st.integers(2, 300), cut=st.floats(0, 1), data=st.data())
def test_truncated_run_agrees_with_full_run(library: dict[str, m.StrategyConfig], name: str,
                                            seed: int, n: int, cut: float,
                                            data: st.DataObject) -> None:
    cfg = library[name]
    frame = timed(market(seed, n), cfg)
    t = min(n - 1, int(cut * n))
    params = random_params(cfg, np.random.default_rng(seed))
    full_sig = evaluate(cfg, frame, params)
    part_sig = evaluate(cfg, frame.iloc[: t + 1], params)
    assert part_sig.warmup == min(full_sig.warmup, t + 1)  # clamped to the data length
    for key, values in part_sig.rules.items():
        np.testing.assert_array_equal(values, full_sig.rules[key][: t + 1], err_msg=key)
    for key, values in part_sig.series.items():
        np.testing.assert_array_equal(values, full_sig.series[key][: t + 1], err_msg=key)

    s = data.draw(random_settings(sim_settings(cfg, params, full_sig.warmup)))
    full = simulate(*(frame[c].to_numpy() for c in ("open", "high", "low", "close")),
                    full_sig.rules, s)
    head = frame.iloc[: t + 1]
    part = simulate(*(head[c].to_numpy() for c in ("open", "high", "low", "close")),
                    part_sig.rules, s.replace(warmup=part_sig.warmup))

    part_rows = trade_rows(part, part.trades["exit_reason"] != END)
    full_rows = trade_rows(full, (full.trades["exit_bar"] <= t)
                           & (full.trades["exit_reason"] != END))  # END only when t = n-1
    np.testing.assert_array_equal(part_rows, full_rows)
    # an end_of_data close of the truncated run can only be at its last bar
    assert (part.trades["exit_bar"][part.trades["exit_reason"] == END] == t).all()
    np.testing.assert_array_equal(part.equity[:t], full.equity[:t])
    np.testing.assert_array_equal(part.position[:t], full.position[:t])


def test_cut_at_every_bar_on_one_market(library: dict[str, m.StrategyConfig]) -> None:
    """Exhaustive cut points for one busy configuration (short and long, all exits on)."""
    cfg = library["vol_breakout"]
    frame = market(7, 160)
    params = {"ma_length": 10.0, "atr_length": 7.0, "k": 0.5}
    full_sig = evaluate(cfg, frame, params)
    for fill in ("next_open", "close"):
        s = sim_settings(cfg, params, full_sig.warmup).replace(
            fill=fill, stop_loss=0.01, take_profit=0.02, trailing_stop=0.008)
        cols = [frame[c].to_numpy() for c in ("open", "high", "low", "close")]
        full = simulate(*cols, full_sig.rules, s)
        assert full.trade_count > 5
        for t in range(len(frame)):
            sig = evaluate(cfg, frame.iloc[: t + 1], params)
            part = simulate(*(c[: t + 1] for c in cols), sig.rules,
                            s.replace(warmup=sig.warmup))
            np.testing.assert_array_equal(
                trade_rows(part, part.trades["exit_reason"] != END),
                trade_rows(full, (full.trades["exit_bar"] <= t)
                           & (full.trades["exit_reason"] != END)))
            np.testing.assert_array_equal(part.equity[:t], full.equity[:t])
