"""Another market in a live session (``close@ETH/USDT``): the session polls it as a feed of
its own (``session.session_feeds``) and pushes its candles into the stream with the strategy's
bar they precede, as the whole-array run aligns them.

On a clock the test drives, against the loopback exchange's klines:

* polled, the session signals bar for bar as a replay of the same candles does;
* an outage of the second feed (its candles published late, or its requests failing) masks
  the strategy's entries once the other market is more than two bars behind — with a note,
  and in a deployment an A007 alert (and A008 for the failed requests) — and the candles it
  missed come with a later tick, so from the bar after it the signals are the replay's again;
* a market the exchange does not list is refused before anything starts (E045).

The paper replay's parity with the backtest on a pairs strategy is in ``test_session``; a
``kill -9`` of a deployment of one is in ``test_live_markets_crash``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pytest
from deploy_setup import REPO
from loopback_setup import new_exchange
from test_session import expected_fills
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.live.feed import PolledSlot, PollingSource, ReplaySource, SlotCandles
from peakdsl.live.gate import Refused
from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.run import LiveRequest
from peakdsl.live.runner import Deployment, RunnerSettings, run_deployment
from peakdsl.live.session import (
    STALE_BARS,
    PaperAdapter,
    Session,
    candle_bar,
    paper_replay,
    replay_slots,
    rules_matrix,
    session_feeds,
    slot_specs,
)
from peakdsl.live.store import LiveStore
from peakdsl.live.venue import Venue
from peakdsl.live.verify import Request, verify
from peakdsl.portfolio.plan import PortfolioPlan
from peakdsl.portfolio.run import run_portfolio
from peakdsl.robustness.subject import subject_plan

H = 3600
SPEC = "specs/strategies/pair_lag.peak"
# entries on the bar-to-bar change of the spread (a stale ETH value shows at once, and the bar
# after an outage is clean again); exits on ETH's own 8-bar mean, and ``eth_sum`` adds up every
# ETH bar the stream got (on ETH's bars: right after an outage only if the bars it missed came
# after all)
PAIR = """strategy pair_lag {
    market BTC/USDT
    timeframe 1h
    let spread = log(close) - log(close@ETH/USDT)
    let eth_sum = cumsum(close@ETH/USDT)
    entry long when spread > spread[1]
    exit long when close@ETH/USDT < sma(close@ETH/USDT, 8) or eth_sum < 0
}
"""
START = 3_000  # the first live bar (the bars before it are history)
TICKS = 60
HISTORY = 60
OUTAGE = 4  # ETH bars the outage holds back (they come with the tick after it)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("markets")
    shutil.copytree(REPO / "specs", root / "specs")
    (root / SPEC).write_text(PAIR)
    return root


@pytest.fixture(scope="module")
def plan(project: Path) -> PortfolioPlan:
    built, _ = subject_plan(str(project / SPEC), root=project)
    return built


@pytest.fixture(scope="module")
def candles(plan: PortfolioPlan) -> list[SlotCandles]:
    """BTC's and ETH's demo candles as the exchange serves them (8 decimals)."""
    return [SlotCandles(s.times, {c: np.round(v, 8) for c, v in s.columns.items()}, H)
            for s in replay_slots(plan)]


@pytest.fixture
def client(exchange: LoopbackExchange, client_at: Callable[..., Any]) -> Any:
    built = client_at(exchange.url, timeout_ms=10_000)  # patient: request counts stay exact
    built.load_markets()
    return built


def live_bar(candles: list[SlotCandles], row: int) -> float:
    """The open time of the bar of the session's ``row``-th signals (the bar forming when
    the session starts, row -1, is never the book's)."""
    return float(candles[0].times[START + 1 + row])


@dataclass
class Exchange:
    """Fake time and the loopback exchange publishing each market's candles as they open (the
    forming bar included, as Binance does); ETH's from ``hold_from`` on are held back until
    ``release``."""

    loopback: LoopbackExchange
    candles: list[SlotCandles]
    now: float
    hold_from: float = np.inf
    release: float = -np.inf
    given: list[int] = field(default_factory=lambda: [START - HISTORY - 5] * 2)

    def __post_init__(self) -> None:
        self.publish()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        self.publish()

    def publish(self) -> None:
        for m, market in enumerate(("BTC/USDT", "ETH/USDT")):
            data, k = self.candles[m], self.given[m]
            rows = []
            while k < len(data) and data.times[k] <= self.now and not (
                    m == 1 and data.times[k] >= self.hold_from and self.now < self.release):
                rows.append([data.times[k] * 1000, *(data.columns[c][k] for c in
                                                     ("open", "high", "low", "close",
                                                      "volume"))])
                k += 1
            self.given[m] = k
            self.loopback.set_candles(market, "1h", rows)


def polled(plan: PortfolioPlan, market: Exchange, fetch: Any,
           errors: list[tuple[str, Exception]] | None = None) -> Session:
    """A paper session polling ``fetch`` on ``market``'s clock (failed requests: ``errors``)."""
    failed = errors if errors is not None else []
    session = Session(slot_specs(plan), plan.capital, PaperAdapter(), min_history=HISTORY)
    source = PollingSource(session.feeds, fetch, clock=market.clock, sleep=market.sleep,
                           max_ticks=TICKS, on_error=lambda m, e: failed.append((m, e)))
    session.warm_up(source)
    session.run(source.ticks())
    return session


def replayed(plan: PortfolioPlan, candles: list[SlotCandles]) -> Session:
    """The same candles replayed: the session a polled one must equal (its history ends with
    the bar that was forming when the polled one started, which that one got at its first
    tick)."""
    source = ReplaySource(candles, start_time=live_bar(candles, 0))
    session = Session(slot_specs(plan), plan.capital, PaperAdapter(),
                      min_history=HISTORY + 1)
    session.warm_up(source)
    session.run(t for _, t in zip(range(TICKS), source.ticks(), strict=False))
    return session


def after_the_run(session: Session, candles: list[SlotCandles]) -> dict[str, float | bool]:
    """The lets at the bar after the session's last, both markets' candles pushed: what the
    stream holds (``eth_sum``: every ETH bar it ever got)."""
    row = len(session.log.signals)
    k = START + 1 + row
    bar, eth = (candle_bar(c.candle(k)) for c in candles)
    return session.streams[0].push(bar, {"ETH/USDT": eth}).series


@pytest.fixture(scope="module")
def replay_session(plan: PortfolioPlan, candles: list[SlotCandles]) -> Session:
    return replayed(plan, candles)


@pytest.fixture(scope="module")
def replay(replay_session: Session) -> np.ndarray:
    return rules_matrix(replay_session.log, 0)


@pytest.fixture(scope="module")
def replay_after(replay_session: Session, candles: list[SlotCandles]) -> dict[str, Any]:
    return after_the_run(replay_session, candles)


def test_the_session_polls_each_market_read_once(plan: PortfolioPlan) -> None:
    session = Session(slot_specs(plan) * 2, plan.capital, PaperAdapter())
    assert session.feeds == (PolledSlot("BTC/USDT", "1h", H), PolledSlot("BTC/USDT", "1h", H),
                             PolledSlot("ETH/USDT", "1h", H))
    assert session.others.readers == {2: [(0, "ETH/USDT"), (1, "ETH/USDT")]}
    assert session_feeds(slot_specs(plan)) == list(session.feeds[1:])


def test_polled_it_signals_as_a_replay_of_the_same_candles(
        plan: PortfolioPlan, candles: list[SlotCandles], venue: Venue,
        exchange: LoopbackExchange, replay: np.ndarray,
        replay_after: dict[str, Any]) -> None:
    market = Exchange(exchange, candles, now=live_bar(candles, -1) + 1.0)
    session = polled(plan, market, venue.fetch_ohlcv)
    got = rules_matrix(session.log, 0)
    assert got.shape == replay.shape == (TICKS - 1, 4)
    assert replay[:, 0].sum() > 10 and np.array_equal(got, replay)
    assert after_the_run(session, candles) == replay_after
    assert not any(r.stale for r in session.log.signals) and session.log.notes == []


@pytest.fixture(scope="module")
def outage(replay: np.ndarray) -> int:
    """The live bar where ETH's outage starts: one where the replay enters on the bar the
    feed first counts as stale (so masking it shows)."""
    return next(k for k in range(10, TICKS - 20) if replay[k + STALE_BARS, 0])


def stale_bars(outage: int) -> range:
    """The bars that see ETH more than two bars old: from the third of the outage to its
    last (the tick after it brings the held candles)."""
    return range(outage + STALE_BARS, outage + OUTAGE)


def check_outage(session: Session, replay: np.ndarray, outage: int) -> None:
    """Entries masked on the bars that saw ETH stale; the replay's signals before the outage
    and from the bar after the held candles came."""
    got = rules_matrix(session.log, 0)
    stale = [r.bar - session.log.signals[0].bar for r in session.log.signals if r.stale]
    assert stale == list(stale_bars(outage))
    assert not got[stale, 0].any() and replay[stale, 0].any()  # entries masked
    assert np.array_equal(got[:outage], replay[:outage])
    assert np.array_equal(got[outage + OUTAGE + 1:], replay[outage + OUTAGE + 1:])
    notes = [n for n in session.log.notes if "ETH/USDT" in n]
    assert len(notes) == len(stale)
    assert notes[0].startswith("pair_lag: the bar of ") and "no ETH/USDT candle within 2 bars" \
        in notes[0] and notes[0].endswith(": no entry on it")


def test_an_outage_of_the_second_feed_masks_entries_then_catches_up(
        plan: PortfolioPlan, candles: list[SlotCandles], venue: Venue,
        exchange: LoopbackExchange, replay: np.ndarray, outage: int,
        replay_after: dict[str, Any]) -> None:
    market = Exchange(exchange, candles, now=live_bar(candles, -1) + 1.0,
                      hold_from=live_bar(candles, outage),
                      release=live_bar(candles, outage + OUTAGE) + H + 10)
    session = polled(plan, market, venue.fetch_ohlcv)
    check_outage(session, replay, outage)
    assert after_the_run(session, candles) == replay_after  # every ETH bar, in order


def test_a_failing_second_feed_is_reported_masks_entries_then_catches_up(
        plan: PortfolioPlan, candles: list[SlotCandles], venue: Venue,
        exchange: LoopbackExchange, replay: np.ndarray, outage: int,
        replay_after: dict[str, Any]) -> None:
    market = Exchange(exchange, candles, now=live_bar(candles, -1) + 1.0)
    down = (live_bar(candles, outage) + H, live_bar(candles, outage + OUTAGE) + H + 10)

    def fetch(symbol: str, timeframe: str, since: int | None, limit: int) -> Any:
        if symbol == "ETH/USDT" and down[0] <= market.now < down[1]:
            raise ccxt.NetworkError("ETH klines: connection reset")
        return venue.fetch_ohlcv(symbol, timeframe, since, limit)

    errors: list[tuple[str, Exception]] = []
    session = polled(plan, market, fetch, errors)
    check_outage(session, replay, outage)
    assert after_the_run(session, candles) == replay_after
    assert errors and {m for m, _ in errors} == {"ETH/USDT"}
    assert all(isinstance(e, ccxt.NetworkError) for _, e in errors)


BOOK = """portfolio pairs_book {
    capital 10000 USDT
    component pairs_spread weight 50% with { window = 100, entry_z = 1.5 }
    component trend_following_eth_usdt weight 50%
}
"""


def test_a_portfolio_trading_the_market_another_component_reads(tmp_path: Path) -> None:
    """ETH/USDT is one component's market and the other's second feed: polled twice, each
    for its own use, and the replay books the portfolio backtest's fills on one account."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    (tmp_path / "specs/portfolios/pairs_book.peak").write_text(BOOK)
    book, _ = subject_plan(str(tmp_path / "specs/portfolios/pairs_book.peak"), root=tmp_path,
                           start="2025-11-10", end="2025-12-31")
    backtest = run_portfolio(book)
    session = paper_replay(book, ReplaySource(replay_slots(book)))
    assert [(f.market, f.timeframe) for f in session.feeds] == [
        ("BTC/USDT", "1h"), ("ETH/USDT", "1h"), ("ETH/USDT", "1h")]
    got = sorted(((f.slot, f.bar, f.side, f.qty, f.price, f.reason) for f in session.log.fills),
                 key=lambda f: (f[1], f[0], f[5] == "entry"))
    assert {f[0] for f in got} == {0, 1} and got == expected_fills(backtest)


# ------------------------------------------------------------------ a deployment


def alerts(store: LiveStore) -> list[tuple[str, str]]:
    return [(e.data["code"], e.data["key"]) for e in store.log_since() if e.event == "alert"]


@pytest.fixture
def deployed_project(project: Path, tmp_path: Path) -> Path:
    shutil.copytree(project / "specs", tmp_path / "specs")
    return tmp_path


def deploy(root: Path, market: Exchange, spec: str = SPEC) -> Any:
    return run_deployment(
        LiveRequest(str(root / spec), "paper", replay=False, min_history=HISTORY),
        RunnerSettings(endpoint=market.loopback.url, max_ticks=TICKS, kill_poll_s=H),
        env={}, clock=market.clock, sleep=market.sleep)


@pytest.fixture
def paper_exchange() -> Iterator[LoopbackExchange]:
    with new_exchange() as loopback:
        yield loopback


def test_a_deployment_alerts_on_the_second_feed_and_books_the_replays_fills_after_it(
        deployed_project: Path, candles: list[SlotCandles], paper_exchange: LoopbackExchange,
        outage: int) -> None:
    market = Exchange(paper_exchange, candles, now=live_bar(candles, -1) + 1.0,
                      hold_from=live_bar(candles, outage),
                      release=live_bar(candles, outage + OUTAGE) + H + 10)
    summary = deploy(deployed_project, market)
    assert summary.ticks == TICKS and summary.history_bars == [HISTORY]
    assert len(summary.fills) > 10
    store_path = Deployment(deployed_project, "paper", "default", "pair_lag").store_path
    with LiveStore.open(store_path, readonly=True) as store:
        raised = alerts(store)
    assert ("A007", "feed:ETH/USDT (read by pair_lag)") in raised  # no candle at its close
    assert ("A007", "feed:pair_lag") in raised  # entries masked on a stale ETH
    assert not [a for a in raised if a[0] != "A007"]


def test_a_market_the_exchange_does_not_list_is_refused_before_anything_starts(
        deployed_project: Path, candles: list[SlotCandles],
        paper_exchange: LoopbackExchange) -> None:
    spec = "specs/strategies/pair_sol.peak"
    (deployed_project / spec).write_text(PAIR.replace("pair_lag", "pair_sol")
                                         .replace("ETH/USDT", "SOL/USDT"))
    market = Exchange(paper_exchange, candles, now=live_bar(candles, -1) + 1.0)
    with pytest.raises(Refused) as refused:
        deploy(deployed_project, market, spec)
    assert refused.value.codes == ["E045"]
    assert "`pair_sol` reads SOL/USDT (`@`), which the exchange does not list" in \
        str(refused.value)
    assert not Deployment(deployed_project, "paper", "default", "pair_sol").store_path.exists()
    assert not [r for r in paper_exchange.requests if "klines" in r.endpoint]
    result = CliRunner().invoke(app, ["live", "run", str(deployed_project / spec), "--mode",
                                      "paper", "--endpoint", paper_exchange.url,
                                      "--max-ticks", "1"])
    assert result.exit_code == 1, result.output
    assert "error[E045]" in result.output and "Traceback" not in result.output
    assert not [r for r in paper_exchange.requests if "klines" in r.endpoint]


def test_verify_replays_both_markets_and_confirms_a_clean_deployment(
        deployed_project: Path, candles: list[SlotCandles],
        paper_exchange: LoopbackExchange) -> None:
    """``peak live verify`` replays the deployment's window over the cached candles of both
    markets: the polled session's fills are the replay's (the exchange served the cache's
    candles to 8 decimals, so prices agree to that)."""
    market = Exchange(paper_exchange, candles, now=live_bar(candles, -1) + 1.0)
    summary = deploy(deployed_project, market)
    report = verify(Request(str(deployed_project / SPEC), "paper", root=deployed_project,
                            history=HISTORY))
    assert not report.problems and report.ok and not report.diverged
    assert report.fills_live == report.fills_backtest == len(summary.fills) > 10
    assert report.unmatched == 0 and report.book_gap < 1e-6 * summary.capital
    result = CliRunner().invoke(app, ["live", "verify", str(deployed_project / SPEC),
                                      "--mode", "paper", "--history", str(HISTORY)])
    assert result.exit_code == 0, result.output
