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
MODE_WORDS: frozenset[str] = frozenset(DEVIATION.choices + SEEDING.choices)


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

    @property
    def signature(self) -> str:
        tail = "[, mode]" if self.mode else ""
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
            "the smaller of a and b (b when a is NaN)", elementwise=True,
            example="min(open, close)"),
    Builtin("max", (("a", Arg.SERIES), ("b", Arg.SERIES)), JOIN, _elementwise,
            "the larger of a and b (b when a is NaN)", elementwise=True,
            example="max(open, close)"),
    Builtin("clip", (X, ("lo", Arg.SERIES), ("hi", Arg.SERIES)), JOIN, _elementwise,
            "x limited to [lo, hi]", elementwise=True, example="clip(rsi(close, 14), 20, 80)"),
)

BUILTINS: dict[str, Builtin] = {b.name: b for b in _TABLE}

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
}

# Price sources: always available, never need declaring.
SOURCES: dict[str, Unit] = {
    "open": Unit.PRICE, "high": Unit.PRICE, "low": Unit.PRICE, "close": Unit.PRICE,
    "volume": Unit.VOLUME, "hl2": Unit.PRICE, "hlc3": Unit.PRICE, "ohlc4": Unit.PRICE,
}
DERIVED_SOURCES: dict[str, tuple[str, ...]] = {
    "hl2": ("high", "low"), "hlc3": ("high", "low", "close"),
    "ohlc4": ("open", "high", "low", "close"),
}
