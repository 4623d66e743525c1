"""peakdsl.lsp.locate: the word under the cursor and its role, from the AST or the words."""

from __future__ import annotations

import pytest

from peakdsl.lang.parser import parse_text
from peakdsl.lsp.locate import Found, locate, setting_table

STRATEGY = """\
strategy probe {
    market BTC/EUR
    timeframe 1h
    param fast: int = 10 in 2..50
    let ma = stdev(close, fast, sample)
    entry long when crossover(close, ma) and not falling(ma[1], 3)
    size 10% of equity
    execution { fill next_open fees 10bps }
}
"""

PORTFOLIO = """\
portfolio book {
    capital 10000 EUR
    component trend weight 100% with { fast = 20 }
    risk limits
    robustness { stress [crash, fee_x2] }
}
"""

RISK = """\
risk limits {
    max_order_notional 1000 EUR
    alerts {
        slack { url_env "HOOK" severity warning }
    }
}
"""


def at(text: str, needle: str, shift: int = 0) -> Found | None:
    """Locate at the ``shift``-th character of the first ``needle`` in ``text``."""
    module = parse_text(text).module
    assert module is not None
    return locate(module, text, text.index(needle) + shift)


@pytest.mark.parametrize(("text", "needle", "role", "word"), [
    (STRATEGY, "probe", "decl", "probe"),
    (STRATEGY, "market", "key", "market"),
    (STRATEGY, "fast:", "symbol", "fast"),
    (STRATEGY, "int =", "param_type", "int"),
    (STRATEGY, "ma =", "symbol", "ma"),
    (STRATEGY, "stdev", "function", "stdev"),
    (STRATEGY, "close, fast", "name", "close"),
    (STRATEGY, "fast, sample", "name", "fast"),
    (STRATEGY, "crossover", "function", "crossover"),
    (STRATEGY, "ma[1]", "name", "ma"),
    (STRATEGY, "equity", "basis", "equity"),
    (STRATEGY, "execution", "block", "execution"),
    (STRATEGY, "fees", "key", "fees"),
    (STRATEGY, "next_open", "choice", "next_open"),
    (PORTFOLIO, "trend", "reference", "trend"),
    (PORTFOLIO, "fast =", "override", "fast"),
    (PORTFOLIO, "limits", "reference", "limits"),
    (PORTFOLIO, "crash", "choice", "crash"),
    (RISK, "slack", "block", "slack"),
    (RISK, "severity", "key", "severity"),
    (RISK, "warning", "choice", "warning"),
])
def test_each_role_is_found_from_the_ast(text: str, needle: str, role: str, word: str) -> None:
    found = at(text, needle, 1)
    assert found is not None
    assert (found.role, found.word) == (role, word)
    assert text[found.start:found.end] == word


def test_the_cursor_just_after_a_word_still_finds_it() -> None:
    found = at(STRATEGY, "stdev", len("stdev"))
    assert found is not None and found.word == "stdev"


def test_blocks_owners_and_calls_are_recorded() -> None:
    fees = at(STRATEGY, "fees")
    assert fees is not None and fees.blocks == ("execution",)
    slack_key = at(RISK, "url_env")
    assert slack_key is not None and slack_key.blocks == ("alerts", "slack")
    mode = at(STRATEGY, "sample")
    assert mode is not None and mode.call is not None and mode.call.func == "stdev"
    override = at(PORTFOLIO, "fast =")
    assert override is not None and override.owner == "trend"
    choice = at(STRATEGY, "next_open")
    assert choice is not None and choice.owner == "fill"


@pytest.mark.parametrize("needle", ["10bps", "  ", "2..50", "{"])
def test_literals_and_gaps_find_nothing(needle: str) -> None:
    assert at(STRATEGY, needle) is None


def test_without_an_ast_the_words_are_read() -> None:
    text = "portfolio book {\n  component trend weight\n  let x = sma(close, \n"
    assert parse_text(text).module is None
    assert locate(None, text, text.index("sma") + 1) == Found(
        "function", "sma", text.index("sma"), text.index("sma") + 3)
    found = locate(None, text, text.index("trend") + 2)
    assert found is not None and (found.role, found.owner) == ("reference", "component")
    found = locate(None, text, text.index("close") + 2)
    assert found is not None and found.role == "name"
    comment = "strategy x {\n  # sma(close)\n"
    assert locate(None, comment, comment.index("sma") + 1) is None


def test_setting_tables_by_block_path() -> None:
    assert "market" in setting_table("strategy", ())
    assert "fees" in setting_table("strategy", ("execution",))
    assert "url_env" in setting_table("risk", ("alerts", "slack"))
    assert setting_table("strategy", ("nowhere",)) == {}
    assert setting_table("", ()) == {}
