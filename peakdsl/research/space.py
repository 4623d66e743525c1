"""The parameter space of a sweep: axes from the spec's ranges and steps, `--set` overrides,
the cartesian product in canonical order, the spec's ``require`` constraints applied to whole
columns with numexpr, and seeded random draws.

``build_space`` never raises on bad input: it returns ``(None, diagnostics)`` with every problem
found, in the vocabulary of ``peakdsl.overrides`` (N014 unknown param with "did you mean",
T010 value off the declared range, step or unit, U005 malformed option). Everything here is
deterministic: the same spec, options and seed give the same rows in the same order.

``--set`` forms, for a param declared ``in LOW..HIGH step STEP``:

* ``name=value`` pins the axis to one value;
* ``name=lo..hi`` narrows it, keeping the declared step;
* ``name=lo..hi:step`` narrows it with its own step (a multiple of the declared one).

``lo`` and ``hi`` must lie in the declared range and on the declared step grid (``hi`` may
also be the declared ``HIGH``); the axis is ``lo, lo + step, …`` up to ``hi``. Percent and bps
params take their unit (``stop=1%..5%:0.5%``); a unit written on any part of a range applies to
the parts written without one (``stop=1..5:0.5%``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ..compile import models as m
from ..lang.diagnostics import Diagnostic, diag, did_you_mean
from ..lang.parser import unit_value
from ..overrides import SCALE, VALUE
from .types import Array, ParamSpace

Mode = Literal["grid", "random"]
WHERE = "--set"
MAX_COMBOS = 5_000_000
SIGNIFICANT = 12  # axis values are rounded to this many significant digits (0.1 * 3 → 0.3)
TOLERANCE = 1e-9  # in units of a step: how far off the step grid still counts as on it
UNITS = {"percent": "%", "bps": "bps"}
WANT = {"%": "a percentage like 3%", "bps": "basis points like 10bps"}


# ------------------------------------------------------------------------- axes

def _clean(values: Array) -> Array:
    """Axis values without the float noise of ``low + k * step``."""
    return np.array([float(f"{v:.{SIGNIFICANT}g}") for v in values.tolist()], dtype=np.float64)


def _length(low: float, high: float, step: float) -> int:
    return math.floor((high - low) / step + TOLERANCE) + 1


def _on_grid(value: float, origin: float, step: float) -> bool:
    k = (value - origin) / step
    return math.isclose(k, round(k), abs_tol=TOLERANCE)


def _declared(param: m.Param) -> str:
    return (f"declared as {param.type} in {param.low:g}..{param.high:g}"
            + (f" step {param.step:g}" if param.step else ""))


def _default_step(param: m.Param) -> float | None:
    if param.step:
        return float(param.step)
    return 1.0 if param.type == "int" else None


class _Axis:
    """What an axis is before its values exist: ``low``, ``high`` and ``step`` (validated)."""

    __slots__ = ("high", "low", "step")

    def __init__(self, low: float, high: float, step: float) -> None:
        self.low, self.high, self.step = low, high, step

    def __len__(self) -> int:
        return 1 if self.low == self.high else _length(self.low, self.high, self.step)

    def values(self) -> Array:
        return _clean(self.low + np.arange(len(self), dtype=np.float64) * self.step)


# ------------------------------------------------------------------------- --set

def _number(param: m.Param, raw: str, unit: str | None) -> float | str:
    """The value of one part of a `--set` (its unit already decided), or a problem."""
    match = VALUE.match(raw)
    if not match:
        return f"`{raw.strip()}` is not a number"
    number = float(match.group(1))
    expected = UNITS.get(param.type)
    if unit != expected:
        want = WANT.get(expected or "", "a plain number")
        return f"`{param.name}` is a {param.type} param: give {want}"
    if param.type == "int" and not number.is_integer():
        return f"`{param.name}` is an int param"
    return unit_value(match.group(1), SCALE[unit])


def _unit_of(parts: Sequence[str]) -> str | Literal[False] | None:
    """The one unit written on the parts (None: none), or False when they disagree."""
    units = set()
    for part in parts:
        match = VALUE.match(part)
        if match and match.group(2):
            units.add(match.group(2))
    if len(units) > 1:
        return False
    return units.pop() if units else None


def _point_problem(param: m.Param, value: float, *, is_high: bool = False) -> str:
    """What is wrong with ``value`` as a value of ``param`` ('' when nothing)."""
    if not param.low - 1e-12 <= value <= param.high + 1e-12:
        return f"{value:g} is outside {param.low:g}..{param.high:g}"
    if param.step and not _on_grid(value, param.low, param.step):
        if is_high and math.isclose(value, param.high, rel_tol=1e-12, abs_tol=1e-12):
            return ""
        return f"{value:g} is not on the step {param.step:g} from {param.low:g}"
    return ""


def _override_axis(param: m.Param, text: str) -> _Axis | Diagnostic:
    """The axis a `--set name=text` asks for, or the diagnostic saying why not."""
    lo_text, dots, rest = text.partition("..")
    hi_text, colon, step_text = rest.partition(":") if dots else ("", "", "")
    if (not dots and ":" in text) or (dots and not hi_text.strip()) \
            or (colon and not step_text.strip()) or not lo_text.strip():
        return diag("U005", f"`--set {param.name}={text}` is not name=value, name=lo..hi or "
                    "name=lo..hi:step", WHERE,
                    help=f"e.g. --set {param.name}={param.low:g}..{param.high:g}")
    parts = [lo_text, hi_text, step_text] if colon else [lo_text, hi_text] if dots else [text]

    def t010(problem: str) -> Diagnostic:
        return diag("T010", f"override `{param.name}`: {problem}", WHERE, help=_declared(param))

    unit = _unit_of(parts)
    if unit is False:
        return t010(f"`{text}` mixes units")
    values = [_number(param, part, unit) for part in parts]
    for value in values:
        if isinstance(value, str):
            return t010(value)
    numbers = [float(v) for v in values]
    if not dots:
        problem = _point_problem(param, numbers[0])
        return t010(problem) if problem else _Axis(numbers[0], numbers[0], 1.0)
    low, high = numbers[0], numbers[1]
    if low > high:
        return t010(f"the range {low:g}..{high:g} is empty (low above high)")
    problems = [p for p in (_point_problem(param, low),
                            _point_problem(param, high, is_high=True)) if p]
    if problems:
        return t010("; ".join(problems))
    step = numbers[2] if colon else _default_step(param)
    if step is None:
        return diag("U005", f"`{param.name}` is a {param.type} param without a step: "
                    "give the grid's step", WHERE,
                    help=f"e.g. --set {param.name}={text}:{_example_step(param)}")
    if step <= 0:
        return t010(f"the step {step:g} is not positive")
    if param.step and not _on_grid(step, 0.0, param.step):
        return t010(f"the step {step:g} is not a multiple of the declared step {param.step:g}")
    return _Axis(low, high, step)


def _example_step(param: m.Param) -> str:
    step = (param.high - param.low) / 10 or 1.0
    unit = UNITS.get(param.type)
    scaled = step * 10.0 ** -SCALE[unit]
    return f"{scaled:.3g}{unit or ''}"


def _declared_axis(param: m.Param) -> _Axis | Diagnostic:
    step = _default_step(param)
    if param.low == param.high:
        return _Axis(param.low, param.low, 1.0)
    if step is None:
        unit = UNITS.get(param.type)
        lo, hi = param.low * 10.0 ** -SCALE[unit], param.high * 10.0 ** -SCALE[unit]
        suffix = unit or ""
        return diag("U005", f"`{param.name}` is a {param.type} param without a step: a grid "
                    "needs one", WHERE,
                    help=f"give it with --set {param.name}={lo:g}{suffix}..{hi:g}{suffix}:"
                    f"{_example_step(param)}, or pin it with --set {param.name}=value")
    return _Axis(float(param.low), float(param.high), step)


def _parse_sets(cfg: m.StrategyConfig, sets: Sequence[str]
                ) -> tuple[dict[str, str], list[Diagnostic]]:
    params = {p.name: p for p in cfg.params}
    raw: dict[str, str] = {}
    problems: list[Diagnostic] = []
    for item in sets:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            problems.append(diag("U005", f"`--set {item}` is not name=value", WHERE,
                                 help="e.g. --set fast=10 --set fast=5..30:5 "
                                 "--set stop=1%..5%:0.5%"))
            continue
        if name not in params:
            problems.append(diag("N014", f"`{cfg.name}` has no param `{name}`", WHERE,
                                 help=did_you_mean(name, params)
                                 or "params: " + (", ".join(params) or "none")))
            continue
        if name in raw:
            problems.append(diag("U005", f"`--set {name}` is given more than once", WHERE,
                                 help=f"keep one of `{name}={raw[name]}` and `{name}={value}`"))
            continue
        raw[name] = value
    return raw, problems


def _axes(cfg: m.StrategyConfig, sets: Sequence[str]
          ) -> tuple[dict[str, _Axis], list[Diagnostic]]:
    raw, problems = _parse_sets(cfg, sets)
    axes: dict[str, _Axis] = {}
    for param in cfg.params:
        axis = (_override_axis(param, raw[param.name]) if param.name in raw
                else _declared_axis(param))
        if isinstance(axis, Diagnostic):
            problems.append(axis)
        else:
            axes[param.name] = axis
    return axes, problems


# ------------------------------------------------------------------------ product

def _product(axes: Sequence[Array]) -> Array:
    """Every combination of the axes, the first axis varying slowest (lexicographic order)."""
    k = math.prod(len(a) for a in axes)
    out = np.empty((k, len(axes)), dtype=np.float64)
    inner = k
    for j, axis in enumerate(axes):
        inner //= len(axis)
        out[:, j] = np.tile(np.repeat(axis, inner), k // (inner * len(axis)))
    return out


def _require_masks(cfg: m.StrategyConfig, names: Sequence[str], combos: Array
                   ) -> list[tuple[m.Require, Array]]:
    """One boolean column per ``require`` of ``cfg`` over the rows of ``combos``."""
    from ..engine.evaluate import require_masks

    if not cfg.requires:
        return []
    columns = {p.name: np.full(len(combos), p.default) for p in cfg.params}
    columns |= {n: np.ascontiguousarray(combos[:, j]) for j, n in enumerate(names)}
    return [(req, np.broadcast_to(mask, (len(combos),)))
            for req, mask in require_masks(cfg, columns)]


def _keep(masks: Sequence[tuple[m.Require, Array]], k: int) -> Array:
    keep = np.ones(k, dtype=bool)
    for _, mask in masks:
        keep &= mask
    return keep


def _empty(masks: Sequence[tuple[m.Require, Array]], k: int, sampled: bool,
           sets: Sequence[str]) -> Diagnostic:
    """T010: no combination is left; say which constraint(s) removed them."""
    what = f"{k} sampled combinations" if sampled else f"{k} combinations"
    alone = [req for req, mask in masks if not mask.any()]
    if alone:
        culprit = " and ".join(f"`require {r.source}`" for r in alone)
        help_text = f"{culprit} removes all {what}"
    else:
        help_text = "each constraint keeps some, together they keep none: " + ", ".join(
            f"`require {r.source}` keeps {int(mask.sum())}" for r, mask in masks)
    narrowed = " (after --set)" if sets else ""
    return diag("T010", f"no parameter combination satisfies the spec's require "
                f"constraints{narrowed}", WHERE if sets else "<sweep>",
                help=help_text + (f" of {what}" if not alone else "")
                + ("; widen or drop the --set ranges" if sets else ""))


# ------------------------------------------------------------------------- build

def build_space(cfg: m.StrategyConfig, sets: Sequence[str] = (), *, mode: Mode = "grid",
                n: int | None = None, seed: int | None = None,
                max_combos: int = MAX_COMBOS) -> tuple[ParamSpace | None, list[Diagnostic]]:
    """The combinations a sweep of ``cfg`` runs, or ``None`` and every problem found.

    Grid: the cartesian product of the axes in lexicographic order (the first declared param
    varies slowest), minus the rows that break a ``require``; ``candidates`` is the product's
    size before filtering. Random: ``n`` distinct rows of that filtered grid drawn without
    replacement with ``numpy.random.default_rng(seed)``, in draw order (the whole grid, in grid
    order, when ``n`` is at least its size). A grid larger than ``max_combos`` is refused in
    grid mode; in random mode its rows are drawn axis by axis without building it (uniform
    over the grid, duplicates and rows breaking a ``require`` redrawn).
    """
    problems: list[Diagnostic] = []
    if mode not in ("grid", "random"):
        problems.append(diag("U005", f"unknown sweep mode {mode!r}", "<sweep>",
                             help="use --grid or --random N --seed S"))
    elif mode == "random":
        if n is None or n < 1:
            problems.append(diag("U005", "--random needs a positive number of combinations",
                                 "--random", help="e.g. --random 200 --seed 1"))
        if seed is None:
            problems.append(diag("U005", "--random needs --seed so the draw can be repeated",
                                 "--seed", help="e.g. --random 200 --seed 1"))
        elif seed < 0:
            problems.append(diag("U005", f"--seed {seed}: give a non-negative integer",
                                 "--seed"))
    else:
        if n is not None:
            problems.append(diag("U005", "a number of combinations is for --random, not --grid",
                                 "--grid", help="use --random N --seed S to draw N"))
        if seed is not None:
            problems.append(diag("U005", "--seed is for --random, not --grid", "--seed",
                                 help="a grid runs every combination; there is nothing to draw"))
    axes, axis_problems = _axes(cfg, sets)
    problems.extend(axis_problems)
    if problems:
        return None, problems

    names = tuple(p.name for p in cfg.params)
    lengths = [len(axes[name]) for name in names]
    total = math.prod(lengths)
    too_long = [name for name, size in zip(names, lengths, strict=True) if size > max_combos]
    if too_long:
        return None, [diag("U005", f"the axis of `{name}` has {len(axes[name]):,} values, more "
                           f"than {max_combos:,}", WHERE,
                           help=f"give a coarser step with --set {name}=lo..hi:step")
                      for name in too_long]
    values = {name: axes[name].values() for name in names}
    if mode == "random" and n is not None and n > max_combos:
        return None, [diag("U005", f"--random {n:,} asks for more than {max_combos:,} "
                           "combinations", "--random", help="draw fewer combinations")]
    if total > max_combos:
        if mode == "grid":
            return None, [diag("U005", f"the grid has {total:,} combinations, more than "
                               f"{max_combos:,}", "--grid",
                               help="draw a sample with --random N --seed S, or narrow the "
                               "axes with --set name=lo..hi:step")]
        assert n is not None and seed is not None
        return _draw_large(cfg, names, values, total, n, seed, max_combos, sets)

    grid = _product([values[name] for name in names])
    masks = _require_masks(cfg, names, grid)
    keep = _keep(masks, total)
    if not keep.any():
        return None, [_empty(masks, total, False, sets)]
    combos = grid if keep.all() else grid[keep]
    if mode == "random":
        assert n is not None and seed is not None
        if n < len(combos):
            rng = np.random.default_rng(seed)
            combos = combos[rng.choice(len(combos), size=n, replace=False)]
    return ParamSpace(names=names, combos=np.ascontiguousarray(combos), mode=mode,
                      seed=seed if mode == "random" else None, candidates=total,
                      axes=values), []


def _draw_large(cfg: m.StrategyConfig, names: tuple[str, ...], values: Mapping[str, Array],
                total: int, n: int, seed: int, budget: int, sets: Sequence[str]
                ) -> tuple[ParamSpace | None, list[Diagnostic]]:
    """``n`` distinct rows of a grid too large to build, drawn index by index per axis.

    At most ``budget`` rows are drawn in all; when the constraints leave too few of them,
    the space holds the distinct valid rows found (possibly fewer than ``n``).
    """
    rng = np.random.default_rng(seed)
    columns = [values[name] for name in names]
    seen: set[bytes] = set()
    accepted: list[Array] = []
    count = drawn = 0
    last_masks: list[tuple[m.Require, Array]] = []
    last_rows = 0
    while count < n and drawn < budget:
        size = min(budget - drawn, 2 * (n - count) + 64)
        index = np.column_stack([rng.integers(0, len(c), size=size) for c in columns])
        drawn += size
        rows = np.column_stack([c[index[:, j]] for j, c in enumerate(columns)])
        keys = np.ascontiguousarray(index, dtype=np.int64)
        fresh = np.zeros(size, dtype=bool)
        for i in range(size):
            key = keys[i].tobytes()
            if key not in seen:
                seen.add(key)
                fresh[i] = True
        rows = rows[fresh]
        masks = _require_masks(cfg, names, rows)
        keep = _keep(masks, len(rows))
        if masks:
            last_masks, last_rows = masks, len(rows)
        good = rows[keep][: n - count]
        accepted.append(good)
        count += len(good)
    if count == 0:
        return None, [_empty(last_masks, last_rows, True, sets)]
    combos = np.ascontiguousarray(np.concatenate(accepted))
    return ParamSpace(names=names, combos=combos, mode="random", seed=seed, candidates=total,
                      axes=dict(values)), []


# ------------------------------------------------------------------- identity, edges

def space_id(space: ParamSpace) -> str:
    """A sha256 hex digest of what a sweep runs (names, rows, mode, seed): resume identity."""
    h = hashlib.sha256()
    h.update(b"peak-space-v1\0")
    h.update("\0".join(space.names).encode("utf-8") + b"\0")
    combos = np.ascontiguousarray(space.combos, dtype="<f8")
    h.update(repr(combos.shape).encode("ascii") + b"\0")
    h.update(combos.tobytes())
    h.update(f"\0{space.mode}\0{space.seed}".encode("ascii"))
    return h.hexdigest()


def on_edge(space: ParamSpace, row: int) -> list[str]:
    """The params whose value in combination ``row`` is the lowest or highest of its axis.

    Only axes of at least three values count (a two-value axis is all edge; a pinned one has
    no inside). The axes are the grid's, in random mode too.
    """
    out = []
    for j, name in enumerate(space.names):
        axis = space.axes.get(name)
        if axis is None or len(axis) < 3:
            continue
        value = float(space.combos[row, j])
        if value in (float(np.min(axis)), float(np.max(axis))):
            out.append(name)
    return out


def describe(space: ParamSpace) -> dict[str, Any]:
    """A JSON-ready summary of a space (for sweep configs and ``--json`` output)."""
    return {"names": list(space.names), "mode": space.mode, "seed": space.seed,
            "candidates": space.candidates, "combinations": len(space),
            "axes": {k: [float(v) for v in a.tolist()] for k, a in space.axes.items()},
            "space_id": space_id(space)}

