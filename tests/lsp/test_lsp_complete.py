"""peakdsl.lsp.cursor and complete: the context at the cursor and what fits there.

Texts mark the cursor with ``|``; most are half-typed (they do not parse), as in an editor.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sample_specs import LIMITS

from peakdsl.lang.builtins import BUILTINS, SOURCES
from peakdsl.lang.fmt import SPELLED
from peakdsl.lang.schema import BLOCKS, EXECUTION_SETTINGS, METRICS, STRATEGY_SETTINGS, TIMEFRAMES
from peakdsl.lsp.analysis import ProjectView, read_document
from peakdsl.lsp.complete import Completion, complete
from peakdsl.lsp.cursor import Cursor, cursor_at

TREND = """\
strategy trend {
    market BTC/EUR
    timeframe 1h
    param fast: int = 10 in 2..50
    param stop: percent = 3% in 1%..9%
    let ma = sma(close, fast)
    entry long when crossover(close, ma)
    size 10% of equity
}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for rel, text in {"specs/strategies/trend.peak": TREND,
                      "specs/risk/limits.peak": LIMITS}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, "utf-8")
    return tmp_path


def cursor(marked: str) -> Cursor:
    offset = marked.index("|")
    return cursor_at(marked.replace("|", "", 1), offset)


def items(marked: str, path: Path = Path("/nowhere/specs/x.peak")) -> list[Completion]:
    offset = marked.index("|")
    doc = read_document(marked.replace("|", "", 1), path)
    return complete(doc, offset, ProjectView(doc))


def labels(marked: str, path: Path = Path("/nowhere/specs/x.peak")) -> list[str]:
    return [c.label for c in items(marked, path)]


@pytest.mark.parametrize(("marked", "where", "key"), [
    ("|", "top", ""),
    ("strategy |", "decl_name", ""),
    ("strategy x {\n    |", "statement", ""),
    ("strategy x {\n    market BTC/EUR\n    ti|", "statement", ""),
    ("strategy x {\n    let a = |", "expression", ""),
    ("strategy x {\n    entry long when a > 1 and\n        |", "expression", ""),
    ("strategy x {\n    param n: |", "param_type", ""),
    ("strategy x {\n    exit |", "side", ""),
    ("strategy x {\n    exit short |", "when", ""),
    ("strategy x {\n    size 5% of |", "basis", ""),
    ("strategy x {\n    timeframe |", "value", "timeframe"),
    ("strategy x {\n    execution { fill close f|", "statement", ""),
    ("strategy x {\n    execution {\n        fill |", "value", "fill"),
    ("strategy x {\n    let a = close |", "after", ""),
    ("strategy x {\n    # let a = |", "none", ""),
    ('strategy x {\n    description "a |', "none", ""),
    ("strategy x {\n}\n|", "none", ""),
    ("portfolio p {\n    component |", "reference", "component"),
    ("portfolio p {\n    risk |", "reference", "risk"),
    ("portfolio p {\n    component t weight 5% with { |", "override", "t"),
    ("portfolio p {\n    component t weight 5% with { a = 1, |", "override", "t"),
    ("portfolio p {\n    robustness { stress [crash, |", "value", "stress"),
    ("portfolio p {\n    rebalance drift |", "value", "rebalance_drift"),
])
def test_the_context_at_the_cursor(marked: str, where: str, key: str) -> None:
    found = cursor(marked)
    assert (found.where, found.key) == (where, key)


def test_the_cursor_knows_kind_blocks_call_and_prefix() -> None:
    found = cursor("risk r {\n    alerts {\n        slack { sev|")
    assert (found.kind, found.blocks, found.prefix) == ("risk", ("alerts", "slack"), "sev")
    found = cursor("strategy x {\n    let a = bb_upper(close, sma(close, 5), 2, |")
    assert (found.where, found.call, found.arg) == ("expression", "bb_upper", 3)
    found = cursor("strategy x {\n    market BTC/EUR\n    |")
    assert found.given == frozenset({"market"})


def test_a_new_file_offers_each_declaration_named_after_it() -> None:
    found = items("|", Path("/nowhere/specs/my_trend.peak"))
    assert [c.label for c in found] == ["strategy", "portfolio", "risk", "promotion"]
    assert found[0].insert == "strategy ${1:my_trend} {\n\t$0\n}"
    assert labels("strategy |", Path("/nowhere/my_trend.peak")) == ["my_trend"]


def test_statements_settings_and_blocks_of_a_strategy() -> None:
    got = labels("strategy x {\n    market BTC/EUR\n    |")
    assert got[:7] == ["param", "require", "let", "state", "entry", "exit", "size"]
    expected = [SPELLED.get(k, k) for k in STRATEGY_SETTINGS if k != "market"] + \
        list(BLOCKS["strategy"])  # `cooldown after stop` in words
    assert got[7:] == expected


def test_a_block_offers_its_settings_not_yet_given() -> None:
    got = labels("strategy x {\n    execution {\n        fees 10bps\n        |")
    assert got == [k for k in EXECUTION_SETTINGS if k != "fees"]


def test_sinks_are_blocks_inside_alerts() -> None:
    assert labels("risk r {\n    alerts {\n        |") == \
        ["throttle", "queue", "log", "stderr", "webhook", "slack", "apprise"]
    assert labels("risk r {\n    alerts { slack { |") == ["url_env", "severity"]


def test_a_setting_snippet_carries_its_example_value() -> None:
    by_label = {c.label: c for c in items("strategy x {\n    |")}
    assert by_label["stop_loss"].insert == "stop_loss ${1:3%}"
    assert by_label["execution"].insert == "execution {\n\t$0\n}"
    assert "percent" in by_label["stop_loss"].detail
    drift = {c.label: c for c in items("portfolio p {\n    |")}["rebalance drift"]
    assert drift.insert == "rebalance drift ${1:5%}"


def test_an_expression_offers_symbols_sources_and_builtins() -> None:
    got = labels(TREND.replace("    size", "    exit long when |\n    size"))
    assert got[:3] == ["fast", "stop", "ma"]
    assert got[3:3 + len(SOURCES)] == list(SOURCES)
    assert set(BUILTINS) <= set(got)


def test_lets_below_and_the_let_being_defined_are_not_offered() -> None:
    text = "strategy x {\n    let a = close\n    let b = |\n    let c = open\n}"
    got = labels(text)
    assert "a" in got and "b" not in got and "c" not in got


def test_a_builtin_completes_to_its_signature_snippet() -> None:
    sma = next(c for c in items("strategy x {\n    let a = |") if c.label == "sma")
    assert (sma.kind, sma.detail, sma.insert) == ("function", "sma(x, n)", "sma(${1:x}, ${2:n})")
    assert "simple moving average" in sma.doc
    true_range = next(c for c in items("strategy x {\n    let a = |") if c.label == "true_range")
    assert true_range.insert == "true_range()"


def test_the_mode_slot_offers_modes_only() -> None:
    assert labels("strategy x {\n    let a = stdev(close, 20, |") == ["population", "sample"]
    assert labels("strategy x {\n    let a = adx(14, |") == ["peak", "talib"]
    assert "sample" not in labels("strategy x {\n    let a = stdev(close, |")


def test_a_promotion_expression_offers_metrics() -> None:
    assert labels("promotion g {\n    require |") == list(METRICS)


def test_setting_values() -> None:
    assert labels("strategy x {\n    timeframe |") == list(TIMEFRAMES)
    assert labels("strategy x {\n    execution { fill |") == ["next_open", "close"]
    assert labels("strategy x {\n    calendar |") == ["always", "weekdays"]
    stop = TREND.replace("    size", "    stop_loss |\n    size")
    assert labels(stop) == ["stop", "3%"]  # the percent param, then the example
    assert labels("portfolio p {\n    robustness { jitter |") == ["true", "false"]


def test_words_after_keywords() -> None:
    assert labels("strategy x {\n    param n: |") == ["int", "float", "percent", "bps"]
    assert labels("strategy x {\n    entry |") == ["long", "short"]
    assert labels("strategy x {\n    entry long |") == ["when"]
    assert labels("strategy x {\n    size 5% of |") == ["equity"]
    assert labels("strategy x {\n    # |") == []
    assert labels("strategy x {\n    let a = close |")[:2] == ["and", "or"]


def test_references_list_the_project_specs_of_the_right_kind(root: Path) -> None:
    here = root / "specs" / "portfolios" / "book.peak"
    assert labels("portfolio book {\n    component |", here) == ["trend"]
    assert labels("portfolio book {\n    risk |", here) == ["limits"]


def test_overrides_list_the_component_params(root: Path) -> None:
    here = root / "specs" / "portfolios" / "book.peak"
    found = items("portfolio book {\n    component trend weight 100% with { |", here)
    assert [c.label for c in found] == ["fast", "stop"]
    assert found[0].detail == "param fast: int = 10 in 2..50"
    assert items("portfolio book {\n    component nothing weight 100% with { |", here) == []
