"""docs/results.md stays true: every strategy's row is recomputed by scripts/library_results.py.

The demo rows (synthetic markets, offline) are always checked; the real-data rows, and the
sanity of every run on real candles, only where ``../shared/data`` is present (``realdata``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from peakdsl.backtest import BacktestResult, backtest_doc

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DOC = ROOT / "docs" / "results.md"


def _load_script() -> ModuleType:
    path = ROOT / "scripts" / "library_results.py"
    spec = importlib.util.spec_from_file_location("library_results", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


lr = _load_script()
NAMES = lr.strategy_names()


@pytest.fixture(scope="module")
def specs_root() -> Iterator[Path]:
    with lr.specs_copy() as root:
        yield root


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def _rows_by_spec(text: str, heading: str) -> dict[str, str]:
    rows = lr.section_rows(text, heading)
    return {row.split(" | ")[0].removeprefix("| "): row for row in rows}


def test_library_has_every_strategy_in_the_doc(doc_text: str) -> None:
    assert len(NAMES) == 27
    assert list(_rows_by_spec(doc_text, lr.DEMO_HEADING)) == NAMES
    assert "not evidence of edge" in doc_text
    assert "python scripts/library_results.py --write docs/results.md --date" in doc_text


@pytest.mark.parametrize("name", NAMES)
def test_demo_row_matches_fresh_run(name: str, specs_root: Path, doc_text: str) -> None:
    row = lr.demo_row(name, specs_root)
    assert "synthetic demo (seed" in row
    assert _rows_by_spec(doc_text, lr.DEMO_HEADING)[name] == row, (
        "docs/results.md is out of date: python scripts/library_results.py "
        "--write docs/results.md --date <date>")


def test_prose_is_what_the_script_renders(doc_text: str) -> None:
    heading = doc_text.splitlines()[0]
    date = heading.removeprefix("# Spec library results (").removesuffix(")")
    demo = lr.section_rows(doc_text, lr.DEMO_HEADING)
    real = lr.section_rows(doc_text, lr.REAL_HEADING) or None
    assert lr.render(date, demo, real) == doc_text


def test_resample_is_causal_and_keeps_gaps() -> None:
    import pandas as pd

    times = pd.to_datetime(["2024-01-01T00:00Z", "2024-01-01T00:01Z", "2024-01-01T00:14Z",
                            "2024-01-01T00:15Z", "2024-01-01T00:47Z"])
    frame = pd.DataFrame({"open": [1.0, 2, 3, 4, 5], "high": [1.5, 2.5, 3.5, 4.5, 5.5],
                          "low": [0.5, 1.5, 2.5, 3.5, 4.5], "close": [1.2, 2.2, 3.2, 4.2, 5.2],
                          "volume": [1.0, 1, 1, 1, 1]}, index=times)
    out = lr.resample(frame, 900)
    assert [t.strftime("%H:%M") for t in out.index] == ["00:00", "00:15", "00:45"]  # no 00:30
    assert out.iloc[0].tolist() == [1.0, 3.5, 0.5, 3.2, 3.0]
    assert out.iloc[1].tolist() == [4.0, 4.5, 3.5, 4.2, 1.0]


# ------------------------------------------------------------------------------ real data

real = pytest.mark.skipif(not SHARED.is_dir(),
                          reason=f"real candles not present ({SHARED}); real-data runs skipped")


@pytest.fixture(scope="module")
def real_results(specs_root: Path) -> dict[str, BacktestResult]:
    return {name: lr.real_result(name, specs_root, SHARED) for name in NAMES}


@pytest.mark.realdata
@real
@pytest.mark.parametrize("name", NAMES)
def test_real_run_is_sane(name: str, real_results: dict[str, BacktestResult]) -> None:
    result = real_results[name]
    assert not result.candles.synthetic and result.candles.bars > 100
    assert lr.real_file_for(result.market, result.timeframe).name in result.candles.source
    sim = result.sim
    assert np.isfinite(sim.equity).all() and (sim.equity > 0).all()
    warmup = result.settings.warmup
    assert warmup > 0 and (sim.position[:warmup] == 0).all()
    assert (sim.trades["entry_bar"] >= warmup).all()
    json.dumps(result.metrics, allow_nan=False)  # JSON-safe: no NaN or inf
    json.loads(backtest_doc(result, None).model_dump_json())


@pytest.mark.realdata
@real
def test_real_rows_match_fresh_runs(specs_root: Path, doc_text: str) -> None:
    rows = _rows_by_spec(doc_text, lr.REAL_HEADING)
    assert list(rows) == NAMES
    for name in NAMES:
        assert rows[name] == lr.real_row(name, specs_root, SHARED), name
