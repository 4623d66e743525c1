"""The one encoding the registry stores: canonical JSON, standard JSON only.

Keys sorted, no whitespace, non-ASCII kept; NaN is ``null`` and ±inf the strings ``"inf"`` /
``"-inf"`` (so ``allow_nan=False`` holds and readers in any language parse it). Shared by the
store and the migrations, so a migrated run is byte-identical to one written today.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def plain(value: Any) -> Any:
    """JSON-ready: NaN → null, ±inf → "inf"/"-inf", numpy scalars → Python, tuples → lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else float(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return plain(item())
    raise TypeError(f"cannot record a value of type {type(value).__name__}: {value!r}")


def canonical_json(value: Any) -> str:
    """The one encoding the registry stores: sorted keys, compact, standard JSON only."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False)


def number(value: Any) -> Any:
    """A stored value back as Python: ``"inf"``/``"-inf"`` → ±inf, anything else as is."""
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return value


def decode(text: str | None) -> dict[str, Any]:
    """A stored JSON object (``{}`` for NULL), its top-level infinities restored."""
    if text is None:
        return {}
    return {k: number(v) for k, v in json.loads(text).items()}


def metric_value(name: str, value: Any) -> float | None:
    """One metric as a ``metrics`` row stores it (a REAL; NULL for NaN or undefined)."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, int | float):
        value = item()
    if not isinstance(value, int | float):
        raise TypeError(f"metric {name!r} is not a number: {value!r}")
    value = float(value)
    return None if math.isnan(value) else value


__all__ = ["canonical_json", "decode", "metric_value", "number", "plain"]
