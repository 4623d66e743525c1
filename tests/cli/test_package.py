"""The `peakdsl.cli` package: one module per command group, no import cycle, all mounted.

Command modules import only ``peakdsl.cli.root``, ``peakdsl.cli.options`` and the library —
never each other or the package — so each imports on its own and ``peakdsl.cli`` can mount
them without the import tricks (``noqa: E402``) the single-module CLI needed.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from typer.testing import CliRunner

import peakdsl.cli
from peakdsl.cli import COMMANDS, GROUPS, app

PACKAGE = Path(peakdsl.cli.__file__).parent
COMMAND_MODULES = ("init", "spec", "explain", "backtest", "sweep", "walkforward", "robustness",
                   "diff", "serve", "lsp", "data", "runs", "runs_rerun", "promote", "live",
                   "report", "drill")
SHARED = {"root", "options", "runs_common"}  # runs_common: the runs group's two modules
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__main__")


def cli_imports(module: str) -> set[str]:
    """The ``peakdsl.cli`` modules ``module`` imports (anywhere in it, also inside functions)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("peakdsl.cli"):
            found.add((node.module or "").removeprefix("peakdsl.cli").lstrip(".") or "__init__")
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("peakdsl.cli.") for a in node.names
                      if a.name.startswith("peakdsl.cli.")}
    return found


def test_the_modules_are_the_ones_the_design_names() -> None:
    assert sorted(["__init__", *SHARED, *COMMAND_MODULES]) == MODULES


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_a_command_module_imports_only_root_and_options(module: str) -> None:
    assert cli_imports(module) <= SHARED, cli_imports(module)


def test_the_shared_modules_import_no_command_module() -> None:
    assert cli_imports("root") == set()
    assert cli_imports("options") == {"root"}
    assert cli_imports("runs_common") == {"root", "options"}


def test_no_noqa_e402_tricks() -> None:
    for path in PACKAGE.glob("*.py"):
        assert "E402" not in path.read_text("utf-8"), path.name


@pytest.mark.parametrize("module", [f"peakdsl.cli.{m}" for m in (*sorted(SHARED),
                                                                  *COMMAND_MODULES)]
                         + ["peakdsl.cli"])
def test_each_module_imports_on_its_own_in_a_fresh_interpreter(module: str) -> None:
    """A cycle would show here as an ImportError of a half-initialised module."""
    code = (f"import importlib, sys; importlib.import_module({module!r}); "
            "print(sorted(m for m in ('pandas', 'numpy', 'numba', 'ccxt', 'rich') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"  # and light: heavy imports stay inside commands


def test_every_command_is_mounted_once_in_order() -> None:
    names = [name for name, _ in COMMANDS] + [name for name, _ in GROUPS]
    assert names == ["init", "check", "fmt", "compile", "graph", "explain", "backtest",
                     "sweep", "walkforward", "robustness", "diff", "serve", "lsp", "data",
                     "runs", "promote", "live", "report", "drill"]
    assert listed(["--help"]) == names


def listed(argv: list[str]) -> list[str]:
    """The command names a help screen lists, in its order (rows of its Commands panel)."""
    help_text = CliRunner().invoke(app, argv).stdout
    panel = help_text[help_text.index("Commands"):]
    return re.findall(r"^\W+([a-z_]+) {2,}\S", panel, re.M)


@pytest.mark.parametrize(("group", "commands"), [
    ("data", ["import", "fetch", "synth", "list", "check"]),
    ("runs", ["list", "show", "compare", "rerun", "export"]),
    ("promote", ["create", "approve", "status", "check"]),
    ("live", ["run", "arm", "kill", "reset", "status", "health", "orders", "portfolio",
              "verify", "note"]),
    ("report", ["live"]),
    ("drill", ["list", "stale_feed", "risk_violation", "pnl_divergence", "sink_down",
               "exchange_outage", "kill_switch", "all"]),
])
def test_groups_have_their_commands(group: str, commands: list[str]) -> None:
    assert listed([group, "--help"]) == commands


def test_python_m_and_the_console_script_reach_the_same_main() -> None:
    from peakdsl import __version__

    proc = subprocess.run([sys.executable, "-m", "peakdsl.cli", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout) == (0, f"peak {__version__}\n")
    script = next(e for e in entry_points(group="console_scripts") if e.name == "peak")
    assert script.value == "peakdsl.cli:main"
    assert script.load() is peakdsl.cli.main
