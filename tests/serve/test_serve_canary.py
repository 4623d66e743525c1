"""The dashboard never shows a secret: canary values in every environment variable peak reads
a secret from (exchange keys of each mode and a named account, alert webhook URLs, the
dashboard's own token) and in every file a careless page might read (a ``.env``, the arming
key, an alert outbox, files a run claims to have written — hidden, outside the project,
behind a symlink — and a promotion record that does not parse); then every page, JSON twin,
static file and refusal is fetched and searched, body and headers, in every encoding a page
could use: no canary anywhere.

The search is shown to work first: values planted where the dashboard rightly shows them
(an alert's message, a run's parameter, a kill reason) are all found by the same crawl.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from serve_setup import client_of, crawl, engage_kill, log_alert, project_copy, store_path

from peakdsl.registry.records import RunOutcome, RunStart
from peakdsl.registry.store import Registry
from peakdsl.serve import create_app

CANARIES = {
    "PEAK_TESTNET_API_KEY": "cnryTestnetKey-5e1d7a0c93b2",
    "PEAK_TESTNET_API_SECRET": "cnryTestnetSecret-84f6c21ea9d0",
    "PEAK_LIVE_API_KEY": "cnryLiveKey-2b9e4f7d1a63",
    "PEAK_LIVE_API_SECRET": "cnryLiveSecret-c07a5d3e8f19",
    "PEAK_MAIN_LIVE_API_KEY": "cnryMainKey-6d2f8b1c4e70",
    "PEAK_MAIN_LIVE_API_SECRET": "cnryMainSecret-a3e9c5b7d214",
    "PEAK_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/cnrySlack-9f3a1c7e5b2d",
    "PEAK_ALERT_WEBHOOK_URL": "https://alerts.example/hook?key=cnryWebhook-4c8e2a6f0b13",
    "PEAK_SERVE_TOKEN": "cnryServeToken-71d5b9e3a0c8f246",
}
TOKEN = CANARIES["PEAK_SERVE_TOKEN"]
PLANTED = ("plantedAlert-0a9b8c7d", "plantedParam-1e2f3a4b", "plantedKill-5c6d7e8f")


def forms(value: str) -> list[str]:
    """The ways a page could carry ``value``: as is, HTML-escaped, URL-encoded, in JSON,
    hex — and its distinctive last part alone (a truncated or reformatted URL)."""
    tail = value.rsplit("-", 1)[-1]
    return [value, html.escape(value), quote(value, safe=""), json.dumps(value)[1:-1],
            value.encode().hex(), tail]


def found_in(answers: dict[str, Any], values: tuple[str, ...]) -> dict[str, list[str]]:
    """value → the URLs whose body or headers hold it in any form."""
    hits: dict[str, list[str]] = {}
    for url, answer in answers.items():
        blob = answer.content.decode("utf-8", "replace") + "\n" + \
            "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
        for value in values:
            if any(form in blob for form in forms(value)):
                hits.setdefault(value, []).append(url)
    return hits


def plant_secrets(root: Path, outside: Path) -> str:
    """Canaries in files a careless dashboard might read; returns the id of a run whose
    recorded files point at them."""
    lines = "".join(f"{k}={v}\n" for k, v in CANARIES.items())
    (root / ".env").write_text(lines)
    (root / ".peak" / "live" / "arming.key").write_text(lines)
    store_path(root).with_suffix(".outbox.jsonl").write_text(json.dumps(
        {"url": CANARIES["PEAK_SLACK_WEBHOOK_URL"], "text": "pending"}) + "\n")
    secret_file = outside / "secrets.html"
    secret_file.write_text(f"<p>{lines}</p>")
    (root / "reports" / "linked.html").symlink_to(secret_file)
    (root / "reports" / "dotted").mkdir()
    (root / "reports" / "dotted" / ".hidden.html").write_text(lines)
    leaky = root / "promotions" / "leaky"
    leaky.mkdir(parents=True)
    (leaky / "0001-testnet-000000000000.json").write_text("{" + lines)
    with Registry(root) as reg:
        return reg.record(
            RunStart("backtest", "leaky", {"artifact": "0" * 64}, "0.1.0",
                     params={"note": PLANTED[1]}),
            RunOutcome({"sharpe": 1.0}, artifacts={
                "env": root / ".env", "key": root / ".peak" / "live" / "arming.key",
                "outside": secret_file, "linked": root / "reports" / "linked.html",
                "hidden": root / "reports" / "dotted" / ".hidden.html"}))


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str]]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in CANARIES.items():
            env.setenv(name, value)
        yield crawl_everything(tmp_path_factory)


def crawl_everything(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """The planted project crawled with the token (see the module docstring), and the id of
    the run whose files point at secrets."""
    root, _ = project_copy(tmp_path_factory, tmp_path_factory.mktemp("canaries"))
    outside = tmp_path_factory.mktemp("outside-secrets")
    leaky = plant_secrets(root, outside)
    log_alert(root, f"feed stale {PLANTED[0]}")
    engage_kill(root, PLANTED[2])
    app = create_app(root, token=os.environ["PEAK_SERVE_TOKEN"], refresh_s=5)
    client = client_of(app)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    seen = crawl(client, headers=bearer)
    extra = [f"/runs/{leaky}/files/{name}" for name in ("env", "key", "outside", "linked",
                                                        "hidden")]
    extra += ["/promotions/leaky", "/api/promotions/leaky", "/nope", "/api/nope",
              "/runs?kind=nope", "/live/paper/default/nope"]
    for url in extra:
        seen[url] = client.get(url, headers=bearer)
    seen["POST /"] = client.post("/", headers=bearer)
    seen["no token"] = client_of(app).get("/")
    seen["?token="] = client_of(app).get(f"/runs?token={TOKEN}")
    return seen, leaky


def test_the_search_finds_what_is_planted(answers: tuple[dict[str, Any], str]) -> None:
    seen, leaky = answers
    hits = found_in(seen, PLANTED)
    assert set(hits) == set(PLANTED)
    assert "/live/paper/default/ma_crossover" in hits[PLANTED[0]]
    assert f"/runs/{leaky}" in hits[PLANTED[1]]
    assert "/live" in hits[PLANTED[2]]


def test_no_response_holds_a_secret(answers: tuple[dict[str, Any], str]) -> None:
    seen, leaky = answers
    assert len(seen) > 40 and f"/runs/{leaky}" in seen
    assert found_in(seen, tuple(CANARIES.values())) == {}
    for name in ("env", "key", "outside", "linked", "hidden"):
        assert seen[f"/runs/{leaky}/files/{name}"].status_code == 404, name
    files = seen[f"/api/runs/{leaky}"].json()["files"]
    assert {f["name"] for f in files} == {"env", "key", "outside", "linked", "hidden"}
    assert all(f["url"] is None for f in files)  # listed by path, never served
    assert seen["/promotions/leaky"].status_code == 200
    assert "unreadable" in seen["/promotions/leaky"].text
    assert seen["?token="].status_code == 303 and seen["no token"].status_code == 401
