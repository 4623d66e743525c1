"""The command line that reproduces a result, built in one place from the typed ``ResolvedRun``.

Every result peak shows — a backtest, the best combination of a sweep, a walk-forward and
each of its windows, a report, a registry run — carries a ``peak …`` line that, pasted into a
shell in the same folder (or run by ``peak runs rerun``), computes the same metrics bit for
bit. The line lists everything that changes the result and nothing that does not:

- the spec file and the params that differ from the spec's defaults (``--set k=v``, each
  value printed so that it parses back to the same double; a sweep's best line names every
  swept param even when it equals the default);
- the data: ``--data FILE`` for a file, nothing for the project's cache or the synthetic demo
  (the spec's market and timeframe select them);
- the period: ``--from``/``--to`` as given, and for real data that was not cut by dates the
  period it covered, pinned (``--to`` is the end of the last bar), so candles fetched later
  do not change what the line computes;
- ``--fee-bps``, ``--capital`` (when not the default), ``--risk``, and a sweep's or a
  walk-forward's own options (ranges, objective, windows, random draws and their seed).

A walk-forward window's line is a walk-forward too, of that window alone
(``Recipe.one_window``): a backtest of its test period cannot measure it exactly (it either
spends its own warm-up inside the window or counts the idle warm-up bars in its metrics;
docs/registry.md).

Options that only change where or how output appears (``--json``, ``--report``,
``--workers``, ``--max-memory``, ``--top``) are left out: results are the same without them.

A ``Recipe`` is the typed form; ``line(base)`` renders it with paths relative to ``base``
(the working directory for lines printed to a person, the project folder for the registry)
and ``parse_line`` reads a rendered line back (``peak runs rerun``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compile import models as m
    from .resolve import ResolvedRun

DEFAULT_CAPITAL = 10_000.0
COMMANDS = ("backtest", "sweep", "walkforward")
WINDOW_OPTIONS = frozenset({"--train", "--test", "--step", "--anchored"})  # a walk-forward's


@dataclass(frozen=True)
class Recipe:
    """A run as the options of one ``peak`` command (see the module docstring).

    ``spec``, ``data`` and a ``risk`` file are absolute paths, or relative to the folder the
    line is meant to run in; ``sets`` are ``NAME=VALUE`` (or a sweep's ``NAME=RANGE``) texts;
    ``options`` the command's own options in their command-line spelling, in order
    (``("--train", "2000")``, ``("--anchored", None)`` for a flag).
    """

    command: str
    spec: str
    data: str | None = None
    start: str | None = None
    end: str | None = None
    fee_bps: float | None = None
    capital: float = DEFAULT_CAPITAL
    risk: str | None = None
    sets: tuple[str, ...] = ()
    options: tuple[tuple[str, str | None], ...] = field(default_factory=tuple)

    def argv(self, base: Path | None = None) -> list[str]:
        """The words after ``peak``; paths relative to ``base`` when inside it."""
        words = [self.command, _shown(self.spec, base)]
        for option, value in (("--data", self.data and _shown(self.data, base)),
                              ("--from", self.start), ("--to", self.end),
                              ("--fee-bps", None if self.fee_bps is None
                               else number_text(self.fee_bps)),
                              ("--capital", None if self.capital == DEFAULT_CAPITAL
                               else number_text(self.capital)),
                              ("--risk", self.risk and _risk_shown(self.risk, base))):
            if value is not None:
                words += [option, value]
        for text in self.sets:
            words += ["--set", text]
        for option, flag_value in self.options:
            words += [option] if flag_value is None else [option, flag_value]
        return words

    def line(self, base: Path | None = None) -> str:
        """``peak backtest specs/… --data … --from … --set …``, quoted for a POSIX shell."""
        return shlex.join(["peak", *self.argv(base)])

    def option(self, name: str) -> str | None:
        """The value of one of the command's own options (``--train``), None when absent."""
        return next((value for option, value in self.options if option == name), None)

    def flag(self, name: str) -> bool:
        return any(option == name for option, _ in self.options)

    def backtest(self, cfg: m.StrategyConfig, params: Mapping[str, float],
                 shown: Iterable[str] = ()) -> Recipe:
        """The backtest of one combination on this run's data, period and costs (a sweep's
        trial or best, a walk-forward window's winner)."""
        return replace(self, command="backtest", sets=tuple(set_texts(cfg, params, shown)),
                       options=())

    def backtest_lines(self, cfg: m.StrategyConfig, rows: Iterable[Mapping[str, float]],
                       shown: Iterable[str] = (), base: Path | None = None) -> list[str]:
        """``backtest(cfg, row, shown).line(base)`` for many rows (a block of sweep trials):
        the words they share are rendered once."""
        prefix = self.backtest(cfg, {}).line(base)
        always = tuple(shown)
        return [" ".join([prefix, *(f"--set {shlex.quote(text)}"
                                    for text in set_texts(cfg, row, always))])
                for row in rows]

    def one_window(self, start: str, end: str, train_bars: int, test_bars: int) -> Recipe:
        """The walk-forward of one of this walk-forward's windows alone: its bars as the
        period (``--from`` its first train bar, ``--to`` the end of its last test bar), its
        train and test lengths in bars, so the period holds exactly that one window; the
        space, objective and random draw as they were. Its one window trains on the same
        bars, picks the same winner and trades it on the same test bars, warmed up on the
        same bars before them when the warm-up fits in the train window (the caller checks:
        ``WalkForwardResult.window_recipe``)."""
        own = tuple((option, value) for option, value in self.options
                    if option not in WINDOW_OPTIONS)
        return replace(self, start=start, end=end, options=(
            ("--train", str(train_bars)), ("--test", str(test_bars)), *own))

    def absolute(self, root: Path) -> Recipe:
        """Relative paths resolved against ``root`` (the folder the line was made for)."""
        def at(text: str | None) -> str | None:
            return None if text is None else str((root / text).resolve())

        risk = at(self.risk) if self.risk and self.risk.endswith(".peak") else self.risk
        return replace(self, spec=at(self.spec) or self.spec, data=at(self.data), risk=risk)


# ------------------------------------------------------------------------ from a resolved run

def recipe(resolved: ResolvedRun, *, command: str = "backtest",
           params: Mapping[str, float] | None = None, shown: Iterable[str] = (),
           sets: Sequence[str] | None = None,
           options: Sequence[tuple[str, str | None]] = ()) -> Recipe | None:
    """The recipe of a ``command`` run on ``resolved``'s inputs; None when no command line
    can give them (a spec given as text, candles given as a DataFrame: ``in_memory``).

    A backtest's ``--set`` lines come from ``params`` (default: the resolved overrides): the
    values that differ from the spec's defaults, and those named in ``shown`` always. A sweep
    or walk-forward passes its ``sets`` (range texts) as given, and its own ``options``.
    """
    if command not in COMMANDS:
        raise ValueError(f"no command line for {command!r}; one of {', '.join(COMMANDS)}")
    if in_memory(resolved):
        return None
    cfg = resolved.config
    if sets is None:
        sets = set_texts(cfg, resolved.params if params is None else params, shown)
    start, end = period(resolved)
    return Recipe(command=command, spec=str(Path(resolved.spec_path).resolve()),
                  data=None if resolved.data_path is None else str(resolved.data_path),
                  start=start, end=end, fee_bps=resolved.fee_bps, capital=resolved.capital,
                  risk=_risk_text(resolved.risk_name), sets=tuple(sets),
                  options=tuple(options))


def command_line(resolved: ResolvedRun, params: Mapping[str, float] | None = None,
                 shown: Iterable[str] = (), base: Path | None = None) -> str | None:
    """The ``peak backtest …`` line that reproduces a backtest of ``resolved`` (with
    ``params`` instead of its overrides, e.g. a sweep's best combination), with paths
    relative to ``base`` (default: the working directory); None for inputs that exist only
    in memory. What reports show as "reproduce"."""
    found = recipe(resolved, params=params, shown=shown)
    return None if found is None else found.line(base)


def in_memory(resolved: ResolvedRun) -> bool:
    """Whether a run's inputs exist only in this process: a spec given as its text (no file
    at its path) or candles given as a DataFrame (neither a file, the cache nor the demo)."""
    data = resolved.data
    from_file_or_cache = (resolved.data_path is not None or data.synthetic
                          or data.source.startswith("cache"))
    return resolved.spec_from_text or not from_file_or_cache


def search_options(objective: str, mode: str, n: int | None, seed: int | None
                   ) -> list[tuple[str, str | None]]:
    """A sweep's own options: ``--objective`` (unless the default), ``--random N --seed S``."""
    out: list[tuple[str, str | None]] = []
    if objective != "sharpe":
        out.append(("--objective", objective))
    if mode == "random":
        out.append(("--random", str(n)))
        if seed is not None:
            out.append(("--seed", str(seed)))
    return out


def walkforward_options(train: str, test: str, step: str | None, anchored: bool,
                        objective: str, mode: str, n: int | None, seed: int | None
                        ) -> list[tuple[str, str | None]]:
    """A walk-forward's own options: its windows as given, then as a sweep's."""
    out: list[tuple[str, str | None]] = [("--train", train), ("--test", test)]
    if step is not None:
        out.append(("--step", step))
    if anchored:
        out.append(("--anchored", None))
    return out + search_options(objective, mode, n, seed)


def set_texts(cfg: m.StrategyConfig, params: Mapping[str, float],
              shown: Iterable[str] = ()) -> list[str]:
    """``name=value`` for each param of ``cfg`` (in declaration order) whose value differs
    from its default, or that ``shown`` names; values exact (``3%``, ``10bps``, ``20``)."""
    from .research.sweep import format_value

    always = set(shown)
    return [f"{p.name}={format_value(p, float(params[p.name]))}" for p in cfg.params
            if p.name in params and (p.name in always or float(params[p.name]) != p.default)]


def period(resolved: ResolvedRun) -> tuple[str | None, str | None]:
    """``--from``/``--to``: as given; for real data not cut by a date, the period it covered
    (``--to`` the end of the last bar), so data added to the cache later changes nothing."""
    import pandas as pd

    data = resolved.data
    start, end = data.requested_from, data.requested_to
    if data.synthetic or not data.bars:
        return start, end
    if start is None:
        start = stamp_text(pd.Timestamp(data.start))
    if end is None:
        step = pd.Timedelta(seconds=resolved.config.timeframe_seconds)
        end = stamp_text(pd.Timestamp(data.end) + step)
    return start, end


def stamp_text(ts: Any) -> str:
    """A bar time as ``--from`` reads it, shortest first: ``2024-01-31``, ``2024-01-31T04:00``,
    ``2024-01-31T04:00:30`` (UTC; the options read a time without a zone as UTC)."""
    import pandas as pd

    ts = pd.Timestamp(ts)
    ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    if ts == ts.normalize():
        return str(ts.strftime("%Y-%m-%d"))
    if ts.second == 0 and ts.microsecond == 0 and ts.nanosecond == 0:
        return str(ts.strftime("%Y-%m-%dT%H:%M"))
    return str(ts.isoformat())


def number_text(value: float) -> str:
    """``10000``, ``2.5``: the shortest text that reads back as the same double."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _risk_text(risk: str | None) -> str | None:
    """A risk spec's name as given, or its file made absolute."""
    if risk is None:
        return None
    path = Path(risk)
    return str(path.resolve()) if path.suffix == ".peak" and path.is_file() else risk


def _risk_shown(risk: str, base: Path | None) -> str:
    return _shown(risk, base) if risk.endswith(".peak") and Path(risk).is_absolute() else risk


def _shown(path: str, base: Path | None) -> str:
    """``path`` relative to ``base`` (default: the working directory) when inside it."""
    full = Path(path)
    if not full.is_absolute():
        return full.as_posix()
    try:
        return full.relative_to(_real(base or Path.cwd())).as_posix()
    except ValueError:
        return full.as_posix()


@lru_cache(maxsize=64)
def _real(folder: Path) -> Path:
    """``folder`` resolved once (a sweep renders a line per trial against the same one)."""
    return folder.resolve()


# ------------------------------------------------------------------------ reading a line back

COMMON_OPTIONS = {"--data": "data", "--from": "start", "--to": "end", "--fee-bps": "fee_bps",
                  "--capital": "capital", "--risk": "risk"}
KIND_OPTIONS: dict[str, dict[str, bool]] = {  # option → takes a value
    "backtest": {},
    "sweep": {"--objective": True, "--random": True, "--seed": True, "--grid": False},
    "walkforward": {"--train": True, "--test": True, "--step": True, "--anchored": False,
                    "--objective": True, "--random": True, "--seed": True, "--grid": False},
}


class LineError(ValueError):
    """A stored command line this peak cannot read back (written by a newer one)."""


def parse_line(line: str) -> Recipe:
    """The recipe of a line that ``Recipe.line`` wrote; ``LineError`` for anything else."""
    words = shlex.split(line)
    if len(words) < 3 or words[0] != "peak" or words[1] not in COMMANDS:
        raise LineError(f"not a peak backtest, sweep or walk-forward command: {line}")
    command, spec, rest = words[1], words[2], words[3:]
    common: dict[str, Any] = {}
    sets: list[str] = []
    options: list[tuple[str, str | None]] = []
    own = KIND_OPTIONS[command]
    i = 0
    while i < len(rest):
        word = rest[i]
        takes = word in COMMON_OPTIONS or word == "--set" or own.get(word, False)
        if word not in COMMON_OPTIONS and word != "--set" and word not in own:
            raise LineError(f"`{word}` is not an option peak records for `peak {command}`")
        if takes and i + 1 >= len(rest):
            raise LineError(f"`{word}` without a value in: {line}")
        value = rest[i + 1] if takes else None
        if word == "--set":
            sets.append(str(value))
        elif word in COMMON_OPTIONS:
            common[COMMON_OPTIONS[word]] = value
        else:
            options.append((word, value))
        i += 2 if takes else 1
    for key in ("fee_bps", "capital"):
        if key in common:
            common[key] = float(common[key])
    return Recipe(command=command, spec=spec, sets=tuple(sets), options=tuple(options),
                  **common)


__all__ = ["COMMANDS", "LineError", "Recipe", "command_line", "in_memory", "number_text",
           "parse_line",
           "period", "recipe", "search_options", "set_texts", "stamp_text",
           "walkforward_options"]
