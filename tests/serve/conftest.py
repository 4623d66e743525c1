"""The dashboard's tests: the ``browser`` marker (as tests/report registers it, so that
running tests/serve alone knows it too)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: runs a real headless Chromium (skipped when it is not installed)")
