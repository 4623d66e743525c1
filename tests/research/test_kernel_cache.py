"""Sizing the sweep's kernel cache from the space: every distinct indicator fits, no thrash."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from peakdsl.api import compile_source
from peakdsl.compile.models import StrategyArtifact
from peakdsl.research.kernel_cache import (
    DEFAULT_CACHE_BYTES,
    KernelCache,
    distinct_entries,
    physical_memory,
    sized_cache_bytes,
)
from peakdsl.research.sweep import plan_sweep

ROOT = Path(__file__).resolve().parents[2]

SMA = """
strategy sma_grid {
    market BTC/USDT
    timeframe 1h
    param fast: int = 10 in 2..100 step 1
    param slow: int = 30 in 5..400 step 1
    require fast < slow
    let fast_ma = sma(close, fast)
    let slow_ma = sma(close, slow)
    entry long when crossover(fast_ma, slow_ma)
    exit long when crossunder(fast_ma, slow_ma)
}
"""


def grid() -> np.ndarray:
    return np.array([(f, s) for f in range(5, 51) for s in range(20, 201, 5) if f < s],
                    dtype=float)


def test_the_issue_grid_needs_76_distinct_series() -> None:
    artifact = compile_source(SMA, "sma_grid")
    assert isinstance(artifact, StrategyArtifact)
    combos = grid()
    assert len(combos) == 1590
    # fast 5..50 (46 windows) and slow 20..200 step 5 (37), 7 of them shared (20, 25, … 50):
    # 76 SMAs; the crossovers read each one bar back as a view (no lag copies: 152 before)
    assert distinct_entries(artifact.config, ("fast", "slow"), combos) == 76


def test_a_sized_cache_holds_them_all_within_its_bounds() -> None:
    assert sized_cache_bytes(152, 1_000_000) == min(152 * 8_000_000,
                                                   int(physical_memory() * 0.5))
    assert sized_cache_bytes(3, 1000) == DEFAULT_CACHE_BYTES  # never below the default


def test_a_cache_that_holds_the_cycle_does_not_thrash() -> None:
    """The grid's access pattern (every slow window once per fast window) against an LRU
    that holds all of it, and one that holds all but one entry."""
    pattern = [w for _ in range(5) for w in range(37)]
    value = np.zeros(10)
    big, small = KernelCache(37 * value.nbytes), KernelCache(36 * value.nbytes)
    for cache in (big, small):
        for w in pattern:
            if cache.get(w) is None:
                cache.put(w, value)
    assert big.misses == 37 and small.misses == len(pattern)  # LRU's cyclic worst case


def test_a_sweep_plan_sizes_its_cache_from_its_space(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    plan = plan_sweep(str(tmp_path / "specs/strategies/ma_crossover.peak"), record=False)
    entries = distinct_entries(plan.artifact.config, plan.space.names, plan.space.combos)
    assert entries > 0
    assert plan.cache_bytes == sized_cache_bytes(entries, plan.candles.bars)
