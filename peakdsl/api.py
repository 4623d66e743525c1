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
