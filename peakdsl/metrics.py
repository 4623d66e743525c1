"""The metric catalogue: every metric peak computes, described once.

One row per metric: its stable name, the labels people read, its unit, which way is better,
the range it can take, a one-line meaning, the kinds of run that produce it and whether a
sweep or walk-forward may rank by it (``--objective``). Everything else is derived from this
table: the stats core's slot order (``engine.stats.METRIC_KEYS``), which metrics are counts,
the promotion-criterion lookup and unit check (``lang.schema.METRICS``), the human formatting
(``format_metric``) and labels, the objective choices and their sort direction, the
``--json`` ``MetricsDoc`` model (``peakdsl.backtest``), the report tables and the metric
tables of docs/metrics.md and docs/language.md (tests compare those pages with
``markdown_table`` and ``criteria_table``).

Why here, at the top of the package, and not in ``lang/`` or ``engine/``: every stage reads
it — the checker, the engine, research, reports, the registry and the CLI — so it belongs to
none of them. It imports only the standard library, so ``peak check`` stays light (no numpy:
``tests/test_cli_imports.py``) and no import cycle can run through it.

Adding a metric: add its row here in the place its producer writes it. A metric every
backtest and every sweep row computes (``runs`` ``backtest, sweep``: ``CORE_METRICS``) must
also be written by the numba core, ``engine.stats.metrics_core``, at the same index (importing
``engine.stats`` fails until it is: ``check_core_slots``); a backtest-only one (``runs``
``backtest``) by ``engine.trade_stats``, which reads what the core does not see (trade bars,
closes). Then the docs tables must be regenerated (their tests print the command).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from numbers import Integral, Real

DASH = "—"  # an undefined metric (None or NaN)


class Unit(str, Enum):
    """What a metric's number measures; it decides formatting and criterion literals."""

    PERCENT = "percent"  # a fraction shown ×100 with %, compared with `15%` literals
    NUMBER = "number"  # a plain ratio (Sharpe, profit factor)
    INT = "int"  # a count
    MONEY = "money"  # an amount in the quote currency (a plain number in criteria)


class Direction(str, Enum):
    """Which way is better: what an objective maximises or minimises."""

    HIGHER = "higher"  # bigger is better (max_drawdown too: it is <= 0)
    LOWER = "lower"  # smaller is better (volatility, costs)
    NEITHER = "neither"  # descriptive (trade counts, exposure): never ranked by


RUN_KINDS = ("backtest", "sweep", "walkforward", "robustness")


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One metric. ``low``/``high`` are inclusive bounds (None: unbounded)."""

    name: str
    label: str  # the backtest table: "Max drawdown duration (bars)"
    short: str  # a column header: "max drawdown"
    unit: Unit
    direction: Direction
    low: float | None
    high: float | None
    doc: str
    runs: tuple[str, ...]
    objective: bool = False

    @property
    def integral(self) -> bool:
        return self.unit is Unit.INT

    def range_text(self) -> str:
        """The bounds as the docs print them: ``≥ -100%``, ``0 to 1``, ``any``."""
        lo, hi = (None if v is None else _bound(self.unit, v) for v in (self.low, self.high))
        if lo is None and hi is None:
            return "any"
        if hi is None:
            return f"≥ {lo}"
        if lo is None:
            return f"≤ {hi}"
        return f"{lo} to {hi}"


def _bound(unit: Unit, value: float) -> str:
    return f"{value * 100:g}%" if unit is Unit.PERCENT else f"{value:g}"


P, N, C, M = Unit.PERCENT, Unit.NUMBER, Unit.INT, Unit.MONEY  # C: a count
HI, LO, NO = Direction.HIGHER, Direction.LOWER, Direction.NEITHER
TRADED = ("backtest", "sweep")  # every backtest and every sweep row computes these
BT = ("backtest",)  # a backtest (and each walk-forward window) only: not the sweep's core
WF, MC, SWEEP = ("walkforward",), ("robustness",), ("sweep",)


MC_PERCENTILES = (5, 25, 50, 75, 95)  # the Monte-Carlo percentiles every study reports
# (statistic word in the name, label, short label, unit, low, high)
_MC_STATISTICS = (("return", "total return", "return", P, -1, None),
                  ("max_drawdown", "max drawdown", "max drawdown", P, -1, 0),
                  ("sharpe", "Sharpe", "Sharpe", N, None, None))


def _ordinal(n: int) -> str:
    """5 → ``5th``, 25 → ``25th`` (the percentiles reported are 5, 25, 50, 75 and 95)."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# Order matters: the ``backtest`` rows are the numba core's slots, in this order.
# Each row: name, label / short, unit, better, low, high / meaning, runs, objective.
_ROWS = (
    MetricInfo("total_return", "Total return",
               "total return", P, HI, -1, None,
               "total return over the run", TRADED, objective=True),
    MetricInfo("cagr", "CAGR",
               "CAGR", P, HI, -1, None,
               "compound annual growth rate", TRADED, objective=True),
    MetricInfo("volatility", "Volatility (ann.)",
               "volatility", P, LO, 0, None,
               "annualised volatility of bar returns", TRADED, objective=True),
    MetricInfo("sharpe", "Sharpe",
               "Sharpe", N, HI, None, None,
               "annualised Sharpe ratio (risk-free 0)", TRADED, objective=True),
    MetricInfo("sortino", "Sortino",
               "Sortino", N, HI, None, None,
               "annualised Sortino ratio", TRADED, objective=True),
    MetricInfo("calmar", "Calmar",
               "Calmar", N, HI, None, None,
               "CAGR / |max drawdown|", TRADED, objective=True),
    MetricInfo("max_drawdown", "Max drawdown",
               "max drawdown", P, HI, -1, 0,
               "largest peak-to-trough fall of equity (<= 0)", TRADED, objective=True),
    MetricInfo("max_drawdown_bars", "Max drawdown duration (bars)",
               "max dd bars", C, LO, 0, None,
               "longest drawdown, in bars", TRADED, objective=True),
    MetricInfo("profit_factor", "Profit factor",
               "profit factor", N, HI, 0, None,
               "gross profit / gross loss", TRADED, objective=True),
    MetricInfo("win_rate", "Win rate",
               "win rate", P, HI, 0, 1,
               "share of winning trades", TRADED, objective=True),
    MetricInfo("expectancy", "Expectancy",
               "expectancy", P, HI, None, None,
               "mean return per trade", TRADED, objective=True),
    MetricInfo("trades", "Trades",
               "trades", C, NO, 0, None,
               "number of closed trades", TRADED),
    MetricInfo("avg_trade", "Average trade",
               "avg trade", P, HI, None, None,
               "mean trade return", TRADED, objective=True),
    MetricInfo("best_trade", "Best trade",
               "best trade", P, HI, None, None,
               "best trade return", TRADED),
    MetricInfo("worst_trade", "Worst trade",
               "worst trade", P, HI, None, None,
               "worst trade return", TRADED),
    MetricInfo("exposure", "Exposure",
               "exposure", P, NO, 0, 1,
               "share of bars with an open position", TRADED),
    MetricInfo("fees_paid", "Fees paid",
               "fees", M, LO, 0, None,
               "fees paid, in quote currency", TRADED),
    MetricInfo("ambiguous_bars", "Ambiguous bars (stop and target in one bar)",
               "ambiguous bars", C, NO, 0, None,
               "bars where stop and target were both touched", TRADED),
    MetricInfo("orders_reduced", "Orders reduced (cash or risk limits)",
               "orders reduced", C, NO, 0, None,
               "entries cut down to what the account could pay or the risk limits allow", TRADED),
    # Backtest only (``engine.trade_stats``, after the core: they read the trade table's bars
    # and the closes, which the sweep's core does not see).
    MetricInfo("buy_hold_return", "Buy & hold return",
               "buy & hold", P, NO, -1, None,
               "the market's return over the run: last close / first close - 1", BT),
    MetricInfo("exposure_adjusted_return", "Exposure-adjusted return (CAGR / exposure)",
               "exposure-adj. return", P, HI, None, None,
               "CAGR per unit of time in the market: CAGR / exposure", BT),
    MetricInfo("sqn", "SQN (system quality number)",
               "SQN", N, HI, None, None,
               "sqrt(trades) * mean / standard deviation of the trade returns", BT),
    MetricInfo("avg_bars_held", "Average bars held",
               "avg bars held", N, NO, 0, None,
               "mean bars a closed trade was open (exit bar - entry bar)", BT),
    MetricInfo("median_bars_held", "Median bars held",
               "median bars held", N, NO, 0, None,
               "median bars a closed trade was open", BT),
    MetricInfo("max_bars_held", "Longest trade (bars)",
               "max bars held", C, NO, 0, None,
               "most bars a closed trade was open", BT),
    MetricInfo("oos_sharpe", "Out-of-sample Sharpe",
               "OOS Sharpe", N, HI, None, None,
               "walk-forward out-of-sample Sharpe", WF),
    MetricInfo("oos_total_return", "Out-of-sample total return",
               "OOS return", P, HI, -1, None,
               "walk-forward out-of-sample total return", WF),
    MetricInfo("oos_max_drawdown", "Out-of-sample max drawdown",
               "OOS max drawdown", P, HI, -1, 0,
               "walk-forward out-of-sample max drawdown", WF),
    MetricInfo("wf_efficiency", "Walk-forward efficiency",
               "WF efficiency", N, HI, None, None,
               "walk-forward efficiency: annualised OOS return / annualised in-sample return", WF),
    MetricInfo("deflated_sharpe", "Deflated Sharpe ratio",
               "deflated Sharpe", N, HI, 0, 1,
               "probability the Sharpe is real given the trial count", SWEEP),
    MetricInfo("pbo", "Probability of backtest overfitting",
               "PBO", N, LO, 0, 1,
               "probability the in-sample best is no better than the out-of-sample median "
               "(CSCV)", SWEEP),
    *(MetricInfo(f"mc_p{level:02d}_{word}", f"Monte-Carlo {_ordinal(level)} percentile {label}",
                 f"MC p{level} {short}", unit, HI, low, high,
                 f"{_ordinal(level)} percentile of the trade-bootstrap runs' {label}", MC)
      for word, label, short, unit, low, high in _MC_STATISTICS for level in MC_PERCENTILES),
    MetricInfo("mc_prob_loss", "Monte-Carlo probability of loss",
               "MC P(loss)", P, LO, 0, 1,
               "share of trade-bootstrap runs that end below the starting capital", MC),
    MetricInfo("mc_risk_of_ruin", "Monte-Carlo risk of ruin",
               "MC ruin", P, LO, 0, 1,
               "share of trade-bootstrap runs whose drawdown reaches the ruin threshold "
               "(`ruin`, default 50 %)", MC),
    MetricInfo("stress_worst_return", "Worst stress-scenario return",
               "stress worst return", P, HI, -1, None,
               "lowest total return among the stress scenarios", MC),
    MetricInfo("stress_worst_max_drawdown", "Worst stress-scenario max drawdown",
               "stress worst drawdown", P, HI, -1, 0,
               "deepest max drawdown among the stress scenarios", MC),
    MetricInfo("jitter_worst_sharpe", "Worst parameter-neighbour Sharpe",
               "jitter worst Sharpe", N, HI, None, None,
               "lowest Sharpe among the runs one parameter step away", MC),
    MetricInfo("jitter_median_sharpe", "Median parameter-neighbour Sharpe",
               "jitter median Sharpe", N, HI, None, None,
               "median Sharpe of the runs one parameter step away", MC),
)

CATALOGUE: dict[str, MetricInfo] = {m.name: m for m in _ROWS}


def produced_by(kind: str) -> tuple[str, ...]:
    """The metrics a kind of run computes, in catalogue order."""
    if kind not in RUN_KINDS:
        raise ValueError(f"unknown run kind {kind!r}; one of {', '.join(RUN_KINDS)}")
    return tuple(m.name for m in CATALOGUE.values() if kind in m.runs)


BACKTEST_METRICS = produced_by("backtest")
# What the numba core (``engine.stats.metrics_core``) writes, for every backtest and every
# sweep row; the backtest's other metrics come after it (``engine.trade_stats``).
CORE_METRICS = tuple(name for name in BACKTEST_METRICS if "sweep" in CATALOGUE[name].runs)
INT_METRICS = frozenset(m.name for m in CATALOGUE.values() if m.integral)
OBJECTIVES = tuple(m.name for m in CATALOGUE.values() if m.objective)
# What a compact table of many runs shows, most telling first; a narrow one takes a prefix
# (`peak sweep` prints the first four, its HTML report all of them).
HEADLINE = ("sharpe", "total_return", "max_drawdown", "trades", "profit_factor", "win_rate",
            "exposure")


def objective_direction(name: str) -> Direction:
    """The direction ``--objective name`` ranks in; ``KeyError`` if it is not an objective."""
    info = CATALOGUE.get(name)
    if info is None or not info.objective:
        raise KeyError(name)
    return info.direction


def objective_goal(name: str) -> str:
    """``maximise`` or ``minimise``: the verb a report puts before an objective's name."""
    return "minimise" if objective_direction(name) is Direction.LOWER else "maximise"


def objective_choices() -> str:
    """The ``--objective`` help: every choice, the minimised ones marked."""
    return ", ".join(name + (" (lower is better)"
                             if CATALOGUE[name].direction is Direction.LOWER else "")
                     for name in OBJECTIVES)


# ----------------------------------------------------------------------------- formatting


def format_metric(name: str, value: object) -> str:
    """A metric for people, the same in the terminal, the reports and the docs.

    Percent metrics as ``12.35%``, counts as ``1,234``, everything else with 2 decimals;
    ``—`` for an undefined value (None, NaN), ``∞`` for an infinite one, never ``-0.00``.
    A name outside the catalogue is shown as its value's type suggests.
    """
    if value is None or isinstance(value, bool) or not isinstance(value, Real):
        return DASH if value is None else str(value)
    info = CATALOGUE.get(name)
    unit = info.unit if info else (Unit.INT if isinstance(value, Integral) else Unit.NUMBER)
    return _FORMATS.get(unit, fmt_number)(float(value))


def fmt_percent(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage: ``0.12345`` → ``12.35%`` (``—`` for None or NaN)."""
    if value is None or math.isnan(value):
        return DASH
    if math.isinf(value):
        return "∞%" if value > 0 else "-∞%"
    return f"{round(value * 100, digits) + 0.0:,.{digits}f}%"  # + 0.0: no "-0.00%"


def fmt_number(value: float | None, digits: int = 2) -> str:
    """A plain number with thousands separators: ``1234.5`` → ``1,234.50``."""
    if value is None or math.isnan(value):
        return DASH
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{round(value, digits) + 0.0:,.{digits}f}"


def fmt_count(value: float | None) -> str:
    """A count: ``1234`` → ``1,234``."""
    if value is None or not math.isfinite(value):
        return fmt_number(value)
    return f"{int(value):,}"


_FORMATS = {Unit.PERCENT: fmt_percent, Unit.INT: fmt_count}


# ----------------------------------------------------------------------------- docs


def markdown_table() -> str:
    """The catalogue as docs/metrics.md prints it (tested equal)."""
    head = ("| metric | label | unit | better | range | runs | objective | meaning |\n"
            "|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| `{m.name}` | {m.label} | {m.unit.value} | {m.direction.value} | "
        f"{m.range_text()} | {', '.join(m.runs)} | {'yes' if m.objective else ''} | "
        f"{_cell(m.doc)} |\n" for m in CATALOGUE.values())


def criteria_table() -> str:
    """The metrics table of docs/language.md (promotion criteria): the unit a criterion's
    literal takes (money is compared as a plain number), the range, the meaning."""
    head = "| metric | unit | range | meaning |\n|---|---|---|---|\n"
    return head + "".join(
        f"| `{m.name}` | {criterion_unit(m).value} | {m.range_text()} | {_cell(m.doc)} |\n"
        for m in CATALOGUE.values())


def criterion_unit(info: MetricInfo) -> Unit:
    """The literal a promotion criterion compares this metric with: money is a number."""
    return Unit.NUMBER if info.unit is Unit.MONEY else info.unit


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<=", "≤")
