"""docs/getting-started.md on the real candles: the page's `peak` commands, in order, in a
fresh folder, with the spec it shows as the user's own; the figures it quotes are checked
against `peak backtest --json`. Skipped, saying so, where ../shared/data is absent.

The commands run in-process (Typer's runner) like tests/test_docs_snippets.py; the page's
install lines (`python3 -m venv`, `pip`, `source`) are what this test cannot redo and are
skipped, `cd` changes the folder the next commands run in.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "getting-started.md"
CANDLES = DATA / "binance_BTCUSDT_1h.csv"
SETUP = ("python3", ".venv/bin/pip", "source")

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not CANDLES.is_file(),
                                 reason=f"the validation candles are not in {DATA}")]


def bash_lines() -> list[str]:
    text = DOC.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith(SETUP)]


def the_spec() -> tuple[str, str]:
    body = re.search(r"```peak\n(.*?)```", DOC.read_text(), re.S)
    assert body, "docs/getting-started.md shows no spec"
    name = re.search(r"^strategy (\w+)", body.group(1), re.M)
    assert name
    return name.group(1), body.group(1)


def peak(argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(cwd)
    run = CliRunner().invoke(app, argv, prog_name="peak")
    assert run.exception is None or isinstance(run.exception, SystemExit), run.exception
    assert run.exit_code == 0, f"`peak {shlex.join(argv)}` in {cwd}\n{run.output}"
    return run.stdout


def test_the_path_runs_and_gives_the_figures_it_quotes(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    name, spec = the_spec()
    here = tmp_path
    for line in bash_lines():
        argv = shlex.split(line.replace("../shared/data", str(DATA)))
        if argv[0] == "cd":
            here = here / argv[1]
            continue
        assert argv[0] == "peak", line
        peak(argv[1:], here, monkeypatch)
        if argv[1] == "init":
            (here / argv[2] / "specs/strategies" / f"{name}.peak").write_text(spec)
    assert (here / f"{name}.html").stat().st_size > 100_000
    doc = json.loads(peak(["backtest", f"specs/strategies/{name}.peak", "--json",
                           "--no-record"], here, monkeypatch))
    assert doc["data"]["bars"] == 13_042 and doc["data"]["synthetic"] is False
    page, metrics = DOC.read_text(), doc["metrics"]
    assert f"| total return | {pct(metrics['total_return'])} |" in page
    assert f"| Sharpe | {metrics['sharpe']:.2f} |".replace("-", "−") in page
    assert f"| max drawdown | {pct(metrics['max_drawdown'])} |" in page
    assert f"| trades | {metrics['trades']} |" in page


def pct(x: float) -> str:
    """As the page writes it: −9.12 %."""
    return f"{100 * x:.2f} %".replace("-", "−")
