"""Command-line options shared by peak's commands, each validating itself while parsed.

One definition each, so every command spells, documents and checks an option identically.
Each option checks its own value in a typer callback, so a bad value stops the command before
anything is compiled, run, written or recorded: a non-finite or non-positive capital, a fee
outside 0..1000 bps, a date peak cannot place, a ``--data`` path that is missing or a folder,
a worker count outside 1..4×CPUs, an output path that cannot hold a file. The callbacks raise
``UsageError`` (U001, U005, U006 or U007); the root command (``peakdsl.cli.root.PeakGroup``)
renders it and exits 2. Checks that need two options at once (``--from`` before ``--to``, two
outputs that are one file) are functions the commands call first thing.

Machine output has one spelling, ``--json``; ``--format json`` (where a command had it) is kept
as an alias that prints the same bytes.

Import-light: typer and peak's diagnostics only; what a check needs (pandas for dates) is
imported when an option is given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from ..lang.diagnostics import diag, did_you_mean
from ..lang.project import UsageError
from .root import JSON_WANTED, Format

T = TypeVar("T")
MAX_FEE_BPS = 1000.0
WORKERS_PER_CPU = 4  # local Dask worker processes beyond this only queue for the same CPUs
HTML_REPORTS = (".html", ".htm")
REPORTS = (*HTML_REPORTS, ".md")  # as peakdsl.report.REPORT_SUFFIXES (import-light)
SUFFIX_NAMES = {HTML_REPORTS: "a .html file", REPORTS: "a .html or .md file"}


def usage(option: str, message: str, help: str = "", code: str = "U005") -> UsageError:
    """A bad value of ``option``: its coded diagnostic, raised by the caller."""
    return UsageError(diag(code, message, option, help=help))


# ------------------------------------------------------------------------ machine output

def json_flag(value: bool) -> bool:
    """``--json``: noted at once (it is eager) so later option errors are JSON too."""
    if value:
        JSON_WANTED.set(True)
    return value


def format_choice(value: Format) -> Format:
    """``--format json``: the older spelling of ``--json``, noted as eagerly."""
    json_flag(value is Format.json)
    return value


def output_format(format: Format, as_json: bool) -> Format:
    """The format a command prints in: ``--json`` or ``--format json`` both mean JSON."""
    return Format.json if as_json else format


JsonOpt = Annotated[bool, typer.Option(
    "--json", help="print one JSON document on stdout (diagnostics included)",
    callback=json_flag, is_eager=True)]
FormatOpt = Annotated[Format, typer.Option(
    "--format", help="text or json; --format json is the same as --json",
    callback=format_choice, is_eager=True)]


# ------------------------------------------------------------------------ amounts and counts

def capital(value: float | None) -> float | None:
    """Starting equity: a positive, finite amount (NaN, ∞, 0 and negatives run nothing real);
    None where the command has its own default (a portfolio's capital)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise usage("--capital", f"--capital {value:g}: give a positive, finite amount",
                    "e.g. --capital 10000 (in the market's quote currency)")
    return value


def fee_bps(value: float | None) -> float | None:
    """A fee per fill in bps, within 0..1000 (NaN is outside every range)."""
    if value is not None and not 0 <= value <= MAX_FEE_BPS:
        raise usage("--fee-bps", f"--fee-bps {value:g} is outside 0..{MAX_FEE_BPS:g}",
                    "e.g. --fee-bps 10 for 0.1 % per fill")
    return value


def random_count(value: int | None) -> int | None:
    """``--random N``: at least one combination."""
    if value is not None and value < 1:
        raise usage("--random", f"--random {value}: give a positive number of combinations",
                    "e.g. --random 200 --seed 1")
    return value


def seed(value: int | None) -> int | None:
    """``--seed``: a non-negative integer (numpy's generators refuse negative seeds)."""
    if value is not None and value < 0:
        raise usage("--seed", f"--seed {value}: give a non-negative integer", "e.g. --seed 1")
    return value


def max_workers() -> int:
    """The most local worker processes worth starting: four per CPU."""
    return (os.cpu_count() or 1) * WORKERS_PER_CPU


def workers(value: int | None) -> int | None:
    """``--workers N``: 1..4×CPUs; more processes than that only thrash the same cores."""
    top = max_workers()
    if value is not None and not 1 <= value <= top:
        raise usage("--workers", f"--workers {value}: give 1..{top} ({os.cpu_count() or 1} "
                    f"CPU(s) here, at most {WORKERS_PER_CPU} workers each)",
                    "omit --workers to run in this process, or use --scheduler for a cluster")
    return value


def at_least(option: str, low: int, what: str) -> Callable[[int], int]:
    """A callback for an integer option that must be ``low`` or more (``--top``, ``--limit``)."""
    def check(value: int) -> int:
        if value < low:
            raise usage(option, f"{option} {value}: give {what}")
        return value
    return check


def max_memory(value: str) -> str:
    """``--max-memory``: a size peak can read (512MB, 2GB, 1.5GiB), at least one byte."""
    from ..research.store import parse_size

    try:
        parse_size(value)
    except ValueError as exc:
        raise usage("--max-memory", f"--max-memory {value}: {exc}",
                    "e.g. --max-memory 512MB, 2GB or 1.5GiB") from None
    return value


def heatmap(value: str | None) -> str | None:
    """``--heatmap x,y``: two different param names (checked against the spec later)."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise usage("--heatmap", f"--heatmap {value}: give two different params as x,y",
                    "e.g. --heatmap fast,slow")
    return value


def one_of(option: str, choices: Sequence[str], what: str) -> Callable[[T], T]:
    """A callback for a text option with a fixed list of values (``--status``)."""
    def check(value: T) -> T:
        if value is not None and value not in choices:
            raise usage(option, f"{option} {value}: not {what}",
                        did_you_mean(str(value), choices) or f"use one of {', '.join(choices)}")
        return value
    return check


# ------------------------------------------------------------------------ dates

def from_date(value: str | None) -> str | None:
    """``--from``: a date peak can place (checked here, converted where it is used)."""
    from ..resolve import timestamp as _timestamp

    _timestamp(value, "--from")
    return value


def to_date(value: str | None) -> str | None:
    """``--to``: as ``--from``."""
    from ..resolve import timestamp as _timestamp

    _timestamp(value, "--to")
    return value


def check_period(start: str | None, end: str | None) -> None:
    """``--from`` must lie before ``--to``: an empty period runs nothing."""
    from ..resolve import timestamp as _timestamp

    first, last = _timestamp(start, "--from"), _timestamp(end, "--to")
    if first is not None and last is not None and not first < last:
        raise usage("--to", f"--from {start} is not before --to {end}",
                    "--from is the first bar (inclusive), --to the end (exclusive)")


# ------------------------------------------------------------------------ paths

def data_file(value: Path | None) -> Path | None:
    """``--data`` names an existing file (U001 when missing, U007 when a folder)."""
    if value is None or value.is_file():
        return value
    if value.is_dir():
        raise usage("--data", f"--data {value}: is a folder, not a candles file",
                    "give one CSV or Parquet file", code="U007")
    if value.exists():
        raise usage("--data", f"--data {value}: is not a regular file",
                    "give one CSV or Parquet file", code="U007")
    raise usage("--data", f"--data {value}: no such file", "give a CSV or Parquet file "
                "of candles", code="U001")


def project_root(value: Path | None) -> Path | None:
    """``--root``: an existing folder (U001 when missing, U007 when a file)."""
    from ..api import project_folder

    return project_folder(value)


def output_file(option: str, suffixes: tuple[str, ...] = ()) -> Callable[[Path | None],
                                                                        Path | None]:
    """A callback for an output path (``--report``, ``--trades``): the right suffix, and a
    place that can hold a new regular file — probed now, so a run that cannot write its
    output never starts (U005 suffix, U006 cannot write, U007 a folder or a device)."""
    def check(value: Path | None) -> Path | None:
        if value is None:
            return None
        if suffixes and value.suffix.lower() not in suffixes:
            wanted = SUFFIX_NAMES.get(suffixes) or "a " + " or ".join(suffixes) + " file"
            raise usage(option, f"{option} {value}: use {wanted}")
        from ..outputs import check_output

        check_output(value, option)
        return value
    return check


def check_outputs(outputs: Sequence[tuple[str, Path | None]], spec: str,
                  data: Path | None = None) -> None:
    """U005 when two outputs are one file or one would overwrite the spec or ``--data``."""
    from ..outputs import check_distinct

    check_distinct(outputs, [Path(spec), *([data] if data is not None else [])])


def check_run_inputs(spec: str, data: Path | None, report: Path | None, start: str | None,
                     end: str | None) -> None:
    """A non-empty period and a ``--report`` that overwrites no input: checked before a sweep
    or walk-forward runs, so a bad combination costs a second, not the run."""
    check_period(start, end)
    check_outputs([("--report", report)], spec, data)


# ------------------------------------------------------------------------ the options

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
SpecCapitalOpt = Annotated[float | None, typer.Option(
    "--capital", help="starting equity [default: 10000; a portfolio's own capital]",
    callback=capital)]
RootOpt = Annotated[Path | None, typer.Option(
    "--root", help="project folder [default: nearest with specs/]", callback=project_root)]
SpecArg = Annotated[str, typer.Argument(help="a strategy spec file")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="override a param: name=value (repeatable)", metavar="NAME=VALUE")]
GridOpt = Annotated[bool, typer.Option(
    "--grid", help="try every combination of the param space (the default)")]
RandomOpt = Annotated[int | None, typer.Option(
    "--random", help="try N combinations drawn with --seed", metavar="N",
    callback=random_count)]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="seed of --random", callback=seed)]
SpaceSetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="narrow or pin a param axis: name=value, name=lo..hi, name=lo..hi:step "
    "(repeatable)", metavar="NAME=RANGE")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", help="start a local Dask cluster of N worker processes (1..4×CPUs)",
    metavar="N", callback=workers)]
SchedulerOpt = Annotated[str | None, typer.Option(
    "--scheduler", help="run on an existing Dask cluster (tcp://HOST:PORT)", metavar="ADDRESS")]
HtmlReportOpt = Annotated[Path | None, typer.Option(
    "--report", help="write an HTML report", callback=output_file("--report", HTML_REPORTS))]
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", help="write FILE.html or FILE.md", callback=output_file("--report", REPORTS))]
TradesOpt = Annotated[Path | None, typer.Option(
    "--trades", help="write trades CSV", callback=output_file("--trades"))]
