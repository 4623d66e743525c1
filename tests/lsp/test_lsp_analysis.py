"""peakdsl.lsp.analysis: problems as `peak check` reports them, hover, definition, formatting.

Every project here is a scratch folder with specs/; results are compared with literal
expectations and with `peak check` itself (``api.check``), the independent implementation
of the same diagnostics.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sample_specs import LIMITS

from peakdsl import api
from peakdsl.lsp.analysis import (
    Document,
    Edit,
    Location,
    ProjectView,
    definition,
    format_edit,
    hover,
    problems,
    read_document,
)
from peakdsl.lsp.specs import project_specs
from peakdsl.lsp.text import Lines, Pos, Range

TREND = """\
strategy trend {
    description "Close above its SMA"
    market BTC/EUR
    timeframe 1h
    param fast: int = 10 in 2..50
    let ma = sma(close, fast)
    entry long when crossover(close, ma)
    exit long when crossunder(close, ma)
    size 10% of equity
}
"""
BOOK = """\
portfolio book {
    capital 10000 EUR
    component trend weight 100% with { fast = 20 }
    risk limits
}
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel, text in {"specs/strategies/trend.peak": TREND, "specs/risk/limits.peak": LIMITS,
                      "specs/portfolios/book.peak": BOOK}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, "utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def doc_at(root: Path, rel: str, text: str | None = None) -> Document:
    path = root / rel
    return read_document(path.read_text("utf-8") if text is None else text, path)


def offset_of(text: str, needle: str, shift: int = 1) -> int:
    return text.index(needle) + shift


# ---------------------------------------------------------------- problems


def test_a_clean_project_has_no_problems(root: Path) -> None:
    for rel in ("specs/strategies/trend.peak", "specs/portfolios/book.peak",
                "specs/risk/limits.peak"):
        assert problems(doc_at(root, rel)) == []


def test_problems_are_what_peak_check_reports_on_the_saved_file(root: Path) -> None:
    broken = TREND.replace("sma(close, fast)", "smaa(close, fast)").replace("10%", "10")
    path = root / "specs/strategies/trend.peak"
    path.write_text(broken, "utf-8")
    lines = Lines.of(broken)
    expected = [(d.code, d.message, lines.span(d.span))
                for d in api.check([str(path)]).diagnostics]
    found = [(p.code, p.message.split("\n")[0], p.range) for p in problems(doc_at(root, str(
        path.relative_to(root))))]
    assert found == expected
    assert {"N002", "T002", "W001"} == {code for code, _, _ in found}


def test_a_problem_carries_severity_help_and_range(root: Path) -> None:
    text = TREND.replace("sma(close, fast)", "smaa(close, fast)")
    found = {p.code: p for p in problems(doc_at(root, "specs/strategies/trend.peak", text))}
    unknown = found["N002"]
    assert unknown.severity == "error"
    assert unknown.message == "unknown function `smaa`\ndid you mean `sma`?"
    assert unknown.range == Range(Pos(5, 13), Pos(5, 17))
    assert found["W001"].severity == "warning"


def test_a_syntax_error_still_yields_diagnostics(root: Path) -> None:
    text = TREND.replace("entry long when", "entry long when (")
    found = problems(doc_at(root, "specs/strategies/trend.peak", text))
    assert found and found[0].code.startswith("P")
    assert found[0].range.start.line >= 6


def test_the_file_name_is_checked_against_the_declaration(root: Path) -> None:
    text = TREND.replace("strategy trend", "strategy trend_v2")
    found = problems(doc_at(root, "specs/strategies/trend.peak", text))
    assert [p.code for p in found] == ["N005"]


def test_a_portfolio_reference_is_resolved_in_the_project(root: Path) -> None:
    text = BOOK.replace("risk limits", "risk limitz").replace("fast = 20", "fast = 99")
    found = problems(doc_at(root, "specs/portfolios/book.peak", text))
    assert [p.code for p in found] == ["T010", "N006"]
    assert "did you mean `limits`?" in found[1].message


def test_related_information_points_into_the_other_file(root: Path) -> None:
    text = BOOK.replace("component trend", "component limits")
    found = problems(doc_at(root, "specs/portfolios/book.peak", text))
    assert [p.code for p in found] == ["N007"]
    related = found[0].related[0]
    assert related.path == root / "specs/risk/limits.peak"
    assert related.range == Range(Pos(0, 5), Pos(0, 11))


def test_outside_a_project_only_the_file_itself_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "loose.peak"
    path.write_text(BOOK, "utf-8")
    assert problems(read_document(BOOK, path)) == []  # references unresolved, not reported


def test_a_porting_fix_becomes_an_edit(root: Path) -> None:
    text = TREND.replace("crossover(close, ma)", "close = ma")
    found = [p for p in problems(doc_at(root, "specs/strategies/trend.peak", text))
             if p.fix is not None]
    assert found, "expected a diagnostic with a machine-applicable fix"
    fix = found[0].fix
    assert fix is not None and fix.new_text == "=="
    lines = Lines.of(text)
    assert text[lines.offset(fix.range.start):lines.offset(fix.range.end)] == "="
    assert found[0].fix_title.startswith(found[0].code)


# ---------------------------------------------------------------- hover


def hover_text(root: Path, rel: str, needle: str, text: str | None = None) -> str | None:
    doc = doc_at(root, rel, text)
    found = hover(doc, offset_of(doc.text, needle), ProjectView(doc))
    return found.markdown if found else None


def test_hover_on_a_builtin_shows_signature_unit_and_doc(root: Path) -> None:
    text = hover_text(root, "specs/strategies/trend.peak", "sma(")
    assert text == ("```peak\nsma(x, n)\n```\n\nsimple moving average of the last n bars"
                    "\n\nresult: the unit of `x`\n\nexample: `sma(close, 20)`")


def test_hover_on_a_param_use_shows_its_declaration(root: Path) -> None:
    text = hover_text(root, "specs/strategies/trend.peak", "fast)")
    assert text == "```peak\nparam fast: int = 10 in 2..50\n```"


def test_hover_on_a_let_shows_its_expression_and_type(root: Path) -> None:
    text = hover_text(root, "specs/strategies/trend.peak", "ma)")
    assert text == "```peak\nlet ma = sma(close, fast)\n```\n\na price series"


def test_hover_on_a_setting_shows_its_description(root: Path) -> None:
    text = hover_text(root, "specs/strategies/trend.peak", "timeframe")
    assert text is not None and text.startswith("```peak\ntimeframe 1h\n```\n\nbar interval")
    assert "required" in text


def test_hover_on_a_source_and_a_basis(root: Path) -> None:
    assert hover_text(root, "specs/strategies/trend.peak", "close,") == \
        "source `close` — a price series: the bar's close"
    text = hover_text(root, "specs/strategies/trend.peak", "equity")
    assert text is not None and text.startswith("`equity`")


def test_hover_on_a_reference_describes_the_other_spec(root: Path) -> None:
    text = hover_text(root, "specs/portfolios/book.peak", "trend")
    assert text == "strategy `trend`\n\nClose above its SMA\n\n`specs/strategies/trend.peak`"


def test_hover_on_an_override_shows_the_components_param(root: Path) -> None:
    text = hover_text(root, "specs/portfolios/book.peak", "fast")
    assert text == "```peak\nparam fast: int = 10 in 2..50\n```\n\nparam of `trend`"


def test_hover_while_the_text_does_not_parse(root: Path) -> None:
    text = TREND.replace("    size 10% of equity", "    entry short when ma > fast and")
    assert hover_text(root, "specs/strategies/trend.peak", "fast and", text) == \
        "```peak\nparam fast: int = 10 in 2..50\n```"
    assert hover_text(root, "specs/strategies/trend.peak", "1h", text) is None


def test_hover_on_a_metric_in_a_promotion(root: Path) -> None:
    text = "promotion gate {\n    require sharpe >= 1\n}\n"
    hovered = hover_text(root, "specs/risk/gate.peak", "sharpe", text)
    assert hovered is not None and hovered.startswith("metric `sharpe`")


# ---------------------------------------------------------------- definition


def where(root: Path, rel: str, needle: str, shift: int = 1) -> Location | None:
    doc = doc_at(root, rel)
    return definition(doc, offset_of(doc.text, needle, shift), ProjectView(doc))


def test_a_param_or_let_use_goes_to_its_declaration(root: Path) -> None:
    trend = root / "specs/strategies/trend.peak"
    assert where(root, "specs/strategies/trend.peak", "fast)") == \
        Location(trend, Range(Pos(4, 10), Pos(4, 14)))
    assert where(root, "specs/strategies/trend.peak", "ma)") == \
        Location(trend, Range(Pos(5, 8), Pos(5, 10)))


def test_a_component_goes_to_the_strategy_file(root: Path) -> None:
    assert where(root, "specs/portfolios/book.peak", "trend") == \
        Location(root / "specs/strategies/trend.peak", Range(Pos(0, 9), Pos(0, 14)))
    assert where(root, "specs/portfolios/book.peak", "limits") == \
        Location(root / "specs/risk/limits.peak", Range(Pos(0, 5), Pos(0, 11)))


def test_an_override_goes_to_the_param_in_the_strategy(root: Path) -> None:
    assert where(root, "specs/portfolios/book.peak", "fast") == \
        Location(root / "specs/strategies/trend.peak", Range(Pos(4, 10), Pos(4, 14)))


def test_builtins_and_sources_have_no_definition(root: Path) -> None:
    assert where(root, "specs/strategies/trend.peak", "sma(") is None
    assert where(root, "specs/strategies/trend.peak", "close,") is None


def test_the_editors_unsaved_text_wins_over_the_file(root: Path) -> None:
    trend = (root / "specs/strategies/trend.peak").resolve()
    edited = "# moved down\n" + TREND
    doc = doc_at(root, "specs/portfolios/book.peak")
    found = definition(doc, offset_of(doc.text, "fast"), ProjectView(doc, {trend: edited}))
    assert found == Location(trend, Range(Pos(5, 10), Pos(5, 14)))


# ---------------------------------------------------------------- formatting and specs


def test_formatting_is_one_edit_of_the_whole_document(root: Path) -> None:
    messy = TREND.replace("    market BTC/EUR", "market   BTC / EUR")
    doc = doc_at(root, "specs/strategies/trend.peak", messy)
    assert format_edit(doc) == [Edit(Lines.of(messy).whole(), TREND)]
    assert format_edit(doc_at(root, "specs/strategies/trend.peak")) == []


def test_formatting_refuses_a_document_that_does_not_parse(root: Path) -> None:
    doc = doc_at(root, "specs/strategies/trend.peak", TREND.replace("}", ""))
    assert format_edit(doc) is None


def test_project_specs_read_kind_name_and_description(root: Path) -> None:
    specs = project_specs(root / "specs/portfolios/book.peak")
    assert sorted(specs) == ["book", "limits", "trend"]
    trend = specs["trend"]
    assert (trend.kind, trend.description) == ("strategy", "Close above its SMA")
    assert TREND[trend.name_start:trend.name_end] == "trend"


def test_without_specs_folder_only_the_neighbours_are_listed(tmp_path: Path) -> None:
    (tmp_path / "a.peak").write_text(TREND.replace("trend", "a"), "utf-8")
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "b.peak").write_text(LIMITS, "utf-8")
    assert sorted(project_specs(tmp_path / "new.peak")) == ["a"]
