"""`peak promote` end to end on the demo data: evidence bound to the exact artifact, a gate
that fails writes nothing, testnet before live, four eyes, status and check say why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from peakdsl.promote.flow import PromotionError, check, promote, status

MA = "specs/strategies/ma_crossover.peak"
EASY = """promotion easy_gate {
    require sharpe >= -10
    require trades >= 10
}
"""
ROBUST = """promotion robust_gate {
    require trades >= 10
    require mc_p05_return > -90%
}
"""


def peak(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peakdsl.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def gated(project: Path) -> Path:
    (project / "specs" / "risk" / "easy_gate.peak").write_text(EASY)
    (project / "specs" / "risk" / "robust_gate.peak").write_text(ROBUST)
    return project


def codes(exc: pytest.ExceptionInfo[PromotionError]) -> list[str]:
    return [d.code for d in exc.value.diagnostics]


def test_missing_evidence_then_run_then_the_chain(gated: Path) -> None:
    spec = str(gated / MA)
    with pytest.raises(PromotionError) as missing:
        promote(spec, gate="robust_gate", stage="testnet", root=gated)
    assert codes(missing) == ["R002", "R002"]  # backtest and robustness
    assert not (gated / "promotions").exists()
    done = promote(spec, gate="robust_gate", stage="testnet", root=gated, run=True,
                   author="alice")
    record = done.record
    assert record.sequence == 1 and record.previous is None and record.stage == "testnet"
    assert set(record.evidence) == {"backtest", "robustness"}
    assert all(c.passed for c in record.criteria) and record.lineage["trials"] >= 1
    assert json.loads(done.path.read_text())["sha256"] == record.sha256
    assert check(spec, "testnet", root=gated).ok
    no = check(spec, "live", root=gated)
    assert not no.ok and "no live record" in no.reason


def test_a_failing_gate_writes_nothing(gated: Path) -> None:
    spec = str(gated / MA)
    promote(spec, gate="easy_gate", stage="testnet", root=gated, run=True)
    (gated / "specs" / "risk" / "hard_gate.peak").write_text(
        EASY.replace("easy_gate", "hard_gate").replace(">= -10", ">= 1.5"))
    with pytest.raises(PromotionError) as failed:
        promote(spec, gate="hard_gate", stage="testnet", root=gated)
    assert codes(failed) == ["R001"]
    table = {t.metric: t for t in failed.value.table}
    assert not table["sharpe"].passed and table["sharpe"].threshold == 1.5
    assert table["trades"].passed and table["trades"].source == table["sharpe"].source
    assert len(list((gated / "promotions" / "ma_crossover").glob("*.json"))) == 1


def test_live_needs_testnet_and_another_reviewer(gated: Path) -> None:
    spec = str(gated / MA)
    with pytest.raises(PromotionError) as early:
        promote(spec, gate="easy_gate", stage="live", root=gated, run=True)
    assert codes(early) == ["R006"]
    promote(spec, gate="easy_gate", stage="testnet", root=gated, author="alice")
    live = promote(spec, gate="easy_gate", stage="live", root=gated, author="alice").record
    assert live.previous is not None and live.sequence == 2
    assert "not approved" in check(spec, "live", root=gated).reason
    own = peak("promote", "approve", live.sha256[:10], "--reviewer", "alice", cwd=gated)
    assert own.returncode == 2 and "U012" in own.stderr
    ok = peak("promote", "approve", live.sha256[:10], "--reviewer", "bob", cwd=gated)
    assert ok.returncode == 0, ok.stderr
    assert check(spec, "live", root=gated).ok
    cli = peak("promote", "check", MA, "--stage", "live", cwd=gated)
    assert cli.returncode == 0 and cli.stdout.startswith("yes")


def test_status_says_why_a_record_no_longer_applies(gated: Path) -> None:
    spec = gated / MA
    promote(str(spec), gate="easy_gate", stage="testnet", root=gated, run=True)
    spec.write_text(spec.read_text().replace("fast: int = 20", "fast: int = 25"))
    st = status(str(spec), gate="easy_gate", root=gated)
    why, = st.applies.values()
    assert why and why[0].startswith("the spec changed")
    answer = check(str(spec), "testnet", root=gated)
    assert not answer.ok and "the spec changed" in answer.reason
    cli = peak("promote", "check", MA, "--stage", "testnet", cwd=gated)
    assert cli.returncode == 1 and "R005" in cli.stderr


def test_a_tampered_record_blocks_everything(gated: Path) -> None:
    spec = str(gated / MA)
    done = promote(spec, gate="easy_gate", stage="testnet", root=gated, run=True)
    done.path.write_text(done.path.read_text().replace('"trials"', '"trials_"'))
    assert "chain is broken" in check(spec, "testnet", root=gated).reason
    with pytest.raises(PromotionError) as broken:
        promote(spec, gate="easy_gate", stage="testnet", root=gated)
    assert codes(broken) == ["R004"]
    shown = peak("promote", "status", MA, "--gate", "easy_gate", cwd=gated)
    assert shown.returncode == 1 and "BROKEN" in shown.stdout


def test_a_portfolio_gate_with_walkforward_metrics_is_r003(gated: Path) -> None:
    run = peak("promote", "specs/portfolios/multi_style_moderate.peak", "--gate", "live_gate",
               cwd=gated)
    assert run.returncode == 1 and "R003" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(("args", "code"), [
    (["promote", MA, "--gate", "nope"], "U001"),
    (["promote", MA, "--gate", "easy_gate", "--stage", "prod"], "U005"),
    (["promote", "approve", "abcdef", "--reviewer", "bob"], "U013"),
])
def test_bad_input(gated: Path, args: list[str], code: str) -> None:
    run = peak(*args, cwd=gated)
    assert run.returncode == 2 and code in run.stderr, run.stderr
    assert not (gated / "promotions").exists()


@pytest.mark.parametrize("command", [[], ["status"], ["check"]])
def test_a_spec_that_does_not_check_is_its_diagnostics(gated: Path, command: list[str]) -> None:
    broken = gated / "specs" / "strategies" / "broken.peak"
    broken.write_text("strategy broken {\n  market BTC/EUR\n  timeframe 1h\n"
                      "  entry long when close > sma(close, 0)\n}\n")
    run = peak("promote", *command, "specs/strategies/broken.peak", cwd=gated)
    assert run.returncode == 1 and "T004" in run.stderr and "I001" not in run.stderr


def test_a_testnet_record_of_another_gate_counts_for_live(gated: Path) -> None:
    """Testnet under `easy_gate`, live under `robust_gate`: the testnet record is judged by
    its own gate, so live is not refused with R006."""
    spec = str(gated / MA)
    promote(spec, gate="easy_gate", stage="testnet", root=gated, run=True, author="alice")
    live = promote(spec, gate="robust_gate", stage="live", root=gated, run=True,
                   author="alice").record
    assert live.gate == "robust_gate" and live.sequence == 2
    st = status(spec, gate="robust_gate", root=gated)
    assert all(not why for why in st.applies.values())
    (gated / "specs" / "risk" / "easy_gate.peak").write_text(
        EASY.replace(">= 10", ">= 11"))
    st = status(spec, gate="robust_gate", root=gated)
    assert st.applies[live.sha256] == []
    assert [w for w in st.applies.values() if w] == [["gate `easy_gate` changed"]]
