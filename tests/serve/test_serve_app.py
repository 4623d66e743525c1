"""`peak serve`'s application through Starlette's TestClient, over a project with real runs
of every kind and a paper deployment (tests/serve/serve_setup.py): every page and JSON twin
answers, shows what the registry, the promotion records and the store hold, bad names are
404 pages, every method but GET/HEAD is 405, the token rules hold, every response carries
the security headers, a full crawl leaves every file of the project as it was, and a damaged
store or registry is an error on its own page only.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from serve_setup import (
    ALERT_TEXT,
    REPORT,
    Made,
    base_project,
    client_of,
    crawl,
    deploy,
    engage_kill,
    project_copy,
    store_path,
)

from peakdsl.live.ops import status_doc
from peakdsl.live.store import LiveStore
from peakdsl.metrics import format_metric
from peakdsl.promote.records import load_chain
from peakdsl.registry.store import Registry
from peakdsl.robustness.subject import subject_plan
from peakdsl.serve import create_app
from peakdsl.serve.security import session_value

LIVE = "/live/paper/default/ma_crossover"
TOKEN = "dashboard-token-0123456789abcdef"
METRIC_CELL = re.compile(r'data-metric="([a-z_]+)">([^<]*)<')


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Made]:
    return base_project(tmp_path_factory)


@pytest.fixture(scope="module")
def client(base: tuple[Path, Made]) -> Any:
    return client_of(create_app(base[0], token=None, refresh_s=5))


@pytest.fixture(scope="module")
def crawled(client: Any) -> dict[str, Any]:
    return crawl(client)


def records(root: Path) -> dict[str, Any]:
    with Registry(root) as reg:
        return {r.id: r for r in reg.list_runs(limit=None)}


# ------------------------------------------------------------------ every page


def test_every_page_and_twin_answers(crawled: dict[str, Any], base: tuple[Path, Made]) -> None:
    made = base[1]
    failed = {url: r.status_code for url, r in crawled.items() if r.status_code != 200}
    assert failed == {}
    for url in ("/", "/api", "/runs", "/api/runs", "/promotions", "/api/promotions",
                "/promotions/ma_crossover", "/live", "/api/live", LIVE, "/api" + LIVE,
                f"/runs/{made.sweep}", f"/api/runs/{made.walkforward}", "/static/live.js",
                "/static/dashboard.css", f"/runs/{made.portfolio}/files/report",
                "/runs?kind=robustness", "/runs?kind=portfolio"):
        assert url in crawled, url
    pages = [u for u, r in crawled.items() if r.headers["content-type"].startswith("text/html")
             and "/files/" not in u]
    assert len(pages) >= 15
    for url in pages:
        text = crawled[url].text
        assert "Traceback" not in text and text.startswith("<!DOCTYPE html>"), url
    every_run = {u.split("/")[2].split("?")[0] for u in crawled if u.startswith("/runs/")}
    assert set(records(base[0])) <= every_run  # children included: every run is reachable


def test_head_answers_without_a_body(client: Any) -> None:
    for url in ("/", "/runs", "/api/runs", LIVE):
        answer = client.head(url)
        assert answer.status_code == 200 and answer.content == b"", url


# ------------------------------------------------------------------ runs


def test_the_run_list_is_the_registry(client: Any, base: tuple[Path, Made]) -> None:
    root, made = base
    stored = records(root)
    listed = client.get("/api/runs").json()["runs"]
    top = [r for r in stored.values() if r.parent_id is None]
    assert [r["id"] for r in listed] == [r.id for r in top]  # newest first, children hidden
    assert {r["kind"] for r in listed} == {"backtest", "sweep", "walkforward", "portfolio",
                                            "robustness", "promotion"}
    assert listed[[r["id"] for r in listed].index(made.backtest)] == \
        stored[made.backtest].to_dict()
    page = client.get("/runs").text
    for r in top:
        assert f'href="/runs/{r.id}"' in page
        assert format_metric("sharpe", r.metrics.get("sharpe")) in page
    counts = client.get("/api").json()["runs"]["counts"]
    assert counts["sweep_trial"] == 4 and counts["sweep"] == 1 and counts["backtest"] == 2


def test_a_backtest_page_shows_its_metrics_params_and_data(client: Any,
                                                          base: tuple[Path, Made]) -> None:
    root, made = base
    run = records(root)[made.backtest]
    assert (run.trades, run.data_bars, run.market) == (17, 2208, "BTC/USDT")
    page = client.get(f"/runs/{made.backtest}").text
    shown = dict(METRIC_CELL.findall(page))
    assert shown == {name: format_metric(name, value).replace("&", "&amp;")
                     for name, value in run.metrics.items()}
    assert shown["trades"] == "17"
    for text in ("<dt>fast</dt><dd>20</dd>", "<dt>slow</dt><dd>50</dd>", "<dd>2,208</dd>",
                 f"<code>{run.artifact_sha256}</code>", f"<code>{run.data_fingerprint}</code>",
                 "2025-10-01 00:00:00", run.data_source):
        assert text in page, text


def test_kind_filters_and_children(client: Any, base: tuple[Path, Made]) -> None:
    made = base[1]
    sweeps = client.get("/api/runs?kind=sweep").json()["runs"]
    assert [r["id"] for r in sweeps] == [made.sweep]
    trials = client.get("/api/runs?kind=sweep_trial").json()["runs"]
    assert len(trials) == 4 and {r["parent_id"] for r in trials} == {made.sweep}
    assert sorted((t["params"]["fast"], t["params"]["slow"]) for t in trials) == \
        [(10, 40), (10, 50), (15, 40), (15, 50)]
    detail = client.get(f"/api/runs/{made.sweep}").json()
    assert detail["children_total"] == 4
    assert sorted(c["id"] for c in detail["children"]) == sorted(t["id"] for t in trials)
    page = client.get(f"/runs/{made.sweep}").text
    assert "4 child runs" in page and all(t["id"] in page for t in trials)
    windows = client.get(f"/api/runs/{made.walkforward}").json()["children"]
    assert windows and {w["kind"] for w in windows} == {"walkforward_window"}
    assert client.get("/runs?kind=promotion").status_code == 200


@pytest.mark.parametrize("query", ["kind=nope", "status=don", "limit=0", "limit=lots"])
def test_bad_queries_are_400(client: Any, query: str) -> None:
    page = client.get(f"/runs?{query}")
    assert page.status_code == 400 and "Traceback" not in page.text
    assert client.get(f"/api/runs?{query}").json()["error"]["status"] == 400


def test_report_files_are_served_only_from_inside_the_project(
        client: Any, base: tuple[Path, Made]) -> None:
    root, made = base
    report = client.get(f"/runs/{made.portfolio}/files/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.content == (root / REPORT).read_bytes()
    assert "sandbox" in report.headers["content-security-policy"]
    assert "unsafe-eval" not in report.headers["content-security-policy"]
    outside = client.get(f"/api/runs/{made.robustness}").json()["files"]
    assert outside == [{"name": "report", "path": made.outside_report.as_posix(), "url": None}]
    assert client.get(f"/runs/{made.robustness}/files/report").status_code == 404
    assert "not served" in client.get(f"/runs/{made.robustness}").text
    assert client.get(f"/runs/{made.sweep}/files/results").status_code == 404  # in .peak/


# ------------------------------------------------------------------ promotions


def test_promotions_show_the_records(client: Any, base: tuple[Path, Made]) -> None:
    root = base[0]
    chain = load_chain(root, "ma_crossover")
    (record,) = chain.records()
    doc = client.get("/api/promotions/ma_crossover").json()
    assert doc["problems"] == [] and doc["entries"] == 1
    assert doc["records"][0]["record"] == record.model_dump(mode="json")
    assert doc["records"][0]["decision"] == "passed `easy_gate` for testnet"
    page = client.get("/promotions/ma_crossover").text
    assert record.sha256 in page and "passed `easy_gate` for testnet" in page
    assert "alice &lt;script&gt;" in page and "alice <script>" not in page  # escaped
    for c in record.criteria:
        assert format_metric(c.metric, c.value) in page
        assert f'href="/runs/{c.source}"' in page
    assert "ma_crossover" in client.get("/promotions").text


# ------------------------------------------------------------------ live


def test_the_live_page_is_the_store(client: Any, base: tuple[Path, Made]) -> None:
    root = base[0]
    plan, _ = subject_plan(str(root / "specs/strategies/ma_crossover.peak"), root=root)
    with LiveStore.open(store_path(root), readonly=True) as store:
        expected = status_doc(store, plan, time.time())
        (position,) = store.positions()
    doc = client.get("/api" + LIVE).json()
    assert doc["error"] is None and doc["note"] is None
    status = doc["status"]
    assert status["kill_switch"] == expected["kill_switch"]
    assert status["positions"] == expected["positions"]
    assert status["sessions"] == expected["sessions"]
    assert status["book"]["equity"] == pytest.approx(expected["book"]["equity"])
    assert status["last_tick"] == 1_704_139_200_000  # the 20th tick: 2024-01-01T20:00Z
    assert [a["message"] for a in status["alerts"]] == [ALERT_TEXT]
    assert status["alerts"][0]["code"] == "A001"
    page = client.get(LIVE).text
    assert 'data-live-api="/api/live/paper/default/ma_crossover"' in page
    assert "2024-01-01 20:00:00" in page and "released" in page
    assert f"{expected['book']['equity']:,.2f}" in page
    assert f"{position.qty:,.8f}".rstrip("0") in page
    assert "feed stale: BTC/USDT &lt;b&gt;1h&lt;/b&gt;" in page and "<b>1h</b>" not in page
    listed = client.get("/api/live").json()["deployments"]
    assert [(d["mode"], d["account"], d["spec"], d["kill_engaged"]) for d in listed] == \
        [("paper", "default", "ma_crossover", False)]


def test_status_reports(client: Any) -> None:
    """`peak report live`'s report of the deployment: its 20 bars on 2024-01-01."""
    daily = client.get(LIVE + "/report?period=daily")
    assert daily.status_code == 200 and daily.headers["content-type"].startswith("text/html")
    assert "sandbox" in daily.headers["content-security-policy"]
    assert "2024-01-01" in daily.text and "<script" not in daily.text
    doc = client.get("/api" + LIVE + "/report?period=weekly").json()
    assert (doc["label"], doc["equity"]["bars"], doc["mode"]) == ("2024-W01", 20, "paper")
    other_day = client.get("/api" + LIVE + "/report?at=2024-01-03").json()
    assert (other_day["label"], other_day["equity"]["bars"]) == ("2024-01-03", 0)
    for query in ("period=monthly", "at=yesterday"):
        assert client.get(f"{LIVE}/report?{query}").status_code == 400, query
    assert client.get("/live/paper/default/nope/report").status_code == 404
    assert 'href="/live/paper/default/ma_crossover/report?period=weekly"' in \
        client.get(LIVE).text


def test_a_kill_shows_on_the_next_read(tmp_path_factory: pytest.TempPathFactory,
                                       tmp_path: Path) -> None:
    root, _ = project_copy(tmp_path_factory, tmp_path)
    client = client_of(create_app(root, token=None, refresh_s=5))
    engage_kill(root, "drill <now>")
    doc = client.get("/api" + LIVE).json()["status"]
    assert doc["kill_switch"]["engaged"] and doc["kill_switch"]["reason"] == "drill <now>"
    assert "ENGAGED" in client.get(LIVE).text
    assert "ENGAGED — drill &lt;now&gt;" in client.get("/live").text


def test_a_deployment_whose_spec_is_gone_still_shows(tmp_path_factory: pytest.TempPathFactory,
                                                    tmp_path: Path) -> None:
    root, _ = project_copy(tmp_path_factory, tmp_path)
    (root / "specs/strategies/ma_crossover.peak").unlink()
    client = client_of(create_app(root, token=None, refresh_s=5))
    doc = client.get("/api" + LIVE).json()
    assert doc["status"]["book"] is None and doc["status"]["positions"]
    assert "need the spec" in doc["note"] and "U001" in doc["note"]
    assert client.get(LIVE).status_code == 200
    report = client.get("/api" + LIVE + "/report")
    assert report.status_code == 503 and report.json()["error"]["code"] == "U001"


def test_a_deployment_run_with_risk_shows_its_limits_and_denials(tmp_path: Path) -> None:
    """`peak live run --risk live_moderate_usdt`: the page reads the risk spec the store
    recorded — its limits, and the bar whose entry the risk stage cut to 1,000 USDT."""
    shutil.copytree(Path(__file__).resolve().parents[2] / "specs", tmp_path / "specs")
    deploy(tmp_path, risk="live_moderate_usdt")
    client = client_of(create_app(tmp_path, token=None, refresh_s=5))
    status = client.get("/api" + LIVE).json()["status"]
    assert status["risk_spec"]["name"] == "live_moderate_usdt"
    assert status["risk_spec"]["source"] == "recorded"
    assert {r["limit"]: r["max"] for r in status["book"]["limits"]}["max_order_notional"] \
        == 1000.0
    assert [(d["at"], d["decision"], d["limit"], d["count"]) for d in status["denials"]] == \
        [(1_704_106_800_000, "reduced", "order_notional", 1)]
    page = client.get(LIVE).text
    label = status["risk_spec"]["label"]
    assert label.startswith("live_moderate_usdt (")
    assert label.endswith("), recorded by the deployment when it started")
    assert f'<span data-bind="status.risk_spec.label">{label}</span>' in page
    assert "<td>2024-01-01 11:00:00</td><td>reduced</td><td>order_notional</td>" in page


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("url", [
    "/runs/r000000000000", "/runs/zz", "/runs/r0/files/report", "/promotions/nope",
    "/live/paper/default/nope", "/live/bogus/x/y", "/live/paper/../x", "/nope",
    "/api/nope", "/api/runs/r000000000000", "/static/nope.js"])
def test_unknown_names_are_404(client: Any, url: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 404, url
    assert "Traceback" not in answer.text
    if url.startswith("/api/"):
        assert answer.json()["error"]["status"] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("url", ["/", "/runs", "/api/runs", LIVE, "/api" + LIVE, "/nope"])
def test_only_get_and_head(client: Any, method: str, url: str) -> None:
    answer = client.request(method, url)
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD"


def test_a_bug_is_a_500_page_without_a_traceback(base: tuple[Path, Made],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from peakdsl.serve import data

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in a view")

    monkeypatch.setattr(data, "list_runs", broken)
    client = client_of(create_app(base[0], token=None, refresh_s=5), raise_errors=False)
    page, api = client.get("/runs"), client.get("/api/runs")
    assert page.status_code == api.status_code == 500
    assert "RuntimeError (a bug in peak)" in page.text and "Traceback" not in page.text
    assert api.json()["error"]["status"] == 500
    assert "x-content-type-options" in page.headers
    assert client.get("/live").status_code == 200
    with pytest.raises(ValueError, match="refresh_s"):
        create_app(base[0], token=None, refresh_s=0)


def test_security_headers_on_every_response(client: Any, crawled: dict[str, Any]) -> None:
    answers = [*crawled.values(), client.get("/nope"), client.post("/"),
               client.get("/runs?kind=nope")]
    for answer in answers:
        h = answer.headers
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer" and h["x-frame-options"] == "DENY"
    page_csp = client.get("/").headers["content-security-policy"]
    assert "unsafe-inline" not in page_csp and "script-src 'self'" in page_csp


def test_loopback_only_without_a_token(base: tuple[Path, Made]) -> None:
    app = create_app(base[0], token=None, refresh_s=5)
    for host in ("127.0.0.1", "localhost", "[::1]"):
        assert client_of(app, host).get("/").status_code == 200
    rebound = client_of(app, "evil.example")  # DNS rebinding: another name, our address
    assert rebound.get("/").status_code == 400 and rebound.get("/api/runs").status_code == 400


def test_token_rules(base: tuple[Path, Made]) -> None:
    app = create_app(base[0], token=TOKEN, refresh_s=5)
    client = client_of(app, "dashboard.example")  # any name: the token guards it
    seen = [client.get("/"), client.get("/api/runs"), client.get("/?token=wrong-token-value"),
            client.get("/", headers={"Authorization": "Bearer wrong"}),
            client.get("/", headers={"Authorization": TOKEN})]
    assert [a.status_code for a in seen] == [401] * 5
    assert seen[1].json()["error"]["status"] == 401
    assert seen[0].headers["www-authenticate"] == "Bearer"
    ok = client.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    once = client.get(f"/runs?kind=sweep&token={TOKEN}")
    assert once.status_code == 303 and once.headers["location"] == "/runs?kind=sweep"
    cookie = once.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert f"peak_serve={session_value(TOKEN)}" in cookie
    seen += [ok, once, client.get("/runs?kind=sweep")]  # the client keeps the cookie
    assert seen[-1].status_code == 200
    assert client_of(app).get("/", headers={"Cookie": "peak_serve=forged"}).status_code == 401
    for answer in seen:
        assert TOKEN not in answer.text and TOKEN not in str(answer.headers)


def test_a_redirect_stays_on_the_dashboard(base: tuple[Path, Made]) -> None:
    client = client_of(create_app(base[0], token=TOKEN, refresh_s=5))
    answer = client.get(f"http://127.0.0.1//evil.example/x?token={TOKEN}")
    assert answer.status_code == 303 and answer.headers["location"] == "/evil.example/x"


# ------------------------------------------------------------------ read-only, damage


def fingerprints(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_full_crawl_changes_no_file(tmp_path_factory: pytest.TempPathFactory,
                                      tmp_path: Path) -> None:
    """Every page, twin, file and HEAD: the project's files stay byte for byte what they
    were. SQLite readers may add a WAL database's ``-shm`` index and an empty ``-wal``."""
    root, _ = project_copy(tmp_path_factory, tmp_path)
    before = fingerprints(root)
    client = client_of(create_app(root, token=None, refresh_s=5))
    seen = crawl(client)
    for url in seen:
        client.head(url)
    after = fingerprints(root)
    assert {k: after.get(k) for k in before} == before
    added = set(after) - set(before)
    assert all(name.endswith(("-shm", "-wal")) for name in added), added
    assert all(after[name] == hashlib.sha256(b"").hexdigest()
               for name in added if name.endswith("-wal"))


def test_a_damaged_store_is_an_error_on_its_page_only(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    root, _ = project_copy(tmp_path_factory, tmp_path)
    broken = store_path(root).with_name("broken.sqlite")
    data = bytearray(store_path(root).read_bytes())
    data[4096:8192] = b"\xff" * 4096  # the second page overwritten
    broken.write_bytes(bytes(data))
    client = client_of(create_app(root, token=None, refresh_s=5))
    page = client.get("/live/paper/default/broken")
    assert page.status_code == 503 and "Traceback" not in page.text
    api = client.get("/api/live/paper/default/broken")
    assert api.status_code == 503 and api.json()["error"]["code"] == "E021"
    assert "E021" in page.text and "cannot be read" in page.text
    rows = {d["spec"]: d for d in client.get("/api/live").json()["deployments"]}
    assert rows["broken"]["error"]["code"] == "E021" and rows["ma_crossover"]["error"] is None
    for url in ("/", "/live", LIVE, "/runs", "/promotions"):
        assert client.get(url).status_code == 200, url


def test_a_damaged_registry_is_an_error_on_its_pages_only(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    root, made = project_copy(tmp_path_factory, tmp_path)
    (root / ".peak" / "registry.sqlite").write_bytes(b"not a database, " * 512)
    client = client_of(create_app(root, token=None, refresh_s=5))
    for url in ("/runs", f"/runs/{made.backtest}", "/api/runs"):
        answer = client.get(url)
        assert answer.status_code == 503 and "U009" in answer.text, url
    overview = client.get("/")
    assert overview.status_code == 200 and "U009" in overview.text
    assert "ma_crossover" in overview.text  # the live and promotion sections still work
    for url in ("/live", LIVE, "/promotions", "/promotions/ma_crossover"):
        assert client.get(url).status_code == 200, url


def test_an_older_registry_is_read_never_migrated(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[1] / "registry/fixtures/registry_v2.sqlite"
    (tmp_path / ".peak").mkdir()
    shutil.copyfile(fixture, tmp_path / ".peak" / "registry.sqlite")
    before = (tmp_path / ".peak" / "registry.sqlite").read_bytes()
    client = client_of(create_app(tmp_path, token=None, refresh_s=5))
    answer = client.get("/runs")
    assert answer.status_code == 503 and "schema version 2" in answer.text
    assert (tmp_path / ".peak" / "registry.sqlite").read_bytes() == before
    assert not (tmp_path / ".peak" / ".gitignore").exists()


def test_an_empty_project(tmp_path: Path) -> None:
    client = client_of(create_app(tmp_path, token=None, refresh_s=5))
    for url in ("/", "/runs", "/promotions", "/live", "/api", "/api/runs"):
        assert client.get(url).status_code == 200, url
    assert "No runs recorded yet" in client.get("/").text
    assert not (tmp_path / ".peak").exists()  # nothing was created
