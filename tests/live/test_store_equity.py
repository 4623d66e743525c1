"""The equity history of the live store (peakdsl/live/store.py ``save_bar``, ``equity_row``,
the readers) and the schema's migration from version 1 (store_schema.py ``migrate``), on a
store written by the version-1 code (fixtures/store_v1.sqlite, see make_store_v1.py)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from peakdsl.engine.state import (
    CASH,
    DENIED_BY,
    LAST_EQUITY,
    MARK,
    QTY,
    REDUCED_BY,
    SIDE,
    new_account,
    new_positions,
)
from peakdsl.live.store import EquityRow, LiveStore, equity_row
from peakdsl.live.store_schema import SCHEMA_VERSION, StoreError

FIXTURE = Path(__file__).with_name("fixtures") / "store_v1.sqlite"
SESSION = "ma_crossover-0887f1db916d"  # the fixture's session
T0 = 1_764_547_200_000  # 2025-12-01T00:00Z
HOUR = 3_600_000


def book(equity: float, cash: float, held: list[tuple[float, float]],
         denied: int = 0) -> dict[str, np.ndarray]:
    """A book's arrays: ``held`` is (signed qty, mark) per slot, 0 qty for a flat one."""
    account = new_account(10_000.0)
    account[LAST_EQUITY], account[CASH] = equity, cash
    account[DENIED_BY + 3] = denied  # total_exposure
    account[REDUCED_BY + 1] = 1  # order_notional
    positions = new_positions(list(range(len(held))))
    for slot, (qty, mark) in enumerate(held):
        positions[slot, [SIDE, QTY, MARK]] = np.sign(qty), abs(qty), mark
    return {"account": account, "positions": positions, "ring": np.full(4, -np.inf)}


def last_time(store: LiveStore, before: int | None = None) -> int | None:
    row = store.last_equity(before=before)
    return None if row is None else row.bar_time


def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "ma_crossover.sqlite"
    shutil.copyfile(FIXTURE, path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LiveStore]:
    with LiveStore.open(tmp_path / "s.sqlite") as opened:
        opened.start_session("s1", spec="x", artifact_sha256="a" * 64, mode="paper",
                             account="default", exchange="binance", params={}, at=1)
        yield opened


def test_each_saved_bar_appends_the_books_equity_cash_and_exposure(store: LiveStore) -> None:
    store.save_bar(T0, book(10_000.0, 10_000.0, [(0.0, float("nan"))]), session="s1")
    # 0.1 BTC long at 20,500 and 2 ETH short at 1,000: exposure 2,050 + 2,000
    store.save_bar(T0 + HOUR, book(10_040.0, 5_990.0, [(0.1, 20_500.0), (-2.0, 1_000.0)],
                                   denied=2), session="s1")
    assert store.equity_history() == [
        EquityRow(T0, "s1", 10_000.0, 10_000.0, 0.0, {"reduced_order_notional": 1}),
        EquityRow(T0 + HOUR, "s1", 10_040.0, 5_990.0, 4_050.0,
                  {"denied_total_exposure": 2, "reduced_order_notional": 1})]
    assert [r.bar_time for r in store.equity_history(since=T0 + 1)] == [T0 + HOUR]
    assert [r.bar_time for r in store.equity_history(until=T0 + HOUR)] == [T0]
    assert last_time(store) == T0 + HOUR and last_time(store, T0 + HOUR) == T0
    assert store.last_equity(before=T0) is None
    assert store.history_starts_after() is None


def test_arrays_that_are_not_a_book_save_no_equity_row(store: LiveStore) -> None:
    store.save_bar(T0, {"a": np.zeros(2)}, session="s1")
    unknown = book(float("nan"), 1.0, [(0.0, 1.0)])
    store.save_bar(T0 + HOUR, unknown, session="s1")
    assert equity_row(T0, "s1", unknown) is None
    snap = store.last_snapshot()
    assert store.equity_history() == [] and snap is not None and snap.bar_time == T0 + HOUR


def test_the_history_is_append_only_and_rolls_back_with_the_bar(store: LiveStore) -> None:
    store.save_bar(T0, book(10_000.0, 10_000.0, []), session="s1")
    with pytest.raises(ValueError, match="not after"):
        store.save_bar(T0, book(1.0, 1.0, []), session="s1")
    assert [r.equity for r in store.equity_history()] == [10_000.0]
    conn = store._connection()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE equity SET equity = 0")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM equity")


def snapshot_of(store: LiveStore) -> dict[str, object]:
    """What a version-1 store held, read through the public API."""
    snap = store.last_snapshot()
    assert snap is not None
    return {"sessions": store.sessions(), "log": store.log_since(0), "fills": store.fills(),
            "orders": store.orders(), "intents": store.intents(),
            "positions": store.positions(), "kill": store.kill_state(),
            "snapshot": (snap.session, snap.bar_time,
                         {k: v.tobytes() for k, v in snap.arrays.items()})}


def test_a_version_1_store_is_migrated_by_a_writer(tmp_path: Path) -> None:
    path = v1_copy(tmp_path)
    with LiveStore.open(path, readonly=True) as old:
        before = snapshot_of(old)
    with LiveStore.open(path) as store:
        assert snapshot_of(store) == before
        assert store.history_starts_after() == T0 + 3 * HOUR
        assert store.equity_history() == []
        store.start_session(SESSION, spec="ma_crossover",
                            artifact_sha256="0887f1db916d" + "0" * 52, mode="paper",
                            account="default", exchange="binance",
                            params={"ma_crossover": {"fast": 10, "slow": 30}}, at=T0 + 5 * HOUR)
        store.save_bar(T0 + 4 * HOUR, book(10_050.0, 8_000.0, [(0.1, 20_500.0)]),
                       session=SESSION)
        assert [(r.bar_time, r.equity, r.exposure) for r in store.equity_history()] == [
            (T0 + 4 * HOUR, 10_050.0, 2_050.0)]
    conn = sqlite3.connect(path)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    conn.close()
    assert meta["schema_version"] == str(SCHEMA_VERSION) == "2"
    assert json.loads(meta["migration_2"]) == {"from": 1, "last_bar": T0 + 3 * HOUR}
    with LiveStore.open(path) as again:  # a second open migrates nothing
        assert again.history_starts_after() == T0 + 3 * HOUR


def test_a_reader_reads_a_version_1_store_as_it_is(tmp_path: Path) -> None:
    path = v1_copy(tmp_path)
    content = path.read_bytes()
    with LiveStore.open(path, readonly=True) as store:
        assert store.equity_history() == [] and store.last_equity() is None
        assert store.history_starts_after() is None
        assert store.kill_state().reason == "drill over"
    assert path.read_bytes() == content


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    """A table in the way of the migration's: the transaction rolls back whole."""
    path = v1_copy(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE equity (x INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as excinfo:
        LiveStore.open(path)
    assert "equity already exists" in excinfo.value.diagnostic.message
    conn = sqlite3.connect(path)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
                            "tbl_name = 'equity'").fetchall()
    conn.close()
    assert meta["schema_version"] == "1" and "migration_2" not in meta and triggers == []
