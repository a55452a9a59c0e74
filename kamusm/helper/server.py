"""The helper's HTTP surface: Host and Origin checks, CORS preflights, JSON bodies, error statuses,
one log line per request. See kamusm.helper for the security assumptions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kamusm.card import apdu
from kamusm.card.apdu import CardError
from kamusm.card.pcsc import PcscBackend
from kamusm.card.reader import CardBackend
from kamusm.helper.service import (
    BIND_ADDRESS,
    CLIENT_TIMEOUT_SECONDS,
    DRAIN_CHUNK_BYTES,
    FORBIDDEN_ORIGIN,
    HELPER_VERSION,
    MAX_BODY_BYTES,
    MAX_DRAIN_BYTES,
    PREFLIGHT_MAX_AGE_SECONDS,
    SERVE_POLL_SECONDS,
    Helper,
    HelperSetupError,
    RequestError,
    http_status,
    log,
    make_backend,
    show_on_console,
)


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


def _get_status(helper: Helper, body: dict[str, Any], origin: str) -> dict[str, object]:
    return helper.status()


def _get_card(helper: Helper, body: dict[str, Any], origin: str) -> dict[str, object]:
    return helper.read_card()


def _post_verify(helper: Helper, body: dict[str, Any], origin: str) -> dict[str, object]:
    values, confirm = _fields(body, ("pin",))
    return helper.verify_pin(values["pin"], confirm)


def _post_change(helper: Helper, body: dict[str, Any], origin: str) -> dict[str, object]:
    values, confirm = _fields(body, ("old_pin", "new_pin"))
    return helper.change_pin(values["old_pin"], values["new_pin"], confirm)


def _post_unblock(helper: Helper, body: dict[str, Any], origin: str) -> dict[str, object]:
    if "sealed_puk" in body:
        values, confirm = _fields(body, ("sealed_puk", "new_pin"))
        return helper.unblock_pin_sealed(values["sealed_puk"], values["new_pin"], confirm)
    values, confirm = _fields(body, ("puk", "new_pin"))
    return helper.unblock_pin(values["puk"], values["new_pin"], confirm)


def _post_pair(helper: Helper, body: dict[str, Any], origin: str) -> dict[str, object]:
    values, _ = _fields(body, ("sealed_code",))
    return helper.show_pairing_code(values["sealed_code"], origin.lower())


Route = Callable[[Helper, dict[str, Any], str], dict[str, object]]
ROUTES: dict[str, tuple[str, Route]] = {
    "/v1/status": ("GET", _get_status),
    "/v1/card": ("GET", _get_card),
    "/v1/pin/verify": ("POST", _post_verify),
    "/v1/pin/change": ("POST", _post_change),
    "/v1/pin/unblock": ("POST", _post_unblock),
    "/v1/pair": ("POST", _post_pair),
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
            answer = run(self.server.helper, body, origin)
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


def make_server(
    port: int,
    origins: list[str],
    backend: CardBackend,
    home: Path,
    clock: Callable[[], float] = time.time,
    display: Callable[[str], None] = show_on_console,
) -> HelperServer:
    """A helper server bound to 127.0.0.1:``port`` (0: a free port), not yet serving.

    Call ``serve_forever()`` (in a thread, in tests), then ``shutdown()`` and ``server_close()``.
    ``display`` receives what the holder reads on the helper's console (see ``Helper``).
    Raises HelperSetupError (see ``Helper``, ``normalize_origin``) or OSError (port taken).
    """
    return HelperServer(port, origins, Helper(backend, home, clock, display))


STARTED_NOTICE = """
  kamusm kart yardımcısı çalışıyor / kamusm card helper running.
  Anahtar parmak izi / Key fingerprint:  {fingerprint}
  Bu pencereyi Kilit Çözme bitene kadar açık tutunuz / Keep this window open until the unlock is done.
"""


def serve(port: int, origins: list[str], backend_name: str, home: Path) -> None:
    """Run the helper until interrupted (Ctrl+C). Raises HelperSetupError or OSError at start."""
    backend = make_backend(backend_name, home)
    try:
        server = make_server(port, origins, backend, home)
        log.info("kamusm helper %s on http://%s:%d for %s (backend %s, home %s)", HELPER_VERSION,
                 BIND_ADDRESS, server.port, ", ".join(sorted(server.origins)), backend_name, home)
        show_on_console(STARTED_NOTICE.format(fingerprint=server.helper.fingerprint))
        try:
            server.serve_forever(poll_interval=SERVE_POLL_SECONDS)
        except KeyboardInterrupt:
            log.info("kamusm helper stopped")
        finally:
            server.server_close()
    finally:
        if isinstance(backend, PcscBackend):
            backend.close()
