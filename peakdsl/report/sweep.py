"""A self-contained, deterministic HTML report of one parameter sweep.

The same machinery as the backtest report (``peakdsl.report.plotting``): plotly.js inlined
from the ``plotly`` package, figures as plain dicts in a JSON ``<script>``, fixed element ids,
the same stylesheet; nothing is fetched when the page opens. The page shows:

- the sweep's metadata, the command lines that reproduce it and its best combination;
- the best combination's equity against buy & hold (when the caller ran it: ``best``);
- a heatmap of the objective over any two params, the others held at the best combination's
  values (a random sweep's cell: the best over the others), picked with a selector — every
  pair is precomputed, so the page needs no server;
- the full ranked table, sortable in the page by any column, every metric of a sweep row
  once (the objective's column marked), up to ``MAX_TABLE_ROWS`` rows (the rest are in the
  Parquet file);
- the honesty numbers (deflated Sharpe ratio, trials, probability of backtest overfitting).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from ..engine.stats import INT_METRICS, METRIC_KEYS
from ..metrics import CATALOGUE, Direction, fmt_number, objective_direction, objective_goal
from .charts import equity_figure
from .html import (
    PLOTLY_CONFIG,
    environment,
    fmt_metric,
    plotly_js,
    report_metrics,
    script_json,
)

if TYPE_CHECKING:
    from ..backtest import BacktestResult
    from ..research.sweep import SweepPlan, SweepResult

Array = np.ndarray[Any, Any]
HEATMAP_ID = "chart-heatmap"
BEST_ID = "chart-best-equity"
TABLE_METRICS = METRIC_KEYS  # every metric a sweep row has
MAX_TABLE_ROWS = 5_000  # the ranked table's rows at most (the best ones)
MAX_HEATMAP_PAIRS = 45  # pairs of params offered at most (10 varying params)


@dataclass(frozen=True)
class Slice:
    """The objective over two params: ``z[i][j]`` at ``y[i]``, ``x[j]`` (None: not run)."""

    x_name: str
    y_name: str | None
    x: list[float]
    y: list[float]
    z: list[list[float | None]]
    fixed: dict[str, float]  # the other params' values
    note: str


def varying(result: SweepResult) -> list[str]:
    """The params that take more than one value (pinned ones make a poor axis)."""
    space = result.space
    return [n for i, n in enumerate(space.names) if len(np.unique(space.combos[:, i])) > 1]


def default_axes(result: SweepResult) -> tuple[str, str | None] | None:
    """The first two params that vary (or the first two at all); None without params."""
    names = list(result.space.names)
    if not names:
        return None
    chosen = (varying(result) or names)[:2]
    return chosen[0], chosen[1] if len(chosen) > 1 else None


def heatmap_slice(result: SweepResult, axes: tuple[str, str | None] | None = None
                  ) -> Slice | None:
    """The objective over ``axes`` (default: ``default_axes``), the others at the best
    combination's values; in a random sweep (sparse rows) the best value over the other
    params instead. None when the space has no params."""
    axes = axes or default_axes(result)
    if axes is None:
        return None
    x_name, y_name = axes
    space = result.space
    names = space.names
    combos = space.combos
    xi = names.index(x_name)
    yi = names.index(y_name) if y_name is not None else None
    others = [j for j in range(len(names)) if j not in (xi, yi)]
    anchor = result.best_row if result.best_row is not None else 0
    fixed = {names[j]: float(combos[anchor, j]) for j in others}
    keep = np.ones(len(combos), dtype=bool)
    if space.mode == "grid" or not others:
        for j in others:
            keep &= combos[:, j] == combos[anchor, j]
        shown = ", ".join(f"{k}={result.show(k, v)}" for k, v in fixed.items())
        note = f"other params at the best combination's values: {shown}" if fixed else ""
    else:
        note = ("random sweep: each cell shows the best value over the other params ("
                + ", ".join(names[j] for j in others) + ")")
        fixed = {}
    xs = sorted({float(v) for v in combos[keep, xi]})
    ys = sorted({float(v) for v in combos[keep, yi]}) if yi is not None else [0.0]
    cells = _best_cells(result, keep, xi, yi)
    z: list[list[float | None]] = [[_finite(cells.get((x, y))) for x in xs] for y in ys]
    return Slice(x_name, y_name, xs, ys if yi is not None else [], z, fixed, note)


def _best_cells(result: SweepResult, keep: Array, xi: int, yi: int | None
                ) -> dict[tuple[float, float], float]:
    """The best objective (by its direction) of the kept rows in each (x, y) cell."""
    objective = np.asarray(result.metrics[result.objective], dtype=np.float64)
    lower = objective_direction(result.objective) is Direction.LOWER
    combos = result.space.combos
    cells: dict[tuple[float, float], float] = {}
    for row in np.flatnonzero(keep):
        key = (float(combos[row, xi]), float(combos[row, yi]) if yi is not None else 0.0)
        value = float(objective[row])
        if math.isnan(value):
            continue
        if key not in cells or (value < cells[key] if lower else value > cells[key]):
            cells[key] = value
    return cells


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value


def heatmap_figure(result: SweepResult, cut: Slice) -> dict[str, Any]:
    """A plotly heatmap (two params) or a line (one param) of the objective."""
    layout: dict[str, Any] = {
        "title": {"text": f"{result.objective} over {cut.x_name}"
                  + (f" × {cut.y_name}" if cut.y_name else ""), "x": 0.01, "xanchor": "left"},
        "height": 520 if cut.y_name else 360,
        "margin": {"l": 72, "r": 24, "t": 64, "b": 56},
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
                 "size": 12, "color": "#1f2937"},
        "xaxis": {"title": {"text": cut.x_name}, "type": "category"},
    }
    x_text = [result.show(cut.x_name, v) for v in cut.x]
    if cut.y_name is None:
        line: list[dict[str, Any]] = [{
            "type": "scatter", "mode": "lines+markers", "x": x_text, "y": cut.z[0],
            "name": result.objective, "line": {"color": "#2563eb"}}]
        layout["yaxis"] = {"title": {"text": result.objective}, "gridcolor": "#e5e7eb"}
        return {"data": line, "layout": layout}
    y_text = [result.show(cut.y_name, v) for v in cut.y]
    text = [["" if v is None else fmt_number(v, 2) for v in row] for row in cut.z]
    data: list[dict[str, Any]] = [{
        "type": "heatmap", "x": x_text, "y": y_text, "z": cut.z, "text": text,
        "texttemplate": "%{text}" if len(cut.x) * len(cut.y) <= 400 else "",
        "hovertemplate": f"{cut.x_name}=%{{x}}<br>{cut.y_name}=%{{y}}<br>"
                         f"{result.objective}=%{{z:.4f}}<extra></extra>",
        "colorscale": "Viridis", "colorbar": {"title": {"text": result.objective}},
        "xgap": 1, "ygap": 1, "hoverongaps": False,
    }]
    layout["yaxis"] = {"title": {"text": cut.y_name}, "type": "category"}
    return {"data": data, "layout": layout}


@dataclass(frozen=True)
class HeatmapChoice:
    """One entry of the page's heatmap selector: its key, label, note and figure."""

    key: str
    label: str
    note: str
    figure: dict[str, Any]


def heatmap_choices(result: SweepResult, first: tuple[str, str | None] | None
                    ) -> list[HeatmapChoice]:
    """``first`` (the default axes or ``--heatmap``), then every other pair of varying
    params in declaration order, at most ``MAX_HEATMAP_PAIRS``."""
    first = first or default_axes(result)
    if first is None:
        return []
    pairs: list[tuple[str, str | None]] = [first]
    for x, y in itertools.combinations(varying(result), 2):
        if len(pairs) < MAX_HEATMAP_PAIRS and {x, y} != set(first):
            pairs.append((x, y))
    choices = []
    for axes in pairs:
        cut = heatmap_slice(result, axes)
        if cut is not None:
            label = axes[0] if axes[1] is None else f"{axes[0]} × {axes[1]}"
            choices.append(HeatmapChoice(f"{axes[0]},{axes[1] or ''}", label, cut.note,
                                         heatmap_figure(result, cut)))
    return choices


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Cell:
    """A table cell: the text shown and the value it sorts by ("" sorts last)."""

    text: str
    value: str


@dataclass(frozen=True)
class Column:
    name: str
    title: str  # the header's tooltip
    kind: str  # "param", "metric" or "objective"


@dataclass(frozen=True)
class RankedRow:
    rank: int
    cells: list[Cell]
    best: bool


def columns(result: SweepResult) -> list[Column]:
    """The params, then the objective, then every other metric of a sweep row, once each."""
    goal = objective_goal(result.objective)
    objective = Column(result.objective,
                       f"{CATALOGUE[result.objective].doc} (the objective: {goal}d)", "objective")
    rest = [Column(name, CATALOGUE[name].doc, "metric") for name in TABLE_METRICS
            if name != result.objective]
    return [*(Column(n, "swept param", "param") for n in result.space.names), objective, *rest]


def _sort_value(value: float) -> str:
    """The number a cell sorts by, as JavaScript's ``Number`` reads it (shortest exact text,
    ``Infinity``); "" for an undefined one (sorted last either way)."""
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def ranked_rows(result: SweepResult, limit: int) -> list[RankedRow]:
    """The best ``limit`` rows, best first, with every column's text and sort value."""
    cols = columns(result)
    combos = result.space.combos
    rows = []
    for rank, row in enumerate(result.ranking[:limit].tolist(), start=1):
        cells = [_param_cell(result, c.name, float(combos[row, j]))
                 for j, c in enumerate(cols[:len(result.space.names)])]
        cells += [_metric_cell(c.name, float(result.metrics[c.name][row]))
                  for c in cols[len(result.space.names):]]
        rows.append(RankedRow(rank, cells, row == result.best_row))
    return rows


def _param_cell(result: SweepResult, name: str, value: float) -> Cell:
    return Cell(result.show(name, value), repr(value))


def _metric_cell(name: str, value: float) -> Cell:
    shown: float | int | None = None if math.isnan(value) else value
    if shown is not None and name in INT_METRICS and math.isfinite(value):
        shown = int(value)
    return Cell(fmt_metric(name, shown), _sort_value(value))


# --------------------------------------------------------------------------- the best run


def best_backtest(plan: SweepPlan, result: SweepResult) -> BacktestResult | None:
    """The best combination run as a backtest on the sweep's own candles, capital and fees,
    for the report's equity chart (the same numbers the sweep ranked: ``tests`` compare);
    None when no combination has a defined objective."""
    from ..backtest import run_backtest

    if result.best_row is None:
        return None
    return run_backtest(plan.artifact, plan.candles, "", plan.artifact_sha256,
                        result.best_params, capital=plan.run.capital, fee_bps=plan.run.fee_bps)


def best_figure(best: BacktestResult) -> dict[str, Any]:
    figure = equity_figure(best)
    figure["layout"]["title"]["text"] = ("Best combination: equity against buy & hold "
                                         "(both start at 1)")
    figure.pop("peak")  # a chart of its own, not zoomed with others
    return figure


# --------------------------------------------------------------------------- page


def context(result: SweepResult, axes: tuple[str, str] | None,
            best: BacktestResult | None) -> dict[str, Any]:
    space = result.space
    choices = heatmap_choices(result, axes)
    axes_text = [(name, ", ".join(result.show(name, float(v)) for v in values))
                 for name, values in space.axes.items() if name in space.names]
    rows = ranked_rows(result, MAX_TABLE_ROWS)
    return {
        "r": result,
        "goal": objective_goal(result.objective),
        "combinations": f"{len(space):,}",
        "candidates": f"{space.candidates:,}",
        "bars": f"{result.data_bars:,}",
        "axes": axes_text,
        "choices": choices,
        "heatmap_id": HEATMAP_ID,
        "best_id": BEST_ID,
        "best": best,
        "best_metrics": _best_metrics(best),
        "best_line": result.best_command or
        f"peak backtest {result.spec_path} {result.best_set}".rstrip(),
        "sweep_line": result.command,
        "columns": columns(result),
        "rows": rows,
        "shown_rows": f"{len(rows):,}",
        "dsr": "—" if result.deflated_sharpe is None else f"{result.deflated_sharpe:.3f}",
        "trials": f"{result.trials_total:,}",
        "pbo": "—" if result.pbo is None else f"{result.pbo.pbo:.3f}",
        "pbo_note": pbo_note(result),
        "parquet": str(result.parquet),
    }


def _best_metrics(best: BacktestResult | None) -> list[tuple[str, str]]:
    if best is None:
        return []
    names = ("total_return", "buy_hold_return", "sharpe", "max_drawdown", "trades", "sqn")
    metrics = report_metrics(best)
    return [(name, fmt_metric(name, metrics.get(name))) for name in names]


def pbo_note(result: SweepResult) -> str:
    """What the PBO rests on, for the report's honesty table."""
    p = result.pbo
    if p is None:
        return "undefined: it needs two combinations or more and enough bars for two blocks"
    splits = (f"a seeded sample of {p.splits:,} of {p.splits_total:,} splits" if p.sampled
              else f"all {p.splits:,} splits")
    return (f"CSCV over {p.blocks} blocks, {splits}; the share of splits whose in-sample best "
            "ranks at or below the out-of-sample median (0.5 or more: overfit)")


def render_sweep_html(result: SweepResult, axes: tuple[str, str] | None = None,
                      best: BacktestResult | None = None) -> str:
    """The sweep report as one self-contained HTML document (same inputs → same bytes).

    ``axes``: the heatmap shown first (``--heatmap``); ``best``: the best combination's
    backtest (``best_backtest``) for its equity chart. The page's table has every row up to
    ``MAX_TABLE_ROWS``."""
    ctx = context(result, axes, best)
    choices: list[HeatmapChoice] = ctx["choices"]
    figures: dict[str, Any] = {}
    if choices:
        figures[HEATMAP_ID] = choices[0].figure
    if best is not None:
        figures[BEST_ID] = best_figure(best)
    # Markup: inserted verbatim into <script> elements, made safe for that by plotly_js and
    # script_json (see peakdsl.report.plotting).
    ctx["plotly_js"] = Markup(plotly_js())
    ctx["figures_json"] = Markup(script_json(figures))
    ctx["heatmaps_json"] = Markup(script_json(
        {c.key: {"figure": c.figure, "note": c.note} for c in choices}))
    ctx["config_json"] = Markup(script_json(PLOTLY_CONFIG))
    return environment().get_template("sweep.html.j2").render(ctx)


__all__: Sequence[str] = ("best_backtest", "heatmap_slice", "render_sweep_html")
