"""The operator's commands from Python (``peakdsl.api``): the same typed data the CLI prints.
The exchange is a closed loopback port: nothing leaves the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from peakdsl import api
from peakdsl.api import SpecError
from peakdsl.lang.project import UsageError

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "specs" / "strategies" / "ma_crossover.peak")
CLOSED = "http://127.0.0.1:9"  # nothing listens: the exchange check fails fast


def test_health_returns_every_check_with_its_status() -> None:
    report = api.live_health(SPEC, endpoint=CLOSED)
    names = [c.name for c in report.checks]
    assert names[0] == "config" and "kill switch" in names and "risk limits" in names
    assert not report.ok  # the exchange cannot be reached
    failed = {c.name: c.code for c in report.checks if c.status == "fail"}
    assert failed.get("exchange") == "E032", failed


def test_health_of_a_missing_spec_fails_config_with_a_code() -> None:
    report = api.live_health("nope.peak", endpoint=CLOSED)
    config = report.checks[0]
    assert (config.name, config.status, config.code) == ("config", "fail", "U001")


def test_status_of_a_deployment_that_never_ran_is_refused(tmp_path: Path) -> None:
    with pytest.raises((SpecError, UsageError)):
        api.live_status(str(tmp_path / "nope.peak"), mode="paper")


def test_a_drill_from_python_reports_its_checks() -> None:
    outcome = api.drill("kill_switch")
    assert outcome.scenario == "kill_switch" and outcome.passed, outcome.checks
    assert outcome.checks and all(c.passed for c in outcome.checks)


def test_an_unknown_drill_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        api.drill("earthquake")
