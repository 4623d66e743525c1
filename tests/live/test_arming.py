"""Arming tokens: short, bound to artifact, account and mode, expiring, single use by digest,
signed with a private per-project key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from peakdsl.live import arming
from peakdsl.live.arming import (
    DEFAULT_TTL,
    already_used,
    arm,
    expires_at,
    key_path,
    load_key,
    parse,
    precheck,
    verify,
)
from peakdsl.live.gate import Refused

SHA = hashlib.sha256(b"artifact").hexdigest()
OTHER_SHA = hashlib.sha256(b"another artifact").hexdigest()
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def codes(exc: pytest.ExceptionInfo[Refused]) -> list[str]:
    return exc.value.codes


def refused(root: Path, token: str, *, sha: str = SHA, account: str = "default",
            mode: str = "live", now: datetime = NOW) -> list[str]:
    with pytest.raises(Refused) as exc:
        verify(root, token, sha, account, mode, now)
    return codes(exc)


def test_a_token_is_short_and_verifies_once_armed(tmp_path: Path) -> None:
    token = arm(tmp_path, SHA, "default", "live", now=NOW)
    assert len(token) == 40 and token.isalnum() and token.isupper()
    digest = verify(tmp_path, token, SHA, "default", "live", NOW + timedelta(minutes=9))
    assert len(digest) == 64 and int(digest, 16) >= 0
    # the same token typed in lower case or with blanks has the same digest (single use)
    assert verify(tmp_path, f"  {token.lower()}\n", SHA, "default", "live", NOW) == digest
    assert arm(tmp_path, SHA, "default", "live", now=NOW) != token  # a nonce: never twice
    assert expires_at(token) == NOW + timedelta(minutes=10)


def test_the_layout_and_the_mac(tmp_path: Path) -> None:
    """Every field at its place; the MAC covers the full artifact hash and account name."""
    token = arm(tmp_path, SHA, "desk", "testnet", timedelta(minutes=30), now=NOW)
    raw = base64.b32decode(token)
    assert len(raw) == 25 and raw[0] == 1 and raw[1] == 1  # version 1, testnet
    assert int.from_bytes(raw[2:6], "big") == int(NOW.timestamp()) + 1800
    assert raw[6:9] == bytes.fromhex(SHA)[:3]
    assert raw[9:11] == hashlib.sha256(b"desk").digest()[:2]
    key = key_path(tmp_path).read_bytes()
    message = b"peak-live-arm\x00" + raw[:15] + bytes.fromhex(SHA) + b"desk"
    assert raw[15:] == hmac.new(key, message, hashlib.sha256).digest()[:10]
    parsed = parse(token)
    assert (parsed.mode, parsed.expires, parsed.nonce) == (
        "testnet", int(NOW.timestamp()) + 1800, raw[11:15])
    assert parsed.digest == hashlib.sha256(raw).hexdigest()


def test_validity_ends_at_the_ttl(tmp_path: Path) -> None:
    token = arm(tmp_path, SHA, "default", "live", timedelta(minutes=5), now=NOW)
    assert verify(tmp_path, token, SHA, "default", "live", NOW + timedelta(seconds=299))
    assert refused(tmp_path, token, now=NOW + timedelta(minutes=5)) == ["E013"]
    assert refused(tmp_path, token, now=NOW + timedelta(days=3)) == ["E013"]


def test_a_clock_that_went_back_is_refused(tmp_path: Path) -> None:
    token = arm(tmp_path, SHA, "default", "live", timedelta(minutes=10), now=NOW)
    assert verify(tmp_path, token, SHA, "default", "live", NOW - timedelta(minutes=50))
    assert refused(tmp_path, token, now=NOW - timedelta(minutes=51)) == ["E013"]


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-5),
                                 timedelta(milliseconds=500),
                                 timedelta(hours=1, seconds=1), timedelta(days=1)])
def test_ttl_out_of_range_is_e001(tmp_path: Path, ttl: timedelta) -> None:
    with pytest.raises(Refused) as bad:
        arm(tmp_path, SHA, "default", "live", ttl, now=NOW)
    assert codes(bad) == ["E001"] and bad.value.exit_code == 2
    assert not key_path(tmp_path).exists()


def test_one_hour_is_the_longest_ttl(tmp_path: Path) -> None:
    token = arm(tmp_path, SHA, "default", "live", timedelta(hours=1), now=NOW)
    assert verify(tmp_path, token, SHA, "default", "live", NOW + timedelta(minutes=59))


@pytest.mark.parametrize(("mode", "account"), [("paper", "default"), ("prod", "default"),
                                               ("live", "Desk"), ("live", "live")])
def test_bad_arming_options_are_e001(tmp_path: Path, mode: str, account: str) -> None:
    with pytest.raises(Refused) as bad:
        arm(tmp_path, SHA, account, mode, now=NOW)
    assert codes(bad) == ["E001"]


def test_each_binding_says_which_failed(tmp_path: Path) -> None:
    token = arm(tmp_path, SHA, "default", "live", now=NOW)
    assert refused(tmp_path, token, sha=OTHER_SHA) == ["E014"]
    assert refused(tmp_path, token, account="main") == ["E015"]
    assert refused(tmp_path, token, mode="testnet") == ["E016"]
    assert refused(tmp_path, token, now=NOW + timedelta(minutes=10)) == ["E013"]


def test_a_token_of_another_project_is_forged(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    arm(mine, SHA, "default", "live", now=NOW)  # this project has its own key
    foreign = arm(theirs, SHA, "default", "live", now=NOW)
    assert refused(mine, foreign) == ["E012"]


@pytest.mark.parametrize(("index", "code"), [
    (1, "E012"),  # mode 2 → 3: no such mode
    (2, "E013"),  # expiry + 2**24 s: claims a validity far beyond an hour
    (5, "E012"),  # expiry + 1 s: a plausible claim, but not what was signed
    (6, "E014"),  # the artifact hint
    (9, "E015"),  # the account hint
    (11, "E012"),  # the nonce
    (15, "E012"), (24, "E012"),  # the MAC
])
def test_an_edited_token_is_refused(tmp_path: Path, index: int, code: str) -> None:
    raw = bytearray(base64.b32decode(arm(tmp_path, SHA, "default", "live", now=NOW)))
    raw[index] ^= 0x01
    assert refused(tmp_path, base64.b32encode(bytes(raw)).decode()) == [code]


@pytest.mark.parametrize("token", ["", "x", "A" * 39, "A" * 41, "0" * 40, "I18O" * 10,
                                   base64.b32encode(b"\x02\x02" + b"\x00" * 23).decode(),
                                   base64.b32encode(b"\x01\x03" + b"\x00" * 23).decode()])
def test_malformed_tokens_are_e012(tmp_path: Path, token: str) -> None:
    arm(tmp_path, SHA, "default", "live", now=NOW)
    assert refused(tmp_path, token) == ["E012"]


def test_the_key_is_private_and_made_once(tmp_path: Path) -> None:
    arm(tmp_path, SHA, "default", "live", now=NOW)
    path = key_path(tmp_path)
    assert path == tmp_path / ".peak" / "live" / "arming.key"
    key = path.read_bytes()
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    arm(tmp_path, SHA, "default", "live", now=NOW)
    assert path.read_bytes() == key == load_key(tmp_path, create=True)
    assert sorted(p.name for p in path.parent.iterdir()) == ["arming.key"]  # no temp files


def test_a_second_first_use_keeps_the_first_key(tmp_path: Path) -> None:
    """Two processes making the key at once: the one that links second keeps the first's."""
    key = load_key(tmp_path, create=True)
    arming._create(key_path(tmp_path))  # the loser of the race
    assert load_key(tmp_path, create=False) == key
    assert sorted(p.name for p in key_path(tmp_path).parent.iterdir()) == ["arming.key"]


def test_verify_never_makes_a_key(tmp_path: Path) -> None:
    token = arm(tmp_path / "elsewhere", SHA, "default", "live", now=NOW)
    assert refused(tmp_path, token) == ["E017"]
    assert not key_path(tmp_path).exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_others_can_use_is_refused(tmp_path: Path, mode: int) -> None:
    token = arm(tmp_path, SHA, "default", "live", now=NOW)
    key_path(tmp_path).chmod(mode)
    assert refused(tmp_path, token) == ["E017"]
    with pytest.raises(Refused) as also:
        arm(tmp_path, SHA, "default", "live", now=NOW)
    assert codes(also) == ["E017"] and f"{mode:04o}" in str(also.value)


def test_a_damaged_or_linked_key_is_refused(tmp_path: Path) -> None:
    token = arm(tmp_path, SHA, "default", "live", now=NOW)
    path = key_path(tmp_path)
    path.write_bytes(path.read_bytes()[:31])
    assert refused(tmp_path, token) == ["E017"]
    real = tmp_path / "real.key"
    real.write_bytes(os.urandom(32))
    real.chmod(0o600)
    path.unlink()
    path.symlink_to(real)
    assert refused(tmp_path, token) == ["E017"]
    path.unlink()
    path.mkdir()
    assert refused(tmp_path, token) == ["E017"]


def test_precheck_needs_no_artifact_nor_key(tmp_path: Path) -> None:
    assert precheck(None, "paper", "default", NOW) is None
    assert precheck(None, "testnet", "default", NOW) is None
    with pytest.raises(Refused) as required:
        precheck(None, "live", "default", NOW)
    assert codes(required) == ["E011"]
    token = arm(tmp_path, SHA, "default", "live", now=NOW)
    key_path(tmp_path).unlink()  # precheck never reads the key: only verify does
    assert precheck(token, "live", "default", NOW) == parse(token)
    cases = [("paper", "default", NOW, "E016"), ("testnet", "default", NOW, "E016"),
             ("live", "desk", NOW, "E015"), ("live", "default", NOW + DEFAULT_TTL, "E013"),
             ("live", "default", NOW - timedelta(minutes=51), "E013")]
    for mode, account, now, code in cases:
        with pytest.raises(Refused) as claim:
            precheck(token, mode, account, now)  # type: ignore[arg-type]
        assert codes(claim) == [code]
    with pytest.raises(Refused) as garbage:
        precheck("not a token", "paper", "default", NOW)
    assert codes(garbage) == ["E012"]


def test_a_used_token_is_e019() -> None:
    used = already_used("ab" * 32)
    assert used.code == "E019" and "abababababab" in used.message and used.help


def test_time_must_be_aware(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        arm(tmp_path, SHA, "default", "live", now=datetime(2026, 12, 1, 9, 30))
    with pytest.raises(ValueError, match="sha256"):
        arm(tmp_path, "not-a-sha", "default", "live", now=NOW)


def test_a_key_refusal_never_shows_the_key(tmp_path: Path) -> None:
    """A diagnostic's file is rendered as a source snippet: E017 must not point at the key."""
    from peakdsl.cli.root import spec_source
    from peakdsl.lang.render import render_json, render_text

    token = arm(tmp_path, SHA, "default", "live", now=NOW)
    path = key_path(tmp_path)
    path.write_bytes(b"printable-key-material-0123456789")  # 33 bytes: damaged, and text
    path.chmod(0o644)
    with pytest.raises(Refused) as bad:
        verify(tmp_path, token, SHA, "default", "live", NOW)
    assert codes(bad) == ["E017"] and bad.value.diagnostics[0].path == "<peak>"
    shown = render_text(bad.value.diagnostics, spec_source) + render_json(bad.value.diagnostics)
    assert "printable-key-material" not in shown and "arming.key" in shown
