"""Two-step arming: a short-lived, single-use token bound to one artifact, account and mode.

``peak live arm SPEC`` prints a token; ``peak live run --mode live --arm TOKEN`` must present it
within its validity (default 10 minutes, at most one hour). The token is 40 characters of
base32 (25 bytes)::

    version (1) | mode (1) | expires, epoch seconds (4) | artifact hint (3) |
    account hint (2) | nonce (4) | HMAC-SHA256, first 10 bytes

The MAC covers the other fields and the *full* artifact sha256 and account name, under a
per-project key in ``.peak/live/arming.key`` (32 random bytes, created once with mode 0600,
never printed; a key file others can read or write is refused). The token's own claims (mode,
account and artifact hints, expiry) let a refusal say which binding failed; a claim that fails
refuses whatever the signature, and a token passes only when its MAC matches the binding asked
for. Mode, account and time need no artifact, so the gate checks them first (``precheck``),
before it compiles the spec. Tokens are single use: ``verify`` returns the token's digest (of its
decoded bytes, so a lower-case copy is the same token) and the runner marks it used in its
store; a used one is refused with ``already_used`` (E019).

Refusals: E001 (options), E011 required, E012 malformed or forged, E013 expired or not yet
valid, E014 other artifact, E015 other account, E016 other mode, E017 key unusable, E019
used.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import stat
import struct
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..atomic import remove_stale_temps
from ..lang.diagnostics import Diagnostic, diag
from .gate import KeyedMode, Mode, Refused, keyed_mode, refuse, valid_mode
from .secrets import valid_account

KEY_PATH = Path(".peak") / "live" / "arming.key"
KEY_BYTES = 32
DEFAULT_TTL = timedelta(minutes=10)
MAX_TTL = timedelta(hours=1)
VERSION = 1
MODE_BYTE: dict[KeyedMode, int] = {"testnet": 1, "live": 2}
BYTE_MODE: dict[int, KeyedMode] = {v: k for k, v in MODE_BYTE.items()}
HEADER = struct.Struct(">BBI3s2s4s")  # version, mode, expires, artifact, account, nonce
MAC_BYTES = 10
TOKEN_CHARS = (HEADER.size + MAC_BYTES) * 8 // 5  # 40
TOKEN = re.compile(f"[A-Z2-7]{{{TOKEN_CHARS}}}")
DOMAIN = b"peak-live-arm\x00"
WHERE = "--arm"
ARM = "peak live arm SPEC --mode live"  # how a refusal's help line says to get a new one


@dataclass(frozen=True)
class Token:
    """A decoded token (nothing in it is trusted before ``verify`` checks its MAC)."""

    raw: bytes
    mode: KeyedMode
    expires: int
    artifact_hint: bytes
    account_hint: bytes
    nonce: bytes
    mac: bytes

    @property
    def digest(self) -> str:
        """What the runner stores to make the token single use."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


def _seconds(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("the time given to arming must be timezone-aware")
    return int(now.timestamp())


def _artifact_hint(artifact_sha256: str) -> bytes:
    return bytes.fromhex(artifact_sha256)[:3]


def _account_hint(account: str) -> bytes:
    return hashlib.sha256(account.encode("utf-8")).digest()[:2]


def _mac(key: bytes, header: bytes, artifact_sha256: str, account: str) -> bytes:
    message = DOMAIN + header + bytes.fromhex(artifact_sha256) + account.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()[:MAC_BYTES]


def _ttl_seconds(ttl: timedelta) -> int:
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise refuse("E001", f"--ttl {ttl}: an arming token is valid for 1 second to "
                     f"{MAX_TTL}", "--ttl", help=f"the default is {DEFAULT_TTL}: arm right "
                     "before the session starts")
    return int(ttl.total_seconds())


def _sha(artifact_sha256: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", artifact_sha256):
        raise ValueError(f"not an artifact sha256: {artifact_sha256!r}")
    return artifact_sha256


def arm(root: Path, artifact_sha256: str, account: str, mode: str,
        ttl: timedelta = DEFAULT_TTL, *, now: datetime) -> str:
    """A new token for ``artifact_sha256``, ``account`` and ``mode``, valid ``ttl`` from
    ``now``; creates the project's key on first use."""
    chosen, sha = keyed_mode(mode), _sha(artifact_sha256)
    valid_account(account)
    expires = _seconds(now) + _ttl_seconds(ttl)
    header = HEADER.pack(VERSION, MODE_BYTE[chosen], expires, _artifact_hint(sha),
                         _account_hint(account), os.urandom(4))
    raw = header + _mac(load_key(root, create=True), header, sha, account)
    return base64.b32encode(raw).decode("ascii")


def parse(token: str) -> Token:
    """The token's fields, or E012 when it is not a token at all."""
    text = token.strip().upper()
    fields = None
    if TOKEN.fullmatch(text):
        raw = base64.b32decode(text)
        fields = HEADER.unpack(raw[:HEADER.size])
    if fields is None or fields[0] != VERSION or fields[1] not in BYTE_MODE:
        raise refuse("E012", f"{WHERE}: not an arming token ({TOKEN_CHARS} characters of "
                     "A–Z and 2–7, as peak live arm prints it)", WHERE,
                     help=f"copy the whole token, or arm again: {ARM}")
    _, mode, expires, artifact, account, nonce = fields
    return Token(raw, BYTE_MODE[mode], expires, artifact, account, nonce,
                 raw[HEADER.size:])


def precheck(token: str | None, mode: Mode, account: str, now: datetime) -> Token | None:
    """The gate's first step, before any artifact is known: a token where one is required
    (live), its form, and its own claims of mode, account and time. The claims are not signed
    off yet: one that fails refuses whatever the signature, one that passes is left to
    ``verify``."""
    mode = valid_mode(mode)
    if token is None:
        if mode == "live":
            raise refuse("E011", "live mode needs an arming token", WHERE,
                         help=f"arm the session first ({ARM}), then pass --arm TOKEN "
                         "within its validity")
        return None
    parsed = parse(token)
    _claims(parsed, mode, account, _seconds(now))
    return parsed


def _other_mode(armed: KeyedMode, mode: Mode) -> Refused:
    """E016; the help never suggests a mode with more at stake than the one asked for."""
    fix = {"paper": f"paper mode takes no arming token: leave out {WHERE}",
           "testnet": f"testnet mode needs no token: leave out {WHERE}, or arm for testnet: "
                      "peak live arm SPEC --mode testnet",
           "live": f"arm for live mode: {ARM}"}[mode]
    return refuse("E016", f"{WHERE}: this token arms {armed} mode, not {mode}", WHERE,
                  help=fix)


def verify(root: Path, token: str, artifact_sha256: str, account: str, mode: str,
           now: datetime) -> str:
    """The digest of ``token`` when it arms exactly this artifact, account and mode at
    ``now``; else the refusal that names the binding that failed."""
    chosen, sha = keyed_mode(mode), _sha(artifact_sha256)
    parsed = parse(token)
    _claims(parsed, chosen, account, _seconds(now))
    if not hmac.compare_digest(parsed.artifact_hint, _artifact_hint(sha)):
        raise refuse("E014", f"{WHERE}: the token arms another artifact (not "
                     f"{sha[:12]}): the spec changed since it was armed, or it arms "
                     "another spec", WHERE, help=f"arm the spec as it is now: {ARM}")
    expected = _mac(load_key(root, create=False), parsed.raw[:HEADER.size], sha, account)
    if not hmac.compare_digest(expected, parsed.mac):
        raise refuse("E012", f"{WHERE}: the token was not issued by this project for this "
                     "artifact, account and mode (its signature does not match)", WHERE,
                     help=f"arm again in this project: {ARM}")
    return parsed.digest


def _claims(parsed: Token, mode: Mode, account: str, now: int) -> None:
    """E016 / E015 / E013 from what the token says of itself (the MAC is checked after)."""
    if parsed.mode != mode:
        raise _other_mode(parsed.mode, mode)
    if not hmac.compare_digest(parsed.account_hint, _account_hint(account)):
        raise refuse("E015", f"{WHERE}: the token arms another account, not {account}",
                     WHERE, help=f"run with the --account it was armed for, or arm for "
                     f"{account}: {ARM} --account {account}")
    _validity(parsed, now)


def _validity(parsed: Token, now: int) -> None:
    """E013 once expired, and for a validity longer than ``MAX_TTL`` from now (the clock
    went back since it was armed)."""
    if now >= parsed.expires:
        ago = timedelta(seconds=now - parsed.expires)
        raise refuse("E013", f"{WHERE}: the token expired {ago} ago "
                     f"({parsed.expires_at.isoformat()})", WHERE,
                     help=f"arm again right before the run: {ARM}")
    if parsed.expires - now > MAX_TTL.total_seconds():
        raise refuse("E013", f"{WHERE}: the token is valid until "
                     f"{parsed.expires_at.isoformat()}, more than {MAX_TTL} from now: the "
                     "clock went back since it was armed", WHERE,
                     help=f"check the system clock, then arm again: {ARM}")


def already_used(digest: str) -> Diagnostic:
    """The refusal for a token the store has already consumed (E019)."""
    return diag("E019", f"{WHERE}: this arming token was already used (digest "
                f"{digest[:12]})", WHERE,
                help=f"a token arms one session; arm again: {ARM}")


def key_path(root: Path) -> Path:
    return root / KEY_PATH


def load_key(root: Path, *, create: bool) -> bytes:
    """The project's arming key; made on first use when ``create``. E017 when it is missing
    (``verify`` never makes one), not a regular file of ours, open to others or damaged."""
    path = key_path(root)
    if create and not os.path.lexists(path):
        _create(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise _bad_key(path, "this project has no arming key, so it issued no token",
                       f"arm in this project: {ARM}") from None
    except OSError as exc:
        raise _bad_key(path, f"cannot be read ({exc.strerror})", _REMOVE) from None
    try:
        info = os.fstat(fd)
        key = os.read(fd, KEY_BYTES + 1) if stat.S_ISREG(info.st_mode) else b""
    finally:
        os.close(fd)
    return _checked(path, info, key)


_REMOVE = ("remove it: peak makes a new key at the next peak live arm (tokens armed with the "
           "old key stop working)")


def _checked(path: Path, info: os.stat_result, key: bytes) -> bytes:
    problems = (
        (not stat.S_ISREG(info.st_mode), "is not a regular file"),
        (info.st_uid != os.geteuid(), "belongs to another user"),
        (bool(info.st_mode & 0o077), f"can be read or written by others (mode "
         f"{stat.S_IMODE(info.st_mode):04o}): consider the key exposed"),
        (len(key) != KEY_BYTES, f"is damaged (not {KEY_BYTES} bytes)"),
    )
    for bad, why in problems:
        if bad:
            raise _bad_key(path, why, _REMOVE)
    return key


def _bad_key(path: Path, why: str, fix: str) -> Refused:
    """E017 located at ``<peak>``, never at the key file: a diagnostic's file is shown as a
    source snippet, and this one must never be printed."""
    from ..lang.project import display_path

    return refuse("E017", f"arming key {display_path(path)}: {why}", "<peak>", help=fix)


def _create(path: Path) -> None:
    """32 random bytes, mode 0600, in a locked temp file hard-linked into place: a crash
    leaves no half key, and of two first uses at once the second keeps the first's key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # cleaners leave a locked temp alone
        os.fchmod(fd, 0o600)
        with os.fdopen(os.dup(fd), "wb") as handle:
            handle.write(os.urandom(KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def expires_at(token: str) -> datetime:
    """When ``token`` expires, for display (``peak live arm`` prints it; not verified)."""
    return parse(token).expires_at


__all__ = ["DEFAULT_TTL", "KEY_PATH", "MAX_TTL", "Token", "already_used", "arm",
           "expires_at", "key_path", "load_key", "parse", "precheck", "verify"]
