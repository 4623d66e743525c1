"""Bar by bar equals whole-array, on random specs: the Program's two faces agree.

For every generated spec (``specgen``) that checks clean, ``Program.stream`` fed every bar
from the first one must return, at every bar, what ``Program.signals`` (``evaluate()``)
returns there; and a stream built from a history window must equal the whole-array run on
the data starting at that window (the live start: recursive kernels are seeded where the
data given to them starts, in both).

* floats: NaN at the same bars, values within 1e-12 relative (``RTOL``);
* booleans (lets and rules, the warm-up masked in both): identical, except on bars the
  rounding judge (``rounding.judge_reference``) calls within rounding of a decision — the
  judge runs only when a boolean differs, so on agreement the property costs no reference
  run.

The state forms repeat the numba loops operation for operation, so in practice nothing
differs at all; ``exact`` counts the values compared bit for bit and the test requires every
one of them (a tolerance ever needed would show up here first, not as a silent pass).
Hypothesis runs derandomized without an example database: CI sees the same 200 examples
every time; ``pytest -m slow tests/property`` runs ten times as many.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from rounding import Judged, judge_reference
from specgen import Case, cases
from test_differential import check, overridden_params

from peakdsl.compile import models as m
from peakdsl.compile.artifacts import build_artifact
from peakdsl.engine.program import Program, Signals
from peakdsl.engine.stream import BarSignals

Array = np.ndarray[Any, Any]
RTOL = 1e-12

settings.register_profile(
    "peak-parity", max_examples=200, derandomize=True, database=None, deadline=None,
    print_blob=False, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.large_base_example])
settings.register_profile("peak-parity-slow", settings.get_profile("peak-parity"),
                          max_examples=2000)
CI = settings.get_profile("peak-parity")
SLOW = settings.get_profile("peak-parity-slow")


def pushed(program: Program, frame: pd.DataFrame, params: Mapping[str, float],
           start: int = 0) -> list[BarSignals]:
    """The bars of ``frame`` from ``start`` on, from a stream given the bars before it."""
    stream = program.stream(params, history=frame.iloc[:start])
    cols = {c: frame[c].tolist() for c in frame.columns}
    return [stream.push({c: cols[c][i] for c in cols}) for i in range(start, len(frame))]


def compare(whole: Signals, bars: list[BarSignals], start: int,
            judge: Callable[[], Mapping[str, Judged]]) -> Counter[str]:
    """Every let and rule equal from bar ``start`` on (see the module docstring)."""
    seen: Counter[str] = Counter()
    judged: dict[str, Judged] = {}
    for name, values in {**whole.series, **whole.rules}.items():
        got = np.array([{**b.series, **b.rules}[name] for b in bars], dtype=values.dtype)
        want = values[start:]
        if values.dtype == np.bool_:
            off = got != want
            if off.any():
                judged = judged or dict(judge())
                off &= ~judged[name].doubt[start:]
            assert not off.any(), f"{name} differs at bars {start + np.flatnonzero(off)}"
            exact = got == want
        else:
            assert np.array_equal(np.isnan(got), np.isnan(want)), f"{name}: NaN positions"
            with np.errstate(invalid="ignore"):
                close = (got == want) | (np.abs(got - want) <= RTOL * np.abs(want))
            assert (close | np.isnan(want)).all(), f"{name}: {got} != {want}"
            exact = (got == want) | np.isnan(want)
            seen["finite"] += int(np.isfinite(want).sum())
        seen.update(values=len(want), exact=int(exact.sum()))
    return seen


def run_parity(case: Case) -> Counter[str]:
    """Both comparisons for one example; a spec the checker rejects is only counted."""
    spec, diags = check(case.spec)
    if any(d.is_error for d in diags):
        return Counter(examples=1)
    artifact = build_artifact(spec, case.spec.encode(), "gen.peak", {})
    assert isinstance(artifact, m.StrategyArtifact)
    params = overridden_params(artifact.config, spec, case.overrides) or None
    program = Program(artifact.config)
    frame = case.frame()
    seen = Counter(examples=1, clean=1)
    whole = program.signals(frame, params)
    seen += compare(whole, pushed(program, frame, whole.params), 0,
                    lambda: judge_reference(spec, frame, whole.params))
    later = frame.iloc[len(frame) // 3:].reset_index(drop=True)
    start = len(later) // 2
    whole_later = program.signals(later, whole.params)
    seen += compare(whole_later, pushed(program, later, whole.params, start), start,
                    lambda: judge_reference(spec, later, whole.params))
    return seen


def run_property(profile: settings) -> Counter[str]:
    seen: Counter[str] = Counter()

    @profile
    @given(case=cases(frames=False))  # frames bar by bar: tests/engine (the Stream's own)
    def prop(case: Case) -> None:
        seen.update(run_parity(case))

    prop()
    return seen


def assert_healthy(seen: Counter[str], examples: int) -> None:
    assert seen["examples"] == examples, seen  # none filtered, none cut short
    assert seen["clean"] > 0.85 * examples, seen  # the generator's clean share is ~0.95
    assert seen["finite"] > 0.2 * seen["values"], seen  # not a comparison of NaNs
    assert seen["exact"] == seen["values"], seen  # bit for bit, in fact


def test_stream_equals_whole_array_on_random_specs() -> None:
    assert_healthy(run_property(CI), CI.max_examples)


@pytest.mark.slow
def test_stream_equals_whole_array_on_random_specs_at_length(
        request: pytest.FixtureRequest) -> None:
    """Ten times the examples: run with `pytest -m slow tests/property`."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip(f"{SLOW.max_examples:,} examples: run with `pytest -m slow`")
    assert_healthy(run_property(SLOW), SLOW.max_examples)
