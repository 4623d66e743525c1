"""Resolve a portfolio: its components, each compiled, with its params and its candles.

A portfolio is a weighted list of strategies (or of portfolios, whose weights multiply); it
runs on one account over the window every component has data for. Here it is flattened
to strategies, each compiled with its per-component overrides, each given its own market
and timeframe's candles, and the data checked: all components on real data or all on the
synthetic demo (D017, never a mix), every component with bars in the common window (D015),
bars on their timeframe's grid (D016); a hole in one component's data is said (D009) — its
position is marked at its last price through it, never filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..compile import models as m
from ..data.candles import NS, CandleSet, format_time
from ..lang.diagnostics import Diagnostic, diag

if TYPE_CHECKING:
    from ..resolve import ResolvedRun

DAY = 86_400


@dataclass(frozen=True)
class Component:
    """One strategy of a (flattened) portfolio, resolved."""

    label: str  # the component's name; `outer/inner` inside a nested portfolio
    artifact: m.StrategyArtifact
    artifact_sha256: str
    source_text: str
    params: dict[str, float]
    weight: float  # of the whole portfolio's capital
    candles: CandleSet

    @property
    def config(self) -> m.StrategyConfig:
        return self.artifact.config


@dataclass(frozen=True)
class PortfolioPlan:
    """What a portfolio run starts from: the artifact, its components, the window."""

    root: Path
    spec_path: str
    source_text: str
    artifact: m.PortfolioArtifact
    artifact_sha256: str
    components: tuple[Component, ...]
    capital: float
    risk: m.RiskConfig | None
    start: pd.Timestamp
    end: pd.Timestamp  # the close of the last bar every component has
    warnings: tuple[Diagnostic, ...] = field(default=())
    strategy: bool = False  # a lone strategy run as a portfolio of one (``of_strategy``)

    @property
    def config(self) -> m.PortfolioConfig:
        return self.artifact.config

    @property
    def robustness(self) -> m.Robustness:
        """The `robustness {}` block of the spec itself (the strategy's for a lone one)."""
        if self.strategy:
            return self.components[0].config.robustness
        return self.config.robustness

    def with_components(self, components: Sequence[Component]) -> PortfolioPlan:
        return replace(self, components=tuple(components))

    @classmethod
    def of_strategy(cls, run: ResolvedRun) -> PortfolioPlan:
        """A strategy run (``peakdsl.resolve``) as a portfolio of one component at 100 %,
        without sleeves: it simulates exactly as ``peak backtest`` does (a test requires it),
        so robustness studies treat strategies and portfolios alike."""
        cfg = run.config
        portfolio = m.PortfolioArtifact(
            schema_version=run.artifact.schema_version,
            compiler_version=run.artifact.compiler_version, name=cfg.name,
            source=run.artifact.source, kind="portfolio",
            config=m.PortfolioConfig(
                name=cfg.name, description=cfg.description,
                capital=m.Money(amount=run.capital, currency=cfg.market.quote),
                components=[m.Component(name=cfg.name, kind="strategy", weight=1.0,
                                        artifact_sha256=run.artifact_sha256)],
                robustness=cfg.robustness))
        params = {p.name: p.default for p in cfg.params} | dict(run.params)
        component = Component(cfg.name, run.artifact, run.artifact_sha256, run.source_text,
                              params, 1.0, run.candles)
        index = run.candles.frame.index
        end = index[-1] + pd.Timedelta(seconds=run.candles.bar_seconds)
        return cls(run.root, run.spec_path, run.source_text, portfolio, run.artifact_sha256,
                   (component,), run.capital, run.risk, index[0], end,
                   tuple(run.candles.warnings), strategy=True)


@dataclass(frozen=True)
class _Leaf:
    label: str
    name: str
    weight: float
    overrides: dict[str, float]
    sha256: str


def flatten(config: m.PortfolioConfig, compile_named: _Compiler, prefix: str = "",
            scale: float = 1.0) -> list[_Leaf]:
    """The portfolio's strategies with their weights of the whole (nested weights multiply)."""
    leaves: list[_Leaf] = []
    for comp in config.components:
        label = f"{prefix}{comp.name}"
        if comp.kind == "portfolio":
            inner = compile_named(comp.name)
            assert isinstance(inner, m.PortfolioArtifact)
            leaves.extend(flatten(inner.config, compile_named, f"{label}/",
                                  scale * comp.weight))
        else:
            leaves.append(_Leaf(label, comp.name, scale * comp.weight, dict(comp.overrides),
                                comp.artifact_sha256))
    return leaves


class _Compiler:
    """Compiles referenced specs by name (each once), with their source text."""

    def __init__(self, root: Path) -> None:
        from ..lang.project import spec_index

        self.root = root
        self.index = spec_index(root, [])
        self.done: dict[str, tuple[m.Artifact, str, str]] = {}

    def __call__(self, name: str) -> m.Artifact:
        return self.load(name)[0]

    def load(self, name: str) -> tuple[m.Artifact, str, str]:
        """(artifact, its sha256, its source text)."""
        from ..api import compile_spec
        from ..compile.artifacts import dump_model, sha256

        if name not in self.done:
            path = self.index[name][0]
            artifact = compile_spec(str(path), self.root)
            self.done[name] = (artifact, sha256(dump_model(artifact)),
                               path.read_text(encoding="utf-8"))
        return self.done[name]


def resolve_portfolio(spec_path: str, artifact: m.PortfolioArtifact, root: Path, *,
                      start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
                      capital: float | None = None, risk: m.RiskConfig | None = None,
                      data_root: Path | None = None) -> PortfolioPlan:
    """Flatten, compile and load every component (module docstring); raises ``DataError``
    with the diagnostics when the components' data do not fit together. Components are
    compiled in ``root``; their candles come from ``data_root`` (default ``root``): `peak
    diff --impact` runs an old version, unpacked elsewhere, on the work tree's data."""
    from ..compile.artifacts import dump_model, sha256
    from ..data import DataError
    from ..data.frames import load_run
    from ..data.select import require_volume

    compiler = _Compiler(root)
    leaves = flatten(artifact.config, compiler)
    loaded = []
    for leaf in leaves:
        strategy, sha, text = compiler.load(leaf.name)
        assert isinstance(strategy, m.StrategyArtifact) and sha == leaf.sha256
        params = {p.name: p.default for p in strategy.config.params} | leaf.overrides
        cfg = strategy.config
        candles = load_run(cfg, data_root or root, start=start, end=end)
        require_volume(cfg, candles)  # D022: a volume rule on candles without volume
        loaded.append(Component(leaf.label, strategy, sha, text, params, leaf.weight, candles))
    problems = _mixed_sources(loaded) + _off_grid(loaded)
    if problems:
        raise DataError(problems)
    window_start, window_end = _window(loaded)
    if window_start >= window_end:
        raise DataError([_disjoint(loaded)])
    components = tuple(_trim(c, window_start, window_end) for c in loaded)
    empty = [c for c in components if c.candles.bars == 0]
    if empty:
        raise DataError([_no_bars(c, window_start, window_end) for c in empty])
    return PortfolioPlan(
        root=root, spec_path=spec_path, source_text=Path(spec_path).read_text("utf-8"),
        artifact=artifact, artifact_sha256=sha256(dump_model(artifact)),
        components=components, capital=capital or artifact.config.capital.amount, risk=risk,
        start=window_start, end=window_end,
        warnings=tuple(w for c in components for w in _gaps(c)))


def portfolio_plan(spec_path: str, *, root: Path | None = None, start: str | None = None,
                   end: str | None = None, capital: float | None = None,
                   risk: str | None = None) -> tuple[PortfolioPlan, str | None]:
    """The plan of the portfolio ``spec_path`` with the run options applied (``risk``
    replaces its own risk spec), and the sha256 of the risk spec it enforces. Raises
    ``SpecError`` for spec and data problems, ``UsageError`` for another kind of spec."""
    from ..api import SpecError
    from ..data import DataError
    from ..resolve import load_portfolio

    loaded = load_portfolio(spec_path, root=root, start=start, end=end, risk=risk)
    try:
        plan = resolve_portfolio(spec_path, loaded.artifact, loaded.root, start=loaded.start,
                                 end=loaded.end, capital=capital, risk=loaded.risk)
    except DataError as exc:
        raise SpecError(tuple(exc.diagnostics)) from None
    return plan, loaded.risk_sha256


def _mixed_sources(components: Sequence[Component]) -> list[Diagnostic]:
    """D017: some components on real data, some on the synthetic demo."""
    synthetic = [c for c in components if c.candles.synthetic]
    if not synthetic or len(synthetic) == len(components):
        return []
    real = next(c for c in components if not c.candles.synthetic)
    return [diag("D017", f"component `{c.label}` has no data for {c.config.market.symbol} "
                 f"{c.config.timeframe} (it would run on the synthetic demo), while "
                 f"`{real.label}` runs on {real.candles.source}", "<peak>",
                 help=f"import or fetch it: peak data import FILE --market "
                 f"{c.config.market.symbol} --timeframe {c.config.timeframe}")
            for c in synthetic]


def _off_grid(components: Sequence[Component]) -> list[Diagnostic]:
    """D016: a component's bars do not open on its timeframe's grid (for bars up to a day;
    weeks start on a weekday exchanges choose) or are closer than a bar apart."""
    out = []
    for c in components:
        seconds = c.candles.bar_seconds
        opens = c.candles.frame.index.as_unit("ns").asi8 // NS
        if seconds <= DAY and len(opens) and np.any(opens % seconds):
            first = int(np.argmax(opens % seconds != 0))
            out.append(diag("D016", f"component `{c.label}`: the bar at "
                            f"{format_time(c.candles.frame.index[first])} is not on the "
                            f"{c.config.timeframe} grid", "<peak>",
                            help="import data of the component's timeframe (bar-open times)"))
        elif len(opens) > 1 and np.diff(opens).min() < seconds:
            out.append(diag("D016", f"component `{c.label}`: bars closer than one "
                            f"{c.config.timeframe} bar apart", "<peak>",
                            help="import data of the component's timeframe"))
    return out


def _window(components: Sequence[Component]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """From the latest first bar to the earliest last bar's close."""
    start = max(c.candles.frame.index[0] for c in components)
    end = min(c.candles.frame.index[-1] + pd.Timedelta(seconds=c.candles.bar_seconds)
              for c in components)
    return start, end


def _trim(c: Component, start: pd.Timestamp, end: pd.Timestamp) -> Component:
    """Bars that open at or after ``start`` and close by ``end``."""
    last_open = end - pd.Timedelta(seconds=c.candles.bar_seconds)
    sliced = c.candles.slice(start, last_open + pd.Timedelta(seconds=1))
    return Component(c.label, c.artifact, c.artifact_sha256, c.source_text, c.params,
                     c.weight, sliced)


def _disjoint(components: Sequence[Component]) -> Diagnostic:
    spans = "; ".join(f"`{c.label}` ({c.config.market.symbol} {c.config.timeframe}) "
                      f"{format_time(c.candles.frame.index[0])} to "
                      f"{format_time(c.candles.frame.index[-1])}" for c in components)
    return diag("D015", f"the components' data do not overlap: {spans}", "<peak>",
                help="import or fetch data that covers one common span for every component")


def _no_bars(c: Component, start: pd.Timestamp, end: pd.Timestamp) -> Diagnostic:
    return diag("D015", f"component `{c.label}` has no {c.config.market.symbol} "
                f"{c.config.timeframe} bars in the window every component covers "
                f"({format_time(start)} to {format_time(end)})", "<peak>",
                help="the components' data must overlap: import or fetch the missing span")


def _gaps(c: Component) -> list[Diagnostic]:
    """D009 (a warning): bars missing inside the window, the largest hole named."""
    index = c.candles.frame.index
    seconds = c.candles.bar_seconds
    if len(index) < 2:
        return []
    steps = np.diff(index.as_unit("ns").asi8) // NS
    missing = int(np.sum(steps // seconds - 1))
    if missing <= 0:
        return []
    worst = int(np.argmax(steps))
    return [diag("D009", f"component `{c.label}`: {missing} {c.config.timeframe} bar(s) "
                 f"missing, the longest hole after {format_time(index[worst])}; its position "
                 "is marked at its last price through them", "<peak>",
                 help="fetch or import the missing bars, or choose dates around the hole")]
