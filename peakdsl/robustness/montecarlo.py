"""Monte-Carlo resampling of a backtest's trades and bar returns: the entry points.

**What the trade methods read.** ``reshuffle``, ``bootstrap`` and ``skip`` resample trade
returns relative to the equity before each trade, ``r_k = pnl_k / E_(k-1)`` with
``E_(k-1) = capital + the pnl of the trades closed before it`` (``trade_returns``), and
compound them: the equity after a run is ``prod(1 + r_k)`` times the capital. Why this and
not the alternatives:

* it is exact: in the original order the product telescopes to ``(capital + Σ pnl) /
  capital``, the backtest's realised final equity, so the distribution is centred on the run
  it came from;
* it scales with the account, as peak's default sizing (a fraction of equity) does: a trade
  drawn after a losing streak risks the same share of a smaller account. Adding currency pnl
  in a new order would assume every trade keeps its original size whatever the equity, and
  can take the equity below zero, after which a trade of that size is meaningless;
* it is not the trade table's ``return`` column (``pnl / notional``): a trade using half the
  equity moves the equity by half its return.

A consequence: the total return of a ``reshuffle`` is the same in every run (a product does
not depend on the order of its factors; the runs differ in the last bits of rounding only),
and so is its Sharpe (mean and spread of the same returns): only the drawdown and the path
move. ``bootstrap`` and ``skip`` move all three.

**What the bar method reads.** ``block_bootstrap`` resamples bar returns, ``equity.pct_change``
of a run (the first bar against the starting capital, as ``engine.stats`` defines them), in
circular blocks (``bootstrap.default_block_size`` when no length is given) and compounds them
the same way.

**Figures per run** (``paths``): total return, max drawdown (``<= 0``, the backtest's sign)
and Sharpe. The trade methods' Sharpe uses the equity sampled once per trade, annualised with
``trades_per_year`` = the backtest's closed trades / its length in years (``per_year``);
``skip`` scales that by the share of trades a run kept. The bar method annualises with
``bars_per_year`` as the backtest does. ``summary`` turns the runs into percentiles,
``prob_loss``, ``risk_of_ruin`` and ``mc_*`` metric names, and keeps a bounded fan chart: the
percentile bands of the first ``FAN_RUNS`` runs at up to ``FAN_POINTS`` steps.

**Chunks.** A ``Job`` is everything a run needs (picklable, for Dask). ``chunk_bounds`` cuts
its runs into ranges, ``compute_chunk`` computes one range anywhere, ``combine`` puts the
chunks back together. Every run draws from its own stream, seeded by (seed, method, run
number) (``bootstrap.run_generator``), and is computed alone, so any split of the runs —
one chunk in process or many on workers — gives byte-identical results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .bootstrap import METHODS, default_block_size, draw_runs
from .paths import one_path, run_paths
from .summary import Distribution, fan, fan_steps

FloatArray = npt.NDArray[np.float64]

YEAR_SECONDS = 365 * 86_400  # engine.stats.YEAR_SECONDS (not imported: it loads pandas)
SKIP_SHARE = 0.1  # the default share of trades ``skip`` drops
CHUNK_RUNS = 1_000  # runs per chunk from ``chunk_bounds``
BATCH_INDICES = 1 << 20  # indices drawn at once inside a chunk (8 MiB): bounded memory
FAN_RUNS = 2_000  # runs whose paths feed the fan chart (the first ones)
FAN_POINTS = 201  # steps sampled per path at most


@dataclass(frozen=True, eq=False)
class Job:
    """One method's resampling: the returns it reads and how to draw from them.

    Build it with ``make_job`` (which checks the arguments); ``returns`` is a read-only
    contiguous float64 copy, ``share`` matters to ``skip`` and ``block_size`` to ``block``.
    """

    method: str
    returns: FloatArray
    periods_per_year: float
    runs: int
    seed: int
    share: float = 0.0
    block_size: int = 1

    @property
    def steps(self) -> int:
        return int(self.returns.shape[0])


@dataclass(frozen=True, eq=False)
class Chunk:
    """The figures of runs ``start`` to ``stop - 1`` and the sampled paths of those among
    the first ``FAN_RUNS``; ``method`` and ``seed`` say which job's runs they are."""

    method: str
    seed: int
    start: int
    stop: int
    total_return: FloatArray
    max_drawdown: FloatArray
    sharpe: FloatArray
    paths: FloatArray


def make_job(method: str, returns: npt.ArrayLike, *, runs: int, seed: int, periods_per_year: float,
             share: float = 0.0, block_size: int | None = None) -> Job:
    """A checked ``Job``; ``ValueError`` with the reason for any argument out of range."""
    if method not in METHODS:
        raise ValueError(f"unknown Monte-Carlo method {method!r}; one of {', '.join(METHODS)}")
    values = _returns(returns)
    _check_counts(runs, seed)
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"periods per year must be positive, got {periods_per_year}")
    if not 0.0 <= share < 1.0:
        raise ValueError(f"the skipped share must be in [0, 1), got {share}")
    if block_size is not None and not _whole(block_size, 1):
        raise ValueError(f"block_size must be a whole number of at least 1 step, "
                         f"got {block_size!r}")
    block = default_block_size(len(values)) if block_size is None else int(block_size)
    return Job(method, values, float(periods_per_year), int(runs), int(seed), float(share),
               block)


def _returns(returns: npt.ArrayLike) -> FloatArray:
    """A read-only contiguous float64 copy of a non-empty, finite, one-dimensional series."""
    values = np.array(returns, dtype=np.float64).reshape(-1)
    if np.ndim(returns) != 1 or values.shape[0] == 0:
        raise ValueError("returns must be a non-empty one-dimensional series")
    if not np.isfinite(values).all():
        raise ValueError("returns must be finite (no NaN or infinity)")
    values.flags.writeable = False
    return values


def _whole(value: object, low: int) -> bool:
    """Whether ``value`` is an integer (not a bool, not a float) of at least ``low``."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) \
        and bool(value >= low)


def _read_only(values: FloatArray) -> FloatArray:
    """A read-only view: numba compiles one signature per array flavour, and an array
    unpickled on a Dask worker comes back writable (one compiled kernel for every caller)."""
    view = values.view()
    view.flags.writeable = False
    return view


def _check_counts(runs: int, seed: int) -> None:
    """Runs at least 1, seed a non-negative whole number (``SeedSequence`` takes no sign)."""
    if not _whole(runs, 1):
        raise ValueError(f"runs must be a whole number of at least 1, got {runs!r}")
    if not _whole(seed, 0):
        raise ValueError(f"seed must be a whole number of at least 0, got {seed!r}")


def chunk_bounds(runs: int, size: int = CHUNK_RUNS) -> list[tuple[int, int]]:
    """``runs`` cut into consecutive ``(start, stop)`` ranges of at most ``size`` runs."""
    if runs < 1 or size < 1:
        raise ValueError(f"runs and chunk size must be at least 1, got {runs} and {size}")
    return [(lo, min(lo + size, runs)) for lo in range(0, runs, size)]


def compute_chunk(job: Job, start: int, stop: int) -> Chunk:
    """Runs ``start`` to ``stop - 1`` of ``job``, drawn and reduced in bounded batches."""
    if not 0 <= start < stop <= job.runs:
        raise ValueError(f"a chunk must lie in 0..{job.runs}, got {start}..{stop}")
    count = stop - start
    steps = fan_steps(job.steps, FAN_POINTS)
    paths = np.empty((max(0, min(stop, FAN_RUNS) - start), steps.shape[0]))
    totals, drawdowns, sharpes = np.empty(count), np.empty(count), np.empty(count)
    base = _read_only(job.returns)
    batch = max(1, BATCH_INDICES // job.steps)
    for lo in range(start, stop, batch):
        hi = min(lo + batch, stop)
        index = draw_runs(job.method, job.seed, lo, hi, job.steps, job.share, job.block_size)
        rows = slice(lo - start, hi - start)
        run_paths(base, index, job.periods_per_year, steps, paths[rows], totals[rows],
                  drawdowns[rows], sharpes[rows])
    return Chunk(job.method, job.seed, start, stop, totals, drawdowns, sharpes, paths)


def combine(job: Job, chunks: Iterable[Chunk]) -> Distribution:
    """The distribution of all runs from chunks that tile ``0..runs`` (in any order)."""
    ordered = sorted(chunks, key=lambda c: c.start)
    edges = [(c.start, c.stop) for c in ordered]
    ours = all((c.method, c.seed) == (job.method, job.seed) for c in ordered)
    if not (ours and _tiles(edges, job.runs)):
        raise ValueError(f"chunks {edges} do not cover the {job.runs} runs of {job.method} "
                         f"(seed {job.seed}) exactly once")
    bands = fan(fan_steps(job.steps, FAN_POINTS), np.concatenate([c.paths for c in ordered]))
    return Distribution(job.method, job.seed,
                        np.concatenate([c.total_return for c in ordered]),
                        np.concatenate([c.max_drawdown for c in ordered]),
                        np.concatenate([c.sharpe for c in ordered]), bands)


def _tiles(edges: list[tuple[int, int]], runs: int) -> bool:
    """Whether sorted ``(start, stop)`` ranges cover ``0..runs`` without gap or overlap."""
    reached = 0
    for start, stop in edges:
        if start != reached:
            return False
        reached = stop
    return bool(edges) and reached == runs


def run(job: Job) -> Distribution:
    """Every chunk of ``job`` in this process (what workers would return, combined)."""
    return combine(job, [compute_chunk(job, lo, hi) for lo, hi in chunk_bounds(job.runs)])


def reshuffle(trade_returns: npt.ArrayLike, *, runs: int, seed: int,
              trades_per_year: float) -> Distribution:
    """The trades in a random order per run (total return and Sharpe do not move)."""
    return run(make_job("reshuffle", trade_returns, runs=runs, seed=seed,
                        periods_per_year=trades_per_year))


def bootstrap(trade_returns: npt.ArrayLike, *, runs: int, seed: int,
              trades_per_year: float) -> Distribution:
    """As many trades as the backtest made, drawn with replacement, per run."""
    return run(make_job("bootstrap", trade_returns, runs=runs, seed=seed,
                        periods_per_year=trades_per_year))


def skip(trade_returns: npt.ArrayLike, *, runs: int, seed: int, trades_per_year: float,
         share: float = SKIP_SHARE) -> Distribution:
    """The trades in order, each missed with probability ``share``, per run."""
    return run(make_job("skip", trade_returns, runs=runs, seed=seed,
                        periods_per_year=trades_per_year, share=share))


def block_bootstrap(bar_returns: npt.ArrayLike, *, runs: int, seed: int, bars_per_year: float,
                    block_size: int | None = None) -> Distribution:
    """Bar returns resampled in circular blocks of ``block_size`` bars, per run."""
    return run(make_job("block", bar_returns, runs=runs, seed=seed,
                        periods_per_year=bars_per_year, block_size=block_size))


def observed(returns: npt.ArrayLike, periods_per_year: float) -> tuple[float, float, float]:
    """(total return, max drawdown, Sharpe) of the series as it is: the unresampled run,
    computed like every run (Sharpe NaN when undefined), for a report to set beside."""
    job = make_job("skip", returns, runs=1, seed=0, periods_per_year=periods_per_year)
    index = np.arange(job.steps, dtype=np.int64)
    return one_path(job.returns, index, job.periods_per_year, np.zeros(1, dtype=np.int64),
                    np.empty(0), np.empty(job.steps))


def trade_returns(pnl: npt.ArrayLike, capital: float) -> FloatArray:
    """Each closed trade's pnl over the equity before it, trades in the order they closed.

    ``E_(k-1) = capital + pnl_0 + … + pnl_(k-1)``; ``ValueError`` if the capital is not
    positive or the equity before a trade is not (the account was already ruined).
    """
    values = np.asarray(pnl, dtype=np.float64).reshape(-1)
    if not (math.isfinite(capital) and capital > 0):
        raise ValueError(f"capital must be positive, got {capital}")
    if not np.isfinite(values).all():
        raise ValueError("trade pnl must be finite")
    before = capital + np.concatenate(([0.0], np.cumsum(values)[:-1]))
    if values.shape[0] and not (before > 0).all():
        first = int(np.argmax(before <= 0))
        raise ValueError(f"the equity before trade {first} is {before[first]:g}: the account "
                         "was ruined before it")
    return values / before


def per_year(count: int, span_seconds: float) -> float:
    """``count`` events (trades) over a run of ``span_seconds``, per 365-day year."""
    if not (math.isfinite(span_seconds) and span_seconds > 0):
        raise ValueError(f"the run's span must be positive, got {span_seconds} s")
    return count * YEAR_SECONDS / span_seconds
