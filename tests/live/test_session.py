"""Parity (issue 11 item 7): a paper session over replayed candles books exactly what
``peak backtest`` books on them — signals, fills, trades and equity — on every library
strategy and portfolio, and on the pairs example that reads another market (its ETH candles
come from a feed of their own); and a session started after a warm-up of history signals
exactly as the whole-array run does from there on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from peakdsl.engine.results import EXIT_REASONS, TRADE_COLUMNS
from peakdsl.engine.simulate import rule_matrix
from peakdsl.lang.ast import RULE_SLOTS
from peakdsl.live.feed import ReplaySource
from peakdsl.live.session import (
    MIN_HISTORY,
    PaperAdapter,
    Session,
    paper_replay,
    replay_slots,
    rules_matrix,
    slot_specs,
)
from peakdsl.portfolio.plan import PortfolioPlan
from peakdsl.portfolio.run import PortfolioResult, run_portfolio
from peakdsl.robustness.subject import subject_plan

REPO = Path(__file__).resolve().parents[2]
LIBRARY = [*sorted(p.relative_to(REPO).as_posix() for p in
                   [*(REPO / "specs/strategies").glob("*.peak"),
                    *(REPO / "specs/portfolios").glob("*.peak")]),
           "specs/examples/pairs_spread.peak"]  # reads ETH/USDT: a second feed
WINDOW = ("2025-11-10", "2025-12-31")  # the demo data every library timeframe has
END = EXIT_REASONS.index("end_of_data")


def plan_of(spec: str) -> PortfolioPlan:
    plan, _ = subject_plan(str(REPO / spec), root=REPO, start=WINDOW[0], end=WINDOW[1])
    return plan


def expected_fills(result: PortfolioResult) -> list[tuple[int, int, int, float, float, str]]:
    """The backtest's trades as the fills they were: an entry and (unless the run ended it) an
    exit each, as (slot, bar, side, qty, price, reason), ordered as the book fills them."""
    trades = result.sim.trades
    out = []
    for i in range(len(trades["qty"])):
        row = {c: trades[c][i] for c in TRADE_COLUMNS}
        slot, side, qty = int(row["slot"]), int(row["side"]), float(row["qty"])
        out.append((slot, int(row["entry_bar"]), side, qty, float(row["entry_price"]),
                    "entry"))
        if row["exit_reason"] != END:
            out.append((slot, int(row["exit_bar"]), -side, qty, float(row["exit_price"]),
                        EXIT_REASONS[int(row["exit_reason"])]))
    return sorted(out, key=lambda f: (f[1], f[0], f[5] == "entry"))


@pytest.mark.parametrize("spec", LIBRARY)
def test_a_paper_replay_books_what_the_backtest_books(spec: str) -> None:
    plan = plan_of(spec)
    backtest = run_portfolio(plan)
    session = paper_replay(plan, ReplaySource(replay_slots(plan)))
    for run in backtest.components:  # signals: bar for bar, every rule
        n = len(run.component.candles.frame)
        assert np.array_equal(rules_matrix(session.log, run.slot),
                              rule_matrix(run.signals.rules, n).T)
    closed = backtest.sim.trades
    kept = closed["exit_reason"] != END
    live = session.book.closed_trades()
    assert kept.sum() > 0 and len(live["qty"]) == kept.sum()
    for column in TRADE_COLUMNS:
        assert np.array_equal(closed[column][kept], live[column]), column
    got = sorted(((f.slot, f.bar, f.side, f.qty, f.price, f.reason) for f in session.log.fills),
                 key=lambda f: (f[1], f[0], f[5] == "entry"))
    assert got == expected_fills(backtest)
    equity = np.array([e for _, e in session.log.equity])
    assert np.array_equal(equity[:-1], backtest.sim.equity[:-1])  # the last closes all
    assert session.book.risk() == backtest.sim.risk


@pytest.mark.parametrize("spec", ["specs/strategies/macd.peak",
                                  "specs/strategies/rsi_reversion.peak",
                                  "specs/strategies/daily_trend_filter.peak",
                                  "specs/examples/pairs_spread.peak"])
def test_warmed_up_from_history_the_signals_continue_the_whole_array_run(spec: str) -> None:
    """Started at bar 3,000 with the default history, a strategy on recursive indicators (MACD's
    EMAs, Wilder's RSI: they remember their whole past) signals from its first live bar exactly
    as the whole-array evaluation from the data's start does there — and one reading daily and
    4h bars of its market (built in the stream from the history's candles and their times),
    and one reading another market (its history and ticks from a second feed)."""
    plan, _ = subject_plan(str(REPO / spec), root=REPO)
    backtest = run_portfolio(plan)
    slots = replay_slots(plan)
    source = ReplaySource(slots, start_time=float(slots[0].times[3_000]))
    session = Session(slot_specs(plan), plan.capital, PaperAdapter())
    assert session.warm_up(source) == [MIN_HISTORY]
    session.run(source.ticks())
    whole = rule_matrix(backtest.components[0].signals.rules, len(slots[0])).T[3_000:]
    assert whole.sum() > 10
    assert np.array_equal(rules_matrix(session.log, 0), whole)


def test_the_derived_warm_up_alone_is_not_enough_for_a_recursive_indicator() -> None:
    """Why MIN_HISTORY: with only RSI's 15 bars of warm-up, values are defined but not yet
    the whole run's, and some signals differ."""
    plan, _ = subject_plan(str(REPO / "specs/strategies/rsi_reversion.peak"), root=REPO)
    slots = replay_slots(plan)
    whole = rule_matrix(run_portfolio(plan).components[0].signals.rules, len(slots[0])).T
    source = ReplaySource(slots, start_time=float(slots[0].times[3_000]))
    short = Session(slot_specs(plan), plan.capital, PaperAdapter(), min_history=0)
    assert short.warm_up(source) == [15]
    short.run(source.ticks())
    assert not np.array_equal(rules_matrix(short.log, 0), whole[3_000:])


def test_a_replay_waits_by_market_time_over_speed() -> None:
    plan = plan_of("specs/strategies/ma_crossover.peak")
    slept: list[float] = []
    slots = replay_slots(plan)
    start = float(slots[0].times[-4])
    ticks = list(ReplaySource(slots, start_time=start, speed=60.0, sleep=slept.append).ticks())
    assert [t.time - start for t in ticks] == [0.0, 3600.0, 7200.0, 10800.0, 14400.0]
    assert slept == [60.0, 60.0, 60.0, 60.0]  # an hour of market time per minute
    assert list(ticks[0].closed) == [] and list(ticks[-1].opened) == []


def test_rule_slots_are_the_books_order() -> None:
    assert RULE_SLOTS == ("entry_long", "exit_long", "entry_short", "exit_short")
