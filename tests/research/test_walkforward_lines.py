"""Each walk-forward window's reproducing line (issue 14 item 2, R2): the walk-forward of that
window alone, unless the window alone would warm up on fewer bars than it did inside the whole
walk-forward; then the whole walk-forward's line. Recorded per window, with the bars it
computed from as its data, and run again by ``peak runs rerun WINDOW``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peakdsl.registry.rerun import rerun
from peakdsl.registry.store import Registry
from peakdsl.repro import parse_line
from peakdsl.research.walkforward import WalkForwardResult, walkforward

ROOT = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WalkForwardResult]:
    """60-bar train windows for a 100-bar warm-up (slow=100): window 1 has no bars before its
    train window (alone it warms up the same), the later ones had 60 more bars than their
    train window holds."""
    root = tmp_path_factory.mktemp("wflines")
    shutil.copytree(ROOT / "specs", root / "specs")
    result = walkforward(str(root / MA), train="60", test="60", sets=["fast=10..20:10",
                                                                       "slow=100"],
                         root=root, start="2025-09-01", end="2025-09-08")
    return root, result


def test_a_window_that_fits_gets_its_own_line_the_others_the_whole_one(
        recorded: tuple[Path, WalkForwardResult]) -> None:
    root, result = recorded
    assert [(w.lead, w.warmup) for w in result.windows[:2]] == [(60, 100), (100, 100)]
    lines = [result.window_recipe(w) for w in result.windows]
    first = lines[0]
    assert first is not None and (first.start, first.end) == ("2025-09-01", "2025-09-06")
    assert first.options == (("--train", "60"), ("--test", "60"))
    assert all(line == result.recipe for line in lines[1:])
    assert first.line(root) == (f"peak walkforward {MA} --from 2025-09-01 --to 2025-09-06 "
                                "--set fast=10..20:10 --set slow=100 --train 60 --test 60")


def test_registry_windows_carry_their_lines_and_bars_and_rerun_exactly(
        recorded: tuple[Path, WalkForwardResult]) -> None:
    root, result = recorded
    with Registry(root) as reg:
        assert result.run_id is not None
        windows = sorted(reg.child_runs(result.run_id), key=lambda r: r.settings["window"])
        lines = [result.window_recipe(w) for w in result.windows]
        assert [w.command for w in windows] == [x.line(root) if x else None for x in lines]
        assert [w.data_fingerprint for w in windows] == [
            result.window_bars(w).fingerprint for w in result.windows]
        assert result.window_bars(result.windows[1]).bars == 148  # 100 lead + 48 test (partial)
        for record in (windows[0], windows[1]):
            again = rerun(reg, record.id)
            assert (again.matches, again.same_artifact, again.same_data) == (True, True, True)
            assert len(again.checks) == len(record.metrics)
        assert parse_line(windows[0].command or "").start == "2025-09-01"
