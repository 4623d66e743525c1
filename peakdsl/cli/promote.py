"""`peak promote`: gate a spec and record the decision; `approve`, `status`, `check`.

``peak promote SPEC --gate live_gate --stage testnet`` is the default command (``create``);
the library is ``peakdsl.promote.flow``. Exit codes: 0 recorded / approved / the check says
yes; 1 a gate not met, missing evidence, a broken chain, a check that says no; 2 usage.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from ..metrics import format_metric
from .options import JsonOpt, SpecArg
from .root import EXIT_OK, Format, emit, exit_code, guarded, write_json

if TYPE_CHECKING:
    from ..promote.records import CriterionResult

T = TypeVar("T")


class DefaultCommand(TyperGroup):
    """`peak promote SPEC …` means `peak promote create SPEC …`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


promote_app = typer.Typer(cls=DefaultCommand, no_args_is_help=True,
                          help="Promotion records: gate, record, approve, check.")

GateOpt = Annotated[str, typer.Option("--gate", help="the promotion spec (name or file)")]
StageOpt = Annotated[str, typer.Option("--stage", help="testnet or live")]
AuthorOpt = Annotated[str | None, typer.Option(
    "--author", help="who decides [default: $PEAK_AUTHOR or the login name]")]
RunOpt = Annotated[bool, typer.Option("--run", help="produce missing evidence first")]


def _stage(stage: str) -> Any:
    from ..lang.diagnostics import diag
    from ..lang.project import UsageError
    from ..promote.records import STAGES

    if stage not in STAGES:
        raise UsageError(diag("U005", f"--stage {stage}: one of {', '.join(STAGES)}",
                              "--stage"))
    return stage


def _attempt(action: Callable[[], T], as_json: bool) -> T:
    """``action()``, its refusals (a gate not met, a spec that does not check) rendered as
    diagnostics and turned into the exit code."""
    from ..api import SpecError
    from ..promote.flow import PromotionError

    try:
        return action()
    except PromotionError as exc:
        if exc.table:
            _print_table(exc.table)
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None
    except SpecError as exc:
        emit(exc.diagnostics, Format.json if as_json else Format.text)
        raise typer.Exit(exit_code(exc.diagnostics)) from None


def _print_table(table: list[CriterionResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title="criteria", header_style="bold")
    for column in ("metric", "value", "criterion", "result", "evidence"):
        out.add_column(column)
    for t in table:
        out.add_row(t.metric, format_metric(t.metric, t.value),
                    f"{t.op} {format_metric(t.metric, t.threshold)}",
                    "pass" if t.passed else "[bold red]FAIL[/]", t.source or "—")
    Console(stderr=True, highlight=False).print(out)


@promote_app.command("create")
@guarded
def create_cmd(spec: SpecArg, gate: GateOpt = "live_gate", stage: StageOpt = "testnet",
               author: AuthorOpt = None, run: RunOpt = False,
               as_json: JsonOpt = False) -> None:
    """Gate SPEC on its evidence and record the promotion (nothing written on failure)."""
    from ..promote.flow import promote

    chosen = _stage(stage)
    done = _attempt(lambda: promote(spec, gate=gate, stage=chosen, author=author, run=run),
                    as_json)
    if as_json:
        write_json({**done.record.model_dump(mode="json"), "path": str(done.path)})
    else:
        _print_table(done.table)
        print(f"promoted {done.record.spec} to {done.record.stage}: record "
              f"{done.record.sha256[:12]} ({done.path})")
    raise typer.Exit(EXIT_OK)


@promote_app.command("approve")
@guarded
def approve_cmd(record: Annotated[str, typer.Argument(help="the record's sha256 (prefix)")],
                reviewer: Annotated[str, typer.Option("--reviewer", help="who approves")],
                as_json: JsonOpt = False) -> None:
    """Approve a live record (four eyes: not its author)."""
    from ..promote.flow import approve

    done = _attempt(lambda: approve(record, reviewer=reviewer), as_json)
    if as_json:
        write_json(done.model_dump(mode="json"))
    else:
        print(f"approved record {done.record[:12]} by {done.reviewer} "
              f"(approval {done.sha256[:12]})")
    raise typer.Exit(EXIT_OK)


@promote_app.command("status")
@guarded
def status_cmd(spec: SpecArg, gate: GateOpt = "live_gate", as_json: JsonOpt = False) -> None:
    """The chain research → testnet → live of SPEC, and why a record no longer applies."""
    from ..promote.flow import status

    st = _attempt(lambda: status(spec, gate=gate), as_json)
    if as_json:
        write_json({"spec": st.spec, "evidence": st.evidence, "problems": list(st.chain.problems),
                    "entries": [e.model_dump(mode="json") for e in st.chain.entries],
                    "applies": st.applies})
        raise typer.Exit(1 if st.chain.problems else EXIT_OK)
    print(f"{st.spec}")
    print("  research: " + (", ".join(f"{k} {v}" for k, v in sorted(st.evidence.items()))
                            or "no evidence runs for this artifact and data"))
    for entry in st.chain.entries:
        print("  " + _line(entry, st.applies))
    for problem in st.chain.problems:
        print(f"  BROKEN: {problem}")
    raise typer.Exit(1 if st.chain.problems else EXIT_OK)


def _line(entry: Any, applies: dict[str, list[str]]) -> str:
    head = f"#{entry.sequence} {entry.sha256[:12]} {entry.created_at}"
    if entry.entry == "approval":
        return f"{head} approval of {entry.record[:12]} by {entry.reviewer}"
    why = applies.get(entry.sha256, [])
    state = "applies" if not why else "no longer applies: " + "; ".join(why)
    return (f"{head} {entry.stage} by {entry.author}, gate {entry.gate}, artifact "
            f"{entry.artifact_sha256[:12]} — {state}")


@promote_app.command("check")
@guarded
def check_cmd(spec: SpecArg, stage: StageOpt = "live", as_json: JsonOpt = False) -> None:
    """May SPEC run at STAGE? Exit 0 yes, 1 no, with the reason."""
    from ..lang.diagnostics import diag
    from ..promote.flow import check

    chosen = _stage(stage)
    answer = _attempt(lambda: check(spec, chosen), as_json)
    if as_json:
        write_json({"spec": spec, "stage": stage, "ok": answer.ok, "reason": answer.reason,
                    "record": answer.record.sha256 if answer.record else None})
    elif answer.ok:
        print(f"yes: {answer.reason}")
    else:
        emit([diag("R005", f"{spec} may not run at {stage}: {answer.reason}", "<peak>",
                   help=f"peak promote status {spec} shows the chain")], Format.text,
             stream=sys.stderr)
    raise typer.Exit(EXIT_OK if answer.ok else 1)


__all__ = ["promote_app"]
