"""A deterministic synthetic market: the embedded default data, so peak runs offline.

Model (per bar, log prices):

* volatility clustering — GARCH(1,1): ``σ²ₜ = ω + α·ε²ₜ₋₁ + β·σ²ₜ₋₁`` with α = 0.09, β = 0.89
  and ω set so the long-run volatility is about 65 % a year (crypto-like), whatever the
  timeframe;
* fat tails — Student-t innovations with 4 degrees of freedom, scaled to unit variance;
* regimes — alternating segments (geometric lengths, mean 400 bars) of *trending* (a drift of
  ±0.04…0.12 σ̄ per bar, sign drawn per segment) and *ranging* (mean reversion towards the
  level where the segment began, 2 % of the distance per bar), plus a weak pull towards the
  starting level so that long series stay plausible;
* candles — each bar opens at the previous close; high and low extend beyond open and close
  by half-normal multiples of the bar's volatility; prices are rounded to about six
  significant digits of the starting price (rounding is monotone: low ≤ open, close ≤ high);
* volume — positive, log-normal noise around a level that grows with |return|/σ̄.

Every draw comes from one ``numpy.random.Generator(PCG64(seed))`` in a fixed order: the same
market, timeframe, bars, seed and end give identical candles (and identical cache bytes).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from .candles import NS, CandleSet, normalise_market, parse_market, timeframe_seconds

DEMO_BARS = 5_000
DEMO_END = pd.Timestamp("2026-01-01T00:00:00Z")
MAX_BARS = 5_000_000
YEAR = 365 * 86_400

ANNUAL_VOL = 0.65
ALPHA, BETA = 0.09, 0.89
DOF = 4.0
MEAN_SEGMENT = 400
RANGE_PULL = 0.02
ANCHOR_PULL = 2e-4

# Rough USD values, only to put synthetic prices in a plausible range.
USD_VALUE: dict[str, float] = {
    "BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0, "BNB": 550.0, "XRP": 0.6, "ADA": 0.45,
    "DOGE": 0.15, "LTC": 80.0, "DOT": 7.0, "AVAX": 35.0, "LINK": 15.0, "MATIC": 0.7,
    "XLM": 0.12, "TRX": 0.12, "ATOM": 9.0, "UNI": 8.0, "BCH": 400.0, "ETC": 25.0,
    "USD": 1.0, "USDT": 1.0, "USDC": 1.0, "DAI": 1.0, "BUSD": 1.0, "EUR": 1.08,
    "GBP": 1.27, "CHF": 1.12, "JPY": 0.0067, "AUD": 0.66, "CAD": 0.73,
}

FloatArray = npt.NDArray[np.float64]


def demo_seed(market: str, timeframe: str) -> int:
    """A stable 32-bit seed for a market and timeframe (sha256, not Python's ``hash``)."""
    key = f"peak-demo|{normalise_market(market)}|{timeframe}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")


def _usd(asset: str) -> float:
    if asset in USD_VALUE:
        return USD_VALUE[asset]
    digest = hashlib.sha256(asset.encode()).digest()
    return float(10 ** (int.from_bytes(digest[:2], "big") / 65535 * 3 - 1))  # 0.1 … 100


def start_price(market: str) -> float:
    base, quote, _ = parse_market(market)
    return _usd(base) / _usd(quote)


@dataclass(frozen=True)
class SynthPath:
    """The simulated series before it becomes candles (exposed for tests and docs)."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    sigma: FloatArray
    trending: npt.NDArray[np.bool_]


def simulate(bars: int, seed: int, bar_seconds: int, price: float,
             quote_per_hour: float = 2e6) -> SynthPath:
    """The model above for ``bars`` bars starting at ``price``.

    ``quote_per_hour`` sets the volume level: the typical traded value per hour, in the
    quote currency.
    """
    if not 1 <= bars <= MAX_BARS:
        raise ValueError(f"bars must be between 1 and {MAX_BARS:,}")
    rng = np.random.Generator(np.random.PCG64(seed))
    sig_bar = ANNUAL_VOL * math.sqrt(bar_seconds / YEAR)
    shocks = rng.standard_t(DOF, bars) * math.sqrt((DOF - 2) / DOF)
    wick_hi = np.abs(rng.standard_normal(bars))
    wick_lo = np.abs(rng.standard_normal(bars))
    vol_noise = rng.standard_normal(bars)
    # regime segments: lengths, kinds and drifts, drawn up front
    segments: list[tuple[int, bool, float]] = []
    trending = bool(rng.integers(0, 2))
    total = 0
    while total < bars:
        length = int(rng.geometric(1 / MEAN_SEGMENT))
        drift = float(rng.uniform(0.04, 0.12) * rng.choice([-1.0, 1.0])) * sig_bar
        segments.append((length, trending, drift))
        total += length
        trending = not trending

    regime = np.zeros(bars, dtype=bool)
    drift_of = np.zeros(bars)
    pos = 0
    starts = np.zeros(bars, dtype=bool)
    for length, is_trend, drift in segments:
        end = min(bars, pos + length)
        regime[pos:end] = is_trend
        drift_of[pos:end] = drift if is_trend else 0.0
        starts[pos] = True
        pos = end
        if pos >= bars:
            break

    omega = sig_bar**2 * (1 - ALPHA - BETA)
    cap = 25 * sig_bar**2
    log0 = math.log(price)
    x = log0
    anchor = x
    var = sig_bar**2
    closes = np.empty(bars)
    sigmas = np.empty(bars)
    eps_all = np.empty(bars)
    for t in range(bars):
        if starts[t]:
            anchor = x
        sigma = math.sqrt(var)
        eps = sigma * shocks[t]
        step = drift_of[t] + eps - ANCHOR_PULL * (x - log0)
        if not regime[t]:
            step -= RANGE_PULL * (x - anchor)
        x += step
        closes[t] = x
        sigmas[t] = sigma
        eps_all[t] = eps
        var = min(cap, omega + ALPHA * eps * eps + BETA * var)

    close = np.exp(closes)
    open_ = np.empty(bars)
    open_[0] = price
    open_[1:] = close[:-1]
    high = np.maximum(open_, close) * np.exp(0.6 * sigmas * wick_hi)
    low = np.minimum(open_, close) * np.exp(-0.6 * sigmas * wick_lo)
    decimals = 5 - math.floor(math.log10(price))
    floor = 10.0 ** -decimals
    open_, high, low, close = (np.maximum(np.round(a, decimals), floor)
                               for a in (open_, high, low, close))
    quote_per_bar = quote_per_hour * bar_seconds / 3600
    volume = quote_per_bar / close * np.exp(0.35 * vol_noise) * \
        (0.4 + 1.5 * np.abs(eps_all) / sig_bar)
    volume = np.round(volume, 8) + 1e-8
    return SynthPath(open_, high, low, close, volume, sigmas, regime)


def synth_market(market: str, timeframe: str, bars: int = DEMO_BARS, seed: int | None = None,
                 end: pd.Timestamp | None = None, *, source: str | None = None) -> CandleSet:
    """Synthetic candles whose last bar closes at ``end`` (default 2026-01-01T00:00Z).

    ``seed`` None → :func:`demo_seed` of the market and timeframe.
    """
    market = normalise_market(market)
    seconds = timeframe_seconds(timeframe)
    seed = demo_seed(market, timeframe) if seed is None else seed
    stop = DEMO_END if end is None else pd.Timestamp(end)
    stop = stop.tz_localize("UTC") if stop.tzinfo is None else stop.tz_convert("UTC")
    _, quote, _ = parse_market(market)
    path = simulate(bars, seed, seconds, start_price(market), 2e6 / _usd(quote))
    last_open = stop.value - seconds * NS
    stamps = last_open - seconds * NS * np.arange(bars - 1, -1, -1, dtype=np.int64)
    index = pd.DatetimeIndex(stamps.astype("datetime64[ns]")).tz_localize("UTC")
    frame = pd.DataFrame({"open": path.open, "high": path.high, "low": path.low,
                          "close": path.close, "volume": path.volume}, index=index)
    return CandleSet.of(frame, market, timeframe, source or f"synthetic (seed {seed})",
                        synthetic=True)
