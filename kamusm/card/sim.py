"""SimCard: the simulated e-signature card, answering command APDUs like a real one.

One implementation, two transports: ``SimBackend`` (kamusm.card.reader) calls ``process`` in
process, and ``kamusm.card.virtual`` serves the same object to vpcd so that tests go through the
real pcscd + pyscard path.

Behaviour (ISO 7816-4, profile numbers from kamusm.card.profile):
- VERIFY with data checks the PIN (or PUK) block; a wrong one spends a try and answers 63Cx,
  the last wrong one answers 63C0; a blocked reference answers 6983. A right one restores the
  counter and marks the reference verified until the next reset.
- VERIFY without data spends nothing: 9000 if verified since the last reset, 6983 if blocked,
  else 63Cx with the tries left.
- CHANGE REFERENCE DATA (PIN only) takes old||new; a wrong old PIN spends a PIN try.
- RESET RETRY COUNTER (P1=00) takes PUK||new PIN; a wrong PUK spends a PUK try, and a PUK
  with no try left is blocked for good: nothing on the card restores it.
- SELECT EF (P1=02, P2=0C) + READ BINARY read the serial file. Le=00 (256 in a short APDU)
  returns what remains, up to 256 bytes, with 9000; a non-zero Le longer than what remains
  returns what remains with 6282 (end of file reached first); an offset at or past the end
  answers 6B00. It never answers 6Cxx: a 6C00 at the end of a file would send a stack that
  follows 6Cxx (Le=00 again) round for ever.
- A malformed new PIN answers 6A80 before any counter moves.

Security assumptions: the PIN and PUK are kept as salted PBKDF2 hashes, in memory and in the
state file, so the file never shows them in clear; comparisons are constant-time. Every counter
change is written to the state file before the card answers, as a real card writes its EEPROM
first, so killing the process cannot hand back a spent try. The state file is written atomically
with mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kamusm.card import apdu
from kamusm.card.profile import DEFAULT_PROFILE, CardProfile
from kamusm.keys import write_private_json

# 3B: direct convention; 88: TD1 follows, 8 historical bytes; 80: TD2 follows, T=0;
# 01: T=1; "KAMUSM01"; 04: TCK, the XOR of T0..the last historical byte.
SIM_ATR = bytes.fromhex("3B 88 80 01 4B 41 4D 55 53 4D 30 31 04")
# The card the helper's sim backend plays: demo holder Selin Yılmaz's (DESIGN.md). Kept here because
# the helper cannot import kamusm.demo (Flask); a test holds it equal to DEMO_HOLDERS[0].
DEMO_CARD = {"card_serial": "14000001", "pin": "482916", "puk": "73910284"}
STATE_FORMAT_VERSION = 1
# Enough to make the state file useless at a glance; a simulator need not resist a GPU.
SECRET_HASH_ITERATIONS = 10_000
SECRET_SALT_BYTES = 16


@dataclass
class _Reference:
    """One PIN or PUK: its hash and its retry counter (0 = blocked)."""

    salt: bytes
    digest: bytes
    tries_left: int
    max_tries: int

    @classmethod
    def create(cls, block: bytes, max_tries: int) -> _Reference:
        salt = secrets.token_bytes(SECRET_SALT_BYTES)
        return cls(salt, _hash_block(block, salt), max_tries, max_tries)

    def matches(self, block: bytes) -> bool:
        return hmac.compare_digest(_hash_block(block, self.salt), self.digest)

    def replace(self, block: bytes) -> None:
        self.salt = secrets.token_bytes(SECRET_SALT_BYTES)
        self.digest = _hash_block(block, self.salt)
        self.tries_left = self.max_tries

    def to_json(self) -> dict[str, Any]:
        return {"salt": self.salt.hex(), "digest": self.digest.hex(), "tries_left": self.tries_left}

    @classmethod
    def from_json(cls, data: dict[str, Any], max_tries: int) -> _Reference:
        tries_left = int(data["tries_left"])
        if not 0 <= tries_left <= max_tries:
            raise ValueError("state file: retry counter out of range")
        return cls(bytes.fromhex(data["salt"]), bytes.fromhex(data["digest"]), tries_left, max_tries)


def _hash_block(block: bytes, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", block, salt, SECRET_HASH_ITERATIONS)


def _parse_command(command: bytes) -> tuple[int, int, int, int, bytes, int | None] | None:
    """(cla, ins, p1, p2, data, le) of a short APDU, or None when its length is inconsistent."""
    if len(command) < 4:
        return None
    cla, ins, p1, p2 = command[:4]
    body = command[4:]
    if not body:
        return cla, ins, p1, p2, b"", None
    if len(body) == 1:
        return cla, ins, p1, p2, b"", body[0]
    lc = body[0]
    # Lc=00 would start an extended APDU, which this card does not speak.
    if lc == 0:
        return None
    if len(body) == 1 + lc:
        return cla, ins, p1, p2, body[1:], None
    if len(body) == 2 + lc:
        return cla, ins, p1, p2, body[1:-1], body[-1]
    return None


def _sw(status: int, data: bytes = b"") -> bytes:
    return data + status.to_bytes(2, "big")


def _counter_sw(tries_left: int) -> int:
    return (apdu.SW1_COUNTER << 8) | apdu.SW2_COUNTER_MASK | tries_left


def _file_stamp(path: Path) -> bytes | None:
    """What the state file holds now (a few hundred bytes): compared whole, as an inode or a timestamp
    can repeat across two writes."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


class SimCard:
    """A simulated card; ``process`` takes a command APDU and returns the response APDU."""

    def __init__(
        self,
        serial: str,
        pin: str,
        puk: str,
        *,
        profile: CardProfile = DEFAULT_PROFILE,
        state_path: Path | None = None,
    ) -> None:
        """Make a new card; raises CardError(bad_request) on a malformed PIN or PUK.

        With ``state_path`` the new state is written there at once (overwriting any file).
        """
        self.profile = profile
        self._serial_file = apdu.encode_serial(serial, profile)
        self._serial = serial
        self._pin = _Reference.create(apdu.encode_pin(pin, profile), profile.pin_max_tries)
        self._puk = _Reference.create(apdu.encode_puk(puk, profile), profile.puk_max_tries)
        self._state_path = state_path
        self._stamp: bytes | None = None
        self._verified: set[int] = set()
        self._selected_file: bytes | None = None
        self._save()

    @classmethod
    def load(cls, state_path: Path, *, profile: CardProfile = DEFAULT_PROFILE) -> SimCard:
        """Restore a card from its state file; raises OSError or ValueError if it is unreadable."""
        content = Path(state_path).read_bytes()
        data = json.loads(content.decode("utf-8"))
        if data.get("version") != STATE_FORMAT_VERSION:
            raise ValueError("state file: unknown format version")
        card = cls.__new__(cls)
        card.profile = profile
        card._serial = str(data["serial"])
        card._serial_file = apdu.encode_serial(card._serial, profile)
        card._pin = _Reference.from_json(data["pin"], profile.pin_max_tries)
        card._puk = _Reference.from_json(data["puk"], profile.puk_max_tries)
        card._state_path = Path(state_path)
        card._stamp = content
        card._verified = set()
        card._selected_file = None
        return card

    @classmethod
    def load_or_create(
        cls,
        state_path: Path,
        serial: str | None,
        pin: str | None,
        puk: str | None,
        *,
        profile: CardProfile = DEFAULT_PROFILE,
    ) -> SimCard:
        """The card in ``state_path`` if the file exists (it wins over the arguments), else a new one.

        Raises ValueError when the file is missing and serial, PIN or PUK is not given.
        """
        state_path = Path(state_path)
        if state_path.exists():
            return cls.load(state_path, profile=profile)
        if serial is None or pin is None or puk is None:
            raise ValueError("a new card needs a serial, a PIN and a PUK")
        return cls(serial, pin, puk, profile=profile, state_path=state_path)

    @property
    def serial(self) -> str:
        return self._serial

    @property
    def pin_tries_left(self) -> int:
        return self._pin.tries_left

    @property
    def puk_tries_left(self) -> int:
        return self._puk.tries_left

    def __repr__(self) -> str:
        return (f"SimCard(serial={self._serial!r}, pin_tries_left={self.pin_tries_left}, "
                f"puk_tries_left={self.puk_tries_left})")

    def reset(self) -> None:
        """Power cycle or warm reset: forget verified references and the selected file."""
        self._verified.clear()
        self._selected_file = None

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU with a response APDU (data || SW1 SW2)."""
        parsed = _parse_command(command)
        if parsed is None:
            return _sw(apdu.SW_WRONG_LENGTH)
        cla, ins, p1, p2, data, le = parsed
        if cla != apdu.CLA_ISO:
            return _sw(apdu.SW_CLA_NOT_SUPPORTED)
        if ins == apdu.INS_VERIFY:
            return self._verify(p1, p2, data)
        if ins == apdu.INS_CHANGE_REFERENCE_DATA:
            return self._change_reference_data(p1, p2, data)
        if ins == apdu.INS_RESET_RETRY_COUNTER:
            return self._reset_retry_counter(p1, p2, data)
        if ins == apdu.INS_SELECT:
            return self._select(p1, p2, data)
        if ins == apdu.INS_READ_BINARY:
            return self._read_binary(p1, p2, data, le)
        return _sw(apdu.SW_INS_NOT_SUPPORTED)

    def _reference(self, p2: int) -> _Reference | None:
        if p2 == self.profile.pin_reference:
            return self._pin
        if p2 == self.profile.puk_reference:
            return self._puk
        return None

    def _check(self, reference: _Reference, p2: int, block: bytes) -> int:
        """Compare ``block``; spend a try (saved before answering) when it is wrong."""
        if reference.tries_left == 0:
            return apdu.SW_AUTH_METHOD_BLOCKED
        if reference.matches(block):
            if reference.tries_left != reference.max_tries:
                reference.tries_left = reference.max_tries
                self._save()
            self._verified.add(p2)
            return apdu.SW_OK
        reference.tries_left -= 1
        self._verified.discard(p2)
        self._save()
        return _counter_sw(reference.tries_left)

    def _verify(self, p1: int, p2: int, data: bytes) -> bytes:
        if p1 != 0x00:
            return _sw(apdu.SW_WRONG_P1P2)
        reference = self._reference(p2)
        if reference is None:
            return _sw(apdu.SW_REFERENCE_NOT_FOUND)
        if not data:
            if reference.tries_left == 0:
                return _sw(apdu.SW_AUTH_METHOD_BLOCKED)
            if p2 in self._verified:
                return _sw(apdu.SW_OK)
            return _sw(_counter_sw(reference.tries_left))
        if len(data) != self.profile.pin_block_length:
            return _sw(apdu.SW_WRONG_LENGTH)
        return _sw(self._check(reference, p2, data))

    def _split_pair(self, p1: int, p2: int, data: bytes) -> tuple[bytes, bytes] | int:
        """Split old||new (or PUK||new) for the PIN reference, or return the refusing SW."""
        if p1 != 0x00:
            return apdu.SW_WRONG_P1P2
        # Only the PIN is changed or unblocked on this card; the PUK is fixed at issuance.
        if p2 != self.profile.pin_reference:
            return apdu.SW_REFERENCE_NOT_FOUND
        block_length = self.profile.pin_block_length
        if len(data) != 2 * block_length:
            return apdu.SW_WRONG_LENGTH
        first, new_block = data[:block_length], data[block_length:]
        profile = self.profile
        if not apdu.is_valid_block(new_block, profile.pin_min_digits, profile.pin_max_digits, profile):
            return apdu.SW_WRONG_DATA
        return first, new_block

    def _change_reference_data(self, p1: int, p2: int, data: bytes) -> bytes:
        pair = self._split_pair(p1, p2, data)
        if isinstance(pair, int):
            return _sw(pair)
        old_block, new_block = pair
        status = self._check(self._pin, p2, old_block)
        if status == apdu.SW_OK:
            self._pin.replace(new_block)
            self._save()
        return _sw(status)

    def _reset_retry_counter(self, p1: int, p2: int, data: bytes) -> bytes:
        pair = self._split_pair(p1, p2, data)
        if isinstance(pair, int):
            return _sw(pair)
        puk_block, new_block = pair
        status = self._check(self._puk, self.profile.puk_reference, puk_block)
        if status == apdu.SW_OK:
            self._pin.replace(new_block)
            self._verified.discard(p2)
            self._save()
        return _sw(status)

    def _select(self, p1: int, p2: int, data: bytes) -> bytes:
        if p1 != apdu.SELECT_P1_EF_UNDER_DF or p2 != apdu.SELECT_P2_NO_RESPONSE_DATA:
            return _sw(apdu.SW_WRONG_P1P2)
        if len(data) != 2:
            return _sw(apdu.SW_WRONG_LENGTH)
        if int.from_bytes(data, "big") != self.profile.serial_file_id:
            self._selected_file = None
            return _sw(apdu.SW_FILE_NOT_FOUND)
        self._selected_file = self._serial_file
        return _sw(apdu.SW_OK)

    def _read_binary(self, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if data or le is None:
            return _sw(apdu.SW_WRONG_LENGTH)
        # P1 bit 8 set would name a short EF identifier, which this card does not offer.
        if p1 & 0x80:
            return _sw(apdu.SW_WRONG_P1P2)
        if self._selected_file is None:
            return _sw(apdu.SW_COMMAND_NOT_ALLOWED_NO_EF)
        offset = (p1 << 8) | p2
        if offset >= len(self._selected_file):
            return _sw(apdu.SW_WRONG_OFFSET)
        available = self._selected_file[offset:]
        if le == apdu.LE_MAXIMUM:
            return _sw(apdu.SW_OK, available[:apdu.SHORT_LE_MAX_BYTES])
        if le > len(available):
            return _sw(apdu.SW_END_OF_FILE, available)
        return _sw(apdu.SW_OK, available[:le])

    def _save(self) -> None:
        if self._state_path is None:
            return
        write_private_json(self._state_path, {
            "version": STATE_FORMAT_VERSION,
            "serial": self._serial,
            "pin": self._pin.to_json(),
            "puk": self._puk.to_json(),
        })
        self._stamp = _file_stamp(self._state_path)

    def fresh(self) -> SimCard:
        """This card, or the one its state file holds now if another process rewrote the file since this card
        last read or wrote it (a teacher's `kamusm scenario` while the demo helper runs): the file is the card's
        memory, so the helper must not answer from, and write back, counters the file no longer holds."""
        if self._state_path is None or _file_stamp(self._state_path) in (self._stamp, None):
            return self
        return SimCard.load(self._state_path, profile=self.profile)
