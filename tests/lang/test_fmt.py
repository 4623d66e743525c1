"""`peak fmt`: golden layouts, comment preservation, idempotence and AST round-trips."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peakdsl.lang import ast
from peakdsl.lang.fmt import format_expr, format_module, format_paths, format_source
from peakdsl.lang.parser import DURATION_SECONDS, parse_text, unit_value
from peakdsl.lang.project import UsageError

REPO = Path(__file__).resolve().parents[2]


def fmt(text: str) -> str:
    result = format_source(text, "t.peak")
    assert result.diagnostics == (), result.diagnostics
    assert result.text is not None
    return result.text


def comment_texts(text: str) -> list[str]:
    module = parse_text(text).module
    assert module is not None
    return [c.text.rstrip() for c in module.comments]


def assert_fmt_properties(text: str) -> str:
    """Formatting parses back to the same AST, keeps every comment in order, is idempotent."""
    before = parse_text(text).module
    assert before is not None
    out = fmt(text)
    after = parse_text(out).module
    assert after == before
    assert comment_texts(out) == comment_texts(text)
    assert fmt(out) == out
    assert format_source(out, "t.peak").changed is False
    return out


# ---------------------------------------------------------------- golden examples

GOLDEN = [
    pytest.param(
        "strategy   sma_cross{param fast:int=20 in 5..50 step 5 param slow : int = 100 in 50..200\n"
        "market BTC / EUR timeframe 1h let f=sma(close,fast) let s = sma( close , slow )\n"
        "entry long when f>s and f[1]<=s[1]  exit long when f<s size 50% of equity\n"
        "execution{fill next_open fees 10bps slippage 5bps}}",
        """\
strategy sma_cross {
    param fast: int = 20 in 5..50 step 5
    param slow: int = 100 in 50..200
    market BTC/EUR
    timeframe 1h
    let f = sma(close, fast)
    let s = sma(close, slow)
    entry long when f > s and f[1] <= s[1]
    exit long when f < s
    size 50% of equity
    execution { fill next_open fees 10bps slippage 5bps }
}
""",
        id="one-line-strategy",
    ),
    pytest.param(
        "\n\n\nportfolio   core   {\n\n\n  component trend weight 60%   with {fast=10,slow=40,}\n"
        "\tcomponent carry weight 40%\n\n\n\n  risk   default\n\n}\n\n\n",
        """\
portfolio core {
    component trend weight 60% with { fast = 10, slow = 40 }
    component carry weight 40%

    risk default
}
""",
        id="portfolio-blank-lines",
    ),
    pytest.param(
        "risk default {\r\n  max_drawdown 20.0%\r\n  capital 10000.50 EUR  market BTC/USDT:USDT\r\n"
        "  cooldown 4h description \"limits\"\r\n  enabled true halt false\r\n}\r\n",
        """\
risk default {
    max_drawdown 20.0%
    capital 10000.50 EUR
    market BTC/USDT:USDT
    cooldown 4h
    description "limits"
    enabled true
    halt false
}
""",
        id="literals-and-crlf",
    ),
    pytest.param(
        "strategy s {\n"
        "  let a = ((close - open) - (high - low))\n"
        "  let b = (close - (open - low)) / (2 * (x / y))\n"
        "  let c = - (-x) + -(y[1]) * - 1e3\n"
        "  require (not (a < b)) or (if a > 1 then true else false)\n"
        "  let d = (if (a) then (b) else (if c then d else e))\n"
        "  let e = not not (a == b) and ((a) or (b))\n"
        "  let f = (-x)[2] + (x)[ -1 ] + [1,(2), - 3][0]\n"
        "}\n",
        """\
strategy s {
    let a = close - open - (high - low)
    let b = (close - (open - low)) / (2 * (x / y))
    let c = -(-x) + -y[1] * -1e3
    require not a < b or (if a > 1 then true else false)
    let d = if a then b else if c then d else e
    let e = not not a == b and (a or b)
    let f = (-x)[2] + x[-1] + [1, 2, -3][0]
}
""",
        id="minimal-parentheses",
    ),
    pytest.param(
        "promotion gate{sharpe_min 1.5 trades_min 30 max_dd 25% window 90d}",
        "promotion gate {\n    sharpe_min 1.5\n    trades_min 30\n"
        "    max_dd 25%\n    window 90d\n}\n",
        id="promotion",
    ),
    pytest.param("strategy empty {   }", "strategy empty {}\n", id="empty-decl"),
    pytest.param("strategy s { execution { } }", "strategy s {\n    execution {}\n}\n",
                 id="empty-block"),
    pytest.param(
        'risk r { alerts { log {} slack { url_env "A_B" severity warning } throttle 5m } }',
        'risk r {\n    alerts {\n        log {}\n        slack { url_env "A_B" severity warning }\n'
        '        throttle 5m\n    }\n}\n',
        id="nested-blocks-in-source-order"),
]


@pytest.mark.parametrize(("source", "expected"), GOLDEN)
def test_golden(source: str, expected: str) -> None:
    assert fmt(source) == expected
    assert_fmt_properties(source)


def test_already_formatted_is_unchanged() -> None:
    text = GOLDEN[0].values[1]
    assert isinstance(text, str)
    result = format_source(text, "t.peak")
    assert result.changed is False
    assert result.text == text


# ---------------------------------------------------------------- comments

COMMENTED = """\
# Licence header.

#   A second header paragraph.
strategy   s   {   # header comment
  # leads the param
  param fast: int = 20 in 5..50   # trailing param


  # after blanks
  let a = sma(close,   # inside a call
      fast) +          # inside the expression
      1                # trailing the let
  execution {  # block header
    # leads fill
    fill close  # trailing fill

    fees 10bps
    # closes the block
  }  # after the block
  component x weight 10% with {
      fast = 10,  # inside overrides
      slow = 20
  }
  # closes the declaration
}   # after the declaration

# end of file
#no space either
"""

COMMENTED_EXPECTED = """\
# Licence header.

#   A second header paragraph.
strategy s {  # header comment
    # leads the param
    param fast: int = 20 in 5..50  # trailing param

    # after blanks
    # inside a call
    # inside the expression
    let a = sma(close, fast) + 1  # trailing the let
    execution {  # block header
        # leads fill
        fill close  # trailing fill

        fees 10bps
        # closes the block
    }  # after the block
    # inside overrides
    component x weight 10% with { fast = 10, slow = 20 }
    # closes the declaration
}  # after the declaration

# end of file
#no space either
"""


def test_comments_golden() -> None:
    assert fmt(COMMENTED) == COMMENTED_EXPECTED


def test_no_comment_is_dropped() -> None:
    out = assert_fmt_properties(COMMENTED)
    assert len(comment_texts(out)) == len(comment_texts(COMMENTED)) == 19


@pytest.mark.parametrize("source", [
    "# only a comment before\nstrategy s {}",
    "strategy s {} # after an empty decl",
    "strategy s { # inside an empty decl\n}",
    "strategy s {\n# inside an empty decl, own line\n}",
    "strategy s { execution { # inside an empty block\n } }",
    "strategy s { execution {\n # own line in empty block\n } }",
    "strategy # between kind and name\n s {}",
    "strategy s\n # between name and brace\n {}",
    "strategy s { let a = 1 let b = 2 # two statements on one line\n}",
    "strategy s { let a = 1 + # mid\n 2 # end\n # next\n let b = 3 }",
    "strategy s { execution { fill close # same line as block header and setting\n } }",
    "strategy s { execution\n # between key and brace\n { fill close } }",
    "risk r { alerts { # on the header\n slack { # in a nested block\n url_env \"X\" } } }",
    "risk r { alerts {\n log {} # after a nested block\n # before a nested one\n stderr {} } }",
    "strategy s { let a = if x # c1\n then # c2\n y # c3\n else # c4\n z }",
])
def test_comment_edge_cases(source: str) -> None:
    assert_fmt_properties(source)


def test_comment_inside_expression_moves_before_its_statement() -> None:
    out = fmt("strategy s {\n  let a = 1 +  # why one\n    2\n}\n")
    assert out == "strategy s {\n    # why one\n    let a = 1 + 2\n}\n"


def test_comment_text_is_kept_verbatim_except_trailing_space() -> None:
    out = fmt("strategy s { #   odd   spacing   \t\n}")
    assert out == "strategy s {  #   odd   spacing\n}\n"


# ---------------------------------------------------------------- expressions from ASTs


H4 = ast.Duration(4 * 3600, "4h")
D1 = ast.Duration(86400, "1d")
ETH = ast.Market("ETH", "USDT")


def test_parenthesised_market_frame_then_timeframe_is_one_frame() -> None:
    """``(x@ETH/USDT)@4h`` is ``x@ETH/USDT@4h``: the parser merges it, so the formatter
    prints the one frame."""
    assert fmt("strategy s { let a = (x @ ETH/USDT) @ 4h }") == \
        "strategy s {\n    let a = x@ETH/USDT@4h\n}\n"


def n(text: str) -> ast.Number:
    return ast.Number(float(text), "." not in text, text)


def name(x: str) -> ast.Name:
    return ast.Name(x)


@pytest.mark.parametrize(("expr", "expected"), [
    (ast.Binary("-", name("a"), ast.Binary("-", name("b"), name("c"))), "a - (b - c)"),
    (ast.Binary("-", ast.Binary("-", name("a"), name("b")), name("c")), "a - b - c"),
    (ast.Binary("/", name("a"), ast.Binary("*", name("b"), name("c"))), "a / (b * c)"),
    (ast.Binary("*", ast.Binary("+", name("a"), name("b")), name("c")), "(a + b) * c"),
    (ast.Binary("<", ast.Binary("<", name("a"), name("b")), name("c")), "(a < b) < c"),
    (ast.Binary("==", name("a"), ast.Binary("!=", name("b"), name("c"))), "a == (b != c)"),
    (ast.Binary("and", name("a"), ast.Binary("or", name("b"), name("c"))), "a and (b or c)"),
    (ast.Binary("or", ast.Binary("and", name("a"), name("b")), name("c")), "a and b or c"),
    (ast.Binary("or", name("a"), ast.Binary("or", name("b"), name("c"))), "a or (b or c)"),
    (ast.Not(ast.Binary("and", name("a"), name("b"))), "not (a and b)"),
    (ast.Binary("<", ast.Not(name("a")), name("b")), "(not a) < b"),
    (ast.Neg(ast.Binary("+", name("a"), name("b"))), "-(a + b)"),
    (ast.Neg(ast.Lag(name("x"), n("1"))), "-x[1]"),
    (ast.Lag(ast.Neg(name("x")), ast.Neg(n("1"))), "(-x)[-1]"),
    (ast.Lag(ast.Binary("+", name("a"), name("b")), n("2")), "(a + b)[2]"),
    (ast.Binary("+", ast.IfElse(name("c"), n("1"), n("2")), n("3")), "(if c then 1 else 2) + 3"),
    (ast.IfElse(ast.IfElse(name("a"), name("b"), name("c")), name("d"),
                ast.IfElse(name("e"), name("f"), name("g"))),
     "if if a then b else c then d else if e then f else g"),
    (ast.Call("max", (ast.Binary("or", name("a"), name("b")), ast.List(()))), "max(a or b, [])"),
    (ast.Call("now", ()), "now()"),
    (ast.At(name("close"), None, H4), "close@4h"),
    (ast.At(ast.Call("sma", (name("close"), n("50"))), None, D1), "sma(close, 50)@1d"),
    (ast.At(name("close"), ETH, H4), "close@ETH/USDT@4h"),
    (ast.At(name("close"), ETH, None), "close@ETH/USDT"),
    (ast.At(ast.Binary("-", name("close"), name("open")), None, D1), "(close - open)@1d"),
    (ast.At(ast.Neg(name("close")), None, D1), "(-close)@1d"),
    (ast.Neg(ast.At(name("close"), None, D1)), "-close@1d"),
    (ast.Lag(ast.At(name("close"), None, H4), n("1")), "close@4h[1]"),
    (ast.At(ast.Lag(name("close"), n("1")), None, H4), "close[1]@4h"),
    (ast.At(ast.At(name("close"), None, H4), ETH, None), "close@4h@ETH/USDT"),
    (ast.Binary("*", ast.At(name("x"), None, D1), n("2")), "x@1d * 2"),
])
def test_expression_parentheses(expr: ast.Expr, expected: str) -> None:
    assert format_expr(expr) == expected
    module = parse_text(f"strategy s {{ let a = {expected} }}").module
    assert module is not None
    item = module.decl.items[0]
    assert isinstance(item, ast.Let)
    assert item.expr == expr


# ---------------------------------------------------------------- every spec on disk + samples

SAMPLES = [COMMENTED, *(p.values[0] for p in GOLDEN)]


def spec_files() -> list[Path]:
    return sorted((REPO / "specs").rglob("*.peak"))


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_specs_on_disk_round_trip(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if parse_text(text).module is None:
        pytest.skip("does not parse (yet)")
    assert_fmt_properties(text)


@pytest.mark.parametrize("text", SAMPLES)
def test_samples_round_trip(text: object) -> None:
    assert isinstance(text, str)
    assert_fmt_properties(text)


# ---------------------------------------------------------------- property: random ASTs

NAMES = ["close", "open", "high", "fast", "slow", "x"]
FUNCS = ["sma", "ema", "max", "abs", "crossover"]
int_text = st.integers(0, 999).map(str)
dec_text = st.tuples(st.integers(0, 99), st.integers(0, 99)).map(lambda t: f"{t[0]}.{t[1]}")
num_text = st.one_of(int_text, dec_text, st.sampled_from(["1e3", "2.5E-2"]))


def number(text: str) -> ast.Number:
    return ast.Number(float(text), not any(c in text for c in ".eE"), text)


names = st.sampled_from(NAMES).map(ast.Name)
numbers = num_text.map(number)
literals = st.one_of(
    numbers,
    st.one_of(int_text, dec_text).map(lambda t: ast.Percent(unit_value(t, -2), t + "%")),
    int_text.map(lambda t: ast.Bps(unit_value(t, -4), t + "bps")),
    st.tuples(st.integers(1, 99), st.sampled_from("smhdw")).map(
        lambda t: ast.Duration(t[0] * DURATION_SECONDS[t[1]], f"{t[0]}{t[1]}")),
    st.tuples(int_text, st.sampled_from(["EUR", "USDT"])).map(
        lambda t: ast.Money(float(t[0]), t[1], t[0])),
    st.tuples(st.sampled_from(["BTC", "ETH"]), st.sampled_from(["EUR", "USDT"]),
              st.sampled_from([None, "USDT"])).map(lambda t: ast.Market(*t)),
    st.sampled_from(["", "a b", "x-1"]).map(ast.String),
    st.booleans().map(ast.Bool),
)
lags = st.one_of(int_text.map(number), int_text.map(lambda t: ast.Neg(number(t))), names)


def compound(sub: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    ops = st.sampled_from([*ast.ARITH_OPS, *ast.COMPARE_OPS, *ast.LOGIC_OPS])
    return st.one_of(
        st.builds(ast.Binary, ops, sub, sub),
        st.builds(ast.Not, sub),
        st.builds(ast.Neg, sub),
        st.builds(ast.IfElse, sub, sub, sub),
        st.builds(ast.Lag, sub, lags),
        st.builds(ast.Call, st.sampled_from(FUNCS), st.lists(sub, max_size=3).map(tuple)),
        st.lists(sub, max_size=3).map(lambda xs: ast.List(tuple(xs))),
        st.builds(frame, sub, st.sampled_from([None, ETH]), st.sampled_from([None, H4, D1])),
    )


def frame(target: ast.Expr, market: ast.Market | None, tf: ast.Duration | None) -> ast.Expr:
    """An ``ast.At`` the parser can produce: a frame at all, and never ``(x@M)@T`` as two
    (the parser reads that as the one frame ``x@M@T``)."""
    if market is None and tf is None:
        tf = H4
    if market is None and isinstance(target, ast.At) and target.timeframe is None:
        market = target.market
        target = target.target
    return ast.At(target, market, tf)


exprs = st.recursive(st.one_of(names, literals), compound, max_leaves=12)


def module_of(*items: ast.Item) -> ast.Module:
    return ast.Module("t.peak", ast.Decl("strategy", "s", items))


@settings(max_examples=300, deadline=None)
@given(exprs)
def test_random_ast_round_trips(expr: ast.Expr) -> None:
    text = format_module(module_of(ast.Let("a", expr), ast.Require(expr)))
    parsed = parse_text(text)
    assert parsed.diagnostics == (), text
    assert parsed.module is not None
    assert parsed.module.decl.items == (ast.Let("a", expr), ast.Require(expr)), text
    assert fmt(text) == text


# ---------------------------------------------------------------- property: random source text

GAPS = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n  ", " # note\n", "\t"])


@st.composite
def source_exprs(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 4 or draw(st.integers(0, 2)) == 0:
        atom = draw(st.sampled_from([*NAMES, "1", "2.5", "20%", "10bps", "4h", "100 EUR",
                                     "BTC/EUR", '"s"', "true", "sma(close, 20)", "x[1]"]))
        return f"({atom})" if draw(st.booleans()) else atom

    def sub() -> str:
        inner = draw(source_exprs(depth + 1))
        return f"({draw(GAPS)}{inner}{draw(GAPS)})" if draw(st.booleans()) else inner

    g = draw(GAPS)
    form = draw(st.integers(0, 6))
    if form == 0:
        op = draw(st.sampled_from(["+", "-", "*", "/", "<", ">=", "==", "and", "or"]))
        return f"{sub()}{g}{op}{draw(GAPS)}{sub()}"
    if form == 1:
        return f"not{g}{sub()}"
    if form == 2:
        return f"-{sub()}"
    if form == 3:
        return f"if{g}{sub()} then{draw(GAPS)}{sub()}{g}else {sub()}"
    if form == 4:
        return f"sma({sub()},{g}{sub()})"
    if form == 5:
        return f"({sub()}){g}@{g}{draw(st.sampled_from(['4h', 'ETH/USDT', 'ETH/USDT @ 1d']))}"
    return f"({sub()})[{draw(st.sampled_from(['1', '-1', 'fast']))}]"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(source_exprs(), GAPS)
def test_random_source_round_trips(expr: str, gap: str) -> None:
    text = f"strategy s {{{gap}let a ={gap}{expr}{gap}# end\n  require {expr}\n}}"
    if parse_text(text).module is None:  # e.g. `a < b < c` or `a + if ...`: not valid source
        return
    assert_fmt_properties(text)


# ---------------------------------------------------------------- format_source errors

def test_syntax_error_returns_diagnostics_and_no_text() -> None:
    result = format_source("strategy s { let = 1 }", "bad.peak")
    assert result.text is None
    assert result.changed is False
    assert [d.code for d in result.diagnostics] == ["P001"]


# ---------------------------------------------------------------- format_paths

MESSY = "strategy s{let a=1}"
CLEAN = "strategy s {\n    let a = 1\n}\n"


def test_format_paths_check_does_not_write(tmp_path: Path) -> None:
    spec = tmp_path / "s.peak"
    spec.write_text(MESSY, encoding="utf-8")
    [result] = format_paths([str(tmp_path)], check=True)
    assert result.changed is True
    assert result.diagnostics == ()
    assert spec.read_text(encoding="utf-8") == MESSY


def test_format_paths_rewrites_atomically(tmp_path: Path) -> None:
    spec = tmp_path / "nested" / "s.peak"
    spec.parent.mkdir()
    spec.write_text(MESSY, encoding="utf-8")
    os.chmod(spec, 0o640)
    clean = tmp_path / "clean.peak"
    clean.write_text(CLEAN, encoding="utf-8")
    results = format_paths([str(tmp_path)], check=False)
    assert sorted((Path(r.path).name, r.changed) for r in results) == [
        ("clean.peak", False), ("s.peak", True)]
    assert spec.read_text(encoding="utf-8") == CLEAN
    assert stat.S_IMODE(spec.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["clean.peak", "nested", "s.peak"]
    assert [r.changed for r in format_paths([str(spec)], check=True)] == [False]


def test_format_paths_reports_parse_errors_and_leaves_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.peak"
    bad.write_text("strategy s { let = }", encoding="utf-8")
    [result] = format_paths([str(bad)], check=False)
    assert result.changed is False
    assert [d.code for d in result.diagnostics] == ["P001"]
    assert bad.read_text(encoding="utf-8") == "strategy s { let = }"


def test_format_paths_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        format_paths([str(tmp_path / "nope.peak")], check=True)
