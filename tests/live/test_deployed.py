"""A deployment started with `peak live run SPEC --risk NAME`: the store records the risk spec
(``LiveStore.record_risk_spec``) and ``peak live status``, ``health`` and ``kill`` read it
back (``live.deployed``): the limits it enforces, its alert sinks, its denials bar by bar."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback_setup import START_MS
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.live.deployed import deployed_plan
from peakdsl.live.loopback import LoopbackExchange
from peakdsl.live.runner import Deployment
from peakdsl.live.store import LiveStore
from peakdsl.live.store_rows import RiskSpecRecord

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/strategies/ma_crossover.peak"
RISK = "live_moderate_usdt"
H_MS = 3_600_000
NO_SINKS = {"PEAK_SLACK_WEBHOOK_URL": "", "PEAK_ALERT_WEBHOOK_URL": ""}


def _candles() -> list[list[float]]:
    """A slow sine around 1,000: ma_crossover buys at 2024-01-01T11:00, and its 25% of
    equity (about 2,500 USDT) is cut to the 1,000 USDT max_order_notional."""
    rows = []
    for k in range(-1_100, 30):
        price = 1000 + 50 * math.sin(k / 8)
        rows.append([START_MS + k * H_MS, price, price + 1, price - 1, price, 5])
    return rows


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A paper deployment of ma_crossover under --risk live_moderate_usdt, 20 ticks polled
    from the loopback exchange; the project and the exchange's URL. Read it only."""
    from peakdsl.live.run import LiveRequest
    from peakdsl.live.runner import RunnerSettings, run_deployment

    root = tmp_path_factory.mktemp("deployed")
    shutil.copytree(REPO / "specs", root / "specs")
    with LoopbackExchange(clock=lambda: START_MS) as exchange:
        exchange.set_candles("BTC/USDT", "1h", _candles())
        clock = [START_MS / 1000 + 1.0]

        def sleep(seconds: float) -> None:
            clock[0] += seconds

        run_deployment(LiveRequest(str(root / SPEC), "paper", replay=False, min_history=60,
                                   risk=RISK),
                       RunnerSettings(endpoint=exchange.url, max_ticks=20, kill_poll_s=3600),
                       env=NO_SINKS, clock=lambda: clock[0], sleep=sleep)
        yield root, exchange.url


@pytest.fixture
def project(deployed: tuple[Path, str], tmp_path: Path) -> Path:
    """A copy of the deployed project, for a test that changes it."""
    shutil.copytree(deployed[0], tmp_path / "p")
    return tmp_path / "p"


def cli(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str,
        env: dict[str, str] | None = None) -> Any:
    monkeypatch.chdir(root)
    return CliRunner().invoke(app, list(args), env={**NO_SINKS, **(env or {})})


def risk_sha(root: Path) -> str:
    from peakdsl.robustness.subject import subject_plan

    sha = subject_plan(str(root / SPEC), root=root, risk=RISK)[1]
    assert sha is not None
    return sha


def test_the_store_records_the_risk_spec(deployed: tuple[Path, str]) -> None:
    root = deployed[0]
    path = Deployment(root, "paper", "default", "ma_crossover").store_path
    with LiveStore.open(path, readonly=True) as store:
        assert store.risk_spec() == RiskSpecRecord(RISK, risk_sha(root), True)
        (entry,) = [e for e in store.log_since(0) if e.event == "risk_spec"]
    assert entry.data == {"name": RISK, "sha256": risk_sha(root), "given": True}


def test_status_shows_the_limits_it_runs_under(deployed: tuple[Path, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = deployed[0]
    out = cli(root, monkeypatch, "live", "status", SPEC, "--mode", "paper", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    risk = doc["risk_spec"]
    assert (risk["name"], risk["source"], risk["notes"]) == (RISK, "recorded", [])
    assert {r["limit"]: r["max"] for r in doc["book"]["limits"]} == {
        "max_order_notional": 1000.0, "max_symbol_exposure": 0.3, "max_total_exposure": 0.8,
        "max_open_positions": 3.0, "max_daily_loss": 0.02, "max_orders_per_minute": 10.0}
    assert doc["denials"] == [{"at": 1_704_106_800_000, "session": doc["sessions"][0]["id"],
                               "decision": "reduced", "limit": "order_notional", "count": 1,
                               "total": 1}]
    text = cli(root, monkeypatch, "live", "status", SPEC, "--mode", "paper").stdout
    assert f"risk spec: {RISK} ({risk_sha(root)[:12]}), recorded by the deployment when it " \
        "started" in text
    assert "  max_total_exposure     12.3% of 80.0%" in text
    assert "  2024-01-01T11:00  reduced 1 entry on order notional" in text
    given = cli(root, monkeypatch, "live", "status", SPEC, "--mode", "paper", "--risk", RISK,
                "--json")
    assert given.exit_code == 0 and json.loads(given.stdout)["risk_spec"]["source"] == "--risk"


def test_health_checks_its_risk_spec_and_sinks(deployed: tuple[Path, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = deployed
    out = cli(root, monkeypatch, "live", "health", SPEC, "--endpoint", url, "--json")
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["risk limits"]["status"] == "ok"
    assert checks["risk limits"]["detail"] == f"risk spec {RISK} ({risk_sha(root)[:12]}) " \
        "enforced, recorded by the deployment when it started"
    sinks = checks["alert sinks"]  # the risk spec's slack and webhook, not the default log
    assert (sinks["status"], sinks["code"]) == ("warn", "E044")
    assert sinks["detail"] == "alerts.slack: the variable PEAK_SLACK_WEBHOOK_URL is not set; " \
        "alerts.webhook: the variable PEAK_ALERT_WEBHOOK_URL is not set"
    given = cli(root, monkeypatch, "live", "health", SPEC, "--endpoint", url, "--risk",
                "live_moderate", "--json")
    config = json.loads(given.stdout)["checks"][0]
    assert (config["status"], config["code"]) == ("fail", "U005")  # EUR limits on USDT


def test_a_risk_spec_changed_since_the_start_warns(project: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = risk_sha(project)
    spec = project / "specs" / "risk" / f"{RISK}.peak"
    spec.write_text(spec.read_text().replace("max_open_positions 3", "max_open_positions 4"))
    _, found = deployed_plan(str(project / SPEC), "paper", "default")
    assert found.source == "recorded" and found.plan.risk.max_open_positions == 4
    assert found.notes == (f"risk spec {RISK} changed since the deployment started (then "
                           f"{before[:12]}, now {risk_sha(project)[:12]}): a running "
                           "deployment enforces the old limits until it restarts",)
    out = cli(project, monkeypatch, "live", "health", SPEC, "--endpoint", "http://127.0.0.1:9",
              "--json")
    risk = next(c for c in json.loads(out.stdout)["checks"] if c["name"] == "risk limits")
    assert risk["status"] == "warn" and "changed since the deployment started" in risk["detail"]


def test_a_removed_risk_spec_shows_no_limits_and_says_why(project: Path) -> None:
    (project / "specs" / "risk" / f"{RISK}.peak").unlink()
    _, found = deployed_plan(str(project / SPEC), "paper", "default")
    assert found.plan.risk is None and found.source == "recorded"
    assert found.notes[0].startswith(f"the deployment runs under risk spec {RISK}, which no "
                                     "longer resolves (")


def test_a_kill_of_the_stopped_deployment_alerts_its_sinks(
        project: Path, monkeypatch: pytest.MonkeyPatch, hook: Any) -> None:
    """A004 to the risk spec's webhook (critical) and Slack (warning and up), through the
    outbox; logged in the store. Killing it again raises nothing new."""
    from peakdsl.live.alerts import Outbox

    env = {"PEAK_SLACK_WEBHOOK_URL": hook.url, "PEAK_ALERT_WEBHOOK_URL": hook.url}
    out = cli(project, monkeypatch, "live", "kill", SPEC, "--mode", "paper", "--reason",
              "drill", "--json", env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["alert"] == {"code": "A004",
                                               "sinks": ["log", "slack", "webhook"],
                                               "problems": []}
    assert len(hook.bodies) == 2
    webhook = next(b for b in hook.bodies if "code" in b)
    assert (webhook["code"], webhook["severity"]) == ("A004", "critical")
    assert webhook["message"].startswith("kill switch engaged: drill (by ")
    where = Deployment(project, "paper", "default", "ma_crossover")
    assert Outbox(where.store_path.with_suffix(".outbox.jsonl")).pending() == []
    with LiveStore.open(where.store_path, readonly=True) as store:
        codes = [e.data["code"] for e in store.log_since(0) if e.event == "alert"]
    assert codes == ["A001", "A004"]
    again = cli(project, monkeypatch, "live", "kill", SPEC, "--mode", "paper", "--json",
                env=env)
    assert json.loads(again.stdout)["alert"] is None and len(hook.bodies) == 2


def test_a_kill_whose_sink_is_down_keeps_the_alert_for_the_next_start(
        project: Path, monkeypatch: pytest.MonkeyPatch, dead_url: str) -> None:
    from peakdsl.live.alerts import Outbox

    env = {"PEAK_ALERT_WEBHOOK_URL": dead_url}
    out = cli(project, monkeypatch, "live", "kill", SPEC, "--mode", "paper", "--reason",
              "drill", env=env)
    assert out.exit_code == 0, out.output
    assert "A004 raised to log, webhook; not to alerts.slack: the variable " \
        "PEAK_SLACK_WEBHOOK_URL is not set" in out.stdout
    where = Deployment(project, "paper", "default", "ma_crossover")
    ((message, owed),) = Outbox(where.store_path.with_suffix(".outbox.jsonl")).pending()
    assert (message.alert.code, owed) == ("A004", {"webhook"})
