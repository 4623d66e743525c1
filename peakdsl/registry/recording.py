"""Recording a product from a command: open the registry first, record after the outputs.

A command that records (``peak walkforward``, later ``peak portfolio`` …) opens the registry
*before* it runs, so a project that cannot record (read-only, a damaged registry, a ``.peak``
that is a file) fails in a second, not after the run; and it records only *after* its outputs
(report, CSV) were written, so a run whose outputs failed leaves no row. Both failures reach
the user as the U006/U007/U009 diagnostics of ``peakdsl.failures``, never as a traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .records import Child, RunOutcome, RunStart
from .store import Registry, RegistryError, registry_path

if TYPE_CHECKING:
    from ..backtest import BacktestResult


def open_registry(root: Path) -> Registry:
    """The project's run registry, or ``UsageError`` (U006/U007/U009) saying why not."""
    from ..failures import registry_failure
    from ..lang.project import UsageError

    try:
        return Registry(root)
    except (OSError, sqlite3.DatabaseError, RegistryError) as exc:
        raise UsageError(registry_failure(exc, registry_path(root))) from None


def record_run(registry: Registry, run: RunStart, outcome: RunOutcome,
               children: Sequence[Child] = ()) -> str:
    """``registry.record`` with an unwritable or damaged registry as ``UsageError``."""
    return _recording(registry, lambda: registry.record(run, outcome, children))


def record_backtest(registry: Registry, result: BacktestResult,
                    command: str | None = None) -> str:
    """``registry.record_backtest`` with an unwritable or damaged registry as ``UsageError``;
    ``command``: the line that reproduces it (``peakdsl.repro``)."""
    return _recording(registry, lambda: str(registry.record_backtest(result,
                                                                     command=command)))


def _recording(registry: Registry, write: Callable[[], str]) -> str:
    from ..failures import registry_failure
    from ..lang.project import UsageError

    try:
        return write()
    except (OSError, sqlite3.DatabaseError, RegistryError) as exc:
        raise UsageError(registry_failure(exc, registry.path)) from None


__all__ = ["open_registry", "record_backtest", "record_run"]
