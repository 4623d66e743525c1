"""The verified cache: seals, damage detection, quarantine, tombstones, legacy caches, locking.

Regression tests for issue 7: a cache file with one flipped bit used to load in most positions
and `peak backtest` exited 0 with a Sortino of 8.77e+170; a truncated one ended in I001.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peakdsl.cli import app
from peakdsl.data import DataError
from peakdsl.data import cache as cache_module
from peakdsl.data.cache import (
    Meta,
    adopt,
    cache_path,
    list_cached,
    load_cached,
    parse_parquet,
    read_manifest,
    sidecar_path,
    store,
)
from peakdsl.data.candles import CandleSet
from peakdsl.data.integrity import (
    QUARANTINE_DIR,
    Seal,
    dataset_lock,
    fix_command,
    move_aside,
    tombstone_path,
)
from peakdsl.data.select import load_for
from peakdsl.data.synth import synth_market

MA = "specs/strategies/ma_crossover.peak"  # BTC/USDT 1h


def small(n: int = 48, market: str = "BTC/EUR", seed: int = 1) -> CandleSet:
    return synth_market(market, "1h", n, seed)


def flip(data: bytes, position: int) -> bytes:
    """``data`` with one bit flipped: bit ``position % 8`` of byte ``position``."""
    out = bytearray(data)
    out[position] ^= 1 << (position % 8)
    return bytes(out)


def codes(err: pytest.ExceptionInfo[DataError]) -> list[str]:
    return [d.code for d in err.value.diagnostics]


def parses(data: bytes) -> bool:
    try:
        parse_parquet(data, "BTC/EUR", "1h", "", False)
    except Exception:
        return False
    return True


def quarantined(root: Path) -> list[str]:
    folder = root / QUARANTINE_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def legacy(path: Path) -> None:
    """Turn a manifest into one written before seals existed (format 1, no content)."""
    doc = json.loads(sidecar_path(path).read_text())
    del doc["content"]
    doc["format"] = 1
    sidecar_path(path).write_text(json.dumps(doc))


# ------------------------------------------------------------------------------ seal

def test_store_seals_the_exact_bytes(tmp_path: Path) -> None:
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "synth", True, "seed 1", None, 1))
    manifest = read_manifest(path)
    data = path.read_bytes()
    assert manifest.state == "sealed" and manifest.meta is not None
    assert manifest.seal == Seal(hashlib.sha256(data).hexdigest(), len(data), 48,
                                 "2025-12-30T00:00Z", "2025-12-31T23:00Z")
    doc = json.loads(sidecar_path(path).read_text())
    assert doc["format"] == 2 and doc["content"]["bars"] == 48
    assert sorted(p.name for p in path.parent.iterdir()) == ["1h.json", "1h.parquet"]


def test_seal_problems_name_size_then_checksum() -> None:
    seal = Seal("ab" * 32, 5, 1)
    assert "is 4 bytes long, but its manifest says 5" in (seal.problem(b"abcd") or "")
    assert "does not match its checksum" in (seal.problem(b"abcde") or "")
    good = b"hello"
    assert Seal(hashlib.sha256(good).hexdigest(), 5, 1).problem(good) is None


def test_a_malformed_seal_is_rejected() -> None:
    with pytest.raises(ValueError):
        Seal.from_dict({"sha256": "not hex", "bytes": 1, "bars": 1})
    with pytest.raises(KeyError):
        Seal.from_dict({"bytes": 1, "bars": 1})


# ------------------------------------------------------------------------------ damage

def test_every_flipped_bit_is_detected_and_quarantined(tmp_path: Path) -> None:
    """Bit flips across the whole file (deterministic positions): every one is D013, the
    file goes to quarantine and never replaces an earlier one there. Many of them would
    still parse — which is why the checksum, not the Parquet reader, must decide."""
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    good, manifest = path.read_bytes(), sidecar_path(path).read_text()
    positions = range(0, len(good), 29)
    still_parse = 0
    for position in positions:
        damaged = flip(good, position)
        still_parse += parses(damaged)
        path.write_bytes(damaged)
        sidecar_path(path).write_text(manifest)
        tombstone_path(path).unlink(missing_ok=True)
        with pytest.raises(DataError) as err:
            load_cached(tmp_path, "BTC/EUR", "1h")
        assert codes(err) == ["D013"], position
        assert "does not match its checksum" in err.value.diagnostics[0].message
        assert not path.exists() and not sidecar_path(path).exists()
    assert len(positions) == -(-len(good) // 29) > 100
    assert len(quarantined(tmp_path)) == 2 * len(positions)  # data + manifest, each kept
    assert still_parse > len(positions) // 4


def test_a_truncated_file_is_d013(tmp_path: Path) -> None:
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    good, manifest = path.read_bytes(), sidecar_path(path).read_text()
    lengths = (0, 1, 4, len(good) // 2, len(good) - 8, len(good) - 1)
    for keep in lengths:
        path.write_bytes(good[:keep])
        sidecar_path(path).write_text(manifest)
        tombstone_path(path).unlink(missing_ok=True)
        with pytest.raises(DataError) as err:
            load_cached(tmp_path, "BTC/EUR", "1h")
        assert codes(err) == ["D013"]
        assert f"is {keep:,} bytes long, but its manifest says {len(good):,}" in \
            err.value.diagnostics[0].message
    assert len(quarantined(tmp_path)) == 2 * len(lengths)


def test_the_diagnostic_names_the_file_the_quarantine_and_the_fix(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    monkeypatch.chdir(tmp_path)
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "synth", True, "seed 1", None, 1))
    path.write_bytes(flip(path.read_bytes(), 1000))
    with pytest.raises(DataError) as err:
        load_cached(tmp_path, "BTC/EUR", "1h")
    d = err.value.diagnostics[0]
    assert d.path == ".peak/data/BTC-EUR/1h.parquet" and d.is_error
    moved = quarantined(tmp_path)[1]
    assert moved.startswith("BTC-EUR-1h.") and moved.endswith("Z.parquet")
    assert d.message.endswith(f"; moved to .peak/quarantine/{moved}")
    assert d.help == ("nothing ran on it; re-create it: `peak data synth BTC/EUR 1h --seed 1 "
                      "--bars 48 --end 2026-01-01T00:00Z`")


def test_a_quarantined_dataset_stays_an_error_until_it_is_written_again(tmp_path: Path) -> None:
    """No silent fallback to the synthetic demo after a quarantine: the tombstone keeps
    reporting D013 to runs; writers start afresh and clear it."""
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    path.write_bytes(b"")
    with pytest.raises(DataError):
        load_cached(tmp_path, "BTC/EUR", "1h")
    with pytest.raises(DataError) as err:
        load_for("BTC/EUR", "1h", root=tmp_path)
    assert codes(err) == ["D013"]
    message = err.value.diagnostics[0].message
    assert "was quarantined at" in message and "is 0 bytes long" in message
    assert "`peak data import x.csv --market BTC/EUR --timeframe 1h --replace`" in \
        err.value.diagnostics[0].help
    assert load_cached(tmp_path, "BTC/EUR", "1h", quarantined_ok=True) is None
    assert [(e.market, e.status) for e in list_cached(tmp_path)] == [("BTC/EUR", "quarantined")]
    store(tmp_path, small(24), Meta("BTC/EUR", "1h", "import", False, "y.csv"))
    assert not tombstone_path(path).exists()
    again = load_for("BTC/EUR", "1h", root=tmp_path)
    assert again.bars == 24 and not again.synthetic


@pytest.mark.parametrize(("manifest", "reason"), [
    (None, "has no manifest (1h.json is missing)"),
    ("{not json", "has a damaged manifest 1h.json (JSONDecodeError"),
    ('{"market": "BTC/EUR", "timeframe": "1h", "content": {"sha256": "x"}}',
     "has a damaged manifest 1h.json (its seal: ValueError"),
])
def test_a_missing_or_damaged_manifest_is_d013(tmp_path: Path, manifest: str | None,
                                               reason: str) -> None:
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    if manifest is None:
        sidecar_path(path).unlink()
    else:
        sidecar_path(path).write_text(manifest)
    with pytest.raises(DataError) as err:
        load_cached(tmp_path, "BTC/EUR", "1h")
    assert codes(err) == ["D013"] and reason in err.value.diagnostics[0].message
    assert not path.exists()


def test_a_manifest_without_its_file_is_d013(tmp_path: Path) -> None:
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    path.unlink()
    with pytest.raises(DataError) as err:
        load_cached(tmp_path, "BTC/EUR", "1h")
    assert "is missing, but its manifest 1h.json is there" in err.value.diagnostics[0].message
    assert [p.endswith(".json") for p in quarantined(tmp_path)] == [True]


def test_a_dot_peak_file_means_nothing_cached(tmp_path: Path) -> None:
    (tmp_path / ".peak").write_text("not a folder")
    assert load_cached(tmp_path, "BTC/EUR", "1h") is None
    assert load_for("BTC/EUR", "1h", root=tmp_path).synthetic
    assert list_cached(tmp_path) == []


def test_a_sealed_file_of_another_market_is_d013(tmp_path: Path) -> None:
    """Copying a dataset (with its manifest) into another market's folder is caught."""
    eth = store(tmp_path, small(market="ETH/EUR"), Meta("ETH/EUR", "1h", "import"))
    btc = cache_path(tmp_path, "BTC/EUR", "1h")
    btc.parent.mkdir(parents=True)
    btc.write_bytes(eth.read_bytes())
    sidecar_path(btc).write_bytes(sidecar_path(eth).read_bytes())
    with pytest.raises(DataError) as err:
        load_cached(tmp_path, "BTC/EUR", "1h")
    assert "it holds ETH/EUR 1h data, not BTC/EUR 1h" in err.value.diagnostics[0].message


# ------------------------------------------------------------------------------ crashes

def test_a_crash_between_data_and_manifest_is_detected(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Parquet written, manifest not: the old seal does not match the new file (D013); for
    a new dataset there is no manifest at all (D013). Never trusted."""
    store(tmp_path, small(24), Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    real = cache_module.write_atomic

    def crash_on_manifest(path: Path, data: bytes) -> None:
        if path.suffix == ".json":
            raise KeyboardInterrupt  # the process dies here
        real(path, data)

    monkeypatch.setattr(cache_module, "write_atomic", crash_on_manifest)
    for market in ("BTC/EUR", "ETH/EUR"):
        with pytest.raises(KeyboardInterrupt):
            store(tmp_path, small(48, market), Meta(market, "1h", "import", False, "y.csv"))
    monkeypatch.undo()
    new_size = cache_path(tmp_path, "BTC/EUR", "1h").stat().st_size
    with pytest.raises(DataError) as err:
        load_cached(tmp_path, "BTC/EUR", "1h")
    assert f"is {new_size:,} bytes long, but its manifest says" in \
        err.value.diagnostics[0].message
    with pytest.raises(DataError) as err:
        load_cached(tmp_path, "ETH/EUR", "1h")
    assert "has no manifest" in err.value.diagnostics[0].message


def test_a_reader_waits_for_a_writer_between_its_two_writes(tmp_path: Path) -> None:
    """While a writer holds the dataset lock with new data and the old manifest on disk, a
    reader blocks; once the manifest is written it reads the new data, not a false D013."""
    old, new = small(24), small(48, seed=2)
    path = store(tmp_path, old, Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    result: list[object] = []

    def read() -> None:
        try:
            result.append(load_cached(tmp_path, "BTC/EUR", "1h"))
        except DataError as exc:
            result.append(exc)

    reader = threading.Thread(target=read)
    with dataset_lock(path.parent, exclusive=True):
        data = cache_module.parquet_bytes(new)
        path.write_bytes(data)
        reader.start()
        reader.join(0.3)
        assert reader.is_alive()  # blocked on the lock, not reading a half-written pair
        sidecar_path(path).write_text(Meta("BTC/EUR", "1h", "import").to_json(
            Seal.of(data, new)))
    reader.join(10)
    assert isinstance(result[0], CandleSet) and result[0].fingerprint == new.fingerprint


# ------------------------------------------------------------------------------ legacy

def test_a_cache_from_before_checksums_is_d014_and_left_in_place(tmp_path: Path) -> None:
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "fetch", False, "binance",
                                         "binance", None, ((1_767_052_800_000,
                                                            1_767_225_600_000),)))
    legacy(path)
    with pytest.raises(DataError) as err:
        load_for("BTC/EUR", "1h", root=tmp_path)
    d = err.value.diagnostics[0]
    assert d.code == "D014" and "has no checksum" in d.message
    assert d.help == ("re-create it: `peak data fetch binance BTC/EUR 1h --since "
                      "2025-12-30T00:00Z --replace`; or, if you trust its contents, record "
                      "their checksum: `peak data check BTC/EUR 1h --adopt`")
    assert path.exists() and quarantined(tmp_path) == []
    assert [e.status for e in list_cached(tmp_path)] == ["unverified"]


def test_adopt_seals_a_legacy_file_only_if_accepted(tmp_path: Path) -> None:
    candles = small()
    path = store(tmp_path, candles, Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    legacy(path)
    assert adopt(tmp_path, "BTC/EUR", "1h", lambda c: False) is False
    assert read_manifest(path).state == "unsealed"
    seen: list[int] = []
    assert adopt(tmp_path, "BTC/EUR", "1h", lambda c: seen.append(c.bars) is None) is True
    assert seen == [48] and read_manifest(path).state == "sealed"
    back = load_cached(tmp_path, "BTC/EUR", "1h")
    assert back is not None and back.fingerprint == candles.fingerprint
    assert adopt(tmp_path, "BTC/EUR", "1h", lambda c: True) is False  # sealed already


def test_adopt_quarantines_a_legacy_file_that_is_not_candles(tmp_path: Path) -> None:
    path = store(tmp_path, small(), Meta("BTC/EUR", "1h", "import", False, "x.csv"))
    legacy(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError) as err:
        adopt(tmp_path, "BTC/EUR", "1h", lambda c: True)
    assert codes(err) == ["D013"] and "is not valid candles" in err.value.diagnostics[0].message
    assert not path.exists()


# ------------------------------------------------------------------------------ helpers

def test_move_aside_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "a.parquet").write_text("first")
    (folder / "a-1.parquet").write_text("second")
    src = tmp_path / "x"
    src.write_text("third")
    dest = move_aside(src, folder, "a", ".parquet")
    assert dest.name == "a-2.parquet" and dest.read_text() == "third" and not src.exists()
    assert (folder / "a.parquet").read_text() == "first"


@pytest.mark.parametrize(("meta", "command"), [
    (Meta("BTC/EUR", "1h", "import", False, "data/my file.csv"),
     "`peak data import 'data/my file.csv' --market BTC/EUR --timeframe 1h --replace`"),
    (Meta("BTC/EUR", "1h", "fetch", False, "kraken", "kraken", None,
          ((1_704_067_200_000, 1_706_745_600_000),)),
     "`peak data fetch kraken BTC/EUR 1h --since 2024-01-01T00:00Z --replace`"),
    (Meta("BTC/EUR", "1h", "synth", True, "seed 7", None, 7),
     "`peak data synth BTC/EUR 1h --seed 7`"),
    (Meta("BTC/EUR", "1h", "mixed", False, "synthetic + imported"),
     "`peak data import FILE --market BTC/EUR --timeframe 1h --replace` or "
     "`peak data fetch EXCHANGE BTC/EUR 1h --since DATE --replace`"),
    (None, "`peak data import FILE --market BTC/EUR --timeframe 1h --replace` or "
           "`peak data fetch EXCHANGE BTC/EUR 1h --since DATE --replace`"),
])
def test_fix_commands(meta: Meta | None, command: str) -> None:
    assert fix_command("BTC/EUR", "1h", meta, None) == command


# ------------------------------------------------------------------------------ commands

@pytest.fixture
def damaged(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The spec library with a BTC/USDT 1h cache whose byte 3,000 has a flipped bit."""
    monkeypatch.chdir(project)
    path = store(project, synth_market("BTC/USDT", "1h", 3000, 5),
                 Meta("BTC/USDT", "1h", "synth", True, "seed 5", None, 5))
    path.write_bytes(flip(path.read_bytes(), 3000))
    return project


@pytest.mark.parametrize("argv", [
    ["backtest", MA, "--json"],
    ["sweep", MA, "--set", "fast=10", "--set", "slow=50"],
    ["walkforward", MA, "--train", "1000", "--test", "500"],
], ids=["backtest", "sweep", "walkforward"])
def test_runs_on_a_damaged_cache_exit_1_with_d013(damaged: Path, argv: list[str]) -> None:
    first = CliRunner().invoke(app, argv)
    assert first.exit_code == 1, first.output
    assert "[D013]" in first.output or '"D013"' in first.output, first.output
    assert "Traceback" not in first.output and "I001" not in first.output
    again = CliRunner().invoke(app, argv)  # quarantined now: still D013, not the demo market
    assert again.exit_code == 1 and "was quarantined at" in again.output, again.output


def test_data_check_reports_instead_of_crashing(damaged: Path) -> None:
    result = CliRunner().invoke(app, ["data", "check", "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert [d["code"] for d in doc["diagnostics"]] == ["D013"]
    assert doc["datasets"][0]["status"] == "damaged"
    listed = CliRunner().invoke(app, ["data", "list"])
    assert listed.exit_code == 0 and listed.stdout.splitlines()[1].endswith("quarantined")


def test_import_over_a_damaged_cache_writes_nothing_then_works(damaged: Path) -> None:
    csv = damaged / "c.csv"
    csv.write_text("time,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n"
                   "2024-01-01T01:00:00Z,1.5,2,1,1.2,3\n")
    argv = ["data", "import", "c.csv", "--market", "BTC/USDT"]
    first = CliRunner().invoke(app, argv)
    assert first.exit_code == 1 and "[D013]" in first.output, first.output
    assert "nothing was imported" in first.output
    assert not cache_path(damaged, "BTC/USDT", "1h").exists()
    second = CliRunner().invoke(app, argv)
    assert second.exit_code == 0, second.output
    assert [(e.bars, e.status) for e in list_cached(damaged)] == [(2, "ok")]


def test_check_adopt_seals_legacy_datasets(project: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.chdir(project)
    legacy(store(project, small(), Meta("BTC/EUR", "1h", "import", False, "x.csv")))
    plain = CliRunner().invoke(app, ["data", "check"])
    assert plain.exit_code == 1 and "[D014]" in plain.output, plain.output
    adopted = CliRunner().invoke(app, ["data", "check", "--adopt"])
    assert adopted.exit_code == 0, adopted.output
    assert "checksum   adopted" in adopted.stdout
    assert CliRunner().invoke(app, ["data", "check"]).exit_code == 0
