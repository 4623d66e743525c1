"""``peak runs rerun ID``: run a recorded run again from its stored command line and say
whether it gives the recorded metrics, exactly.

Every run recorded since migration 4 stores the ``peak …`` line that reproduces it
(``peakdsl.repro``). A rerun reads that line back (``parse_line``, paths relative to the
project folder), runs it without recording, and compares value by value, as the registry
encodes them (so NaN equals NaN and nothing is rounded):

- a backtest or a sweep trial: every recorded metric;
- a sweep: its combinations, its PBO and its best combination's params and metrics (its
  deflated Sharpe ratio and trial count depend on how many trials the registry held, so they
  are not compared); the sweep is computed again in a scratch folder, not resumed from its
  saved blocks;
- a walk-forward: its out-of-sample and promotion metrics and every window's metrics;
- a walk-forward window: its metrics, from the walk-forward of that window alone that its
  line runs (``WalkForwardResult.window_recipe``).

It also says whether the spec's artifact and the candles are what they were, the likely
reason when the metrics differ. A run recorded before command lines were stored has none
(``NoCommandError``); the CLI says so with U015.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .encoding import plain

if TYPE_CHECKING:
    from ..repro import Recipe
    from .records import RunRecord
    from .store import Registry

Progress = Callable[[int, int], None]


class NoCommandError(LookupError):
    """The run has no command line this peak can run again (``reason`` says why)."""

    def __init__(self, record: RunRecord, reason: str) -> None:
        super().__init__(reason)
        self.record = record
        self.reason = reason


@dataclass(frozen=True)
class MetricCheck:
    """One compared value: as recorded and as computed now (registry encoding)."""

    name: str
    recorded: Any
    now: Any

    @property
    def same(self) -> bool:
        return bool(plain(self.recorded) == plain(self.now))


@dataclass(frozen=True)
class Rerun:
    """A run computed again from its command line, beside its record."""

    record: RunRecord
    command: str
    artifact_now: str
    data_now: str
    checks: tuple[MetricCheck, ...]

    @property
    def same_artifact(self) -> bool:
        return self.artifact_now == self.record.artifact_sha256

    @property
    def same_data(self) -> bool:
        return self.data_now == self.record.data_fingerprint

    @property
    def differences(self) -> tuple[MetricCheck, ...]:
        return tuple(c for c in self.checks if not c.same)

    @property
    def matches(self) -> bool:
        return bool(self.checks) and not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.record.id, "kind": self.record.kind, "command": self.command,
                "matches": self.matches,
                "same": {"artifact": self.same_artifact, "data": self.same_data},
                "artifact": {"recorded": self.record.artifact_sha256, "now": self.artifact_now},
                "data": {"recorded": self.record.data_fingerprint, "now": self.data_now},
                "compared": len(self.checks),
                "metrics": [{"name": c.name, "recorded": plain(c.recorded),
                             "now": plain(c.now), "same": c.same} for c in self.checks]}


@dataclass(frozen=True)
class _Now:
    """What a rerun computed: the values to compare (by check name) and its input hashes."""

    expected: dict[str, Any]
    now: dict[str, Any]
    artifact: str
    data: str


def rerun(registry: Registry, run_id: str, progress: Progress | None = None) -> Rerun:
    """Run ``run_id`` (an id or a unique prefix) again from its stored command line and
    compare. Raises ``RunNotFoundError``, ``NoCommandError``, and whatever the run itself
    raises (``api.SpecError`` when the spec or the data no longer check, ``UsageError``)."""
    from ..repro import LineError, parse_line

    record = registry.get_run(run_id)
    runner = RERUNS.get(record.kind)
    if record.command is None or runner is None:
        raise NoCommandError(record, _why_none(record))
    try:
        recipe = parse_line(record.command).absolute(registry.root)
    except LineError as exc:
        raise NoCommandError(record, f"its command line cannot be read back: {exc}") from None
    found = runner(registry, record, recipe, progress)
    checks = tuple(MetricCheck(name, value, found.now.get(name, _MISSING))
                   for name, value in found.expected.items())
    return Rerun(record, record.command, found.artifact, found.data, checks)


_MISSING = "missing"  # a recorded value the rerun did not produce (no longer computed)


def _why_none(record: RunRecord) -> str:
    if record.kind not in RERUNS:
        return (f"run {record.id} is a {record.kind}: peak stores command lines for "
                "backtests, sweeps and walk-forwards (and their trials and windows)")
    return (f"run {record.id} has no command line, so there is nothing to run again: it was "
            "recorded before peak stored the command line of each run, or from inputs that "
            "existed only in memory (a spec given as text, candles given as a DataFrame)")


# ------------------------------------------------------------------------ by kind

def _backtest(registry: Registry, record: RunRecord, recipe: Recipe,
              progress: Progress | None) -> _Now:
    from .. import api

    run = api.backtest(recipe.spec, root=registry.root, **_inputs(recipe),
                       overrides=recipe.sets, risk=recipe.risk, record=False)
    result = run.result
    return _Now(dict(record.metrics), dict(result.metrics), result.artifact_sha256,
                result.candles.fingerprint)


def _sweep(registry: Registry, record: RunRecord, recipe: Recipe,
           progress: Progress | None) -> _Now:
    from ..research.sweep import run_sweep
    from ..research.types import RunConfig

    inputs = _inputs(recipe)
    capital, fee_bps = inputs.pop("capital"), inputs.pop("fee_bps")
    with tempfile.TemporaryDirectory(prefix="peak-rerun-") as scratch:
        result = run_sweep(recipe.spec, root=registry.root, sets=recipe.sets,
                           objective=recipe.option("--objective") or "sharpe",
                           run=RunConfig(capital=capital, fee_bps=fee_bps), record=False,
                           store_root=Path(scratch), progress=progress, **inputs,
                           **_search(recipe))
    summary = record.summary or {}
    best_now = plain(result.row(result.best_row)) if result.best_row is not None else None
    expected = {"combinations": record.metrics.get("combinations"),
                "pbo": record.metrics.get("pbo"), **_best(summary.get("best"))}
    now = {"combinations": len(result.space), "pbo": result.pbo_value, **_best(best_now)}
    return _Now(expected, now, result.artifact_sha256, result.data_fingerprint)


def _best(best: Any) -> dict[str, Any]:
    """A sweep's best row as ``best param fast``, ``best sharpe``, … checks."""
    if not isinstance(best, Mapping):
        return {"best": None}
    params, metrics = best.get("params") or {}, best.get("metrics") or {}
    return {**{f"best param {k}": v for k, v in sorted(params.items())},
            **{f"best {k}": v for k, v in sorted(metrics.items())}}


def _walkforward(registry: Registry, record: RunRecord, recipe: Recipe,
                 progress: Progress | None) -> _Now:
    result = _walk(registry, recipe, progress)
    expected = dict(record.metrics)
    now = {**result.oos_metrics, **result.promotion_metrics}
    for child in registry.child_runs(record.id):
        number = int(child.settings.get("window", 0))
        window = result.windows[number - 1].oos_metrics if 0 < number <= len(
            result.windows) else {}
        expected.update({f"window {number} {k}": v for k, v in child.metrics.items()})
        now.update({f"window {number} {k}": v for k, v in window.items()})
    return _Now(expected, now, result.artifact_sha256, result.candles.fingerprint)


def _window(registry: Registry, record: RunRecord, recipe: Recipe,
            progress: Progress | None) -> _Now:
    """A window from its line: the walk-forward of that window alone (or, recorded before
    peak stored one line per window, its whole walk-forward); the window is the one whose
    test bars start where the record's do. Its data is the bars it computed from
    (``window_bars``), or the whole walk-forward's for a record of that older kind."""
    result = _walk(registry, recipe, progress)
    found = next((w for w in result.windows
                  if w.window.test_first.isoformat() == record.data_start), None)
    if found is None:
        return _Now(dict(record.metrics), {}, result.artifact_sha256, result.candles.fingerprint)
    data = result.window_bars(found).fingerprint
    if record.data_fingerprint == result.candles.fingerprint:  # the older kind of record
        data = result.candles.fingerprint
    return _Now(dict(record.metrics), dict(found.oos_metrics), result.artifact_sha256, data)


def _walk(registry: Registry, recipe: Recipe, progress: Progress | None) -> Any:
    from ..research.walkforward import walkforward

    return walkforward(recipe.spec, train=recipe.option("--train") or "",
                       test=recipe.option("--test") or "", step=recipe.option("--step"),
                       anchored=recipe.flag("--anchored"),
                       objective=recipe.option("--objective") or "sharpe",
                       sets=recipe.sets, root=registry.root, record=False, progress=progress,
                       **_inputs(recipe), **_search(recipe))


def _inputs(recipe: Recipe) -> dict[str, Any]:
    """The data, period and costs every kind takes, as keyword arguments."""
    return {"data": Path(recipe.data) if recipe.data else None, "start": recipe.start,
            "end": recipe.end, "fee_bps": recipe.fee_bps, "capital": recipe.capital}


def _search(recipe: Recipe) -> dict[str, Any]:
    """``--random N --seed S`` as ``mode``, ``n`` and ``seed``."""
    n, seed = recipe.option("--random"), recipe.option("--seed")
    return {"mode": "random" if n is not None else "grid",
            "n": int(n) if n is not None else None,
            "seed": int(seed) if seed is not None else None}


RERUNS: dict[str, Callable[[Registry, RunRecord, Recipe, Progress | None], _Now]] = {
    "backtest": _backtest, "sweep_trial": _backtest, "sweep": _sweep,
    "walkforward": _walkforward, "walkforward_window": _window,
}

__all__ = ["RERUNS", "MetricCheck", "NoCommandError", "Rerun", "rerun"]
