"""``create_app``: the dashboard of one project as a Starlette application.

The routes are ``views.Views``; in front of them ``security.Guard`` (GET/HEAD only, the token,
the security headers). Unknown paths get the 404 page; a view's own failure is its 500 page
(``Views.guarded``); anything else that escapes meets the last-resort handler below — all
without a traceback (``debug`` is off). Serve it with uvicorn (``peak serve``) or test it
with Starlette's ``TestClient``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from .security import Guard
from .views import Views

_log = logging.getLogger("peakdsl.serve")


def create_app(root: Path, *, token: str | None, refresh_s: float) -> Starlette:
    """The dashboard of the project at ``root``: read-only, guarded by ``token`` when one is
    given (required for any host but loopback: ``peak serve`` enforces that), the live page
    refreshing every ``refresh_s`` seconds."""
    if not refresh_s > 0:
        raise ValueError(f"refresh_s must be positive, not {refresh_s!r}")
    views = Views(Path(root).resolve(), refresh_s)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return views.failure(request, status, "Not found", f"no page at {request.url.path}")

    async def broken(request: Request, exc: Exception) -> Response:
        _log.error("dashboard error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
        return views.failure(request, 500, "Internal error",
                             f"the dashboard failed: {type(exc).__name__} (a bug in peak)")

    return Starlette(routes=views.routes(), middleware=[Middleware(Guard, token=token)],
                     exception_handlers={404: not_found, 500: broken, Exception: broken})


__all__ = ["create_app"]
