"""`peak serve` on the command line: every option is checked before anything listens (U005,
exit 2, never a traceback, never the token), and a real `peak serve` process answers on
127.0.0.1, guarded by its token, until Ctrl-C (exit 130, as any interrupted peak command)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from peakdsl.cli import app

TOKEN = "cli-token-5f0c2e9a7b1d3864"
NO_TOKEN: dict[str, str | None] = {"PEAK_SERVE_TOKEN": None, "OTHER_TOKEN": None}


def serve(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, ["serve", *args], env={**NO_TOKEN, **(env or {})})


def test_help_lists_the_options() -> None:
    out = serve("--help")
    assert out.exit_code == 0
    for option in ("--host", "--port", "--token-env", "--refresh", "--root"):
        assert option in out.output


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "dashboard.example"])
def test_a_host_beyond_loopback_needs_a_token(host: str) -> None:
    out = serve("--host", host)
    assert out.exit_code == 2
    assert "error[U005]" in out.output and f"--host {host} would serve" in out.output
    assert "PEAK_SERVE_TOKEN is not set" in out.output and "Traceback" not in out.output
    other = serve("--host", host, "--token-env", "OTHER_TOKEN", env={"PEAK_SERVE_TOKEN": TOKEN})
    assert other.exit_code == 2 and "$OTHER_TOKEN is not set" in other.output


@pytest.mark.parametrize(("args", "env", "needle"), [
    (("--refresh", "0"), {}, "--refresh 0 is out of range"),
    (("--refresh", "nan"), {}, "--refresh nan is out of range"),
    (("--refresh", "7200"), {}, "--refresh 7200 is out of range"),
    (("--port", "80"), {}, "--port 80 is out of range"),
    (("--port", "70000"), {}, "--port 70000 is out of range"),
    (("--token-env", "NOT A NAME"), {}, "is not a variable name"),
    ((), {"PEAK_SERVE_TOKEN": "tiny-tok"}, "shorter than 16 characters"),
    ((), {"PEAK_SERVE_TOKEN": "a token with blanks 12345"}, "blanks"),
])
def test_bad_values_are_refused_before_listening(args: tuple[str, ...],
                                                 env: dict[str, str | None],
                                                 needle: str) -> None:
    out = serve(*args, env=env)
    assert out.exit_code == 2, out.output
    assert "error[U005]" in out.output and needle in out.output
    for value in env.values():
        assert value is None or value not in out.output  # the token is never echoed


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = serve("--port", str(port), "--root", str(tmp_path))
    assert out.exit_code == 2
    assert "error[U005]" in out.output and f"--port {port} on 127.0.0.1 cannot be used" \
        in out.output


def test_a_missing_root_is_refused() -> None:
    out = serve("--root", "no-such-folder")
    assert out.exit_code == 2 and "error[U001]" in out.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> int:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_peak_serve_runs_until_interrupted(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    port = free_port()
    env = {**os.environ, "PEAK_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "peakdsl.cli", "serve", "--port", str(port),
                             "--root", str(tmp_path), "--refresh", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url, bearer = f"http://127.0.0.1:{port}/", {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline, up = time.monotonic() + 30, False
        while not up and proc.poll() is None and time.monotonic() < deadline:
            try:
                up = status(url, bearer) == 200
            except OSError:
                time.sleep(0.1)
        assert up, "peak serve did not answer within 30 s"
        assert status(url) == 401
        assert status(url + "runs", bearer) == 200
        assert status(url, bearer, method="POST") == 405
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert f"peak serve: http://127.0.0.1:{port}/" in err and "token from" in err
    assert err.rstrip().endswith("peak serve: stopped")
    assert TOKEN not in out + err and "Traceback" not in err
