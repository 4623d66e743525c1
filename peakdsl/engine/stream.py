"""The Program one closed bar at a time: ``Stream`` (``Program.stream``), with bounded state.

Every kernel step becomes its state form (``kernels.STATES``), expression steps run numexpr
on one-element arrays, scalar steps once; the nodes on another timeframe or market run when
one of that frame's bars completes (``frame_stream``). ``Stream.push(bar)`` returns the lets
and rules at that bar (``BarSignals``). What a stream built from a history window equals is
the ``program`` module docstring's "Warm-up, precisely".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from ..compile.ops import apply
from ..lang.builtins import TIME, Arg
from ..lang.frames import Frame
from .frame_stream import (
    NS,
    Bucketer,
    FrameFeed,
    OtherMarket,
    TimeError,
    bar_time,
    history_bars,
    node_frames,
    other_bars,
    rows_of,
)
from .kernels import STATES, KernelState
from .program import (
    COLUMNS,
    Array,
    Call,
    EvaluationError,
    Planned,
    Program,
    _numexpr,
    leaf_value,
    resolve_params,
)


def stream_of(program: Program, params: Mapping[str, float] | None = None, history: Any = None,
              others: Mapping[str, Any] | None = None) -> Stream:
    """A ``Stream`` for ``params`` (defaults otherwise), fed the bars of ``history`` (a
    frame or mapping of columns, optional) first. A graph that reads frames needs their
    open times: ``history`` time-indexed (or with a ``time`` column), and ``others`` the
    other markets' candles it reads (time-indexed DataFrames by symbol), each bar pushed
    with the first history bar opening at or after it."""
    stream = Stream(program, resolve_params(program.cfg, params))
    if history is None:
        return stream
    try:
        bars = list(history_bars(history, bool(stream.feeds or stream.reads_time)))
        pending = other_bars(others)
    except TimeError as exc:
        raise EvaluationError(str(exc)) from None
    for bar in bars:
        now = bar_time(bar["time"]) if stream.feeds else 0
        with_it = {}
        for market, rows in pending.items():
            k = 0
            while k < len(rows) and bar_time(rows[k]["time"]) <= now:
                k += 1
            if k:
                with_it[market], pending[market] = rows[:k], rows[k:]
        stream.push(bar, with_it or None)
    return stream


@dataclass(frozen=True)
class BarSignals:
    """The lets and rules at one bar; ``index`` counts bars from the first one the stream
    was given (history included). Rules are False while ``index < warmup``."""

    index: int
    series: dict[str, float | bool]
    rules: dict[str, bool]
    levels: dict[str, float] = field(default_factory=dict)  # stops and sizes (``Signals``)
    # the inputs of the rules that read the position, in ``Packed`` order (``ClosedBar``)
    position_inputs: tuple[float, ...] = ()


class Stream:
    """A Program evaluated one closed bar at a time with bounded state (module docstring).

    Series nodes hold one-element arrays (the bar's value), params, consts and scalar steps
    the same numpy scalars as the whole-array run, so numexpr sees the same types. The
    nodes on a frame (``engine.frame_stream``) sit in that frame's ``FrameFeed`` and run when
    one of its bars completes; the rest run at every bar."""

    def __init__(self, program: Program, params: dict[str, float]) -> None:
        self.program = program
        self.params = params
        self.warmup = program.cfg.warmup.evaluate(params)
        self.bars = 0
        self._values: dict[int, Any] = {}
        self._sources: list[tuple[str, Array]] = []
        self._times: list[Array] = []  # the bar's open time (``session_vwap``)
        self.reads_time = program.reads_time
        self._frames = node_frames(program.nodes)
        self.feeds: dict[str, FrameFeed] = {}
        base = program.cfg.timeframe_seconds
        self._base_ns = base * NS
        for key in sorted({str(program.nodes[i].value) for i in program.aligns}):
            frame = Frame.parse(key)
            self.feeds[key] = FrameFeed(key, frame.market, Bucketer.of(frame, base))
        self._others = {f.market: OtherMarket() for f in self.feeds.values() if f.market}
        self._start: int | None = None
        for leaf in program.leaves:
            if leaf.op == "source":
                self._values[leaf.id] = self._source(str(leaf.value))
            else:
                self._values[leaf.id] = leaf_value(leaf, {}, params)
        self._steps: list[Callable[[], None]] = []
        self.states: list[KernelState] = []  # one per kernel step, in program order
        for step in program.steps:
            self._plan_step(step)

    def _source(self, value: str) -> Array:
        """The one-element column of a source node: the bar's price, a frame's price at its
        last completed bar (``close@4h``), or a frame's index (``@4h``)."""
        column, _, key = value.partition("@")
        if not key and column == TIME:
            out = np.full(1, np.nan)
            self._times.append(out)
        elif not key:
            out = np.full(1, np.nan)
            self._sources.append((value, out))
        elif not column:
            out = np.full(1, -1.0)
            self.feeds[key].indexes.append(out)
        else:
            out = np.full(1, np.nan)
            self.feeds[key].columns.append(((*COLUMNS, TIME).index(column), out))
        return out

    def _plan_step(self, step: Planned) -> None:
        values = self._values
        if step.kind == "scalar":  # params only: computed once
            values[step.node] = apply(step.op, *(values[i] for i in step.inputs))
            return
        if step.kind == "kernel":
            run = self._kernel_step(step)
        else:
            def run() -> None:
                values[step.node] = _numexpr(step, values)
        key = self._frames[step.node]
        if key:  # on a frame: defined (NaN / False) until its first bar completes
            fill = False if self.program.nodes[step.node].unit == "bool" else np.nan
            values[step.node] = np.array([fill])
            self.feeds[key].steps.append(run)
        else:
            self._steps.append(run)

    def _kernel_step(self, step: Planned) -> Callable[[], None]:
        call = cast(Call, step.call)
        nodes, values = self.program.nodes, self._values
        state: KernelState = STATES[call.op](*call.static(nodes, values, self.params),
                                             *call.modes)
        inputs = [i for kind, i in call.args if kind is Arg.SERIES]
        self.states.append(state)

        def push() -> None:
            out = state.push(*(values[i].item() for i in inputs))
            values[step.node] = np.array([out])

        return push

    def push(self, bar: Mapping[str, Any], others: Mapping[str, Any] | None = None
             ) -> BarSignals:
        """The lets and rules at the next closed bar (a mapping with open, high, low, close
        and volume, and ``time``, its open, when the graph reads frames). ``others``: the
        bars of the other markets the graph reads that open after the ones pushed before
        and at or before this one (by symbol: one bar or a sequence, each with ``time``); a
        market without one here just gets no new frame bar."""
        missing = [c for c in COLUMNS if c not in bar]
        if missing:
            raise EvaluationError("missing columns: " + ", ".join(missing))
        try:
            prices = {c: float(bar[c]) for c in COLUMNS}
        except (TypeError, ValueError) as exc:
            raise EvaluationError(f"a bar value is not a number: {exc}") from exc
        if self.feeds:
            self._push_frames(bar, prices, others or {})
        elif others:
            raise EvaluationError("this strategy reads no other market: `others` given")
        for name, column in self._sources:
            column[0] = prices[name]
        if self._times:
            self._push_time(bar)
        for step in self._steps:
            step()
        index = self.bars
        self.bars += 1
        values = self._values
        series = {name: values[i].item() for name, i in self.program.lets.items()}
        rules = {slot: bool(values[i].item()) and index >= self.warmup
                 for slot, i in self.program.rules.items()}
        levels = {slot: float(values[i].item()) for slot, i in self.program.levels.items()}
        inputs = tuple(float(values[k].item()) for k in self.program.position_inputs)
        return BarSignals(index, series, rules, levels, inputs)

    def _push_time(self, bar: Mapping[str, Any]) -> None:
        """The bar's open time, in epoch seconds, for the kernels that read it."""
        if "time" not in bar:
            raise EvaluationError("this strategy reads the bars' times (`session_vwap`): "
                                  "each bar pushed needs its open `time`")
        try:
            seconds = bar_time(bar["time"]) / NS
        except TimeError as exc:
            raise EvaluationError(str(exc)) from None
        for column in self._times:
            column[0] = seconds

    def _push_frames(self, bar: Mapping[str, Any], prices: Mapping[str, float],
                     others: Mapping[str, Any]) -> None:
        """Build the frames' bars from this bar and the other markets' (``frame_stream``):
        the other markets' first, then the strategy's own, then what its close completes."""
        if "time" not in bar:
            raise EvaluationError("this strategy reads other timeframes or markets (`@`): "
                                  "each bar pushed needs its open `time`")
        try:
            now = bar_time(bar["time"])
            if self._start is None:
                self._start = now
            unknown = sorted(set(others) - set(self._others))
            if unknown:
                raise TimeError(f"this strategy does not read {', '.join(unknown)}")
            for market, bars in others.items():
                for time, row in rows_of(bars, market):
                    if self._others[market].accept(time, now, self._start, market):
                        self._add(market, time, row)
        except TimeError as exc:
            raise EvaluationError(str(exc)) from None
        self._add("", now, tuple(prices[c] for c in COLUMNS))  # type: ignore[arg-type]
        for feed in self.feeds.values():
            feed.feed(feed.bucketer.due(now + self._base_ns))

    def _add(self, market: str, time: int, row: tuple[float, float, float, float, float]
             ) -> None:
        for feed in self.feeds.values():
            if feed.market == market:
                feed.feed(feed.bucketer.add(time, row))
