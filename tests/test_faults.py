"""Faults: a locked database, a slow SMS gateway, an import killed midway. A clear message, nothing lost."""
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kamusm.web.db import connections
from kamusm.web.factory import create_app
from tests.conftest import SELIN, AuthActions, audit_events, csrf_token, load_demo, open_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.sqlite_only  # SQLite's own locks and files
def test_database_locked_past_the_busy_timeout_is_a_clear_503(client, app, db):
    token = csrf_token(client, "/forgot")
    before = connections(app).get()  # the test client's requests run in this thread
    with open_db(app) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        try:
            response = client.post("/forgot", data={"csrf_token": token, "identity": SELIN["identity"]})
        finally:
            blocker.execute("ROLLBACK")
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and "Hiçbir bilginiz değişmedi" in page
    assert "locked" not in page and response.headers["Retry-After"] == "30"
    assert connections(app).get() is not before  # a connection that met a fault is not reused
    assert db.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert client.post("/forgot", data={"csrf_token": token, "identity": SELIN["identity"]}).status_code == 200


class SlowGateway(BaseHTTPRequestHandler):
    def do_POST(self):
        time.sleep(2)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_slow_sms_gateway_times_out_with_a_clear_message(app_config, db):
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowGateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = create_app({**app_config, "KAMUSM_SMS_BACKEND": "http", "KAMUSM_SMS_HTTP_TIMEOUT": 1,
                          "KAMUSM_SMS_HTTP_RETRIES": 0,
                          "KAMUSM_SMS_HTTP_URL": f"http://127.0.0.1:{server.server_port}/send"})
        load_demo(app)
        auth = AuthActions(app.test_client(), app)
        auth.word()
        response = auth.send_sms()
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 503 and "SMS şu anda gönderilemedi" in response.get_data(as_text=True)
    with open_db(app) as connection:
        assert audit_events(connection, "login.sms") == [("login.sms", "gateway_failed")]


@pytest.mark.sqlite_only  # SQLite's own locks and files
def test_import_killed_midway_imports_nothing_and_leaves_the_database_sound(app, db, tmp_path):
    from kamusm.identity import tckn_checksum_ok
    from tests.test_roster import HEADER

    identities = (str(number) for number in range(20_000_000_000, 30_000_000_000) if tckn_checksum_ok(str(number)))
    roster = tmp_path / "big.csv"
    with roster.open("w") as handle:
        handle.write(HEADER)
        for index, identity in zip(range(40_000), identities, strict=False):
            handle.write(f"{identity},Holder {index},+90543{index:07d},h{index}@demo.edu.tr,K{index:08d},"
                         f"2015-01-01,{index % 900000 + 100000},{index % 90000000 + 10000000},\n")
    # Outside demo mode the portal must name real backends (config.check_settings); nothing is sent here.
    env = {**os.environ, "KAMUSM_INSTANCE": app.instance_path, "KAMUSM_DEMO": "0",
           "KAMUSM_SMS_BACKEND": "console", "KAMUSM_MAIL_BACKEND": "smtp"}
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "kamusm", "import", str(roster)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    wal = Path(app.config["DATABASE"] + "-wal")
    while time.monotonic() < deadline and process.poll() is None:
        if wal.exists() and wal.stat().st_size > 2_000_000:  # well into the single import transaction
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    assert db.execute("SELECT count(*) FROM holders").fetchone()[0] == 3  # the demo holders only
    assert db.execute("SELECT count(*) FROM secrets").fetchone()[0] == 6
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture
def small_disk(tmp_path, app_config):
    """An instance folder on its own 4 MiB tmpfs (root can mount here; CI runs as root)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs for the disk tests: {mounted.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # PROPAGATE_EXCEPTIONS off as in production, so faults outside a view reach the error pages too.
    app = create_app({**app_config, "KAMUSM_INSTANCE": str(folder / "instance"), "PROPAGATE_EXCEPTIONS": False})
    load_demo(app)
    yield app, folder
    connections(app).close_all()
    subprocess.run(["umount", "-l", str(folder)], check=False)


def forgot_status(client, token):
    return client.post("/forgot", data={"csrf_token": token, "identity": SELIN["identity"]}).status_code


@pytest.mark.sqlite_only  # SQLite's own locks and files
def test_disk_full_is_a_clear_503_and_recovers(small_disk):
    app, folder = small_disk
    client = app.test_client()
    token = csrf_token(client, "/forgot")
    filler = folder / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    response = client.post("/forgot", data={"csrf_token": token, "identity": SELIN["identity"]})
    assert response.status_code == 503 and "Hiçbir bilginiz değişmedi" in response.get_data(as_text=True)
    filler.unlink()
    assert forgot_status(client, token) == 200
    with open_db(app) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.sqlite_only  # SQLite's own locks and files
def test_read_only_instance_is_a_clear_503_and_recovers(small_disk):
    app, folder = small_disk
    client = app.test_client()
    token = csrf_token(client, "/forgot")
    # The portal keeps a connection per thread; like an administrator's, this remount needs them closed.
    connections(app).close_all()
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    try:
        response = client.post("/forgot", data={"csrf_token": token, "identity": SELIN["identity"]})
        fresh = app.test_client().get("/login")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
    assert response.status_code == 503 and "Hiçbir bilginiz değişmedi" in response.get_data(as_text=True)
    assert fresh.status_code == 503
    assert forgot_status(client, token) == 200
