"""Market data: import, cache, fetch, synthesise, check and select candles.

Kept light on import (no pandas here): ``peak check`` must stay fast and the ``peak data``
commands (``peakdsl.cli.data``) import only what they use. The modules that need pandas,
pyarrow or ccxt import them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..lang.diagnostics import Diagnostic


class DataError(Exception):
    """Loading candles failed; ``diagnostics`` says why (errors, with codes)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("; ".join(f"{d.code} {d.message}" for d in self.diagnostics)
                         or "data error")


__all__ = ["DataError"]
