"""One side of a diff, checked and compiled: its specs by name, as the engine would run them.

Each side is loaded in its own project folder (``Source.root``), with the same checker and
compiler as `peak check` and `peak compile`, so a spec that does not check stops the diff with
its diagnostics (named ``REV:specs/…`` for a revision, with the text kept for the snippet).

``fingerprint`` is what "semantically equal" means: the sha256 of a spec's compiled config
with everything that carries no meaning taken out or made canonical — the signal graph becomes
the hashes of its rules (``peakdsl.review.logic``), so node numbering and let names drop out;
a component's or risk spec's artifact hash becomes that spec's own fingerprint, so a comment
in a strategy does not change every portfolio holding it; whether the calendar was spelled out
is not a difference. Comments and formatting never reach a config at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import SpecError
from ..compile import models as m
from ..lang import ast
from ..lang.checker import CheckedSpec
from ..lang.diagnostics import Diagnostic, Label, has_errors
from .logic import require_hashes, rule_hashes
from .sources import Source

# Fields of each config that are a function of others, or of nothing a run sees.
DERIVED = {"calendar_declared", "timeframe_seconds", "warmup_bars", "graph", "requires",
           "name"}


@dataclass(frozen=True)
class Entry:
    """One compiled spec of a side, with its rules' source text (for people)."""

    name: str
    artifact: m.Artifact
    sha256: str
    path: Path
    rule_text: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.artifact.kind


@dataclass
class Snapshot:
    """A side's compared specs (``names``) and every spec compiled with them (references)."""

    source: Source
    entries: dict[str, Entry] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    _prints: dict[str, str] = field(default_factory=dict)

    def fingerprint(self, name: str) -> str:
        """The semantic hash of spec ``name`` (module docstring); memoised."""
        if name not in self._prints:
            config = self.entries[name].artifact.config
            doc = canonical_config(config, self)
            text = json.dumps(doc, sort_keys=True, allow_nan=False)
            self._prints[name] = hashlib.sha256(text.encode()).hexdigest()
        return self._prints[name]

    def fingerprint_or(self, name: str, sha: str | None) -> str | None:
        """The fingerprint of a referenced spec, or its artifact hash when it is not here."""
        return self.fingerprint(name) if name in self.entries else sha


class SnapshotError(SpecError):
    """A side has specs that do not check: their diagnostics, and the text of each file they
    name (a revision's files are deleted before the CLI renders the snippets)."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...], texts: dict[str, str]) -> None:
        super().__init__(diagnostics)
        self.texts = texts


def canonical_config(config: Any, snap: Snapshot) -> dict[str, Any]:
    """A config as a JSON-able dict with only what has meaning (module docstring)."""
    doc: dict[str, Any] = config.model_dump(mode="json", exclude=DERIVED & set(
        type(config).model_fields))
    if isinstance(config, m.StrategyConfig):
        doc["rules"] = rule_hashes(config)
        doc["requires"] = sorted(require_hashes(config))
        doc["params"] = sorted(doc["params"], key=lambda p: p["name"])
        doc["warmup"] = warmup_key(config.warmup)
    if isinstance(config, m.PromotionConfig):
        doc["criteria"] = sorted(doc["criteria"], key=lambda c: json.dumps(c, sort_keys=True))
    if isinstance(config, m.PortfolioConfig):
        for comp in doc["components"]:
            comp["artifact_sha256"] = snap.fingerprint_or(comp["name"], comp["artifact_sha256"])
        if config.risk is not None:
            doc["risk_sha256"] = snap.fingerprint_or(config.risk, config.risk_sha256)
    return doc


def warmup_key(warmup: m.Lookback) -> dict[str, Any]:
    """A warm-up formula as a set: its forms sorted, the constant 0 dropped (a warm-up is
    never negative, so ``max(0, fast, slow)`` is ``max(fast, slow)``)."""
    forms = {json.dumps(f.model_dump(), sort_keys=True) for f in warmup.forms
             if f.const != 0 or f.terms}
    return {"exact": warmup.exact, "forms": sorted(forms)}


def load_snapshot(source: Source) -> Snapshot:
    """Check and compile ``source``'s specs (``SnapshotError`` when any does not check)."""
    from ..compile.artifacts import compile_specs, dump_model, sha256
    from ..lang.project import load_project

    snap = Snapshot(source)
    if not source.paths:
        return snap
    project = load_project([str(p) for p in source.paths], source.root)
    if has_errors(project.diagnostics):
        errors = [d for d in project.diagnostics if d.is_error]
        raise SnapshotError(tuple(shown(d, source) for d in errors), texts(errors, source))
    compiled = compile_specs(project)
    for name, artifact in compiled.artifacts.items():
        spec = project.specs[name]
        text = project.files[name].read_text(encoding="utf-8")
        snap.entries[name] = Entry(name, artifact, sha256(dump_model(artifact)),
                                   project.files[name], rule_texts(spec, text))
    snap.names = sorted(dict.fromkeys(project.requested))
    return snap


def rule_texts(spec: CheckedSpec, text: str) -> dict[str, str]:
    """Rule slot → the rule's expression as written, comments dropped, spaces collapsed."""
    out = {}
    for rule in spec.items(ast.Rule):
        written = text[rule.expr.span.start:rule.expr.span.end]
        out[rule.slot] = " ".join(line.split("#", 1)[0] for line in written.splitlines())
        out[rule.slot] = " ".join(out[rule.slot].split())
    return out


def shown_path(path: str, source: Source) -> str:
    """A path inside a revision's temporary folder as ``REV:specs/…``."""
    if source.shown_as is None:
        return path
    folder, prefix = source.shown_as
    try:
        return prefix + Path(path).resolve().relative_to(folder).as_posix()
    except ValueError:
        return path


def shown(d: Diagnostic, source: Source) -> Diagnostic:
    labels = tuple(Label(shown_path(lb.path, source), lb.span, lb.message) for lb in d.labels)
    return dataclasses.replace(d, path=shown_path(d.path, source), labels=labels)


def texts(diags: list[Diagnostic], source: Source) -> dict[str, str]:
    """The text of every file the diagnostics name, by the path they are shown with (a
    revision's files are gone by the time the CLI renders the snippets)."""
    paths = {d.path for d in diags} | {lb.path for d in diags for lb in d.labels}
    return {shown_path(p, source): Path(p).read_text("utf-8", errors="replace")
            for p in sorted(paths) if Path(p).is_file()}
