"""The run registry, opened read-only for the dashboard.

``Registry(root)`` is the writer's door: it creates ``.peak/``, switches the file to WAL and
migrates an older schema — each a write. A dashboard must never write, so
``ReadOnlyRegistry`` opens the same file with SQLite's ``mode=ro`` (and ``query_only``),
never creates it, refuses a schema other than this peak's (it cannot migrate it) and then
answers with the registry's own queries (``list_runs``, ``get_run``, ``child_runs``,
``kinds``): the records are exactly those `peak runs` shows.

SQLite's readers of a WAL database keep its ``-shm`` index (and an empty ``-wal``) beside
it; they may create those two files, never change the database itself.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from ..registry.schema import SCHEMA_VERSION
from ..registry.store import BUSY_TIMEOUT_S, Registry, RegistryError


class ReadOnlyRegistry(Registry):
    """The project's registry for reading only: nothing is created, migrated or written.

    Raises ``FileNotFoundError`` when no run was ever recorded, ``RegistryError`` for a
    schema this peak does not read as it is, ``sqlite3.DatabaseError`` for a damaged file.
    """

    def __init__(self, root: Path, *, timeout: float = BUSY_TIMEOUT_S) -> None:
        # Not Registry.__init__: that one creates, switches to WAL and migrates.
        self._bind(root)
        if not self.path.is_file():
            raise FileNotFoundError(f"no run registry at {self.path}")
        target = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            target, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA query_only = ON")
            self._check_version()
        except BaseException:
            self.close()
            raise

    def _check_version(self) -> None:
        version = self._version_now(self._connection())
        if version != SCHEMA_VERSION:
            age = "an older" if version < SCHEMA_VERSION else "a newer"
            raise RegistryError(
                f"the run registry has schema version {version}, written by {age} peak "
                f"than this one ({SCHEMA_VERSION}); the dashboard never migrates it — "
                "`peak runs list` (this peak) upgrades an older one")

    def _migrate(self) -> None:
        raise RegistryError("a read-only registry is never migrated")

    def counts_by_kind(self) -> dict[str, int]:
        """How many runs of each kind are recorded (child runs included)."""
        rows = self._read("SELECT kind, count(*) FROM runs GROUP BY kind ORDER BY kind")
        return {str(row[0]): int(row[1]) for row in rows}


__all__ = ["ReadOnlyRegistry"]
