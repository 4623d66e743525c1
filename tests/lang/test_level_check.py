"""Stops and sizes written as expressions (``lang.levels``): checked units, compiled slots."""

from __future__ import annotations

import pytest

from peakdsl.api import compile_source
from peakdsl.compile import models as m
from peakdsl.lang.checker import check_module
from peakdsl.lang.parser import parse_text


def strategy(*lines: str) -> str:
    body = "\n    ".join(["entry long when close > open", *lines])
    return f"strategy s {{\n    market BTC/EUR\n    timeframe 1h\n    {body}\n}}\n"


def diagnostics(*lines: str) -> list[tuple[str, str]]:
    parsed = parse_text(strategy(*lines), "s.peak")
    assert parsed.module is not None
    return [(d.code, d.message) for d in check_module(parsed.module)[1]]


def errors(*lines: str) -> list[str]:
    return [code for code, _ in diagnostics(*lines) if code[0] in "LNPTU"]


@pytest.mark.parametrize("line", [
    "stop_loss 2 * atr(14)",  # a price distance
    "stop_loss 2 * stdev(roc(close, 1), 20)",  # a percentage series: twice a percentage
    "take_profit abs(close - sma(close, 20))",
    "trailing_stop 3 * atr(14)",
    "stop_loss atr(14) * 1.5",
    "size min(20% / (stdev(roc(close, 1), 48) * sqrt(8760)), 100%) of equity",
    "size 0.5 * 50% of equity",  # constant: a percentage scaled by a number
])
def test_expressions_of_the_right_unit_check_clean(line: str) -> None:
    assert errors(line) == []


@pytest.mark.parametrize(("line", "code", "words"), [
    ("stop_loss 2 * atr(14) / close", "T002", "found a number series"),
    ("stop_loss rsi(close, 14)", "T002", "found a 0–100 oscillator series"),
    ("take_profit close > open", "T001", "found a boolean series"),
    ("trailing_stop volume", "T002", "found a volume series"),
    ("size atr(14) of equity", "T002", "fraction of equity to commit, found a price series"),
    ("size close > open of equity", "T001", "found a boolean series"),
    ("stop_loss 2 * nope(14)", "N002", "nope"),
])
def test_expressions_of_another_unit_are_refused(line: str, code: str, words: str) -> None:
    found = diagnostics(line)
    assert [c for c, _ in found if c[0] in "NT"] == [code], found
    assert words in next(msg for c, msg in found if c == code)


def test_a_series_size_still_needs_its_basis_and_a_percent_setting_its_bounds() -> None:
    assert errors("size 2 * atr(14) / close") == ["T001"]
    assert errors("stop_loss 150%") == ["T009"]  # literals keep their setting checks
    assert errors("stop_loss fast", "param fast: int = 5 in 2..9") == ["T001"]  # a param


def test_a_let_read_only_by_a_stop_is_used() -> None:
    codes = [c for c, _ in diagnostics("let n = atr(14)", "stop_loss 2 * n")]
    assert "W002" not in codes


def compiled(*lines: str) -> m.StrategyConfig:
    art = compile_source(strategy(*lines))
    assert isinstance(art, m.StrategyArtifact)
    return art.config


def test_each_level_compiles_to_its_engine_slot_and_leaves_the_scalar_unset() -> None:
    cfg = compiled("stop_loss 2 * atr(14)", "take_profit 5%",
                   "trailing_stop 2 * stdev(roc(close, 1), 20)", "size 50% * 2 of equity")
    assert set(cfg.graph.levels) == {"stop_loss_distance", "trailing_stop", "size"}
    assert cfg.stop_loss is None and cfg.trailing_stop is None
    assert cfg.take_profit == m.Scalar(const=0.05)
    assert cfg.sizing == m.Sizing(mode="equity_fraction", value=None)
    units = {slot: cfg.graph.nodes[i].unit for slot, i in cfg.graph.levels.items()
             if slot != "size"}
    assert units == {"stop_loss_distance": "price", "trailing_stop": "percent"}


def test_the_warm_up_covers_what_an_entry_reads() -> None:
    """An entry at the first bar after the warm-up already has its stop: the warm-up is
    the longest lookback among the rules and the levels (here atr(30) > the rule's 1)."""
    assert compiled("stop_loss 2 * atr(30)").warmup_bars >= 30
    assert compiled("stop_loss 2%").warmup_bars < 5
