"""`peak init [DIR]`: a new project folder that `peak check`, `compile` and `backtest` accept
at once.

A project is the folder holding ``specs/`` (``lang.project.find_root``), so a fresh folder
needs that tree and one spec to run; the rest is what a new user would otherwise have to
learn first: a README that says what goes where and what to type next, and a ``.gitignore``
for ``.peak/`` (the data cache and run registry: local, large, rebuilt by commands).
``compiled/`` is *not* ignored: DESIGN.md §2 commits it so reviewers see what a spec change
compiles to, and CI keeps it current (``peak compile --check``). It is not written here
either: the first ``peak compile`` creates it.

The files are templates, never merged into existing ones: any file that already exists is a
U014 diagnostic and nothing at all is written. There is no ``--force`` — overwriting a spec or
a README with a template only ever loses work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .atomic import write_atomic
from .lang.diagnostics import Diagnostic, diag, has_errors
from .lang.project import display_path

EXAMPLE = "ema_trend"
EXAMPLE_PATH = f"specs/strategies/{EXAMPLE}.peak"

EXAMPLE_SPEC = f"""\
# Your first strategy. Edit it, then: peak check, peak backtest {EXAMPLE_PATH}
# With no candles imported it runs on peak's synthetic demo market (and says so);
# `peak data import FILE.csv --market BTC/USDT` puts real candles in the cache.
strategy {EXAMPLE} {{
    description "Long while the fast EMA is above the slow one, with a 5% stop"
    market BTC/USDT
    timeframe 1h

    param fast: int = 20 in 5..50 step 5
    param slow: int = 50 in 20..200 step 10
    require fast < slow

    let fast_ma = ema(close, fast)
    let slow_ma = ema(close, slow)

    entry long when crossover(fast_ma, slow_ma)
    exit long when crossunder(fast_ma, slow_ma)

    size 25% of equity
    stop_loss 5%
    execution {{
        fill next_open
        fees 10bps
        slippage 5bps
    }}
}}
"""

README = """\
# {name}

A peak project: strategies, portfolios and risk limits as `.peak` specs.

| path | what |
|---|---|
| `specs/strategies/` | strategies, one per file, each named as its file (`{example}.peak`) |
| `specs/portfolios/` | portfolios: strategies with weights on one account |
| `specs/risk/` | risk limits and promotion criteria |
| `compiled/` | what `peak compile` writes; commit it, reviewers read it |
| `.peak/` | the candle cache and the run registry (local; git-ignored) |

```bash
peak check                                        # names, types, units, look-ahead
peak compile                                      # writes compiled/
peak backtest {example_path}     # on the synthetic demo market
peak data import candles.csv --market BTC/USDT    # real candles into the cache
peak backtest {example_path} --report report.html
peak runs list
```
"""

GITIGNORE = """\
# peak's candle cache and run registry: local and rebuilt by commands.
# compiled/ is not ignored: it is committed so reviewers see what specs compile to.
.peak/
"""


def templates(name: str) -> dict[str, str]:
    """Every file ``peak init`` writes (relative path → text), for a project called ``name``.
    Empty spec folders hold a ``.gitkeep`` so that git keeps them."""
    return {
        EXAMPLE_PATH: EXAMPLE_SPEC,
        "specs/portfolios/.gitkeep": "",
        "specs/risk/.gitkeep": "",
        "README.md": README.format(name=name, example=EXAMPLE, example_path=EXAMPLE_PATH),
        ".gitignore": GITIGNORE,
    }


@dataclass(frozen=True)
class InitResult:
    """What ``init_project`` did: the folder, the files written (relative, in order) and the
    diagnostics (U014 per existing file, U007 for a folder that is a file; then nothing was
    written)."""

    root: Path
    written: tuple[str, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def init_project(folder: Path) -> InitResult:
    """Create the project in ``folder`` (made if missing) or change nothing and say why.
    OS failures (a read-only parent) propagate as ``OSError`` for the CLI edge to report."""
    folder = folder.absolute()
    files = templates(folder.resolve().name or "peak project")
    problems = _conflicts(folder, files)
    if problems:
        return InitResult(folder, (), problems)
    for relative, text in files.items():
        write_atomic(folder / relative, text.encode("utf-8"))
    return InitResult(folder, tuple(files), ())


def _conflicts(folder: Path, files: dict[str, str]) -> tuple[Diagnostic, ...]:
    """U007 for each folder of the tree (``folder`` itself, ``specs/``, …) that is a file;
    else U014 for each template whose path is taken (by a file, a folder or a dangling link
    alike). Checked before anything is written, so a refusal leaves no half project."""
    folders = sorted({folder, *(p for rel in files for p in (folder / rel).parents
                                if p.is_relative_to(folder))})
    files_in_the_way = [f for f in folders if f.exists() and not f.is_dir()]
    if files_in_the_way:
        return tuple(diag("U007", f"{display_path(f)} is a file, not a folder",
                          display_path(f), help="move it away, or initialise another folder")
                     for f in files_in_the_way)
    taken = [folder / rel for rel in files if (folder / rel).is_symlink()
             or (folder / rel).exists()]
    return tuple(diag("U014", f"{display_path(path)} exists; peak init does not overwrite it",
                      display_path(path),
                      help="move or rename it and run peak init again, or initialise "
                           "another folder")
                 for path in taken)
