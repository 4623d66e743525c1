"""One backtest, end to end: compiled artifact + candles + params → signals → simulation → metrics.

The orchestration behind ``peak backtest`` and ``peakdsl.api.backtest``. Every stage is a
function of its inputs (the artifact, the candles, the resolved settings), so the same call
with the same inputs gives byte-identical results.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, create_model

from . import __version__
from .compile import models as m
from .data.candles import CandleSet
from .data.frames import inputs_for
from .engine.evaluate import Signals, evaluate
from .engine.explain import held_back_note, no_trade_notes, undefined_level_note
from .engine.results import EXIT_REASONS, SimResult, SimSettings
from .engine.risk import NO_LIMITS, RiskLimits
from .engine.stats import bars_per_year, calendar_warning
from .metrics import BACKTEST_METRICS, INT_METRICS

YEAR_SECONDS = 365 * 86_400


@dataclass(frozen=True)
class BacktestResult:
    """Everything a report, the registry or ``--json`` needs about one run."""

    spec: str
    source_path: str
    source_text: str
    artifact_sha256: str
    market: str
    timeframe: str
    candles: CandleSet
    params: dict[str, float]
    settings: SimSettings
    signals: Signals
    sim: SimResult
    metrics: dict[str, float | int | None]
    engine_version: str = __version__
    warnings: tuple[str, ...] = ()
    timing: dict[str, float] = field(default_factory=dict)
    risk_spec: str | None = None  # the risk spec whose limits the run enforced
    limits: RiskLimits = NO_LIMITS
    graph: m.Graph | None = None  # the compiled graph: the report's indicator panes
    command: str | None = None  # the `peak backtest` line reproducing it (peakdsl.repro)

    @property
    def times(self) -> pd.DatetimeIndex:
        return self.candles.frame.index

    def trades_frame(self) -> pd.DataFrame:
        """Closed trades with bar times and readable sides and exit reasons; then the position
        an ``end_of_data mark`` run left open (exit reason ``open``, valued at the last close)."""
        return trade_table(self.sim.trades, self.sim.open_trades, self.times)


def trade_table(closed: Mapping[str, Any], still_open: Mapping[str, Any],
                times: pd.DatetimeIndex) -> pd.DataFrame:
    """Trade rows (engine columns, bars of ``times``) as a readable table: closed trades,
    then the open ones (reason ``open``); bar times, sides and exit reasons in words."""
    t = {k: np.concatenate([closed[k], still_open[k]]) for k in closed}
    return pd.DataFrame({
        "entry_time": times[t["entry_bar"].astype(int)],
        "exit_time": times[t["exit_bar"].astype(int)],
        "side": np.where(t["side"] > 0, "long", "short"),
        "qty": t["qty"], "entry_price": t["entry_price"], "exit_price": t["exit_price"],
        "fees": t["fees"], "pnl": t["pnl"], "return": t["return"],
        "exit_reason": [EXIT_REASONS[int(i)] for i in t["exit_reason"]],
        "reduced": t["reduced"] != 0,
    })


def sim_settings(cfg: m.StrategyConfig, params: Mapping[str, float], warmup: int,
                 capital: float = 10_000.0, fee_bps: float | None = None) -> SimSettings:
    """Resolve the artifact's execution, sizing and exits for these params."""
    values = dict(params)

    def scalar(s: m.Scalar | None) -> float:
        return math.nan if s is None else s.resolve(values)

    ex = cfg.execution
    return SimSettings(
        capital=capital, fill=ex.fill,
        fees=fee_bps / 10_000 if fee_bps is not None else scalar(ex.fees),
        slippage=scalar(ex.slippage), sizing_mode=cfg.sizing.mode,
        sizing_value=scalar(cfg.sizing.value), stop_loss=scalar(cfg.stop_loss),
        take_profit=scalar(cfg.take_profit), trailing_stop=scalar(cfg.trailing_stop),
        qty_step=ex.qty_step or 0.0,
        min_notional=ex.min_notional.amount if ex.min_notional else 0.0,
        warmup=warmup, bars_per_year=bars_per_year(cfg.timeframe_seconds, cfg.calendar),
        end_of_data=ex.end_of_data, leverage=ex.leverage, calendar=cfg.calendar,
        **cfg.holding.model_dump(),
    )


def run_backtest(artifact: m.StrategyArtifact, candles: CandleSet, source_text: str,
                 artifact_sha256: str, params: Mapping[str, float] | None = None,
                 capital: float = 10_000.0, fee_bps: float | None = None,
                 risk: m.RiskConfig | None = None) -> BacktestResult:
    """Evaluate, simulate and measure one strategy on one candle set (under the limits of
    ``risk``, when given: the risk stage reduces or denies entries, counted by reason)."""
    from .engine.simulate import simulate
    from .engine.stats import compute_metrics

    cfg = artifact.config
    clock = time.perf_counter()
    f = candles.frame
    cols = inputs_for(cfg, candles)
    signals = evaluate(cfg, cols, params)
    t_signals = time.perf_counter()
    settings = sim_settings(cfg, signals.params, signals.warmup, capital, fee_bps)
    limits = RiskLimits.from_config(risk) if risk is not None else NO_LIMITS
    sim = simulate(cols["open"], cols["high"], cols["low"], cols["close"], signals.rules,
                   settings, times=f.index, limits=limits, levels=signals.levels,
                   position_rules=signals.position_rules)
    t_sim = time.perf_counter()
    metrics = compute_metrics(sim, settings, cfg.timeframe_seconds, close=cols["close"])
    done = time.perf_counter()
    warnings = data_warnings(candles)
    if cfg.execution.fill == "close":
        warnings.append("fill close: orders fill at the signal bar's close (optimistic)")
    if candles.synthetic:
        warnings.append(f"data source: {candles.source}")
    calendar = calendar_warning(f.index, cfg.timeframe_seconds, cfg.calendar,
                                cfg.calendar_declared)
    if calendar:
        warnings.append(calendar)
    warnings.extend(undefined_level_note(sim.undefined_levels))
    warnings.extend(held_back_note(sim.held_back))
    warnings.extend(no_trade_lines(cfg, signals, sim, len(f)))
    if sim.risk and risk is not None:
        warnings.append(risk_note(risk.name, sim.risk))
    return BacktestResult(
        spec=cfg.name, source_path=artifact.source.path, source_text=source_text,
        artifact_sha256=artifact_sha256, market=cfg.market.symbol, timeframe=cfg.timeframe,
        candles=candles, params=signals.params, settings=settings, signals=signals, sim=sim,
        metrics=metrics, warnings=tuple(warnings),
        timing={"signals": t_signals - clock, "simulate": t_sim - t_signals,
                "metrics": done - t_sim, "total": done - clock},
        risk_spec=risk.name if risk is not None else None, limits=limits, graph=cfg.graph,
    )


def data_warnings(candles: CandleSet) -> list[str]:
    """The candles' own warnings (a ``--data`` file's duplicates and gaps, a resample over
    gaps, the demo market, a file naming another market) as lines of the run's warnings, so
    ``--json`` and the registry carry what the terminal shows: ``D009: 28 gaps, …``."""
    return [f"{d.code}: {d.message}" for d in candles.warnings]


def no_trade_lines(cfg: m.StrategyConfig, signals: Signals, sim: SimResult,
                   n_bars: int) -> list[str]:
    """Why a run made no trades (``engine.explain``), naming the warm-up the compiler derives
    for these params: evaluation caps ``signals.warmup`` at the data's length, so the note
    for data shorter than the warm-up is made here with the real one ("the warm-up (50 bars)
    is longer than the data (2 bars)"), never the cap."""
    real = int(cfg.warmup.evaluate(signals.params))
    if 0 < n_bars < real:
        return [f"no trades: the warm-up ({real} bars) is longer than the data ({n_bars} "
                "bars); use more data or shorter windows"]
    return no_trade_notes(signals, sim, n_bars)


def risk_note(spec: str, counts: Mapping[str, int]) -> str:
    """One line saying which limits cut how many entries ("3 denied by max_daily_loss")."""
    from .engine.state import RISK_LIMITS, RISK_REASONS

    limit = dict(zip(RISK_REASONS[1:], RISK_LIMITS, strict=True))
    parts = [f"{n} {key.split('_', 1)[0]} by {limit[key.split('_', 1)[1]]}"
             for key, n in sorted(counts.items())]
    return f"risk spec `{spec}` cut entries: " + ", ".join(parts)


# ---------------------------------------------------------------- `--json` document

JSON_SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def metrics_model() -> type[_Frozen]:
    """The ``metrics`` object of the JSON document, built from the metric catalogue: one
    field per backtest metric in its order, ints for counts, so a metric added there is in
    the document and its schema without another hand-written copy."""
    fields: dict[str, Any] = {
        name: (int | None if name in INT_METRICS else float | None, ...)
        for name in BACKTEST_METRICS}
    return create_model(
        "MetricsDoc", __base__=_Frozen, __module__=__name__,
        __doc__="Every metric under a stable key; null where undefined (no trades, zero "
                "variance).", **fields)


MetricsDoc = metrics_model()


class DataDoc(_Frozen):
    source: str
    synthetic: bool
    fingerprint: str
    bars: int
    start: str
    end: str


class OpenTradeDoc(_Frozen):
    """The position an ``end_of_data mark`` run leaves open, valued at the last close."""

    side: str
    qty: float
    entry_time: str
    entry_price: float
    mark_price: float
    fees: float
    unrealised_pnl: float
    unrealised_return: float
    reduced: bool


class RiskDoc(_Frozen):
    """The risk spec a run enforced, its limits (null = none) and what they cut."""

    spec: str | None
    limits: dict[str, float | None]
    reduced: dict[str, int]
    denied: dict[str, int]


class BacktestDoc(_Frozen):
    """`peak backtest --json`: see docs/backtest.md; schema in docs/schemas/."""

    schema_version: int
    run_id: str | None
    spec: str
    source_path: str
    artifact_sha256: str
    engine_version: str
    market: str
    timeframe: str
    data: DataDoc
    params: dict[str, float]
    settings: dict[str, float | int | str]
    metrics: MetricsDoc  # type: ignore[valid-type]  # generated: metrics_model()
    final_equity: float
    open_trade: OpenTradeDoc | None
    risk: RiskDoc
    warnings: list[str]


def backtest_doc(result: BacktestResult, run_id: str | None) -> BacktestDoc:
    """The machine-readable summary of a run (deterministic apart from ``run_id``)."""
    times = result.times
    settings = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in result.settings.model_dump().items()}
    return BacktestDoc(
        schema_version=JSON_SCHEMA_VERSION, run_id=run_id, spec=result.spec,
        source_path=result.source_path, artifact_sha256=result.artifact_sha256,
        engine_version=result.engine_version, market=result.market,
        timeframe=result.timeframe,
        data=DataDoc(source=result.candles.source, synthetic=result.candles.synthetic,
                     fingerprint=result.candles.fingerprint, bars=len(times),
                     start=times[0].isoformat() if len(times) else "",
                     end=times[-1].isoformat() if len(times) else ""),
        params=dict(sorted(result.params.items())),
        settings={k: v for k, v in sorted(settings.items()) if v is not None},
        metrics=MetricsDoc.model_validate(result.metrics),
        final_equity=float(result.sim.equity[-1]) if len(times) else result.settings.capital,
        open_trade=_open_trade(result), risk=_risk_doc(result),
        warnings=list(result.warnings),
    )


def _risk_doc(result: BacktestResult) -> RiskDoc:
    def counted(kind: str) -> dict[str, int]:
        return {k.removeprefix(kind + "_"): v for k, v in sorted(result.sim.risk.items())
                if k.startswith(kind + "_")}

    limits = {k: (v if math.isfinite(v) else None)
              for k, v in result.limits.model_dump().items()}
    return RiskDoc(spec=result.risk_spec, limits=limits, reduced=counted("reduced"),
                   denied=counted("denied"))


def _open_trade(result: BacktestResult) -> OpenTradeDoc | None:
    t = result.sim.open_trades
    if not len(t["entry_bar"]):
        return None
    return OpenTradeDoc(
        side="long" if t["side"][0] > 0 else "short", qty=float(t["qty"][0]),
        entry_time=result.times[int(t["entry_bar"][0])].isoformat(),
        entry_price=float(t["entry_price"][0]), mark_price=float(t["exit_price"][0]),
        fees=float(t["fees"][0]), unrealised_pnl=float(t["pnl"][0]),
        unrealised_return=float(t["return"][0]), reduced=bool(t["reduced"][0]))
