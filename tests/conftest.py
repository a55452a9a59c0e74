"""Fixtures: an app on a fresh instance folder with the demo holders, a
settable clock, and AuthActions that walk the login steps over HTTP; and the
helpers the test files share (posting a form, reading the database)."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlite_utils

from kamusm import certificates, storage, vault
from kamusm.demo import DEMO_HOLDERS, load_demo_holders
from kamusm.storage import transfer
from kamusm.web.db import connections
from kamusm.web.factory import create_app

CAPTCHA_ANSWER = "KMS34"
SELIN = DEMO_HOLDERS[0]
KEMAL = DEMO_HOLDERS[1]
CSRF_PATTERN = re.compile(r'name="csrf_token" value="([^"]+)"')
SMS_CODE = re.compile(r"\b(\d{6})\b")


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
def app_config(request, tmp_path, clock) -> dict:
    """The test app's settings; with `--database postgresql` its data lives in a new PostgreSQL database."""
    config = {
        "TESTING": True,
        "KAMUSM_INSTANCE": str(tmp_path / "instance"),
        "KAMUSM_DEMO": True,
        "RATELIMIT_ENABLED": False,
        "CAPTCHA_FIXED_ANSWER": CAPTCHA_ANSWER,
        "CLOCK": clock,
    }
    if request.config.getoption("database") == "postgresql":
        config["KAMUSM_DATABASE_URL"] = request.getfixturevalue("postgres_database")
    return config


@pytest.fixture(scope="session")
def postgres_server():
    """tests/postgres_server.py: one throwaway PostgreSQL for the session."""
    from tests.postgres_server import Server

    server = Server()
    yield server
    server.stop()


@pytest.fixture
def postgres_database(postgres_server) -> str:
    """The URL of a new, empty PostgreSQL database (KAMUSM_DATABASE_URL)."""
    return postgres_server.new_database()


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    load_demo(app)
    yield app
    connections(app).close_all()


_DEMO_WORD_HASHES: dict[tuple, str] = {}


class RememberedWordHashes:
    """The app's hasher, for the demo words: each is hashed once per test session and costs (a real Argon2id
    hash with the app's settings, as `kamusm demo` makes). A fresh salt for every test's app only cost time:
    three hashes each, most of an app's setup."""

    def __init__(self, app):
        self._hasher = app.extensions["kamusm.hasher"]
        self._costs = tuple(app.config[f"KAMUSM_ARGON2_{name}"] for name in ("MEMORY_KIB", "TIME_COST", "PARALLELISM"))

    def hash(self, word: str) -> str:
        key = (*self._costs, word)
        if key not in _DEMO_WORD_HASHES:
            _DEMO_WORD_HASHES[key] = self._hasher.hash(word)
        return _DEMO_WORD_HASHES[key]


def load_demo(app):
    with app.app_context():
        keyring = vault.app_keyring()
    with open_db(app) as db:
        load_demo_holders(db, RememberedWordHashes(app), keyring, app.config["CLOCK"]())


def with_demo_certificates(app):
    """The app, plus the demo CA and the demo holders' certificates (`kamusm demo`)."""
    with open_db(app) as db:
        certificates.issue_demo_certificates(db, Path(app.instance_path), "", app.config["CLOCK"]())
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@contextmanager
def open_db(app) -> Iterator[sqlite_utils.Database]:
    """A connection of its own to the app's database, closed afterwards, for code that cannot take the
    `db` fixture (fixtures, helpers given only the app, an app a test builds itself). Unlike an app
    context around get_db(), it leaves no `g` behind and takes no connection from the request threads."""
    connection = storage.connect(app.config["DATABASE"])
    try:
        yield connection
    finally:
        connection.conn.close()


@pytest.fixture
def db(app):
    """A connection of the test's own: no app context stays pushed to leak `g` into requests."""
    with open_db(app) as connection:
        yield connection


def database_snapshot(db, tables: tuple[str, ...] = (), leave_out: tuple[str, ...] = ("sessions",)) -> dict[str, str]:
    """A digest of every row of `tables` (default: all but `leave_out`), on SQLite or PostgreSQL alike."""
    names = tables or [table for table in transfer.tables(db) if table not in leave_out]
    return {table: transfer.table_digest(db, table, transfer.columns(db, table)) for table in names}


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path)
    match = CSRF_PATTERN.search(page.get_data(as_text=True))
    assert match, f"no csrf token on {path} ({page.status_code})"
    return match.group(1)


def post(client, path: str, *, token_page: str = "/menu", htmx: bool = False, json_api: bool = False, **form):
    """POST `form` with a CSRF token read afresh from `token_page`, as a portal form sends it.

    htmx=True sends HX-Request, as htmx does (the answer is a partial). json_api=True posts as the /unlock
    page's script does: the token in the X-CSRFToken header, not in the form, and a JSON answer asked for.
    """
    token = csrf_token(client, token_page)
    if json_api:
        return client.post(path, data=form, headers={"X-CSRFToken": token, "Accept": "application/json"})
    return client.post(path, data={"csrf_token": token, **form}, headers={"HX-Request": "true"} if htmx else {})


def latest_code(app) -> str:
    """The code in the newest SMS of the outbox that carries one (notices and alerts carry none)."""
    with open_db(app) as db:
        bodies = [message["body"] for message in storage.outbox.latest_outbox(db, "sms")]
    return next(match.group(1) for match in map(SMS_CODE.search, bodies) if match)


def code_sent_to(db, phone: str) -> str:
    """The code in the newest SMS to `phone`."""
    bodies = [message["body"] for message in storage.outbox.latest_outbox(db, "sms") if message["recipient"] == phone]
    return next(match.group(1) for match in map(SMS_CODE.search, bodies) if match)


def id_of(db, holder: dict = SELIN) -> int:
    """The database id of a demo holder."""
    return storage.holders.find_holder(db, holder["identity"])["id"]


def audit_events(db, prefix: str = "", holder_id: int | None = None) -> list[tuple[str, str]]:
    """(event, outcome) of each audit entry, oldest first: those whose event starts with `prefix`, and
    only the holder's when `holder_id` is given."""
    return [(entry["event"], entry["outcome"]) for entry in storage.audit_log.audit_entries(db, holder_id)
            if entry["event"].startswith(prefix)]


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


def pytest_addoption(parser):
    parser.addoption("--database", choices=["sqlite", "postgresql"], default="sqlite",
                     help="where the test apps keep their data (make test runs the HTTP tests on both)")


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL, the tests of SQLite's own behaviour (its files, pragmas, triggers) are left out."""
    if config.getoption("database") != "postgresql":
        return
    kept = [item for item in items if not item.get_closest_marker("sqlite_only")]
    config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("sqlite_only")])
    items[:] = kept


def pytest_configure(config):
    # No pytest.ini: the top level of the repository is fixed, so the settings live here.
    config.addinivalue_line("markers", "browser: real-browser tests (Playwright + Debian's chromium)")
    config.addinivalue_line("markers", "card: tests through pcscd + vpcd + the virtual card")
    config.addinivalue_line("markers", "multiworker: gunicorn with several workers + a real redis-server")
    config.addinivalue_line("markers", "sqlite_only: SQLite's own behaviour; left out under --database postgresql")
    config.addinivalue_line("filterwarnings", "error")
