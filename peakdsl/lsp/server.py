"""The pygls wiring of `peak lsp`: LSP messages in, the analysis' typed results out.

The only module that imports pygls and lsprotocol (``peak check`` never pays for them). Each
handler converts the request into a document and an offset, calls one function of the
analysis and converts its result back; no language knowledge lives here. Diagnostics are
published when a document opens or is saved and ``DEBOUNCE`` seconds after the last change,
so a burst of keystrokes costs one check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from .analysis import (
    Document,
    Edit,
    Location,
    Problem,
    ProjectView,
    definition,
    format_edit,
    hover,
    problems,
    read_document,
)
from .complete import Completion, complete
from .text import Pos, Range

DEBOUNCE = 0.2  # seconds of quiet after a change before the document is checked
TRIGGERS = ["(", ",", "["]
log = logging.getLogger("peak.lsp")


class PeakServer(LanguageServer):
    """pygls' server plus one pending diagnostics run per document."""

    def __init__(self) -> None:
        super().__init__("peak", __version__)
        self.pending: dict[str, asyncio.Task[None]] = {}


def serve() -> None:
    """Speak LSP over stdin and stdout until the client says exit (or closes the pipe)."""
    build().start_io()


def build() -> PeakServer:
    server = PeakServer()
    for method, handler, options in FEATURES:
        server.feature(method, options)(handler)
    return server


# ---------------------------------------------------------------- documents


def _path(uri: str) -> Path:
    """The file of a ``file:`` URI; an unsaved buffer gets a path that does not exist."""
    fs_path = to_fs_path(uri) if uri.startswith("file:") else None
    return Path(fs_path) if fs_path else Path.cwd() / "untitled.peak"


def _encoding(ls: PeakServer) -> str:
    return str(ls.workspace.position_encoding or "utf-16")


def _document(ls: PeakServer, uri: str) -> Document:
    return read_document(ls.workspace.get_text_document(uri).source, _path(uri), _encoding(ls))


def _project(ls: PeakServer, doc: Document) -> ProjectView:
    """The other specs, with the editor's unsaved text of the open ones."""
    overlay = {_path(uri).resolve(): text_doc.source
               for uri, text_doc in ls.workspace.text_documents.items()
               if uri.startswith("file:")}
    return ProjectView(doc, overlay)


def _offset(doc: Document, position: lsp.Position) -> int:
    return doc.lines.offset(Pos(position.line, position.character))


def _range(r: Range) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=r.start.line, character=r.start.character),
                     end=lsp.Position(line=r.end.line, character=r.end.character))


# ---------------------------------------------------------------- diagnostics


def did_open(ls: PeakServer, params: lsp.DidOpenTextDocumentParams) -> None:
    _schedule(ls, params.text_document.uri, 0.0)


def did_change(ls: PeakServer, params: lsp.DidChangeTextDocumentParams) -> None:
    _schedule(ls, params.text_document.uri, DEBOUNCE)


def did_save(ls: PeakServer, params: lsp.DidSaveTextDocumentParams) -> None:
    _schedule(ls, params.text_document.uri, 0.0)


def did_close(ls: PeakServer, params: lsp.DidCloseTextDocumentParams) -> None:
    """A closed document's diagnostics are withdrawn (the file may be checked on disk)."""
    task = ls.pending.pop(params.text_document.uri, None)
    if task is not None:
        task.cancel()
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


def _schedule(ls: PeakServer, uri: str, delay: float) -> None:
    """Check ``uri`` after ``delay`` seconds, replacing a check still waiting for it."""
    waiting = ls.pending.pop(uri, None)
    if waiting is not None:
        waiting.cancel()
    ls.pending[uri] = asyncio.get_running_loop().create_task(_publish_later(ls, uri, delay))


async def _publish_later(ls: PeakServer, uri: str, delay: float) -> None:
    await asyncio.sleep(delay)
    ls.pending.pop(uri, None)
    publish(ls, uri)


def publish(ls: PeakServer, uri: str) -> None:
    """Check the document as `peak check` would and send what it found (maybe nothing)."""
    version = ls.workspace.get_text_document(uri).version
    try:
        found = [_diagnostic(p) for p in problems(_document(ls, uri))]
    except Exception as exc:  # peak's bug: said where the user looks, never a dead server
        log.exception("checking %s failed", uri)
        found = [lsp.Diagnostic(range=_range(Range(Pos(0, 0), Pos(0, 0))), code="I001",
                                source="peak", message=f"internal error: {exc!r}; this is "
                                "a bug in peak, not in your spec; please report it")]
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=version))


SEVERITIES = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}


def _diagnostic(problem: Problem) -> lsp.Diagnostic:
    related = [lsp.DiagnosticRelatedInformation(
        location=lsp.Location(uri=from_fs_path(str(r.path)) or str(r.path),
                              range=_range(r.range)), message=r.message)
        for r in problem.related]
    return lsp.Diagnostic(range=_range(problem.range), message=problem.message,
                          severity=SEVERITIES[problem.severity], code=problem.code,
                          source="peak", related_information=related or None)


# ---------------------------------------------------------------- requests


def on_hover(ls: PeakServer, params: lsp.HoverParams) -> lsp.Hover | None:
    doc = _document(ls, params.text_document.uri)
    found = hover(doc, _offset(doc, params.position), _project(ls, doc))
    if found is None:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown,
                                                value=found.markdown),
                     range=_range(found.range))


KINDS = {
    "function": lsp.CompletionItemKind.Function, "variable": lsp.CompletionItemKind.Variable,
    "constant": lsp.CompletionItemKind.Constant, "keyword": lsp.CompletionItemKind.Keyword,
    "property": lsp.CompletionItemKind.Property, "module": lsp.CompletionItemKind.Module,
    "reference": lsp.CompletionItemKind.Reference, "value": lsp.CompletionItemKind.EnumMember,
    "type": lsp.CompletionItemKind.TypeParameter,
}


def on_completion(ls: PeakServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    doc = _document(ls, params.text_document.uri)
    items = complete(doc, _offset(doc, params.position), _project(ls, doc))
    return lsp.CompletionList(is_incomplete=False,
                              items=[_item(c, index) for index, c in enumerate(items)])


def _item(c: Completion, index: int) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        label=c.label, kind=KINDS.get(c.kind, lsp.CompletionItemKind.Text),
        detail=c.detail or None, sort_text=f"{index:04d}",
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=c.doc)
        if c.doc else None,
        insert_text=c.insert or None,
        insert_text_format=lsp.InsertTextFormat.Snippet if c.insert
        else lsp.InsertTextFormat.PlainText)


def on_definition(ls: PeakServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    doc = _document(ls, params.text_document.uri)
    found = definition(doc, _offset(doc, params.position), _project(ls, doc))
    return _location(found) if found is not None else None


def _location(found: Location) -> lsp.Location:
    return lsp.Location(uri=from_fs_path(str(found.path)) or str(found.path),
                        range=_range(found.range))


def on_formatting(ls: PeakServer, params: lsp.DocumentFormattingParams
                  ) -> list[lsp.TextEdit] | None:
    """`peak fmt` as one edit; nothing when the document does not parse (its diagnostics
    say why)."""
    edits = format_edit(_document(ls, params.text_document.uri))
    return None if edits is None else [_edit(e) for e in edits]


def _edit(edit: Edit) -> lsp.TextEdit:
    return lsp.TextEdit(range=_range(edit.range), new_text=edit.new_text)


def on_code_action(ls: PeakServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    """Quick fixes: the machine-applicable fix of each diagnostic touching the range, the
    same edit `peak check --fix` applies."""
    uri = params.text_document.uri
    doc = _document(ls, uri)
    wanted = (_offset(doc, params.range.start), _offset(doc, params.range.end))
    return [_action(uri, p) for p in problems(doc)
            if p.fix is not None and _touches(doc, p.range, wanted)]


def _touches(doc: Document, r: Range, wanted: tuple[int, int]) -> bool:
    start, end = doc.lines.offset(r.start), doc.lines.offset(r.end)
    return start <= wanted[1] and wanted[0] <= end


def _action(uri: str, problem: Problem) -> lsp.CodeAction:
    assert problem.fix is not None
    return lsp.CodeAction(title=problem.fix_title, kind=lsp.CodeActionKind.QuickFix,
                          diagnostics=[_diagnostic(problem)], is_preferred=True,
                          edit=lsp.WorkspaceEdit(changes={uri: [_edit(problem.fix)]}))


FEATURES: tuple[tuple[str, Callable[..., Any], Any], ...] = (
    (lsp.TEXT_DOCUMENT_DID_OPEN, did_open, None),
    (lsp.TEXT_DOCUMENT_DID_CHANGE, did_change, None),
    (lsp.TEXT_DOCUMENT_DID_SAVE, did_save, None),
    (lsp.TEXT_DOCUMENT_DID_CLOSE, did_close, None),
    (lsp.TEXT_DOCUMENT_HOVER, on_hover, None),
    (lsp.TEXT_DOCUMENT_COMPLETION, on_completion, lsp.CompletionOptions(
        trigger_characters=TRIGGERS)),
    (lsp.TEXT_DOCUMENT_DEFINITION, on_definition, None),
    (lsp.TEXT_DOCUMENT_FORMATTING, on_formatting, None),
    (lsp.TEXT_DOCUMENT_CODE_ACTION, on_code_action, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix])),
)
