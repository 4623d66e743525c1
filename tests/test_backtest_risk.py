"""`peakdsl.api.backtest(..., risk=NAME)`: a strategy run under a risk spec's limits.

The risk stage itself is tested in tests/engine/test_risk.py; here, the resolution of the
spec (name or file, kind, currency) and what a run reports.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peakdsl import api
from peakdsl.backtest import backtest_doc, risk_note
from peakdsl.lang.project import UsageError

ROOT = Path(__file__).resolve().parents[1]
EUR = "specs/strategies/ma_trend_btc_moderate.peak"  # BTC/EUR, like the risk specs


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("risk_project")
    shutil.copytree(ROOT / "specs", root / "specs")
    return root


def test_a_risk_spec_cuts_entries_and_the_run_says_so(project: Path) -> None:
    free = api.backtest(str(project / EUR), root=project, record=False).result
    held = api.backtest(str(project / EUR), root=project, record=False,
                        risk="live_conservative").result
    assert free.sim.risk == {} and free.risk_spec is None
    # 500 EUR orders instead of 100 % of a 10,000 equity: every entry cut, none denied
    assert held.sim.trade_count == free.sim.trade_count == 44
    assert held.sim.risk == {"reduced_order_notional": 44}
    assert max(held.sim.trades["qty"] * held.sim.trades["entry_price"]) == pytest.approx(500.0)
    assert held.warnings[-1] == ("risk spec `live_conservative` cut entries: "
                                 "44 reduced by max_order_notional")
    doc = backtest_doc(held, None).risk
    assert (doc.spec, doc.reduced, doc.denied) == ("live_conservative",
                                                   {"order_notional": 44}, {})
    assert doc.limits["max_daily_loss"] == 0.01
    assert backtest_doc(free, None).risk.limits["max_daily_loss"] is None


def test_a_risk_spec_file_works_like_its_name(project: Path) -> None:
    by_file = api.backtest(str(project / EUR), root=project, record=False,
                           risk=str(project / "specs/risk/live_conservative.peak")).result
    assert by_file.sim.risk == {"reduced_order_notional": 44}


@pytest.mark.parametrize(("risk", "spec", "code", "text"), [
    ("live_conservativ", EUR, "U001", "did you mean `live_conservative`"),
    ("live_gate", EUR, "U003", "is a promotion, not a risk spec"),
    ("live_moderate", "specs/strategies/ma_crossover.peak", "U005",
     "max_order_notional is in EUR, but BTC/USDT is in USDT"),
])
def test_a_risk_spec_that_does_not_fit_is_a_usage_error(project: Path, risk: str, spec: str,
                                                        code: str, text: str) -> None:
    with pytest.raises(UsageError) as caught:
        api.backtest(str(project / spec), root=project, record=False, risk=risk)
    d = caught.value.diagnostic
    assert d.code == code and text in d.message + " " + d.help


def test_risk_note_names_the_limits() -> None:
    note = risk_note("lim", {"denied_daily_loss": 2, "reduced_total_exposure": 1})
    assert note == ("risk spec `lim` cut entries: 2 denied by max_daily_loss, "
                    "1 reduced by max_total_exposure")
