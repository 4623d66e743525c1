"""Artifacts: canonical JSON, content hashes, the manifest, JSON Schemas, atomic writes.

Canonical means: keys sorted, two-space indent, UTF-8, no NaN, trailing newline, no
timestamps — so compiling twice gives byte-identical files and the sha256 in the
manifest identifies exactly what the engine will run.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .. import __version__
from ..atomic import write_atomic
from ..lang.checker import CheckedSpec
from ..lang.diagnostics import Diagnostic, diag
from ..lang.lookback import MAX_FORMS
from ..lang.project import Project
from . import models as m
from .emit import emit_portfolio, emit_promotion, emit_risk, emit_strategy

KIND_DIRS = ("strategy", "portfolio", "risk", "promotion")
SCHEMA_DIR = "schema"
MANIFEST = "manifest.json"


def canonical_json(data: Any) -> bytes:
    text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dump_model(model: BaseModel) -> bytes:
    return canonical_json(model.model_dump(mode="json"))


def schemas() -> dict[str, bytes]:
    """JSON Schemas of every artifact kind and the manifest, generated from the models
    (a fresh dict of the bytes generated once per process: pydantic takes ~50 ms a model)."""
    return dict(_schemas())


@functools.cache
def _schemas() -> dict[str, bytes]:
    out = {f"{SCHEMA_DIR}/{kind}.schema.json": canonical_json(model.model_json_schema())
           for kind, model in m.ARTIFACT_MODELS.items()}
    out[f"{SCHEMA_DIR}/manifest.schema.json"] = canonical_json(m.Manifest.model_json_schema())
    return out


@dataclass
class Compiled:
    """Everything ``compiled/`` should contain, by path relative to it."""

    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[Diagnostic] = field(default_factory=list)  # warnings found while compiling
    artifacts: dict[str, m.StrategyArtifact | m.PortfolioArtifact | m.RiskArtifact
                    | m.PromotionArtifact] = field(default_factory=dict)


def relative_source(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def build_artifact(spec: CheckedSpec, source: bytes, source_path: str,
                   hashes: Mapping[str, tuple[str, str]]) -> m._Artifact:
    """One spec → its artifact model (not yet serialised)."""
    text = source.decode("utf-8")
    config: BaseModel
    if spec.kind == "strategy":
        config = emit_strategy(spec, text)
    elif spec.kind == "portfolio":
        config = emit_portfolio(spec, hashes)
    elif spec.kind == "risk":
        config = emit_risk(spec)
    else:
        config = emit_promotion(spec)
    model = m.ARTIFACT_MODELS[spec.kind]
    return model(schema_version=m.SCHEMA_VERSION, compiler_version=__version__, name=spec.name,
                 source=m.SourceRef(path=source_path, sha256=sha256(source)),
                 kind=spec.kind, config=config)  # type: ignore[call-arg]


def compile_specs(project: Project) -> Compiled:
    """Compile every checked spec in dependency order, then the manifest and the schemas."""
    out = Compiled(files=schemas())
    hashes: dict[str, tuple[str, str]] = {}
    entries = []
    for spec in project.ordered():
        path = project.files[spec.name]
        source = path.read_bytes()
        rel_source = relative_source(project.root, path)
        artifact = build_artifact(spec, source, rel_source, hashes)
        out.notes.extend(compile_notes(spec, artifact, str(path)))
        data = dump_model(artifact)
        rel = f"{spec.kind}/{spec.name}.json"
        out.files[rel] = data
        out.artifacts[spec.name] = artifact  # type: ignore[assignment]
        hashes[spec.name] = (spec.kind, sha256(data))
        entries.append(m.ManifestEntry(kind=spec.kind, name=spec.name, path=rel,
                                       source_path=rel_source, source_sha256=sha256(source),
                                       artifact_sha256=sha256(data)))
    entries.sort(key=lambda e: e.path)
    manifest = m.Manifest(schema_version=m.SCHEMA_VERSION, compiler_version=__version__,
                          artifacts=entries)
    out.files[MANIFEST] = dump_model(manifest)
    validate_files(out.files)
    return out


def compile_notes(spec: CheckedSpec, artifact: m._Artifact, path: str) -> list[Diagnostic]:
    """W005 for a strategy whose warm-up had to be bounded (lang/lookback.py)."""
    config = getattr(artifact, "config", None)
    if not isinstance(config, m.StrategyConfig) or config.warmup.exact:
        return []
    return [diag("W005", f"the warm-up of `{spec.name}` is an upper bound "
                 f"({config.warmup_bars} bars at the defaults)", path, spec.decl.name_span,
                 f"its lets stack more than {MAX_FORMS} window combinations; the first "
                 "signals may come a little later than the exact warm-up would allow")]


def validate_files(files: Mapping[str, bytes]) -> None:
    """Every artifact and the manifest against its generated JSON Schema (jsonschema)."""
    import jsonschema

    validators = {
        name.split("/")[1].removesuffix(".schema.json"): jsonschema.Draft202012Validator(
            json.loads(data)) for name, data in files.items() if name.startswith(SCHEMA_DIR)}
    for name, data in files.items():
        if name.startswith(SCHEMA_DIR):
            continue
        kind = "manifest" if name == MANIFEST else name.split("/")[0]
        validators[kind].validate(json.loads(data))


def stale_files(out_dir: Path, files: Mapping[str, bytes]) -> list[str]:
    """Paths (relative to ``out_dir``) that differ from, are missing from or extra to ``files``."""
    stale = [rel for rel, data in files.items()
             if not (out_dir / rel).is_file() or (out_dir / rel).read_bytes() != data]
    stale.extend(rel for rel in existing_files(out_dir) if rel not in files)
    return sorted(stale)


def existing_files(out_dir: Path) -> list[str]:
    found: list[str] = []
    for sub in (*KIND_DIRS, SCHEMA_DIR):
        folder = out_dir / sub
        if folder.is_dir():
            found.extend(p.relative_to(out_dir).as_posix() for p in folder.glob("*.json"))
    if (out_dir / MANIFEST).is_file():
        found.append(MANIFEST)
    return sorted(found)


def write_compiled(out_dir: Path, files: Mapping[str, bytes]) -> list[str]:
    """Bring ``out_dir`` to exactly ``files``; the manifest is written last. Returns changes."""
    changed = stale_files(out_dir, files)
    for rel in sorted(r for r in changed if r in files and r != MANIFEST):
        write_atomic(out_dir / rel, files[rel])
    for rel in changed:
        if rel not in files:
            (out_dir / rel).unlink()
    if MANIFEST in changed:
        write_atomic(out_dir / MANIFEST, files[MANIFEST])
    return changed
