"""Card operations that do not care how APDUs reach the card.

The local helper calls the functions here (``read_card``, ``verify_pin``, ``change_pin``,
``unblock_pin``, ``unblock_pin_sealed``) with a backend: ``SimBackend`` below or
``kamusm.card.pcsc.PcscBackend``.
A backend offers ``list_readers()`` and ``connect()``, a context manager yielding a ``CardLink``
(``reader_name`` and ``transmit(apdu) -> (data, sw)``) that holds the card exclusively until it
is left; on leaving, the card is reset so a verified PIN does not outlive the operation.

Security assumptions and rules (DESIGN.md, "Security numbers", PC/SC):
- Every operation that spends a try reads the counter first (empty VERIFY, which spends none),
  refuses at once when the reference is blocked, and refuses the last try unless the caller
  confirms it (``LastTryRefused``), so a user is never surprised by a blocked card.
- A PUK is sent once per call, never retried: a second wrong PUK could block the card for good.
- PINs and PUKs are checked for format before any APDU is sent, so a typo costs no try.
- A sealed PUK is opened for the serial read inside the same exclusive connection that then
  sends it (``unblock_pin_sealed``), so a card swapped in between never receives it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from kamusm.card import apdu
from kamusm.card.apdu import CardError, LastTryRefused, Secret
from kamusm.card.profile import DEFAULT_PROFILE, CardProfile
from kamusm.card.sim import SimCard

SIM_READER_NAME = "kamusm Simulated Reader 00 00"
# How long a caller waits for another thread's card session before answering busy.
SESSION_WAIT_SECONDS = 5.0


class CardLink(Protocol):
    """An open, exclusive connection to one card."""

    reader_name: str

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return (response data, SW1SW2). Raises CardError."""
        ...


class CardBackend(Protocol):
    """Where cards come from: PC/SC readers, or a simulated card."""

    def list_readers(self) -> list[str]:
        """Names of the readers present; raises CardError (e.g. pcsc_unavailable)."""
        ...

    def connect(self) -> AbstractContextManager[CardLink]:
        """Context manager: an exclusive link to the card; raises CardError (no_reader, no_card, busy)."""
        ...


class _SimLink:
    def __init__(self, card: SimCard) -> None:
        self.reader_name = SIM_READER_NAME
        self._card = card

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        return apdu.split_response(self._card.process(command))


class SimBackend:
    """A backend holding one ``SimCard`` in a simulated reader; ``card = None`` means no card."""

    def __init__(self, card: SimCard | None) -> None:
        self.card = card
        # Sessions are exclusive, as with SCARD_SHARE_EXCLUSIVE on a real reader.
        self._lock = threading.Lock()

    def list_readers(self) -> list[str]:
        return [SIM_READER_NAME]

    @contextmanager
    def connect(self) -> Iterator[CardLink]:
        if not self._lock.acquire(timeout=SESSION_WAIT_SECONDS):
            raise CardError(apdu.BUSY, "The card is in use by another operation.")
        try:
            card = self.card = self.card.fresh() if self.card is not None else None
            if card is None:
                raise CardError(apdu.NO_CARD, "No card in the reader.")
            try:
                yield _SimLink(card)
            finally:
                # Like PcscBackend's SCARD_RESET_CARD: a verified PIN ends with the session.
                card.reset()
        finally:
            self._lock.release()


class CardSession:
    """The card-level commands of one profile over one open link (61xx/6Cxx handled)."""

    def __init__(self, link: CardLink, profile: CardProfile = DEFAULT_PROFILE) -> None:
        self.link = link
        self.profile = profile

    def _send(self, command: bytes) -> tuple[bytes, int]:
        return apdu.transceive(self.link.transmit, command)

    def _reference(self, secret: Secret) -> int:
        return self.profile.pin_reference if secret == "pin" else self.profile.puk_reference

    def read_serial(self) -> str:
        """SELECT the serial EF and READ BINARY it; raises CardError."""
        _, sw = self._send(apdu.build_select_ef(self.profile.serial_file_id))
        apdu.check_status(sw)
        data, sw = self._send(apdu.build_read_binary())
        apdu.check_status(sw)
        return apdu.parse_serial(data, self.profile)

    def tries_left(self, secret: Secret) -> int:
        """The retry counter of the PIN or PUK, read with an empty VERIFY (spends no try)."""
        _, sw = self._send(apdu.build_verify_status(self._reference(secret)))
        max_tries = self.profile.pin_max_tries if secret == "pin" else self.profile.puk_max_tries
        return apdu.parse_counter(sw, secret, max_tries)

    def guard(self, secret: Secret, confirm_last_try: bool) -> None:
        """Read the counter; raise *_blocked at 0 and LastTryRefused at 1 unless confirmed."""
        tries = self.tries_left(secret)
        if tries == 0:
            raise apdu.blocked_error(secret)
        if tries == 1 and not confirm_last_try:
            raise LastTryRefused(secret)

    def verify_pin(self, pin_block: bytes) -> None:
        _, sw = self._send(apdu.build_verify(self.profile.pin_reference, pin_block))
        apdu.check_status(sw, "pin")

    def change_pin(self, old_block: bytes, new_block: bytes) -> None:
        command = apdu.build_change_reference_data(self.profile.pin_reference, old_block, new_block)
        _, sw = self._send(command)
        apdu.check_status(sw, "pin")

    def reset_retry_counter(self, puk_block: bytes, new_pin_block: bytes) -> None:
        command = apdu.build_reset_retry_counter(self.profile.pin_reference, puk_block, new_pin_block)
        _, sw = self._send(command)
        # 63Cx and 6983 here are about the PUK: it is the reference this command checks.
        apdu.check_status(sw, "puk")


def read_card(backend: CardBackend, profile: CardProfile = DEFAULT_PROFILE) -> dict[str, object]:
    """{reader, serial, pin_tries_left, puk_tries_left} of the card; raises CardError."""
    with backend.connect() as link:
        session = CardSession(link, profile)
        return {
            "reader": link.reader_name,
            "serial": session.read_serial(),
            "pin_tries_left": session.tries_left("pin"),
            "puk_tries_left": session.tries_left("puk"),
        }


def verify_pin(
    backend: CardBackend, pin: str, confirm_last_try: bool = False, profile: CardProfile = DEFAULT_PROFILE
) -> dict[str, object]:
    """Check the PIN on the card; returns {pin_tries_left}.

    Raises CardError: bad_request (malformed PIN, or ``LastTryRefused``), pin_blocked,
    wrong_pin (with tries_left), or a backend error.
    """
    pin_block = apdu.encode_pin(pin, profile)
    with backend.connect() as link:
        session = CardSession(link, profile)
        session.guard("pin", confirm_last_try)
        session.verify_pin(pin_block)
    return {"pin_tries_left": profile.pin_max_tries}


def change_pin(
    backend: CardBackend,
    old_pin: str,
    new_pin: str,
    confirm_last_try: bool = False,
    profile: CardProfile = DEFAULT_PROFILE,
) -> dict[str, object]:
    """Replace the PIN; returns {pin_tries_left}.

    A wrong old PIN spends a try just like VERIFY, so the same last-try guard applies.
    Raises CardError like ``verify_pin``.
    """
    old_block = apdu.encode_pin(old_pin, profile)
    new_block = apdu.encode_pin(new_pin, profile)
    with backend.connect() as link:
        session = CardSession(link, profile)
        session.guard("pin", confirm_last_try)
        session.change_pin(old_block, new_block)
    return {"pin_tries_left": profile.pin_max_tries}


def unblock_pin(
    backend: CardBackend,
    puk: str,
    new_pin: str,
    confirm_last_try: bool = False,
    profile: CardProfile = DEFAULT_PROFILE,
) -> dict[str, object]:
    """Unblock the PIN with the PUK and set ``new_pin``; returns {pin_tries_left, puk_tries_left}.

    Reads the PUK counter first and sends the PUK once. Because a blocked PUK is blocked for
    good, the last PUK try is refused unless confirmed. Raises CardError: bad_request,
    puk_blocked, wrong_puk (with tries_left), or a backend error.
    """
    puk_block = apdu.encode_puk(puk, profile)
    new_block = apdu.encode_pin(new_pin, profile)
    with backend.connect() as link:
        session = CardSession(link, profile)
        session.guard("puk", confirm_last_try)
        session.reset_retry_counter(puk_block, new_block)
    return {"pin_tries_left": profile.pin_max_tries, "puk_tries_left": profile.puk_max_tries}


def unblock_pin_sealed(
    backend: CardBackend,
    open_puk: Callable[[str], str],
    new_pin: str,
    confirm_last_try: bool = False,
    profile: CardProfile = DEFAULT_PROFILE,
) -> dict[str, object]:
    """Like ``unblock_pin``, with the PUK released by ``open_puk(serial)`` for the card in the reader.

    ``open_puk`` is called with the serial read from the card inside the same exclusive
    connection, before the PUK counter is read and RESET RETRY COUNTER is sent: a card swapped
    between reading and unblocking can never receive a PUK opened for another serial. Whatever
    ``open_puk`` raises (e.g. ``SealError``) ends the operation before the PUK reaches the card.
    Returns {pin_tries_left, puk_tries_left, serial}; raises CardError like ``unblock_pin``.
    """
    new_block = apdu.encode_pin(new_pin, profile)
    with backend.connect() as link:
        session = CardSession(link, profile)
        serial = session.read_serial()
        puk_block = apdu.encode_puk(open_puk(serial), profile)
        session.guard("puk", confirm_last_try)
        session.reset_retry_counter(puk_block, new_block)
    return {"pin_tries_left": profile.pin_max_tries, "puk_tries_left": profile.puk_max_tries, "serial": serial}
