"""Diagnostics as data: every pass returns them, only the CLI edge renders them.

Codes are stable and never reused; each belongs to a stage (P syntax, N names and
references, T types and units, L look-ahead, K risk consistency, C portfolio
composition, G promotion criteria, W lints, D market data, R review and promotion, U usage,
I internal, E live execution). ``CODES`` is the
registry that ``docs/diagnostics.md`` must mirror (a test enforces it).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .source import NO_SPAN, Span


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Label:
    """A secondary location that explains the primary one."""

    path: str
    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Fix:
    """A machine-applicable fix: the text of ``span`` (in the diagnostic's file) becomes
    ``replacement``. Carried as data so that `peak check --fix`, an editor's quick fix and
    the rendered help all apply or show the same edit."""

    span: Span
    replacement: str

    def apply(self, text: str) -> str:
        return text[: self.span.start] + self.replacement + text[self.span.end :]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    path: str
    span: Span = NO_SPAN
    help: str = ""
    labels: tuple[Label, ...] = ()
    fix: Fix | None = None

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.span.line, self.span.col, self.code, self.message)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


CODES: dict[str, str] = {
    # P — reading and parsing
    "P001": "syntax error",
    "P002": "unexpected character",
    "P003": "unexpected end of file",
    "P004": "file too large",
    "P005": "nesting too deep",
    "P006": "file is not valid UTF-8 text",
    "P007": "identifier too long",
    "P008": "number out of range",
    "P009": "comparisons do not chain",
    "P010": "`=` outside a declaration",
    "P011": "function name from another library",
    "P012": "`crosses` is not an operator",
    "P013": "`if` inside an operator needs parentheses",
    "P014": "boolean literal not in lower case",
    "P015": "duration in another tool's notation",
    # N — names, keys and references
    "N001": "unknown name",
    "N002": "unknown built-in function",
    "N003": "unknown setting",
    "N004": "duplicate declaration in project",
    "N005": "declaration name does not match file name",
    "N006": "unresolved reference",
    "N007": "reference to the wrong kind of declaration",
    "N008": "reference cycle",
    "N009": "duplicate definition",
    "N010": "unknown metric",
    "N011": "missing required setting",
    "N012": "setting given twice",
    "N013": "statement not allowed in this kind of declaration",
    "N014": "unknown parameter in override",
    "N015": "unknown value",
    "N016": "use before definition",
    "N017": "not an environment variable name",
    "N018": "a let refers to itself",
    "N019": "the position read outside an entry or exit rule",
    # T — types and units
    "T001": "type mismatch",
    "T002": "unit mismatch",
    "T003": "wrong number of arguments",
    "T004": "window must be a positive integer",
    "T005": "parameter default outside its range",
    "T006": "parameter default not on its step",
    "T007": "invalid parameter range",
    "T008": "defaults violate a require constraint",
    "T009": "value out of bounds",
    "T010": "override outside the parameter's range",
    "T011": "unknown parameter type",
    "T012": "division by zero",
    "T013": "constant expression is not a number",
    "T016": "misplaced mode argument",
    "T017": "a state's lag is not a literal from 1 bar",
    "T018": "a state's past used where a whole series is needed",
    "T019": "the position used where a whole series is needed",
    "T020": "a timeframe the strategy's candles cannot give",
    "T021": "something that cannot be computed on another timeframe or market",
    # L — look-ahead and warm-up
    "L001": "look-ahead: negative lag",
    "L002": "lag must be a non-negative integer",
    "L003": "look-ahead: construct reads future bars",
    "L004": "a state reads its own value at the bar it defines",
    # K — risk limit consistency
    "K001": "symbol exposure above total exposure",
    "K002": "non-positive daily loss limit",
    "K003": "limit must be positive",
    # C — portfolio composition
    "C001": "portfolio weights do not sum to 100 %",
    "C002": "component listed twice",
    "C003": "component weight must be positive",
    "C004": "currencies of a portfolio do not match",
    # G — promotion criteria
    "G001": "criterion outside the metric's range",
    "G002": "contradictory criteria",
    # W — lints (warnings)
    "W001": "unused parameter",
    "W002": "unused let binding",
    "W003": "optimistic fill at the signal bar's close",
    "W004": "exit rule without a matching entry",
    "W005": "warm-up is an upper bound",
    "W006": "rule can never be true",
    "W007": "rule is constant",
    "W008": "data contradicts the annualisation calendar",
    # D — market data
    "D001": "unreadable data file",
    "D002": "missing or ambiguous column",
    "D003": "bad timestamp",
    "D004": "missing value",
    "D005": "non-positive price",
    "D006": "inconsistent candle",
    "D007": "negative volume",
    "D008": "duplicate timestamp",
    "D009": "gap in data",
    "D010": "bar spacing does not match the timeframe",
    "D011": "exchange request failed",
    "D012": "unknown exchange or market",
    "D013": "cached dataset failed verification",
    "D014": "cached dataset has no checksum",
    "D015": "portfolio component has no data in the common window",
    "D016": "portfolio component's bars are off their timeframe",
    "D017": "portfolio components mix real and synthetic data",
    "D018": "no cached data for the market: running on the synthetic demo",
    "D019": "resampled bars built over gaps in the base timeframe",
    "D020": "data file names another market",
    "D021": "candles without volume, or with the close only",
    "D022": "strategy reads volume the candles do not have",
    "D023": "a market the strategy reads has no candles",
    # R — review and promotion
    "R001": "promotion gate not met",
    "R002": "no evidence run for a promotion criterion",
    "R003": "no kind of run computes a gate's metric for this spec",
    "R004": "promotion chain broken",
    "R005": "no promotion record applies",
    "R006": "live promotion without a testnet record",
    "R007": "a rerun does not reproduce the recorded run",
    # U — usage
    "U001": "path not found",
    "U002": "no spec files found",
    "U003": "wrong kind of spec for this command",
    "U004": "run not found",
    "U005": "invalid option value",
    "U006": "cannot write a file or folder",
    "U007": "wrong kind of path",
    "U008": "malformed command line",
    "U009": "run registry cannot be used",
    "U010": "unknown git revision",
    "U011": "not a git repository",
    "U012": "a reviewer cannot approve their own record",
    "U013": "promotion record not found",
    "U014": "file exists; peak init does not overwrite",
    "U015": "run has no command line to rerun",
    # I — internal
    "I001": "internal compiler error",
    # E — live execution: gates, venues, state
    "E001": "invalid live option value",
    "E002": "unknown exchange",
    "E003": "malformed endpoint URL",
    "E004": "endpoint not recognised",
    "E005": "endpoint of the wrong mode",
    "E006": "exchange has no testnet",
    "E007": "no promotion record for this mode",
    "E008": "credentials missing",
    "E009": "malformed credentials",
    "E010": "the same API key for testnet and live",
    "E011": "arming token required",
    "E012": "invalid arming token",
    "E013": "arming token expired",
    "E014": "arming token for another artifact",
    "E015": "arming token for another account",
    "E016": "arming token for another mode",
    "E017": "arming key unusable",
    "E018": "live gate failed",
    "E019": "arming token already used",
    "E020": "live state store is in use by another process",
    "E021": "live state store is corrupt or unreadable",
    "E022": "live state store has an unknown schema version",
    "E023": "live state store not found",
    "E024": "live state store cannot be written",
    "E025": "record conflicts with the live state store",
    "E026": "fill does not match a known order",
    "E027": "fee in a currency the store cannot value",
    "E030": "unknown market on the exchange",
    "E031": "exchange refused the credentials",
    "E032": "exchange unreachable",
    "E033": "order rejected by the exchange",
    "E034": "order not found on the exchange",
    "E035": "unexpected exchange error",
    "E036": "order quantity below the market minimum",
    "E040": "reconciliation with the exchange failed",
    "E041": "kill switch engaged",
    "E042": "a spot account cannot sell short",
    "E043": "a replay cannot trade on a real exchange",
    "E044": "an alert sink cannot be used (its URL variable is unset or unusable)",
    "E045": "a live session cannot feed another market the spec reads",
}

WARNING_CODES = frozenset({"W001", "W002", "W003", "W004", "W005", "W006", "W007", "W008",
                           "D008", "D009", "D018", "D019", "D020", "D021"})


def diag(code: str, message: str, path: str, span: Span = NO_SPAN, help: str = "",
         labels: Iterable[Label] = (), fix: Fix | None = None) -> Diagnostic:
    """Build a diagnostic whose severity follows from its registered code."""
    if code not in CODES:
        raise KeyError(f"unregistered diagnostic code {code}")
    severity = Severity.WARNING if code in WARNING_CODES else Severity.ERROR
    return Diagnostic(code, severity, message, path, span, help, tuple(labels), fix)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A 'did you mean' help line, or '' when nothing is close enough."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return ""
    return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by file, position and code, duplicates removed."""
    return sorted(set(diags), key=lambda d: d.sort_key)


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diags)
