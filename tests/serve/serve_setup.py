"""A project for the dashboard's tests, made with peak's own API (a module of its own, not
conftest, so test files import these names).

``base_project`` makes it once per test run (about 15 s, mostly numba's first backtest) and
the tests copy it (``project_copy``) when they change it. It holds real runs of every kind
the dashboard lists — a backtest, a sweep (4 trials), a walk-forward (its windows), a
portfolio backtest that wrote an HTML report inside the project, a robustness study that
wrote its report outside it, a testnet promotion (with its evidence backtest) — and a paper
deployment polled from the loopback exchange (20 ticks), whose store the tests then give
alerts and a kill-switch engagement as the runner logs them.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
PORTFOLIO = "specs/portfolios/multi_style_moderate.peak"
EASY = "promotion easy_gate {\n    require sharpe >= -10\n    require trades >= 10\n}\n"
START = "2025-10-01"
REPORT = "reports/portfolio.html"
H_MS = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z, the loopback exchange's clock
ALERT_TEXT = "feed stale: BTC/USDT <b>1h</b> bar 3 bars late"


@dataclass(frozen=True)
class Made:
    """The ids of the runs ``make_project`` recorded."""

    backtest: str
    sweep: str
    walkforward: str
    portfolio: str
    robustness: str
    promotion_spec: str
    outside_report: Path


def _runs(root: Path, outside: Path) -> Made:
    from peakdsl import api
    from peakdsl.report.portfolio import write_portfolio_report
    from peakdsl.report.robustness import write_robustness_report
    from peakdsl.robustness.run import run_study

    spec, folio = str(root / MA), str(root / PORTFOLIO)
    backtest = api.backtest(spec, root=root, start=START)
    sweep = api.sweep(spec, root=root, start=START, sets=["fast=10..15:5", "slow=40..50:10"])
    wf = api.walkforward(spec, root=root, start="2025-06-01", train="60d", test="30d",
                         sets=["fast=10..20:10"])

    def folio_report(result: object, doc: object) -> dict[str, Path]:
        write_portfolio_report(result, doc, root / REPORT)  # type: ignore[arg-type]
        return {"report": root / REPORT}

    portfolio = api.portfolio_backtest(folio, root=root, start=START, outputs=folio_report)
    report = outside / "robustness.html"

    def robust_report(result: object, doc: object) -> dict[str, Path]:
        write_robustness_report(result, doc, report)  # type: ignore[arg-type]
        return {"report": report}

    study = run_study(spec, {"runs": 50, "stress": ("crash",)}, root=root, start=START,
                      outputs=robust_report)
    return Made(str(backtest.run_id), str(sweep.sweep_id), str(wf.run_id),
                str(portfolio.run_id), str(study.run_id), "ma_crossover", report)


def _promote(root: Path) -> None:
    from peakdsl.promote.flow import promote

    (root / "specs" / "risk" / "easy_gate.peak").write_text(EASY)
    promote(str(root / MA), gate="easy_gate", stage="testnet", root=root, run=True,
            author="alice <script>")


def deploy(root: Path, risk: str | None = None) -> None:
    """A paper deployment of ma_crossover polled from the loopback exchange: 20 ticks (as
    tests/live/test_live_ops.py runs one), under the risk spec ``risk`` (``--risk``)."""
    from peakdsl.live.loopback import LoopbackExchange
    from peakdsl.live.run import LiveRequest
    from peakdsl.live.runner import RunnerSettings, run_deployment

    with LoopbackExchange(clock=lambda: START_MS) as exchange:
        exchange.set_candles("BTC/USDT", "1h", [
            _candle(START_MS + k * H_MS, 1000 + 50 * math.sin(k / 8))
            for k in range(-1_100, 30)])
        clock = [START_MS / 1000 + 1.0]

        def sleep(seconds: float) -> None:
            clock[0] += seconds

        run_deployment(LiveRequest(str(root / MA), "paper", replay=False, min_history=60,
                                   risk=risk),
                       RunnerSettings(endpoint=exchange.url, max_ticks=20, kill_poll_s=3600),
                       env={}, clock=lambda: clock[0], sleep=sleep)


def _candle(open_ms: int, price: float) -> list[float]:
    return [open_ms, price, price + 1, price - 1, price, 5]


def store_path(root: Path) -> Path:
    return root / ".peak" / "live" / "paper" / "default" / "ma_crossover.sqlite"


def log_alert(root: Path, message: str = ALERT_TEXT, code: str = "A001",
              severity: str = "warning") -> None:
    """An alert as the runner logs it (event ``alert``, the code and key in ``data``)."""
    from peakdsl.live.store import LiveStore

    with LiveStore.open(store_path(root)) as store:
        store.log("alert", message, at=int(time.time() * 1000), level=severity,  # type: ignore[arg-type]
                  data={"code": code, "key": "feed_stale:BTC/USDT", "severity": severity})


def engage_kill(root: Path, reason: str) -> None:
    from peakdsl.live.store import LiveStore

    with LiveStore.open(store_path(root)) as store:
        store.engage_kill(reason, "ops", at=int(time.time() * 1000))


def make_project(root: Path, outside: Path) -> Made:
    shutil.copytree(REPO / "specs", root / "specs")
    made = _runs(root, outside)
    _promote(root)
    deploy(root)
    log_alert(root)
    return made


_BASES: dict[Path, tuple[Path, Made]] = {}


def base_project(factory: pytest.TempPathFactory) -> tuple[Path, Made]:
    """The project of this test run (made on first use) and its run ids. Read it only."""
    key = factory.getbasetemp()
    if key not in _BASES:
        root = factory.mktemp("served")
        outside = factory.mktemp("outside")
        _BASES[key] = (root, make_project(root, outside))
    return _BASES[key]


def project_copy(factory: pytest.TempPathFactory, into: Path) -> tuple[Path, Made]:
    """A copy of the base project at ``into/project``, for a test that changes it."""
    base, made = base_project(factory)
    return Path(shutil.copytree(base, into / "project")), made


def wait_until(test: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Whether ``test()`` held within ``timeout`` seconds (polled every ``step``)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if test():
            return True
        time.sleep(step)
    return test()


# ------------------------------------------------------------------ crawling

LINK = re.compile(r'(?:href|src|data-live-api)="(/[^"]*)"')
CRAWL_LIMIT = 600


def twin(url: str) -> str | None:
    """The JSON twin of a page (``/runs?kind=x`` → ``/api/runs?kind=x``), None for others."""
    path = url.split("?", 1)[0]
    if path.startswith(("/api", "/static")) or "/files/" in path:
        return None
    return "/api" if url == "/" else "/api" + url


def _links(url: str, answer: Any) -> list[str]:
    kind = answer.headers.get("content-type", "")
    if "/files/" in url or answer.status_code != 200:
        return []  # a served report is the run's file, not the dashboard's page
    if kind.startswith("text/html"):
        found = [html.unescape(link) for link in LINK.findall(answer.text)]
        return found + [t for t in [twin(url)] if t]
    if kind.startswith("application/json"):
        return [v for v in _urls(answer.json()) if v.startswith("/")]
    return []


def _urls(doc: Any) -> list[str]:
    """The links of a JSON twin: its ``url``/``api`` fields and its ``links``."""
    if isinstance(doc, list):
        return [u for v in doc for u in _urls(v)]
    if not isinstance(doc, dict):
        return []
    found = []
    for key, value in doc.items():
        if key in ("url", "api") and isinstance(value, str):
            found.append(value)
        elif key == "links" and isinstance(value, dict):
            found.extend(v for v in value.values() if isinstance(v, str))
        else:
            found.extend(_urls(value))
    return found


def crawl(client: Any, starts: tuple[str, ...] = ("/", "/api"),
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Every page, JSON twin, static file and served file reachable from ``starts``, by URL
    (bounded: fails past ``CRAWL_LIMIT`` URLs)."""
    seen: dict[str, Any] = {}
    queue = list(starts)
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        assert len(seen) < CRAWL_LIMIT, f"more than {CRAWL_LIMIT} URLs: {sorted(seen)[:20]}"
        seen[url] = client.get(url, headers=headers or {})
        queue.extend(u for u in _links(url, seen[url]) if u not in seen)
    return seen


def client_of(app: Any, host: str = "127.0.0.1", raise_errors: bool = True) -> Any:
    """Starlette's TestClient addressed to ``host`` (its import warns that httpx2 is
    preferred: silenced, the httpx it falls back to is what the project installs);
    ``raise_errors=False`` to see the 500 page a browser would."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    return TestClient(app, base_url=f"http://{host}", follow_redirects=False,
                      raise_server_exceptions=raise_errors)
