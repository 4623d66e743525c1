"""peakdsl.lsp.describe: every registry entry has its hover text, worded from the registry."""

from __future__ import annotations

import pytest

from peakdsl.lang import ast
from peakdsl.lang.builtins import BUILTINS, LOOKAHEAD, SOURCES
from peakdsl.lang.schema import BLOCKS, METRICS, NESTED_BLOCKS, SETTINGS, SIZE_BASES, SettingSpec
from peakdsl.lang.types import PARAM_TYPES
from peakdsl.lsp import describe
from peakdsl.lsp.locate import setting_table


def all_settings() -> list[tuple[str, tuple[str, ...], SettingSpec]]:
    out = []
    for kind, blocks in BLOCKS.items():
        out += [(kind, (), s) for s in SETTINGS[kind].values()]
        for block in blocks:
            out += [(kind, (block,), s) for s in setting_table(kind, (block,)).values()]
            for sink in NESTED_BLOCKS.get(block, {}):
                out += [(kind, (block, sink), s)
                        for s in setting_table(kind, (block, sink)).values()]
    return out


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_has_signature_doc_and_result(name: str) -> None:
    builtin = BUILTINS[name]
    text = describe.function_md(name)
    assert text is not None
    assert text.startswith(f"```peak\n{builtin.signature}\n```\n\n{builtin.doc}\n\nresult: ")
    if builtin.mode is not None:
        assert builtin.mode.describe() in text


def test_result_units_read_as_the_unit_table_says() -> None:
    assert describe.result_text(BUILTINS["rsi"]) == "a 0–100 oscillator series"
    assert describe.result_text(BUILTINS["ema"]) == "the unit of `x`"
    assert describe.result_text(BUILTINS["max"]) == "the common unit of its arguments"
    assert describe.result_text(BUILTINS["crossover"]) == "a boolean series"


@pytest.mark.parametrize("name", sorted(LOOKAHEAD))
def test_lookahead_names_say_why_they_are_refused(name: str) -> None:
    assert describe.function_md(name) == f"`{name}` is not available: it {LOOKAHEAD[name]} " \
        "(look-ahead, `L003`)"


def test_every_setting_has_its_doc_and_value() -> None:
    for kind, blocks, spec in all_settings():
        text = describe.setting_md(spec)
        assert spec.doc in text, (kind, blocks, spec.key)
        assert "value: " in text
        assert ("required" in text.split("\n\n")) is spec.required


def test_setting_values_say_their_bounds_and_params() -> None:
    stop = SETTINGS["strategy"]["stop_loss"]
    assert describe.value_text(stop) == \
        "a percentage, above 0% and at most 100%, or a percent param"
    fill = setting_table("strategy", ("execution",))["fill"]
    assert describe.value_text(fill) == "one of `next_open`, `close`"


def test_every_block_and_sink_is_described() -> None:
    for kind, blocks in BLOCKS.items():
        for block in blocks:
            text = describe.block_for(kind, (), block)
            assert text is not None and text.startswith(f"block `{block} {{ … }}`")
            for sink in NESTED_BLOCKS.get(block, {}):
                assert describe.block_for(kind, (block,), sink) is not None
    assert describe.block_for("strategy", (), "nowhere") is None


def test_sources_metrics_modes_and_builtins_as_names() -> None:
    for name in SOURCES:
        assert describe.name_md(name, "strategy", None) == describe.source_md(name)
    assert describe.source_md("hlc3") == \
        "source `hlc3` — a price series: the mean of high, low and close"
    for name in METRICS:
        text = describe.name_md(name, "promotion", None)
        assert text is not None and text.startswith(f"metric `{name}`")
    assert describe.name_md("sharpe", "strategy", None) is None  # not a name in a strategy
    call = ast.Call("stdev", (ast.Name("close"), ast.Number(20, True, "20"), ast.Name("sample")))
    text = describe.name_md("sample", "strategy", call)
    assert text is not None and text.startswith("mode `sample` of `stdev`")
    assert describe.name_md("sma", "strategy", None) == describe.function_md("sma")


def test_every_size_basis_and_param_type_has_its_own_words() -> None:
    assert set(describe.BASIS_DOCS) == set(SIZE_BASES)
    assert set(describe.PARAM_TYPE_DOCS) == set(PARAM_TYPES)
    assert describe.param_type_md("percent") == "param type `percent`: percentages: `3%`"
