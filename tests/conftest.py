"""Shared fixtures: small spec trees written into a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import netguard
import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """No test reaches the internet (``tests/netguard.py``)."""
    netguard.install()

# A complete, valid spec of each kind, used as a base that tests then break.
VALID_STRATEGY = """\
strategy {name} {{
    description "SMA trend following on BTC"
    market BTC/EUR
    timeframe 1h

    param fast: int = 20 in 5..50 step 5
    param slow: int = 60 in 40..200 step 10
    require fast < slow

    let fast_ma = sma(close, fast)
    let slow_ma = sma(close, slow)

    entry long when crossover(fast_ma, slow_ma)
    exit  long when crossunder(fast_ma, slow_ma)

    size 25% of equity
    stop_loss 5%
    take_profit 15%
}}
"""

VALID_RISK = """\
risk {name} {{
    max_order_notional   1000 EUR
    max_symbol_exposure  30%
    max_total_exposure   80%
    max_open_positions   3
    max_daily_loss       2%
    max_orders_per_minute 10
}}
"""

VALID_PROMOTION = """\
promotion {name} {{
    require sharpe        >= 1.5
    require max_drawdown  >= -15%
    require trades        >= 50
}}
"""

SpecWriter = Callable[[str, str], Path]


@pytest.fixture
def write_spec(tmp_path: Path) -> SpecWriter:
    """``write_spec("specs/strategies/x.peak", text)`` writes under ``tmp_path``."""

    def write(relative: str, text: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def valid_text() -> Callable[[str, str], str]:
    """``valid_text("strategy", "ma")``: a complete, valid spec of that kind and name."""
    templates = {"strategy": VALID_STRATEGY, "risk": VALID_RISK, "promotion": VALID_PROMOTION}

    def make(kind: str, name: str) -> str:
        return templates[kind].format(name=name)

    return make


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch project: a copy of the repository's spec library, nothing cached."""
    import shutil

    shutil.copytree(REPO / "specs", tmp_path / "specs")
    return tmp_path
