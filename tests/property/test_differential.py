"""The differential property: a spec that `peak check` passes runs, and means what it reads.

For every generated spec (``specgen``) that checks clean (parse + ``check_module``, what
``api.compile_source`` and `peak check` run on one file), the user's path — compile
(``build_artifact``, the rest of ``api.compile_source``), `--set` overrides, evaluate,
simulate, metrics — must not raise, and the compiled evaluator must equal the slow
reference interpreter bar for bar:

* booleans: real booleans on both sides, equal exactly;
* floats: no ±inf anywhere (division by zero and ``log`` of a non-positive number are NaN,
  i.e. missing), equal NaN positions, values within 1e-9 relative to themselves or to the
  magnitudes that went into them (``rounding``: a difference of two prices may be off by
  rounding of the prices);
* bars within rounding of a decision (a tie, a divisor next to zero: ``rounding``) are not
  compared — two correct evaluators may go either way there; their share is measured;
* rules: the evaluator masks the warm-up bars, so the reference's rule is masked the same
  way before comparing (as ``tests/engine/test_evaluate.py`` does);
* the fast simulator agrees with ``reference_simulate`` on the evaluator's signals;
* `--set` overrides pass ``resolve_overrides`` exactly when the checker's scalar evaluator
  says every ``require`` holds for them (one meaning for constraints).

Specs the checker rejects are skipped and counted; the generator must keep that share low,
or the property would quietly test nothing, and every feature of the grammar must appear
in a spec that checked clean. Hypothesis runs derandomized without an example database, so
CI sees the same examples every time. Shrunk counterexamples live in
``regressions/cases.py`` and run as explicit tests, through ``api.compile_source``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from regressions.cases import CASES, Regression
from rounding import TOL, Judged, judge_reference
from specgen import Case, cases

from peakdsl import api
from peakdsl.backtest import sim_settings
from peakdsl.compile import models as m
from peakdsl.compile.artifacts import build_artifact
from peakdsl.data.candles import CandleSet
from peakdsl.data.frames import frame_keys, inputs_for
from peakdsl.engine.evaluate import Signals, evaluate
from peakdsl.engine.reference import (
    PositionRuleAt,
    reference_evaluate,
    reference_position_rules,
)
from peakdsl.engine.reference_sim import reference_simulate
from peakdsl.engine.simulate import simulate
from peakdsl.engine.stats import compute_metrics
from peakdsl.lang import ast
from peakdsl.lang.builtins import BUILTINS
from peakdsl.lang.checker import CheckedSpec, check_module
from peakdsl.lang.diagnostics import Diagnostic
from peakdsl.lang.parser import parse_text
from peakdsl.lang.scalar import ScalarError, eval_scalar
from peakdsl.overrides import resolve_overrides

Array = np.ndarray[Any, Any]
RTOL = 1e-9
CLEAN_SHARE = 0.85  # the generator measures ~0.95; below this it has drifted from the checker
DOUBTFUL_SHARE = 0.1  # bars within rounding of a decision are not compared (~5 %)

settings.register_profile(
    "peak-differential", max_examples=2500, derandomize=True, database=None, deadline=None,
    print_blob=False, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.large_base_example])
settings.register_profile("peak-differential-slow", settings.get_profile("peak-differential"),
                          max_examples=25_000)
CI = settings.get_profile("peak-differential")
SLOW = settings.get_profile("peak-differential-slow")

# ---------------------------------------------------------------- one example, end to end


def check(text: str) -> tuple[CheckedSpec, list[Diagnostic]]:
    """Parse and check as `peak check` does for one file; generated text always parses."""
    parsed = parse_text(text, "gen.peak")
    assert parsed.module is not None, f"the generator wrote unparsable text: {parsed.diagnostics}"
    return check_module(parsed.module)


@dataclass(frozen=True)
class Outcome:
    """What one example did: the checker's error codes (skipped) or the bars compared."""

    errors: tuple[str, ...] = ()
    bars: int = 0  # let and rule values compared
    doubtful: int = 0  # of those, within rounding of a decision (not compared)


def run_case(case: Case) -> Outcome:
    """Run ``case`` through every stage, comparing the evaluator with the reference."""
    spec, diags = check(case.spec)
    errors = tuple(sorted({d.code for d in diags if d.is_error}))
    if errors:
        return Outcome(errors)
    # what api.compile_source does once the text has checked clean (no second parse)
    artifact = build_artifact(spec, case.spec.encode(), "gen.peak", {})
    assert isinstance(artifact, m.StrategyArtifact)
    cfg = artifact.config
    params = overridden_params(cfg, spec, case.overrides)
    frame, markets = case.frame(), case.markets()
    signals = evaluate(cfg, compiled_inputs(cfg, frame, markets), params)
    judged = judge_reference(spec, frame, params, markets)
    doubtful = assert_same_signals(signals, reference_evaluate(spec, frame, params, markets),
                                   judged)
    simulate_both(cfg, case, signals, reference_position_rules(spec, frame, params, markets))
    return Outcome(bars=len(frame) * len(judged), doubtful=doubtful)


def compiled_inputs(cfg: m.StrategyConfig, frame: pd.DataFrame,
                    markets: Mapping[str, pd.DataFrame]) -> Any:
    """What a run gives the compiled graph (``data.frames.inputs_for``): the candles, and
    for a spec that reads frames (``@``) each frame's columns and index, the other market
    cut to the strategy's span."""
    if not frame_keys(cfg):
        return frame
    return inputs_for(cfg, candle_set(frame, cfg.market.symbol, cfg.timeframe, markets))


def candle_set(frame: pd.DataFrame, market: str, timeframe: str,
               markets: Mapping[str, pd.DataFrame]) -> CandleSet:
    """The candles as a run loads them: the strategy's, with the other markets'."""
    own = CandleSet.of(frame, market, timeframe, "generated")
    return own.with_others(tuple(CandleSet.of(f, symbol, timeframe, "generated")
                                 for symbol, f in markets.items()))


def overridden_params(cfg: m.StrategyConfig, spec: CheckedSpec, overrides: tuple[str, ...]
                      ) -> dict[str, float]:
    """Apply `--set` overrides; the engine rejects them iff the checker's evaluator does."""
    values, problems = resolve_overrides(cfg, overrides)
    merged = {p.name: p.default for p in spec.params} | values
    try:
        holds = all(eval_scalar(r.expr, merged) for r in spec.items(ast.Require))
    except ScalarError:
        return {}  # the checker cannot judge these values: use the defaults
    if holds:
        assert not problems, f"requires hold for {merged}; `--set` says {problems}"
        return values
    assert problems and all(d.code == "T010" for d in problems), (
        f"requires fail for {merged}; `--set` says {problems}")
    return {}


def assert_same_signals(signals: Signals, reference: Mapping[str, Array],
                        judged: Mapping[str, Judged]) -> int:
    """Every let and rule equal bar for bar; returns how many bars were left out as doubtful."""
    levels = {f"level {slot}": series for slot, series in signals.levels.items()}
    rules = {slot: rule for slot, rule in signals.rules.items()  # those reading the position
             if slot not in signals.position_rules}  # are compared by simulating
    assert set(signals.series) | set(rules) | set(levels) == set(reference) == set(judged)
    for name, fast in [*signals.series.items(), *levels.items()]:
        assert_same_series(name, fast, reference[name], judged[name])
    for slot, fast in rules.items():
        expected = np.asarray(reference[slot]).copy()
        expected[: signals.warmup] = False  # the evaluator masks the warm-up; so do we
        assert_same_series(f"{slot} (warm-up {signals.warmup})", fast, expected, judged[slot])
    return sum(int(j.doubt.sum()) for j in judged.values())


def assert_same_series(name: str, fast: Array, slow: Array, judged: Judged) -> None:
    """Exact booleans and NaN positions, floats to 1e-9 relative to the magnitudes that went
    in (``rounding.TOL * err``), except on bars within rounding of a decision."""
    assert fast.shape == slow.shape, f"{name}: shape {fast.shape} != {slow.shape}"
    sure = ~judged.doubt
    if slow.dtype == np.bool_ or fast.dtype == np.bool_:
        assert fast.dtype == slow.dtype == np.bool_, (
            f"{name}: a boolean must be a real boolean: evaluator {fast.dtype} {fast.tolist()},"
            f" reference {slow.dtype} {slow.tolist()}")
        _same_at(name, fast, slow, (fast != slow) & sure)
        return
    assert fast.dtype == slow.dtype == np.float64, f"{name}: {fast.dtype} / {slow.dtype}"
    for side, values in (("evaluator", fast), ("reference", slow)):
        assert not np.isinf(values).any(), (
            f"{name}: the {side} gives ±inf (missing values are NaN): {values.tolist()}")
    _same_at(name, fast, slow, (np.isnan(fast) != np.isnan(slow)) & sure)
    with np.errstate(invalid="ignore"):
        off = np.abs(fast - slow) > RTOL * np.abs(slow) + TOL * judged.err
    _same_at(name, fast, slow, off & sure)


def _same_at(name: str, fast: Array, slow: Array, bad: Array) -> None:
    bars = np.flatnonzero(bad)
    assert bars.size == 0, (
        f"{name} differs at bars {bars.tolist()[:10]}: evaluator {fast[bars[:10]].tolist()}, "
        f"reference {slow[bars[:10]].tolist()}\nevaluator {fast.tolist()}\n"
        f"reference {slow.tolist()}")


def simulate_both(cfg: m.StrategyConfig, case: Case, signals: Signals,
                  position_rules: Mapping[str, PositionRuleAt]) -> None:
    """The fast simulator runs, agrees with the reference simulator (with the rules that
    read the position evaluated from the rule as written), and metrics compute."""
    s = sim_settings(cfg, signals.params, signals.warmup)
    o, h, lo, c = (np.asarray(case.candles[k], dtype=np.float64) for k in ("open", "high",
                                                                          "low", "close"))
    fast = simulate(o, h, lo, c, signals.rules, s, levels=signals.levels,
                    position_rules=signals.position_rules)
    slow = reference_simulate(o, h, lo, c, signals.rules, s, signals.levels, position_rules)
    assert fast.held_back == slow.held_back, (fast.held_back, slow.held_back)
    assert fast.trade_count == slow.trade_count, (
        f"simulate: {fast.trade_count} trades, reference_simulate: {slow.trade_count}\n"
        f"{fast.trades}\n{slow.trades}")
    np.testing.assert_allclose(fast.equity, slow.equity, rtol=RTOL, atol=1e-9)
    np.testing.assert_allclose(fast.position, slow.position, rtol=RTOL, atol=1e-12)
    compute_metrics(fast, s, cfg.timeframe_seconds)


# ---------------------------------------------------------------- the property

# The int arithmetic specgen writes in windows and lags (``specgen.INT_FORMS``).
INT_FORM = (r"(?:2 \* p\d+|p\d+ [-+*] (?:1|3|p\d+)|\(p\d+ \+ 1\) \* 2|max\(p\d+ - 2, 1\)"
            r"|min\(p\d+, p\d+\) \+ 1|-\(1 - p\d+\) \* p\d+)")
# What "the whole grammar" means, as patterns over the text of specs that checked clean.
FEATURES: dict[str, str] = {
    **{f"builtin {name}": rf"\b{name}\(" for name in BUILTINS},
    **{f"operator {op}": rf"\s{re.escape(op)}\s" for op in
       ("+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=", "and", "or")},
    "not": r"\bnot\s", "if": r"\bif\s.*\bthen\b.*\belse\b", "unary minus": r"(^|[\s(])-\S",
    "lag literal": r"\]?\[\d+\]", "lag param": r"\[p\d+\]", "percent": r"\d%", "bps": r"\dbps",
    "true": r"\btrue\b", "false": r"\bfalse\b", "require": r"^\s*require\b",
    "let uses a let": r"^\s*let v\d+ = .*\bv\d+\b", "window param": r", p\d+\)",
    "int param": r": int =", "float param": r": float =", "percent param": r": percent =",
    "bps param": r": bps =", "short rules": r"^\s*entry short\b",
    "window arithmetic": rf", {INT_FORM}(?:, \w+)?\)", "lag arithmetic": rf"\[{INT_FORM}\]",
    "state": r"^\s*state s\d+ = ", "state read by a let": r"^\s*let v\d+ = .*\bs\d+\b",
    "stop by atr": r"^\s*(stop_loss|take_profit|trailing_stop) \S+ \* atr\(",
    "stop by a percentage series": r"^\s*(stop_loss|take_profit|trailing_stop) \S+ \* stdev\(",
    "stop by a price term": r"^\s*(stop_loss|take_profit|trailing_stop) (?!\S+ \* )(?!\d+%$)"
                            r"(?!p\d+$)\S",
    "size by an expression": r"^\s*size \S.* / stdev\(.* of equity$",
    **{f"trade rule {key}": rf"^\s*{key} \d" for key in
       ("min_hold", "max_hold", "cooldown after stop", "max_consecutive_losses")},
    "reversal flat": r"^\s*reversal flat$",
    "rule reading the position": r"^\s*exit \w+ when .*\b(bars_in_trade|entry_price|unrealized)\b",
    "entry from flat": r"^\s*entry \w+ when .*\bposition\b",
    **{f"mode {word}": rf"(, |\w\()\b{word}\)" for b in BUILTINS.values() if b.mode
       for word in b.mode.choices},
    "session_vwap": r"\bsession_vwap\(",
    # frames (``x@F``): own timeframes, another market, both; windows, indicators, crosses
    # and lets computed on a frame; frames meeting the strategy's bars in arithmetic and
    # comparisons, in a state, a stop or a size; a 15m strategy reading hours
    "frame of a timeframe": r"@\d+[mhdw]\b", "frame of another market": r"@[A-Z]+/[A-Z]+\b(?!@)",
    "frame of another market's timeframe": r"@[A-Z]+/[A-Z]+@\d+[mhdw]",
    "indicator on a frame": r"\)@", "cross on a frame": r"\bcross(over|under)\(.*\)@",
    "let on a frame": r"\bv\d+@", "lag of a frame": r"@\S+\[",
    "frame in arithmetic": r"@[\w/]+ [-+*/] ", "frame in a comparison": r"@[\w/]+ [<>=!]=? ",
    "frame in a state": r"^\s*state s\d+ = .*@",
    "frame in a stop": r"^\s*(stop_loss|take_profit|trailing_stop) .*@",
    "frame in a size": r"^\s*size .*@", "frame in a 15m strategy": r"(?s)@.*timeframe 15m",
}


def features(text: str) -> set[str]:
    return {name for name, pattern in FEATURES.items() if re.search(pattern, text, re.M)}


def run_property(profile: settings) -> tuple[Counter[str], set[str]]:
    """Run the property under ``profile``: counts (examples, clean, skip codes, bars compared
    and doubtful) and the features seen in clean specs."""
    seen: Counter[str] = Counter()
    covered: set[str] = set()

    @profile
    @given(case=cases())
    def prop(case: Case) -> None:
        outcome = run_case(case)
        seen.update(outcome.errors or ["clean"])
        seen.update(examples=1, bars=outcome.bars, doubtful=outcome.doubtful)
        if not outcome.errors:
            covered.update(features(case.spec))

    prop()
    return seen, covered


COUNTS = ("examples", "clean", "bars", "doubtful")


def assert_healthy(seen: Counter[str], covered: set[str]) -> None:
    """Mostly clean specs, every feature of the grammar exercised, few bars left out."""
    share = seen["clean"] / seen["examples"]
    skips = {k: v for k, v in seen.items() if k not in COUNTS}
    assert share > CLEAN_SHARE, f"only {share:.0%} of the specs checked clean: {skips}"
    assert "I001" not in skips, "the checker crashed on a generated spec"
    assert covered == set(FEATURES), f"never in a clean spec: {sorted(set(FEATURES) - covered)}"
    doubtful = seen["doubtful"] / seen["bars"]
    assert doubtful < DOUBTFUL_SHARE, f"{doubtful:.1%} of the bars were not compared"


def test_checked_specs_run_and_match_the_reference() -> None:
    seen, covered = run_property(CI)
    assert_healthy(seen, covered)
    assert seen["examples"] == CI.max_examples, seen  # none filtered, none cut short


@pytest.mark.slow
def test_checked_specs_run_and_match_the_reference_at_length(request: pytest.FixtureRequest
                                                              ) -> None:
    """Ten times the examples (~6 min on one core). CI's plain `pytest` runs every marker,
    so this one runs only when asked for: `pytest -m slow tests/property`."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip(f"{SLOW.max_examples:,} examples: run with `pytest -m slow`")
    seen, covered = run_property(SLOW)
    assert_healthy(seen, covered)


# ---------------------------------------------------------------- shrunk counterexamples


@pytest.mark.parametrize("regression", CASES, ids=[r.name for r in CASES])
def test_regression(regression: Regression) -> None:
    """A counterexample hypothesis found, with the literal values the target semantics give."""
    outcome = run_case(regression.case)
    if regression.rejected:
        assert outcome.errors, "the checker must reject this spec with a coded error"
        assert "I001" not in outcome.errors, outcome.errors
        return
    assert outcome.errors == (), f"the checker rejects a meaningful spec: {outcome.errors}"
    spec, _ = check(regression.case.spec)
    artifact = api.compile_source(regression.case.spec, "gen")
    assert isinstance(artifact, m.StrategyArtifact)
    params = overridden_params(artifact.config, spec, regression.case.overrides)
    signals = evaluate(artifact.config, regression.case.frame(), params)
    values = {**signals.series, **signals.rules}
    for name, want in regression.expect.items():
        got = values[name]
        if all(isinstance(v, bool) for v in want):
            assert got.dtype == np.bool_ and got.tolist() == want, (name, got)
        else:
            np.testing.assert_allclose(got, np.array(want, dtype=float), rtol=RTOL, atol=0,
                                       err_msg=name)
