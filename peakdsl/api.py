"""The library API: every CLI command is a thin wrapper over a function here that returns data.

Heavy modules (compiler models, numpy, pandas, numexpr) are imported inside the functions
that need them, so ``peak check`` never pays for them.

From a notebook (docs/notebook.md): ``backtest``, ``sweep`` and ``walkforward`` take a spec
as a path or as its text and candles as a file or a pandas DataFrame (validated as a file
import is), and their results offer DataFrames (``peakdsl.frames``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from .lang.diagnostics import Diagnostic, diag, has_errors
from .lang.project import Project, load_project

if TYPE_CHECKING:
    import pandas as pd

    from .backtest import BacktestResult
    from .compile.models import Artifact
    from .drill.model import DrillOutcome
    from .frames import SweepRun, WalkForwardRun
    from .live.ops import Health
    from .portfolio.doc import PortfolioDoc
    from .portfolio.run import PortfolioResult
    from .review.model import DiffResult


@dataclass(frozen=True, slots=True)
class CheckResult:
    project: Project
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def check(paths: Sequence[str] = ("specs",), root: Path | None = None) -> CheckResult:
    """Parse and check specs (and what they reference); never raises on bad specs."""
    regular_paths(paths)
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

    root = find_root(project_folder(root) or Path.cwd())
    out_dir = out_dir or root / "compiled"
    project = load_project([str(root / "specs")], root)
    if not project.ok:
        return CompileResult(tuple(project.diagnostics), (), out_dir, {})
    compiled = compile_specs(project)
    if check_only:
        changed = stale_files(out_dir, compiled.files)
    else:
        changed = write_compiled(out_dir, compiled.files)
    return CompileResult((*project.diagnostics, *compiled.notes), tuple(changed), out_dir,
                         dict(compiled.artifacts))


def project_folder(root: Path | None) -> Path | None:
    """An explicit ``--root``, checked: U001 when it does not exist, U007 when it is a file."""
    if root is None or root.is_dir():
        return root
    from .lang.project import UsageError, display_path

    shown = display_path(root)
    if root.exists():
        raise UsageError(diag("U007", f"--root {shown}: is a file, not a folder", "--root",
                              help="--root takes the project folder (the one holding specs/)"))
    raise UsageError(diag("U001", f"--root {shown}: no such folder", "--root",
                          help="--root takes the project folder (the one holding specs/)"))


def regular_paths(paths: Sequence[str]) -> None:
    """U007 for a spec path that is neither a file nor a folder: reading ``/dev/zero`` or a
    pipe as a spec would never end."""
    from .lang.project import UsageError

    for raw in paths:
        path = Path(raw)
        if path.exists() and not (path.is_file() or path.is_dir()):
            raise UsageError(diag("U007", f"{raw} is not a regular file (a device, pipe or "
                                  "socket)", raw, help="give a .peak file or a folder of them"))


def _one_spec_file(path: str) -> None:
    """U007 when a command that runs one spec is given a folder (it would pick one at random)
    or something that is not a file at all."""
    regular_paths([path])
    folder = Path(path)
    if not folder.is_dir():
        return
    from .lang.project import UsageError

    found = sorted(folder.rglob("*.peak"), key=lambda p: ("strategies" not in p.parts, p))
    example = next(iter(found), None)
    raise UsageError(diag("U007", f"{path} is a folder; this command takes one spec file",
                          path, help=f"e.g. {example.as_posix()}" if example
                          else "give the path of a .peak file"))


def compile_spec(path: str, root: Path | None = None) -> Artifact:
    """Compile one spec in memory (with what it references) and return its artifact model."""
    from .compile.artifacts import compile_specs

    _one_spec_file(path)
    project = load_project([path], root)
    if not project.ok:
        raise SpecError(tuple(project.diagnostics))
    compiled = compile_specs(project)
    name = project.requested[0]
    return compiled.artifacts[name]


def compile_source(text: str, name: str | None = None) -> Artifact:
    """Compile one self-contained spec given as text (notebooks, benchmarks, tests).

    ``name`` is the declaration's name (the file stem it would have); None takes it from the
    text. References to other specs cannot resolve here; use ``compile_spec`` on files for
    portfolios.
    """
    from .compile.artifacts import build_artifact
    from .lang.checker import check_module
    from .lang.parser import parse_text

    path = f"{name or 'spec'}.peak"
    parsed = parse_text(text, path)
    if parsed.module is None:
        raise SpecError(parsed.diagnostics)
    if name is None:  # again, named as the file it would be (diagnostics show that name)
        return compile_source(text, parsed.module.decl.name)
    spec, diags = check_module(parsed.module)
    if has_errors(diags):
        raise SpecError(tuple(diags))
    return cast("Artifact", build_artifact(spec, text.encode("utf-8"), path, {}))


class SpecError(Exception):
    """Raised by API functions that need a valid spec; carries the diagnostics."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        super().__init__(_errors_text(diagnostics))
        self.diagnostics = diagnostics


def _errors_text(diagnostics: Sequence[Diagnostic], shown: int = 10) -> str:
    """``2 spec error(s)`` and then the first errors, one a line, with their codes: what a
    notebook shows of the exception (the CLI renders ``diagnostics`` itself)."""
    from .lang.render import render_text

    errors = [d for d in diagnostics if d.is_error]
    lines = render_text(errors[:shown], lambda _path: None).splitlines()[:-1]
    more = [f"… and {len(errors) - shown} more"] if len(errors) > shown else []
    return "\n".join([f"{len(errors)} spec error(s)", *lines, *more]).rstrip()


@dataclass(frozen=True)
class BacktestRun:
    """A finished backtest and its registry id (None when not recorded), with its trades,
    equity and metrics as pandas objects (``peakdsl.frames``, docs/notebook.md)."""

    result: BacktestResult
    run_id: str | None

    @property
    def trades(self) -> pd.DataFrame:
        """One row per trade (closed, then an ``end_of_data mark`` position left open)."""
        return self.result.trades_frame()

    @property
    def equity(self) -> pd.DataFrame:
        """Per bar: ``equity``, ``drawdown`` and ``position``, on a UTC ``time`` index."""
        from .frames import backtest_equity

        return backtest_equity(self.result)

    @property
    def metrics(self) -> pd.Series:
        """Every metric by name, float64 (NaN: undefined), named after the spec."""
        from .frames import metrics_series

        return metrics_series(self.result.metrics, self.result.spec)


def data_source(data: Path | str | pd.DataFrame | None) -> Path | pd.DataFrame | None:
    """``data=`` as a run takes it: a path (``str`` or ``Path``), a DataFrame or None; U005
    for anything else, before any work."""
    import pandas as pd

    if data is None or isinstance(data, Path | pd.DataFrame):
        return data
    if isinstance(data, str):
        return Path(data)
    from .lang.project import UsageError

    raise UsageError(diag("U005", f"data={type(data).__name__}: not candles", "data",
                          help="give a CSV or Parquet file's path or a pandas DataFrame "
                               "(a DatetimeIndex or a time column; open high low close "
                               "volume)"))


def backtest(spec: str | Path, *, root: Path | None = None,
             data: Path | str | pd.DataFrame | None = None,
             start: str | None = None, end: str | None = None,
             overrides: Sequence[str] = (), fee_bps: float | None = None,
             capital: float = 10_000.0, record: bool = True,
             outputs: Callable[[BacktestResult], None] | None = None,
             risk: str | None = None) -> BacktestRun:
    """Resolve ``spec`` (``peakdsl.resolve``), run it, write its outputs, and (by default)
    record it.

    ``spec`` is a spec file or a spec's text; ``data`` a CSV or Parquet file or a pandas
    DataFrame (validated as ``peak data import`` validates a file; docs/notebook.md).

    ``outputs(result)`` writes what the caller asked for (reports, trades); the run is recorded
    only after it returned, so a run whose outputs failed leaves no registry row. The registry
    is opened before the run, so a project that cannot record (read-only, a damaged registry)
    fails in a second, not after the run. ``risk`` names a risk spec (or its file) whose
    limits the run enforces. Raises ``SpecError`` with diagnostics for spec, override or data
    problems and ``UsageError`` for bad input and unwritable paths.
    """
    from .backtest import run_backtest
    from .registry.recording import open_registry, record_backtest
    from .repro import command_line
    from .resolve import resolve

    resolved = resolve("backtest", str(spec), root=root, data=data_source(data), start=start,
                       end=end, overrides=overrides, capital=capital, fee_bps=fee_bps,
                       risk=risk)
    registry = open_registry(resolved.root) if record else None
    try:
        result = run_backtest(resolved.artifact, resolved.candles, resolved.source_text,
                              resolved.artifact_sha256, resolved.params, capital=capital,
                              fee_bps=fee_bps, risk=resolved.risk)
        result = replace(result, command=command_line(resolved))  # the reports show it
        if outputs is not None:
            outputs(result)
        run_id = (record_backtest(registry, result, command_line(resolved, base=resolved.root))
                  if registry is not None else None)
    finally:
        if registry is not None:
            registry.close()
    return BacktestRun(result, run_id)


@dataclass(frozen=True)
class PortfolioRun:
    """A finished portfolio backtest, its document and its registry id (None: not recorded)."""

    result: PortfolioResult
    doc: PortfolioDoc
    run_id: str | None


def portfolio_backtest(spec: str, *, root: Path | None = None, start: str | None = None,
                       end: str | None = None, fee_bps: float | None = None,
                       capital: float | None = None, risk: str | None = None,
                       record: bool = True,
                       outputs: Callable[[PortfolioResult, PortfolioDoc],
                                         Mapping[str, Path]] | None = None) -> PortfolioRun:
    """Backtest the portfolio ``spec``: every component on its own market and timeframe,
    one account (docs/portfolio.md). ``risk`` replaces the portfolio's own risk spec;
    ``capital`` its capital. ``outputs(result, doc)`` writes what the caller asked for and
    returns the files, recorded with the run. Raises ``SpecError`` (spec or data problems,
    exit 1) and ``UsageError`` (bad options, exit 2)."""
    from .portfolio.doc import portfolio_doc
    from .portfolio.plan import portfolio_plan
    from .portfolio.record import portfolio_records
    from .portfolio.run import run_portfolio
    from .registry.recording import open_registry, record_run

    plan, risk_sha = portfolio_plan(spec, root=root, start=start, end=end, capital=capital,
                                    risk=risk)
    registry = open_registry(plan.root) if record else None
    try:
        result = run_portfolio(plan, fee_bps)
        doc = portfolio_doc(result, None)
        files = outputs(result, doc) if outputs is not None else {}
        run_id = None
        if registry is not None:
            run_id = record_run(registry, *portfolio_records(
                doc, result.timing, risk_sha, files))
    finally:
        if registry is not None:
            registry.close()
    return PortfolioRun(result, doc.model_copy(update={"run_id": run_id}), run_id)


def sweep(spec: str | Path, *, root: Path | None = None,
          data: Path | str | pd.DataFrame | None = None,
          start: str | None = None, end: str | None = None, sets: Sequence[str] = (),
          mode: str = "grid", n: int | None = None, seed: int | None = None,
          objective: str = "sharpe", capital: float = 10_000.0, fee_bps: float | None = None,
          workers: int | None = None, scheduler: str | None = None,
          record: bool = True) -> SweepRun:
    """`peak sweep` from Python: every combination of ``spec``'s param space (narrowed by
    ``sets``, e.g. ``"fast=10..30"``), ranked by ``objective`` (docs/sweep.md); ``.table``
    is the ranking as a DataFrame. ``spec`` and ``data`` as for ``backtest``. Raises
    ``SpecError`` / ``UsageError`` like ``backtest``."""
    from dataclasses import replace

    from .frames import SweepRun
    from .research.sweep import run_sweep
    from .research.types import RunConfig
    from .resolve import is_spec_text

    result = run_sweep(str(spec), root=root, data=data_source(data), start=start, end=end,
                       sets=sets, mode=mode, n=n, seed=seed, objective=objective,
                       run=RunConfig(capital=capital, fee_bps=fee_bps), workers=workers,
                       scheduler=scheduler, record=record)
    if is_spec_text(str(spec)):  # the file it would be, not the whole text
        result = replace(result, spec_path=f"{result.spec}.peak")
    return SweepRun.of(result)


def walkforward(spec: str | Path, *, train: str, test: str, step: str | None = None,
                anchored: bool = False, objective: str = "sharpe", sets: Sequence[str] = (),
                root: Path | None = None, data: Path | str | pd.DataFrame | None = None,
                start: str | None = None, end: str | None = None, capital: float = 10_000.0,
                fee_bps: float | None = None, workers: int | None = None,
                scheduler: str | None = None, record: bool = True, mode: str = "grid",
                n: int | None = None, seed: int | None = None) -> WalkForwardRun:
    """`peak walkforward` from Python: optimise on each train window, score out of sample
    (docs/walkforward.md). ``train``/``test``/``step`` are lengths such as ``"2000"`` bars or
    ``"90d"``; ``mode="random"`` with ``n`` and ``seed`` tries ``n`` random param sets.
    ``.table`` has a row per window, ``.equity``, ``.trades`` and ``.metrics`` the stitched
    out-of-sample run. ``spec`` and ``data`` as for ``backtest``. Raises ``SpecError`` /
    ``UsageError`` like ``backtest``."""
    from .frames import WalkForwardRun
    from .research.walkforward import walkforward as run_walkforward

    return WalkForwardRun.of(run_walkforward(
        str(spec), train=train, test=test, step=step, anchored=anchored, objective=objective,
        mode=mode, n=n, seed=seed, sets=sets, root=root, data=data_source(data), start=start,
        end=end, capital=capital, fee_bps=fee_bps, workers=workers, scheduler=scheduler,
        record=record))


def diff(a: str, b: str | None = None, *, root: Path | None = None,
         impact: bool = False) -> DiffResult:
    """`peak diff` from Python: two files, two folders, revision ``a`` against the work tree
    (``b`` None), or the range ``a = "v1..v2"``, compared semantically (docs/diff.md).
    ``impact`` also backtests both versions of every changed strategy and portfolio on the
    project's data. Raises ``SpecError`` (a spec that does not check, on either side; a
    ``review.SnapshotError`` that also carries the files' texts, for snippets of a revision's
    files) and ``UsageError`` (U001, U007, U010, U011: arguments that name nothing usable)."""
    from .review import run_diff

    return run_diff(a, b, root=project_folder(root), impact=impact)


# ---------------------------------------------------------------- operating (docs/live.md)


def live_health(spec: str, *, mode: str = "paper", account: str = "default",
                exchange: str = "binance", endpoint: str | None = None,
                risk: str | None = None) -> Health:
    """`peak live health` from Python: every check of a deployment before the day (config,
    credentials named never shown, exchange, clock skew, data freshness, risk limits, alert
    sinks, kill switch), each with its status, code and fix; ``.ok`` is the exit code's
    meaning. The risk spec is the one the deployment recorded, or ``risk``."""
    from .live.ops import HealthContext, health

    return health(HealthContext(spec, mode, account, exchange, endpoint, None, risk=risk))


def live_status(spec: str, *, mode: str, account: str = "default",
                risk: str | None = None) -> dict[str, object]:
    """`peak live status --json` from Python: kill switch, sessions, the risk spec the
    deployment runs under, equity and PnL, each limit's use, denials, positions, open
    orders, recent problems. Raises ``SpecError`` / ``UsageError`` as the command exits 1 / 2
    (no such spec, no such deployment, a store that cannot be read)."""
    import time

    from .live.deployed import deployed_plan
    from .live.ops import status_doc
    from .live.store import LiveStore

    where, deployed = deployed_plan(spec, mode, account, risk)
    with LiveStore.open(where.store_path, readonly=True) as store:
        return status_doc(store, deployed.plan, time.time(), risk=deployed.doc())


def drill(name: str) -> DrillOutcome:
    """`peak drill NAME` from Python, without logging it: the scripted incident on a scratch
    deployment against the loopback exchange, and whether the system reacted as its runbook
    says (docs/runbooks.md). ``UsageError`` (U008) for a name that is no drill."""
    from .drill.catalog import NAMES
    from .drill.run import run_drill
    from .lang.project import UsageError

    if name not in NAMES:
        raise UsageError(diag("U008", f"no drill `{name}`", "drill",
                              help="drills: " + ", ".join(NAMES)))
    return run_drill(name)
