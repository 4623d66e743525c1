"""The probability of backtest overfitting (PBO), by combinatorially symmetric cross-validation.

Bailey, D. H., Borwein, J. M., López de Prado, M. and Zhu, Q. J. (2017), "The Probability of
Backtest Overfitting", *Journal of Computational Finance* 20 (4), 39–69 (working paper 2013–15,
SSRN 2326253). A sweep picks the best of ``N`` combinations on one history; the question is
whether picking the best *in sample* tends to pick a good one *out of sample*. CSCV answers it
with the sweep's own data, no hold-out needed:

1. the ``T`` bar returns of the ``N`` combinations are cut into ``S`` contiguous blocks of
   (nearly) equal length, ``S`` even;
2. every way of choosing ``S/2`` blocks is one *split*: those blocks, concatenated, are the
   in-sample (IS) set and the other ``S/2`` the out-of-sample (OOS) set — C(S, S/2) splits,
   each block IS in half of them and OOS in the other half (the symmetry);
3. per split: ``n*``, the combination with the highest IS Sharpe ratio; its relative rank
   ``ω̄ = r / (N + 1)`` among the ``N`` OOS Sharpe ratios (``r`` = 1 for the worst, ``N`` for
   the best; tied values share their average rank); the logit ``λ = ln(ω̄ / (1 − ω̄))``;
4. PBO is the share of splits with ``λ ≤ 0``: the IS winner did no better than the OOS median.

A PBO near 0 means the selection generalises; near 0.5 the best in sample is a coin toss out
of sample (pure noise gives 0.5); above 0.5 the selection is worse than random. The paper
also reads the *performance degradation* (the regression of the IS winner's OOS Sharpe on its
IS Sharpe: a slope below 0 is overfitting) and the *probability of loss* (the share of splits
where the IS winner loses OOS); both come almost free and are reported too.

The statistic is always the Sharpe ratio (mean / sample standard deviation of the bar
returns), the paper's choice, whatever the sweep ranks by: it is the one figure defined on a
concatenation of non-adjacent blocks from per-block sums alone (drawdowns, trade statistics
and the like are path-dependent). That is also why the sweep keeps, per combination and
block, only ``(count, sum, sum of squares)`` of the bar returns (:func:`block_moments`): an
``(N, S, 3)`` array instead of the ``T × N`` return matrix.

Undefined Sharpe ratios are ranked, never dropped (dropping would change ``N`` per split):
returns that do not vary (no position held) have Sharpe 0, constant non-zero returns ±∞, and
a set of blocks with fewer than two finite returns (a ruined account) −∞. Ties in IS go to
the lowest row (the sweep's ranking rule).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from .types import Array

DEFAULT_BLOCKS = 16  # S: C(16, 8) = 12,870 splits, the paper's choice
MIN_BLOCK_BARS = 10  # fewer blocks for short data, so each holds at least this many bars
MAX_SPLITS = 12_870  # beyond this many splits a seeded sample of them is evaluated
SPLIT_SEED = 0
STATS = ("count", "sum", "sum_sq")  # the last axis of a moments array
LOGIT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


# --------------------------------------------------------------------------- blocks


def block_count(bars: int, wanted: int = DEFAULT_BLOCKS) -> int:
    """``S`` for ``bars`` bar returns: ``wanted`` (even), fewer so that every block holds at
    least ``MIN_BLOCK_BARS`` bars; 0 when not even two blocks fit (PBO undefined)."""
    fit = max(int(bars), 0) // MIN_BLOCK_BARS
    blocks = min(int(wanted), fit)
    blocks -= blocks % 2
    return blocks if blocks >= 2 else 0


def block_bounds(bars: int, blocks: int) -> Array:
    """The ``blocks + 1`` edges of ``blocks`` contiguous blocks of ``bars`` bars: block ``b``
    is ``[edges[b], edges[b + 1])``, lengths differ by at most one bar, none is dropped."""
    return np.array([b * int(bars) // blocks for b in range(blocks + 1)] if blocks else [0],
                    dtype=np.int64)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def block_moments(capital: float, equity: Array, bounds: Array,
                  out: Array) -> None:  # pragma: no cover - compiled
    """Per block, ``(count, sum, sum of squares)`` of the bar returns of one equity curve into
    ``out`` (shape ``(len(bounds) - 1, 3)``).

    The returns are those of ``engine.stats``: ``equity[0] / capital - 1``, then
    ``equity[t] / equity[t - 1] - 1``; non-finite ones (after a ruin) are not counted. The
    sweep engine calls this on each combination's equity while it is still in memory.
    """
    previous = capital
    for b in range(bounds.shape[0] - 1):
        count = 0.0
        total = 0.0
        squares = 0.0
        for t in range(bounds[b], bounds[b + 1]):
            r = equity[t] / previous - 1.0
            previous = equity[t]
            if math.isfinite(r):
                count += 1.0
                total += r
                squares += r * r
        out[b, 0] = count
        out[b, 1] = total
        out[b, 2] = squares


def return_moments(returns: Array, blocks: int) -> Array:
    """The ``(N, S, 3)`` moments of a ``T × N`` matrix of bar returns (one column per
    combination) cut into ``blocks`` blocks; non-finite returns are not counted."""
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"returns has shape {matrix.shape}, expected (T, N)")
    edges = block_bounds(matrix.shape[0], blocks)
    out = np.zeros((matrix.shape[1], blocks, len(STATS)))
    for b in range(blocks):
        part = matrix[edges[b]:edges[b + 1]]
        finite = np.isfinite(part)
        values = np.where(finite, part, 0.0)
        out[:, b] = np.stack([finite.sum(axis=0), values.sum(axis=0),
                              (values * values).sum(axis=0)], axis=1)
    return out


# --------------------------------------------------------------------------- splits


def split_count(blocks: int) -> int:
    """C(S, S/2): the number of CSCV splits of ``blocks`` blocks."""
    return math.comb(blocks, blocks // 2)


def splits(blocks: int, max_splits: int = MAX_SPLITS,
           seed: int = SPLIT_SEED) -> tuple[Array, bool]:
    """The IS blocks of each split, one sorted row of ``S/2`` block numbers each, and whether
    they are a sample.

    Every split in lexicographic order when there are at most ``max_splits``; otherwise
    ``max_splits`` distinct splits drawn with ``numpy.random.default_rng(seed)`` (the same
    seed draws the same splits).
    """
    half = blocks // 2
    if split_count(blocks) <= max_splits:
        rows = list(itertools.combinations(range(blocks), half))
        return np.array(rows, dtype=np.int64).reshape(len(rows), half), False
    rng = np.random.default_rng(seed)
    seen: dict[tuple[int, ...], None] = {}  # insertion-ordered: the draw order
    while len(seen) < max_splits:
        seen.setdefault(tuple(sorted(int(b) for b in rng.permutation(blocks)[:half])))
    return np.array(list(seen), dtype=np.int64), True


def complements(members: Array, blocks: int) -> Array:
    """The OOS blocks of each split: the blocks not in its IS row, sorted."""
    inside = np.zeros((members.shape[0], blocks), dtype=bool)
    np.put_along_axis(inside, members, True, axis=1)
    cols = np.nonzero(~inside)[1]
    return cols.reshape(members.shape[0], blocks - members.shape[1]).astype(np.int64)


# --------------------------------------------------------------------------- the core


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sharpe(count: float, total: float, squares: float) -> float:  # pragma: no cover
    """Mean / sample standard deviation from the sums; the rules of the module docstring
    for the undefined cases, so that every combination can be ranked."""
    if count < 2:
        return -math.inf
    mean = total / count
    variance = (squares - total * mean) / (count - 1.0)
    if variance > 0:
        return mean / math.sqrt(variance)
    if mean == 0:
        return 0.0
    return math.inf if mean > 0 else -math.inf


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sharpes(by_block: Array, members: Array) -> Array:  # pragma: no cover - compiled
    """The Sharpe ratio of every combination on the concatenation of ``members`` blocks;
    ``by_block`` is ``(S, 3, N)`` so the sums run along contiguous rows."""
    n = by_block.shape[2]
    sums = np.zeros((3, n))
    for b in members:
        sums += by_block[b]
    out = np.empty(n)
    for j in range(n):
        out[j] = _sharpe(sums[0, j], sums[1, j], sums[2, j])
    return out


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _splits_core(by_block: Array, is_members: Array, oos_members: Array, chosen: Array,
                 rank2: Array, is_best: Array, oos_best: Array) -> None:  # pragma: no cover
    """Per split: the IS winner (first of equals), twice its average OOS rank (an integer:
    ``2·less + equal + 1``, ``equal`` counting itself) and its IS and OOS Sharpe ratios.
    Splits are independent, so the parallel loop gives the same numbers on any threads."""
    n = by_block.shape[2]
    for p in numba.prange(is_members.shape[0]):
        is_sharpe = _sharpes(by_block, is_members[p])
        oos_sharpe = _sharpes(by_block, oos_members[p])
        best = int(np.argmax(is_sharpe))
        target = oos_sharpe[best]
        less = 0
        equal = 0
        for j in range(n):
            if oos_sharpe[j] < target:
                less += 1
            elif oos_sharpe[j] == target:
                equal += 1
        chosen[p] = best
        rank2[p] = 2 * less + equal + 1
        is_best[p] = is_sharpe[best]
        oos_best[p] = target


@dataclass(frozen=True)
class Splits:
    """Every evaluated split: its IS blocks, the IS winner (a row of the sweep), the winner's
    OOS rank (1 = worst … N = best, ties averaged), ω̄, λ, and its IS and OOS Sharpe ratios
    (per bar)."""

    members: Array  # (P, S/2) int64
    chosen: Array  # (P,) int64
    rank: Array  # (P,) float64
    omega: Array  # (P,) float64: rank / (N + 1)
    logit: Array  # (P,) float64
    is_sharpe: Array  # (P,) float64
    oos_sharpe: Array  # (P,) float64
    overfit: Array  # (P,) bool: λ ≤ 0, decided on the integer 2·rank (no rounding)


def evaluate_splits(moments: Array, members: Array) -> Splits:
    """Run CSCV on the ``(N, S, 3)`` ``moments`` for the splits whose IS blocks are
    ``members`` (``splits``)."""
    n, blocks = moments.shape[0], moments.shape[1]
    by_block = np.ascontiguousarray(np.transpose(np.asarray(moments, np.float64), (1, 2, 0)))
    members = np.ascontiguousarray(members, dtype=np.int64)
    p = members.shape[0]
    chosen = np.zeros(p, dtype=np.int64)
    rank2 = np.zeros(p, dtype=np.int64)
    is_best, oos_best = np.zeros(p), np.zeros(p)
    _splits_core(by_block, members, complements(members, blocks), chosen, rank2, is_best,
                 oos_best)
    twice = 2 * (n + 1)
    return Splits(members, chosen, rank2 / 2.0, rank2 / twice,
                  np.log(rank2 / (twice - rank2)), is_best, oos_best, rank2 <= n + 1)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class PBOResult:
    """The probability of backtest overfitting of one sweep, with what it rests on.

    Sharpe ratios here are annualised (``periods_per_year``); the logits are unitless.
    """

    pbo: float  # share of splits whose IS winner ranks at or below the OOS median
    combinations: int  # N
    blocks: int  # S
    splits: int  # splits evaluated
    splits_total: int  # C(S, S/2)
    sampled: bool  # True: a seeded sample of ``splits`` of the ``splits_total``
    seed: int | None  # the sample's seed (None: every split)
    logit: dict[str, float]  # mean, std and the LOGIT_QUANTILES of λ
    prob_oos_loss: float  # share of splits whose IS winner has an OOS Sharpe below 0
    is_sharpe_mean: float | None  # mean IS Sharpe ratio of the IS winners
    oos_sharpe_mean: float | None  # mean OOS Sharpe ratio of the same
    degradation_slope: float | None  # OOS Sharpe = slope · IS Sharpe + intercept (least squares)
    degradation_intercept: float | None
    statistic: str = "sharpe"

    def to_dict(self) -> dict[str, Any]:
        """The ``cscv`` object of ``peak sweep --json`` (JSON-safe)."""
        return {"pbo": self.pbo, "statistic": self.statistic,
                "combinations": self.combinations, "blocks": self.blocks,
                "splits": self.splits, "splits_total": self.splits_total,
                "sampled": self.sampled, "seed": self.seed, "logit": dict(self.logit),
                "prob_oos_loss": self.prob_oos_loss, "is_sharpe_mean": self.is_sharpe_mean,
                "oos_sharpe_mean": self.oos_sharpe_mean,
                "degradation": {"slope": self.degradation_slope,
                                "intercept": self.degradation_intercept}}


def _finite_mean(values: Array) -> float | None:
    kept = values[np.isfinite(values)]
    return float(kept.mean()) if len(kept) else None


def degradation(is_sharpe: Array, oos_sharpe: Array) -> tuple[float | None, float | None]:
    """Slope and intercept of the least-squares line of OOS on IS Sharpe ratios over the
    splits where both are finite; None when fewer than two or the IS values do not vary."""
    keep = np.isfinite(is_sharpe) & np.isfinite(oos_sharpe)
    x, y = is_sharpe[keep], oos_sharpe[keep]
    if len(x) < 2:
        return None, None
    dx = x - x.mean()
    # numpy's pairwise sums, not np.dot: BLAS may sum in another order on other threads
    spread = float((dx * dx).sum())
    if not spread > 0:
        return None, None
    slope = float((dx * (y - y.mean())).sum()) / spread
    return slope, float(y.mean()) - slope * float(x.mean())


def logit_summary(logit: Array) -> dict[str, float]:
    """Mean, population standard deviation and quantiles (``p05`` … ``p95``) of λ."""
    out = {"mean": float(logit.mean()), "std": float(logit.std())}
    for q, value in zip(LOGIT_QUANTILES, np.quantile(logit, LOGIT_QUANTILES), strict=True):
        out[f"p{round(q * 100):02d}"] = float(value)
    return out


def summarise(result: Splits, n: int, blocks: int, sampled: bool, seed: int,
              periods_per_year: float = 1.0) -> PBOResult:
    """The :class:`PBOResult` of evaluated splits (Sharpe ratios annualised)."""
    scale = math.sqrt(periods_per_year)
    is_sharpe, oos_sharpe = result.is_sharpe * scale, result.oos_sharpe * scale
    slope, intercept = degradation(is_sharpe, oos_sharpe)
    return PBOResult(
        pbo=float(result.overfit.mean()), combinations=n, blocks=blocks,
        splits=len(result.chosen), splits_total=split_count(blocks), sampled=sampled,
        seed=seed if sampled else None, logit=logit_summary(result.logit),
        prob_oos_loss=float((result.oos_sharpe < 0).mean()),
        is_sharpe_mean=_finite_mean(is_sharpe), oos_sharpe_mean=_finite_mean(oos_sharpe),
        degradation_slope=slope, degradation_intercept=intercept)


def probability_of_overfitting(moments: Array, *, max_splits: int = MAX_SPLITS,
                               seed: int = SPLIT_SEED,
                               periods_per_year: float = 1.0) -> PBOResult | None:
    """PBO by CSCV from the ``(N, S, 3)`` per-block moments of ``N`` combinations.

    None when it is undefined: fewer than two combinations (nothing is selected), fewer than
    two blocks or an odd number of them, or moments that are not all finite (rows never
    computed). ``periods_per_year`` only annualises the reported Sharpe ratios.
    """
    values = np.asarray(moments, dtype=np.float64)
    if values.ndim != 3 or values.shape[2] != len(STATS):
        raise ValueError(f"moments has shape {values.shape}, expected (N, S, 3)")
    n, blocks = values.shape[0], values.shape[1]
    if n < 2 or blocks < 2 or blocks % 2 or not np.isfinite(values).all():
        return None
    members, sampled = splits(blocks, max_splits, seed)
    return summarise(evaluate_splits(values, members), n, blocks, sampled, seed,
                     periods_per_year)
