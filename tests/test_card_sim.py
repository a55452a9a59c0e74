"""SimCard behaviour through SimBackend and raw APDUs, its state file, and the vpcd transport.

Pure and fast: no pcscd. The vpcd side is played by a socket in the test.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from functools import reduce
from pathlib import Path

import pytest

from kamusm.card import apdu, reader, virtual
from kamusm.card.apdu import LastTryRefused
from kamusm.card.reader import SimBackend, change_pin, read_card, unblock_pin, verify_pin
from kamusm.card.sim import SIM_ATR, SimCard
from tests.card_actions import NEW_PIN, WRONG_PIN, WRONG_PUK, block_pin, counters, error_of

SERIAL = "14000001"
PIN = "482916"
PUK = "73910284"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def state_path(tmp_path) -> Path:
    return tmp_path / "card.json"


@pytest.fixture
def card(state_path) -> SimCard:
    return SimCard(SERIAL, PIN, PUK, state_path=state_path)


@pytest.fixture
def backend(card) -> SimBackend:
    return SimBackend(card)


def test_read_card(backend):
    assert read_card(backend) == {
        "reader": reader.SIM_READER_NAME,
        "serial": SERIAL,
        "pin_tries_left": 3,
        "puk_tries_left": 3,
    }


def test_right_pin(backend):
    assert verify_pin(backend, PIN) == {"pin_tries_left": 3}


def test_wrong_pin_spends_a_try_and_right_pin_restores_the_counter(backend):
    error = error_of(verify_pin, backend, WRONG_PIN)
    assert (error.error, error.tries_left) == ("wrong_pin", 2)
    assert counters(backend) == (2, 3)
    verify_pin(backend, PIN)
    assert counters(backend) == (3, 3)


def test_last_try_is_refused_without_confirmation_and_costs_nothing(backend):
    error_of(verify_pin, backend, WRONG_PIN)
    error_of(verify_pin, backend, WRONG_PIN)
    refusal = error_of(verify_pin, backend, PIN)
    assert isinstance(refusal, LastTryRefused)
    assert (refusal.error, refusal.tries_left) == ("bad_request", 1)
    assert counters(backend) == (1, 3)
    assert verify_pin(backend, PIN, confirm_last_try=True) == {"pin_tries_left": 3}


def test_three_wrong_pins_block_the_pin(backend):
    error_of(verify_pin, backend, WRONG_PIN)
    error_of(verify_pin, backend, WRONG_PIN)
    last = error_of(verify_pin, backend, WRONG_PIN, confirm_last_try=True)
    assert (last.error, last.tries_left) == ("wrong_pin", 0)
    blocked = error_of(verify_pin, backend, PIN, confirm_last_try=True)
    assert (blocked.error, blocked.tries_left) == ("pin_blocked", 0)
    assert error_of(change_pin, backend, PIN, NEW_PIN, confirm_last_try=True).error == "pin_blocked"
    assert counters(backend) == (0, 3)


def test_unblock_with_puk_sets_the_new_pin(backend):
    block_pin(backend)
    assert unblock_pin(backend, PUK, NEW_PIN) == {"pin_tries_left": 3, "puk_tries_left": 3}
    assert counters(backend) == (3, 3)
    assert verify_pin(backend, NEW_PIN) == {"pin_tries_left": 3}
    assert error_of(verify_pin, backend, PIN).error == "wrong_pin"


def test_wrong_puk_spends_a_puk_try_and_is_never_retried(backend, card):
    sent: list[bytes] = []
    original = card.process

    def recording(command: bytes) -> bytes:
        sent.append(command)
        return original(command)

    card.process = recording
    error = error_of(unblock_pin, backend, WRONG_PUK, NEW_PIN)
    assert (error.error, error.tries_left) == ("wrong_puk", 2)
    assert [c[1] for c in sent].count(0x2C) == 1
    assert counters(backend) == (3, 2)
    assert verify_pin(backend, PIN)["pin_tries_left"] == 3


def test_three_wrong_puks_block_for_good(backend, state_path):
    block_pin(backend)
    error_of(unblock_pin, backend, WRONG_PUK, NEW_PIN)
    error_of(unblock_pin, backend, WRONG_PUK, NEW_PIN)
    refusal = error_of(unblock_pin, backend, PUK, NEW_PIN)
    assert isinstance(refusal, LastTryRefused) and refusal.tries_left == 1
    last = error_of(unblock_pin, backend, WRONG_PUK, NEW_PIN, confirm_last_try=True)
    assert (last.error, last.tries_left) == ("wrong_puk", 0)
    assert error_of(unblock_pin, backend, PUK, NEW_PIN, confirm_last_try=True).error == "puk_blocked"
    reloaded = SimBackend(SimCard.load(state_path))
    assert error_of(unblock_pin, reloaded, PUK, NEW_PIN, confirm_last_try=True).error == "puk_blocked"
    assert counters(reloaded) == (0, 0)


def test_change_pin(backend):
    assert change_pin(backend, PIN, NEW_PIN) == {"pin_tries_left": 3}
    assert error_of(verify_pin, backend, PIN).error == "wrong_pin"
    verify_pin(backend, NEW_PIN)


def test_change_pin_with_wrong_old_pin_spends_a_try(backend):
    error = error_of(change_pin, backend, WRONG_PIN, NEW_PIN)
    assert (error.error, error.tries_left) == ("wrong_pin", 2)
    verify_pin(backend, PIN)


@pytest.mark.parametrize("new_pin", ["123", "123456789", "12ab"])
def test_malformed_new_pin_is_refused_before_the_card(backend, new_pin):
    assert error_of(change_pin, backend, PIN, new_pin).error == "bad_request"
    assert error_of(unblock_pin, backend, PUK, new_pin).error == "bad_request"
    assert counters(backend) == (3, 3)


def test_no_card_and_busy(card, monkeypatch):
    assert error_of(read_card, SimBackend(None)).error == "no_card"
    monkeypatch.setattr(reader, "SESSION_WAIT_SECONDS", 0.05)
    backend = SimBackend(card)
    with backend.connect():
        assert error_of(read_card, backend).error == "busy"


def test_state_survives_a_new_instance(backend, state_path):
    error_of(verify_pin, backend, WRONG_PIN)
    change_pin(backend, PIN, NEW_PIN)
    error_of(verify_pin, backend, WRONG_PIN)
    reloaded = SimBackend(SimCard.load(state_path))
    assert counters(reloaded) == (2, 3)
    verify_pin(reloaded, NEW_PIN)


def test_a_running_reader_follows_a_state_file_another_process_rewrote(backend, state_path):
    """A teacher's `kamusm scenario pin-blocked` rewrites the file while the demo helper holds the card."""
    error_of(verify_pin, backend, WRONG_PIN)
    other = SimBackend(SimCard(SERIAL, PIN, PUK, state_path=state_path))  # the scenario: a fresh card file ...
    block_pin(other)  # ... then the PIN blocked on it
    assert counters(backend) == (0, 3)
    SimCard(SERIAL, PIN, PUK, state_path=state_path)  # `demo --reset`
    assert counters(backend) == (3, 3)
    error_of(verify_pin, backend, WRONG_PIN)  # and the running reader's own writes go on from there
    assert counters(SimBackend(SimCard.load(state_path))) == (2, 3)


def test_existing_state_file_wins_over_arguments(backend, state_path):
    change_pin(backend, PIN, NEW_PIN)
    again = SimCard.load_or_create(state_path, "99999999", "1111", "22222222")
    assert again.serial == SERIAL
    verify_pin(SimBackend(again), NEW_PIN)


def test_new_card_needs_serial_pin_and_puk(tmp_path):
    with pytest.raises(ValueError):
        SimCard.load_or_create(tmp_path / "missing.json", SERIAL, None, PUK)


def test_state_file_is_private_and_holds_no_secret(card, state_path):
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    text = state_path.read_text()
    for secret in (PIN, PUK):
        assert secret not in text
        assert secret.encode().hex() not in text.lower()
    assert json.loads(text)["pin"]["tries_left"] == 3
    for secret in (PIN, PUK):
        assert secret not in repr(card)


def test_errors_never_carry_the_secret(backend):
    errors = [
        error_of(verify_pin, backend, WRONG_PIN),
        error_of(unblock_pin, backend, WRONG_PUK, NEW_PIN),
        error_of(verify_pin, backend, "12345678901"),
    ]
    for error in errors:
        for secret in (WRONG_PIN, WRONG_PUK, NEW_PIN, "12345678901"):
            assert secret not in str(error) and secret not in repr(error)
            assert secret not in json.dumps(error.as_dict())


def pin_block(pin: str) -> str:
    return pin.encode().hex().upper().ljust(16, "F")


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        ("00200081", "63C3"),  # counter read
        ("00200082", "63C3"),
        ("00200083", "6A88"),  # unknown reference
        ("00200181", "6A86"),
        ("0020008104" + "31323334", "6700"),  # block shorter than the profile's
        ("0020008108" + pin_block(PIN), "9000"),
        ("8020008108" + pin_block(PIN), "6E00"),
        ("00FE0000", "6D00"),
        ("00C0000008", "6D00"),  # this card never defers data, so no GET RESPONSE
        ("002400821031323334FFFFFFFF31323334FFFFFFFF", "6A88"),  # PUK is not changeable
        ("0024008110" + pin_block(PIN) + "3132FFFFFFFFFFFF", "6A80"),  # new PIN too short
        ("002C018110" + pin_block(PUK) + pin_block(NEW_PIN), "6A86"),
        ("00B0000000", "6986"),  # READ BINARY with no EF selected
        ("00A4020C023F00", "6A82"),
        ("00A4020002" + "2F02", "6A86"),
        ("0020", "6700"),
        ("002000810031", "6700"),  # Lc=00 would be an extended APDU
    ],
)
def test_raw_apdu_answers(card, command, sw):
    assert card.process(bytes.fromhex(command)).hex().upper() == sw


@pytest.mark.parametrize(("command", "answer"), [
    ("00B0000000", "5A083134303030303031 9000"),  # Le=00: up to 256 bytes, here the whole file
    ("00B0000200", "3134303030303031 9000"),
    ("00B0000900", "31 9000"),  # the last byte
    ("00B000000A", "5A083134303030303031 9000"),
    ("00B0000204", "31343030 9000"),
    ("00B0000810", "3031 6282"),  # Le asks for more than remains: what remains, end of file
    ("00B00009FF", "31 6282"),
    ("00B0000A00", "6B00"),  # at the end: nothing left to read
    ("00B0000A01", "6B00"),
    ("00B0000B01", "6B00"),  # past the end
    ("00B07FFF00", "6B00"),
])
def test_read_binary_answers_data_or_an_offset_error_never_6cxx(command, answer):
    card = SimCard(SERIAL, PIN, PUK)
    assert card.process(bytes.fromhex("00A4020C022F02")) == bytes.fromhex("9000")
    assert card.process(bytes.fromhex(command)) == bytes.fromhex(answer)


def test_reading_a_file_to_its_end_with_le_00_stops():
    """A stack reads chunk after chunk until the card says the end is reached; it must get there."""
    card = SimCard(SERIAL, PIN, PUK)
    card.process(bytes.fromhex("00A4020C022F02"))
    content, offset = b"", 0
    for _ in range(4):
        answer = card.process(apdu.build_read_binary(offset))
        data, sw = answer[:-2], int.from_bytes(answer[-2:], "big")
        if sw != apdu.SW_OK:
            break
        content, offset = content + data, offset + len(data)
    assert sw == apdu.SW_WRONG_OFFSET
    assert apdu.parse_serial(content, card.profile) == SERIAL


def test_verified_state_lasts_until_reset():
    card = SimCard(SERIAL, PIN, PUK)
    assert card.process(bytes.fromhex("0020008108" + pin_block(PIN)))[-2:] == bytes.fromhex("9000")
    assert card.process(bytes.fromhex("00200081")) == bytes.fromhex("9000")
    card.reset()
    assert card.process(bytes.fromhex("00200081")) == bytes.fromhex("63C3")


def test_wrong_verify_answers_63c0_then_6983():
    card = SimCard(SERIAL, PIN, PUK)
    wrong = bytes.fromhex("0020008108" + pin_block(WRONG_PIN))
    assert [card.process(wrong).hex().upper() for _ in range(4)] == ["63C2", "63C1", "63C0", "6983"]
    assert card.process(bytes.fromhex("00200081")) == bytes.fromhex("6983")


def test_atr_check_byte():
    assert SIM_ATR[0] == 0x3B
    historical = SIM_ATR[0x01] & 0x0F
    assert len(SIM_ATR) == 4 + historical + 1
    assert reduce(lambda a, b: a ^ b, SIM_ATR[1:]) == 0  # TCK makes T0..TCK XOR to zero


class FakeVpcd:
    """The reader side of the vpcd protocol, on a loopback port chosen by the OS."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes) -> None:
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def receive(self) -> bytes:
        length = int.from_bytes(self._exact(2), "big")
        return self._exact(length)

    def _exact(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.conn.recv(count - len(data))
            assert chunk, "virtual card closed the connection"
            data += chunk
        return data

    def drop(self) -> None:
        self.conn.close()
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def vpcd():
    fake = FakeVpcd()
    yield fake
    fake.close()


def test_vpcd_protocol_and_reconnect(vpcd, monkeypatch):
    monkeypatch.setattr(virtual, "RECONNECT_DELAY_SECONDS", 0.05)
    card = SimCard(SERIAL, PIN, PUK)
    served = virtual.VirtualCard(card, "127.0.0.1", vpcd.port)
    thread = threading.Thread(target=served.run)
    thread.start()
    try:
        vpcd.accept()
        vpcd.send(bytes([virtual.VPCD_CTRL_ON]))  # no answer expected
        vpcd.send(bytes([virtual.VPCD_CTRL_ATR]))
        assert vpcd.receive() == SIM_ATR
        vpcd.send(bytes.fromhex("0020008108" + pin_block(PIN)))
        assert vpcd.receive() == bytes.fromhex("9000")
        vpcd.send(bytes([virtual.VPCD_CTRL_RESET]))
        vpcd.send(bytes.fromhex("00200081"))
        assert vpcd.receive() == bytes.fromhex("63C3")  # the reset cleared the verified PIN
        vpcd.drop()
        vpcd.accept()  # the card comes back by itself
        vpcd.send(bytes.fromhex("00A4020C022F02"))
        assert vpcd.receive() == bytes.fromhex("9000")
        vpcd.send(bytes.fromhex("00B0000000"))  # Le=00, as pcscd passes it on over T=1
        assert vpcd.receive() == bytes.fromhex("5A083134303030303031 9000")
        vpcd.send(bytes.fromhex("00B0000A00"))
        assert vpcd.receive() == bytes.fromhex("6B00")
    finally:
        served.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()


def run_virtual(*args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "kamusm.card.virtual", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_virtual_card_process_serves_and_exits_on_sigterm(vpcd, state_path):
    process = run_virtual(
        "--serial", SERIAL, "--pin", PIN, "--puk", PUK, "--port", str(vpcd.port), "--state", str(state_path)
    )
    try:
        vpcd.accept()
        vpcd.send(bytes([virtual.VPCD_CTRL_ATR]))
        assert vpcd.receive() == SIM_ATR
        vpcd.send(bytes.fromhex("0020008108" + pin_block(WRONG_PIN)))
        assert vpcd.receive() == bytes.fromhex("63C2")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    for secret in (PIN, PUK, WRONG_PIN):
        assert secret not in out + err
    assert SimCard.load(state_path).pin_tries_left == 2


def test_virtual_card_refuses_bad_pin_without_echoing_it(tmp_path):
    bad_pin = "98765432109"
    process = run_virtual("--serial", SERIAL, "--pin", bad_pin, "--puk", PUK, "--state", str(tmp_path / "s.json"))
    out, err = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "PIN must be 4 to 8 digits" in err
    assert bad_pin not in out + err and PUK not in out + err
    assert not (tmp_path / "s.json").exists()


def test_virtual_card_needs_card_data_without_state(tmp_path):
    process = run_virtual("--serial", SERIAL, "--state", str(tmp_path / "missing.json"))
    _, err = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "--pin" in err


def test_card_package_imports_without_pyscard():
    code = (
        "import sys; import kamusm.card.pcsc, kamusm.card.reader, kamusm.card.virtual; "
        "sys.exit(any(name.startswith('smartcard') for name in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO_ROOT, env=env)
    assert result.returncode == 0, "importing kamusm.card must not import pyscard"


def test_pcsc_backend_without_pyscard_is_pcsc_unavailable(monkeypatch):
    from kamusm.card.pcsc import PcscBackend

    # A None entry makes the import fail, as on a machine without pyscard.
    monkeypatch.setitem(sys.modules, "smartcard.scard", None)
    with PcscBackend() as backend:
        assert error_of(backend.list_readers).error == "pcsc_unavailable"
        assert error_of(read_card, backend).error == "pcsc_unavailable"
