"""Credentials: names bound to mode and account, values never shown, redacted from logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping

import pytest

from peakdsl.live.gate import Refused
from peakdsl.live.secrets import (
    REDACTOR,
    Credentials,
    RedactingFilter,
    install_redaction,
    load_credentials,
    valid_account,
    variable_names,
)

KEY, SECRET = "canaryKEY-5f0c2e9a71d3", "canarySECRET-b84e13d6a0f7"
LIVE_KEY, LIVE_SECRET = "canaryLIVEKEY-7d21c4", "canaryLIVESECRET-e93a50"


class Recording(Mapping[str, str]):
    """An environment that remembers which variables were read."""

    def __init__(self, values: dict[str, str]) -> None:
        self.data, self.read = values, set[str]()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.data[name]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the loader never lists the environment")

    def __len__(self) -> int:
        return len(self.data)


def codes(exc: pytest.ExceptionInfo[Refused]) -> list[str]:
    return exc.value.codes


@pytest.mark.parametrize(("mode", "account", "names"), [
    ("testnet", "default", ("PEAK_TESTNET_API_KEY", "PEAK_TESTNET_API_SECRET")),
    ("live", "default", ("PEAK_LIVE_API_KEY", "PEAK_LIVE_API_SECRET")),
    ("testnet", "main", ("PEAK_MAIN_TESTNET_API_KEY", "PEAK_MAIN_TESTNET_API_SECRET")),
    ("live", "desk_2", ("PEAK_DESK_2_LIVE_API_KEY", "PEAK_DESK_2_LIVE_API_SECRET")),
])
def test_variable_names(mode: str, account: str, names: tuple[str, str]) -> None:
    assert variable_names(mode, account) == names  # type: ignore[arg-type]


def test_no_account_can_read_another_modes_variables() -> None:
    accounts = ["default", "a", "a_live", "a_testnet", "x_testnet_live", "main"]
    testnet = {n for a in accounts for n in variable_names("testnet", a)}
    live = {n for a in accounts for n in variable_names("live", a)}
    assert not testnet & live and len(testnet) == len(live) == 2 * len(accounts)


@pytest.mark.parametrize("account", ["Main", "a-b", "1desk", "", "x" * 33, "live", "paper",
                                     "testnet", "main\n"])
def test_bad_account_names_are_e001(account: str) -> None:
    with pytest.raises(Refused) as bad:
        valid_account(account)
    assert codes(bad) == ["E001"] and bad.value.exit_code == 2


def test_loads_only_its_own_modes_variables() -> None:
    env = Recording({"PEAK_TESTNET_API_KEY": KEY, "PEAK_TESTNET_API_SECRET": SECRET})
    creds = load_credentials("testnet", env=env)
    assert creds.ccxt_config() == {"apiKey": KEY, "secret": SECRET}
    assert (creds.mode, creds.account) == ("testnet", "default")
    # the live key is read only to make sure it is not the same key
    assert env.read == {"PEAK_TESTNET_API_KEY", "PEAK_TESTNET_API_SECRET", "PEAK_LIVE_API_KEY"}


def test_testnet_keys_are_never_loaded_for_live_nor_the_reverse() -> None:
    testnet = {"PEAK_TESTNET_API_KEY": KEY, "PEAK_TESTNET_API_SECRET": SECRET}
    live = {"PEAK_LIVE_API_KEY": LIVE_KEY, "PEAK_LIVE_API_SECRET": LIVE_SECRET}
    for mode, env in (("live", testnet), ("testnet", live)):
        with pytest.raises(Refused) as missing:
            load_credentials(mode, env=env)  # type: ignore[arg-type]
        assert codes(missing) == ["E008"]
    assert load_credentials("live", env={**testnet, **live}).ccxt_config()["apiKey"] == LIVE_KEY


def test_values_are_never_shown() -> None:
    creds = load_credentials("live", "main", {"PEAK_MAIN_LIVE_API_KEY": KEY,
                                              "PEAK_MAIN_LIVE_API_SECRET": SECRET})
    assert isinstance(creds, Credentials)
    for text in (repr(creds), str(creds), f"{creds!r}", repr(creds.api_key),
                 str(creds.api_secret)):
        assert KEY not in text and SECRET not in text
    assert "**********" in repr(creds)


def test_missing_names_exactly_what_is_missing() -> None:
    with pytest.raises(Refused) as none:
        load_credentials("testnet", env={})
    assert none.value.diagnostics[0].message.endswith(
        "PEAK_TESTNET_API_KEY and PEAK_TESTNET_API_SECRET are not set")
    with pytest.raises(Refused) as half:
        load_credentials("testnet", env={"PEAK_TESTNET_API_KEY": KEY,
                                         "PEAK_TESTNET_API_SECRET": ""})
    assert codes(half) == ["E008"]
    assert half.value.diagnostics[0].message.endswith("PEAK_TESTNET_API_SECRET is not set")
    assert KEY not in str(half.value)


@pytest.mark.parametrize("value", ["short1", f" {KEY}", f"{KEY}\n", "has space-1234",
                                   "tab\tinside-123", "nul\x00inside-123"])
def test_malformed_values_are_e009_without_the_value(value: str) -> None:
    with pytest.raises(Refused) as bad:
        load_credentials("testnet", env={"PEAK_TESTNET_API_KEY": KEY,
                                         "PEAK_TESTNET_API_SECRET": value})
    assert codes(bad) == ["E009"]
    shown = str(bad.value) + bad.value.diagnostics[0].help
    assert "PEAK_TESTNET_API_SECRET" in shown and value.strip() not in shown
    assert KEY not in shown


@pytest.mark.parametrize("mode", ["testnet", "live"])
def test_one_key_for_both_modes_is_e010(mode: str) -> None:
    env = {"PEAK_TESTNET_API_KEY": KEY, "PEAK_TESTNET_API_SECRET": SECRET,
           "PEAK_LIVE_API_KEY": KEY, "PEAK_LIVE_API_SECRET": LIVE_SECRET}
    with pytest.raises(Refused) as same:
        load_credentials(mode, env=env)  # type: ignore[arg-type]
    assert codes(same) == ["E010"] and KEY not in str(same.value)


def test_paper_is_not_a_credential_mode() -> None:
    with pytest.raises(Refused) as paper:
        load_credentials("paper", env={})  # type: ignore[arg-type]
    assert codes(paper) == ["E001"]


def test_loaded_values_are_redacted_from_every_log(caplog: pytest.LogCaptureFixture) -> None:
    later = io.StringIO()
    creds = load_credentials("testnet", "canary", {
        "PEAK_CANARY_TESTNET_API_KEY": KEY, "PEAK_CANARY_TESTNET_API_SECRET": SECRET})
    handler = logging.StreamHandler(later)  # added after loading: still redacted
    logging.getLogger().addHandler(handler)
    try:
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("peakdsl").warning("key %s", KEY)
            logging.getLogger("peakdsl.live.venue").info("config %r", creds.ccxt_config())
            logging.getLogger("ccxt.base.exchange").debug("headers: X-MBX-APIKEY: " + KEY)
            logging.getLogger().error("%(secret)s", {"secret": SECRET})
            try:
                raise RuntimeError(f"signature with {SECRET} rejected")
            except RuntimeError:
                logging.getLogger("peakdsl.live").exception("order failed")
            logging.getLogger("peakdsl").info("no secret here: %d orders", 3)
    finally:
        logging.getLogger().removeHandler(handler)
    texts = [caplog.text, later.getvalue(),
             *(r.getMessage() for r in caplog.records)]
    for text in texts:
        assert KEY not in text and SECRET not in text
    assert later.getvalue().count("***") >= 5 and "order failed" in later.getvalue()
    assert caplog.text.count("***") >= 5 and "signature with *** rejected" in caplog.text
    assert "no secret here: 3 orders" in caplog.text
    untouched = caplog.records[-1]
    assert untouched.msg == "no secret here: %d orders" and untouched.args == (3,)


def test_a_registered_value_is_redacted_by_a_filter_of_its_own() -> None:
    redactor = RedactingFilter()
    redactor.register("tok-1234", "tok-1234-longer", "")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s b %s",
                               ("tok-1234-longer", "tok-1234"), None)
    assert redactor.filter(record) is True
    assert record.getMessage() == "a *** b ***"
    broken = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", ("tok-1234",), None)
    redactor.filter(broken)  # a malformed call: still redacted, no exception
    assert "tok-1234" not in broken.getMessage()


def test_install_is_idempotent() -> None:
    package = logging.getLogger("peakdsl")
    install_redaction()
    install_redaction()
    assert package.filters.count(REDACTOR) == 1
    factory = logging.getLogRecordFactory()
    install_redaction()
    assert logging.getLogRecordFactory() is factory
