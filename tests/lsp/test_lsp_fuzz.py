"""Every editor feature answers on any text: a spec of the library with random edits (as
typing leaves it), at random positions — never an exception, every range inside the text."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peakdsl.lsp.analysis import (
    ProjectView,
    definition,
    format_edit,
    hover,
    problems,
    read_document,
)
from peakdsl.lsp.complete import complete
from peakdsl.lsp.text import Lines, Range

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "specs").rglob("*.peak"))
PIECES = st.sampled_from(["(", ")", "{", "}", "[", "]", ",", ".", ":", "=", "<", "+", "#", '"',
                          "%", " ", "\n", "sma(", "let ", "param ", "with {", "component ",
                          "risk ", "stdev(close, 20, ", "é", "😀", "fill ", "1h", "3%", "x"])


@st.composite
def edited(draw: st.DrawFn) -> tuple[Path, str]:
    path = draw(st.sampled_from(FILES))
    text = path.read_text("utf-8")
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = min(len(text), start + draw(st.integers(0, 20)))
        text = text[:start] + "".join(draw(st.lists(PIECES, max_size=3))) + text[end:]
    return path, text


def inside(lines: Lines, r: Range) -> bool:
    last = lines.whole().end
    return (0, 0) <= (r.start.line, r.start.character) <= (r.end.line, r.end.character) \
        <= (last.line, last.character)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited(), st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_every_feature_answers_on_any_edit(case: tuple[Path, str], where: list[float]) -> None:
    path, text = case
    doc = read_document(text, path)
    for problem in problems(doc):
        assert inside(doc.lines, problem.range), problem
    edits = format_edit(doc)
    assert edits is None or all(inside(doc.lines, e.range) for e in edits)
    project = ProjectView(doc)
    for fraction in where:
        offset = round(fraction * len(text))
        found = hover(doc, offset, project)
        assert found is None or (found.markdown and inside(doc.lines, found.range))
        definition(doc, offset, project)
        assert all(c.label for c in complete(doc, offset, project))
