"""The helper's side of pairing: it opens a pairing code sealed for its key and this origin, shows it
on its own console only, and never shows the same seal twice."""
from __future__ import annotations

import threading
import time

import pytest

from kamusm.card.reader import SimBackend
from kamusm.card.sim import SimCard
from kamusm.helper import make_server
from kamusm.sealing import seal_pairing_code, seal_puk
from tests.test_helper_api import ORIGIN, PIN, PUK, SERIAL, TEST_POLL_SECONDS, HelperClient


class Console:
    """What the holder reads on the helper's terminal."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def client(tmp_path, console):
    server = make_server(0, [ORIGIN, "http://127.0.0.1:5000"], SimBackend(SimCard(SERIAL, PIN, PUK)),
                         tmp_path / "home", display=console)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": TEST_POLL_SECONDS}, daemon=True)
    thread.start()
    yield HelperClient(server.port)
    server.shutdown()
    server.server_close()
    thread.join()


def sealed_code(client, origin=ORIGIN, code="482913"):
    public_key = client.get("/v1/status").json["public_key"]
    return seal_pairing_code(public_key, origin, code, time.time())[0]


def test_the_code_is_shown_on_the_console_and_not_answered(client, console, caplog):
    status = client.get("/v1/status").json
    answer = client.post("/v1/pair", {"sealed_code": sealed_code(client)})
    assert answer.status == 200 and answer.json == {"shown": True, "fingerprint": status["fingerprint"]}
    assert len(console.lines) == 1
    assert "482 913" in console.lines[0] and status["fingerprint"] in console.lines[0] and ORIGIN in console.lines[0]
    assert "482913" not in caplog.text and "482 913" not in caplog.text


def test_a_seal_shows_once(client, console):
    sealed = sealed_code(client)
    assert client.post("/v1/pair", {"sealed_code": sealed}).status == 200
    again = client.post("/v1/pair", {"sealed_code": sealed})
    assert again.status == 400 and again.json["error"] == "bad_request" and len(console.lines) == 1


def test_a_code_sealed_for_another_portal_is_not_shown(client, console):
    """A page of origin A cannot make the helper show a code the portal sealed for origin B."""
    answer = client.post("/v1/pair", {"sealed_code": sealed_code(client, origin="http://127.0.0.1:5000")})
    assert answer.status == 400 and "another portal" in answer.json["message"] and console.lines == []


def test_a_puk_seal_is_not_a_pairing_code(client, console):
    public_key = client.get("/v1/status").json["public_key"]
    puk_seal = seal_puk(public_key, ORIGIN, PUK, time.time())[0]
    answer = client.post("/v1/pair", {"sealed_code": puk_seal})
    assert answer.status == 400 and console.lines == [] and PUK not in str(answer.json)


@pytest.mark.parametrize("body", [{}, {"sealed_code": 5}, {"sealed_code": "x", "extra": 1}, {"sealed_code": "{}"}])
def test_bad_pairing_bodies_are_400(client, console, body):
    answer = client.post("/v1/pair", body)
    assert answer.status == 400 and answer.json["error"] == "bad_request" and console.lines == []


def test_other_origins_are_refused_before_anything_is_shown(client, console):
    answer = client.post("/v1/pair", {"sealed_code": sealed_code(client)}, origin="https://evil.example")
    assert answer.status == 403 and answer.json["error"] == "forbidden_origin" and console.lines == []
