"""The library API: every CLI command is a thin wrapper over a function here that returns data.

Heavy modules (compiler models, numpy, pandas, numexpr) are imported inside the functions
that need them, so ``peak check`` never pays for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .lang.diagnostics import Diagnostic, has_errors
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


class SpecError(Exception):
    """Raised by API functions that need a valid spec; carries the diagnostics."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        super().__init__(f"{sum(d.is_error for d in diagnostics)} spec error(s)")
        self.diagnostics = diagnostics
