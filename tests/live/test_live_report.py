"""Status reports of a deployment (peakdsl/live/report.py, report_render.py, notes.py): every
figure against literal numbers on a store built bar by bar with known equity, fills and log
entries; period boundaries, ISO weeks, notes (a torn line too), alerts grouped by code,
determinism to the byte, escaping, and no secret in any rendering."""

from __future__ import annotations

import functools
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peakdsl.engine.state import (
    CASH,
    DAY_EQUITY,
    DENIED_BY,
    LAST_EQUITY,
    MARK,
    QTY,
    REDUCED_BY,
    SIDE,
    new_account,
    new_positions,
)
from peakdsl.live.notes import Note, NoteFile, append_note, check_text, read_notes
from peakdsl.live.report import (
    LiveReport,
    build_live_report,
    default_day,
    period_bounds,
    render_html,
    render_markdown,
)
from peakdsl.live.secrets import REDACTOR
from peakdsl.live.store import LiveStore
from peakdsl.live.store_rows import Fill, Intent, OrderRequest
from peakdsl.robustness.subject import subject_plan

REPO = Path(__file__).resolve().parents[2]
H = 3_600_000
T0 = 1_764_547_200_000  # 2025-12-01T00:00Z, a Monday
DEC1, DEC2 = date(2025, 12, 1), date(2025, 12, 2)
NOW = T0 / 1000 + 3 * 86_400  # 2025-12-04T00:00Z
CANARY = "canaryWEBHOOK-3b9f0e1d7a2c"
# denied on total exposure (reason 3), reduced on order notional (reason 1)
TOTAL, NOTIONAL = 3, 1


@functools.cache
def plan() -> Any:
    """ma_crossover (capital 10,000) with the live_moderate_usdt limits."""
    found, _ = subject_plan(str(REPO / "specs/strategies/ma_crossover.peak"), root=REPO,
                            risk="live_moderate_usdt")
    return found


def arrays(equity: float, denied: int = 0, reduced: int = 0,
           held: float = 0.0, mark: float = 20_000.0) -> dict[str, np.ndarray]:
    account = new_account(10_000.0)
    account[LAST_EQUITY], account[CASH], account[DAY_EQUITY] = equity, equity - held * mark, \
        equity
    account[DENIED_BY + TOTAL], account[REDUCED_BY + NOTIONAL] = denied, reduced
    positions = new_positions([0])
    positions[0, [SIDE, QTY, MARK]] = (1.0 if held else 0.0), held, mark
    return {"account": account, "positions": positions, "ring": np.full(4, -np.inf)}


def fill(store: LiveStore, at: int, side: str, qty: float, price: float, fee: float) -> None:
    intent = store.record_intent(Intent("s1", 0, at // H, 1 if side == "buy" else 0,
                                        "BTC/USDT", side, qty, qty, "approved", "approved",  # type: ignore[arg-type]
                                        "signal", at))
    cid = intent.client_order_id(1)
    store.add_order(OrderRequest(cid, intent.id, "BTC/USDT", side, "market", qty, None, 1),  # type: ignore[arg-type]
                    at=at, status="submitting")
    store.set_order_status(cid, "open", at=at)
    store.apply_fill(Fill(f"t-{at}", cid, "BTC/USDT", side, qty, price, fee, "USDT", at))  # type: ignore[arg-type]


def alert(store: LiveStore, at: int, code: str, level: str, message: str) -> None:
    store.log("alert", message, at=at, level=level, session="s1",  # type: ignore[arg-type]
              data={"code": code, "key": f"k:{code}", "severity": level})


def build(path: Path) -> None:
    """The deployment (comments: bar close → equity, cumulative risk counts)."""
    with LiveStore.open(path) as store:
        store.start_session("s1", spec="ma_crossover", artifact_sha256=plan().artifact_sha256,
                            mode="paper", account="default", exchange="binance", params={},
                            at=T0 - 2 * H)
        store.save_bar(T0 - H, arrays(10_000.0), session="s1")  # Nov 30 23:00
        store.save_bar(T0, arrays(10_100.0, denied=1), session="s1")
        fill(store, T0 + 5 * H, "buy", 0.1, 20_000.0, 2.0)
        alert(store, T0 + 5 * H + 1_000, "A001", "warning", "A001 the risk stage denied 1")
        store.save_bar(T0 + 6 * H, arrays(10_300.0, denied=1, held=0.1), session="s1")
        alert(store, T0 + 12 * H + 1_000, "A001", "warning", "A001 the risk stage denied 2")
        alert(store, T0 + 13 * H + 1_000, "A001", "warning", "A001 the risk stage denied 3")
        store.save_bar(T0 + 12 * H, arrays(9_785.0, denied=3, reduced=1, held=0.1),
                       session="s1")
        alert(store, T0 + 14 * H, "A004", "critical", f"A004 kill switch engaged {CANARY}")
        store.engage_kill("drill", "alice", at=T0 + 14 * H, session="s1")
        store.reset_kill("drill over", "alice", at=T0 + 15 * H, session="s1")
        store.log("observer", "an observer failed: KeyError", at=T0 + 16 * H, level="error",
                  session="s1")
        store.end_session("s1", "halted", at=T0 + 17 * H)
        store.start_session("s1", spec="ma_crossover", artifact_sha256=plan().artifact_sha256,
                            mode="paper", account="default", exchange="binance", params={},
                            at=T0 + 18 * H)
        fill(store, T0 + 20 * H, "sell", 0.1, 21_000.0, 2.1)
        store.save_bar(T0 + 23 * H, arrays(10_200.0, denied=3, reduced=1), session="s1")
        fill(store, T0 + 24 * H, "buy", 0.05, 21_500.0, 1.075)  # Dec 2 00:00: Dec 2's
        alert(store, T0 + 24 * H, "A007", "warning", "A007 the BTC/USDT feed is stale")
        store.save_bar(T0 + 24 * H, arrays(10_400.0, denied=4, reduced=1, held=0.05,
                                           mark=21_500.0), session="s1")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "ma_crossover.sqlite"
    build(path)
    return path


NOTES = (Note(at=T0 + 9 * H, by="alice", text="<script>alert(1)</script> & co | [x](y)"),
         Note(at=T0 + 30 * H, by="bob", text="Dec 2: all quiet"))


def report(path: Path, period: str = "daily", at: date | None = DEC1,
           now_s: float = NOW, **kwargs: Any) -> LiveReport:
    with LiveStore.open(path, readonly=True) as store:
        return build_live_report(store, plan(), mode="paper", account="default",
                                 period=period, at=at, now_s=now_s,  # type: ignore[arg-type]
                                 **{"notes": NOTES, **kwargs})


# ---------------------------------------------------------------- periods


@pytest.mark.parametrize(("period", "day", "start", "label"), [
    ("daily", date(2025, 12, 7), "2025-12-07", "2025-12-07"),
    ("weekly", date(2025, 12, 7), "2025-12-01", "2025-W49"),  # a Sunday: its Monday's week
    ("weekly", date(2025, 12, 1), "2025-12-01", "2025-W49"),
    ("weekly", date(2024, 12, 31), "2024-12-30", "2025-W01"),  # ISO year ≠ calendar year
])
def test_period_bounds(period: str, day: date, start: str, label: str) -> None:
    from datetime import UTC, datetime

    first, end, named = period_bounds(period, day)  # type: ignore[arg-type]
    assert datetime.fromtimestamp(first / 1000, UTC).date().isoformat() == start
    assert end - first == (86_400_000 if period == "daily" else 7 * 86_400_000)
    assert named == label


def test_the_default_period_is_the_last_bars_day(store_path: Path, tmp_path: Path) -> None:
    with LiveStore.open(store_path, readonly=True) as store:
        assert default_day(store, NOW) == DEC2
    with LiveStore.open(tmp_path / "empty.sqlite") as empty:
        assert default_day(empty, NOW) == date(2025, 12, 4)


# ---------------------------------------------------------------- figures


def test_a_days_equity_pnl_and_drawdown(store_path: Path) -> None:
    r = report(store_path)
    assert (r.label, r.start, r.end) == ("2025-12-01", "2025-12-01T00:00:00Z",
                                         "2025-12-02T00:00:00Z")
    e = r.equity
    assert (e.start, e.end, e.bars) == (10_000.0, 10_200.0, 4)  # Nov 30 23:00's close
    assert e.pnl == pytest.approx(200.0) and e.total_return == pytest.approx(0.02)
    assert e.max_drawdown == pytest.approx(9_785 / 10_300 - 1)  # -5%, from the 06:00 peak
    assert r.start_basis == "the close of the last bar before the period"
    assert [p.equity for p in r.curve] == [10_100.0, 10_300.0, 9_785.0, 10_200.0]
    assert r.curve[1].exposure == pytest.approx(2_000.0)
    assert r.remarks == []


def test_a_bar_at_midnight_belongs_to_the_day_it_closes_in(store_path: Path) -> None:
    r = report(store_path, at=DEC2)
    assert (r.equity.start, r.equity.end, r.equity.bars) == (10_200.0, 10_400.0, 1)
    assert [(f.time, f.side, f.qty) for f in r.trades.fills] == [
        ("2025-12-02T00:00:00Z", "buy", 0.05)]
    assert [g.code for g in r.incidents] == ["A007"]
    assert [n.by for n in r.notes] == ["bob"]


def test_a_week_from_monday_to_sunday(store_path: Path) -> None:
    r = report(store_path, period="weekly", at=date(2025, 12, 7))
    assert (r.label, r.start, r.end) == ("2025-W49", "2025-12-01T00:00:00Z",
                                         "2025-12-08T00:00:00Z")
    assert (r.equity.start, r.equity.end, r.equity.bars) == (10_000.0, 10_400.0, 5)
    assert r.equity.pnl == pytest.approx(400.0)
    assert r.trades.count == 3 and r.risk.in_period == {"denied_total_exposure": 4,
                                                          "reduced_order_notional": 1}
    before = report(store_path, period="weekly", at=date(2025, 11, 30))  # its first bar
    assert before.label == "2025-W48" and before.equity.start == 10_000.0  # the capital
    assert before.start_basis == "the capital (the deployment's first bar is in this period)"
    assert "its PnL is measured from the spec's capital, 10,000.00" in before.remarks[0]


def test_trades_counts_and_notional(store_path: Path) -> None:
    t = report(store_path).trades
    assert [(f.time, f.side, f.qty, f.price, f.fee) for f in t.fills] == [
        ("2025-12-01T05:00:00Z", "buy", 0.1, 20_000.0, 2.0),
        ("2025-12-01T20:00:00Z", "sell", 0.1, 21_000.0, 2.1)]
    assert (t.count, t.buys, t.sells) == (2, 1, 1)
    assert t.notional == pytest.approx(4_100.0) and t.fees == {"USDT": pytest.approx(4.1)}


def test_risk_counts_and_limit_use_at_the_periods_end(store_path: Path) -> None:
    day1, day2 = report(store_path), report(store_path, at=DEC2)
    assert day1.risk.in_period == {"denied_total_exposure": 3, "reduced_order_notional": 1}
    assert day1.risk.total == {"denied_total_exposure": 3, "reduced_order_notional": 1}
    assert day1.risk.limits == [] and "after this period" in (day1.risk.note or "")
    assert day2.risk.in_period == {"denied_total_exposure": 1}
    assert day2.risk.as_of == "2025-12-02T00:00:00Z"
    use = {row.limit: row for row in day2.risk.limits}
    assert list(use) == ["max_order_notional", "max_symbol_exposure", "max_total_exposure",
                         "max_open_positions", "max_daily_loss", "max_orders_per_minute"]
    # 0.05 BTC at 21,500 = 1,075 of equity 10,400, against 80% (total) and 30% (symbol)
    assert use["max_total_exposure"].value == pytest.approx(1_075 / 10_400)
    assert use["max_total_exposure"].used == pytest.approx(1_075 / 10_400 / 0.8)
    assert use["max_symbol_exposure"].used == pytest.approx(1_075 / 10_400 / 0.3)
    assert (use["max_open_positions"].value, use["max_open_positions"].max) == (1.0, 3.0)


def test_alerts_and_incidents_grouped_by_code(store_path: Path) -> None:
    groups = report(store_path).incidents
    assert [(g.code, g.kind, g.severity, g.count) for g in groups] == [
        ("A004", "alert", "critical", 1), ("kill_engaged", "kill switch", "critical", 1),
        ("observer", "error", "error", 1), ("session_halted", "session", "error", 1),
        ("A001", "alert", "warning", 3), ("kill_reset", "kill switch", "warning", 1)]
    a001 = groups[4]
    assert (a001.first, a001.last) == ("2025-12-01T05:00:01Z", "2025-12-01T13:00:01Z")
    assert [e.message for e in a001.entries] == [f"A001 the risk stage denied {n}"
                                                 for n in (1, 2, 3)]
    assert groups[1].entries[0].message == "kill engaged by alice: drill"


def test_a_long_group_lists_twenty_and_counts_the_rest(tmp_path: Path) -> None:
    with LiveStore.open(tmp_path / "s.sqlite") as store:
        store.start_session("s1", spec="x", artifact_sha256="a" * 64, mode="paper",
                            account="default", exchange="binance", params={}, at=T0)
        for k in range(25):
            alert(store, T0 + k * 60_000, "A008", "warning", f"exchange error {k}")
    r = report(tmp_path / "s.sqlite")
    (group,) = r.incidents
    assert (group.count, len(group.entries), group.more) == (25, 20, 5)
    assert group.last == "2025-12-01T00:24:00Z"
    assert "… and 5 more" in render_markdown(r) and "… and 5 more" in render_html(r)


def test_a_fresh_book_restarts_the_counts_and_is_remarked(tmp_path: Path) -> None:
    """Session s2 (another artifact) starts a fresh book: its counts start from 0."""
    with LiveStore.open(tmp_path / "s.sqlite") as store:
        for sid, at in (("s1", T0), ("s2", T0 + 5 * H)):
            store.start_session(sid, spec="x", artifact_sha256=sid * 32, mode="paper",
                                account="default", exchange="binance", params={}, at=at)
        store.save_bar(T0 + H, arrays(10_050.0, denied=2), session="s1")
        store.save_bar(T0 + 6 * H, arrays(10_000.0, denied=3), session="s2")
        store.save_bar(T0 + 7 * H, arrays(9_990.0, denied=4), session="s2")
    r = report(tmp_path / "s.sqlite")
    assert r.risk.in_period == {"denied_total_exposure": 6}  # 2, then 3 and 1 more
    assert r.remarks[1].startswith("session s2 started a fresh book at 2025-12-01T06:00:00Z")
    assert "the spec changed since the deployment's last session" in r.remarks[2]
    assert [s.id for s in r.sessions] == ["s1", "s2"]


def test_a_store_that_kept_no_history(tmp_path: Path) -> None:
    """A version-1 store (fixtures/store_v1.sqlite): fills and incidents, no equity; once a
    writer migrated it, the figures start at the first bar of the history."""
    path = tmp_path / "ma_crossover.sqlite"
    shutil.copyfile(Path(__file__).with_name("fixtures") / "store_v1.sqlite", path)
    old = report(path, at=None, notes=())
    assert old.label == "2025-12-01" and old.equity.end is None and old.curve == []
    assert old.trades.count == 2 and [g.code for g in old.incidents] == [
        "kill_engaged", "kill_reset"]
    assert "No bar was saved in or before this period." in render_markdown(old)
    with LiveStore.open(path) as store:  # migrates
        store.save_bar(T0 + 4 * H, arrays(10_050.0), session="ma_crossover-0887f1db916d")
        store.save_bar(T0 + 5 * H, arrays(10_070.0), session="ma_crossover-0887f1db916d")
    new = report(path, notes=())
    assert (new.equity.start, new.equity.end, new.equity.pnl) == (10_050.0, 10_070.0, 20.0)
    assert new.start_basis == "the close of the period's first bar"
    assert new.remarks[0].startswith("this store kept no equity history before "
                                     "2025-12-01T04:00:00Z")


# ---------------------------------------------------------------- notes


def test_notes_a_torn_last_line_and_a_damaged_one(tmp_path: Path) -> None:
    path = tmp_path / "ma_crossover.notes.jsonl"
    append_note(path, NOTES[0])
    with path.open("ab") as raw:
        raw.write(b'{"at": 5, "by": "x"}\n')  # no text: damaged
    append_note(path, NOTES[1])
    with path.open("ab") as raw:
        raw.write(b'{"at": 7, "by": "carol", "te')  # a crash mid-append
    found = read_notes(path)
    assert found.notes == NOTES and found.skipped == 1
    assert read_notes(tmp_path / "none.jsonl").notes == ()
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    assert read_notes(folder) == NoteFile((), 0, "Is a directory")


def test_notes_in_the_period_and_their_remark(store_path: Path) -> None:
    r = report(store_path, skipped_notes=1)
    assert [(n.time, n.by) for n in r.notes] == [("2025-12-01T09:00:00Z", "alice")]
    assert r.remarks == ["1 line(s) of the notes file could not be read and were skipped"]
    unread = report(store_path, notes=(), notes_error="Permission denied")
    assert unread.notes == [] and unread.remarks == [
        "the notes file could not be read (Permission denied): no note is shown"]


@pytest.mark.parametrize(("text", "problem"), [
    ("   ", "empty"), ("x" * 2_001, "2,001 characters"), ("a\x1b[2Jb", "control")])
def test_a_note_that_cannot_be_one(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_text(text)
    assert check_text("  two\nlines\t ") == "two\nlines"


# ---------------------------------------------------------------- rendering


def test_notes_and_messages_are_escaped(store_path: Path) -> None:
    r = report(store_path)
    page = render_html(r)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    md = render_markdown(r)
    assert r"\<script\>alert(1)\</script\> & co \| \[x\](y)" in md


def test_the_html_page_is_self_contained_with_an_svg_chart(store_path: Path) -> None:
    page = render_html(report(store_path))
    assert page.count("<svg") == 1 and 'id="equity-line"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<script" not in page and "<link" not in page


def test_the_markdown_report(store_path: Path) -> None:
    md = render_markdown(report(store_path))
    for line in ("## Live status: ma_crossover · paper · daily 2025-12-01",
                 "| start equity | 10,000.00 |", "| end equity | 10,200.00 |",
                 "| PnL | +200.00 |", "| return | 2.00% |", "| max drawdown | -5.00% |",
                 "2 fill(s): 1 buy, 1 sell; traded notional 4,100.00; fees 4.1000 USDT.",
                 "| 2025-12-01T05:00:00Z | BTC/USDT | buy | 0.1 | 20,000.00 | 2.0000 USDT |",
                 "Entries the risk stage cut in this period: denied_total_exposure 3, "
                 "reduced_order_notional 1.",
                 "| A001 | alert | warning | 3 | 2025-12-01T05:00:01Z | 2025-12-01T13:00:01Z |",
                 "| session | s1: running, started 2025-11-30T22:00:00Z |"):
        assert line in md, line


def test_the_same_state_renders_the_same_bytes(store_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(store_path, copy)
    first, again = report(store_path), report(copy)
    assert first == again
    assert render_html(first) == render_html(again)
    assert render_markdown(first) == render_markdown(again)
    assert first.model_dump_json() == again.model_dump_json()
    later = report(store_path, now_s=NOW + 60)
    assert later.generated_at == "2025-12-04T00:01:00Z" and later.curve == first.curve


def test_no_secret_reaches_a_report(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials in the environment are never read; a secret this process loaded that
    reached a log message is masked in every rendering."""
    monkeypatch.setenv("PEAK_TESTNET_API_KEY", "canaryKEY-91d2f7a0c3")
    monkeypatch.setenv("PEAK_TESTNET_API_SECRET", "canarySECRET-5e8b1c4a02")
    REDACTOR.register(CANARY)
    r = report(store_path)
    outputs = (render_html(r), render_markdown(r), r.model_dump_json(),
               json.dumps(r.model_dump(mode="json")))
    for text in outputs:
        for secret in (CANARY, "canaryKEY-91d2f7a0c3", "canarySECRET-5e8b1c4a02"):
            assert secret not in text
    assert "A004 kill switch engaged ***" in outputs[0]
