"""Fetch candles from an exchange through ccxt into the cache: paginated, rate-limited,
retried with backoff, resumable.

The cache's sidecar records which ``[start, end)`` ranges the exchange has already answered
for; a run asks only for the bars of ``[since, until)`` that are neither cached nor inside such
a range, so a second run fetches only what is missing (and an exchange outage is not asked
about again and again). Progress is written atomically every few pages, so an interrupted
fetch keeps what it got.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..lang.diagnostics import Diagnostic, diag, did_you_mean
from ..lang.project import display_path
from . import DataError
from .cache import Meta, cache_path, load_cached, merge, read_meta, store
from .candles import CandleSet, format_time, normalise_market, timeframe_seconds, utc
from .quality import find_gaps, row_problems

MS = 1000
WEEK_OFFSET_MS = 4 * 86_400 * MS  # weekly bars open on Mondays; 1970-01-01 was a Thursday


@dataclass
class FetchReport:
    """What a fetch did. ``diagnostics`` holds D011 (gave up) and D004–D007/D009 findings."""

    exchange: str
    market: str
    timeframe: str
    since: pd.Timestamp
    until: pd.Timestamp
    path: Path
    missing: list[tuple[int, int]] = field(default_factory=list)  # ranges asked for, ms
    requests: int = 0
    retries: int = 0
    new_bars: int = 0
    bars: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    gaps: int = 0
    complete: bool = False
    notes: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


class _GaveUp(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def grid_offset_ms(timeframe: str) -> int:
    return WEEK_OFFSET_MS if timeframe == "1w" else 0


def align_up(ms: int, step: int, offset: int) -> int:
    return -((offset - ms) // step) * step + offset if (ms - offset) % step else ms


def make_exchange(exchange_id: str) -> Any:
    """A ccxt exchange with rate limiting on; DataError (D012) for an unknown id."""
    import ccxt  # type: ignore[import-untyped]

    if exchange_id not in ccxt.exchanges:
        raise DataError([diag("D012", f"unknown exchange `{exchange_id}`", f"<{exchange_id}>",
                              help=did_you_mean(exchange_id, ccxt.exchanges)
                              or "see https://docs.ccxt.com for exchange ids")])
    return getattr(ccxt, exchange_id)({"enableRateLimit": True})


def fetch_ohlcv(exchange_id: str, market: str, timeframe: str, since: pd.Timestamp,
                until: pd.Timestamp | None = None, *, root: Path, exchange: Any = None,
                sleep: Callable[[float], None] = time.sleep, limit: int = 1000,
                max_retries: int = 5, base_delay: float = 1.0, max_delay: float = 60.0,
                flush_pages: int = 10, now: pd.Timestamp | None = None,
                replace: bool = False) -> FetchReport:
    """Fetch ``[since, until)`` of ``market`` at ``timeframe`` into the cache under ``root``.

    ``replace``: start the dataset afresh instead of merging into (and resuming) the cached
    one — the way to re-create a dataset that cannot be verified (D013, D014).

    Raises DataError (D012) for an unknown exchange, market or timeframe. Transient errors
    (network, rate limit, DDoS protection, exchange unavailable) are retried ``max_retries``
    times with exponential backoff; after that the report carries D011 and whatever was
    fetched before is kept in the cache.
    """
    import ccxt

    market = normalise_market(market)
    bar_ms = timeframe_seconds(timeframe) * MS
    offset = grid_offset_ms(timeframe)
    ex = exchange if exchange is not None else make_exchange(exchange_id)
    ex.enableRateLimit = True
    where = f"<{exchange_id}>"
    path = cache_path(root, market, timeframe)
    now_ms = int(utc(now if now is not None else pd.Timestamp.now(tz="UTC")).value // 1_000_000)
    closed_until = (now_ms - offset) // bar_ms * bar_ms + offset  # the open bar is excluded
    start_ms = align_up(int(utc(since).value // 1_000_000), bar_ms, offset)
    end_ms = closed_until if until is None else min(
        align_up(int(utc(until).value // 1_000_000), bar_ms, offset), closed_until)
    report = FetchReport(exchange_id, market, timeframe, _ts(start_ms), _ts(end_ms), path)
    state = _Retry(sleep, max_retries, base_delay, max_delay, where, report)

    try:
        if getattr(ex, "markets", None) is None:
            state.call(ex.load_markets)
        if market not in ex.markets:
            raise DataError([diag("D012", f"{exchange_id} has no market {market}", where,
                                  help=did_you_mean(market, list(ex.markets))
                                  or "check the symbol on the exchange (BASE/QUOTE)")])
        if getattr(ex, "timeframes", None) and timeframe not in ex.timeframes:
            raise DataError([diag("D012", f"{exchange_id} has no {timeframe} candles", where,
                                  help="it offers " + " ".join(ex.timeframes))])
        if not ex.has.get("fetchOHLCV"):
            raise DataError([diag("D012", f"{exchange_id} does not offer OHLCV candles "
                                  "through ccxt", where, help="choose another exchange")])
    except _GaveUp as exc:
        report.diagnostics.append(exc.diagnostic)
        return report
    except ccxt.BaseError as exc:  # not transient: authentication, exchange errors, …
        report.diagnostics.append(_refused(exchange_id, exc))
        return report

    cached, meta = _previous(root, market, timeframe, replace)
    if cached is not None and meta is not None and meta.synthetic:
        report.notes.append(f"replaced the synthetic data in {display_path(path)}")
        cached, meta = None, None
    ranges = list(meta.ranges) if meta is not None else []
    if start_ms >= end_ms:  # the command says so: nothing to fetch, the range is empty
        _finish(report, cached, start_ms, end_ms, bar_ms)
        return report
    report.missing = _missing(cached, ranges, start_ms, end_ms, bar_ms)
    sink = _Sink(root, market, timeframe, exchange_id, cached, ranges, meta, report)
    try:
        for a, b in report.missing:
            _fetch_range(ex, market, timeframe, a, b, bar_ms, limit, flush_pages, state, sink)
        report.complete = True
    except _GaveUp as exc:
        report.diagnostics.append(exc.diagnostic)
    except ccxt.BadSymbol as exc:
        report.diagnostics.append(diag("D012", f"{exchange_id} rejected {market}: "
                                       f"{str(exc)[:200]}", where))
    except ccxt.BaseError as exc:
        report.diagnostics.append(_refused(exchange_id, exc))
    finally:
        sink.flush()
    _finish(report, sink.candles, start_ms, end_ms, bar_ms)
    return report


def _previous(root: Path, market: str, timeframe: str, replace: bool
              ) -> tuple[CandleSet | None, Meta | None]:
    """The verified cached dataset and its provenance to merge into; none with ``replace``.
    Raises DataError when it cannot be trusted (D013: quarantined now; D014) or has no volume
    to merge the exchange's with (D002)."""
    if replace:
        return None, None
    cached = load_cached(root, market, timeframe, quarantined_ok=True)
    if cached is not None and not cached.has_volume:  # merged, volume would be partly unknown
        shown = display_path(cache_path(root, market, timeframe))
        raise DataError([diag("D002", f"the cached dataset {shown} has no volume column (it "
                              "was imported without one) but fetched candles have volume",
                              shown, help="pass --replace to fetch the dataset afresh")])
    return cached, read_meta(cache_path(root, market, timeframe)) if cached is not None else None


def _refused(exchange_id: str, exc: Exception) -> Diagnostic:
    """D011 for an error retrying cannot fix (the request itself is wrong or refused)."""
    return diag("D011", f"{exchange_id} request failed: {type(exc).__name__}: "
                f"{str(exc)[:200]}", f"<{exchange_id}>",
                help="this error is not transient; check the market, timeframe and dates")


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms * 1_000_000, tz="UTC")


def _missing(cached: CandleSet | None, ranges: list[tuple[int, int]], start: int, end: int,
             step: int) -> list[tuple[int, int]]:
    """Runs of grid points in ``[start, end)`` neither cached nor already asked for."""
    grid = np.arange(start, end, step, dtype=np.int64)
    covered = np.zeros(len(grid), dtype=bool)
    if cached is not None and cached.bars:
        have = cached.frame.index.as_unit("ns").asi8 // 1_000_000
        covered |= np.isin(grid, have)
    for a, b in ranges:
        covered |= (grid >= a) & (grid < b)
    out: list[tuple[int, int]] = []
    idx = np.flatnonzero(~covered)
    if len(idx) == 0:
        return out
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    return [(int(grid[s]), int(grid[e]) + step) for s, e in zip(starts, ends, strict=True)]


class _Retry:
    def __init__(self, sleep: Callable[[float], None], max_retries: int, base: float,
                 cap: float, where: str, report: FetchReport) -> None:
        self.sleep, self.max_retries, self.base, self.cap = sleep, max_retries, base, cap
        self.where, self.report = where, report

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import ccxt

        attempt = 0
        while True:
            self.report.requests += 1
            try:
                return fn(*args, **kwargs)
            except ccxt.NetworkError as exc:  # incl. RateLimitExceeded, DDoSProtection,
                attempt += 1                  # ExchangeNotAvailable, RequestTimeout
                if attempt > self.max_retries:
                    raise _GaveUp(diag(
                        "D011", f"{self.where.strip('<>')} request failed after "
                        f"{attempt} attempts: {type(exc).__name__}: {str(exc)[:200]}",
                        self.where, help="the exchange or network is unavailable; run the "
                        "same command again later — it resumes where it stopped")) from None
                self.report.retries += 1
                delay = min(self.cap, self.base * 2 ** (attempt - 1))
                if isinstance(exc, ccxt.DDoSProtection):  # rate limited: back off harder
                    delay = min(self.cap, delay * 2)
                self.sleep(delay)


class _Sink:
    """Collects pages and merges them into the cache every few pages."""

    def __init__(self, root: Path, market: str, timeframe: str, exchange_id: str,
                 cached: CandleSet | None, ranges: list[tuple[int, int]], meta: Meta | None,
                 report: FetchReport) -> None:
        self.root, self.market, self.timeframe = root, market, timeframe
        self.exchange_id, self.candles, self.ranges = exchange_id, cached, ranges
        self.meta, self.report = meta, report
        self.rows: list[list[float]] = []
        self.new_ranges: list[tuple[int, int]] = []

    def add(self, rows: list[list[float]], covered: tuple[int, int]) -> None:
        self.rows.extend(rows)
        self.new_ranges.append(covered)

    def flush(self) -> None:
        if not self.rows and not self.new_ranges:
            return
        rows, self.rows = self.rows, []
        self.ranges = _union(self.ranges + self.new_ranges)
        self.new_ranges = []
        fresh = self._candles(rows)
        before = self.candles.bars if self.candles is not None else 0
        shown = display_path(cache_path(self.root, self.market, self.timeframe))
        merged = merge(self.candles, fresh, f"cache: {shown}")
        self.report.new_bars += merged.bars - before
        origin = "fetch" if self.meta is None or self.meta.origin == "fetch" else "mixed"
        detail = f"{self.exchange_id}" if origin == "fetch" else \
            f"{self.meta.describe() if self.meta else ''} + fetched from {self.exchange_id}"
        meta = Meta(self.market, self.timeframe, origin, False, detail, self.exchange_id,
                    None, tuple(self.ranges))
        store(self.root, merged, meta)
        self.candles, self.meta = merged, meta

    def _candles(self, rows: list[list[float]]) -> CandleSet:
        by_time: dict[int, list[float]] = {}
        for row in rows:  # later pages win, like the importer's "last one wins"
            by_time[int(row[0])] = row
        stamps = np.array(sorted(by_time), dtype=np.int64)
        table = np.array([[_num(by_time[t][k]) for k in range(1, 6)] for t in stamps],
                         dtype=np.float64).reshape(len(stamps), 5)
        values = {c: table[:, i] for i, c in enumerate(("open", "high", "low", "close",
                                                        "volume"))}
        problems = row_problems(values)
        bad = np.zeros(len(stamps), dtype=bool)
        for p in problems[:50]:
            self.report.diagnostics.append(diag(
                p.code, f"bar {format_time(int(stamps[p.row]) * 1_000_000)} from "
                f"{self.exchange_id}: {p.message}", f"<{self.exchange_id}>",
                help="the bar was not stored; report it to the exchange"))
        for p in problems:
            bad[p.row] = True
        keep = ~bad
        index = pd.DatetimeIndex((stamps[keep] * 1_000_000).astype("datetime64[ns]")) \
            .tz_localize("UTC")
        frame = pd.DataFrame({c: v[keep] for c, v in values.items()}, index=index)
        return CandleSet.of(frame, self.market, self.timeframe, "fetch")


def _num(value: Any) -> float:
    try:
        return float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _union(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _fetch_range(ex: Any, market: str, timeframe: str, a: int, b: int, step: int, limit: int,
                 flush_pages: int, state: _Retry, sink: _Sink) -> None:
    cursor = a
    pages = 0
    while cursor < b:
        rows = state.call(ex.fetch_ohlcv, market, timeframe, cursor, limit) or []
        pages += 1
        rows = [r for r in rows if r and r[0] is not None and int(r[0]) >= cursor]
        if not rows:  # nothing at or after the cursor: the exchange has no more bars here
            sink.add([], (cursor, b))
            break
        last = max(int(r[0]) for r in rows)
        sink.add([r for r in rows if int(r[0]) < b], (cursor, min(b, last + step)))
        cursor = last + step
        if pages % flush_pages == 0:
            sink.flush()


def _finish(report: FetchReport, candles: CandleSet | None, start: int, end: int,
            step: int) -> None:
    if candles is None or candles.bars == 0:
        return
    report.bars = candles.bars
    report.first, report.last = candles.frame.index[0], candles.frame.index[-1]
    window = candles.frame.index.as_unit("ns").asi8
    window = window[(window >= start * 1_000_000) & (window < end * 1_000_000)]
    gaps = find_gaps(window, step // MS)
    report.gaps = len(gaps)
    if gaps:
        largest = max(gaps, key=lambda g: g.missing)
        missing = sum(g.missing for g in gaps)
        report.diagnostics.append(diag(
            "D009", f"{len(gaps)} gap{'s' * (len(gaps) != 1)} in {report.market} "
            f"{report.timeframe} between {format_time(start * 1_000_000)} and "
            f"{format_time(end * 1_000_000)}: {missing} missing bar{'s' * (missing != 1)}; "
            f"the largest is {largest.describe()}", display_path(report.path),
            help="the exchange has no bars there (an outage or no trading); gaps are kept, "
                 "not filled — `peak data check` lists them"))
