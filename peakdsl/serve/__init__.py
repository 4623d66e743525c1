"""`peak serve`: a read-only web dashboard of a project — runs, promotions, deployments.

``app.create_app(root, token=…, refresh_s=…)`` builds the Starlette application; ``data`` and
``live_data`` read the registry, the promotion records and the deployments' stores through
the library (read-only: nothing is created, migrated or written); ``views`` renders the pages
(``templates/``) and their JSON twins under ``/api``; ``security`` is the guard in front
(GET/HEAD only, the token, security headers). The command is ``peakdsl.cli.serve``; the
guide is docs/dashboard.md. Importing this package imports Starlette: the CLI imports it
inside the command only.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
