"""The dashboard's pages and their JSON twins (``/api/...``): GET and HEAD only.

Every handler reads through ``data`` / ``live_data`` and renders; none writes. A source that
cannot be read is an error panel on its own page (``503``) while every other page keeps
working; a name that matches nothing is the 404 page, a bad query value the 400 page —
never a traceback. Handlers are plain functions run in Starlette's thread pool (SQLite and
the compiler block).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..registry.encoding import plain
from . import data as d
from . import live_data as ld
from .render import render

T = TypeVar("T")
_log = logging.getLogger("peakdsl.serve")
REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'; sandbox allow-scripts")
FILE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
LIVE_REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox")
NAV = [("/", "overview"), ("/runs", "runs"), ("/runs?kind=backtest", "backtests"),
       ("/runs?kind=sweep", "sweeps"), ("/runs?kind=walkforward", "walk-forwards"),
       ("/runs?kind=portfolio", "portfolios"), ("/runs?kind=robustness", "robustness"),
       ("/promotions", "promotions"), ("/live", "live")]
NEWEST = 5


def is_api(request: Request) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def _problem(problem: d.Problem) -> dict[str, str]:
    return {"code": problem.code, "message": problem.message, "help": problem.help}


def _attempt(read: Callable[[], T]) -> tuple[T | None, d.Problem | None]:
    """``read()``, or the problem that kept its source from being read."""
    try:
        return read(), None
    except d.Unavailable as exc:
        return None, exc.problem


class Views:
    """The routes of one project's dashboard (``root``); the live page refreshes every
    ``refresh_s`` seconds."""

    def __init__(self, root: Path, refresh_s: float) -> None:
        self.root = root
        self.refresh_s = refresh_s
        self.plans = ld.Plans(root)

    # ------------------------------------------------------------------ plumbing

    def page(self, request: Request, template: str, status: int = 200,
             **context: Any) -> HTMLResponse:
        path = request.url.path
        query = request.url.query
        here = path + (f"?{query}" if query else "")
        nav = [(href, label, href == here or (href == path and href != "/runs"))
               for href, label in NAV]
        return HTMLResponse(render(template, nav=nav, project=self.root.name,
                                   version=__version__, **context), status)

    def failure(self, request: Request, status: int, title: str, message: str,
                problem: d.Problem | None = None) -> Response:
        if is_api(request):
            body = {"error": {"status": status, "message": message,
                              **(_problem(problem) if problem else {})}}
            return JSONResponse(body, status)
        return self.page(request, "error.html.j2", status, title=title, message=message,
                         problem=problem)

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """``handler`` with NotFound as 404, BadQuery as 400, Unavailable as 503 and any
        other exception (peak's bug) as a 500 page — answered here, inside the guard, so it
        carries the security headers too (Starlette's own error handler sits outside it)."""
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except d.NotFound as exc:
                return self.failure(request, 404, "Not found", str(exc))
            except d.BadQuery as exc:
                return self.failure(request, 400, "Bad request", str(exc))
            except d.Unavailable as exc:
                return self.failure(request, 503, "Cannot be read", exc.problem.message,
                                    exc.problem)
            except Exception as exc:
                _log.error("dashboard error on %s: %s: %s", request.url.path,
                           type(exc).__name__, exc)
                return self.failure(request, 500, "Internal error", f"the dashboard failed: "
                                    f"{type(exc).__name__} (a bug in peak)")
        return run

    def routes(self) -> list[BaseRoute]:
        pages: list[tuple[str, Callable[[Request], Response]]] = [
            ("/", self.overview), ("/api", self.overview_api),
            ("/runs", self.runs), ("/api/runs", self.runs_api),
            ("/runs/{run_id}", self.run), ("/api/runs/{run_id}", self.run_api),
            ("/runs/{run_id}/files/{name}", self.run_file),
            ("/promotions", self.promotions), ("/api/promotions", self.promotions_api),
            ("/promotions/{spec}", self.promotion), ("/api/promotions/{spec}",
                                                     self.promotion_api),
            ("/live", self.live), ("/api/live", self.live_api),
            ("/live/{mode}/{account}/{spec}", self.deployment),
            ("/api/live/{mode}/{account}/{spec}", self.deployment_api),
            ("/live/{mode}/{account}/{spec}/report", self.report),
            ("/api/live/{mode}/{account}/{spec}/report", self.report_api),
        ]
        static = StaticFiles(packages=[("peakdsl.serve", "static")])
        return [*(Route(path, self.guarded(handler), methods=["GET"])
                  for path, handler in pages), Mount("/static", static, name="static")]

    # ------------------------------------------------------------------ overview

    def _overview(self) -> dict[str, Any]:
        runs, runs_problem = _attempt(lambda: d.list_runs(self.root, limit=NEWEST))
        chains, chains_problem = _attempt(lambda: d.promotion_chains(self.root))
        return {"runs": runs, "runs_problem": runs_problem, "chains": chains or [],
                "chains_problem": chains_problem,
                "deployments": [ld.summarize(r) for r in ld.deployments(self.root)]}

    def overview(self, request: Request) -> Response:
        return self.page(request, "overview.html.j2", title="Overview", **self._overview())

    def overview_api(self, request: Request) -> Response:
        o = self._overview()
        runs = o["runs"]
        return JSONResponse(plain({
            "runs": None if runs is None else {
                "counts": runs.counts, "newest": [r.to_dict() for r in runs.runs]},
            "runs_error": o["runs_problem"] and _problem(o["runs_problem"]),
            "promotions": [_chain_json(c) for c in o["chains"]],
            "promotions_error": o["chains_problem"] and _problem(o["chains_problem"]),
            "live": [_summary_json(s) for s in o["deployments"]],
            "links": {"runs": "/api/runs", "promotions": "/api/promotions",
                      "live": "/api/live"}}))

    # ------------------------------------------------------------------ runs

    def _run_list(self, request: Request) -> d.RunList:
        q = request.query_params
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            raise d.BadQuery(f"limit {q.get('limit')!r} is not a number") from None
        return d.list_runs(self.root, kind=q.get("kind") or None, spec=q.get("spec") or None,
                           status=q.get("status") or None, limit=limit)

    def runs(self, request: Request) -> Response:
        listed = self._run_list(request)
        title = f"Runs: {listed.kind}" if listed.kind else "Runs"
        return self.page(request, "runs.html.j2", title=title, listed=listed)

    def runs_api(self, request: Request) -> Response:
        listed = self._run_list(request)
        return JSONResponse({"kind": listed.kind, "counts": listed.counts,
                             "runs": [r.to_dict() for r in listed.runs]})

    def run(self, request: Request) -> Response:
        detail = d.run_detail(self.root, request.path_params["run_id"])
        return self.page(request, "run.html.j2", title=f"Run {detail.record.id}",
                         detail=detail)

    def run_api(self, request: Request) -> Response:
        detail = d.run_detail(self.root, request.path_params["run_id"])
        record = detail.record
        return JSONResponse({
            "run": record.to_dict(), "parent": detail.parent.id if detail.parent else None,
            "children": [c.to_dict() for c in detail.children],
            "children_total": record.children,
            "files": [{"name": a.name, "path": a.path, "url": _file_url(record.id, a)}
                      for a in detail.artifacts]})

    def run_file(self, request: Request) -> Response:
        path = d.artifact_file(self.root, request.path_params["run_id"],
                               request.path_params["name"])
        kind = d.SERVED[path.suffix.lower()]
        policy = REPORT_CSP if kind.startswith("text/html") else FILE_CSP
        return FileResponse(path, media_type=kind,
                            headers={"Content-Security-Policy": policy})

    # ------------------------------------------------------------------ promotions

    def promotions(self, request: Request) -> Response:
        return self.page(request, "promotions.html.j2", title="Promotions",
                         chains=d.promotion_chains(self.root))

    def promotions_api(self, request: Request) -> Response:
        return JSONResponse({"promotions": [_chain_json(c)
                                            for c in d.promotion_chains(self.root)]})

    def promotion(self, request: Request) -> Response:
        chain = d.promotion_chain(self.root, request.path_params["spec"])
        return self.page(request, "promotion.html.j2", title=f"Promotions: {chain.spec}",
                         chain=chain)

    def promotion_api(self, request: Request) -> Response:
        return JSONResponse(_chain_json(d.promotion_chain(self.root,
                                                          request.path_params["spec"])))

    # ------------------------------------------------------------------ live

    def live(self, request: Request) -> Response:
        summaries = [ld.summarize(r) for r in ld.deployments(self.root)]
        return self.page(request, "live.html.j2", title="Live", summaries=summaries)

    def live_api(self, request: Request) -> Response:
        return JSONResponse({"deployments": [_summary_json(ld.summarize(r))
                                             for r in ld.deployments(self.root)]})

    def _status(self, request: Request) -> ld.LiveStatus:
        p = request.path_params
        ref = ld.find_deployment(self.root, p["mode"], p["account"], p["spec"])
        return ld.live_status(ref, self.plans, time.time())

    def deployment(self, request: Request) -> Response:
        status = self._status(request)
        return self.page(request, "deployment.html.j2", 503 if status.problem else 200,
                         title=f"Live: {status.ref.spec}", live=status,
                         doc=status.to_json(), refresh_s=self.refresh_s,
                         api=f"/api/live/{status.ref.key}")

    def deployment_api(self, request: Request) -> Response:
        status = self._status(request)
        return JSONResponse(status.to_json(), 503 if status.problem else 200)

    def _report(self, request: Request) -> Any:
        from ..live.report import render_html

        p, q = request.path_params, request.query_params
        ref = ld.find_deployment(self.root, p["mode"], p["account"], p["spec"])
        report = ld.live_report(ref, self.plans, q.get("period", "daily"), q.get("at"),
                                time.time())
        return report, render_html

    def report(self, request: Request) -> Response:
        """``peak report live``'s HTML page (its own inline style and SVG, no script)."""
        report, render_html = self._report(request)
        return HTMLResponse(render_html(report),
                            headers={"Content-Security-Policy": LIVE_REPORT_CSP})

    def report_api(self, request: Request) -> Response:
        report, _ = self._report(request)
        return JSONResponse(plain(report.model_dump(mode="json")))


def _file_url(run_id: str, artifact: d.Artifact) -> str | None:
    from urllib.parse import quote

    return f"/runs/{quote(run_id)}/files/{quote(artifact.name, safe='')}" \
        if artifact.served else None


def _chain_json(chain: d.ChainView) -> dict[str, Any]:
    records = [{"file": v.file, "decision": v.decision,
                "record": v.record.model_dump(mode="json"),
                "approvals": [a.model_dump(mode="json") for a in v.approvals]}
               for v in chain.records]
    doc: dict[str, Any] = plain({"spec": chain.spec, "entries": chain.entries,
                                 "problems": chain.problems, "records": records})
    return doc


def _summary_json(s: ld.DeploymentSummary) -> dict[str, Any]:
    equity = s.equity if s.equity is None or math.isfinite(s.equity) else None
    return {"mode": s.ref.mode, "account": s.ref.account, "spec": s.ref.spec,
            "url": f"/live/{s.ref.key}", "api": f"/api/live/{s.ref.key}",
            "kill_engaged": s.kill_engaged, "kill_reason": s.kill_reason,
            "session_status": s.session_status, "last_tick": s.last_tick, "equity": equity,
            "error": None if s.problem is None else asdict(s.problem)}

__all__ = ["Views"]
