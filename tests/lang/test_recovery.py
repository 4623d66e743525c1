"""Error recovery (lang/syntax.py): every broken statement once, no cascades, the lost `{`."""

from __future__ import annotations

from peakdsl.lang.parser import parse_text
from peakdsl.lang.syntax import MAX_SYNTAX_ERRORS


def errors(text: str) -> list[tuple[str, int, int]]:
    result = parse_text(text)
    assert result.module is None
    return [(d.code, d.span.line, d.span.col) for d in result.diagnostics]


THREE = """\
strategy three {
    market BTC/EUR
    timeframe 1h
    let a = sma(close, 20) * * 2
    entry long when close > a)
    param n: int = 5 in 1..
    exit long when close < a
    size 10% of equity
}
"""


def test_three_independent_errors_are_all_reported() -> None:
    assert errors(THREE) == [("P001", 4, 30), ("P001", 5, 30), ("P001", 7, 5)]


def test_the_statements_after_an_error_are_still_read() -> None:
    # the error in line 4 does not hide the one in line 9, nor invent one in between
    text = THREE.replace("close > a)", "close > a").replace("in 1..", "in 1..9") \
        .replace("size 10% of equity", "size 10% of 5")
    assert errors(text) == [("P001", 4, 30), ("P001", 8, 17)]


def test_a_statement_that_runs_on_is_reported_where_the_next_one_starts() -> None:
    text = "strategy s {\n    let a = close +\n    let b = open\n    exit long when b\n}\n"
    result = parse_text(text)
    [d] = result.diagnostics
    assert (d.code, d.span.line, d.span.col, d.message) == ("P001", 3, 5, "unexpected `let`")
    assert "ends with `+`" in d.help
    assert [(lb.span.line, lb.span.col) for lb in d.labels] == [(2, 19)]


def test_an_error_inside_a_block_skips_the_block_only() -> None:
    text = ("strategy s {\n    execution { fill next_open fees > }\n"
            "    entry long when close >\n}\n")
    assert errors(text) == [("P001", 2, 37), ("P001", 4, 1)]


def test_the_block_never_closed_is_found_by_indentation() -> None:
    text = ("strategy s {\n    market BTC/EUR\n    execution {\n        fill next_open\n\n"
            "    entry long when close > open\n}\n")
    result = parse_text(text)
    [d] = result.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("P003", 3, 15)
    assert "never closed" in d.message


def test_an_unclosed_declaration_points_at_its_brace() -> None:
    text = "strategy s {\n    market BTC/EUR\n    execution { fill next_open }\n"
    assert errors(text) == [("P003", 1, 12)]


def test_a_missing_brace_of_the_last_block_is_that_block() -> None:
    text = "strategy s {\n    market BTC/EUR\n    execution { fill next_open\n}\n"
    assert errors(text) == [("P003", 3, 15)]


def test_errors_are_capped_per_file() -> None:
    body = "".join(f"    let x{i} = * 1\n" for i in range(MAX_SYNTAX_ERRORS + 10))
    found = errors(f"strategy s {{\n{body}}}\n")
    assert len(found) == MAX_SYNTAX_ERRORS
    assert [line for _, line, _ in found] == list(range(2, 2 + MAX_SYNTAX_ERRORS))


def test_a_broken_header_stops_at_the_first_error() -> None:
    assert errors("strategy Bad {\n    let = 1\n}\n") == [("P001", 1, 10)]
