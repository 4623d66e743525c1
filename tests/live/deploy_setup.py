"""Shared set-up of the executor, reconciliation, runner and canary tests.

* ``executor_on``: a ``VenueExecutor`` on a fresh store and a venue of the loopback exchange,
  its trade cursor set (as reconciliation sets it before anything is sent) and its kill
  callback engaging the store's switch, as the runner's does;
* ``entry``/``exit_``/``report``: the book's fills as the executor receives them;
* ``promoted_project``: a copy of the spec library with ``ma_crossover`` promoted to testnet by
  the real ``promote`` flow under an easy gate — made once per test run (promoting runs a
  backtest: seconds), then copied per test, so every test gets a store of its own.

A module of its own (not conftest) so that test files can import these names.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from loopback_setup import API_KEY, SECRET

from peakdsl.live.clockbook import Fill, PointReport
from peakdsl.live.execute import ExecutorSettings, VenueExecutor
from peakdsl.live.run import LiveRequest
from peakdsl.live.runner import Deployment, RunnerSettings
from peakdsl.live.session import SlotSpec, slot_specs
from peakdsl.live.store import LiveStore
from peakdsl.live.venue import Venue
from peakdsl.robustness.subject import subject_plan

REPO = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
EASY = "promotion easy_gate {\n    require sharpe >= -10\n    require trades >= 10\n}\n"
SESSION = "exec-test-0001"
MARKET = "BTC/USDT"
HOUR = 3600
T0 = 1_764_547_200.0  # 2025-12-01T00:00Z, a bar open of every timeframe up to a day
# ma_crossover on the demo candles, from 2025-12-05 (min_history 0): buys 0.13003 BTC at the
# open of 2025-12-05T19:00, sells it at 2025-12-06T03:00, buys again at 2025-12-07T09:00
WINDOW = ("2025-12-05", "2025-12-08")
TESTNET_ENV = {"PEAK_TESTNET_API_KEY": API_KEY, "PEAK_TESTNET_API_SECRET": SECRET}


# ------------------------------------------------------------------ the executor


@functools.cache
def ma_slot() -> SlotSpec:
    """The session slot of the library's ma_crossover (BTC/USDT, 1h); read-only use of the
    repository's specs."""
    plan, _ = subject_plan(str(REPO / MA), root=REPO)
    return slot_specs(plan)[0]


def slots(n: int = 1, timeframe_seconds: int = HOUR) -> tuple[SlotSpec, ...]:
    """``n`` slots on BTC/USDT (labels ``s0``, ``s1`` …) with the given timeframe."""
    base = ma_slot()
    return tuple(replace(base, label=f"s{i}", timeframe_seconds=timeframe_seconds)
                 for i in range(n))


class Clock:
    """Milliseconds for the store: 1 ms per reading from 2025-12-01."""

    def __init__(self) -> None:
        self.now = int(T0 * 1000)

    def __call__(self) -> int:
        self.now += 1
        return self.now


DEFAULTS = ExecutorSettings()


def executor_on(store: LiveStore, venue: Venue, settings: ExecutorSettings = DEFAULTS,
                kills: list[str] | None = None) -> VenueExecutor:
    """The executor of session ``SESSION`` (module docstring); ``kills`` collects the kill
    callback's reasons."""
    clock = Clock()
    store.start_session(SESSION, spec="ma_crossover", artifact_sha256="0" * 64,
                        mode="testnet", account="default", exchange="binance", params={},
                        at=clock())

    def kill(why: str) -> None:
        store.engage_kill(why, "executor", at=clock(), session=SESSION)
        if kills is not None:
            kills.append(why)

    executor = VenueExecutor(store, venue, SESSION, now_ms=clock, kill=kill, settings=settings)
    executor.trade_cursor(MARKET)
    return executor


def entry(time_s: float, qty: float = 0.01, price: float = 50_000.0, slot: int = 0) -> Fill:
    return Fill(slot, 0, time_s, 1, qty, price, qty * price * 0.001, "entry")


def exit_(time_s: float, qty: float = 0.01, price: float = 50_000.0, slot: int = 0) -> Fill:
    return Fill(slot, 0, time_s, -1, qty, price, qty * price * 0.001, "signal")


def report(*fills: Fill) -> PointReport:
    return PointReport(fills[0].time, fills, 10_000.0)


# ------------------------------------------------------------------ deployments

_BASES: dict[Path, Path] = {}


def promoted_base(factory: pytest.TempPathFactory) -> Path:
    """The promoted project of this test run (made on first use)."""
    key = factory.getbasetemp()
    if key not in _BASES:
        from peakdsl.promote.flow import promote

        base = factory.mktemp("promoted")
        shutil.copytree(REPO / "specs", base / "specs")
        (base / "specs" / "risk" / "easy_gate.peak").write_text(EASY)
        promote(str(base / MA), gate="easy_gate", stage="testnet", root=base, run=True,
                author="alice")
        _BASES[key] = base
    return _BASES[key]


def promoted_project(factory: pytest.TempPathFactory, into: Path) -> Path:
    """A copy of the promoted project at ``into/project`` (its own ``.peak``)."""
    return Path(shutil.copytree(promoted_base(factory), into / "project"))


def live_request(root: Path, window: tuple[str, str] = WINDOW, **changes: Any) -> LiveRequest:
    fields: dict[str, Any] = {"spec": str(root / MA), "mode": "testnet", "replay": True,
                              "start": window[0], "end": window[1], "min_history": 0,
                              **changes}
    return LiveRequest(**fields)


def runner_settings(url: str, **changes: Any) -> RunnerSettings:
    return replace(RunnerSettings(endpoint=url, resolve_delay_s=0.0), **changes)


def deployment(root: Path) -> Deployment:
    return Deployment(root, "testnet", "default", "ma_crossover")


def wait_until(test: Callable[[], bool], timeout: float, step: float = 0.01) -> float | None:
    """Seconds until ``test()`` held (polled every ``step``), None after ``timeout``."""
    import time

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if test():
            return time.monotonic() - start
        time.sleep(step)
    return None
