"""The built-in function registry: name → signature, result unit, lookback, kernel.

One table serves the checker (arity, argument kinds, result type), lowering (lookback,
kernel name, elementwise or not), the evaluators and ``docs/language.md``.

Some built-ins take an optional last argument, a *mode*: a bare keyword that selects a
convention other tools use (``stdev(close, 20, sample)``, ``adx(14, talib)``). A mode is not
a value: lowering keeps it in the node (so ``stdev(x, 20)`` and ``stdev(x, 20, sample)`` are
different nodes) and the evaluators pass it to the kernel as its last argument. A mode never
changes the lookback, so the warm-up formulas below hold for every mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from . import ast
from .lookback import Lookback
from .types import Unit


class Arg(str, Enum):
    SERIES = "series"  # any numeric value, usually a series
    WINDOW = "window"  # a positive int literal or int param
    SCALAR = "scalar"  # a numeric literal or param


@dataclass(frozen=True, slots=True)
class Mode:
    """The optional last argument of a built-in: one keyword of ``choices``.

    The first choice is the default, today's behaviour, so leaving the mode out never changes
    a spec's meaning. ``least`` raises the smallest window a choice accepts (the sample
    deviation of one value is undefined, so ``sample`` needs ``n >= 2``).
    """

    choices: tuple[str, ...]
    least: tuple[tuple[str, int], ...] = ()

    @property
    def default(self) -> str:
        return self.choices[0]

    def least_window(self, choice: str) -> int:
        return dict(self.least).get(choice, 1)

    def describe(self) -> str:
        """``population (default) or sample``: the choices as help text shows them."""
        words = [f"`{self.choices[0]}` (default)", *(f"`{c}`" for c in self.choices[1:])]
        return ", ".join(words[:-1]) + " or " + words[-1]


# Standard deviation: divide the squared deviations by n (population, ddof 0) or by n - 1
# (sample, ddof 1: pandas' ``rolling().std()`` default).
DEVIATION = Mode(("population", "sample"), least=(("sample", 2),))
# Seeding of the Wilder and MACD averages: peak's own (each average seeded with the mean of
# its own first n values) or TA-Lib's (see docs/language.md, "Seeding").
SEEDING = Mode(("peak", "talib"))
# The session a ``session_vwap`` restarts at: the UTC day or the week from Monday 00:00 UTC.
SESSION = Mode(("day", "week"))
MODE_WORDS: frozenset[str] = frozenset(DEVIATION.choices + SEEDING.choices + SESSION.choices)
# A bar's open time in seconds since the epoch: an implicit input only (``session_vwap``),
# never a name a spec may write (a value that reads the clock is not market data)
TIME = "time"


# A lookback rule gets the lookbacks of the value arguments and the values of the window
# arguments (as lookbacks, so params stay symbolic).
LookbackRule = Callable[[Sequence[Lookback], Sequence[Lookback]], Lookback]
SAME = "same"  # result unit = unit of the first argument
JOIN = "join"  # result unit = the additive join of the value arguments


@dataclass(frozen=True, slots=True)
class Builtin:
    name: str
    args: tuple[tuple[str, Arg], ...]
    result: Unit | str
    lookback: LookbackRule
    doc: str
    implicit: tuple[str, ...] = ()  # OHLCV columns read without being passed
    elementwise: bool = False
    example: str = ""
    mode: Mode | None = None  # an optional trailing keyword argument
    # series arguments that take a boolean series (``barssince(cond)``): passed like any
    # series, typed bool instead of numeric
    conditions: tuple[str, ...] = ()
    # the smallest value a window argument takes: 0 for an occurrence count (``valuewhen``)
    least_window: int = 1

    @property
    def signature(self) -> str:
        tail = ("[, mode]" if self.args else "[mode]") if self.mode else ""
        return f"{self.name}(" + ", ".join(n for n, _ in self.args) + tail + ")"

    @property
    def arity(self) -> tuple[int, int]:
        """Fewest and most arguments: a mode may be left out."""
        return len(self.args), len(self.args) + (self.mode is not None)

    def call_mode(self, call: ast.Call) -> str | None:
        """The mode a checked call names, None for the default: a call that spells the
        default out is the same node as one that leaves it out."""
        if self.mode is None or len(call.args) <= len(self.args):
            return None
        word = call.args[len(self.args)]
        assert isinstance(word, ast.Name), "the checker admits only a keyword here"
        return None if word.id == self.mode.default else word.id

    def mode_args(self, value: object) -> tuple[str, ...]:
        """The kernel's trailing mode argument for a node whose ``value`` is its mode (None
        for the default): ``()`` for a built-in without modes."""
        if self.mode is None:
            return ()
        return (value if isinstance(value, str) else self.mode.default,)


def _rolling(offset: int) -> LookbackRule:
    """x's lookback + window + offset (offset -1 for windows that include the current bar)."""
    def rule(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
        base = xs[0] if xs else Lookback.const(0)
        return base + ws[0] + offset
    return rule


def _macd(extra_windows: int) -> LookbackRule:
    def rule(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
        out = xs[0] + ws[0].max(ws[1]) + -1
        for w in ws[2 : 2 + extra_windows]:
            out = out + w + -1
        return out
    return rule


def _elementwise(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
    return xs[0].max(*xs[1:])


def _cross(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
    return xs[0].max(xs[1]) + 1


def _adx(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
    return ws[0] + ws[0] + -1


X = ("x", Arg.SERIES)
N = ("n", Arg.WINDOW)
HLC = ("high", "low", "close")

_TABLE: tuple[Builtin, ...] = (
    Builtin("sma", (X, N), SAME, _rolling(-1), "simple moving average of the last n bars",
            example="sma(close, 20)"),
    Builtin("ema", (X, N), SAME, _rolling(-1),
            "exponential moving average, alpha = 2/(n+1), seeded with the SMA of the first n",
            example="ema(close, 12)"),
    Builtin("wma", (X, N), SAME, _rolling(-1), "linearly weighted moving average (weights 1..n)",
            example="wma(close, 10)"),
    Builtin("rma", (X, N), SAME, _rolling(-1),
            "Wilder's moving average, alpha = 1/n, seeded with the SMA of the first n",
            example="rma(close, 14)"),
    Builtin("rsi", (X, N), Unit.OSCILLATOR, _rolling(0),
            "relative strength index 0..100 with Wilder smoothing", example="rsi(close, 14)"),
    Builtin("true_range", (), Unit.PRICE, lambda xs, ws: Lookback.const(1),
            "max(high - low, |high - close[1]|, |low - close[1]|)", implicit=HLC,
            example="true_range()"),
    Builtin("atr", (N,), Unit.PRICE, _rolling(0), "average true range (Wilder smoothing)",
            implicit=HLC, example="atr(14)"),
    Builtin("stdev", (X, N), SAME, _rolling(-1),
            "standard deviation over n bars; mode population (default) or sample",
            example="stdev(close, 20)", mode=DEVIATION),
    Builtin("zscore", (X, N), Unit.NUMBER, _rolling(-1),
            "(x - sma(x, n)) / stdev(x, n, mode)", example="zscore(close, 20)", mode=DEVIATION),
    Builtin("roc", (X, N), Unit.PERCENT, _rolling(0), "rate of change x / x[n] - 1, a fraction",
            example="roc(close, 20)"),
    Builtin("highest", (X, N), SAME, _rolling(-1), "highest value of the last n bars (incl. now)",
            example="highest(high, 20)"),
    Builtin("lowest", (X, N), SAME, _rolling(-1), "lowest value of the last n bars (incl. now)",
            example="lowest(low, 20)"),
    Builtin("bb_upper", (X, N, ("k", Arg.SCALAR)), SAME, _rolling(-1),
            "Bollinger upper band sma(x, n) + k·stdev(x, n, mode)",
            example="bb_upper(close, 20, 2)", mode=DEVIATION),
    Builtin("bb_lower", (X, N, ("k", Arg.SCALAR)), SAME, _rolling(-1),
            "Bollinger lower band sma(x, n) - k·stdev(x, n, mode)",
            example="bb_lower(close, 20, 2)", mode=DEVIATION),
    Builtin("macd", (X, ("fast", Arg.WINDOW), ("slow", Arg.WINDOW)), SAME, _macd(0),
            "ema(x, fast) - ema(x, slow); mode peak (default) or talib seeding",
            example="macd(close, 12, 26)", mode=SEEDING),
    Builtin("macd_signal", (X, ("fast", Arg.WINDOW), ("slow", Arg.WINDOW),
                            ("signal", Arg.WINDOW)), SAME, _macd(1),
            "ema(macd(x, fast, slow, mode), signal)", example="macd_signal(close, 12, 26, 9)",
            mode=SEEDING),
    Builtin("macd_hist", (X, ("fast", Arg.WINDOW), ("slow", Arg.WINDOW),
                          ("signal", Arg.WINDOW)), SAME, _macd(1),
            "macd - macd_signal", example="macd_hist(close, 12, 26, 9)", mode=SEEDING),
    Builtin("adx", (N,), Unit.OSCILLATOR, _adx, "average directional index 0..100 (Wilder)",
            implicit=HLC, example="adx(14)", mode=SEEDING),
    Builtin("plus_di", (N,), Unit.OSCILLATOR, _rolling(0), "+DI 0..100 (Wilder)", implicit=HLC,
            example="plus_di(14)", mode=SEEDING),
    Builtin("minus_di", (N,), Unit.OSCILLATOR, _rolling(0), "-DI 0..100 (Wilder)", implicit=HLC,
            example="minus_di(14)", mode=SEEDING),
    Builtin("percent_rank", (X, N), Unit.OSCILLATOR, _rolling(0),
            "percentage 0..100 of the previous n values that are <= the current one",
            example="percent_rank(close, 50)"),
    Builtin("crossover", (("a", Arg.SERIES), ("b", Arg.SERIES)), Unit.BOOL, _cross,
            "a > b now and a <= b on the previous bar (NaN never crosses)",
            example="crossover(ema(close, 12), ema(close, 26))"),
    Builtin("crossunder", (("a", Arg.SERIES), ("b", Arg.SERIES)), Unit.BOOL, _cross,
            "a < b now and a >= b on the previous bar (NaN never crosses)",
            example="crossunder(close, sma(close, 50))"),
    Builtin("rising", (X, N), Unit.BOOL, _rolling(0), "x rose on each of the last n bars",
            example="rising(close, 3)"),
    Builtin("falling", (X, N), Unit.BOOL, _rolling(0), "x fell on each of the last n bars",
            example="falling(close, 3)"),
    Builtin("abs", (X,), SAME, _elementwise, "absolute value", elementwise=True,
            example="abs(roc(close, 5))"),
    Builtin("log", (X,), Unit.NUMBER, _elementwise, "natural logarithm", elementwise=True,
            example="log(close / close[1])"),
    Builtin("sqrt", (X,), Unit.NUMBER, _elementwise, "square root", elementwise=True,
            example="sqrt(volume)"),
    Builtin("min", (("a", Arg.SERIES), ("b", Arg.SERIES)), JOIN, _elementwise,
            "the smaller of a and b (missing when either is)", elementwise=True,
            example="min(open, close)"),
    Builtin("max", (("a", Arg.SERIES), ("b", Arg.SERIES)), JOIN, _elementwise,
            "the larger of a and b (missing when either is)", elementwise=True,
            example="max(open, close)"),
    Builtin("clip", (X, ("lo", Arg.SERIES), ("hi", Arg.SERIES)), JOIN, _elementwise,
            "x limited to [lo, hi]", elementwise=True, example="clip(rsi(close, 14), 20, 80)"),
    Builtin("nz", (X, ("fallback", Arg.SERIES)), JOIN, _elementwise,
            "x, or fallback where x is missing (Pine's nz): seeds a state's past",
            elementwise=True, example="nz(close[1], open)"),
)

# ---------------------------------------------------------------- indicators users port
#
# The indicators of trading platforms (TradingView, TA-Lib, pandas-ta) that ported strategies
# use, and running aggregates over a series' own past. Kernels in ``engine/kernels_ta.py``
# (and ``kernels_running.py``), reference implementations in ``engine/reference_ta.py``;
# conventions in docs/language.md.


def _fixed(n: int) -> LookbackRule:
    """A lookback that does not depend on windows (``obv``: one bar for the change)."""
    def rule(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
        return Lookback.const(n)
    return rule


def _carried(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
    """Running values (``cumsum``, ``barssince``) start with their inputs."""
    return xs[0].max(*xs[1:])


def _smoothed_k(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
    """``stoch_d``: an n-bar %K averaged over m bars."""
    return ws[0] + ws[1] + -2


def _senkou_a(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
    """The mean of two channel midpoints, computed ``d`` bars ago."""
    return ws[0].max(ws[1]) + -1 + ws[2]


def _senkou_b(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
    return ws[0] + -1 + ws[1]


def _occurrence(xs: Sequence[Lookback], ws: Sequence[Lookback]) -> Lookback:
    """``valuewhen(cond, x, n)``: n + 1 true bars at the earliest from where both start."""
    return xs[0].max(*xs[1:]) + ws[0]


K = ("k", Arg.SCALAR)
HL = ("high", "low")
HLCV = ("high", "low", "close", "volume")
OHLC = ("open", "high", "low", "close")
WORD_K = "k·ema(true_range(), n): TradingView's `ta.kc` and pandas-ta's `kc`"

_PORTED: tuple[Builtin, ...] = (
    Builtin("stoch_k", (N,), Unit.OSCILLATOR, _rolling(-1),
            "stochastic %K 0..100: 100·(close - lowest(low, n)) / (highest(high, n) - "
            "lowest(low, n)); NaN where the range is 0", implicit=HLC, example="stoch_k(14)"),
    Builtin("stoch_d", (N, ("m", Arg.WINDOW)), Unit.OSCILLATOR, _smoothed_k,
            "stochastic %D 0..100: sma(stoch_k(n), m)", implicit=HLC,
            example="stoch_d(14, 3)"),
    Builtin("willr", (N,), Unit.OSCILLATOR, _rolling(-1),
            "Williams %R -100..0: 100·(close - highest(high, n)) / (highest(high, n) - "
            "lowest(low, n)); NaN where the range is 0", implicit=HLC, example="willr(14)"),
    Builtin("cci", (X, N), Unit.NUMBER, _rolling(-1),
            "commodity channel index (x - sma(x, n)) / (0.015·mean deviation); 0 where the "
            "n values are equal", example="cci(hlc3, 20)"),
    Builtin("mfi", (N,), Unit.OSCILLATOR, _rolling(0),
            "money flow index 0..100: the RSI of hlc3·volume flows summed over n bars",
            implicit=HLCV, example="mfi(14)"),
    Builtin("obv", (), Unit.VOLUME, _fixed(1),
            "on-balance volume: the running sum of ±volume by the sign of the close's change, "
            "from 0 before the first change", implicit=("close", "volume"), example="obv()"),
    Builtin("session_vwap", (), Unit.PRICE, _fixed(0),
            "VWAP of hlc3 since the session began: the UTC day, or the week from Monday with "
            "mode `week` (TradingView's `ta.vwap`); NaN while its volume sums to 0",
            implicit=(*HLCV, TIME), example="close > session_vwap()", mode=SESSION),
    Builtin("vwap", (N,), Unit.PRICE, _rolling(-1),
            "rolling volume-weighted average price: sum(hlc3·volume, n) / sum(volume, n); "
            "NaN where the volume sums to 0", implicit=HLCV, example="vwap(20)"),
    Builtin("kc_upper", (N, K), Unit.PRICE, _rolling(0),
            f"Keltner upper band ema(close, n) + {WORD_K}", implicit=HLC,
            example="kc_upper(20, 2)"),
    Builtin("kc_middle", (N,), Unit.PRICE, _rolling(-1), "Keltner middle line ema(close, n)",
            implicit=("close",), example="kc_middle(20)"),
    Builtin("kc_lower", (N, K), Unit.PRICE, _rolling(0),
            f"Keltner lower band ema(close, n) - {WORD_K}", implicit=HLC,
            example="kc_lower(20, 2)"),
    Builtin("donchian_upper", (N,), Unit.PRICE, _rolling(-1),
            "Donchian upper band highest(high, n)", implicit=("high",),
            example="donchian_upper(20)[1]"),
    Builtin("donchian_lower", (N,), Unit.PRICE, _rolling(-1),
            "Donchian lower band lowest(low, n)", implicit=("low",),
            example="donchian_lower(20)[1]"),
    Builtin("donchian_middle", (N,), Unit.PRICE, _rolling(-1),
            "Donchian middle line (highest(high, n) + lowest(low, n)) / 2", implicit=HL,
            example="donchian_middle(20)"),
    Builtin("ichimoku_tenkan", (N,), Unit.PRICE, _rolling(-1),
            "Ichimoku conversion line (tenkan-sen): donchian_middle(n)", implicit=HL,
            example="ichimoku_tenkan(9)"),
    Builtin("ichimoku_kijun", (N,), Unit.PRICE, _rolling(-1),
            "Ichimoku base line (kijun-sen): donchian_middle(n)", implicit=HL,
            example="ichimoku_kijun(26)"),
    Builtin("ichimoku_senkou_a", (("tenkan", Arg.WINDOW), ("kijun", Arg.WINDOW),
                                  ("d", Arg.WINDOW)), Unit.PRICE, _senkou_a,
            "Ichimoku leading span A as seen at this bar: (tenkan + kijun) / 2 of d bars ago",
            implicit=HL, example="ichimoku_senkou_a(9, 26, 26)"),
    Builtin("ichimoku_senkou_b", (N, ("d", Arg.WINDOW)), Unit.PRICE, _senkou_b,
            "Ichimoku leading span B as seen at this bar: donchian_middle(n) of d bars ago",
            implicit=HL, example="ichimoku_senkou_b(52, 26)"),
    Builtin("ha_open", (), Unit.PRICE, _fixed(0),
            "Heikin-Ashi open: (open + close) / 2 on the first bar, then the mean of the "
            "previous bar's ha_open and ha_close", implicit=OHLC, example="ha_open()"),
    Builtin("ha_high", (), Unit.PRICE, _fixed(0), "Heikin-Ashi high: max(high, ha_open, "
            "ha_close)", implicit=OHLC, example="ha_high()"),
    Builtin("ha_low", (), Unit.PRICE, _fixed(0), "Heikin-Ashi low: min(low, ha_open, ha_close)",
            implicit=OHLC, example="ha_low()"),
    Builtin("ha_close", (), Unit.PRICE, _fixed(0), "Heikin-Ashi close: ohlc4",
            implicit=OHLC, example="ha_close() > ha_open()"),
    Builtin("supertrend", (K, N), Unit.PRICE, _rolling(0),
            "Supertrend line (TradingView's ta.supertrend(k, n)): hl2 ± k·atr(n) bands, the "
            "lower one in an uptrend", implicit=HLC, example="close > supertrend(3, 10)"),
    Builtin("supertrend_dir", (K, N), Unit.NUMBER, _rolling(0),
            "Supertrend direction: 1 in an uptrend, -1 in a downtrend (TradingView's sign "
            "is the opposite)", implicit=HLC, example="supertrend_dir(3, 10) > 0"),
    Builtin("sum", (X, N), SAME, _rolling(-1), "rolling sum of the last n bars",
            example="sum(volume, 24)"),
    Builtin("cumsum", (X,), SAME, _carried,
            "running sum from the first value on (missing bars add nothing)",
            example="cumsum(volume)"),
    Builtin("barssince", (("cond", Arg.SERIES),), Unit.INT, _carried,
            "bars since cond was last true (0 on a true bar); NaN before the first one",
            example="barssince(crossover(close, sma(close, 50))) < 5",
            conditions=("cond",)),
    Builtin("valuewhen", (("cond", Arg.SERIES), X, ("n", Arg.WINDOW)), SAME, _occurrence,
            "x on the n-th most recent bar where cond was true (n = 0: the latest); NaN "
            "before n + 1 of them", example="valuewhen(crossover(close, ema(close, 20)), "
            "low, 0)", conditions=("cond",), least_window=0),
)


BUILTINS: dict[str, Builtin] = {b.name: b for b in (*_TABLE, *_PORTED)}

# Constructs other tools offer that read future bars or the whole sample; naming one is a
# look-ahead error (L003) with an explanation, not a mere unknown name.
LOOKAHEAD: dict[str, str] = {
    "lead": "reads the next bar's value",
    "future": "reads future bars",
    "shift": "a shift may be negative; use the lag `x[n]` with n >= 0",
    "centered_sma": "a centred window reads bars after the current one",
    "center": "a centred window reads bars after the current one",
    "mean_all": "a full-sample mean includes future bars",
    "std_all": "a full-sample deviation includes future bars",
    "normalize": "full-sample normalisation includes future bars",
    "zscore_all": "a full-sample z-score includes future bars",
    "rank_all": "a full-sample rank includes future bars",
    "cummax_reverse": "a reversed cumulative operator reads future bars",
    "chikou": "is Ichimoku's lagging span: plotted d bars back, at bar t it shows the close "
              "of bar t + d; compare close with close[26] instead",
    "ichimoku_chikou": "is Ichimoku's lagging span: plotted d bars back, at bar t it shows the "
                       "close of bar t + d; compare close with close[26] instead",
}

# Price sources: always available, never need declaring.
SOURCES: dict[str, Unit] = {
    "open": Unit.PRICE, "high": Unit.PRICE, "low": Unit.PRICE, "close": Unit.PRICE,
    "volume": Unit.VOLUME, "hl2": Unit.PRICE, "hlc3": Unit.PRICE, "ohlc4": Unit.PRICE,
}
# What the position holds at the signal bar, readable in entry and exit rules only
# (``lang.position``): the side (+1 long, -1 short, 0 flat), the bars since the entry's fill
# bar, the entry's fill price and the return on it at the bar's close — NaN while flat.
POSITION_SOURCES: dict[str, Unit] = {
    "position": Unit.NUMBER, "bars_in_trade": Unit.NUMBER, "entry_price": Unit.PRICE,
    "unrealized": Unit.PERCENT,
}
DERIVED_SOURCES: dict[str, tuple[str, ...]] = {
    "hl2": ("high", "low"), "hlc3": ("high", "low", "close"),
    "ohlc4": ("open", "high", "low", "close"),
}
