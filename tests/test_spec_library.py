"""The spec library in specs/: it checks cleanly, holds every required spec, and the risk-profile
presets carry exactly the numbers they promise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from peakdsl.lang import ast
from peakdsl.lang.parser import parse_text

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

GENERIC = ("ma_crossover", "rsi_reversion", "breakout_donchian", "momentum", "bollinger_bands",
           "macd", "trend_following", "mean_reversion", "vol_breakout", "breakout")
RSI_PRESETS = {  # profile: (rsi length, oversold, overbought, stop, target)
    "conservative": (21, 25, 75, 0.03, 0.06),
    "moderate": (14, 30, 70, 0.04, 0.08),
    "aggressive": (10, 20, 80, 0.05, 0.10),
}
MA_PRESETS = {  # profile: (fast, slow, stop, target, timeframe)
    "conservative": (20, 100, 0.04, 0.12, "4h"),
    "moderate": (20, 60, 0.05, 0.15, "1h"),
    "aggressive": (10, 40, 0.06, 0.20, "30m"),
}
TREND_PRESETS = {  # profile: (MA length, stop, target, timeframe)
    "conservative": (50, 0.04, 0.12, "4h"),
    "moderate": (30, 0.05, 0.15, "1h"),
    "aggressive": (20, 0.06, 0.20, "30m"),
}
PRESETS = ([f"rsi_reversion_{c}_{p}" for c in ("btc", "eth") for p in RSI_PRESETS]
           + [f"ma_trend_btc_{p}" for p in MA_PRESETS]
           + [f"trend_following_eth_{p}" for p in TREND_PRESETS])
STRATEGIES = (*GENERIC, *PRESETS)
RISK = ("live_conservative", "live_moderate", "live_aggressive")
PROMOTION = ("live_gate",)
PORTFOLIOS = ("multi_style_conservative", "multi_style_moderate", "multi_style_aggressive")
REQUIRED_RISK_KEYS = ("max_order_notional", "max_symbol_exposure", "max_total_exposure",
                      "max_open_positions", "max_daily_loss", "max_orders_per_minute")


def _peak() -> list[str]:
    exe = shutil.which("peak", path=str(Path(sys.executable).parent)) or shutil.which("peak")
    return [exe] if exe else [sys.executable, "-m", "peakdsl.cli"]


def _decl(folder: str, name: str) -> ast.Decl:
    path = SPECS / folder / f"{name}.peak"
    result = parse_text(path.read_text(encoding="utf-8"), str(path))
    assert result.module is not None, result.diagnostics
    return result.module.decl


def _params(decl: ast.Decl) -> dict[str, ast.Param]:
    return {i.name: i for i in decl.items if isinstance(i, ast.Param)}


def _settings(decl: ast.Decl) -> dict[str, ast.Expr]:
    return {i.key: i.value for i in decl.items if isinstance(i, ast.Setting)}


def _block(decl: ast.Decl, key: str) -> dict[str, ast.Expr]:
    for item in decl.items:
        if isinstance(item, ast.Block) and item.key == key:
            return {s.key: s.value for s in item.settings}
    return {}


def _value(expr: ast.Expr) -> float:
    if isinstance(expr, ast.Neg):
        return -_value(expr.operand)
    assert isinstance(expr, ast.Number | ast.Percent | ast.Bps), expr
    return expr.value


def _default(decl: ast.Decl, param: str) -> float:
    return _value(_params(decl)[param].default)


def _setting_value(decl: ast.Decl, key: str) -> float:
    """A numeric setting, following it to the param's default when it names a param."""
    value = _settings(decl)[key]
    if isinstance(value, ast.Name):
        return _default(decl, value.id)
    return _value(value)


def _timeframe(decl: ast.Decl) -> str:
    value = _settings(decl)["timeframe"]
    assert isinstance(value, ast.Duration)
    return value.text


def _market(decl: ast.Decl) -> str:
    value = _settings(decl)["market"]
    assert isinstance(value, ast.Market)
    return f"{value.base}/{value.quote}"


# ---------------------------------------------------------------- the whole library


def test_peak_check_specs_is_clean() -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([*_peak(), "check", "specs/"], cwd=ROOT, capture_output=True, check=False,
                          text=True, timeout=120, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "ok: no problems found" in output
    assert "warning" not in output


@pytest.mark.parametrize(("folder", "names"), [
    ("strategies", STRATEGIES), ("risk", RISK + PROMOTION), ("portfolios", PORTFOLIOS)])
def test_required_specs_exist(folder: str, names: tuple[str, ...]) -> None:
    for name in names:
        path = SPECS / folder / f"{name}.peak"
        assert path.is_file(), f"missing {path.relative_to(ROOT)}"
        assert _decl(folder, name).name == name


def test_every_file_holds_the_declaration_named_like_it() -> None:
    for path in SPECS.rglob("*.peak"):
        result = parse_text(path.read_text(encoding="utf-8"), str(path))
        assert result.module is not None, path
        assert result.module.decl.name == path.stem


# ---------------------------------------------------------------- strategies


@pytest.mark.parametrize("name", STRATEGIES)
def test_strategy_has_the_house_style(name: str) -> None:
    decl = _decl("strategies", name)
    assert decl.kind == "strategy"
    settings = _settings(decl)
    assert isinstance(settings.get("description"), ast.String)
    assert {"market", "timeframe"} <= set(settings)
    params = _params(decl)
    assert params, "params give sweeps a space"
    for param in params.values():
        assert param.step is not None, f"param {param.name} needs a step"
    assert any(isinstance(i, ast.Let) for i in decl.items)
    assert any(isinstance(i, ast.Rule) and i.kind == "entry" for i in decl.items)
    sizes = [i for i in decl.items if isinstance(i, ast.Size)]
    assert len(sizes) == 1 and sizes[0].basis == "equity"
    execution = _block(decl, "execution")
    assert isinstance(execution["fill"], ast.Name) and execution["fill"].id == "next_open"
    assert _value(execution["fees"]) == pytest.approx(0.0010)
    assert _value(execution["slippage"]) == pytest.approx(0.0005)


def test_generic_defaults() -> None:
    assert (_default(_decl("strategies", "ma_crossover"), "fast"),
            _default(_decl("strategies", "ma_crossover"), "slow")) == (20, 50)
    rsi = _decl("strategies", "rsi_reversion")
    assert [_default(rsi, p) for p in ("length", "oversold", "overbought")] == [14, 30, 70]
    macd = _decl("strategies", "macd")
    assert [_default(macd, p) for p in ("fast", "slow", "signal")] == [12, 26, 9]
    breakout = _decl("strategies", "breakout")
    assert _default(breakout, "length") == 20
    assert _setting_value(breakout, "stop_loss") == pytest.approx(0.03)
    assert _setting_value(breakout, "take_profit") == pytest.approx(0.06)
    assert _setting_value(breakout, "trailing_stop") == pytest.approx(0.02)
    assert _default(_decl("strategies", "momentum"), "entry_roc") == pytest.approx(0.02)
    assert _default(_decl("strategies", "momentum"), "exit_roc") == pytest.approx(0.01)
    assert _default(_decl("strategies", "mean_reversion"), "entry_z") == 2
    assert _default(_decl("strategies", "vol_breakout"), "k") == pytest.approx(1.5)
    bb = _decl("strategies", "bollinger_bands")
    assert (_default(bb, "length"), _default(bb, "width")) == (20, 2)
    tf = _decl("strategies", "trend_following")
    assert [_default(tf, p) for p in ("adx_length", "ma_length", "adx_entry", "adx_exit")] \
        == [14, 50, 25, 20]
    donchian = _decl("strategies", "breakout_donchian")
    assert _default(donchian, "entry_len") == 20
    assert _default(donchian, "exit_len") <= _default(donchian, "entry_len")


@pytest.mark.parametrize("coin", ["btc", "eth"])
@pytest.mark.parametrize("profile", sorted(RSI_PRESETS))
def test_rsi_presets(coin: str, profile: str) -> None:
    decl = _decl("strategies", f"rsi_reversion_{coin}_{profile}")
    length, oversold, overbought, stop, target = RSI_PRESETS[profile]
    assert _default(decl, "length") == length
    assert _default(decl, "oversold") == oversold
    assert _default(decl, "overbought") == overbought
    assert _setting_value(decl, "stop_loss") == pytest.approx(stop)
    assert _setting_value(decl, "take_profit") == pytest.approx(target)
    assert _timeframe(decl) == "15m"
    assert _market(decl) == f"{coin.upper()}/EUR"


@pytest.mark.parametrize("profile", sorted(MA_PRESETS))
def test_ma_trend_presets(profile: str) -> None:
    decl = _decl("strategies", f"ma_trend_btc_{profile}")
    fast, slow, stop, target, timeframe = MA_PRESETS[profile]
    assert (_default(decl, "fast"), _default(decl, "slow")) == (fast, slow)
    assert _setting_value(decl, "stop_loss") == pytest.approx(stop)
    assert _setting_value(decl, "take_profit") == pytest.approx(target)
    assert _timeframe(decl) == timeframe
    assert _market(decl) == "BTC/EUR"


@pytest.mark.parametrize("profile", sorted(TREND_PRESETS))
def test_trend_following_presets(profile: str) -> None:
    decl = _decl("strategies", f"trend_following_eth_{profile}")
    ma_length, stop, target, timeframe = TREND_PRESETS[profile]
    assert _default(decl, "ma_length") == ma_length
    assert _default(decl, "adx_length") == 14
    assert _setting_value(decl, "stop_loss") == pytest.approx(stop)
    assert _setting_value(decl, "take_profit") == pytest.approx(target)
    assert _timeframe(decl) == timeframe
    assert _market(decl) == "ETH/EUR"


# ---------------------------------------------------------------- risk and promotion


@pytest.mark.parametrize("name", RISK)
def test_risk_specs_set_every_limit(name: str) -> None:
    decl = _decl("risk", name)
    assert decl.kind == "risk"
    assert set(REQUIRED_RISK_KEYS) <= set(_settings(decl))


def test_risk_profiles_tighten_in_order() -> None:
    def limit(name: str, key: str) -> float:
        value = _settings(_decl("risk", name))[key]
        return value.amount if isinstance(value, ast.Money) else _value(value)
    for key in REQUIRED_RISK_KEYS:
        values = [limit(n, key) for n in RISK]
        assert values == sorted(values), f"{key} should grow from conservative to aggressive"


def test_live_gate_criteria() -> None:
    decl = _decl("risk", "live_gate")
    assert decl.kind == "promotion"
    criteria = {}
    for item in decl.items:
        if isinstance(item, ast.Require):
            expr = item.expr
            assert isinstance(expr, ast.Binary) and isinstance(expr.left, ast.Name)
            criteria[expr.left.id] = (expr.op, _value(expr.right))
    assert criteria["sharpe"] == (">=", 1.5)
    assert criteria["max_drawdown"] == (">=", pytest.approx(-0.15))
    assert criteria["profit_factor"] == (">=", 1.3)
    assert criteria["trades"] == (">=", 50)


# ---------------------------------------------------------------- portfolios


@pytest.mark.parametrize("name", PORTFOLIOS)
def test_portfolios(name: str) -> None:
    decl = _decl("portfolios", name)
    profile = name.removeprefix("multi_style_")
    components = [i for i in decl.items if isinstance(i, ast.Component)]
    assert components
    total = sum(_value(c.weight) for c in components)
    assert total == pytest.approx(1.0)
    assert all(c.strategy.endswith(profile) for c in components)
    assert any(c.overrides for c in components), "at least one per-component override"
    settings = _settings(decl)
    capital = settings["capital"]
    assert isinstance(capital, ast.Money) and (capital.amount, capital.currency) == (10000, "EUR")
    rebalance = settings["rebalance"]
    assert isinstance(rebalance, ast.Duration) and rebalance.seconds == 7 * 86400
    risk = [i for i in decl.items if isinstance(i, ast.RiskRef)]
    assert [r.name for r in risk] == [f"live_{profile}"]
    robustness = _block(decl, "robustness")
    assert _value(robustness["monte_carlo"]) == 3000
    assert _value(robustness["seed"]) == 7
    stress = robustness["stress"]
    assert isinstance(stress, ast.List)
    assert [s.id for s in stress.items if isinstance(s, ast.Name)] == [
        "crash", "vol_spike", "fee_x2"]
