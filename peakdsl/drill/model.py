"""What a drill returns: each promised reaction checked, the alerts seen, the timings.

A ``DrillOutcome`` passes only when every ``DrillCheck`` held; each check says what the
runbook expects and what was observed, in words an operator reads in the drill log. The
alerts are counted where they were seen: the deployment's store log (what ``peak live
status`` shows) and the webhook (what the on-call channel got).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DrillCheck(BaseModel):
    """One promised reaction: ``expected`` (the runbook's words), ``observed`` (the drill's)."""

    model_config = ConfigDict(frozen=True)

    name: str
    expected: str
    observed: str
    passed: bool


class DrillOutcome(BaseModel):
    """One drill run (module docstring). ``error`` is set when the drill itself could not
    run to its end (then it did not pass)."""

    model_config = ConfigDict(frozen=True)

    scenario: str
    title: str
    codes: list[str]  # the alert codes its runbook promises
    passed: bool
    checks: list[DrillCheck]
    alerts_logged: dict[str, int]  # code → entries in the store's log
    alerts_delivered: dict[str, int]  # code → messages the webhook accepted
    timings: dict[str, float]  # ``*_s`` seconds, ``*_ms`` milliseconds, ``ticks`` a count
    started: str  # ISO 8601, UTC
    ended: str
    error: str | None = None

    @property
    def failed_checks(self) -> list[DrillCheck]:
        return [c for c in self.checks if not c.passed]


def check(name: str, expected: str, observed: str, passed: bool) -> DrillCheck:
    return DrillCheck(name=name, expected=expected, observed=observed, passed=passed)


__all__ = ["DrillCheck", "DrillOutcome", "check"]
