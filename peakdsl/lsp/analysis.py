"""The editor's view of one spec: checked as `peak check` checks it, looked up by position.

Pure functions over a document's text: ``read_document`` parses and checks it (no disk);
``problems`` adds the project checks `peak check` would run on that file (its name, the specs
it references) and returns everything in editor coordinates; ``locate`` finds what is under
the cursor; ``hover`` and ``definition`` answer from that; ``format_edit`` is `peak fmt` as
one edit. A document that does not parse still has symbols, read lexically, so hover and
go-to-definition keep working while a line is half-typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..lang import ast
from ..lang.checker import CheckedSpec, check_module
from ..lang.diagnostics import Diagnostic, Label, sort_diagnostics
from ..lang.fmt import format_source, format_statement
from ..lang.parser import parse_source
from ..lang.project import Loader, check_cycles, check_references, display_path
from ..lang.source import SourceFile
from . import describe
from .locate import Found, locate, setting_table, symbol_of_decl
from .specs import (
    SpecEntry,
    entry_of,
    market_of,
    project_root,
    project_specs,
    read_text,
    timeframe_of,
)
from .text import Lines, Range, lex


@dataclass(frozen=True, slots=True)
class Symbol:
    """A param or let of the document: where its name is declared and how it reads."""

    kind: str  # "param" | "let"
    name: str
    start: int  # character offsets of the declared name
    end: int
    text: str  # the declaration as `peak fmt` prints it (the source line when unparsed)
    type: str = ""  # a param's type word; a let's type ("a price series"), '' if unknown


@dataclass(frozen=True)
class Document:
    """One spec's text, parsed and checked on its own (the file's project comes later)."""

    path: Path  # absolute; for an unsaved buffer, a path that need not exist
    text: str
    lines: Lines
    module: ast.Module | None
    spec: CheckedSpec | None
    diagnostics: tuple[Diagnostic, ...]
    symbols: dict[str, Symbol] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        """The path diagnostics name, as `peak check` run here would name it."""
        return display_path(self.path)

    @property
    def kind(self) -> str:
        if self.module is not None:
            return self.module.decl.kind
        words = [t for t in lex(self.text[:4096]) if t.kind == "word"]
        return words[0].text if words else ""


def read_document(text: str, path: Path, encoding: str = "utf-16") -> Document:
    """Parse and check ``text`` as the file ``path``; never raises on any text."""
    path = path.resolve()
    parsed = parse_source(SourceFile.of(display_path(path), text))
    lines = Lines.of(text, encoding)
    if parsed.module is None:
        return Document(path, text, lines, None, None, parsed.diagnostics, lexical_symbols(text))
    spec, diags = check_module(parsed.module)
    return Document(path, text, lines, parsed.module, spec, tuple(diags), ast_symbols(spec))


def ast_symbols(spec: CheckedSpec) -> dict[str, Symbol]:
    """Params and lets with their declarations and types (the first declaration wins)."""
    out: dict[str, Symbol] = {}
    for item in spec.decl.items:
        found = symbol_of_decl(item)
        if found is None or found[1] in out or isinstance(item, ast.Block):
            continue
        kind, name, span = found
        ty = spec.types.get(id(getattr(item, "expr", None)))
        type_ = item.type if isinstance(item, ast.Param) else (ty.describe() if ty else "")
        out[name] = Symbol(kind, name, span.start, span.end, format_statement(item), type_)
    return out


def lexical_symbols(text: str) -> dict[str, Symbol]:
    """``param NAME`` and ``let NAME`` read from the tokens of text that does not parse."""
    words = [t for t in lex(text) if t.kind not in ("comment", "string")]
    out: dict[str, Symbol] = {}
    for index, token in enumerate(words[:-1]):
        name = words[index + 1]
        if token.text not in ("param", "let", "state") or name.kind != "word" or \
                name.text in out:
            continue
        line_end = text.find("\n", name.end)
        line = text[token.start: line_end if line_end >= 0 else len(text)].strip()
        type_ = words[index + 3].text if token.text == "param" and index + 3 < len(words) \
            and words[index + 2].text == ":" else ""
        kind = "let" if token.text == "state" else token.text  # a state is a let that recurs
        out[name.text] = Symbol(kind, name.text, name.start, name.end, line, type_)
    return out


# ---------------------------------------------------------------- the project around it


class ProjectView:
    """The other specs, read lazily and at most once per request: open documents
    (``overlay``) win over the files on disk."""

    def __init__(self, doc: Document, overlay: Mapping[Path, str] | None = None) -> None:
        self.doc = doc
        self.overlay = dict(overlay or {})

    @cached_property
    def specs(self) -> dict[str, SpecEntry]:
        return project_specs(self.doc.path, self.overlay)

    def document(self, name: str) -> Document | None:
        entry = self.specs.get(name)
        if entry is None:
            return None
        if entry.path == self.doc.path:
            return self.doc
        text = read_text(entry.path, self.overlay)
        return read_document(text, entry.path, self.doc.lines.encoding)


# ---------------------------------------------------------------- diagnostics


@dataclass(frozen=True, slots=True)
class Edit:
    range: Range
    new_text: str


@dataclass(frozen=True, slots=True)
class Related:
    path: Path
    range: Range
    message: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A diagnostic in editor coordinates; ``message`` ends with the help line, if any."""

    range: Range
    severity: str  # "error" | "warning"
    code: str
    message: str
    related: tuple[Related, ...] = ()
    fix: Edit | None = None  # the diagnostic's machine-applicable fix (`peak check --fix`)
    fix_title: str = ""


def problems(doc: Document) -> list[Problem]:
    """Everything `peak check` says about this file, with the project it lives in."""
    diags = sort_diagnostics([*doc.diagnostics, *project_diagnostics(doc)])
    return [_problem(doc, d) for d in diags if d.path == doc.shown]


def project_diagnostics(doc: Document) -> list[Diagnostic]:
    """The cross-file checks of ``load_project`` for this one file: its name against its
    stem and the project (N004, N005), and a portfolio's references (N006–N008, T010, C004).
    Only inside a project (a folder with specs/) and for a file that exists."""
    root = project_root(doc.path)
    if doc.spec is None or root is None or not doc.path.is_file():
        return []
    loader = Loader(root, [doc.path])
    loader.check_identity(doc.spec, doc.path)
    loader.project.specs.setdefault(doc.spec.name, doc.spec)
    pending, checked = [doc.spec], set[str]()
    while pending:
        spec = pending.pop()
        if spec.kind != "portfolio" or spec.name in checked:
            continue
        checked.add(spec.name)
        check_references(loader, spec)
        pending.extend(loader.project.specs.values())
    check_cycles(loader.project)
    return loader.project.diagnostics


def _problem(doc: Document, d: Diagnostic) -> Problem:
    message = f"{d.message}\n{d.help}" if d.help else d.message
    related = tuple(_related(doc, label) for label in d.labels)
    fix = Edit(doc.lines.span(d.fix.span), d.fix.replacement) if d.fix is not None else None
    title = f"{d.code}: {d.help or 'apply the fix'}" if fix is not None else ""
    return Problem(doc.lines.span(d.span), d.severity.value, d.code, message, related, fix,
                   title)


def _related(doc: Document, label: Label) -> Related:
    if label.path == doc.shown:
        return Related(doc.path, doc.lines.span(label.span), label.message)
    path = Path(label.path).resolve()
    lines = Lines.of(read_text(path, {}), doc.lines.encoding)
    return Related(path, lines.span(label.span), label.message)


# ---------------------------------------------------------------- hover and definition


@dataclass(frozen=True, slots=True)
class HoverText:
    markdown: str
    range: Range


@dataclass(frozen=True, slots=True)
class Location:
    path: Path
    range: Range


def hover(doc: Document, offset: int, project: ProjectView) -> HoverText | None:
    """What the word under the cursor is: its signature, declaration, unit or docs."""
    found = locate(doc.module, doc.text, offset)
    if found is None:
        return None
    text = HOVERS.get(found.role, _hover_name)(doc, found, project)
    return HoverText(text, doc.lines.range(found.start, found.end)) if text else None


def _hover_name(doc: Document, found: Found, project: ProjectView) -> str | None:
    """A name in an expression: a param or let, a source, a metric, a mode, a built-in."""
    symbol = doc.symbols.get(found.word)
    if symbol is not None:
        return symbol_md(symbol)
    return describe.name_md(found.word, doc.kind, found.call)


def symbol_md(symbol: Symbol) -> str:
    tail = f"\n\n{symbol.type}" if symbol.kind == "let" and symbol.type else ""
    return describe.code(symbol.text) + tail


def _hover_key(doc: Document, found: Found, project: ProjectView) -> str | None:
    spec = setting_table(doc.kind, found.blocks).get(found.word)
    return describe.setting_md(spec) if spec else None


def _hover_choice(doc: Document, found: Found, project: ProjectView) -> str | None:
    spec = setting_table(doc.kind, found.blocks).get(found.owner)
    return describe.choice_md(found.word, spec) if spec else None


def _hover_block(doc: Document, found: Found, project: ProjectView) -> str | None:
    return describe.block_for(doc.kind, found.blocks, found.word)


def _hover_reference(doc: Document, found: Found, project: ProjectView) -> str | None:
    entry = project.specs.get(found.word)
    return describe.spec_md(entry) if entry else None


def _hover_override(doc: Document, found: Found, project: ProjectView) -> str | None:
    target = project.document(found.owner)
    symbol = target.symbols.get(found.word) if target else None
    if symbol is None or symbol.kind != "param":
        return None
    return symbol_md(symbol) + f"\n\nparam of `{found.owner}`"


def _hover_decl(doc: Document, found: Found, project: ProjectView) -> str | None:
    return describe.spec_md(entry_of(doc.path, doc.text))


def _hover_frame(doc: Document, found: Found, project: ProjectView) -> str | None:
    """The ``4h`` or ``ETH/USDT`` after an ``@``, in the terms of this spec's own frame."""
    if found.owner == "market":
        return describe.market_frame_md(found.word, market_of(doc.text))
    return describe.timeframe_frame_md(found.word, timeframe_of(doc.text))


def _hover_word(render: Callable[[str], str]) -> Callable[[Document, Found, ProjectView], str]:
    return lambda doc, found, project: render(found.word)


HOVERS: dict[str, Callable[[Document, Found, ProjectView], str | None]] = {
    "name": _hover_name, "symbol": _hover_name, "key": _hover_key, "choice": _hover_choice,
    "block": _hover_block, "reference": _hover_reference, "override": _hover_override,
    "decl": _hover_decl, "basis": _hover_word(describe.basis_md),
    "param_type": _hover_word(describe.param_type_md),
    "function": lambda doc, found, project: describe.function_md(found.word),
    "frame": _hover_frame,
}


def definition(doc: Document, offset: int, project: ProjectView) -> Location | None:
    """Where the name under the cursor is declared: a param or let of this spec, another
    spec (a portfolio's component or risk reference), or a param a component overrides."""
    found = locate(doc.module, doc.text, offset)
    if found is None:
        return None
    if found.role in ("name", "symbol") and found.word in doc.symbols:
        symbol = doc.symbols[found.word]
        return Location(doc.path, doc.lines.range(symbol.start, symbol.end))
    if found.role == "reference" and found.word in project.specs:
        entry = project.specs[found.word]
        lines = Lines.of(read_text(entry.path, project.overlay), doc.lines.encoding)
        return Location(entry.path, lines.range(entry.name_start, entry.name_end))
    if found.role == "override":
        target = project.document(found.owner)
        declared = target.symbols.get(found.word) if target else None
        if target is not None and declared is not None:
            return Location(target.path, target.lines.range(declared.start, declared.end))
    return None


# ---------------------------------------------------------------- formatting


def format_edit(doc: Document) -> list[Edit] | None:
    """`peak fmt` as a single edit of the whole document; None (refused) when it does not
    parse, [] when it is already formatted."""
    result = format_source(doc.text, doc.shown)
    if result.text is None:
        return None
    return [Edit(doc.lines.whole(), result.text)] if result.changed else []
