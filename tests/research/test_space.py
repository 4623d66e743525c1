"""The sweep's parameter space: axes, `--set` overrides and their diagnostics, lexicographic
grid order, `require` filtering, random draws, too-large grids, identity and edges."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peakdsl.compile import models as m
from peakdsl.research.space import build_space, describe, on_edge, space_id
from peakdsl.research.types import ParamSpace

REPO = Path(__file__).resolve().parents[2]


def param(name: str, low: float, high: float, step: float | None = None, type_: str = "int",
          default: float | None = None) -> m.Param:
    return m.Param(name=name, type=type_, default=low if default is None else default,
                   low=low, high=high, step=step)


OPS = {"<": "lt", ">": "gt", "<=": "le", ">=": "ge"}


def _require_graph(requires: Sequence[str]) -> tuple[m.Graph, list[m.Require]]:
    """Nodes and scalar steps for constraints written ``a OP b`` (a param name, optionally
    ``p_``-prefixed, or a number on either side), as the compiler lowers them."""
    zero = m.Lookback(forms=[m.LinearForm(const=0)], text="0")
    nodes: list[m.GraphNode] = []
    program, reqs = [], []

    def leaf(text: str) -> int:
        name = text.removeprefix("p_")
        try:
            op, value, unit = "const", float(name), "number"
        except ValueError:
            op, value, unit = "param", name, "int"  # type: ignore[assignment]
        nodes.append(m.GraphNode(id=len(nodes), op=op, inputs=[], value=value, unit=unit,
                                 series=False, lookback=zero))
        return len(nodes) - 1

    for text in requires:
        a, op, b = text.strip("()").split()
        inputs = [leaf(a), leaf(b)]
        nodes.append(m.GraphNode(id=len(nodes), op=OPS[op], inputs=inputs, unit="bool",
                                 series=False, lookback=zero))
        program.append(m.Step(node=len(nodes) - 1, kind="scalar"))
        reqs.append(m.Require(node=len(nodes) - 1, source=text))
    return m.Graph(nodes=nodes, program=program, lets={}, rules={}), reqs


def config(params: Sequence[m.Param], requires: Sequence[str] = ()) -> m.StrategyConfig:
    zero = m.Lookback(forms=[m.LinearForm(const=0)], text="0")
    graph, reqs = _require_graph(requires)
    return m.StrategyConfig(
        name="ma", market=m.Market(symbol="BTC/EUR", base="BTC", quote="EUR"), timeframe="1h",
        timeframe_seconds=3600, params=list(params), requires=reqs,
        graph=graph, warmup=zero, warmup_bars=0,
        sizing=m.Sizing(mode="equity_fraction", value=m.Scalar(const=0.25)),
        execution=m.Execution())


MA = config([param("fast", 5, 15, 5), param("slow", 10, 30, 10)], ["fast < slow"])


def ok(cfg: m.StrategyConfig, sets: Sequence[str] = (), **kw: object) -> ParamSpace:
    space, problems = build_space(cfg, sets, **kw)  # type: ignore[arg-type]
    assert problems == [], problems
    assert space is not None
    return space


def codes(cfg: m.StrategyConfig, sets: Sequence[str] = (), **kw: object) -> list[str]:
    space, problems = build_space(cfg, sets, **kw)  # type: ignore[arg-type]
    assert space is None
    return [d.code for d in problems]


def messages(cfg: m.StrategyConfig, sets: Sequence[str] = (), **kw: object) -> str:
    _, problems = build_space(cfg, sets, **kw)  # type: ignore[arg-type]
    return "\n".join(f"{d.code} {d.path} {d.message} | {d.help}" for d in problems)


# ------------------------------------------------------------------------- grid

def test_grid_is_lexicographic_and_filtered() -> None:
    space = ok(MA)
    assert space.names == ("fast", "slow") and space.mode == "grid" and space.seed is None
    assert space.candidates == 9
    assert space.combos.dtype == np.float64 and space.combos.flags.c_contiguous
    assert space.combos.tolist() == [[5, 10], [5, 20], [5, 30], [10, 20], [10, 30], [15, 20],
                                     [15, 30]]
    assert len(space) == 7 and space.params(3) == {"fast": 10.0, "slow": 20.0}
    assert {k: v.tolist() for k, v in space.axes.items()} == {"fast": [5, 10, 15],
                                                              "slow": [10, 20, 30]}


def test_axis_values_carry_no_float_noise() -> None:
    cfg = config([param("stop", 0.01, 0.1, 0.005, "percent", 0.05),
                  param("k", 0.1, 0.7, 0.1, "float")])
    space = ok(cfg)
    assert space.axes["stop"].tolist() == [round(0.01 + 0.005 * i, 6) for i in range(19)]
    assert space.axes["k"].tolist() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert space.candidates == len(space) == 19 * 7


def test_int_without_step_steps_by_one_and_a_fixed_param_is_one_value() -> None:
    space = ok(config([param("n", 3, 6), param("fixed", 2.5, 2.5, None, "float")]))
    assert space.combos.tolist() == [[3, 2.5], [4, 2.5], [5, 2.5], [6, 2.5]]


def test_float_without_step_asks_for_one() -> None:
    cfg = config([param("fast", 5, 15, 5), param("k", 0.5, 3.0, None, "float")])
    text = messages(cfg)
    assert text.startswith("U005 --set `k` is a float param without a step")
    assert "--set k=0.5..3:" in text
    assert ok(cfg, ["k=0.5..3:0.5"]).axes["k"].tolist() == [0.5, 1, 1.5, 2, 2.5, 3]
    assert ok(cfg, ["k=1.25"]).axes["k"].tolist() == [1.25]  # no step: any value in range
    assert codes(cfg, ["k=1..2"]) == ["U005"]  # a range of a stepless float needs :step


def test_the_real_library_spec(tmp_path: Path) -> None:
    from peakdsl.api import compile_spec
    from peakdsl.compile.models import StrategyArtifact

    artifact = compile_spec(str(REPO / "specs/strategies/rsi_reversion_btc_aggressive.peak"),
                            REPO)
    assert isinstance(artifact, StrategyArtifact)
    cfg = artifact.config
    sets = ["length=10..20:5", "stop=1%..3%:1%", "target=2%..6%:2%"]
    space = ok(cfg, sets)
    axes = [space.axes[p.name].tolist() for p in cfg.params]
    brute = [row for row in itertools.product(*axes)
             if row[1] < 50 and row[2] > 50 and row[3] < row[4]]  # the spec's two requires
    assert space.combos.tolist() == [list(r) for r in brute]
    assert space.candidates == len(list(itertools.product(*axes)))


# --------------------------------------------------------------------------- --set

def test_set_forms() -> None:
    assert ok(MA, ["fast=10"]).combos.tolist() == [[10, 20], [10, 30]]
    space = ok(MA, ["slow=20..30"])
    assert space.axes["slow"].tolist() == [20, 30] and space.candidates == 6
    wide = config([param("fast", 5, 50, 5)])
    assert ok(wide, ["fast=10..40:10"]).axes["fast"].tolist() == [10, 20, 30, 40]
    assert ok(wide, ["fast=10..45:10"]).axes["fast"].tolist() == [10, 20, 30, 40]  # ≤ hi
    assert ok(wide, [" fast = 5 .. 15 : 5 "]).axes["fast"].tolist() == [5, 10, 15]


def test_set_units() -> None:
    cfg = config([param("stop", 0.01, 0.1, 0.005, "percent", 0.05),
                  param("fee", 0.0, 0.005, 0.0005, "bps")])
    for text in ("stop=1%..5%:1%", "stop=1..5%:1%", "stop=1..5:1%", "stop=1%..5%:1"):
        assert ok(cfg, [text]).axes["stop"].tolist() == [0.01, 0.02, 0.03, 0.04, 0.05], text
    assert ok(cfg, ["stop=2.5%"]).axes["stop"].tolist() == [0.025]
    assert ok(cfg, ["fee=5bps..20bps:5bps"]).axes["fee"].tolist() == [0.0005, 0.001, 0.0015,
                                                                        0.002]
    assert "give a percentage like 3%" in messages(cfg, ["stop=1..5"])
    assert "give basis points" in messages(cfg, ["fee=0.001"])
    assert "mixes units" in messages(cfg, ["stop=1%..50bps"])
    assert "plain number" in messages(MA, ["fast=5%..15%"])


def test_set_problems_are_all_reported_with_the_override_codes() -> None:
    cfg = config([param("fast", 5, 50, 5), param("slow", 40, 200, 10),
                  param("stop", 0.01, 0.1, 0.005, "percent", 0.05)])
    sets = ["fsat=10", "slow=30..100", "stop=1%..5%:0.7%", "fast=7", "slow=50", "oops",
            "fast=5..", "stop=2:1"]
    text = messages(cfg, sets)
    lines = text.splitlines()
    assert lines[0].startswith("N014 --set `ma` has no param `fsat`")
    assert "did you mean `fast`?" in lines[0]
    assert any(line.startswith("U005 --set `--set slow` is given more than once")
               for line in lines)
    assert any("`--set oops` is not name=value" in line for line in lines)
    # fast=7 is reported once (the first --set of fast wins the name, the others are repeats)
    assert "override `fast`: 7 is not on the step 5 from 5" in text
    assert "override `slow`: 30 is outside 40..200" in text
    assert "the step 0.007 is not a multiple of the declared step 0.005" in text
    assert "declared as percent in 0.01..0.1 step 0.005" in text
    assert sorted(codes(cfg, sets)) == ["N014", "T010", "T010", "T010", "U005", "U005", "U005",
                                        "U005"]


@pytest.mark.parametrize("item, code, fragment", [
    ("fast=5..", "U005", "not name=value, name=lo..hi"),
    ("fast=..10", "U005", "not name=value, name=lo..hi"),
    ("fast=5..10:", "U005", "not name=value, name=lo..hi"),
    ("fast=5:5", "U005", "not name=value, name=lo..hi"),
    ("fast=", "U005", "is not name=value"),
    ("fast=ten", "T010", "`ten` is not a number"),
    ("fast=15..5", "T010", "low above high"),
    ("fast=5..15:0", "T010", "not positive"),
    ("fast=5..15:-5", "T010", "not positive"),
    ("fast=5..15:2.5", "T010", "is an int param"),
    ("fast=5..12", "T010", "12 is not on the step 5"),
    ("fast=0..15", "T010", "0 is outside 5..15"),
    ("flow=5", "N014", "has no param `flow`"),
])
def test_one_bad_set(item: str, code: str, fragment: str) -> None:
    assert codes(MA, [item]) == [code]
    assert fragment in messages(MA, [item])


def test_the_declared_high_may_end_a_range_off_the_step_grid() -> None:
    cfg = config([param("n", 5, 52, 5)])
    assert ok(cfg).axes["n"].tolist() == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert ok(cfg, ["n=40..52"]).axes["n"].tolist() == [40, 45, 50]
    assert codes(cfg, ["n=52"]) == ["T010"]  # a single value must be on the grid


# ----------------------------------------------------------------------- requires

def test_a_require_that_removes_everything_is_named() -> None:
    text = messages(MA, ["fast=15", "slow=10"])
    assert text == ("T010 --set no parameter combination satisfies the spec's require "
                    "constraints (after --set) | `require fast < slow` removes all 1 "
                    "combinations; widen or drop the --set ranges")


def test_requires_that_only_together_remove_everything() -> None:
    cfg = config([param("fast", 5, 15, 5), param("slow", 10, 30, 10)],
                 ["(p_fast > 10)", "(p_fast < 10)"])
    text = messages(cfg)
    assert text.startswith("T010 <sweep> no parameter combination satisfies")
    assert "together they keep none: `require (p_fast > 10)` keeps 3, `require (p_fast < 10)`"\
        " keeps 3 of 9 combinations" in text


def test_a_constant_require() -> None:
    cfg = config([param("fast", 5, 15, 5)], ["(1.0 < 2.0)"])
    assert len(ok(cfg)) == 3


# -------------------------------------------------------------------------- random

def test_random_draws_are_distinct_valid_seeded_and_in_draw_order() -> None:
    cfg = config([param("fast", 5, 50, 1), param("slow", 10, 200, 1)], ["fast < slow"])
    grid = ok(cfg)
    space = ok(cfg, mode="random", n=300, seed=7)
    assert (space.mode, space.seed, len(space), space.candidates) == ("random", 7, 300,
                                                                     grid.candidates)
    rows = {tuple(r) for r in space.combos.tolist()}
    assert len(rows) == 300 and rows <= {tuple(r) for r in grid.combos.tolist()}
    assert space.combos.tolist() != sorted(space.combos.tolist())  # draw order, not grid order
    assert np.array_equal(space.combos, ok(cfg, mode="random", n=300, seed=7).combos)
    assert not np.array_equal(space.combos, ok(cfg, mode="random", n=300, seed=8).combos)
    assert {k: v.tolist() for k, v in space.axes.items()} == \
        {k: v.tolist() for k, v in grid.axes.items()}


def test_random_with_n_at_least_the_grid_is_the_grid() -> None:
    space = ok(MA, mode="random", n=100, seed=1)
    assert space.combos.tolist() == ok(MA).combos.tolist() and space.mode == "random"


def test_mode_options() -> None:
    assert "--random needs --seed" in messages(MA, mode="random", n=5)
    assert "positive number" in messages(MA, mode="random", n=0, seed=1)
    assert "non-negative" in messages(MA, mode="random", n=5, seed=-1)
    assert codes(MA, mode="grid", n=5) == ["U005"]
    assert codes(MA, mode="grid", seed=5) == ["U005"]
    assert codes(MA, mode="walk") == ["U005"]
    # option problems and --set problems come together
    assert codes(MA, ["nope=1"], mode="random", n=5) == ["U005", "N014"]


def test_a_grid_too_large_suggests_random_which_draws_without_building_it() -> None:
    params = [param(f"p{i}", 1, 40, 1) for i in range(5)]  # 40^5 ≈ 1.0e8 combinations
    cfg = config(params, ["(p_p0 < p_p1)"])
    text = messages(cfg)
    assert text.startswith("U005 --grid the grid has 102,400,000 combinations, more than "
                           "5,000,000")
    assert "--random N --seed S" in text
    space = ok(cfg, mode="random", n=500, seed=3)
    assert len(space) == 500 and space.candidates == 40 ** 5
    assert len({tuple(r) for r in space.combos.tolist()}) == 500
    assert (space.combos[:, 0] < space.combos[:, 1]).all()
    assert np.array_equal(space.combos, ok(cfg, mode="random", n=500, seed=3).combos)
    assert codes(cfg, mode="random", n=6_000_000, seed=3) == ["U005"]
    assert codes(config(params, ["(p_p0 > 99)"]), mode="random", n=5, seed=3,
                 max_combos=1000) == ["T010"]


def test_an_axis_too_fine_is_refused_before_it_is_built() -> None:
    cfg = config([param("k", 0.0, 1.0, None, "float")])
    assert "coarser step" in messages(cfg, ["k=0..1:0.0000001"], mode="random", n=5, seed=1)


# ----------------------------------------------------------------- identity, edges

def test_space_id() -> None:
    a = ok(MA)
    assert space_id(a) == space_id(ok(MA)) and len(space_id(a)) == 64
    assert space_id(a) != space_id(ok(MA, ["fast=10"]))
    r1 = ok(config([param("n", 1, 100)]), mode="random", n=10, seed=1)
    r2 = ok(config([param("n", 1, 100)]), mode="random", n=10, seed=2)
    assert space_id(r1) != space_id(r2)
    same_rows = ParamSpace(a.names, a.combos, "random", 1, a.candidates, a.axes)
    assert space_id(same_rows) != space_id(a)  # mode and seed are part of the identity
    assert describe(a)["space_id"] == space_id(a) and describe(a)["combinations"] == 7


def test_on_edge() -> None:
    cfg = config([param("fast", 5, 15, 5), param("slow", 10, 20, 10), param("n", 1, 5)])
    space = ok(cfg, ["n=3"])
    row = space.combos.tolist().index([5, 10, 3])
    assert on_edge(space, row) == ["fast"]  # slow has two values, n one: neither counts
    row = space.combos.tolist().index([10, 20, 3])
    assert on_edge(space, row) == []
    wide = ok(config([param("a", 1, 5), param("b", 1, 5)]), mode="random", n=25, seed=0)
    for i in range(len(wide)):
        expected = [n for n, v in zip(wide.names, wide.combos[i], strict=True) if v in (1, 5)]
        assert on_edge(wide, i) == expected


# ---------------------------------------------------------------------- properties

@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 7), st.integers(1, 3),
       st.integers(0, 10_000), st.integers(1, 40))
def test_grid_matches_brute_force(na: int, nb: int, nc: int, step: int, seed: int,
                                  n: int) -> None:
    cfg = config([param("fast", 1, na), param("slow", 1, nb),
                  param("c", 0, (nc - 1) * step, step)], ["fast < slow"])
    axes = [list(range(1, na + 1)), list(range(1, nb + 1)), list(range(0, nc * step, step))]
    brute = [list(map(float, r)) for r in itertools.product(*axes) if r[0] < r[1]]
    space, problems = build_space(cfg)
    if not brute:
        assert space is None and [d.code for d in problems] == ["T010"]
        return
    assert space is not None and space.combos.tolist() == brute
    assert space.candidates == na * nb * nc
    drawn = ok(cfg, mode="random", n=n, seed=seed)
    rows = [tuple(r) for r in drawn.combos.tolist()]
    assert len(rows) == len(set(rows)) == min(n, len(brute))
    assert set(rows) <= {tuple(r) for r in brute}
