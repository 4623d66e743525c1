"""Running a drill: build the scratch project, stage the incident, check the reaction.

``run_drill(name)`` is ``peak drill NAME`` as a library call: a fresh scratch project in a
temporary folder (deleted afterwards), the scenario's deployment run on the loopback
exchange with its incident injected, the operator's follow-up, then every check of the
scenario — returned as a typed ``DrillOutcome``. A drill that cannot run to its end (a bug, a
refusal nobody planned) is an outcome too: not passed, with the error, never a traceback.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from .catalog import ENTRIES, NAMES
from .model import DrillCheck, DrillOutcome, check


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_drill(name: str) -> DrillOutcome:
    """The drill ``name`` (one of ``catalog.NAMES``; ``KeyError`` otherwise)."""
    entry = ENTRIES[name]
    started, clock = _now(), time.perf_counter()
    timings: dict[str, float] = {}
    checks: list[DrillCheck] = []
    logged: Counter[str] = Counter()
    delivered: Counter[str] = Counter()
    error = None
    try:
        with tempfile.TemporaryDirectory(prefix=f"peak-drill-{name}-") as tmp:
            checks, logged, delivered = _stage(name, Path(tmp), timings)
    except Exception as exc:  # the drill itself broke: reported, never raised
        error = f"{type(exc).__name__}: {exc}"
        checks.append(check("drill ran", "the drill runs to its end", error, False))
    timings["total_s"] = time.perf_counter() - clock
    return DrillOutcome(scenario=name, title=entry.title, codes=list(entry.codes),
                        passed=bool(checks) and all(c.passed for c in checks),
                        checks=checks, alerts_logged=dict(sorted(logged.items())),
                        alerts_delivered=dict(sorted(delivered.items())),
                        timings={k: round(v, 4) for k, v in timings.items()},
                        started=started, ended=_now(), error=error)


def _stage(name: str, tmp: Path, timings: dict[str, float]
           ) -> tuple[list[DrillCheck], Counter[str], Counter[str]]:
    from .project import build, candle_rows
    from .rig import Rig
    from .scenarios import SCENARIOS

    scenario = SCENARIOS[name]
    mark = time.perf_counter()
    scratch = build(tmp / "project", scenario.setup.limits,
                    promoted=scenario.setup.mode != "paper")
    candles = candle_rows(scratch)
    timings["setup_s"], mark = time.perf_counter() - mark, time.perf_counter()
    with Rig(scratch, scenario.setup, candles, scenario.inject) as rig:
        rig.run()
        timings["run_s"], mark = time.perf_counter() - mark, time.perf_counter()
        if scenario.follow_up is not None:
            scenario.follow_up(rig)
            timings["follow_up_s"], mark = time.perf_counter() - mark, time.perf_counter()
        observed = rig.read()
        checks = scenario.checks(rig, observed)
        timings["checks_s"] = time.perf_counter() - mark
        timings["ticks"] = float(len(rig.states))
        if rig.delays:
            timings["alert_delay_max_ms"] = max(rig.delays) * 1000
        return checks, observed.alerts(), Counter(rig.webhook.codes())


def run_all() -> list[DrillOutcome]:
    """Every drill, in the catalog's order."""
    return [run_drill(name) for name in NAMES]


__all__ = ["run_all", "run_drill"]
