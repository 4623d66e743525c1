"""Which column of an imported table is time, open, high, low, close, volume (and symbol).

Names are matched case-insensitively against aliases (``--column ROLE=NAME`` overrides); a
headerless file is read by position. Two kinds of file lack columns and are still candles:

* **no volume** (OHLC only): the volume is unknown, kept as NaN — never invented as 0, which
  would read as "nothing traded" — and a strategy that reads ``volume`` refuses to run on it
  (D022);
* **close only** (time and one price): open, high and low are set to the close, so every bar is
  flat (its range is zero).

``missing_roles`` says which of the two applies; the importer fills the columns and warns
(D021). A file with some but not all of open, high and low is D002: guessing one price from
the others would be invention.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ..lang.diagnostics import Diagnostic, diag, did_you_mean
from ..lang.source import Span
from .candles import COLUMNS

ROLES: tuple[str, ...] = ("time", *COLUMNS)
RANGE = ("open", "high", "low")  # set to the close in a close-only file
# Accepted names per role, most specific first; compared case-insensitively with spaces,
# dashes and dots folded to underscores.
ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time", "timestamp", "date", "datetime", "date_time", "open_time", "opentime",
             "time_utc", "timestamp_utc", "ts", "unix", "unix_timestamp", "start", "t"),
    "open": ("open", "o", "open_price", "opening_price"),
    "high": ("high", "h", "high_price", "max"),
    "low": ("low", "l", "low_price", "min"),
    "close": ("close", "c", "close_price", "closing_price", "last", "price"),
    "volume": ("volume", "v", "vol", "base_volume", "volume_base"),
}
PREFIXES: dict[str, str] = {"volume": "volume", "time": "timestamp"}
SYMBOL = ("symbol", "market", "pair", "ticker", "instrument")  # read for D020 only
# Headerless files by their number of columns (fewer columns than these: read as the first).
POSITIONS: dict[int, tuple[str, ...]] = {2: ("time", "close"), 5: ROLES[:5]}


class ImportFailed(Exception):
    """The file cannot be read at all (D001/D002); carries the diagnostics."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = tuple(diagnostics)


def fold(name: str) -> str:
    return re.sub(r"[\s.\-/]+", "_", name.strip().lower()).strip("_")


def map_columns(names: list[str], header: bool, shown: str,
                given: Mapping[str, str], frame: bool = False) -> dict[str, str]:
    """Role → column name. Absent from the result: open, high and low of a close-only file,
    volume of a file without one (``missing_roles``). ``symbol`` is there when a symbol
    column is. Raises ImportFailed (D002) for columns that are missing or ambiguous; its help
    says how to fix it where the table came from (``frame``: a pandas DataFrame, which has no
    ``--column`` option)."""
    problems: list[Diagnostic] = []
    mapping = _given(names, shown, given, problems)
    if not header:
        for i, role in enumerate(POSITIONS.get(len(names), ROLES)):
            if role not in mapping and i < len(names):
                mapping[role] = names[i]
    folded = {n: fold(n) for n in names}
    absent = []
    for role in ROLES:
        if role in mapping or role in given:
            continue
        found = _detect(role, [n for n in names if n not in set(mapping.values())], folded)
        if isinstance(found, str):
            mapping[role] = found
        elif found:
            problems.append(diag(
                "D002", f"ambiguous {role} column: " + " or ".join(f"`{n}`" for n in found),
                shown, Span(0, 0, 1, 1, 1, 1), help=_choose(role, frame)))
        else:
            absent.append(role)
    problems += [_absent(role, names, header, shown, frame) for role in absent
                 if not _optional(role, absent, mapping)]
    if problems:
        raise ImportFailed(problems)
    symbol = next((n for n in names if folded[n] in SYMBOL and n not in mapping.values()), None)
    return mapping | ({"symbol": symbol} if symbol else {})


def missing_roles(mapping: Mapping[str, str]) -> tuple[str, ...]:
    """The price and volume roles a mapping lacks (filled by the importer, D021)."""
    return tuple(role for role in COLUMNS if role not in mapping)


def _optional(role: str, absent: list[str], mapping: Mapping[str, str]) -> bool:
    """Volume may be absent; open, high and low only all together, with a close."""
    if role == "volume":
        return True
    return role in RANGE and "close" in mapping and all(r in absent for r in RANGE)


def _given(names: list[str], shown: str, given: Mapping[str, str],
           problems: list[Diagnostic]) -> dict[str, str]:
    """The ``--column ROLE=NAME`` mappings that name a real column (D002 for the others)."""
    mapping: dict[str, str] = {}
    for role, name in given.items():
        if role not in ROLES:
            problems.append(diag("D002", f"unknown column role `{role}`", shown,
                                 help=f"roles are {', '.join(ROLES)}; "
                                      + did_you_mean(role, ROLES)))
        elif name in names:
            mapping[role] = name
        elif len(matches := [n for n in names if n.lower() == name.lower()]) == 1:
            mapping[role] = matches[0]
        else:
            problems.append(diag(
                "D002", f"no column `{name}` (given for {role}) in {shown}", shown,
                help=(did_you_mean(name, names) or f"the columns are: {', '.join(names)}")))
    return mapping


def _absent(role: str, names: list[str], header: bool, shown: str,
            frame: bool = False) -> Diagnostic:
    hint = f"the columns are: {', '.join(names)}" if header else \
        f"the file has {len(names)} columns; expected time, open, high, low, close, volume"
    return diag("D002", f"no {role} column in {shown}", shown, Span(0, 0, 1, 1, 1, 1),
                help=f"{hint}; {_name_it(role, frame)}")


FRAME_NAMING = {  # role → how a DataFrame user points peak at that column (no --column there)
    "time": "give the DataFrame a DatetimeIndex (`df.set_index(\"NAME\")`) or name its time "
            "column `time`",
}


def _name_it(role: str, frame: bool) -> str:
    """How to name the ``role`` column: ``--column`` for a file, a pandas step for a frame."""
    if not frame:
        return f"name it with --column {role}=NAME"
    return FRAME_NAMING.get(role, f"rename it to `{role}` "
                                  f"(`df.rename(columns={{\"NAME\": \"{role}\"}})`)")


def _choose(role: str, frame: bool) -> str:
    """How to pick one of several candidate ``role`` columns."""
    if not frame:
        return f"choose one with --column {role}=NAME"
    return "keep one of them: drop the others (`df.drop(columns=[...])`) before passing it"


def _detect(role: str, names: list[str], folded: dict[str, str]) -> str | list[str]:
    for alias in ALIASES[role]:
        hits = [n for n in names if folded[n] == alias]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return hits
    prefix = PREFIXES.get(role)
    if prefix:
        hits = [n for n in names if folded[n].startswith(prefix)]
        if len(hits) == 1:
            return hits[0]
        return hits
    return []
