"""Command-line options shared by `peak backtest`, `peak sweep` and `peak walkforward`.

One definition each, so the three commands spell, document and validate them identically.
Each option checks its own value while the command line is parsed (a typer callback), so a
bad value stops the command before anything is compiled, run, written or recorded: a
non-finite or non-positive capital, a fee outside 0..1000 bps, a date peak cannot place, a
``--data`` path that is missing or a folder. The callbacks raise ``UsageError``; the root
command (``peakdsl.cli.PeakGroup``) prints its diagnostic and exits 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from .lang.diagnostics import diag
from .lang.project import UsageError

MAX_FEE_BPS = 1000.0


def _usage(option: str, message: str, help: str = "", code: str = "U005") -> UsageError:
    return UsageError(diag(code, message, option, help=help))


def capital(value: float) -> float:
    """Starting equity: a positive, finite amount (NaN, ∞, 0 and negatives run nothing real)."""
    if not (math.isfinite(value) and value > 0):
        raise _usage("--capital", f"--capital {value:g}: give a positive, finite amount",
                     "e.g. --capital 10000 (in the market's quote currency)")
    return value


def fee_bps(value: float | None) -> float | None:
    """A fee per fill in bps, within 0..1000 (NaN is outside every range)."""
    if value is not None and not 0 <= value <= MAX_FEE_BPS:
        raise _usage("--fee-bps", f"--fee-bps {value:g} is outside 0..{MAX_FEE_BPS:g}",
                     "e.g. --fee-bps 10 for 0.1 % per fill")
    return value


def data_file(value: Path | None) -> Path | None:
    """``--data`` names an existing file (U001 when missing, U007 when a folder)."""
    if value is None or value.is_file():
        return value
    if value.is_dir():
        raise _usage("--data", f"--data {value}: is a folder, not a candles file",
                     "give one CSV or Parquet file", code="U007")
    if value.exists():
        raise _usage("--data", f"--data {value}: is not a regular file",
                     "give one CSV or Parquet file", code="U007")
    raise _usage("--data", f"--data {value}: no such file", "give a CSV or Parquet file "
                 "of candles", code="U001")


def from_date(value: str | None) -> str | None:
    """``--from``: a date peak can place (checked here, converted where it is used)."""
    from .api import _timestamp

    _timestamp(value, "--from")
    return value


def to_date(value: str | None) -> str | None:
    """``--to``: as ``--from``."""
    from .api import _timestamp

    _timestamp(value, "--to")
    return value


def random_count(value: int | None) -> int | None:
    """``--random N``: at least one combination."""
    if value is not None and value < 1:
        raise _usage("--random", f"--random {value}: give a positive number of combinations",
                     "e.g. --random 200 --seed 1")
    return value


def seed(value: int | None) -> int | None:
    """``--seed``: a non-negative integer (numpy's generators refuse negative seeds)."""
    if value is not None and value < 0:
        raise _usage("--seed", f"--seed {value}: give a non-negative integer", "e.g. --seed 1")
    return value


def check_period(start: str | None, end: str | None) -> None:
    """``--from`` must lie before ``--to``: an empty period runs nothing."""
    from .api import _timestamp

    first, last = _timestamp(start, "--from"), _timestamp(end, "--to")
    if first is not None and last is not None and not first < last:
        raise _usage("--to", f"--from {start} is not before --to {end}",
                     "--from is the first bar (inclusive), --to the end (exclusive)")


def check_run_inputs(spec: str, data: Path | None, report: Path | None, start: str | None,
                     end: str | None) -> None:
    """A non-empty period, and a ``--report`` that can be written and overwrites no input:
    checked before a sweep or walk-forward runs, so a bad path costs a second, not the run."""
    from .outputs import check_distinct, check_output

    check_period(start, end)
    if report is not None:
        check_distinct([("--report", report)], [Path(spec), *([data] if data else [])])
        check_output(report, "--report")


DataOpt = Annotated[Path | None, typer.Option(
    "--data", help="candles file (CSV or Parquet) instead of the cache / synthetic demo",
    callback=data_file)]
FromOpt = Annotated[str | None, typer.Option("--from", help="first bar (ISO date)",
                                             callback=from_date)]
ToOpt = Annotated[str | None, typer.Option("--to", help="end, exclusive (ISO date)",
                                           callback=to_date)]
FeeOpt = Annotated[float | None, typer.Option("--fee-bps", help="fee per fill, bps",
                                              callback=fee_bps)]
CapitalOpt = Annotated[float, typer.Option("--capital", help="starting equity",
                                           callback=capital)]
GridOpt = Annotated[bool, typer.Option(
    "--grid", help="try every combination of the param space (the default)")]
RandomOpt = Annotated[int | None, typer.Option(
    "--random", help="try N combinations drawn with --seed", metavar="N",
    callback=random_count)]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="seed of --random", callback=seed)]
SpaceSetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="narrow or pin a param axis: name=value, name=lo..hi, name=lo..hi:step "
    "(repeatable)", metavar="NAME=RANGE")]
