"""The parser stage alone: source text → ``ast.Module`` (shapes, values, spans) or P-codes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import lark
import pytest

from peakdsl.lang import ast
from peakdsl.lang.diagnostics import Diagnostic
from peakdsl.lang.parser import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_IDENT,
    build_parser,
    parse_bytes,
    parse_text,
)

STRATEGY = """\
# trend following
strategy ma_cross {
    description "SMA trend following on BTC"
    market BTC/EUR
    timeframe 1h

    param fast: int = 20 in 5..50 step 5
    param width: percent = 2% in 1%..5%
    require fast < 40

    let fast_ma = sma(close, fast)  # the fast average

    entry long when crossover(fast_ma, sma(close, 60))
    exit  long when close < fast_ma * (1 - width)

    size 25% of equity
    execution {
        fees 10bps
        fill next_open
    }
}
"""


def parse(text: str) -> ast.Module:
    result = parse_text(text, "ma_cross.peak")
    assert result.diagnostics == (), [d.message for d in result.diagnostics]
    assert result.module is not None
    return result.module


def parse_expr(source: str) -> ast.Expr:
    module = parse(f"strategy s {{ let x = {source} }}")
    item = module.decl.items[0]
    assert isinstance(item, ast.Let)
    return item.expr


def fail(text: str, path: str = "bad.peak") -> Diagnostic:
    result = parse_text(text, path)
    assert result.module is None
    assert len(result.diagnostics) >= 1
    return result.diagnostics[0]


# ---------------------------------------------------------------- declarations


def test_declaration_kind_name_and_items() -> None:
    module = parse(STRATEGY)
    decl = module.decl
    assert (decl.kind, decl.name, module.path) == ("strategy", "ma_cross", "ma_cross.peak")
    assert [type(i).__name__ for i in decl.items] == [
        "Setting", "Setting", "Setting", "Param", "Param", "Require", "Let", "Rule", "Rule",
        "Size", "Block"]


@pytest.mark.parametrize("kind", ["strategy", "portfolio", "risk", "promotion"])
def test_every_kind_parses(kind: str) -> None:
    assert parse(f"{kind} x {{}}").decl.kind == kind


def test_param_fields() -> None:
    fast, width = (i for i in parse(STRATEGY).decl.items if isinstance(i, ast.Param))
    assert (fast.name, fast.type) == ("fast", "int")
    assert fast.default == ast.Number(20, True, "20")
    assert fast.low == ast.Number(5, True, "5") and fast.high == ast.Number(50, True, "50")
    assert fast.step == ast.Number(5, True, "5")
    assert width.type == "percent" and width.step is None
    assert isinstance(width.default, ast.Percent) and width.default.value == pytest.approx(0.02)


def test_negative_param_bounds() -> None:
    module = parse("strategy s { param k: float = -1.5 in -3..0 }")
    param = module.decl.items[0]
    assert isinstance(param, ast.Param)
    assert param.default == ast.Neg(ast.Number(1.5, False, "1.5"))
    assert param.low == ast.Neg(ast.Number(3, True, "3"))


def test_rules_size_block_and_settings() -> None:
    items = parse(STRATEGY).decl.items
    rules = [i for i in items if isinstance(i, ast.Rule)]
    assert [(r.kind, r.side, r.slot) for r in rules] == [
        ("entry", "long", "entry_long"), ("exit", "long", "exit_long")]
    size = next(i for i in items if isinstance(i, ast.Size))
    assert size.basis == "equity" and size.value == ast.Percent(0.25, "25%")
    block = next(i for i in items if isinstance(i, ast.Block))
    assert block.key == "execution"
    assert [s.key for s in block.settings] == ["fees", "fill"]
    assert block.settings[0].value == ast.Bps(0.001, "10bps")
    assert block.settings[1].value == ast.Name("next_open")


def test_portfolio_components_overrides_and_risk() -> None:
    module = parse("""portfolio p {
        capital 10000 EUR
        component a weight 25%
        component b weight 75% with { fast = 10, width = 2%, }
        risk live
        robustness { monte_carlo 3000 stress [crash, fee_x2] }
    }""")
    capital, a, b, risk, robust = module.decl.items
    assert capital == ast.Setting("capital", ast.Money(10000, "EUR", "10000"))
    assert isinstance(a, ast.Component) and a.overrides == ()
    assert isinstance(b, ast.Component) and [o.name for o in b.overrides] == ["fast", "width"]
    assert b.overrides[1].value == ast.Percent(0.02, "2%")
    assert risk == ast.RiskRef("live")
    assert isinstance(robust, ast.Block)
    assert robust.settings[1].value == ast.List((ast.Name("crash"), ast.Name("fee_x2")))


# ---------------------------------------------------------------- literals


@pytest.mark.parametrize(("source", "expected"), [
    ("20", ast.Number(20, True, "20")),
    ("2.5", ast.Number(2.5, False, "2.5")),
    ("1e3", ast.Number(1000, False, "1e3")),
    ("3%", ast.Percent(0.03, "3%")),
    ("0.5%", ast.Percent(0.005, "0.5%")),
    ("10bps", ast.Bps(0.001, "10bps")),
    ("15m", ast.Duration(900, "15m")),
    ("4h", ast.Duration(14400, "4h")),
    ("30d", ast.Duration(30 * 86400, "30d")),
    ("2w", ast.Duration(14 * 86400, "2w")),
    ("1000 EUR", ast.Money(1000, "EUR", "1000")),
    ("BTC/EUR", ast.Market("BTC", "EUR")),
    ("BTC/USDT:USDT", ast.Market("BTC", "USDT", "USDT")),
    ('"hello world"', ast.String("hello world")),
    ("true", ast.Bool(True)),
    ("false", ast.Bool(False)),
])
def test_literals(source: str, expected: ast.Expr) -> None:
    got = parse_expr(source)
    assert got == expected
    if isinstance(expected, ast.Percent | ast.Bps):
        assert isinstance(got, ast.Percent | ast.Bps)
        assert got.value == pytest.approx(expected.value)


def test_market_symbol() -> None:
    assert ast.Market("BTC", "USDT", "USDT").symbol == "BTC/USDT:USDT"
    assert ast.Market("BTC", "EUR").symbol == "BTC/EUR"


# ---------------------------------------------------------------- expressions


def N(name: str) -> ast.Name:
    return ast.Name(name)


def test_arithmetic_precedence_and_associativity() -> None:
    assert parse_expr("a + b * c") == ast.Binary("+", N("a"), ast.Binary("*", N("b"), N("c")))
    assert parse_expr("a - b - c") == ast.Binary("-", ast.Binary("-", N("a"), N("b")), N("c"))
    assert parse_expr("(a + b) * c") == ast.Binary("*", ast.Binary("+", N("a"), N("b")), N("c"))
    assert parse_expr("-a * b") == ast.Binary("*", ast.Neg(N("a")), N("b"))


def test_logic_precedence() -> None:
    assert parse_expr("not a and b or c") == ast.Binary(
        "or", ast.Binary("and", ast.Not(N("a")), N("b")), N("c"))
    assert parse_expr("a > 1 and b <= 2") == ast.Binary(
        "and", ast.Binary(">", N("a"), ast.Number(1, True, "1")),
        ast.Binary("<=", N("b"), ast.Number(2, True, "2")))


def test_if_then_else_call_lag_and_list() -> None:
    assert parse_expr("if a > b then a else b") == ast.IfElse(
        ast.Binary(">", N("a"), N("b")), N("a"), N("b"))
    assert parse_expr("sma(close, 20)") == ast.Call("sma", (N("close"), ast.Number(20, True, "20")))
    assert parse_expr("true_range()") == ast.Call("true_range", ())
    assert parse_expr("close[1]") == ast.Lag(N("close"), ast.Number(1, True, "1"))
    assert parse_expr("close[n][2]") == ast.Lag(ast.Lag(N("close"), N("n")),
                                                ast.Number(2, True, "2"))
    assert parse_expr("close[-1]") == ast.Lag(N("close"), ast.Neg(ast.Number(1, True, "1")))
    assert parse_expr("[a, b]") == ast.List((N("a"), N("b")))
    assert parse_expr("[]") == ast.List(())


def test_walk_is_preorder() -> None:
    expr = parse_expr("sma(close, 20) > open[1]")
    assert [type(e).__name__ for e in ast.walk(expr)] == [
        "Binary", "Call", "Name", "Number", "Lag", "Name", "Number"]


# ---------------------------------------------------------------- spans


def test_spans_point_at_the_source() -> None:
    module = parse(STRATEGY)
    decl = module.decl
    assert (decl.name_span.line, decl.name_span.col) == (2, 10)
    assert decl.span.line == 2
    let = next(i for i in decl.items if isinstance(i, ast.Let))
    assert (let.span.line, let.span.col) == (11, 5)
    assert (let.name_span.line, let.name_span.col, let.name_span.end_col) == (11, 9, 16)
    call = let.expr
    assert isinstance(call, ast.Call)
    assert (call.func_span.line, call.func_span.col) == (11, 19)
    assert STRATEGY[call.span.start : call.span.end] == "sma(close, fast)"
    assert STRATEGY[call.args[0].span.start : call.args[0].span.end] == "close"


def test_binary_operator_span() -> None:
    text = "strategy s { let x = close  >=  open }"
    let = parse(text).decl.items[0]
    assert isinstance(let, ast.Let) and isinstance(let.expr, ast.Binary)
    assert text[let.expr.op_span.start : let.expr.op_span.end] == ">="
    assert text[let.expr.span.start : let.expr.span.end] == "close  >=  open"


def test_param_and_setting_key_spans() -> None:
    text = "strategy s {\n  param   n : int = 1 in 1..2\n  stop_loss 5%\n}"
    param, setting = parse(text).decl.items
    assert isinstance(param, ast.Param) and isinstance(setting, ast.Setting)
    assert (param.name_span.line, param.name_span.col) == (2, 11)
    assert (param.type_span.line, param.type_span.col) == (2, 15)
    assert (setting.key_span.line, setting.key_span.col, setting.key_span.end_col) == (3, 3, 12)


def test_spans_do_not_affect_equality() -> None:
    tight = parse("strategy s{let x=sma(close,20)>open entry long when x}")
    loose = parse("strategy s {\n  let x = sma( close , 20 )  >  open\n\n  entry long when x\n}\n")
    assert tight == loose
    assert tight.decl.items[0].span != loose.decl.items[0].span


def test_comments_are_kept_with_spans() -> None:
    module = parse(STRATEGY)
    assert [c.text for c in module.comments] == ["# trend following", "# the fast average"]
    assert (module.comments[1].span.line, module.comments[1].span.col) == (11, 37)


def _values(node: Any) -> Iterator[Any]:
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            yield from _values(getattr(node, f.name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _values(item)
    else:
        yield node


def test_no_lark_objects_leave_the_parser() -> None:
    leaked = [v for v in _values(parse(STRATEGY)) if isinstance(v, lark.Tree | lark.Token)]
    assert leaked == []
    assert all(type(v) is str for v in _values(parse(STRATEGY)) if isinstance(v, str))


def test_parser_is_built_once() -> None:
    assert build_parser() is build_parser()


# ---------------------------------------------------------------- syntax errors


def test_p001_names_the_token_and_what_was_expected() -> None:
    d = fail("strategy s {\n  entry long when close > > open\n}")
    assert (d.code, d.span.line, d.span.col) == ("P001", 2, 27)
    assert d.message == "unexpected `>`"
    assert d.help.startswith("expected ")
    assert "an expression" in d.help


def test_p001_upper_case_name_gets_a_naming_hint() -> None:
    d = fail("strategy s {\n  let Fast = 1\n}")
    assert d.code == "P001" and "lower_snake_case" in d.help


def test_p001_missing_keyword() -> None:
    d = fail("strategy s { entry long close > open }")
    assert d.code == "P001" and "`when`" in d.help


@pytest.mark.parametrize(("char", "hint"), [
    ("&", "use `and`"), ("|", "use `or`"), ("!", "use `not`"), ("'", "double quotes")])
def test_p002_hints_for_other_languages(char: str, hint: str) -> None:
    d = fail(f"strategy s {{\n  entry long when close > open {char} x\n}}")
    assert (d.code, d.span.line) == ("P002", 2)
    assert d.message == f"unexpected character `{char}`"
    assert hint in d.help


def test_p002_control_character() -> None:
    d = fail("strategy s {\n  let x = 1\x00\n}")
    assert (d.code, d.span.line, d.span.col) == ("P002", 2, 12)
    assert "U+0000" in d.message


def test_p003_points_at_the_block_never_closed_and_labels_the_end() -> None:
    text = "strategy s {\n  let x = 1\n"
    d = fail(text)
    assert d.code == "P003" and d.span.start == text.index("{")
    assert "never closed" in d.message
    assert [lb.span.start for lb in d.labels] == [len(text)]
    assert "`}`" in d.help and "a statement" in d.help
    assert "`else`" not in d.help  # only what the parser would really accept


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_p003_empty_file(text: str) -> None:
    d = fail(text)
    assert d.code == "P003" and "`strategy`" in d.help


def test_each_broken_statement_is_reported_once() -> None:
    result = parse_text("strategy s {\n  let = 1\n  let = 2\n}")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("P001", 2), ("P001", 3)]


def test_p004_oversized_input() -> None:
    result = parse_bytes("big.peak", b"#" * (MAX_FILE_BYTES + 1))
    assert result.module is None and [d.code for d in result.diagnostics] == ["P004"]


def test_p005_depth_limit() -> None:
    shallow = "(" * 20 + "close" + ")" * 20
    assert parse_text(f"strategy s {{ let x = {shallow} }}").module is not None
    deep = "(" * (MAX_DEPTH + 5) + "close" + ")" * (MAX_DEPTH + 5)
    d = fail(f"strategy s {{\n  let x = {deep}\n}}")
    assert (d.code, d.span.line) == ("P005", 2)


def test_p005_long_flat_chains_are_bounded_without_recursion() -> None:
    chain = " + ".join(["close"] * 5000)
    assert fail(f"strategy s {{ let x = {chain} }}").code == "P005"


def test_p006_invalid_utf8_points_at_the_bad_byte() -> None:
    result = parse_bytes("x.peak", b"strategy x {\n  description \"caf\xe9\"\n}")
    assert [(d.code, d.span.line, d.span.col) for d in result.diagnostics] == [("P006", 2, 19)]


def test_p007_identifier_limit() -> None:
    ok = "a" * MAX_IDENT
    assert parse_text(f"strategy s {{ let {ok} = 1 }}").module is not None
    result = parse_text(f"strategy s {{ let {ok}b = 1 entry long when {ok}b > 0 }}")
    assert [d.code for d in result.diagnostics] == ["P007", "P007"]


def test_p007_currency_limit() -> None:
    assert fail("strategy s { market ABCDEFGHIJKLM/EUR }").code == "P007"


@pytest.mark.parametrize("number", ["1e400", "2e15", "99999999999999999", "9999999999999999%"])
def test_p008_number_out_of_range(number: str) -> None:
    d = fail(f"strategy s {{ let x = {number} }}")
    assert d.code == "P008" and number in d.message


def test_largest_allowed_number() -> None:
    assert parse_expr("1e15") == ast.Number(1e15, False, "1e15")


def test_parse_bytes_decodes_utf8() -> None:
    result = parse_bytes("x.peak", 'strategy x { description "café €" }'.encode())
    assert result.module is not None
    setting = result.module.decl.items[0]
    assert isinstance(setting, ast.Setting) and setting.value == ast.String("café €")
