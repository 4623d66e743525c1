"""The run registry's storage: pragmas, schema, lifecycle, ids, queries, immutability, and
the generic run record every kind uses (start / finish / record, child runs, kinds)."""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from peakdsl.registry import kinds, store
from peakdsl.registry.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DataRange,
    Registry,
    RegistryError,
    RunNotFoundError,
    RunOutcome,
    RunStart,
    canonical_json,
    id_time,
    new_id,
    registry_path,
)

METRICS = {"total_return": 0.125, "sharpe": 1.5, "max_drawdown": -0.08, "trades": 12,
           "profit_factor": math.inf, "sortino": None, "calmar": math.nan}


def start(reg: Registry, spec: str = "ma_crossover", **kw: Any) -> str:
    args: dict[str, Any] = {
        "kind": "backtest", "spec": spec, "artifact_sha256": "a" * 64,
        "data_fingerprint": "f" * 64, "data_source": "synthetic:demo",
        "params": {"slow": 60, "fast": 20}, "seed": None, "engine_version": "0.3.0",
        "settings": {"fees": 0.001, "stop_loss": math.nan}}
    args.update(kw)
    return reg.start_run(**args)


@pytest.fixture
def reg(tmp_path: Path) -> Any:
    with Registry(tmp_path) as registry:
        yield registry


def test_file_location_pragmas_and_gitignore(tmp_path: Path) -> None:
    with Registry(tmp_path) as reg:
        assert reg.path == tmp_path / ".peak" / "registry.sqlite" == registry_path(tmp_path)
        assert reg.pragma("journal_mode") == "wal"
        assert reg.pragma("synchronous") == 2  # FULL
        assert reg.pragma("foreign_keys") == 1
        assert reg.pragma("busy_timeout") > 0
        assert reg.schema_version() == SCHEMA_VERSION
    assert (tmp_path / ".peak" / ".gitignore").read_text().strip().endswith("*")
    # journal_mode is persistent: a plain connection sees WAL too
    conn = sqlite3.connect(tmp_path / ".peak" / "registry.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_pragma_name_is_validated(reg: Registry) -> None:
    with pytest.raises(ValueError):
        reg.pragma("journal_mode = DELETE")


def test_lifecycle_done(reg: Registry) -> None:
    run_id = start(reg, market="BTC/EUR", timeframe="1h", data_start="2024-01-01T00:00:00",
                   data_end="2024-02-01T00:00:00", data_bars=744, seed=7)
    running = reg.get_run(run_id)
    assert running.status == running.state == "running"
    assert running.metrics == {} and running.finished_at is None
    assert reg.metric_rows(run_id) == {}
    reg.finish_run(run_id, METRICS, {"signals": 0.01, "total": 0.05}, 12, ["fill close"])
    r = reg.get_run(run_id)
    assert (r.status, r.state, r.kind, r.spec, r.lineage) == (
        "done", "done", "backtest", "ma_crossover", "ma_crossover")
    assert r.params == {"fast": 20, "slow": 60}
    assert r.settings == {"fees": 0.001, "stop_loss": None}
    assert r.metrics["profit_factor"] == math.inf
    assert r.metrics["calmar"] is None and r.metrics["sortino"] is None
    assert r.metrics["sharpe"] == 1.5 and r.metrics["trades"] == 12
    assert (r.trades, r.warnings, r.seed, r.market, r.data_bars) == (
        12, ("fill close",), 7, "BTC/EUR", 744)
    assert r.timing == {"signals": 0.01, "total": 0.05}
    assert r.pid == os.getpid() and r.finished_at is not None
    assert r.created_at == id_time(run_id) and r.created_at.endswith("Z")
    rows = reg.metric_rows(run_id)
    assert set(rows) == set(METRICS)
    assert rows["profit_factor"] == math.inf and rows["calmar"] is None
    assert rows["trades"] == 12.0


def test_stored_json_is_canonical(reg: Registry) -> None:
    run_id = start(reg, params={"b": 1.0, "a": 2})
    reg.finish_run(run_id, {"z": 1.0, "a": math.inf}, {}, 0)
    conn = sqlite3.connect(reg.path)
    params, metrics, settings = conn.execute(
        "SELECT params, metrics, settings FROM runs WHERE id = ?", (run_id,)).fetchone()
    conn.close()
    assert params == '{"a":2,"b":1.0}'
    assert metrics == '{"a":"inf","z":1.0}'
    assert settings == '{"fees":0.001,"stop_loss":null}'
    assert canonical_json({"b": [1, (2, float("-inf"))], "a": None}) == \
        '{"a":null,"b":[1,[2,"-inf"]]}'
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_fail_run_and_finished_runs_are_immutable(reg: Registry) -> None:
    run_id = start(reg)
    reg.fail_run(run_id, "ValueError: boom")
    r = reg.get_run(run_id)
    assert (r.status, r.error, r.metrics) == ("failed", "ValueError: boom", {})
    with pytest.raises(RegistryError, match="already failed"):
        reg.finish_run(run_id, METRICS, {}, 0)
    done = start(reg)
    reg.finish_run(done, METRICS, {}, 1)
    with pytest.raises(RegistryError, match="already done"):
        reg.fail_run(done, "late")
    with pytest.raises(RunNotFoundError):
        reg.finish_run("r000000000000", METRICS, {}, 0)


def test_database_rules_hold_even_for_raw_sql(reg: Registry) -> None:
    """Triggers and checks, not just the Python API, keep the registry consistent."""
    done = start(reg)
    reg.finish_run(done, METRICS, {}, 1)
    running = start(reg)
    conn = sqlite3.connect(reg.path)
    conn.execute("PRAGMA foreign_keys = ON")
    bad = [
        ("DELETE FROM runs WHERE id = ?", (done,)),
        ("DELETE FROM metrics WHERE run_id = ?", (done,)),
        ("UPDATE metrics SET value = 9 WHERE run_id = ?", (done,)),
        ("UPDATE runs SET status = 'running', metrics = NULL, finished_at = NULL "
         "WHERE id = ?", (done,)),
        ("UPDATE runs SET params = '{}' WHERE id = ?", (running,)),
        ("INSERT INTO metrics VALUES (?, 'sharpe', 1.0)", (running,)),
        ("UPDATE runs SET status = 'done' WHERE id = ?", (running,)),  # done needs metrics
        ("INSERT INTO metrics VALUES ('r999999999999', 'sharpe', 1.0)", ()),
    ]
    for sql, args in bad:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(sql, args)
        conn.rollback()
    conn.close()
    assert reg.get_run(done).status == "done" and len(reg.metric_rows(done)) == len(METRICS)


def test_bad_metric_value_leaves_the_run_running(reg: Registry) -> None:
    run_id = start(reg)
    with pytest.raises(TypeError):
        reg.finish_run(run_id, {"sharpe": "high"}, {}, 0)
    assert reg.get_run(run_id).status == "running" and reg.metric_rows(run_id) == {}


def test_ids_sortable_unique_and_timed() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 13 and i[0] == "r" and int(i[1:], 16) >= 0 for i in ids)
    assert id_time(ids[0]) <= id_time(ids[-1])
    assert new_id("s").startswith("s")


def test_ids_from_many_threads_sharing_one_registry(reg: Registry) -> None:
    got: list[str] = []

    def work() -> None:
        for _ in range(20):
            run_id = start(reg)
            reg.finish_run(run_id, {"sharpe": 1.0}, {}, 0)
            got.append(run_id)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 80
    assert len(reg.list_runs(limit=None)) == 80


def test_prefixes(reg: Registry) -> None:
    a = start(reg)
    b = start(reg)
    assert reg.get_run(a).id == a
    assert reg.get_run(a.upper()).id == a
    common = os.path.commonprefix([a, b])  # noqa: RUF071 (strings)
    assert len(common) >= 4  # ids made together share their time digits
    with pytest.raises(RunNotFoundError) as ambiguous:
        reg.get_run(common)
    assert set(ambiguous.value.candidates) == {a, b}
    assert reg.get_run(a[: len(common) + 1]).id == a
    with pytest.raises(RunNotFoundError, match="too short"):
        reg.get_run(a[:3])
    with pytest.raises(RunNotFoundError, match="not a run id"):
        reg.get_run("r12*")
    with pytest.raises(RunNotFoundError) as missing:
        reg.get_run("rfffffffffff")
    assert missing.value.candidates == ()


def test_list_filters_and_order(reg: Registry) -> None:
    ids = [start(reg, spec="a"), start(reg, spec="b"), start(reg, spec="a")]
    reg.finish_run(ids[0], {"sharpe": 1.0}, {}, 1)
    reg.fail_run(ids[1], "boom")
    assert [r.id for r in reg.list_runs()] == ids[::-1]
    assert [r.id for r in reg.list_runs(spec="a")] == [ids[2], ids[0]]
    assert [r.id for r in reg.list_runs(limit=1)] == [ids[2]]
    assert [r.id for r in reg.list_runs(status="done")] == [ids[0]]
    assert [r.id for r in reg.list_runs(status="failed")] == [ids[1]]
    assert [r.id for r in reg.list_runs(status="running")] == [ids[2]]
    assert reg.list_runs(status="incomplete") == []
    with pytest.raises(ValueError):
        reg.list_runs(status="bogus")  # type: ignore[arg-type]


def test_dead_process_makes_a_running_run_incomplete(reg: Registry) -> None:
    run_id = start(reg)
    conn = sqlite3.connect(reg.path)
    with conn:  # pretend another process on this host started it and is gone
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DROP TRIGGER runs_keep_identity")
        conn.execute("UPDATE runs SET pid = 999999999, process = NULL WHERE id = ?", (run_id,))
    conn.close()
    r = reg.get_run(run_id)
    assert (r.status, r.state) == ("running", "incomplete")
    assert [x.id for x in reg.list_runs(status="incomplete")] == [run_id]
    assert reg.list_runs(status="running") == []


def test_liveness_rules() -> None:
    host = socket.gethostname()
    me = os.getpid()
    assert store.process_alive(me, host, store.process_identity(me)) is True
    assert store.process_alive(me, "elsewhere", None) is None  # cannot tell
    if store.process_identity(me) is not None:  # Linux: a reused pid is told apart
        assert store.process_alive(me, host, "other-boot:1") is False


def test_compare(reg: Registry) -> None:
    a = start(reg, params={"fast": 20, "slow": 60})
    b = start(reg, params={"fast": 10, "slow": 60}, settings={"fees": 0.002, "stop_loss": None},
              data_fingerprint="e" * 64, seed=3)
    reg.finish_run(a, {"sharpe": 1.0, "trades": 10, "profit_factor": math.inf}, {}, 10)
    reg.finish_run(b, {"sharpe": 1.5, "trades": 7, "profit_factor": 2.0}, {}, 7)
    c = reg.compare(a, b)
    assert (c.same_spec, c.same_artifact, c.same_data, c.same_engine, c.same_seed) == (
        True, True, False, True, False)
    assert [(d.name, d.a, d.b) for d in c.params] == [("fast", 20, 10)]
    assert [(d.name, d.a, d.b) for d in c.settings] == [("fees", 0.001, 0.002)]
    rows = {m.name: m for m in c.metrics}
    assert rows["sharpe"].delta == pytest.approx(0.5)
    assert rows["trades"].delta == -3
    assert rows["profit_factor"].delta is None
    doc = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert doc["same"]["data"] is False and doc["a"]["id"] == a


def test_trial_count_and_sweeps(reg: Registry) -> None:
    sweep = reg.start_sweep("rsi", {"grid": {"window": [7, 14, 21]}})
    assert sweep.startswith("s")
    trials = [start(reg, spec="rsi", kind="sweep_trial", sweep_id=sweep) for _ in range(3)]
    reg.finish_run(trials[0], {"sharpe": 1.0}, {}, 1)
    reg.fail_run(trials[1], "boom")  # failed: no result, not a trial
    start(reg, spec="rsi_v2", lineage="rsi")  # a renamed spec continuing the lineage
    start(reg, spec="other")
    assert reg.trial_count("rsi") == 3  # done + running (+ incomplete), not failed
    assert reg.trial_count("other") == 1
    assert reg.trial_count("nothing") == 0
    assert [r.id for r in reg.list_runs(sweep_id=sweep)] == trials[::-1]
    assert reg.get_run(trials[0]).sweep_id == sweep
    with pytest.raises(RegistryError, match="no sweep"):
        start(reg, sweep_id="s000000000000")
    plan = reg._connection().execute(
        "EXPLAIN QUERY PLAN SELECT count(*) FROM runs WHERE lineage = ? AND status != 'failed'",
        ("rsi",)).fetchall()
    assert "runs_by_lineage" in " ".join(str(tuple(row)) for row in plan)


def test_migrations_are_forward_and_recorded(tmp_path: Path) -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    with Registry(tmp_path) as reg:
        rows = reg._connection().execute("SELECT version FROM schema_version").fetchall()
        assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    with Registry(tmp_path) as reg:  # reopening applies nothing twice
        assert reg.schema_version() == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Registry(tmp_path).close()
    conn = sqlite3.connect(registry_path(tmp_path))
    with conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'from the future', 'x')",
                     (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(RegistryError, match="newer"):
        Registry(tmp_path)


def test_a_later_migration_applies_to_an_existing_registry(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    with Registry(tmp_path) as reg:
        run_id = start(reg)
    extra = store.Migration(SCHEMA_VERSION + 1, "test: a note per run",
                            ("ALTER TABLE runs ADD COLUMN note TEXT",))
    monkeypatch.setattr(store, "MIGRATIONS", (*MIGRATIONS, extra))
    monkeypatch.setattr(store, "SCHEMA_VERSION", extra.version)
    with Registry(tmp_path) as reg:
        assert reg.schema_version() == extra.version
        cols = [r[1] for r in reg._connection().execute("PRAGMA table_info(runs)")]
        assert "note" in cols
        assert reg.get_run(run_id).id == run_id


def test_closed_and_forked_registries_refuse_work(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.close()
    reg.close()  # idempotent
    with pytest.raises(RegistryError, match="closed"):
        reg.list_runs()
    other = Registry(tmp_path)
    other._pid = -1  # as if in a forked child
    with pytest.raises(RegistryError, match="fork"):
        other.list_runs()
    other._pid = os.getpid()
    other.close()


def test_record_backtest_from_a_result_like_object(reg: Registry) -> None:
    from peakdsl.engine.results import SimSettings

    class Index(list[Any]):
        pass

    stamp = SimpleNamespace(isoformat=lambda: "2024-01-01T00:00:00+00:00")
    candles = SimpleNamespace(fingerprint="c" * 64, source="synthetic:gbm", synthetic=True,
                              frame=SimpleNamespace(index=Index([stamp, stamp])))
    result = SimpleNamespace(spec="ma_crossover", artifact_sha256="d" * 64, market="BTC/EUR",
                             timeframe="1h", candles=candles, params={"fast": 20.0},
                             settings=SimSettings(), metrics=dict(METRICS),
                             engine_version="0.3.0", timing={"total": 0.2},
                             warnings=("data source: synthetic:gbm",),
                             sim=SimpleNamespace(trade_count=12))
    run_id = reg.record_backtest(result, seed=1)  # type: ignore[arg-type]
    r = reg.get_run(run_id)
    assert (r.state, r.kind, r.data_source, r.data_bars, r.seed, r.trades) == (
        "done", "backtest", "synthetic:gbm", 2, 1, 12)
    assert r.settings["fill"] == "next_open" and r.settings["stop_loss"] is None
    assert r.data_start == "2024-01-01T00:00:00+00:00"

    bad = SimpleNamespace(**{**vars(result), "metrics": {"sharpe": "n/a"}})
    with pytest.raises(TypeError):
        reg.record_backtest(bad)  # type: ignore[arg-type]
    failed = reg.list_runs(limit=1)[0]
    assert failed.status == "failed" and "TypeError" in (failed.error or "")


def test_id_time_is_exact_to_the_millisecond() -> None:
    for ms in (0, 1, 123, 999, 86_399_999):
        value = (ms << store.ID_RANDOM_BITS) | 0b101010
        run_id = f"r{value:012x}"
        assert id_time(run_id) == f"2020-01-01T{ms // 3_600_000:02d}:" \
            f"{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"


# ------------------------------------------------------------------ the generic run record

WF_INPUTS = {"artifact": "a" * 64, "data": "f" * 64, "risk": "b" * 64}


def window(n: int, sharpe: float) -> tuple[RunStart, RunOutcome]:
    return (RunStart("walkforward_window", "ma", WF_INPUTS, "0.3.0", params={"fast": n},
                     settings={"window": n},
                     data=DataRange("cache", "BTC/EUR", "1h", f"2024-0{n}-01", None, 500)),
            RunOutcome({"sharpe": sharpe, "trades": n}, trades=n, summary={"chosen": {"fast": n}}))


def test_record_a_run_with_children(reg: Registry, tmp_path: Path) -> None:
    report = tmp_path / "out" / "wf.html"
    parent = RunStart("walkforward", "ma", WF_INPUTS, "0.3.0", settings={"train": "1000 bars"},
                      seed=9, data=DataRange("cache", "BTC/EUR", "1h", "2024-01-01",
                                             "2024-06-01", 3600))
    outcome = RunOutcome({"sharpe": 0.5, "wf_efficiency": math.inf}, {"total": 1.5}, 7,
                         ["careful"], {"report": report, "elsewhere": Path("/dev/null")},
                         {"stability": {"fast": [1, 2]}})
    run_id = reg.record(parent, outcome, [window(1, 0.25), window(2, math.nan)])
    run = reg.get_run(run_id)
    assert (run.kind, run.state, run.seed, run.trades, run.children, run.parent_id) == (
        "walkforward", "done", 9, 7, 2, None)
    assert run.inputs == WF_INPUTS and run.artifact_sha256 == "a" * 64
    assert run.artifacts == {"report": "out/wf.html", "elsewhere": "/dev/null"}
    assert run.summary == {"stability": {"fast": [1, 2]}}
    assert run.metrics == {"sharpe": 0.5, "wf_efficiency": math.inf}
    assert (run.market, run.data_bars, run.settings) == ("BTC/EUR", 3600, {"train": "1000 bars"})
    kids = reg.child_runs(run_id)
    assert [k.params for k in kids] == [{"fast": 1}, {"fast": 2}]  # in the order given
    assert {(k.kind, k.parent_id, k.lineage, k.state) for k in kids} == {
        ("walkforward_window", run_id, "ma", "done")}
    assert kids[1].metrics == {"sharpe": None, "trades": 2}
    assert reg.metric_rows(kids[0].id) == {"sharpe": 0.25, "trades": 1.0}
    assert all(k.created_at == k.finished_at for k in kids)  # recorded finished, at once
    assert kids[0].summary == {"chosen": {"fast": 1}} and kids[0].data_start == "2024-01-01"
    assert reg.trial_count("ma") == 0  # a walk-forward and its windows are no trials


def test_start_then_finish_with_children_is_one_transaction(reg: Registry) -> None:
    run_id = reg.start(RunStart("walkforward", "ma", WF_INPUTS, "0.3.0"))
    assert reg.get_run(run_id).state == "running"
    bad = (window(1, 1.0)[0], RunOutcome({"sharpe": "high"}))
    with pytest.raises(TypeError, match="not a number"):
        reg.finish(run_id, RunOutcome({"sharpe": 1.0}), [window(1, 1.0), bad])
    assert reg.get_run(run_id).state == "running" and reg.child_runs(run_id) == []
    ids = reg.add_children(run_id, [window(1, 1.0)])
    assert reg.finish(run_id, RunOutcome({"sharpe": 1.0}), [window(2, 2.0)]) != ids
    assert reg.get_run(run_id).children == 2
    with pytest.raises(RegistryError, match="already done"):
        reg.add_children(run_id, [window(3, 3.0)])


def test_a_failed_record_is_a_failed_run(reg: Registry) -> None:
    with pytest.raises(TypeError):
        reg.record(RunStart("backtest", "ma", WF_INPUTS, "0.3.0"), RunOutcome({"x": object()}))
    failed = reg.list_runs(limit=1)[0]
    assert failed.state == "failed" and "TypeError" in (failed.error or "")


@pytest.mark.parametrize(("run", "message"), [
    (RunStart("bogus", "ma", {}, "0"), "unknown run kind 'bogus'"),
    (RunStart("walkforward_window", "ma", {}, "0"), "belongs to a walkforward run"),
    (RunStart("walkforward_window", "ma", {}, "0", parent_id="r000000000000"), "no run `r0"),
    (RunStart("backtest", "ma", {"artifact": 1}, "0"), "input hash"),  # type: ignore[dict-item]
    (RunStart("backtest", "ma", {}, "0", seed=1.5), "seed"),  # type: ignore[arg-type]
])
def test_what_a_run_cannot_be(reg: Registry, run: RunStart, message: str) -> None:
    with pytest.raises((ValueError, TypeError, RegistryError), match=message):
        reg.start(run)
    assert reg.list_runs(limit=None) == []


def test_a_child_needs_a_running_parent_of_its_parent_kind(reg: Registry) -> None:
    backtest = reg.start(RunStart("backtest", "ma", {}, "0"))
    with pytest.raises(RegistryError, match="cannot belong to run"):
        reg.start(RunStart("walkforward_window", "ma", {}, "0", parent_id=backtest))
    sweep = reg.start_sweep("ma", {})
    with pytest.raises(RegistryError, match="cannot belong to sweep"):
        reg.add_children(sweep, [window(1, 1.0)])
    wf = reg.record(RunStart("walkforward", "ma", {}, "0"), RunOutcome({}))
    with pytest.raises(RegistryError, match=f"run {wf} is already done"):
        reg.add_children(wf, [window(1, 1.0)])
    conn = sqlite3.connect(reg.path)  # the database says so too, to any writer
    conn.execute("PRAGMA foreign_keys = ON")
    raw = ("INSERT INTO runs (id, kind, parent_id, spec, lineage, status, created_at, inputs, "
           "params, engine_version, settings) VALUES (?, ?, ?, 'ma', 'ma', 'running', 'now', "
           "'{}', '{}', '0', '{}')")
    for kind, parent in (("walkforward_window", backtest), ("walkforward_window", wf),
                         ("walkforward_window", None), ("backtest", sweep),
                         ("no_such_kind", None)):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(raw, ("r0000000000aa", kind, parent))
    conn.close()


def test_listing_by_kind_and_parent_and_top_level(reg: Registry) -> None:
    backtest = reg.record(RunStart("backtest", "ma", {}, "0"), RunOutcome({"sharpe": 1.0}))
    sweep = reg.start_sweep("ma", {})
    combos = [[1.0], [2.0]]
    trials = reg.record_sweep_block(sweep, "ma", "a" * 64, "f" * 64, "cache", "0", {}, ("x",),
                                    combos, {"sharpe": [0.1, 0.2]}, 0.1)  # type: ignore[arg-type,dict-item]
    wf = reg.record(RunStart("walkforward", "ma", {}, "0"), RunOutcome({}), [window(1, 1.0)])
    windows = [r.id for r in reg.child_runs(wf)]
    everything = [r.id for r in reg.list_runs(limit=None)]
    assert set(everything) == {backtest, sweep, wf, *trials, *windows}
    assert [r.id for r in reg.list_runs(top_level=True)] == [wf, sweep, backtest]
    assert [r.id for r in reg.list_runs(kind="sweep_trial")] == trials[::-1]
    assert [r.id for r in reg.list_runs(parent=wf)] == windows
    assert [r.id for r in reg.list_runs(kind="walkforward", top_level=True)] == [wf]
    assert reg.get_run(sweep).kind == "sweep" and reg.get_run(sweep[:9]).id == sweep
    assert reg.get_sweep(sweep).runs == 2
    sweep_run = reg.get_run(sweep)
    assert (sweep_run.market, sweep_run.data_source) == (None, "cache")  # its first block's
    assert store.top_level_only(None, None, False)
    assert not store.top_level_only(None, None, True)
    assert not store.top_level_only(None, wf, False)
    assert not store.top_level_only("sweep_trial", None, False)
    assert store.top_level_only("sweep", None, False)


def test_trial_count_counts_trial_kinds_only(reg: Registry) -> None:
    reg.record(RunStart("backtest", "ma", {}, "0"), RunOutcome({}))
    reg.record(RunStart("walkforward", "ma", {}, "0"), RunOutcome({}), [window(1, 1.0)])
    sweep = reg.start_sweep("ma", {})
    reg.start_run("sweep_trial", "ma", "a", "f", "cache", {}, None, "0", {}, sweep)
    reg.finish_sweep(sweep, {"trials": 2})
    assert reg.trial_count("ma") == 2  # the backtest and the sweep trial
    assert [k.kind for k in reg.kinds() if k.trial] == ["backtest", "sweep_trial"]


def test_a_new_kind_is_a_row_not_a_migration(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    Registry(tmp_path).close()
    extra = kinds.RunKind("stress_test", "a deterministic stress scenario", trial=False)
    monkeypatch.setattr(kinds, "KINDS", (*kinds.KINDS, extra))
    monkeypatch.setattr(kinds, "RUN_KINDS", {**kinds.RUN_KINDS, extra.name: extra})
    with Registry(tmp_path) as reg:
        assert reg.schema_version() == SCHEMA_VERSION
        assert "stress_test" in {k.kind for k in reg.kinds()}
        run_id = reg.record(RunStart("stress_test", "ma", {}, "0"), RunOutcome({"x": 1}))
        assert reg.get_run(run_id).kind == "stress_test"
    before = registry_path(tmp_path).stat().st_mtime_ns
    Registry(tmp_path).close()  # up to date: opening writes nothing
    assert registry_path(tmp_path).stat().st_mtime_ns == before


def test_record_backtest_stores_its_files(reg: Registry, tmp_path: Path) -> None:
    from peakdsl.engine.results import SimSettings

    stamp = SimpleNamespace(isoformat=lambda: "2024-01-01T00:00:00+00:00")
    result = SimpleNamespace(
        spec="ma", artifact_sha256="d" * 64, market="BTC/EUR", timeframe="1h",
        candles=SimpleNamespace(fingerprint="c" * 64, source="cache",
                                frame=SimpleNamespace(index=[stamp])),
        params={}, settings=SimSettings(), metrics={"sharpe": 1.0}, engine_version="0",
        timing={}, warnings=(), sim=SimpleNamespace(trade_count=0))
    run_id = reg.record_backtest(result, artifacts={"trades": tmp_path / "t.csv"})  # type: ignore[arg-type]
    assert reg.get_run(run_id).artifacts == {"trades": "t.csv"}
    assert reg.get_run(run_id).inputs == {"artifact": "d" * 64, "data": "c" * 64}


def test_listings_are_served_by_indexes(reg: Registry) -> None:
    """Newest first without sorting the table: the default listing, by kind, by spec (top-level
    runs, as `peak runs list` shows them); a run's children (sorted: one run's only)."""
    conn = reg._connection()
    for where, index, sorts in (("r.parent_id IS NULL", "runs_top_level", False),
                                ("r.kind = 'sweep' AND r.parent_id IS NULL", "runs_by_kind",
                                 False),
                                ("r.spec = 'ma' AND r.parent_id IS NULL", "runs_by_spec", False),
                                ("r.parent_id = 's0'", "runs_by_parent", True)):
        plan = " ".join(str(tuple(row)) for row in conn.execute(
            f"EXPLAIN QUERY PLAN {store.SELECT_RUNS} WHERE {where}{store.NEWEST_FIRST} "
            "LIMIT 50"))
        assert index in plan and ("TEMP B-TREE" in plan) == sorts, plan
