"""The wheel ships the grammar: build it, install it in a fresh venv outside the source
tree, and run `peak check` there."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_checks_outside_the_source_tree(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("peakdsl-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site,
                    str(wheel)], check=True)
    # dependencies come from the test environment's site-packages (appended after the wheel)
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    spec = work / "tiny.peak"
    spec.write_text('risk tiny {\n    max_order_notional 100 EUR\n    max_symbol_exposure 10%\n'
                    '    max_total_exposure 50%\n    max_open_positions 2\n'
                    '    max_daily_loss 1%\n    max_orders_per_minute 5\n}\n')
    where = subprocess.run(
        [py, "-c", "import peakdsl, importlib.resources as r; print(peakdsl.__file__); "
         "print(r.files('peakdsl').joinpath('grammar/peak.lark').is_file())"],
        cwd=work, check=True, capture_output=True, text=True).stdout.split()
    assert where[0].startswith(str(venv)), where
    assert where[1] == "True"
    run = subprocess.run([py, "-m", "peakdsl.cli", "check", "tiny.peak"], cwd=work,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "ok: no problems found" in run.stderr
