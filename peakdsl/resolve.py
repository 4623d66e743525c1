"""The resolve stage: a spec path and run options → a ``ResolvedRun`` every run kind starts from.

Backtests, sweeps and walk-forwards all begin the same way — find the project, compile the
spec with what it references, refuse the wrong kind of spec, apply ``--set`` overrides, load
the candles the spec's market and timeframe select (``--data``, the cache, or the synthetic
demo market) within ``--from``/``--to``, hash the artifact — and used to each write it out.
Here it is once, with one typed result, so a later run kind (portfolio, robustness, live)
adds a row to ``RUN_KINDS``, not a fourth copy.

Raises ``SpecError`` (spec, override or data problems: exit 1) and ``UsageError`` (the wrong
kind of spec, unreadable dates, a risk spec that does not fit: exit 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lang.diagnostics import diag, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from .compile import models as m
    from .data.candles import CandleSet

DATES = ("1970-01-01", "2200-01-01")  # the range a candle time may have (as D003)


@dataclass(frozen=True)
class RunKind:
    """What a run kind accepts and how it says no."""

    command: str
    verb: str  # "runs", "sweeps": `peak backtest` runs strategies
    refusal_help: str


RUN_KINDS = {k.command: k for k in (
    RunKind("backtest", "runs", "portfolios run through `peak backtest` itself"),
    RunKind("sweep", "sweeps", "sweep the portfolio's components one by one"),
    RunKind("walkforward", "runs", "walk the portfolio's components forward one by one"),
    RunKind("robustness", "studies", "portfolios are studied through their own plan"),
)}


@dataclass(frozen=True)
class DataProvenance:
    """Where a run's candles came from, as reports and the registry show it."""

    source: str  # a file, the cache, or "synthetic demo (seed …)"
    synthetic: bool
    fingerprint: str  # sha256 of the canonical candles
    bars: int
    start: str  # ISO time of the first bar ("" when there are none)
    end: str
    requested_from: str | None = None  # `--from` / `--to` as given
    requested_to: str | None = None
    resampled_from: str | None = None  # the cached or file timeframe, when resampled

    @classmethod
    def of(cls, candles: CandleSet, start: str | None, end: str | None) -> DataProvenance:
        times = candles.frame.index
        return cls(candles.source, candles.synthetic, candles.fingerprint, len(times),
                   times[0].isoformat() if len(times) else "",
                   times[-1].isoformat() if len(times) else "", start, end,
                   candles.resampled_from)


@dataclass(frozen=True)
class ResolvedRun:
    """One strategy run's inputs, resolved: what every run kind starts from."""

    kind: str  # a RUN_KINDS key
    root: Path
    spec_path: str
    source_text: str
    artifact: m.StrategyArtifact
    artifact_json: str  # canonical JSON (what workers receive)
    artifact_sha256: str
    params: dict[str, float]  # the defaults with the `--set` overrides applied
    candles: CandleSet
    data: DataProvenance
    capital: float = 10_000.0
    fee_bps: float | None = None
    risk: m.RiskConfig | None = None
    data_path: Path | None = None  # `--data` (absolute), for the command line that reproduces
    risk_name: str | None = None  # `--risk` as given, likewise (peakdsl.repro)
    spec_from_text: bool = False  # the spec came as source text (a notebook): no file to name

    @property
    def config(self) -> m.StrategyConfig:
        return self.artifact.config


def resolve(kind: str, spec_path: str, *, root: Path | None = None,
            data: Path | pd.DataFrame | None = None,
            start: str | None = None, end: str | None = None,
            overrides: Sequence[str] = (), capital: float = 10_000.0,
            fee_bps: float | None = None, risk: str | None = None) -> ResolvedRun:
    """Resolve everything a ``kind`` run of ``spec_path`` needs (see the module docstring).

    ``spec_path`` may also be a spec's source text (``is_spec_text``; notebooks) and ``data``
    a pandas DataFrame, validated as a file is (``peakdsl.data.importer.import_frame``)."""
    from .api import SpecError
    from .compile.artifacts import dump_model, sha256
    from .compile.models import StrategyArtifact
    from .lang.project import UsageError, find_root
    from .overrides import resolve_overrides

    run_kind = RUN_KINDS[kind]
    text = is_spec_text(spec_path)
    project_root = find_root(root or (Path.cwd() if text else Path(spec_path).resolve().parent))
    artifact, source_text, spec_path = _compiled(spec_path, project_root)
    if not isinstance(artifact, StrategyArtifact):
        raise UsageError(diag(
            "U003", f"`peak {kind}` {run_kind.verb} strategies; {spec_path} is a "
            f"{getattr(artifact, 'kind', '?')}", spec_path, help=run_kind.refusal_help))
    params, problems = resolve_overrides(artifact.config, overrides)
    if problems:
        raise SpecError(tuple(problems))
    market = artifact.config.market
    risk_cfg = risk_config(risk, project_root, market.quote, market.symbol) if risk else None
    candles = _candles(artifact.config, project_root, data, start, end)
    artifact_bytes = dump_model(artifact)
    return ResolvedRun(
        kind=kind, root=project_root, spec_path=spec_path,
        source_text=source_text, artifact=artifact,
        artifact_json=artifact_bytes.decode("utf-8"), artifact_sha256=sha256(artifact_bytes),
        params=dict(params), candles=candles, data=DataProvenance.of(candles, start, end),
        capital=capital, fee_bps=fee_bps, risk=risk_cfg,
        data_path=data.resolve() if isinstance(data, Path) else None, risk_name=risk,
        spec_from_text=text)


def is_spec_text(spec: str) -> bool:
    """Whether ``spec`` is a spec's source rather than a path: every declaration has a brace,
    no sensible path does."""
    return "{" in spec


def _compiled(spec: str, root: Path) -> tuple[m.Artifact, str, str]:
    """The artifact of a spec file or text, its source and the path runs record (for a text
    the file it would be, ``NAME.peak``)."""
    from .api import compile_source, compile_spec

    if is_spec_text(spec):
        artifact = compile_source(spec)
        return artifact, spec, artifact.source.path
    return compile_spec(spec, root), Path(spec).read_text(encoding="utf-8"), spec


@dataclass(frozen=True)
class LoadedPortfolio:
    """A portfolio spec compiled and its run options read (its components are resolved by
    ``peakdsl.portfolio.plan``)."""

    root: Path
    artifact: m.PortfolioArtifact
    start: Any  # pandas Timestamp or None
    end: Any
    risk: m.RiskConfig | None
    risk_sha256: str | None


def load_portfolio(spec_path: str, *, root: Path | None = None, start: str | None = None,
                   end: str | None = None, risk: str | None = None) -> LoadedPortfolio:
    """Compile ``spec_path`` as a portfolio (U003 for any other kind) and resolve its risk
    spec: ``risk`` (a name or a file) replaces the portfolio's own."""
    from .api import compile_spec
    from .compile.artifacts import dump_model, sha256
    from .compile.models import PortfolioArtifact
    from .lang.project import UsageError, find_root

    project_root = find_root(root or Path(spec_path).resolve().parent)
    artifact = compile_spec(spec_path, project_root)
    if not isinstance(artifact, PortfolioArtifact):
        raise UsageError(diag(
            "U003", f"{spec_path} is a {getattr(artifact, 'kind', '?')}, not a portfolio",
            spec_path, help="`peak backtest` runs strategies and portfolios"))
    cfg = artifact.config
    name = risk or cfg.risk
    limits = (risk_artifact(name, project_root, cfg.capital.currency, f"portfolio {cfg.name}")
              if name else None)
    return LoadedPortfolio(project_root, artifact, timestamp(start, "--from"),
                           timestamp(end, "--to"), limits.config if limits else None,
                           sha256(dump_model(limits)) if limits else None)


def _candles(cfg: m.StrategyConfig, root: Path, data: Path | pd.DataFrame | None,
             start: str | None, end: str | None) -> CandleSet:
    from .api import SpecError
    from .data import DataError
    from .data.frames import load_run
    from .data.select import require_volume

    try:
        candles = load_run(cfg, root, data, timestamp(start, "--from"), timestamp(end, "--to"))
        require_volume(cfg, candles)
        return candles
    except DataError as exc:
        raise SpecError(tuple(exc.diagnostics)) from None


def risk_config(risk: str, root: Path, quote: str, owner: str) -> m.RiskConfig:
    """The ``RiskConfig`` of the risk spec ``risk`` (a name under ``specs/`` or a file) for a
    run in ``quote`` currency (``owner``: the market or portfolio, for the message): its money
    limits must be in that currency."""
    return risk_artifact(risk, root, quote, owner).config


def risk_artifact(risk: str, root: Path, quote: str, owner: str) -> m.RiskArtifact:
    """``risk_config``'s compiled artifact (whose hash a run records)."""
    from .api import compile_spec
    from .compile.models import RiskArtifact
    from .lang.project import UsageError, spec_index

    path = Path(risk)
    if not (path.suffix == ".peak" and path.is_file()):
        found = spec_index(root, []).get(risk, [])
        if len(found) != 1:
            names = sorted(p.stem for p in (root / "specs" / "risk").glob("*.peak"))
            raise UsageError(diag(
                "U001", f"--risk {risk}: no risk spec of that name", "--risk",
                help=did_you_mean(risk, names) or "give a risk spec's name "
                "(specs/risk/NAME.peak) or its file"))
        path = found[0]
    artifact = compile_spec(str(path), root)
    if not isinstance(artifact, RiskArtifact):
        raise UsageError(diag("U003", f"--risk {risk}: {path} is a "
                              f"{getattr(artifact, 'kind', '?')}, not a risk spec", "--risk"))
    currency = artifact.config.max_order_notional.currency
    if currency != quote:
        raise UsageError(diag(
            "U005", f"--risk {risk}: max_order_notional is in {currency}, but {owner} "
            f"is in {quote}", "--risk",
            help="use a risk spec written in the market's quote currency"))
    return artifact


def _utc(text: str) -> Any:
    """``text`` as a UTC timestamp (naive means UTC), or None when pandas cannot place it."""
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
        if stamp is pd.NaT:
            return None
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    except (ValueError, TypeError, OverflowError):
        return None


def timestamp(text: str | None, option: str) -> Any:
    """``--from``/``--to`` as a UTC timestamp, or U005: unreadable, NaT, or outside 1970–2200."""
    if text is None:
        return None
    import pandas as pd

    from .lang.project import UsageError

    stamp = _utc(text)
    if stamp is None:
        raise UsageError(diag("U005", f"{option} {text!r} is not a date", option,
                              help="use ISO dates like 2024-01-31 or 2024-01-31T12:00"))
    if not pd.Timestamp(DATES[0], tz="UTC") <= stamp < pd.Timestamp(DATES[1], tz="UTC"):
        raise UsageError(diag("U005", f"{option} {text!r} is outside {DATES[0][:4]}.."
                              f"{DATES[1][:4]}", option,
                              help="market data lies between 1970 and 2200; check the year"))
    return stamp
