"""Several gunicorn workers, and two servers: the lockout, code single use and per-IP limits still hold.

A real redis-server (Debian's) on a free port, no persistence, and gunicorn with kamusm/gunicorn_conf.py and
RATELIMIT_STORAGE_URI=redis://, on a temporary instance with the demo holders (demo mode, captcha off). Every test
runs twice: on SQLite, one server with 3 workers; on PostgreSQL (tests/postgres_server.py), two servers on two ports
with 2 workers each, each with its own copy of the instance folder, so all they share is the database and redis, as
two machines would. Every request goes over its own connection, to the servers in turn, so the kernel hands them to
whichever worker accepts first; the access logs' pid column shows they were spread. Per-IP limits are told apart by
binding clients to other loopback addresses (127.0.x.y). Under CI=true a missing redis-server fails; elsewhere it skips.
"""
from __future__ import annotations

import http.client
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import pytest

from kamusm import serve, storage, vault
from kamusm.auth import LOCK_BASE_SECONDS
from kamusm.demo import DEMO_HOLDERS, load_demo_holders
from kamusm.web.db import connections, get_db
from kamusm.web.factory import create_app
from kamusm.words import WordHasher

pytestmark = pytest.mark.multiworker

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
CONF = ROOT / "kamusm" / "gunicorn_conf.py"
WORKERS = 3  # on SQLite
SERVERS_ON_POSTGRES, WORKERS_ON_POSTGRES = 2, 2
LOGIN_RATE_PER_MINUTE = 5
LOCKOUT_THRESHOLD = 5
START_SECONDS = 30
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PID = re.compile(r"<(\d+)>$")
SELIN, KEMAL, AYSE = DEMO_HOLDERS
UNKNOWN_IDENTITY = "10000000450"  # checksum-valid, not a holder: costs the dummy hash
BURST = 40
LOGIN_FAILED = "Kimlik numarası ya da güvenlik sözcüğü hatalı"

STATUSES: list[int] = []  # every status any test here saw, for the no-5xx check at the end
_turns = itertools.count()  # requests go to the servers in turn, whichever client sends them


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def find_redis_server() -> str:
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else "")
    if not path:
        message = "redis-server is missing (Debian package redis-server; `make system-test-deps` installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def wait_for(check, what: str, process: subprocess.Popen, log: Path | None = None) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited: {log.read_text() if log else process.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not start within {START_SECONDS} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Browser:
    """A client with its own cookies and its own loopback address; one connection per request."""

    def __init__(self, ports: list[int], source: str = "127.0.0.1"):
        self.ports, self.source = ports, source
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, str]:
        port = self.ports[next(_turns) % len(self.ports)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(self.source, 0))
        headers = {"Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        STATUSES.append(response.status)
        return response.status, response.getheader("Location", ""), text

    def token(self, path: str) -> str:
        status, _, page = self.request("GET", path)
        assert status == 200, (path, status)
        return TOKEN.search(page).group(1)

    def login_form(self, identity: str, word: str) -> dict:
        return {"csrf_token": self.token("/login"), "identity": identity, "security_word": word}


def in_parallel(calls) -> list:
    """Run the callables at the same moment, each in its own thread; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int, call) -> None:
        barrier.wait(30)
        results[index] = call()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis of the servers' own: the per-IP counts of one database's run do not carry into the other's."""
    binary = find_redis_server()
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(folder), "--protected-mode", "yes", "--loglevel", "warning"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    try:
        wait_for(pong, "redis-server", process)
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(process)


def make_instance(folder: Path, database_url: str = "") -> Path:
    """An initialised instance with the demo holders, made before any worker starts."""
    config = {"KAMUSM_INSTANCE": str(folder), "KAMUSM_DEMO": True, "KAMUSM_DATABASE_URL": database_url}
    app = create_app(config)
    with app.app_context():
        load_demo_holders(get_db(), app.extensions["kamusm.hasher"], vault.app_keyring(), time.time())
    connections(app).close_all()
    return folder


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Path:
    """A SQLite instance for the servers that must refuse to start."""
    return make_instance(tmp_path_factory.mktemp("multiworker") / "instance")


def server_env(instance: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("KAMUSM_", "RATELIMIT_"))}
    env.update({"KAMUSM_INSTANCE": str(instance), "KAMUSM_DEMO": "1", "KAMUSM_CAPTCHA": "off",
                "KAMUSM_LOCKOUT_THRESHOLD": str(LOCKOUT_THRESHOLD), **extra})
    return env


def start_gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with log.open("w") as handle:
        return subprocess.Popen([str(GUNICORN), "-c", str(CONF), "--bind", f"127.0.0.1:{port}", "app:app"],
                                cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


def healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """One server with 3 workers on SQLite; on PostgreSQL two servers with 2 workers each, each on its own copy
    of the instance folder (the keys an institution would copy to every machine)."""
    folder = tmp_path_factory.mktemp(f"multiworker-{request.param}")
    if request.param == "sqlite":
        instances, workers = [make_instance(folder / "instance")], WORKERS
        database = str(instances[0] / "kamusm.db")
    else:
        database = request.getfixturevalue("postgres_server").new_database()
        first = make_instance(folder / "instance-1", database)
        instances = [first] + [Path(shutil.copytree(first, folder / f"instance-{number}"))
                               for number in range(2, SERVERS_ON_POSTGRES + 1)]
        workers = WORKERS_ON_POSTGRES
    ports, logs, processes = [], [], []
    with ExitStack() as cleanup:
        redis_url = cleanup.enter_context(redis_server(folder))
        for number, instance in enumerate(instances, start=1):
            port, log = free_port(), folder / f"server-{number}.log"
            env = server_env(instance, RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_ENABLED="true",
                             KAMUSM_WORKERS=str(workers), KAMUSM_LOGIN_RATE=f"{LOGIN_RATE_PER_MINUTE} per minute",
                             KAMUSM_SMS_RATE="1000 per minute", KAMUSM_CODE_RATE="1000 per minute",
                             KAMUSM_DATABASE_URL="" if request.param == "sqlite" else database)
            processes.append(start_gunicorn(env, port, log))
            cleanup.callback(stop, processes[-1])
            ports.append(port)
            logs.append(log)
        for port, log, process in zip(ports, logs, processes, strict=True):
            wait_for(lambda port=port: healthy(port), "gunicorn", process, log)
            # Every worker must be up, or the first requests would all land on the first one.
            wait_for(lambda log=log: log.read_text().count("Booting worker") >= workers, "the workers", process, log)
        yield {"ports": ports, "logs": logs, "database": database, "workers": workers}


@pytest.fixture
def db(server):
    connection = storage.connect(server["database"])
    yield connection
    connection.conn.close()


def holder_row(db, identity: str) -> dict:
    return storage.holders.find_holder(db, identity)


def log_lines(logs: list[Path]) -> list[str]:
    return [line for log in logs for line in log.read_text().splitlines()]


def pids_for(logs: list[Path], source: str, path: str) -> set[str]:
    """Which worker pids answered requests from `source` for `path`, from the servers' access logs."""
    pids = set()
    for line in log_lines(logs):
        if line.startswith(f"{source} ") and f" {path} " in line:
            match = PID.search(line)
            if match:
                pids.add(match.group(1))
    return pids


def test_lockout_counts_every_failure_across_workers(server, db):
    """Threshold - 1 wrong words at once, each from its own address: every one counted, no lock yet;
    one more locks for exactly the first wait; then even the right word is refused."""
    ports = server["ports"]
    browsers = [Browser(ports, f"127.0.1.{index + 1}") for index in range(LOCKOUT_THRESHOLD)]
    forms = [browser.login_form(SELIN["identity"], "wrong-word") for browser in browsers]
    first = in_parallel([lambda b=b, f=f: b.request("POST", "/login", f)[0]
                         for b, f in zip(browsers[:-1], forms[:-1], strict=True)])
    assert first == [401] * (LOCKOUT_THRESHOLD - 1)
    row = holder_row(db, SELIN["identity"])
    assert (row["failed_logins"], row["locked_until"]) == (LOCKOUT_THRESHOLD - 1, 0)

    before = time.time()
    assert browsers[-1].request("POST", "/login", forms[-1])[0] == 401
    row = holder_row(db, SELIN["identity"])
    assert row["failed_logins"] == LOCKOUT_THRESHOLD
    assert before + LOCK_BASE_SECONDS - 1 <= row["locked_until"] <= time.time() + LOCK_BASE_SECONDS

    right = Browser(ports, "127.0.1.100")
    assert right.request("POST", "/login", right.login_form(SELIN["identity"], SELIN["security_word"]))[0] == 401
    assert holder_row(db, SELIN["identity"])["failed_logins"] == LOCKOUT_THRESHOLD


def test_burst_of_wrong_words_loses_no_update(server, db):
    """12 wrong words at once from 12 addresses: the counter equals the failures audited, the holder
    is locked, and the wait is the one the counter calls for."""
    ports = server["ports"]
    browsers = [Browser(ports, f"127.0.2.{index + 1}") for index in range(12)]
    forms = [browser.login_form(KEMAL["identity"], "wrong-word") for browser in browsers]
    statuses = in_parallel([lambda b=b, f=f: b.request("POST", "/login", f)[0]
                            for b, f in zip(browsers, forms, strict=True)])
    assert statuses == [401] * 12
    holder = holder_row(db, KEMAL["identity"])
    entries = list(storage.audit_log.audit_entries(db, holder["id"]))
    wrong = [entry for entry in entries if entry["event"] == "login.word" and entry["outcome"] == "wrong_word"]
    locked = [entry for entry in entries if entry["event"] == "login.word" and entry["outcome"] == "locked"]
    assert holder["failed_logins"] == len(wrong) >= LOCKOUT_THRESHOLD
    assert len(wrong) + len(locked) == 12
    assert holder["locked_until"] > time.time()
    assert len(set().union(*(pids_for(server["logs"], b.source, "/login") for b in browsers))) >= 2


def add_holder(db, identity: str, phone: str, word: str) -> int:
    """A holder of the test's own (the demo holders carry the state of the tests above), hashed with
    the server's Argon2id costs (the defaults)."""
    record = {"identity": identity, "name": "Deniz Ak", "phone": phone, "email": f"{identity.lower()}@demo.edu.tr",
              "word_hash": WordHasher(19456, 2, 1).hash(word)}
    return storage.holders.upsert_holder(db, record, time.time())


def wait_until(check, what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {START_SECONDS} s"
        time.sleep(0.005)


def test_a_burst_of_wrong_words_across_workers_is_hashed_threshold_times_and_locks_once(server, db):
    """40 wrong words at once from 40 addresses, and the right word as soon as the database shows the
    first five counted: the holder's hash checked 5 times in all (one wrong_word entry per check),
    one lock, one lockout entry, and 41 identical refusals."""
    ports = server["ports"]
    holder_id = add_holder(db, "BURST0001", "+905430000091", "burst-right-word")
    browsers = [Browser(ports, f"127.0.6.{index + 1}") for index in range(BURST + 1)]
    forms = [browser.login_form("BURST0001", "wrong-word") for browser in browsers]
    forms[-1]["security_word"] = "burst-right-word"
    started = time.time()

    def right_word_behind_them():
        watcher = storage.connect(server["database"])
        try:
            wait_until(lambda: storage.holders.get_holder(watcher, holder_id)["failed_logins"] >= LOCKOUT_THRESHOLD,
                       "five counted attempts")
        finally:
            watcher.conn.close()
        return browsers[-1].request("POST", "/login", forms[-1])

    calls = [lambda b=b, f=f: b.request("POST", "/login", f) for b, f in zip(browsers[:-1], forms[:-1], strict=True)]
    answers = in_parallel(calls + [right_word_behind_them])
    assert [status for status, _, _ in answers] == [401] * (BURST + 1)
    assert all(LOGIN_FAILED in page for _, _, page in answers)
    outcomes = [(entry["event"], entry["outcome"]) for entry in storage.audit_log.audit_entries(db, holder_id)]
    assert outcomes.count(("login.word", "wrong_word")) == LOCKOUT_THRESHOLD
    assert outcomes.count(("login.lockout", "locked")) == 1
    assert outcomes.count(("login.word", "locked")) == BURST + 1 - LOCKOUT_THRESHOLD
    assert ("login.word", "ok") not in outcomes
    holder = storage.holders.get_holder(db, holder_id)
    assert holder["failed_logins"] == LOCKOUT_THRESHOLD
    assert started + LOCK_BASE_SECONDS - 1 <= holder["locked_until"] <= time.time() + LOCK_BASE_SECONDS
    assert len(set().union(*(pids_for(server["logs"], b.source, "/login") for b in browsers))) >= 2


def test_bursts_of_sms_sends_and_wrong_codes_across_workers_get_one_sms_and_three_tries(server, db):
    ports = server["ports"]
    holder_id = add_holder(db, "BURST0002", "+905430000092", "burst-sms-word")
    browser = Browser(ports, "127.0.7.1")
    assert browser.request("POST", "/login", browser.login_form("BURST0002", "burst-sms-word"))[0] == 303
    form = {"csrf_token": browser.token("/login/sms")}

    def clone(index: int) -> Browser:
        copy = Browser(ports, f"127.0.7.{index + 10}")
        copy.cookies = dict(browser.cookies)
        return copy

    clones = [clone(index) for index in range(30)]
    statuses = in_parallel([lambda c=c: c.request("POST", "/login/sms", form)[0] for c in clones])
    assert sorted(statuses) == [303] + [429] * 29
    recipients = [message["recipient"] for message in storage.outbox.latest_outbox(db, "sms", 100)]
    assert recipients.count("+905430000092") == 1
    assert storage.codes.count_codes_sent_since(db, holder_id, 0) == 1
    assert len(set().union(*(pids_for(server["logs"], c.source, "/login/sms") for c in clones))) >= 2

    body = storage.outbox.latest_outbox(db, "sms", 1)[0]["body"]
    code = re.search(r"\b(\d{6})\b", body).group(1)
    form = {"csrf_token": browser.token("/login/code"), "code": f"{(int(code) + 1) % 1_000_000:06d}"}
    statuses = in_parallel([lambda c=c: c.request("POST", "/login/code", form)[0] for c in clones])
    assert statuses == [422] * 30
    attempt = next(iter(db.query("SELECT attempt FROM sms_codes WHERE holder_id = ?", [holder_id])))["attempt"]
    assert storage.codes.latest_code(db, attempt)["wrong_tries"] == 3
    status, location, _ = browser.request("POST", "/login/code", {**form, "code": code})
    assert (status, location) != (303, "/menu")


def test_one_code_submitted_in_parallel_opens_the_menu_once(server, db):
    ports = server["ports"]
    browser = Browser(ports, "127.0.3.1")
    assert browser.request("POST", "/login", browser.login_form(AYSE["identity"], AYSE["security_word"]))[0] == 303
    assert browser.request("POST", "/login/sms", {"csrf_token": browser.token("/login/sms")})[0] == 303
    body = storage.outbox.latest_outbox(db, "sms", 1)[0]["body"]
    code = re.search(r"\b(\d{6})\b", body).group(1)
    form = {"csrf_token": browser.token("/login/code"), "code": code}
    cookies = dict(browser.cookies)

    def submit(index: int):
        clone = Browser(ports, f"127.0.3.{index + 10}")
        clone.cookies = dict(cookies)
        status, location, _ = clone.request("POST", "/login/code", form)
        return status, location, clone

    results = in_parallel([lambda i=i: submit(i) for i in range(30)])
    winners = [clone for status, location, clone in results if (status, location) == (303, "/menu")]
    assert len(winners) == 1, sorted((status, location) for status, location, _ in results)
    assert all(status < 500 for status, _, _ in results)
    assert winners[0].request("GET", "/menu")[0] == 200
    for _, _, clone in results:
        if clone is not winners[0]:
            assert clone.request("GET", "/menu")[0] != 200
    holder = holder_row(db, AYSE["identity"])
    logins = [entry for entry in storage.audit_log.audit_entries(db, holder["id"]) if entry["event"] == "login"]
    assert len(logins) == 1


def test_a_session_begun_on_one_server_is_the_same_on_the_other_and_ends_on_both(server, db):
    """Logged in through the first server (word, SMS, code), the menu opens on the last; logging out there
    ends it on the first too. On SQLite both are the one server."""
    first, last = server["ports"][0], server["ports"][-1]
    holder_id = add_holder(db, "BURST0003", "+905430000093", "two-servers-word")
    on_first = Browser([first], "127.0.8.1")
    assert on_first.request("POST", "/login", on_first.login_form("BURST0003", "two-servers-word"))[0] == 303
    assert on_first.request("POST", "/login/sms", {"csrf_token": on_first.token("/login/sms")})[0] == 303
    code = re.search(r"\b(\d{6})\b", storage.outbox.latest_outbox(db, "sms", 1)[0]["body"]).group(1)
    assert on_first.request("POST", "/login/code", {"csrf_token": on_first.token("/login/code"), "code": code})[:2] \
        == (303, "/menu")

    on_last = Browser([last], "127.0.8.2")
    on_last.cookies = dict(on_first.cookies)
    assert on_last.request("GET", "/menu")[0] == 200
    assert on_last.request("POST", "/logout", {"csrf_token": on_last.token("/menu")})[0] == 303
    assert on_first.request("GET", "/menu")[0] != 200
    events = [entry["event"] for entry in storage.audit_log.audit_entries(db, holder_id)]
    assert events.count("login") == 1 and "logout" in events


def test_per_ip_login_limit_holds_whichever_worker_answers(server):
    ports = server["ports"]
    one_by_one = Browser(ports, "127.0.4.1")
    form = one_by_one.login_form(UNKNOWN_IDENTITY, "wrong-word")
    statuses = [one_by_one.request("POST", "/login", form)[0] for _ in range(LOGIN_RATE_PER_MINUTE + 1)]
    assert statuses == [401] * LOGIN_RATE_PER_MINUTE + [429]

    burst = Browser(ports, "127.0.4.2")
    form = burst.login_form(UNKNOWN_IDENTITY, "wrong-word")
    statuses = in_parallel([lambda: burst.request("POST", "/login", form)[0] for _ in range(12)])
    assert sorted(statuses) == [401] * LOGIN_RATE_PER_MINUTE + [429] * (12 - LOGIN_RATE_PER_MINUTE)
    answered_by = pids_for(server["logs"], "127.0.4.1", "/login") | pids_for(server["logs"], "127.0.4.2", "/login")
    assert len(answered_by) >= 2, "every limited request went to one worker: the test proved nothing"


def test_access_log_redacts_link_tokens_and_drops_query_strings(server):
    browser = Browser(server["ports"], "127.0.5.1")
    browser.request("GET", "/reset/SECRET-link-token-123?lang=en&q=private-query")
    time.sleep(0.2)
    lines = [line for line in log_lines(server["logs"]) if line.startswith("127.0.5.1 ")]
    assert lines and "/reset/[redacted]" in lines[0]
    log = "\n".join(log_lines(server["logs"]))
    assert "SECRET-link-token-123" not in log and "private-query" not in log


@pytest.mark.parametrize("storage, message", [
    ("memory://", "memory:// counts per process"),
    ("redis://127.0.0.1:{closed}", "does not answer"),
])
def test_server_refuses_limits_that_would_not_hold(instance, tmp_path, storage, message):
    env = server_env(instance, KAMUSM_WORKERS=str(WORKERS), RATELIMIT_ENABLED="true",
                     RATELIMIT_STORAGE_URI=storage.format(closed=free_port()))
    log = tmp_path / "refused.log"
    process = start_gunicorn(env, free_port(), log)
    try:
        returncode = process.wait(START_SECONDS)
    except subprocess.TimeoutExpired:
        stop(process)
        pytest.fail(f"gunicorn started with {storage} and {WORKERS} workers:\n{log.read_text()}")
    text = log.read_text()
    assert returncode != 0
    assert message in text and "Booting worker" not in text


def test_storage_rules():
    enabled = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://"}
    assert serve.storage_problem(enabled, 1) is None
    assert "RATELIMIT_STORAGE_URI=redis://" in serve.storage_problem(enabled, 2)
    assert serve.storage_problem({**enabled, "RATELIMIT_ENABLED": False}, 4) is None
    assert serve.storage_problem({**enabled, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}, 4) is None
    assert serve.default_workers(enabled, cores=8) == 1
    assert serve.default_workers({**enabled, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}, cores=1) == 1
    assert serve.default_workers({**enabled, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}, cores=2) == 1
    assert serve.default_workers({**enabled, "RATELIMIT_ENABLED": False}, cores=8) == 4
    assert serve.forwarded_allow_ips({"KAMUSM_PROXIES": 0}, {"FORWARDED_ALLOW_IPS": "*"}) == ""
    assert serve.forwarded_allow_ips({"KAMUSM_PROXIES": 1}, {}) == "127.0.0.1,::1"
    assert serve.argon2_slots({"KAMUSM_ARGON2_SLOTS": 0}, 2, cores=2) == 1
    assert serve.argon2_slots({"KAMUSM_ARGON2_SLOTS": 0}, 2, cores=8) == 4
    assert serve.argon2_slots({"KAMUSM_ARGON2_SLOTS": 0}, 3, cores=2) == 1
    assert serve.argon2_slots({"KAMUSM_ARGON2_SLOTS": 3}, 2, cores=2) is None


def test_workers_share_the_cores_for_argon2(server):
    slots = max(1, (os.cpu_count() or 1) // server["workers"])
    lines = [line for line in log_lines(server["logs"]) if "Argon2id checks at once" in line]
    assert len(lines) == server["workers"] * len(server["ports"])
    assert all(line.endswith(f"runs at most {slots} Argon2id checks at once") for line in lines)


def test_no_server_error_and_no_lock_error_in_the_log(server):
    """Runs last: nothing above got a 5xx, and no worker logged a locked database or a traceback."""
    assert all(status < 500 for status in STATUSES)
    assert all(any(line.startswith("127.0.") for line in log_lines([log])) for log in server["logs"]), \
        "a server answered nothing: the test proved nothing about two servers"
    log = "\n".join(log_lines(server["logs"]))
    assert "database is locked" not in log
    assert "Traceback" not in log
