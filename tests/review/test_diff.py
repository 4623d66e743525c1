"""Every change kind is classified right: small spec pairs written in tmp folders.

Each case writes one version of a spec as ``old/NAME.peak`` and another as ``new/NAME.peak``
and compares the two files through ``api.diff``; the expected changes are literal (kind,
level, subject, before, after).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from peakdsl import api
from peakdsl.review.model import DiffResult

STRATEGY = """\
# a comment the diff must not see
strategy s {{
    description "{description}"
    market {market}
    timeframe {timeframe}

    param fast: int = {fast} in 5..50 step 5
    param slow: int = 60 in {slow_low}..200 step 10
    {extra_param}
    require fast < slow
    {extra_require}

    let fast_ma = {fast_ma}
    let slow_ma = sma(close, slow)

    entry long when {entry}
    exit long when crossunder(fast_ma, slow_ma)
    {short}

    size {size}
    stop_loss {stop}
    {exits}
    execution {{
        fill {fill}
        fees {fees}
        slippage 5bps
        {execution}
    }}
    {extra}
}}
"""
BASE = {"description": "trend", "market": "BTC/EUR", "timeframe": "1h", "fast": "20",
        "slow_low": "40", "extra_param": "", "extra_require": "",
        "fast_ma": "sma(close, fast)", "entry": "crossover(fast_ma, slow_ma)", "short": "",
        "size": "25% of equity", "stop": "5%", "exits": "", "fill": "next_open",
        "fees": "10bps", "execution": "", "extra": ""}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.peak"
    path.write_text(text, encoding="utf-8")
    return path


def diff_texts(tmp_path: Path, name: str, old: str, new: str) -> DiffResult:
    a = write(tmp_path / "old", name, old)
    b = write(tmp_path / "new", name, new)
    return api.diff(str(a), str(b))


def strategy(**changes: str) -> str:
    return STRATEGY.format(**{**BASE, **changes})


def rows(result: DiffResult) -> list[tuple[str, str, str, str | None, str | None]]:
    return [(c.kind, c.level, c.subject, c.before, c.after) for c in result.changes]


STRATEGY_CASES = {
    "description": ({"description": "trend, v2"},
                    [("description", "info", "description", "'trend'", "'trend, v2'")]),
    "market": ({"market": "ETH/EUR"}, [("market", "review", "market", "BTC/EUR", "ETH/EUR")]),
    "timeframe": ({"timeframe": "4h"},
                  [("timeframe", "review", "timeframe", "1h", "4h")]),
    "param default": ({"fast": "25"}, [("param_default", "review", "fast", "20", "25")]),
    "param range": ({"slow_low": "30"}, [("param_range", "info", "slow",
                                          "int 40..200 step 10", "int 30..200 step 10")]),
    "param added": ({"extra_param": "param k: percent = 2% in 1%..5%",
                     "stop": "k"},
                    [("exits", "review", "stop_loss", "5%", "param `k`"),
                     ("param_added", "info", "k", None, "2% in percent 1%..5%")]),
    "constraint": ({"extra_require": "require slow - fast >= 20"},
                   [("constraint", "info", "require", None, "slow - fast >= 20")]),
    "logic, written": ({"entry": "crossover(fast_ma, slow_ma) and close > slow_ma"},
                       [("logic", "review", "entry_long", "crossover(fast_ma, slow_ma)",
                         "crossover(fast_ma, slow_ma) and close > slow_ma")]),
    "logic through a let": ({"fast_ma": "ema(close, fast)"},
                            [("logic", "review", "entry_long",
                              "crossover(sma(close, fast), sma(close, slow))",
                              "crossover(ema(close, fast), sma(close, slow))"),
                             ("logic", "review", "exit_long",
                              "crossunder(sma(close, fast), sma(close, slow))",
                              "crossunder(ema(close, fast), sma(close, slow))")]),
    "rule added": ({"short": "entry short when crossunder(fast_ma, slow_ma)"},
                   [("logic", "review", "entry_short", None,
                     "crossunder(fast_ma, slow_ma)")]),
    "warm-up": ({"fast_ma": "sma(close, fast)[100]", "entry": "fast_ma > slow_ma"},
                [("logic", "review", "entry_long", "crossover(fast_ma, slow_ma)",
                  "fast_ma > slow_ma"),
                 ("logic", "review", "exit_long", "crossunder(sma(close, fast), "
                  "sma(close, slow))", "crossunder(sma(close, fast)[100], sma(close, slow))"),
                 ("warmup", "info", "warmup", "max(fast, slow) (60 bars at the defaults)",
                  "max(fast + 100, slow) (120 bars at the defaults)")]),
    "frame added": ({"entry": "crossover(fast_ma, slow_ma) and close > sma(close, 50)@1d"},
                    [("logic", "review", "entry_long", "crossover(fast_ma, slow_ma)",
                      "crossover(fast_ma, slow_ma) and close > sma(close, 50)@1d"),
                     ("warmup", "info", "warmup", "max(fast, slow) (60 bars at the defaults)",
                      "max(1222, fast, slow) (1222 bars at the defaults)")]),
    "market read": ({"entry": "crossover(fast_ma, slow_ma) and close@ETH/EUR > 0"},
                    [("market", "review", "markets_read", None, "ETH/EUR"),
                     ("logic", "review", "entry_long", "crossover(fast_ma, slow_ma)",
                      "crossover(fast_ma, slow_ma) and close@ETH/EUR > 0")]),
    "sizing": ({"size": "30% of equity"},
               [("sizing", "review", "size", "25% of equity", "30% of equity")]),
    "stop": ({"stop": "7%"}, [("exits", "review", "stop_loss", "5%", "7%")]),
    "stop as an expression": ({"stop": "2 * atr(14)"},
                              [("exits", "review", "stop_loss", "5%",
                                "2 * atr(14) (price distance, at the signal bar)"),
                               ("warmup", "info", "warmup", "max(fast, slow) (60 bars at the "
                                "defaults)", "max(14, fast, slow) (60 bars at the defaults)")]),
    "sizing by an expression": ({"size": "min(20% / stdev(roc(close, 1), 20), 1) of equity"},
                                [("sizing", "review", "size", "25% of equity",  # the graph's
                                  "min((0.2 / stdev(roc(close, 1), 20)), 1) of equity"),
                                 ("warmup", "info", "warmup", "max(fast, slow) (60 bars at "
                                  "the defaults)", "max(20, fast, slow) (60 bars at the "
                                  "defaults)")]),
    "trade rules": ({"extra": "min_hold 3\n    reversal flat"},
                    [("trade_rules", "review", "min_hold", "off", "3"),
                     ("trade_rules", "review", "reversal", "flip", "flat")]),
    "target added": ({"exits": "take_profit 15%"},
                     [("exits", "review", "take_profit", None, "15%")]),
    "fees": ({"fees": "5bps"}, [("cost_model", "review", "fees", "10bps", "5bps")]),
    "fill": ({"fill": "close"}, [("cost_model", "review", "fill", "next_open", "close")]),
    "leverage up": ({"execution": "leverage 2"},
                    [("leverage", "critical", "leverage", "1", "2")]),
    "calendar": ({"extra": "calendar weekdays"},
                 [("calendar", "review", "calendar", "always", "weekdays")]),
    "robustness": ({"extra": "robustness { monte_carlo 500 }"},
                   [("robustness", "info", "robustness.monte_carlo", "1000", "500")]),
}


@pytest.mark.parametrize("case", sorted(STRATEGY_CASES))
def test_strategy_change_kinds(tmp_path: Path, case: str) -> None:
    changes, expected = STRATEGY_CASES[case]
    result = diff_texts(tmp_path, "s", strategy(), strategy(**changes))
    assert rows(result) == expected
    assert result.specs[0].status == "changed"


def test_leverage_down_is_tightened(tmp_path: Path) -> None:
    result = diff_texts(tmp_path, "s", strategy(execution="leverage 3"),
                        strategy(execution="leverage 2"))
    assert rows(result) == [("leverage", "review", "leverage", "3", "2")]
    assert result.changes[0].direction == "tightened"


def test_comments_formatting_let_names_and_order_are_no_change(tmp_path: Path) -> None:
    old = strategy()
    new = (strategy(fast_ma="sma( close,fast )", entry="crossover(f, slow_ma)")
           .replace("let fast_ma =", "let f =").replace("crossunder(fast_ma", "crossunder(f")
           .replace("# a comment", "#   another comment\n\n# and one more")
           .replace("    let slow_ma = sma(close, slow)\n", "")
           .replace("    let f =", "    let slow_ma = sma(close, slow)  # moved up\n    let f ="))
    result = diff_texts(tmp_path, "s", old, new)
    assert result.changes == [] and result.highest is None
    assert result.specs[0].status == "reformatted"
    assert result.specs[0].before_sha256 != result.specs[0].after_sha256


def test_operand_order_of_commutative_and_mirrored_operators_is_no_change(
        tmp_path: Path) -> None:
    old = strategy(entry="fast_ma > slow_ma and close > open")
    same = strategy(entry="open < close and slow_ma < fast_ma")
    assert diff_texts(tmp_path, "s", old, same).changes == []
    swapped = strategy(entry="slow_ma > fast_ma and close > open")
    assert rows(diff_texts(tmp_path / "2", "s", old, swapped)) == [
        ("logic", "review", "entry_long", "fast_ma > slow_ma and close > open",
         "slow_ma > fast_ma and close > open")]


RISK = """\
risk r {{
    max_order_notional {notional}
    max_symbol_exposure 30%
    max_total_exposure 80%
    max_open_positions {positions}
    max_daily_loss {loss}
    max_orders_per_minute 10
}}
"""


def risk(notional: str = "1000 EUR", positions: str = "3", loss: str = "2%") -> str:
    return RISK.format(notional=notional, positions=positions, loss=loss)


def test_risk_limits_loosened_critical_tightened_review(tmp_path: Path) -> None:
    result = diff_texts(tmp_path, "r", risk(), risk(positions="2", loss="3%"))
    assert rows(result) == [
        ("risk_limit", "critical", "max_daily_loss", "2%", "3%"),
        ("risk_limit", "review", "max_open_positions", "3", "2")]
    assert [c.direction for c in result.changes] == ["loosened", "tightened"]
    assert result.highest == "critical" and (result.counts.critical, result.counts.review) \
        == (1, 1)
    assert result.changes[0].message == "max_daily_loss loosened: 2% → 3%"


def test_a_limit_in_another_currency_is_critical(tmp_path: Path) -> None:
    result = diff_texts(tmp_path, "r", risk(), risk(notional="1000 USD"))
    assert rows(result) == [("risk_limit", "critical", "max_order_notional", "1000 EUR",
                             "1000 USD")]


GATE = "promotion g {{\n{body}\n}}\n"


def gate(*criteria: str) -> str:
    return GATE.format(body="\n".join(f"    require {c}" for c in criteria))


@pytest.mark.parametrize(("old", "new", "direction", "lvl"), [
    ("sharpe >= 1.5", "sharpe >= 1.2", "weakened", "critical"),
    ("sharpe >= 1.5", "sharpe >= 2", "strengthened", "review"),
    ("sharpe >= 1.5", "sharpe > 1.5", "strengthened", "review"),
    ("sharpe > 1.5", "sharpe >= 1.5", "weakened", "critical"),
    ("max_drawdown >= -15%", "max_drawdown >= -20%", "weakened", "critical"),
    ("volatility <= 40%", "volatility <= 30%", "strengthened", "review"),
    ("volatility <= 30%", "volatility < 40%", "weakened", "critical"),
])
def test_criteria_weakened_critical_strengthened_review(
        tmp_path: Path, old: str, new: str, direction: str, lvl: str) -> None:
    result = diff_texts(tmp_path, "g", gate("trades >= 50", old), gate("trades >= 50", new))
    assert [(c.kind, c.direction, c.level, c.before, c.after) for c in result.changes] == [
        ("criterion", direction, lvl, old, new)]


def test_criterion_removed_is_weakened_added_strengthened(tmp_path: Path) -> None:
    result = diff_texts(tmp_path, "g", gate("sharpe >= 1.5", "trades >= 50"),
                        gate("sharpe >= 1.5", "profit_factor >= 1.3"))
    assert rows(result) == [
        ("criterion", "critical", "trades", "trades >= 50", None),
        ("criterion", "review", "profit_factor", None, "profit_factor >= 1.3")]


def test_criteria_order_is_no_change(tmp_path: Path) -> None:
    result = diff_texts(tmp_path, "g", gate("sharpe >= 1.5", "trades >= 50"),
                        gate("trades >= 50", "sharpe >= 1.5"))
    assert result.changes == []


# ------------------------------------------------------------------------- portfolios

PORTFOLIO = """\
portfolio p {{
    capital {capital}
    {components}
    {rebalance}
    {risk}
}}
"""
A_STRATEGY = strategy().replace("strategy s {", "strategy a {")
B_STRATEGY = strategy(fast="10").replace("strategy s {", "strategy b {")


def project(folder: Path, portfolio: str, a: str = A_STRATEGY, limits: str = "") -> None:
    write(folder, "a", a)
    write(folder, "b", B_STRATEGY)
    write(folder, "r", limits or risk())
    write(folder, "r2", risk(loss="3%").replace("risk r {", "risk r2 {"))
    write(folder, "p", portfolio)


def portfolio(components: str = "component a weight 50%\n    component b weight 50%",
              capital: str = "10000 EUR", rebalance: str = "", risk_ref: str = "risk r"
              ) -> str:
    return PORTFOLIO.format(capital=capital, components=components, rebalance=rebalance,
                            risk=risk_ref)


def diff_projects(tmp_path: Path, old: dict[str, str], new: dict[str, str]) -> DiffResult:
    project(tmp_path / "old", **old)
    project(tmp_path / "new", **new)
    return api.diff(str(tmp_path / "old"), str(tmp_path / "new"))


def portfolio_rows(result: DiffResult) -> list[tuple[str, str, str, str | None, str | None]]:
    return [(c.kind, c.level, c.subject, c.before, c.after) for c in result.changes
            if c.spec == "p"]


PORTFOLIO_CASES = {
    "weight": ({"components": "component a weight 40%\n    component b weight 60%"},
               [("component_weight", "review", "a", "50%", "40%"),
                ("component_weight", "review", "b", "50%", "60%")]),
    "overrides": ({"components": "component a weight 50% with { fast = 10 }\n"
                                 "    component b weight 50%"},
                  [("component_overrides", "review", "a", "none", "{ fast = 10 }")]),
    "removed and added": ({"components": "component a weight 100%"},
                          [("component_removed", "review", "b", "50%", None),
                           ("component_weight", "review", "a", "50%", "100%")]),
    "order": ({"components": "component b weight 50%\n    component a weight 50%"},
              [("component_order", "review", "components", "a, b", "b, a")]),
    "capital": ({"capital": "20000 EUR"},
                [("capital", "review", "capital", "10000 EUR", "20000 EUR")]),
    "rebalance": ({"rebalance": "rebalance 7d"},
                  [("rebalance", "review", "rebalance", "none", "every 7d")]),
    "risk removed": ({"risk_ref": ""}, [("risk_spec", "critical", "risk", "r", None)]),
    "risk swapped": ({"risk_ref": "risk r2"},
                     [("risk_limit", "critical", "r2.max_daily_loss", "2%", "3%"),
                      ("risk_spec", "review", "risk", "r", "r2")]),
}


@pytest.mark.parametrize("case", sorted(PORTFOLIO_CASES))
def test_portfolio_change_kinds(tmp_path: Path, case: str) -> None:
    changes, expected = PORTFOLIO_CASES[case]
    result = diff_projects(tmp_path, {"portfolio": portfolio()},
                           {"portfolio": portfolio(**changes)})
    assert portfolio_rows(result) == expected
    assert [c.spec for c in result.changes] == ["p"] * len(expected)


def test_a_changed_component_and_a_loosened_risk_spec_show_under_the_portfolio(
        tmp_path: Path) -> None:
    result = diff_projects(tmp_path, {"portfolio": portfolio()},
                           {"portfolio": portfolio(), "a": strategy(fast="25").replace(
                               "strategy s {", "strategy a {"),
                            "limits": risk(positions="4")})
    assert [(c.spec, c.kind, c.level) for c in result.changes] == [
        ("r", "risk_limit", "critical"),
        ("a", "param_default", "review"),
        ("p", "risk_limit", "critical"),
        ("p", "component_changed", "review")]
    assert {s.name: s.status for s in result.specs} == {
        "r": "changed", "r2": "unchanged", "a": "changed", "b": "unchanged", "p": "changed"}


def test_a_comment_in_a_component_does_not_change_the_portfolio(tmp_path: Path) -> None:
    result = diff_projects(tmp_path, {"portfolio": portfolio()},
                           {"portfolio": portfolio(), "a": "# new comment\n" + A_STRATEGY})
    assert result.changes == []
    assert {s.name: s.status for s in result.specs}["a"] == "reformatted"


def test_specs_added_removed_and_renamed(tmp_path: Path) -> None:
    write(tmp_path / "old", "r", risk())
    write(tmp_path / "new", "r2", risk().replace("risk r {", "risk r2 {"))
    folders = api.diff(str(tmp_path / "old"), str(tmp_path / "new"))
    assert rows(folders) == [("spec_removed", "review", "r", "risk", None),
                             ("spec_added", "review", "r2", None, "risk")]
    assert [s.status for s in folders.specs] == ["removed", "added"]
    files = api.diff(str(tmp_path / "old" / "r.peak"), str(tmp_path / "new" / "r2.peak"))
    assert rows(files) == [("spec_renamed", "review", "name", "r", "r2")]


def test_every_config_field_has_a_comparer_or_is_derived() -> None:
    """A field a later compiler adds must be classified here, not fall through to `other`."""
    from peakdsl.review.diff import CONFIGS, FIELDS, IGNORED

    for kind, model in CONFIGS.items():
        assert set(model.model_fields) == set(FIELDS[kind]) | IGNORED[kind], kind
        assert not set(FIELDS[kind]) & IGNORED[kind], kind


def test_specs_that_do_not_check_raise_with_both_sides_diagnostics(tmp_path: Path) -> None:
    bad = strategy(entry="clsoe > 1")
    with pytest.raises(api.SpecError) as caught:
        diff_texts(tmp_path, "s", bad, bad.replace("stop_loss 5%", "stop_loss 500%"))
    codes = sorted(d.code for d in caught.value.diagnostics)
    assert codes == ["N001", "N001", "T009"]
