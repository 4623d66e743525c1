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

import os
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


# ------------------------------------------------------------------------- sizing

PROBE_BARS = 4  # the graph runs on this many bars to learn which entries a sweep creates
PROBE_COMBOS = 4096  # at most this many combinations probed (evenly spaced over the space)
MAX_CACHE_SHARE = 0.5  # of physical memory, the most a sized cache may take


class _KeyCounter:
    """A ``NodeCache`` that keeps every key it is offered and nothing else of note."""

    def __init__(self) -> None:
        self.keys: set[Hashable] = set()
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable) -> Any | None:
        return self._values.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        self.keys.add(key)
        self._values[key] = value


def distinct_entries(cfg: Any, names: tuple[str, ...], combos: Any) -> int:
    """How many cache entries (kernel outputs, param-dependent series) a sweep of ``combos``
    over ``names`` creates: the graph runs once per combination on ``PROBE_BARS`` bars
    (cheap: the keys depend on windows and structure, not on the data's length; about
    0.5 ms a combination). A space larger than ``PROBE_COMBOS`` is probed on that many
    evenly spaced rows, which may undercount: the result is then a lower bound."""
    from ..engine.program import Program

    program = Program.plan(cfg, lets=False)
    probe: dict[str, Any] = {c: np.linspace(1.0, 2.0, PROBE_BARS) for c in
                             ("open", "high", "low", "close", "volume")}
    for key in program.frame_inputs:  # a frame's columns; its index: the identity
        probe[key] = np.arange(PROBE_BARS) if key.startswith("@") else probe["close"]
    probe["time"] = np.arange(PROBE_BARS) * 3600.0  # the bars' open times (session_vwap)
    defaults = {p.name: p.default for p in cfg.params}
    counter = _KeyCounter()
    rows = np.asarray(combos, dtype=np.float64)
    if len(rows) > PROBE_COMBOS:
        rows = rows[np.linspace(0, len(rows) - 1, PROBE_COMBOS).astype(np.int64)]
    for row in rows.tolist():
        params = {**defaults, **dict(zip(names, row, strict=True))}
        program.run(params, probe, fingerprint="probe", cache=counter)
    return len(counter.keys)


def physical_memory() -> int:
    """Bytes of RAM (0 when the platform cannot say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def sized_cache_bytes(entries: int, bars: int) -> int:
    """A cache bound that holds every one of ``entries`` float64 series of ``bars`` bars
    (so a grid's cyclic access never thrashes an LRU), never below ``DEFAULT_CACHE_BYTES``
    and never above ``MAX_CACHE_SHARE`` of physical memory."""
    needed = int(entries) * max(int(bars), 1) * 8
    cap = int(physical_memory() * MAX_CACHE_SHARE) or needed
    return max(DEFAULT_CACHE_BYTES, min(needed, cap))
