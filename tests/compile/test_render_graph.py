"""`peak graph`: text with lookbacks and warm-up, Graphviz dot and Mermaid, via the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MACD = "specs/strategies/macd.peak"


def peak(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_text_graph_shows_warmup_lookbacks_and_rules() -> None:
    run = peak("graph", MACD)
    assert run.returncode == 0, run.stderr
    assert re.search(r"warm-up: .+ bars \(\d+ at defaults\)", run.stdout)
    assert "[entry_long]" in run.stdout and "[exit_long]" in run.stdout
    assert "numexpr:" in run.stdout
    node_lines = [line for line in run.stdout.splitlines() if line.startswith("%")]
    ids = [int(line[1:].split()[0]) for line in node_lines]
    assert ids == list(range(len(ids)))


def test_dot_and_mermaid_have_an_edge_per_input() -> None:
    text = peak("graph", MACD).stdout
    nodes = [line for line in text.splitlines() if line.startswith("%")]
    inputs = sum(line.split("=", 1)[1].split("lookback")[0].count("%") for line in nodes)
    dot = peak("graph", MACD, "--format", "dot").stdout
    assert dot.startswith('digraph "macd" {') and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == inputs
    mermaid = peak("graph", MACD, "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR")
    assert mermaid.count(" --> ") == inputs


def test_graph_of_a_portfolio_is_a_usage_error() -> None:
    run = peak("graph", "specs/portfolios/multi_style_moderate.peak")
    assert run.returncode == 2
    assert "U003" in run.stderr and "Traceback" not in run.stderr


def test_graph_of_a_broken_spec_reports_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "bad.peak"
    bad.write_text("strategy bad {\n    market BTC/EUR\n    timeframe 1h\n"
                   "    entry long when close > sma(close, 0)\n}\n")
    run = peak("graph", str(bad))
    assert run.returncode == 1
    assert "T004" in run.stderr
