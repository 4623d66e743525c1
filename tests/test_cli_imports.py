"""`peak check` stays light: it never imports the data, numeric or exchange stack.

The CLI runs in a fresh interpreter (so nothing the test session imported leaks in), then
the child prints the top-level packages in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sample_specs import LIMITS

HEAVY = ("pandas", "ccxt", "numba", "numexpr", "numpy")

STRATEGY = """\
strategy light {
    market BTC/EUR
    timeframe 1h
    param fast: int = 10 in 2..50
    let ma = sma(close, fast)
    entry long when crossover(close, ma)
    exit long when crossunder(close, ma)
    size 10% of equity
}
"""

RISK = LIMITS

PORTFOLIO = """\
portfolio book {
    capital 10000 EUR
    component light weight 100% with { fast = 20 }
    risk limits
}
"""

CHILD = """\
import json, sys
from peakdsl import cli
try:
    cli.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("@@MODULES@@" + json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imports")
    for rel, text in {"specs/strategies/light.peak": STRATEGY, "specs/risk/limits.peak": RISK,
                      "specs/portfolios/book.peak": PORTFOLIO}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, "utf-8")
    return root


def modules_after(cwd: Path, *args: str) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("@@MODULES@@"))
    doc = json.loads(line.removeprefix("@@MODULES@@"))
    return doc["exit"], {m.split(".")[0] for m in doc["modules"]}


@pytest.mark.parametrize("args", [
    ("check", "specs/strategies/light.peak"),
    ("check", "specs/portfolios/book.peak"),
    ("check", "specs", "--format", "json"),
    ("--version",),
], ids=["one-strategy", "portfolio-with-references", "whole-library-json", "version"])
def test_check_imports_no_heavy_packages(project: Path, args: tuple[str, ...]) -> None:
    code, top = modules_after(project, *args)
    assert code == 0
    assert "peakdsl" in top
    loaded = sorted(set(HEAVY) & top)
    assert not loaded, f"`peak {' '.join(args)}` imported {loaded}"


def test_importtime_agrees(project: Path) -> None:
    """The same claim through ``-X importtime`` of the real entry module."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "peakdsl.cli", "check",
                           "specs/strategies/light.peak"], cwd=project, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "lark" in imported  # the probe sees real imports
    assert not set(HEAVY) & imported
