"""Abandoned sessions are purged by the server itself, on its schedule, and on demand from the command line."""
from __future__ import annotations

from kamusm import housekeeping, storage
from tests.conftest import AuthActions

IDLE = 600  # KAMUSM_SESSION_IDLE_SECONDS's default, which the app fixture keeps


def session_rows(db) -> int:
    return len(db.execute("SELECT id_hash FROM sessions").fetchall())


def abandon_logins(app, count: int) -> None:
    """Holders who log in and close the browser: their rows stay until something purges them."""
    for _ in range(count):
        AuthActions(app.test_client(), app).login()


def test_the_schedule_is_due_once_per_interval():
    schedule = housekeeping.PurgeSchedule(300)
    assert schedule.due(1000.0)
    assert not schedule.due(1000.0) and not schedule.due(1299.9)
    assert schedule.due(1300.0) and not schedule.due(1300.0)


def test_the_purge_deletes_idle_and_too_old_sessions_only(db, clock):
    now = clock()
    storage.sessions.save_session(db, "idle", {}, None, now - 100, now - IDLE - 1)
    storage.sessions.save_session(db, "too-old", {}, None, now - 13 * 3600, now - 10)
    storage.sessions.save_session(db, "alive", {}, None, now - 100, now - 10)
    assert housekeeping.purge_expired_sessions(db, now, IDLE, 12 * 3600) == 2
    assert [row[0] for row in db.execute("SELECT id_hash FROM sessions").fetchall()] == ["alive"]


def test_the_server_purges_abandoned_sessions_on_its_schedule(app, client, clock, db):
    client.get("/login")  # the process's first purge happens here, before anyone was abandoned
    abandon_logins(app, 3)
    clock.advance(IDLE + 1)
    AuthActions(client, app).login()  # the first request past the interval purges
    assert session_rows(db) == 1, "only the session that is still in use survives"
    storage.sessions.save_session(db, "abandoned-long-ago", {}, None, clock() - IDLE - 5, clock() - IDLE - 5)
    clock.advance(housekeeping.PURGE_INTERVAL_SECONDS - 1)
    client.get("/menu")
    assert session_rows(db) == 2, "inside the interval of the last purge nothing is deleted"
    clock.advance(1)
    assert client.get("/menu").status_code == 200
    assert session_rows(db) == 1


def test_a_static_file_neither_purges_nor_spends_the_schedule(app, client, clock, db):
    client.get("/login")
    abandon_logins(app, 2)
    clock.advance(IDLE + housekeeping.PURGE_INTERVAL_SECONDS + 1)
    client.get("/static/css/kamusm.css").close()
    assert session_rows(db) >= 2
    client.get("/login")
    assert session_rows(db) == 1


def test_flask_kamusm_purge_deletes_expired_sessions_and_audits(app, runner, clock, db):
    abandon_logins(app, 2)
    clock.advance(IDLE + 1)
    result = runner.invoke(args=["kamusm", "purge"])
    assert result.exit_code == 0 and "2 expired session(s) deleted" in result.output
    assert session_rows(db) == 0
    entry = list(storage.audit_log.audit_entries(db))[-1]
    assert (entry["event"], entry["outcome"]) == ("admin.purge", "ok") and '"sessions":2' in entry["detail"]
