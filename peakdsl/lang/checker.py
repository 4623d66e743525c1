"""Per-declaration checks: ast.Module → CheckedSpec (+ diagnostics).

Each kind has a tuple of check functions run in order over a shared context; every
check reports all it finds, so one run shows every error in the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from . import ast
from .builtins import POSITION_SOURCES, SOURCES
from .diagnostics import Diagnostic, Label, diag, did_you_mean
from .frames import frame_problems, frames_in, timeframe_problem
from .levels import STOP_KEYS, check_level, is_level, levels_of
from .position import inside_rule, outside_rules
from .rule_lints import RuleFacts
from .scalar import ScalarError, eval_scalar
from .schema import (
    BLOCKS,
    METRICS,
    NESTED_BLOCKS,
    SETTINGS,
    SIZE_BASES,
    STATEMENT_NAMES,
    STATEMENTS,
    TIMEFRAMES,
    SettingSpec,
    Value,
)
from .source import Span
from .state import infer_state, self_uses
from .typecheck import ExprChecker, ParamInfo, Symbol
from .types import PARAM_TYPES, Ty, Unit

ItemT = TypeVar("ItemT", bound=ast.Item)


@dataclass(frozen=True, slots=True)
class CheckedSpec:
    """A declaration that passed its own checks, with what later stages need."""

    module: ast.Module
    params: tuple[ParamInfo, ...] = ()
    types: dict[int, Ty] = field(default_factory=dict, compare=False)

    @property
    def decl(self) -> ast.Decl:
        return self.module.decl

    @property
    def kind(self) -> str:
        return self.module.decl.kind

    @property
    def name(self) -> str:
        return self.module.decl.name

    @property
    def path(self) -> str:
        return self.module.path

    def settings(self) -> dict[str, ast.Setting]:
        return {i.key: i for i in self.decl.items if isinstance(i, ast.Setting)}

    def block(self, key: str) -> dict[str, ast.Setting]:
        for item in self.decl.items:
            if isinstance(item, ast.Block) and item.key == key:
                return {s.key: s for s in item.settings}
        return {}

    def items(self, kind: type[ItemT]) -> list[ItemT]:
        return [i for i in self.decl.items if isinstance(i, kind)]


class Ctx:
    """What the checks of one declaration share."""

    def __init__(self, module: ast.Module) -> None:
        self.module = module
        self.decl = module.decl
        self.path = module.path
        self.diagnostics: list[Diagnostic] = []
        self.params: dict[str, ParamInfo] = {}
        self.exprs = ExprChecker(self.path, {}, self.params)

    def error(self, code: str, message: str, span: Span, help: str = "",
              labels: Iterable[Label] = ()) -> None:
        self.diagnostics.append(diag(code, message, self.path, span, help, labels))

    def items(self, kind: type[ItemT]) -> list[ItemT]:
        return [i for i in self.decl.items if isinstance(i, kind)]


Check = Callable[[Ctx], None]


# ---------------------------------------------------------------- structure and settings


def check_statements(ctx: Ctx) -> None:
    """Each kind allows only some statements (a `component` inside a strategy is an error)."""
    allowed = STATEMENTS[ctx.decl.kind]
    for item in ctx.decl.items:
        if not isinstance(item, allowed):
            ctx.error("N013", f"{STATEMENT_NAMES[type(item)]} is not allowed in a "
                      f"{ctx.decl.kind}", item.span,
                      "allowed here: " + ", ".join(STATEMENT_NAMES[t] for t in allowed))


def check_settings(ctx: Ctx) -> None:
    """Known keys, no duplicates, values of the right type and bounds, required ones present."""
    table, blocks = SETTINGS[ctx.decl.kind], BLOCKS[ctx.decl.kind]
    _check_setting_list(ctx, ctx.items(ast.Setting), table, blocks, "")
    _check_blocks(ctx, ctx.items(ast.Block), blocks, "", f"a {ctx.decl.kind}")
    _check_required(ctx, ctx.items(ast.Setting), table, f"{ctx.decl.kind} `{ctx.decl.name}`",
                    ctx.decl.name_span)


def _check_blocks(ctx: Ctx, found: Sequence[ast.Block],
                  blocks: dict[str, dict[str, SettingSpec]], outer: str, where: str) -> None:
    """Each block known here, given once, with valid settings; its own blocks (the sinks of
    ``alerts``) checked against ``NESTED_BLOCKS`` the same way."""
    seen: set[str] = set()
    for block in found:
        path = f"{outer}.{block.key}" if outer else block.key
        if block.key not in blocks:
            ctx.error("N003", f"unknown block `{block.key}` in {where}", block.key_span,
                      did_you_mean(block.key, blocks) or _known(blocks))
            continue
        if block.key in seen:
            ctx.error("N012", f"block `{block.key}` given twice", block.key_span)
        seen.add(block.key)
        inner = NESTED_BLOCKS.get(path, {})
        _check_setting_list(ctx, list(block.settings), blocks[block.key], inner, path)
        _check_blocks(ctx, block.blocks, inner, path, f"`{path}`")
        _check_required(ctx, list(block.settings), blocks[block.key], f"`{path}`",
                        block.key_span)


def _check_required(ctx: Ctx, settings: Sequence[ast.Setting], table: dict[str, SettingSpec],
                    owner: str, span: Span) -> None:
    present = {s.key for s in settings}
    for key, spec in table.items():
        if spec.required and key not in present:
            ctx.error("N011", f"{owner} needs `{key}`", span, f"add e.g. `{spec.example}`")


def _known(keys: Iterable[str]) -> str:
    return "known here: " + ", ".join(sorted(keys)) if keys else ""


def _check_setting_list(ctx: Ctx, settings: list[ast.Setting], table: dict[str, SettingSpec],
                        blocks: dict[str, dict[str, SettingSpec]], where: str) -> None:
    seen: set[str] = set()
    for setting in settings:
        spec = table.get(setting.key)
        if spec is None:
            ctx.error("N003", f"unknown setting `{setting.key}`"
                      + (f" in `{where}`" if where else f" in a {ctx.decl.kind}"),
                      setting.key_span, _setting_help(setting.key, table, blocks, where))
            continue
        if setting.key in seen:
            ctx.error("N012", f"`{setting.key}` is given twice", setting.key_span)
        seen.add(setting.key)
        if not where and setting.key in STOP_KEYS and is_level(setting.value, ctx.params):
            continue  # an expression: ``check_levels`` checks it once the lets are known
        check_value(ctx, spec, setting.value)


def _setting_help(key: str, table: dict[str, SettingSpec],
                  blocks: dict[str, dict[str, SettingSpec]], where: str) -> str:
    for block, keys in blocks.items():
        if key in keys:
            return f"`{key}` belongs in the `{block} {{ … }}` block"
    if key in blocks:
        return f"`{key}` is a block: `{key} {{ … }}`"
    return did_you_mean(key, table) or _known(table)


def check_value(ctx: Ctx, spec: SettingSpec, value: ast.Expr) -> None:
    """A setting's value against its table entry."""
    if spec.param_ok and isinstance(value, ast.Name):
        _check_param_value(ctx, spec, value)
        return
    checker = VALUE_CHECKS[spec.value]
    number = checker(ctx, spec, value)
    if number is not None:
        _check_bounds(ctx, spec, number, value.span)


def _check_param_value(ctx: Ctx, spec: SettingSpec, value: ast.Name) -> None:
    info = ctx.params.get(value.id)
    unit = Unit.PERCENT if spec.value is Value.PERCENT else Unit.BPS
    if info is None:
        ctx.error("N001", f"unknown param `{value.id}`", value.span,
                  did_you_mean(value.id, ctx.params) or f"`{spec.key}` takes a literal or a param")
        return
    ctx.exprs.used.add(value.id)
    if info.unit is not unit:
        ctx.error("T001", f"`{spec.key}` needs {Ty(unit, False).describe()}; param "
                  f"`{value.id}` is {Ty(info.unit, False).describe()}", value.span)
        return
    for bound in (info.low, info.high):
        _check_bounds(ctx, spec, bound, value.span, f" (param `{value.id}` range)")


def _check_bounds(ctx: Ctx, spec: SettingSpec, number: float, span: Span,
                  suffix: str = "") -> None:
    low_ok = spec.low is None or number > spec.low
    high_ok = spec.high is None or number <= spec.high
    if not (low_ok and high_ok):
        ctx.error("T009", f"`{spec.key}` {_fmt(number, spec)} is out of bounds{suffix}", span,
                  f"allowed: {bounds_text(spec)}")


def _fmt(number: float, spec: SettingSpec) -> str:
    if spec.value is Value.PERCENT:
        return f"{number * 100:g}%"
    if spec.value is Value.BPS:
        return f"{number * 10000:g}bps"
    return f"{number:g}"


def bounds_text(spec: SettingSpec) -> str:
    if spec.low is None:
        low = ""
    elif spec.low < 0:  # an exclusive bound just below zero admits zero itself
        low = f"at least {_fmt(0, spec)}"
    else:
        low = f"above {_fmt(spec.low, spec)}"
    high = "" if spec.high is None else f"at most {_fmt(spec.high, spec)}"
    return " and ".join(p for p in (low, high) if p)


def _expect_literal(ctx: Ctx, spec: SettingSpec, value: ast.Expr, kind: type,
                    what: str) -> bool:
    """True when ``value`` is a ``kind`` literal; otherwise report what was found instead."""
    if isinstance(value, kind):
        return True
    if isinstance(value, ast.Neg) and isinstance(value.operand, kind):
        _negative(ctx, spec, value)
        return False
    found = NODE_WORDS.get(type(value), "an expression")
    if isinstance(value, ast.Name):
        found = f"`{value.id}`"
    numeric_mixup = type(value) in NUMERIC_LITERALS and kind in NUMERIC_LITERALS
    ctx.error("T002" if numeric_mixup else "T001", f"`{spec.key}` needs {what}, found {found}",
              value.span, f"e.g. `{spec.example}`" + (" or a param" if spec.param_ok else ""))
    return False


def _negative(ctx: Ctx, spec: SettingSpec, value: ast.Expr) -> None:
    """A negated literal of the right kind: no setting takes a negative value."""
    allowed = bounds_text(spec)
    ctx.error("T009", f"`{spec.key}` cannot be negative", value.span,
              f"allowed: {allowed}" if allowed else f"e.g. `{spec.example}`")


NODE_WORDS: dict[type, str] = {
    ast.Number: "a plain number", ast.Percent: "a percentage", ast.Bps: "basis points",
    ast.Duration: "a duration", ast.Money: "an amount of money", ast.Market: "a market",
    ast.String: "a string", ast.Bool: "a boolean", ast.List: "a list",
}
NUMERIC_LITERALS = (ast.Number, ast.Percent, ast.Bps, ast.Money, ast.Duration)


def _short(value: ast.Expr) -> str:
    if isinstance(value, ast.Name):
        return value.id
    return type(value).__name__.lower()


def _value_string(ctx: Ctx, spec: SettingSpec, v: ast.Expr) -> float | None:
    _expect_literal(ctx, spec, v, ast.String, "a string in double quotes")
    return None


ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


def _value_env_name(ctx: Ctx, spec: SettingSpec, v: ast.Expr) -> float | None:
    """The name of an environment variable: a URL or token written here would be a
    credential in the spec (and in git, artifacts, diffs)."""
    if not _expect_literal(ctx, spec, v, ast.String, "a string in double quotes"):
        return None
    assert isinstance(v, ast.String)
    if not ENV_NAME.fullmatch(v.value):
        ctx.error("N017", f"`{spec.key}` names an environment variable; "
                  f"{'this looks like a URL' if '://' in v.value else 'this is not a name'}",
                  v.span, f"export the value in the deployment's environment and name it "
                  f"here, e.g. `{spec.example}` (a URL in a spec is a credential in git)")
    return None


def _value_market(ctx: Ctx, spec: SettingSpec, v: ast.Expr) -> float | None:
    _expect_literal(ctx, spec, v, ast.Market, "a market like BTC/EUR")
    return None


def _value_timeframe(ctx: Ctx, spec: SettingSpec, v: ast.Expr) -> float | None:
    if _expect_literal(ctx, spec, v, ast.Duration, "a timeframe like 1h"):
        assert isinstance(v, ast.Duration)
        if v.seconds not in TIMEFRAMES.values():
            ctx.error("T009", f"unsupported timeframe `{v.text}`", v.span,
                      "supported: " + " ".join(TIMEFRAMES))
    return None


def _value_int(ctx: Ctx, spec: SettingSpec, v: ast.Expr) -> float | None:
    if isinstance(v, ast.Number) and v.is_int:
        return v.value
    if isinstance(v, ast.Neg) and isinstance(v.operand, ast.Number) and v.operand.is_int:
        _negative(ctx, spec, v)
        return None
    _expect_literal(ctx, spec, v, _Never, "a whole number")
    return None


def _literal_reader(kind: type, what: str, attr: str = "value"
                    ) -> Callable[[Ctx, SettingSpec, ast.Expr], float | None]:
    """A value check for settings that take one literal of ``kind`` (its number is bounded)."""
    def read(ctx: Ctx, spec: SettingSpec, v: ast.Expr) -> float | None:
        if _expect_literal(ctx, spec, v, kind, what):
            return float(getattr(v, attr))
        return None
    return read


_value_percent = _literal_reader(ast.Percent, "a percentage")
_value_bps = _literal_reader(ast.Bps, "basis points like 10bps")
_value_number = _literal_reader(ast.Number, "a number")
_value_money = _literal_reader(ast.Money, "an amount like 1000 EUR", "amount")
_value_duration = _literal_reader(ast.Duration, "a duration like 7d", "seconds")
_value_bool = _literal_reader(ast.Bool, "true or false")


def _value_choice(ctx: Ctx, spec: SettingSpec, v: ast.Expr) -> float | None:
    if not isinstance(v, ast.Name):
        _expect_literal(ctx, spec, v, _Never, "one of " + ", ".join(spec.choices))
    elif v.id not in spec.choices:
        ctx.error("N015", f"unknown value `{v.id}` for `{spec.key}`", v.span,
                  did_you_mean(v.id, spec.choices) or "one of " + ", ".join(spec.choices))
    return None


def _value_choices(ctx: Ctx, spec: SettingSpec, v: ast.Expr) -> float | None:
    if not isinstance(v, ast.List):
        _expect_literal(ctx, spec, v, _Never, "a list like [a, b]")
        return None
    seen: set[str] = set()
    for item in v.items:
        _value_choice(ctx, spec, item)
        if isinstance(item, ast.Name):
            if item.id in seen:
                ctx.error("N012", f"`{item.id}` is listed twice", item.span)
            seen.add(item.id)
    return None


class _Never:
    """A type no AST node has: forces the 'wrong literal' path."""


VALUE_CHECKS: dict[Value, Callable[[Ctx, SettingSpec, ast.Expr], float | None]] = {
    Value.STRING: _value_string, Value.ENV_NAME: _value_env_name,
    Value.MARKET: _value_market, Value.TIMEFRAME: _value_timeframe,
    Value.PERCENT: _value_percent, Value.BPS: _value_bps, Value.INT: _value_int,
    Value.NUMBER: _value_number, Value.MONEY: _value_money, Value.DURATION: _value_duration,
    Value.CHOICE: _value_choice, Value.CHOICES: _value_choices, Value.BOOL: _value_bool,
}

# ---------------------------------------------------------------- strategies


def _literal_value(ctx: Ctx, expr: ast.Expr, unit: Unit, what: str) -> float | None:
    """A param bound or default: a literal of the param's unit, optionally negated."""
    negate = isinstance(expr, ast.Neg)
    inner = expr.operand if isinstance(expr, ast.Neg) else expr
    expected = {Unit.INT: ast.Number, Unit.NUMBER: ast.Number, Unit.PERCENT: ast.Percent,
                Unit.BPS: ast.Bps}[unit]
    if not isinstance(inner, expected):
        found = f"`{inner.id}`" if isinstance(inner, ast.Name) else NODE_WORDS.get(
            type(inner), "an expression")
        code = "T002" if type(inner) in NUMERIC_LITERALS else "T001"
        ctx.error(code, f"{what} must be {Ty(unit, False).describe()} literal, found {found}",
                  expr.span)
        return None
    assert isinstance(inner, ast.Number | ast.Percent | ast.Bps)
    value = inner.value
    if unit is Unit.INT and not (isinstance(inner, ast.Number) and inner.is_int):
        ctx.error("T001", f"{what} must be a whole number, found `{inner.text}`", expr.span)
        return None
    return -value if negate else value


def check_params(ctx: Ctx) -> None:
    """Types known; default, range and step literals of that type; default in range, on step."""
    broken: dict[str, Span] = {}
    for item in ctx.items(ast.Param):
        info = _param_info(ctx, item)
        if info is None:
            broken.setdefault(item.name, item.name_span)
            continue
        if item.name in ctx.params or item.name in SOURCES:
            ctx.error("N009", f"`{item.name}` is already defined", item.name_span)
            continue
        ctx.params[item.name] = info
        _check_param_range(ctx, item, info)
    for name, info in ctx.params.items():
        ctx.exprs.symbols[name] = Symbol("param", Ty(info.unit, False), info.span)
    for name, span in broken.items():  # declared, but with an error already reported:
        if name not in ctx.exprs.symbols:  # its uses must not add "unknown name" noise
            ctx.exprs.symbols[name] = Symbol("param", None, span)


def _param_info(ctx: Ctx, item: ast.Param) -> ParamInfo | None:
    unit = PARAM_TYPES.get(item.type)
    if unit is None:
        ctx.error("T011", f"unknown parameter type `{item.type}`", item.type_span,
                  did_you_mean(item.type, PARAM_TYPES) or "types: " + ", ".join(PARAM_TYPES))
        return None
    values = [_literal_value(ctx, e, unit, f"`{item.name}` {w}") for e, w in
              ((item.default, "default"), (item.low, "lower bound"), (item.high, "upper bound"))]
    step = None if item.step is None else _literal_value(ctx, item.step, unit, "step")
    if any(v is None for v in values) or (item.step is not None and step is None):
        return None
    default, low, high = (float(v) for v in values if v is not None)
    if step is None and unit is Unit.INT:
        step = 1.0
    return ParamInfo(item.name, item.type, unit, default, low, high, step, item.name_span)


def _check_param_range(ctx: Ctx, item: ast.Param, info: ParamInfo) -> None:
    if info.low > info.high:
        ctx.error("T007", f"`{info.name}` range {_show(info, info.low)}..{_show(info, info.high)}"
                  " is empty", item.low.span, "write the lower bound first")
        return
    if info.step is not None and info.step <= 0:
        ctx.error("T007", f"`{info.name}` step must be positive", item.span)
        return
    if not info.low <= info.default <= info.high:
        ctx.error("T005", f"`{info.name}` default {_show(info, info.default)} is outside "
                  f"{_show(info, info.low)}..{_show(info, info.high)}", item.default.span,
                  "move the default into the range or widen the range")
    elif info.step is not None and not _on_step(info.default, info.low, info.step):
        ctx.error("T006", f"`{info.name}` default {_show(info, info.default)} is not on the step "
                  f"{_show(info, info.step)} from {_show(info, info.low)}", item.default.span,
                  f"nearest on-step values: {_neighbours(info)}")


def _on_step(value: float, low: float, step: float) -> bool:
    k = (value - low) / step
    return math.isclose(k, round(k), abs_tol=1e-9)


def _show(info: ParamInfo, value: float) -> str:
    if info.unit is Unit.PERCENT:
        return f"{value * 100:g}%"
    if info.unit is Unit.BPS:
        return f"{value * 10000:g}bps"
    return f"{value:g}"


def _neighbours(info: ParamInfo) -> str:
    assert info.step is not None
    k = math.floor((info.default - info.low) / info.step)
    below, above = info.low + k * info.step, info.low + (k + 1) * info.step
    return f"{_show(info, below)} or {_show(info, above)}"


def check_definitions(ctx: Ctx) -> None:
    """Sources and params in scope; lets in order; rules are boolean series, one per slot."""
    symbols = ctx.exprs.symbols
    for name, unit in SOURCES.items():
        symbols.setdefault(name, Symbol("source", Ty(unit, True)))
    for name, unit in POSITION_SOURCES.items():
        symbols.setdefault(name, Symbol("source", Ty(unit, True)))
    lets = [i for i in ctx.decl.items if isinstance(i, ast.Let)]
    ctx.exprs.later = {let.name: let.name_span for let in lets}
    for let in lets:
        ctx.exprs.later.pop(let.name, None)  # a duplicate `let` was popped already
        if let.state and let.name not in symbols:
            symbols[let.name] = Symbol("let", _state(ctx, let), let.name_span)
            continue
        if not let.state and let.name not in symbols and _self_reference(ctx, let):
            symbols[let.name] = Symbol("let", None, let.name_span)  # no follow-on errors
            ctx.exprs.infer(let.expr)
            continue
        ty = ctx.exprs.infer(let.expr)
        if let.name in symbols:
            ctx.error("N009", f"`{let.name}` is already defined", let.name_span,
                      f"`{let.name}` is a {symbols[let.name].kind}; pick another name")
            continue
        symbols[let.name] = Symbol("let", ty, let.name_span)
    _check_rules(ctx)


def _state(ctx: Ctx, let: ast.Let) -> Ty | None:
    """A ``state`` let's type, after the checks that keep it causal (``lang.state``); None
    (no follow-on errors) when one fails."""
    problems = list(self_uses(let))
    for code, node, message, help in problems:
        ctx.error(code, message, node.span, help)
    if not problems:
        return infer_state(ctx.exprs, let)
    ctx.exprs.symbols[let.name] = Symbol("let", None, let.name_span)
    ctx.exprs.infer(let.expr)
    return None


def _self_reference(ctx: Ctx, let: ast.Let) -> bool:
    """N018 for ``let trail = max(trail[1], …)``: a let is defined once, from what is
    above it; a series that reads its own past is declared with ``state``."""
    uses = [e for e in ast.walk(let.expr) if isinstance(e, ast.Name) and e.id == let.name]
    if not uses:
        return False
    ctx.error("N018", f"`{let.name}` reads its own value: a `let` cannot refer to itself",
              uses[0].span, f"a recursive series is declared with `state {let.name} = EXPR`, "
              f"reading its previous value as `{let.name}[1]` (e.g. `state top = "
              "max(nz(top[1], close), close)`, the highest close so far)",
              [Label(ctx.path, let.name_span, "defined here")])
    return True


def _check_rules(ctx: Ctx) -> None:
    seen: dict[str, ast.Rule] = {}
    for rule in ctx.items(ast.Rule):
        assert isinstance(rule, ast.Rule)
        ty = ctx.exprs.expect(rule.expr, Unit.BOOL, f"`{rule.kind} {rule.side} when`")
        if ty is not None and not ty.series:
            ctx.error("T001", f"`{rule.kind} {rule.side}` never changes: its condition reads no "
                      "market data", rule.expr.span)
        if rule.slot in seen:
            ctx.error("N009", f"`{rule.kind} {rule.side}` is given twice", rule.span,
                      "combine the conditions with `or`",
                      [Label(ctx.path, seen[rule.slot].span, "first given here")])
        seen[rule.slot] = rule
    if not any(r.kind == "entry" for r in seen.values()):
        ctx.error("N011", f"strategy `{ctx.decl.name}` has no entry rule", ctx.decl.name_span,
                  "add e.g. `entry long when crossover(fast_ma, slow_ma)`")


def check_requires(ctx: Ctx) -> None:
    """Constraints relate params only, are boolean, and hold for the defaults."""
    defaults = {n: p.default for n, p in ctx.params.items()}
    for req in ctx.items(ast.Require):
        assert isinstance(req, ast.Require)
        used_before = set(ctx.exprs.used)  # a param used only in `require` is still unused
        ty = ctx.exprs.expect(req.expr, Unit.BOOL, "a require constraint")
        ctx.exprs.used = used_before
        if ty is None:
            continue
        if ty.series:
            ctx.error("T001", "a require constraint relates params; it cannot read market data",
                      req.expr.span)
            continue
        try:
            holds = eval_scalar(req.expr, defaults)
        except ScalarError:
            continue
        if not holds:
            ctx.error("T008", "the param defaults violate this constraint", req.expr.span,
                      "defaults: " + ", ".join(f"{n} = {_show(p, p.default)}"
                                               for n, p in ctx.params.items()))


def check_size(ctx: Ctx) -> None:
    """`size 25% of equity`, `size 1000 EUR` (notional) or `size 0.01 BTC` (quantity)."""
    sizes = ctx.items(ast.Size)
    settings = {s.key: s for s in ctx.items(ast.Setting)}
    for extra in sizes[1:]:
        ctx.error("N012", "`size` is given twice", extra.span)
    if sizes and "vol_target" in settings:
        ctx.error("N012", "give either `size` or `vol_target`, not both", sizes[0].span)
    if sizes:
        size = sizes[0]
        assert isinstance(size, ast.Size)
        _check_size(ctx, size, settings.get("market"))


def _check_size(ctx: Ctx, size: ast.Size, market: ast.Setting | None) -> None:
    value = size.value
    if isinstance(value, ast.Money):
        if size.basis is not None:
            ctx.error("T001", "an amount is not a fraction: drop `of …`", size.basis_span)
        currencies = _market_currencies(market)
        if currencies and value.currency not in currencies:
            ctx.error("T002", f"size in {value.currency}, but the market trades "
                      f"{'/'.join(currencies)}", value.span,
                      f"use {currencies[1]} for a notional or {currencies[0]} for a quantity")
        if value.amount <= 0:
            ctx.error("T009", "size must be positive", value.span)
        return
    spec = SettingSpec("size", Value.PERCENT, "", param_ok=True, low=0, high=10,
                       example="size 25% of equity")
    if not is_level(value, ctx.params):  # an expression: ``check_levels``
        check_value(ctx, spec, value)
    if size.basis is None:
        ctx.error("T001", "a fractional size needs a basis", size.span,
                  "write `size 25% of equity`")
    elif size.basis not in SIZE_BASES:
        ctx.error("N015", f"unknown size basis `{size.basis}`", size.basis_span,
                  did_you_mean(size.basis, SIZE_BASES) or "bases: " + ", ".join(SIZE_BASES))


def _market_currencies(market: ast.Setting | None) -> tuple[str, str] | None:
    if market is not None and isinstance(market.value, ast.Market):
        return market.value.base, market.value.quote
    return None


def check_position_reads(ctx: Ctx) -> None:
    """The position sources (``lang.position``): only in rules, and there elementwise."""
    for item in ctx.decl.items:
        problems = inside_rule(item.expr) if isinstance(item, ast.Rule) else \
            outside_rules(item)
        for code, node, message, help in problems:
            ctx.error(code, message, node.span, help)


def check_frames(ctx: Ctx) -> None:
    """Each ``@`` reads a frame the data can give (T020) and only what can be computed there
    (T021): ``lang.frames``."""
    settings = {s.key: s.value for s in ctx.items(ast.Setting)}
    timeframe = settings.get("timeframe")
    tf = timeframe.text if isinstance(timeframe, ast.Duration) else ""
    lets = {let.name: let for let in ctx.items(ast.Let)}
    exprs = [e for item in ctx.decl.items for e in ast.item_exprs(item)]
    for at in frames_in(exprs):
        problems = [*filter(None, [timeframe_problem(at, tf)]), *frame_problems(at, lets)]
        for code, node, message, help in problems:
            ctx.error(code, message, node.span, help)


def check_levels(ctx: Ctx) -> None:
    """Stops and sizes written as expressions (``lang.levels``): typed like a let, of a
    unit the engine can read (a price distance or a percentage; a fraction of equity)."""
    sizes = ctx.items(ast.Size)
    settings = {s.key: s for s in ctx.items(ast.Setting)}
    for key, expr in levels_of(settings, sizes, ctx.params):
        check_level(key, ctx.exprs.infer(expr), expr.span, ctx.error)


def check_holding(ctx: Ctx) -> None:
    """``max_hold`` closes a position that ``min_hold`` still keeps: it must come later."""
    settings = {s.key: s for s in ctx.items(ast.Setting)}
    low, high = settings.get("min_hold"), settings.get("max_hold")
    if low is None or high is None or not isinstance(low.value, ast.Number) or \
            not isinstance(high.value, ast.Number):
        return
    if high.value.value <= low.value.value:
        ctx.error("T009", f"`max_hold` {high.value.value:g} is not above `min_hold` "
                  f"{low.value.value:g}", high.value.span,
                  "a position must be free to leave on its rules before it is forced out; "
                  "raise max_hold or lower min_hold")


def check_usage(ctx: Ctx) -> None:
    """Unused params and lets are warnings: dead code misleads reviewers."""
    used = ctx.exprs.used
    for name, info in ctx.params.items():
        if name not in used:
            ctx.error("W001", f"param `{name}` is never used", info.span,
                      "use it or remove it; unused params inflate sweeps")
    for let in ctx.items(ast.Let):
        assert isinstance(let, ast.Let)
        if let.name not in used:
            ctx.error("W002", f"`{let.name}` is never used", let.name_span, "remove it")


def check_fill(ctx: Ctx) -> None:
    fill = next((s for b in ctx.items(ast.Block) if b.key == "execution" for s in b.settings
                 if s.key == "fill"), None)
    if fill is not None and isinstance(fill.value, ast.Name) and fill.value.id == "close":
        ctx.error("W003", "`fill close` fills at the close that produced the signal",
                  fill.value.span, "results are optimistic; prefer `fill next_open`")


def check_rule_pairs(ctx: Ctx) -> None:
    """An exit for a side the strategy never enters is dead code (and often a typo)."""
    rules = ctx.items(ast.Rule)
    entered = {r.side for r in rules if r.kind == "entry"}
    if not entered:  # no entry at all is N011 already
        return
    for rule in rules:
        if rule.kind == "exit" and rule.side not in entered:
            ctx.error("W004", f"`exit {rule.side}` without an `entry {rule.side}`", rule.span,
                      f"add `entry {rule.side} when …` or remove this rule")


def check_rule_lints(ctx: Ctx) -> None:
    """W007 for a rule that folds to a constant, W006 for one that can never be true
    (``lang/rule_lints.py``); only on a spec whose expressions are free of errors."""
    if any(d.is_error for d in [*ctx.diagnostics, *ctx.exprs.diagnostics]):
        return
    facts = RuleFacts({let.name: let.expr for let in ctx.items(ast.Let)})
    for rule in ctx.items(ast.Rule):
        head = f"`{rule.kind} {rule.side}`"
        value = facts.constant(rule.expr)
        if value is not None:
            ctx.error("W007", f"{head} is always {str(bool(value)).lower()}", rule.expr.span,
                      "a rule should depend on the data; check the constants and lets it uses")
            continue
        reason = facts.never_true(rule.expr)
        if reason is not None:
            ctx.error("W006", f"{head} can never be true: {reason}", rule.expr.span,
                      "as written the strategy never trades on this rule")


def check_min_notional(ctx: Ctx) -> None:
    """`min_notional` is in the market's quote currency (it bounds order notional)."""
    setting = next((s for b in ctx.items(ast.Block) if b.key == "execution"
                    for s in b.settings if s.key == "min_notional"), None)
    market = next((s for s in ctx.items(ast.Setting) if s.key == "market"), None)
    currencies = _market_currencies(market)
    if setting is None or currencies is None or not isinstance(setting.value, ast.Money):
        return
    if setting.value.currency != currencies[1]:
        ctx.error("T002", f"min_notional in {setting.value.currency}, but the market is quoted "
                  f"in {currencies[1]}", setting.value.span,
                  f"write e.g. `min_notional 10 {currencies[1]}`")


# ---------------------------------------------------------------- portfolios


def check_components(ctx: Ctx) -> None:
    """Weights are positive percentages summing to 100 %; each component listed once."""
    total, ok = 0.0, True
    seen: dict[str, Span] = {}
    components = [c for c in ctx.items(ast.Component) if isinstance(c, ast.Component)]
    for comp in components:
        if comp.strategy in seen:
            ctx.error("C002", f"`{comp.strategy}` is listed twice", comp.name_span,
                      "merge the two components", [Label(ctx.path, seen[comp.strategy],
                                                         "first listed here")])
        seen[comp.strategy] = comp.name_span
        if isinstance(comp.weight, ast.Neg) and isinstance(comp.weight.operand, ast.Percent):
            ctx.error("C003", "a component weight must be positive", comp.weight.span,
                      "remove the component instead")
            ok = False
            continue
        if not isinstance(comp.weight, ast.Percent):
            spec = SettingSpec("weight", Value.PERCENT, "", example="weight 25%")
            _expect_literal(ctx, spec, comp.weight, ast.Percent, "a percentage")
            ok = False
            continue
        if comp.weight.value <= 0:
            ctx.error("C003", "a component weight must be positive", comp.weight.span,
                      "remove the component instead")
            ok = False
        total += comp.weight.value
    if not components:
        ctx.error("N011", f"portfolio `{ctx.decl.name}` has no components", ctx.decl.name_span,
                  "add e.g. `component ma_crossover weight 100%`")
    elif ok and not math.isclose(total, 1.0, abs_tol=1e-9):
        ctx.error("C001", f"weights sum to {total * 100:g}%, not 100%", ctx.decl.name_span,
                  f"adjust the weights by {(1 - total) * 100:+g}%",
                  [Label(ctx.path, c.weight.span, "weight") for c in components])


def check_risk_refs(ctx: Ctx) -> None:
    refs = ctx.items(ast.RiskRef)
    for extra in refs[1:]:
        ctx.error("N012", "`risk` is given twice", extra.span)


# ---------------------------------------------------------------- risk limits


def _setting_number(ctx: Ctx, key: str) -> tuple[float, Span] | None:
    setting = next((s for s in ctx.items(ast.Setting) if s.key == key), None)
    if setting is None:
        return None
    value = setting.value
    number = getattr(value, "value", getattr(value, "amount", None))
    if isinstance(value, ast.Neg):
        inner = getattr(value.operand, "value", getattr(value.operand, "amount", None))
        number = None if not isinstance(inner, int | float) else -inner
    return (float(number), value.span) if isinstance(number, int | float) else None


def check_risk_limits(ctx: Ctx) -> None:
    """Limits are consistent: positive, and per-symbol exposure within total exposure."""
    symbol = _setting_number(ctx, "max_symbol_exposure")
    total = _setting_number(ctx, "max_total_exposure")
    if symbol and total and symbol[0] > total[0] + 1e-12:
        ctx.error("K001", f"max_symbol_exposure {symbol[0] * 100:g}% exceeds max_total_exposure "
                  f"{total[0] * 100:g}%", symbol[1], "one market cannot hold more than the total",
                  [Label(ctx.path, total[1], "total exposure set here")])
    loss = _setting_number(ctx, "max_daily_loss")
    if loss and loss[0] <= 0:
        _supersede(ctx, loss[1])
        ctx.error("K002", "max_daily_loss must be a positive percentage", loss[1],
                  "it is the loss that halts trading, e.g. `max_daily_loss 2%`")
    for key in ("max_open_positions", "max_orders_per_minute", "max_order_notional",
                "max_symbol_exposure", "max_total_exposure"):
        found = _setting_number(ctx, key)
        if found and found[0] <= 0:
            _supersede(ctx, found[1])
            ctx.error("K003", f"`{key}` must be positive", found[1],
                      "a zero limit blocks all trading; use `peak live kill` for that")


def _supersede(ctx: Ctx, span: Span) -> None:
    """A K-code explains a non-positive limit better than the generic bounds error there."""
    ctx.diagnostics = [d for d in ctx.diagnostics
                       if not (d.span == span and d.code in ("T001", "T009"))]


# ---------------------------------------------------------------- promotion criteria

Interval = tuple[float, float]


def check_criteria(ctx: Ctx) -> None:
    """`require METRIC OP LITERAL`: known metric, matching unit, satisfiable, consistent."""
    bounds: dict[str, tuple[Interval, Span]] = {}
    for req in ctx.items(ast.Require):
        assert isinstance(req, ast.Require)
        parsed = _criterion(ctx, req)
        if parsed is None:
            continue
        metric, op, threshold = parsed
        interval = _interval(op, threshold)
        prev = bounds.get(metric)
        if prev is not None:
            merged = (max(prev[0][0], interval[0]), min(prev[0][1], interval[1]))
            if merged[0] > merged[1]:
                ctx.error("G002", f"criteria on `{metric}` cannot both hold", req.span,
                          "remove one of them", [Label(ctx.path, prev[1], "other criterion")])
            interval = merged
        bounds[metric] = (interval, req.span)


def _criterion(ctx: Ctx, req: ast.Require) -> tuple[str, str, float] | None:
    expr = req.expr
    if not (isinstance(expr, ast.Binary) and expr.op in ast.COMPARE_OPS
            and isinstance(expr.left, ast.Name)):
        ctx.error("T001", "a promotion criterion compares a metric with a literal", expr.span,
                  "e.g. `require sharpe >= 1.5`")
        return None
    metric = METRICS.get(expr.left.id)
    if metric is None:
        ctx.error("N010", f"unknown metric `{expr.left.id}`", expr.left.span,
                  did_you_mean(expr.left.id, METRICS) or "see docs/language.md for metrics")
        return None
    threshold = _threshold(ctx, metric.unit, expr.right, metric.name)
    if threshold is None:
        return None
    lo, hi = metric.low, metric.high
    satisfiable = _interval(expr.op, threshold)
    if (hi is not None and satisfiable[0] > hi) or (lo is not None and satisfiable[1] < lo):
        ctx.error("G001", f"`{metric.name} {expr.op} {_show_metric(metric.unit, threshold)}` "
                  "can never hold", expr.right.span,
                  f"{metric.name} lies in {_range_text(metric.unit, lo, hi)}")
    return metric.name, expr.op, threshold


def _threshold(ctx: Ctx, unit: Unit, expr: ast.Expr, metric: str) -> float | None:
    negate = isinstance(expr, ast.Neg)
    inner = expr.operand if isinstance(expr, ast.Neg) else expr
    wanted = ast.Percent if unit is Unit.PERCENT else ast.Number
    if not isinstance(inner, wanted) or (unit is Unit.INT and not inner.is_int):  # type: ignore[union-attr]
        code = "T002" if type(inner) in NUMERIC_LITERALS else "T001"
        what = {Unit.PERCENT: "a percentage", Unit.INT: "a whole number"}.get(unit, "a number")
        ctx.error(code, f"`{metric}` must be compared with {what}", expr.span,
                  f"`{metric}` is {Ty(unit, False).describe()}")
        return None
    return -inner.value if negate else inner.value


def _interval(op: str, x: float) -> Interval:
    eps = 1e-12
    return {"<": (-math.inf, x - eps), "<=": (-math.inf, x), ">": (x + eps, math.inf),
            ">=": (x, math.inf), "==": (x, x), "!=": (-math.inf, math.inf)}[op]


def _show_metric(unit: Unit, x: float) -> str:
    return f"{x * 100:g}%" if unit is Unit.PERCENT else f"{x:g}"


def _range_text(unit: Unit, lo: float | None, hi: float | None) -> str:
    a = "-∞" if lo is None else _show_metric(unit, lo)
    b = "∞" if hi is None else _show_metric(unit, hi)
    return f"[{a}, {b}]"


# ---------------------------------------------------------------- entry point

CHECKS: dict[str, tuple[Check, ...]] = {
    "strategy": (check_statements, check_params, check_settings, check_definitions,
                 check_levels, check_position_reads, check_frames, check_requires,
                 check_size, check_fill, check_rule_pairs,
                 check_min_notional, check_holding, check_usage, check_rule_lints),
    "portfolio": (check_statements, check_settings, check_components, check_risk_refs),
    "risk": (check_statements, check_settings, check_risk_limits),
    "promotion": (check_statements, check_settings, check_criteria),
}


def check_module(module: ast.Module) -> tuple[CheckedSpec, list[Diagnostic]]:
    """Run every check of the module's kind; all diagnostics, in source order."""
    ctx = Ctx(module)
    for check in CHECKS[module.decl.kind]:
        check(ctx)
    diagnostics = ctx.diagnostics + ctx.exprs.diagnostics
    spec = CheckedSpec(module, tuple(ctx.params.values()), ctx.exprs.types)
    return spec, diagnostics
