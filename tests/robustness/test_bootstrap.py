"""The draws of each Monte-Carlo method: their shape by construction, the block rule, and
per-run streams that do not depend on which runs are drawn together."""

from __future__ import annotations

import numpy as np
import pytest

from peakdsl.robustness import bootstrap as bs


@pytest.mark.parametrize(("steps", "block"), [(1, 1), (2, 1), (26, 3), (27, 3), (100, 5),
                                              (1_000, 10), (100_000, 46)])
def test_default_block_size_is_the_rounded_cube_root(steps: int, block: int) -> None:
    assert bs.default_block_size(steps) == block


def test_reshuffle_draws_every_step_once() -> None:
    for run in range(20):
        index = bs.draw("reshuffle", 3, run, 50)
        assert np.array_equal(np.sort(index), np.arange(50))


def test_bootstrap_draws_with_replacement_within_range() -> None:
    index = bs.draw_runs("bootstrap", 3, 0, 200, 10)
    assert index.shape == (200, 10)
    assert index.min() == 0 and index.max() == 9
    # with replacement: some run repeats a step (200 runs of 10 of 10 cannot all be permutations)
    assert any(len(set(row.tolist())) < 10 for row in index)


def test_skip_with_share_zero_keeps_every_step_in_order() -> None:
    for run in range(20):
        assert np.array_equal(bs.draw("skip", 3, run, 30, share=0.0), np.arange(30))


def test_skip_marks_dropped_steps_and_keeps_the_rest_in_place() -> None:
    index = bs.draw_runs("skip", 3, 0, 100, 40, share=0.5)
    kept = index != bs.SKIPPED
    assert 0 < kept.mean() < 1
    assert np.array_equal(index[kept], np.broadcast_to(np.arange(40), index.shape)[kept])


def test_block_of_the_whole_series_is_a_rotation() -> None:
    for run in range(20):
        index = bs.draw("block", 3, run, 7, block=7)
        start = int(index[0])
        assert np.array_equal(index, np.roll(np.arange(7), -start))


def test_blocks_are_consecutive_circular_runs_cut_to_length() -> None:
    for run in range(20):
        index = bs.draw("block", 3, run, 5, block=2)  # blocks at 0-1, 2-3 and a cut one at 4
        assert index[1] == (index[0] + 1) % 5
        assert index[3] == (index[2] + 1) % 5
        assert index.shape == (5,)


def test_a_run_draws_the_same_whatever_runs_are_drawn_with_it() -> None:
    together = bs.draw_runs("bootstrap", 11, 3, 9, 25)
    for row, run in enumerate(range(3, 9)):
        assert np.array_equal(together[row], bs.draw("bootstrap", 11, run, 25))


def test_streams_differ_by_seed_method_and_run() -> None:
    base = bs.draw("bootstrap", 1, 0, 100)
    assert not np.array_equal(base, bs.draw("bootstrap", 2, 0, 100))
    assert not np.array_equal(base, bs.draw("bootstrap", 1, 1, 100))
    assert not np.array_equal(base, bs.draw("block", 1, 0, 100, block=1))


def test_the_seeded_stream_is_pinned() -> None:
    """Stream ids are part of every seeded result: renumbering a method must fail here."""
    assert bs.METHOD_IDS == {"reshuffle": 1, "bootstrap": 2, "skip": 3, "block": 4}
    assert bs.draw("bootstrap", 7, 5, 12).tolist() == [8, 7, 7, 6, 2, 2, 1, 8, 10, 0, 6, 7]
    assert bs.draw("reshuffle", 7, 5, 6).tolist() == [1, 4, 2, 3, 5, 0]
    stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence([7, 2, 5])))
    assert np.array_equal(bs.run_generator(7, "bootstrap", 5).random(3), stream.random(3))
