"""The mode gate, failing closed: the matrix mode × promotion record × arming × credentials ×
endpoint, each cell's outcome from an independent rule, every refusal coded."""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path

import pytest

from peakdsl.live.arming import arm
from peakdsl.live.gate import (
    Authorization,
    GateRequest,
    Refused,
    arm_spec,
    artifact_of,
    authorize,
)
from peakdsl.promote.evidence import Subject
from peakdsl.promote.flow import approve, promote
from peakdsl.robustness.subject import subject_plan

REPO = Path(__file__).resolve().parents[2]
MA = "specs/strategies/ma_crossover.peak"
EASY = "promotion easy_gate {\n    require sharpe >= -10\n    require trades >= 10\n}\n"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
ACCOUNT = "default"
CANARY = {"PEAK_TESTNET_API_KEY": "canaryTESTNETkey-0b1c8e2f",
          "PEAK_TESTNET_API_SECRET": "canaryTESTNETsecret-93d7a4c1",
          "PEAK_LIVE_API_KEY": "canaryLIVEkey-6e5f0a3b",
          "PEAK_LIVE_API_SECRET": "canaryLIVEsecret-c2a91d7e"}

MODES = ("paper", "testnet", "live")
RECORDS = ("none", "testnet", "live_unapproved", "live_approved", "stale")
ARMINGS = ("none", "valid", "expired", "other_artifact", "other_account", "other_mode",
           "forged")
CREDENTIALS = ("none", "testnet", "live", "both")
ENDPOINTS = {"default": None, "testnet": "https://testnet.binance.vision",
             "live": "https://api.binance.com", "loopback": "http://127.0.0.1:8765",
             "unknown": "https://api.example.com"}


def expected(mode: str, record: str, arming: str, credentials: str, endpoint: str) -> set[str]:
    """The refusal codes of a cell (empty: authorized).

    Each failing requirement has its code; the gate checks in three steps and stops after the
    first that fails: (1) endpoint, credentials, the token's presence, mode, account and
    time, all reported; (2) the promotion record; (3) the token's artifact and signature."""
    wanted = {"paper": set(), "testnet": {"testnet", "both"}, "live": {"live", "both"}}
    endpoint_ok = {"paper": {"default", "testnet", "live", "loopback"},
                   "testnet": {"default", "testnet", "loopback"},
                   "live": {"default", "live", "loopback"}}
    record_ok = {"paper": set(RECORDS), "testnet": {"testnet", "live_unapproved",
                                                    "live_approved"},
                 "live": {"live_approved"}}
    token_code = {"none": "E011" if mode == "live" else None, "valid": None,
                  "expired": "E013", "other_artifact": "E014", "other_account": "E015",
                  "other_mode": "E016", "forged": "E012"}[arming]
    if mode == "paper" and arming != "none":
        token_code = "E016"  # every token arms testnet or live, never paper
    first = set()
    if endpoint not in endpoint_ok[mode]:
        first.add("E004" if endpoint == "unknown" else "E005")
    if mode != "paper" and credentials not in wanted[mode]:
        first.add("E008")
    if token_code in ("E011", "E013", "E015", "E016"):
        first.add(token_code)
    if first:
        return first
    if record not in record_ok[mode]:
        return {"E007"}
    return {token_code} if token_code else set()


class Tripwire(Mapping[str, str]):
    """An environment no paper session may read."""

    def __getitem__(self, name: str) -> str:
        raise AssertionError(f"paper mode read {name}")

    def get(self, name: str, default: object = None) -> str:
        raise AssertionError(f"paper mode read {name}")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("paper mode listed the environment")

    def __len__(self) -> int:
        raise AssertionError("paper mode looked at the environment")


@dataclass
class States:
    roots: dict[str, Path]
    shas: dict[str, str]  # the artifact of each state's spec as it is now
    forger: Path
    tokens: dict[tuple[str, str, str], str | None]

    def token(self, record: str, mode: str, arming: str) -> str | None:
        key = (record, mode, arming)
        if key not in self.tokens:
            self.tokens[key] = self._make(self.roots[record], mode, arming)
        return self.tokens[key]

    def _make(self, root: Path, mode: str, arming: str) -> str | None:
        if arming == "none":
            return None
        armed = mode if mode != "paper" else "live"
        sha = self.shas[root.name]
        other_mode = {"live": "testnet", "testnet": "live", "paper": "testnet"}[mode]
        other_sha = hashlib.sha256(b"another spec").hexdigest()
        assert other_sha[:6] != sha[:6]
        made = {"valid": (root, sha, ACCOUNT, armed, NOW - timedelta(minutes=1)),
                "expired": (root, sha, ACCOUNT, armed, NOW - timedelta(minutes=11)),
                "other_artifact": (root, other_sha, ACCOUNT, armed, NOW),
                "other_account": (root, sha, "desk", armed, NOW),
                "other_mode": (root, sha, ACCOUNT, other_mode, NOW),
                "forged": (self.forger, sha, ACCOUNT, armed, NOW)}[arming]
        return arm(*made[:4], now=made[4])


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> States:
    """One project per record state, each made once by the real `peak promote` flow."""
    base = tmp_path_factory.mktemp("base")
    shutil.copytree(REPO / "specs", base / "specs")
    (base / "specs" / "risk" / "easy_gate.peak").write_text(EASY)
    spec = str(base / MA)
    work = tmp_path_factory.mktemp("states")
    roots = {"none": _copy(base, work / "none")}
    promote(spec, gate="easy_gate", stage="testnet", root=base, run=True, author="alice")
    roots["testnet"] = _copy(base, work / "testnet")
    live = promote(spec, gate="easy_gate", stage="live", root=base, author="alice").record
    roots["live_unapproved"] = _copy(base, work / "live_unapproved")
    approve(live.sha256, reviewer="bob", root=base)
    roots["live_approved"] = _copy(base, work / "live_approved")
    stale = _copy(base, work / "stale")
    ma = stale / MA
    ma.write_text(ma.read_text().replace("fast: int = 20", "fast: int = 25"))
    roots["stale"] = stale
    shas = {name: Subject.of(subject_plan(str(root / MA), root=root)[0]).artifact_sha256
            for name, root in roots.items()}
    assert len(set(shas.values())) == 2  # the stale spec is another artifact
    return States(roots, shas, tmp_path_factory.mktemp("forger"), {})


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def environment(mode: str, credentials: str) -> Mapping[str, str]:
    if mode == "paper":
        return Tripwire()
    chosen = {"none": (), "testnet": ("TESTNET",), "live": ("LIVE",),
              "both": ("TESTNET", "LIVE")}[credentials]
    return {k: v for k, v in CANARY.items() if k.split("_")[1] in chosen}


def request(states: States, mode: str, record: str, arming: str, credentials: str,
            endpoint: str, **changes: object) -> GateRequest:
    root = states.roots[record]
    fields: dict[str, object] = {
        "spec": str(root / MA), "mode": mode, "now": NOW, "root": root,
        "account": ACCOUNT, "endpoint": ENDPOINTS[endpoint],
        "arm_token": states.token(record, mode, arming),
        "env": environment(mode, credentials), **changes}
    return GateRequest(**fields)  # type: ignore[arg-type]


def no_canary(*texts: str) -> None:
    for text in texts:
        assert not any(value in text for value in CANARY.values()), text


CELLS = list(product(MODES, RECORDS, ARMINGS, CREDENTIALS, ENDPOINTS))


def outcome(states: States, mode: str, record: str, arming: str, credentials: str,
            endpoint: str) -> str | None:
    """What is wrong with the gate's answer for one cell (None: it is right)."""
    want = expected(mode, record, arming, credentials, endpoint)
    try:
        granted = authorize(request(states, mode, record, arming, credentials, endpoint))
    except Refused as exc:
        assert exc.diagnostics and all(d.code and d.help for d in exc.diagnostics)
        no_canary(str(exc), repr(exc), *(d.help for d in exc.diagnostics))
        got = [f"{d.code} {d.message}" for d in exc.diagnostics]
        return None if set(exc.codes) == want else f"wants {sorted(want)}, got {got}"
    if want:
        return f"authorized, but the rule refuses with {sorted(want)}"
    assert granted.mode == mode and granted.account == ACCOUNT
    no_canary(repr(granted), str(granted))
    check_grant(states, granted, mode, record, arming, endpoint)
    return None


@pytest.mark.parametrize(("mode", "record"), list(product(MODES, RECORDS)))
def test_matrix(states: States, mode: str, record: str,
                caplog: pytest.LogCaptureFixture) -> None:
    """Every cell of one mode and record state (7 tokens × 4 credentials × 5 endpoints);
    no canary secret reaches a log."""
    with caplog.at_level(logging.DEBUG):
        wrong = {"-".join(cell): why for cell in CELLS if cell[:2] == (mode, record)
                 for why in [outcome(states, *cell)] if why}
    assert not wrong, "\n".join(f"{cell}: {why}" for cell, why in wrong.items())
    no_canary(caplog.text, *(r.getMessage() for r in caplog.records))


def check_grant(states: States, granted: Authorization, mode: str, record: str,
                arming: str, endpoint: str) -> None:
    kind = {"default": {"paper": "live", "testnet": "testnet", "live": "live"}[mode],
            "testnet": "testnet", "live": "live", "loopback": "loopback"}[endpoint]
    assert granted.endpoint.kind == kind and granted.endpoint.mode == mode
    if mode == "paper":
        assert granted.credentials is None and granted.record is None
        assert granted.token_digest is None and granted.artifact_sha256 is None
        return
    assert granted.credentials is not None and granted.credentials.mode == mode
    key = granted.credentials.ccxt_config()["apiKey"]
    assert key == CANARY[f"PEAK_{mode.upper()}_API_KEY"]
    assert granted.record is not None and granted.record.stage in (
        ("live",) if mode == "live" else ("testnet", "live"))
    assert granted.artifact_sha256 == states.shas[record]
    token = states.token(record, mode, arming)
    assert (granted.token_digest is None) == (token is None)


def test_the_rule_covers_every_outcome() -> None:
    """The matrix is not vacuous: it grants in each mode and refuses with every code."""
    outcomes = [expected(*cell) for cell in CELLS]
    granted = {cell[0] for cell, want in zip(CELLS, outcomes, strict=True) if not want}
    assert granted == set(MODES)
    assert set().union(*outcomes) == {"E004", "E005", "E007", "E008", "E011", "E012", "E013",
                                      "E014", "E015", "E016"}
    # paper: 5 records × no token × 4 credentials × 4 endpoints; testnet: 3 × 2 × 2 × 3; live
    assert sum(not want for want in outcomes) == 5 * 4 * 4 + 3 * 2 * 2 * 3 + 1 * 1 * 2 * 3


def test_every_static_refusal_is_reported_at_once(states: States) -> None:
    with pytest.raises(Refused) as refused:
        authorize(request(states, "live", "live_approved", "none", "testnet", "testnet"))
    assert refused.value.codes == ["E005", "E008", "E011"]
    assert refused.value.exit_code == 1


def test_paper_never_reads_the_environment(states: States) -> None:
    granted = authorize(GateRequest(str(states.roots["none"] / MA), "paper", NOW,
                                    env=Tripwire()))
    assert granted.credentials is None and granted.record is None


def test_an_exception_inside_the_gate_is_a_refusal(states: States) -> None:
    """The Tripwire raises AssertionError when read: the gate refuses (E018), never grants."""
    with pytest.raises(Refused) as broken:
        authorize(request(states, "testnet", "live_approved", "none", "testnet", "default",
                          env=Tripwire()))
    assert broken.value.codes == ["E018"] and broken.value.exit_code == 2
    with pytest.raises(Refused) as naive:
        authorize(request(states, "live", "live_approved", "valid", "live", "default",
                          now=NOW.replace(tzinfo=None)))
    assert naive.value.codes == ["E018"] and "timezone-aware" in str(naive.value)


def test_a_bad_mode_or_account_is_a_usage_refusal(states: States) -> None:
    with pytest.raises(Refused) as mode:
        authorize(request(states, "prod", "none", "none", "none", "default"))
    assert mode.value.codes == ["E001"] and mode.value.exit_code == 2
    with pytest.raises(Refused) as account:
        authorize(request(states, "paper", "none", "none", "none", "default",
                          account="Desk"))
    assert account.value.codes == ["E001"]


def test_a_spec_with_errors_is_e007_with_its_diagnostics(states: States,
                                                          tmp_path: Path) -> None:
    root = _copy(states.roots["none"], tmp_path / "broken")
    (root / MA).write_text((root / MA).read_text().replace("sma(close, fast)",
                                                           "sma(close, 0)"))
    with pytest.raises(Refused) as broken:
        authorize(GateRequest(str(root / MA), "testnet", NOW, root=root,
                              env=environment("testnet", "testnet")))
    assert broken.value.codes[0] == "E007" and "T004" in broken.value.codes


def test_arm_spec_arms_only_what_may_run(states: States) -> None:
    root = states.roots["live_approved"]
    token = arm_spec(str(root / MA), "live", ACCOUNT, now=NOW, root=root)
    granted = authorize(request(states, "live", "live_approved", "none", "live", "default",
                                arm_token=token))
    assert granted.token_digest is not None and len(granted.token_digest) == 64
    for record in ("testnet", "live_unapproved", "stale"):
        spec = states.roots[record] / MA
        with pytest.raises(Refused) as refused:
            arm_spec(str(spec), "live", ACCOUNT, now=NOW, root=states.roots[record])
        assert refused.value.codes == ["E007"]
    assert arm_spec(str(states.roots["testnet"] / MA), "testnet", ACCOUNT, now=NOW,
                    root=states.roots["testnet"])
    for record in ("none", "stale"):
        assert artifact_of(str(states.roots[record] / MA)) == states.shas[record]


def test_the_request_never_shows_the_environment_or_the_token(states: States) -> None:
    asked = request(states, "live", "live_approved", "valid", "both", "default")
    assert asked.arm_token and asked.arm_token not in repr(asked)
    no_canary(repr(asked))


@pytest.mark.parametrize(("mode", "record", "reason"), [
    ("testnet", "stale", "the spec changed"),
    ("live", "stale", "the spec changed"),
    ("live", "live_unapproved", "not approved"),
    ("live", "testnet", "has no live record"),
    ("testnet", "none", "has no testnet record"),
])
def test_e007_says_why_no_record_applies(states: States, mode: str, record: str,
                                         reason: str) -> None:
    with pytest.raises(Refused) as refused:
        authorize(request(states, mode, record, "valid", "both", "default"))
    assert refused.value.codes == ["E007"] and reason in str(refused.value)
