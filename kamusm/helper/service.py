"""The helper's domain: its key and home folder, the used seal ids, the card backend, and the rule
of one card operation at a time. See kamusm.helper for the whole picture and its security assumptions."""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kamusm import sealing
from kamusm.card import apdu, reader
from kamusm.card.apdu import CardError, LastTryRefused
from kamusm.card.pcsc import PcscBackend
from kamusm.card.reader import CardBackend, SimBackend
from kamusm.card.sim import DEMO_CARD, SimCard
from kamusm.keys import load_or_create_key, write_private_json

HELPER_VERSION = "1.0"
BIND_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_PORTAL_ORIGIN = "http://127.0.0.1:5000"
BACKENDS = ("pcsc", "sim")
FORBIDDEN_ORIGIN = "forbidden_origin"

HELPER_NAME_MAX_CHARS = 64
MAX_BODY_BYTES = 4 * 1024
# A body somewhat over the limit is read and dropped, so the client gets the 400 rather than a
# connection reset by unread data; a bigger one just closes the connection.
MAX_DRAIN_BYTES = 64 * 1024
DRAIN_CHUNK_BYTES = 8 * 1024
# A client that stalls mid-request loses its connection instead of holding a thread.
CLIENT_TIMEOUT_SECONDS = 10.0
PREFLIGHT_MAX_AGE_SECONDS = 600
SERVE_POLL_SECONDS = 0.5

HOME_DIR_MODE = 0o700
OWNER_ONLY_MASK = 0o077
X25519_KEY_BYTES = 32
KEY_FILE_NAME = "helper.key"
USED_SEALS_FILE_NAME = "used-seals.json"
USED_SEALS_FORMAT_VERSION = 1
SIM_CARD_FILE_NAME = "sim-card.json"
# The demo holder whose card the sim backend plays (DESIGN.md: Selin Yılmaz, serial 14000001).
SIM_DEMO_HOLDER = DEMO_CARD

# HTTP status per DESIGN.md error name (docs/helper.md documents the same table).
ERROR_STATUS = {
    apdu.BAD_REQUEST: 400,
    FORBIDDEN_ORIGIN: 403,
    apdu.NO_READER: 404,
    apdu.NO_CARD: 404,
    apdu.WRONG_PIN: 409,
    apdu.WRONG_PUK: 409,
    apdu.PIN_BLOCKED: 409,
    apdu.PUK_BLOCKED: 409,
    apdu.CARD_REMOVED: 409,
    apdu.BUSY: 423,
    apdu.PCSC_UNAVAILABLE: 503,
}
# bad_request with tries_left 1: the last try needs confirm_last_try: true.
LAST_TRY_STATUS = 428

# A fixed name: under `python -m kamusm.helper` __name__ is "__main__".
log = logging.getLogger("kamusm.helper")


PAIRING_NOTICE = """
  Eşleştirme kodu / Pairing code for {origin}:

      {code}

  Bu kart yardımcısının anahtarı / This helper's key:  {fingerprint}
  Kodu yalnızca portalın Kilit Çözme sayfasına yazınız; kimseye söylemeyiniz.
  Type the code only on the portal's Kilit Çözme page; never tell it to anyone.
"""


def show_on_console(text: str) -> None:
    """Print to the helper's own terminal (standard output), apart from its log on standard error."""
    print(text, flush=True)


class HelperSetupError(Exception):
    """The helper cannot start: bad options, or a key, home or state file that is unsafe or damaged."""


class RequestError(CardError):
    """A refusal decided by the helper rather than the card; same JSON shape, optional HTTP status."""

    def __init__(self, error: str, message: str, status: int | None = None) -> None:
        super().__init__(error, message)
        self.status = status


def http_status(error: CardError) -> int:
    """The HTTP status for an error answer (docs/helper.md, "Errors")."""
    if isinstance(error, RequestError) and error.status is not None:
        return error.status
    if isinstance(error, LastTryRefused):
        return LAST_TRY_STATUS
    return ERROR_STATUS[error.error]


def default_home() -> Path:
    """%APPDATA%\\kamusm-helper on Windows; else $XDG_CONFIG_HOME/kamusm-helper, else ~/.config/kamusm-helper."""
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "kamusm-helper"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kamusm-helper"


def others_may_open(path: Path) -> bool:
    """Whether the POSIX mode lets anyone but the owner in.

    Windows reports every file as 0o666 and every folder as 0o777 whatever its ACL says, so there
    the answer is no: the helper's home is inside the user's own profile (%APPDATA%), which only
    that user (and administrators) may open.
    """
    return os.name != "nt" and bool(path.stat().st_mode & OWNER_ONLY_MASK)


def prepare_home(home: Path) -> Path:
    """Create ``home`` with mode 0700 if missing; raise HelperSetupError if others may enter it."""
    home = Path(home)
    home.mkdir(mode=HOME_DIR_MODE, parents=True, exist_ok=True)
    if others_may_open(home):
        raise HelperSetupError(f"{home} must be accessible by its owner only (chmod 700 {home}).")
    return home


def load_or_create_private_key(path: Path) -> X25519PrivateKey:
    """The helper's X25519 key from ``path``, created on first use (O_CREAT|O_EXCL, mode 0600).

    Raises HelperSetupError if the file is readable by others or is not a 32-byte key.
    """
    raw = load_or_create_key(path, X25519_KEY_BYTES)
    if others_may_open(path):
        raise HelperSetupError(f"{path} must be readable by its owner only (chmod 600 {path}).")
    if len(raw) != X25519_KEY_BYTES:
        raise HelperSetupError(f"{path} is not a {X25519_KEY_BYTES}-byte key; move it away to make a new one.")
    return X25519PrivateKey.from_private_bytes(raw)


class UsedSeals:
    """Seal ids already spent, with their expiry (Unix seconds), in memory and in a 0600 JSON file.

    An id is recorded, and the file written and fsynced, before its PUK goes to the card, so
    neither a replay nor a restart of the helper within the seal's life lets a seal work twice.
    Ids past their expiry are dropped: ``sealing.open_seal`` refuses those seals anyway (the same
    comparison, exp < now), so forgetting them reopens nothing.
    """

    def __init__(self, path: Path, now: float) -> None:
        """Load the file; raises HelperSetupError when it is damaged (refusing beats forgetting)."""
        self.path = path
        self._lock = threading.Lock()
        self._used = self._load(now)

    def _load(self, now: float) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise HelperSetupError(f"{self.path} cannot be read ({type(error).__name__}).") from error
        if not isinstance(data, dict) or data.get("version") != USED_SEALS_FORMAT_VERSION:
            raise HelperSetupError(f"{self.path} has an unknown format.")
        used = data.get("used")
        if not isinstance(used, dict) or not all(isinstance(value, (int, float)) for value in used.values()):
            raise HelperSetupError(f"{self.path} has an unknown format.")
        return {seal_id: float(expires_at) for seal_id, expires_at in used.items() if expires_at >= now}

    def claim(self, seal_id: str, expires_at: float, now: float) -> None:
        """Record ``seal_id`` as spent; raises SealError if it was spent before.

        Raises OSError when the file cannot be written; the id then stays spent in memory and
        the caller must not send the PUK.
        """
        with self._lock:
            self._used = {known: expiry for known, expiry in self._used.items() if expiry >= now}
            if seal_id in self._used:
                raise sealing.SealError("the seal was already used")
            self._used[seal_id] = expires_at
            self._save()

    def _save(self) -> None:
        write_private_json(self.path, {"version": USED_SEALS_FORMAT_VERSION, "used": self._used})


class Helper:
    """The helper's state and operations: key, used seals, card backend, one operation at a time.

    Methods return the JSON answer as a dict or raise CardError (with a DESIGN.md error name).
    """

    def __init__(self, backend: CardBackend, home: Path, clock: Callable[[], float] = time.time,
                 display: Callable[[str], None] = show_on_console) -> None:
        """Raises HelperSetupError for an unsafe home or key file, or a damaged used-seals file.

        ``display`` shows the holder what only the holder may see (a pairing code): the helper's
        own terminal, never the log or an HTTP answer.
        """
        home = prepare_home(home)
        self.backend = backend
        self.clock = clock
        self.display = display
        self.private_key = load_or_create_private_key(home / KEY_FILE_NAME)
        public_key = sealing.public_key_bytes(self.private_key)
        self.public_key = sealing.b64encode(public_key)
        self.fingerprint = sealing.fingerprint(public_key)
        self.name = platform.node()[:HELPER_NAME_MAX_CHARS]
        self.used_seals = UsedSeals(home / USED_SEALS_FILE_NAME, clock())
        self._operation = threading.Lock()

    @contextmanager
    def _one_operation(self) -> Iterator[None]:
        # Non-blocking: a second page (or a double click) gets busy instead of queueing a PIN try.
        if not self._operation.acquire(blocking=False):
            raise CardError(apdu.BUSY, "Another card operation is in progress; try again when it ends.")
        try:
            yield
        finally:
            self._operation.release()

    def status(self) -> dict[str, object]:
        """{version, readers, public_key}; readers is empty when PC/SC is unavailable.

        Status says the helper runs and which key it has; /v1/card then names the PC/SC problem.
        """
        try:
            readers = self.backend.list_readers()
        except CardError as error:
            log.warning("listing readers failed: %s", error.error)
            readers = []
        return {"version": HELPER_VERSION, "readers": readers, "public_key": self.public_key,
                "fingerprint": self.fingerprint, "name": self.name}

    def show_pairing_code(self, sealed_code: str, origin: str) -> dict[str, object]:
        """Open a pairing code the portal at ``origin`` sealed for this key and show it on the console.

        The answer says only that it was shown: the code must come back to the portal through the
        holder's eyes and hands, not through the page that asked. Each seal shows once.
        Raises CardError(bad_request) when the seal is refused.
        """
        now = self.clock()
        try:
            opened = sealing.open_pairing_code(self.private_key, sealed_code, origin, now)
            self.used_seals.claim(opened.seal_id, opened.expires_at, now)
        except sealing.SealError as error:
            raise CardError(apdu.BAD_REQUEST, f"The sealed pairing code was refused: {error}.") from None
        half = len(opened.secret) // 2
        self.display(PAIRING_NOTICE.format(origin=origin, code=f"{opened.secret[:half]} {opened.secret[half:]}",
                                           fingerprint=self.fingerprint))
        log.info("pairing code shown for %s", origin)
        return {"shown": True, "fingerprint": self.fingerprint}

    def read_card(self) -> dict[str, object]:
        with self._one_operation():
            return reader.read_card(self.backend)

    def verify_pin(self, pin: str, confirm_last_try: bool) -> dict[str, object]:
        with self._one_operation():
            return reader.verify_pin(self.backend, pin, confirm_last_try)

    def change_pin(self, old_pin: str, new_pin: str, confirm_last_try: bool) -> dict[str, object]:
        with self._one_operation():
            return reader.change_pin(self.backend, old_pin, new_pin, confirm_last_try)

    def unblock_pin(self, puk: str, new_pin: str, confirm_last_try: bool) -> dict[str, object]:
        with self._one_operation():
            return reader.unblock_pin(self.backend, puk, new_pin, confirm_last_try)

    def unblock_pin_sealed(self, sealed_puk: str, new_pin: str, confirm_last_try: bool) -> dict[str, object]:
        """Open the seal for the serial of the card in the reader, spend its id, then unblock.

        The seal is spent once opened, even when the card then refuses (e.g. the last PUK try
        without confirm_last_try): the portal makes a new seal for every attempt.
        Raises CardError(bad_request) with the reason when the seal is refused.
        """
        now = self.clock()

        def open_puk(serial: str) -> str:
            opened = sealing.open_seal(self.private_key, sealed_puk, serial, now)
            self.used_seals.claim(opened.seal_id, opened.expires_at, now)
            return opened.secret

        with self._one_operation():
            try:
                return reader.unblock_pin_sealed(self.backend, open_puk, new_pin, confirm_last_try)
            except sealing.SealError as error:
                raise CardError(apdu.BAD_REQUEST, f"The sealed PUK was refused: {error}.") from None


def make_backend(name: str, home: Path) -> CardBackend:
    """``pcsc``: PcscBackend on every reader. ``sim``: the demo card, its state in ``home``.

    Raises HelperSetupError for an unknown name or a damaged sim card state file.
    """
    if name == "pcsc":
        return PcscBackend()
    if name != "sim":
        raise HelperSetupError(f"unknown backend {name!r} (one of {', '.join(BACKENDS)})")
    state_path = prepare_home(home) / SIM_CARD_FILE_NAME
    try:
        card = SimCard.load_or_create(
            state_path, SIM_DEMO_HOLDER["card_serial"], SIM_DEMO_HOLDER["pin"], SIM_DEMO_HOLDER["puk"]
        )
    except (OSError, ValueError) as error:
        raise HelperSetupError(f"{state_path} cannot be read ({error}); delete it for a fresh demo card.") from error
    return SimBackend(card)
