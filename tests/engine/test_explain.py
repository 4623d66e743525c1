"""A backtest with no trades says why: warm-up, a silent rule, or orders too small."""

from __future__ import annotations

import numpy as np
import pandas as pd

from peakdsl import api
from peakdsl.compile import models as m
from peakdsl.engine.evaluate import evaluate
from peakdsl.engine.explain import no_trade_notes
from peakdsl.engine.results import SimSettings
from peakdsl.engine.simulate import simulate


def run(rule: str, n: int = 200, settings: SimSettings | None = None) -> list[str]:
    text = (f"strategy s {{\n    market BTC/EUR\n    timeframe 1h\n    entry long when {rule}\n"
            "    exit long when close < open\n    size 10% of equity\n}\n")
    artifact = api.compile_source(text, "s")
    assert isinstance(artifact, m.StrategyArtifact)
    close = 100 + np.sin(np.arange(n) / 5.0) * 5
    frame = pd.DataFrame({"open": np.r_[close[0], close[:-1]], "high": close + 1,
                          "low": close - 1, "close": close, "volume": np.ones(n)})
    signals = evaluate(artifact.config, frame)
    sim = simulate(frame["open"], frame["high"], frame["low"], frame["close"], signals.rules,
                   settings or SimSettings(warmup=signals.warmup))
    return no_trade_notes(signals, sim, n)


def test_a_trading_run_has_no_notes() -> None:
    assert run("close > open") == []


def test_a_rule_that_never_fired_is_named() -> None:
    assert run("close > highest(high, 20)") == [
        "no trades: `entry long` never fired on these 200 bars (after the 19-bar warm-up)"]


def test_a_warm_up_as_long_as_the_data() -> None:
    assert run("close > sma(close, 500)") == [
        "no trades: the warm-up (200 bars) is as long as the data (200 bars); use more data "
        "or shorter windows"]


def test_orders_too_small_to_place() -> None:
    notes = run("close > open", settings=SimSettings(min_notional=1e9))
    assert len(notes) == 1 and "no order was placed" in notes[0]
