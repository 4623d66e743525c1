"""The library API: every CLI command is a thin wrapper over a function here that returns data.

Heavy modules (compiler models, numpy, pandas, numexpr) are imported inside the functions
that need them, so ``peak check`` never pays for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .lang.diagnostics import Diagnostic, diag, has_errors
from .lang.project import Project, load_project


@dataclass(frozen=True, slots=True)
class CheckResult:
    project: Project
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def check(paths: Sequence[str] = ("specs",), root: Path | None = None) -> CheckResult:
    """Parse and check specs (and what they reference); never raises on bad specs."""
    project = load_project(list(paths), root)
    return CheckResult(project, tuple(project.diagnostics))


@dataclass(frozen=True, slots=True)
class CompileResult:
    diagnostics: tuple[Diagnostic, ...]
    changed: tuple[str, ...]  # files written (or, with check, out of date)
    out_dir: Path
    artifacts: dict[str, object]

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def compile(root: Path | None = None, out_dir: Path | None = None,
            check_only: bool = False) -> CompileResult:
    """Check the project's ``specs/`` and compile it into ``compiled/`` (or just compare)."""
    from .compile.artifacts import compile_specs, stale_files, write_compiled
    from .lang.project import find_root

    root = find_root(root or Path.cwd())
    out_dir = out_dir or root / "compiled"
    project = load_project([str(root / "specs")], root)
    if not project.ok:
        return CompileResult(tuple(project.diagnostics), (), out_dir, {})
    compiled = compile_specs(project)
    if check_only:
        changed = stale_files(out_dir, compiled.files)
    else:
        changed = write_compiled(out_dir, compiled.files)
    return CompileResult(tuple(project.diagnostics), tuple(changed), out_dir,
                         dict(compiled.artifacts))


def compile_spec(path: str, root: Path | None = None) -> object:
    """Compile one spec in memory (with what it references) and return its artifact model."""
    from .compile.artifacts import compile_specs

    project = load_project([path], root)
    if not project.ok:
        raise SpecError(tuple(project.diagnostics))
    compiled = compile_specs(project)
    name = project.requested[0]
    return compiled.artifacts[name]


def compile_source(text: str, name: str) -> object:
    """Compile one self-contained spec given as text (notebooks, benchmarks, tests).

    ``name`` is the declaration's name (the file stem it would have). References to other
    specs cannot resolve here; use ``compile_spec`` on files for portfolios.
    """
    from .compile.artifacts import build_artifact
    from .lang.checker import check_module
    from .lang.parser import parse_text

    path = f"{name}.peak"
    parsed = parse_text(text, path)
    if parsed.module is None:
        raise SpecError(parsed.diagnostics)
    spec, diags = check_module(parsed.module)
    if has_errors(diags):
        raise SpecError(tuple(diags))
    return build_artifact(spec, text.encode("utf-8"), path, {})


class SpecError(Exception):
    """Raised by API functions that need a valid spec; carries the diagnostics."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        super().__init__(f"{sum(d.is_error for d in diagnostics)} spec error(s)")
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class BacktestRun:
    """A finished backtest and its registry id (None when not recorded)."""

    result: Any
    run_id: str | None


def backtest(spec: str, *, root: Path | None = None, data: Path | None = None,
             start: str | None = None, end: str | None = None,
             overrides: Sequence[str] = (), fee_bps: float | None = None,
             capital: float = 10_000.0, record: bool = True) -> BacktestRun:
    """Compile ``spec``, load its data, run it, and (by default) record it in the registry.

    Raises ``SpecError`` with diagnostics for spec, override or data problems.
    """
    from .backtest import run_backtest
    from .compile.artifacts import dump_model, sha256
    from .compile.models import StrategyArtifact
    from .data import DataError
    from .data.select import load_for
    from .lang.project import UsageError, find_root
    from .overrides import resolve_overrides

    project_root = find_root(root or Path(spec).resolve().parent)
    artifact = compile_spec(spec, project_root)
    if not isinstance(artifact, StrategyArtifact):
        kind = getattr(artifact, "kind", "?")
        raise UsageError(diag("U003", f"`peak backtest` runs strategies; {spec} is a {kind}",
                              spec, help="portfolio backtests arrive with the portfolio "
                              "engine; backtest its components one by one for now"))
    params, problems = resolve_overrides(artifact.config, overrides)
    if problems:
        raise SpecError(tuple(problems))
    try:
        candles = load_for(artifact.config.market.symbol, artifact.config.timeframe,
                           root=project_root, data=data, start=_timestamp(start, "--from"),
                           end=_timestamp(end, "--to"))
    except DataError as exc:
        raise SpecError(tuple(exc.diagnostics)) from None
    source = Path(spec).read_text(encoding="utf-8")
    result = run_backtest(artifact, candles, source, sha256(dump_model(artifact)), params,
                          capital=capital, fee_bps=fee_bps)
    run_id = None
    if record:
        from .registry.store import Registry

        with Registry(project_root) as registry:
            run_id = registry.record_backtest(result)
    return BacktestRun(result, run_id)


def _timestamp(text: str | None, option: str) -> Any:
    if text is None:
        return None
    import pandas as pd

    from .lang.project import UsageError

    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise UsageError(diag("U005", f"{option} {text!r} is not a date", option,
                              help="use ISO dates like 2024-01-31 or 2024-01-31T12:00")) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
