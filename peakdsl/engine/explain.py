"""Why a run made no trades: the notes a backtest prints instead of a silent "0 trades".

A backtest with no trades is almost always a spec or data problem — a warm-up as long as the
data, an entry rule that never fired on these bars, or orders too small to place — and the
metrics alone cannot tell which. Each note names the cause it found.
"""

from __future__ import annotations

import numpy as np

from .evaluate import Signals
from .results import SimResult

ENTRY_SLOTS = ("entry_long", "entry_short")


def undefined_level_note(count: int) -> list[str]:
    """A note for entries skipped because a stop or size expression had no usable value."""
    if not count:
        return []
    return [f"{count} entr{'y' if count == 1 else 'ies'} not taken: a stop, target or size "
            "written as an expression was not a positive number at the signal bar "
            "(missing data, or a negative distance)"]


HELD_BACK_WHAT = {
    "min_hold": "exit signals inside `min_hold`",
    "cooldown_after_stop": "entry signals inside `cooldown after stop`",
    "max_consecutive_losses": "entry signals after `max_consecutive_losses` losing trades in a row",
}


def held_back_note(counts: dict[str, int]) -> list[str]:
    """One note naming what the strategy's trade rules held back (empty when nothing)."""
    if not counts:
        return []
    return ["trade rules held back " + ", ".join(f"{n} {HELD_BACK_WHAT[rule]}"
                                                  for rule, n in counts.items())]


def no_trade_notes(signals: Signals, sim: SimResult, n_bars: int) -> list[str]:
    """Notes for a run that never held a position; empty when it traded."""
    if n_bars == 0 or sim.exposed_bars:
        return []
    if signals.warmup >= n_bars:
        return [f"no trades: the warm-up ({signals.warmup} bars) is as long as the data "
                f"({n_bars} bars); use more data or shorter windows"]
    entries = {slot: int(np.count_nonzero(signals.rules[slot])) for slot in ENTRY_SLOTS
               if slot in signals.rules and slot not in signals.position_rules}
    if any(slot in signals.position_rules for slot in ENTRY_SLOTS):
        return [f"no trades: no entry rule held at a fill point in these {n_bars} bars "
                "(an entry rule that reads the position is decided bar by bar)"] if \
            not entries or not any(entries.values()) else []
    silent = [slot.replace("_", " ") for slot, count in entries.items() if count == 0]
    notes = [f"no trades: `{rule}` never fired on these {n_bars} bars (after the "
             f"{signals.warmup}-bar warm-up)" for rule in silent]
    fired = {slot: count for slot, count in entries.items() if count}
    if fired and not notes:
        total = sum(fired.values())
        last_only = all(bool(signals.rules[slot][-1]) and count == 1
                        for slot, count in fired.items())
        notes.append("no trades: the entry rules fired only on the last bar, which has no "
                     "next bar to fill on" if last_only else
                     f"no trades: the entry rules fired {total} times but no order was "
                     "placed; check `size`, `qty_step` and `min_notional` against the "
                     "capital")
    return notes
