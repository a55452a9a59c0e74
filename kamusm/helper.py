"""The local card helper: a small HTTP service on 127.0.0.1 that the portal's /unlock page reaches
from the holder's browser, and that talks to the card.

Run it with ``python -m kamusm.helper`` or ``flask --app app kamusm helper`` (the click command
``helper_command``; the same options: --port, --origin (repeatable), --backend pcsc|sim, --home).
Standard library HTTP: no Flask app is created, so it runs on a holder's PC. The JSON API and its
error names are fixed by DESIGN.md ("Card and local helper"); docs/helper.md lists the statuses.

Responsibilities, from the outside in:
- ``HelperRequestHandler``: the HTTP surface. Checks Host and Origin, answers CORS preflights,
  reads and validates JSON bodies, maps errors to statuses, logs one line per request.
- ``Helper``: the domain. The X25519 key, the used seal ids, the card backend and the rule of
  one card operation at a time.
- ``UsedSeals``: seal ids already spent, in memory and in a file, until they expire.

Security assumptions:
- Binds 127.0.0.1 only. Every request, preflights included, must carry the Host
  127.0.0.1:PORT or localhost:PORT (a DNS-rebinding page sends its own name) and an Origin that
  is exactly one of the configured portal origins; anything else is refused (403
  forbidden_origin) before any card operation. Browsers cannot forge Origin; local processes
  can, and are outside what this check protects (docs/helper.md, "Threat model").
- The PUK arrives sealed for this helper's key (kamusm.sealing). It is opened for the serial read
  inside the same exclusive card connection that sends it, and its seal id is recorded (fsynced)
  before the PUK goes to the card, so a seal works once, across restarts too.
- No PIN, PUK, new PIN or seal text reaches a log line, an exception message or an answer: the log
  has method, known path, status and error name only; error messages are fixed strings that name
  fields, never values.
- One card operation at a time: a second one answers busy at once, never queues PIN tries.
- The key file is 0600 in a 0700 directory; the helper refuses to start if either is wider.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from flask import current_app, has_app_context

from kamusm import sealing
from kamusm.card import apdu, reader
from kamusm.card.apdu import CardError, LastTryRefused
from kamusm.card.pcsc import PcscBackend
from kamusm.card.reader import CardBackend, SimBackend
from kamusm.card.sim import SimCard
from kamusm.demo import DEMO_HOLDERS
from kamusm.keys import load_or_create_key

HELPER_VERSION = "1.0"
BIND_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_PORTAL_ORIGIN = "http://127.0.0.1:5000"
BACKENDS = ("pcsc", "sim")
FORBIDDEN_ORIGIN = "forbidden_origin"

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
SIM_DEMO_HOLDER = DEMO_HOLDERS[0]

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


# Files in the helper home --------------------------------------------------------------------

def default_home() -> Path:
    """$XDG_CONFIG_HOME/kamusm-helper, else ~/.config/kamusm-helper."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kamusm-helper"


def prepare_home(home: Path) -> Path:
    """Create ``home`` with mode 0700 if missing; raise HelperSetupError if others may enter it."""
    home = Path(home)
    home.mkdir(mode=HOME_DIR_MODE, parents=True, exist_ok=True)
    if home.stat().st_mode & OWNER_ONLY_MASK:
        raise HelperSetupError(f"{home} must be accessible by its owner only (chmod 700 {home}).")
    return home


def load_or_create_private_key(path: Path) -> X25519PrivateKey:
    """The helper's X25519 key from ``path``, created on first use (O_CREAT|O_EXCL, mode 0600).

    Raises HelperSetupError if the file is readable by others or is not a 32-byte key.
    """
    raw = load_or_create_key(path, X25519_KEY_BYTES)
    if path.stat().st_mode & OWNER_ONLY_MASK:
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
        state = {"version": USED_SEALS_FORMAT_VERSION, "used": self._used}
        # mkstemp creates the file with mode 0600; os.replace makes the new content appear at once.
        fd, temp_name = tempfile.mkstemp(prefix=".used-seals-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            os.unlink(temp_name)
            raise


# The domain ----------------------------------------------------------------------------------

def _open_seal(private_key: X25519PrivateKey, sealed_puk: str, serial: str, now: float) -> sealing.OpenedSeal:
    """``sealing.open_seal``, with an authentic seal of the wrong shape refused as a SealError.

    Anyone holding the public key can make a seal, and open_seal trusts the sealed JSON's shape.
    """
    try:
        opened = sealing.open_seal(private_key, sealed_puk, serial, now)
    except (KeyError, TypeError, ValueError) as error:
        raise sealing.SealError("malformed seal content") from error
    if not (isinstance(opened.puk, str) and isinstance(opened.seal_id, str)
            and isinstance(opened.expires_at, (int, float))):
        raise sealing.SealError("malformed seal content")
    return opened


class Helper:
    """The helper's state and operations: key, used seals, card backend, one operation at a time.

    Methods return the JSON answer as a dict or raise CardError (with a DESIGN.md error name).
    """

    def __init__(self, backend: CardBackend, home: Path, clock: Callable[[], float] = time.time) -> None:
        """Raises HelperSetupError for an unsafe home or key file, or a damaged used-seals file."""
        home = prepare_home(home)
        self.backend = backend
        self.clock = clock
        self.private_key = load_or_create_private_key(home / KEY_FILE_NAME)
        self.public_key = sealing.b64encode(sealing.public_key_bytes(self.private_key))
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
        return {"version": HELPER_VERSION, "readers": readers, "public_key": self.public_key}

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
            opened = _open_seal(self.private_key, sealed_puk, serial, now)
            self.used_seals.claim(opened.seal_id, opened.expires_at, now)
            return opened.puk

        with self._one_operation():
            try:
                return reader.unblock_pin_sealed(self.backend, open_puk, new_pin, confirm_last_try)
            except sealing.SealError as error:
                raise CardError(apdu.BAD_REQUEST, f"The sealed PUK was refused: {error}.") from None


# The HTTP surface ----------------------------------------------------------------------------

def _fields(body: dict[str, Any], names: tuple[str, ...]) -> tuple[dict[str, str], bool]:
    """The required string fields ``names`` and the optional boolean confirm_last_try of ``body``.

    Raises RequestError(bad_request) for a missing, extra or mistyped field; messages name
    fields, never values.
    """
    allowed = (*names, "confirm_last_try")
    if not body.keys() <= set(allowed):
        raise RequestError(apdu.BAD_REQUEST, f"This operation takes only: {', '.join(allowed)}.")
    for name in names:
        if not isinstance(body.get(name), str):
            raise RequestError(apdu.BAD_REQUEST, f"The field {name} must be a string.")
    confirm_last_try = body.get("confirm_last_try", False)
    if not isinstance(confirm_last_try, bool):
        raise RequestError(apdu.BAD_REQUEST, "The field confirm_last_try must be true or false.")
    return {name: body[name] for name in names}, confirm_last_try


def _get_status(helper: Helper, body: dict[str, Any]) -> dict[str, object]:
    return helper.status()


def _get_card(helper: Helper, body: dict[str, Any]) -> dict[str, object]:
    return helper.read_card()


def _post_verify(helper: Helper, body: dict[str, Any]) -> dict[str, object]:
    values, confirm = _fields(body, ("pin",))
    return helper.verify_pin(values["pin"], confirm)


def _post_change(helper: Helper, body: dict[str, Any]) -> dict[str, object]:
    values, confirm = _fields(body, ("old_pin", "new_pin"))
    return helper.change_pin(values["old_pin"], values["new_pin"], confirm)


def _post_unblock(helper: Helper, body: dict[str, Any]) -> dict[str, object]:
    if "sealed_puk" in body:
        values, confirm = _fields(body, ("sealed_puk", "new_pin"))
        return helper.unblock_pin_sealed(values["sealed_puk"], values["new_pin"], confirm)
    values, confirm = _fields(body, ("puk", "new_pin"))
    return helper.unblock_pin(values["puk"], values["new_pin"], confirm)


Route = Callable[[Helper, dict[str, Any]], dict[str, object]]
ROUTES: dict[str, tuple[str, Route]] = {
    "/v1/status": ("GET", _get_status),
    "/v1/card": ("GET", _get_card),
    "/v1/pin/verify": ("POST", _post_verify),
    "/v1/pin/change": ("POST", _post_change),
    "/v1/pin/unblock": ("POST", _post_unblock),
}


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` in lower case, one trailing slash stripped.

    Raises HelperSetupError for anything that is not an http(s) origin: a path, a query,
    credentials, a wildcard or "null" would make the exact-match rule meaningless.
    """
    parts = urlsplit(text.strip().removesuffix("/"))
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None
            or parts.password is not None or parts.path or parts.query or parts.fragment or "*" in parts.netloc):
        raise HelperSetupError(f"not an origin (scheme://host[:port]): {text!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


class HelperServer(ThreadingHTTPServer):
    """The helper's HTTP server on 127.0.0.1; ``port`` 0 picks a free port (see ``port``)."""

    daemon_threads = True

    def __init__(self, port: int, origins: list[str], helper: Helper) -> None:
        if not origins:
            raise HelperSetupError("at least one portal origin is needed")
        self.origins = frozenset(normalize_origin(origin) for origin in origins)
        self.helper = helper
        super().__init__((BIND_ADDRESS, port), HelperRequestHandler)
        self.port: int = self.server_address[1]
        self.allowed_hosts = frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})


class HelperRequestHandler(BaseHTTPRequestHandler):
    """One HTTP request: caller checks, CORS, JSON in and out, one log line."""

    server: HelperServer
    timeout = CLIENT_TIMEOUT_SECONDS

    def version_string(self) -> str:
        return f"kamusm-helper/{HELPER_VERSION}"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        """CORS preflight: allowed only for the configured origins, on this helper's Host."""
        try:
            origin = self._allowed_origin()
        except RequestError as error:
            self._send_json(http_status(error), error.as_dict(), None)
            return
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", origin)
        self.send_header("Access-Control-Allow-Methods", "GET, POST")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_SECONDS))
        # Private Network Access (deprecated in Chrome in favour of a permission prompt): harmless to answer.
        if self.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            self.send_header("Access-Control-Allow-Private-Network", "true")
        self.send_header("Vary", "Origin")
        self.send_header("Content-Length", "0")
        self.end_headers()
        self._log(204, None)

    def _handle(self) -> None:
        origin = None
        try:
            origin = self._allowed_origin()
            route = ROUTES.get(self._path())
            if route is None:
                raise RequestError(apdu.BAD_REQUEST, "No such endpoint.", status=404)
            method, run = route
            if self.command != method:
                raise RequestError(apdu.BAD_REQUEST, f"Use {method} here.", status=405)
            body = self._read_json_object() if method == "POST" else {}
            answer = run(self.server.helper, body)
        except CardError as error:
            self._send_json(http_status(error), error.as_dict(), origin)
            return
        self._send_json(200, answer, origin)

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _single_header(self, name: str) -> str | None:
        values = self.headers.get_all(name) or []
        return values[0] if len(values) == 1 else None

    def _allowed_origin(self) -> str:
        """The request's Origin when Host and Origin are allowed; else RequestError(forbidden_origin)."""
        host = (self._single_header("Host") or "").lower()
        if host not in self.server.allowed_hosts:
            raise RequestError(FORBIDDEN_ORIGIN, "The Host header is not this helper's address.")
        origin = (self._single_header("Origin") or "").removesuffix("/")
        if origin not in self.server.origins:
            raise RequestError(FORBIDDEN_ORIGIN, "This helper answers its configured portal origin only.")
        return origin

    def _read_json_object(self) -> dict[str, Any]:
        """The body as a JSON object; RequestError(bad_request) for anything else."""
        if self.headers.get_content_type() != "application/json":
            raise RequestError(apdu.BAD_REQUEST, "The body must be JSON (Content-Type: application/json).")
        length_text = self._single_header("Content-Length") or ""
        if "Transfer-Encoding" in self.headers or not (length_text.isascii() and length_text.isdigit()):
            raise RequestError(apdu.BAD_REQUEST, "The body needs a Content-Length.")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self._discard_body(length)
            raise RequestError(apdu.BAD_REQUEST, f"The body is larger than {MAX_BODY_BYTES} bytes.")
        raw = self.rfile.read(length)
        try:
            # RecursionError: deeply nested arrays fit in 4 KiB.
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise RequestError(apdu.BAD_REQUEST, "The body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise RequestError(apdu.BAD_REQUEST, "The body must be a JSON object.")
        return body

    def _discard_body(self, length: int) -> None:
        self.close_connection = True
        remaining = min(length, MAX_DRAIN_BYTES)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, DRAIN_CHUNK_BYTES))
            if not chunk:
                return
            remaining -= len(chunk)

    def _send_json(self, status: int, body: dict[str, object], origin: str | None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if origin is not None:
            self.send_header("Access-Control-Allow-Origin", origin)
        self.send_header("Vary", "Origin")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        error = body.get("error")
        self._log(status, error if isinstance(error, str) else None)

    def _log(self, status: int, error: str | None) -> None:
        # Only known paths are logged: anything else a caller puts in the URL stays out of the log.
        path = self._path() if self._path() in ROUTES else "(other)"
        log.info("%s %s %d %s", self.command or "-", path, status, error or "-")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, unknown method, huge headers) as JSON.

        The request line is not echoed or logged: it is caller-controlled text.
        """
        self.close_connection = True
        if not hasattr(self, "path"):
            self.path = ""
        body = {"error": apdu.BAD_REQUEST, "message": f"Malformed or unsupported HTTP request ({code})."}
        self._send_json(code, body, None)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Replaced by ``_log``, which also knows the error name."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        # Reached through log_error only (e.g. a client timing out); send_error does not call it.
        log.warning("http: " + format, *args)


# Starting it ---------------------------------------------------------------------------------

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


def make_server(
    port: int,
    origins: list[str],
    backend: CardBackend,
    home: Path,
    clock: Callable[[], float] = time.time,
) -> HelperServer:
    """A helper server bound to 127.0.0.1:``port`` (0: a free port), not yet serving.

    Call ``serve_forever()`` (in a thread, in tests), then ``shutdown()`` and ``server_close()``.
    Raises HelperSetupError (see ``Helper``, ``normalize_origin``) or OSError (port taken).
    """
    return HelperServer(port, origins, Helper(backend, home, clock))


def serve(port: int, origins: list[str], backend_name: str, home: Path) -> None:
    """Run the helper until interrupted (Ctrl+C). Raises HelperSetupError or OSError at start."""
    backend = make_backend(backend_name, home)
    try:
        server = make_server(port, origins, backend, home)
        log.info("kamusm helper %s on http://%s:%d for %s (backend %s, home %s)", HELPER_VERSION,
                 BIND_ADDRESS, server.port, ", ".join(sorted(server.origins)), backend_name, home)
        try:
            server.serve_forever(poll_interval=SERVE_POLL_SECONDS)
        except KeyboardInterrupt:
            log.info("kamusm helper stopped")
        finally:
            server.server_close()
    finally:
        if isinstance(backend, PcscBackend):
            backend.close()


def _default_origin() -> str:
    """KAMUSM_PUBLIC_URL of the current Flask app (under ``flask kamusm helper``), else the local portal."""
    if has_app_context():
        return current_app.config.get("KAMUSM_PUBLIC_URL") or DEFAULT_PORTAL_ORIGIN
    return DEFAULT_PORTAL_ORIGIN


@click.command("helper")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="TCP port on 127.0.0.1 (the portal's KAMUSM_HELPER_URL must name it).")
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help="A portal origin allowed to call the helper (repeatable; exact match). "
                   "Default: KAMUSM_PUBLIC_URL under flask, else http://127.0.0.1:5000.")
@click.option("--backend", type=click.Choice(BACKENDS), default="pcsc", show_default=True,
              help="pcsc: real readers through pcscd; sim: the simulated demo card (serial 14000001).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the helper's key, used seal ids and the sim card "
                   "(default: $XDG_CONFIG_HOME/kamusm-helper or ~/.config/kamusm-helper).")
def helper_command(port: int, origins: tuple[str, ...], backend: str, home: Path | None) -> None:
    """Run the local card helper on 127.0.0.1 for the portal's /unlock page."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    try:
        serve(port, list(origins) or [_default_origin()], backend, home or default_home())
    except (HelperSetupError, OSError) as error:
        raise click.ClickException(str(error)) from error


def main(argv: list[str] | None = None) -> None:
    """``python -m kamusm.helper [--port 8765] [--origin URL ...] [--backend pcsc|sim] [--home DIR]``.

    The same command as ``flask --app app kamusm helper``; exits the process when done.
    """
    helper_command.main(args=argv, prog_name="python -m kamusm.helper")


if __name__ == "__main__":
    main()
