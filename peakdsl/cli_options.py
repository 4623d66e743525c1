"""Command-line options shared by `peak backtest`, `peak sweep` and `peak walkforward`.

One definition each, so the three commands spell and document them identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataOpt = Annotated[Path | None, typer.Option(
    "--data", help="candles file (CSV or Parquet) instead of the cache / synthetic demo")]
FromOpt = Annotated[str | None, typer.Option("--from", help="first bar (ISO date)")]
ToOpt = Annotated[str | None, typer.Option("--to", help="end, exclusive (ISO date)")]
FeeOpt = Annotated[float | None, typer.Option("--fee-bps", help="fee per fill, bps")]
CapitalOpt = Annotated[float, typer.Option("--capital", help="starting equity")]
GridOpt = Annotated[bool, typer.Option(
    "--grid", help="try every combination of the param space (the default)")]
RandomOpt = Annotated[int | None, typer.Option(
    "--random", help="try N combinations drawn with --seed", metavar="N")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="seed of --random")]
SpaceSetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="narrow or pin a param axis: name=value, name=lo..hi, name=lo..hi:step "
    "(repeatable)", metavar="NAME=RANGE")]
