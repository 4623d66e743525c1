"""The drill log: a Markdown section per outcome, appended atomically, and a registry run.

Outcomes are built by hand here (no drill runs): what the log makes of them is checked
against literal text, concurrent appends all land, and the registry lists the run under the
``drill`` kind. Takes about a second.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.drill.log import HEADER, append_markdown, log_outcome, section
from peakdsl.drill.model import DrillOutcome, check


def outcome(passed: bool = True, scenario: str = "stale_feed") -> DrillOutcome:
    checks = [check("A007 logged", "A007 feed_stale in the deployment's log (at least 3)",
                    "3 in the log", True),
              check("odd | text", "a pipe | in a cell", "seen\nacross lines", passed)]
    return DrillOutcome(scenario=scenario, title="the exchange stops publishing candles",
                        codes=["A007"], passed=passed, checks=checks,
                        alerts_logged={"A007": 3}, alerts_delivered={"A007": 2},
                        timings={"setup_s": 0.5, "total_s": 2.25},
                        started="2026-03-02T09:40:00Z", ended="2026-03-02T09:40:02Z")


def test_a_section_reads_as_the_runbook_check_list() -> None:
    assert section(outcome(passed=False)) == (
        "\n## 2026-03-02T09:40:00Z stale_feed — FAILED\n\n"
        "The exchange stops publishing candles. Runbooks (docs/runbooks.md): A007 "
        "feed_stale.\n\n"
        "| check | expected | observed | |\n"
        "|---|---|---|---|\n"
        "| A007 logged | A007 feed_stale in the deployment's log (at least 3) | 3 in the log "
        "| ok |\n"
        "| odd \\| text | a pipe \\| in a cell | seen across lines | **FAIL** |\n\n"
        "Alerts logged: A007 ×3; delivered: A007 ×2. Ran 2026-03-02T09:40:00Z → "
        "2026-03-02T09:40:02Z, 2.2 s.\n")


def test_sections_are_appended_under_one_header(tmp_path: Path) -> None:
    path = tmp_path / "drills" / "LOG.md"
    append_markdown(path, outcome(scenario="stale_feed"))
    append_markdown(path, outcome(scenario="kill_switch"))
    text = path.read_text()
    assert text.startswith(HEADER) and text.count("# Drill log") == 1
    assert text.index("stale_feed — passed") < text.index("kill_switch — passed")
    assert sorted(p.name for p in path.parent.iterdir()) == [".LOG.md.lock", "LOG.md"]


def test_concurrent_appends_all_land(tmp_path: Path) -> None:
    path = tmp_path / "LOG.md"
    names = [f"drill_{i}" for i in range(8)]
    threads = [threading.Thread(target=append_markdown, args=(path, outcome(scenario=n)))
               for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    text = path.read_text()
    assert all(f" {n} — passed" in text for n in names)
    assert text.count("\n## ") == 8


def test_the_registry_lists_the_drill(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    run_id = log_outcome(tmp_path, outcome(passed=False))
    assert (tmp_path / "drills" / "LOG.md").read_text().count("stale_feed — FAILED") == 1
    result = CliRunner().invoke(app, ["runs", "list", "--kind", "drill", "--json", "--root",
                                      str(tmp_path)])
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.stdout)["runs"]
    assert (run["id"], run["kind"], run["spec"], run["state"]) == (run_id, "drill",
                                                                   "stale_feed", "done")
    assert run["metrics"] == {"passed": 0, "checks": 2, "checks_failed": 1, "duration_s": 2.25}
    assert run["warnings"] == ["odd | text"]
    assert run["artifacts"] == {"log": "drills/LOG.md"}
    assert run["summary"]["checks"][1]["observed"] == "seen\nacross lines"


def test_the_dashboard_shows_whether_each_drill_passed(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from peakdsl.serve import create_app

    (tmp_path / "specs").mkdir()
    log_outcome(tmp_path, outcome(passed=True, scenario="kill_switch"))
    log_outcome(tmp_path, outcome(passed=False))
    with TestClient(create_app(tmp_path, token=None, refresh_s=5.0),
                    base_url="http://127.0.0.1") as client:
        page = client.get("/runs?kind=drill")
    assert page.status_code == 200
    rows = re.findall(r"<td>(\w+)</td>\s*<td>[^<]*</td>\s*<td class=\"state-done\">([^<]*)</td>",
                      page.text)
    assert rows == [("stale_feed", "done · FAILED"), ("kill_switch", "done · passed")]
