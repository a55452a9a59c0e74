"""Fixtures: an app on a fresh instance folder with the demo holders, a
settable clock, and AuthActions that walk the login steps over HTTP."""
from __future__ import annotations

import re
import time

import pytest

from kamusm import storage, vault
from kamusm.demo import DEMO_HOLDERS, load_demo_holders
from kamusm.web.db import connections
from kamusm.web.factory import create_app

CAPTCHA_ANSWER = "KMS34"
SELIN = DEMO_HOLDERS[0]
KEMAL = DEMO_HOLDERS[1]
CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A clock the tests move by hand instead of sleeping."""

    def __init__(self, start: float | None = None):
        self.now = start if start is not None else time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_config(tmp_path, clock) -> dict:
    return {
        "TESTING": True,
        "KAMUSM_INSTANCE": str(tmp_path / "instance"),
        "KAMUSM_DEMO": True,
        "RATELIMIT_ENABLED": False,
        "CAPTCHA_FIXED_ANSWER": CAPTCHA_ANSWER,
        "CLOCK": clock,
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    load_demo(app)
    yield app
    connections(app).close_all()


def load_demo(app):
    with app.app_context():
        from kamusm.web.db import get_db
        load_demo_holders(get_db(), app.extensions["kamusm.hasher"], vault.app_keyring(), app.config["CLOCK"]())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """A connection of the test's own: no app context stays pushed to leak `g` into requests."""
    connection = storage.connect(app.config["DATABASE"])
    yield connection
    connection.conn.close()


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path)
    match = CSRF_PATTERN.search(page.get_data(as_text=True))
    assert match, f"no csrf token on {path} ({page.status_code})"
    return match.group(1)


def latest_code(app) -> str:
    with app.app_context():
        from kamusm.web.db import get_db
        body = storage.outbox.latest_outbox(get_db(), "sms", 1)[0]["body"]
    return re.search(r"\b(\d{6})\b", body).group(1)


class AuthActions:
    def __init__(self, client, app):
        self._client = client
        self._app = app

    def word(self, identity: str = SELIN["identity"], word: str = SELIN["security_word"],
             captcha: str = CAPTCHA_ANSWER, **headers):
        token = csrf_token(self._client)
        self._client.get("/captcha.png")
        return self._client.post("/login", data={"csrf_token": token, "identity": identity, "captcha": captcha,
                                                 "security_word": word}, headers=headers)

    def send_sms(self):
        token = csrf_token(self._client, "/login/sms")
        return self._client.post("/login/sms", data={"csrf_token": token})

    def code(self, code: str | None = None):
        token = csrf_token(self._client, "/login/code")
        return self._client.post("/login/code", data={"csrf_token": token,
                                                      "code": code if code is not None else latest_code(self._app)})

    def login(self, identity: str = SELIN["identity"], word: str = SELIN["security_word"]):
        assert self.word(identity, word).status_code == 303
        assert self.send_sms().status_code == 303
        response = self.code()
        assert response.headers["Location"] == "/menu"
        return response


@pytest.fixture
def auth(client, app) -> AuthActions:
    return AuthActions(client, app)


def pytest_configure(config):
    # No pytest.ini: the top level of the repository is fixed, so the settings live here.
    config.addinivalue_line("markers", "browser: real-browser tests (Playwright + Debian's chromium)")
    config.addinivalue_line("markers", "card: tests through pcscd + vpcd + the virtual card")
    config.addinivalue_line("markers", "multiworker: gunicorn with several workers + a real redis-server")
    config.addinivalue_line("filterwarnings", "error")
