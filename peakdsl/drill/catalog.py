"""The drills peak knows: name, what incident it stages, which alert codes its runbook promises.

Standard library only, so ``peak drill --help`` and ``peak drill list`` cost nothing: the
behaviour of each scenario (how its deployment is built, what is injected, what is checked)
is ``peakdsl.drill.scenarios``, keyed by the same names (a test holds the two together, and
holds ``codes`` to the "Rehearsed by" lines of docs/runbooks.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    title: str  # the incident, in one line
    codes: tuple[str, ...]  # the alert codes the runbook says this incident raises
    mode: str  # the deployment's mode: paper, or testnet on the loopback exchange


CATALOG: tuple[Entry, ...] = (
    Entry("stale_feed", "the exchange stops publishing candles for three bars (a data gap)",
          ("A007",), "paper"),
    Entry("risk_violation", "the strategy asks for entries larger than the risk limits allow",
          ("A001",), "paper"),
    Entry("pnl_divergence", "the exchange fills 2% worse than the model: the session drifts "
          "from its backtest replay", ("A010",), "testnet"),
    Entry("sink_down", "the alert webhook refuses, hangs and rate-limits, then comes back",
          ("A011", "A004"), "paper"),
    Entry("exchange_outage", "every exchange request fails for three bars",
          ("A008", "A007"), "testnet"),
    Entry("kill_switch", "an operator kills the deployment mid-run with an order open",
          ("A004",), "testnet"),
)
ENTRIES: dict[str, Entry] = {e.name: e for e in CATALOG}
NAMES: tuple[str, ...] = tuple(ENTRIES)
ALL = "all"

__all__ = ["ALL", "CATALOG", "ENTRIES", "NAMES", "Entry"]
