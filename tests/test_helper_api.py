"""The local card helper's HTTP API with the sim backend: a real server on 127.0.0.1 in a thread,
real HTTP requests (http.client), the card's state checked behind the API.

``HelperClient`` and ``running_helper`` are reused by test_helper_pcsc.py.
"""
from __future__ import annotations

import http.client
import json
import logging
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kamusm import helper
from kamusm.card.reader import SIM_READER_NAME, SimBackend
from kamusm.card.sim import SimCard
from kamusm.helper import (
    HelperSetupError,
    UsedSeals,
    make_server,
    normalize_origin,
)
from kamusm.helper.service import KEY_FILE_NAME, MAX_BODY_BYTES, USED_SEALS_FILE_NAME
from kamusm.sealing import (
    SEAL_TTL_SECONDS,
    SealError,
    b64decode,
    b64encode,
    fingerprint,
    public_key_bytes,
    seal_puk,
)

ORIGIN = "https://portal.example"
SERIAL = "14000001"
PIN = "482916"
PUK = "73910284"
NEW_PIN = "135790"
WRONG_PIN = "246802"
WRONG_PUK = "11111111"
NOW = 1_800_000_000.0
# How often the test server's loop looks at shutdown(): short, so each test ends quickly.
TEST_POLL_SECONDS = 0.01
REQUEST_TIMEOUT_SECONDS = 15


@dataclass
class Answer:
    status: int
    headers: Message
    json: dict | None


class HelperClient:
    """Real HTTP requests to a running helper, sent as the portal's page sends them."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body: object = None, *, origin: str | None = ORIGIN,
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                content_type: str | None = "application/json") -> Answer:
        sent = {"Origin": origin} if origin is not None else {}
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None and content_type is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        parsed = json.loads(payload) if response.headers.get("Content-Type") == "application/json" else None
        return Answer(response.status, response.headers, parsed)

    def get(self, path: str, **options) -> Answer:
        return self.request("GET", path, **options)

    def post(self, path: str, body: object, **options) -> Answer:
        return self.request("POST", path, body, **options)

    def seal(self, serial: str = SERIAL, puk: str = PUK, now: float | None = None) -> str:
        """A PUK sealed, as the portal does, for the key this helper reports."""
        public_key = self.get("/v1/status").json["public_key"]
        return seal_puk(public_key, serial, puk, time.time() if now is None else now)[0]


@contextmanager
def running_helper(backend, home: Path, origins=(ORIGIN,)) -> Iterator[tuple[helper.HelperServer, HelperClient]]:
    """A helper on a free port of 127.0.0.1, served by a thread until the block ends."""
    server = make_server(0, list(origins), backend, home)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": TEST_POLL_SECONDS}, daemon=True)
    thread.start()
    try:
        yield server, HelperClient(server.port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def block_pin(client: HelperClient) -> None:
    """Spend the three PIN tries through the API, the last one confirmed."""
    for confirm in (False, False, True):
        answer = client.post("/v1/pin/verify", {"pin": WRONG_PIN, "confirm_last_try": confirm})
        assert answer.json["error"] == "wrong_pin"


@pytest.fixture
def card() -> SimCard:
    return SimCard(SERIAL, PIN, PUK)


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "helper-home"


@pytest.fixture
def client(card, home) -> Iterator[HelperClient]:
    with running_helper(SimBackend(card), home) as (_, client):
        yield client


def test_status_shape_and_headers(client, home):
    answer = client.get("/v1/status")
    assert answer.status == 200
    assert answer.json == {"version": helper.HELPER_VERSION, "readers": [SIM_READER_NAME],
                           "public_key": answer.json["public_key"], "fingerprint": answer.json["fingerprint"],
                           "name": answer.json["name"]}
    assert answer.json["fingerprint"] == fingerprint(b64decode(answer.json["public_key"]))
    key = X25519PrivateKey.from_private_bytes((home / KEY_FILE_NAME).read_bytes())
    assert answer.json["public_key"] == b64encode(public_key_bytes(key))
    assert len(b64decode(answer.json["public_key"])) == 32 and "=" not in answer.json["public_key"]
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Vary"] == "Origin"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_card_answers_serial_and_counters(client):
    answer = client.get("/v1/card")
    assert (answer.status, answer.json) == (200, {"reader": SIM_READER_NAME, "serial": SERIAL,
                                                  "pin_tries_left": 3, "puk_tries_left": 3})


@pytest.mark.parametrize(("origin", "host"), [
    ("https://evil.example", None),
    (None, None),
    ("null", None),
    ("http://portal.example", None),
    ("https://portal.example.evil.example", None),
    ("https://portal.example:443", None),
    (ORIGIN, "evil.example:{port}"),
    (ORIGIN, "127.0.0.1:1"),
    (ORIGIN, "127.0.0.1"),
], ids=["foreign", "missing", "null", "other-scheme", "suffix", "explicit-port", "rebinding-host",
        "other-port", "host-without-port"])
def test_foreign_callers_are_refused_before_the_card(client, card, origin, host):
    headers = {"Host": host.format(port=client.port)} if host else {}
    for answer in (client.post("/v1/pin/verify", {"pin": WRONG_PIN}, origin=origin, headers=headers),
                   client.get("/v1/status", origin=origin, headers=headers),
                   client.request("OPTIONS", "/v1/pin/verify", origin=origin, headers=headers)):
        assert answer.status == 403
        assert answer.json["error"] == "forbidden_origin"
        assert "Access-Control-Allow-Origin" not in answer.headers
    assert card.pin_tries_left == 3


def test_localhost_host_and_configured_trailing_slash_are_accepted(card, home):
    with running_helper(SimBackend(card), home, origins=("https://Portal.Example/",)) as (_, client):
        answer = client.get("/v1/status", headers={"Host": f"localhost:{client.port}"})
        assert answer.status == 200
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize("private_network", [True, False])
def test_preflight(client, private_network):
    headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    if private_network:
        headers["Access-Control-Request-Private-Network"] = "true"
    answer = client.request("OPTIONS", "/v1/pin/unblock", headers=headers)
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert answer.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert answer.headers["Access-Control-Max-Age"] == "600"
    assert answer.headers["Vary"] == "Origin"
    assert answer.headers.get("Access-Control-Allow-Private-Network") == ("true" if private_network else None)


def test_verify_right_wrong_last_try_and_blocked(client, card):
    assert (client.post("/v1/pin/verify", {"pin": PIN}).status, card.pin_tries_left) == (200, 3)
    wrong = client.post("/v1/pin/verify", {"pin": WRONG_PIN})
    assert (wrong.status, wrong.json["error"], wrong.json["tries_left"]) == (409, "wrong_pin", 2)
    assert client.post("/v1/pin/verify", {"pin": WRONG_PIN}).json["tries_left"] == 1
    refused = client.post("/v1/pin/verify", {"pin": WRONG_PIN})
    assert (refused.status, refused.json["error"], refused.json["tries_left"]) == (428, "bad_request", 1)
    assert "last try" in refused.json["message"]
    assert card.pin_tries_left == 1
    last = client.post("/v1/pin/verify", {"pin": WRONG_PIN, "confirm_last_try": True})
    assert (last.status, last.json["error"], last.json["tries_left"]) == (409, "wrong_pin", 0)
    blocked = client.post("/v1/pin/verify", {"pin": PIN, "confirm_last_try": True})
    assert (blocked.status, blocked.json["error"]) == (409, "pin_blocked")
    assert client.get("/v1/card").json["pin_tries_left"] == 0


def test_confirmed_last_try_with_the_right_pin_restores_the_counter(client, card):
    client.post("/v1/pin/verify", {"pin": WRONG_PIN})
    client.post("/v1/pin/verify", {"pin": WRONG_PIN})
    answer = client.post("/v1/pin/verify", {"pin": PIN, "confirm_last_try": True})
    assert (answer.status, answer.json) == (200, {"pin_tries_left": 3})
    assert card.pin_tries_left == 3


def test_change_pin(client):
    answer = client.post("/v1/pin/change", {"old_pin": PIN, "new_pin": NEW_PIN})
    assert (answer.status, answer.json) == (200, {"pin_tries_left": 3})
    assert client.post("/v1/pin/verify", {"pin": PIN}).json["error"] == "wrong_pin"
    assert client.post("/v1/pin/verify", {"pin": NEW_PIN}).status == 200


def test_unblock_with_a_plain_puk(client):
    block_pin(client)
    answer = client.post("/v1/pin/unblock", {"puk": PUK, "new_pin": NEW_PIN})
    assert (answer.status, answer.json) == (200, {"pin_tries_left": 3, "puk_tries_left": 3})
    assert client.post("/v1/pin/verify", {"pin": NEW_PIN}).status == 200
    wrong = client.post("/v1/pin/unblock", {"puk": WRONG_PUK, "new_pin": PIN})
    assert (wrong.status, wrong.json["error"], wrong.json["tries_left"]) == (409, "wrong_puk", 2)


def test_unblock_with_a_sealed_puk_works_once(client, card):
    block_pin(client)
    sealed = client.seal()
    answer = client.post("/v1/pin/unblock", {"sealed_puk": sealed, "new_pin": NEW_PIN})
    assert (answer.status, answer.json) == (200, {"pin_tries_left": 3, "puk_tries_left": 3, "serial": SERIAL})
    assert client.post("/v1/pin/verify", {"pin": NEW_PIN}).status == 200
    replay = client.post("/v1/pin/unblock", {"sealed_puk": sealed, "new_pin": PIN})
    assert (replay.status, replay.json["error"]) == (400, "bad_request")
    assert "already used" in replay.json["message"]
    assert client.post("/v1/pin/verify", {"pin": NEW_PIN}).status == 200


def _other_helper_seal(client: HelperClient) -> str:
    other_key = b64encode(public_key_bytes(X25519PrivateKey.generate()))
    return seal_puk(other_key, SERIAL, PUK, time.time())[0]


@pytest.mark.parametrize(("make_seal", "reason"), [
    (lambda client: client.seal(now=time.time() - 200), "expired"),
    (lambda client: client.seal(serial="14000003"), "another card"),
    (_other_helper_seal, "another helper"),
    (lambda client: '{"v": 1, "epk": "", "nonce": "", "ct": ""}', "malformed"),
], ids=["expired", "other-serial", "other-helper-key", "malformed"])
def test_refused_seals_never_reach_the_card(client, card, make_seal, reason):
    block_pin(client)
    answer = client.post("/v1/pin/unblock", {"sealed_puk": make_seal(client), "new_pin": NEW_PIN})
    assert (answer.status, answer.json["error"]) == (400, "bad_request")
    assert reason in answer.json["message"] and answer.json["message"].startswith("The sealed PUK was refused")
    assert (card.pin_tries_left, card.puk_tries_left) == (0, 3)


def test_a_card_swapped_after_reading_never_gets_the_puk(home):
    other_pin = "907531"
    # The same PUK on purpose: only the serial binding keeps it from unblocking this card.
    other_card = SimCard("14000003", other_pin, PUK)
    backend = SimBackend(SimCard(SERIAL, PIN, PUK))
    with running_helper(backend, home) as (_, client):
        assert client.get("/v1/card").json["serial"] == SERIAL
        sealed = client.seal()
        backend.card = other_card
        answer = client.post("/v1/pin/unblock", {"sealed_puk": sealed, "new_pin": NEW_PIN, "confirm_last_try": True})
        assert (answer.status, answer.json["error"]) == (400, "bad_request")
        assert "another card" in answer.json["message"]
        assert client.post("/v1/pin/verify", {"pin": other_pin}).status == 200
    assert other_card.puk_tries_left == 3


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(("path", "raw", "content_type", "message"), [
    ("/v1/pin/verify", b"{not json", "application/json", "not valid JSON"),
    ("/v1/pin/verify", b"\xff\xfe{}", "application/json", "not valid JSON"),
    ("/v1/pin/verify", _nested(2000), "application/json", "not valid JSON"),
    ("/v1/pin/verify", b'["482916"]', "application/json", "JSON object"),
    ("/v1/pin/verify", b'{"pin": 482916}', "application/json", "pin must be a string"),
    ("/v1/pin/verify", b'{"pin": null}', "application/json", "pin must be a string"),
    ("/v1/pin/verify", b"{}", "application/json", "pin must be a string"),
    ("/v1/pin/verify", b'{"pin": "482916", "confirm_last_try": "yes"}', "application/json", "true or false"),
    ("/v1/pin/verify", b'{"pin": "482916", "pni": "482916"}', "application/json", "takes only: pin"),
    ("/v1/pin/verify", b'{"pin": "48a9"}', "application/json", "PIN must be"),
    ("/v1/pin/change", b'{"old_pin": "482916"}', "application/json", "new_pin must be a string"),
    ("/v1/pin/unblock", b'{"puk": "73910284", "sealed_puk": "x", "new_pin": "135790"}', "application/json",
     "takes only"),
    ("/v1/pin/verify", b'{"pin": "482916"}', "text/plain", "Content-Type: application/json"),
    ("/v1/pin/verify", b'{"pin": "482916"}', None, "Content-Type: application/json"),
    ("/v1/pin/verify", b'{"pin": "' + b"1" * MAX_BODY_BYTES + b'"}', "application/json", "larger than 4096"),
    ("/v1/pin/verify", b" " * (32 * 1024), "application/json", "larger than 4096"),
], ids=["malformed", "not-utf8", "deeply-nested", "array", "number", "null", "missing", "confirm-not-bool",
        "unknown-field", "pin-format", "change-missing-new", "puk-and-sealed", "text-plain", "no-content-type",
        "just-over-4k", "32k"])
def test_bad_bodies_are_bad_request(client, card, path, raw, content_type, message):
    answer = client.request("POST", path, raw=raw, content_type=content_type)
    assert (answer.status, answer.json["error"]) == (400, "bad_request")
    assert message in answer.json["message"]
    assert set(answer.json) == {"error", "message"}
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert (card.pin_tries_left, card.puk_tries_left) == (3, 3)


def test_unknown_paths_and_methods_answer_json(client):
    missing = client.get("/v1/nothing")
    assert (missing.status, missing.json["error"]) == (404, "bad_request")
    wrong_method = client.get("/v1/pin/verify")
    assert (wrong_method.status, wrong_method.json["error"]) == (405, "bad_request")
    assert client.post("/v1/status", {}).status == 405
    unsupported = client.request("PUT", "/v1/status", {})
    assert (unsupported.status, unsupported.json["error"]) == (501, "bad_request")


class GatedBackend(SimBackend):
    """A sim backend that holds the card until the test lets go: an operation in progress."""

    def __init__(self, card: SimCard) -> None:
        super().__init__(card)
        self.holding = threading.Event()
        self.release = threading.Event()

    @contextmanager
    def connect(self):
        with super().connect() as link:
            self.holding.set()
            self.release.wait(timeout=REQUEST_TIMEOUT_SECONDS)
            yield link


def test_a_second_concurrent_operation_is_busy(card, home):
    backend = GatedBackend(card)
    with running_helper(backend, home) as (_, client):
        first: dict[str, Answer] = {}
        thread = threading.Thread(target=lambda: first.update(answer=client.get("/v1/card")))
        thread.start()
        assert backend.holding.wait(REQUEST_TIMEOUT_SECONDS)
        second = client.post("/v1/pin/verify", {"pin": WRONG_PIN})
        assert (second.status, second.json["error"]) == (423, "busy")
        assert client.get("/v1/status").status == 200  # status does not need the card
        backend.release.set()
        thread.join(REQUEST_TIMEOUT_SECONDS)
        assert first["answer"].status == 200
    assert card.pin_tries_left == 3


def test_key_and_home_are_private_and_the_key_stays(card, home):
    with running_helper(SimBackend(card), home) as (_, client):
        first_key = client.get("/v1/status").json["public_key"]
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    key_file = home / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    with running_helper(SimBackend(card), home) as (_, client):
        assert client.get("/v1/status").json["public_key"] == first_key
    key_file.chmod(0o644)
    with pytest.raises(HelperSetupError, match="chmod 600"):
        make_server(0, [ORIGIN], SimBackend(card), home)


def test_home_open_to_others_is_refused(card, tmp_path):
    home = tmp_path / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    with pytest.raises(HelperSetupError, match="chmod 700"):
        make_server(0, [ORIGIN], SimBackend(card), home)


def test_used_seal_ids_survive_a_restart(card, home):
    with running_helper(SimBackend(card), home) as (_, client):
        sealed = client.seal()
        assert client.post("/v1/pin/unblock", {"sealed_puk": sealed, "new_pin": NEW_PIN}).status == 200
    ledger = home / USED_SEALS_FILE_NAME
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    assert PUK not in ledger.read_text() and len(json.loads(ledger.read_text())["used"]) == 1
    with running_helper(SimBackend(card), home) as (_, client):
        replay = client.post("/v1/pin/unblock", {"sealed_puk": sealed, "new_pin": PIN})
        assert (replay.status, replay.json["error"]) == (400, "bad_request")
        assert "already used" in replay.json["message"]
        assert client.post("/v1/pin/verify", {"pin": NEW_PIN}).status == 200


def test_used_seal_ids_are_pruned_when_expired(tmp_path):
    path = tmp_path / USED_SEALS_FILE_NAME
    UsedSeals(path, NOW).claim("first", NOW + SEAL_TTL_SECONDS, NOW)
    with pytest.raises(SealError, match="already used"):
        UsedSeals(path, NOW + SEAL_TTL_SECONDS).claim("first", NOW + SEAL_TTL_SECONDS, NOW + SEAL_TTL_SECONDS)
    later = NOW + SEAL_TTL_SECONDS + 1
    UsedSeals(path, later).claim("second", later + SEAL_TTL_SECONDS, later)
    assert set(json.loads(path.read_text())["used"]) == {"second"}


def test_damaged_used_seals_file_stops_the_start(card, home):
    home.mkdir(mode=0o700)
    (home / USED_SEALS_FILE_NAME).write_text("{not json")
    with pytest.raises(HelperSetupError, match="cannot be read"):
        make_server(0, [ORIGIN], SimBackend(card), home)


def test_log_has_one_line_per_request_and_no_secret(client, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    client.post("/v1/pin/verify", {"pin": WRONG_PIN})
    client.post("/v1/pin/change", {"old_pin": PIN, "new_pin": NEW_PIN})
    block_pin(client)
    client.post("/v1/pin/unblock", {"puk": PUK, "new_pin": PIN})
    block_pin(client)
    sealed = client.seal()
    client.post("/v1/pin/unblock", {"sealed_puk": sealed, "new_pin": NEW_PIN})
    client.post("/v1/pin/unblock", {"sealed_puk": sealed, "new_pin": NEW_PIN})
    client.post(f"/v1/pin/verify?pin={PIN}", {"pin": PIN})
    client.get(f"/v1/{PUK}")
    client.request("POST", "/v1/pin/verify", raw=json.dumps({PIN: PUK}).encode())
    logged = caplog.text + "".join(capfd.readouterr())
    for secret in (PIN, PUK, NEW_PIN, WRONG_PIN, json.loads(sealed)["ct"]):
        assert secret not in logged
    lines = [record.getMessage() for record in caplog.records if record.name == "kamusm.helper"]
    assert lines[0] == "POST /v1/pin/verify 409 wrong_pin"
    assert "POST /v1/pin/unblock 200 -" in lines and "POST /v1/pin/unblock 400 bad_request" in lines
    assert "GET (other) 404 bad_request" in lines
    assert len([line for line in lines if line.startswith("GET /v1/status")]) == 1  # the seal's key lookup


@pytest.mark.parametrize(("text", "origin"), [
    ("https://portal.example/", "https://portal.example"),
    ("https://Imza.Example.edu.tr:8443", "https://imza.example.edu.tr:8443"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
])
def test_origins_are_normalised(text, origin):
    assert normalize_origin(text) == origin


@pytest.mark.parametrize("text", ["*", "null", "https://*.example", "portal.example", "ftp://portal.example",
                                  "https://portal.example/unlock", "https://user@portal.example",
                                  "https://portal.example/?x=1"])
def test_non_origins_are_refused(text):
    with pytest.raises(HelperSetupError, match="not an origin"):
        normalize_origin(text)


def test_command_default_origin_comes_from_the_app(app, monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr(helper, "serve", lambda *args: started.append(args))
    helper_log = logging.getLogger("kamusm.helper")
    handlers_before = list(helper_log.handlers)
    runner = app.test_cli_runner()
    home = ["--home", str(tmp_path)]
    assert runner.invoke(args=["kamusm", "helper", "--backend", "sim", *home]).exit_code == 0
    app.config["KAMUSM_PUBLIC_URL"] = "https://imza.example.edu.tr"
    assert runner.invoke(args=["kamusm", "helper", "--port", "0", *home]).exit_code == 0
    assert runner.invoke(args=["kamusm", "helper", "--origin", "https://a.example", "--origin", "https://b.example",
                               *home]).exit_code == 0
    assert started == [
        (8765, ["http://127.0.0.1:5000"], "sim", tmp_path),
        (0, ["https://imza.example.edu.tr"], "pcsc", tmp_path),
        (8765, ["https://a.example", "https://b.example"], "pcsc", tmp_path),
    ]
    assert helper_log.handlers == handlers_before and helper_log.propagate  # nothing left on a closed stream


def test_the_command_line_passes_its_options_to_the_helper(monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr(helper, "serve", lambda *args: started.append(args))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    helper.main([])
    helper.main(["--port", "0", "--backend", "sim", "--origin", "https://a.example", "--home", str(tmp_path / "h")])
    assert started == [
        (8765, ["http://127.0.0.1:5000"], "pcsc", tmp_path / "kamusm-helper"),
        (0, ["https://a.example"], "sim", tmp_path / "h"),
    ]


@pytest.mark.parametrize("argv", [["--port", "65536"], ["--port", "x"], ["--backend", "usb"], ["--serial", "1"]])
def test_the_command_line_refuses_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        helper.main(argv)
    assert exited.value.code == 2
    assert "usage: kamusm-helper" in capsys.readouterr().err


def test_python_m_refuses_a_wildcard_origin_with_a_message(home, capsys):
    with pytest.raises(SystemExit) as exited:
        helper.main(["--origin", "*", "--backend", "sim", "--home", str(home), "--port", "0"])
    assert exited.value.code == 1
    assert "not an origin" in capsys.readouterr().err
