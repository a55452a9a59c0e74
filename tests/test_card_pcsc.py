"""PcscBackend through the real stack: pyscard -> pcscd -> vpcd -> kamusm.card.virtual.

Marked ``card``. Every test talks to the reader "Virtual PCD 00 00" only (never to whatever
else is plugged in: these tests send wrong PINs and PUKs on purpose).
"""
from __future__ import annotations

import pytest
from card_stack import (  # noqa: F401  (the *_fixture names are the card_stack and fresh_card fixtures)
    PIN,
    PUK,
    SERIAL,
    VIRTUAL_READER,
    VIRTUAL_READERS,
    card_present,
    card_stack_fixture,
    fresh_card_fixture,
)

from kamusm.card import pcsc
from kamusm.card.apdu import LastTryRefused
from kamusm.card.pcsc import PcscBackend
from kamusm.card.reader import CardSession, change_pin, read_card, unblock_pin, verify_pin
from tests.card_actions import NEW_PIN, WRONG_PIN, WRONG_PUK, block_pin, counters, error_of

pytestmark = pytest.mark.card


@pytest.fixture
def backend(fresh_card):
    with PcscBackend(VIRTUAL_READER) as backend:
        yield backend


def test_reads_serial_and_counters(backend):
    assert VIRTUAL_READER in backend.list_readers()
    assert read_card(backend) == {
        "reader": VIRTUAL_READER,
        "serial": SERIAL,
        "pin_tries_left": 3,
        "puk_tries_left": 3,
    }


def test_finds_the_card_without_a_configured_reader(fresh_card):
    with PcscBackend() as backend:
        if not set(backend.list_readers()) <= VIRTUAL_READERS:
            pytest.skip("other readers are attached; not reading cards that are not ours")
        assert read_card(backend)["reader"] == VIRTUAL_READER


def test_right_and_wrong_pin(backend):
    assert verify_pin(backend, PIN) == {"pin_tries_left": 3}
    error = error_of(verify_pin, backend, WRONG_PIN)
    assert (error.error, error.tries_left) == ("wrong_pin", 2)
    assert counters(backend) == (2, 3)
    verify_pin(backend, PIN)
    assert counters(backend) == (3, 3)


def test_pin_blocks_after_three_wrong_tries(backend):
    error_of(verify_pin, backend, WRONG_PIN)
    error_of(verify_pin, backend, WRONG_PIN)
    assert isinstance(error_of(verify_pin, backend, WRONG_PIN), LastTryRefused)
    last = error_of(verify_pin, backend, WRONG_PIN, confirm_last_try=True)
    assert (last.error, last.tries_left) == ("wrong_pin", 0)
    assert error_of(verify_pin, backend, PIN, confirm_last_try=True).error == "pin_blocked"
    assert counters(backend) == (0, 3)


def test_unblock_with_puk(backend):
    block_pin(backend)
    assert unblock_pin(backend, PUK, NEW_PIN) == {"pin_tries_left": 3, "puk_tries_left": 3}
    verify_pin(backend, NEW_PIN)
    assert counters(backend) == (3, 3)


def test_three_wrong_puks_block_for_good(backend, fresh_card):
    block_pin(backend)
    assert error_of(unblock_pin, backend, WRONG_PUK, NEW_PIN).tries_left == 2
    assert error_of(unblock_pin, backend, WRONG_PUK, NEW_PIN).tries_left == 1
    assert isinstance(error_of(unblock_pin, backend, PUK, NEW_PIN), LastTryRefused)
    last = error_of(unblock_pin, backend, WRONG_PUK, NEW_PIN, confirm_last_try=True)
    assert (last.error, last.tries_left) == ("wrong_puk", 0)
    assert error_of(unblock_pin, backend, PUK, NEW_PIN, confirm_last_try=True).error == "puk_blocked"
    fresh_card.start_card(fresh=False)  # the same card after a restart of its process
    assert error_of(unblock_pin, backend, PUK, NEW_PIN, confirm_last_try=True).error == "puk_blocked"
    assert counters(backend) == (0, 0)


def test_change_pin(backend):
    assert change_pin(backend, PIN, NEW_PIN) == {"pin_tries_left": 3}
    assert error_of(verify_pin, backend, PIN).error == "wrong_pin"
    verify_pin(backend, NEW_PIN)


def test_connection_is_exclusive(backend, monkeypatch):
    monkeypatch.setattr(pcsc, "SHARING_RETRY_SECONDS", 0.3)
    with PcscBackend(VIRTUAL_READER) as other:
        with backend.connect():
            assert error_of(read_card, other).error == "busy"
        assert read_card(other)["serial"] == SERIAL


def test_card_removed_mid_operation_then_recovers(backend, fresh_card):
    with backend.connect() as link:
        session = CardSession(link)
        assert session.tries_left("pin") == 3
        fresh_card.stop_card(kill=True)
        assert error_of(session.tries_left, "pin").error in {"card_removed", "no_card"}
    assert error_of(read_card, backend).error == "no_card"
    fresh_card.start_card(fresh=False)
    assert read_card(backend)["serial"] == SERIAL


def test_pcscd_not_running_then_recovers(backend, fresh_card):
    if not fresh_card.owns_pcscd:
        pytest.skip("pcscd was already running: not stopping a daemon these tests did not start")
    assert read_card(backend)["serial"] == SERIAL
    fresh_card.stop_pcscd()
    assert error_of(backend.list_readers).error == "pcsc_unavailable"
    assert error_of(read_card, backend).error == "pcsc_unavailable"
    with PcscBackend(VIRTUAL_READER) as newcomer:
        assert error_of(read_card, newcomer).error == "pcsc_unavailable"
    fresh_card.start_pcscd()
    # The virtual card reconnects to the new vpcd by itself.
    fresh_card.wait_until(card_present, "the card after pcscd restarted")
    assert read_card(backend)["serial"] == SERIAL


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_system_part_fails_on_ci_and_skips_elsewhere(monkeypatch, tmp_path, ci, outcome):
    import card_stack as stack_module

    monkeypatch.setattr(stack_module, "VPCD_DRIVER", tmp_path / "libifdvpcd.so")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="vsmartcard-vpcd"):
        stack_module.require_card_stack()
