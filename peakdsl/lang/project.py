"""Files → checked project: discovery, per-file checks, and the cross-file checks.

References are resolved lazily by name (a declaration's name equals its file stem), so
checking one portfolio parses just the strategies it names, not the whole library.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import ast
from .checker import CheckedSpec, check_module
from .diagnostics import Diagnostic, Label, diag, did_you_mean, has_errors, sort_diagnostics
from .parser import parse_bytes
from .scalar import ScalarError, eval_scalar
from .source import Span
from .typecheck import ParamInfo
from .types import Unit

SPEC_SUFFIX = ".peak"
REFERENCE_KINDS = {"component": ("strategy", "portfolio"), "risk": ("risk",)}


class UsageError(Exception):
    """Bad command-line input (exit 2), carrying its diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


@dataclass
class Project:
    """Checked specs by name, the files they came from, and every diagnostic."""

    root: Path
    specs: dict[str, CheckedSpec] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    def ordered(self) -> list[CheckedSpec]:
        """Requested specs and their dependencies, dependencies first, then by kind/name."""
        rank = {"risk": 0, "promotion": 1, "strategy": 2, "portfolio": 3}
        return sorted(self.specs.values(), key=lambda s: (rank[s.kind], _depth(self, s), s.name))


def _depth(project: Project, spec: CheckedSpec, seen: frozenset[str] = frozenset()) -> int:
    if spec.kind != "portfolio" or spec.name in seen:
        return 0
    deps = [project.specs[c.strategy] for c in spec.items(ast.Component)
            if c.strategy in project.specs]
    return 1 + max((_depth(project, d, seen | {spec.name}) for d in deps), default=0)


def find_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` that has a ``specs/`` folder."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "specs").is_dir():
            return candidate
    return start if start.is_dir() else start.parent


def display_path(path: Path) -> str:
    """How a file is named in diagnostics: relative to the working directory when inside it."""
    try:
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix() \
            if path.resolve().is_relative_to(Path.cwd()) else path.resolve().as_posix()
    except ValueError:
        return path.as_posix()


def discover(paths: Sequence[str]) -> list[Path]:
    """Spec files named by ``paths`` (folders searched recursively), sorted and unique."""
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(diag("U001", f"no such file or folder: {raw}", raw,
                                  help="give a .peak file or a folder of them"))
        if path.is_dir():
            found.update(p.resolve() for p in path.rglob(f"*{SPEC_SUFFIX}") if p.is_file())
        else:
            found.add(path.resolve())
    if not found:
        raise UsageError(diag("U002", "no .peak files found in " + ", ".join(paths),
                              paths[0] if paths else ".", help="specs end in .peak"))
    return sorted(found)


def spec_index(root: Path, extra: Iterable[Path]) -> dict[str, list[Path]]:
    """Every spec file a reference could point at, by stem."""
    search = root / "specs" if (root / "specs").is_dir() else root
    files = set(search.rglob(f"*{SPEC_SUFFIX}")) | set(extra)
    index: dict[str, list[Path]] = {}
    for path in sorted(p.resolve() for p in files):
        index.setdefault(path.stem, []).append(path)
    return index


class Loader:
    """Parses and checks files once each, resolving references on demand."""

    def __init__(self, root: Path, requested: list[Path]) -> None:
        self.project = Project(root)
        self.index = spec_index(root, requested)

    def load(self, path: Path) -> CheckedSpec | None:
        shown = display_path(path)
        result = parse_bytes(shown, path.read_bytes())
        self.project.diagnostics.extend(result.diagnostics)
        if result.module is None:
            self.project.failed.add(path.stem)
            return None
        spec, diags = check_module(result.module)
        self.project.diagnostics.extend(diags)
        if has_errors(diags):
            self.project.failed.add(spec.name)
        self.check_identity(spec, path)
        if spec.name not in self.project.specs:
            self.project.specs[spec.name] = spec
            self.project.files[spec.name] = path
        return spec

    def check_identity(self, spec: CheckedSpec, path: Path) -> None:
        """N004/N005: the declaration's name is its file's stem (the language server checks
        one open file with it too)."""
        if spec.name != path.stem:
            self.project.diagnostics.append(diag(
                "N005", f"{spec.kind} `{spec.name}` is in `{path.name}`", spec.path,
                spec.decl.name_span, f"rename it `{path.stem}` or the file `{spec.name}.peak`"))
        twins = [p for p in self.index.get(path.stem, []) if p != path]
        if twins:
            self.project.diagnostics.append(diag(
                "N004", f"`{path.stem}` is declared in {len(twins) + 1} files", spec.path,
                spec.decl.name_span, "names are unique across the project; rename one: "
                + ", ".join(display_path(p) for p in twins)))

    def resolve(self, name: str) -> CheckedSpec | None:
        if name in self.project.specs:
            return self.project.specs[name]
        paths = self.index.get(name)
        if not paths or name in self.project.failed:
            return None
        return self.load(paths[0])


def load_project(paths: Sequence[str], root: Path | None = None) -> Project:
    """Check the files named by ``paths`` and everything they reference."""
    requested = discover(paths)
    root = root or find_root(requested[0].parent if requested[0].is_file() else requested[0])
    loader = Loader(root, requested)
    for path in requested:
        spec = loader.load(path)
        if spec is not None:
            loader.project.requested.append(spec.name)
    pending = [s for s in list(loader.project.specs.values()) if s.kind == "portfolio"]
    checked: set[str] = set()
    while pending:
        spec = pending.pop()
        if spec.name in checked:
            continue
        checked.add(spec.name)
        check_references(loader, spec)
        pending.extend(s for s in loader.project.specs.values()
                       if s.kind == "portfolio" and s.name not in checked)
    check_cycles(loader.project)
    loader.project.diagnostics = sort_diagnostics(loader.project.diagnostics)
    return loader.project


# ---------------------------------------------------------------- references


def check_references(loader: Loader, spec: CheckedSpec) -> None:
    """Components name strategies or portfolios, `risk` names a risk spec; overrides fit."""
    out = loader.project.diagnostics
    for item in spec.decl.items:
        if isinstance(item, ast.Component):
            target = _resolve(loader, spec, item.strategy, item.name_span, "component")
            if target is not None:
                out.extend(check_overrides(spec.path, item, target))
                out.extend(check_currency(spec, target, item.name_span))
        elif isinstance(item, ast.RiskRef):
            target = _resolve(loader, spec, item.name, item.name_span, "risk")
            if target is not None:
                out.extend(check_currency(spec, target, item.name_span))


# where a referenced spec states its currency: a strategy's market quote, a portfolio's
# capital, a risk spec's order limit
_CURRENCY_OF = {"strategy": ("market", "quote"), "portfolio": ("capital", "currency"),
                "risk": ("max_order_notional", "currency")}


def _currency(spec: CheckedSpec) -> str | None:
    key, attr = _CURRENCY_OF[spec.kind]
    setting = spec.settings().get(key)
    value = getattr(setting.value, attr, None) if setting is not None else None
    return value if isinstance(value, str) else None


def check_currency(spec: CheckedSpec, target: CheckedSpec, span: Span) -> list[Diagnostic]:
    """A portfolio's capital, its components' markets and its risk limits share one
    currency: peak converts none (C004)."""
    mine, theirs = _currency(spec), _currency(target)
    if mine is None or theirs is None or mine == theirs:
        return []
    return [diag("C004", f"`{target.name}` is in {theirs}, but `{spec.name}`'s capital is in "
                 f"{mine}", spec.path, span,
                 help="peak does not convert currencies: use components, risk limits and "
                 f"capital in one currency ({mine} here)",
                 labels=[Label(target.path, target.decl.name_span, "declared here")])]


def _resolve(loader: Loader, spec: CheckedSpec, name: str, span: Span, role: str
             ) -> CheckedSpec | None:
    kinds = REFERENCE_KINDS[role]
    target = loader.resolve(name)
    if target is None:
        if name in loader.project.failed:
            return None
        wanted = [n for n, s in loader.project.specs.items() if s.kind in kinds]
        loader.project.diagnostics.append(diag(
            "N006", f"no {' or '.join(kinds)} named `{name}`", spec.path, span,
            did_you_mean(name, [*loader.index, *wanted]) or "create specs/…/" + name + ".peak"))
        return None
    if target.kind not in kinds:
        loader.project.diagnostics.append(diag(
            "N007", f"`{name}` is a {target.kind}, but `{role}` needs a {' or '.join(kinds)}",
            spec.path, span, labels=[Label(target.path, target.decl.name_span, "declared here")]))
        return None
    return target


def check_overrides(path: str, comp: ast.Component, target: CheckedSpec) -> list[Diagnostic]:
    """Per-component param overrides name real params and stay in range, step and requires."""
    out: list[Diagnostic] = []
    params = {p.name: p for p in target.params}
    values = {p.name: p.default for p in target.params}
    declared = {p.name for p in target.items(ast.Param)}
    for override in comp.overrides:
        info = params.get(override.name)
        if info is None and override.name in declared:
            continue  # the param exists but its declaration has an error, reported there
        if info is None:
            out.append(diag("N014", f"`{target.name}` has no param `{override.name}`", path,
                            override.span, did_you_mean(override.name, params)
                            or "params: " + (", ".join(params) or "none")))
            continue
        value = override_value(info, override.value)
        problem = _override_problem(info, value)
        if problem:
            out.append(diag("T010", f"override `{override.name}`: {problem}", path,
                            override.value.span, f"`{info.name}` is declared in {target.path}"))
            continue
        assert value is not None
        values[override.name] = value
    if out:
        return out
    for req in target.items(ast.Require):
        try:
            holds = eval_scalar(req.expr, values)
        except ScalarError:
            continue
        if not holds:
            out.append(diag("T010", "overrides violate a require constraint of "
                            f"`{target.name}`", path, comp.name_span,
                            labels=[Label(target.path, req.span, "constraint")]))
    return out


def override_value(info: ParamInfo, expr: ast.Expr) -> float | None:
    """The numeric value of an override literal of the param's unit, else None."""
    negate = isinstance(expr, ast.Neg)
    inner = expr.operand if isinstance(expr, ast.Neg) else expr
    wanted = {Unit.PERCENT: ast.Percent, Unit.BPS: ast.Bps}.get(info.unit, ast.Number)
    if not isinstance(inner, wanted):
        return None
    if info.unit is Unit.INT and not (isinstance(inner, ast.Number) and inner.is_int):
        return None
    value = float(inner.value)  # type: ignore[union-attr]
    return -value if negate else value


def _override_problem(info: ParamInfo, value: float | None) -> str:
    if value is None:
        return f"expected {info.type} literal"
    if not info.low <= value <= info.high:
        return f"{value:g} is outside {info.low:g}..{info.high:g}"
    if info.step is not None:
        k = (value - info.low) / info.step
        if not math.isclose(k, round(k), abs_tol=1e-9):
            return f"{value:g} is not on the step {info.step:g} from {info.low:g}"
    return ""


def check_cycles(project: Project) -> None:
    """Portfolios may hold portfolios, but never themselves, directly or not."""
    graph = {s.name: [c for c in s.items(ast.Component) if c.strategy in project.specs
                      and project.specs[c.strategy].kind == "portfolio"]
             for s in project.specs.values() if s.kind == "portfolio"}
    reported: set[frozenset[str]] = set()
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for comp in graph.get(node, []):
                if comp.strategy == start:
                    cycle = frozenset(trail)
                    if cycle not in reported:
                        reported.add(cycle)
                        spec = project.specs[node]
                        project.diagnostics.append(diag(
                            "N008", "reference cycle: " + " → ".join([*trail, start]),
                            spec.path, comp.name_span, "a portfolio cannot contain itself"))
                elif comp.strategy not in trail:
                    stack.append((comp.strategy, [*trail, comp.strategy]))
