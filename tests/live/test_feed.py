"""``PollingSource`` against the loopback exchange's klines, on a clock the test drives
(issue 11, item 1): no real waiting, every wait recorded.

The history is the closed bars before now (never the forming one); the first tick comes at
the next bar close plus the settle time, carries the bar right after the history's last and
the forming bar's open; a candle published late is waited for (``retry`` apart, at most
``patience``), and after that the tick is given without it; ticks stay on each timeframe's
grid, whatever the time the session started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from peakdsl.live.feed import PAGE, Candle, PolledSlot, PollingSource, Tick
from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.venue import Venue

T0 = 1_704_067_200  # 2024-01-01T00:00Z: a bar open of every timeframe up to a day
H = 3600
KLINES = "GET /api/v3/klines"
BTC_1H = PolledSlot("BTC/USDT", "1h", H)
PATIENT_TIMEOUT_MS = 10_000


def bar(k: int, tf: int = H) -> Candle:
    """The k-th candle of the market (open 100 + k)."""
    return Candle(float(T0 + k * tf), 100.0 + k, 102.0 + k, 99.0 + k, 101.0 + k, 10.0)


@dataclass
class Market:
    """Fake time and an exchange that publishes each candle ``lag`` seconds after it opens
    (0: a bar's row appears as it opens, like Binance's forming candle); ``late`` holds the
    lag of single hourly bars."""

    exchange: LoopbackExchange
    now: float
    lag: float = 0.0
    late: dict[int, float] = field(default_factory=dict)
    bars: int = 200
    timeframes: dict[str, int] = field(default_factory=lambda: {"1h": H})
    slept: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.publish()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.publish()

    def publish(self) -> None:
        for name, tf in self.timeframes.items():
            rows = [[c.time * 1000, c.open, c.high, c.low, c.close, c.volume]
                    for k in range(self.bars) if (c := bar(k, tf)).time + self.lag_of(k, tf)
                    <= self.now]
            self.exchange.set_candles("BTC/USDT", name, rows)

    def lag_of(self, k: int, tf: int) -> float:
        return self.late.get(k, self.lag) if tf == H else self.lag

    def source(self, venue: Venue, slots: tuple[PolledSlot, ...] = (BTC_1H,),
               **options: float) -> PollingSource:
        return PollingSource(slots, venue.fetch_ohlcv, clock=self.clock, sleep=self.sleep,
                             **options)  # type: ignore[arg-type]


def kline_requests(exchange: LoopbackExchange) -> list[tuple[str | None, ...]]:
    return [(r.param("interval"), r.param("startTime"), r.param("limit"))
            for r in exchange.requests if r.endpoint == KLINES]


def ticks(source: PollingSource, n: int) -> list[Tick]:
    source.max_ticks = n
    return list(source.ticks())


@pytest.fixture
def client(exchange: LoopbackExchange, client_at: Callable[..., Any]) -> Any:
    """The live suite's client, but patient: these tests count the klines requests exactly,
    and on a loaded CI machine a 500-bar page can take longer than the suite's 0.5 s timeout,
    which makes the venue retry the read and the count one more (retries are
    ``test_venue``'s subject, not this file's)."""
    built = client_at(exchange.url, timeout_ms=PATIENT_TIMEOUT_MS)
    built.load_markets()
    exchange.reset_counts()
    return built


@pytest.fixture
def market(exchange: LoopbackExchange) -> Market:
    return Market(exchange, now=T0 + 10 * H + 1000)  # 1,000 s into bar 10


def test_history_is_the_closed_bars_before_now(market: Market, venue: Venue,
                                               exchange: LoopbackExchange) -> None:
    source = market.source(venue)
    assert source.history(0, 5) == [bar(k) for k in range(5, 10)]  # not the forming bar 10
    assert source.seen == [float(T0 + 9 * H)]
    since = (T0 + 10 * H + 1000 - 7 * H) * 1000
    assert kline_requests(exchange) == [("1h", str(since), str(PAGE))]
    assert market.slept == []


def test_a_long_history_comes_in_pages(exchange: LoopbackExchange, venue: Venue) -> None:
    """1,200 bars in pages of 500, each from the bar after the last one got."""
    market = Market(exchange, now=T0 + 1250 * H + 1000, bars=1300)
    exchange.reset_counts()
    source = market.source(venue)
    assert source.history(0, 1200) == [bar(k) for k in range(50, 1250)]
    starts = [str((T0 + k * H) * 1000) for k in (48, 549, 1049)]
    starts[0] = str((T0 + 48 * H + 1000) * 1000)  # 1,202 bars before now
    assert kline_requests(exchange) == [("1h", start, str(PAGE)) for start in starts]


def test_no_history_asked_none_given(market: Market, venue: Venue) -> None:
    assert market.source(venue).history(0, 0) == []


def test_the_first_tick_continues_the_history_at_the_bar_close(
        market: Market, venue: Venue, exchange: LoopbackExchange) -> None:
    source = market.source(venue)
    source.history(0, 5)
    exchange.reset_counts()
    (tick,) = ticks(source, 1)
    assert tick == Tick(float(T0 + 11 * H), {0: bar(10)}, {0: bar(11).open})
    assert market.slept == [H - 1000 + 2.0]  # to the close, then the 2 s settle
    assert kline_requests(exchange) == [("1h", str((T0 + 9 * H) * 1000), "5")]


def test_a_late_candle_is_waited_for(exchange: LoopbackExchange, venue: Venue) -> None:
    """Published 7 s after the close: asked at +2, +4, +6 in vain, found at +8."""
    market = Market(exchange, now=T0 + 10 * H + 1000, lag=7.0)
    exchange.reset_counts()
    (tick,) = ticks(market.source(venue), 1)
    assert tick == Tick(float(T0 + 11 * H), {0: bar(10)}, {0: bar(11).open})
    assert market.slept == [H - 1000 + 2.0, 2.0, 2.0, 2.0]
    assert len(kline_requests(exchange)) == 4


def test_after_patience_the_tick_comes_without_the_late_candle(
        exchange: LoopbackExchange, venue: Venue) -> None:
    """Bar 11 published 100 s late, 60 s of patience: 31 asks 2 s apart, then the tick is
    given with what there is: the closed bar 10, and — no forming bar published — the next
    bar opening at bar 10's close (every close is paired with an open: the book's bars never
    drift); the next is on time."""
    market = Market(exchange, now=T0 + 10 * H + 1000, late={11: 100.0})
    exchange.reset_counts()
    first, second = ticks(market.source(venue, patience=60.0), 2)
    assert first == Tick(float(T0 + 11 * H), {0: bar(10)}, {0: bar(10).close})
    assert market.slept == [H - 1000 + 2.0] + [2.0] * 30 + [H - 62.0 + 2.0]
    assert len(kline_requests(exchange)) == 31 + 1
    assert second == Tick(float(T0 + 12 * H), {0: bar(11)}, {0: bar(12).open})


def test_a_candle_missed_comes_with_the_next_tick(exchange: LoopbackExchange,
                                                  venue: Venue) -> None:
    """Bar 11 published only 400 s after its close, past the 60 s of patience: the tick at
    its close goes without it; the next poll asks from the bar after the last one given and
    its tick carries bar 11 as ``missed`` beside bar 12 — what a feed that is only read
    (another market's) pushes to catch up. Further behind than the last few bars, the poll
    asks for a page from there."""
    market = Market(exchange, now=T0 + 10 * H + 1000, late={11: H + 400.0})
    source = market.source(venue, patience=60.0)
    source.history(0, 2)
    exchange.reset_counts()
    first, second, third = ticks(source, 3)
    assert (first.closed, second.closed) == ({0: bar(10)}, {})
    assert second.opened == {0: bar(12).open} and second.missed == {}
    assert third == Tick(float(T0 + 13 * H), {0: bar(12)}, {0: bar(13).open}, {0: (bar(11),)})
    asked = kline_requests(exchange)
    assert asked[-1] == ("1h", str((T0 + 11 * H) * 1000), "5")  # from bar 11
    source.seen[0] = float(T0 + 5 * H)  # as if bars 6 to 12 had been missed
    (fourth,) = ticks(source, 1)
    assert fourth.missed == {0: tuple(bar(k) for k in range(6, 13))}
    assert kline_requests(exchange)[-1] == ("1h", str((T0 + 6 * H) * 1000), str(PAGE))


def test_a_bar_given_once_is_not_given_again(market: Market, venue: Venue) -> None:
    """The history gave bar 9; had the exchange not moved on, the tick must not repeat it."""
    source = market.source(venue)
    source.history(0, 3)
    source.seen[0] = float(T0 + 10 * H)  # as if bar 10 had been given already
    (tick,) = ticks(source, 1)
    assert tick.closed == {} and tick.opened == {0: bar(11).open}


@pytest.mark.parametrize("offset", [0, 1, 1234, H - 1])
def test_ticks_keep_to_each_timeframes_grid(exchange: LoopbackExchange, venue: Venue,
                                            offset: int) -> None:
    """An hourly and a four-hourly slot, started ``offset`` s into the 02:00 bar: ticks at
    03:00, 04:00 (both slots) and 05:00; the four-hourly slot is asked only at 04:00."""
    market = Market(exchange, now=T0 + 2 * H + offset, timeframes={"1h": H, "4h": 4 * H})
    btc_4h = PolledSlot("BTC/USDT", "4h", 4 * H)
    exchange.reset_counts()
    got = ticks(market.source(venue, (BTC_1H, btc_4h)), 3)
    assert [t.time - T0 for t in got] == [3 * H, 4 * H, 5 * H]
    assert [sorted(t.closed) for t in got] == [[0], [0, 1], [0]]
    assert got[1].closed[1] == bar(0, 4 * H) and got[1].opened[1] == bar(1, 4 * H).open
    assert [t.closed[0] for t in got] == [bar(2), bar(3), bar(4)]
    assert market.slept == [3 * H - 2 * H - offset + 2.0, float(H), float(H)]
    assert [i for i, _, _ in kline_requests(exchange)] == ["1h", "1h", "4h", "1h"]


def test_max_ticks_bounds_the_session(market: Market, venue: Venue) -> None:
    got = ticks(market.source(venue), 5)
    assert [t.time - T0 for t in got] == [h * H for h in range(11, 16)]
    assert sum(market.slept) == pytest.approx(T0 + 15 * H + 2 - (T0 + 10 * H + 1000))


def test_the_fetch_is_what_a_ccxt_client_gives(market: Market, venue: Venue) -> None:
    """The rows come through the real ccxt client: millisecond times, float prices."""
    fetch: Callable[..., list[list[float]]] = venue.fetch_ohlcv
    rows = fetch("BTC/USDT", "1h", T0 * 1000, 2)
    assert rows == [[T0 * 1000, 100.0, 102.0, 99.0, 101.0, 10.0],
                    [(T0 + H) * 1000, 101.0, 103.0, 100.0, 102.0, 10.0]]
