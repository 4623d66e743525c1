"""Rendering: the Jinja environment (autoescaped: every name, message and note is user text)
and the value formats shared with the live page's script.

The live page is rendered here first, then kept current by ``static/live.js`` from the JSON
twin. Both format a value by the same names (``FORMATS``: ``money``, ``pct``, ``time`` …) and
build the tables from the same column lists (``LIVE_TABLES``), so a refreshed cell reads as
the server wrote it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from ..metrics import format_metric

DASH = "—"


def _number(value: Any) -> float | None:
    """A number to format: ±inf arrive as the strings "inf"/"-inf" (the JSON encoding)."""
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _finite(fmt: Callable[[float], str]) -> Callable[[Any], str]:
    def show(value: Any) -> str:
        x = _number(value)
        if x is None:
            return DASH if value is None else str(value)
        if math.isnan(x):
            return DASH
        if math.isinf(x):
            return "∞" if x > 0 else "-∞"
        return fmt(x)
    return show


def _trimmed(x: float, digits: int) -> str:
    text = f"{x:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_time(value: Any) -> str:
    """Milliseconds since the epoch as ``2025-12-05 19:00:00`` (UTC)."""
    x = _number(value)
    if x is None or not math.isfinite(x):
        return DASH
    return datetime.fromtimestamp(x / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_text(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


FORMATS: dict[str, Callable[[Any], str]] = {
    "text": fmt_text,
    "money": _finite(lambda x: f"{x:,.2f}"),
    "signed": _finite(lambda x: f"{x:+,.2f}"),
    "pct": _finite(lambda x: f"{100 * x:.1f}%"),
    "num": _finite(lambda x: _trimmed(x, 4)),
    "qty": _finite(lambda x: _trimmed(x, 8)),
    "time": fmt_time,
    "kill": lambda v: DASH if v is None else ("ENGAGED" if v else "released"),
}

# The live page's tables: (path in the API document, [(key, format, header)]).
Column = tuple[str, str, str]
LIVE_TABLES: dict[str, tuple[str, list[Column]]] = {
    "limits": ("status.book.limits", [("limit", "text", "limit"), ("value", "num", "value"),
                                      ("max", "num", "max"), ("used", "pct", "used")]),
    "risk": ("status.risk_counts", [("reason", "text", "reason"), ("count", "num", "count")]),
    "positions": ("status.positions", [
        ("market", "text", "market"), ("qty", "qty", "quantity"),
        ("average_price", "money", "average price"), ("realized_pnl", "signed", "realized"),
        ("fees", "money", "fees")]),
    "orders": ("status.open_orders", [
        ("client_order_id", "text", "client order id"), ("market", "text", "market"),
        ("side", "text", "side"), ("qty", "qty", "quantity"), ("status", "text", "status")]),
    "alerts": ("status.alerts", [
        ("at", "time", "at (UTC)"), ("severity", "text", "severity"), ("code", "text", "code"),
        ("key", "text", "condition"), ("message", "text", "message")]),
    "denials": ("status.denials", [
        ("at", "time", "bar (UTC)"), ("decision", "text", "decision"),
        ("limit", "text", "limit"), ("count", "num", "entries"),
        ("total", "num", "total")]),
    "problems": ("status.problems", [
        ("at", "time", "at (UTC)"), ("level", "text", "level"), ("event", "text", "event"),
        ("message", "text", "message")]),
    "sessions": ("status.sessions", [
        ("id", "text", "session"), ("status", "text", "status"),
        ("started_at", "time", "started (UTC)"), ("ended_at", "time", "ended (UTC)")]),
    "log": ("status.log", [
        ("at", "time", "at (UTC)"), ("level", "text", "level"), ("event", "text", "event"),
        ("message", "text", "message")]),
}


def cell(value: Any, fmt: str = "text") -> str:
    return FORMATS[fmt](value)


def pick(doc: Any, path: str) -> Any:
    """``doc["a"]["b"]`` for ``"a.b"``; None where a step is missing (as the script does)."""
    for key in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def fmt_value(value: Any) -> str:
    """A param, setting or summary entry: numbers short, structures as compact JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return fmt_text(value)


def fmt_iso(value: str | None) -> str:
    return DASH if not value else value.replace("T", " ")[:19]


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("peakdsl.serve", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(metric=lambda v, name: format_metric(name, v), cell=cell,
                       value=fmt_value, iso=fmt_iso, short=lambda s: str(s or "")[:12])
    env.globals.update(pick=pick, LIVE_TABLES=LIVE_TABLES, DASH=DASH)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


__all__ = ["DASH", "FORMATS", "LIVE_TABLES", "cell", "environment", "fmt_value", "pick",
           "render"]
