"""`peak drill`: rehearse an incident on a scratch deployment and check peak's reaction.

* ``list``: the drills, what each stages and the alert codes its runbook promises;
* ``SCENARIO`` (one command per drill of ``peakdsl.drill.catalog``) and ``all``: run it in
  a throw-away project on the loopback exchange (``peakdsl.drill.run``), print each check,
  append the outcome to the drill log — ``drills/LOG.md`` (``--log``) and the registry
  (``peak runs list --kind drill``).

Exit codes: 0 every check held, 1 a drill failed, 2 usage (an unknown drill is U008). Only
the catalog is imported here: a drill's machinery loads when one runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..drill.catalog import ALL, CATALOG, NAMES
from .options import JsonOpt, RootOpt, output_file, usage
from .root import EXIT_OK, EXIT_SPEC, guarded, write_json

if TYPE_CHECKING:
    from ..drill.model import DrillOutcome

drill_app = typer.Typer(no_args_is_help=True, help="Rehearse incidents on a scratch "
                        "deployment and check the reaction its runbook promises.")



def log_file(value: Path | None) -> Path | None:
    """``--log``: a ``.md`` file that can be written (U005, U006, U007 otherwise)."""
    if value is not None and value.suffix.lower() != ".md":
        raise usage("--log", f"--log {value}: use a .md file", "the drill log is Markdown")
    return output_file("--log")(value)


LogOpt = Annotated[Path | None, typer.Option(
    "--log", help="the Markdown drill log to append to [default: drills/LOG.md]",
    callback=log_file, metavar="FILE")]


@drill_app.command("list")
@guarded
def list_cmd(as_json: JsonOpt = False) -> None:
    """The drills: the incident each stages and the alert codes its runbook promises."""
    rows = [{"name": e.name, "title": e.title, "codes": list(e.codes), "mode": e.mode}
            for e in CATALOG]
    if as_json:
        write_json({"drills": rows})
    else:
        for row in rows:
            typer.echo(f"{row['name']:<16} {', '.join(row['codes']):<11} {row['mode']:<8} "
                       f"{row['title']}")
    raise typer.Exit(EXIT_OK)


def _project(root: Path | None) -> Path:
    from ..lang.project import find_root

    return root.resolve() if root is not None else find_root(Path.cwd())


def run_drills(names: Sequence[str], as_json: bool, log: Path | None,
               root: Path | None) -> None:
    """Run ``names`` in turn, log each outcome, print, exit 0 only if all passed."""
    from ..drill.log import LOG, log_outcome
    from ..drill.run import run_drill

    project = _project(root)
    markdown = log if log is not None else project / LOG
    done: list[tuple[DrillOutcome, str]] = []
    for name in names:
        outcome = run_drill(name)
        run_id = log_outcome(project, outcome, markdown)
        done.append((outcome, run_id))
        if not as_json:
            _print(outcome, run_id)
    passed = all(o.passed for o, _ in done)
    if as_json:
        write_json({"passed": passed, "log": str(markdown),
                    "drills": [{**o.model_dump(mode="json"), "run_id": r} for o, r in done]})
    else:
        typer.echo(f"drill log: {markdown}")
    raise typer.Exit(EXIT_OK if passed else EXIT_SPEC)


def _print(outcome: DrillOutcome, run_id: str) -> None:
    verdict = "passed" if outcome.passed else "FAILED"
    typer.echo(f"drill {outcome.scenario} — {verdict} in "
               f"{outcome.timings.get('total_s', 0.0):.1f} s: {outcome.title}")
    for c in outcome.checks:
        mark = "ok  " if c.passed else "FAIL"
        typer.echo(f"  {mark}  {c.name:<26} {c.observed}")
        if not c.passed:
            typer.echo(f"        {'':<26} expected: {c.expected}")
    logged = ", ".join(f"{k} ×{v}" for k, v in outcome.alerts_logged.items()) or "none"
    delivered = ", ".join(f"{k} ×{v}" for k, v in outcome.alerts_delivered.items()) or "none"
    typer.echo(f"  alerts logged: {logged}; delivered: {delivered}; registry run {run_id}")


def _command(names: Sequence[str]) -> Callable[..., Any]:
    def command(as_json: JsonOpt = False, log: LogOpt = None, root: RootOpt = None) -> None:
        run_drills(names, as_json, log, root)
    return command


for _entry in CATALOG:
    drill_app.command(_entry.name, help=f"Drill: {_entry.title} (runbooks "
                      f"{', '.join(_entry.codes)}).")(guarded(_command([_entry.name])))
drill_app.command(ALL, help="Run every drill in turn.")(guarded(_command(NAMES)))

__all__ = ["drill_app", "run_drills"]
