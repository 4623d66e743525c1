"""`peak runs`' own rendering: numbers, params and deltas for people.

The commands end to end (a registry with runs, exit codes, JSON) are in
tests/registry/test_registry_cli.py.
"""

from __future__ import annotations

import math

from peakdsl.cli.runs import fmt_delta, fmt_metric, fmt_value


def test_formatting() -> None:
    assert fmt_metric("total_return", 0.1234) == "12.34%"
    assert fmt_metric("sharpe", 1.0) == "1.00" and fmt_metric("trades", 1234) == "1,234"
    assert fmt_metric("profit_factor", math.inf) == "∞" and fmt_metric("x", None) == "—"
    assert fmt_value("fees", 0.001) == "0.001" and fmt_value("fill", "close") == "close"
    assert fmt_value("stop", math.nan) == "—" and fmt_value("flag", True) == "True"
    assert fmt_delta("sharpe", 0.5) == "+0.50" and fmt_delta("sharpe", -0.5) == "-0.50"
    assert fmt_delta("sharpe", None) == ""


def test_structured_values_are_compact_json() -> None:
    """A walk-forward window's range or a sweep's best row: one line, keys sorted."""
    assert fmt_value("window", {"to": 2, "from": 1}) == '{"from":1,"to":2}'
    assert fmt_value("best", [1, "a"]) == '[1,"a"]'
    assert fmt_value("bars", 1234) == "1,234" and fmt_value("x", -math.inf) == "-∞"
