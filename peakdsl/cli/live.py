"""`peak live`: run a strategy or a portfolio bar by bar — paper, testnet, live.

``peak live run SPEC --replay`` runs a paper session over the cached candles (offline, at any
speed): the same compiled Program evaluated one closed bar at a time, the same risk stage and
fill model as ``peak backtest`` (and, over the same candles, the same fills). The library is
``peakdsl.live``; this module checks the command line, prints each fill as it happens and the
summary (or JSON with ``--json``). Exit codes: 0 ok, 1 spec / data errors or a refusal,
2 usage, 130 interrupted.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

import typer

from .options import (
    FeeOpt,
    FromOpt,
    JsonOpt,
    SpecCapitalOpt,
    ToOpt,
    check_period,
    one_of,
    usage,
)
from .root import EXIT_INTERRUPTED, EXIT_OK, Format, emit, exit_code, guarded, write_json

if TYPE_CHECKING:
    from ..live.run import FillRow, LiveSummary

live_app = typer.Typer(no_args_is_help=True,
                       help="Run a spec bar by bar: paper (default), testnet, live.")

MODES = ("paper", "testnet", "live")
ModeOpt = Annotated[str, typer.Option(
    "--mode", help="paper (no orders), testnet or live", callback=one_of("--mode", MODES,
                                                                        "mode"))]
ReplayOpt = Annotated[bool, typer.Option(
    "--replay", help="replay the cached candles (offline; --from is the first live bar)")]
SpeedOpt = Annotated[float, typer.Option(
    "--speed", help="replay speed: market time per real time, 0 = as fast as possible",
    metavar="X")]
HistoryOpt = Annotated[int | None, typer.Option(
    "--history", help="bars of history before the first live bar [default: the derived "
    "warm-up, at least 1,000]", metavar="BARS")]
SpecOrPortfolioArg = Annotated[str, typer.Argument(help="a strategy or portfolio spec file")]
RiskOpt = Annotated[str | None, typer.Option(
    "--risk", metavar="NAME", help="enforce a risk spec's limits (a portfolio: instead of its "
    "own)")]


def _check(mode: str, replay: bool, speed: float, history: int | None) -> None:
    if mode != "paper":
        raise usage("--mode", f"--mode {mode}: not available yet in this version",
                    "testnet and live need the venue adapter and its gates (issue 11); "
                    "use --mode paper", code="U005")
    if not replay:
        raise usage("--replay", "a paper session on live prices is not available yet",
                    "use --replay to run over the cached candles")
    if not (math.isfinite(speed) and 0 <= speed <= 1e9):
        raise usage("--speed", f"--speed {speed:g} is out of range", "0 (no waiting) to 1e9")
    if history is not None and not 0 <= history <= 100_000:
        raise usage("--history", f"--history {history} is out of range", "0..100,000 bars")


@live_app.command("run")
@guarded
def run_cmd(spec: SpecOrPortfolioArg, mode: ModeOpt = "paper", replay: ReplayOpt = False,
            start: FromOpt = None, end: ToOpt = None, speed: SpeedOpt = 0.0,
            history: HistoryOpt = None, capital: SpecCapitalOpt = None,
            fee_bps: FeeOpt = None, risk: RiskOpt = None, as_json: JsonOpt = False) -> None:
    """Run SPEC one closed bar at a time and print every fill."""
    from .. import api
    from ..live.run import LiveRequest, run_live

    _check(mode, replay, speed, history)
    check_period(start, end)
    request = LiveRequest(spec, mode, replay, start, end, speed, capital, fee_bps, risk,
                          history)
    try:
        summary = run_live(request, on_fill=None if as_json else _print_fill)
    except api.SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        write_json(summary.model_dump(mode="json"))
    else:
        _print_summary(summary)
    raise typer.Exit(EXIT_OK)


def _print_fill(fill: FillRow) -> None:
    typer.echo(f"{fill.time[:16]}  {fill.side:<4} {fill.qty:.8g} {fill.market} @ "
               f"{fill.price:,.2f}  fee {fill.fee:.4f}  {fill.reason}  [{fill.slot}]")


def _print_summary(s: LiveSummary) -> None:
    span = f"{(s.first_tick or '—')[:16]} → {(s.last_tick or '—')[:16]}"
    typer.echo(f"{s.spec} ({s.kind}) {s.mode}, {s.source}: {s.ticks:,} ticks {span}, "
               f"history {', '.join(str(h) for h in s.history_bars)} bars")
    typer.echo(f"fills {len(s.fills)}, closed trades {s.closed_trades}, open positions "
               f"{len(s.open_positions)}; equity {s.equity:,.2f} "
               f"({100 * s.total_return:+.2f}% on {s.capital:,.2f})")
    denied = {k: v for k, v in s.risk.items() if v}
    if denied:
        typer.echo("risk: " + ", ".join(f"{k} {v}" for k, v in sorted(denied.items())))
    for note in s.notes[:10]:
        typer.echo(f"note: {note}")
    typer.echo(f"artifact {s.artifact_sha256[:12]}  engine {s.engine_version}")
