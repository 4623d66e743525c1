"""A side checked and compiled: rule texts for people, fingerprints that ignore form."""

from __future__ import annotations

from pathlib import Path

from peakdsl.compile import models as m
from peakdsl.review.snapshot import load_snapshot, shown_path, warmup_key
from peakdsl.review.sources import Source

SPEC = """\
strategy s {{
    market BTC/EUR
    timeframe 1h
    param n: int = 10 in 2..50
    entry long when close > sma(close, n)   # above the mean
        and volume > 0{tail}
    size 10% of equity
}}
"""


def snapshot(folder: Path, tail: str = "") -> Source:
    folder.mkdir(parents=True)
    (folder / "s.peak").write_text(SPEC.format(tail=tail))
    return Source("x", "folder", folder, (folder,))


def test_rule_text_as_written_without_comments(tmp_path: Path) -> None:
    snap = load_snapshot(snapshot(tmp_path / "a"))
    assert snap.names == ["s"]
    assert snap.entries["s"].rule_text == {"entry_long": "close > sma(close, n) and volume > 0"}


def test_fingerprint_ignores_comments_but_not_meaning(tmp_path: Path) -> None:
    a = load_snapshot(snapshot(tmp_path / "a"))
    b = load_snapshot(snapshot(tmp_path / "b", tail="  # note"))
    c = load_snapshot(snapshot(tmp_path / "c", tail=" and close > open"))
    assert a.entries["s"].sha256 != b.entries["s"].sha256
    assert a.fingerprint("s") == b.fingerprint("s") != c.fingerprint("s")


def test_warmup_key_drops_the_zero_form() -> None:
    zero = m.LinearForm(const=0)
    fast = m.LinearForm(const=0, terms={"fast": 1})
    one = m.Lookback(forms=[zero, fast], text="max(0, fast)")
    other = m.Lookback(forms=[fast], text="fast")
    assert warmup_key(one) == warmup_key(other)
    assert warmup_key(other) != warmup_key(m.Lookback(forms=[fast], text="fast", exact=False))


def test_revision_paths_are_shown_with_the_revision(tmp_path: Path) -> None:
    source = Source("v1", "revision", tmp_path, (), "0" * 40, (tmp_path.resolve(), "v1:"))
    assert shown_path(str(tmp_path / "specs" / "a.peak"), source) == "v1:specs/a.peak"
    assert shown_path("/elsewhere/a.peak", source) == "/elsewhere/a.peak"
