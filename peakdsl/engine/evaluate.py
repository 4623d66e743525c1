"""Evaluate a compiled strategy graph on OHLCV columns.

The program from the artifact runs step by step: kernel steps call ``KERNELS`` (numpy /
numba), expression steps call numexpr on the compiler-generated string with an explicit
``local_dict`` of generated variable names and ``global_dict={}``. Warm-up bars (derived
from the graph for the given params) never signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numexpr as ne
import numpy as np

from ..compile import models as m
from ..compile.ops import apply
from ..lang.builtins import BUILTINS, Arg
from .kernels import KERNELS

COLUMNS = ("open", "high", "low", "close", "volume")
Array = np.ndarray[Any, Any]


class EvaluationError(ValueError):
    """Bad inputs to evaluation (missing columns, unknown or out-of-range params)."""


@dataclass(frozen=True)
class Signals:
    """Named series (lets), rule signals (warm-up masked) and the warm-up used."""

    series: dict[str, Array]
    rules: dict[str, Array]
    warmup: int
    params: dict[str, float]


def resolve_params(cfg: m.StrategyConfig,
                   overrides: Mapping[str, float] | None) -> dict[str, float]:
    """Defaults with overrides applied; unknown names and out-of-range values are errors."""
    values = {p.name: p.default for p in cfg.params}
    known = {p.name: p for p in cfg.params}
    for name, value in (overrides or {}).items():
        if name not in known:
            raise EvaluationError(f"unknown param `{name}`; params: {', '.join(known) or 'none'}")
        p = known[name]
        if not p.low <= value <= p.high:
            raise EvaluationError(f"`{name}` = {value:g} is outside {p.low:g}..{p.high:g}")
        values[name] = value
    return values


def columns_of(frame: Any) -> dict[str, Array]:
    """float64 arrays for open/high/low/close/volume from a DataFrame or a mapping."""
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise EvaluationError("missing columns: " + ", ".join(missing))
    return {c: np.ascontiguousarray(np.asarray(frame[c], dtype=np.float64)) for c in COLUMNS}


def _scalar(node: m.GraphNode, params: Mapping[str, float]) -> Any:
    if node.op == "param":
        p = params[str(node.value)]
        return p
    return node.value


def _kernel(node: m.GraphNode, values: dict[int, Any], nodes: list[m.GraphNode],
            params: Mapping[str, float], length: int) -> Array:
    if node.op == "lag":
        target, n = node.inputs
        return KERNELS["lag"](_broadcast(values[target], length),
                              int(_scalar(nodes[n], params)))
    builtin = BUILTINS[node.op]
    implicit = len(builtin.implicit)
    args: list[Any] = [values[i] for i in node.inputs[:implicit]]
    for (_, kind), i in zip(builtin.args, node.inputs[implicit:], strict=True):
        if kind is Arg.WINDOW:
            args.append(int(_scalar(nodes[i], params)))
        elif kind is Arg.SCALAR:
            args.append(float(values[i]))
        else:  # a series argument that happens to be constant (`sma(5, 10)`) is one
            args.append(_broadcast(values[i], length).astype(np.float64, copy=False))
    return KERNELS[node.op](*args, *builtin.mode_args(node.value))


def _leaf(node: m.GraphNode, cols: Mapping[str, Array], params: Mapping[str, float]) -> Any:
    if node.op == "source":
        return cols[str(node.value)]
    if node.op == "param":
        return np.float64(params[str(node.value)])
    if isinstance(node.value, bool):
        return np.bool_(node.value)
    return np.float64(node.value)


def evaluate(cfg: m.StrategyConfig, frame: Any, params: Mapping[str, float] | None = None
             ) -> Signals:
    """All lets and rule signals of ``cfg`` on ``frame`` for ``params`` (defaults otherwise)."""
    values_p = resolve_params(cfg, params)
    cols = columns_of(frame)
    nodes = cfg.graph.nodes
    values: dict[int, Any] = {n.id: _leaf(n, cols, values_p) for n in nodes
                              if n.op in ("source", "param", "const")}
    length = len(cols["close"])
    for step in cfg.graph.program:
        node = nodes[step.node]
        if step.kind == "kernel":
            values[node.id] = _kernel(node, values, nodes, values_p, length)
        elif step.kind == "scalar":
            values[node.id] = apply(node.op, *(values[i] for i in node.inputs))
        else:
            local = {name: values[i] for name, i in step.inputs.items()}
            values[node.id] = ne.evaluate(step.expr, local_dict=local, global_dict={})
    warmup = min(cfg.warmup.evaluate(values_p), length)
    series = {name: _broadcast(values[i], length) for name, i in cfg.graph.lets.items()}
    rules = {}
    for slot, i in cfg.graph.rules.items():
        signal = _broadcast(values[i], length).astype(bool, copy=True)
        signal[:warmup] = False
        rules[slot] = signal
    return Signals(series, rules, warmup, values_p)


def _broadcast(value: Any, length: int) -> Array:
    arr = np.asarray(value)
    return np.broadcast_to(arr, (length,)).copy() if arr.ndim == 0 else arr


def require_masks(cfg: m.StrategyConfig, params: Mapping[str, Any]
                  ) -> list[tuple[m.Require, Array]]:
    """Whether each ``require`` of ``cfg`` holds, for params given as numbers or as equally
    long columns (one row per combination): the same folded nodes and the same operators
    (``ops.apply``) as the signal graph, so a constraint means what it means in a rule."""
    nodes = cfg.graph.nodes
    values: dict[int, Any] = {}
    for node in nodes:
        if node.op == "param":
            values[node.id] = np.asarray(params[str(node.value)], dtype=np.float64)
        elif node.op == "const":
            values[node.id] = _leaf(node, {}, {})
    for step in cfg.graph.program:
        if step.kind == "scalar":
            node = nodes[step.node]
            values[node.id] = apply(node.op, *(values[i] for i in node.inputs))
    return [(req, np.asarray(values[req.node], dtype=bool)) for req in cfg.requires]
