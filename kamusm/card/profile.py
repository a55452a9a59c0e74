"""Card profiles: the card-specific numbers the APDU layer needs.

A profile names the key references (the P2 byte of VERIFY, CHANGE REFERENCE DATA and RESET
RETRY COUNTER), the PIN block format (ASCII digits padded to a fixed length), the retry limits and
where the card keeps its serial number. Everything card-specific lives here so that supporting
another card means adding a profile, not touching the APDU code.

The serial is read ISO 7816-4 style: SELECT the EF.GDO (file id 2F02, "general data objects",
P2=0C: no response data) and READ BINARY it; the file holds one BER-TLV, tag 5A (card
identification number) whose value is the serial in ASCII.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CardProfile:
    """The numbers that describe one kind of card; immutable so it can be shared freely."""

    name: str
    pin_reference: int
    puk_reference: int
    pin_block_length: int
    pad_byte: int
    pin_min_digits: int
    pin_max_digits: int
    puk_digits: int
    pin_max_tries: int
    puk_max_tries: int
    serial_file_id: int
    serial_tag: int

    def __post_init__(self) -> None:
        # Fail at import time on an inconsistent profile rather than with odd card answers later.
        if not 0 < self.pin_min_digits <= self.pin_max_digits <= self.pin_block_length:
            raise ValueError("PIN digit range must fit the PIN block")
        if not 0 < self.puk_digits <= self.pin_block_length:
            raise ValueError("PUK digits must fit the PIN block")
        if self.pin_reference == self.puk_reference:
            raise ValueError("PIN and PUK need distinct references")
        if self.pad_byte in range(0x30, 0x3A):
            raise ValueError("the pad byte must not be an ASCII digit")


DEFAULT_PROFILE = CardProfile(
    name="kamusm-default",
    # 0x80 set in P2 means "specific (local) reference data", as on most e-signature cards.
    pin_reference=0x81,
    puk_reference=0x82,
    pin_block_length=8,
    pad_byte=0xFF,
    pin_min_digits=4,
    pin_max_digits=8,
    puk_digits=8,
    pin_max_tries=3,
    puk_max_tries=3,
    serial_file_id=0x2F02,
    serial_tag=0x5A,
)
