"""A self-contained, deterministic HTML report of one parameter sweep.

The same machinery as the backtest report (``peakdsl.report.html``): plotly.js inlined from
the ``plotly`` package, figures as plain dicts in a JSON ``<script>``, fixed element ids, the
same stylesheet; nothing is fetched when the page opens. The page shows the sweep's metadata,
a heatmap of the objective over two params (the others held at the best combination's
values), the ranked table and the honesty numbers (deflated Sharpe ratio, trials, probability
of backtest overfitting, edge warnings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from ..metrics import HEADLINE, Direction, fmt_number, objective_direction, objective_goal
from .html import PLOTLY_CONFIG, environment, fmt_metric, plotly_js, script_json

if TYPE_CHECKING:
    from ..research.sweep import SweepResult

Array = np.ndarray[Any, Any]
HEATMAP_ID = "chart-heatmap"
TABLE_METRICS = HEADLINE  # the ranked table's metric columns


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


def heatmap_slice(result: SweepResult, axes: tuple[str, str] | None = None) -> Slice | None:
    """The objective over ``axes`` (default: the first two params that vary), the others at the
    best combination's values; in a random sweep (sparse rows) the best value over the
    other params instead. None when the space has no params."""
    space = result.space
    names = space.names
    if not names:
        return None
    x_name: str
    y_name: str | None
    if axes is not None:
        x_name, y_name = axes
    else:  # the first two params that vary (pinned ones make a poor axis)
        varying = [n for n in names if len(np.unique(space.combos[:, names.index(n)])) > 1]
        chosen = (varying or list(names))[:2]
        x_name, y_name = chosen[0], chosen[1] if len(chosen) > 1 else None
    combos = space.combos
    xi = names.index(x_name)
    yi = names.index(y_name) if y_name is not None else None
    others = [j for j in range(len(names)) if j not in (xi, yi)]
    anchor = result.best_row if result.best_row is not None else 0
    fixed = {names[j]: float(combos[anchor, j]) for j in others}
    if space.mode == "grid" or not others:
        keep = np.ones(len(combos), dtype=bool)
        for j in others:
            keep &= combos[:, j] == combos[anchor, j]
        shown = ", ".join(f"{k}={result.show(k, v)}" for k, v in fixed.items())
        note = f"other params at the best combination's values: {shown}" if fixed else ""
    else:
        keep = np.ones(len(combos), dtype=bool)
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
class RankedRow:
    rank: int
    params: list[str]
    objective: str
    metrics: list[str]
    best: bool


def ranked_rows(result: SweepResult, top: int) -> list[RankedRow]:
    rows = []
    for item in result.top(top):
        metrics = item["metrics"]
        rows.append(RankedRow(
            rank=item["rank"],
            params=[result.show(n, v) for n, v in item["params"].items()],
            objective=fmt_metric(result.objective, _metric(metrics[result.objective])),
            metrics=[fmt_metric(m, _metric(metrics[m])) for m in TABLE_METRICS],
            best=item["row"] == result.best_row))
    return rows


def _metric(value: Any) -> float | int | None:
    if value in ("inf", "-inf"):
        return math.inf if value == "inf" else -math.inf
    return value if isinstance(value, int | float) else None


def context(result: SweepResult, axes: tuple[str, str] | None, top: int) -> dict[str, Any]:
    space = result.space
    cut = heatmap_slice(result, axes)
    axes_text = [(name, ", ".join(result.show(name, float(v)) for v in values))
                 for name, values in space.axes.items() if name in space.names]
    return {
        "r": result,
        "goal": objective_goal(result.objective),
        "combinations": f"{len(space):,}",
        "candidates": f"{space.candidates:,}",
        "bars": f"{result.data_bars:,}",
        "axes": axes_text,
        "names": list(space.names),
        "cut": cut,
        "heatmap_id": HEATMAP_ID,
        "rows": ranked_rows(result, top),
        "metric_names": list(TABLE_METRICS),
        "dsr": "—" if result.deflated_sharpe is None else f"{result.deflated_sharpe:.3f}",
        "trials": f"{result.trials_total:,}",
        "pbo": "—" if result.pbo is None else f"{result.pbo.pbo:.3f}",
        "pbo_note": pbo_note(result),
        "parquet": str(result.parquet),
    }


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
                      top: int = 20) -> str:
    """The sweep report as one self-contained HTML document (same result → same bytes)."""
    ctx = context(result, axes, top)
    figures: dict[str, Any] = {}
    cut: Slice | None = ctx["cut"]
    if cut is not None:
        figures[HEATMAP_ID] = heatmap_figure(result, cut)
    # Markup: inserted verbatim into <script> elements, made safe for that by plotly_js and
    # script_json (see peakdsl.report.html).
    ctx["plotly_js"] = Markup(plotly_js())
    ctx["figures_json"] = Markup(script_json(figures))
    ctx["config_json"] = Markup(script_json(PLOTLY_CONFIG))
    return environment().get_template("sweep.html.j2").render(ctx)


__all__: Sequence[str] = ("heatmap_slice", "render_sweep_html")
