"""Compiled values as a reviewer reads them: ``5%``, ``10bps``, ``1000 EUR``, ``7d``.

Configs store fractions and seconds; a diff that said ``0.05 → 0.08`` would make the reader
do the arithmetic the spec's author never had to. These print values in the units the spec
language writes them in (docs/language.md).
"""

from __future__ import annotations

from collections.abc import Callable

from ..compile import models as m

Show = Callable[[float], str]
DURATIONS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def number(value: float) -> str:
    """Twelve significant digits: enough that two different settings never print alike (the
    comparison is on the printed values), few enough to hide binary noise (``0.1 + 0.2``)."""
    return f"{value:.12g}"


def percent(value: float) -> str:
    return f"{number(round(value * 100, 10))}%"


def bps(value: float) -> str:
    return f"{number(round(value * 10_000, 10))}bps"


def money(value: m.Money | None) -> str:
    return "none" if value is None else f"{number(value.amount)} {value.currency}"


def duration(seconds: float | None) -> str:
    """``604800`` → ``7d``: the largest unit that divides it."""
    if seconds is None:
        return "none"
    unit, size = next((u, s) for u, s in DURATIONS if seconds % s == 0)
    return f"{int(seconds // size)}{unit}"


def scalar(value: m.Scalar | None, show: Show) -> str:
    """A setting that is a constant or names a param."""
    if value is None:
        return "none"
    return f"param `{value.param}`" if value.param is not None else show(value.const or 0.0)


PARAM_SHOW: dict[str, Show] = {"percent": percent, "bps": bps, "int": number, "float": number}
CRITERION_SHOW: dict[str, Show] = {"percent": percent, "number": number, "int": number}


def param_range(p: m.Param) -> str:
    show = PARAM_SHOW[p.type]
    step = f" step {show(p.step)}" if p.step is not None else ""
    return f"{p.type} {show(p.low)}..{show(p.high)}{step}"


def criterion(c: m.Criterion) -> str:
    return f"{c.metric} {c.op} {CRITERION_SHOW[c.unit](c.threshold)}"


SIZING_SHOW: dict[str, Callable[[m.Sizing, m.Market], str]] = {
    "equity_fraction": lambda s, _: f"{scalar(s.value, percent)} of equity",
    "notional": lambda s, mk: f"{scalar(s.value, number)} {mk.quote}",
    "quantity": lambda s, mk: f"{scalar(s.value, number)} {mk.base}",
    "vol_target": lambda s, _: f"vol_target {scalar(s.value, percent)}",
}


def sizing(value: m.Sizing, market: m.Market) -> str:
    return SIZING_SHOW[value.mode](value, market)

