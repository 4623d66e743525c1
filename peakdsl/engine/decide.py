"""decide: a strategy's rule signals at a bar + its position → order intents.

The strategy half of the step (backtesting.py's ``Strategy.next``): no prices, no money,
just what the rules ask for. The intents are an exit of the position held and an entry side;
how much, at what price and whether it is allowed are the risk, fill and book stages' business.

Rules of the language (docs/backtest.md): both entries on one bar cancel each other; the
exit comes before the entry; an opposite entry closes the position and opens the other side
(a flip); an entry on the side already held does nothing.
"""

from __future__ import annotations

from ._jit import inline

LONG = 1
SHORT = -1
FLAT = 0


@inline
def decide(held: int, entry_long: bool, exit_long: bool, entry_short: bool,
           exit_short: bool) -> tuple[bool, int]:
    """→ (exit the position held, side to enter: LONG, SHORT or FLAT for none)."""
    if entry_long and entry_short:  # ambiguous: both entries cancel
        entry_long = False
        entry_short = False
    exit_ = ((held > 0 and (exit_long or entry_short))
             or (held < 0 and (exit_short or entry_long)))
    side = FLAT
    if entry_long and held <= 0:
        side = LONG
    elif entry_short and held >= 0:
        side = SHORT
    return exit_, side
