"""Compiled values shown in the units specs write them in."""

from __future__ import annotations

from peakdsl.compile import models as m
from peakdsl.review import values


def test_units() -> None:
    assert values.percent(0.05) == "5%"
    assert values.percent(0.075) == "7.5%"
    assert values.percent(-0.15) == "-15%"
    assert values.bps(0.001) == "10bps"
    assert values.bps(0.0005) == "5bps"
    assert values.money(m.Money(amount=1000.0, currency="EUR")) == "1000 EUR"
    assert values.money(None) == "none"
    assert values.number(0.1 + 0.2) == "0.3"
    assert values.percent(0.1234567) != values.percent(0.1234568)


def test_durations_in_the_largest_dividing_unit() -> None:
    assert [values.duration(s) for s in (604_800, 86_400, 5_400, 90, None)] == [
        "7d", "1d", "90m", "90s", "none"]


def test_scalars_params_and_ranges() -> None:
    assert values.scalar(m.Scalar(const=0.05), values.percent) == "5%"
    assert values.scalar(m.Scalar(param="stop"), values.percent) == "param `stop`"
    assert values.scalar(None, values.percent) == "none"
    param = m.Param(name="stop", type="percent", default=0.05, low=0.01, high=0.1, step=0.01)
    assert values.param_range(param) == "percent 1%..10% step 1%"
    assert values.criterion(m.Criterion(metric="max_drawdown", op=">=", threshold=-0.15,
                                        unit="percent")) == "max_drawdown >= -15%"


def test_sizing() -> None:
    market = m.Market(symbol="BTC/EUR", base="BTC", quote="EUR")
    cases = {("equity_fraction", 0.25): "25% of equity", ("notional", 500.0): "500 EUR",
             ("quantity", 0.5): "0.5 BTC", ("vol_target", 0.2): "vol_target 20%"}
    for (mode, value), text in cases.items():
        sizing = m.Sizing(mode=mode, value=m.Scalar(const=value))  # type: ignore[arg-type]
        assert values.sizing(sizing, market) == text
