"""`peak lsp` over stdio, driven by pygls' LSP client in a subprocess.

One session per module (starting the server costs a Python start-up): the fixture plays the
whole conversation — initialize, open a spec with errors, fix it, hover, complete, jump to
a definition in another file, format, ask for a quick fix, shut down and exit — with a
timeout on every step, and records what the server answered; the tests then check each
answer. The server reads the project from disk like `peak check` does.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

STEP = 30.0  # seconds any one step may take (a loaded CI machine starts Python slowly)
T = TypeVar("T")

TREND = """\
strategy trend {
    market BTC/EUR
    timeframe 1h
    param fast: int = 10 in 2..50
    let ma = sma(close, fast)
    entry long when crossover(close, ma)
    size 10% of equity
}
"""
BROKEN = TREND.replace("sma(close, fast)", "smaa(close, fast)")
MESSY = TREND.replace("    market BTC/EUR", "market   BTC / EUR")
PORTED = TREND.replace("crossover(close, ma)", "close = ma")
BOOK = """\
portfolio book {
    capital 10000 EUR
    component trend weight 100% with { fast = 20 }
}
"""


def write_project(root: Path) -> tuple[Path, Path]:
    trend = root / "specs" / "strategies" / "trend.peak"
    book = root / "specs" / "portfolios" / "book.peak"
    for path, text in ((trend, TREND), (book, BOOK)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return trend, book


async def step(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, STEP)


class Session:
    """A client, the diagnostics it was sent (by document), and helpers for requests."""

    def __init__(self) -> None:
        self.client = LanguageClient("peak-tests", "1")
        self.published: dict[str, asyncio.Queue[lsp.PublishDiagnosticsParams]] = {}

        def published(params: lsp.PublishDiagnosticsParams) -> None:
            self.published.setdefault(params.uri, asyncio.Queue()).put_nowait(params)

        self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)(published)

    async def diagnostics(self, uri: str, version: int) -> list[lsp.Diagnostic]:
        """The first diagnostics published for ``version`` of the document."""
        queue = self.published.setdefault(uri, asyncio.Queue())
        while True:
            params = await step(queue.get())
            if params.version == version:
                return list(params.diagnostics)

    def open(self, uri: str, text: str) -> None:
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="peak", version=1,
                                               text=text)))

    def change(self, uri: str, version: int, text: str) -> None:
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))


def position(text: str, needle: str, shift: int = 1) -> lsp.Position:
    before = text[:text.index(needle) + shift]
    return lsp.Position(line=before.count("\n"), character=len(before.split("\n")[-1]))


def doc_id(uri: str) -> lsp.TextDocumentIdentifier:
    return lsp.TextDocumentIdentifier(uri=uri)


async def conversation(root: Path) -> dict[str, Any]:
    trend_path, book_path = write_project(root)
    trend, book = from_fs_path(str(trend_path)), from_fs_path(str(book_path))
    assert trend is not None and book is not None
    s, out = Session(), {}
    await step(s.client.start_io(sys.executable, "-m", "peakdsl.cli", "lsp", cwd=str(root)))
    out["init"] = await step(s.client.initialize_async(lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=from_fs_path(str(root)))))
    s.client.initialized(lsp.InitializedParams())

    s.open(trend, BROKEN)
    out["broken"] = await s.diagnostics(trend, 1)
    s.change(trend, 2, TREND)
    out["fixed"] = await s.diagnostics(trend, 2)
    out["hover_builtin"] = await step(s.client.text_document_hover_async(lsp.HoverParams(
        text_document=doc_id(trend), position=position(TREND, "sma("))))
    out["hover_param"] = await step(s.client.text_document_hover_async(lsp.HoverParams(
        text_document=doc_id(trend), position=position(TREND, "fast)"))))
    out["completion"] = await step(s.client.text_document_completion_async(
        lsp.CompletionParams(text_document=doc_id(trend),
                             position=position(TREND, "crossover(", len("crossover(")))))
    out["definition_let"] = await step(s.client.text_document_definition_async(
        lsp.DefinitionParams(text_document=doc_id(trend), position=position(TREND, "ma)"))))

    s.open(book, BOOK)
    out["book"] = await s.diagnostics(book, 1)
    out["definition_component"] = await step(s.client.text_document_definition_async(
        lsp.DefinitionParams(text_document=doc_id(book), position=position(BOOK, "trend"))))
    out["definition_override"] = await step(s.client.text_document_definition_async(
        lsp.DefinitionParams(text_document=doc_id(book), position=position(BOOK, "fast"))))

    s.change(trend, 3, MESSY)
    out["format"] = await step(s.client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc_id(trend),
                                     options=lsp.FormattingOptions(tab_size=4,
                                                                   insert_spaces=True))))
    s.change(trend, 4, BROKEN.replace("}", ""))
    out["format_refused"] = await step(s.client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc_id(trend),
                                     options=lsp.FormattingOptions(tab_size=4,
                                                                   insert_spaces=True))))
    s.change(trend, 5, PORTED)
    out["ported"] = await s.diagnostics(trend, 5)
    where = position(PORTED, "= ma", 0)
    out["actions"] = await step(s.client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=doc_id(trend), range=lsp.Range(start=where, end=where),
        context=lsp.CodeActionContext(diagnostics=out["ported"]))))

    out["shutdown"] = await step(s.client.shutdown_async(None))
    s.client.exit(None)
    server = s.client._server
    assert server is not None
    out["exit_code"] = await step(server.wait())
    await step(s.client.stop())
    return out


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("lsp")
    return asyncio.run(conversation(root))


def test_initialize_announces_the_features(session: dict[str, Any]) -> None:
    caps = session["init"].capabilities
    assert session["init"].server_info.name == "peak"
    assert caps.hover_provider and caps.definition_provider
    assert caps.document_formatting_provider and caps.code_action_provider
    assert list(caps.completion_provider.trigger_characters) == ["(", ",", "["]


def test_opening_a_spec_with_errors_publishes_them(session: dict[str, Any]) -> None:
    found = {d.code: d for d in session["broken"]}
    assert set(found) == {"N002", "W001"}
    unknown = found["N002"]
    assert unknown.message == "unknown function `smaa`\ndid you mean `sma`?"
    assert unknown.severity == lsp.DiagnosticSeverity.Error and unknown.source == "peak"
    assert (unknown.range.start.line, unknown.range.start.character) == (4, 13)
    assert found["W001"].severity == lsp.DiagnosticSeverity.Warning


def test_fixing_it_publishes_no_diagnostics(session: dict[str, Any]) -> None:
    assert session["fixed"] == []
    assert session["book"] == []


def test_hover(session: dict[str, Any]) -> None:
    builtin = session["hover_builtin"]
    assert builtin.contents.kind == lsp.MarkupKind.Markdown
    assert builtin.contents.value.startswith("```peak\nsma(x, n)\n```\n\nsimple moving average")
    assert (builtin.range.start.line, builtin.range.start.character) == (4, 13)
    assert session["hover_param"].contents.value == \
        "```peak\nparam fast: int = 10 in 2..50\n```"


def test_completion_in_an_argument_list(session: dict[str, Any]) -> None:
    items = {i.label: i for i in session["completion"].items}
    assert {"fast", "ma", "close", "sma", "crossover"} <= set(items)
    sma = items["sma"]
    assert sma.insert_text == "sma(${1:x}, ${2:n})"
    assert sma.insert_text_format == lsp.InsertTextFormat.Snippet
    assert sma.kind == lsp.CompletionItemKind.Function


def test_definition_in_the_file_and_across_files(session: dict[str, Any]) -> None:
    let = session["definition_let"]
    assert let.uri.endswith("/specs/strategies/trend.peak")
    assert (let.range.start.line, let.range.start.character) == (4, 8)
    component = session["definition_component"]
    assert component.uri.endswith("/specs/strategies/trend.peak")
    assert (component.range.start.line, component.range.start.character) == (0, 9)
    override = session["definition_override"]
    assert override.uri == component.uri
    assert (override.range.start.line, override.range.start.character) == (3, 10)


def test_formatting_is_one_full_document_edit(session: dict[str, Any]) -> None:
    [edit] = session["format"]
    assert edit.new_text == TREND
    assert (edit.range.start.line, edit.range.start.character) == (0, 0)
    assert edit.range.end.line == MESSY.count("\n")
    assert session["format_refused"] is None


def test_a_fix_is_offered_as_a_quick_fix(session: dict[str, Any]) -> None:
    assert "P010" in {d.code for d in session["ported"]}
    [action] = [a for a in session["actions"] if a.diagnostics[0].code == "P010"]
    assert action.kind == lsp.CodeActionKind.QuickFix
    [(uri, [edit])] = action.edit.changes.items()
    assert uri.endswith("/specs/strategies/trend.peak") and edit.new_text == "=="


def test_shutdown_and_exit(session: dict[str, Any]) -> None:
    assert session["shutdown"] is None
    assert session["exit_code"] == 0
