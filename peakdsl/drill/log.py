"""The drill log: every drill's outcome in the registry and in a Markdown file people read.

* **Markdown** (default ``drills/LOG.md`` under the project root): one section per drill,
  appended — the file is read, the section added, the whole written to a temporary sibling
  and renamed over it (``atomic.write_atomic``), under an exclusive lock on a sibling
  ``.lock`` file so two drills finishing together both land. A reader never sees half a
  section; a drill log is evidence, and evidence is append-only.
* **Registry**: a run of kind ``drill`` (``peak runs list --kind drill``) whose spec is the
  scenario, with ``passed``, the check counts and the duration as metrics, the timings, the
  whole outcome as its summary and the Markdown file as its artifact. It is written after
  the Markdown, as every command records after its outputs.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .model import DrillOutcome

LOG = Path("drills") / "LOG.md"
HEADER = ("# Drill log\n\nOne section per `peak drill` run, oldest first: the incident, each "
          "reaction its runbook (docs/runbooks.md) promises, what was observed.\n")


def cell(text: str) -> str:
    """Text fit for a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def section(outcome: DrillOutcome) -> str:
    """The Markdown section of one outcome."""
    from ..live.alert_codes import ALERT_CODES

    verdict = "passed" if outcome.passed else "FAILED"
    codes = ", ".join(f"{c} {ALERT_CODES[c].name}" if c in ALERT_CODES else c
                      for c in outcome.codes)
    lines = [f"\n## {outcome.started} {outcome.scenario} — {verdict}\n",
             f"{outcome.title[0].upper()}{outcome.title[1:]}. Runbooks (docs/runbooks.md): "
             f"{codes}.\n",
             "| check | expected | observed | |", "|---|---|---|---|"]
    lines += [f"| {cell(c.name)} | {cell(c.expected)} | {cell(c.observed)} | "
              f"{'ok' if c.passed else '**FAIL**'} |" for c in outcome.checks]
    logged = ", ".join(f"{k} ×{v}" for k, v in outcome.alerts_logged.items()) or "none"
    delivered = ", ".join(f"{k} ×{v}" for k, v in outcome.alerts_delivered.items()) or "none"
    lines += ["", f"Alerts logged: {logged}; delivered: {delivered}. "
              f"Ran {outcome.started} → {outcome.ended}, "
              f"{outcome.timings.get('total_s', 0.0):.1f} s."]
    if outcome.error:
        lines.append(f"\nThe drill did not run to its end: {cell(outcome.error)}")
    return "\n".join(lines) + "\n"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def append_markdown(path: Path, outcome: DrillOutcome) -> None:
    """Append ``outcome``'s section to ``path`` (module docstring)."""
    from ..atomic import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        text = path.read_text("utf-8") if path.exists() else HEADER
        write_atomic(path, (text + section(outcome)).encode("utf-8"))


def record(root: Path, outcome: DrillOutcome, markdown: Path) -> str:
    """The registry's ``drill`` run of ``outcome``; its id."""
    from .. import __version__
    from ..registry.recording import open_registry, record_run
    from ..registry.records import RunOutcome, RunStart

    start = RunStart(kind="drill", spec=outcome.scenario, inputs={},
                     engine_version=__version__,
                     settings={"codes": outcome.codes, "title": outcome.title})
    failed = len(outcome.failed_checks)
    result = RunOutcome(
        metrics={"passed": 1.0 if outcome.passed else 0.0, "checks": len(outcome.checks),
                 "checks_failed": failed, "duration_s": outcome.timings.get("total_s", 0.0),
                 **{k: v for k, v in outcome.timings.items() if not k.endswith("_s")}},
        timing={k: v for k, v in outcome.timings.items() if k.endswith("_s")},  # seconds
        warnings=[c.name for c in outcome.failed_checks],
        artifacts={"log": markdown}, summary=outcome.model_dump(mode="json"))
    with open_registry(root) as registry:
        return record_run(registry, start, result)


def log_outcome(root: Path, outcome: DrillOutcome, markdown: Path | None = None) -> str:
    """Both logs: the Markdown section, then the registry run (its id)."""
    path = markdown if markdown is not None else root / LOG
    append_markdown(path, outcome)
    return record(root, outcome, path)


__all__ = ["HEADER", "LOG", "append_markdown", "log_outcome", "record", "section"]
