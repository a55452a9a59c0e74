"""ISO 7816-4 command APDUs, response parsing and the card error type.

Everything here is pure: functions build bytes or read bytes, and ``transceive`` only calls the
transmit function it is given. The status words map to the error names fixed by DESIGN.md
(``wrong_pin``, ``pin_blocked``, ``bad_request``, ...), which the helper returns as JSON.

Security assumptions: a PIN or PUK enters only ``encode_pin``/``encode_puk`` and leaves only inside
a command APDU. Error messages are fixed strings, so no secret can reach an exception, a log line
or a JSON answer; the validation messages say what is wrong without echoing the input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from kamusm.card.profile import CardProfile

# Error names fixed by DESIGN.md ("Card and local helper").
NO_READER = "no_reader"
NO_CARD = "no_card"
CARD_REMOVED = "card_removed"
WRONG_PIN = "wrong_pin"
WRONG_PUK = "wrong_puk"
PIN_BLOCKED = "pin_blocked"
PUK_BLOCKED = "puk_blocked"
BAD_REQUEST = "bad_request"
BUSY = "busy"
PCSC_UNAVAILABLE = "pcsc_unavailable"

SW_OK = 0x9000
SW_END_OF_FILE = 0x6282  # a warning: the data came, but the file ended before Le bytes
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_AUTH_METHOD_BLOCKED = 0x6983
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_COMMAND_NOT_ALLOWED_NO_EF = 0x6986
SW_WRONG_DATA = 0x6A80
SW_FILE_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_REFERENCE_NOT_FOUND = 0x6A88
SW_WRONG_OFFSET = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW1_MORE_DATA = 0x61
SW1_WRONG_LE = 0x6C
SW1_COUNTER = 0x63
SW2_COUNTER_MASK = 0xC0

CLA_ISO = 0x00
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_RESET_RETRY_COUNTER = 0x2C
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_GET_RESPONSE = 0xC0

# SELECT P1=02: an EF under the current DF, by file id; P2=0C: no FCI/FCP in the answer.
SELECT_P1_EF_UNDER_DF = 0x02
SELECT_P2_NO_RESPONSE_DATA = 0x0C
# RESET RETRY COUNTER P1=00: the data holds the reset code (PUK) followed by the new PIN.
RESET_P1_PUK_AND_NEW_PIN = 0x00
# Le=00 in a short APDU asks for "up to 256 bytes".
LE_MAXIMUM = 0x00
SHORT_LE_MAX_BYTES = 256
# A card answering 61xx forever must not hold the reader forever.
GET_RESPONSE_MAX_ROUNDS = 16

Secret = Literal["pin", "puk"]
Transmit = Callable[[bytes], tuple[bytes, int]]


class CardError(Exception):
    """A card operation failed; ``error`` is one of the DESIGN.md names.

    ``message`` is a fixed, human-readable sentence and never contains a PIN or PUK.
    ``tries_left`` is set for wrong_pin/wrong_puk (and the last-try refusal).
    """

    def __init__(self, error: str, message: str, tries_left: int | None = None) -> None:
        super().__init__(error, message)
        self.error = error
        self.message = message
        self.tries_left = tries_left

    def __str__(self) -> str:
        return f"{self.error}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.error!r}, {self.message!r}, tries_left={self.tries_left!r})"

    def as_dict(self) -> dict[str, object]:
        """The helper's JSON error body: {error, message[, tries_left]}."""
        body: dict[str, object] = {"error": self.error, "message": self.message}
        if self.tries_left is not None:
            body["tries_left"] = self.tries_left
        return body


class LastTryRefused(CardError):
    """Refused before touching the card: one try is left and the caller did not confirm it.

    Kept inside DESIGN.md's list as ``bad_request``; callers that want to ask the user
    "use your last try?" catch this subclass.
    """

    def __init__(self, secret: Secret) -> None:
        super().__init__(
            BAD_REQUEST,
            f"Only one {secret.upper()} try is left; a wrong {secret.upper()} now blocks the card. "
            "Confirm to use the last try.",
            tries_left=1,
        )


def _encode_digits(secret: str, min_digits: int, max_digits: int, profile: CardProfile, label: str) -> bytes:
    # str.isdigit() accepts non-ASCII digits (e.g. Arabic-Indic); the card only knows ASCII.
    if not (min_digits <= len(secret) <= max_digits and secret.isascii() and secret.isdigit()):
        if min_digits == max_digits:
            rule = f"exactly {min_digits} digits"
        else:
            rule = f"{min_digits} to {max_digits} digits"
        raise CardError(BAD_REQUEST, f"The {label} must be {rule}.")
    return secret.encode("ascii").ljust(profile.pin_block_length, bytes([profile.pad_byte]))


def encode_pin(pin: str, profile: CardProfile) -> bytes:
    """Return the padded PIN block; raises CardError(bad_request) on a malformed PIN."""
    return _encode_digits(pin, profile.pin_min_digits, profile.pin_max_digits, profile, "PIN")


def encode_puk(puk: str, profile: CardProfile) -> bytes:
    """Return the padded PUK block; raises CardError(bad_request) on a malformed PUK."""
    return _encode_digits(puk, profile.puk_digits, profile.puk_digits, profile, "PUK")


def is_valid_block(block: bytes, min_digits: int, max_digits: int, profile: CardProfile) -> bool:
    """Whether ``block`` is min..max ASCII digits followed only by pad bytes (the card-side check)."""
    if len(block) != profile.pin_block_length:
        return False
    digits = block.rstrip(bytes([profile.pad_byte]))
    return min_digits <= len(digits) <= max_digits and all(0x30 <= b <= 0x39 for b in digits)


def _command(ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    if len(data) > 255:
        raise ValueError("short APDUs carry at most 255 data bytes")
    apdu = bytes([CLA_ISO, ins, p1, p2])
    if data:
        apdu += bytes([len(data)]) + data
    if le is not None:
        apdu += bytes([le % SHORT_LE_MAX_BYTES])
    return apdu


def build_verify(reference: int, block: bytes) -> bytes:
    """VERIFY 00 20 00 P2 Lc block."""
    return _command(INS_VERIFY, 0x00, reference, block)


def build_verify_status(reference: int) -> bytes:
    """VERIFY without data (00 20 00 P2): asks for the retry counter, spends no try."""
    return _command(INS_VERIFY, 0x00, reference)


def build_change_reference_data(reference: int, old_block: bytes, new_block: bytes) -> bytes:
    """CHANGE REFERENCE DATA 00 24 00 P2 Lc old||new."""
    return _command(INS_CHANGE_REFERENCE_DATA, 0x00, reference, old_block + new_block)


def build_reset_retry_counter(reference: int, puk_block: bytes, new_pin_block: bytes) -> bytes:
    """RESET RETRY COUNTER 00 2C 00 P2 Lc puk||new: unblock the PIN ``reference`` and set it."""
    return _command(INS_RESET_RETRY_COUNTER, RESET_P1_PUK_AND_NEW_PIN, reference, puk_block + new_pin_block)


def build_get_response(le: int) -> bytes:
    """GET RESPONSE 00 C0 00 00 Le (after a 61xx)."""
    return _command(INS_GET_RESPONSE, 0x00, 0x00, le=le)


def build_select_ef(file_id: int) -> bytes:
    """SELECT 00 A4 02 0C 02 FID: select an EF under the current DF, no response data."""
    return _command(INS_SELECT, SELECT_P1_EF_UNDER_DF, SELECT_P2_NO_RESPONSE_DATA, file_id.to_bytes(2, "big"))


def build_read_binary(offset: int = 0, le: int = LE_MAXIMUM) -> bytes:
    """READ BINARY 00 B0 P1P2=offset Le (Le=00: up to 256 bytes)."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError("READ BINARY offset must fit 15 bits")
    return _command(INS_READ_BINARY, offset >> 8, offset & 0xFF, le=le)


def with_le(apdu: bytes, le: int) -> bytes:
    """Return ``apdu`` with its Le set to ``le`` (for resending after 6Cxx)."""
    if len(apdu) < 4:
        raise ValueError("an APDU has at least a 4-byte header")
    le_byte = bytes([le % SHORT_LE_MAX_BYTES])
    if len(apdu) == 4:
        return apdu + le_byte
    if len(apdu) == 5:
        return apdu[:4] + le_byte
    body_end = 5 + apdu[4]
    if len(apdu) == body_end:
        return apdu + le_byte
    if len(apdu) == body_end + 1:
        return apdu[:body_end] + le_byte
    raise ValueError("malformed short APDU")


def split_response(response: bytes) -> tuple[bytes, int]:
    """Split an R-APDU into (data, SW1SW2)."""
    if len(response) < 2:
        raise CardError(BAD_REQUEST, "The card gave a malformed answer.")
    return response[:-2], int.from_bytes(response[-2:], "big")


def transceive(transmit: Transmit, apdu: bytes) -> tuple[bytes, int]:
    """Send ``apdu``, resending with the right Le after 6Cxx and collecting 61xx with GET RESPONSE.

    Returns the whole response data and the final status word. A 6Cxx is honoured once: a
    second one means the card is confused, and its status word is returned to the caller. A
    6Cxx naming the Le the command already had is not resent at all: the card would answer
    the same.
    """
    data, sw = transmit(apdu)
    if sw >> 8 == SW1_WRONG_LE:
        resend = with_le(apdu, sw & 0xFF)
        if resend != apdu:
            data, sw = transmit(resend)
    collected = data
    rounds = 0
    while sw >> 8 == SW1_MORE_DATA:
        rounds += 1
        if rounds > GET_RESPONSE_MAX_ROUNDS:
            raise CardError(BAD_REQUEST, "The card kept announcing more data.")
        data, sw = transmit(build_get_response(sw & 0xFF))
        collected += data
    return collected, sw


_BAD_REQUEST_MESSAGES = {
    SW_WRONG_LENGTH: "The card rejected the command length.",
    SW_WRONG_DATA: "The card rejected the command data.",
    SW_WRONG_P1P2: "The card rejected the command parameters.",
    SW_REFERENCE_NOT_FOUND: "The card does not have this PIN or PUK reference.",
    SW_WRONG_OFFSET: "The card rejected the file offset.",
    SW_END_OF_FILE: "The card's file ended before the expected length.",
    SW_FILE_NOT_FOUND: "The card does not have the expected file.",
    SW_INS_NOT_SUPPORTED: "The card does not support this command.",
    SW_CLA_NOT_SUPPORTED: "The card does not support this command class.",
}


def blocked_error(secret: Secret) -> CardError:
    """pin_blocked or puk_blocked."""
    name = secret.upper()
    return CardError(PIN_BLOCKED if secret == "pin" else PUK_BLOCKED, f"The {name} is blocked.", tries_left=0)


def check_status(sw: int, secret: Secret | None = None) -> None:
    """Return on 9000, else raise CardError with the DESIGN.md name for ``sw``.

    ``secret`` says which reference the command used, so 63Cx/6983 become wrong_pin/pin_blocked
    or wrong_puk/puk_blocked. A 63C0 is still wrong_* (tries_left=0): the card is now blocked.
    """
    if sw == SW_OK:
        return
    if secret is not None and sw >> 8 == SW1_COUNTER and sw & 0xF0 == SW2_COUNTER_MASK:
        tries_left = sw & 0x0F
        name = secret.upper()
        if tries_left == 0:
            message = f"Wrong {name}. The {name} is now blocked."
        else:
            message = f"Wrong {name}."
        raise CardError(WRONG_PIN if secret == "pin" else WRONG_PUK, message, tries_left=tries_left)
    if secret is not None and sw == SW_AUTH_METHOD_BLOCKED:
        raise blocked_error(secret)
    message = _BAD_REQUEST_MESSAGES.get(sw, f"The card refused the command (status {sw:04X}).")
    raise CardError(BAD_REQUEST, message)


def parse_counter(sw: int, secret: Secret, max_tries: int) -> int:
    """Tries left from the answer to an empty VERIFY.

    63Cx: x tries left. 6983: blocked (0). 9000: the reference is verified in this card session,
    which means its counter was just reset to the maximum. Anything else raises CardError.
    """
    if sw >> 8 == SW1_COUNTER and sw & 0xF0 == SW2_COUNTER_MASK:
        return sw & 0x0F
    if sw == SW_AUTH_METHOD_BLOCKED:
        return 0
    check_status(sw, secret)  # raises for everything but 9000
    return max_tries


def encode_serial(serial: str, profile: CardProfile) -> bytes:
    """The serial EF content: one TLV (profile.serial_tag, ASCII serial)."""
    value = serial.encode("ascii")
    if not 0 < len(value) < 0x80:
        raise ValueError("the serial must be 1 to 127 ASCII characters")
    return bytes([profile.serial_tag, len(value)]) + value


def parse_serial(data: bytes, profile: CardProfile) -> str:
    """The serial from the EF content written by ``encode_serial``; CardError(bad_request) if not."""
    if len(data) < 2 or data[0] != profile.serial_tag or data[1] >= 0x80 or len(data) < 2 + data[1]:
        raise CardError(BAD_REQUEST, "The card's serial number file has an unexpected format.")
    value = data[2 : 2 + data[1]]
    if not value.isascii() or not value.decode("ascii").isprintable():
        raise CardError(BAD_REQUEST, "The card's serial number is not printable text.")
    return value.decode("ascii")
