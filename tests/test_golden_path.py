"""docs/portfolio.md §2: the golden path on the real BTC/USDT and ETH/USDT candles.

The four commands of the document's ```shell block run in a scratch copy of the project,
with ``../shared/data`` pointed at the validation data, and the figures the document quotes
are checked against what they print. Skipped, saying so, where the data is absent.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "portfolio.md"
FILES = ("binance_BTCUSDT_1h.csv", "binance_ETHUSDT_1h.csv")

pytestmark = pytest.mark.skipif(not all((DATA / f).is_file() for f in FILES),
                                reason=f"the validation candles are not in {DATA}")


def shell_commands() -> list[str]:
    block = re.search(r"```shell\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/portfolio.md has no ```shell block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command.replace("../shared/data", str(DATA)))
    assert argv[0] == "peak"
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *argv[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_the_golden_path_runs_on_real_candles(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    commands = shell_commands()
    assert len(commands) == 4
    for command in commands:
        done = run(command, tmp_path)
        assert done.returncode == 0, f"`{command}`\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr
    assert (tmp_path / "usdt.html").stat().st_size > 100_000
    assert (tmp_path / "usdt_robustness.html").is_file()
    doc = json.loads(run("peak backtest specs/portfolios/multi_style_usdt.peak --json "
                         "--no-record", tmp_path).stdout)
    quoted = DOC.read_text()
    metrics = doc["metrics"]
    assert f"| total return | {_pct(metrics['total_return'])} |" in quoted
    assert f"| max drawdown | {_pct(metrics['max_drawdown'])} |" in quoted
    assert f"| trades | {metrics['trades']:,} |" in quoted
    assert f"| rebalances | {doc['rebalances']} |" in quoted
    study = json.loads(run("peak robustness specs/portfolios/multi_style_usdt.peak --json "
                           "--no-record", tmp_path).stdout)["metrics"]
    assert f"| {_pct(study['mc_p05_return'])} |" in quoted
    assert f"| `mc_prob_loss` | {_pct(study['mc_prob_loss'], sign=False)} |" in quoted


def _pct(x: float, sign: bool = True) -> str:
    """As the document writes it: −6.41 %."""
    text = f"{100 * x:.2f} %"
    return text.replace("-", "−") if sign else text
