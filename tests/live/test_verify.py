"""`peak live verify`: a deployment's session against a backtest replay of the same candles.

A paper session on the loopback exchange's klines (the demo candles the replay reads) is its
own backtest to the last bit: the same fills, no PnL gap, the same equity at every bar. A
testnet session whose exchange fills 2% worse than the model diverges: verify reports it,
exits 1 and raises A010 through the deployment's alert config (its store's log and its
webhook). Sessions that cannot be compared say why. Deployments are run by the drill rig
(``peakdsl.drill.rig``: the real runner, a simulated clock); about 10 s in all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.drill.project import RISK_NAME, WEBHOOK_ENV, build, candle_rows
from peakdsl.drill.rig import ACCOUNT, Rig, Setup
from peakdsl.live.clockbook import Fill
from peakdsl.live.session import slot_specs
from peakdsl.live.store import LiveStore
from peakdsl.live.store_rows import Fill as StoreFill
from peakdsl.live.verify import (
    LiveSide,
    Request,
    Trade,
    compare,
    fill_gap,
    plan_of,
    pnl,
    read_live,
    verify,
)


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """A paper deployment of the drill project: 24 hourly ticks from 2025-11-01."""
    scratch = build(tmp_path_factory.mktemp("paper") / "project")
    with Rig(scratch, Setup(ticks=24), candle_rows(scratch)) as rig:
        assert rig.run().summary is not None
        yield rig


@pytest.fixture(scope="module")
def slipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """A testnet deployment whose exchange fills 2% worse than the bar's open."""
    scratch = build(tmp_path_factory.mktemp("testnet") / "project", promoted=True)
    with Rig(scratch, Setup("testnet", ticks=24, slippage=0.02), candle_rows(scratch)) as rig:
        assert rig.run().summary is not None
        yield rig


def request(rig: Rig, **changes: object) -> Request:
    base = Request(str(rig.scratch.spec), rig.setup.mode, ACCOUNT, risk=RISK_NAME,
                   root=rig.scratch.root)
    return replace(base, **changes)  # type: ignore[arg-type]


def peak(*argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["live", "verify", *argv])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout


def test_a_paper_session_is_its_own_backtest(paper: Rig) -> None:
    report = verify(request(paper))
    assert report.ok and not report.diverged and not report.problems
    assert (report.start, report.end, report.bars) == ("2025-11-01T01:00:00Z",
                                                       "2025-11-02T00:00:00Z", 24)
    assert (report.fills_live, report.fills_backtest, report.unmatched) == (3, 3, 0)
    assert report.pnl_live == report.pnl_backtest and report.pnl_gap == 0.0
    assert report.book_gap == 0.0
    assert [g.gap_bps for g in report.fills] == [0.0, 0.0, 0.0]
    assert [(g.time, g.side) for g in report.fills] == [
        ("2025-11-01T09:00:00Z", "buy"), ("2025-11-01T10:00:00Z", "sell"),
        ("2025-11-01T18:00:00Z", "buy")]


def test_the_command_confirms_a_consistent_session(paper: Rig) -> None:
    spec = str(paper.scratch.spec)
    code, out = peak(spec, "--mode", "paper", "--account", ACCOUNT, "--risk", RISK_NAME)
    assert code == 0 and "consistent with the backtest" in out
    assert "fills: 3 on the exchange, 3 in the replay, 0 unmatched" in out
    code, out = peak(spec, "--mode", "paper", "--account", ACCOUNT, "--risk", RISK_NAME,
                     "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and not doc["diverged"] and doc["pnl_gap"] == 0.0


def test_a_worse_filling_exchange_diverges_and_raises_a010(
        slipped: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, slipped.webhook.url)
    code, out = peak(str(slipped.scratch.spec), "--mode", "testnet", "--account", ACCOUNT,
                     "--risk", RISK_NAME, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["diverged"] and doc["alerted"] and not doc["ok"]
    assert doc["unmatched"] == 0 and doc["fills_live"] == doc["fills_backtest"] == 3
    assert 190 < doc["worst_gap_bps"] < 200  # 2% worse less the model's own 5 bps
    assert doc["pnl_gap"] < -doc["tolerance"] and doc["book_gap"] == 0.0
    with LiveStore.open(slipped.deployment.store_path, readonly=True) as store:
        [entry] = [e for e in store.log_since(0) if e.event == "alert"]
    assert (entry.level, entry.data["code"], entry.data["key"]) == ("warning", "A010",
                                                                    "pnl_divergence")
    assert entry.message.startswith("A010 session drill_trend-")
    assert [b["code"] for b in slipped.webhook.received] == ["A010"]


def test_pnl_values_both_sides_by_one_rule() -> None:
    quote_fees = [Trade("BTC/USDT", 1, 1.0, 100.0, 0.1), Trade("BTC/USDT", -1, 1.0, 110.0, 0.11)]
    assert pnl(quote_fees, {"BTC/USDT": 120.0}) == pytest.approx(9.79, abs=1e-12)
    base_fee = [Trade("BTC/USDT", 1, 1.0, 100.0, 0.0, 0.001)]
    assert pnl(base_fee, {"BTC/USDT": 105.0}) == pytest.approx(4.895, abs=1e-12)


def test_a_fill_gap_is_worse_for_us_when_positive(paper: Rig) -> None:
    slots = slot_specs(plan_of(request(paper)))
    buy = Fill(0, 0, 36_000.0, 1, 1.0, 100.0, 0.1, "entry")
    sell = Fill(0, 0, 39_600.0, -1, 1.0, 100.0, 0.1, "signal")
    paid = [StoreFill("t1", "c1", "BTC/USDT", "buy", 1.0, 101.0, 0.1, "USDT", 1)]
    got = [StoreFill("t2", "c2", "BTC/USDT", "sell", 1.0, 99.0, 0.1, "USDT", 2)]
    assert fill_gap((0, 10, 1), paid, buy, slots).gap_bps == pytest.approx(100.0)
    assert fill_gap((0, 11, 0), got, sell, slots).gap_bps == pytest.approx(100.0)
    missing = fill_gap((0, 10, 1), None, buy, slots)
    assert (missing.live_qty, missing.gap_bps, missing.time) == (None, None,
                                                                "1970-01-01T10:00:00Z")


def test_sessions_that_cannot_be_compared_say_why(paper: Rig) -> None:
    plan = plan_of(request(paper))
    with LiveStore.open(paper.deployment.store_path, readonly=True) as store:
        session = store.sessions()[-1]
    other = compare(request(paper), plan, LiveSide(replace(session, artifact_sha256="0" * 64),
                                                   {1_761_958_800_000: 10_000.0}))
    assert not other.ok and not other.diverged
    assert "ran artifact 000000000000" in other.problems[0]
    late = compare(request(paper), plan, LiveSide(session, {4_102_444_800_000: 10_000.0}))
    assert not late.ok and "cached candles end before" in late.problems[0]


def test_a_store_without_bars_has_nothing_to_compare(tmp_path: Path) -> None:
    with LiveStore.open(tmp_path / "s.sqlite") as store:
        assert read_live(store).problems == ["the store holds no session yet"]
        store.start_session("s-1", spec="x", artifact_sha256="0" * 64, mode="paper",
                            account="default", exchange="binance", params={}, at=1)
        assert read_live(store).problems == ["session s-1 saved no bar yet: nothing to compare"]


def test_bad_input(paper: Rig, tmp_path: Path) -> None:
    spec = str(paper.scratch.spec)
    code, _ = peak(spec, "--mode", "paper", "--account", ACCOUNT, "--tolerance", "2")
    assert code == 2
    code, _ = peak(spec, "--mode", "paper", "--account", "nobody", "--risk", RISK_NAME)
    assert code == 1  # E023: no deployment state for that account
    with pytest.raises(ValueError, match="tolerance"):
        verify(request(paper, tolerance=-1.0))
