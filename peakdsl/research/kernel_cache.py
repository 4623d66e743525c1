"""A bounded LRU of graph-node outputs, shared by the blocks of one sweep.

Keys say what determines a node's output (see ``engine.program.node_key``): the node's op,
its input nodes' keys and the concrete window / scalar values it reads, plus the candles'
fingerprint at the sources. So ``sma(close, 20)`` is one entry whichever param (``fast`` or
``slow``) supplied the 20, and a cache kept by a worker across sweeps never mixes data sets.
``engine.program.Program.run`` takes it as its optional shared cache (``NodeCache``): the
engine package never imports this one.

Values are the arrays the kernels returned, stored without a copy; callers must not write
to them. The bound is on ``nbytes``: the least recently used entries are dropped until the
total fits, and a value larger than the whole bound is never stored. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

DEFAULT_CACHE_BYTES = 256 * 2**20


def nbytes_of(value: Any) -> int:
    """Bytes held by a cached value (an array, or a numpy / Python scalar)."""
    return int(np.asarray(value).nbytes)


class KernelCache:
    """LRU by bytes: ``get`` / ``put`` plus hit, miss and eviction counters."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def nbytes(self) -> int:
        """Bytes currently held (always ``<= max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable) -> Any | None:
        """The value under ``key`` (now the most recently used), or None."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value``, evicting least recently used entries to stay within the bound."""
        size = nbytes_of(value)
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.max_bytes:
                return
            while self._data and self._bytes + size > self.max_bytes:
                _, (_, dropped) = self._data.popitem(last=False)
                self._bytes -= dropped
                self.evictions += 1
            self._data[key] = (value, size)
            self._bytes += size

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._data), "bytes": self._bytes, "max_bytes": self.max_bytes,
                "hits": self.hits, "misses": self.misses, "evictions": self.evictions}
