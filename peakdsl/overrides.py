"""Command-line param overrides (`--set name=value`): parsed and validated like spec literals.

Unknown names are N014 with "did you mean", values off the declared range or step and
combinations that break a `require` are T010 — the same codes the checker uses for portfolio
overrides, so a reviewer sees one vocabulary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .compile import models as m
from .lang.diagnostics import Diagnostic, diag, did_you_mean
from .lang.parser import unit_value

VALUE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(%|bps)?\s*$")
SCALE = {None: 0, "%": -2, "bps": -4}  # decimal exponents, exactly as the parser applies them
WHERE = "--set"


def parse_assignments(items: Sequence[str]) -> tuple[dict[str, str], list[Diagnostic]]:
    """`name=value` strings → raw values by name (U005 for malformed items)."""
    out: dict[str, str] = {}
    problems = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            problems.append(diag("U005", f"`--set {item}` is not name=value", WHERE,
                                 help="e.g. --set fast=10 --set stop=3%"))
            continue
        out[name.strip()] = value.strip()
    return out, problems


def _value(param: m.Param, raw: str) -> float | str:
    """The numeric value of ``raw`` for ``param``, or a problem description."""
    match = VALUE.match(raw)
    if not match:
        return f"`{raw}` is not a number"
    number, unit = float(match.group(1)), match.group(2)
    expected = {"percent": "%", "bps": "bps"}.get(param.type)
    if unit != expected:
        want = {"%": "a percentage like 3%", "bps": "basis points like 10bps"}.get(
            expected or "", "a plain number")
        return f"`{param.name}` is a {param.type} param: give {want}"
    value = unit_value(match.group(1), SCALE[unit])
    if param.type == "int" and not number.is_integer():
        return f"`{param.name}` is an int param"
    return value


def _problem(param: m.Param, value: float) -> str:
    if not param.low - 1e-12 <= value <= param.high + 1e-12:
        return f"{value:g} is outside {param.low:g}..{param.high:g}"
    if param.step:
        k = (value - param.low) / param.step
        if not math.isclose(k, round(k), abs_tol=1e-9):
            return f"{value:g} is not on the step {param.step:g} from {param.low:g}"
    return ""


def resolve_overrides(cfg: m.StrategyConfig, items: Sequence[str]
                      ) -> tuple[dict[str, float], list[Diagnostic]]:
    """Validated overrides for ``cfg``; diagnostics instead of exceptions."""
    raw, problems = parse_assignments(items)
    params = {p.name: p for p in cfg.params}
    values: dict[str, float] = {}
    for name, text in raw.items():
        param = params.get(name)
        if param is None:
            problems.append(diag("N014", f"`{cfg.name}` has no param `{name}`", WHERE,
                                 help=did_you_mean(name, params)
                                 or "params: " + (", ".join(params) or "none")))
            continue
        value = _value(param, text)
        problem = value if isinstance(value, str) else _problem(param, value)
        if problem:
            problems.append(diag("T010", f"override `{name}`: {problem}", WHERE,
                                 help=f"declared as {param.type} in {param.low:g}.."
                                 f"{param.high:g}" + (f" step {param.step:g}" if param.step
                                                       else "")))
            continue
        assert isinstance(value, float)
        values[name] = value
    if not problems:
        problems.extend(_check_requires(cfg, values))
    return values, problems


def _check_requires(cfg: m.StrategyConfig, values: dict[str, float]) -> list[Diagnostic]:
    from .engine.evaluate import require_masks

    merged = {p.name: p.default for p in cfg.params} | values
    out = []
    for req, holds in require_masks(cfg, merged):
        if not bool(holds):
            out.append(diag("T010", f"overrides violate `require {req.source}`", WHERE,
                            help=", ".join(f"{k} = {v:g}" for k, v in sorted(merged.items()))))
    return out
