"""Signal graphs compared by meaning (Merkle hashes) and rendered back as expressions."""

from __future__ import annotations

from peakdsl.api import compile_source
from peakdsl.compile import models as m
from peakdsl.review.logic import MAX_RENDER, Renderer, node_hashes, rule_hashes

HEAD = "strategy s {\n    market BTC/EUR\n    timeframe 1h\n    param n: int = 14 in 2..50\n"


def config(body: str) -> m.StrategyConfig:
    artifact = compile_source(HEAD + body + "\n    size 10% of equity\n}\n", "s")
    assert isinstance(artifact, m.StrategyArtifact)
    return artifact.config


def entry(cfg: m.StrategyConfig) -> str:
    return Renderer(cfg.graph)(cfg.graph.rules["entry_long"])


def test_hashes_ignore_numbering_let_names_and_operand_order() -> None:
    inline = config("    entry long when close > sma(close, n) and volume > 0")
    via_lets = config("    let unused = ema(close, 3)\n    let avg = sma(close, n)\n"
                      "    entry long when 0 < volume and close > avg")
    assert [n.id for n in inline.graph.nodes] != [n.id for n in via_lets.graph.nodes]
    assert rule_hashes(inline) == rule_hashes(via_lets)


def test_hashes_see_every_difference_that_computes_differently() -> None:
    base = rule_hashes(config("    entry long when close > sma(close, n)"))
    for other in ("close >= sma(close, n)", "close > ema(close, n)", "close > sma(close, 20)",
                  "close > sma(open, n)", "close[1] > sma(close, n)",
                  "sma(close, n) > close"):
        assert rule_hashes(config(f"    entry long when {other}")) != base, other


def test_modes_are_part_of_the_hash() -> None:
    pop = config("    entry long when stdev(close, n) > 1")
    sample = config("    entry long when stdev(close, n, sample) > 1")
    assert rule_hashes(pop) != rule_hashes(sample)
    assert entry(sample) == "stdev(close, n, sample) > 1"


def test_rendering_folds_crosses_and_hides_implicit_inputs() -> None:
    cfg = config("    let fast = ema(close, n)\n"
                 "    entry long when crossover(fast, sma(close, 30)) and atr(n) > 2\n"
                 "    exit long when crossunder(close[2], fast) or not (close > open)")
    assert entry(cfg) == "crossover(ema(close, n), sma(close, 30)) and (atr(n) > 2)"
    assert Renderer(cfg.graph)(cfg.graph.rules["exit_long"]) == \
        "crossunder(close[2], ema(close, n)) or (not (close > open))"


def test_rendering_of_conditionals_negation_and_derived_sources() -> None:
    cfg = config("    entry long when (if close > open then hl2 else -low) > 0")
    assert entry(cfg) == "(if (close > open) then ((high + low) / 2) else (-low)) > 0"


def test_long_renderings_are_capped() -> None:
    deep = "close"
    for _ in range(12):
        deep = f"({deep} + {deep})"
    text = entry(config(f"    entry long when {deep} > 0"))
    assert len(text) == MAX_RENDER and text.endswith("…")


def test_mirrored_comparisons_are_one_hash() -> None:
    a = config("    entry long when close > open and crossunder(close, open)")
    b = config("    entry long when open < close and crossover(open, close)")
    assert rule_hashes(a) == rule_hashes(b)
    c = config("    entry long when open > close and crossover(open, close)")
    assert rule_hashes(c) != rule_hashes(a)


def test_node_hashes_cover_every_node() -> None:
    cfg = config("    entry long when close > sma(close, n)")
    hashes = node_hashes(cfg.graph)
    assert sorted(hashes) == [n.id for n in cfg.graph.nodes]
    assert len(set(hashes.values())) == len(hashes)  # merged subexpressions: all distinct


def test_bodies_render_as_the_expression_they_run() -> None:
    """A rule that reads the position and a ``state`` are scan bodies in the graph: a
    reviewer sees the body's operations over the rendered inputs, not its JSON."""
    cfg = compile_source(
        "strategy s {\n market BTC/EUR\n timeframe 1h\n let n = atr(14)\n"
        " entry long when close > open\n"
        " exit long when bars_in_trade >= 10 or close < entry_price - 2 * n\n"
        " state top = max(nz(top[1], close), close)\n exit short when close > top\n}\n").config
    assert isinstance(cfg, m.StrategyConfig)
    render = Renderer(cfg.graph)
    assert render(cfg.graph.rules["exit_long"]) == \
        "or(ge(bars_in_trade, 10.0), lt(close, sub(entry_price, (atr(14) * 2))))"
    assert render(cfg.graph.rules["exit_short"]) == \
        "close > state(max(nz(self[1], close), close))"


def test_frames_render_as_written_with_their_columns_bare() -> None:
    """An ``align`` node is ``x@F`` with F's columns bare inside: ``sma(close, 5)@1d``, never
    ``sma(close@1d, 5)`` (a 5-hour mean of the daily close)."""
    cfg = config("    let d = sma(close, 5)@1d\n"
                 "    entry long when close > d and (close - open)@4h > atr(n)@1d and "
                 "close@ETH/USDT@4h[1] > 0")
    assert entry(cfg) == ("((close > sma(close, 5)@1d) and ((close - open)@4h > atr(n)@1d))"
                          " and (close[1] > 0)@ETH/USDT@4h")


def test_frames_are_part_of_the_hash() -> None:
    base = rule_hashes(config("    entry long when close > sma(close, 5)@1d"))
    for other in ("close > sma(close, 5)@4h", "close > sma(close, 5)",
                  "close > sma(close, 5)@ETH/USDT@1d", "close > sma(close - open, 5)@1d"):
        assert rule_hashes(config(f"    entry long when {other}")) != base, other


def test_an_operation_on_one_frame_is_computed_on_it() -> None:
    """The frame rule of docs/language.md: an operation whose series inputs all come from one
    frame is computed on that frame, so ``sma(close@1d, 5)`` is the 5-day mean."""
    assert rule_hashes(config("    entry long when close > sma(close@1d, 5)")) == \
        rule_hashes(config("    entry long when close > sma(close, 5)@1d"))
