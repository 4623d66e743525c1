"""A walk-forward as registry runs: one ``walkforward`` run, its windows as child runs.

The records mirror ``peak walkforward --json`` (``walkforward_doc``), so the registry and the
JSON document never disagree:

- the ``walkforward`` run: inputs ``artifact`` and ``data``; settings = the JSON ``config``
  (train, test, step, anchored, objective, mode, seed, combinations, capital, fees, swept
  params); metrics = the stitched out-of-sample metrics plus the promotion metrics
  (``oos_sharpe``, ``oos_total_return``, ``oos_max_drawdown``, ``wf_efficiency``); summary =
  annualised returns, parameter stability and notes; artifacts = the files the command wrote;
- one ``walkforward_window`` run per window: params = the winner's params; settings = the
  window's train and test ranges; data = its test bars; metrics = its out-of-sample metrics;
  summary = what was chosen in sample and its in-sample metrics.

Each record carries the ``peak walkforward`` line that reproduces it (``command``): a window's
is the walk-forward of that window alone (``WalkForwardResult.window_recipe``; not a backtest
of its test period, which would trade on the warm-up bars), and its ``data`` input the bars it
computed from (``window_bars``), which that line loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..registry.records import Child, DataRange, PathLike, RunOutcome, RunStart

if TYPE_CHECKING:
    from .walkforward import WalkForwardResult, WindowResult


def _trades(metrics: Mapping[str, Any]) -> int | None:
    trades = metrics.get("trades")
    return trades if isinstance(trades, int) and not isinstance(trades, bool) else None


def walkforward_records(result: WalkForwardResult, artifacts: Mapping[str, PathLike] | None = None,
                        command: str | None = None,
                        window_commands: Sequence[str | None] | None = None,
                        ) -> tuple[RunStart, RunOutcome, list[Child]]:
    """The walk-forward run, its outcome and its windows, ready for ``Registry.record``;
    ``command``: the line reproducing it, ``window_commands`` each window's (paths relative
    to the project folder; default: ``command`` for every window)."""
    from .walkforward import walkforward_doc

    doc = walkforward_doc(result)
    inputs = {"artifact": result.artifact_sha256, "data": result.candles.fingerprint}
    data = doc["data"]
    run = RunStart("walkforward", result.spec, inputs, result.engine_version,
                   settings=doc["config"], seed=result.seed,
                   data=DataRange(data["source"], result.market, result.timeframe,
                                  data["start"] or None, data["end"] or None, data["bars"]),
                   command=command)
    summary = {"windows": len(result.windows), "oos_bars": doc["out_of_sample"]["bars"],
               "in_sample_annual_return": doc["in_sample_annual_return"],
               "oos_annual_return": doc["out_of_sample"]["annual_return"],
               "stability": doc["stability"], "notes": doc["notes"]}
    outcome = RunOutcome({**result.oos_metrics, **result.promotion_metrics}, result.timing,
                         _trades(result.oos_metrics), result.warnings, artifacts or {}, summary)
    lines = list(window_commands) if window_commands is not None else \
        [command] * len(result.windows)
    children = [_window(result, w, d, inputs, line)
                for w, d, line in zip(result.windows, doc["windows"], lines, strict=True)]
    return run, outcome, children


def _window(result: WalkForwardResult, w: WindowResult, doc: Mapping[str, Any],
            inputs: Mapping[str, str], command: str | None) -> Child:
    """One window as a child run (``doc``: its entry of the JSON document)."""
    test = doc["test"]
    inputs = {**inputs, "data": result.window_bars(w).fingerprint}
    run = RunStart("walkforward_window", result.spec, inputs, result.engine_version,
                   params=w.params, settings={"window": doc["number"], "train": doc["train"],
                                              "test": test, "warmup_bars": doc["warmup_bars"]},
                   data=DataRange(result.candles.source, result.market, result.timeframe,
                                  test["first"], test["last"], test["bars"]),
                   command=command)
    summary = {"chosen": doc["chosen"], "row": w.row, "objective": result.objective,
               "objective_value": doc["objective_value"], "in_sample": doc["in_sample"]}
    return run, RunOutcome(w.oos_metrics, trades=_trades(w.oos_metrics), summary=summary)


__all__ = ["walkforward_records"]
