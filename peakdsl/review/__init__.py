"""Review: `peak diff`, a semantic, risk-classified comparison of two versions of the specs.

The stages, one module each: ``sources`` (the two sides: files, folders or git revisions read
without touching the work tree), ``snapshot`` (a side checked and compiled, with semantic
fingerprints), ``diff`` (specs matched by name, every config field compared and classified by
``levels``' table), ``impact`` (both versions backtested on the same candles), ``render``
(text, Markdown, JSON of the ``model`` types). ``run_diff`` strings them together; the CLI and
``peakdsl.api.diff`` call it.
"""

from __future__ import annotations

from pathlib import Path

from ..lang.project import find_root
from .model import DiffResult
from .snapshot import Snapshot, SnapshotError, load_snapshot
from .sources import Source, open_sources


def run_diff(a: str, b: str | None = None, *, root: Path | None = None,
             impact: bool = False) -> DiffResult:
    """Compare ``a`` with ``b`` (or revision ``a`` with the work tree, or the range
    ``a = v1..v2``). Raises ``UsageError`` for arguments that name nothing usable and
    ``SnapshotError`` with every side's diagnostics when a spec does not check."""
    from .diff import compare, result

    project = find_root(root or Path.cwd())
    with open_sources(a, b, project) as (old, new):
        before, after = load_both(old, new)
        specs, changes = compare(before, after)
        effects = None
        if impact:
            from .impact import impact as run_impact

            effects = run_impact(specs, before, after, project)
        return result(before, after, specs, changes, effects)


def load_both(old: Source, new: Source) -> tuple[Snapshot, Snapshot]:
    """Both sides checked; the errors of both reported together."""
    loaded: list[Snapshot] = []
    failures: list[SnapshotError] = []
    for source in (old, new):
        try:
            loaded.append(load_snapshot(source))
        except SnapshotError as exc:
            failures.append(exc)
    if failures:
        raise SnapshotError(tuple(d for f in failures for d in f.diagnostics),
                            {k: v for f in failures for k, v in f.texts.items()})
    return loaded[0], loaded[1]


__all__ = ["DiffResult", "SnapshotError", "run_diff"]
