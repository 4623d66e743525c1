"""Files named on the command line (``--report``, ``--trades``): checked before a run, written
atomically after it, every failure a coded diagnostic on the option.

Checking first matters: a sweep or a backtest that runs for minutes and then cannot write its
report has wasted the time, and a run must not be recorded when what it was asked to write is
missing. The check is a real probe (a temporary file created and removed in the folder that
will hold the output), because permission bits say nothing for root, ``/proc`` or a read-only
mount. Missing folders are created when the output is written, as ``--report reports/x.html``
promises.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from .failures import os_failure
from .lang.diagnostics import diag
from .lang.project import UsageError, display_path

EXAMPLE_NAMES = {"--report": "report.html", "--trades": "trades.csv"}


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` that exists (the folder a write would start from)."""
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path(path.absolute().anchor)


def _wrong_kind(option: str, path: Path, why: str, help: str) -> UsageError:
    return UsageError(diag("U007", f"{option} {display_path(path)}: {why}", option, help=help))


def check_output(path: Path, option: str) -> None:
    """Refuse an output path that cannot hold a regular file, before anything runs.

    A folder or a device (``/dev/null``: replacing it would break the system) is U007; a
    path whose folder is a file is U007; a folder that refuses a new file is U006.
    """
    if path.is_dir():
        example = display_path(path / EXAMPLE_NAMES.get(option, "out"))
        raise _wrong_kind(option, path, "is a folder", f"name a file in it, e.g. {example}")
    if path.exists() and not path.is_file():
        raise _wrong_kind(option, path, "is not a regular file (a device, pipe or socket)",
                          "give the path of a regular file")
    folder = _existing_ancestor(path)
    if not folder.is_dir():
        raise _wrong_kind(option, path, f"{display_path(folder)} is a file, not a folder",
                          "give a path whose folders are folders")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".peak-probe."):
            pass
    except OSError as exc:
        raise UsageError(os_failure(exc, option, display_path(path))) from None


def check_distinct(outputs: Sequence[tuple[str, Path | None]], inputs: Sequence[Path]) -> None:
    """U005 when two outputs are one file, or an output would overwrite an input (the spec,
    the ``--data`` file): the run would destroy what it was run from."""
    seen: dict[Path, str] = {path.resolve(): "an input" for path in inputs}
    for option, path in outputs:
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise UsageError(diag("U005", f"{option} {display_path(path)} is also "
                                  f"{seen[key]} of this run", option,
                                  help="write each output to its own new file"))
        seen[key] = f"the file of {option}"


def write_output(path: Path, data: bytes, option: str) -> None:
    """Write ``data`` atomically; an OS refusal (full disk, permissions) is U006/U007."""
    from .atomic import write_atomic

    try:
        write_atomic(path, data)
    except OSError as exc:
        raise UsageError(os_failure(exc, option, display_path(path))) from None

