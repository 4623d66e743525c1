"""The checker stage alone: ``check_module`` on handwritten modules, one declaration each."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peakdsl.lang import ast
from peakdsl.lang.checker import CheckedSpec, check_module
from peakdsl.lang.diagnostics import (
    CODES,
    WARNING_CODES,
    Diagnostic,
    Severity,
    diag,
    did_you_mean,
    has_errors,
    sort_diagnostics,
)
from peakdsl.lang.parser import parse_text
from peakdsl.lang.source import Span
from peakdsl.lang.types import Ty, Unit

ValidText = Callable[[str, str], str]


def run(text: str) -> tuple[CheckedSpec, list[Diagnostic]]:
    parsed = parse_text(text, "spec.peak")
    assert parsed.module is not None, [d.message for d in parsed.diagnostics]
    return check_module(parsed.module)


def codes(text: str) -> list[str]:
    return [d.code for d in run(text)[1]]


def strategy(*lines: str, market: str = "BTC/EUR") -> str:
    body = "\n    ".join(lines)
    return f"strategy s {{\n    market {market}\n    timeframe 1h\n    {body}\n}}\n"


def only(text: str) -> Diagnostic:
    diags = run(text)[1]
    assert len(diags) == 1, [(d.code, d.message) for d in diags]
    return diags[0]


# ---------------------------------------------------------------- valid specs


@pytest.mark.parametrize("kind", ["strategy", "risk", "promotion"])
def test_valid_specs_have_no_diagnostics(kind: str, valid_text: ValidText) -> None:
    spec, diags = run(valid_text(kind, "x"))
    assert diags == []
    assert (spec.kind, spec.name, spec.path) == (kind, "x", "spec.peak")


def test_checked_spec_exposes_params_settings_and_types(valid_text: ValidText) -> None:
    spec, _ = run(valid_text("strategy", "ma"))
    fast, slow = spec.params
    assert (fast.name, fast.unit, fast.default, fast.low, fast.high, fast.step) == (
        "fast", Unit.INT, 20, 5, 50, 5)
    assert slow.default == 60
    assert set(spec.settings()) == {"description", "market", "timeframe", "stop_loss",
                                    "take_profit"}
    rules = spec.items(ast.Rule)
    assert [r.slot for r in rules] == ["entry_long", "exit_long"]
    assert spec.types[id(rules[0].expr)] == Ty(Unit.BOOL, True)


def test_check_module_needs_no_parser() -> None:
    """The stage takes any ``ast.Module``, however it was built."""
    rule = ast.Rule("entry", "long", ast.Binary(">", ast.Name("close"), ast.Name("open")))
    decl = ast.Decl("strategy", "hand", (
        ast.Setting("market", ast.Market("BTC", "EUR")),
        ast.Setting("timeframe", ast.Duration(3600, "1h")),
        rule,
    ))
    spec, diags = check_module(ast.Module("hand.peak", decl))
    assert diags == []
    assert spec.types[id(rule.expr)] == Ty(Unit.BOOL, True)
    broken = ast.Decl("strategy", "hand", (*decl.items, ast.Setting("stoploss",
                                                                     ast.Percent(0.05, "5%"))))
    assert [d.code for d in check_module(ast.Module("hand.peak", broken))[1]] == ["N003"]


# ---------------------------------------------------------------- types and units


@pytest.mark.parametrize(("condition", "expected"), [
    ("close > open", None),
    ("close > 100", None),                      # a plain number adapts to a price
    ("roc(close, 1) > 2%", None),               # a ratio compares with a percentage
    ("close > open * (1 + 2%)", None),          # scaling a price keeps it a price
    ("close / open > 1.01", None),
    ("rsi(close, 14) < 30 and volume > volume[1]", None),
    ("abs(close - open) > atr(14)", None),
    ("(if close > open then high else low) > hl2", None),
    ("crossover(ema(close, 12), ema(close, 26))", None),
    ("rising(close, 3) == falling(open, 2)", None),
    ("close > 2%", "T002"),
    ("close / volume > 1", "T002"),
    ("volume > close", "T002"),
    ("crossover(close, volume)", "T002"),
    ("max(close, 2%) > 1", "T002"),
    ("sma(close, 20)", "T001"),
    ("close > open and rsi(close, 14)", "T001"),
    ("not close", "T001"),
    ("close > true", "T001"),
    ('close > "high"', "T001"),
    ("(if close > open then 1 else true) == true", "T001"),
    ("sma(close)", "T003"),
    ("rsi(close, 14, 2) > 1", "T003"),
    ("sma(close, 0) > close", "T004"),
    ("sma(close, 2.5) > close", "T004"),
    ("sma(close, open) > close", "T004"),
    ("bb_upper(close, 20, close) > close", "T001"),
    ("close[-1] > close", "L001"),
    ("close[1.5] > close", "L002"),
    ("close[volume] > close", "L002"),
    ("lead(close) > close", "L003"),
    ("close > future", "L003"),
    ("clsoe > open", "N001"),
    ("close > sma", "N001"),
    ("smaa(close, 20) > close", "N002"),
])
def test_rule_condition(condition: str, expected: str | None) -> None:
    found = codes(strategy(f"entry long when {condition}"))
    assert found == ([] if expected is None else [expected])


def test_a_constant_rule_never_fires() -> None:
    d = only(strategy("param t: int = 30 in 10..50", "entry long when t > 20"))
    assert d.code == "T001" and "never changes" in d.message


def test_lag_of_a_constant_is_an_error() -> None:
    d = only(strategy("param t: int = 30 in 10..50", "entry long when close > t[1]"))
    assert d.code == "T001" and "only series can be lagged" in d.message


def test_errors_do_not_cascade() -> None:
    assert codes(strategy("let a = sma(clsoe, 20)", "let b = a * 2",
                          "entry long when b > close and a > 0")) == ["N001"]


def test_unit_mismatch_points_at_the_operator_with_help() -> None:
    text = strategy("entry long when close > 2%")
    d = only(text)
    assert d.code == "T002" and text[d.span.start : d.span.end] == ">"
    assert "roc(close, 1) > 2%" in d.help


def test_window_and_lag_params() -> None:
    assert codes(strategy("param n: int = 10 in 1..50", "param k: int = 1 in 0..3",
                          "entry long when close[k] > sma(close, n)")) == []
    assert codes(strategy("param n: int = 10 in 0..50",
                          "entry long when close > sma(close, n)")) == ["T004"]
    assert codes(strategy("param n: float = 10 in 1..50",
                          "entry long when close > sma(close, n)")) == ["T004"]
    assert codes(strategy("param k: int = 1 in -1..3",
                          "entry long when close[k] > close")) == ["L001"]


# ---------------------------------------------------------------- params and requires


@pytest.mark.parametrize(("param", "expected"), [
    ("param n: int = 20 in 5..50 step 5", []),
    ("param w: percent = 2% in 1%..5% step 0.5%", []),
    ("param f: bps = 10bps in 5bps..50bps", []),
    ("param x: float = -0.5 in -1..1 step 0.25", []),
    ("param n: int = 100 in 5..50", ["T005"]),
    ("param n: int = 22 in 5..50 step 5", ["T006"]),
    ("param n: int = 20 in 50..5", ["T007"]),
    ("param n: int = 20 in 5..50 step 0", ["T007"]),
    ("param n: integer = 20 in 5..50", ["T011"]),
    ("param n: int = 2.5 in 1..5", ["T001"]),
    ("param w: percent = 2 in 1%..5%", ["T002"]),
    ("param w: percent = x in 1%..5%", ["T001"]),
])
def test_param_declarations(param: str, expected: list[str]) -> None:
    name = param.split()[1].rstrip(":")
    use = f"entry long when close > sma(close, 20) and {name} > 0"
    found = [c for c in codes(strategy(param, use)) if c != "T001" or expected == ["T001"]]
    assert found == expected


def test_default_off_step_suggests_neighbours() -> None:
    d = only(strategy("param n: int = 22 in 5..50 step 5", "entry long when close > sma(close, n)"))
    assert d.help == "nearest on-step values: 20 or 25"


def test_a_broken_param_does_not_cascade_into_its_uses() -> None:
    assert codes(strategy("param n: integer = 20 in 5..50",
                          "entry long when close > sma(close, n) and close[n] > open")) == [
        "T011"]


def test_require_holds_for_defaults(valid_text: ValidText) -> None:
    text = valid_text("strategy", "s").replace("fast: int = 20", "fast: int = 50")
    text = text.replace("slow: int = 60 in 40..200", "slow: int = 40 in 40..200")
    d = only(text)
    assert d.code == "T008" and "fast = 50" in d.help and "slow = 40" in d.help


def test_require_must_relate_params() -> None:
    assert codes(strategy("param n: int = 20 in 5..50", "require close > n",
                          "entry long when close > sma(close, n)")) == ["T001"]


def test_unused_params_and_lets_are_warnings() -> None:
    _, diags = run(strategy("param n: int = 20 in 5..50", "param m: int = 3 in 1..5",
                            "require n > m", "let unused = sma(close, 20)",
                            "entry long when close > open"))
    assert [(d.code, d.severity) for d in diags] == [
        ("W001", Severity.WARNING), ("W001", Severity.WARNING), ("W002", Severity.WARNING)]
    assert not has_errors(diags)


def test_use_before_definition_is_not_also_unused() -> None:
    assert codes(strategy("let signal = close > slow", "let slow = sma(close, 50)",
                          "entry long when signal")) == ["N016"]


def test_duplicate_definitions() -> None:
    _, diags = run(strategy("let close = sma(open, 5)", "let ma = sma(close, 5)",
                            "let ma = ema(close, 5)", "entry long when close > ma",
                            "entry long when close > open"))
    assert [d.code for d in diags] == ["N009", "N009", "N009"]
    twice = diags[-1]
    assert twice.labels and twice.labels[0].message == "first given here"
    assert "or" in twice.help


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(("line", "expected"), [
    ("stop_loss 5%", []),
    ("stop_loss 150%", ["T009"]),
    ("stop_loss -5%", ["T009"]),
    ("stop_loss 0.05", ["T002"]),
    ("stop_loss 5bps", ["T002"]),
    ("stop_loss close", []),  # a price distance (lang.levels)
    ("stop_loss nope", ["N001"]),
    ("take_profit 15%", []),
    ('description "fine"', []),
    ("description fine", ["T001"]),
    ("timeframe 4h", ["N012"]),
    ("size 25% of equity", []),
    ("size 1000 EUR", []),
    ("size 0.5 BTC", []),  # a quantity in the base currency
    ("size 0.5", ["T002", "T001"]),  # a plain number is not a fraction, and has no basis
    ("size 0.5 ETH", ["T002"]),
    ("size 25% of balance", ["N015"]),
    ("size 25%", ["T001"]),
    ("size 1000 EUR of equity", ["T001"]),
    ("size 0% of equity", ["T009"]),
    ("vol_target 20%", []),
    ("execution { fill next_open fees 10bps slippage 5bps qty_step 0.001 min_notional 10 EUR }",
     []),
    ("execution { fill next_close }", ["N015"]),
    ("execution { fees 10% }", ["T002"]),
    ("execution { fees 2000bps }", ["T009"]),
    ("execution { fees -0bps }", ["T009"]),
    ("execution { fees 10bps fees 20bps }", ["N012"]),
    ("fees 10bps", ["N003"]),
    ("stoploss 5%", ["N003"]),
    ("executor { fill close }", ["N003"]),
    ("component x weight 10%", ["N013"]),
    ("risk live", ["N013"]),
])
def test_strategy_settings(line: str, expected: list[str]) -> None:
    assert codes(strategy(line, "entry long when close > open")) == expected


def test_setting_help_texts() -> None:
    def help_for(line: str) -> str:
        return only(strategy(line, "entry long when close > open")).help

    assert help_for("stoploss 5%") == "did you mean `stop_loss`?"
    assert help_for("fees 10bps") == "`fees` belongs in the `execution { … }` block"
    assert help_for("execution { fill next_close }").startswith("did you mean `next_open`")
    assert help_for("stop_loss 150%") == "allowed: above 0% and at most 100%"
    assert help_for("execution { fees 2000bps }") == "allowed: at least 0bps and at most 1000bps"
    odd = only("strategy s {\n market BTC/EUR\n timeframe 7m\n entry long when close > open\n}")
    assert odd.code == "T009" and odd.help.startswith("supported: 1m 3m 5m")


def test_param_as_setting_value() -> None:
    assert codes(strategy("param sl: percent = 5% in 1%..10%", "stop_loss sl",
                          "entry long when close > open")) == []
    d = only(strategy("param sl: percent = 5% in 1%..150%", "stop_loss sl",
                      "entry long when close > open"))
    assert d.code == "T009" and "param `sl` range" in d.message
    assert codes(strategy("param sl: int = 5 in 1..10", "stop_loss sl",
                          "entry long when close > open")) == ["T001"]


def test_missing_required_settings() -> None:
    _, diags = run("strategy s {\n}")
    assert [(d.code, d.span.line, d.span.col) for d in diags] == [
        ("N011", 1, 10), ("N011", 1, 10), ("N011", 1, 10)]
    assert {d.help for d in diags} >= {"add e.g. `market BTC/EUR`", "add e.g. `timeframe 1h`"}


def test_fill_close_warns() -> None:
    d = only(strategy("execution { fill close }", "entry long when close > open"))
    assert (d.code, d.severity) == ("W003", Severity.WARNING)


# ---------------------------------------------------------------- portfolios (alone)


def portfolio(*lines: str) -> str:
    return "portfolio p {\n    capital 10000 EUR\n    " + "\n    ".join(lines) + "\n}\n"


@pytest.mark.parametrize(("lines", "expected"), [
    (("component a weight 40%", "component b weight 60%"), []),
    (("component a weight 40%", "component b weight 50%"), ["C001"]),
    (("component a weight 100%", "component a weight 0%"), ["C002", "C003"]),
    (("component a weight 150%", "component b weight -50%"), ["C003"]),
    (("component a weight 1",), ["T002"]),
    (("component a weight 100%", "risk r", "risk q"), ["N012"]),
    (("component a weight 100%", "robustness { monte_carlo 3000 stress [crash, fee_x2] }"), []),
    (("component a weight 100%", "robustness { stress [crash, crash, boom] }"),
     ["N012", "N015"]),
    (("component a weight 100%", "robustness { monte_carlo 0 }"), ["T009"]),
    (("component a weight 100%", "param n: int = 1 in 1..2"), ["N013"]),
])
def test_portfolio_composition(lines: tuple[str, ...], expected: list[str]) -> None:
    assert codes(portfolio(*lines)) == expected


def test_weights_sum_reports_every_weight() -> None:
    d = only(portfolio("component a weight 40%", "component b weight 50%"))
    assert d.message == "weights sum to 90%, not 100%"
    assert d.help == "adjust the weights by +10%"
    assert [lb.message for lb in d.labels] == ["weight", "weight"]


def test_portfolio_without_capital_or_components() -> None:
    assert codes("portfolio p {\n}") == ["N011", "N011"]


# ---------------------------------------------------------------- risk limits


def risk_with(valid_text: ValidText, key: str, value: str) -> str:
    lines = valid_text("risk", "r").splitlines()
    return "\n".join(f"    {key} {value}" if line.split()[:1] == [key] else line
                     for line in lines)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("max_symbol_exposure", "90%", ["K001"]),
    ("max_symbol_exposure", "80%", []),
    ("max_daily_loss", "0%", ["K002"]),
    ("max_daily_loss", "-2%", ["K002"]),
    ("max_daily_loss", "150%", ["T009"]),
    ("max_open_positions", "0", ["K003"]),
    ("max_open_positions", "-3", ["K003"]),
    ("max_open_positions", "2.5", ["T001"]),
    ("max_orders_per_minute", "0", ["K003"]),
    ("max_order_notional", "0 EUR", ["K003"]),
    ("max_order_notional", "-5 EUR", ["K003"]),
    ("max_total_exposure", "0%", ["K001", "K003"]),
])
def test_risk_limits(valid_text: ValidText, key: str, value: str,
                     expected: list[str]) -> None:
    assert codes(risk_with(valid_text, key, value)) == expected


def test_symbol_exposure_label_points_at_total(valid_text: ValidText) -> None:
    d = only(risk_with(valid_text, "max_symbol_exposure", "90%"))
    assert d.labels and d.labels[0].message == "total exposure set here"


# ---------------------------------------------------------------- promotion criteria


@pytest.mark.parametrize(("criteria", "expected"), [
    (("sharpe >= 1.5", "max_drawdown >= -15%", "trades >= 50"), []),
    (("sharpe >= 1.5", "sharpe < 1.0"), ["G002"]),
    (("sharpe >= 1.5", "sharpe <= 1.5"), []),
    (("sharpe > 1.5", "sharpe <= 1.5"), ["G002"]),
    (("sharpe == 1", "sharpe != 1"), []),
    (("win_rate > 100%",), ["G001"]),
    (("max_drawdown >= 5%",), ["G001"]),
    (("trades < 0",), ["G001"]),
    (("sharp >= 1",), ["N010"]),
    (("sharpe >= 15%",), ["T002"]),
    (("trades >= 50.5",), ["T002"]),
    (("sharpe >= sortino",), ["T001"]),
    (("1 < sharpe",), ["T001"]),
])
def test_promotion_criteria(criteria: tuple[str, ...], expected: list[str]) -> None:
    text = "promotion g {\n" + "".join(f"    require {c}\n" for c in criteria) + "}\n"
    assert codes(text) == expected


def test_unknown_metric_suggests_the_right_one() -> None:
    d = only("promotion g {\n    require sharp >= 1\n}")
    assert d.help.startswith("did you mean `sharpe`")


# ---------------------------------------------------------------- diagnostics as data


def test_severity_follows_the_registry() -> None:
    for code in CODES:
        d = diag(code, "m", "x.peak")
        expected = Severity.WARNING if code in WARNING_CODES else Severity.ERROR
        assert d.severity is expected and d.is_error is (expected is Severity.ERROR)


def test_unregistered_codes_are_refused() -> None:
    with pytest.raises(KeyError):
        diag("X999", "m", "x.peak")


def test_code_shapes() -> None:
    assert all(len(c) == 4 and c[0] in "PNTLKCGWDRUIE" and c[1:].isdigit() for c in CODES)
    assert {c for c in CODES if c.startswith("W")} | {"D008", "D009", "D018", "D019", "D020",
                                                      "D021"} == WARNING_CODES


def test_did_you_mean() -> None:
    assert did_you_mean("clsoe", ["close", "open"]) == "did you mean `close`?"
    assert did_you_mean("zzz", ["close", "open"]) == ""
    assert " or " in did_you_mean("ma_fst", ["ma_fast", "ma_fist", "volume"])


def test_sort_diagnostics_orders_and_deduplicates() -> None:
    def at(path: str, line: int, col: int, code: str = "N001") -> Diagnostic:
        return diag(code, "m", path, Span(0, 1, line, col, line, col + 1))

    diags = [at("b.peak", 1, 1), at("a.peak", 9, 1), at("a.peak", 2, 5), at("a.peak", 2, 1),
             at("a.peak", 2, 1), at("a.peak", 2, 1, "L001")]
    assert [(d.path, d.span.line, d.span.col, d.code) for d in sort_diagnostics(diags)] == [
        ("a.peak", 2, 1, "L001"), ("a.peak", 2, 1, "N001"), ("a.peak", 2, 5, "N001"),
        ("a.peak", 9, 1, "N001"), ("b.peak", 1, 1, "N001")]
