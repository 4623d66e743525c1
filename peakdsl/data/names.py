"""Which market a data file says it holds: its name (``binance_ETHUSDT_1h.csv``) or a symbol
column (``symbol``, ``market``, ``pair``, ``ticker``).

A file of candles carries no market of its own, so ``--data eth.csv`` on a BTC strategy used to
run without a word. Prices alone cannot tell markets apart reliably, but names usually can:
exchange exports and the validation files name the pair. Only a clear statement counts — two
known currency codes side by side (``ETH_BTC``) or run together (``ETHUSDT``) — and only one
that differs from the spec's market is a warning (D020); a name that says nothing is silence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise

from ..lang.diagnostics import Diagnostic, diag
from .synth import USD_VALUE

# Currency codes a file name may spell out: the synthetic market's table plus common quotes
# and listings. Longer codes first, so ``BTCUSDT`` splits as BTC + USDT, not BTC + USD + T.
CURRENCIES: frozenset[str] = frozenset(USD_VALUE) | frozenset({
    "XBT", "BUSD", "TUSD", "FDUSD", "PAX", "USDP", "EURT", "TRY", "BRL", "KRW", "SHIB", "PEPE",
    "ARB", "OP", "APT", "NEAR", "FIL", "XMR", "AAVE", "SUI", "TON", "XTZ", "EOS", "NEO"})


def pairs_in(name: str, extra: Iterable[str] = ()) -> set[tuple[str, str]]:
    """(base, quote) pairs a name spells: ``ETH_BTC-5m`` → {("ETH", "BTC")};
    ``binance_ETHUSDT_1h`` → {("ETH", "USDT")}. ``extra`` adds codes to the known ones."""
    codes = CURRENCIES | {c.upper() for c in extra}
    tokens = [t for t in re.split(r"[^A-Za-z0-9]+", name.upper()) if t]
    found = {pair for t in tokens for pair in _split(t, codes)}
    found |= {(a, b) for a, b in pairwise(tokens)
              if a in codes and b in codes and a != b}
    return found


def _split(token: str, codes: frozenset[str]) -> list[tuple[str, str]]:
    """Every way ``token`` is two known codes run together (``ETHUSDT`` → ETH + USDT)."""
    return [(token[:i], token[i:]) for i in range(2, len(token) - 1)
            if token[:i] in codes and token[i:] in codes]


def other_market(market: str, name: str, symbols: Iterable[str] = ()) -> str | None:
    """The market ``name`` (a file name) or ``symbols`` (a symbol column's values) state,
    when it is not ``market``; None when they agree with it or state nothing clear."""
    base, _, rest = market.partition("/")
    quote = rest.partition(":")[0]
    own = (base, quote)
    stated = pairs_in(" ".join(symbols), own) or pairs_in(name, own)
    if not stated or own in stated:
        return None
    return "/".join(sorted(stated)[0])


def market_mismatch(stated: str, market: str, shown: str, by_column: bool) -> Diagnostic:
    """D020: the data says it is ``stated``; it is about to be used as ``market``."""
    where = "its symbol column" if by_column else "its name"
    return diag("D020", f"{shown} looks like {stated} data ({where} says so), but it is used "
                f"as {market}", shown,
                help=f"check that the file holds {market} candles; this goes ahead on it")
