"""Evaluate a compiled strategy graph on OHLCV columns: ``evaluate()``, the entry point that
backtests, walk-forward and reports use, and ``require_masks`` for param constraints.

The evaluation itself is ``program.Program`` (planned once, run whole-array, with a shared
cache in sweeps, or bar by bar for live); this module keeps the stable names callers
import. Kernel steps call ``KERNELS`` (numpy / numba), expression steps call numexpr on the
compiler-generated string with an explicit ``local_dict`` of generated variable names and
``global_dict={}``. Warm-up bars (derived from the graph for the given params) never signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..compile import models as m
from ..compile.ops import apply
from .program import (
    COLUMNS,
    Array,
    EvaluationError,
    Program,
    Signals,
    columns_of,
    leaf_value,
    resolve_params,
)

__all__ = ["COLUMNS", "Array", "EvaluationError", "Signals", "columns_of", "evaluate",
           "require_masks", "resolve_params"]


def evaluate(cfg: m.StrategyConfig, frame: Any, params: Mapping[str, float] | None = None
             ) -> Signals:
    """All lets and rule signals of ``cfg`` on ``frame`` for ``params`` (defaults otherwise)."""
    return Program.plan(cfg).signals(frame, params)


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
            values[node.id] = leaf_value(node, {}, {})
    for step in cfg.graph.program:
        if step.kind == "scalar":
            node = nodes[step.node]
            values[node.id] = apply(node.op, *(values[i] for i in node.inputs))
    return [(req, np.asarray(values[req.node], dtype=bool)) for req in cfg.requires]
