"""The window and lag arithmetic property: the checker accepts exactly what is in range.

Random int arithmetic on random int params (``specgen.INT_FORMS``: sums, differences,
products, ``min``/``max``, a param written twice; ranges that start below zero too) goes into
a window (least 1, or 2 for a ``sample`` deviation) or a lag (least 0). The least value over
the params' grids is found by enumerating them (``specgen.form_least``, Python ints — not the
checker's interval arithmetic), and:

* if it is at least the least window or lag, the spec checks clean, and at a random point of
  the grid it evaluates bit for bit like the same spec with the literal written in, and like
  the reference interpreter;
* otherwise the checker refuses it with one error — T004 for a window, L001 for a lag — whose
  span is the expression and whose message names param values at which the expression,
  evaluated here, really is out of range.

Derandomized; 300 examples take about 10 s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from specgen import INT_FORMS, PARAM_SHAPES, ParamDef, ParamShape, _grid, form_least

from peakdsl.compile import models as m
from peakdsl.compile.artifacts import build_artifact
from peakdsl.engine.program import Program
from peakdsl.engine.reference import reference_evaluate
from peakdsl.lang import parser
from peakdsl.lang.checker import CheckedSpec, check_module
from peakdsl.lang.diagnostics import Diagnostic

SHAPES = (*PARAM_SHAPES["int"], ParamShape("-3", "3", None), ParamShape("-10", "10", "5"))


@dataclass(frozen=True)
class Slot:
    """Where the expression goes: ``{e}`` in a let, the least value it needs, the code that
    refuses less, and whether kernels compute it exactly in both evaluators."""

    template: str
    least: int
    code: str
    exact: bool = True


SLOTS = (Slot("highest(high, {e})", 1, "T004"), Slot("close[{e}]", 0, "L001"),
         Slot("stdev(close, {e}, sample)", 2, "T004", exact=False),
         Slot("ema(close, {e})", 1, "T004", exact=False))


Example = tuple[str, Slot, tuple[ParamDef, ParamDef], int, bool, dict[str, int]]


@st.composite
def examples(draw: st.DrawFn) -> Example:
    params = []
    for name in ("a", "b"):
        shape = draw(st.sampled_from(SHAPES))
        params.append(ParamDef(name, "int", shape, draw(st.sampled_from(_grid("int", shape)))))
    form = draw(st.integers(0, len(INT_FORMS) - 1))
    same = "{b}" in INT_FORMS[form][0] and draw(st.booleans())
    point = {p.name: int(draw(st.sampled_from(_grid("int", p.shape)))) for p in params}
    text = INT_FORMS[form][0].format(a="a", b="a" if same else "b")
    return text, draw(st.sampled_from(SLOTS)), (params[0], params[1]), form, same, point


def spec_text(slot: Slot, expr: str, params: tuple[ParamDef, ...]) -> str:
    lines = "\n    ".join(p.decl for p in params)
    return (f"strategy w {{\n    market BTC/EUR\n    timeframe 1h\n    {lines}\n"
            f"    let x = {slot.template.format(e=expr)}\n"
            f"    entry long when close > x\n}}\n")


def check(text: str) -> tuple[CheckedSpec, list[Diagnostic]]:
    parsed = parser.parse_text(text, "w.peak")
    assert parsed.module is not None, parsed.diagnostics
    spec, diags = check_module(parsed.module)
    return spec, [d for d in diags if d.is_error]


FRAME = pd.DataFrame({"open": 100 + np.sin(np.arange(80.0)), "high": 102 + np.cos(np.arange(80.0)),
                      "low": 98 - np.sin(np.arange(80.0)) ** 2, "close": 100 + np.arange(80.0) % 7,
                      "volume": np.ones(80)})


def evaluated(spec: CheckedSpec, text: str, params: dict[str, int]) -> np.ndarray:
    artifact = build_artifact(spec, text.encode(), "w.peak", {})
    assert isinstance(artifact, m.StrategyArtifact)
    return Program(artifact.config).signals(FRAME, {k: float(v) for k, v in params.items()}
                                            ).series["x"]


def witness(message: str) -> dict[str, int]:
    found = re.search(r" at ((?:[ab] = -?\d+(?:, )?)+)$", message)
    assert found, message
    return {k: int(v) for k, v in re.findall(r"([ab]) = (-?\d+)", found.group(1))}


def accepted(spec: CheckedSpec, text: str, literal_text: str, slot: Slot,
             point: dict[str, int]) -> None:
    """Bit for bit the result of the spec with the value written in, and the reference
    interpreter's."""
    got = evaluated(spec, text, point)
    literal_spec, errors = check(literal_text)
    assert errors == []
    assert np.array_equal(got, evaluated(literal_spec, literal_text, point), equal_nan=True)
    reference = reference_evaluate(spec, FRAME, {k: float(v) for k, v in point.items()})["x"]
    if slot.exact:
        assert np.array_equal(got, reference, equal_nan=True)
    else:
        np.testing.assert_allclose(got, reference, rtol=1e-9, equal_nan=True)


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(example=examples())
def test_the_checker_accepts_exactly_the_windows_and_lags_in_range(example: Example) -> None:
    expr, slot, params, form, same, point = example
    fn = INT_FORMS[form][1]
    least = form_least(form, params[0].shape, params[1].shape, same)
    text = spec_text(slot, expr, params)
    spec, errors = check(text)
    if least >= slot.least:
        assert errors == [], (text, [e.message for e in errors])
        literal = spec_text(slot, str(fn(point["a"], point["a" if same else "b"])), params)
        accepted(spec, text, literal, slot, point)
        return
    assert [e.code for e in errors] == [slot.code], (text, [e.message for e in errors])
    error = errors[0]
    assert text[error.span.start:error.span.end] == expr
    at = witness(error.message)
    assert fn(at["a"], at.get("a" if same else "b", 0)) < slot.least, error.message
