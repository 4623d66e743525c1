"""The resume store of a sweep: finished blocks on disk, so an interrupted sweep picks up.

One folder per sweep under ``<project>/.peak/sweeps/<key>/``. The key is a hash of what
determines every combination's result (artifact sha256, data fingerprint, the space's id,
the shared run config and the engine version) and of nothing else, so running the same
command again finds the folder; the objective is left out (it only ranks).

- ``sweep.json``: what the sweep is (spec, key inputs, param names, size) and, once the
  registry knows it, the registry's sweep id (re-used on resume).
- ``block-<start>-<end>.parquet``: the metrics of rows ``start <= row < end`` of the space,
  with the row numbers and param values (checked on load), and ``cscv``: each row's
  per-block return moments (``pbo.block_moments``, flattened ``S × 3``) for the
  probability of backtest overfitting. Each is written atomically before the block is
  recorded in the registry, so a block is either on disk whole or not at all, whatever
  kills the process.
- ``results.parquet``: at the end, every row: params, metrics and rank (by the objective);
  the sweep-level statistics (PBO) in its schema metadata.

Blocks that do not match the space (other rows or other param values) are ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic
from ..engine.stats import METRIC_KEYS
from .types import Array, RunConfig

SWEEPS_DIR = Path(".peak") / "sweeps"
META_FILE = "sweep.json"
RESULTS_FILE = "results.parquet"
KEY_HEX = 16
BLOCK_FILE = re.compile(r"^block-(\d+)-(\d+)\.parquet$")
MOMENTS_COLUMN = "cscv"
RESERVED = frozenset({*METRIC_KEYS, "row", "rank", MOMENTS_COLUMN})


def sweep_key(artifact_sha256: str, data_fingerprint: str, space_id: str, run: RunConfig,
              engine_version: str) -> str:
    """The store key: the same inputs (objective aside) always give the same key."""
    doc = {"artifact_sha256": artifact_sha256, "data_fingerprint": data_fingerprint,
           "space_id": space_id, "capital": float(run.capital),
           "fee_bps": None if run.fee_bps is None else float(run.fee_bps),
           "engine_version": engine_version}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_HEX]


def param_column(name: str) -> str:
    """The Parquet column of a param (prefixed only if it would clash with a metric)."""
    return f"param_{name}" if name in RESERVED else name


@dataclass(frozen=True)
class Loaded:
    """What the store already holds for a space: rows done and their metrics."""

    done: Array  # bool, one per row
    metrics: dict[str, Array]  # float64, NaN where not done
    blocks: tuple[tuple[int, int], ...]  # the block files used
    # (rows, S, 3) per-block return moments (``pbo``), NaN where not done
    moments: Array = field(default_factory=lambda: np.empty((0, 0, 3)))

    @property
    def rows_done(self) -> int:
        return int(self.done.sum())


def _parquet_bytes(columns: Mapping[str, Array], metadata: Mapping[str, str]) -> bytes:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.table({name: values if isinstance(values, pa.Array) else pa.array(values)
                      for name, values in columns.items()})
    table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in metadata.items()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", write_statistics=False)
    return buffer.getvalue()


class SweepStore:
    """The folder of one sweep; every write is atomic."""

    def __init__(self, root: Path, key: str) -> None:
        self.root = Path(root)
        self.key = key
        self.path = self.root / SWEEPS_DIR / key

    # -- metadata

    def read_meta(self) -> dict[str, Any]:
        try:
            data = json.loads((self.path / META_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_meta(self, meta: Mapping[str, Any]) -> None:
        text = json.dumps(dict(meta), sort_keys=True, indent=2, allow_nan=False) + "\n"
        write_atomic(self.path / META_FILE, text.encode("utf-8"))

    # -- blocks

    def block_path(self, start: int, end: int) -> Path:
        return self.path / f"block-{start}-{end}.parquet"

    def block_files(self) -> list[tuple[int, int]]:
        """(start, end) of every block file, in row order."""
        if not self.path.is_dir():
            return []
        out = []
        for entry in self.path.iterdir():
            match = BLOCK_FILE.match(entry.name)
            if match:
                out.append((int(match.group(1)), int(match.group(2))))
        return sorted(out)

    def write_block(self, start: int, end: int, names: Sequence[str], combos: Array,
                    metrics: Mapping[str, Array], moments: Array | None = None) -> Path:
        """Write rows ``start..end`` (their param values, metrics and, when given, their
        ``(rows, S, 3)`` return moments) atomically."""
        if combos.shape != (end - start, len(names)):
            raise ValueError(f"block {start}-{end}: combos have shape {combos.shape}")
        columns: dict[str, Array] = {"row": np.arange(start, end, dtype=np.int64)}
        for j, name in enumerate(names):
            columns[param_column(name)] = np.asarray(combos[:, j], dtype=np.float64)
        for key in METRIC_KEYS:
            columns[key] = np.asarray(metrics[key], dtype=np.float64)
        if moments is not None and moments.shape[1]:
            columns[MOMENTS_COLUMN] = _moments_column(moments)
        path = self.block_path(start, end)
        write_atomic(path, _parquet_bytes(columns, {"peak.sweep": self.key}))
        return path

    def load(self, names: Sequence[str], combos: Array, moments: int = 0) -> Loaded:
        """The rows of this space already on disk (blocks that do not match are skipped;
        with ``moments`` = S > 0, so are blocks without the return moments of S blocks)."""
        import pyarrow.parquet as pq

        k = len(combos)
        done = np.zeros(k, dtype=bool)
        metrics = {key: np.full(k, np.nan) for key in METRIC_KEYS}
        loaded = np.full((k, moments, 3), np.nan)
        used = []
        for start, end in self.block_files():
            if not 0 <= start < end <= k or done[start:end].any():
                continue
            try:
                table = pq.read_table(self.block_path(start, end))
            except (OSError, ValueError):
                continue  # unreadable: computed again
            cols = set(table.column_names)
            wanted = ["row", *(param_column(n) for n in names), *METRIC_KEYS]
            if table.num_rows != end - start or not set(wanted) <= cols:
                continue
            block_moments = _read_moments(table, moments)
            if block_moments is None:
                continue
            rows = table.column("row").to_numpy()
            if not np.array_equal(rows, np.arange(start, end)):
                continue
            block = combos[start:end]
            if not all(np.array_equal(table.column(param_column(n)).to_numpy(), block[:, j])
                       for j, n in enumerate(names)):
                continue
            for key in METRIC_KEYS:
                metrics[key][start:end] = table.column(key).to_numpy().astype(np.float64)
            loaded[start:end] = block_moments
            done[start:end] = True
            used.append((start, end))
        return Loaded(done, metrics, tuple(used), loaded)

    # -- results

    def write_results(self, names: Sequence[str], combos: Array, metrics: Mapping[str, Array],
                      rank: Array, metadata: Mapping[str, str]) -> Path:
        """Every row: params, metrics and rank (1 = best), in the space's row order."""
        columns: dict[str, Array] = {}
        for j, name in enumerate(names):
            columns[param_column(name)] = np.asarray(combos[:, j], dtype=np.float64)
        for key in METRIC_KEYS:
            columns[key] = np.asarray(metrics[key], dtype=np.float64)
        columns["rank"] = np.asarray(rank, dtype=np.int64)
        path = self.path / RESULTS_FILE
        write_atomic(path, _parquet_bytes(columns, metadata))
        return path


def _moments_column(moments: Array) -> Any:
    """``(rows, S, 3)`` moments as one fixed-size list column of ``3·S`` floats per row."""
    import pyarrow as pa

    flat = np.ascontiguousarray(moments, dtype=np.float64).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), 3 * moments.shape[1])


def _read_moments(table: Any, blocks: int) -> Array | None:
    """The ``(rows, blocks, 3)`` moments of a block file; None when it lacks them (written
    by an older peak) or holds another number of blocks. ``blocks`` 0: nothing to read."""
    if not blocks:
        return np.empty((table.num_rows, 0, 3))
    if MOMENTS_COLUMN not in table.column_names:
        return None
    column = table.column(MOMENTS_COLUMN).combine_chunks()
    if getattr(column.type, "list_size", None) != 3 * blocks:
        return None
    values: Array = column.flatten().to_numpy(zero_copy_only=False)
    return values.astype(np.float64).reshape(table.num_rows, blocks, 3)


def missing_blocks(done: Array, size: int) -> list[tuple[int, int]]:
    """Contiguous runs of rows not done, cut into blocks of at most ``size`` rows.

    Blocks are aligned to multiples of ``size`` so that a resumed sweep computes the same
    blocks an uninterrupted one would have.
    """
    if size < 1:
        raise ValueError("block size must be at least 1")
    k = len(done)
    out = []
    for start in range(0, k, size):
        end = min(start + size, k)
        row = start
        while row < end:
            if done[row]:
                row += 1
                continue
            first = row
            while row < end and not done[row]:
                row += 1
            out.append((first, row))
    return out


def format_bytes(n: float) -> str:
    """``2147483648`` → ``2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" or float(n).is_integer() \
                else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n} TiB"  # pragma: no cover


SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
FACTORS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
           "gb": 10**9, "t": 10**12, "tb": 10**12, "ki": 2**10, "kib": 2**10, "mi": 2**20,
           "mib": 2**20, "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40}


def parse_size(text: str) -> int:
    """``512MB`` (10^6), ``2GB`` (10^9), ``1.5GiB`` (2^30), ``4096`` (bytes) → bytes.

    ValueError when the text is not a size or is below one byte.
    """
    match = SIZE.match(text)
    if match is None:
        raise ValueError(f"`{text}` is not a size; write e.g. 512MB, 2GB or 1.5GiB")
    value = float(match.group(1)) * FACTORS[(match.group(2) or "").lower()]
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"`{text}` is too small")
    return int(value)
