"""The kinds of run the registry knows: one table, so a new product is a new row here.

Every product of peak (a backtest, a sweep and its trials, a walk-forward and its windows, and
later portfolios, robustness studies, promotions and live sessions) is one generic run record
(``RunStart`` + ``RunOutcome`` in ``peakdsl.registry.store``). What differs between products
is only what this table says about their kind:

- ``parent``: the kind of run a run of this kind belongs to (a ``sweep_trial`` to a ``sweep``,
  a ``walkforward_window`` to a ``walkforward``); such runs are *child runs*, hidden by
  ``peak runs list`` unless asked for;
- ``trial``: whether the run is a trial of its lineage for the deflated Sharpe ratio (a result
  someone may have selected on): backtests and sweep trials are, a sweep's own record or a
  walk-forward is not (its windows' winners are picked in sample, its result is out of sample);
- ``prefix``: the first letter of its ids (``s`` for sweeps, as before runs were generic).

The registry copies this table into its ``run_kinds`` table when it opens (new rows only), so
the database itself refuses runs of an unknown kind and counts trials by it.
"""

from __future__ import annotations

from dataclasses import dataclass

RUN_PREFIX, SWEEP_PREFIX = "r", "s"


@dataclass(frozen=True)
class RunKind:
    """One kind of run (see the module docstring for what each field decides)."""

    name: str
    description: str
    parent: str | None = None
    trial: bool = False
    prefix: str = RUN_PREFIX


KINDS: tuple[RunKind, ...] = (
    RunKind("backtest", "one strategy on one data slice (peak backtest)", trial=True),
    RunKind("sweep", "a parameter sweep; its trials are its child runs (peak sweep)",
            prefix=SWEEP_PREFIX),
    RunKind("sweep_trial", "one parameter combination of a sweep", parent="sweep", trial=True),
    RunKind("walkforward", "a walk-forward analysis: optimise in sample, trade out of sample; "
                           "its windows are its child runs (peak walkforward)"),
    RunKind("walkforward_window", "one train/test window of a walk-forward",
            parent="walkforward"),
    RunKind("portfolio", "a portfolio backtest: several strategies and markets on one account"),
    RunKind("robustness", "a robustness study of a result: Monte-Carlo and stress scenarios"),
    RunKind("promotion", "a promotion decision: a spec's results against promotion criteria"),
    RunKind("live_session", "a paper, testnet or live trading session"),
    RunKind("drill", "a rehearsed incident on a scratch deployment, its reaction checked "
                     "against the runbook (peak drill)"),
)
RUN_KINDS: dict[str, RunKind] = {kind.name: kind for kind in KINDS}
LEGACY_DESCRIPTION = "recorded before run kinds were listed"


def run_kind(name: str) -> RunKind:
    """The kind called ``name``; ``ValueError`` naming the known kinds for any other name."""
    try:
        return RUN_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown run kind {name!r}; known kinds: "
                         + ", ".join(RUN_KINDS)) from None


__all__ = ["KINDS", "LEGACY_DESCRIPTION", "RUN_KINDS", "RUN_PREFIX", "SWEEP_PREFIX", "RunKind",
           "run_kind"]
