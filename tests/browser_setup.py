"""Headless Chromium for the browser tests (reports, the dashboard): where it is, the flags
that keep it offline and quiet, the marks that skip when it is absent.

Chromium (Debian) logs page console output to stderr as
``[pid:tid:MMDD/HHMMSS.us:INFO:CONSOLE:<line>] "<message>", source: <url> (<line>)`` — every
level as INFO — so any line ``CONSOLE`` matches fails a test (older Chromiums wrote
``CONSOLE(<line>)``, matched too). A module of its own so every test folder can import it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught")


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM = chromium_path()

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install "
                       "chromium); the browser tests need /usr/bin/chromium or `chromium` "
                       "on PATH"),
]


def chromium_flags(profile: Path, *, budget_ms: int, width: int, height: int,
                   allow_loopback: bool = False) -> list[str]:
    """A fresh profile, no background traffic, every host unresolvable (so any request
    that tries the network fails and is logged) but 127.0.0.1 when ``allow_loopback``."""
    rules = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" if allow_loopback else "MAP * ~NOTFOUND"
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        f"--host-resolver-rules={rules}", f"--virtual-time-budget={budget_ms}",
        f"--window-size={width},{height}",
    ]
