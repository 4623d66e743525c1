"""Porting diagnostics: what Pine Script, TA-Lib and freqtrade authors type, and its fix.

A strategy ported from another tool arrives with that tool's idioms: ``20 < rsi < 80``,
``close = open``, ``ta.ema(close, 20)``, ``a crosses above b``, ``x + if c then a else b``,
``&&``, ``True``, ``timeframe 1H``. peak's grammar rejects each of them (or, for ``crosses``
and ``1H``, reads them as something else that then fails), and a generic "unexpected token"
would leave the porter guessing. Each detector here recognises one idiom in the token scan
(``lexical.py``) and says what peak writes instead, with a ``Fix`` that `peak check --fix`
(and an editor) can apply.

Every pattern matched here is text no valid spec contains, so a spec that checks clean has
no porting diagnostic and nothing to fix. The parser calls ``find_idioms`` on every file;
``explain`` drops the generic syntax errors an idiom already accounts for.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from itertools import chain, islice, pairwise

from .builtins import BUILTINS
from .diagnostics import Diagnostic, Fix, diag, did_you_mean
from .lexical import ARITH, COMPARE, Scan, Tok, glued, statement_starts
from .schema import TIMEFRAMES
from .source import SourceFile

Detector = Callable[[Scan], Iterator[Diagnostic]]


def _fix(scan: Scan, first: int, last: int, replacement: str) -> Fix:
    return Fix(scan.span(first, last), replacement)


# ---------------------------------------------------------------- comparisons and `=`


def chained_comparisons(scan: Scan) -> Iterator[Diagnostic]:
    """``20 < rsi < 80`` → ``20 < rsi and rsi < 80`` (each comparison once, joined by and)."""
    seen: set[int] = set()
    for i, tok in enumerate(scan.toks):
        if tok.text not in COMPARE or i in seen:
            continue
        ops = [i]
        while (end := scan.sum_end(ops[-1] + 1)) is not None and scan.at(end) in COMPARE:
            ops.append(end)
        seen.update(ops)
        left, right = scan.sum_start(i - 1), scan.sum_end(ops[-1] + 1)
        if len(ops) < 2 or left is None or right is None:
            continue
        bounds = [left, *ops, right]
        operands = [scan.text(a + (a != left), b - 1) for a, b in pairwise(bounds)]
        fixed = " and ".join(f"{a} {scan.at(op)} {b}"
                             for (a, b), op in zip(pairwise(operands), ops, strict=True))
        if scan.at(left - 1) == "not":
            fixed = f"({fixed})"
        yield diag("P009", f"comparisons do not chain: `{scan.text(left, right - 1)}`",
                   scan.src.path, scan.span(left, right - 1),
                   "compare twice and join the comparisons with `and`",
                   fix=_fix(scan, left, right - 1, fixed))


def stray_equals(scan: Scan) -> Iterator[Diagnostic]:
    """A lone ``=`` where peak has none: a comparison (``==``), a Pine-style declaration
    (``fast = ema(…)`` → ``let fast = …``) or a keyword argument (``timeperiod=14``)."""
    starts = set(statement_starts(scan.toks))
    overrides = _override_braces(scan)
    for i, tok in enumerate(scan.toks):
        if tok.text != "=" or _declares(scan, i) or any(a < i < b for a, b in overrides):
            continue
        name = scan.toks[i - 1] if i else None
        if name is not None and _begins_line_statement(scan, i - 1, starts):
            yield diag("P010", f"`{name.text} = …` declares nothing: a value is declared with "
                       "`let`", scan.src.path, scan.span(i - 1, i),
                       f"write `let {name.text} = …`", fix=_fix(scan, i - 1, i - 1,
                                                                 f"let {name.text}"))
        elif name is not None and name.kind == "name" and scan.at(i - 2) in ("(", ","):
            yield diag("P010", f"`{name.text}=` is a keyword argument; peak's arguments are "
                       "positional", scan.src.path, scan.span(i - 1, i),
                       "give the value alone, in the built-in's order (see docs/language.md)",
                       fix=_drop_keyword(scan, i))
        else:
            yield diag("P010", "`=` is not a comparison", scan.src.path, scan.span(i, i),
                       "compare with `==`", fix=_fix(scan, i, i, "=="))


def _begins_line_statement(scan: Scan, i: int, starts: set[int]) -> bool:
    """Whether the name at ``i`` opens a statement (a camel-case one too: ``fastMA = …``)."""
    tok = scan.toks[i]
    if tok.kind == "word":
        return tok.first and (i == 0 or scan.toks[i - 1].ends_operand or scan.at(i - 1) == "{")
    return tok.kind == "name" and i in starts


def _drop_keyword(scan: Scan, i: int) -> Fix:
    """Delete ``name=`` and the spaces after it (``timeperiod = 14`` → ``14``)."""
    start = scan.toks[i - 1].start
    end = scan.toks[i + 1].start if i + 1 < len(scan.toks) else scan.toks[i].end
    return Fix(scan.src.span_at(start, end - start), "")


def _declares(scan: Scan, i: int) -> bool:
    """``let NAME =``, ``state NAME =`` and ``param NAME: TYPE =`` are where peak writes
    ``=`` (a name left out, ``let = 1``, is a plain syntax error)."""
    return scan.at(i - 2) in ("let", "state", ":") or i == 0 or not scan.toks[i - 1].ends_operand \
        or scan.toks[i - 1].is_keyword


def _override_braces(scan: Scan) -> list[tuple[int, int]]:
    """The ``{ … }`` of component overrides (``with { fast = 10 }``), as token ranges."""
    ranges = []
    for i, tok in enumerate(scan.toks):
        if tok.text == "with" and scan.at(i + 1) == "{":
            close = scan.match(i + 1)
            ranges.append((i + 1, close if close is not None else len(scan.toks)))
    return ranges


# ---------------------------------------------------------------- names from other tools

# namespace → (whose it is, its names that peak spells differently)
NAMESPACES: dict[str, tuple[str, dict[str, str]]] = {
    "ta": ("Pine Script's `ta.` namespace", {"percentrank": "percent_rank"}),
    "math": ("Pine Script's `math.` namespace", {}),
    "talib": ("TA-Lib", {"max": "highest", "min": "lowest", "stddev": "stdev",
                         "macdsignal": "macd_signal", "macdhist": "macd_hist"}),
    "qtpylib": ("freqtrade's qtpylib", {"crossed_above": "crossover",
                                       "crossed_below": "crossunder"}),
    "pta": ("pandas-ta", {}),
}


def foreign_functions(scan: Scan) -> Iterator[Diagnostic]:
    """``ta.ema(…)`` → ``ema(…)``: peak's built-ins have no namespace."""
    toks = scan.toks
    for i, tok in enumerate(toks[:-2]):
        if tok.text not in NAMESPACES or scan.at(i + 1) != "." or \
                not glued(tok, toks[i + 1]) or toks[i + 2].kind not in ("name", "word"):
            continue
        owner, renames = NAMESPACES[tok.text]
        func = toks[i + 2].text
        target = renames.get(func.lower(), func.lower())
        written = scan.text(i, i + 2)
        if target in BUILTINS:
            yield diag("P011", f"`{written}` is from {owner}; peak's built-ins have no prefix",
                       scan.src.path, scan.span(i, i + 2), f"drop the prefix; peak's is "
                       f"{BUILTINS[target].signature}", fix=_fix(scan, i, i + 2, target))
        else:
            yield diag("P011", f"`{written}` is from {owner}; peak has no built-in "
                       f"`{target}`", scan.src.path, scan.span(i, i + 2),
                       did_you_mean(target, BUILTINS) or "see the built-ins in "
                       "docs/language.md")


# ---------------------------------------------------------------- crosses, if, logic words

CROSS_WORDS = frozenset({"crosses", "crossed"})
DIRECTIONS = {"above": "crossover", "over": "crossover", "up": "crossover",
              "below": "crossunder", "under": "crossunder", "down": "crossunder"}


def crosses(scan: Scan) -> Iterator[Diagnostic]:
    """``a crosses above b`` → ``crossover(a, b)``; without a direction, either way."""
    for i, tok in enumerate(scan.toks):
        if tok.text not in CROSS_WORDS or i == 0 or not scan.toks[i - 1].ends_operand \
                or scan.toks[i - 1].is_keyword:
            continue
        direction = DIRECTIONS.get(scan.at(i + 1))
        first = i + 2 if direction else i + 1
        left, right = scan.sum_start(i - 1), scan.sum_end(first)
        what = f"`{tok.text}{' ' + scan.at(i + 1) if direction else ''}`"
        if left is None or right is None:
            yield diag("P012", f"{what} is not an operator", scan.src.path, scan.span(i, i),
                       "write `crossover(a, b)` (a crosses above b) or `crossunder(a, b)`")
            continue
        a, b = scan.text(left, i - 1), scan.text(first, right - 1)
        fixed = f"{direction}({a}, {b})" if direction else \
            _grouped(scan, left, right, f"crossover({a}, {b}) or crossunder({a}, {b})")
        meaning = "" if direction else " (without a direction it means either way)"
        yield diag("P012", f"{what} is not an operator{meaning}", scan.src.path,
                   scan.span(left, right - 1), "crossing is a function of two series: "
                   "`crossover(a, b)` (a crosses above b), `crossunder(a, b)` (below)",
                   fix=_fix(scan, left, right - 1, fixed))


def _grouped(scan: Scan, first: int, end: int, text: str) -> str:
    """``text`` in parentheses unless its neighbours bind no tighter than ``or``."""
    loose = {"", "when", "=", "(", ",", "or", "require", "then", "else", "if", "}"}
    before, after = scan.at(first - 1), scan.at(end)
    after_ok = after in {"", ")", ",", "or", "then", "else", "]", "}"} or (
        end < len(scan.toks) and scan.toks[end].first)
    return text if before in loose and after_ok else f"({text})"


def inline_ifs(scan: Scan) -> Iterator[Diagnostic]:
    """``x + if c then a else b`` → ``x + (if c then a else b)``."""
    for i, tok in enumerate(scan.toks):
        before = scan.at(i - 1)
        if tok.text != "if" or not (before in ARITH or before in COMPARE
                                    or before in ("and", "or", "not")):
            continue
        end = scan.expr_end(i)
        if end is None:
            continue
        inner = scan.text(i, end - 1)
        yield diag("P013", f"`if` after `{before}` needs parentheses", scan.src.path,
                   scan.span(i, end - 1), "`if … then … else …` binds loosest of all; put it in "
                   "parentheses", fix=_fix(scan, i, end - 1, f"({inner})"))


LOGIC = {"&&": "and", "&": "and", "||": "or", "|": "or", "!": "not"}


def logic_symbols(scan: Scan) -> Iterator[Diagnostic]:
    """``&&`` / ``||`` / ``!`` (and numpy's ``&`` / ``|``) → ``and`` / ``or`` / ``not``."""
    for i, tok in enumerate(scan.toks):
        word = LOGIC.get(tok.text)
        if word is None:
            continue
        extra = " (or `!=` for inequality)" if word == "not" else ""
        yield diag("P002", f"unexpected character `{tok.text[0]}`", scan.src.path,
                   scan.span(i, i), f"use `{word}`{extra}: peak spells `{tok.text}` as "
                   f"`{word}`", fix=_fix(scan, i, i, _spaced(scan.src.text, tok, word)))


def _spaced(text: str, tok: Tok, word: str) -> str:
    """``word`` with the spaces it needs where ``tok`` stood (``a&&b`` → ``a and b``)."""
    before = tok.start > 0 and not text[tok.start - 1].isspace() and text[tok.start - 1] != "("
    after = tok.end < len(text) and not text[tok.end].isspace() and \
        (word == "not" or text[tok.end] != ")")
    return f"{' ' * before}{word}{' ' * after}"


# ---------------------------------------------------------------- literals

BOOLEANS = {"True": "true", "False": "false", "TRUE": "true", "FALSE": "false"}


def capital_booleans(scan: Scan) -> Iterator[Diagnostic]:
    """``True`` / ``FALSE`` → ``true`` / ``false`` (not a currency: no ``/`` or amount near)."""
    for i, tok in enumerate(scan.toks):
        lower = BOOLEANS.get(tok.text)
        if lower is None or scan.at(i + 1) == "/" or scan.at(i - 1) in ("/", ":") or \
                (i and scan.toks[i - 1].kind == "number"):
            continue
        yield diag("P014", f"`{tok.text}` is spelled `{lower}` in peak", scan.src.path,
                   scan.span(i, i), f"write `{lower}`", fix=_fix(scan, i, i, lower))


UNIT_WORDS = {"S": "s", "H": "h", "D": "d", "W": "w", "sec": "s", "secs": "s", "min": "m",
              "mins": "m", "minute": "m", "minutes": "m", "hr": "h", "hrs": "h", "hour": "h",
              "hours": "h", "day": "d", "days": "d", "wk": "w", "week": "w", "weeks": "w"}


def durations(scan: Scan) -> Iterator[Diagnostic]:
    """``1H`` / ``15min`` / ``timeframe "60"`` → ``1h`` / ``15m`` / ``1h``; ``3x`` → ``3``."""
    toks = scan.toks
    for i, tok in enumerate(toks[:-1]):
        nxt = toks[i + 1]
        if tok.kind == "number" and PLAIN_NUMBER.fullmatch(tok.text) and glued(tok, nxt):
            yield from _glued_unit(scan, i, nxt.text)
        elif tok.text == "timeframe" and tok.first and nxt.kind == "string":
            yield from _timeframe_string(scan, i + 1)


PLAIN_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


def _glued_unit(scan: Scan, i: int, unit: str) -> Iterator[Diagnostic]:
    count = scan.at(i)
    if unit == "x":  # `leverage 3x`: read as `3` and a setting `x`
        yield diag("P001", f"`{count}x` is not a literal", scan.src.path, scan.span(i, i + 1),
                   f"write a multiple as a plain number: `{count}`",
                   fix=_fix(scan, i, i + 1, count))
    elif not count.isdigit():
        return
    elif unit == "M":
        yield diag("P015", f"`{count}M` is not a duration", scan.src.path, scan.span(i, i + 1),
                   f"minutes are `{count}m`; months are not a timeframe (the longest is 1w)")
    elif unit in UNIT_WORDS:
        fixed = f"{count}{UNIT_WORDS[unit]}"
        yield diag("P015", f"`{count}{unit}` is written `{fixed}` in peak", scan.src.path,
                   scan.span(i, i + 1), "durations are a number and one lower-case unit "
                   "(s, m, h, d, w)", fix=_fix(scan, i, i + 1, fixed))


PINE_LETTERS = {"": 60, "S": 1, "D": 86400, "W": 604800}  # Pine: "60" is minutes, "D" a day


def _timeframe_string(scan: Scan, i: int) -> Iterator[Diagnostic]:
    """``timeframe "60"`` (Pine: minutes), ``"1D"``, ``"4h"`` (freqtrade) → a duration."""
    raw = scan.at(i)[1:-1].strip()
    fixed = _duration_text(raw)
    if fixed is None:
        return
    yield diag("P015", f"timeframe `{scan.at(i)}` is written `{fixed}` in peak", scan.src.path,
               scan.span(i, i), "a timeframe is a duration, not a string; supported: "
               + " ".join(TIMEFRAMES), fix=_fix(scan, i, i, fixed))


def _duration_text(raw: str) -> str | None:
    if not raw:
        return None
    number = raw.rstrip("SDWsmhdw") or "1"
    letter = raw[len(raw.rstrip("SDWsmhdw")):]
    if not number.isdigit() or len(letter) > 1:
        return None
    if letter in "smhdw" and letter:
        return f"{int(number)}{letter}"
    seconds = int(number) * PINE_LETTERS[letter]
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


CAMEL = (re.compile(r"([a-z0-9])([A-Z])"), re.compile(r"([A-Z]+)([A-Z][a-z])"))
CURRENCY = re.compile(r"[A-Z][A-Z0-9]*")


def camel_case_names(scan: Scan) -> Iterator[Diagnostic]:
    """``fastMA`` / ``Fast`` → ``fast_ma`` / ``fast``: upper case starts a currency in peak."""
    for i, tok in enumerate(scan.toks):
        if tok.kind != "word" or tok.text in BOOLEANS or CURRENCY.fullmatch(tok.text):
            continue
        snake = tok.text
        for pattern in CAMEL:
            snake = pattern.sub(r"\1_\2", snake)
        snake = snake.lower()
        yield diag("P001", f"`{tok.text}` is not a name: names are lower_snake_case",
                   scan.src.path, scan.span(i, i), f"write `{snake}` (names are "
                   "lower_snake_case; upper-case words are currencies and markets)",
                   fix=_fix(scan, i, i, snake))


DETECTORS: tuple[Detector, ...] = (camel_case_names, chained_comparisons, stray_equals,
                                   foreign_functions, crosses, inline_ifs, logic_symbols,
                                   capital_booleans, durations)


MAX_IDIOMS = 100  # per file and check: `peak check --fix` repeats for more


def find_idioms(src: SourceFile, toks: Sequence[Tok]) -> list[Diagnostic]:
    """The porting idioms in the file (up to ``MAX_IDIOMS``), in source order."""
    scan = Scan(src, toks)
    found = list(islice(chain.from_iterable(detect(scan) for detect in DETECTORS), MAX_IDIOMS))
    return sorted(found, key=lambda d: (d.span.start, d.code))


def explain(src: SourceFile, toks: Sequence[Tok], syntax: Sequence[Diagnostic]
            ) -> list[Diagnostic]:
    """The idioms, plus the syntax errors no idiom explains.

    A syntax error is explained when an idiom starts at or before it within the same
    statement: ``20 < rsi < 80`` fails at the second ``<``, inside the idiom's text.
    """
    idioms = find_idioms(src, toks)
    starts = [toks[i].start for i in statement_starts(toks)]
    covered = {(bisect_right(starts, d.span.start), d.span.start) for d in idioms}

    def explained(err: Diagnostic) -> bool:
        where = bisect_right(starts, err.span.start)
        return any(stmt == where and start <= err.span.start for stmt, start in covered)

    kept = [e for e in syntax if e.code in ("P003",) or not explained(e)]
    return sorted([*idioms, *kept], key=lambda d: (d.span.start, d.code))
