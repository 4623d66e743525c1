"""Integrity of the candle cache: checksums, a per-dataset lock, quarantine and tombstones.

A cached Parquet file damaged on disk (a flipped bit, a truncated copy, a crash between writing
the data and its manifest) can still load and produce plausible garbage: a backtest that exits
0 with a Sortino of 1e170. So every dataset carries a :class:`Seal` — sha256 and size of the
exact file bytes, plus its bar count and span — in its manifest (the JSON sidecar, written
after the Parquet file), and every read checks the bytes against the seal before parsing them.

Writers hold an exclusive ``flock`` on the dataset's folder while they replace the data and
its manifest; readers hold a shared one. A reader therefore never sees a live writer's new data
with the old manifest; a mismatch it does see is a crash or damage, never a race.

A file that fails is moved to ``.peak/quarantine/`` under a timestamped name (never over
another file) together with its manifest, and a tombstone takes its place, so the next run
reports it again instead of quietly falling back to the synthetic demo market. The next write
of the dataset (import, fetch, synth) removes the tombstone.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import folder_lock, write_atomic
from ..lang.project import display_path
from .candles import CandleSet, format_time, timeframe_seconds

if TYPE_CHECKING:
    from .cache import Meta

QUARANTINE_DIR = Path(".peak") / "quarantine"
TOMBSTONE_SUFFIX = ".quarantined.json"
MOVE_ATTEMPTS = 1000
NO_HARD_LINKS = frozenset({errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP,
                           errno.EOPNOTSUPP, errno.ENOSYS})


@dataclass(frozen=True)
class Seal:
    """What a cached file must be: the sha256 and size of its bytes, its bars and span."""

    sha256: str
    size: int
    bars: int
    first: str = ""   # the first bar's open time (format_time), "" when there are no bars
    last: str = ""

    @staticmethod
    def of(data: bytes, candles: CandleSet) -> Seal:
        index = candles.frame.index
        return Seal(hashlib.sha256(data).hexdigest(), len(data), candles.bars,
                    format_time(index[0]) if candles.bars else "",
                    format_time(index[-1]) if candles.bars else "")

    def as_dict(self) -> dict[str, object]:
        return {"sha256": self.sha256, "bytes": self.size, "bars": self.bars,
                "from": self.first, "to": self.last}

    @staticmethod
    def from_dict(doc: Mapping[str, Any]) -> Seal:
        """The seal in a manifest; KeyError/TypeError/ValueError when it is malformed."""
        sha = str(doc["sha256"])
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ValueError(f"not a sha256: {sha[:80]!r}")
        return Seal(sha, int(doc["bytes"]), int(doc["bars"]), str(doc.get("from", "")),
                    str(doc.get("to", "")))

    def problem(self, data: bytes) -> str | None:
        """Why ``data`` is not the sealed file, or None when it is."""
        if len(data) != self.size:
            return (f"is {len(data):,} bytes long, but its manifest says {self.size:,} "
                    "(truncated or overwritten)")
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            return (f"does not match its checksum (sha256 {digest[:12]}…, the manifest says "
                    f"{self.sha256[:12]}…): the file was changed or damaged on disk")
        return None


# ------------------------------------------------------------------------------ locking

dataset_lock = folder_lock  # the cache's name for it


# ------------------------------------------------------------------------------ quarantine

def tombstone_path(parquet: Path) -> Path:
    return parquet.with_name(parquet.stem + TOMBSTONE_SUFFIX)


@dataclass(frozen=True)
class Tombstone:
    """Left where a quarantined dataset was: when, why, where it went and how to replace it."""

    at: str
    reason: str
    moved_to: str
    fix: str

    def to_json(self) -> str:
        doc = {"quarantined_at": self.at, "reason": self.reason, "moved_to": self.moved_to,
               "fix": self.fix}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def read(path: Path) -> Tombstone | None:
        """The tombstone at ``path``; a damaged one still counts (its fields are unknown)."""
        try:
            text = path.read_text("utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            text = ""
        try:
            doc = json.loads(text)
            return Tombstone(str(doc["quarantined_at"]), str(doc["reason"]),
                             str(doc["moved_to"]), str(doc["fix"]))
        except (ValueError, KeyError, TypeError):
            return Tombstone("an unknown time", "failed verification", "", "")


def quarantine(root: Path, parquet: Path, reason: str, fix: str) -> Path | None:
    """Move ``parquet`` and its manifest into ``root/.peak/quarantine``; leave a tombstone.

    Returns where the Parquet file went (None when only the manifest existed). The tombstone
    is written first: a crash part-way leaves a tombstone next to the damaged file, and the
    next read verifies and quarantines it again. Raises OSError when nothing can be moved.
    """
    now = datetime.now(UTC)
    folder = root / QUARANTINE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{parquet.parent.name}-{parquet.stem}.{now.strftime('%Y%m%dT%H%M%S.%fZ')}"
    target = folder / f"{stem}.parquet"
    write_atomic(tombstone_path(parquet),
                 Tombstone(now.isoformat(timespec="seconds").replace("+00:00", "Z"), reason,
                           display_path(target), fix).to_json().encode())
    moved = move_aside(parquet, folder, stem, ".parquet") if parquet.exists() else None
    sidecar = parquet.with_suffix(".json")
    if sidecar.exists():
        move_aside(sidecar, folder, moved.stem if moved else stem, ".json")
    if moved is not None and moved != target:  # the timestamped name was taken: say where
        write_atomic(tombstone_path(parquet),
                     Tombstone(now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                               reason, display_path(moved), fix).to_json().encode())
    return moved


def move_aside(src: Path, folder: Path, stem: str, suffix: str) -> Path:
    """Move ``src`` to ``folder/stem[-N]suffix``, never replacing a file that is there.

    A hard link then an unlink is a move that fails instead of overwriting; where hard links
    are not available the name is checked, then renamed.
    """
    for n in range(MOVE_ATTEMPTS):
        dest = folder / f"{stem}{f'-{n}' if n else ''}{suffix}"
        try:
            os.link(src, dest)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            if dest.exists():
                continue
            os.rename(src, dest)
            return dest
        os.unlink(src)
        return dest
    raise FileExistsError(errno.EEXIST, f"no free name for {stem}{suffix}", str(folder))


# ------------------------------------------------------------------------------ fixes

def _fix_import(market: str, timeframe: str, meta: Meta, seal: Seal | None) -> str | None:
    if not meta.detail:
        return None
    return (f"peak data import {shlex.quote(meta.detail)} --market {market} "
            f"--timeframe {timeframe} --replace")


def _fix_fetch(market: str, timeframe: str, meta: Meta, seal: Seal | None) -> str | None:
    if not meta.exchange:
        return None
    since = format_time(min(a for a, _ in meta.ranges) * 1_000_000) if meta.ranges else \
        (seal.first if seal and seal.first else "")
    if not since:
        return None
    return f"peak data fetch {meta.exchange} {market} {timeframe} --since {since} --replace"


def _fix_synth(market: str, timeframe: str, meta: Meta, seal: Seal | None) -> str | None:
    command = f"peak data synth {market} {timeframe}"
    if meta.seed is not None:
        command += f" --seed {meta.seed}"
    if seal is not None and seal.last:
        import pandas as pd

        end = pd.Timestamp(seal.last) + pd.Timedelta(seconds=timeframe_seconds(timeframe))
        command += f" --bars {seal.bars} --end {format_time(end)}"
    return command


FIXES: dict[str, Callable[[str, str, Meta, Seal | None], str | None]] = {
    "import": _fix_import, "fetch": _fix_fetch, "synth": _fix_synth}


def fix_command(market: str, timeframe: str, meta: Meta | None, seal: Seal | None) -> str:
    """The command that re-creates a dataset, as concrete as its manifest allows."""
    maker = FIXES.get(meta.origin) if meta is not None else None
    command = maker(market, timeframe, meta, seal) if maker and meta else None
    if command:
        return f"`{command}`"
    return (f"`peak data import FILE --market {market} --timeframe {timeframe} --replace` or "
            f"`peak data fetch EXCHANGE {market} {timeframe} --since DATE --replace`")
