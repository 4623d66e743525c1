"""The mode gate: may this spec trade in this mode, on this endpoint, with these keys, now?

``authorize`` is asked once, before a session starts, and answers with an ``Authorization``
(what the session may use) or raises ``Refused`` with coded diagnostics (E001–E018). It fails
closed: every doubt is a refusal, and so is any exception raised inside it (E018).

What each mode needs:

====================  =====================  ===================  ===========  ==================
mode                  promotion record       arming token         credentials  endpoint
====================  =====================  ===================  ===========  ==================
paper                 —                      none may be given    never read   live, testnet,
                                                                               loopback
testnet               testnet (or approved   optional; verified   testnet      testnet, loopback
                      live) for this exact   when given
                      artifact
live                  approved live record   required, for this   live         live, loopback
                      for this exact         artifact, account
                      artifact               and mode
====================  =====================  ===================  ===========  ==================

The checks run in three steps, so a refusal costs as little as possible and says everything it
can: first everything that needs no spec (options, endpoint, credentials, the token's form,
mode, account and validity), all reported together; then the promotion record
(``promote.flow.check``, which compiles the spec); then the token's binding to the artifact
that record is about, and its signature.

``authorize`` returns the arming token's digest; the runner marks it used in its store
(single use) and refuses a used one with ``arming.already_used`` (E019).

The helpers (``secrets``, ``endpoints``, ``arming``) import ``Mode`` from here, so this module
imports them inside functions only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar, get_args

from ..lang.diagnostics import Diagnostic, diag
from ..lang.project import find_root

if TYPE_CHECKING:
    from ..promote.records import PromotionRecord
    from .endpoints import Endpoint
    from .secrets import Credentials

Mode = Literal["paper", "testnet", "live"]
MODES: tuple[Mode, ...] = get_args(Mode)
KeyedMode = Literal["testnet", "live"]  # the modes that trade on an exchange with keys
KEYED_MODES: tuple[KeyedMode, ...] = get_args(KeyedMode)

USAGE_CODES = frozenset({"E001"})  # bad options: exit 2
INTERNAL_CODES = frozenset({"E018"})  # the gate itself failed: exit 2, like I001
EXIT_REFUSED, EXIT_USAGE = 1, 2

T = TypeVar("T")


class Refused(Exception):
    """A refusal of the live gate or one of its parts, with its coded diagnostics."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(dict.fromkeys(diagnostics))  # in order, without repeats
        super().__init__("; ".join(f"{d.code} {d.message}" for d in self.diagnostics))

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]

    @property
    def exit_code(self) -> int:
        """2 when every error is a usage (E001, U…) or internal (E018, I…) one, else 1."""
        errors = [d.code for d in self.diagnostics if d.is_error]
        usage = USAGE_CODES | INTERNAL_CODES
        return EXIT_USAGE if errors and all(c in usage or c[0] in "UI" for c in errors) \
            else EXIT_REFUSED


def refuse(code: str, message: str, where: str, help: str) -> Refused:
    """A one-diagnostic refusal (every E refusal says how to fix it)."""
    return Refused([diag(code, message, where, help=help)])


def keyed_mode(mode: str, where: str = "--mode") -> KeyedMode:
    """``mode`` as one that trades with keys (testnet, live); E001 for anything else."""
    for known in KEYED_MODES:
        if mode == known:
            return known
    raise refuse("E001", f"{where} {mode}: this needs testnet or live", where,
                 help="credentials and arming tokens exist for testnet and live only")


def valid_mode(mode: str) -> Mode:
    """``mode`` as a ``Mode``; E001 for anything else."""
    for known in MODES:
        if mode == known:
            return known
    raise refuse("E001", f"--mode {mode}: one of {', '.join(MODES)}", "--mode",
                 help="paper needs nothing; testnet a promotion record; live an approved "
                 "record and an arming token")


@dataclass(frozen=True)
class GateRequest:
    """What a session asks to do. ``env`` (default ``os.environ``) is read only for
    testnet and live credentials, and never shown."""

    spec: str
    mode: Mode
    now: datetime
    root: Path | None = None
    account: str = "default"
    exchange: str = "binance"
    endpoint: str | None = None  # a base URL overriding ccxt's own (loopback in tests)
    arm_token: str | None = field(default=None, repr=False)
    env: Mapping[str, str] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Authorization:
    """What the session may use: the endpoint, the credentials (testnet, live), the record
    it trades under and the arming token's digest to mark used (single use)."""

    mode: Mode
    account: str
    endpoint: Endpoint
    credentials: Credentials | None = None
    record: PromotionRecord | None = None
    token_digest: str | None = None

    @property
    def artifact_sha256(self) -> str | None:
        return self.record.artifact_sha256 if self.record else None


def authorize(request: GateRequest) -> Authorization:
    """Authorize ``request`` or raise ``Refused`` (module docstring); never passes on an
    exception."""
    try:
        return _authorize(request)
    except Refused:
        raise
    except Exception as exc:  # fail closed: a gate that breaks refuses
        raise Refused(_internal(exc)) from None


def _internal(exc: Exception) -> list[Diagnostic]:
    """E018 naming the exception (its text redacted: it may quote a loaded secret)."""
    from .secrets import REDACTOR

    said = REDACTOR.redact(str(exc))[:200]
    return [diag("E018", f"the live gate failed: {type(exc).__name__}"
                 + (f": {said}" if said else ""), "<peak>",
                 help="nothing was authorized; fix what the message names (a file, the "
                 "registry), or report it as a bug in peak")]


def _authorize(request: GateRequest) -> Authorization:
    mode = valid_mode(request.mode)
    endpoint, credentials = _static(request, mode)
    if mode == "paper":
        return Authorization(mode, request.account, endpoint)
    root = _project(request)
    record = promotion_record(request.spec, mode, root)
    digest = _token(request, mode, root, record.artifact_sha256)
    return Authorization(mode, request.account, endpoint, credentials, record, digest)


def _static(request: GateRequest,
            mode: Mode) -> tuple[Endpoint, Credentials | None]:
    """Everything that needs no spec, every refusal reported together."""
    from . import arming, endpoints, secrets

    problems: list[Diagnostic] = []
    collect = _collector(problems)
    collect(lambda: secrets.valid_account(request.account))
    endpoint = collect(lambda: endpoints.resolve_endpoint(request.exchange, mode,
                                                          request.endpoint))
    credentials = None
    if mode != "paper":  # paper never reads the environment
        credentials = collect(lambda: secrets.load_credentials(
            keyed_mode(mode), request.account, request.env))
    collect(lambda: arming.precheck(request.arm_token, mode, request.account, request.now))
    if problems or endpoint is None:
        raise Refused(problems)
    return endpoint, credentials


def _collector(problems: list[Diagnostic]) -> Callable[[Callable[[], T]], T | None]:
    """``collect(step)``: the step's result, or None with its refusal added to ``problems``."""
    def collect(step: Callable[[], T]) -> T | None:
        try:
            return step()
        except Refused as exc:
            problems.extend(exc.diagnostics)
            return None
    return collect


def _project(request: GateRequest) -> Path:
    return find_root(request.root or Path(request.spec).resolve().parent)


def promotion_record(spec: str, mode: KeyedMode, root: Path) -> PromotionRecord:
    """The promotion record ``spec`` trades under in ``mode`` (``promote.flow.check``); E007
    when none applies, with the check's reason, or the spec's own diagnostics."""
    from ..api import SpecError
    from ..lang.project import UsageError
    from ..promote.flow import check

    needs = "an approved live record" if mode == "live" else "a testnet record"
    fix = (f"promote this exact version: peak promote {spec} --gate GATE --stage {mode}"
           + (", then have another person approve it (peak promote approve RECORD "
              "--reviewer NAME)" if mode == "live" else ""))
    try:
        answer = check(spec, mode, root=root)
    except SpecError as exc:
        raise Refused([diag("E007", f"{spec} may not run at {mode}: the spec has errors, so "
                            f"no promotion record can apply", "<peak>",
                            help=f"peak check {spec}"),
                       *(d for d in exc.diagnostics if d.is_error)]) from None
    except UsageError as exc:
        raise Refused([diag("E007", f"{spec} may not run at {mode}: {exc.diagnostic.message}",
                            "<peak>", help="give the strategy or portfolio spec to trade"),
                       exc.diagnostic]) from None
    if not answer.ok or answer.record is None:
        raise refuse("E007", f"{spec} may not run at {mode} (it needs {needs}): "
                     f"{answer.reason}", "<peak>", help=fix)
    return answer.record


def _token(request: GateRequest, mode: KeyedMode, root: Path,
           artifact_sha256: str) -> str | None:
    """The digest of a verified token (None: none given, which only testnet allows)."""
    from . import arming

    if request.arm_token is None:
        return None
    return arming.verify(root, request.arm_token, artifact_sha256, request.account, mode,
                         request.now)


def arm_spec(spec: str, mode: str, account: str, *, now: datetime,
             ttl: timedelta | None = None, root: Path | None = None) -> str:
    """``peak live arm SPEC``: a token for the artifact of ``spec`` as it is now — only when
    a promotion record lets it run in ``mode`` (E007 otherwise: a token the gate would refuse
    anyway is never printed)."""
    from . import arming

    chosen = keyed_mode(mode)
    project = find_root(root or Path(spec).resolve().parent)
    record = promotion_record(spec, chosen, project)
    return arming.arm(project, record.artifact_sha256, account, chosen,
                      arming.DEFAULT_TTL if ttl is None else ttl, now=now)


def artifact_of(spec: str, root: Path | None = None) -> str:
    """The artifact sha256 that promotion records, and so arming tokens, bind to.

    ``SpecError`` / ``UsageError`` as ``subject_plan`` raises them (``peak live arm`` renders
    them)."""
    from ..lang.project import find_root
    from ..promote.evidence import Subject
    from ..robustness.subject import subject_plan

    project = find_root(root or Path(spec).resolve().parent)
    plan, _ = subject_plan(spec, root=project)
    return Subject.of(plan).artifact_sha256


__all__ = ["KEYED_MODES", "MODES", "Authorization", "GateRequest", "KeyedMode", "Mode",
           "Refused", "arm_spec", "artifact_of", "authorize", "keyed_mode", "promotion_record",
           "refuse", "valid_mode"]
