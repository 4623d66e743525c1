"""Artifacts through the public API and CLI: determinism, hashes, schemas, --check, atomicity."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from peakdsl import api
from peakdsl.compile import models

ROOT = Path(__file__).resolve().parents[2]



def peak(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_compiling_twice_is_byte_identical(project: Path, tmp_path: Path) -> None:
    first = api.compile(project)
    assert first.ok and first.changed
    snapshot = tree(project / "compiled")
    second = api.compile(project, out_dir=tmp_path / "again")
    assert second.ok
    assert tree(tmp_path / "again") == snapshot
    third = api.compile(project)
    assert third.changed == ()


def test_committed_compiled_folder_is_current() -> None:
    result = api.compile(ROOT, check_only=True)
    assert result.ok
    assert result.changed == (), "run `peak compile` and commit compiled/"


def test_manifest_hashes_and_schemas(project: Path) -> None:
    api.compile(project)
    out = project / "compiled"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema_version"] == models.SCHEMA_VERSION
    kinds = {e["kind"] for e in manifest["artifacts"]}
    assert kinds == {"strategy", "portfolio", "risk", "promotion"}
    for entry in manifest["artifacts"]:
        data = (out / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["artifact_sha256"]
        source = (project / entry["source_path"]).read_bytes()
        assert hashlib.sha256(source).hexdigest() == entry["source_sha256"]
        schema = json.loads((out / "schema" / f"{entry['kind']}.schema.json").read_text())
        artifact = json.loads(data)
        jsonschema.Draft202012Validator(schema).validate(artifact)
        model = models.ARTIFACT_MODELS[entry["kind"]].model_validate(artifact)
        assert model.name == entry["name"]


def test_portfolio_artifacts_bind_component_hashes(project: Path) -> None:
    api.compile(project)
    out = project / "compiled"
    manifest = json.loads((out / "manifest.json").read_text())
    hashes = {e["name"]: e["artifact_sha256"] for e in manifest["artifacts"]}
    portfolios = [e for e in manifest["artifacts"] if e["kind"] == "portfolio"]
    assert portfolios
    for entry in portfolios:
        config = json.loads((out / entry["path"]).read_text())["config"]
        assert abs(sum(c["weight"] for c in config["components"]) - 1.0) < 1e-12
        for comp in config["components"]:
            assert comp["artifact_sha256"] == hashes[comp["name"]]
        if config["risk"]:
            assert config["risk_sha256"] == hashes[config["risk"]]


def test_schema_rejects_unknown_keys(project: Path) -> None:
    api.compile(project)
    out = project / "compiled"
    path = next((out / "strategy").glob("*.json"))
    artifact = json.loads(path.read_text())
    artifact["config"]["surprise"] = 1
    schema = json.loads((out / "schema" / "strategy.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(artifact)


def test_check_flags_stale_and_extra_files(project: Path) -> None:
    assert peak("compile", cwd=project).returncode == 0
    assert peak("compile", "--check", cwd=project).returncode == 0
    spec = next((project / "specs" / "strategies").glob("*.peak"))
    spec.write_text(spec.read_text().replace("description", "# edited\n    description", 1))
    stale = peak("compile", "--check", cwd=project)
    assert stale.returncode == 1
    assert f"strategy/{spec.stem}.json" in stale.stderr
    assert "manifest.json" in stale.stderr
    assert peak("compile", cwd=project).returncode == 0
    (project / "compiled" / "strategy" / "ghost.json").write_text("{}")
    extra = peak("compile", "--check", cwd=project)
    assert extra.returncode == 1 and "strategy/ghost.json" in extra.stderr
    assert peak("compile", cwd=project).returncode == 0
    assert not (project / "compiled" / "strategy" / "ghost.json").exists()


def test_spec_errors_write_nothing(project: Path) -> None:
    assert peak("compile", cwd=project).returncode == 0
    before = tree(project / "compiled")
    spec = next((project / "specs" / "strategies").glob("*.peak"))
    spec.write_text(spec.read_text().replace("(close,", "(clsoe,", 1))
    run = peak("compile", cwd=project)
    assert run.returncode == 1
    assert "N001" in run.stderr and "Traceback" not in run.stderr
    assert tree(project / "compiled") == before
    assert not list((project / "compiled").rglob("*.tmp"))


def test_compile_source_from_text() -> None:
    text = (ROOT / "specs" / "strategies" / "macd.peak").read_text()
    artifact = api.compile_source(text, "macd")
    assert isinstance(artifact, models.StrategyArtifact)
    assert artifact.config.name == "macd" and artifact.config.warmup_bars > 0
    with pytest.raises(api.SpecError) as info:
        api.compile_source(text.replace("(close,", "(clsoe,", 1), "macd")
    assert [d.code for d in info.value.diagnostics] == ["N001"]
    with pytest.raises(api.SpecError) as info:
        api.compile_source("strategy macd {", "macd")
    assert info.value.diagnostics[0].code == "P003"
