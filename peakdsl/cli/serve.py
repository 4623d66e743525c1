"""`peak serve`: the project's read-only web dashboard (``peakdsl.serve``) on uvicorn.

Everything is checked before anything listens: ``--refresh`` and ``--port`` in range, the
token variable's name, the token itself when set, and the rule that a host other than
loopback needs a token (U005, exit 2: a dashboard of trading state is not served to a network
unguarded). The socket is bound here, so a port in use is a U005 too, not a uvicorn log line.
The token is read from the environment variable ``--token-env`` names and never printed;
when set it guards loopback too. Starlette and uvicorn are imported inside the command only
(``peak check`` stays light). Runs until Ctrl-C (exit 130, as every interrupted peak command).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from .options import RootOpt, usage
from .root import EXIT_INTERRUPTED, EXIT_OK, guarded

DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TOKEN_ENV, DEFAULT_REFRESH = \
    "127.0.0.1", 8765, "PEAK_SERVE_TOKEN", 5.0
MIN_REFRESH, MAX_REFRESH = 0.5, 3600.0
MIN_PORT, MAX_PORT = 1024, 65_535
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_MAKE_TOKEN = ("at least 16 printable characters, e.g. from "
               "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`")

HostOpt = Annotated[str, typer.Option(
    "--host", help="address to listen on; any but loopback needs the token")]
PortOpt = Annotated[int, typer.Option("--port", help=f"TCP port ({MIN_PORT}-{MAX_PORT})")]
TokenEnvOpt = Annotated[str, typer.Option(
    "--token-env", metavar="NAME", help="environment variable holding the access token "
    "(required for a non-loopback --host; never printed)")]
RefreshOpt = Annotated[float, typer.Option(
    "--refresh", metavar="SECONDS", help="how often a live page refreshes "
    f"({MIN_REFRESH:g}-{MAX_REFRESH:g})")]


def serve_token(host: str, port: int, token_env: str, refresh: float,
                env: Mapping[str, str]) -> str | None:
    """The token to require (None: none), after checking every option; ``UsageError``
    (U005) for a value peak refuses — the token's value never appears in it."""
    from ..serve.security import is_loopback, token_problem

    if not MIN_REFRESH <= refresh <= MAX_REFRESH:  # NaN fails too
        raise usage("--refresh", f"--refresh {refresh:g} is out of range",
                    f"{MIN_REFRESH:g} to {MAX_REFRESH:g} seconds")
    if not MIN_PORT <= port <= MAX_PORT:
        raise usage("--port", f"--port {port} is out of range", f"{MIN_PORT} to {MAX_PORT}")
    if not VARIABLE.fullmatch(token_env):
        raise usage("--token-env", f"--token-env {token_env!r} is not a variable name",
                    "letters, digits and _, e.g. PEAK_SERVE_TOKEN")
    token = env.get(token_env) or None
    why = token_problem(token) if token is not None else None
    if why is not None:
        raise usage("--token-env", f"the token in ${token_env} cannot guard the dashboard: "
                    f"{why}", _MAKE_TOKEN)
    if token is None and not is_loopback(host):
        raise usage("--host", f"--host {host} would serve the dashboard beyond this machine "
                    f"without a token: ${token_env} is not set",
                    f"set {token_env} ({_MAKE_TOKEN}), or leave --host at 127.0.0.1")
    return token



def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``; U005 when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise usage("--host", f"--host {host} cannot be used: {exc}",
                    "an address of this machine, e.g. 127.0.0.1") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise usage("--port", f"--port {port} on {host} cannot be used: "
                    f"{exc.strerror or exc}", "choose another --port, or stop what holds "
                    "it") from None
    return sock


def _project(root: Path | None) -> Path:
    from ..lang.project import find_root

    return root.resolve() if root is not None else find_root(Path.cwd())


@guarded
def serve_cmd(host: HostOpt = DEFAULT_HOST, port: PortOpt = DEFAULT_PORT,
              token_env: TokenEnvOpt = DEFAULT_TOKEN_ENV,
              refresh: RefreshOpt = DEFAULT_REFRESH, root: RootOpt = None) -> None:
    """Serve a read-only web dashboard of the project: runs, promotions, live deployments."""
    token = serve_token(host, port, token_env, refresh, os.environ)
    project = _project(root)
    sock = bind(host, port)
    import uvicorn

    from ..serve import create_app

    app = create_app(project, token=token, refresh_s=refresh)
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False)
    shown = f"[{host}]" if ":" in host else host
    guard = f"token from ${token_env} required" if token else "loopback only, no token"
    sys.stderr.write(f"peak serve: http://{shown}:{port}/ — {project.name}, read-only, "
                     f"{guard}; Ctrl-C stops it\n")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops cleanly, then re-raises the Ctrl-C it caught
        sys.stderr.write("peak serve: stopped\n")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        sock.close()
    raise typer.Exit(EXIT_OK)


__all__ = ["bind", "serve_cmd", "serve_token"]
